/*
 * E-mailed results through a real SMTP server (tests/support/smtp_sink.py,
 * Debian's python3-aiosmtpd on 127.0.0.1): the rendered message arrives;
 * with the server down the outbox retries and delivers once when it comes
 * back; concurrent runners never send a message twice; emailSent only
 * after acceptance; runs started with emailTo e-mail themselves; template
 * injection; the per-user limit; admin-only templates; workspaces; a login
 * only over STARTTLS (a certificate made with openssl, trusted through the
 * transport's ca_file) and never in clear; no secret in any record.
 */
#include "email_fixture.h"

#include "execengine/billing.h"

#define PASS_CANARY "smtp-pass-canary-5521"

static ee_engine *engine;
static ee_principal *alice, *mallory;
static smtp_sink sink;
static char dir[64], db[128];

static char cert[128], key[128];

static void open_engine(void)
{
    char port[16];
    snprintf(port, sizeof port, "%d", sink.port);
    const char *const kv[] = {"SMTP_HOST", "127.0.0.1", "SMTP_PORT", port,
                              "EMAIL_MAX_PER_USER_PER_HOUR", "5", NULL};
    engine = email_engine(db, kv);
}

/* The engine logging in as "mailer" with the canary password; `extra` a
 * last option (key, value) or NULL. */
static void open_engine_login(const char *extra_key, const char *extra_value)
{
    char port[16];
    snprintf(port, sizeof port, "%d", sink.port);
    const char *const kv[] = {"SMTP_HOST", "127.0.0.1", "SMTP_PORT", port,
                              "SMTP_USER", "mailer", "SMTP_PASS", PASS_CANARY,
                              "EMAIL_MAX_PER_USER_PER_HOUR", "5", extra_key, extra_value, NULL};
    engine = email_engine(db, kv);
}

/* The sink restarted to require a login as "mailer" with the canary
 * password - with `tls`, over STARTTLS only, with a certificate made here
 * that the transport trusts through its CA option (ca_file); without, the
 * login offered in clear - and the engine reopened to log in. */
static void login_sink(bool tls)
{
    ee_engine_close(engine);
    engine = NULL;
    sink_stop(&sink);
    if (tls) {
        make_cert(dir, cert, key);
        sink.cert = cert;
        sink.key = key;
        fixture_trust(cert);
    }
    sink.user = "mailer";
    sink.pass = PASS_CANARY;
    sink_start(&sink, 0);
    open_engine_login(NULL, NULL);
}

static void setup(void)
{
    fixture_setup();
    ee_test_temp_dir("/tmp/ee-email-XXXXXX", dir, sizeof dir);
    snprintf(sink.dir, sizeof sink.dir, "%s", dir);
    snprintf(db, sizeof db, "%s/ee.db", dir);
    sink_start(&sink, 0);
    open_engine();
    cr_assert_eq(ee_principal_new(&alice, "ws-alice", "u1", "org-a"), EE_OK);
    cr_assert_eq(ee_principal_new(&mallory, "ws-mallory", "u9", "org-m"), EE_OK);
}

static void teardown(void)
{
    ee_engine_close(engine);
    sink_stop(&sink);
    ee_principal_free(alice);
    ee_principal_free(mallory);
    fixture_teardown();
    ee_test_temp_dir_remove(dir);
}

TestSuite(email_smtp, .init = setup, .fini = teardown, .timeout = 90);

static void put_template(const char *n8n_id, const char *subject, const char *body)
{
    char wf[25], *out = NULL;
    entry_id(engine, n8n_id, wf);
    json_t *t = json_pack("{s:s, s:s, s:s}", "workflowCatalogId", wf, "subjectTemplate", subject,
                          "bodyTemplate", body);
    char *text = json_dumps(t, 0);
    json_decref(t);
    cr_assert_eq(ee_email_template_put(engine, NULL, text, &out), EE_OK, "%s", out);
    free(text);
    ee_free(out);
}

static ee_status send(const ee_principal *p, const char *id, const char *req, char **out)
{
    return ee_email_send_execution(engine, p, id, req, out);
}

static void send_ok(const ee_principal *p, const char *id, const char *to)
{
    char req[128], *out = NULL;
    snprintf(req, sizeof req, "{\"to\": \"%s\"}", to);
    cr_assert_eq(send(p, id, req, &out), EE_OK, "%s", out);
    ee_free(out);
}

static uint64_t outbox_run(void)
{
    uint64_t sent = 0;
    cr_assert_eq(ee_email_outbox_run(engine, 100, &sent), EE_OK, "%s", ee_error_last_message());
    return sent;
}

Test(email_smtp, the_message_arrives_with_the_rendered_subject_and_body_and_marks_the_run)
{
    put_template("wf0", "Results of {{workflowName}}: {{results.echo}}",
                 "<p>Echo: {{results.echo}}</p><p>{{execution.status}}</p>");
    char id[25];
    run_to_end(engine, alice, "wf0", "{\"parameters\": {\"text\": \"hello world\"}}", id);
    send_ok(alice, id, "bob@example.com");
    json_t *x = exec_doc(engine, alice, id);
    cr_expect(json_is_false(json_object_get(x, "emailSent")), "not sent before the server took it");
    json_decref(x);
    cr_expect_eq(stat_of(engine, "queued"), 1);
    cr_assert_eq(outbox_run(), 1u, "%s", ee_error_last_message());
    cr_assert_eq(sink_count(&sink), 1);
    char *msg = sink_message(&sink, 1);
    cr_expect(strstr(msg, "X-Envelope-To: bob@example.com") != NULL, "%s", msg);
    cr_expect(strstr(msg, "X-Envelope-From: results@example.com") != NULL, "%s", msg);
    cr_expect(strstr(msg, "Subject: Results of echo: hello world\r\n") != NULL, "%s", msg);
    cr_expect(strstr(msg, "Content-Type: text/html; charset=utf-8") != NULL, "%s", msg);
    cr_expect(strstr(msg, "Message-ID: <") != NULL && strstr(msg, "Date: ") != NULL, "%s", msg);
    char *body = mime_body(msg);
    cr_expect(strstr(body, "<p>Echo: hello world</p><p>completed</p>") != NULL, "%s", body);
    free(body);
    free(msg);
    x = exec_doc(engine, alice, id);
    cr_expect(json_is_true(json_object_get(x, "emailSent")));
    cr_expect(json_object_get(x, "emailSentAt") != NULL);
    json_decref(x);
    cr_expect_eq(stat_of(engine, "sent"), 1);
    cr_expect_eq(stat_of(engine, "queued"), 0);
    cr_expect_eq(audit_count(engine, alice, "email.sent"), 1);
    cr_expect_eq(audit_count(engine, alice, "email.failed"), 0);
    cr_expect_eq(outbox_run(), 0u, "nothing is sent twice");
    cr_expect_eq(sink_count(&sink), 1);
}

Test(email_smtp, a_non_ascii_subject_is_encoded_and_the_default_template_is_used_without_one)
{
    char id[25];
    run_to_end(engine, alice, "wf0", "{\"parameters\": {\"text\": \"h\\u00e9llo <b>\"}}", id);
    send_ok(alice, id, "bob@example.com");
    cr_assert_eq(outbox_run(), 1u);
    char *msg = sink_message(&sink, 1);
    /* the default subject: workflow name and status, plain ASCII here */
    cr_expect(strstr(msg, "Subject: echo: completed\r\n") != NULL, "%s", msg);
    char *body = mime_body(msg);
    cr_expect(strstr(body, "<h1>echo</h1>") != NULL, "%s", body);
    cr_expect(strstr(body, "h\xc3\xa9llo &lt;b&gt;") != NULL, "results, escaped: %s", body);
    free(body);
    free(msg);
    put_template("wf0", "R\xc3\xa9sultat {{results.echo}}", "<p>x</p>");
    send_ok(alice, id, "bob@example.com");
    cr_assert_eq(outbox_run(), 1u);
    msg = sink_message(&sink, 2);
    cr_expect(strstr(msg, "Subject: =?UTF-8?B?") != NULL, "RFC 2047: %s", msg);
    free(msg);
    /* a rendered subject past 900 bytes is refused (a header line may not
     * pass 998 characters); one of 900 is sent on one line */
    char subject[1300];
    memset(subject, 'a', sizeof subject - 1);
    subject[sizeof subject - 1] = '\0';
    put_template("wf0", subject, "<p>x</p>");
    char *out = NULL;
    char req[64];
    snprintf(req, sizeof req, "{\"to\": \"bob@example.com\"}");
    cr_expect_eq(send(alice, id, req, &out), EE_ETOOBIG, "%s", out ? out : "");
    ee_free(out);
    subject[900] = '\0';
    put_template("wf0", subject, "<p>x</p>");
    send_ok(alice, id, "bob@example.com");
    cr_assert_eq(outbox_run(), 1u);
    msg = sink_message(&sink, 3);
    size_t line = 0, longest = 0;
    for (const char *c = msg; *c != '\0'; c++) {
        line = *c == '\n' ? 0 : line + 1;
        longest = line > longest ? line : longest;
    }
    cr_expect(longest <= 998, "a header line of %zu characters", longest);
    free(msg);
}

Test(email_smtp, with_the_server_down_the_outbox_retries_and_delivers_once_when_it_is_back)
{
    int port = sink.port;
    sink_stop(&sink);
    char id[25];
    run_to_end(engine, alice, "wf0", "{\"parameters\": {\"text\": \"later\"}}", id);
    send_ok(alice, id, "bob@example.com");
    cr_expect_eq(outbox_run(), 0u, "the server is down");
    cr_expect_eq(stat_of(engine, "queued"), 1, "queued again for a later attempt");
    cr_expect_eq(outbox_run(), 0u);
    json_t *x = exec_doc(engine, alice, id);
    cr_expect(json_is_false(json_object_get(x, "emailSent")));
    json_decref(x);
    /* not due before its backoff: the server back, nothing is tried yet */
    sink_start(&sink, port);
    cr_expect_eq(outbox_run(), 0u, "the backoff is not over");
    clock_offset_ms += 3600 * 1000;
    cr_expect_eq(outbox_run(), 1u, "%s", ee_error_last_message());
    cr_expect_eq(outbox_run(), 0u);
    clock_offset_ms += 24 * 3600 * 1000;
    cr_expect_eq(outbox_run(), 0u);
    cr_expect_eq(sink_count(&sink), 1, "delivered once");
    x = exec_doc(engine, alice, id);
    cr_expect(json_is_true(json_object_get(x, "emailSent")));
    json_decref(x);
    cr_expect_eq(audit_count(engine, alice, "email.sent"), 1);
}

typedef struct {
    ee_engine *e;
    uint64_t sent;
} runner_arg;

static void *runner(void *arg)
{
    runner_arg *a = arg;
    for (int i = 0; i < 20; i++) {
        uint64_t n = 0;
        if (ee_email_outbox_run(a->e, 3, &n) == EE_OK)
            a->sent += n;
    }
    return NULL;
}

Test(email_smtp, two_engines_running_the_outbox_at_once_never_send_a_message_twice)
{
    /* a second engine on the same database: another process's view */
    char port[16];
    snprintf(port, sizeof port, "%d", sink.port);
    const char *const kv[] = {"SMTP_HOST", "127.0.0.1", "SMTP_PORT", port, NULL};
    ee_engine *other = email_engine(db, kv);
    char id[25];
    run_to_end(engine, alice, "wf0", "{\"parameters\": {\"text\": \"many\"}}", id);
    const char *users[] = {"u1", "u2", "u3"};
    for (int u = 0; u < 3; u++) {
        ee_principal *p = NULL;
        cr_assert_eq(ee_principal_new(&p, "ws-alice", users[u], "org-a"), EE_OK);
        for (int i = 0; i < 4; i++)
            send_ok(p, id, "bob@example.com");
        ee_principal_free(p);
    }
    runner_arg a[4] = {{engine, 0}, {other, 0}, {engine, 0}, {other, 0}};
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, runner, &a[i]);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    cr_expect_eq(a[0].sent + a[1].sent + a[2].sent + a[3].sent, 12u);
    cr_expect_eq(sink_count(&sink), 12, "each message once");
    cr_expect_eq(stat_of(engine, "sent"), 12);
    cr_expect_eq(audit_count(engine, alice, "email.sent"), 12);
    ee_engine_close(other);
}

Test(email_smtp, a_run_started_with_email_to_queues_its_e_mail_once_when_it_ends)
{
    char id[25];
    run_to_end(engine, alice, "wf0",
               "{\"parameters\": {\"text\": \"auto\"}, \"email\": {\"to\": \"carol@example.com\"}}",
               id);
    cr_expect_eq(stat_of(engine, "queued"), 1, "queued with the run's end, once");
    cr_assert_eq(outbox_run(), 1u);
    char *msg = sink_message(&sink, 1);
    cr_expect(strstr(msg, "X-Envelope-To: carol@example.com") != NULL, "%s", msg);
    free(msg);
    json_t *x = exec_doc(engine, alice, id);
    cr_expect(json_is_true(json_object_get(x, "emailSent")));
    json_decref(x);
    /* the run's own address is the default of a later send */
    char *out = NULL;
    cr_assert_eq(send(alice, id, NULL, &out), EE_OK, "%s", out);
    json_t *doc = parse_doc(out);
    cr_expect_str_eq(sget(doc, "to"), "carol@example.com");
    json_decref(doc);
    ee_free(out);
    /* a run without emailTo queues nothing */
    run_to_end(engine, alice, "wf0", "{\"parameters\": {\"text\": \"quiet\"}}", id);
    cr_expect_eq(stat_of(engine, "queued"), 1);
    /* analytics: one e-mail requested, one accepted */
    char q[128];
    snprintf(q, sizeof q, "{\"from\": %lld, \"to\": %lld}",
             (long long)test_clock(NULL) - 86400000, (long long)test_clock(NULL) + 1000);
    cr_assert_eq(ee_billing_analytics(engine, alice, q, &out), EE_OK, "%s", out);
    doc = parse_doc(out);
    ee_free(out);
    json_t *em = json_object_get(doc, "email");
    cr_expect_eq(json_integer_value(json_object_get(em, "requested")), 1, "%s",
                 json_dumps(em, 0));
    cr_expect_eq(json_integer_value(json_object_get(em, "sent")), 1);
    json_decref(doc);
}

Test(email_smtp, template_injection_is_escaped_in_the_body_and_refused_in_the_subject)
{
    const char *evil = "{{secret}} <script>x</script>\\r\\nBcc: evil@example.com";
    char req[256], id[25];
    snprintf(req, sizeof req, "{\"parameters\": {\"text\": \"%s\"}}", evil);
    run_to_end(engine, alice, "wf0", req, id);
    put_template("wf0", "Fixed subject", "<div>{{results.echo}}</div>");
    send_ok(alice, id, "bob@example.com");
    cr_assert_eq(outbox_run(), 1u);
    char *msg = sink_message(&sink, 1);
    char *head_end = strstr(msg, "\r\n\r\n");
    cr_assert_not_null(head_end);
    *head_end = '\0';
    cr_expect(strstr(msg, "Bcc") == NULL && strstr(msg, "evil") == NULL, "headers: %s", msg);
    *head_end = '\r';
    char *body = mime_body(msg);
    cr_expect(strstr(body, "{{secret}} &lt;script&gt;x&lt;/script&gt;") != NULL,
              "a value is printed, escaped, never parsed: %s", body);
    free(body);
    free(msg);
    /* the same value in the subject: refused, and the message does not quote it */
    put_template("wf0", "Run {{{results.echo}}}", "<p>x</p>");
    char *out = NULL;
    cr_expect_eq(send(alice, id, "{\"to\": \"bob@example.com\"}", &out), EE_EINVAL);
    cr_expect(strstr(out, "evil") == NULL && strstr(out, "subject") != NULL, "%s", out);
    ee_free(out);
    /* a run that asked for the e-mail still ends; nothing is queued */
    snprintf(req, sizeof req,
             "{\"parameters\": {\"text\": \"%s\"}, \"email\": {\"to\": \"bob@example.com\"}}",
             evil);
    run_to_end(engine, alice, "wf0", req, id);
    cr_expect_eq(stat_of(engine, "queued"), 0);
    cr_expect_eq(outbox_run(), 0u);
    cr_expect_eq(sink_count(&sink), 1);
    /* CR/LF in an address: refused */
    cr_expect_eq(send(alice, id, "{\"to\": \"bob@example.com\\r\\nBcc: x@y.z\"}", &out),
                 EE_EINVAL);
    ee_free(out);
}

Test(email_smtp, the_per_user_hourly_limit_refuses_with_retry_after_and_survives_a_restart)
{
    char id[25];
    run_to_end(engine, alice, "wf0", "{\"parameters\": {\"text\": \"x\"}}", id);
    for (int i = 0; i < 3; i++)
        send_ok(alice, id, "bob@example.com");
    /* a restart does not reset it: the counters are in the database */
    ee_engine_close(engine);
    open_engine();
    for (int i = 0; i < 2; i++)
        send_ok(alice, id, "bob@example.com");
    char *out = NULL;
    cr_expect_eq(send(alice, id, "{\"to\": \"bob@example.com\"}", &out), EE_ERATELIMIT);
    json_t *doc = parse_doc(out);
    json_t *after = json_object_get(json_object_get(json_object_get(doc, "error"), "detail"),
                                    "retryAfterMs");
    cr_expect(json_integer_value(after) > 0, "%s", out);
    json_decref(doc);
    ee_free(out);
    /* another user of the workspace has their own */
    ee_principal *bob = NULL;
    cr_assert_eq(ee_principal_new(&bob, "ws-alice", "u2", "org-a"), EE_OK);
    send_ok(bob, id, "bob@example.com");
    ee_principal_free(bob);
    clock_offset_ms += 3600 * 1000 + 1000;
    send_ok(alice, id, "bob@example.com");
    cr_expect_eq(stat_of(engine, "queued"), 7);
}

Test(email_smtp, templates_are_admin_only_compiled_on_put_listed_and_deleted)
{
    char wf[25], *out = NULL;
    entry_id(engine, "wf0", wf);
    char t[512];
    snprintf(t, sizeof t,
             "{\"workflowCatalogId\": \"%s\", \"subjectTemplate\": \"S\", \"bodyTemplate\": \"B\"}",
             wf);
    cr_expect_eq(ee_email_template_put(engine, alice, t, &out), EE_EPERM);
    ee_free(out);
    cr_expect_eq(ee_email_template_get(engine, alice, wf, &out), EE_EPERM);
    ee_free(out);
    cr_expect_eq(ee_email_template_list(engine, alice, NULL, &out), EE_EPERM);
    ee_free(out);
    cr_expect_eq(ee_email_template_delete(engine, alice, wf), EE_EPERM);
    cr_expect_eq(ee_email_template_get(engine, NULL, wf, &out), EE_ENOTFOUND);
    ee_free(out);
    snprintf(t, sizeof t,
             "{\"workflowCatalogId\": \"%s\", \"subjectTemplate\": \"S\", \"bodyTemplate\": "
             "\"<p>{{#if x}}open</p>\"}",
             wf);
    cr_expect_eq(ee_email_template_put(engine, NULL, t, &out), EE_EPARSE);
    cr_expect(strstr(out, "bodyTemplate") != NULL && strstr(out, "byte 3") != NULL, "%s", out);
    ee_free(out);
    cr_expect_eq(ee_email_template_put(engine, NULL,
                                       "{\"workflowCatalogId\": \"0123456789abcdef01234567\", "
                                       "\"subjectTemplate\": \"S\", \"bodyTemplate\": \"B\"}",
                                       &out),
                 EE_ENOTFOUND);
    ee_free(out);
    put_template("wf0", "S1", "B1");
    put_template("wf0", "S2", "B2");
    cr_assert_eq(ee_email_template_get(engine, NULL, wf, &out), EE_OK, "%s", out);
    json_t *doc = parse_doc(out);
    cr_expect_str_eq(sget(doc, "subjectTemplate"), "S2", "a second put replaces the first");
    json_decref(doc);
    ee_free(out);
    cr_assert_eq(ee_email_template_list(engine, NULL, "{\"limit\": 10}", &out), EE_OK, "%s", out);
    doc = parse_doc(out);
    cr_expect_eq(json_array_size(json_object_get(doc, "data")), 1);
    json_decref(doc);
    ee_free(out);
    cr_expect_eq(ee_email_template_delete(engine, NULL, wf), EE_OK);
    cr_expect_eq(ee_email_template_delete(engine, NULL, wf), EE_ENOTFOUND);
}

Test(email_smtp, another_workspaces_execution_is_not_found_and_a_running_one_is_refused)
{
    char id[25], *out = NULL;
    run_to_end(engine, alice, "wf0", "{\"parameters\": {\"text\": \"mine\"}}", id);
    cr_expect_eq(send(mallory, id, "{\"to\": \"m@example.com\"}", &out), EE_ENOTFOUND);
    ee_free(out);
    char wf[25];
    entry_id(engine, "wfA", wf);
    char rid[25];
    cr_assert_eq(ee_exec_submit(engine, alice, wf, "{}", NULL, NULL, rid), EE_OK, "%s",
                 ee_error_last_message());
    cr_expect_eq(send(alice, rid, "{\"to\": \"a@example.com\"}", &out), EE_ESTATE, "%s", out);
    ee_free(out);
    cr_expect_eq(send(alice, id, NULL, &out), EE_EINVAL, "no address: %s", out);
    ee_free(out);
    cr_expect_eq(stat_of(engine, "queued"), 0);
}

/* The password is really used (a login the server accepts, over TLS), and
 * a failed attempt before it too: no copy of it in the storage, the log,
 * an error or the audit log. */
Test(email_smtp, no_secret_reaches_the_outbox_the_audit_log_the_log_or_an_error)
{
    login_sink(true);
    char id[25], *out = NULL;
    run_to_end(engine, alice, "wf0",
               "{\"parameters\": {\"text\": \"c\"}, \"email\": {\"to\": \"carol@example.com\"}}", id);
    int port = sink.port;
    sink_stop(&sink);
    cr_expect_eq(outbox_run(), 0u);
    sink_start(&sink, port);
    clock_offset_ms += 3600 * 1000;
    cr_expect_eq(outbox_run(), 1u, "%s", ee_error_last_message());
    char *auth = sink_auth_log(&sink);
    cr_expect_str_eq(auth, "AUTH PLAIN mailer tls=1 ok=1\n", "the password was sent, over TLS");
    free(auth);
    cr_expect(!log_holds(PASS_CANARY), "no log line holds the password");
    cr_expect(log_holds("attempt 1 failed"), "the scan reads the log (the failure is there)");
    cr_expect(strstr(ee_error_last_message(), PASS_CANARY) == NULL);
    cr_expect_eq(send(alice, id, "{\"to\": \"bad\"}", &out), EE_EINVAL);
    cr_expect(strstr(out, PASS_CANARY) == NULL);
    ee_free(out);
    cr_assert_eq(ee_audit_query(engine, alice, "{\"limit\": 500}", &out), EE_OK);
    cr_expect(strstr(out, PASS_CANARY) == NULL);
    cr_expect(strstr(out, "email.sent") != NULL, "%s", out);
    ee_free(out);
    ee_engine_close(engine);
    engine = NULL;
    char wal[160];
    snprintf(wal, sizeof wal, "%s-wal", db);
    cr_expect(!file_holds(db, PASS_CANARY) && !file_holds(wal, PASS_CANARY),
              "the database holds no SMTP password");
    cr_expect(file_holds(db, "carol@example.com") || file_holds(wal, "carol@example.com"),
              "the scan reads the database (the address is there)");
    open_engine();
}

/* With SMTP_USER the login goes over STARTTLS to a server whose certificate
 * the transport trusts (its ca_file): the message arrives. */
Test(email_smtp, with_smtp_user_the_login_and_message_go_over_starttls)
{
    login_sink(true);
    char id[25];
    run_to_end(engine, alice, "wf0", "{\"parameters\": {\"text\": \"tls\"}}", id);
    send_ok(alice, id, "bob@example.com");
    cr_assert_eq(outbox_run(), 1u, "%s", ee_error_last_message());
    cr_expect_eq(sink_count(&sink), 1);
    char *auth = sink_auth_log(&sink);
    cr_expect_str_eq(auth, "AUTH PLAIN mailer tls=1 ok=1\n");
    free(auth);
    json_t *x = exec_doc(engine, alice, id);
    cr_expect(json_is_true(json_object_get(x, "emailSent")));
    json_decref(x);
}

/* With SMTP_USER and a server that offers no STARTTLS (but would take the
 * login in clear): nothing is sent - no AUTH, no message -, the attempt is
 * retried like any transient failure and its error says why without the
 * password. SMTP_REQUIRE_TLS=0 is the way to such a (trusted) relay. */
Test(email_smtp, with_smtp_user_and_no_starttls_nothing_is_sent_and_the_attempt_is_retried)
{
    login_sink(false);
    char id[25];
    run_to_end(engine, alice, "wf0", "{\"parameters\": {\"text\": \"clear\"}}", id);
    send_ok(alice, id, "bob@example.com");
    cr_expect_eq(outbox_run(), 0u);
    cr_expect_eq(sink_count(&sink), 0, "no message without TLS");
    char *auth = sink_auth_log(&sink);
    cr_expect_str_eq(auth, "", "no AUTH reached the server: the password never went in clear");
    free(auth);
    cr_expect_eq(stat_of(engine, "queued"), 1, "retried later");
    cr_expect_eq(stat_of(engine, "failed"), 0);
    cr_expect(log_holds("did not offer STARTTLS and the message requires TLS"),
              "the reason is logged");
    cr_expect(!log_holds(PASS_CANARY));
    /* still none after the backoff */
    clock_offset_ms += 3600 * 1000;
    cr_expect_eq(outbox_run(), 0u);
    cr_expect_eq(sink_count(&sink), 0);
    ee_engine_close(engine);
    engine = NULL;
    char wal[160];
    snprintf(wal, sizeof wal, "%s-wal", db);
    cr_expect(file_holds(db, "did not offer STARTTLS") || file_holds(wal, "did not offer STARTTLS"),
              "the outbox's lastError says why");
    cr_expect(!file_holds(db, PASS_CANARY) && !file_holds(wal, PASS_CANARY));
    /* the operator's explicit choice: SMTP_REQUIRE_TLS=0 */
    open_engine_login("SMTP_REQUIRE_TLS", "0");
    clock_offset_ms += 3600 * 1000;
    cr_expect_eq(outbox_run(), 1u, "%s", ee_error_last_message());
    auth = sink_auth_log(&sink);
    cr_expect_str_eq(auth, "AUTH PLAIN mailer tls=0 ok=1\n");
    free(auth);
}

/* SMTP_REQUIRE_TLS=1 without a login: a server without STARTTLS gets
 * nothing; the default without SMTP_USER stays STARTTLS-when-offered (the
 * other tests send in clear to the plain sink). */
Test(email_smtp, smtp_require_tls_1_sends_nothing_to_a_server_without_starttls)
{
    ee_engine_close(engine);
    engine = NULL;
    char port[16];
    snprintf(port, sizeof port, "%d", sink.port);
    const char *const kv[] = {"SMTP_HOST", "127.0.0.1", "SMTP_PORT", port, "SMTP_REQUIRE_TLS",
                              "1", NULL};
    engine = email_engine(db, kv);
    char id[25];
    run_to_end(engine, alice, "wf0", "{\"parameters\": {\"text\": \"x\"}}", id);
    send_ok(alice, id, "bob@example.com");
    cr_expect_eq(outbox_run(), 0u);
    cr_expect_eq(sink_count(&sink), 0);
    cr_expect_eq(stat_of(engine, "queued"), 1);
}

static void send_again_after_the_lease(void)
{
    mail_hook = NULL;
    /* the first sender is slow to record it: its lease ends and another
     * sender (this nested run) takes the message and sends it again */
    clock_offset_ms += 600 * 1000;
    uint64_t n = 0;
    cr_expect_eq(ee_email_outbox_run(engine, 1, &n), EE_OK, "%s", ee_error_last_message());
    cr_expect_eq(n, 1u);
}

static char *header_line(const char *msg, const char *name)
{
    const char *at = strstr(msg, name);
    cr_assert_not_null(at, "no %s in %s", name, msg);
    return strndup(at, strcspn(at, "\r\n"));
}

/* At least once: a message the server accepted but whose sender could not
 * record it (its lease ended: EE_ECONFLICT) is sent again by another
 * sender - with the same Message-ID, derived from the outbox id, so the
 * receiver can drop the copy. */
Test(email_smtp, a_message_sent_again_after_its_lease_ended_keeps_its_message_id)
{
    char id[25], *out = NULL;
    run_to_end(engine, alice, "wf0", "{\"parameters\": {\"text\": \"twice\"}}", id);
    cr_assert_eq(send(alice, id, "{\"to\": \"bob@example.com\"}", &out), EE_OK, "%s", out);
    json_t *doc = parse_doc(out);
    ee_free(out);
    char mid[96];
    snprintf(mid, sizeof mid, "Message-ID: <%s@example.com>", sget(doc, "id"));
    json_decref(doc);
    mail_hook = send_again_after_the_lease;
    uint64_t sent = 0;
    cr_expect_eq(ee_email_outbox_run(engine, 1, &sent), EE_ECONFLICT,
                 "the first sender cannot record it: %s", ee_error_last_message());
    cr_assert_eq(sink_count(&sink), 2, "the server got it twice");
    char *a = sink_message(&sink, 1), *b = sink_message(&sink, 2);
    char *ha = header_line(a, "Message-ID:"), *hb = header_line(b, "Message-ID:");
    cr_expect_str_eq(ha, hb, "one Message-ID for both copies");
    cr_expect_str_eq(ha, mid, "the outbox id at the sender's domain");
    free(ha);
    free(hb);
    free(a);
    free(b);
    cr_expect_eq(stat_of(engine, "sent"), 1, "recorded once");
    cr_expect_eq(audit_count(engine, alice, "email.sent"), 1);
}

typedef struct {
    ee_engine *e;
    const char *text;
    pthread_barrier_t *start;
    ee_status st;
} put_racer;

static void *race_put(void *arg)
{
    put_racer *r = arg;
    char *out = NULL;
    pthread_barrier_wait(r->start);
    r->st = ee_email_template_put(r->e, NULL, r->text, &out);
    ee_free(out);
    return NULL;
}

/* executionEmailTemplates has no unique key: concurrent first puts of one
 * workflow's template, from two engines on the database, store one. */
Test(email_smtp, concurrent_first_puts_of_a_workflows_template_store_one)
{
    char port[16];
    snprintf(port, sizeof port, "%d", sink.port);
    const char *const kv[] = {"SMTP_HOST", "127.0.0.1", "SMTP_PORT", port, NULL};
    ee_engine *other = email_engine(db, kv);
    char wf[25], text[256];
    entry_id(engine, "wf0", wf);
    snprintf(text, sizeof text,
             "{\"workflowCatalogId\": \"%s\", \"subjectTemplate\": \"S\", \"bodyTemplate\": "
             "\"B\"}",
             wf);
    enum { RACERS = 6, ROUNDS = 10 };
    for (int round = 0; round < ROUNDS; round++) {
        ee_status d = ee_email_template_delete(engine, NULL, wf);
        cr_assert(d == EE_OK || d == EE_ENOTFOUND, "%s", ee_error_last_message());
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, RACERS);
        put_racer r[RACERS];
        pthread_t t[RACERS];
        for (int i = 0; i < RACERS; i++) {
            r[i] = (put_racer){i % 2 ? other : engine, text, &start, EE_EUNKNOWN};
            pthread_create(&t[i], NULL, race_put, &r[i]);
        }
        for (int i = 0; i < RACERS; i++) {
            pthread_join(t[i], NULL);
            cr_expect_eq(r[i].st, EE_OK, "round %d put %d: %s", round, i,
                         ee_status_name(r[i].st));
        }
        pthread_barrier_destroy(&start);
        char *out = NULL;
        cr_assert_eq(ee_email_template_list(engine, NULL, "{\"limit\": 100}", &out), EE_OK);
        json_t *doc = parse_doc(out);
        ee_free(out);
        cr_assert_eq(json_array_size(json_object_get(doc, "data")), 1,
                     "round %d: one template for the workflow", round);
        json_decref(doc);
    }
    ee_engine_close(other);
}

/* An automatic e-mail that is not queued - past the user's hourly limit, or
 * a subject that renders refused - leaves one email.failed entry with the
 * reason and no address, as well as the log line. */
Test(email_smtp, a_dropped_automatic_e_mail_leaves_an_email_failed_audit_entry)
{
    char id[25];
    put_template("wf0", "Run {{{results.echo}}}", "<p>x</p>");
    run_to_end(engine, alice, "wf0",
               "{\"parameters\": {\"text\": \"a\\r\\nb\"}, \"email\": {\"to\": "
               "\"carol@example.com\"}}",
               id);
    cr_expect_eq(stat_of(engine, "queued"), 0);
    cr_expect_eq(audit_count(engine, alice, "email.failed"), 1, "the refused subject");
    put_template("wf0", "Fixed", "<p>x</p>");
    for (int i = 0; i < 5; i++)
        send_ok(alice, id, "bob@example.com");
    char id2[25];
    run_to_end(engine, alice, "wf0",
               "{\"parameters\": {\"text\": \"b\"}, \"email\": {\"to\": "
               "\"carol@example.com\"}}",
               id2);
    cr_expect_eq(stat_of(engine, "queued"), 5, "the sixth is past the limit: not queued");
    cr_expect_eq(audit_count(engine, alice, "email.failed"), 2);
    char *out = NULL;
    cr_assert_eq(ee_audit_query(engine, alice, "{\"action\": \"email.failed\", \"limit\": 10}",
                                &out),
                 EE_OK);
    json_t *doc = parse_doc(out);
    ee_free(out);
    json_t *data = json_object_get(doc, "data");
    json_t *limit = json_array_get(data, 0), *subject = json_array_get(data, 1);
    cr_expect_str_eq(sget(json_object_get(limit, "detail"), "reason"), "rateLimited");
    cr_expect_str_eq(sget(json_object_get(limit, "detail"), "executionId"), id2);
    cr_expect_str_eq(sget(limit, "status"), "EE_ERATELIMIT");
    cr_expect_str_eq(sget(limit, "outcome"), "refused");
    cr_expect_str_eq(sget(json_object_get(subject, "detail"), "reason"), "notRendered");
    cr_expect_str_eq(sget(json_object_get(subject, "detail"), "executionId"), id);
    char *text = json_dumps(data, 0);
    cr_expect(strstr(text, "carol") == NULL, "no address: %s", text);
    free(text);
    json_decref(doc);
}

Test(email_smtp, the_outbox_thread_started_with_the_workers_delivers_without_a_call)
{
    ee_engine_close(engine);
    char port[16];
    snprintf(port, sizeof port, "%d", sink.port);
    const char *const kv[] = {"SMTP_HOST", "127.0.0.1", "SMTP_PORT", port, "EMAIL_POLL_MS", "50",
                              NULL};
    engine = email_engine(db, kv);
    char id[25];
    run_to_end(engine, alice, "wf0",
               "{\"parameters\": {\"text\": \"bg\"}, \"email\": {\"to\": \"dan@example.com\"}}", id);
    /* bounded wait for the thread (no timing assertion: up to 30 s) */
    for (int i = 0; i < 600 && sink_count(&sink) == 0; i++)
        usleep(50 * 1000);
    cr_assert_eq(sink_count(&sink), 1, "the outbox thread sent it");
    for (int i = 0; i < 600; i++) {
        json_t *x = exec_doc(engine, alice, id);
        bool sent = json_is_true(json_object_get(x, "emailSent"));
        json_decref(x);
        if (sent)
            break;
        usleep(50 * 1000);
    }
    json_t *x = exec_doc(engine, alice, id);
    cr_expect(json_is_true(json_object_get(x, "emailSent")));
    json_decref(x);
}

/* The server's reply decides: a 5yz refusal of the recipient fails the
 * message at once (one attempt, one email.failed entry, the reply code in
 * lastError); a 4yz one is retried after the backoff. */
Test(email_smtp, a_permanent_smtp_refusal_fails_at_once_and_a_temporary_one_is_retried)
{
    char gone[25], busy[25];
    run_to_end(engine, alice, "wf0", "{\"parameters\": {\"text\": \"gone\"}}", gone);
    run_to_end(engine, alice, "wf0", "{\"parameters\": {\"text\": \"busy\"}}", busy);
    send_ok(alice, gone, "reject-bob@example.com");
    send_ok(alice, busy, "busy-carol@example.com");
    cr_expect_eq(outbox_run(), 0u);
    cr_expect_eq(sink_count(&sink), 0);
    cr_expect_eq(stat_of(engine, "failed"), 1, "the 550 is final");
    cr_expect_eq(stat_of(engine, "queued"), 1, "the 450 waits for its next attempt");
    cr_expect_eq(audit_count(engine, alice, "email.failed"), 1);
    /* the 450 is tried again after its backoff, and refused again */
    clock_offset_ms += 3600 * 1000;
    cr_expect_eq(outbox_run(), 0u);
    cr_expect_eq(stat_of(engine, "queued"), 1);
    cr_expect_eq(stat_of(engine, "failed"), 1);
    json_t *x = exec_doc(engine, alice, gone);
    cr_expect(json_is_false(json_object_get(x, "emailSent")));
    json_decref(x);
}
