/*
 * Several engines on one database account the same ended executions of
 * one workspace at once (as workers of several processes finishing runs,
 * and recovery re-accounting them, would): each execution is booked once,
 * and the free allowance is consumed exactly once - never past it.
 */
#ifndef EE_TEST_BILLING_RACE_H
#define EE_TEST_BILLING_RACE_H

#include "billing_test.h"

#include <pthread.h>

#include "exec/exec_internal.h"
#include "source_dir.h"

enum { NENG = 3, NREC = 200 };

static ee_engine *engines[NENG];
static char ids[NREC][25];
static const int64_t allowance = 20000000; /* $0.02 */

/* NENG engines on the storage `uri`. */
static void br_open(const char *uri)
{
    atomic_store(&test_now, T_2026_03_01 + DAY_MS);
    for (int i = 0; i < NENG; i++) {
        ee_config *cfg = ee_test_config_new(uri, test_clock, NULL);
        char data[1024]; /* integration tests have no EE_SOURCE_DIR: from this header's path */
        cr_assert(ee_test_source_data_dir(data, sizeof data));
        ee_test_config_set(cfg, "EE_DATA_DIR", data);
        ee_test_config_set(cfg, "EXEC_WORKERS", "0");
        ee_test_config_set(cfg, "FREE_TIER_MONTHLY_ALLOWANCE", "0.02");
        ee_test_config_set(cfg, "PLATFORM_API_MARKUP_PERCENTAGE", "20");
        engines[i] = ee_test_engine_open_config(cfg);
    }
}

static void br_close(void)
{
    for (int i = 0; i < NENG; i++)
        ee_engine_close(engines[i]);
}

/* An ended, not yet accounted execution (what the final write leaves). */
static void insert_ended(int i, int64_t cost, bool customer)
{
    x_rec r;
    memset(&r, 0, sizeof r);
    snprintf(r.id, sizeof r.id, "%024x", 0x5eed00 + i);
    snprintf(ids[i], sizeof ids[i], "%s", r.id);
    snprintf(r.workflow_id, sizeof r.workflow_id, "%s",
             i % 2 ? "aaaaaaaaaaaaaaaaaaaaaaaa" : "bbbbbbbbbbbbbbbbbbbbbbbb");
    snprintf(r.workspace, sizeof r.workspace, "ws-race");
    r.user_id = strdup(i % 3 ? "u1" : "u2");
    r.org_id = strdup("org-race");
    r.status = X_COMPLETED;
    r.input = json_object();
    r.key_customer = customer;
    snprintf(r.key_provider, sizeof r.key_provider, "openrouter");
    r.cost_nano = cost;
    r.platform_cost_nano = customer ? 0 : cost;
    r.tokens = 100;
    int64_t now = atomic_load(&test_now);
    r.created_at = now - 1000;
    r.started_at = now - 900;
    r.completed_at = now;
    r.exec_ms = 900;
    cr_assert_eq(ee__exec_insert(engines[0], &r), EE_OK, "%s", ee_error_last_message());
    ee__exec_rec_clear(&r);
}

typedef struct {
    int engine;
} worker_arg;

static atomic_int go, failures;

static void *worker(void *payload)
{
    worker_arg *a = payload;
    ee_engine *e = engines[a->engine];
    while (!atomic_load(&go))
        ;
    for (int k = 0; k < NREC; k++) {
        int i = k; /* all in one order: the most collisions */
        x_rec r;
        if (ee__exec_load(e, "ws-race", ids[i], &r) != EE_OK) {
            atomic_fetch_add(&failures, 1);
            continue;
        }
        if (ee__exec_bill(ee__exec_state(e), &r, NULL, NULL, NULL) != EE_OK)
            atomic_fetch_add(&failures, 1);
        ee__exec_rec_clear(&r);
    }
    return NULL;
}

/* The race: every engine (two threads each) books every run at once. */
static void br_run(void)
{
    int64_t marked_sum = 0;
    for (int i = 0; i < NREC; i++) {
        bool customer = i % 5 == 0;
        int64_t cost = 400000 + (int64_t)i * 7919; /* ~$0.0004-0.0009, x1.2 */
        insert_ended(i, cost, customer);
        if (!customer)
            marked_sum += cost + expected_markup(cost, 2000);
    }
    cr_assert(marked_sum > allowance, "the runs must cost more than the allowance");
    pthread_t th[NENG * 2];
    worker_arg args[NENG * 2];
    atomic_store(&go, 0);
    atomic_store(&failures, 0);
    for (int t = 0; t < NENG * 2; t++) { /* two threads per engine */
        args[t].engine = t % NENG;
        cr_assert_eq(pthread_create(&th[t], NULL, worker, &args[t]), 0);
    }
    atomic_store(&go, 1);
    for (int t = 0; t < NENG * 2; t++)
        pthread_join(th[t], NULL);
    cr_assert_eq(atomic_load(&failures), 0, "%d bookings failed", atomic_load(&failures));
    /* each record carries one charge; together they are the month */
    int64_t sum[5] = {0};
    for (int i = 0; i < NREC; i++) {
        x_rec r;
        cr_assert_eq(ee__exec_load(engines[1], "ws-race", ids[i], &r), EE_OK);
        cr_assert(r.charged, "execution %d was not booked", i);
        sum[0]++;
        sum[1] += r.charge_cost;
        sum[2] += r.charge_markup;
        sum[3] += r.charge_allowance;
        sum[4] += r.charge_charged;
        ee__exec_rec_clear(&r);
    }
    ee_principal *p = NULL;
    cr_assert_eq(ee_principal_new(&p, "ws-race", "admin", "org-race"), EE_OK);
    json_t *m = month_doc(engines[2], p, "2026-03");
    static const char *const keys[] = {"totalExecutions", "totalCost", "totalMarkup",
                                       "allowanceUsed", "totalCharged"};
    for (int k = 0; k < 5; k++)
        cr_assert_eq(usage_int(m, keys[k]), sum[k], "%s: month %lld, records %lld", keys[k],
                     (long long)usage_int(m, keys[k]), (long long)sum[k]);
    cr_assert_eq(usage_int(m, "totalExecutions"), NREC, "a run was booked twice or not at all");
    cr_assert_eq(usage_int(m, "allowanceUsed"), allowance, "the allowance was not used exactly");
    cr_assert_eq(usage_int(m, "totalCharged"), marked_sum - allowance);
    assert_breakdown_sums(m);
    json_decref(m);
    /* the usage rows count each run once */
    char *out = NULL;
    cr_assert_eq(ee_billing_usage(engines[0], p, "{\"period\": \"2026-03\"}", &out), EE_OK, "%s",
                 out);
    json_t *u = json_loads(out, 0, NULL);
    ee_free(out);
    int64_t n = 0;
    json_t *rows = json_object_get(u, "data");
    for (size_t i = 0; i < json_array_size(rows); i++)
        n += json_integer_value(json_object_get(json_array_get(rows, i), "totalExecutions"));
    cr_assert_eq(n, NREC);
    json_decref(u);
    ee_principal_free(p);
}

#endif
