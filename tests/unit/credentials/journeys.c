/* Seed 2's journeys through the public API on a real SQLite store, and the
 * canary scan: with known secrets stored, no storage file, log line, JSON
 * answer or error message contains any of them. */
#include "cred_test.h"

#include <sys/stat.h>

#include "credentials/cred_internal.h"

#define C_SERPER "CANARY-serper-7f3a9c1e5b2d4f60"
#define C_FIRECRAWL "CANARY-firecrawl-2b8e6d4a1c9f3e57"
#define C_OPENROUTER "sk-or-v1-CANARY-platform-0d1e2f3a4b5c"
#define C_RESEND "re_CANARY_resend_9a8b7c6d5e4f"
#define C_ACCESS "ya29.CANARY-access-5e6f7a8b9c0d"
#define C_REFRESH "1//CANARY-refresh-1a2b3c4d5e6f"
#define C_CUSTOMER "sk-or-v1-CANARY-customer-a1b2c3d4e5f6"
#define C_CUSTOMER_B "sk-or-v1-CANARY-customer-b-778899aabb"

static const char *const canaries[] = {C_SERPER, C_FIRECRAWL, C_OPENROUTER, C_RESEND, C_ACCESS,
                                       C_REFRESH, C_CUSTOMER, C_CUSTOMER_B};

static char dir[64], db[128];

static ee_engine *open_sqlite(void)
{
    char uri[160];
    snprintf(dir, sizeof dir, "/tmp/ee-cred-journey-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(db, sizeof db, "%s/engine.db", dir);
    snprintf(uri, sizeof uri, "sqlite://%s", db);
    ee_config *cfg = ee_test_config_new(uri, NULL, NULL);
    ee_test_config_set(cfg, "PLATFORM_SERPER_KEY", C_SERPER);
    ee_test_config_set(cfg, "PLATFORM_FIRECRAWL_KEY", C_FIRECRAWL);
    ee_test_config_set(cfg, "PLATFORM_OPENROUTER_KEY", C_OPENROUTER);
    ee_test_config_set(cfg, "PLATFORM_RESEND_KEY", C_RESEND);
    ee_test_config_set(cfg, "PLATFORM_FROM_EMAIL", "noreply@example.com");
    ee_test_config_set(cfg, "OPENROUTER_API_URL", "http://127.0.0.1:9/api/v1");
    cr_assert_eq(ee_config_set_log(cfg, transcript_log, EE_LOG_DEBUG, NULL), EE_OK);
    return ee_test_engine_open_config(cfg);
}

/* Whether `file` holds any canary; a missing file holds none. */
static void expect_file_clean(const char *file)
{
    FILE *f = fopen(file, "rb");
    if (f == NULL)
        return;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    cr_expect_gt(n, 0);
    for (size_t i = 0; i < sizeof canaries / sizeof canaries[0]; i++)
        cr_expect_null(memmem(buf, (size_t)n, canaries[i], strlen(canaries[i])),
                       "%s holds canary %zu", file, i);
    free(buf);
}

static void provision(ee_engine *e)
{
    char *out = NULL;
    json_t *r = answer(ee_cred_platform_provision(e, &out), EE_OK, &out);
    cr_expect_gt(jint(r, "created"), 0);
    json_decref(r);
}

/* Journey 1: zero-config, every service platform-funded. */
static void zero_config(ee_engine *e, const ee_principal *p)
{
    json_t *r = route(e, p, "{\"nodeNames\": [\"serper\", \"firecrawl\", \"openai\", \"resend\"]}", NULL);
    cr_expect_eq(ngaps(r), 0);
    cr_expect(json_is_true(json_object_get(r, "ready")));
    const char *expect[][2] = {{"serper", "serperApi"}, {"firecrawl", "firecrawlApi"},
                               {"openai", "openAiApi"}, {"resend", "resendApi"}};
    for (size_t i = 0; i < 4; i++) {
        const json_t *m = mapping_for(r, expect[i][0]);
        cr_assert_not_null(m, "%s unmapped", expect[i][0]);
        cr_expect_str_eq(jstr(m, "credentialName"), expect[i][1]);
        cr_expect_str_eq(jstr(m, "source"), "platform");
    }
    json_decref(r);

    /* The execution pipeline gets the platform keys themselves. */
    json_t *wf = json_loads("{\"nodeNames\": [\"serper\", \"resend\"]}", 0, NULL);
    ee__cred_resolved *res = NULL;
    cr_assert_eq(ee__cred_resolve(e, p, wf, NULL, &res), EE_OK, "%s", ee_error_last_message());
    cr_assert_eq(res->n, 2);
    cr_expect_str_eq(res->items[0].secret, C_SERPER);
    cr_expect_str_eq(res->items[1].secret, C_RESEND);
    cr_expect_str_eq(res->items[1].from_email, "noreply@example.com");
    ee__cred_resolved_free(res);
    json_decref(wf);
}

/* Journey 2: Gmail is personal: one gap, none once the token set is stored. */
static void personal_gmail(ee_engine *e, const ee_principal *p)
{
    const char *wf = "{\"nodeNames\": [\"serper\", \"firecrawl\", \"openai\", \"gmail\"]}";
    json_t *r = route(e, p, wf, NULL);
    cr_assert_eq(ngaps(r), 1);
    const json_t *g = json_array_get(json_object_get(r, "gaps"), 0);
    cr_expect_str_eq(jstr(g, "field"), "credential:gmailOAuth2");
    cr_expect_str_eq(jstr(g, "credentialName"), "gmailOAuth2");
    cr_expect(json_is_true(json_object_get(g, "isPersonal")));
    cr_expect(json_is_false(json_object_get(r, "ready")));
    json_decref(r);

    char *out = NULL;
    json_t *put = answer(ee_cred_personal_put(e, p,
        "{\"credentialName\": \"gmailOAuth2\", \"type\": \"oauth2\", \"accessToken\": \"" C_ACCESS "\","
        " \"refreshToken\": \"" C_REFRESH "\", \"expiresAt\": 1767229200000,"
        " \"scopes\": [\"https://www.googleapis.com/auth/gmail.send\"]}", &out), EE_OK, &out);
    r = route(e, p, wf, NULL);
    cr_expect_eq(ngaps(r), 0);
    cr_expect_str_eq(jstr(mapping_for(r, "gmail"), "source"), "personal");
    cr_expect_str_eq(jstr(mapping_for(r, "gmail"), "credentialId"), jstr(put, "id"));
    json_decref(r);
    json_t *list = answer(ee_cred_personal_list(e, p, &out), EE_OK, &out);
    cr_expect_eq(json_array_size(json_object_get(list, "credentials")), 1);
    json_decref(list);
    json_decref(put);

    /* Another workspace still has the gap. */
    ee_principal *other = principal("ws-other", "carol");
    r = route(e, other, wf, NULL);
    cr_expect_eq(ngaps(r), 1);
    json_decref(r);
    ee_principal_free(other);
}

static const char *llm_wf =
    "{\"nodes\": [{\"name\": \"Webhook\", \"type\": \"n8n-nodes-base.webhook\"},"
    " {\"name\": \"Summarise\", \"type\": \"@n8n/n8n-nodes-langchain.lmChatOpenRouter\","
    "  \"credentials\": {\"openRouterApi\": {\"id\": \"1\", \"name\": \"OpenRouter\"}}},"
    " {\"name\": \"Search\", \"type\": \"n8n-nodes-serper.serper\"}]}";

/* Journey 3: a customer OpenRouter key chosen for a run. */
static void customer_key(ee_engine *e, const ee_principal *p)
{
    char id[32], other_id[32], choice[160];
    add_key(e, p, "Mine", C_CUSTOMER, id);
    ee_principal *b = principal("ws-b", "bob");
    add_key(e, b, "Bob's", C_CUSTOMER_B, other_id);

    snprintf(choice, sizeof choice, "{\"useCustomApiKey\": true, \"apiKeyId\": \"%s\"}", id);
    json_t *r = route(e, p, llm_wf, choice);
    cr_expect_eq(ngaps(r), 0);
    cr_expect_str_eq(jstr(mapping_for(r, "Summarise"), "source"), "customer");
    cr_expect_str_eq(jstr(mapping_for(r, "Summarise"), "credentialId"), id);
    cr_expect_str_eq(jstr(mapping_for(r, "Search"), "source"), "platform");
    json_decref(r);
    json_t *wf = json_loads(llm_wf, 0, NULL), *ch = json_loads(choice, 0, NULL);
    ee__cred_resolved *res = NULL;
    cr_assert_eq(ee__cred_resolve(e, p, wf, ch, &res), EE_OK, "%s", ee_error_last_message());
    cr_assert_eq(res->n, 2);
    cr_expect_str_eq(res->items[0].source, "customer");
    cr_expect_str_eq(res->items[0].secret, C_CUSTOMER);
    ee__cred_resolved_free(res);
    json_decref(ch);

    /* Without the choice: the platform key. */
    r = route(e, p, llm_wf, "{\"useCustomApiKey\": false}");
    cr_expect_str_eq(jstr(mapping_for(r, "Summarise"), "source"), "platform");
    json_decref(r);

    /* Deactivated: a gap, never the platform key. */
    char *out = NULL;
    json_t *u = answer(ee_cred_key_update(e, p, id, "{\"isActive\": false}", &out), EE_OK, &out);
    json_decref(u);
    r = route(e, p, llm_wf, choice);
    cr_expect_null(mapping_for(r, "Summarise"));
    cr_assert_eq(ngaps(r), 1);
    cr_expect_str_eq(jstr(json_array_get(json_object_get(r, "gaps"), 0), "type"), "apiKey");
    cr_expect_str_eq(jstr(json_array_get(json_object_get(r, "gaps"), 0), "reason"),
                     "customer API key is inactive");
    json_decref(r);

    /* Another workspace's key: a gap. */
    snprintf(choice, sizeof choice, "{\"useCustomApiKey\": true, \"apiKeyId\": \"%s\"}", other_id);
    r = route(e, p, llm_wf, choice);
    cr_expect_null(mapping_for(r, "Summarise"));
    cr_expect_eq(ngaps(r), 1);
    json_decref(r);
    ch = json_loads(choice, 0, NULL);
    ee__cred_resolved *res2 = NULL;
    cr_assert_eq(ee__cred_resolve(e, p, wf, ch, &res2), EE_OK);
    cr_expect_eq(res2->n, 1, "only the platform node is resolved");
    cr_expect_eq(res2->route->n_gaps, 1);
    ee__cred_resolved_free(res2);
    json_decref(ch);
    json_decref(wf);

    /* Validation with OpenRouter unreachable: unknown, and no key in the answer. */
    u = answer(ee_cred_key_validate(e, b, other_id, &out), EE_EUNKNOWN, &out);
    cr_expect_str_eq(jstr(u, "status"), "unknown");
    json_decref(u);
    /* Deleted: a gap too. */
    cr_expect_eq(ee_cred_key_delete(e, p, id), EE_OK);
    snprintf(choice, sizeof choice, "{\"useCustomApiKey\": true, \"apiKeyId\": \"%s\"}", id);
    r = route(e, p, llm_wf, choice);
    cr_expect_eq(ngaps(r), 1);
    json_decref(r);
    json_t *keys = answer(ee_cred_key_list(e, b, &out), EE_OK, &out);
    json_decref(keys);
    ee_principal_free(b);
}

Test(journeys, seed2_journeys_on_sqlite_leave_no_secret_anywhere)
{
    transcript_reset();
    ee_engine *e = open_sqlite();
    ee_principal *p = principal("user-workspace-789", "user-123");
    provision(e);
    zero_config(e, p);
    personal_gmail(e, p);
    customer_key(e, p);

    /* Error paths that involve the secrets. */
    char *out = NULL;
    json_t *r = answer(ee_cred_key_add(e, p, "{\"keyName\": \"k\", \"provider\": \"anthropic\", "
                                             "\"apiKey\": \"" C_CUSTOMER "\"}", &out), EE_EINVAL, &out);
    json_decref(r);
    r = answer(ee_cred_key_add(e, p, "{\"keyName\": \"k\", \"apiKey\": \"" C_CUSTOMER "\",", &out),
               EE_EPARSE, &out);
    json_decref(r);
    r = answer(ee_cred_personal_put(e, p, "{\"credentialName\": \"serperApi\", \"type\": \"apiKey\", "
                                          "\"apiKey\": \"" C_SERPER "\"}", &out), EE_EINVAL, &out);
    json_decref(r);
    r = answer(ee_cred_platform_list(e, &out), EE_OK, &out);
    json_decref(r);
    r = answer(ee_engine_summary_json(e, &out), EE_OK, &out);
    json_decref(r);
    r = answer(ee_cred_rotate(e, &out), EE_OK, &out);
    json_decref(r);

    /* Storage files while open (WAL) and after close. */
    char wal[160];
    snprintf(wal, sizeof wal, "%s-wal", db);
    expect_file_clean(db);
    expect_file_clean(wal);
    ee_principal_free(p);
    ee_engine_close(e);
    expect_file_clean(db);

    /* Every answer, error message and log line of the test. */
    cr_assert_not_null(transcript);
    cr_expect_not_null(strstr(transcript, "credentialMappings"), "the transcript was recorded");
    cr_expect_not_null(strstr(transcript, "platform credentials provisioned"), "log lines too");
    for (size_t i = 0; i < sizeof canaries / sizeof canaries[0]; i++)
        cr_expect_null(strstr(transcript, canaries[i]), "canary %zu leaked:\n%s", i, transcript);
    transcript_reset();
}
