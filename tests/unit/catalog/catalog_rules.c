/* Categorisation rules (lib/catalog/categorize.c) and what sync derives
 * from a workflow's nodes (ee__catalog_derive). */
#include <criterion/criterion.h>
#include <jansson.h>
#include <string.h>

#include "catalog/categorize.h"
#include "catalog/sync.h"
#include "execengine/errors.h"

static json_t *strings(const char *json)
{
    json_t *v = json_loads(json, 0, NULL);
    cr_assert_not_null(v);
    return v;
}

static ee__cat_rules *shipped(void)
{
    ee__cat_rules *r = NULL;
    cr_assert_eq(ee__cat_rules_load_file(EE_SOURCE_DIR "/data/categories.json", &r), EE_OK, "%s",
                 ee_error_last_message());
    return r;
}

static const char *match(const ee__cat_rules *r, const char *name, const char *tags,
                         const char *types, const char *icats)
{
    json_t *t = strings(tags), *n = strings(types), *c = strings(icats);
    const char *cat = ee__cat_rules_match(r, name, t, n, c);
    json_decref(t);
    json_decref(n);
    json_decref(c);
    return cat;
}

Test(rules, the_shipped_file_loads_and_matches)
{
    ee__cat_rules *r = shipped();
    cr_assert_geq(json_array_size(ee__cat_rules_categories(r)), 5);
    cr_assert_str_eq(match(r, "x", "[\"AI\"]", "[]", "[]"), "AI & Research", "tag, any case");
    cr_assert_str_eq(match(r, "x", "[]", "[\"@n8n/n8n-nodes-langchain.agent\"]", "[]"),
                     "AI & Research", "node type prefix with *");
    cr_assert_str_eq(match(r, "x", "[]", "[]", "[\"email\"]"), "Email & Communication",
                     "integration category");
    cr_assert_str_eq(match(r, "Weekly REPORT", "[]", "[]", "[]"), "Reporting", "name pattern");
    cr_assert_str_eq(match(r, "plain", "[\"misc\"]", "[\"n8n-nodes-base.set\"]", "[]"), "General",
                     "default");
    /* order decides: the first matching rule wins */
    cr_assert_str_eq(match(r, "report", "[\"email\", \"ai\"]", "[]", "[]"), "AI & Research");
    ee__cat_rules_free(r);
}

static ee_status parse(const char *text)
{
    ee__cat_rules *r = NULL;
    ee_status st = ee__cat_rules_parse(text, strlen(text), &r);
    ee__cat_rules_free(r);
    return st;
}

Test(rules, malformed_files_name_the_field)
{
    cr_assert_eq(parse("{"), EE_EPARSE);
    cr_assert_eq(parse("{\"categories\": []}"), EE_EINVAL);
    cr_assert_eq(parse("{\"categories\": [{\"name\": \"A\"}], \"default\": \"B\"}"), EE_EINVAL);
    cr_assert_eq(parse("{\"categories\": [{\"name\": \"A\"}, {\"name\": \"A\"}], "
                       "\"default\": \"A\"}"),
                 EE_EINVAL);
    cr_assert_eq(parse("{\"categories\": [{\"name\": \"A\"}], \"default\": \"A\", \"rules\": "
                       "[{\"category\": \"A\", \"tagsAny\": \"x\"}]}"),
                 EE_EINVAL);
    cr_assert_not_null(strstr(ee_error_last_message(), "rules[0].tagsAny"),
                       "%s", ee_error_last_message());
    cr_assert_eq(parse("{\"categories\": [{\"name\": \"A\"}], \"default\": \"A\", \"rules\": "
                       "[{\"category\": \"Z\", \"tagsAny\": [\"x\"]}]}"),
                 EE_EINVAL);
    cr_assert_eq(parse("{\"categories\": [{\"name\": \"A\"}], \"default\": \"A\", \"rules\": "
                       "[{\"category\": \"A\"}]}"),
                 EE_EINVAL, "a rule without a condition");
    cr_assert_eq(parse("{\"categories\": [{\"name\": \"A\"}], \"default\": \"A\", \"rules\": "
                       "[{\"category\": \"A\", \"colourAny\": [\"x\"]}]}"),
                 EE_EINVAL);
    cr_assert_eq(parse("{\"categories\": [{\"name\": \"A\", \"sortOrder\": \"1\"}], "
                       "\"default\": \"A\"}"),
                 EE_EINVAL);
    cr_assert_eq(parse("{\"categories\": [{\"name\": \"A\"}], \"default\": \"A\"}"), EE_OK);
    ee__cat_rules *r = NULL;
    cr_assert_eq(ee__cat_rules_load_file("/nonexistent/categories.json", &r), EE_EIO);
}

Test(derive, credentials_llm_trigger_and_category)
{
    ee__integrations *integ = NULL;
    cr_assert_eq(ee__integrations_load_file(&integ, EE_SOURCE_DIR "/data/integrations.json"), EE_OK);
    ee__cat_rules *r = shipped();
    json_t *wf = strings(
        "{\"id\": \"w\", \"name\": \"Research\\u0001bot\\u0085two\", \"active\": true, \"isArchived\": false,"
        " \"tags\": [\"x\", \"x\", \"\"], \"versionId\": \"v1\","
        " \"nodes\": [{\"name\": \"H\", \"type\": \"n8n-nodes-base.httpRequest\","
        "   \"credentials\": {\"httpHeaderAuth\": {\"id\": \"1\"}}},"
        "  {\"name\": \"G\", \"type\": \"n8n-nodes-base.gmail\"},"
        "  {\"name\": \"O\", \"type\": \"@n8n/n8n-nodes-langchain.lmChatOpenRouter\"},"
        "  {\"name\": \"Off\", \"type\": \"n8n-nodes-base.slack\", \"disabled\": true}],"
        " \"trigger\": {\"runnable\": true, \"method\": \"POST\", \"path\": \"p\"}}");
    json_t *d = NULL;
    cr_assert_eq(ee__catalog_derive(wf, integ, r, &d), EE_OK);
    char *text = json_dumps(d, JSON_SORT_KEYS);
    json_t *src = json_object_get(d, "source");
    cr_assert_str_eq(json_string_value(json_object_get(src, "name")), "Research bot two",
                     "control characters (C0, C1) cleaned");
    cr_assert_eq(json_array_size(json_object_get(src, "tags")), 1, "%s", text);
    json_t *creds = json_object_get(d, "credentialTypes");
    cr_assert_eq(json_array_size(creds), 3, "%s", text);
    cr_assert_str_eq(json_string_value(json_array_get(creds, 0)), "gmailOAuth2",
                     "a known node without credentials still needs its service's");
    cr_assert_str_eq(json_string_value(json_array_get(creds, 1)), "httpHeaderAuth");
    cr_assert_str_eq(json_string_value(json_array_get(creds, 2)), "openRouterApi");
    cr_assert(json_is_true(json_object_get(src, "requiresApiKey")), "an LLM node");
    cr_assert_str_eq(json_string_value(json_object_get(src, "apiKeyProvider")), "openrouter");
    cr_assert_str_eq(json_string_value(json_object_get(src, "categoryName")), "AI & Research");
    cr_assert(json_is_true(json_object_get(src, "isActive")));
    free(text);
    json_decref(d);
    /* inactive in n8n: the webhook is not registered, so not runnable */
    json_object_set_new(wf, "active", json_false());
    cr_assert_eq(ee__catalog_derive(wf, integ, r, &d), EE_OK);
    json_t *trig = json_object_get(d, "trigger");
    cr_assert(json_is_false(json_object_get(trig, "runnable")));
    cr_assert_not_null(strstr(json_string_value(json_object_get(trig, "reason")), "not active"));
    cr_assert(json_is_false(json_object_get(json_object_get(d, "source"), "isActive")));
    json_decref(d);
    json_decref(wf);
    ee__cat_rules_free(r);
    ee__integrations_free(integ);
}

/* Sync and credential routing map node types with the one function
 * (ee__integrations_map_node): what sync derives for a node without
 * configured credentials is exactly its service's first credential type,
 * and nothing for a free or unknown node. */
Test(derive, node_types_map_as_routing_maps_them)
{
    ee__integrations *integ = NULL;
    cr_assert_eq(ee__integrations_load_file(&integ, EE_SOURCE_DIR "/data/integrations.json"), EE_OK);
    static const char *const types[] = {
        "n8n-nodes-base.serper",  "serper",        "n8n-nodes-base.gmail", "gmail",
        "n8n-nodes-base.set",     "set",           "n8n-nodes-base.webhook",
        "@n8n/n8n-nodes-langchain.lmChatOpenAi",   "@n8n/n8n-nodes-langchain.agent",
        "n8n-nodes-acme.mysteryApi", "somethingNew", "n8n-nodes-base.youTube"};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        json_t *wf = json_pack("{s:s, s:s, s:[{s:s, s:s}]}", "id", "w", "name", "n", "nodes",
                               "name", "N", "type", types[i]);
        json_t *d = NULL;
        cr_assert_eq(ee__catalog_derive(wf, integ, NULL, &d), EE_OK);
        const json_t *creds = json_object_get(d, "credentialTypes");
        const ee__integration *svc = NULL;
        ee__node_kind kind = ee__integrations_map_node(integ, types[i], &svc);
        if (kind == EE__NODE_SERVICE) {
            cr_expect_eq(json_array_size(creds), 1, "%s", types[i]);
            cr_expect_str_eq(json_string_value(json_array_get(creds, 0)),
                             json_string_value(json_array_get(svc->credentials, 0)), "%s", types[i]);
            cr_expect_str_eq(json_string_value(json_array_get(json_object_get(d, "services"), 0)),
                             svc->service, "%s", types[i]);
        } else {
            cr_expect_eq(json_array_size(creds), 0, "%s needs nothing", types[i]);
        }
        json_decref(d);
        json_decref(wf);
    }
    const ee__integration *svc = NULL;
    cr_expect_eq(ee__integrations_map_node(integ, "n8n-nodes-base.serper", &svc), EE__NODE_SERVICE);
    cr_expect_eq(ee__integrations_map_node(integ, "n8n-nodes-base.set", &svc), EE__NODE_NO_CREDENTIAL);
    cr_expect_eq(ee__integrations_map_node(integ, "n8n-nodes-acme.mysteryApi", &svc), EE__NODE_UNKNOWN);
    ee__integrations_free(integ);
}
