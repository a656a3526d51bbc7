/*
 * Helpers of the billing tests: book an execution straight through the
 * billing module (as the pipeline's accounting does, in one transaction),
 * read a month back, and an injected clock.
 */
#ifndef EE_TEST_BILLING_H
#define EE_TEST_BILLING_H

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_fixture.h"
#include "execengine/billing.h"

#include "billing/billing.h"
#include "engine/engine.h"
#include "storage/storage.h"

#define NANO INT64_C(1000000000)
/* 2026-03-01T00:00:00Z */
#define T_2026_03_01 INT64_C(1772323200000)
#define DAY_MS INT64_C(86400000)

static _Atomic int64_t test_now = T_2026_03_01;

static inline int64_t test_clock(void *payload)
{
    (void)payload;
    return atomic_load(&test_now);
}

typedef struct {
    ee_engine *engine;
    const ee__billing_exec *x;
    ee__billing_charge *c;
} book_arg;

static inline ee_status book_scope(ee_storage *sto, void *payload)
{
    book_arg *a = payload;
    return ee__billing_apply(a->engine, sto, a->x, a->c);
}

/* Book `x` once, starting the transaction again when another writer came
 * first (as lib/exec/bill.c does). */
static inline ee_status book(ee_engine *e, const ee__billing_exec *x, ee__billing_charge *c)
{
    book_arg a = {e, x, c};
    ee_status st = EE_ECONFLICT;
    for (int i = 0; i < 1000 && (st == EE_ECONFLICT || st == EE_EEXISTS || st == EE_EBUSY); i++)
        st = ee__engine_atomic(e, book_scope, &a);
    return st;
}

static inline json_t *month_doc(ee_engine *e, const ee_principal *p, const char *month)
{
    char *out = NULL;
    ee_status st = ee_billing_month(e, p, month, &out);
    cr_assert_eq(st, EE_OK, "ee_billing_month(%s): %s", month, out ? out : "");
    json_t *doc = json_loads(out, 0, NULL);
    ee_free(out);
    cr_assert_not_null(doc);
    return doc;
}

static inline int64_t usage_int(const json_t *month, const char *key)
{
    return (int64_t)json_integer_value(json_object_get(json_object_get(month, "usage"), key));
}

/* The workflow's line of a month, or NULL. */
static inline const json_t *workflow_line(const json_t *month, const char *wf)
{
    const json_t *arr = json_object_get(json_object_get(month, "usage"), "byWorkflow");
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const json_t *w = json_array_get(arr, i);
        if (strcmp(json_string_value(json_object_get(w, "workflowId")), wf) == 0)
            return w;
    }
    return NULL;
}

/* Each byWorkflow column sums to the month's total. */
static inline void assert_breakdown_sums(const json_t *month)
{
    static const char *const cols[] = {"executions", "cost", "markup", "charged", "tokens"};
    static const char *const tots[] = {"totalExecutions", "totalCost", "totalMarkup",
                                       "totalCharged", "totalTokens"};
    const json_t *arr = json_object_get(json_object_get(month, "usage"), "byWorkflow");
    for (size_t c = 0; c < 5; c++) {
        int64_t sum = 0;
        for (size_t i = 0; i < json_array_size(arr); i++)
            sum += (int64_t)json_integer_value(json_object_get(json_array_get(arr, i), cols[c]));
        cr_assert_eq(sum, usage_int(month, tots[c]), "month %s: byWorkflow %s sums to %lld, "
                     "the total is %lld", json_string_value(json_object_get(month, "month")),
                     cols[c], (long long)sum, (long long)usage_int(month, tots[c]));
    }
}

/* cost x (10000 + bp) / 10000 rounded half-even, minus cost: computed
 * here on its own (exact in 128 bits) */
static inline int64_t expected_markup(int64_t cost, int64_t bp)
{
    __int128 x = (__int128)cost * (10000 + bp);
    __int128 q = x / 10000, r = x % 10000;
    if (r * 2 > 10000 || (r * 2 == 10000 && (q & 1)))
        q++;
    return (int64_t)q - cost;
}

/* An engine on memory: with the test clock and, where not NULL, the
 * markup, the monthly allowance and the billing cycle day. */
static inline ee_engine *billing_engine(const char *markup, const char *allowance,
                                        const char *cycle_day)
{
    ee_config *cfg = ee_test_config_new(NULL, test_clock, NULL);
    if (markup != NULL)
        ee_test_config_set(cfg, "PLATFORM_API_MARKUP_PERCENTAGE", markup);
    if (allowance != NULL)
        ee_test_config_set(cfg, "FREE_TIER_MONTHLY_ALLOWANCE", allowance);
    if (cycle_day != NULL)
        ee_test_config_set(cfg, "BILLING_CYCLE_DAY", cycle_day);
    return ee_test_engine_open_config(cfg);
}

#endif
