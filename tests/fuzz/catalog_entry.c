/*
 * libFuzzer: arbitrary bytes as a catalog entry (memory storage). The input
 * is created as an entry; when that succeeds, parameters are validated
 * against it (an empty object and the input itself), the entry is read
 * back (by the admin, and by a workspace its access may refuse), and it is then deleted so the store stays small. The input is also
 * applied as a patch to one fixed entry. Any crash, leak, sanitizer report
 * or broken invariant (abort) is a finding: every failure must be one of
 * the documented statuses, with an error document.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/core.h"
#include "execengine/catalog.h"
#include "execengine/config.h"
#include "execengine/storage.h"

#include "fuzz_check.h"
#include "engine/engine.h"

static ee_engine *engine;
static ee_principal *customer;
static char fixed_id[25];

/* The source tree's data/ folder (modules load data files at open), from
 * this file's path: tests/fuzz/catalog_entry.c. */
static void data_dir(char *out, size_t cap)
{
    snprintf(out, cap, "%s", __FILE__);
    for (int up = 0; up < 3; up++) {
        char *slash = strrchr(out, '/');
        CHECK(slash != NULL);
        *slash = '\0';
    }
    strncat(out, "/data", cap - strlen(out) - 1);
}

static void open_once(void)
{
    if (engine != NULL)
        return;
    char dir[1024];
    data_dir(dir, sizeof dir);
    ee_config *cfg;
    CHECK(ee_config_new(&cfg) == EE_OK);
    CHECK(ee_config_set(cfg, "API_KEY_ENCRYPTION_SECRET",
                        "fuzz-secret-0123456789abcdef0123456789") == EE_OK);
    CHECK(ee_config_set(cfg, "EE_STORAGE_URI", "memory:") == EE_OK);
    CHECK(ee_config_set(cfg, "EE_DATA_DIR", dir) == EE_OK);
    CHECK(ee_engine_open(&engine, cfg) == EE_OK);
    ee_config_free(cfg);
    CHECK(ee_principal_new(&customer, "ws-1", "user-1", "org-1") == EE_OK);
    char *out = NULL;
    CHECK(ee_catalog_create(engine, "{\"n8nWorkflowId\": \"fixed\", \"name\": \"fixed\"}", &out)
          == EE_OK);
    json_t *doc = json_loads(out, 0, NULL);
    snprintf(fixed_id, sizeof fixed_id, "%s", json_string_value(json_object_get(doc, "id")));
    json_decref(doc);
    ee_free(out);
}

static bool input_status(ee_status st)
{
    return st == EE_EINVAL || st == EE_EPARSE || st == EE_ETOOBIG || st == EE_EEXISTS
        || st == EE_ENOTSUPPORTED || st == EE_ECONFLICT;
}

static void check_error_doc(const char *out)
{
    CHECK(out != NULL);
    json_t *doc = json_loads(out, 0, NULL);
    CHECK(json_is_object(json_object_get(doc, "error")));
    json_decref(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    open_once();
    char *text = malloc(size + 1);
    CHECK(text != NULL);
    memcpy(text, data, size);
    text[size] = '\0';

    char *out = NULL;
    ee_status st = ee_catalog_create(engine, text, &out);
    if (st != EE_OK) {
        CHECK(input_status(st));
        check_error_doc(out);
    } else {
        json_t *doc = json_loads(out, 0, NULL);
        CHECK(doc != NULL);
        char id[25];
        snprintf(id, sizeof id, "%s", json_string_value(json_object_get(doc, "id")));
        json_decref(doc);
        const char *params[] = {"{}", text};
        for (int i = 0; i < 2; i++) {
            char *v = NULL;
            ee_status vs = ee_catalog_validate_input(engine, NULL, id, params[i], &v);
            CHECK(vs == EE_OK || vs == EE_EVALIDATION || vs == EE_ENOTFOUND || vs == EE_EINVAL
                  || vs == EE_EPARSE || vs == EE_ETOOBIG);
            CHECK(v != NULL);
            ee_free(v);
        }
        char *got = NULL;
        ee_status gs = ee_catalog_get(engine, NULL, id, EE_CATALOG_INCLUDE_INACTIVE, &got);
        CHECK(gs == EE_OK);
        ee_free(got);
        /* as a workspace: its "access" (workspaces, plans through the quota
         * module) decides; a customer's answer never carries it */
        got = NULL;
        gs = ee_catalog_get(engine, customer, id, 0, &got);
        CHECK(gs == EE_OK || gs == EE_ENOTFOUND);
        CHECK(got != NULL);
        if (gs == EE_OK) {
            /* the entry's own member, not a key inside its inputSchema */
            json_t *answer = json_loads(got, 0, NULL);
            CHECK(answer != NULL && json_object_get(answer, "access") == NULL);
            json_decref(answer);
        }
        ee_free(got);
        CHECK(ee_storage_delete(ee__engine_storage(engine), "workflowCatalog", NULL, id) == EE_OK);
    }
    ee_free(out);
    out = NULL;
    st = ee_catalog_update(engine, fixed_id, text, &out);
    CHECK(st == EE_OK || input_status(st));
    CHECK(out != NULL);
    ee_free(out);
    free(text);
    return 0;
}
