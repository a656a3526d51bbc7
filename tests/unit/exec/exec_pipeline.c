/*
 * The execution pipeline against a fake n8n (exec_fake.h): the happy paths,
 * n8n's failures, refusals before anything runs, cancellation, idempotency
 * and workspace isolation.
 */
#include "exec_fake.h"

#include <ctype.h>

#include "execengine/credentials.h"
#include "execengine/quota.h"


static ee_engine *engine;
static ee_principal *alice, *mallory;

static void setup(void)
{
    fake_setup();
    ee_config *cfg = ee_test_config_new(NULL, NULL, NULL);
    ee_test_config_set(cfg, "EXEC_WORKERS", "2");
    ee_test_config_set(cfg, "EXEC_POLL_MS", "50");
    engine = fake_engine_config(cfg);
    fake_sync(engine);
    cr_assert_eq(ee_principal_new(&alice, "ws-alice", "u1", "org-a"), EE_OK);
    cr_assert_eq(ee_principal_new(&mallory, "ws-mallory", "u9", "org-m"), EE_OK);
}

static void teardown(void)
{
    ee_engine_close(engine);
    ee_principal_free(alice);
    ee_principal_free(mallory);
    fake_teardown();
}

TestSuite(exec_pipeline, .init = setup, .fini = teardown, .timeout = 60);

/* Run the workflow synced from `n8n_id`; *rec gets the record (or NULL). */
static ee_status run(const char *n8n_id, const char *request, json_t **rec)
{
    char wf[25], *out = NULL;
    entry_id(engine, n8n_id, wf);
    ee_status st = ee_exec_run(engine, alice, wf, request, &out);
    *rec = out != NULL ? parse_doc(out) : NULL;
    ee_free(out);
    return st;
}

Test(exec_pipeline, a_synchronous_run_completes_with_the_webhook_answer_as_output)
{
    json_t *rec;
    ee_status st = run("wf0", "{\"parameters\": {\"text\": \"hello\"}}", &rec);
    cr_assert_eq(st, EE_OK, "%s", ee_error_last_message());
    cr_assert_str_eq(sget(rec, "status"), "completed");
    json_t *output = json_object_get(rec, "outputData");
    cr_assert_str_eq(sget(output, "echo"), "hello");
    cr_assert_null(json_object_get(output, "status"), "the convention's status is not output");
    cr_assert_str_eq(sget(json_object_get(rec, "inputData"), "text"), "hello");
    cr_assert_str_eq(sget(rec, "workspaceId"), "ws-alice");
    cr_assert_not_null(sget(rec, "completedAt"));
    cr_assert_eq(fake_predictions_used(engine, alice), 1, "the completed run counted once");
    /* the body n8n received: parameters and the ee member, the gateway token */
    cr_assert_eq(json_array_size(fake.bodies), 1);
    json_t *sent = parse_doc(json_string_value(json_array_get(fake.bodies, 0)));
    json_t *ee = json_object_get(sent, "ee");
    cr_assert_str_eq(sget(ee, "executionId"), sget(rec, "_id"));
    cr_assert_not_null(sget(ee, "gatewayToken"));
    cr_assert_str_eq(sget(sent, "text"), "hello");
    json_decref(sent);
    json_decref(rec);
}

Test(exec_pipeline, a_long_run_is_finished_by_polling_n8n)
{
    char wf[25], id[EE_EXEC_ID_SIZE], *out = NULL;
    entry_id(engine, "wfA", wf);
    cr_assert_eq(ee_exec_submit(engine, alice, wf, "{}", NULL, NULL, id), EE_OK, "%s",
                 ee_error_last_message());
    /* still running: n8n says so */
    cr_assert_eq(ee_exec_wait(engine, alice, id, 600, &out), EE_ETIMEOUT);
    json_t *rec = parse_doc(out);
    ee_free(out);
    cr_assert_str_eq(sget(rec, "status"), "running");
    cr_assert_str_eq(sget(rec, "n8nExecutionId"), "77");
    json_decref(rec);
    pthread_mutex_lock(&fake.lock);
    cr_assert_gt(fake.exec_polls, 0, "the worker asked n8n");
    fake.exec_done = 1;
    pthread_mutex_unlock(&fake.lock);
    cr_assert_eq(ee_exec_wait(engine, alice, id, 20000, &out), EE_OK, "%s", out);
    rec = parse_doc(out);
    ee_free(out);
    cr_assert_str_eq(sget(rec, "status"), "completed");
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(rec, "outputData"),
                                                    "answer")), 42);
    json_decref(rec);
}

Test(exec_pipeline, a_run_whose_answer_names_no_n8n_id_is_found_in_n8ns_execution_list)
{
    pthread_mutex_lock(&fake.lock);
    fake.exec_done = 1;
    pthread_mutex_unlock(&fake.lock);
    char wf[25], id[EE_EXEC_ID_SIZE], *out = NULL;
    entry_id(engine, "wfN", wf);
    cr_assert_eq(ee_exec_submit(engine, alice, wf, "{}", NULL, NULL, id), EE_OK);
    cr_assert_eq(ee_exec_wait(engine, alice, id, 20000, &out), EE_OK, "%s", out);
    json_t *rec = parse_doc(out);
    ee_free(out);
    cr_assert_str_eq(sget(rec, "n8nExecutionId"), "88", "matched by the trigger's executionId");
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(rec, "outputData"),
                                                    "answer")), 42);
    json_decref(rec);
}

Test(exec_pipeline, a_failure_reported_by_polling_fails_the_run_with_n8ns_message)
{
    char wf[25], id[EE_EXEC_ID_SIZE], *out = NULL;
    entry_id(engine, "wfA", wf);
    pthread_mutex_lock(&fake.lock);
    fake.exec_done = 2;
    pthread_mutex_unlock(&fake.lock);
    cr_assert_eq(ee_exec_submit(engine, alice, wf, "{}", NULL, NULL, id), EE_OK);
    cr_assert_eq(ee_exec_wait(engine, alice, id, 20000, &out), EE_EUPSTREAM, "%s", out);
    json_t *rec = parse_doc(out);
    ee_free(out);
    cr_assert_str_eq(sget(rec, "status"), "failed");
    cr_assert_str_eq(sget(rec, "errorMessage"), "the Wait node was stopped");
    json_decref(rec);
    cr_assert_eq(fake_predictions_used(engine, alice), 0, "a failed run gives its prediction back");
}

Test(exec_pipeline, n8n_answering_500_fails_the_run_keeps_the_message_and_releases_the_quota)
{
    json_t *rec;
    ee_status st = run("wf2", NULL, &rec);
    cr_assert_eq(st, EE_EUPSTREAM);
    cr_assert_str_eq(sget(rec, "status"), "failed");
    cr_assert(strstr(sget(rec, "errorMessage"), "Error in workflow") != NULL, "%s",
              sget(rec, "errorMessage"));
    json_decref(rec);
    cr_assert_eq(fake_predictions_used(engine, alice), 0);
    cr_assert_eq(fake_hits("fail"), 1, "a 500 is not retried");
}

Test(exec_pipeline, a_malformed_answer_fails_the_run)
{
    json_t *rec;
    cr_assert_eq(run("wf3", NULL, &rec), EE_EPARSE);
    cr_assert_str_eq(sget(rec, "status"), "failed");
    cr_assert(strstr(sget(rec, "errorMessage"), "not the JSON expected") != NULL);
    json_decref(rec);
}

Test(exec_pipeline, a_connection_refused_before_sending_is_retried)
{
    json_t *rec;
    cr_assert_eq(run("wf4", NULL, &rec), EE_OK, "%s", ee_error_last_message());
    cr_assert_str_eq(sget(rec, "status"), "completed");
    json_decref(rec);
    cr_assert_eq(fake_hits("flaky-refused"), 2, "two attempts never reached n8n");
    cr_assert_eq(fake_hits("flaky"), 1, "n8n received the request once");
}

Test(exec_pipeline, a_connection_reset_after_sending_is_not_retried)
{
    json_t *rec;
    cr_assert_eq(run("wf5", NULL, &rec), EE_ENETWORK);
    cr_assert_str_eq(sget(rec, "status"), "failed");
    cr_assert(strstr(sget(rec, "errorMessage"), "not retried") != NULL);
    json_decref(rec);
    cr_assert_eq(fake_hits("reset"), 1, "sent once, never again");
}

Test(exec_pipeline, a_webhook_that_times_out_fails_the_run_with_etimeout)
{
    json_t *rec;
    cr_assert_eq(run("wf6", NULL, &rec), EE_ETIMEOUT);
    cr_assert_str_eq(sget(rec, "status"), "failed");
    json_decref(rec);
    cr_assert_eq(fake_hits("slow"), 1);
}

Test(exec_pipeline, the_runs_timeout_bounds_the_wait_for_the_webhooks_answer)
{
    json_t *rec;
    cr_assert_eq(run("wf6", "{\"timeoutMs\": 2000}", &rec), EE_ETIMEOUT);
    pthread_mutex_lock(&fake.lock);
    int64_t t = fake.webhook_timeout_ms;
    pthread_mutex_unlock(&fake.lock);
    cr_assert(t > 0 && t <= 2000, "the webhook call may wait %lld ms", (long long)t);
    cr_assert(strstr(sget(rec, "errorMessage"), "within the run's timeout (2000 ms)") != NULL,
              "%s", sget(rec, "errorMessage"));
    json_decref(rec);
    /* without a timeout of its own: the default (EXEC_TIMEOUT_MS, 5 minutes) */
    cr_assert_eq(run("wf0", NULL, &rec), EE_OK);
    json_decref(rec);
    pthread_mutex_lock(&fake.lock);
    t = fake.webhook_timeout_ms;
    pthread_mutex_unlock(&fake.lock);
    cr_assert(t > 2000 && t <= 300000, "%lld", (long long)t);
}

Test(exec_pipeline, a_run_past_its_timeout_fails_with_etimeout)
{
    json_t *rec;
    cr_assert_eq(run("wfA", "{\"timeoutMs\": 1000}", &rec), EE_ETIMEOUT);
    cr_assert_str_eq(sget(rec, "status"), "failed");
    cr_assert(strstr(sget(rec, "errorMessage"), "timed out") != NULL);
    json_decref(rec);
    cr_assert_eq(fake_predictions_used(engine, alice), 0);
}

Test(exec_pipeline, invalid_parameters_are_refused_with_their_pointers_and_nothing_is_kept)
{
    char wf[25], id[EE_EXEC_ID_SIZE], *out = NULL;
    entry_id(engine, "wf0", wf);
    cr_assert_eq(ee_catalog_update(engine, wf,
                                   "{\"inputSchema\": {\"type\": \"object\", \"required\": "
                                   "[\"text\"], \"properties\": {\"text\": {\"type\": "
                                   "\"string\", \"maxLength\": 5}}}}",
                                   &out),
                 EE_OK, "%s", out);
    ee_free(out);
    cr_assert_eq(ee_exec_submit(engine, alice, wf, "{\"parameters\": {\"text\": \"too long\"}}",
                                NULL, NULL, id),
                 EE_EVALIDATION);
    cr_assert_eq(ee_error_last_json(&out), EE_OK);
    cr_assert(strstr(out, "/text") != NULL, "the violation names its pointer: %s", out);
    ee_free(out);
    cr_assert_eq(ee_exec_list(engine, alice, NULL, &out), EE_OK);
    json_t *list = parse_doc(out);
    ee_free(out);
    cr_assert_eq(json_array_size(json_object_get(list, "data")), 0);
    json_decref(list);
    cr_assert_eq(fake_predictions_used(engine, alice), 0);
    cr_assert_eq(json_array_size(fake.bodies), 0, "n8n was not called");
}

Test(exec_pipeline, a_bad_request_member_is_named)
{
    char wf[25], id[EE_EXEC_ID_SIZE];
    entry_id(engine, "wf0", wf);
    cr_assert_eq(ee_exec_submit(engine, alice, wf, "{\"timeoutMs\": 5}", NULL, NULL, id),
                 EE_EINVAL);
    cr_assert(strstr(ee_error_last_message(), "timeoutMs") != NULL);
    cr_assert_eq(ee_exec_submit(engine, alice, wf, "{\"paramters\": {}}", NULL, NULL, id),
                 EE_EINVAL);
    cr_assert(strstr(ee_error_last_message(), "paramters") != NULL);
    cr_assert_eq(ee_exec_submit(engine, alice, wf, "{\"useCustomApiKey\": true}", NULL, NULL, id),
                 EE_EINVAL);
    cr_assert(strstr(ee_error_last_message(), "apiKeyId") != NULL);
    /* a member of the wrong type, whatever the other says (as ee_cred_route) */
    static const char *const wrong[][2] = {
        {"{\"apiKeyId\": 42}", "apiKeyId"},
        {"{\"useCustomApiKey\": false, \"apiKeyId\": null}", "apiKeyId"},
        {"{\"useCustomApiKey\": \"yes\"}", "useCustomApiKey"},
        {"{\"useCustomApiKey\": 1, \"apiKeyId\": \"k\"}", "useCustomApiKey"},
    };
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        cr_expect_eq(ee_exec_submit(engine, alice, wf, wrong[i][0], NULL, NULL, id), EE_EINVAL,
                     "%s", wrong[i][0]);
        cr_expect(strstr(ee_error_last_message(), wrong[i][1]) != NULL, "%s: %s", wrong[i][0],
                  ee_error_last_message());
    }
}

Test(exec_pipeline, a_credential_gap_refuses_the_run_with_the_gaps_and_consumes_nothing)
{
    char wf[25], id[EE_EXEC_ID_SIZE], *out = NULL;
    entry_id(engine, "wfG", wf);
    cr_assert_eq(ee_exec_submit(engine, alice, wf, NULL, NULL, NULL, id), EE_ECREDENTIALS);
    cr_assert_eq(ee_error_last_json(&out), EE_OK);
    cr_assert(strstr(out, "gmailOAuth2") != NULL, "the gap is named: %s", out);
    ee_free(out);
    cr_assert_eq(fake_predictions_used(engine, alice), 0, "nothing consumed");
    cr_assert_eq(ee_exec_list(engine, alice, NULL, &out), EE_OK);
    json_t *list = parse_doc(out);
    ee_free(out);
    cr_assert_eq(json_array_size(json_object_get(list, "data")), 0, "no record kept");
    json_decref(list);
    cr_assert_eq(json_array_size(fake.bodies), 0);
}

Test(exec_pipeline, a_queued_run_cancelled_never_runs)
{
    /* an engine without workers: the run stays queued */
    ee_config *cfg = ee_test_config_new(NULL, NULL, NULL);
    ee_test_config_set(cfg, "EXEC_WORKERS", "0");
    ee_engine *idle = fake_engine_config(cfg);
    fake_sync(idle);
    char wf[25], id[EE_EXEC_ID_SIZE], *out = NULL;
    entry_id(idle, "wf0", wf);
    cr_assert_eq(ee_exec_submit(idle, alice, wf, NULL, NULL, NULL, id), EE_OK);
    cr_assert_eq(ee_exec_get(idle, alice, id, &out), EE_OK);
    json_t *rec = parse_doc(out);
    ee_free(out);
    cr_assert_str_eq(sget(rec, "status"), "pending");
    json_decref(rec);
    cr_assert_eq(ee_exec_cancel(idle, alice, id), EE_OK, "%s", ee_error_last_message());
    cr_assert_eq(ee_exec_wait(idle, alice, id, 0, &out), EE_ECANCELLED);
    ee_free(out);
    cr_assert_eq(ee_exec_cancel(idle, alice, id), EE_ESTATE, "an ended run stays as it is");
    cr_assert_eq(ee_exec_stats(idle, &out), EE_OK);
    json_t *stats = parse_doc(out);
    ee_free(out);
    cr_assert_eq(json_integer_value(json_object_get(stats, "queued")), 0, "its item is gone");
    json_decref(stats);
    ee_engine_close(idle);
    cr_assert_eq(json_array_size(fake.bodies), 0, "n8n never saw it");
}

Test(exec_pipeline, a_running_run_cancelled_ends_cancelled_and_gives_its_quota_back)
{
    char wf[25], id[EE_EXEC_ID_SIZE], *out = NULL;
    entry_id(engine, "wfA", wf);
    cr_assert_eq(ee_exec_submit(engine, alice, wf, NULL, NULL, NULL, id), EE_OK);
    for (int i = 0; i < 200 && fake_hits("async") == 0; i++)
        usleep(10000);
    cr_assert_eq(ee_exec_cancel(engine, alice, id), EE_OK, "%s", ee_error_last_message());
    cr_assert_eq(ee_exec_wait(engine, alice, id, 5000, &out), EE_ECANCELLED);
    json_t *rec = parse_doc(out);
    ee_free(out);
    cr_assert_str_eq(sget(rec, "status"), "cancelled");
    json_decref(rec);
    /* n8n finishing later changes nothing */
    pthread_mutex_lock(&fake.lock);
    fake.exec_done = 1;
    pthread_mutex_unlock(&fake.lock);
    usleep(300000);
    cr_assert_eq(ee_exec_get(engine, alice, id, &out), EE_OK);
    rec = parse_doc(out);
    ee_free(out);
    cr_assert_str_eq(sget(rec, "status"), "cancelled");
    json_decref(rec);
    cr_assert_eq(fake_predictions_used(engine, alice), 0);
}

/* The worker ends a run from the record it wrote when the run started,
 * without reading it again (ee__exec_change_from): a cancel stored while
 * the webhook was answering must win over the answer that comes after. */
Test(exec_pipeline, a_run_cancelled_while_its_webhook_answers_stays_cancelled)
{
    char wf[25], id[EE_EXEC_ID_SIZE], *out = NULL;
    entry_id(engine, "wf0", wf);
    atomic_store(&fake_echo_gate, 1); /* the webhook holds its answer */
    cr_assert_eq(ee_exec_submit(engine, alice, wf, "{\"parameters\": {\"text\": \"late\"}}", NULL,
                                NULL, id),
                 EE_OK);
    const char *status = "";
    json_t *rec = NULL;
    for (int i = 0; i < 500 && strcmp(status, "running") != 0; i++) {
        json_decref(rec);
        usleep(10000);
        cr_assert_eq(ee_exec_get(engine, alice, id, &out), EE_OK);
        rec = parse_doc(out);
        ee_free(out);
        status = sget(rec, "status");
    }
    cr_assert_str_eq(status, "running", "the run started and waits on its webhook");
    json_decref(rec);
    cr_assert_eq(ee_exec_cancel(engine, alice, id), EE_OK, "%s", ee_error_last_message());
    atomic_store(&fake_echo_gate, 0); /* n8n answers "completed" now */
    for (int i = 0; i < 500 && fake_hits("echo") == 0; i++)
        usleep(10000);
    cr_assert_eq(fake_hits("echo"), 1);
    usleep(300000); /* the worker's end and its accounting */
    cr_assert_eq(ee_exec_get(engine, alice, id, &out), EE_OK);
    rec = parse_doc(out);
    ee_free(out);
    cr_assert_str_eq(sget(rec, "status"), "cancelled");
    cr_assert_str_eq(sget(rec, "errorMessage"), "cancelled");
    cr_assert(json_is_null(json_object_get(rec, "outputData")) ||
                  json_object_get(rec, "outputData") == NULL,
              "the late answer is not kept");
    json_decref(rec);
    cr_assert_eq(fake_predictions_used(engine, alice), 0, "the quota is given back");
    cr_assert_eq(ee_exec_wait(engine, alice, id, 1000, &out), EE_ECANCELLED);
    ee_free(out);
}

typedef struct {
    char wf[25];
    char id[EE_EXEC_ID_SIZE];
    ee_status st;
} idem_arg;

static void *submit_same_key(void *arg)
{
    idem_arg *a = arg;
    a->st = ee_exec_submit(engine, alice, a->wf, "{\"idempotencyKey\": \"order-42\"}", NULL, NULL,
                           a->id);
    return NULL;
}

Test(exec_pipeline, one_idempotency_key_submitted_100_times_at_once_is_one_execution)
{
    enum { N = 100 };
    static idem_arg args[N];
    pthread_t t[N];
    char wf[25];
    entry_id(engine, "wf0", wf);
    for (int i = 0; i < N; i++) {
        memcpy(args[i].wf, wf, sizeof wf);
        cr_assert_eq(pthread_create(&t[i], NULL, submit_same_key, &args[i]), 0);
    }
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(args[i].st, EE_OK, "submit %d: %s", i, ee_status_name(args[i].st));
        cr_assert_str_eq(args[i].id, args[0].id, "submit %d got another execution", i);
    }
    char *out = NULL;
    cr_assert_eq(ee_exec_wait(engine, alice, args[0].id, 10000, &out), EE_OK);
    ee_free(out);
    cr_assert_eq(ee_exec_list(engine, alice, NULL, &out), EE_OK);
    json_t *list = parse_doc(out);
    ee_free(out);
    cr_assert_eq(json_array_size(json_object_get(list, "data")), 1);
    json_decref(list);
    cr_assert_eq(fake_hits("echo"), 1, "it ran once");
    cr_assert_eq(fake_predictions_used(engine, alice), 1, "and counted once");
}

/* ee_exec_run() with a key already used answers with the earlier run -
 * its record, ended - and runs nothing again (the repeat reads that run's
 * timeout and waits on it, where a new run waits for its own end). */
Test(exec_pipeline, a_synchronous_repeat_of_an_idempotency_key_answers_the_first_run)
{
    json_t *first, *again;
    const char *req = "{\"idempotencyKey\": \"run-7\", \"parameters\": {\"text\": \"one\"}}";
    cr_assert_eq(run("wf0", req, &first), EE_OK, "%s", ee_error_last_message());
    cr_assert_eq(run("wf0", req, &again), EE_OK, "%s", ee_error_last_message());
    cr_assert_str_eq(sget(again, "_id"), sget(first, "_id"), "the repeat is another run");
    cr_assert_str_eq(sget(again, "status"), "completed");
    cr_assert_str_eq(sget(json_object_get(again, "outputData"), "echo"), "one");
    json_decref(first);
    json_decref(again);
    cr_assert_eq(fake_hits("echo"), 1, "it ran once");
    cr_assert_eq(fake_predictions_used(engine, alice), 1, "and counted once");
}

Test(exec_pipeline, another_workspace_cannot_see_wait_on_or_cancel_an_execution)
{
    json_t *rec;
    cr_assert_eq(run("wf0", NULL, &rec), EE_OK);
    char id[EE_EXEC_ID_SIZE], *out = NULL;
    snprintf(id, sizeof id, "%s", sget(rec, "_id"));
    json_decref(rec);
    cr_assert_eq(ee_exec_get(engine, mallory, id, &out), EE_ENOTFOUND);
    ee_free(out);
    cr_assert_eq(ee_exec_wait(engine, mallory, id, 0, &out), EE_ENOTFOUND);
    ee_free(out);
    cr_assert_eq(ee_exec_results(engine, mallory, id, &out), EE_ENOTFOUND);
    ee_free(out);
    cr_assert_eq(ee_exec_cost(engine, mallory, id, &out), EE_ENOTFOUND);
    ee_free(out);
    cr_assert_eq(ee_exec_cancel(engine, mallory, id), EE_ENOTFOUND);
    cr_assert_eq(ee_exec_list(engine, mallory, NULL, &out), EE_OK);
    json_t *list = parse_doc(out);
    ee_free(out);
    cr_assert_eq(json_array_size(json_object_get(list, "data")), 0);
    json_decref(list);
    cr_assert_eq(ee_exec_get(engine, alice, id, &out), EE_OK, "the owner still sees it");
    ee_free(out);
}

Test(exec_pipeline, an_id_in_upper_case_is_not_found_and_changes_nothing)
{
    /* Storage reads any case of hex to the same document, but the id is a
     * key as text too: "6B16..." loaded the run as "_id": "6B16..." and
     * cancelled it under that name (its accounting keyed apart). */
    ee_config *cfg = ee_test_config_new(NULL, NULL, NULL);
    ee_test_config_set(cfg, "EXEC_WORKERS", "0");
    ee_engine *idle = fake_engine_config(cfg);
    fake_sync(idle);
    char wf[25], id[EE_EXEC_ID_SIZE], upper[EE_EXEC_ID_SIZE], *out = NULL;
    entry_id(idle, "wf0", wf);
    cr_assert_eq(ee_exec_submit(idle, alice, wf, NULL, NULL, NULL, id), EE_OK);
    for (size_t i = 0; i < sizeof id; i++)
        upper[i] = (char)toupper((unsigned char)id[i]);
    cr_assert_str_neq(upper, id, "the id has a hex letter");
    cr_expect_eq(ee_exec_get(idle, alice, upper, &out), EE_ENOTFOUND, "%s", out);
    ee_free(out);
    cr_expect_eq(ee_exec_results(idle, alice, upper, &out), EE_ENOTFOUND);
    ee_free(out);
    cr_expect_eq(ee_exec_cost(idle, alice, upper, &out), EE_ENOTFOUND);
    ee_free(out);
    cr_expect_eq(ee_exec_cancel(idle, alice, upper), EE_ENOTFOUND);
    cr_assert_eq(ee_exec_get(idle, alice, id, &out), EE_OK);
    json_t *rec = parse_doc(out);
    ee_free(out);
    cr_expect_str_eq(sget(rec, "status"), "pending", "the refused cancel changed nothing");
    cr_expect_str_eq(sget(rec, "_id"), id);
    json_decref(rec);
    cr_expect_eq(ee_exec_cancel(idle, alice, id), EE_OK, "%s", ee_error_last_message());
    ee_engine_close(idle);
}

Test(exec_pipeline, the_list_is_newest_first_filtered_and_paged)
{
    char wf0[25], wf2[25], id[EE_EXEC_ID_SIZE], *out = NULL;
    entry_id(engine, "wf0", wf0);
    entry_id(engine, "wf2", wf2);
    for (int i = 0; i < 3; i++) {
        json_t *rec;
        cr_assert_eq(run("wf0", NULL, &rec), EE_OK);
        json_decref(rec);
        usleep(2000); /* distinct createdAt */
    }
    json_t *rec;
    cr_assert_eq(run("wf2", NULL, &rec), EE_EUPSTREAM);
    snprintf(id, sizeof id, "%s", sget(rec, "_id"));
    json_decref(rec);
    cr_assert_eq(ee_exec_list(engine, alice, "{\"limit\": 2}", &out), EE_OK, "%s", out);
    json_t *page = parse_doc(out);
    ee_free(out);
    json_t *data = json_object_get(page, "data");
    cr_assert_eq(json_array_size(data), 2);
    cr_assert_str_eq(sget(json_array_get(data, 0), "_id"), id, "newest first");
    cr_assert_null(json_object_get(json_array_get(data, 0), "inputData"));
    const char *cursor = sget(page, "nextCursor");
    cr_assert_not_null(cursor);
    char q[512];
    snprintf(q, sizeof q, "{\"limit\": 2, \"cursor\": \"%s\"}", cursor);
    json_decref(page);
    cr_assert_eq(ee_exec_list(engine, alice, q, &out), EE_OK, "%s", out);
    page = parse_doc(out);
    ee_free(out);
    cr_assert_eq(json_array_size(json_object_get(page, "data")), 2);
    cr_assert(json_is_null(json_object_get(page, "nextCursor")));
    json_decref(page);
    snprintf(q, sizeof q, "{\"status\": \"failed\"}");
    cr_assert_eq(ee_exec_list(engine, alice, q, &out), EE_OK);
    page = parse_doc(out);
    ee_free(out);
    cr_assert_eq(json_array_size(json_object_get(page, "data")), 1);
    json_decref(page);
    snprintf(q, sizeof q, "{\"workflowId\": \"%s\"}", wf0);
    cr_assert_eq(ee_exec_list(engine, alice, q, &out), EE_OK);
    page = parse_doc(out);
    ee_free(out);
    cr_assert_eq(json_array_size(json_object_get(page, "data")), 3);
    json_decref(page);
    cr_assert_eq(ee_exec_list(engine, alice, "{\"status\": \"done\"}", &out), EE_EINVAL);
    ee_free(out);
}

static pthread_mutex_t done_lock = PTHREAD_MUTEX_INITIALIZER;
static int done_calls;
static ee_status done_status;

static void on_done(const char *execution_id, ee_status status, const char *record_json,
                    void *payload)
{
    (void)execution_id, (void)payload;
    pthread_mutex_lock(&done_lock);
    done_calls++;
    done_status = status;
    cr_assert(strstr(record_json, "\"failed\"") != NULL);
    pthread_mutex_unlock(&done_lock);
}

Test(exec_pipeline, the_done_callback_is_called_once_with_the_status)
{
    char wf[25], id[EE_EXEC_ID_SIZE], *out = NULL;
    entry_id(engine, "wf2", wf);
    cr_assert_eq(ee_exec_submit(engine, alice, wf, NULL, on_done, NULL, id), EE_OK);
    cr_assert_eq(ee_exec_wait(engine, alice, id, 10000, &out), EE_EUPSTREAM);
    ee_free(out);
    for (int i = 0; i < 100; i++) {
        pthread_mutex_lock(&done_lock);
        int n = done_calls;
        pthread_mutex_unlock(&done_lock);
        if (n > 0)
            break;
        usleep(10000);
    }
    usleep(100000);
    pthread_mutex_lock(&done_lock);
    cr_assert_eq(done_calls, 1);
    cr_assert_eq(done_status, EE_EUPSTREAM);
    pthread_mutex_unlock(&done_lock);
}

Test(exec_pipeline, secret_looking_output_members_are_dropped_before_storage)
{
    json_t *rec;
    cr_assert_eq(run("wf1", NULL, &rec), EE_OK);
    char *text = json_dumps(rec, 0);
    cr_assert(strstr(text, "hunter2-canary") == NULL, "%s", text);
    cr_assert(strstr(text, "sk-leak-canary") == NULL, "%s", text);
    cr_assert_str_eq(sget(json_object_get(json_object_get(rec, "outputData"), "nested"), "kept"),
                     "yes");
    free(text);
    json_decref(rec);
}

static _Atomic int64_t fake_now;

static int64_t clock_fn(void *payload)
{
    (void)payload;
    return fake_now;
}

Test(exec_pipeline, purge_deletes_the_records_older_than_the_retention)
{
    fake_now = INT64_C(1800000000000);
    ee_config *cfg = ee_test_config_new(NULL, clock_fn, NULL);
    ee_test_config_set(cfg, "EXEC_WORKERS", "1");
    ee_test_config_set(cfg, "RESULT_RETENTION_DAYS", "30");
    ee_engine *e = fake_engine_config(cfg);
    fake_sync(e);
    char wf[25], *out = NULL;
    entry_id(e, "wf0", wf);
    cr_assert_eq(ee_exec_run(e, alice, wf, NULL, &out), EE_OK, "%s", out);
    json_t *rec = parse_doc(out);
    ee_free(out);
    char id[EE_EXEC_ID_SIZE];
    snprintf(id, sizeof id, "%s", sget(rec, "_id"));
    json_decref(rec);
    uint64_t n = 99;
    fake_now += INT64_C(30) * 86400000;
    cr_assert_eq(ee_exec_purge(e, &n), EE_OK);
    cr_assert_eq(n, 0, "30 days old: kept");
    cr_assert_eq(ee_exec_get(e, alice, id, &out), EE_OK);
    ee_free(out);
    fake_now += INT64_C(2) * 86400000;
    cr_assert_eq(ee_exec_purge(e, &n), EE_OK);
    cr_assert_eq(n, 1);
    cr_assert_eq(ee_exec_get(e, alice, id, &out), EE_ENOTFOUND);
    ee_free(out);
    ee_engine_close(e);
}

/* A customer key chosen for a run must be the workspace's own, also when
 * no node of the workflow takes it: another workspace's key id is a
 * credential gap (nothing consumed, no record), and the workspace's own
 * key on a workflow that calls no LLM leaves the run on the platform. */
Test(exec_pipeline, another_workspaces_key_is_refused_and_an_unused_own_key_changes_nothing)
{
    char *out = NULL;
    cr_assert_eq(ee_cred_key_add(engine, mallory,
                                 "{\"keyName\": \"m\", \"provider\": \"openrouter\", "
                                 "\"apiKey\": \"sk-or-v1-mallory-0123456789abcdef\"}",
                                 &out),
                 EE_OK, "%s", out);
    json_t *key = parse_doc(out);
    ee_free(out);
    char mallory_key[64], req[256], wf[25];
    snprintf(mallory_key, sizeof mallory_key, "%s", sget(key, "id"));
    json_decref(key);
    entry_id(engine, "wf0", wf); /* echo: no LLM node */
    snprintf(req, sizeof req,
             "{\"parameters\": {\"text\": \"x\"}, \"useCustomApiKey\": true, \"apiKeyId\": \"%s\"}",
             mallory_key);
    ee_status st = ee_exec_run(engine, alice, wf, req, &out);
    cr_assert_eq(st, EE_ECREDENTIALS, "%s: %s", ee_status_name(st), out ? out : "");
    cr_assert(strstr(out, "customerApiKey") != NULL, "%s", out);
    ee_free(out);
    cr_assert_eq(fake_hits("echo"), 0, "nothing ran");
    cr_assert_eq(fake_predictions_used(engine, alice), 0, "nothing consumed");
    cr_assert_eq(ee_exec_list(engine, alice, NULL, &out), EE_OK);
    cr_assert(strstr(out, mallory_key) == NULL, "a record names the other workspace's key");
    ee_free(out);

    cr_assert_eq(ee_cred_key_add(engine, alice,
                                 "{\"keyName\": \"a\", \"provider\": \"openrouter\", "
                                 "\"apiKey\": \"sk-or-v1-alice-0123456789abcdef0\"}",
                                 &out),
                 EE_OK, "%s", out);
    key = parse_doc(out);
    ee_free(out);
    snprintf(req, sizeof req,
             "{\"parameters\": {\"text\": \"x\"}, \"useCustomApiKey\": true, \"apiKeyId\": \"%s\"}",
             sget(key, "id"));
    json_decref(key);
    cr_assert_eq(ee_exec_run(engine, alice, wf, req, &out), EE_OK, "%s", out);
    json_t *rec = parse_doc(out);
    ee_free(out);
    json_t *used = json_object_get(rec, "apiKeyUsed");
    cr_assert_str_neq(sget(used, "type"), "customer", "no node took the key");
    cr_assert_null(json_object_get(used, "keyId"));
    json_decref(rec);
}
