/*
 * The registry of workspaces holding sealed secrets (what rotation walks)
 * lives in its own workspace key, "platform:workspaces", not among the
 * platform's credentials: the platform's snapshot, which every submit may
 * load, no longer grows by a row for every workspace that ever stored a
 * credential. A store written before is moved at open, and rotation still
 * reaches the workspaces of both places. Principals cannot take the key.
 */
#include "cred_test.h"

#include <unistd.h>

#include "credentials/cred_internal.h"
#include "temp_dir.h"

#define SECRET "registry-test-secret-0123456789abcdef-01"
#define SECRET2 "registry-test-secret-0123456789abcdef-02"

static char dir[64], uri[160];

static void setup(void)
{
    ee_test_temp_dir("/tmp/ee-cred-registry-XXXXXX", dir, sizeof dir);
    snprintf(uri, sizeof uri, "sqlite://%s/store.db", dir);
}

static void teardown(void)
{
    ee_test_temp_dir_remove(dir);
}

TestSuite(registry, .init = setup, .fini = teardown, .timeout = 60);

static ee_engine *open_with(const char *current, const char *previous)
{
    ee_config *cfg = ee_test_config_new(uri, NULL, NULL);
    ee_test_config_set(cfg, "API_KEY_ENCRYPTION_SECRET", current);
    if (previous != NULL)
        ee_test_config_set(cfg, "API_KEY_ENCRYPTION_PREVIOUS_SECRETS", previous);
    ee_test_config_set(cfg, "PLATFORM_SERPER_KEY", "serper-reg-1111111");
    return ee_test_engine_open_config(cfg);
}

static uint64_t stored(ee_engine *e, const char *ws, const char *credential_name)
{
    ee_storage_eq eq = {"credentialName", credential_name};
    ee_storage_query_spec q = {.version = EE_STORAGE_QUERY_VERSION, .eq = &eq,
                               .n_eq = credential_name != NULL ? 1 : 0};
    uint64_t n = 0;
    cr_assert_eq(ee_storage_count(ee__engine_storage(e), EE__CRED_COLL, ws, &q, &n), EE_OK, "%s",
                 ee_error_last_message());
    return n;
}

static void add_personal(ee_engine *e, const char *ws)
{
    ee_principal *p = principal(ws, "u1");
    char *out = NULL;
    json_t *r = answer(ee_cred_personal_put(e, p, "{\"credentialName\": \"notionApi\", \"type\": "
                                                  "\"apiKey\", \"apiKey\": \"secret_reg_notion\"}",
                                            &out),
                       EE_OK, &out);
    json_decref(r);
    ee_principal_free(p);
}

Test(registry, workspaces_are_registered_apart_from_the_platform_credentials)
{
    ee_engine *e = open_with(SECRET, NULL);
    char *out = NULL;
    json_decref(answer(ee_cred_platform_provision(e, &out), EE_OK, &out));
    uint64_t platform_before = stored(e, EE__PLATFORM_WS, NULL);
    enum { N = 40 };
    char ws[32];
    for (int i = 0; i < N; i++) {
        snprintf(ws, sizeof ws, "ws-reg-%d", i);
        add_personal(e, ws);
        add_personal(e, ws); /* a second credential: registered once */
    }
    cr_expect_eq(stored(e, EE__PLATFORM_WS, NULL), platform_before,
                 "the platform's credentials did not grow with the workspaces");
    cr_expect_eq(stored(e, EE__WS_REGISTRY_WS, EE__WS_REGISTRY_NAME), N);
    ee_engine_close(e);
    /* rotation reaches every registered workspace */
    e = open_with(SECRET2, SECRET);
    json_t *r = answer(ee_cred_rotate(e, &out), EE_OK, &out);
    cr_expect_geq(jint(r, "rotated"), N, "%lld rotated", jint(r, "rotated"));
    json_decref(r);
    ee_engine_close(e);
}

Test(registry, a_store_written_before_is_moved_at_open_and_rotated)
{
    ee_engine *e = open_with(SECRET, NULL);
    add_personal(e, "ws-legacy");
    /* as an older library left it: the registry document in "platform" */
    ee__cdoc d = {0};
    cr_assert_eq(ee_storage_id_new(d.id), EE_OK);
    d.meta = json_pack("{s:s, s:s, s:s, s:I}", "kind", "workspace", "credentialName",
                       EE__WS_REGISTRY_NAME, "userId", "ws-legacy", "createdAt", (json_int_t)1);
    cr_assert_eq(ee__cdoc_insert(e, EE__CRED_COLL, EE__PLATFORM_WS, &d), EE_OK, "%s",
                 ee_error_last_message());
    ee__cdoc_clear(&d);
    json_t *ids = NULL; /* and not in its own key */
    cr_assert_eq(ee__cred_list_ids(e, EE__CRED_COLL, EE__WS_REGISTRY_WS, &ids), EE_OK);
    cr_assert_eq(json_array_size(ids), 1);
    cr_assert_eq(ee_storage_delete(ee__engine_storage(e), EE__CRED_COLL, EE__WS_REGISTRY_WS,
                                   json_string_value(json_array_get(ids, 0))),
                 EE_OK, "%s", ee_error_last_message());
    json_decref(ids);
    cr_assert_eq(stored(e, EE__WS_REGISTRY_WS, EE__WS_REGISTRY_NAME), 0);
    cr_assert_eq(stored(e, EE__PLATFORM_WS, EE__WS_REGISTRY_NAME), 1);
    ee_engine_close(e);
    e = open_with(SECRET2, SECRET);
    cr_expect_eq(stored(e, EE__PLATFORM_WS, EE__WS_REGISTRY_NAME), 0, "moved out of \"platform\"");
    cr_expect_eq(stored(e, EE__WS_REGISTRY_WS, EE__WS_REGISTRY_NAME), 1, "into its own key");
    char *out = NULL;
    json_t *r = answer(ee_cred_rotate(e, &out), EE_OK, &out);
    json_decref(r);
    ee_engine_close(e);
    /* the new secret alone opens the legacy workspace's credential */
    e = open_with(SECRET2, NULL);
    ee_principal *p = principal("ws-legacy", "u1");
    cr_expect_eq(ee_cred_personal_list(e, p, &out), EE_OK, "%s", out);
    cr_expect(out != NULL && strstr(out, "notionApi") != NULL, "%s", out);
    ee_free(out);
    ee_principal_free(p);
    ee_engine_close(e);
}

Test(registry, principals_cannot_take_the_engines_workspace_keys)
{
    ee_principal *p = NULL;
    cr_expect_eq(ee_principal_new(&p, "platform:workspaces", "u1", NULL), EE_EINVAL);
    cr_expect(strstr(ee_error_last_message(), "reserved") != NULL, "%s", ee_error_last_message());
    cr_expect_eq(ee_principal_new(&p, "platform:x", "u1", NULL), EE_EINVAL);
    cr_expect_eq(ee_principal_new(&p, "platform", "u1", NULL), EE_EINVAL);
    cr_expect_eq(ee_principal_new(&p, "platformx", "u1", NULL), EE_OK, "only the reserved ones");
    ee_principal_free(p);
}
