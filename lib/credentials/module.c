/* The credentials module's per-engine state: the keyring, the integration
 * catalog, the round-robin turns of the platform pool and a cache of
 * credential metadata (ciphertext included, never plaintext). Opened and
 * closed by ee_engine_open() / ee_engine_close() (ee__module, engine/engine.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "core/data.h"
#include "engine/engine.h"
#include "credentials/cred_internal.h"

#define DEFAULT_VALIDATE_TIMEOUT_MS 10000

ee__cred_state *ee__cred_state_of(const ee_engine *engine)
{
    return ee__engine_module(engine, EE__MOD_CREDENTIALS);
}

static void free_previous(ee__cred_state *s)
{
    for (size_t i = 0; i < s->n_previous; i++) {
        ee__redact_unregister(s->previous[i], strlen(s->previous[i]));
        ee__secret_free(s->previous[i]);
    }
    free(s->previous);
    s->previous = NULL;
    s->n_previous = 0;
}

/* Split API_KEY_ENCRYPTION_PREVIOUS_SECRETS on commas (spaces around an
 * entry are ignored). Each entry is registered for redaction on its own:
 * the whole option's value is, but an entry alone would not be caught. */
static ee_status split_previous(ee__cred_state *s, const char *text)
{
    if (text == NULL)
        return EE_OK;
    size_t cap = 1;
    for (const char *p = text; *p; p++)
        cap += *p == ',';
    s->previous = calloc(cap, sizeof *s->previous);
    if (s->previous == NULL)
        return ee__error(EE_ENOMEM, "out of memory reading previous secrets");
    const char *p = text;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *a = p, *b = p + len;
        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
            b--;
        if (b > a) {
            if ((size_t)(b - a) < EE__SECRET_MIN)
                return ee__error(EE_EINVAL,
                                 "API_KEY_ENCRYPTION_PREVIOUS_SECRETS entry %zu is too short: each "
                                 "secret must be at least %d bytes", s->n_previous + 1,
                                 EE__SECRET_MIN);
            char *dup = malloc((size_t)(b - a) + 1);
            if (dup == NULL)
                return ee__error(EE_ENOMEM, "out of memory reading previous secrets");
            memcpy(dup, a, (size_t)(b - a));
            dup[b - a] = '\0';
            s->previous[s->n_previous++] = dup;
            if (ee__redact_register(dup, strlen(dup)) != EE_OK)
                return ee__error(EE_ENOMEM, "out of memory registering secrets");
        }
        p = end ? end + 1 : p + len;
    }
    return EE_OK;
}

static ee_status build_keyring(ee__cred_state *s, const ee_config *cfg)
{
    const char *secret = ee__config_text(cfg, "API_KEY_ENCRYPTION_SECRET");
    if (secret == NULL || secret[0] == '\0')
        return ee__error(EE_EINVAL, "API_KEY_ENCRYPTION_SECRET is not set: the engine needs a "
                                    "secret of at least %d bytes to encrypt stored credentials",
                         EE__SECRET_MIN);
    if (strlen(secret) < EE__SECRET_MIN)
        return ee__error(EE_EINVAL, "API_KEY_ENCRYPTION_SECRET is too short: it must be at least "
                                    "%d bytes", EE__SECRET_MIN);
    ee_status st = split_previous(s, ee__config_text(cfg, "API_KEY_ENCRYPTION_PREVIOUS_SECRETS"));
    if (st == EE_OK)
        st = ee__keyring_new(&s->ring, secret, (const char *const *)s->previous, s->n_previous);
    return st;
}

static ee_status load_catalog(ee__cred_state *s, const ee_config *cfg)
{
    char *text = NULL;
    size_t len = 0;
    ee_status st = ee__data_read(cfg, "integrations.json", &text, &len, NULL);
    if (st == EE_OK)
        st = ee__integrations_parse(&s->cat, text, len);
    free(text);
    return st;
}

static void snapshot_free(ee__cred_snapshot *snap)
{
    if (snap == NULL)
        return;
    for (size_t i = 0; i < snap->n; i++)
        free(snap->entries[i].env);
    free(snap->entries);
    json_decref(snap->meta);
    free(snap);
}

static void credentials_close(void *state)
{
    ee__cred_state *s = state;
    if (s == NULL)
        return;
    while (s->cache != NULL) {
        ee__cred_snapshot *next = s->cache->next;
        snapshot_free(s->cache); /* no reader remains once the engine closes */
        s->cache = next;
    }
    json_decref(s->turns);
    ee__keyring_free(s->ring);
    ee__integrations_free(s->cat);
    free_previous(s);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

static ee_status credentials_open(ee_engine *engine, void **state_out)
{
    *state_out = NULL;
    ee__cred_state *s = calloc(1, sizeof *s);
    if (s == NULL)
        return ee__error(EE_ENOMEM, "out of memory opening the credentials module");
    pthread_mutex_init(&s->lock, NULL);
    s->engine = engine;
    s->validate_timeout_ms = DEFAULT_VALIDATE_TIMEOUT_MS;
    s->turns = json_object();
    const ee_config *cfg = ee__engine_config(engine);
    ee_status st = s->turns ? build_keyring(s, cfg) : ee__error(EE_ENOMEM, "out of memory");
    if (st == EE_OK)
        st = load_catalog(s, cfg);
    /* Before anything can write: an engine whose secrets cannot open what
     * storage holds must not open, or its writes would re-seal the data
     * under its own key. */
    if (st == EE_OK)
        st = ee__cred_keycheck(s);
    if (st == EE_OK)
        st = ee__cred_registry_move(s);
    if (st != EE_OK) {
        credentials_close(s);
        return st;
    }
    *state_out = s;
    return EE_OK;
}

/* ---- options ------------------------------------------------------------- */

static const ee__option credentials_options[] = {
    EE__OPTION("OPENROUTER_API_URL", EE__OPT_URL, "https://openrouter.ai/api/v1", 1,
               EE__OPT_MAX_URL, "OpenRouter API base URL (key validation, model prices)"),
    EE__OPTION("OPENROUTER_APP_NAME", EE__OPT_STRING, "libexecengine", 1, 256,
               "Application name sent to OpenRouter (X-Title)"),
    EE__OPTION("OPENROUTER_APP_URL", EE__OPT_URL, NULL, 1, EE__OPT_MAX_URL,
               "Application URL sent to OpenRouter (HTTP-Referer)"),
    EE__OPTION("PLATFORM_OPENROUTER_API_KEY", EE__OPT_KEY, NULL, 1, EE__OPT_MAX_TEXT,
               "Platform-funded OpenRouter key"),
    EE__OPTION("PLATFORM_OPENROUTER_KEY", EE__OPT_KEY, NULL, 1, EE__OPT_MAX_TEXT,
               "Platform-funded OpenRouter key: alternative name of PLATFORM_OPENROUTER_API_KEY "
               "(either may be used)"),
    EE__OPTION("PLATFORM_SERPER_KEY", EE__OPT_KEY, NULL, 1, EE__OPT_MAX_TEXT,
               "Platform Serper API key"),
    EE__OPTION("PLATFORM_FIRECRAWL_KEY", EE__OPT_KEY, NULL, 1, EE__OPT_MAX_TEXT,
               "Platform FireCrawl API key"),
    EE__OPTION("PLATFORM_RESEND_KEY", EE__OPT_KEY, NULL, 1, EE__OPT_MAX_TEXT,
               "Platform Resend API key"),
    EE__OPTION("PLATFORM_FROM_EMAIL", EE__OPT_EMAIL, NULL, 3, 254,
               "Sender address for platform email"),
    EE__OPTION("PLATFORM_BRAVE_KEY", EE__OPT_KEY, NULL, 1, EE__OPT_MAX_TEXT,
               "Platform Brave Search API key"),
    EE__OPTION("PLATFORM_TAVILY_KEY", EE__OPT_KEY, NULL, 1, EE__OPT_MAX_TEXT,
               "Platform Tavily API key"),
    EE__OPTION("PLATFORM_YOUTUBE_KEY", EE__OPT_KEY, NULL, 1, EE__OPT_MAX_TEXT,
               "Platform YouTube Data API key"),
    EE__OPTION("API_KEY_ENCRYPTION_SECRET", EE__OPT_PASSWORD, NULL, 32, EE__OPT_MAX_TEXT,
               "Secret from which credential encryption keys are derived (at least 32 bytes)"),
    EE__OPTION(
        "FLOWISE_SECRETKEY_OVERWRITE", EE__OPT_PASSWORD, NULL, 32, EE__OPT_MAX_TEXT,
        "Alternative name of API_KEY_ENCRYPTION_SECRET; if both are set they must be equal"),
    EE__OPTION("API_KEY_ENCRYPTION_PREVIOUS_SECRETS", EE__OPT_PASSWORD, NULL, 32, EE__OPT_MAX_TEXT,
               "Previous encryption secrets, comma-separated (each at least 32 bytes), still read "
               "during a key rotation"),
};

/* FLOWISE_SECRETKEY_OVERWRITE is the encryption secret's other name. */
static ee_status resolve_secret_alias(ee_config *cfg)
{
    const char *alias = ee__config_text(cfg, "FLOWISE_SECRETKEY_OVERWRITE");
    if (alias == NULL)
        return EE_OK;
    const char *secret = ee__config_text(cfg, "API_KEY_ENCRYPTION_SECRET");
    if (secret != NULL) {
        if (strlen(secret) != strlen(alias) || CRYPTO_memcmp(secret, alias, strlen(alias)) != 0)
            return ee__error(EE_EINVAL, "API_KEY_ENCRYPTION_SECRET and FLOWISE_SECRETKEY_OVERWRITE "
                                        "are both set, to different values: set only one of them");
        return EE_OK;
    }
    char *dup = ee__secret_dup(alias);
    if (dup == NULL)
        return ee__error(EE_ENOMEM, "out of memory");
    return ee__config_derive(cfg, "API_KEY_ENCRYPTION_SECRET", dup);
}

const ee__module ee__credentials_module = {
    "credentials",
    credentials_options,
    sizeof credentials_options / sizeof credentials_options[0],
    resolve_secret_alias,
    credentials_open,
    credentials_close,
};

/* ---- cache ------------------------------------------------------------------ */

void ee__cred_invalidate(ee__cred_state *s)
{
    pthread_mutex_lock(&s->lock);
    s->generation++;
    pthread_mutex_unlock(&s->lock);
}

uint64_t ee__cred_next_turn(ee__cred_state *s, const char *cred_name)
{
    pthread_mutex_lock(&s->lock);
    json_t *v = json_object_get(s->turns, cred_name);
    uint64_t turn = v ? (uint64_t)json_integer_value(v) : 0;
    if (v != NULL)
        json_integer_set(v, (json_int_t)((turn + 1) & INT64_MAX));
    else
        json_object_set_new(s->turns, cred_name, json_integer(1));
    pthread_mutex_unlock(&s->lock);
    return turn;
}

typedef struct {
    ee__cred_snapshot *snap;
    ee_status st;
} load_ctx;

static int load_row(const ee_storage_row *row, void *payload)
{
    load_ctx *lc = payload;
    ee__cdoc d;
    lc->st = ee__cdoc_from_bson(row->data, row->len, &d);
    if (lc->st != EE_OK)
        return 1;
    const char *kind = json_string_value(json_object_get(d.meta, "kind"));
    const char *name = json_string_value(json_object_get(d.meta, "credentialName"));
    if (kind == NULL || name == NULL || d.sealed == NULL ||
        (strcmp(kind, "platform") != 0 && strcmp(kind, "personal") != 0)) {
        ee__cdoc_clear(&d);
        return 0; /* registry documents and the like */
    }
    ee__cred_snapshot *snap = lc->snap;
    ee__cred_entry *grown = realloc(snap->entries, (snap->n + 1) * sizeof *grown);
    if (grown != NULL)
        snap->entries = grown;
    if (grown == NULL || json_array_append(snap->meta, d.meta) != 0) {
        ee__cdoc_clear(&d);
        lc->st = ee__error(EE_ENOMEM, "out of memory caching credentials");
        return 1;
    }
    ee__cred_entry *e = &snap->entries[snap->n++];
    memset(e, 0, sizeof *e);
    memcpy(e->id, d.id, sizeof e->id);
    e->cred_name = name; /* d.meta now also lives in snap->meta */
    e->from_email = json_string_value(json_object_get(d.meta, "fromEmail"));
    e->active = !json_is_false(json_object_get(d.meta, "isActive"));
    e->platform = strcmp(kind, "platform") == 0;
    e->env = d.sealed;
    e->env_len = d.sealed_len;
    d.sealed = NULL;
    ee__cdoc_clear(&d);
    return 0;
}

static ee_status snapshot_load(ee__cred_state *s, const char *ws, uint64_t gen,
                               ee__cred_snapshot **out)
{
    ee__cred_snapshot *snap = calloc(1, sizeof *snap);
    if (snap == NULL || (snap->meta = json_array()) == NULL) {
        free(snap);
        return ee__error(EE_ENOMEM, "out of memory caching credentials");
    }
    snprintf(snap->workspace, sizeof snap->workspace, "%s", ws);
    snap->generation = gen;
    snap->loaded_at = ee_engine_now_ms(s->engine);
    load_ctx lc = {snap, EE_OK};
    ee_storage_query_spec q = {.version = EE_STORAGE_QUERY_VERSION,
                               .order = EE_STORAGE_ORDER_TIME_ASC, .limit = EE_STORAGE_LIMIT_MAX};
    ee_status st = ee__storage_query_all(ee__engine_storage(s->engine), EE__CRED_COLL, ws, &q,
                                         load_row, &lc, &lc.st);
    if (st != EE_OK) {
        snapshot_free(snap);
        return st;
    }
    *out = snap;
    return EE_OK;
}

/* Drop snapshot `victim` from the list (under lock); free it if unused. */
static void cache_unlink(ee__cred_state *s, ee__cred_snapshot *victim)
{
    for (ee__cred_snapshot **pp = &s->cache; *pp != NULL; pp = &(*pp)->next)
        if (*pp == victim) {
            *pp = victim->next;
            s->n_cached--;
            victim->next = NULL;
            victim->refs--; /* the cache's own reference */
            if (victim->refs == 0)
                snapshot_free(victim);
            return;
        }
}

ee_status ee__cred_snapshot_get(ee__cred_state *s, const char *ws, ee__cred_snapshot **out)
{
    int64_t now = ee_engine_now_ms(s->engine);
    pthread_mutex_lock(&s->lock);
    uint64_t gen = s->generation;
    for (ee__cred_snapshot *c = s->cache; c != NULL; c = c->next)
        if (strcmp(c->workspace, ws) == 0) {
            if (c->generation == gen && now - c->loaded_at < EE__CRED_CACHE_TTL_MS &&
                now >= c->loaded_at) {
                c->refs++;
                pthread_mutex_unlock(&s->lock);
                *out = c;
                return EE_OK;
            }
            cache_unlink(s, c);
            break;
        }
    pthread_mutex_unlock(&s->lock);

    ee__cred_snapshot *snap = NULL;
    ee_status st = snapshot_load(s, ws, gen, &snap);
    if (st != EE_OK)
        return st;
    pthread_mutex_lock(&s->lock);
    snap->refs = 2; /* the cache's and the caller's */
    /* Another thread may have cached the same workspace meanwhile: ours wins. */
    for (ee__cred_snapshot *c = s->cache; c != NULL; c = c->next)
        if (strcmp(c->workspace, ws) == 0) {
            cache_unlink(s, c);
            break;
        }
    while (s->n_cached >= EE__CRED_CACHE_MAX_WS) {
        ee__cred_snapshot *oldest = s->cache;
        for (ee__cred_snapshot *c = s->cache; c != NULL; c = c->next)
            if (c->loaded_at < oldest->loaded_at)
                oldest = c;
        cache_unlink(s, oldest);
    }
    snap->next = s->cache;
    s->cache = snap;
    s->n_cached++;
    pthread_mutex_unlock(&s->lock);
    *out = snap;
    return EE_OK;
}

void ee__cred_snapshot_release(ee__cred_state *s, ee__cred_snapshot *snap)
{
    if (snap == NULL)
        return;
    pthread_mutex_lock(&s->lock);
    if (--snap->refs == 0)
        snapshot_free(snap);
    pthread_mutex_unlock(&s->lock);
}

void ee__cred_set_rotate_hook(ee_engine *engine, ee__cred_rotate_hook fn, void *payload)
{
    ee__cred_state *s = ee__cred_state_of(engine);
    s->rotate_hook = fn;
    s->rotate_payload = payload;
}

void ee__cred_set_validate_timeout(ee_engine *engine, int64_t timeout_ms)
{
    ee__cred_state *s = ee__cred_state_of(engine);
    s->validate_timeout_ms = timeout_ms > 0 ? timeout_ms : DEFAULT_VALIDATE_TIMEOUT_MS;
}

void ee__cred_audit(ee_engine *e, const ee_principal *p, ee__audit_action action, const char *id,
                    json_t *detail)
{
    ee__audit_append(e, &(ee__audit_entry){.action = action,
                                           .workspace = ee_principal_workspace(p),
                                           .org = ee_principal_org(p),
                                           .actor = ee_principal_user(p),
                                           .target_id = id,
                                           .outcome = EE__AUDIT_OK,
                                           .status = EE_OK,
                                           .detail = detail});
    json_decref(detail);
}
