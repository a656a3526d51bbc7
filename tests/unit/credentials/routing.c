#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "credentials/routing.h"

/* ---- a test double for the credential store ------------------------------ */

typedef struct {
    const char *workspace, *cred_type, *id;
} stored_cred;

typedef struct {
    const char *workspace, *id;
    ee_status state;
} stored_key;

static stored_cred creds[16];
static size_t ncreds;
static stored_key keys[4];
static size_t nkeys;
static int lookups;

static ee_status find(void *ctx, const char *ws, const char *type, bool platform, char *id_out)
{
    (void)ctx;
    lookups++;
    cr_assert_eq(platform, strcmp(ws, "platform") == 0, "platform flag and workspace disagree");
    for (size_t i = 0; i < ncreds; i++)
        if (strcmp(creds[i].workspace, ws) == 0 && strcmp(creds[i].cred_type, type) == 0) {
            snprintf(id_out, EE__CRED_ID_MAX, "%s", creds[i].id);
            return EE_OK;
        }
    return EE_ENOTFOUND;
}

static ee_status customer_key(void *ctx, const char *ws, const char *key_id)
{
    (void)ctx;
    for (size_t i = 0; i < nkeys; i++)
        if (strcmp(keys[i].id, key_id) == 0)
            return strcmp(keys[i].workspace, ws) == 0 ? keys[i].state : EE_ENOTFOUND;
    return EE_ENOTFOUND;
}

static const ee__cred_lookup lookup = {find, customer_key, NULL};
static ee__integrations *cat;

static void provision_platform(void)
{
    static const char *const types[] = {"serperApi", "firecrawlApi", "openAiApi", "resendApi",
                                        "openRouterApi", "braveSearchApi"};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        static char ids[8][32];
        snprintf(ids[i], sizeof ids[i], "plat-%zu", i);
        creds[ncreds++] = (stored_cred){"platform", types[i], ids[i]};
    }
}

static void setup(void)
{
    ncreds = nkeys = 0;
    lookups = 0;
    cr_assert_eq(ee__integrations_load_file(&cat, EE_SOURCE_DIR "/data/integrations.json"), EE_OK,
                 "%s", ee_error_last_message());
    provision_platform();
}

static void teardown(void) { ee__integrations_free(cat); }

TestSuite(routing, .init = setup, .fini = teardown);
TestSuite(integrations, .init = setup, .fini = teardown);

static json_t *route(const char *workflow, const char *choice, const char *ws)
{
    json_t *wf = json_loads(workflow, 0, NULL), *ch = choice ? json_loads(choice, 0, NULL) : NULL;
    cr_assert_not_null(wf);
    json_t *out = NULL;
    cr_assert_eq(ee__route(cat, &lookup, ws, wf, ch, &out), EE_OK, "%s", ee_error_last_message());
    json_decref(wf);
    json_decref(ch);
    return out;
}

static const json_t *mapping_for(const json_t *r, const char *node)
{
    size_t i;
    const json_t *m;
    json_array_foreach(json_object_get(r, "credentialMappings"), i, m) {
        if (strcmp(json_string_value(json_object_get(m, "nodeName")), node) == 0)
            return m;
    }
    return NULL;
}

static const char *str(const json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }

static const ee__integration *by_node(const char *type)
{
    const ee__integration *it = NULL;
    ee__node_kind kind = ee__integrations_map_node(cat, type, &it);
    cr_expect_eq(kind == EE__NODE_SERVICE, it != NULL, "%s: kind and service disagree", type);
    return it;
}

/* Seed 2, journey 1: serper, firecrawl, openai, resend all on platform credentials. */
Test(routing, zero_config_journey_all_platform_no_gaps)
{
    json_t *r = route("{\"nodeNames\": [\"serper\", \"firecrawl\", \"openai\", \"resend\"]}", NULL,
                      "user-workspace-789");
    cr_expect_eq(json_array_size(json_object_get(r, "gaps")), 0);
    cr_expect_eq(json_array_size(json_object_get(r, "credentialMappings")), 4);
    const char *expect[][2] = {{"serper", "serperApi"}, {"firecrawl", "firecrawlApi"},
                               {"openai", "openAiApi"}, {"resend", "resendApi"}};
    for (size_t i = 0; i < 4; i++) {
        const json_t *m = mapping_for(r, expect[i][0]);
        cr_assert_not_null(m, "no mapping for %s", expect[i][0]);
        cr_expect_str_eq(str(m, "credentialName"), expect[i][1]);
        cr_expect_str_eq(str(m, "source"), "platform");
        cr_expect(strncmp(str(m, "credentialId"), "plat-", 5) == 0);
    }
    json_decref(r);
}

/* Seed 2, journey 2: Gmail is personal: one gap, then none once stored. */
Test(routing, personal_gmail_journey)
{
    const char *wf = "{\"nodeNames\": [\"serper\", \"firecrawl\", \"openai\", \"gmail\"]}";
    json_t *r = route(wf, NULL, "user-workspace-789");
    const json_t *gaps = json_object_get(r, "gaps");
    cr_assert_eq(json_array_size(gaps), 1);
    const json_t *g = json_array_get(gaps, 0);
    cr_expect_str_eq(str(g, "field"), "credential:gmailOAuth2");
    cr_expect_str_eq(str(g, "label"), "Gmail - gmailOAuth2");
    cr_expect_str_eq(str(g, "type"), "credential");
    cr_expect_str_eq(str(g, "credentialName"), "gmailOAuth2");
    cr_expect(json_is_true(json_object_get(g, "isPersonal")));
    cr_expect_eq(json_array_size(json_object_get(r, "credentialMappings")), 3);
    json_decref(r);

    /* Another workspace's Gmail does not count. */
    creds[ncreds++] = (stored_cred){"someone-else", "gmailOAuth2", "cred-other"};
    r = route(wf, NULL, "user-workspace-789");
    cr_expect_eq(json_array_size(json_object_get(r, "gaps")), 1);
    json_decref(r);

    creds[ncreds++] = (stored_cred){"user-workspace-789", "gmailOAuth2", "cred-gmail-1"};
    r = route(wf, NULL, "user-workspace-789");
    cr_expect_eq(json_array_size(json_object_get(r, "gaps")), 0);
    const json_t *m = mapping_for(r, "gmail");
    cr_assert_not_null(m);
    cr_expect_str_eq(str(m, "credentialId"), "cred-gmail-1");
    cr_expect_str_eq(str(m, "source"), "personal");
    json_decref(r);
}

static const char *llm_workflow =
    "{\"nodes\": [{\"name\": \"Webhook\", \"type\": \"n8n-nodes-base.webhook\"},"
    "             {\"name\": \"Summarise\", \"type\": \"@n8n/n8n-nodes-langchain.lmChatOpenRouter\","
    "              \"credentials\": {\"openRouterApi\": {\"id\": \"n8n-1\", \"name\": \"OpenRouter\"}}},"
    "             {\"name\": \"Search\", \"type\": \"n8n-nodes-serper.serper\"}]}";

/* A customer OpenRouter key chosen for the run replaces the platform's. */
Test(routing, customer_openrouter_key_for_a_run)
{
    keys[nkeys++] = (stored_key){"ws-a", "key-active", EE_OK};
    keys[nkeys++] = (stored_key){"ws-a", "key-off", EE_ESTATE};
    keys[nkeys++] = (stored_key){"ws-b", "key-of-b", EE_OK};

    json_t *r = route(llm_workflow, "{\"useCustomApiKey\": true, \"apiKeyId\": \"key-active\"}", "ws-a");
    cr_expect_eq(json_array_size(json_object_get(r, "gaps")), 0);
    const json_t *m = mapping_for(r, "Summarise");
    cr_assert_not_null(m);
    cr_expect_str_eq(str(m, "source"), "customer");
    cr_expect_str_eq(str(m, "credentialId"), "key-active");
    cr_expect_str_eq(str(mapping_for(r, "Search"), "source"), "platform", "other nodes unchanged");
    cr_expect_null(mapping_for(r, "Webhook"), "a webhook needs no credential");
    json_decref(r);

    /* Without the choice the platform key is used. */
    r = route(llm_workflow, "{\"useCustomApiKey\": false}", "ws-a");
    cr_expect_str_eq(str(mapping_for(r, "Summarise"), "source"), "platform");
    json_decref(r);

    /* Inactive, missing and foreign keys are gaps, never a platform fall-back. */
    const char *bad[][2] = {{"key-off", "customer API key is inactive"},
                            {"key-deleted", "customer API key not found in this workspace"},
                            {"key-of-b", "customer API key not found in this workspace"}};
    for (size_t i = 0; i < 3; i++) {
        char choice[128];
        snprintf(choice, sizeof choice, "{\"useCustomApiKey\": true, \"apiKeyId\": \"%s\"}", bad[i][0]);
        r = route(llm_workflow, choice, "ws-a");
        cr_expect_null(mapping_for(r, "Summarise"), "%s fell back to another credential", bad[i][0]);
        const json_t *g = json_array_get(json_object_get(r, "gaps"), 0);
        cr_assert_not_null(g, "%s: no gap", bad[i][0]);
        cr_expect_str_eq(str(g, "type"), "apiKey");
        cr_expect_str_eq(str(g, "credentialName"), "openRouterApi");
        cr_expect_str_eq(str(g, "reason"), bad[i][1]);
        cr_expect(json_is_true(json_object_get(g, "isPersonal")));
        json_decref(r);
    }
}

Test(routing, unprovisioned_platform_credential_is_a_platform_gap)
{
    json_t *r = route("{\"nodeNames\": [\"tavily\", \"tavily\"]}", NULL, "ws");
    const json_t *gaps = json_object_get(r, "gaps");
    cr_assert_eq(json_array_size(gaps), 1, "one gap per credential, not per node");
    cr_expect(json_is_false(json_object_get(json_array_get(gaps, 0), "isPersonal")));
    cr_expect_str_eq(str(json_array_get(gaps, 0), "reason"), "platform credential not provisioned");
    json_decref(r);
}

Test(routing, unknown_credential_types_are_personal)
{
    json_t *r = route("{\"nodes\": [{\"name\": \"Call API\", \"type\": \"n8n-nodes-base.httpRequest\","
                      " \"credentials\": {\"someVendorApi\": {}}}]}", NULL, "ws");
    const json_t *g = json_array_get(json_object_get(r, "gaps"), 0);
    cr_assert_not_null(g);
    cr_expect_str_eq(str(g, "credentialName"), "someVendorApi");
    cr_expect(json_is_true(json_object_get(g, "isPersonal")));
    json_decref(r);
}

Test(routing, malformed_input)
{
    json_t *out = NULL;
    const char *bad_wf[] = {"{}", "{\"nodes\": 3}", "{\"nodes\": [{\"name\": \"x\"}]}",
                            "{\"nodeNames\": [1]}"};
    for (size_t i = 0; i < 4; i++) {
        json_t *wf = json_loads(bad_wf[i], 0, NULL);
        cr_expect_eq(ee__route(cat, &lookup, "ws", wf, NULL, &out), EE_EINVAL, "%s", bad_wf[i]);
        cr_expect_null(out);
        json_decref(wf);
    }
    json_t *wf = json_loads("{\"nodeNames\": [\"openrouter\"]}", 0, NULL);
    json_t *ch = json_loads("{\"useCustomApiKey\": true}", 0, NULL);
    cr_expect_eq(ee__route(cat, &lookup, "ws", wf, ch, &out), EE_EINVAL);
    cr_expect_eq(ee__route(cat, &lookup, "", wf, NULL, &out), EE_EINVAL);
    json_decref(ch);
    json_decref(wf);
    wf = json_array();
    for (int i = 0; i <= EE__ROUTE_MAX_NODES; i++)
        json_array_append_new(wf, json_string("serper"));
    json_t *big = json_pack("{s:o}", "nodeNames", wf);
    cr_expect_eq(ee__route(cat, &lookup, "ws", big, NULL, &out), EE_ETOOBIG);
    json_decref(big);
}

Test(integrations, catalog_covers_both_seeds)
{
    static const char *const platform[] = {"serper", "firecrawl", "resend", "openrouter",
                                           "brave", "tavily", "openai"};
    static const char *const personal[] = {"gmail", "outlook", "slack", "notion", "hubspot",
                                           "salesforce", "shopify", "twitter", "linkedin",
                                           "facebook"};
    for (size_t i = 0; i < sizeof platform / sizeof platform[0]; i++) {
        const ee__integration *it = by_node(platform[i]);
        cr_assert_not_null(it, "%s missing", platform[i]);
        cr_expect_not(it->is_personal, "%s should be platform-managed", platform[i]);
        cr_expect_gt(json_array_size(it->platform_env), 0);
    }
    for (size_t i = 0; i < sizeof personal / sizeof personal[0]; i++) {
        const ee__integration *it = by_node(personal[i]);
        cr_assert_not_null(it, "%s missing", personal[i]);
        cr_expect(it->is_personal, "%s should be personal", personal[i]);
    }
    /* Seed 2's companyManagedCreds are all platform. */
    static const char *const company[] = {"braveSearchApi", "openRouterApi", "serperApi",
                                          "serpApi", "firecrawlApi", "resendApi", "youtubeDataApi"};
    for (size_t i = 0; i < sizeof company / sizeof company[0]; i++) {
        const ee__integration *it = ee__integrations_by_credential(cat, company[i]);
        cr_assert_not_null(it, "%s missing", company[i]);
        cr_expect_not(it->is_personal, "%s", company[i]);
    }
}

Test(integrations, malformed_catalogs_are_rejected)
{
    ee__integrations *c = NULL;
    const char *bad[][2] = {
        {"not json", "not JSON"},
        {"{\"services\": {}}", "\"services\" must be an array"},
        {"{\"services\": [{\"service\": \"A\", \"nodes\": [], \"credentials\": [\"a\"]}]}", "isPersonal"},
        {"{\"services\": [{\"service\": \"A\", \"isPersonal\": false, \"nodes\": [], \"credentials\": [\"a\"]}]}",
         "platformEnv"},
        {"{\"services\": [{\"service\": \"A\", \"isPersonal\": true, \"nodes\": [\"x\"], \"credentials\": [\"a\"]},"
         "              {\"service\": \"B\", \"isPersonal\": true, \"nodes\": [\"x\"], \"credentials\": [\"b\"]}]}",
         "listed by two services"},
        {"{\"services\": [{\"service\": \"A\", \"isPersonal\": true, \"nodes\": [7], \"credentials\": [\"a\"]}]}",
         "services[0].nodes"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ee_status st = ee__integrations_parse(&c, bad[i][0], strlen(bad[i][0]));
        cr_expect(st == EE_EINVAL || st == EE_EPARSE, "case %zu accepted", i);
        cr_expect_null(c);
        cr_expect_not_null(strstr(ee_error_last_message(), bad[i][1]), "case %zu: %s", i,
                           ee_error_last_message());
    }
    cr_expect_eq(ee__integrations_load_file(&c, "/nonexistent/integrations.json"), EE_EIO);
}

/* ---- node types: one mapping, unknown types reported ------------------------ */

/* n8n exports name nodes by full type; the short name's service applies. */
Test(routing, full_node_types_map_like_their_short_names)
{
    json_t *r = route("{\"nodes\": [{\"name\": \"Search\", \"type\": \"n8n-nodes-base.serper\"},"
                      "            {\"name\": \"Mail\", \"type\": \"n8n-nodes-base.gmail\"}]}",
                      NULL, "ws-a");
    const json_t *m = mapping_for(r, "Search");
    cr_assert_not_null(m, "n8n-nodes-base.serper got no mapping");
    cr_expect_str_eq(str(m, "credentialName"), "serperApi");
    cr_expect_str_eq(str(m, "source"), "platform");
    cr_assert_eq(json_array_size(json_object_get(r, "gaps")), 1, "the Gmail node is a gap");
    cr_expect_str_eq(str(json_array_get(json_object_get(r, "gaps"), 0), "credentialName"),
                     "gmailOAuth2");
    cr_expect_eq(json_array_size(json_object_get(r, "unknownNodes")), 0);
    json_decref(r);
}

Test(routing, unknown_node_types_are_reported_once_and_free_ones_are_not)
{
    json_t *r = route("{\"nodes\": ["
                      " {\"name\": \"Hook\", \"type\": \"n8n-nodes-base.webhook\"},"
                      " {\"name\": \"Set\", \"type\": \"n8n-nodes-base.set\"},"
                      " {\"name\": \"If\", \"type\": \"n8n-nodes-base.if\"},"
                      " {\"name\": \"Fetch\", \"type\": \"n8n-nodes-base.httpRequest\"},"
                      " {\"name\": \"Agent\", \"type\": \"@n8n/n8n-nodes-langchain.agent\"},"
                      " {\"name\": \"X1\", \"type\": \"n8n-nodes-acme.mysteryApi\"},"
                      " {\"name\": \"X2\", \"type\": \"n8n-nodes-acme.mysteryApi\"},"
                      " {\"name\": \"Reply\", \"type\": \"n8n-nodes-base.respondToWebhook\"}]}",
                      NULL, "ws-a");
    const json_t *unknown = json_object_get(r, "unknownNodes");
    cr_assert(json_is_array(unknown), "no unknownNodes array");
    cr_assert_eq(json_array_size(unknown), 1);
    cr_expect_str_eq(json_string_value(json_array_get(unknown, 0)), "n8n-nodes-acme.mysteryApi");
    cr_expect_eq(json_array_size(json_object_get(r, "gaps")), 0);
    cr_expect_eq(json_array_size(json_object_get(r, "credentialMappings")), 0);
    json_decref(r);

    /* Seed 2's short names: the same lists apply. */
    r = route("{\"nodeNames\": [\"set\", \"webhook\", \"serper\", \"somethingNew\"]}", NULL, "ws-a");
    unknown = json_object_get(r, "unknownNodes");
    cr_assert_eq(json_array_size(unknown), 1);
    cr_expect_str_eq(json_string_value(json_array_get(unknown, 0)), "somethingNew");
    cr_expect_not_null(mapping_for(r, "serper"));
    json_decref(r);
}

/* A node that names its credential is routed by it, whatever its type. */
Test(routing, configured_credentials_win_over_an_unknown_type)
{
    json_t *r = route("{\"nodes\": [{\"name\": \"Call\", \"type\": \"n8n-nodes-acme.thing\","
                      " \"credentials\": {\"serperApi\": {\"id\": \"1\"}}}]}", NULL, "ws-a");
    cr_expect_eq(json_array_size(json_object_get(r, "unknownNodes")), 0);
    cr_expect_not_null(mapping_for(r, "Call"));
    json_decref(r);
}

Test(integrations, one_mapping_for_every_module)
{
    const ee__integration *it = NULL;
    cr_expect_eq(ee__integrations_map_node(cat, "n8n-nodes-base.serper", &it), EE__NODE_SERVICE);
    cr_assert_not_null(it);
    cr_expect_str_eq(it->service, "Serper");
    cr_expect_eq(ee__integrations_map_node(cat, "n8n-nodes-base.noOp", &it), EE__NODE_NO_CREDENTIAL);
    cr_expect_null(it);
    cr_expect_eq(ee__integrations_map_node(cat, "noOp", &it), EE__NODE_NO_CREDENTIAL);
    cr_expect_eq(ee__integrations_map_node(cat, "n8n-nodes-acme.unheardOf", &it), EE__NODE_UNKNOWN);
    cr_expect_null(it);
    cr_expect_eq(ee__integrations_map_node(cat, NULL, &it), EE__NODE_UNKNOWN);
    /* The seed's no-credential nodes are data, not code. */
    static const char *const free_nodes[] = {
        "n8n-nodes-base.set", "n8n-nodes-base.if", "n8n-nodes-base.code",
        "n8n-nodes-base.webhook", "n8n-nodes-base.respondToWebhook", "n8n-nodes-base.merge",
        "n8n-nodes-base.switch", "n8n-nodes-base.noOp", "n8n-nodes-base.wait",
        "n8n-nodes-base.scheduleTrigger", "n8n-nodes-base.manualTrigger",
        "n8n-nodes-base.httpRequest", "n8n-nodes-base.executeWorkflow", "n8n-nodes-base.filter",
        "n8n-nodes-base.splitInBatches"};
    for (size_t i = 0; i < sizeof free_nodes / sizeof free_nodes[0]; i++)
        cr_expect_eq(ee__integrations_map_node(cat, free_nodes[i], &it), EE__NODE_NO_CREDENTIAL,
                     "%s", free_nodes[i]);
}

Test(integrations, no_credential_list_and_services_never_overlap)
{
    const char *bad[][2] = {
        {"{\"services\": [{\"service\": \"A\", \"isPersonal\": true, \"nodes\": [\"x.set\"],"
         " \"credentials\": [\"a\"]}], \"noCredentialNodes\": [\"x.set\"]}",
         "is both a service's and in noCredentialNodes"},
        {"{\"services\": [], \"noCredentialNodes\": \"set\"}", "noCredentialNodes"},
        {"{\"services\": [], \"noCredentialNodes\": [\"\"]}", "noCredentialNodes[0]"},
        {"{\"services\": [{\"service\": \"A\", \"isPersonal\": true, \"nodes\": [],"
         " \"credentials\": [\"a\"], \"baseUrlOverride\": \"ftp://x\"}]}", "baseUrlOverride"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ee__integrations *c = NULL;
        cr_expect_eq(ee__integrations_parse(&c, bad[i][0], strlen(bad[i][0])), EE_EINVAL,
                     "case %zu accepted", i);
        cr_expect_not_null(strstr(ee_error_last_message(), bad[i][1]), "case %zu: %s", i,
                           ee_error_last_message());
    }
}

/* ---- platform keys fund only their own vendor's nodes ------------------------ */

static bool funded_by(const ee__integration *it, const char *env)
{
    size_t i;
    const json_t *v;
    json_array_foreach(it->platform_env, i, v) {
        if (strcmp(json_string_value(v), env) == 0)
            return true;
    }
    return false;
}

Test(integrations, serper_key_funds_serper_only)
{
    for (size_t i = 0; i < ee__integrations_count(cat); i++) {
        const ee__integration *it = ee__integrations_at(cat, i);
        if (funded_by(it, "PLATFORM_SERPER_KEY"))
            cr_expect_str_eq(it->service, "Serper", "PLATFORM_SERPER_KEY funds %s", it->service);
    }
    const ee__integration *serpapi = ee__integrations_by_credential(cat, "serpApi");
    cr_assert_not_null(serpapi);
    cr_expect_eq(json_array_size(serpapi->platform_env), 0);
}

/* A key used for another vendor's nodes says which base URL makes it work,
 * in the data and in every mapping of the route answer. */
Test(integrations, openrouter_key_on_openai_nodes_declares_the_base_url)
{
    for (size_t i = 0; i < ee__integrations_count(cat); i++) {
        const ee__integration *it = ee__integrations_at(cat, i);
        if (it->is_personal || !funded_by(it, "PLATFORM_OPENROUTER_KEY"))
            continue;
        if (strcmp(it->service, "OpenRouter") == 0)
            cr_expect_null(it->base_url_override);
        else
            cr_expect_str_eq(it->base_url_override ? it->base_url_override : "(none)",
                             "https://openrouter.ai/api/v1", "%s", it->service);
    }
    json_t *r = route("{\"nodes\": [{\"name\": \"Chat\", \"type\": "
                      "\"@n8n/n8n-nodes-langchain.lmChatOpenAi\"},"
                      " {\"name\": \"Router\", \"type\": \"@n8n/n8n-nodes-langchain.lmChatOpenRouter\"}]}",
                      NULL, "ws-a");
    const json_t *chat = mapping_for(r, "Chat"), *router = mapping_for(r, "Router");
    cr_assert_not_null(chat);
    cr_assert_not_null(router);
    cr_expect_str_eq(str(chat, "baseUrlOverride") ? str(chat, "baseUrlOverride") : "(none)",
                     "https://openrouter.ai/api/v1");
    cr_expect_null(json_object_get(router, "baseUrlOverride"));
    json_decref(r);
}
