/* The catalog module's per-engine state: opened and closed by ee_engine_open()
 * and ee_engine_close() (see ee__module in engine/engine.h). It holds the search
 * snapshot, the compiled-schema cache and the sync lock. Data files
 * (categories.json, integrations.json) are read by each sync, not here, so
 * an engine opens without them and an admin's edit applies at the next sync. */
#include <stdlib.h>

#include "catalog/catalog_internal.h"
#include "engine/engine.h"

static ee_status catalog_open(ee_engine *engine, void **state_out)
{
    ee__catalog_state *st = calloc(1, sizeof *st);
    if (st == NULL)
        return ee__error(EE_ENOMEM, "out of memory opening the catalog module");
    st->engine = engine;
    st->rendered = calloc(EE__CAT_RENDER_SLOTS, sizeof *st->rendered);
    if (st->rendered == NULL) {
        free(st);
        return ee__error(EE_ENOMEM, "out of memory opening the catalog module");
    }
    if (ee__config_int(ee__engine_config(engine), "SCHEMA_FORMAT_ASSERT") == 0)
        st->schema_flags |= EE__SCHEMA_FORMAT_ANNOTATE;
    pthread_mutex_init(&st->lock, NULL);
    pthread_mutex_init(&st->build_lock, NULL);
    pthread_mutex_init(&st->sync_lock, NULL);
    pthread_mutex_init(&st->render_lock, NULL);
    *state_out = st;
    return EE_OK;
}

static void catalog_close(void *state)
{
    ee__catalog_state *st = state;
    if (st == NULL)
        return;
    if (st->snap != NULL && --st->snap->refs == 0)
        ee__catalog_snapshot_free(st->snap);
    ee__catalog_schemas_free(st);
    for (size_t i = 0; st->rendered != NULL && i < EE__CAT_RENDER_SLOTS; i++) {
        json_decref(st->rendered[i].rec);
        json_decref(st->rendered[i].full);
    }
    free(st->rendered);
    pthread_mutex_destroy(&st->render_lock);
    pthread_mutex_destroy(&st->lock);
    pthread_mutex_destroy(&st->build_lock);
    pthread_mutex_destroy(&st->sync_lock);
    free(st);
}

static const ee__option catalog_options[] = {
    EE__OPTION("SCHEMA_FORMAT_ASSERT", EE__OPT_INT, "1", 0, 1,
     "1: input schemas' \"format\" (email, date-time, uri ...) is checked; 0: annotation only"),
};

const ee__module ee__catalog_module = {
    "catalog", catalog_options, sizeof catalog_options / sizeof catalog_options[0], NULL,
    catalog_open, catalog_close,
};

ee__catalog_state *ee__catalog_state_of(ee_engine *engine)
{
    ee__catalog_state *st = ee__engine_module(engine, EE__MOD_CATALOG);
    if (st == NULL)
        ee__error(EE_ESTATE, "the engine's catalog module is not open");
    return st;
}

void ee__catalog_invalidate(ee__catalog_state *st)
{
    pthread_mutex_lock(&st->lock);
    st->generation++;
    pthread_mutex_unlock(&st->lock);
}

void ee__catalog_written(ee_engine *engine)
{
    ee__catalog_state *st = ee__engine_module(engine, EE__MOD_CATALOG);
    if (st != NULL)
        ee__catalog_invalidate(st);
}
