/*
 * The typed route of lib/credentials/credentials.h: for the same workflow
 * and choice, ee__cred_route_nodes() holds what ee_cred_route() answers
 * (mappings, typed gaps with their reasons, unknown node types, ready);
 * the route holds no plaintext and only ee__cred_route_open_secret() opens
 * a secret; NULL and invalid arguments give statuses.
 */
#include "cred_test.h"

#include "credentials/credentials.h"

#define C_SERPER "CANARY-typed-serper-6b1d9e"
#define C_OPENROUTER "sk-or-v1-CANARY-typed-platform-3c2a"
#define C_GMAIL "ya29.CANARY-typed-gmail-8f7e"
#define C_CUSTOMER "sk-or-v1-CANARY-typed-customer-4d5e6f"

static ee_engine *e;
static ee_principal *p, *other_user;
static char key_id[32];

static void setup(void)
{
    ee_config *cfg = ee_test_config_new("memory:", NULL, NULL);
    ee_test_config_set(cfg, "PLATFORM_SERPER_KEY", C_SERPER);
    ee_test_config_set(cfg, "PLATFORM_OPENROUTER_KEY", C_OPENROUTER);
    ee_test_config_set(cfg, "OPENROUTER_API_URL", "http://127.0.0.1:9/api/v1");
    e = ee_test_engine_open_config(cfg);
    char *out = NULL;
    json_t *r = answer(ee_cred_platform_provision(e, &out), EE_OK, &out);
    json_decref(r);
    p = principal("ws-typed", "u1");
    other_user = principal("ws-typed", "u2");
    r = answer(ee_cred_personal_put(e, p, "{\"credentialName\": \"gmailOAuth2\", \"type\": "
                                          "\"oauth2\", \"accessToken\": \"" C_GMAIL "\"}", &out),
               EE_OK, &out);
    json_decref(r);
    add_key(e, p, "mine", C_CUSTOMER, key_id);
}

static void teardown(void)
{
    ee_principal_free(p);
    ee_principal_free(other_user);
    ee_engine_close(e);
}

TestSuite(route_typed, .init = setup, .fini = teardown, .timeout = 60);

/* The typed route as the test reads the public answer's shape (written
 * here, not with the library's renderer). */
static json_t *as_json(const ee__cred_route *r)
{
    json_t *maps = json_array(), *gaps = json_array(), *unknown = json_array();
    for (size_t i = 0; i < r->n_mappings; i++) {
        const ee__cred_mapping *m = &r->mappings[i];
        static const char *const src[] = {"platform", "personal", "customer"};
        json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "nodeName", m->node_name, "credentialId",
                              m->credential_id, "credentialName", m->credential_name, "source",
                              src[m->source]);
        if (m->base_url_override)
            json_object_set_new(o, "baseUrlOverride", json_string(m->base_url_override));
        json_array_append_new(maps, o);
    }
    for (size_t i = 0; i < r->n_gaps; i++) {
        const ee__cred_gap *g = &r->gaps[i];
        const char *type = g->kind == EE__CRED_GAP_API_KEY ? "apiKey" : "credential";
        char field[256], label[320];
        snprintf(field, sizeof field, "%s:%s", type, g->credential_name);
        snprintf(label, sizeof label, "%s - %s", g->service ? g->service : g->credential_name,
                 g->credential_name);
        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:b}", "field", field, "label", label, "type",
                              type, "credentialName", g->credential_name, "isPersonal",
                              g->is_personal);
        const char *reason = g->reason == EE__CRED_GAP_PLATFORM_MISSING
                                 ? "platform credential not provisioned"
                             : g->reason == EE__CRED_GAP_KEY_NOT_FOUND
                                 ? "customer API key not found in this workspace"
                             : g->reason == EE__CRED_GAP_KEY_INACTIVE ? "customer API key is inactive"
                                                                       : NULL;
        if (reason)
            json_object_set_new(o, "reason", json_string(reason));
        json_array_append_new(gaps, o);
    }
    for (size_t i = 0; i < r->n_unknown; i++)
        json_array_append_new(unknown, json_string(r->unknown_nodes[i]));
    return json_pack("{s:o, s:o, s:o, s:b}", "credentialMappings", maps, "gaps", gaps,
                     "unknownNodes", unknown, "ready", r->ready);
}

/* Route the same thing both ways and compare. */
static void expect_same(const ee_principal *who, const char *wf_json, const ee__cred_node *nodes,
                        size_t n, const char *choice_json, const ee__cred_choice *choice,
                        ee__cred_route **keep)
{
    json_t *pub = route(e, who, wf_json, choice_json);
    ee__cred_route *r = NULL;
    cr_assert_eq(ee__cred_route_nodes(e, who, nodes, n, choice, &r), EE_OK, "%s",
                 ee_error_last_message());
    json_t *typed = as_json(r);
    char *a = json_dumps(pub, JSON_SORT_KEYS), *b = json_dumps(typed, JSON_SORT_KEYS);
    cr_expect(json_equal(pub, typed), "%s\npublic: %s\ntyped:  %s", wf_json, a, b);
    free(a);
    free(b);
    json_decref(pub);
    json_decref(typed);
    if (keep)
        *keep = r;
    else
        ee__cred_route_free(r);
}

static ee__cred_node named(const char *name) { return (ee__cred_node){name, name, NULL, 0}; }

Test(route_typed, platform_personal_and_unknown_nodes)
{
    ee__cred_node all[] = {named("serper"), named("gmail"), named("openrouter")};
    ee__cred_route *r = NULL;
    expect_same(p, "{\"nodeNames\": [\"serper\", \"gmail\", \"openrouter\"]}", all, 3, NULL, NULL,
                &r);
    cr_expect(r->ready);
    cr_assert_eq(r->n_mappings, 3);
    cr_expect_eq(r->mappings[1].source, EE__CRED_SOURCE_PERSONAL);
    ee__cred_route_free(r);

    /* Gaps: a personal credential another workspace lacks, an unprovisioned
     * platform one (twice: listed once), and an unknown node type. */
    ee_principal *q = principal("ws-empty", "u9");
    ee__cred_node gaps[] = {named("gmail"), named("tavily"), named("tavily"),
                            named("n8n-nodes-acme.mystery"), named("serper")};
    expect_same(q,
                "{\"nodeNames\": [\"gmail\", \"tavily\", \"tavily\", \"n8n-nodes-acme.mystery\","
                " \"serper\"]}",
                gaps, 5, NULL, NULL, &r);
    cr_expect_not(r->ready);
    cr_assert_eq(r->n_gaps, 2);
    cr_expect_eq(r->gaps[0].reason, EE__CRED_GAP_NOT_STORED);
    cr_expect(r->gaps[0].is_personal);
    cr_expect_eq(r->gaps[1].reason, EE__CRED_GAP_PLATFORM_MISSING);
    cr_expect_not(r->gaps[1].is_personal);
    cr_assert_eq(r->n_unknown, 1);
    cr_expect_str_eq(r->unknown_nodes[0], "n8n-nodes-acme.mystery");
    ee__cred_route_free(r);
    ee_principal_free(q);
}

Test(route_typed, nodes_with_credentials_and_the_customer_key)
{
    const char *types_llm[] = {"openRouterApi"};
    const char *types_two[] = {"serperApi", "someVendorApi"};
    ee__cred_node nodes[] = {{"Webhook", "n8n-nodes-base.webhook", NULL, 0},
                             {"Summarise", "@n8n/n8n-nodes-langchain.lmChatOpenRouter", types_llm, 1},
                             {"Call", "n8n-nodes-base.httpRequest", types_two, 2}};
    const char *wf = "{\"nodes\": [{\"name\": \"Webhook\", \"type\": \"n8n-nodes-base.webhook\"},"
                     " {\"name\": \"Summarise\", \"type\": \"@n8n/n8n-nodes-langchain.lmChatOpenRouter\","
                     "  \"credentials\": {\"openRouterApi\": {\"id\": \"1\"}}},"
                     " {\"name\": \"Call\", \"type\": \"n8n-nodes-base.httpRequest\","
                     "  \"credentials\": {\"serperApi\": {}, \"someVendorApi\": {}}}]}";
    /* platform keys */
    expect_same(p, wf, nodes, 3, NULL, NULL, NULL);
    /* the customer's own key */
    char choice_json[128];
    snprintf(choice_json, sizeof choice_json, "{\"useCustomApiKey\": true, \"apiKeyId\": \"%s\"}",
             key_id);
    ee__cred_choice choice = {true, key_id};
    ee__cred_route *r = NULL;
    expect_same(p, wf, nodes, 3, choice_json, &choice, &r);
    cr_assert_geq(r->n_mappings, 1);
    cr_expect_eq(r->mappings[0].source, EE__CRED_SOURCE_CUSTOMER);
    cr_expect_str_eq(r->mappings[0].credential_id, key_id);
    ee__cred_route_free(r);
    /* another user's key: a gap, never the platform key */
    expect_same(other_user, wf, nodes, 3, choice_json, &choice, &r);
    cr_assert_geq(r->n_gaps, 1);
    cr_expect_eq(r->gaps[0].kind, EE__CRED_GAP_API_KEY);
    cr_expect_eq(r->gaps[0].reason, EE__CRED_GAP_KEY_NOT_FOUND);
    ee__cred_route_free(r);
    /* an inactive key */
    char *out = NULL;
    json_t *u = answer(ee_cred_key_update(e, p, key_id, "{\"isActive\": false}", &out), EE_OK, &out);
    json_decref(u);
    expect_same(p, wf, nodes, 3, choice_json, &choice, &r);
    cr_expect_eq(r->gaps[0].reason, EE__CRED_GAP_KEY_INACTIVE);
    ee__cred_route_free(r);
}

/* Only the named accessor decrypts; the route itself holds no plaintext. */
Test(route_typed, secrets_only_through_the_accessor)
{
    ee__cred_node nodes[] = {named("serper"), named("gmail")};
    ee__cred_route *r = NULL;
    cr_assert_eq(ee__cred_route_nodes(e, p, nodes, 2, NULL, &r), EE_OK);
    cr_assert_eq(r->n_mappings, 2);
    const char *canaries[] = {C_SERPER, C_GMAIL, C_OPENROUTER, C_CUSTOMER};
    for (size_t c = 0; c < 4; c++) {
        for (size_t i = 0; i < r->n_mappings; i++) {
            const ee__cred_mapping *m = &r->mappings[i];
            cr_expect_null(memmem(m, sizeof *m, canaries[c], strlen(canaries[c])));
            cr_expect_null(strstr(m->node_name, canaries[c]));
            cr_expect_null(strstr(m->credential_name, canaries[c]));
        }
    }
    char *secret = NULL;
    size_t len = 0;
    bool is_json = true;
    cr_assert_eq(ee__cred_route_open_secret(r, 0, &secret, &len, &is_json), EE_OK, "%s",
                 ee_error_last_message());
    cr_expect_str_eq(secret, C_SERPER);
    cr_expect_eq(len, strlen(C_SERPER));
    cr_expect_not(is_json);
    ee__cred_secret_free(secret, len);
    cr_assert_eq(ee__cred_route_open_secret(r, 1, &secret, &len, &is_json), EE_OK);
    cr_expect(is_json);
    cr_expect_not_null(strstr(secret, C_GMAIL));
    ee__cred_secret_free(secret, len);
    cr_expect_eq(ee__cred_route_open_secret(r, 2, &secret, &len, NULL), EE_EINVAL);
    cr_expect_null(secret);
    cr_expect_eq(ee__cred_route_open_secret(NULL, 0, &secret, &len, NULL), EE_EINVAL);
    cr_expect_eq(ee__cred_route_open_secret(r, 0, NULL, &len, NULL), EE_EINVAL);
    cr_expect_null(ee__cred_route_from_email(r, 0));
    ee__cred_route_free(r);
    ee__cred_secret_free(NULL, 0);
}

Test(route_typed, null_and_invalid_arguments)
{
    ee__cred_node ok[] = {named("serper")};
    ee__cred_route *r = NULL;
    cr_expect_eq(ee__cred_route_nodes(NULL, p, ok, 1, NULL, &r), EE_EINVAL);
    cr_expect_eq(ee__cred_route_nodes(e, NULL, ok, 1, NULL, &r), EE_EINVAL);
    cr_expect_eq(ee__cred_route_nodes(e, p, ok, 1, NULL, NULL), EE_EINVAL);
    cr_expect_eq(ee__cred_route_nodes(e, p, NULL, 1, NULL, &r), EE_EINVAL);
    ee__cred_node no_type[] = {{"x", NULL, NULL, 0}};
    cr_expect_eq(ee__cred_route_nodes(e, p, no_type, 1, NULL, &r), EE_EINVAL);
    ee__cred_node null_types[] = {{"x", "y", NULL, 2}};
    cr_expect_eq(ee__cred_route_nodes(e, p, null_types, 1, NULL, &r), EE_EINVAL);
    ee__cred_choice no_id = {true, NULL}, empty_id = {true, ""};
    cr_expect_eq(ee__cred_route_nodes(e, p, ok, 1, &no_id, &r), EE_EINVAL);
    cr_expect_eq(ee__cred_route_nodes(e, p, ok, 1, &empty_id, &r), EE_EINVAL);
    cr_expect_eq(ee__cred_route_nodes(e, p, ok, EE__ROUTE_MAX_NODES + 1, NULL, &r), EE_ETOOBIG);
    cr_expect_null(r);
    /* no nodes: an empty, ready route */
    cr_assert_eq(ee__cred_route_nodes(e, p, NULL, 0, NULL, &r), EE_OK);
    cr_expect(r->ready);
    cr_expect_eq(r->n_mappings + r->n_gaps + r->n_unknown, 0);
    ee__cred_route_free(r);
    ee__cred_route_free(NULL);
    cr_expect_str_eq(ee__cred_source_name(EE__CRED_SOURCE_CUSTOMER), "customer");
    cr_expect_null(ee__cred_gap_reason_text(EE__CRED_GAP_NOT_STORED));
}
