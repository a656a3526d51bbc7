/*
 * ee_exec_cost() sums the run's stored calls itself (lib/exec/exec_api.c):
 * calls whose counts sum past int64 - stored by another process or a
 * host's storage past the run's own total, which refuses to - answer
 * EE_ECORRUPT, never totals that wrapped to negative numbers.
 */
#include <bson/bson.h>
#include <jansson.h>

#include "exec/exec_internal.h"
#include "support_test.h"

#define WS "ws-cost"
#define XID "65a000000000000000000c01"
#define WFID "65a0000000000000000000ff"

static void insert_run(ee_engine *e)
{
    x_rec r;
    memset(&r, 0, sizeof r);
    snprintf(r.id, sizeof r.id, "%s", XID);
    snprintf(r.workflow_id, sizeof r.workflow_id, "%s", WFID);
    snprintf(r.workspace, sizeof r.workspace, "%s", WS);
    r.workflow_name = strdup("Costly");
    r.user_id = strdup("user-1");
    r.org_id = strdup("org-1");
    r.status = X_COMPLETED;
    r.input = json_object();
    r.created_at = INT64_C(1700000000000);
    cr_assert_eq(ee__exec_insert(e, &r), EE_OK, "%s", ee_error_last_message());
    ee__exec_rec_clear(&r);
}

/* One metered call as the gateway stores it (lib/gateway/grant.c). */
static void insert_call(ee_engine *e, const char *call_id, int64_t tokens, int64_t cost)
{
    bson_t doc;
    bson_init(&doc);
    BSON_APPEND_UTF8(&doc, "executionId", XID);
    BSON_APPEND_UTF8(&doc, "callId", call_id);
    BSON_APPEND_UTF8(&doc, "provider", "openrouter");
    BSON_APPEND_INT64(&doc, "promptTokens", tokens);
    BSON_APPEND_INT64(&doc, "completionTokens", 0);
    BSON_APPEND_INT64(&doc, "totalTokens", tokens);
    BSON_APPEND_INT64(&doc, "costNano", cost);
    BSON_APPEND_UTF8(&doc, "source", "platform");
    BSON_APPEND_INT32(&doc, "httpStatus", 200);
    BSON_APPEND_INT64(&doc, "createdAt", INT64_C(1700000001000));
    ee_status st = ee_storage_insert(ee__engine_storage(e), "gatewayCalls", WS,
                                     bson_get_data(&doc), doc.len, NULL);
    bson_destroy(&doc);
    cr_assert_eq(st, EE_OK, "%s", ee_error_last_message());
}

static ee_status cost_of(ee_engine *e, const ee_principal *p, char **out)
{
    *out = NULL;
    return ee_exec_cost(e, p, XID, out);
}

Test(exec_cost_totals, calls_summing_past_int64_are_refused_not_wrapped)
{
    ee_engine *e = st_engine(NULL, NULL);
    ee_principal *p = st_principal(WS, "org-1");
    insert_run(e);
    insert_call(e, "65a000000000000000000d01", INT64_C(9000000000000000000), 1);
    insert_call(e, "65a000000000000000000d02", INT64_C(9000000000000000000), 1);
    char *out = NULL;
    ee_status st = cost_of(e, p, &out);
    cr_expect_eq(st, EE_ECORRUPT, "got %s: %s", ee_status_name(st), out ? out : "(null)");
    cr_expect_not_null(strstr(ee_error_last_message(), "past int64"), "%s",
                       ee_error_last_message());
    ee_free(out);
    ee_principal_free(p);
    ee_engine_close(e);
}

Test(exec_cost_totals, costs_summing_past_int64_are_refused_not_wrapped)
{
    ee_engine *e = st_engine(NULL, NULL);
    ee_principal *p = st_principal(WS, "org-1");
    insert_run(e);
    insert_call(e, "65a000000000000000000d01", 1, INT64_MAX);
    insert_call(e, "65a000000000000000000d02", 1, 1);
    char *out = NULL;
    ee_status st = cost_of(e, p, &out);
    cr_expect_eq(st, EE_ECORRUPT, "got %s: %s", ee_status_name(st), out ? out : "(null)");
    ee_free(out);
    ee_principal_free(p);
    ee_engine_close(e);
}

Test(exec_cost_totals, large_sums_that_fit_are_answered)
{
    ee_engine *e = st_engine(NULL, NULL);
    ee_principal *p = st_principal(WS, "org-1");
    insert_run(e);
    insert_call(e, "65a000000000000000000d01", INT64_MAX - 1, INT64_MAX - 5);
    insert_call(e, "65a000000000000000000d02", 1, 5);
    char *out = NULL;
    ee_status st = cost_of(e, p, &out);
    cr_assert_eq(st, EE_OK, "got %s: %s", ee_status_name(st), out ? out : "(null)");
    json_t *doc = json_loads(out, 0, NULL);
    ee_free(out);
    json_t *totals = json_object_get(doc, "totals");
    cr_expect_eq(json_integer_value(json_object_get(totals, "tokens")), INT64_MAX);
    cr_expect_eq(json_integer_value(json_object_get(totals, "cost")), INT64_MAX);
    cr_expect_eq(json_integer_value(json_object_get(totals, "calls")), 2);
    json_decref(doc);
    ee_principal_free(p);
    ee_engine_close(e);
}
