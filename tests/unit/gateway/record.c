/*
 * A metered call is stored as one step: the call's document and the
 * execution's running total are written together (one commit), so a
 * failure of either leaves neither - the total never misses a listed call
 * and a listed call is always in the total.
 */
#include "gw_test.h"
#include "engine/engine.h"
#include "storage/storage.h"

#define EXEC_T "dddddddddddddddddddddddd"

static ee_transport *t;
static ee_engine *e;
static ee_principal *p;

static void setup(void)
{
    gw_log_len = 0;
    t = up_transport();
    e = gw_engine(NULL, t, 1000);
    p = gw_principal("ws-gw", "u1");
}

static void teardown(void)
{
    ee_principal_free(p);
    ee_engine_close(e);
    ee_transport_free(t);
}

TestSuite(gateway_record, .init = setup, .fini = teardown, .timeout = 60);

static const char *const LLM[] = {"openrouter"};

static int count_call(const ee__gateway_call *c, void *payload)
{
    (void)c;
    (*(int *)payload)++;
    return 0;
}

static int listed_calls(void)
{
    int n = 0;
    cr_assert_eq(ee__gateway_calls(e, "ws-gw", EXEC_T, count_call, &n), EE_OK, "%s",
                 ee_error_last_message());
    return n;
}

Test(gateway_record, a_call_whose_total_cannot_be_written_is_not_stored_either)
{
    char tok[EE__GATEWAY_TOKEN_SIZE];
    gw_grant(e, p, EXEC_T, LLM, 1, NULL, -1, gw_now + 60000, tok);
    /* the execution's total holds a counter that is not a number: adding
     * the next call to it fails */
    bson_t *total = BCON_NEW("executionId", BCON_UTF8(EXEC_T), "callId", BCON_UTF8("total"),
                             "calls", BCON_UTF8("not a number"), "createdAt",
                             BCON_INT64(gw_now));
    cr_assert_eq(ee_storage_insert(ee__engine_storage(e), "gatewayCalls", "ws-gw",
                                   bson_get_data(total), total->len, NULL),
                 EE_OK, "%s", ee_error_last_message());
    bson_destroy(total);
    up_reset(UP_OPENROUTER_JSON);
    gw_answer a = gw_call(e, OPENROUTER_PATH, tok);
    cr_expect_eq(a.status, 200, "the upstream answered: the workflow gets its answer");
    gw_answer_free(&a);
    cr_expect_not_null(strstr(gw_log, "could not be metered"), "%s", gw_log);
    cr_expect_eq(listed_calls(), 0, "the call's document went with its total");
}

Test(gateway_record, calls_and_their_total_are_stored_together)
{
    char tok[EE__GATEWAY_TOKEN_SIZE];
    gw_grant(e, p, EXEC_T, LLM, 1, NULL, -1, gw_now + 60000, tok);
    up_reset(UP_OPENROUTER_JSON);
    for (int i = 0; i < 3; i++) {
        gw_answer a = gw_call(e, OPENROUTER_PATH, tok);
        cr_expect_eq(a.status, 200);
        gw_answer_free(&a);
    }
    ee__gateway_usage u;
    cr_assert_eq(ee__gateway_usage_of(e, "ws-gw", EXEC_T, &u), EE_OK);
    cr_expect_eq(u.calls, 3);
    cr_expect_eq(u.cost_nano, 3 * UP_COST_NANO);
    cr_expect_eq(listed_calls(), 3);
}
