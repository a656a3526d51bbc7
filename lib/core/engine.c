/* ee_engine: lifecycle, clock, summary. */
#include "core.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "execengine/storage.h"
#include "execengine/version.h"

struct ee_engine {
    ee_config *cfg; /* private copy */
    ee__logger log;
    ee_clock_fn clock;
    void *clock_payload;
    ee_storage *storage;
    const char *counters_backend;
};

static void register_secret(const char *value, void *payload)
{
    ee_status *st = payload;
    if (ee__redact_register(value, strlen(value)) != EE_OK)
        *st = EE_ENOMEM;
}

static void unregister_secret(const char *value, void *payload)
{
    (void)payload;
    ee__redact_unregister(value, strlen(value));
}

static const char *counters_backend_name(const char *uri)
{
    if (strncasecmp(uri, "redis://", 8) == 0)
        return "redis";
    if (strcmp(uri, "storage:") == 0)
        return "storage";
    return "memory";
}

ee_status ee_engine_open(ee_engine **out, const ee_config *cfg)
{
    if (out != NULL)
        *out = NULL;
    if (out == NULL || cfg == NULL)
        return ee__error(EE_EINVAL, "ee_engine_open: NULL argument");
    ee_engine *e = calloc(1, sizeof *e);
    if (e == NULL)
        return ee__error(EE_ENOMEM, "out of memory opening an engine");
    ee_status st = ee_config_copy(&e->cfg, cfg);
    if (st != EE_OK) {
        free(e);
        return st;
    }
    /* Secrets are registered before anything can log or fail with them. */
    ee__config_each_secret(e->cfg, register_secret, &st);
    if (st != EE_OK) {
        ee_engine_close(e);
        return ee__error(EE_ENOMEM, "out of memory registering secrets");
    }
    ee__config_logger(e->cfg, &e->log);
    ee__config_clock(e->cfg, &e->clock, &e->clock_payload);
    st = ee_storage_open_uri(&e->storage, ee__config_text(e->cfg, "EE_STORAGE_URI"));
    if (st != EE_OK) {
        ee__log(&e->log, EE_LOG_ERROR, "core", "cannot open storage: %s", ee_error_last_message());
        ee_engine_close(e);
        return st;
    }
    e->counters_backend = counters_backend_name(ee__config_text(e->cfg, "EE_COUNTERS_URI"));
    ee__log(&e->log, EE_LOG_INFO, "core", "engine opened: libexecengine %s, storage %s, counters %s",
            ee_version(), ee_storage_backend_name(e->storage), e->counters_backend);
    *out = e;
    return EE_OK;
}

void ee_engine_close(ee_engine *engine)
{
    if (engine == NULL)
        return;
    if (engine->storage != NULL)
        ee__log(&engine->log, EE_LOG_INFO, "core", "engine closed");
    ee_storage_free(engine->storage);
    ee__config_each_secret(engine->cfg, unregister_secret, NULL);
    ee_config_free(engine->cfg);
    free(engine);
}

int64_t ee_engine_now_ms(const ee_engine *engine)
{
    return engine == NULL ? 0 : engine->clock(engine->clock_payload);
}

static json_t *backend_json(const ee_engine *e, const char *key, const char *backend)
{
    char *masked = ee__uri_masked(ee__config_text(e->cfg, key));
    json_t *j = masked ? json_pack("{s:s, s:s}", "uri", masked, "backend", backend) : NULL;
    free(masked);
    return j;
}

ee_status ee_engine_summary_json(const ee_engine *engine, char **out)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee_engine_summary_json: out is NULL");
    if (engine == NULL)
        return ee__error_out(out, ee__error(EE_EINVAL, "ee_engine_summary_json: engine is NULL"));
    json_t *doc = json_pack("{s:s, s:o?, s:o?, s:o?}", "version", ee_version(),
                            "storage", backend_json(engine, "EE_STORAGE_URI",
                                                    ee_storage_backend_name(engine->storage)),
                            "counters", backend_json(engine, "EE_COUNTERS_URI", engine->counters_backend),
                            "config", ee__config_summary(engine->cfg));
    return ee__json_out(out, doc);
}

const ee_config *ee__engine_config(const ee_engine *engine)
{
    return engine->cfg;
}

ee_storage *ee__engine_storage(const ee_engine *engine)
{
    return engine->storage;
}

const ee__logger *ee__engine_logger(const ee_engine *engine)
{
    return &engine->log;
}
