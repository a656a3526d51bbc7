/*
 * The two shapes of an execution record (lib/exec/record.c): what is
 * stored (every field survives a store and a load, "run" included) and
 * what the door answers (the full answer of ee_exec_get and the brief one
 * of ee_exec_list: members, their order, dates as ISO text, the cost also
 * in USD, nothing of "run"). Pins the shapes one builder produces.
 */
#include <jansson.h>

#include "exec/exec_internal.h"
#include "support_test.h"

#define WS "ws-shapes"
#define XID "65a000000000000000000001"
#define WFID "65a0000000000000000000ff"
#define SHA "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* A record with every field set; `final` adds what an ended run has. */
static void full_rec(x_rec *r, bool final)
{
    memset(r, 0, sizeof *r);
    snprintf(r->id, sizeof r->id, "%s", XID);
    snprintf(r->workflow_id, sizeof r->workflow_id, "%s", WFID);
    snprintf(r->workspace, sizeof r->workspace, "%s", WS);
    r->workflow_name = strdup("Shapes");
    r->user_id = strdup("user-1");
    r->org_id = strdup("org-1");
    r->status = final ? X_COMPLETED : X_PENDING;
    r->input = json_pack("{s:s}", "q", "x");
    r->idem_key = strdup("idem-1");
    r->created_at = INT64_C(1700000000123);
    r->ticket_json = strdup("{\"t\":1}");
    r->timeout_ms = 60000;
    r->deadline_ms = INT64_C(1700000060123);
    r->fail_status = -7;
    r->use_customer_key = true;
    r->email_to = strdup("a@example.com");
    if (!final)
        return;
    r->output = json_pack("{s:i}", "a", 1);
    r->has_ref = true;
    snprintf(r->ref.sha256, sizeof r->ref.sha256, "%s", SHA);
    r->ref.bytes = 42;
    r->ref.storage_resv = 987654321;
    r->exec_ms = 1500;
    r->key_customer = true;
    snprintf(r->key_provider, sizeof r->key_provider, "openrouter");
    snprintf(r->key_id, sizeof r->key_id, "key-9");
    r->cost_nano = 1500000;
    r->platform_cost_nano = 250000; /* a customer-key run that also used a platform search */
    r->tokens = 77;
    r->email_sent = true;
    r->email_sent_at = INT64_C(1700000003004);
    r->email_on_demand = true;
    r->error_message = strdup("boom");
    r->n8n_id = strdup("n8n-5");
    r->started_at = INT64_C(1700000001005);
    r->completed_at = INT64_C(1700000002506);
}

static char *dump(json_t *j)
{
    cr_assert_not_null(j);
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    cr_assert_not_null(s);
    return s;
}

static void check_render(const x_rec *r, bool full, const char *want)
{
    char *got = dump(ee__exec_render(r, full));
    cr_expect_str_eq(got, want);
    free(got);
}

#define HEAD                                                                                     \
    "{\"_id\":\"" XID "\",\"workflowCatalogId\":\"" WFID "\",\"workflowName\":\"Shapes\","         \
    "\"workspaceId\":\"" WS "\",\"userId\":\"user-1\",\"orgId\":\"org-1\","

/* What an ended run answers after apiKeyUsed, in both shapes. */
#define ENDED_TAIL                                                                               \
    "\"emailSent\":true,\"emailSentAt\":\"2023-11-14T22:13:23.004Z\","                          \
    "\"errorMessage\":\"boom\",\"n8nExecutionId\":\"n8n-5\","                                 \
    "\"idempotencyKey\":\"idem-1\",\"createdAt\":\"2023-11-14T22:13:20.123Z\","               \
    "\"startedAt\":\"2023-11-14T22:13:21.005Z\",\"completedAt\":\"2023-11-14T22:13:22.506Z\"}"

Test(record_shapes, the_full_answer_of_an_ended_run_has_every_member_in_order)
{
    x_rec r;
    full_rec(&r, true);
    check_render(&r, true,
                 HEAD "\"status\":\"completed\",\"inputData\":{\"q\":\"x\"},\"outputData\":{\"a\":1},"
                      "\"outputRef\":{\"bytes\":42,\"sha256\":\"" SHA "\"},"
                      "\"executionTimeMs\":1500,"
                      "\"apiKeyUsed\":{\"type\":\"customer\",\"provider\":\"openrouter\","
                      "\"cost\":1500000,\"costUsd\":\"0.001500000\",\"platformCost\":250000,"
                      "\"platformCostUsd\":\"0.000250000\",\"tokensUsed\":77,"
                      "\"keyId\":\"key-9\"},"
                      ENDED_TAIL);
    ee__exec_rec_clear(&r);
}

Test(record_shapes, the_brief_answer_leaves_out_input_and_output)
{
    x_rec r;
    full_rec(&r, true);
    r.key_customer = false;
    r.key_id[0] = '\0';
    check_render(&r, false,
                 HEAD "\"status\":\"completed\","
                      "\"outputRef\":{\"bytes\":42,\"sha256\":\"" SHA "\"},"
                      "\"executionTimeMs\":1500,"
                      "\"apiKeyUsed\":{\"type\":\"platform\",\"provider\":\"openrouter\","
                      "\"cost\":1500000,\"costUsd\":\"0.001500000\",\"platformCost\":250000,"
                      "\"platformCostUsd\":\"0.000250000\",\"tokensUsed\":77},"
                      ENDED_TAIL);
    ee__exec_rec_clear(&r);
}

Test(record_shapes, a_pending_run_answers_only_what_it_has)
{
    x_rec r;
    full_rec(&r, false);
    check_render(&r, true,
                 HEAD "\"status\":\"pending\",\"inputData\":{\"q\":\"x\"},\"outputData\":null,"
                      "\"executionTimeMs\":0,\"emailSent\":false,\"idempotencyKey\":\"idem-1\","
                      "\"createdAt\":\"2023-11-14T22:13:20.123Z\"}");
    ee__exec_rec_clear(&r);
}

/* Store `r`, load it back and compare every field, "run" included. */
static void round_trip(bool final)
{
    ee_engine *e = st_engine(NULL, NULL);
    x_rec r, back;
    full_rec(&r, final);
    cr_assert_eq(ee__exec_insert(e, &r), EE_OK, "%s", ee_error_last_message());
    cr_assert_eq(ee__exec_load(e, WS, XID, &back), EE_OK, "%s", ee_error_last_message());
    cr_expect_str_eq(back.id, r.id);
    cr_expect_str_eq(back.workflow_id, r.workflow_id);
    cr_expect_str_eq(back.workspace, r.workspace);
    cr_expect_str_eq(back.workflow_name, r.workflow_name);
    cr_expect_str_eq(back.user_id, r.user_id);
    cr_expect_str_eq(back.org_id, r.org_id);
    cr_expect_eq(back.status, r.status);
    cr_expect(json_equal(back.input, r.input));
    if (final)
        cr_expect(json_equal(back.output, r.output));
    else
        cr_expect_null(back.output);
    cr_expect_eq(back.has_ref, r.has_ref);
    cr_expect_str_eq(back.ref.sha256, r.ref.sha256);
    cr_expect_eq(back.ref.bytes, r.ref.bytes);
    cr_expect_eq(back.ref.storage_resv, r.ref.storage_resv);
    cr_expect_eq(back.exec_ms, r.exec_ms);
    cr_expect_eq(back.key_customer, r.key_customer);
    cr_expect_str_eq(back.key_provider, r.key_provider);
    cr_expect_str_eq(back.key_id, r.key_id);
    cr_expect_eq(back.cost_nano, r.cost_nano);
    cr_expect_eq(back.platform_cost_nano, r.platform_cost_nano);
    cr_expect_eq(back.tokens, r.tokens);
    cr_expect_eq(back.email_sent, r.email_sent);
    cr_expect_eq(back.email_sent_at, r.email_sent_at);
    if (final) {
        cr_expect_str_eq(back.error_message, r.error_message);
        cr_expect_str_eq(back.n8n_id, r.n8n_id);
    } else {
        cr_expect_null(back.error_message);
        cr_expect_null(back.n8n_id);
    }
    cr_expect_str_eq(back.idem_key, r.idem_key);
    cr_expect_eq(back.created_at, r.created_at);
    cr_expect_eq(back.started_at, r.started_at);
    cr_expect_eq(back.completed_at, r.completed_at);
    cr_expect_str_eq(back.ticket_json, r.ticket_json);
    cr_expect_eq(back.timeout_ms, r.timeout_ms);
    cr_expect_eq(back.deadline_ms, r.deadline_ms);
    cr_expect_eq(back.fail_status, r.fail_status);
    cr_expect_eq(back.use_customer_key, r.use_customer_key);
    cr_expect_str_eq(back.email_to, r.email_to);
    cr_expect_eq(back.email_on_demand, r.email_on_demand);
    ee__exec_rec_clear(&back);
    ee__exec_rec_clear(&r);
    ee_engine_close(e);
}

Test(record_shapes, an_ended_run_survives_a_store_and_a_load)
{
    round_trip(true);
}

Test(record_shapes, a_pending_run_survives_a_store_and_a_load)
{
    round_trip(false);
}

/* ---- a change from the record as last known (ee__exec_change_from) ------------------------ */

typedef struct {
    int calls;
    const char *note;
} note_arg;

/* Writes a note on a record still pending; keeps any other. */
static ee_status note_if_pending(x_rec *r, void *payload)
{
    note_arg *a = payload;
    a->calls++;
    if (r->status != X_PENDING)
        return EE__RECORD_KEEP;
    free(r->error_message);
    r->error_message = strdup(a->note);
    return EE_OK;
}

static ee_status set_n8n(x_rec *r, void *payload)
{
    free(r->n8n_id);
    r->n8n_id = strdup(payload);
    return EE_OK;
}

static ee_status set_running(x_rec *r, void *payload)
{
    (void)payload;
    r->status = X_RUNNING;
    return EE_OK;
}

Test(record_shapes, a_copy_owns_its_strings_and_keeps_every_field)
{
    x_rec r, c;
    full_rec(&r, true);
    r.revision = 7;
    cr_assert_eq(ee__exec_rec_copy(&c, &r), EE_OK);
    char *a = dump(ee__exec_render(&r, true)), *b = dump(ee__exec_render(&c, true));
    cr_expect_str_eq(a, b);
    free(a);
    free(b);
    cr_expect_eq(c.revision, 7);
    cr_expect_neq(c.workflow_name, r.workflow_name);
    cr_expect_neq(c.ticket_json, r.ticket_json);
    cr_expect_str_eq(c.ticket_json, r.ticket_json);
    cr_expect_str_eq(c.email_to, r.email_to);
    cr_expect_str_eq(c.idem_key, r.idem_key);
    ee__exec_rec_clear(&r); /* the copy stands alone */
    cr_expect_str_eq(c.workflow_name, "Shapes");
    cr_expect_eq(json_integer_value(json_object_get(c.output, "a")), 1);
    ee__exec_rec_clear(&c);
}

Test(record_shapes, a_change_from_a_current_record_is_written_at_its_revision)
{
    ee_engine *e = st_engine(NULL, NULL);
    x_rec r, out, back;
    full_rec(&r, false);
    cr_assert_eq(ee__exec_insert(e, &r), EE_OK, "%s", ee_error_last_message());
    note_arg a = {0, "first"};
    cr_assert_eq(ee__exec_change_from(e, &r, note_if_pending, &a, &out), EE_OK, "%s",
                 ee_error_last_message());
    cr_expect_eq(a.calls, 1, "no second attempt");
    cr_expect_str_eq(out.error_message, "first");
    cr_expect_gt(out.revision, r.revision);
    cr_assert_eq(ee__exec_load(e, WS, XID, &back), EE_OK);
    cr_expect_str_eq(back.error_message, "first");
    cr_expect_eq(back.revision, out.revision);
    cr_expect_str_eq(back.ticket_json, r.ticket_json, "the rest as it was");
    ee__exec_rec_clear(&back);
    ee__exec_rec_clear(&out);
    ee__exec_rec_clear(&r);
    ee_engine_close(e);
}

Test(record_shapes, a_change_from_an_outdated_record_is_made_again_on_the_stored_one)
{
    ee_engine *e = st_engine(NULL, NULL);
    x_rec r, out, back;
    full_rec(&r, false);
    cr_assert_eq(ee__exec_insert(e, &r), EE_OK, "%s", ee_error_last_message());
    /* another writer moves it on: r is out of date */
    cr_assert_eq(ee__exec_change(e, WS, XID, set_n8n, "n8n-77", NULL), EE_OK);
    note_arg a = {0, "second"};
    cr_assert_eq(ee__exec_change_from(e, &r, note_if_pending, &a, &out), EE_OK, "%s",
                 ee_error_last_message());
    cr_expect_eq(a.calls, 2, "tried on the copy, then on the stored record");
    cr_assert_eq(ee__exec_load(e, WS, XID, &back), EE_OK);
    cr_expect_str_eq(back.n8n_id, "n8n-77", "the other writer's change is kept");
    cr_expect_str_eq(back.error_message, "second");
    cr_expect_eq(back.revision, out.revision);
    ee__exec_rec_clear(&back);
    ee__exec_rec_clear(&out);
    /* moved on so that the change no longer applies: decided on what is stored */
    cr_assert_eq(ee__exec_change(e, WS, XID, set_running, NULL, NULL), EE_OK);
    a = (note_arg){0, "third"};
    cr_assert_eq(ee__exec_change_from(e, &r, note_if_pending, &a, &out), EE_OK, "%s",
                 ee_error_last_message());
    cr_expect_eq(a.calls, 2);
    cr_expect_eq(out.status, X_RUNNING, "out is the stored record");
    cr_expect_str_eq(out.error_message, "second");
    cr_assert_eq(ee__exec_load(e, WS, XID, &back), EE_OK);
    cr_expect_str_eq(back.error_message, "second", "nothing written on the stale copy's word");
    cr_expect_eq(back.status, X_RUNNING);
    ee__exec_rec_clear(&back);
    ee__exec_rec_clear(&out);
    ee__exec_rec_clear(&r);
    ee_engine_close(e);
}
