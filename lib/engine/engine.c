/* ee_engine: assembly from the registry (engine.h), lifecycle, clock,
 * summary, and the parts a host plugs in (ee_engine_open_parts()). */
#include "engine/engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "counters/counters.h"
#include "execengine/counters.h"
#include "execengine/exec.h"
#include "execengine/n8n.h"
#include "execengine/storage.h"
#include "execengine/transport.h"
#include "execengine/version.h"
#include "gateway/gateway.h"
#include "storage/storage.h"

struct ee_engine {
    ee_config *cfg; /* private copy */
    ee__logger log;
    ee_clock_fn clock;
    void *clock_payload;
    ee_storage *storage;
    ee_counters *counters;
    ee_transport *transport;
    ee_n8n *n8n;
    /* Which parts the engine opened (and closes); the others are the
     * host's, borrowed for the engine's lifetime. */
    bool own_storage, own_counters, own_transport, own_n8n;
    void *modules[EE__MOD_COUNT];
    int modules_open;
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

/* The shared parts every module reaches through the engine: the host's
 * where it gave them, else opened from the config. */
static ee_status open_parts(ee_engine *e, const ee_engine_parts *p)
{
    const char *storage_uri = ee__config_text(e->cfg, "EE_STORAGE_URI");
    ee_status st = EE_OK;
    if (p->storage != NULL) {
        e->storage = p->storage;
        /* The config's storage is not the engine's, and the engine cannot
         * tell whether other processes share the host's: counters that are
         * exact across them cannot be chosen for the host, so it says which
         * (never a silent per-process default that several processes on one
         * database would each count past a limit with). */
        if (p->counters == NULL && ee__config_text(e->cfg, "EE_COUNTERS_URI") == NULL)
            return ee__error(EE_EINVAL,
                             "ee_engine_open_parts: a host storage needs counters every "
                             "process using it shares: give ee_engine_parts.counters or set "
                             "EE_COUNTERS_URI (redis://..., or memory: when one process uses "
                             "the storage)");
        storage_uri = "memory:";
    } else {
        st = ee__storage_open_uri_logged(&e->storage, storage_uri, &e->log);
        e->own_storage = st == EE_OK;
    }
    /* EE_COUNTERS_URI unset (NULL): the storage's own counters when it is a
     * database, so the default is exact across processes; memory: only over
     * a memory: storage. Memory counters over a database lock it. */
    if (st == EE_OK && p->counters != NULL) {
        e->counters = p->counters;
    } else if (st == EE_OK) {
        st = ee__counters_open_uri_logged(&e->counters, ee__config_text(e->cfg, "EE_COUNTERS_URI"),
                                          storage_uri, &e->log);
        e->own_counters = st == EE_OK;
    }
    if (st == EE_OK && p->transport != NULL) {
        e->transport = p->transport;
    } else if (st == EE_OK) {
        st = ee_transport_curl_new(&e->transport, NULL);
        e->own_transport = st == EE_OK;
    }
    /* Without an API key there is no n8n client: the engine still serves
     * everything else, and the calls that need n8n say what is missing. */
    const char *n8n_key = ee__config_text(e->cfg, "N8N_API_KEY");
    if (st == EE_OK && p->n8n != NULL) {
        e->n8n = p->n8n;
    } else if (st == EE_OK && n8n_key != NULL) {
        st = ee_n8n_new(&e->n8n, e->transport, ee__config_text(e->cfg, "N8N_BASE_URL"), n8n_key);
        e->own_n8n = st == EE_OK;
    }
    return st;
}

static ee_status open_modules(ee_engine *e)
{
    for (; e->modules_open < EE__MOD_COUNT; e->modules_open++) {
        const ee__module *m = ee__engine_registry(e->modules_open);
        if (m->open == NULL)
            continue;
        ee_status st = m->open(e, &e->modules[e->modules_open]);
        if (st != EE_OK)
            return st;
    }
    return EE_OK;
}

/* The part of ee_engine_parts each version defines. */
static const size_t parts_sizes[] = {
    offsetof(ee_engine_parts, clock_payload) + sizeof(void *), /* 1 */
};

ee_status ee_engine_open_parts(ee_engine **out, const ee_config *cfg, const ee_engine_parts *parts)
{
    if (out != NULL)
        *out = NULL;
    if (out == NULL || cfg == NULL)
        return ee__error(EE_EINVAL, "ee_engine_open: NULL argument");
    ee_engine_parts p = {0};
    if (parts != NULL) {
        ee_status vst = EE__VTABLE_ADOPT(&p, parts, parts_sizes, "ee_engine_parts");
        if (vst != EE_OK)
            return vst;
    }
    ee_engine *e = calloc(1, sizeof *e);
    if (e == NULL)
        return ee__error(EE_ENOMEM, "out of memory opening an engine");
    ee_status st = ee_config_copy(&e->cfg, cfg);
    if (st != EE_OK) {
        free(e);
        return st;
    }
    st = ee__engine_config_resolve(e->cfg);
    if (st != EE_OK) {
        ee_config_free(e->cfg);
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
    if (p.clock != NULL) {
        e->clock = p.clock;
        e->clock_payload = p.clock_payload;
    }
    st = open_parts(e, &p);
    if (st == EE_OK)
        st = open_modules(e);
    if (st != EE_OK) {
        ee__log(&e->log, EE_LOG_ERROR, "core", "cannot open the engine: %s",
                ee_error_last_message());
        ee_engine_close(e);
        return st;
    }
    /* The gateway's listener takes signed completion callbacks for exec:
     * wired here, so neither module names the other's calls. */
    ee__gateway_set_callback(e, ee_exec_ingest_webhook, EE_EXEC_REQUEST_MAX);
    ee__log(&e->log, EE_LOG_INFO, "core",
            "engine opened: libexecengine %s, storage %s, counters %s", ee_version(),
            ee_storage_backend_name(e->storage), ee_counters_backend_name(e->counters));
    *out = e;
    return EE_OK;
}

ee_status ee_engine_open(ee_engine **out, const ee_config *cfg)
{
    return ee_engine_open_parts(out, cfg, NULL);
}

void ee_engine_close(ee_engine *engine)
{
    if (engine == NULL)
        return;
    if (engine->modules_open == EE__MOD_COUNT)
        ee__log(&engine->log, EE_LOG_INFO, "core", "engine closed");
    /* The listener's callback route calls into exec, which closes before
     * the gateway: no request may be in flight from here on. */
    if (engine->modules_open > EE__MOD_GATEWAY)
        ee__gateway_listener_close(engine);
    while (engine->modules_open > 0) {
        engine->modules_open--;
        const ee__module *m = ee__engine_registry(engine->modules_open);
        if (m->close != NULL)
            m->close(engine->modules[engine->modules_open]);
    }
    if (engine->own_n8n)
        ee_n8n_free(engine->n8n);
    if (engine->own_transport)
        ee_transport_free(engine->transport);
    if (engine->own_counters)
        ee_counters_free(engine->counters);
    if (engine->own_storage)
        ee_storage_free(engine->storage);
    ee__config_each_secret(engine->cfg, unregister_secret, NULL);
    ee_config_free(engine->cfg);
    free(engine);
}

/* The engine whose clock the calling thread read at its innermost engine
 * hold, and that reading (ee__engine_hold_begin()). */
static _Thread_local struct {
    const ee_engine *engine;
    int64_t now;
} held_clock;

int64_t ee_engine_now_ms(const ee_engine *engine)
{
    if (engine == NULL)
        return 0;
    if (held_clock.engine == engine)
        return held_clock.now;
#if EE_DEBUG_CHECKS
    /* A clock read under a lock without an engine hold: a host clock that
     * runs on another thread (Node) can deadlock there. Debug and sanitized
     * builds stop (CMakeLists.txt, EE_DEBUG_CHECKS); others read the clock. */
    if (ee__hold_active()) {
        fprintf(stderr, "libexecengine: ee_engine_now_ms() under a lock: read it before the "
                        "hold (ee__engine_hold_begin())\n");
        abort();
    }
#endif
    return engine->clock(engine->clock_payload);
}

void ee__engine_hold_begin(const ee_engine *engine, ee__engine_hold *h)
{
    h->prev_engine = held_clock.engine;
    h->prev_now = held_clock.now;
    int64_t now = ee_engine_now_ms(engine); /* before the hold: may call the host */
    held_clock.engine = engine;
    held_clock.now = now;
    ee__hold_begin();
}

void ee__engine_hold_end(ee__engine_hold *h)
{
    held_clock.engine = h->prev_engine;
    held_clock.now = h->prev_now;
    ee__hold_end(); /* the outermost delivers the queued lines: the clock is live again */
}

static ee_status atomic_held(ee_engine *engine, bool deferred,
                             ee_status (*fn)(struct ee_storage *, void *), void *payload)
{
    ee__engine_hold h;
    ee__engine_hold_begin(engine, &h);
    ee_storage *sto = ee__engine_storage(engine);
    ee_status st = deferred ? ee__storage_atomic_deferred(sto, fn, payload)
                            : ee__storage_atomic(sto, fn, payload);
    ee__engine_hold_end(&h);
    return st;
}

ee_status ee__engine_atomic(ee_engine *engine, ee_status (*fn)(struct ee_storage *, void *),
                            void *payload)
{
    return atomic_held(engine, false, fn, payload);
}

ee_status ee__engine_atomic_deferred(ee_engine *engine,
                                     ee_status (*fn)(struct ee_storage *, void *),
                                     void *payload)
{
    return atomic_held(engine, true, fn, payload);
}

static json_t *backend_json(const ee_engine *e, const char *key, const char *backend, bool own)
{
    if (!own) /* the host's: the config's URI does not describe it */
        return json_pack("{s:n, s:s}", "uri", "backend", backend);
    const char *uri = ee__config_text(e->cfg, key);
    if (uri == NULL) /* EE_COUNTERS_URI unset: what the default chose */
        uri = strncmp(backend, "storage-", 8) == 0 ? "storage:" : "memory:";
    char *masked = ee__uri_masked(uri);
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
                                                    ee_storage_backend_name(engine->storage),
                                                    engine->own_storage),
                            "counters", backend_json(engine, "EE_COUNTERS_URI",
                                                     ee_counters_backend_name(engine->counters),
                                                     engine->own_counters),
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

ee_counters *ee__engine_counters(const ee_engine *engine)
{
    return engine->counters;
}

ee_transport *ee__engine_transport(const ee_engine *engine)
{
    return engine->transport;
}

ee_n8n *ee__engine_n8n(const ee_engine *engine)
{
    return engine->n8n;
}

void *ee__engine_module(const ee_engine *engine, int id)
{
    return id >= 0 && id < EE__MOD_COUNT ? engine->modules[id] : NULL;
}

const ee__logger *ee__engine_logger(const ee_engine *engine)
{
    return &engine->log;
}
