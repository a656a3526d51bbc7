/*
 * A host's own storage (ee_storage_new_custom() over the memory backend)
 * plugged into an engine with ee_engine_open_parts(): the storage
 * conformance suite passes against the handle the engine uses, and the
 * engine's own modules write through it.
 */
#include "counting_storage.h"
#include "engine_fixture.h"
#include "execengine/catalog.h"

#include "core/core.h"
#include "engine/engine.h"

static ee_engine *engine;

/* The engine is closed by the host storage's destroy (ee_storage_free()
 * of the handle the suite ran on), before the store behind it goes: the
 * host keeps its part alive until ee_engine_close() has returned. */
static void close_engine(void *payload)
{
    (void)payload;
    ee_engine_close(engine);
    engine = NULL;
}

static ee_engine *open_on(ee_storage *mine)
{
    ee_config *cfg = ee_test_config_new(NULL, NULL, NULL);
    ee_test_config_set(cfg, "EE_COUNTERS_URI", "memory:"); /* one process uses this storage */
    ee_engine_parts parts = {.version = EE_ENGINE_PARTS_VERSION, .storage = mine};
    ee_engine *e = NULL;
    ee_status st = ee_engine_open_parts(&e, cfg, &parts);
    ee_config_free(cfg);
    cr_assert_eq(st, EE_OK, "%s", ee_error_last_message());
    return e;
}

/* ---- the conformance suite on the engine's storage ---------------------------- */

#define CONF_SUITE engine_storage

static ee_storage *conf_open(void)
{
    counting_storage *c = NULL;
    ee_storage *mine = counting_storage_new(&c);
    engine = open_on(mine);
    c->on_destroy = close_engine;
    ee_storage *s = ee__engine_storage(engine);
    cr_assert_eq(s, mine, "the engine uses the host's storage");
    cr_assert_str_eq(ee_storage_backend_name(s), "counting");
    return s;
}

static void conf_cleanup(void) {}

#include "../storage/conformance.h"

/* ---- the modules write through it --------------------------------------------- */

Test(engine_parts_storage, the_modules_write_through_the_hosts_storage)
{
    counting_storage *c = NULL;
    ee_storage *mine = counting_storage_new(&c);
    ee_engine *e = open_on(mine);
    int inserts = atomic_load(&c->inserts);
    uint64_t before = 0, after = 0;
    cr_assert_eq(ee_storage_count(c->inner, "workflowCatalog", NULL, NULL, &before), EE_OK,
                 "%s", ee_error_last_message());
    char *out = NULL;
    ee_status st = ee_catalog_create(e, "{\"n8nWorkflowId\": \"wf-1\", \"name\": \"Echo\"}", &out);
    cr_assert_eq(st, EE_OK, "%s", out);
    ee_free(out);
    cr_expect_gt(atomic_load(&c->inserts), inserts, "the create went through the host's table");
    cr_assert_eq(ee_storage_count(c->inner, "workflowCatalog", NULL, NULL, &after), EE_OK);
    cr_expect_eq(after, before + 1, "the entry is in the host's store");
    /* the summary does not describe the config's storage as the engine's */
    cr_assert_eq(ee_engine_summary_json(e, &out), EE_OK);
    cr_expect_not_null(strstr(out, "\"storage\":{\"uri\":null,\"backend\":\"counting\"}"), "%s",
                       out);
    ee_free(out);
    ee_engine_close(e);
    /* still the host's: usable after the engine closed, freed by the host */
    cr_assert_eq(ee_storage_count(mine, "workflowCatalog", NULL, NULL, &after), EE_OK);
    cr_expect_eq(after, before + 1);
    ee_storage_free(mine);
}
