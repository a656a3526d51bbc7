/* The gateway module's per-engine state: its options, the providers of
 * gateway.json (EE_DATA_DIR, the installed share/execengine, or the copy
 * built into the library), the grant cache and the embedded listener,
 * stopped by ee_engine_close(). gateway.json is the gateway's own file,
 * not a part of integrations.json: the integration catalog says who funds
 * a credential, this file says how a provider's key reaches its API, and
 * only the gateway reads it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/data.h"
#include "engine/engine.h"
#include "gateway/gateway_internal.h"

g_state *ee__gateway_state(ee_engine *engine)
{
    return engine == NULL ? NULL : ee__engine_module(engine, EE__MOD_GATEWAY);
}

const g_provider *ee__gateway_provider(const g_state *st, const char *name, size_t len)
{
    for (size_t i = 0; i < st->n_providers; i++)
        if (strlen(st->providers[i].name) == len && memcmp(st->providers[i].name, name, len) == 0)
            return &st->providers[i];
    return NULL;
}

static void provider_clear(g_provider *p)
{
    free(p->base_url);
    for (size_t i = 0; i < p->n_creds; i++)
        free(p->creds[i]);
    free(p->inject_header);
    free(p->inject_format);
    free(p->inject_query);
}

static bool token_ok(const char *s, size_t max)
{
    size_t n = s == NULL ? 0 : strlen(s);
    if (n == 0 || n >= max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || strchr("-_.", s[i]) != NULL))
            return false;
    return true;
}

/* A header value format with exactly one "%s" and no other '%'. */
static bool format_ok(const char *f)
{
    const char *p = f == NULL ? NULL : strchr(f, '%');
    return p != NULL && p[1] == 's' && strchr(p + 2, '%') == NULL && strpbrk(f, "\r\n") == NULL;
}

static ee_status bad(size_t i, const char *field)
{
    return ee__error(EE_EINVAL, "gateway.json: providers[%zu]: %s", i, field);
}

static ee_status parse_provider(const json_t *o, size_t i, g_provider *p)
{
    const char *name = json_string_value(json_object_get(o, "provider"));
    if (!token_ok(name, sizeof p->name))
        return bad(i, "\"provider\" must be a short name (letters, digits, - _ .)");
    /* The listener's own routes live under "/_ee/" (EE__GATEWAY_CALLBACK_PATH):
     * a provider there would be unreachable, so the '_' names are reserved. */
    if (name[0] == '_')
        return bad(i, "\"provider\" must not start with '_' (reserved for the listener's own "
                      "routes, such as " EE__GATEWAY_CALLBACK_PATH ")");
    snprintf(p->name, sizeof p->name, "%s", name);
    const char *base = json_string_value(json_object_get(o, "baseUrl"));
    if (base == NULL || (strncmp(base, "http://", 7) != 0 && strncmp(base, "https://", 8) != 0) ||
        strlen(base) > EE__OPT_MAX_URL)
        return bad(i, "\"baseUrl\" must be an http(s) URL");
    if ((p->base_url = strdup(base)) == NULL)
        return ee__error(EE_ENOMEM, "out of memory reading gateway.json");
    size_t n = strlen(p->base_url);
    while (n > 0 && p->base_url[n - 1] == '/')
        p->base_url[--n] = '\0';
    const json_t *creds = json_object_get(o, "credentials");
    if (!json_is_array(creds) || json_array_size(creds) == 0 ||
        json_array_size(creds) > G_MAX_CREDS)
        return bad(i, "\"credentials\" must list 1 to 8 credential types");
    for (size_t k = 0; k < json_array_size(creds); k++) {
        const char *c = json_string_value(json_array_get(creds, k));
        if (!token_ok(c, 128))
            return bad(i, "\"credentials\" must hold credential type names");
        if ((p->creds[p->n_creds++] = strdup(c)) == NULL)
            return ee__error(EE_ENOMEM, "out of memory reading gateway.json");
    }
    const json_t *inj = json_object_get(o, "inject");
    const char *hdr = json_string_value(json_object_get(inj, "header"));
    const char *fmt = json_string_value(json_object_get(inj, "format"));
    const char *query = json_string_value(json_object_get(inj, "query"));
    if (hdr != NULL && query == NULL && token_ok(hdr, 128) && format_ok(fmt)) {
        p->inject_header = strdup(hdr);
        p->inject_format = strdup(fmt);
        if (p->inject_header == NULL || p->inject_format == NULL)
            return ee__error(EE_ENOMEM, "out of memory reading gateway.json");
    } else if (query != NULL && hdr == NULL && token_ok(query, 128)) {
        if ((p->inject_query = strdup(query)) == NULL)
            return ee__error(EE_ENOMEM, "out of memory reading gateway.json");
    } else {
        return bad(i, "\"inject\" must be {\"header\", \"format\" with one %s} or {\"query\"}");
    }
    const char *metering = json_string_value(json_object_get(o, "metering"));
    if (metering != NULL && strcmp(metering, "openrouter") != 0)
        return bad(i, "\"metering\" must be \"openrouter\" or absent");
    p->meter_openrouter = metering != NULL;
    const json_t *price = json_object_get(o, "perCallUsd");
    if (price != NULL && (!json_is_string(price) ||
                          ee__decimal_parse(json_string_value(price), 9, &p->per_call_nano) !=
                              EE_OK))
        return bad(i, "\"perCallUsd\" must be a USD decimal text with up to 9 decimals");
    return EE_OK;
}

static ee_status load_providers(g_state *st, const ee_config *cfg)
{
    char *text = NULL;
    size_t len = 0;
    ee_status s = ee__data_read(cfg, "gateway.json", &text, &len, NULL);
    if (s != EE_OK)
        return s;
    json_t *doc = NULL;
    s = ee__json_parse(text, EE__DATA_MAX_BYTES, 16, 0, "gateway.json", &doc);
    free(text);
    if (s != EE_OK)
        return s;
    const json_t *list = json_object_get(doc, "providers");
    if (!json_is_array(list) || json_array_size(list) > G_MAX_PROVIDERS) {
        json_decref(doc);
        return ee__error(EE_EINVAL, "gateway.json: \"providers\" must be an array of at most %d",
                         G_MAX_PROVIDERS);
    }
    st->providers = calloc(json_array_size(list) + 1, sizeof *st->providers);
    if (st->providers == NULL) {
        json_decref(doc);
        return ee__error(EE_ENOMEM, "out of memory reading gateway.json");
    }
    for (size_t i = 0; i < json_array_size(list) && s == EE_OK; i++) {
        s = parse_provider(json_array_get(list, i), i, &st->providers[i]);
        st->n_providers = i + 1;
        for (size_t k = 0; k < i && s == EE_OK; k++)
            if (strcmp(st->providers[k].name, st->providers[i].name) == 0)
                s = bad(i, "\"provider\" is listed twice");
    }
    json_decref(doc);
    if (s == EE_OK) {
        st->pstats = calloc(st->n_providers + 1, sizeof *st->pstats);
        if (st->pstats == NULL)
            return ee__error(EE_ENOMEM, "out of memory reading gateway.json");
        for (size_t i = 0; i < st->n_providers; i++)
            st->providers[i].stats = &st->pstats[i];
    }
    return s;
}

static void gateway_close(void *state)
{
    g_state *st = state;
    if (st == NULL)
        return;
    ee__gateway_listener_stop(st);
    ee__gateway_writer_stop(st); /* the listener's last calls are written */
    ee__gateway_cache_clear(st);
    for (size_t i = 0; i < st->n_providers; i++)
        provider_clear(&st->providers[i]);
    free(st->providers);
    free(st->pstats);
    free(st->url);
    free(st->callback_url);
    pthread_cond_destroy(&st->settled);
    pthread_cond_destroy(&st->ready_cond);
    pthread_mutex_destroy(&st->lock);
    free(st);
}

static ee_status gateway_open(ee_engine *engine, void **state_out)
{
    *state_out = NULL;
    g_state *st = calloc(1, sizeof *st);
    if (st == NULL)
        return ee__error(EE_ENOMEM, "out of memory opening the gateway module");
    st->engine = engine;
    st->opened_at = ee_engine_now_ms(engine);
    pthread_mutex_init(&st->lock, NULL);
    pthread_cond_init(&st->settled, NULL);
    pthread_cond_init(&st->ready_cond, NULL);
    st->ready_tail = &st->ready;
    const ee_config *cfg = ee__engine_config(engine);
    st->body_max = ee__config_int(cfg, "EXEC_GATEWAY_BODY_MAX");
    st->timeout_ms = ee__config_int(cfg, "EXEC_GATEWAY_TIMEOUT_MS");
    const char *url = ee__config_text(cfg, "EXEC_GATEWAY_URL");
    ee_status s = EE_OK;
    st->url_configured = url != NULL && url[0] != '\0';
    if (st->url_configured && (st->url = strdup(url)) == NULL)
        s = ee__error(EE_ENOMEM, "out of memory opening the gateway module");
    if (s == EE_OK)
        s = load_providers(st, cfg);
    if (s != EE_OK) {
        gateway_close(st);
        return s;
    }
    *state_out = st;
    return EE_OK;
}

const char *ee__gateway_url(ee_engine *engine)
{
    g_state *st = ee__gateway_state(engine);
    if (st == NULL)
        return NULL;
    /* Set once (EXEC_GATEWAY_URL at open, or the first listen), never
     * changed after: the pointer lives as long as the engine. */
    pthread_mutex_lock(&st->lock);
    const char *url = st->url;
    pthread_mutex_unlock(&st->lock);
    return url;
}

void ee__gateway_set_callback(ee_engine *engine, ee__gateway_callback_fn fn, int64_t body_max)
{
    g_state *st = ee__gateway_state(engine);
    if (st == NULL)
        return;
    pthread_mutex_lock(&st->lock);
    st->callback_fn = fn;
    st->callback_body_max = body_max;
    pthread_mutex_unlock(&st->lock);
}

const char *ee__gateway_callback_url(ee_engine *engine)
{
    g_state *st = ee__gateway_state(engine);
    if (st == NULL)
        return NULL;
    /* Set once by ee_gateway_listen(), freed with the module. */
    pthread_mutex_lock(&st->lock);
    const char *url = st->callback_fn != NULL ? st->callback_url : NULL;
    pthread_mutex_unlock(&st->lock);
    return url;
}

void ee__gateway_listener_close(ee_engine *engine)
{
    g_state *st = ee__gateway_state(engine);
    if (st != NULL)
        ee__gateway_listener_stop(st);
}

static const ee__option gateway_options[] = {
    EE__OPTION("EXEC_GATEWAY_URL", EE__OPT_URL, NULL, 1, EE__OPT_MAX_URL,
               "Base URL of the credential gateway given to workflows (set it when the host "
               "serves ee_gateway_handle() itself or a proxy fronts the listener; unset: the "
               "embedded listener's URL)"),
    EE__OPTION("EXEC_GATEWAY_BODY_MAX", EE__OPT_INT, "10485760", 1, 1073741824,
               "Largest request body the gateway forwards, in bytes (larger: HTTP 413)"),
    EE__OPTION("EXEC_GATEWAY_TIMEOUT_MS", EE__OPT_INT, "120000", 1, 86400000,
               "How long the gateway waits for a provider's answer, in milliseconds "
               "(longer: HTTP 504)"),
};

const ee__module ee__gateway_module = {
    "gateway", gateway_options, sizeof gateway_options / sizeof gateway_options[0], NULL,
    gateway_open, gateway_close,
};
