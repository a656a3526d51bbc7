/*
 * tests/support/exec_host.h - engines for the tests where several host
 * processes share one store and the fake n8n (tests/support/fake_n8n.py):
 * tests/unit/exec/exec_crash.c (a host killed, another one on the same
 * SQLite file) and tests/integration/exec_hosts.c (three hosts on one
 * PostgreSQL and Redis).
 *
 *   const char *const kv[] = {"EE_STORAGE_URI", uri, ..., NULL};
 *   ee_engine *e = ee_test_host_open(n8n.base, 4, kv);     // asserts
 *   ee_engine *h = ee_test_host_try_open(n8n.base, 8, kv); // after fork()
 */
#ifndef EE_TEST_EXEC_HOST_H
#define EE_TEST_EXEC_HOST_H

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>

#include "execengine/catalog.h"
#include "execengine/config.h"
#include "execengine/engine.h"
#include "execengine/exec.h"

/* An engine with `workers` workers on the fake n8n at `n8n_base`, the
 * options of `kv` (key, value, ..., NULL: the secret, data dir, storage
 * and the test's own) and what every such host sets, or NULL (the error
 * detail says why): a forked host calls it, where a Criterion assertion
 * would not reach the runner. */
static inline ee_engine *ee_test_host_try_open(const char *n8n_base, int workers,
                                               const char *const *kv)
{
    ee_config *cfg = NULL;
    if (ee_config_new(&cfg) != EE_OK)
        return NULL;
    char w[16];
    snprintf(w, sizeof w, "%d", workers);
    const char *const common[] = {
        "N8N_BASE_URL", n8n_base,
        "N8N_API_KEY", "fake-n8n-key",
        "EXEC_WORKERS", w,
        "EXEC_POLL_MS", "50",
        "MAX_EXECUTIONS_PER_USER_PER_HOUR", "100000",
        /* Admission holds a workspace's slot from submit to the end of the
         * run: every queued run needs one (the free plan has no cap of its
         * own, so this is the limit). */
        "MAX_CONCURRENT_EXECUTIONS", "1000",
        NULL,
    };
    const char *const *lists[] = {kv, common};
    for (size_t l = 0; l < 2; l++)
        for (size_t i = 0; lists[l] != NULL && lists[l][i] != NULL; i += 2)
            if (ee_config_set(cfg, lists[l][i], lists[l][i + 1]) != EE_OK) {
                ee_config_free(cfg);
                return NULL;
            }
    ee_engine *e = NULL;
    ee_status st = ee_engine_open(&e, cfg);
    ee_config_free(cfg);
    return st == EE_OK ? e : NULL;
}

static inline ee_engine *ee_test_host_open(const char *n8n_base, int workers,
                                           const char *const *kv)
{
    ee_engine *e = ee_test_host_try_open(n8n_base, workers, kv);
    cr_assert_not_null(e, "ee_engine_open: %s", ee_error_last_message());
    return e;
}

/* Queued and running executions, from any host's view of the shared queue. */
static inline void ee_test_host_stats(ee_engine *e, long long *queued, long long *running)
{
    char *out = NULL;
    cr_assert_eq(ee_exec_stats(e, &out), EE_OK, "%s", ee_error_last_message());
    json_t *j = json_loads(out, 0, NULL);
    cr_assert_not_null(j, "%s", out);
    *queued = json_integer_value(json_object_get(j, "queued"));
    *running = json_integer_value(json_object_get(j, "running"));
    json_decref(j);
    ee_free(out);
}

/* Sync the catalog from the fake n8n; its one workflow's catalog id into wf. */
static inline void ee_test_host_sync(ee_engine *e, char wf[32])
{
    char *report = NULL;
    cr_assert_eq(ee_catalog_sync(e, &report), EE_OK, "%s", ee_error_last_message());
    ee_free(report);
    char *list = NULL;
    cr_assert_eq(ee_catalog_list(e, NULL, "{\"limit\": 10}", &list), EE_OK, "%s",
                 ee_error_last_message());
    json_t *l = json_loads(list, 0, NULL);
    ee_free(list);
    json_t *first = json_array_get(json_object_get(l, "data"), 0);
    cr_assert_not_null(first, "the fake n8n's workflow was not synced");
    /* Catalog entries name their id "id" (records of executions: "_id"). */
    const char *entry = json_string_value(json_object_get(first, "id"));
    cr_assert_not_null(entry, "the synced entry has no id");
    snprintf(wf, 32, "%s", entry);
    json_decref(l);
}

#endif
