/*
 * tests/support/n8n_engine.h - the engine of the tests against the real
 * n8n of the ctest fixture `n8n` (tests/integration/n8n_*.c): memory
 * storage, the source tree's data/, and n8n's URL and API key from the
 * fixture.
 *
 *   char url[256], key[2048];
 *   const char *const more[] = {"EXEC_WORKERS", "2", NULL};
 *   ee_engine *e = ee_test_n8n_engine(more, url, sizeof url, key, sizeof key);
 */
#ifndef EE_TEST_N8N_ENGINE_H
#define EE_TEST_N8N_ENGINE_H

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "source_dir.h"
#include "test_servers.h"
#include "execengine/catalog.h"
#include "execengine/config.h"
#include "execengine/engine.h"
#include "execengine/errors.h"

static inline void ee_test_n8n_set(ee_config *cfg, const char *k, const char *v)
{
    cr_assert_eq(ee_config_set(cfg, k, v), EE_OK, "%s: %s", k, ee_error_last_message());
}

/* An engine on the fixture's n8n with the options of `more` (key, value,
 * ..., NULL; may be NULL); n8n's URL and API key are copied to url and key
 * for the test's own calls. Asserts. */
static inline ee_engine *ee_test_n8n_engine(const char *const *more, char *url, size_t url_cap,
                                            char *key, size_t key_cap)
{
    ee_test_n8n_value("EE_TEST_N8N_URL", url, url_cap);
    ee_test_n8n_value("EE_TEST_N8N_API_KEY", key, key_cap);
    char data_dir[1024];
    cr_assert(ee_test_source_data_dir(data_dir, sizeof data_dir),
              "cannot locate the source tree from %s", __FILE__);
    ee_config *cfg;
    cr_assert_eq(ee_config_new(&cfg), EE_OK);
    ee_test_n8n_set(cfg, "API_KEY_ENCRYPTION_SECRET", "test-secret-0123456789abcdef0123456789");
    ee_test_n8n_set(cfg, "EE_STORAGE_URI", "memory:");
    ee_test_n8n_set(cfg, "EE_DATA_DIR", data_dir);
    ee_test_n8n_set(cfg, "N8N_BASE_URL", url);
    ee_test_n8n_set(cfg, "N8N_API_KEY", key);
    for (size_t i = 0; more != NULL && more[i] != NULL; i += 2)
        ee_test_n8n_set(cfg, more[i], more[i + 1]);
    ee_engine *engine = NULL;
    ee_status st = ee_engine_open(&engine, cfg);
    ee_config_free(cfg);
    cr_assert_eq(st, EE_OK, "%s", ee_error_last_message());
    return engine;
}

/* The catalog id of the entry named `name` (the fixtures' names are
 * unique). Asserts that there is one. */
static inline void ee_test_n8n_entry_named(ee_engine *engine, const char *name, char id[25])
{
    char *out = NULL;
    cr_assert_eq(ee_catalog_list(engine, NULL, "{\"limit\": 100}", &out), EE_OK, "%s", out);
    json_t *doc = json_loads(out, 0, NULL);
    ee_free(out);
    size_t i;
    json_t *it;
    id[0] = '\0';
    json_array_foreach(json_object_get(doc, "data"), i, it) {
        if (strcmp(json_string_value(json_object_get(it, "name")), name) == 0)
            snprintf(id, 25, "%s", json_string_value(json_object_get(it, "id")));
    }
    json_decref(doc);
    cr_assert(id[0] != '\0', "no catalog entry named \"%s\"", name);
}

#endif
