/*
 * The execution pipeline's signed completion callback, its recovery after
 * an engine stopped mid-run (a second engine on the same SQLite file),
 * large outputs in the result store, and the secret canaries.
 */
#include "exec_fake.h"

#include <stdatomic.h>
#include <sys/wait.h>

#include "credentials/credentials.h"
#include "exec/exec_internal.h"
#include "exec/support.h"
#include "execengine/credentials.h"
#include "execengine/log.h"
#include "execengine/quota.h"


static char dir[256];
static ee_principal *alice;

static void setup(void)
{
    fake_setup();
    snprintf(dir, sizeof dir, "/tmp/ee-exec-recovery-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    cr_assert_eq(ee_principal_new(&alice, "ws-alice", "u1", "org-a"), EE_OK);
}

static void teardown(void)
{
    ee_principal_free(alice);
    fake_teardown();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    (void)system(cmd);
}

TestSuite(exec_recovery, .init = setup, .fini = teardown, .timeout = 90);

static ee_config *config(const char *workers, const char *lease_ms)
{
    char uri[400], results[300];
    snprintf(uri, sizeof uri, "sqlite://%s/ee.db", dir);
    snprintf(results, sizeof results, "%s/results", dir);
    ee_config *cfg = ee_test_config_new(uri, NULL, NULL);
    ee_test_config_set(cfg, "EXEC_WORKERS", workers);
    ee_test_config_set(cfg, "EXEC_POLL_MS", "50");
    ee_test_config_set(cfg, "EXEC_LEASE_MS", lease_ms);
    ee_test_config_set(cfg, "EXEC_RESULTS_DIR", results);
    ee_test_config_set(cfg, "EXEC_CALLBACK_URL", "http://host.test/ee/callback");
    return cfg;
}

static json_t *get(ee_engine *e, const char *id)
{
    char *out = NULL;
    cr_assert_eq(ee_exec_get(e, alice, id, &out), EE_OK, "%s", out);
    json_t *rec = parse_doc(out);
    ee_free(out);
    return rec;
}

/* Wait until the record of `id` has `status` (and an n8n id, if asked). */
static void await_status(ee_engine *e, const char *id, const char *status, bool with_n8n)
{
    for (int i = 0; i < 500; i++) {
        json_t *rec = get(e, id);
        bool ok = strcmp(sget(rec, "status"), status) == 0 &&
                  (!with_n8n || sget(rec, "n8nExecutionId") != NULL);
        json_decref(rec);
        if (ok)
            return;
        usleep(10000);
    }
    cr_assert_fail("execution %s never became %s", id, status);
}

/* The webhook body the fake received last, parsed. */
static json_t *last_body(void)
{
    pthread_mutex_lock(&fake.lock);
    size_t n = json_array_size(fake.bodies);
    cr_assert_gt(n, 0);
    json_t *b = parse_doc(json_string_value(json_array_get(fake.bodies, n - 1)));
    pthread_mutex_unlock(&fake.lock);
    return b;
}

static ee_status deliver(ee_engine *e, const char *key, int64_t ts, const char *body,
                         bool spoil, char **out)
{
    char t[32], sig[68], headers[256];
    snprintf(t, sizeof t, "%lld", (long long)ts);
    cr_assert_eq(ee__callback_sign(key, t, body, strlen(body), sig), EE_OK);
    if (spoil)
        sig[10] = sig[10] == 'a' ? 'b' : 'a';
    snprintf(headers, sizeof headers, "{\"x-ee-timestamp\": \"%s\", \"X-EE-Signature\": \"%s\"}",
             t, sig);
    return ee_exec_ingest_webhook(e, headers, body, strlen(body), out);
}

Test(exec_recovery, a_signed_callback_finishes_a_run_once_and_bad_ones_are_refused)
{
    ee_engine *e = fake_engine_config(config("2", "30000"));
    fake_sync(e);
    char wf[25], id[EE_EXEC_ID_SIZE], *out = NULL;
    entry_id(e, "wfC", wf);
    cr_assert_eq(ee_exec_submit(e, alice, wf, "{}", NULL, NULL, id), EE_OK, "%s",
                 ee_error_last_message());
    await_status(e, id, "running", false);
    for (int i = 0; i < 500 && fake_hits("callback") == 0; i++)
        usleep(10000); /* "running" is written just before the webhook is called */
    json_t *sent = last_body();
    json_t *ee = json_object_get(sent, "ee");
    cr_assert_str_eq(sget(ee, "callbackUrl"), "http://host.test/ee/callback");
    char key[65];
    snprintf(key, sizeof key, "%s", sget(ee, "callbackKey"));
    cr_assert_eq(strlen(key), 64);
    json_decref(sent);
    char body[512];
    snprintf(body, sizeof body,
             "{\"executionId\": \"%s\", \"workspaceId\": \"ws-alice\", \"status\": "
             "\"completed\", \"output\": {\"summary\": \"done\", \"apiKey\": \"sk-cb-canary\"}}",
             id);
    int64_t now_s = ee_engine_now_ms(e) / 1000;
    cr_assert_eq(deliver(e, key, now_s, body, true, &out), EE_EAUTH, "bad signature");
    ee_free(out);
    cr_assert_eq(deliver(e, key, now_s - 600, body, false, &out), EE_EAUTH, "old timestamp");
    ee_free(out);
    json_t *rec = get(e, id);
    cr_assert_str_eq(sget(rec, "status"), "running", "a refused callback changes nothing");
    json_decref(rec);
    cr_assert_eq(deliver(e, key, now_s, body, false, &out), EE_OK, "%s", out);
    json_t *ans = parse_doc(out);
    ee_free(out);
    cr_assert(json_is_true(json_object_get(ans, "applied")));
    json_decref(ans);
    cr_assert_eq(deliver(e, key, now_s, body, false, &out), EE_OK, "%s", out);
    ans = parse_doc(out);
    ee_free(out);
    cr_assert(json_is_false(json_object_get(ans, "applied")), "a repeat applies nothing");
    json_decref(ans);
    cr_assert_eq(ee_exec_wait(e, alice, id, 5000, &out), EE_OK, "%s", out);
    rec = parse_doc(out);
    ee_free(out);
    json_t *output = json_object_get(rec, "outputData");
    cr_assert_str_eq(sget(output, "summary"), "done");
    cr_assert_null(json_object_get(output, "apiKey"), "secret-looking members dropped");
    json_decref(rec);
    cr_assert_eq(fake_predictions_used(e, alice), 1, "counted once");
    /* another execution's key does not sign this one */
    char other[65];
    cr_assert_eq(ee__callback_key(e, "0123456789abcdef01234567", other), EE_OK);
    cr_assert_eq(deliver(e, other, now_s, body, false, &out), EE_EAUTH);
    ee_free(out);
    ee_engine_close(e);
}

Test(exec_recovery, runs_left_by_a_stopped_engine_are_finished_or_failed_by_the_next)
{
    char wf_async[25], wf_cb[25], wf_echo[25], a[EE_EXEC_ID_SIZE], c[EE_EXEC_ID_SIZE],
        q[EE_EXEC_ID_SIZE];
    /* the first engine starts two runs, then stops with them in flight */
    ee_engine *e1 = fake_engine_config(config("2", "1000"));
    fake_sync(e1);
    entry_id(e1, "wfA", wf_async);
    entry_id(e1, "wfC", wf_cb);
    entry_id(e1, "wf0", wf_echo);
    cr_assert_eq(ee_exec_submit(e1, alice, wf_async, NULL, NULL, NULL, a), EE_OK);
    cr_assert_eq(ee_exec_submit(e1, alice, wf_cb, NULL, NULL, NULL, c), EE_OK);
    await_status(e1, a, "running", true);
    await_status(e1, c, "running", false);
    ee_engine_close(e1);
    /* one more is only queued (a process that submits, no workers) */
    ee_engine *e0 = fake_engine_config(config("0", "1000"));
    cr_assert_eq(ee_exec_submit(e0, alice, wf_echo, NULL, NULL, NULL, q), EE_OK);
    ee_engine_close(e0);
    cr_assert_eq(fake_hits("echo"), 0);
    /* n8n finished the polled run meanwhile */
    pthread_mutex_lock(&fake.lock);
    fake.exec_done = 1;
    pthread_mutex_unlock(&fake.lock);
    ee_engine *e2 = fake_engine_config(config("2", "1000"));
    char *out = NULL;
    cr_assert_eq(ee_exec_wait(e2, alice, a, 20000, &out), EE_OK, "%s", out);
    json_t *rec = parse_doc(out);
    ee_free(out);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(rec, "outputData"),
                                                    "answer")), 42, "n8n's outcome was asked");
    json_decref(rec);
    cr_assert_eq(ee_exec_wait(e2, alice, c, 20000, &out), EE_EUNKNOWN, "%s", out);
    rec = parse_doc(out);
    ee_free(out);
    cr_assert_str_eq(sget(rec, "status"), "failed");
    cr_assert(strstr(sget(rec, "errorMessage"), "interrupted") != NULL);
    json_decref(rec);
    cr_assert_eq(ee_exec_wait(e2, alice, q, 20000, &out), EE_OK, "%s", out);
    ee_free(out);
    cr_assert_eq(fake_hits("callback"), 1, "the interrupted run was not triggered again");
    cr_assert_eq(fake_hits("async"), 1);
    cr_assert_eq(fake_hits("echo"), 1, "the queued one ran once");
    cr_assert_eq(fake_predictions_used(e2, alice), 2, "usage is the completed runs");
    cr_assert_eq(ee_exec_stats(e2, &out), EE_OK);
    json_t *stats = parse_doc(out);
    ee_free(out);
    cr_assert_eq(json_integer_value(json_object_get(stats, "queued")), 0);
    cr_assert_eq(json_integer_value(json_object_get(stats, "running")), 0, "nothing left");
    json_decref(stats);
    ee_engine_close(e2);
}

Test(exec_recovery, a_large_output_goes_to_the_result_store_and_reads_back)
{
    ee_config *cfg = config("1", "30000");
    ee_test_config_set(cfg, "EXEC_OUTPUT_INLINE_MAX", "16");
    ee_engine *e = fake_engine_config(cfg);
    fake_sync(e);
    char wf[25], *out = NULL;
    entry_id(e, "wf0", wf);
    cr_assert_eq(ee_exec_run(e, alice, wf, "{\"parameters\": {\"text\": \"a longer answer\"}}",
                             &out),
                 EE_OK, "%s", out);
    json_t *rec = parse_doc(out);
    ee_free(out);
    cr_assert(json_is_null(json_object_get(rec, "outputData")), "not inline");
    json_t *ref = json_object_get(rec, "outputRef");
    cr_assert(json_is_object(ref));
    cr_assert_gt(json_integer_value(json_object_get(ref, "bytes")), 16);
    char id[EE_EXEC_ID_SIZE];
    snprintf(id, sizeof id, "%s", sget(rec, "_id"));
    json_decref(rec);
    cr_assert_eq(ee_exec_results(e, alice, id, &out), EE_OK, "%s", out);
    json_t *res = parse_doc(out);
    ee_free(out);
    cr_assert_str_eq(sget(json_object_get(res, "outputData"), "echo"), "a longer answer");
    json_decref(res);
    ee_engine_close(e);
}

/* ---- canaries ------------------------------------------------------------------------- */

#define PLATFORM_CANARY "sk-or-v1-platformcanary0123456789abcdef0123"
#define CUSTOMER_CANARY "sk-or-v1-customercanary0123456789abcdef0123"

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static json_t *log_lines;

static void on_log(ee_log_level level, const char *module, const char *message, void *payload)
{
    (void)level, (void)module, (void)payload;
    pthread_mutex_lock(&log_lock);
    json_array_append_new(log_lines, json_string(message));
    pthread_mutex_unlock(&log_lock);
}

static void no_canary(const char *where, const char *text)
{
    cr_assert(strstr(text, PLATFORM_CANARY) == NULL, "platform key in %s", where);
    cr_assert(strstr(text, CUSTOMER_CANARY) == NULL, "customer key in %s", where);
    cr_assert(strstr(text, "customercanary") == NULL, "part of the customer key in %s", where);
}

Test(exec_recovery, keys_never_reach_records_logs_answers_or_webhook_bodies)
{
    log_lines = json_array();
    ee_config *cfg = config("2", "30000");
    ee_test_config_set(cfg, "PLATFORM_OPENROUTER_API_KEY", PLATFORM_CANARY);
    cr_assert_eq(ee_config_set_log(cfg, on_log, EE_LOG_DEBUG, NULL), EE_OK);
    ee_engine *e = fake_engine_config(cfg);
    fake_sync(e);
    char *out = NULL;
    cr_assert_eq(ee_cred_platform_provision(e, &out), EE_OK, "%s", out);
    ee_free(out);
    cr_assert_eq(ee_cred_key_add(e, alice,
                                 "{\"keyName\": \"mine\", \"provider\": \"openrouter\", "
                                 "\"apiKey\": \"" CUSTOMER_CANARY "\"}",
                                 &out),
                 EE_OK, "%s", out);
    json_t *key = parse_doc(out);
    ee_free(out);
    char key_id[64], wf[25], req[256];
    snprintf(key_id, sizeof key_id, "%s", sget(key, "id"));
    json_decref(key);
    entry_id(e, "wfL", wf);
    /* on the platform's key, then on the customer's */
    cr_assert_eq(ee_exec_run(e, alice, wf, "{\"parameters\": {\"text\": \"p\"}}", &out), EE_OK,
                 "%s", out);
    no_canary("the platform run's answer", out);
    json_t *rec = parse_doc(out);
    ee_free(out);
    cr_assert_str_eq(sget(json_object_get(rec, "apiKeyUsed"), "type"), "platform");
    json_decref(rec);
    snprintf(req, sizeof req,
             "{\"parameters\": {\"text\": \"c\"}, \"useCustomApiKey\": true, \"apiKeyId\": "
             "\"%s\"}",
             key_id);
    cr_assert_eq(ee_exec_run(e, alice, wf, req, &out), EE_OK, "%s", out);
    no_canary("the customer run's answer", out);
    rec = parse_doc(out);
    ee_free(out);
    json_t *used = json_object_get(rec, "apiKeyUsed");
    cr_assert_str_eq(sget(used, "type"), "customer");
    cr_assert_str_eq(sget(used, "keyId"), key_id);
    cr_assert_eq(json_integer_value(json_object_get(used, "cost")), 0);
    json_decref(rec);
    /* the key's totals were counted, once */
    cr_assert_eq(ee_cred_key_get(e, alice, key_id, &out), EE_OK, "%s", out);
    no_canary("the key record", out);
    key = parse_doc(out);
    ee_free(out);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(key, "totalUsage"),
                                                    "executions")), 1);
    cr_assert_not_null(json_object_get(key, "lastUsedAt"));
    json_decref(key);
    /* everything stored, listed, logged and sent */
    cr_assert_eq(ee_exec_list(e, alice, NULL, &out), EE_OK);
    no_canary("the list", out);
    ee_free(out);
    pthread_mutex_lock(&fake.lock);
    char *bodies = json_dumps(fake.bodies, 0);
    pthread_mutex_unlock(&fake.lock);
    cr_assert_eq(json_array_size(fake.bodies), 2);
    no_canary("the webhook bodies", bodies);
    free(bodies);
    ee_engine_close(e);
    char *logs = json_dumps(log_lines, 0);
    no_canary("the logs", logs);
    free(logs);
    json_decref(log_lines);
    /* the database file holds no key in clear */
    char path[300];
    snprintf(path, sizeof path, "%s/ee.db", dir);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    static char buf[8 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    cr_assert(memmem(buf, n, "customercanary", 14) == NULL, "customer key in the database");
    cr_assert(memmem(buf, n, "platformcanary", 14) == NULL, "platform key in the database");
}

/* ---- fork --------------------------------------------------------------------------- */

/* A child forked while the parent's idle workers poll the queue opens its own
 * engine on the same file and closes it: it must not inherit a lock a worker
 * held inside the storage at the fork (the test's timeout catches a hang). */
Test(exec_recovery, a_process_forked_beside_polling_workers_does_not_deadlock)
{
    ee_config *cfg = config("4", "30000");
    ee_test_config_set(cfg, "EXEC_POLL_MS", "10");
    ee_engine *e = fake_engine_config(cfg);
    for (int i = 0; i < 40; i++) {
        pid_t kid = fork();
        cr_assert_neq(kid, -1);
        if (kid == 0) {
            char uri[400];
            snprintf(uri, sizeof uri, "sqlite://%s/ee.db", dir);
            ee_config *c = NULL;
            ee_engine *ce = NULL;
            int bad = ee_config_new(&c) != EE_OK ||
                      ee_config_set(c, "API_KEY_ENCRYPTION_SECRET", EE_TEST_ENCRYPTION_SECRET) ||
                      ee_config_set(c, "EE_DATA_DIR", EE_TEST_DATA_DIR) ||
                      ee_config_set(c, "EE_STORAGE_URI", uri) ||
                      ee_config_set(c, "EXEC_WORKERS", "1") || ee_engine_open(&ce, c) != EE_OK;
            ee_config_free(c);
            ee_engine_close(ce);
            _exit(bad);
        }
        int status = 0;
        cr_assert_eq(waitpid(kid, &status, 0), kid);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d failed", i);
    }
    ee_engine_close(e);
}

Test(exec_recovery, a_waiter_without_workers_sees_a_run_another_engine_finished)
{
    char wf_echo[25], id[EE_EXEC_ID_SIZE];
    /* two engines on one SQLite file: one only submits and waits, the other runs */
    ee_engine *runner = fake_engine_config(config("1", "1000"));
    cr_assert_eq(ee_exec_workers_start(runner), EE_OK, "%s", ee_error_last_message());
    fake_sync(runner);
    entry_id(runner, "wf0", wf_echo);
    ee_engine *waiter = fake_engine_config(config("0", "1000"));
    cr_assert_eq(ee_exec_submit(waiter, alice, wf_echo, NULL, NULL, NULL, id), EE_OK);
    /* the end happens in the runner; the waiter's own condition never fires, so
     * only its re-reads of the record can end this wait: its timeout (10 min) is
     * past the suite's (90 s), so a waiter that did not re-read fails the test
     * (a wait that ends at its timeout would also answer a final record) */
    char *out = NULL;
    cr_assert_eq(ee_exec_wait(waiter, alice, id, 600000, &out), EE_OK, "%s", out);
    json_t *rec = parse_doc(out);
    ee_free(out);
    cr_assert_str_eq(sget(rec, "status"), "completed");
    json_decref(rec);
    cr_assert_eq(fake_hits("echo"), 1, "the runner ran it once");
    ee_engine_close(waiter);
    ee_engine_close(runner);
}

/* A run booked again - recovery after its booking's commit was lost, however
 * late - counts its customer key once: the key's totals are written in the
 * booking's transaction, and the record's charge makes a second booking a
 * no-op. Before, the key was counted apart, idempotent only while the key
 * still remembered the execution among the last EE__KEY_RECENT_EXECUTIONS
 * it counted: here 300 others were counted meanwhile. */
static void key_counted_once_on(const char *uri)
{
    ee_config *cfg = config("1", "30000");
    if (uri != NULL) {
        ee_test_config_set(cfg, "EE_STORAGE_URI", uri);
        ee_test_config_set(cfg, "EE_COUNTERS_URI", "memory:");
    }
    ee_engine *e = fake_engine_config(cfg);
    fake_sync(e);
    char *out = NULL;
    cr_assert_eq(ee_cred_key_add(e, alice,
                                 "{\"keyName\": \"mine\", \"provider\": \"openrouter\", "
                                 "\"apiKey\": \"sk-or-v1-counted-once-0123456789abcdef\"}",
                                 &out),
                 EE_OK, "%s", out);
    json_t *key = parse_doc(out);
    ee_free(out);
    char key_id[64], wf[25], req[256], xid[EE_EXEC_ID_SIZE];
    snprintf(key_id, sizeof key_id, "%s", sget(key, "id"));
    json_decref(key);
    entry_id(e, "wfL", wf);
    snprintf(req, sizeof req,
             "{\"parameters\": {\"text\": \"c\"}, \"useCustomApiKey\": true, \"apiKeyId\": "
             "\"%s\"}",
             key_id);
    cr_assert_eq(ee_exec_run(e, alice, wf, req, &out), EE_OK, "%s", out);
    json_t *rec = parse_doc(out);
    ee_free(out);
    cr_assert_str_eq(sget(json_object_get(rec, "apiKeyUsed"), "type"), "customer");
    snprintf(xid, sizeof xid, "%s", sget(rec, "_id"));
    json_decref(rec);
    /* the run's accounting ends after ee_exec_run() returned */
    for (int i = 0; i < 500; i++) {
        x_rec r;
        memset(&r, 0, sizeof r);
        cr_assert_eq(ee__exec_load(e, "ws-alice", xid, &r), EE_OK, "%s", ee_error_last_message());
        bool charged = r.charged;
        ee__exec_rec_clear(&r);
        if (charged)
            break;
        usleep(10000);
    }
    for (int i = 0; i < 300; i++) {
        char other[32];
        snprintf(other, sizeof other, "other-run-%d", i);
        cr_assert_eq(ee__cred_key_record_usage(e, alice, key_id, other, 1, NULL), EE_OK, "%s",
                     ee_error_last_message());
    }
    /* booked again, as recovery would */
    x_rec r;
    memset(&r, 0, sizeof r);
    cr_assert_eq(ee__exec_load(e, "ws-alice", xid, &r), EE_OK, "%s", ee_error_last_message());
    cr_assert(r.charged, "the run was booked");
    ee__exec_account(ee__exec_state(e), &r);
    ee__exec_rec_clear(&r);
    cr_assert_eq(ee_cred_key_get(e, alice, key_id, &out), EE_OK, "%s", out);
    key = parse_doc(out);
    ee_free(out);
    cr_expect_eq(json_integer_value(json_object_get(json_object_get(key, "totalUsage"),
                                                    "executions")),
                 301, "the run once and the 300 others");
    json_decref(key);
    ee_engine_close(e);
}

Test(exec_recovery, a_run_booked_again_counts_its_key_once_sqlite)
{
    key_counted_once_on(NULL);
}

Test(exec_recovery, a_run_booked_again_counts_its_key_once_memory)
{
    key_counted_once_on("memory:");
}
