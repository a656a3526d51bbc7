/*
 * Crash: a host is killed (SIGKILL) with 50 executions in flight - some
 * queued, some triggered and waiting for n8n's answer. After an engine is
 * opened again on the same SQLite file, every execution ends "completed" or
 * "failed" (none stays pending or running), the organisation's predictions
 * usage equals the completed runs, and no reservation is left (concurrency
 * usage 0). n8n is tests/support/fake_n8n.py, answering each trigger after
 * a delay, so the kill lands while runs wait for it.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine_fixture.h"
#include "exec_host.h"
#include "fake_upstream.h"
#include "execengine/catalog.h"
#include "execengine/config.h"
#include "execengine/engine.h"
#include "execengine/exec.h"
#include "execengine/principal.h"
#include "execengine/quota.h"

#define RUNS 50

static char dir[] = "/tmp/ee-exec-crash-XXXXXX";
static char db_uri[256];
static ee_fake_upstream n8n;

static void setup(void)
{
    cr_assert_not_null(mkdtemp(dir));
    snprintf(db_uri, sizeof db_uri, "sqlite://%s/engine.db", dir);
    ee_fake_upstream_start(&n8n, "fake_n8n.py");
    ee_fake_upstream_post(&n8n, "/__config", "{\"delayMs\": 1500}");
}

static void teardown(void)
{
    ee_fake_upstream_stop(&n8n);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

TestSuite(exec_crash, .init = setup, .fini = teardown, .timeout = 300);

/* An engine on the crash test's SQLite file with `workers` workers, or NULL
 * (the error detail says why): the killed host calls it after fork(), where
 * a Criterion assertion would not reach the runner. */
static ee_engine *try_open(int workers)
{
    const char *const kv[] = {
        "API_KEY_ENCRYPTION_SECRET", EE_TEST_ENCRYPTION_SECRET,
        "EE_DATA_DIR", EE_TEST_DATA_DIR,
        "EE_STORAGE_URI", db_uri,
        "EXEC_LEASE_MS", "1000",
        NULL,
    };
    return ee_test_host_try_open(n8n.base, workers, kv);
}

static ee_engine *open_engine(int workers)
{
    ee_engine *e = try_open(workers);
    cr_assert_not_null(e, "ee_engine_open: %s", ee_error_last_message());
    return e;
}

static long long usage_of(ee_engine *e, const ee_principal *p, const char *what)
{
    char *out = NULL;
    cr_assert_eq(ee_quota_usage(e, p, &out), EE_OK, "%s", ee_error_last_message());
    json_t *j = json_loads(out, 0, NULL);
    cr_assert_not_null(j, "%s", out);
    json_t *u = json_object_get(json_object_get(j, what), "usage");
    cr_assert(json_is_integer(u), "no %s usage in %s", what, out);
    long long n = json_integer_value(u);
    json_decref(j);
    ee_free(out);
    return n;
}

Test(exec_crash, a_host_killed_with_50_runs_in_flight_leaves_nothing_pending)
{
    ee_engine *e = open_engine(0);
    char wf[32];
    ee_test_host_sync(e, wf);
    ee_engine_close(e);

    /* The host: 8 workers, 50 runs submitted, killed once runs are in flight. */
    int ready[2];
    cr_assert_eq(pipe(ready), 0);
    pid_t host = fork();
    cr_assert_neq(host, -1);
    if (host == 0) {
        close(ready[0]);
        ee_engine *h = try_open(8);
        ee_principal *p;
        if (h == NULL) {
            fprintf(stderr, "host: %s\n", ee_error_last_message());
            _exit(1);
        }
        if (ee_principal_new(&p, "ws-crash", "user-crash", "org-crash") != EE_OK)
            _exit(2);
        for (int i = 0; i < RUNS; i++) {
            char id[EE_EXEC_ID_SIZE];
            if (ee_exec_submit(h, p, wf, "{\"parameters\": {\"text\": \"crash\"}}", NULL, NULL,
                               id) != EE_OK) {
                fprintf(stderr, "submit %d: %s\n", i, ee_error_last_message());
                _exit(3);
            }
        }
        /* In flight: every worker of this host holds a run (claimed, and
         * triggered or about to be: n8n answers after 1.5 s). */
        long long here = 0;
        while (here < 8) {
            usleep(20 * 1000);
            char *out = NULL;
            if (ee_exec_stats(h, &out) != EE_OK)
                _exit(4);
            json_t *j = json_loads(out, 0, NULL);
            here = json_integer_value(json_object_get(j, "runningHere"));
            json_decref(j);
            ee_free(out);
        }
        if (write(ready[1], "r", 1) != 1)
            _exit(5);
        pause(); /* until SIGKILL */
        _exit(6);
    }
    close(ready[1]);
    char c = 0;
    if (read(ready[0], &c, 1) != 1) {
        int died = 0;
        waitpid(host, &died, 0);
        cr_assert_fail("the host died before runs were in flight (exit %d)",
                       WIFEXITED(died) ? WEXITSTATUS(died) : -1);
    }
    close(ready[0]);
    cr_assert_eq(kill(host, SIGKILL), 0);
    int status = 0;
    cr_assert_eq(waitpid(host, &status, 0), host);
    cr_assert(WIFSIGNALED(status));

    /* Reopen: recovery resolves what the dead host left. */
    ee_engine *again = open_engine(4);
    cr_assert_eq(ee_exec_workers_start(again), EE_OK, "%s", ee_error_last_message());
    long long q = 1, r = 1;
    for (int i = 0; i < 600 && (q > 0 || r > 0); i++) {
        usleep(100 * 1000);
        ee_test_host_stats(again, &q, &r);
    }
    cr_assert(q == 0 && r == 0, "after 60 s: %lld queued, %lld running", q, r);

    ee_principal *p;
    cr_assert_eq(ee_principal_new(&p, "ws-crash", "user-crash", "org-crash"), EE_OK);
    int completed = 0, failed = 0, seen = 0;
    char *cursor = NULL;
    do {
        char query[256];
        if (cursor != NULL)
            snprintf(query, sizeof query, "{\"limit\": 100, \"cursor\": \"%s\"}", cursor);
        else
            snprintf(query, sizeof query, "{\"limit\": 100}");
        free(cursor);
        cursor = NULL;
        char *page = NULL;
        cr_assert_eq(ee_exec_list(again, p, query, &page), EE_OK, "%s", ee_error_last_message());
        json_t *j = json_loads(page, 0, NULL);
        size_t i;
        json_t *rec;
        json_array_foreach(json_object_get(j, "data"), i, rec) {
            const char *s = json_string_value(json_object_get(rec, "status"));
            seen++;
            if (strcmp(s, "completed") == 0)
                completed++;
            else if (strcmp(s, "failed") == 0) {
                failed++;
                cr_assert(json_is_string(json_object_get(rec, "errorMessage")),
                          "a failed run says why");
            } else
                cr_assert_fail("execution %s is still %s",
                               json_string_value(json_object_get(rec, "_id")), s);
        }
        const char *next = json_string_value(json_object_get(j, "nextCursor"));
        if (next != NULL)
            cursor = strdup(next);
        json_decref(j);
        ee_free(page);
    } while (cursor != NULL);
    cr_assert_eq(seen, RUNS);
    cr_assert_eq(completed + failed, RUNS);
    cr_assert_gt(completed, 0, "runs never triggered before the kill run after it");
    cr_assert_eq(usage_of(again, p, "predictions"), completed,
                 "predictions usage equals the completed runs (%d completed, %d failed)",
                 completed, failed);
    cr_assert_eq(usage_of(again, p, "concurrency"), 0, "no concurrency slot is left reserved");
    /* Recovery never sends a trigger twice: a run the dead host may have
     * triggered fails as interrupted instead of running again. */
    json_t *counts = NULL;
    cr_assert_eq(ee_fake_upstream_call(&n8n, "GET", "/__counts", NULL, &counts), 200);
    cr_assert_not_null(counts);
    const char *xid;
    json_t *n;
    json_object_foreach(counts, xid, n)
        cr_assert_eq(json_integer_value(n), 1, "execution %s reached n8n %lld times", xid,
                     (long long)json_integer_value(n));
    cr_assert_geq(json_object_size(counts), (size_t)completed,
                  "every completed run reached n8n (%zu did, %d completed)",
                  json_object_size(counts), completed);
    json_decref(counts);
    ee_principal_free(p);
    ee_engine_close(again);
}
