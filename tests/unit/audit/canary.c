/*
 * The gateway's budget refusal as an audit entry, and the canary scan: a
 * customer key and platform keys with canary values, every action of the
 * audit log run once on a SQLite file, then every stored audit entry (read
 * raw from the storage, every workspace) and the SQLite file itself are
 * searched for the canaries.
 *
 * The fake n8n's "llm" webhook calls the engine's gateway with the run's
 * token, as the workflow's OpenRouter node would, until it is refused
 * (as tests/unit/exec/exec_budget.c does).
 */
#include "../exec/exec_gateway.h"

#include <sys/stat.h>

#include <execengine/billing.h>
#include <execengine/credentials.h>
#include <execengine/gateway.h>
#include <execengine/notify.h>
#include <execengine/quota.h>

#include "audit/audit.h"
#include "audit_test.h"
#include "core/record.h"
#include "engine/engine.h"

#define C_OPENROUTER "sk-or-v1-CANARY-audit-platform-8d1f"
#define C_SERPER "CANARY-audit-serper-6b2e90"
#define C_RESEND "re_CANARY-audit-resend-51c0aa"
#define C_CUSTOMER "sk-or-v1-CANARY-audit-customer-3a7c55"
#define C_CUSTOMER2 "sk-or-v1-CANARY-audit-customer2-e41d"
#define C_PERSONAL "ya29.CANARY-audit-personal-0b9f"
#define C_PERSONAL2 "ya29.CANARY-audit-personal2-5d7e"
#define MAX_CALLS 6

static ee_engine *engine;
static ee_transport *transport;
static ee_n8n *client;
static ee_principal *alice;
static char dir[64], db[128];
static int refusals;

static void spend(const char *token)
{
    for (int i = 0; i < MAX_CALLS; i++) {
        int status = gw_call(engine, token);
        if (status == 402)
            refusals++;
        if (status != 200)
            break;
    }
}

static int email_posts;

static ee_status http(void *ctx, const ee_http_request *req, ee_http_response *resp)
{
    /* the e-mail API: the first results e-mail accepted, the second refused */
    if (strcmp(ee_http_request_url(req), "http://fake.resend/emails") == 0)
        return fake_answer_json(resp, email_posts++ == 0 ? 200 : 422,
                                json_pack("{s:s}", "id", "re_1"));
    if (gw_is_upstream(req))
        return gw_upstream_answer(resp, GW_UP_ANSWER);
    gw_llm_webhook(req, spend);
    return fake_http(ctx, req, resp);
}

static void setup(void)
{
    (void)fake_engine_config; /* this engine has its own transport (the gateway's upstream) */
    (void)fake_hits;
    fake_setup();
    refusals = 0;
    gw_client_new(&transport, &client, http);
    snprintf(dir, sizeof dir, "/tmp/ee-audit-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(db, sizeof db, "%s/ee.db", dir);
    char uri[160];
    snprintf(uri, sizeof uri, "sqlite://%s", db);
    ee_config *cfg = ee_test_config_new(uri, NULL, NULL);
    ee_test_config_set(cfg, "EXEC_WORKERS", "1");
    ee_test_config_set(cfg, "EXEC_POLL_MS", "50");
    ee_test_config_set(cfg, "PLATFORM_OPENROUTER_KEY", C_OPENROUTER);
    ee_test_config_set(cfg, "PLATFORM_SERPER_KEY", C_SERPER);
    ee_test_config_set(cfg, "PLATFORM_RESEND_KEY", C_RESEND);
    ee_test_config_set(cfg, "PLATFORM_FROM_EMAIL", "results@example.com");
    ee_test_config_set(cfg, "EMAIL_API_URL", "http://fake.resend");
    ee_test_config_set(cfg, "EMAIL_POLL_MS", "0");
    email_posts = 0;
    ee_test_config_set(cfg, "EXEC_RUN_BUDGET_MAX", "0.0002");
    engine = gw_engine_open(cfg, transport, client);
    cr_assert_eq(ee_principal_new(&alice, "ws-alice", "u-alice", "org-a"), EE_OK);
}

static void teardown(void)
{
    ee_engine_close(engine);
    ee_principal_free(alice);
    ee_n8n_free(client);
    ee_transport_free(transport);
    fake_teardown();
    char path[200];
    static const char *const files[] = {"ee.db", "ee.db-wal", "ee.db-shm", "ee.db-journal"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
}

TestSuite(audit_canary, .init = setup, .fini = teardown, .timeout = 60);

/* Run n8n workflow `n8n_id` as alice with `request`; id gets its id. */
static ee_status run_wf(const char *n8n_id, const char *request, char id[EE_EXEC_ID_SIZE])
{
    char wf[25], *out = NULL;
    entry_id(engine, n8n_id, wf);
    ee_status st = ee_exec_submit(engine, alice, wf, request, NULL, NULL, id);
    cr_assert_eq(st, EE_OK, "%s", ee_error_last_message());
    st = ee_exec_wait(engine, alice, id, 20000, &out);
    ee_free(out);
    return st;
}

Test(audit_canary, a_budget_refusal_at_the_gateway_is_one_entry_and_the_run_ends_refused)
{
    char id[EE_EXEC_ID_SIZE];
    cr_assert_eq(run_wf("wfL", "{}", id), EE_ESPEND);
    cr_assert_eq(refusals, 1, "one call refused");
    json_t *all = audit_all(engine, alice, "\"action\": \"gateway.budget.refused\"", 50);
    cr_assert_eq(json_array_size(all), 1);
    json_t *e = json_array_get(all, 0);
    audit_expect(e, "engine", "ws-alice", "execution", id, "refused", "EE_ESPEND");
    cr_expect_str_eq(audit_str(e, "orgId"), "org-a");
    cr_expect_str_eq(audit_str(e, "detail.provider"), "openrouter");
    cr_expect_eq(json_integer_value(json_object_get(json_object_get(e, "detail"), "budget")),
                 200000);
    json_decref(all);
    all = audit_all(engine, alice, "\"action\": \"execution.finished\"", 50);
    cr_assert_eq(json_array_size(all), 1);
    audit_expect(json_array_get(all, 0), "engine", "ws-alice", "execution", id, "refused",
                 "EE_ESPEND");
    json_decref(all);
}

/* ---- the canary scan --------------------------------------------------------------------- */

static const char *const canaries[] = {C_OPENROUTER, C_SERPER,    C_RESEND,
                                       C_CUSTOMER,   C_CUSTOMER2, C_PERSONAL,
                                       C_PERSONAL2,  EE_TEST_ENCRYPTION_SECRET};

static void expect_no_canary(const void *data, size_t len, const char *where)
{
    if (data == NULL || len == 0)
        return; /* no file (the log checkpointed away) holds nothing */
    for (size_t i = 0; i < sizeof canaries / sizeof canaries[0]; i++)
        cr_expect_null(memmem(data, len, canaries[i], strlen(canaries[i])),
                       "%s holds canary %zu", where, i);
    /* and no part long enough to matter: the canaries' distinctive middle */
    cr_expect_null(memmem(data, len, "CANARY-audit", 12), "%s holds a canary's part", where);
}

typedef struct {
    size_t rows;
    json_t *actions;
} scan_acc;

static int scan_row(const ee_storage_row *row, void *payload)
{
    scan_acc *a = payload;
    a->rows++;
    expect_no_canary(row->data, row->len, "a stored audit entry");
    json_t *rec = NULL;
    cr_assert_eq(ee__record_decode(NULL, row->data, row->len, false, &rec), EE_OK);
    json_object_set_new(a->actions, json_string_value(json_object_get(rec, "action")),
                        json_true());
    json_decref(rec);
    return 0;
}

static void read_file(const char *path, uint8_t **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    *data = malloc(n > 0 ? (size_t)n : 1);
    *len = fread(*data, 1, n > 0 ? (size_t)n : 0, f);
    fclose(f);
}

Test(audit_canary, no_audit_entry_and_no_byte_of_the_file_holds_a_secret)
{
    char *out = NULL, key[32];
    /* keys: added, updated (a new key value), validated */
    cr_assert_eq(ee_cred_key_add(engine, alice,
                                 "{\"keyName\": \"mine\", \"provider\": \"openrouter\", "
                                 "\"apiKey\": \"" C_CUSTOMER "\"}",
                                 &out),
                 EE_OK, "%s", out);
    json_t *k = parse_doc(out);
    ee_free(out);
    snprintf(key, sizeof key, "%s", sget(k, "id"));
    json_decref(k);
    out = NULL;
    cr_assert_eq(ee_cred_key_update(engine, alice, key, "{\"apiKey\": \"" C_CUSTOMER2 "\"}",
                                    &out),
                 EE_OK, "%s", out);
    ee_free(out);
    out = NULL;
    (void)ee_cred_key_validate(engine, alice, key, &out);
    ee_free(out);
    /* executions: one on the customer's key, one refused at the gateway,
     * one failed, one cancelled */
    char id[EE_EXEC_ID_SIZE], req[256];
    snprintf(req, sizeof req,
             "{\"parameters\": {\"text\": \"hi\"}, \"useCustomApiKey\": true, \"apiKeyId\": "
             "\"%s\"}",
             key);
    (void)run_wf("wf0", req, id);
    /* its results e-mailed twice: sent, then refused for good (422) */
    for (int i = 0; i < 2; i++) {
        out = NULL;
        cr_assert_eq(ee_email_send_execution(engine, alice, id, "{\"to\": \"a@example.com\"}",
                                             &out),
                     EE_OK, "%s", out);
        ee_free(out);
        uint64_t sent = 0;
        cr_assert_eq(ee_email_outbox_run(engine, 10, &sent), EE_OK, "%s",
                     ee_error_last_message());
    }
    (void)run_wf("wfL", "{}", id);
    (void)run_wf("wf2", "{}", id);
    char wf[25];
    entry_id(engine, "wfA", wf);
    cr_assert_eq(ee_exec_submit(engine, alice, wf, "{}", NULL, NULL, id), EE_OK);
    cr_assert_eq(ee_exec_cancel(engine, alice, id), EE_OK, "%s", ee_error_last_message());
    out = NULL;
    (void)ee_exec_wait(engine, alice, id, 20000, &out);
    ee_free(out);
    /* a request refused for a missing personal credential */
    entry_id(engine, "wfG", wf);
    cr_assert_eq(ee_exec_submit(engine, alice, wf, "{}", NULL, NULL, id), EE_ECREDENTIALS);
    /* catalog, plans, subscription, a threshold, rotation, the key deleted */
    out = NULL;
    cr_assert_eq(ee_catalog_category_create(engine, "{\"name\": \"Canaries\"}", &out), EE_OK);
    json_t *cat = parse_doc(out);
    ee_free(out);
    out = NULL;
    cr_assert_eq(ee_catalog_category_update(engine, sget(cat, "id"), "{\"description\": \"d\"}",
                                            &out),
                 EE_OK, "%s", out);
    ee_free(out);
    json_decref(cat);
    out = NULL;
    cr_assert_eq(ee_catalog_create(engine, "{\"n8nWorkflowId\": \"wf-c\", \"name\": \"C\"}", &out),
                 EE_OK, "%s", out);
    json_t *ent = parse_doc(out);
    ee_free(out);
    out = NULL;
    cr_assert_eq(ee_catalog_update(engine, sget(ent, "id"), "{\"isActive\": false}", &out), EE_OK,
                 "%s", out);
    ee_free(out);
    json_decref(ent);
    /* a past billing month closed and paid */
    out = NULL;
    cr_assert_eq(ee_billing_close_month(engine, alice, "2020-01", &out), EE_OK, "%s", out);
    ee_free(out);
    out = NULL;
    cr_assert_eq(ee_billing_mark_paid(engine, alice, "2020-01", &out), EE_OK, "%s", out);
    ee_free(out);
    out = NULL;
    cr_assert_eq(ee_quota_plan_put(engine,
                                   "{\"name\": \"p10\", \"predictionsPerPeriod\": 10, "
                                   "\"executionsPerUserPerHour\": -1, "
                                   "\"concurrentExecutionsPerWorkspace\": -1}",
                                   &out),
                 EE_OK, "%s", out);
    ee_free(out);
    out = NULL;
    cr_assert_eq(ee_quota_subscription_put(engine, "{\"orgId\": \"org-a\", \"plan\": \"p10\"}",
                                           &out),
                 EE_OK, "%s", out);
    ee_free(out);
    for (int i = 0; i < 9; i++) {
        out = NULL;
        (void)ee_quota_admit(engine, alice, NULL, &out);
        ee_free(out);
    }
    cr_assert_eq(ee_quota_plan_delete(engine, "p10"), EE_OK);
    out = NULL;
    cr_assert_eq(ee_cred_rotate(engine, &out), EE_OK, "%s", out);
    ee_free(out);
    cr_assert_eq(ee_cred_key_delete(engine, alice, key), EE_OK);
    /* a personal credential stored, its token replaced, deleted */
    out = NULL;
    cr_assert_eq(ee_cred_personal_put(engine, alice,
                                      "{\"credentialName\": \"gmailOAuth2\", \"type\": \"oauth2\", "
                                      "\"accessToken\": \"" C_PERSONAL "\"}",
                                      &out),
                 EE_OK, "%s", out);
    json_t *pc = parse_doc(out);
    ee_free(out);
    char preq[256];
    snprintf(preq, sizeof preq,
             "{\"id\": \"%s\", \"credentialName\": \"gmailOAuth2\", \"type\": \"oauth2\", "
             "\"accessToken\": \"" C_PERSONAL2 "\"}",
             sget(pc, "id"));
    out = NULL;
    cr_assert_eq(ee_cred_personal_put(engine, alice, preq, &out), EE_OK, "%s", out);
    ee_free(out);
    cr_assert_eq(ee_cred_personal_delete(engine, alice, sget(pc, "id")), EE_OK);
    json_decref(pc);
    /* a platform credential (holding a canary key) switched off and on */
    out = NULL;
    cr_assert_eq(ee_cred_platform_list(engine, &out), EE_OK, "%s", out);
    json_t *pl = parse_doc(out);
    ee_free(out);
    const char *pid = sget(json_array_get(json_object_get(pl, "credentials"), 0), "id");
    cr_assert_not_null(pid);
    cr_assert_eq(ee_cred_platform_set_active(engine, pid, 0), EE_OK);
    cr_assert_eq(ee_cred_platform_set_active(engine, pid, 1), EE_OK);
    json_decref(pl);
    /* an e-mail template stored and deleted */
    char tpl[256];
    entry_id(engine, "wf0", wf);
    snprintf(tpl, sizeof tpl,
             "{\"workflowCatalogId\": \"%s\", \"subjectTemplate\": \"{{workflowName}}\", "
             "\"bodyTemplate\": \"<p>{{execution.status}}</p>\"}",
             wf);
    out = NULL;
    cr_assert_eq(ee_email_template_put(engine, NULL, tpl, &out), EE_OK, "%s", out);
    ee_free(out);
    cr_assert_eq(ee_email_template_delete(engine, NULL, wf), EE_OK);
    /* retention: executions and the audit log (nothing that old: each one entry) */
    uint64_t purged = 0;
    cr_assert_eq(ee_exec_purge(engine, &purged), EE_OK, "%s", ee_error_last_message());
    cr_assert_eq(ee_audit_purge(engine, 1, &purged), EE_OK, "%s", ee_error_last_message());
    cr_assert_eq(purged, 0);

    /* every stored entry, raw, of every workspace it can be in */
    scan_acc acc = {0, json_object()};
    static const char *const wss[] = {"ws-alice", "platform", "org-a"};
    for (size_t w = 0; w < 3; w++) {
        char *cursor = NULL;
        do {
            ee_storage_query_spec q = {.version = EE_STORAGE_QUERY_VERSION, .limit = 100,
                                       .cursor = cursor};
            char *next = NULL;
            cr_assert_eq(ee_storage_query(ee__engine_storage(engine), "auditLog", wss[w], &q,
                                          scan_row, &acc, &next),
                         EE_OK, "%s", ee_error_last_message());
            ee_free(cursor);
            cursor = next;
        } while (cursor != NULL);
    }
    /* every action of the list ran */
    for (int i = 0; i < EE__AUDIT_ACTION_COUNT; i++) {
        const char *name = ee__audit_action_name((ee__audit_action)i);
        cr_expect_not_null(json_object_get(acc.actions, name), "no %s entry", name);
    }
    cr_expect_geq(acc.rows, (size_t)EE__AUDIT_ACTION_COUNT);
    json_decref(acc.actions);
    /* the rendered answers too */
    json_t *all = audit_all(engine, alice, "", 500);
    char *text = json_dumps(all, JSON_COMPACT);
    expect_no_canary(text, strlen(text), "ee_audit_query's answer");
    free(text);
    json_decref(all);

    /* and the whole file, closed */
    ee_engine_close(engine);
    engine = NULL;
    static const char *const files[] = {"ee.db", "ee.db-wal"};
    for (size_t i = 0; i < 2; i++) {
        char path[200];
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        uint8_t *data;
        size_t len;
        read_file(path, &data, &len);
        if (i == 0)
            cr_assert_gt(len, 0, "the database file");
        expect_no_canary(data, len, path);
        free(data);
    }
}
