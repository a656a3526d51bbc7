/*
 * Workers start when something needs them, not at open: an engine that never
 * runs an execution starts no thread (a host's clock and log callbacks stay
 * on its own threads: a Node host's clock, for one, cannot be called from
 * another thread while its main thread waits in ee_engine_close()).
 * ee_exec_workers_start() starts them at once, once.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <jansson.h>

#include "engine_fixture.h"
#include "execengine/exec.h"

static int threads_now(void)
{
    DIR *d = opendir("/proc/self/task");
    cr_assert_not_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static ee_engine *open_with(const char *workers)
{
    ee_config *cfg = ee_test_config_new("memory:", NULL, NULL);
    ee_test_config_set(cfg, "EE_COUNTERS_URI", "memory:");
    ee_test_config_set(cfg, "EXEC_WORKERS", workers);
    ee_engine *e = NULL;
    ee_status st = ee_engine_open(&e, cfg);
    ee_config_free(cfg);
    cr_assert_eq(st, EE_OK, "%s", ee_error_last_message());
    return e;
}

Test(exec_workers, an_engine_that_runs_nothing_starts_no_thread)
{
    int before = threads_now();
    ee_engine *e = open_with("4");
    cr_assert_eq(threads_now(), before, "open started threads");
    char *out = NULL;
    cr_assert_eq(ee_exec_stats(e, &out), EE_OK, "%s", ee_error_last_message());
    ee_free(out);
    cr_assert_eq(threads_now(), before, "reading the queue's figures started threads");
    ee_engine_close(e);
}

Test(exec_workers, workers_start_on_request_once_and_stop_at_close)
{
    int before = threads_now();
    ee_engine *e = open_with("4");
    cr_assert_eq(ee_exec_workers_start(e), EE_OK, "%s", ee_error_last_message());
    int running = threads_now();
    cr_assert_eq(running, before + 5, "4 workers and the lease keeper (%d -> %d)", before,
                 running);
    cr_assert_eq(ee_exec_workers_start(e), EE_OK);
    cr_assert_eq(threads_now(), running, "a second start starts nothing");
    ee_engine_close(e);
    cr_assert_eq(threads_now(), before, "close joined them");
    cr_assert_eq(ee_exec_workers_start(NULL), EE_EINVAL);
}

Test(exec_workers, no_workers_when_exec_workers_is_zero)
{
    int before = threads_now();
    ee_engine *e = open_with("0");
    cr_assert_eq(ee_exec_workers_start(e), EE_OK);
    cr_assert_eq(threads_now(), before);
    ee_engine_close(e);
}

/* The default, -1, takes MAX_CONCURRENT_EXECUTIONS, a per-workspace cap that
 * goes up to 10^6: as a thread count it is held to EXEC_WORKERS' own
 * maximum (it was 10^6 threads, each with its stack, at the first run). */
Test(exec_workers, the_default_worker_count_is_bounded)
{
    ee_config *cfg = ee_test_config_new("memory:", NULL, NULL);
    ee_test_config_set(cfg, "EE_COUNTERS_URI", "memory:");
    ee_test_config_set(cfg, "MAX_CONCURRENT_EXECUTIONS", "1000000");
    ee_engine *e = NULL;
    ee_status st = ee_engine_open(&e, cfg);
    ee_config_free(cfg);
    cr_assert_eq(st, EE_OK, "%s", ee_error_last_message());
    char *out = NULL;
    cr_assert_eq(ee_exec_stats(e, &out), EE_OK, "%s", ee_error_last_message());
    json_t *doc = json_loads(out, 0, NULL);
    ee_free(out);
    cr_assert_not_null(doc);
    cr_assert_eq(json_integer_value(json_object_get(doc, "workers")), 10000);
    json_decref(doc);
    ee_engine_close(e);
}
