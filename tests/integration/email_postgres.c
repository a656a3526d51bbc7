/*
 * The e-mail outbox on the real PostgreSQL the `servers` fixture started,
 * shared by two engines (two hosts), delivering to a real SMTP server
 * (tests/support/smtp_sink.py): four runners at once send every message
 * exactly once (claims are FOR UPDATE SKIP LOCKED under a lease), and the
 * per-user hourly limit holds across both hosts. Each run gets its own
 * schema.
 */
#include <libpq-fe.h>

/* engine_fixture.h's data dir is replaced by source_dir.h's (email_fixture.h) */
#define EE_SOURCE_DIR ""
#include "../unit/notify/email_fixture.h"
#include "test_servers.h"

static char uri[800], schema[64];
static smtp_sink sink;
static char dir[64];

static void setup(void)
{
    fixture_setup();
    ee_test_temp_dir("/tmp/ee-email-pg-XXXXXX", dir, sizeof dir);
    snprintf(sink.dir, sizeof sink.dir, "%s", dir);
    sink_start(&sink, 0);
    const char *base = ee_test_server_uri("EE_TEST_POSTGRES_URI");
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(schema, sizeof schema, "ee_email_%d_%ld", (int)getpid(),
             (long)(ts.tv_nsec % 1000000));
    snprintf(uri, sizeof uri, "%s%sschema=%s", base, strchr(base, '?') != NULL ? "&" : "?",
             schema);
}

static void teardown(void)
{
    sink_stop(&sink);
    fixture_teardown();
    ee_test_temp_dir_remove(dir);
    PGconn *c = PQconnectdb(ee_test_server_uri("EE_TEST_POSTGRES_URI"));
    if (PQstatus(c) == CONNECTION_OK) {
        char sql[128];
        snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE", schema);
        PQclear(PQexec(c, sql));
    }
    PQfinish(c);
}

TestSuite(email_postgres, .init = setup, .fini = teardown, .timeout = 180);

static ee_engine *host(const char *limit)
{
    char port[16];
    snprintf(port, sizeof port, "%d", sink.port);
    const char *const kv[] = {"SMTP_HOST", "127.0.0.1", "SMTP_PORT", port,
                              "EMAIL_MAX_PER_USER_PER_HOUR", limit, NULL};
    return email_engine(uri, kv);
}

typedef struct {
    ee_engine *e;
    uint64_t sent;
} runner_arg;

static void *runner(void *arg)
{
    runner_arg *a = arg;
    for (int i = 0; i < 40; i++) {
        uint64_t n = 0;
        if (ee_email_outbox_run(a->e, 2, &n) == EE_OK)
            a->sent += n;
    }
    return NULL;
}

Test(email_postgres, four_runners_on_two_hosts_send_every_message_exactly_once)
{
    ee_engine *h1 = host("100"), *h2 = host("100");
    ee_principal *p = NULL;
    cr_assert_eq(ee_principal_new(&p, "ws-pg", "u-pg", "org-pg"), EE_OK);
    char id[25], *out = NULL;
    run_to_end(h1, p, "wf0", "{\"parameters\": {\"text\": \"pg\"}}", id);
    for (int i = 0; i < 20; i++) {
        cr_assert_eq(ee_email_send_execution(i % 2 ? h1 : h2, p, id,
                                             "{\"to\": \"bob@example.com\"}", &out),
                     EE_OK, "%s", out);
        ee_free(out);
    }
    runner_arg a[4] = {{h1, 0}, {h2, 0}, {h1, 0}, {h2, 0}};
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, runner, &a[i]);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    cr_expect_eq(a[0].sent + a[1].sent + a[2].sent + a[3].sent, 20u);
    cr_expect_eq(sink_count(&sink), 20, "each message once");
    cr_expect_eq(stat_of(h2, "sent"), 20);
    cr_expect_eq(stat_of(h1, "queued") + stat_of(h1, "sending"), 0);
    cr_expect_eq(audit_count(h1, p, "email.sent"), 20);
    json_t *x = exec_doc(h2, p, id);
    cr_expect(json_is_true(json_object_get(x, "emailSent")));
    json_decref(x);
    ee_principal_free(p);
    ee_engine_close(h1);
    ee_engine_close(h2);
}

typedef struct {
    ee_engine *e;
    const ee_principal *p;
    const char *id;
    int ok, limited;
} sender_arg;

static void *sender(void *arg)
{
    sender_arg *a = arg;
    for (int i = 0; i < 6; i++) {
        char *out = NULL;
        ee_status st = ee_email_send_execution(a->e, a->p, a->id, "{\"to\": \"b@example.com\"}",
                                               &out);
        ee_free(out);
        a->ok += st == EE_OK;
        a->limited += st == EE_ERATELIMIT;
    }
    return NULL;
}

Test(email_postgres, the_per_user_limit_holds_across_hosts)
{
    ee_engine *h1 = host("5"), *h2 = host("5");
    ee_principal *p = NULL;
    cr_assert_eq(ee_principal_new(&p, "ws-pg", "u-lim", "org-pg"), EE_OK);
    char id[25];
    run_to_end(h1, p, "wf0", "{\"parameters\": {\"text\": \"lim\"}}", id);
    sender_arg a[2] = {{h1, p, id, 0, 0}, {h2, p, id, 0, 0}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, sender, &a[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    cr_expect_eq(a[0].ok + a[1].ok, 5, "EMAIL_MAX_PER_USER_PER_HOUR=5 over both hosts");
    cr_expect_eq(a[0].limited + a[1].limited, 7);
    cr_expect_eq(stat_of(h1, "queued"), 5);
    ee_principal_free(p);
    ee_engine_close(h1);
    ee_engine_close(h2);
}
