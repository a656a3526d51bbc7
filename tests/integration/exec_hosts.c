/*
 * Many hosts, one queue: three processes on one PostgreSQL (storage and the
 * execution queue) and one Redis (counters) drain 300 executions another
 * process queued. Each execution reaches n8n exactly once (the fake n8n
 * counts triggers by ee.executionId), and every record ends "completed".
 * n8n here is tests/support/fake_n8n.py: the test is about the queue, and
 * the real n8n's own throughput would only slow it down.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "exec_host.h"
#include "fake_upstream.h"
#include "source_dir.h"
#include "pg_schema.h"
#include "test_servers.h"
#include "execengine/catalog.h"
#include "execengine/config.h"
#include "execengine/engine.h"
#include "execengine/exec.h"
#include "execengine/principal.h"
#include "execengine/quota.h"

#define HOSTS 3
#define RUNS 300
#define WORKSPACES 5

static char schema[64];
static char store_uri[700];
static char redis_uri[512];
static ee_fake_upstream n8n;

static void setup(void)
{
    ee_test_pg_schema("ee_xh", schema, sizeof schema, store_uri, sizeof store_uri);
    /* One Redis for the three hosts; the principals' ids carry this run's
     * schema name, so runs never share a counter. */
    snprintf(redis_uri, sizeof redis_uri, "%s", ee_test_server_uri("EE_TEST_REDIS_URI"));
    ee_fake_upstream_start(&n8n, "fake_n8n.py");
}

static void teardown(void)
{
    ee_fake_upstream_stop(&n8n);
    ee_test_pg_drop_schema(schema);
}

TestSuite(exec_hosts, .init = setup, .fini = teardown, .timeout = 600);

/* A host on the shared PostgreSQL and Redis with `workers` workers, or NULL
 * (the error detail says why): the hosts call it after fork(), where a
 * Criterion assertion would not reach the runner. */
static ee_engine *try_open(int workers)
{
    char data_dir[1024];
    if (!ee_test_source_data_dir(data_dir, sizeof data_dir))
        return NULL;
    const char *const kv[] = {
        "API_KEY_ENCRYPTION_SECRET", "hosts-secret-0123456789abcdef0123456789",
        "EE_DATA_DIR", data_dir,
        "EE_STORAGE_URI", store_uri,
        "EE_COUNTERS_URI", redis_uri,
        "EXEC_QUEUE_MAX", "1000",
        NULL,
    };
    return ee_test_host_try_open(n8n.base, workers, kv);
}

static ee_engine *open_host(int workers)
{
    ee_engine *e = try_open(workers);
    cr_assert_not_null(e, "ee_engine_open: %s", ee_error_last_message());
    return e;
}

/* One host: 4 workers until the shared queue is empty (4 minutes at most). */
static void host_child(void)
{
    ee_engine *e = try_open(4);
    if (e == NULL || ee_exec_workers_start(e) != EE_OK)
        _exit(2);
    long long q = 1, r = 1;
    for (int i = 0; i < 2400 && (q > 0 || r > 0); i++) {
        usleep(100 * 1000);
        char *out = NULL;
        if (ee_exec_stats(e, &out) != EE_OK)
            _exit(4);
        json_t *j = json_loads(out, 0, NULL);
        q = json_integer_value(json_object_get(j, "queued"));
        r = json_integer_value(json_object_get(j, "running"));
        json_decref(j);
        ee_free(out);
    }
    ee_engine_close(e);
    _exit(q == 0 && r == 0 ? 0 : 3);
}

Test(exec_hosts, three_hosts_drain_a_shared_queue_each_run_once)
{
    /* The submitting process runs no workers: every run is left to the hosts. */
    ee_engine *e = open_host(0);
    char wf[32];
    ee_test_host_sync(e, wf);

    ee_principal *who[WORKSPACES];
    for (int w = 0; w < WORKSPACES; w++) {
        char ws[96], user[96], org[96];
        snprintf(ws, sizeof ws, "ws-%s-%d", schema, w);
        snprintf(user, sizeof user, "user-%s-%d", schema, w);
        snprintf(org, sizeof org, "org-%s-%d", schema, w);
        cr_assert_eq(ee_principal_new(&who[w], ws, user, org), EE_OK);
    }
    static char ids[RUNS][EE_EXEC_ID_SIZE];
    for (int i = 0; i < RUNS; i++) {
        char req[128];
        snprintf(req, sizeof req, "{\"parameters\": {\"text\": \"run %d\"}}", i);
        ee_status st = ee_exec_submit(e, who[i % WORKSPACES], wf, req, NULL, NULL, ids[i]);
        cr_assert_eq(st, EE_OK, "submit %d: %s", i, ee_error_last_message());
    }
    long long q = 0, r = 0;
    ee_test_host_stats(e, &q, &r);
    cr_assert_eq(q, RUNS, "all %d runs wait in the queue before a host starts (queued %lld)",
                 RUNS, q);

    pid_t pids[HOSTS];
    for (int h = 0; h < HOSTS; h++) {
        pids[h] = fork();
        cr_assert_neq(pids[h], -1);
        if (pids[h] == 0)
            host_child();
    }
    for (int h = 0; h < HOSTS; h++) {
        int status = 0;
        cr_assert_eq(waitpid(pids[h], &status, 0), pids[h]);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "host %d ended with status %d before the queue was drained", h, status);
    }

    /* Each execution reached n8n exactly once. */
    json_t *counts = NULL;
    cr_assert_eq(ee_fake_upstream_call(&n8n, "GET", "/__counts", NULL, &counts), 200);
    cr_assert_not_null(counts);
    cr_assert_eq(json_object_size(counts), RUNS, "%zu distinct executions reached n8n",
                 json_object_size(counts));
    for (int i = 0; i < RUNS; i++) {
        json_t *n = json_object_get(counts, ids[i]);
        cr_assert_not_null(n, "execution %s never reached n8n", ids[i]);
        cr_assert_eq(json_integer_value(n), 1, "execution %s reached n8n %lld times", ids[i],
                     (long long)json_integer_value(n));
    }
    json_decref(counts);
    /* ... and every record says completed, with the echo as its output. */
    for (int i = 0; i < RUNS; i++) {
        char *rec = NULL;
        cr_assert_eq(ee_exec_get(e, who[i % WORKSPACES], ids[i], &rec), EE_OK, "%s",
                     ee_error_last_message());
        json_t *j = json_loads(rec, 0, NULL);
        cr_assert_str_eq(json_string_value(json_object_get(j, "status")), "completed", "%s", rec);
        char want[32];
        snprintf(want, sizeof want, "run %d", i);
        cr_assert_str_eq(json_string_value(json_object_get(
                             json_object_get(j, "outputData"), "echo")), want, "%s", rec);
        json_decref(j);
        ee_free(rec);
    }
    for (int w = 0; w < WORKSPACES; w++)
        ee_principal_free(who[w]);
    ee_engine_close(e);
}
