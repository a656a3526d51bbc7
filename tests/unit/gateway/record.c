/*
 * A metered call is stored as one step: the call's document and the
 * execution's running total are written together (one commit), so a
 * failure of either leaves neither - the total never misses a listed call
 * and a listed call is always in the total.
 */
#include "gw_test.h"
#include "engine/engine.h"
#include "gateway/gateway_internal.h"
#include "storage/storage.h"
#include <pthread.h>
#include <unistd.h>

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

/* The embedded listener answers first and meters after the answer has gone
 * out (ee__gateway_handle_deferred()): the answer carries the call's cost
 * while its write is still pending, and the run's usage waits for it. */
typedef struct {
    g_state *st;
    g_pending *pending;
} later_arg;

static void *commit_later(void *arg)
{
    later_arg *l = arg;
    usleep(200 * 1000);
    ee__gateway_pending_commit(l->st, l->pending);
    return NULL;
}

static gw_answer deferred_call(const char *token, g_pending **pending)
{
    char auth[128];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
    const char *headers[] = {auth, "Content-Type: application/json"};
    static const char body[] = "{\"model\": \"openai/gpt-4o-mini\", \"messages\": []}";
    ee_gateway_request req = {EE_GATEWAY_REQUEST_VERSION, "POST", OPENROUTER_PATH, NULL,
                              headers, 2, body, sizeof body - 1};
    gw_answer a = {0};
    ee_gateway_sink sink = {gw_head, gw_body, &a};
    cr_assert_eq(ee__gateway_handle_deferred(e, &req, &sink, pending), EE_OK, "%s",
                 ee_error_last_message());
    return a;
}

Test(gateway_record, a_call_answered_before_its_write_is_metered_once_the_write_is_done)
{
    g_state *st = ee__gateway_state(e);
    char tok[EE__GATEWAY_TOKEN_SIZE];
    gw_grant(e, p, EXEC_T, LLM, 1, NULL, UP_COST_NANO, gw_now + 60000, tok);
    up_reset(UP_OPENROUTER_JSON);
    g_pending *pending = NULL;
    gw_answer a = deferred_call(tok, &pending);
    cr_expect_eq(a.status, 200, "%s", a.body ? a.body : "");
    cr_expect_str_eq(gw_header(&a, "x-ee-call-cost-nano"), "123457");
    gw_answer_free(&a);
    cr_assert_not_null(pending, "the write is left to the caller");
    cr_expect_eq(listed_calls(), 0, "not written yet");
    cr_expect_eq(ee__gateway_pending_cost(st, "eeeeeeeeeeeeeeeeeeeeeeee"), 0);
    cr_expect_not(ee__gateway_settle(st, EXEC_T, 20), "one call of the run is pending");
    cr_expect_eq(ee__gateway_pending_cost(st, EXEC_T), UP_COST_NANO);
    /* the budget (one call's cost) counts the pending call: the next call
     * is refused before its write is done */
    g_pending *second = NULL;
    a = deferred_call(tok, &second);
    gw_expect_error(&a, 402, "EE_ESPEND");
    gw_answer_free(&a);
    cr_expect_null(second);
    cr_expect(ee__gateway_settle(st, "eeeeeeeeeeeeeeeeeeeeeeee", 0), "another run has none");
    /* the run's usage, read while the write is pending, waits for it */
    later_arg l = {st, pending};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, commit_later, &l), 0);
    ee__gateway_usage u;
    cr_assert_eq(ee__gateway_usage_of(e, "ws-gw", EXEC_T, &u), EE_OK);
    pthread_join(th, NULL);
    cr_expect_eq(u.calls, 2, "the call and the refusal");
    cr_expect_eq(u.cost_nano, UP_COST_NANO);
    cr_expect_eq(listed_calls(), 2);
    cr_expect_eq(ee__gateway_pending_cost(st, EXEC_T), 0);
    cr_expect(ee__gateway_settle(st, EXEC_T, 0));
    /* still spent once written: a refusal leaves no write to the caller,
     * it is stored at once */
    a = deferred_call(tok, &pending);
    gw_expect_error(&a, 402, "EE_ESPEND");
    gw_answer_free(&a);
    cr_expect_null(pending);
    cr_expect_eq(listed_calls(), 3);
    /* nor does a bad token */
    a = deferred_call("eetk_nope", &pending);
    cr_expect_eq(a.status, 401);
    gw_answer_free(&a);
    cr_expect_null(pending);
}

/* The listener hands each answered call's write to the metering writer
 * (its own thread): closing the engine writes every call handed over. */
Test(gateway_record, answered_calls_are_written_by_the_writer_and_all_of_them_by_close)
{
    char dir[] = "/tmp/ee-gw-writer-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char uri[128];
    snprintf(uri, sizeof uri, "sqlite://%s/db.sqlite", dir);
    ee_engine *f = gw_engine(uri, t, 1000);
    char tok[EE__GATEWAY_TOKEN_SIZE];
    gw_grant(f, p, EXEC_T, LLM, 1, NULL, -1, gw_now + 60000, tok);
    up_reset(UP_OPENROUTER_JSON);
    ee_engine *keep = e;
    e = f; /* deferred_call() calls `e` */
    enum { N = 40 };
    g_pending *pending[N];
    for (int i = 0; i < N; i++) {
        gw_answer a = deferred_call(tok, &pending[i]);
        cr_expect_eq(a.status, 200, "%s", a.body ? a.body : "");
        gw_answer_free(&a);
        cr_assert_not_null(pending[i]);
    }
    g_state *st = ee__gateway_state(f);
    for (int i = 0; i < N; i++)
        ee__gateway_pending_commit(st, pending[i]);
    ee_engine_close(f); /* no settle: close writes what is handed over */
    e = keep;
    f = gw_engine(uri, t, 1000);
    int n = 0;
    cr_assert_eq(ee__gateway_calls(f, "ws-gw", EXEC_T, count_call, &n), EE_OK, "%s",
                 ee_error_last_message());
    cr_expect_eq(n, N, "every call handed over was written");
    ee__gateway_usage u;
    cr_assert_eq(ee__gateway_usage_of(f, "ws-gw", EXEC_T, &u), EE_OK);
    cr_expect_eq(u.calls, N);
    cr_expect_eq(u.cost_nano, (int64_t)N * UP_COST_NANO);
    ee_engine_close(f);
    char cmd[96];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}
