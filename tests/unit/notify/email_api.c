/*
 * E-mailed results through a Resend-style HTTP API (a fake at
 * http://fake.resend in the test's transport): the request (Authorization,
 * Idempotency-Key, JSON body), 5xx and 429 retried, other 4xx failed for
 * good with one email.failed audit entry, a refused key (401, 403) retried,
 * the attempts bounded, ended messages purged with the results, SMTP
 * chosen over the API when both are configured, nothing configured
 * refused, and the key never stored, audited or in an error.
 */
#include "email_fixture.h"

#include "execengine/billing.h"

#define KEY_CANARY "re_key_canary_88412"

static ee_engine *engine;
static ee_principal *alice;
static char dir[64], db[128];

static void setup(void)
{
    fixture_setup();
    ee_test_temp_dir("/tmp/ee-email-api-XXXXXX", dir, sizeof dir);
    snprintf(db, sizeof db, "%s/ee.db", dir);
    const char *const kv[] = {"PLATFORM_RESEND_KEY", KEY_CANARY, "EMAIL_API_URL",
                              "http://fake.resend/", "EMAIL_MAX_ATTEMPTS", "3", NULL};
    engine = email_engine(db, kv);
    cr_assert_eq(ee_principal_new(&alice, "ws-alice", "u1", "org-a"), EE_OK);
}

static void teardown(void)
{
    ee_engine_close(engine);
    ee_principal_free(alice);
    fixture_teardown();
    ee_test_temp_dir_remove(dir);
}

TestSuite(email_api, .init = setup, .fini = teardown, .timeout = 60);

static void answers(const int *codes, int n)
{
    pthread_mutex_lock(&fake_api.lock);
    for (int i = 0; i < n; i++)
        fake_api.codes[i] = codes[i];
    fake_api.ncodes = n;
    fake_api.next = 0;
    pthread_mutex_unlock(&fake_api.lock);
}

static size_t api_requests(void)
{
    pthread_mutex_lock(&fake_api.lock);
    size_t n = json_array_size(fake_api.requests);
    pthread_mutex_unlock(&fake_api.lock);
    return n;
}

static uint64_t outbox_run(void)
{
    uint64_t sent = 0;
    cr_assert_eq(ee_email_outbox_run(engine, 100, &sent), EE_OK, "%s", ee_error_last_message());
    return sent;
}

static void queue_one(char id[25])
{
    run_to_end(engine, alice, "wf0", "{\"parameters\": {\"text\": \"api\"}}", id);
    char *out = NULL;
    cr_assert_eq(ee_email_send_execution(engine, alice, id, "{\"to\": \"bob@example.com\"}", &out),
                 EE_OK, "%s", out);
    ee_free(out);
}

Test(email_api, the_request_carries_the_key_the_idempotency_key_and_the_message_as_json)
{
    char id[25];
    queue_one(id);
    cr_assert_eq(outbox_run(), 1u);
    cr_assert_eq(api_requests(), 1u);
    json_t *r = json_array_get(fake_api.requests, 0);
    cr_expect_str_eq(sget(r, "url"), "http://fake.resend/emails");
    cr_expect_str_eq(sget(r, "auth"), "Bearer " KEY_CANARY);
    cr_expect(sget(r, "idem") != NULL && strlen(sget(r, "idem")) == 24);
    json_t *body = parse_doc(sget(r, "body"));
    cr_expect_str_eq(sget(body, "from"), "results@example.com");
    cr_expect_str_eq(json_string_value(json_array_get(json_object_get(body, "to"), 0)),
                     "bob@example.com");
    cr_expect_str_eq(sget(body, "subject"), "echo: completed");
    cr_expect(strstr(sget(body, "html"), "<h1>echo</h1>") != NULL, "%s", sget(body, "html"));
    json_decref(body);
    json_t *x = exec_doc(engine, alice, id);
    cr_expect(json_is_true(json_object_get(x, "emailSent")));
    json_decref(x);
    cr_expect_eq(audit_count(engine, alice, "email.sent"), 1);
}

/* A run counts as requested when an e-mail was asked for at its start
 * (email.to) or queued later (ee_email_send_execution()), and as sent only
 * then: on-demand sends of runs started without one cannot push the
 * delivery rate past 1. */
Test(email_api, on_demand_sends_count_as_requested_so_the_delivery_rate_stays_at_most_one)
{
    int codes[] = {422};
    answers(codes, 1);
    /* a run started with an e-mail, refused for good */
    char a[25], b[25], c[25];
    run_to_end(engine, alice, "wf0",
               "{\"parameters\": {\"text\": \"a\"}, \"email\": {\"to\": \"carol@example.com\"}}",
               a);
    cr_assert_eq(outbox_run(), 0u);
    cr_assert_eq(stat_of(engine, "failed"), 1);
    /* two runs started without, sent on demand; one of them twice */
    queue_one(b);
    queue_one(c);
    cr_assert_eq(outbox_run(), 2u);
    char *out = NULL;
    cr_assert_eq(ee_email_send_execution(engine, alice, c, "{\"to\": \"dan@example.com\"}", &out),
                 EE_OK, "%s", out);
    ee_free(out);
    cr_assert_eq(outbox_run(), 1u);
    /* and a run nobody asked an e-mail for */
    char d[25];
    run_to_end(engine, alice, "wf0", "{\"parameters\": {\"text\": \"d\"}}", d);
    char q[128];
    snprintf(q, sizeof q, "{\"from\": %lld, \"to\": %lld}",
             (long long)test_clock(NULL) - 86400000, (long long)test_clock(NULL) + 1000);
    out = NULL;
    cr_assert_eq(ee_billing_analytics(engine, alice, q, &out), EE_OK, "%s", out);
    json_t *doc = parse_doc(out);
    ee_free(out);
    json_t *em = json_object_get(doc, "email");
    char *text = json_dumps(em, JSON_COMPACT);
    cr_expect_eq(json_integer_value(json_object_get(em, "requested")), 3, "%s", text);
    cr_expect_eq(json_integer_value(json_object_get(em, "sent")), 2, "%s", text);
    cr_expect_str_eq(json_string_value(json_object_get(em, "deliveryRate")), "0.6667", "%s", text);
    free(text);
    json_decref(doc);
}

Test(email_api, a_5xx_and_a_429_are_retried_after_the_backoff_then_it_is_sent)
{
    int codes[] = {500, 429};
    answers(codes, 2);
    char id[25];
    queue_one(id);
    cr_expect_eq(outbox_run(), 0u);
    cr_expect_eq(outbox_run(), 0u, "not due before its backoff");
    cr_expect_eq(api_requests(), 1u);
    json_t *x = exec_doc(engine, alice, id);
    cr_expect(json_is_false(json_object_get(x, "emailSent")), "not accepted yet");
    json_decref(x);
    clock_offset_ms += 3600 * 1000;
    cr_expect_eq(outbox_run(), 0u);
    clock_offset_ms += 3600 * 1000;
    cr_expect_eq(outbox_run(), 1u);
    cr_expect_eq(api_requests(), 3u);
    cr_expect_eq(stat_of(engine, "sent"), 1);
    cr_expect_eq(audit_count(engine, alice, "email.failed"), 0);
}

Test(email_api, a_4xx_other_than_429_fails_for_good_with_one_audit_entry)
{
    int codes[] = {422};
    answers(codes, 1);
    char id[25];
    queue_one(id);
    cr_expect_eq(outbox_run(), 0u);
    clock_offset_ms += 24 * 3600 * 1000;
    cr_expect_eq(outbox_run(), 0u);
    cr_expect_eq(api_requests(), 1u, "not retried");
    cr_expect_eq(stat_of(engine, "failed"), 1);
    cr_expect_eq(stat_of(engine, "queued"), 0);
    cr_expect_eq(audit_count(engine, alice, "email.failed"), 1);
    json_t *x = exec_doc(engine, alice, id);
    cr_expect(json_is_false(json_object_get(x, "emailSent")));
    json_decref(x);
}

Test(email_api, the_attempts_are_bounded_by_email_max_attempts)
{
    int codes[] = {503, 503, 503, 503, 503};
    answers(codes, 5);
    char id[25];
    queue_one(id);
    for (int i = 0; i < 6; i++) {
        cr_expect_eq(outbox_run(), 0u);
        clock_offset_ms += 24 * 3600 * 1000;
    }
    cr_expect_eq(api_requests(), 3u, "EMAIL_MAX_ATTEMPTS=3");
    cr_expect_eq(stat_of(engine, "failed"), 1);
    cr_expect_eq(audit_count(engine, alice, "email.failed"), 1);
}

/* A refused key is the operator's to fix (a rotated PLATFORM_RESEND_KEY):
 * the messages wait, as they do for a refused SMTP login, and go once the
 * key is accepted again - none is failed for it. */
Test(email_api, a_401_or_403_refused_key_is_retried_and_the_messages_go_once_it_is_fixed)
{
    int codes[] = {401, 403};
    answers(codes, 2);
    char a[25], b[25];
    queue_one(a);
    queue_one(b);
    cr_expect_eq(outbox_run(), 0u);
    cr_expect_eq(api_requests(), 2u);
    cr_expect_eq(stat_of(engine, "failed"), 0, "a refused key fails no message");
    cr_expect_eq(stat_of(engine, "queued"), 2, "both wait for their next attempt");
    cr_expect_eq(audit_count(engine, alice, "email.failed"), 0);
    cr_expect(log_holds("HTTP 401: the API refused PLATFORM_RESEND_KEY"), "the log says why");
    cr_expect(!log_holds(KEY_CANARY));
    /* the operator fixes the key: the next attempts are accepted (200) */
    clock_offset_ms += 3600 * 1000;
    cr_expect_eq(outbox_run(), 2u);
    cr_expect_eq(api_requests(), 4u);
    cr_expect_eq(stat_of(engine, "sent"), 2);
    cr_expect_eq(audit_count(engine, alice, "email.sent"), 2);
    /* other 4xx stay final: 422 is the message's fault */
    int bad[] = {422};
    answers(bad, 1);
    queue_one(a);
    cr_expect_eq(outbox_run(), 0u);
    cr_expect_eq(stat_of(engine, "failed"), 1);
}

/* Retention: ee_exec_purge() also deletes the outbox's ended messages (their
 * rendered bodies and recipients) older than RESULT_RETENTION_DAYS, dated
 * by when they ended; a queued message is never deleted, however old. */
Test(email_api, the_purge_deletes_ended_messages_past_the_retention_and_keeps_queued_ones)
{
    int codes[] = {200, 422};
    answers(codes, 2);
    char sent[25], failed[25], queued[25];
    queue_one(sent);
    queue_one(failed);
    cr_expect_eq(outbox_run(), 1u);
    queue_one(queued); /* not run: queued, due since it was made */
    cr_expect_eq(stat_of(engine, "sent"), 1);
    cr_expect_eq(stat_of(engine, "failed"), 1);
    cr_expect_eq(stat_of(engine, "queued"), 1);
    uint64_t n = 0;
    /* 89 days on: within the 90 days of RESULT_RETENTION_DAYS */
    clock_offset_ms += INT64_C(89) * 86400000;
    cr_assert_eq(ee_exec_purge(engine, &n), EE_OK, "%s", ee_error_last_message());
    cr_expect_eq(stat_of(engine, "sent"), 1, "not old enough yet");
    cr_expect_eq(stat_of(engine, "failed"), 1);
    /* 92 days on: the ended ones go, the queued one (as old) stays */
    clock_offset_ms += INT64_C(3) * 86400000;
    cr_assert_eq(ee_exec_purge(engine, &n), EE_OK, "%s", ee_error_last_message());
    cr_expect_eq(stat_of(engine, "sent"), 0, "the old sent one is gone");
    cr_expect_eq(stat_of(engine, "failed"), 0, "the old failed one is gone");
    cr_expect_eq(stat_of(engine, "queued"), 1, "a queued message is never purged");
    /* it still goes (its execution was purged meanwhile) and, ended just
     * now, is younger than the retention */
    cr_expect_eq(outbox_run(), 1u, "%s", ee_error_last_message());
    cr_assert_eq(ee_exec_purge(engine, &n), EE_OK, "%s", ee_error_last_message());
    cr_expect_eq(stat_of(engine, "sent"), 1, "a young ended message stays");
    clock_offset_ms += INT64_C(91) * 86400000;
    cr_assert_eq(ee_exec_purge(engine, &n), EE_OK, "%s", ee_error_last_message());
    cr_expect_eq(stat_of(engine, "sent"), 0);
}

Test(email_api, the_key_is_never_stored_audited_or_in_an_error)
{
    int codes[] = {422};
    answers(codes, 1);
    char id[25], *out = NULL;
    queue_one(id);
    cr_expect_eq(outbox_run(), 0u);
    cr_assert_eq(ee_audit_query(engine, alice, "{\"limit\": 500}", &out), EE_OK);
    cr_expect(strstr(out, KEY_CANARY) == NULL);
    cr_expect(strstr(out, "email.failed") != NULL, "%s", out);
    ee_free(out);
    cr_assert_eq(ee_email_outbox_stats(engine, &out), EE_OK);
    cr_expect(strstr(out, "\"transport\":\"api\"") != NULL, "%s", out);
    ee_free(out);
    ee_engine_close(engine);
    engine = NULL;
    char wal[160];
    snprintf(wal, sizeof wal, "%s-wal", db);
    cr_expect(!file_holds(db, KEY_CANARY) && !file_holds(wal, KEY_CANARY));
    cr_expect(file_holds(db, "HTTP 422") || file_holds(wal, "HTTP 422"),
              "the scan reads the outbox (its lastError is there)");
    const char *const kv[] = {"PLATFORM_RESEND_KEY", KEY_CANARY, "EMAIL_API_URL",
                              "http://fake.resend/", NULL};
    engine = email_engine(db, kv);
}

Test(email_api, smtp_wins_when_both_are_configured_and_nothing_configured_is_refused)
{
    ee_engine_close(engine);
    const char *const both[] = {"PLATFORM_RESEND_KEY", KEY_CANARY, "SMTP_HOST", "127.0.0.1", NULL};
    engine = email_engine(db, both);
    char *out = NULL;
    cr_assert_eq(ee_email_outbox_stats(engine, &out), EE_OK);
    cr_expect(strstr(out, "\"transport\":\"smtp\"") != NULL, "%s", out);
    ee_free(out);
    ee_engine_close(engine);
    char db2[160];
    snprintf(db2, sizeof db2, "%s/none.db", dir);
    engine = email_engine(db2, NULL);
    char id[25];
    run_to_end(engine, alice, "wf0", "{\"parameters\": {\"text\": \"none\"}}", id);
    cr_expect_eq(ee_email_send_execution(engine, alice, id, "{\"to\": \"b@example.com\"}", &out),
                 EE_ENOTSUPPORTED);
    cr_expect(strstr(out, "SMTP_HOST") != NULL, "%s", out);
    ee_free(out);
}

Test(email_api, the_stats_give_the_oldest_queued_messages_age)
{
    char id[25];
    cr_expect_eq(stat_of(engine, "oldestQueuedAgeMs"), 0, "nothing queued");
    queue_one(id);
    clock_offset_ms += 5000;
    queue_one(id);
    clock_offset_ms += 2000;
    cr_expect_eq(stat_of(engine, "queued"), 2);
    int64_t age = stat_of(engine, "oldestQueuedAgeMs");
    cr_expect_geq(age, 7000, "the first one's age: %lld", (long long)age);
    cr_expect_lt(age, 7000 + 60000, "%lld", (long long)age);
    cr_expect_eq(outbox_run(), 2u, "%s", ee_error_last_message());
    cr_expect_eq(stat_of(engine, "queued"), 0);
    cr_expect_eq(stat_of(engine, "oldestQueuedAgeMs"), 0, "none left");
}
