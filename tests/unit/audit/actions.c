/*
 * Each action the audit log lists leaves exactly one entry, with the right
 * action, actor, workspace, target and outcome - driven through the real
 * calls: customer keys, personal credentials, platform provisioning,
 * switching and rotation, executions over the fake n8n
 * (tests/unit/exec/exec_fake.h) and their purge, the catalog and its sync,
 * plans, subscriptions and a quota threshold, e-mail templates, the audit
 * log's own purge. A refused or malformed call leaves none.
 */
#include "../exec/exec_fake.h"

#include "audit_test.h"
#include "exec/exec_internal.h"
#include "execengine/billing.h"
#include "execengine/credentials.h"
#include "execengine/notify.h"
#include "execengine/quota.h"

#define C_CUSTOMER "sk-or-v1-CANARY-audit-customer-9f8e7d6c"
#define C_SERPER "CANARY-audit-serper-4c3b2a19"
#define C_ACCESS "ya29.CANARY-audit-access-71e0"

static ee_engine *engine;
static ee_principal *alice, *bob;
/* the platform's own entries: ee_audit_query() with no principal */
static ee_principal *const platform = NULL;

static void setup(void)
{
    fake_setup();
    ee_config *cfg = ee_test_config_new(NULL, NULL, NULL);
    ee_test_config_set(cfg, "EXEC_WORKERS", "2");
    ee_test_config_set(cfg, "EXEC_POLL_MS", "50");
    ee_test_config_set(cfg, "PLATFORM_SERPER_KEY", C_SERPER);
    engine = fake_engine_config(cfg);
    fake_sync(engine);
    cr_assert_eq(ee_principal_new(&alice, "ws-alice", "u-alice", "org-a"), EE_OK);
    cr_assert_eq(ee_principal_new(&bob, "ws-bob", "u-bob", "org-b"), EE_OK);
}

static void teardown(void)
{
    ee_engine_close(engine);
    ee_principal_free(alice);
    ee_principal_free(bob);
    fake_teardown();
}

TestSuite(audit_actions, .init = setup, .fini = teardown, .timeout = 60);

/* Entries of `action` in p's workspace whose target is `target`. */
static size_t count_for(const ee_principal *p, const char *action, const char *target)
{
    char extra[300];
    snprintf(extra, sizeof extra, "\"action\": \"%s\"", action);
    json_t *all = audit_all(engine, p, extra, 100);
    size_t n = 0, i;
    json_t *v;
    json_array_foreach(all, i, v)
        n += strcmp(audit_str(v, "target.id"), target) == 0;
    json_decref(all);
    return n;
}

static json_t *one_for(const ee_principal *p, const char *action, const char *target)
{
    char extra[300];
    snprintf(extra, sizeof extra, "\"action\": \"%s\"", action);
    json_t *all = audit_all(engine, p, extra, 100), *found = NULL, *v;
    size_t n = 0, i;
    json_array_foreach(all, i, v)
        if (strcmp(audit_str(v, "target.id"), target) == 0) {
            n++;
            found = v;
        }
    cr_assert_eq(n, 1, "%s of %s: %zu entries", action, target, n);
    json_incref(found);
    json_decref(all);
    return found;
}

static void add_key(const ee_principal *p, char id[32])
{
    char *out = NULL;
    ee_status st = ee_cred_key_add(engine, p,
                                   "{\"keyName\": \"mine\", \"provider\": \"openrouter\", "
                                   "\"apiKey\": \"" C_CUSTOMER "\"}",
                                   &out);
    cr_assert_eq(st, EE_OK, "%s", out);
    json_t *doc = parse_doc(out);
    ee_free(out);
    const char *v = sget(doc, "id") != NULL ? sget(doc, "id") : sget(doc, "_id");
    cr_assert_not_null(v);
    snprintf(id, 32, "%s", v);
    json_decref(doc);
}

Test(audit_actions, customer_key_added_updated_validated_deleted_once_each)
{
    char id[32], *out = NULL;
    add_key(alice, id);
    json_t *e = one_for(alice, "credentials.key.added", id);
    audit_expect(e, "u-alice", "ws-alice", "customerApiKey", id, "ok", "EE_OK");
    cr_expect_str_eq(audit_str(e, "orgId"), "org-a");
    cr_expect_str_eq(audit_str(e, "detail.provider"), "openrouter");
    json_decref(e);

    cr_assert_eq(ee_cred_key_update(engine, alice, id, "{\"keyName\": \"renamed\"}", &out),
                 EE_OK, "%s", out);
    ee_free(out);
    e = one_for(alice, "credentials.key.updated", id);
    audit_expect(e, "u-alice", "ws-alice", "customerApiKey", id, "ok", "EE_OK");
    cr_expect_str_eq(json_string_value(json_array_get(
                         json_object_get(json_object_get(e, "detail"), "fields"), 0)),
                     "keyName");
    json_decref(e);

    /* refused: a malformed patch, and another workspace's key: no entry */
    out = NULL;
    cr_expect_neq(ee_cred_key_update(engine, alice, id, "{\"isActive\": 3}", &out), EE_OK);
    ee_free(out);
    out = NULL;
    cr_expect_eq(ee_cred_key_update(engine, bob, id, "{\"keyName\": \"x\"}", &out),
                 EE_ENOTFOUND);
    ee_free(out);
    cr_expect_eq(count_for(alice, "credentials.key.updated", id), 1);
    cr_expect_eq(audit_count(engine, bob, "credentials."), 0);

    out = NULL;
    ee_status st = ee_cred_key_validate(engine, alice, id, &out);
    cr_expect(st == EE_OK || st == EE_EUNKNOWN, "%s: %s", ee_status_name(st), out);
    ee_free(out);
    e = one_for(alice, "credentials.key.validated", id);
    audit_expect(e, "u-alice", "ws-alice", "customerApiKey", id, "ok", "EE_OK");
    cr_expect_not_null(audit_str(e, "detail.result"));
    json_decref(e);

    cr_expect_eq(ee_cred_key_delete(engine, bob, id), EE_ENOTFOUND);
    cr_assert_eq(ee_cred_key_delete(engine, alice, id), EE_OK, "%s", ee_error_last_message());
    cr_expect_eq(ee_cred_key_delete(engine, alice, id), EE_ENOTFOUND);
    e = one_for(alice, "credentials.key.deleted", id);
    audit_expect(e, "u-alice", "ws-alice", "customerApiKey", id, "ok", "EE_OK");
    json_decref(e);
    cr_expect_eq(audit_count(engine, alice, "credentials."), 4);
}

Test(audit_actions, platform_provisioning_and_rotation_once_each)
{
    char *out = NULL;
    cr_assert_eq(ee_cred_platform_provision(engine, &out), EE_OK, "%s", out);
    ee_free(out);
    json_t *e = audit_one(engine, platform, "credentials.platform.provisioned");
    audit_expect(e, "system", "platform", "platformPool", "platform", "ok", "EE_OK");
    cr_expect_geq(json_integer_value(json_object_get(json_object_get(e, "detail"), "created")), 1);
    json_decref(e);
    out = NULL;
    cr_assert_eq(ee_cred_rotate(engine, &out), EE_OK, "%s", out);
    ee_free(out);
    e = audit_one(engine, platform, "credentials.secret.rotated");
    audit_expect(e, "system", "platform", "encryptionSecret", NULL, "ok", "EE_OK");
    cr_expect(json_is_true(json_object_get(json_object_get(e, "detail"), "complete")));
    json_decref(e);
}

/* Run n8n workflow `n8n_id` as alice; id gets the execution's id. */
static ee_status run_wf(const char *n8n_id, char id[EE_EXEC_ID_SIZE])
{
    char wf[25], *out = NULL;
    entry_id(engine, n8n_id, wf);
    ee_status st = ee_exec_submit(engine, alice, wf, "{\"parameters\": {\"text\": \"hi\"}}",
                                  NULL, NULL, id);
    cr_assert_eq(st, EE_OK, "%s", ee_error_last_message());
    st = ee_exec_wait(engine, alice, id, 20000, &out);
    ee_free(out);
    return st;
}

Test(audit_actions, an_execution_is_requested_started_and_finished_once_each)
{
    char id[EE_EXEC_ID_SIZE];
    cr_assert_eq(run_wf("wf0", id), EE_OK);
    json_t *e = one_for(alice, "execution.requested", id);
    audit_expect(e, "u-alice", "ws-alice", "execution", id, "ok", "EE_OK");
    cr_expect_str_eq(audit_str(e, "orgId"), "org-a");
    cr_expect_str_eq(audit_str(e, "detail.apiKeyType"), "platform");
    json_decref(e);
    e = one_for(alice, "execution.started", id);
    audit_expect(e, "engine", "ws-alice", "execution", id, "ok", "EE_OK");
    json_decref(e);
    e = one_for(alice, "execution.finished", id);
    audit_expect(e, "engine", "ws-alice", "execution", id, "ok", "EE_OK");
    cr_expect_str_eq(audit_str(e, "detail.status"), "completed");
    json_decref(e);
    cr_expect_eq(count_for(alice, "execution.cancelled", id), 0);

    /* a run n8n fails: finished, failed, with the status it ended with */
    char bad[EE_EXEC_ID_SIZE];
    cr_assert_neq(run_wf("wf2", bad), EE_OK);
    e = one_for(alice, "execution.finished", bad);
    audit_expect(e, "engine", "ws-alice", "execution", bad, "failed", "EE_EUPSTREAM");
    cr_expect_str_eq(audit_str(e, "detail.status"), "failed");
    json_decref(e);
    cr_expect_eq(audit_count(engine, alice, "execution.requested"), 2);
    cr_expect_eq(audit_count(engine, bob, "execution."), 0);
}

Test(audit_actions, a_refused_request_is_one_refused_entry_and_a_malformed_one_none)
{
    char wf[25], id[EE_EXEC_ID_SIZE];
    entry_id(engine, "wf0", wf);
    /* malformed: not an action, no entry */
    cr_expect_eq(ee_exec_submit(engine, alice, wf, "{\"parameters\": 5}", NULL, NULL, id),
                 EE_EINVAL);
    cr_expect_eq(audit_count(engine, alice, "execution."), 0);
    /* missing personal credentials: refused, its reservation released, one entry naming the
     * workflow (no execution exists) */
    entry_id(engine, "wfG", wf);
    cr_expect_eq(ee_exec_submit(engine, alice, wf, "{}", NULL, NULL, id), EE_ECREDENTIALS);
    cr_expect_eq(ee_error_last_status(), EE_ECREDENTIALS, "the caller's error is kept");
    json_t *e = one_for(alice, "execution.refused", wf);
    audit_expect(e, "u-alice", "ws-alice", "workflow", wf, "refused", "EE_ECREDENTIALS");
    json_decref(e);
    cr_expect_eq(audit_count(engine, alice, "execution."), 1, "that one, nothing requested");
}

Test(audit_actions, a_cancelled_run_is_cancelled_once_and_never_finished)
{
    char wf[25], id[EE_EXEC_ID_SIZE], *out = NULL;
    entry_id(engine, "wfA", wf);
    cr_assert_eq(ee_exec_submit(engine, alice, wf, "{}", NULL, NULL, id), EE_OK);
    /* running at n8n (bounded wait) */
    for (int i = 0; i < 400 && count_for(alice, "execution.started", id) == 0; i++)
        usleep(25000);
    cr_assert_eq(count_for(alice, "execution.started", id), 1);
    for (int i = 0; i < 400 && fake_hits("async") == 0; i++)
        usleep(25000);
    cr_assert_eq(fake_hits("async"), 1, "triggered once");
    cr_assert_eq(ee_exec_cancel(engine, bob, id), EE_ENOTFOUND);
    cr_assert_eq(ee_exec_cancel(engine, alice, id), EE_OK, "%s", ee_error_last_message());
    cr_expect_eq(ee_exec_cancel(engine, alice, id), EE_ESTATE);
    /* n8n then says it ended: nothing changes */
    pthread_mutex_lock(&fake.lock);
    fake.exec_done = 1;
    pthread_mutex_unlock(&fake.lock);
    cr_expect_eq(ee_exec_wait(engine, alice, id, 20000, &out), EE_ECANCELLED);
    ee_free(out);
    json_t *e = one_for(alice, "execution.cancelled", id);
    audit_expect(e, "u-alice", "ws-alice", "execution", id, "ok", "EE_OK");
    json_decref(e);
    /* polls after the cancel find the record ended: they write no end */
    int polls = fake.exec_polls;
    for (int i = 0; i < 100 && fake.exec_polls < polls + 2; i++)
        usleep(20000);
    cr_expect_eq(count_for(alice, "execution.finished", id), 0);
}

Test(audit_actions, catalog_entries_categories_and_sync_runs_once_each)
{
    /* the setup's sync */
    json_t *e = audit_one(engine, platform, "catalog.synced");
    audit_expect(e, "system", "platform", "catalog", "catalog", "ok", "EE_OK");
    cr_expect_geq(json_integer_value(json_object_get(json_object_get(e, "detail"), "added")), 10);
    json_decref(e);

    char *out = NULL;
    cr_assert_eq(ee_catalog_category_create(engine, "{\"name\": \"Research\"}", &out), EE_OK,
                 "%s", out);
    json_t *cat = parse_doc(out);
    ee_free(out);
    const char *cid = sget(cat, "id");
    e = one_for(platform, "catalog.category.created", cid);
    audit_expect(e, "system", "platform", "category", cid, "ok", "EE_OK");
    cr_expect_str_eq(audit_str(e, "detail.name"), "Research");
    json_decref(e);
    out = NULL;
    cr_assert_eq(ee_catalog_category_update(engine, cid, "{\"description\": \"web\"}", &out),
                 EE_OK, "%s", out);
    ee_free(out);
    e = one_for(platform, "catalog.category.updated", cid);
    audit_expect(e, "system", "platform", "category", cid, "ok", "EE_OK");
    json_decref(e);

    out = NULL;
    cr_assert_eq(ee_catalog_create(engine,
                                   "{\"n8nWorkflowId\": \"wf-hand\", \"name\": \"By hand\"}", &out),
                 EE_OK, "%s", out);
    json_t *ent = parse_doc(out);
    ee_free(out);
    const char *eid = sget(ent, "id");
    e = one_for(platform, "catalog.entry.created", eid);
    audit_expect(e, "system", "platform", "workflow", eid, "ok", "EE_OK");
    cr_expect_str_eq(audit_str(e, "detail.name"), "By hand");
    json_decref(e);
    out = NULL;
    cr_assert_eq(ee_catalog_update(engine, eid, "{\"isActive\": false}", &out), EE_OK, "%s", out);
    ee_free(out);
    out = NULL;
    /* refused: a duplicate and a malformed patch write nothing */
    cr_expect_eq(ee_catalog_create(engine, "{\"n8nWorkflowId\": \"wf-hand\", \"name\": \"x\"}",
                                   &out),
                 EE_EEXISTS);
    ee_free(out);
    out = NULL;
    cr_expect_eq(ee_catalog_update(engine, eid, "{\"n8nWorkflowId\": \"x\"}", &out), EE_EINVAL);
    ee_free(out);
    e = one_for(platform, "catalog.entry.updated", eid);
    audit_expect(e, "system", "platform", "workflow", eid, "ok", "EE_OK");
    json_decref(e);
    cr_expect_eq(audit_count(engine, platform, "catalog.entry.created"), 1);

    fake_sync(engine);
    cr_expect_eq(audit_count(engine, platform, "catalog.synced"), 2);
    cr_expect_eq(audit_count(engine, alice, "catalog."), 0, "the catalog is the platform's");
    json_decref(cat);
    json_decref(ent);
}

Test(audit_actions, plans_subscriptions_and_a_quota_threshold_once_each)
{
    char *out = NULL;
    cr_assert_eq(ee_quota_plan_put(engine,
                                   "{\"name\": \"p5\", \"predictionsPerPeriod\": 5, "
                                   "\"executionsPerUserPerHour\": -1, "
                                   "\"concurrentExecutionsPerWorkspace\": -1}",
                                   &out),
                 EE_OK, "%s", out);
    ee_free(out);
    json_t *e = audit_one(engine, platform, "quota.plan.put");
    audit_expect(e, "system", "platform", "plan", "p5", "ok", "EE_OK");
    json_decref(e);
    out = NULL;
    cr_assert_eq(ee_quota_subscription_put(engine, "{\"orgId\": \"org-a\", \"plan\": \"p5\"}",
                                           &out),
                 EE_OK, "%s", out);
    ee_free(out);
    ee_principal *org_ws = NULL;
    cr_assert_eq(ee_principal_new(&org_ws, "org-a", "admin", "org-a"), EE_OK);
    e = audit_one(engine, org_ws, "quota.subscription.put");
    audit_expect(e, "system", "org-a", "subscription", "org-a", "ok", "EE_OK");
    cr_expect_str_eq(audit_str(e, "detail.plan"), "p5");
    json_decref(e);
    ee_principal_free(org_ws);

    /* 4 of 5 predictions: the 80 % threshold, once however many admit */
    for (int i = 0; i < 4; i++) {
        out = NULL;
        cr_assert_eq(ee_quota_admit(engine, alice, NULL, &out), EE_OK, "%s", out);
        ee_free(out);
    }
    e = audit_one(engine, alice, "quota.threshold");
    audit_expect(e, "engine", "ws-alice", "organisation", "org-a", "ok", "EE_OK");
    cr_expect_eq(json_integer_value(json_object_get(json_object_get(e, "detail"), "threshold")),
                 80);
    cr_expect_str_eq(audit_str(e, "detail.userId"), "u-alice");
    json_decref(e);

    cr_expect_neq(ee_quota_plan_delete(engine, "nope"), EE_OK);
    cr_assert_eq(ee_quota_plan_delete(engine, "p5"), EE_OK, "%s", ee_error_last_message());
    e = audit_one(engine, platform, "quota.plan.deleted");
    audit_expect(e, "system", "platform", "plan", "p5", "ok", "EE_OK");
    json_decref(e);
    cr_expect_eq(audit_count(engine, platform, "quota.plan."), 2);
}

Test(audit_actions, billing_transitions_once_each_and_a_repeat_leaves_none)
{
    char *out = NULL;
    cr_assert_eq(ee_billing_close_month(engine, alice, "2020-01", &out), EE_OK, "%s", out);
    ee_free(out);
    cr_assert_eq(ee_billing_close_month(engine, alice, "2020-01", &out), EE_OK, "%s", out);
    ee_free(out);
    json_t *e = one_for(alice, "billing.month.billed", "2020-01");
    audit_expect(e, "u-alice", "ws-alice", "billingMonth", "2020-01", "ok", "EE_OK");
    json_decref(e);
    cr_assert_eq(ee_billing_mark_paid(engine, alice, "2020-01", &out), EE_OK, "%s", out);
    ee_free(out);
    cr_assert_eq(ee_billing_mark_paid(engine, alice, "2020-01", &out), EE_OK, "%s", out);
    ee_free(out);
    e = one_for(alice, "billing.month.paid", "2020-01");
    audit_expect(e, "u-alice", "ws-alice", "billingMonth", "2020-01", "ok", "EE_OK");
    json_decref(e);
    /* refused: a month not yet closed cannot be paid - no entry */
    cr_assert_eq(ee_billing_mark_paid(engine, alice, "2020-02", &out), EE_ENOTFOUND);
    ee_free(out);
    cr_expect_eq(audit_count(engine, alice, "billing."), 2);
}

Test(audit_actions, personal_credentials_put_and_deleted_once_each)
{
    char *out = NULL;
    /* malformed, then no such credential to replace: no entry */
    cr_expect_eq(ee_cred_personal_put(engine, alice, "{\"credentialName\": \"gmailOAuth2\"}", &out),
                 EE_EINVAL);
    ee_free(out);
    out = NULL;
    cr_assert_eq(ee_cred_personal_put(engine, alice,
                                      "{\"credentialName\": \"gmailOAuth2\", \"type\": \"oauth2\", "
                                      "\"accessToken\": \"" C_ACCESS "\"}",
                                      &out),
                 EE_OK, "%s", out);
    json_t *doc = parse_doc(out);
    ee_free(out);
    char id[32];
    snprintf(id, sizeof id, "%s", sget(doc, "id"));
    json_decref(doc);
    json_t *e = one_for(alice, "credentials.personal.put", id);
    audit_expect(e, "u-alice", "ws-alice", "personalCredential", id, "ok", "EE_OK");
    cr_expect_str_eq(audit_str(e, "orgId"), "org-a");
    cr_expect_str_eq(audit_str(e, "detail.credentialName"), "gmailOAuth2");
    cr_expect_str_eq(audit_str(e, "detail.type"), "oauth2");
    cr_expect(json_is_false(json_object_get(json_object_get(e, "detail"), "replaced")));
    json_decref(e);
    /* replaced: a second entry, marked so; bob cannot replace alice's */
    char req[256];
    snprintf(req, sizeof req,
             "{\"id\": \"%s\", \"credentialName\": \"gmailOAuth2\", \"type\": \"oauth2\", "
             "\"accessToken\": \"" C_ACCESS "-2\"}",
             id);
    out = NULL;
    cr_expect_eq(ee_cred_personal_put(engine, bob, req, &out), EE_ENOTFOUND);
    ee_free(out);
    out = NULL;
    cr_assert_eq(ee_cred_personal_put(engine, alice, req, &out), EE_OK, "%s", out);
    ee_free(out);
    cr_expect_eq(count_for(alice, "credentials.personal.put", id), 2);
    cr_expect_eq(audit_count(engine, bob, "credentials."), 0);

    cr_expect_eq(ee_cred_personal_delete(engine, bob, id), EE_ENOTFOUND);
    cr_assert_eq(ee_cred_personal_delete(engine, alice, id), EE_OK, "%s",
                 ee_error_last_message());
    cr_expect_eq(ee_cred_personal_delete(engine, alice, id), EE_ENOTFOUND);
    e = one_for(alice, "credentials.personal.deleted", id);
    audit_expect(e, "u-alice", "ws-alice", "personalCredential", id, "ok", "EE_OK");
    json_decref(e);
    cr_expect_eq(audit_count(engine, alice, "credentials.personal."), 3);
}

Test(audit_actions, a_platform_credential_switched_off_and_on_once_per_call)
{
    char *out = NULL;
    cr_assert_eq(ee_cred_platform_provision(engine, &out), EE_OK, "%s", out);
    ee_free(out);
    out = NULL;
    cr_assert_eq(ee_cred_platform_list(engine, &out), EE_OK, "%s", out);
    json_t *list = parse_doc(out);
    ee_free(out);
    json_t *first = json_array_get(json_object_get(list, "credentials"), 0);
    cr_assert_not_null(first, "no platform credential provisioned");
    char id[32];
    snprintf(id, sizeof id, "%s", sget(first, "id"));
    json_decref(list);
    cr_expect_neq(ee_cred_platform_set_active(engine, "000000000000000000000000", 0), EE_OK);
    cr_assert_eq(ee_cred_platform_set_active(engine, id, 0), EE_OK, "%s",
                 ee_error_last_message());
    json_t *e = one_for(platform, "credentials.platform.switched", id);
    audit_expect(e, "system", "platform", "platformCredential", id, "ok", "EE_OK");
    cr_expect(json_is_false(json_object_get(json_object_get(e, "detail"), "isActive")));
    json_decref(e);
    cr_assert_eq(ee_cred_platform_set_active(engine, id, 1), EE_OK);
    cr_expect_eq(count_for(platform, "credentials.platform.switched", id), 2);
    cr_expect_eq(audit_count(engine, platform, "credentials.platform.switched"), 2,
                 "the unknown id left none");
}

Test(audit_actions, e_mail_templates_put_and_deleted_once_each)
{
    char wf[25], *out = NULL;
    entry_id(engine, "wf0", wf);
    char req[512];
    snprintf(req, sizeof req,
             "{\"workflowCatalogId\": \"%s\", \"subjectTemplate\": \"{{workflowName}}\", "
             "\"bodyTemplate\": \"<p>{{execution.status}}</p>\", \"isActive\": false}",
             wf);
    /* refused: a principal (admin only), a template that does not compile */
    cr_expect_eq(ee_email_template_put(engine, alice, req, &out), EE_EPERM);
    ee_free(out);
    out = NULL;
    char bad[256];
    snprintf(bad, sizeof bad,
             "{\"workflowCatalogId\": \"%s\", \"subjectTemplate\": \"{{#if}}\", "
             "\"bodyTemplate\": \"x\"}",
             wf);
    cr_expect_neq(ee_email_template_put(engine, NULL, bad, &out), EE_OK);
    ee_free(out);
    out = NULL;
    cr_assert_eq(ee_email_template_put(engine, NULL, req, &out), EE_OK, "%s", out);
    ee_free(out);
    json_t *e = one_for(platform, "email.template.put", wf);
    audit_expect(e, "system", "platform", "emailTemplate", wf, "ok", "EE_OK");
    cr_expect(json_is_false(json_object_get(json_object_get(e, "detail"), "isActive")));
    char *text = json_dumps(e, JSON_COMPACT);
    cr_expect_null(strstr(text, "execution.status"), "the template's text is not in the entry");
    free(text);
    json_decref(e);
    cr_expect_eq(ee_email_template_delete(engine, alice, wf), EE_EPERM);
    cr_assert_eq(ee_email_template_delete(engine, NULL, wf), EE_OK, "%s",
                 ee_error_last_message());
    cr_expect_eq(ee_email_template_delete(engine, NULL, wf), EE_ENOTFOUND);
    e = one_for(platform, "email.template.deleted", wf);
    audit_expect(e, "system", "platform", "emailTemplate", wf, "ok", "EE_OK");
    json_decref(e);
    cr_expect_eq(audit_count(engine, platform, "email."), 2);
    cr_expect_eq(audit_count(engine, alice, "email."), 0);
}

/* Store an execution of alice's created `age_days` ago. */
static void old_run(int n, int age_days)
{
    x_rec r;
    memset(&r, 0, sizeof r);
    snprintf(r.id, sizeof r.id, "%024x", 0x01d000 + n);
    snprintf(r.workflow_id, sizeof r.workflow_id, "aaaaaaaaaaaaaaaaaaaaaaaa");
    snprintf(r.workspace, sizeof r.workspace, "ws-alice");
    r.user_id = strdup("u-alice");
    r.status = X_COMPLETED;
    r.input = json_object();
    r.created_at = ee_engine_now_ms(engine) - (int64_t)age_days * 86400000;
    r.completed_at = r.created_at + 1;
    cr_assert_eq(ee__exec_insert(engine, &r), EE_OK, "%s", ee_error_last_message());
    ee__exec_rec_clear(&r);
}

Test(audit_actions, a_purge_is_one_entry_with_its_count_not_one_per_record)
{
    /* RESULT_RETENTION_DAYS 90: three records past it, one not */
    for (int i = 0; i < 3; i++)
        old_run(i, 200);
    old_run(3, 1);
    uint64_t n = 0;
    cr_assert_eq(ee_exec_purge(engine, &n), EE_OK, "%s", ee_error_last_message());
    cr_assert_eq(n, 3);
    json_t *e = audit_one(engine, platform, "execution.purged");
    audit_expect(e, "system", "platform", "executions", "workflowExecutions", "ok", "EE_OK");
    cr_expect_eq(json_integer_value(json_object_get(json_object_get(e, "detail"), "deleted")), 3);
    json_decref(e);
    cr_expect_eq(audit_count(engine, alice, "execution."), 0, "nothing per record");

    /* the audit log's own: every entry so far, then the purge's one entry */
    json_t *pa = audit_all(engine, platform, "", 100), *aa = audit_all(engine, alice, "", 100);
    size_t before = json_array_size(pa) + json_array_size(aa);
    json_decref(pa);
    json_decref(aa);
    cr_assert_geq(before, 2);
    cr_assert_eq(ee_audit_purge(engine, ee_engine_now_ms(engine) + 1, &n), EE_OK, "%s",
                 ee_error_last_message());
    cr_expect_geq(n, before);
    e = audit_one(engine, platform, "audit.purged");
    audit_expect(e, "system", "platform", "auditLog", "auditLog", "ok", "EE_OK");
    cr_expect_eq(json_integer_value(json_object_get(json_object_get(e, "detail"), "deleted")),
                 (json_int_t)n);
    json_decref(e);
    json_t *left = audit_all(engine, platform, "", 100);
    cr_expect_eq(json_array_size(left), 1, "the purge's own entry is written after it");
    json_decref(left);
}
