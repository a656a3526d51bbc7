/* Grants and metered calls.
 *
 * A grant is stored once, immutable, in gatewayGrants (global: a request
 * carries only its token, so the grant is found by the token's SHA-256,
 * never by the token). It names the run's workspace, user, organisation,
 * the credential types routed for it and the key choice, the budget and
 * the expiry - no secret, no token. A gateway re-routes those credential
 * types on the grant's first call in its process (ee__cred_route_nodes(),
 * the form a catalog entry's requirements route in), so any process
 * sharing the database serves the token, and keeps the route in a small
 * cache by token hash.
 *
 * What changes - the spend and the revocation - lives in the execution's
 * running total in gatewayCalls (callId "total"), changed only by
 * ee_storage_increment(): concurrent gateways in several processes never
 * lose an update, and each call reads the total afresh, so a revocation or
 * a spent budget is seen by every gateway at its next call. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bson/bson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "engine/engine.h"
#include "gateway/gateway_internal.h"
#include "storage/storage.h"

#define TOKEN_PREFIX "eeg_"
#define TOKEN_RAW 32
#define TOKEN_LEN (sizeof TOKEN_PREFIX - 1 + 43)

static void b64url(const uint8_t *in, size_t n, char *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
        out[o++] = tab[v >> 6 & 63];
        out[o++] = tab[v & 63];
    }
    if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
        out[o++] = tab[v >> 6 & 63];
    } else if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
    }
    out[o] = '\0';
}

static void token_hash(const char *token, size_t len, uint8_t hash[32], char hex[65])
{
    SHA256((const unsigned char *)token, len, hash);
    ee__hex_encode(hash, 32, hex);
    hex[64] = '\0';
}

static bool id_ok(const char *id)
{
    if (id == NULL || strlen(id) != EE_STORAGE_ID_HEX_LEN)
        return false;
    for (size_t i = 0; i < EE_STORAGE_ID_HEX_LEN; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            return false;
    return true;
}

static bool ws_ok(const char *ws)
{
    return ws != NULL && ws[0] != '\0' && strlen(ws) <= EE_STORAGE_WORKSPACE_MAX;
}

/* ---- issuing ------------------------------------------------------------------- */

ee_status ee__gateway_grant(ee_engine *engine, const ee__gateway_grant_spec *spec,
                            char token_out[EE__GATEWAY_TOKEN_SIZE])
{
    if (token_out != NULL)
        token_out[0] = '\0';
    g_state *st = ee__gateway_state(engine);
    if (st == NULL || spec == NULL || token_out == NULL || spec->principal == NULL ||
        spec->route == NULL)
        return ee__error(EE_EINVAL, "ee__gateway_grant: engine, spec, its principal and route "
                                    "and token_out must not be NULL");
    if (!id_ok(spec->execution_id))
        return ee__error(EE_EINVAL, "ee__gateway_grant: execution_id must be 24 hex characters");
    if (spec->workflow_catalog_id != NULL && !id_ok(spec->workflow_catalog_id))
        return ee__error(EE_EINVAL,
                         "ee__gateway_grant: workflow_catalog_id must be 24 hex characters");
    if (spec->budget_nano < -1)
        return ee__error(EE_EINVAL, "ee__gateway_grant: budget_nano must be -1 or >= 0");
    if (spec->choice != NULL && spec->choice->use_customer_key &&
        (spec->choice->api_key_id == NULL || spec->choice->api_key_id[0] == '\0' ||
         strlen(spec->choice->api_key_id) >= EE__CRED_ID_MAX))
        return ee__error(EE_EINVAL, "ee__gateway_grant: a customer key choice needs its id");
    const char *ws = ee_principal_workspace(spec->principal);
    if (!ws_ok(ws))
        return ee__error(EE_EINVAL, "ee__gateway_grant: the principal has no workspace");

    uint8_t raw[TOKEN_RAW];
    if (RAND_bytes(raw, sizeof raw) != 1)
        return ee__error(EE_ECRYPTO, "ee__gateway_grant: no random bytes for the token");
    char token[EE__GATEWAY_TOKEN_SIZE];
    memcpy(token, TOKEN_PREFIX, sizeof TOKEN_PREFIX - 1);
    b64url(raw, sizeof raw, token + sizeof TOKEN_PREFIX - 1);
    OPENSSL_cleanse(raw, sizeof raw);
    uint8_t hash[32];
    char hex[65];
    token_hash(token, TOKEN_LEN, hash, hex);

    bson_t doc, arr;
    bson_init(&doc);
    BSON_APPEND_UTF8(&doc, "tokenHash", hex);
    BSON_APPEND_UTF8(&doc, "executionId", spec->execution_id);
    BSON_APPEND_UTF8(&doc, "ws", ws);
    BSON_APPEND_UTF8(&doc, "userId", ee_principal_user(spec->principal));
    BSON_APPEND_UTF8(&doc, "orgId", ee_principal_org(spec->principal));
    if (spec->workflow_catalog_id != NULL)
        BSON_APPEND_UTF8(&doc, "workflowCatalogId", spec->workflow_catalog_id);
    /* the credential types routed for the run, once each */
    BSON_APPEND_ARRAY_BEGIN(&doc, "credentialTypes", &arr);
    uint32_t n = 0;
    for (size_t i = 0; i < spec->route->n_mappings; i++) {
        const char *type = spec->route->mappings[i].credential_name;
        bool seen = false;
        for (size_t k = 0; k < i && !seen; k++)
            seen = strcmp(spec->route->mappings[k].credential_name, type) == 0;
        if (seen)
            continue;
        char key[16];
        const char *kp;
        bson_uint32_to_string(n++, &kp, key, sizeof key);
        bson_append_utf8(&arr, kp, -1, type, -1);
    }
    bson_append_array_end(&doc, &arr);
    bool customer = spec->choice != NULL && spec->choice->use_customer_key;
    BSON_APPEND_BOOL(&doc, "useCustomerKey", customer);
    if (customer)
        BSON_APPEND_UTF8(&doc, "apiKeyId", spec->choice->api_key_id);
    BSON_APPEND_INT64(&doc, "budgetNano", spec->budget_nano);
    BSON_APPEND_INT64(&doc, "expiresAt", spec->expires_at_ms);
    BSON_APPEND_INT64(&doc, "createdAt", ee_engine_now_ms(engine));
    ee_status s = ee_storage_insert(ee__engine_storage(engine), G_GRANTS, NULL,
                                    bson_get_data(&doc), doc.len, NULL);
    bson_destroy(&doc);
    if (s == EE_OK)
        memcpy(token_out, token, TOKEN_LEN + 1);
    OPENSSL_cleanse(token, sizeof token);
    return s;
}

/* ---- running totals ---------------------------------------------------------------- */

ee_status ee__gateway_revoke(ee_engine *engine, const char *workspace, const char *execution_id)
{
    if (ee__gateway_state(engine) == NULL || !ws_ok(workspace) || !id_ok(execution_id))
        return ee__error(EE_EINVAL, "ee__gateway_revoke: engine, workspace and a 24-hex "
                                    "execution_id are required");
    ee_storage_eq key[2] = {{"executionId", execution_id}, {"callId", G_TOTAL_ID}};
    ee_storage_inc inc = {"revoked", 1};
    return ee_storage_increment(ee__engine_storage(engine), G_CALLS, workspace, key, 2, &inc, 1,
                                ee_engine_now_ms(engine), NULL);
}

typedef struct {
    ee__gateway_usage u;
    int64_t refused;
    int64_t revoked;
    bool found;
} total_row;

static int64_t get_int(const bson_t *b, const char *field)
{
    bson_iter_t it;
    if (bson_iter_init_find(&it, b, field) && BSON_ITER_HOLDS_NUMBER(&it))
        return bson_iter_as_int64(&it);
    return 0;
}

static int read_total(const ee_storage_row *row, void *payload)
{
    total_row *t = payload;
    bson_t b;
    if (t->found || !bson_init_static(&b, row->data, row->len))
        return 0;
    t->found = true;
    t->u.calls = get_int(&b, "calls");
    t->u.prompt_tokens = get_int(&b, "promptTokens");
    t->u.completion_tokens = get_int(&b, "completionTokens");
    t->u.total_tokens = get_int(&b, "totalTokens");
    t->u.cost_nano = get_int(&b, "costNano");
    t->u.platform_cost_nano = get_int(&b, "platformCostNano");
    t->refused = get_int(&b, "refused");
    t->revoked = get_int(&b, "revoked");
    /* go on (there is one total a run, and the query's limit is 1):
     * stopping would make the query record an ECANCELLED error, whose
     * formatting and redaction cost more than the read itself */
    return 0;
}

static ee_status load_total(ee_engine *engine, const char *ws, const char *execution_id,
                            total_row *out)
{
    memset(out, 0, sizeof *out);
    ee_storage_eq eq[2] = {{"executionId", execution_id}, {"callId", G_TOTAL_ID}};
    ee_storage_query_spec q = {.version = EE_STORAGE_QUERY_VERSION, .eq = eq, .n_eq = 2,
                               .limit = 1};
    return ee_storage_query(ee__engine_storage(engine), G_CALLS, ws, &q, read_total, out, NULL);
}

ee_status ee__gateway_total(g_state *st, const g_grant *g, int64_t *cost_nano, bool *revoked)
{
    /* the calls answered and not yet written count too (read first: one
     * written in between is counted twice - a budget errs on the safe side
     * - never missed) */
    int64_t pending = ee__gateway_pending_cost(st, g->execution_id);
    total_row t;
    ee_status s = load_total(st->engine, g->workspace, g->execution_id, &t);
    *cost_nano = t.u.cost_nano + pending;
    *revoked = t.revoked > 0;
    return s;
}

typedef struct record_arg {
    const g_grant *g;
    const ee__gateway_call *call;
    bool refused;
} record_arg;

/* The call's document and the execution's total, in one step. */
static ee_status record_step(ee_storage *sto, void *payload)
{
    const record_arg *a = payload;
    const g_grant *g = a->g;
    const ee__gateway_call *call = a->call;
    char call_id[EE_STORAGE_ID_HEX_LEN + 1];
    ee_status s = ee_storage_id_new(call_id);
    if (s != EE_OK)
        return s;
    bson_t doc;
    bson_init(&doc);
    BSON_APPEND_UTF8(&doc, "executionId", g->execution_id);
    BSON_APPEND_UTF8(&doc, "callId", call_id);
    BSON_APPEND_UTF8(&doc, "provider", call->provider);
    if (call->model != NULL && call->model[0] != '\0')
        BSON_APPEND_UTF8(&doc, "model", call->model);
    BSON_APPEND_INT64(&doc, "promptTokens", call->prompt_tokens);
    BSON_APPEND_INT64(&doc, "completionTokens", call->completion_tokens);
    BSON_APPEND_INT64(&doc, "totalTokens", call->total_tokens);
    BSON_APPEND_INT64(&doc, "costNano", call->cost_nano);
    if (call->source != NULL)
        BSON_APPEND_UTF8(&doc, "source", call->source);
    BSON_APPEND_INT32(&doc, "httpStatus", call->http_status);
    BSON_APPEND_INT64(&doc, "createdAt", call->at_ms);
    s = ee_storage_insert(sto, G_CALLS, g->workspace, bson_get_data(&doc), doc.len, NULL);
    bson_destroy(&doc);
    if (s != EE_OK)
        return s;
    ee_storage_eq key[2] = {{"executionId", g->execution_id}, {"callId", G_TOTAL_ID}};
    /* what the platform pays: the calls on its own credentials */
    bool platform = call->source != NULL && strcmp(call->source, "platform") == 0;
    ee_storage_inc inc[7] = {{"calls", 1},
                             {"promptTokens", call->prompt_tokens},
                             {"completionTokens", call->completion_tokens},
                             {"totalTokens", call->total_tokens},
                             {"costNano", call->cost_nano},
                             {"platformCostNano", platform ? call->cost_nano : 0},
                             {"refused", a->refused ? 1 : 0}};
    return ee_storage_increment(sto, G_CALLS, g->workspace, key, 2, inc, 7, call->at_ms, NULL);
}

/* One commit a call, and the total never misses a stored call: the two
 * writes are applied together or not at all. The commit does not wait for
 * the disk (ee__storage_atomic_deferred(): no fsync of its own on SQLite,
 * synchronous_commit off on PostgreSQL): it is visible to every process at
 * once - the next call's budget check and the run's accounting read it -
 * and ordered before every later commit, so the run's final write, which
 * is synced and comes after the workflow has had its answers, carries the
 * run's calls to the disk. A process kill loses nothing; only an
 * operating-system crash or power loss in the middle of a run can lose
 * the calls metered since the last synced commit, and that run is then
 * failed or recovered anyway. Waiting for the disk here would put a sync
 * (0.3-4 ms measured) on the answer of every call. */
ee_status ee__gateway_record(g_state *st, const g_grant *g, const ee__gateway_call *call,
                             bool refused)
{
    record_arg a = {g, call, refused};
    return ee__engine_atomic_deferred(st->engine, record_step, &a);
}

/* ---- the execution's calls --------------------------------------------------------- */

typedef struct {
    ee__gateway_call_fn fn;
    void *payload;
    bool stopped;
    /* usage_of: the first refused call's provider */
    char *refused_provider;
    size_t refused_cap;
} calls_ctx;

static const char *get_str(const bson_t *b, const char *field)
{
    bson_iter_t it;
    if (bson_iter_init_find(&it, b, field) && BSON_ITER_HOLDS_UTF8(&it))
        return bson_iter_utf8(&it, NULL);
    return NULL;
}

static int each_call(const ee_storage_row *row, void *payload)
{
    calls_ctx *c = payload;
    bson_t b;
    if (!bson_init_static(&b, row->data, row->len))
        return 0;
    const char *id = get_str(&b, "callId");
    if (id == NULL || strcmp(id, G_TOTAL_ID) == 0)
        return 0;
    const char *provider = get_str(&b, "provider");
    ee__gateway_call call = {
        .provider = provider != NULL ? provider : "",
        .model = get_str(&b, "model"),
        .prompt_tokens = get_int(&b, "promptTokens"),
        .completion_tokens = get_int(&b, "completionTokens"),
        .total_tokens = get_int(&b, "totalTokens"),
        .cost_nano = get_int(&b, "costNano"),
        .source = get_str(&b, "source"),
        .http_status = (int)get_int(&b, "httpStatus"),
        .at_ms = row->time,
    };
    if (c->refused_provider != NULL) {
        if (call.http_status == 402) {
            snprintf(c->refused_provider, c->refused_cap, "%s", call.provider);
            c->stopped = true;
            return 1;
        }
        return 0;
    }
    if (c->fn(&call, c->payload) != 0) {
        c->stopped = true;
        return 1;
    }
    return 0;
}

static ee_status walk_calls(ee_engine *engine, const char *ws, const char *execution_id,
                            calls_ctx *c)
{
    ee_storage_eq eq[1] = {{"executionId", execution_id}};
    char *cursor = NULL;
    ee_status s;
    do {
        ee_storage_query_spec q = {.version = EE_STORAGE_QUERY_VERSION, .eq = eq, .n_eq = 1,
                                   .order = EE_STORAGE_ORDER_TIME_ASC,
                                   .limit = EE_STORAGE_LIMIT_MAX, .cursor = cursor};
        char *next = NULL;
        s = ee_storage_query(ee__engine_storage(engine), G_CALLS, ws, &q, each_call, c, &next);
        ee_free(cursor);
        cursor = next;
    } while (s == EE_OK && cursor != NULL);
    ee_free(cursor);
    return s == EE_ECANCELLED && c->stopped ? EE_OK : s;
}

ee_status ee__gateway_calls(ee_engine *engine, const char *workspace, const char *execution_id,
                            ee__gateway_call_fn fn, void *payload)
{
    if (ee__gateway_state(engine) == NULL || fn == NULL || !ws_ok(workspace) ||
        !id_ok(execution_id))
        return ee__error(EE_EINVAL, "ee__gateway_calls: engine, workspace, a 24-hex "
                                    "execution_id and fn are required");
    calls_ctx c = {.fn = fn, .payload = payload};
    return walk_calls(engine, workspace, execution_id, &c);
}

/* How long a run's usage waits for calls of it still being written. */
#define G_SETTLE_MS 5000

ee_status ee__gateway_usage_of(ee_engine *engine, const char *workspace,
                               const char *execution_id, ee__gateway_usage *out)
{
    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (ee__gateway_state(engine) == NULL || out == NULL || !ws_ok(workspace) ||
        !id_ok(execution_id))
        return ee__error(EE_EINVAL, "ee__gateway_usage_of: engine, workspace, a 24-hex "
                                    "execution_id and out are required");
    /* a call answered by this process's listener is written just after
     * its answer: the run's workflow may have ended in between */
    if (!ee__gateway_settle(ee__gateway_state(engine), execution_id, G_SETTLE_MS))
        ee__log(ee__engine_logger(engine), EE_LOG_WARN, "gateway",
                "execution %s: a call's metering write is still pending after %d ms",
                execution_id, G_SETTLE_MS);
    total_row t;
    ee_status s = load_total(engine, workspace, execution_id, &t);
    if (s != EE_OK)
        return s;
    *out = t.u;
    out->budget_refused = t.refused > 0;
    if (out->budget_refused) {
        calls_ctx c = {.refused_provider = out->refused_provider,
                       .refused_cap = sizeof out->refused_provider};
        s = walk_calls(engine, workspace, execution_id, &c);
    }
    return s;
}

/* ---- finding a grant ------------------------------------------------------------- */

static void grant_free(g_grant *g)
{
    if (g == NULL)
        return;
    for (size_t i = 0; i < g->n_cred_types; i++)
        free(g->cred_types[i]);
    free(g->cred_types);
    ee__cred_route_free(g->route);
    free(g);
}

static void copy_str(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src != NULL ? src : "");
}

typedef struct {
    g_grant *g;
    ee_status s;
} load_ctx;

static int read_grant(const ee_storage_row *row, void *payload)
{
    load_ctx *c = payload;
    bson_t b;
    if (!bson_init_static(&b, row->data, row->len)) {
        c->s = ee__error(EE_ECORRUPT, "gateway: a stored grant is not a document");
        return 1;
    }
    g_grant *g = calloc(1, sizeof *g);
    if (g == NULL) {
        c->s = ee__error(EE_ENOMEM, "out of memory reading a gateway grant");
        return 1;
    }
    copy_str(g->execution_id, sizeof g->execution_id, get_str(&b, "executionId"));
    copy_str(g->workspace, sizeof g->workspace, get_str(&b, "ws"));
    copy_str(g->user, sizeof g->user, get_str(&b, "userId"));
    copy_str(g->org, sizeof g->org, get_str(&b, "orgId"));
    copy_str(g->api_key_id, sizeof g->api_key_id, get_str(&b, "apiKeyId"));
    g->budget_nano = get_int(&b, "budgetNano");
    g->expires_at_ms = get_int(&b, "expiresAt");
    bson_iter_t it, sub;
    if (bson_iter_init_find(&it, &b, "useCustomerKey") && BSON_ITER_HOLDS_BOOL(&it))
        g->use_customer_key = bson_iter_bool(&it);
    if (bson_iter_init_find(&it, &b, "credentialTypes") && BSON_ITER_HOLDS_ARRAY(&it) &&
        bson_iter_recurse(&it, &sub)) {
        while (bson_iter_next(&sub) && g->n_cred_types < EE__ROUTE_MAX_NODES) {
            if (!BSON_ITER_HOLDS_UTF8(&sub))
                continue;
            char **grown = realloc(g->cred_types, (g->n_cred_types + 1) * sizeof *grown);
            char *copy = strdup(bson_iter_utf8(&sub, NULL));
            if (grown == NULL || copy == NULL) {
                free(copy);
                if (grown != NULL)
                    g->cred_types = grown;
                grant_free(g);
                c->s = ee__error(EE_ENOMEM, "out of memory reading a gateway grant");
                return 1;
            }
            g->cred_types = grown;
            g->cred_types[g->n_cred_types++] = copy;
        }
    }
    if (!id_ok(g->execution_id) || g->workspace[0] == '\0') {
        grant_free(g);
        c->s = ee__error(EE_ECORRUPT, "gateway: a stored grant lacks its execution or workspace");
        return 1;
    }
    c->g = g;
    return 1;
}

static size_t slot_of(const uint8_t hash[32])
{
    return ((size_t)hash[0] << 8 | hash[1]) % G_CACHE_SLOTS;
}

ee_status ee__gateway_grant_find(g_state *st, const char *token, size_t len, g_grant **out)
{
    *out = NULL;
    if (token == NULL || len != TOKEN_LEN || memcmp(token, TOKEN_PREFIX, 4) != 0)
        return EE_EAUTH;
    uint8_t hash[32];
    char hex[65];
    token_hash(token, len, hash, hex);
    size_t slot = slot_of(hash);
    pthread_mutex_lock(&st->lock);
    g_grant *g = st->cache[slot];
    /* a hash of the secret, compared in constant time all the same */
    if (g != NULL && CRYPTO_memcmp(g->hash, hash, sizeof hash) == 0) {
        g->refs++;
        pthread_mutex_unlock(&st->lock);
        *out = g;
        return EE_OK;
    }
    pthread_mutex_unlock(&st->lock);

    ee_storage_eq eq[1] = {{"tokenHash", hex}};
    ee_storage_query_spec q = {.version = EE_STORAGE_QUERY_VERSION, .eq = eq, .n_eq = 1,
                               .limit = 1};
    load_ctx c = {NULL, EE_OK};
    ee_status s = ee_storage_query(ee__engine_storage(st->engine), G_GRANTS, NULL, &q,
                                   read_grant, &c, NULL);
    if (s == EE_ECANCELLED)
        s = c.s;
    if (s != EE_OK)
        return s;
    if (c.g == NULL)
        return EE_EAUTH;
    g = c.g;
    memcpy(g->hash, hash, sizeof hash);
    g->refs = 2; /* the cache's and the caller's */
    pthread_mutex_lock(&st->lock);
    g_grant *old = st->cache[slot];
    st->cache[slot] = g;
    if (old != NULL && --old->refs == 0)
        grant_free(old);
    pthread_mutex_unlock(&st->lock);
    *out = g;
    return EE_OK;
}

void ee__gateway_grant_release(g_state *st, g_grant *g)
{
    if (g == NULL)
        return;
    pthread_mutex_lock(&st->lock);
    bool last = --g->refs == 0;
    pthread_mutex_unlock(&st->lock);
    if (last)
        grant_free(g);
}

void ee__gateway_cache_clear(g_state *st)
{
    for (size_t i = 0; i < G_CACHE_SLOTS; i++) {
        g_grant *g = st->cache[i];
        st->cache[i] = NULL;
        if (g != NULL && --g->refs == 0)
            grant_free(g);
    }
}

ee_status ee__gateway_grant_route(g_state *st, g_grant *g, const ee__cred_route **out)
{
    *out = NULL;
    pthread_mutex_lock(&st->lock);
    ee__cred_route *r = g->route;
    pthread_mutex_unlock(&st->lock);
    if (r != NULL) {
        *out = r;
        return EE_OK;
    }
    ee_principal *p = NULL;
    ee_status s = ee_principal_new(&p, g->workspace, g->user, g->org[0] ? g->org : NULL);
    if (s != EE_OK)
        return s;
    ee__cred_node *nodes = calloc(g->n_cred_types + 1, sizeof *nodes);
    if (nodes == NULL) {
        ee_principal_free(p);
        return ee__error(EE_ENOMEM, "out of memory routing a gateway grant");
    }
    for (size_t i = 0; i < g->n_cred_types; i++) {
        nodes[i].name = g->cred_types[i];
        nodes[i].type = g->cred_types[i];
        nodes[i].credential_types = (const char *const *)&g->cred_types[i];
        nodes[i].n_credential_types = 1;
    }
    ee__cred_choice choice = {g->use_customer_key, g->api_key_id};
    s = ee__cred_route_nodes(st->engine, p, nodes, g->n_cred_types,
                             g->use_customer_key ? &choice : NULL, &r);
    free(nodes);
    ee_principal_free(p);
    if (s != EE_OK)
        return s;
    pthread_mutex_lock(&st->lock);
    if (g->route == NULL) {
        g->route = r;
        r = NULL;
    }
    *out = g->route;
    pthread_mutex_unlock(&st->lock);
    ee__cred_route_free(r); /* another thread routed it first */
    return EE_OK;
}
