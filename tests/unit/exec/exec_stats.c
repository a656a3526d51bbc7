/*
 * ee_exec_stats()'s counts of this engine: executions submitted, started
 * and ended by final status (completed, failed, cancelled, timed out) with
 * their execution time, against the fake n8n (exec_fake.h); exact when
 * several threads run at once.
 */
#include "exec_fake.h"

static ee_engine *engine;
static ee_principal *alice;

static void setup(void)
{
    fake_setup();
    ee_config *cfg = ee_test_config_new(NULL, NULL, NULL);
    ee_test_config_set(cfg, "EXEC_WORKERS", "4");
    ee_test_config_set(cfg, "EXEC_POLL_MS", "50");
    ee_test_config_set(cfg, "MAX_CONCURRENT_EXECUTIONS", "64");
    engine = fake_engine_config(cfg);
    fake_sync(engine);
    cr_assert_eq(ee_principal_new(&alice, "ws-alice", "u1", "org-a"), EE_OK);
}

static void teardown(void)
{
    ee_engine_close(engine);
    ee_principal_free(alice);
    fake_teardown();
}

TestSuite(exec_stats, .init = setup, .fini = teardown, .timeout = 120);

static json_t *stats(void)
{
    char *out = NULL;
    cr_assert_eq(ee_exec_stats(engine, &out), EE_OK, "%s", ee_error_last_message());
    json_t *doc = parse_doc(out);
    ee_free(out);
    return doc;
}

static long long num(const json_t *doc, const char *a, const char *b)
{
    const json_t *v = json_object_get(doc, a);
    if (b != NULL)
        v = json_object_get(v, b);
    cr_assert(json_is_integer(v), "%s.%s missing", a, b != NULL ? b : "");
    return (long long)json_integer_value(v);
}

static long long ended_total(const json_t *doc)
{
    return num(doc, "ended", "completed") + num(doc, "ended", "failed") +
           num(doc, "ended", "cancelled") + num(doc, "ended", "timedOut");
}

/* The counts move after the step's write commits, which a waiter may see
 * first: wait (bounded) until `ended` runs have ended and `started` started. */
static json_t *stats_after(long long ended, long long started)
{
    for (int i = 0; i < 500; i++) {
        json_t *doc = stats();
        if (ended_total(doc) >= ended && num(doc, "started", NULL) >= started)
            return doc;
        json_decref(doc);
        usleep(10000);
    }
    json_t *doc = stats();
    cr_assert_eq(ended_total(doc), ended, "ended runs never reached %lld", ended);
    cr_assert_eq(num(doc, "started", NULL), started, "started runs never reached %lld", started);
    return doc;
}

static ee_status run(const char *n8n_id)
{
    char wf[25], *out = NULL;
    entry_id(engine, n8n_id, wf);
    ee_status st = ee_exec_run(engine, alice, wf, "{\"parameters\": {\"text\": \"x\"}}", &out);
    ee_free(out);
    return st;
}

/* The executionTimeMs histogram of one final status: buckets cumulative,
 * never past the count. */
static long long hist_count(const json_t *doc, const char *status)
{
    const json_t *lat = json_object_get(doc, "executionTimeMs");
    const json_t *h = json_object_get(lat, status);
    const json_t *b = json_object_get(h, "buckets");
    cr_assert_eq(json_array_size(b), json_array_size(json_object_get(lat, "le")), "%s", status);
    long long prev = 0, count = num(h, "count", NULL);
    for (size_t i = 0; i < json_array_size(b); i++) {
        long long v = (long long)json_integer_value(json_array_get(b, i));
        cr_assert(v >= prev && v <= count, "%s: bucket %zu is %lld", status, i, v);
        prev = v;
    }
    cr_assert_geq(num(h, "sum", NULL), 0);
    return count;
}

Test(exec_stats, a_new_engine_has_counted_nothing)
{
    json_t *doc = stats();
    cr_expect_eq(num(doc, "submitted", NULL), 0);
    cr_expect_eq(num(doc, "started", NULL), 0);
    cr_expect_eq(ended_total(doc), 0);
    cr_expect_eq(hist_count(doc, "completed"), 0);
    cr_expect(json_is_integer(json_object_get(doc, "since")));
    cr_expect(json_is_integer(json_object_get(doc, "queued")), "the queue figures stay");
    json_decref(doc);
}

Test(exec_stats, runs_count_once_under_their_final_status)
{
    cr_assert_eq(run("wf0"), EE_OK, "%s", ee_error_last_message()); /* echo */
    cr_assert_eq(run("wf0"), EE_OK, "%s", ee_error_last_message());
    cr_assert_eq(run("wf2"), EE_EUPSTREAM, "%s", ee_error_last_message()); /* fail */
    cr_assert_eq(run("wf6"), EE_ETIMEOUT, "%s", ee_error_last_message()); /* slow */
    /* a long run, cancelled while it runs in n8n */
    char wf[25], id[EE_EXEC_ID_SIZE], *out = NULL;
    entry_id(engine, "wfA", wf);
    cr_assert_eq(ee_exec_submit(engine, alice, wf, "{}", NULL, NULL, id), EE_OK, "%s",
                 ee_error_last_message());
    cr_assert_eq(ee_exec_wait(engine, alice, id, 600, &out), EE_ETIMEOUT);
    ee_free(out);
    cr_assert_eq(ee_exec_cancel(engine, alice, id), EE_OK, "%s", ee_error_last_message());
    cr_assert_eq(ee_exec_cancel(engine, alice, id), EE_ESTATE, "a second cancel changes nothing");

    json_t *doc = stats_after(5, 5);
    cr_expect_eq(num(doc, "ended", "completed"), 2);
    cr_expect_eq(num(doc, "ended", "failed"), 1);
    cr_expect_eq(num(doc, "ended", "timedOut"), 1, "a timeout is not also a failure");
    cr_expect_eq(num(doc, "ended", "cancelled"), 1);
    cr_expect_eq(num(doc, "submitted", NULL), 5);
    cr_expect_eq(num(doc, "started", NULL), 5);
    cr_expect_eq(hist_count(doc, "completed"), 2);
    cr_expect_eq(hist_count(doc, "failed"), 1);
    cr_expect_eq(hist_count(doc, "timedOut"), 1);
    cr_expect_eq(hist_count(doc, "cancelled"), 1, "it had started: it has an execution time");
    json_decref(doc);

    /* a run that ended is not counted again when waited for or looked at */
    out = NULL;
    cr_assert_eq(ee_exec_wait(engine, alice, id, 100, &out), EE_ECANCELLED);
    json_t *rec = parse_doc(out);
    ee_free(out);
    cr_expect_str_eq(sget(rec, "status"), "cancelled");
    json_decref(rec);
    cr_expect_eq(fake_hits("echo"), 2, "each run reached n8n once");
    doc = stats();
    cr_expect_eq(ended_total(doc), 5);
    json_decref(doc);
}

Test(exec_stats, a_run_refused_at_admission_is_not_submitted)
{
    /* the per-user hourly limit: the second run is refused before it is queued */
    ee_engine_close(engine);
    ee_config *cfg = ee_test_config_new(NULL, NULL, NULL);
    ee_test_config_set(cfg, "EXEC_WORKERS", "1");
    ee_test_config_set(cfg, "MAX_EXECUTIONS_PER_USER_PER_HOUR", "1");
    engine = fake_engine_config(cfg);
    fake_sync(engine);
    cr_assert_eq(run("wf0"), EE_OK, "%s", ee_error_last_message());
    cr_assert_eq(run("wf0"), EE_ERATELIMIT);
    json_t *doc = stats_after(1, 1);
    cr_expect_eq(num(doc, "submitted", NULL), 1);
    cr_expect_eq(num(doc, "ended", "completed"), 1);
    json_decref(doc);
    char *out = NULL;
    cr_assert_eq(ee_quota_stats(engine, &out), EE_OK);
    json_t *q = parse_doc(out);
    ee_free(out);
    cr_expect_eq(num(q, "admitted", NULL), 1);
    cr_expect_eq(num(q, "refused", "rate"), 1);
    json_decref(q);
}

enum { THREADS = 6, RUNS = 5 };

static void *runner(void *arg)
{
    const char *wf = arg;
    for (int i = 0; i < RUNS; i++) {
        char *out = NULL;
        ee_status st = ee_exec_run(engine, alice, wf, "{\"parameters\": {\"text\": \"t\"}}", &out);
        ee_free(out);
        if (st != EE_OK)
            return (void *)1;
    }
    return NULL;
}

Test(exec_stats, runs_from_several_threads_are_counted_exactly)
{
    char wf[25];
    entry_id(engine, "wf0", wf);
    pthread_t tid[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&tid[i], NULL, runner, wf);
    int failed = 0;
    for (int i = 0; i < THREADS; i++) {
        void *r = NULL;
        pthread_join(tid[i], &r);
        failed += r != NULL;
    }
    cr_assert_eq(failed, 0, "every run completes");
    json_t *doc = stats_after(THREADS * RUNS, THREADS * RUNS);
    cr_expect_eq(num(doc, "ended", "completed"), THREADS * RUNS);
    cr_expect_eq(num(doc, "submitted", NULL), THREADS * RUNS);
    cr_expect_eq(num(doc, "started", NULL), THREADS * RUNS);
    cr_expect_eq(hist_count(doc, "completed"), THREADS * RUNS);
    json_decref(doc);
}
