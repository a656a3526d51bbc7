/* ee_gateway_handle(): one workflow call through the gateway.
 *
 * The checks run in an order that tells a caller without a valid token
 * nothing: the token (401: malformed, unknown, expired, revoked), the
 * method (405), the provider (404), whether the run routed it (403), the
 * body's size (413), the run's budget (402: the refusal is stored as a
 * call, so the pipeline sees budget_refused), then the routed key is
 * opened, injected the provider's way and the call forwarded through the
 * engine's transport; the key is wiped as soon as the request holds its
 * copy (which the transport wipes in turn). The caller's Authorization
 * (the token), hop-by-hop headers and any header the key travels in are
 * never forwarded. The token's checks are one function (token_check()),
 * which the embedded listener also runs on a request's head alone
 * (ee__gateway_check_head()) to refuse it before reading its body.
 *
 * A call answered whole is answered first and metered after: the caller
 * has the answer (with its cost headers) before the call's write, which
 * ee_gateway_handle() does before it returns and the embedded listener
 * once the answer has been sent (ee__gateway_handle_deferred()). An SSE
 * answer is relayed as it comes and metered when it ends. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "audit/audit.h"
#include "engine/engine.h"
#include "execengine/gateway.h"
#include "execengine/transport.h"
#include "gateway/gateway_internal.h"

/* ---- the gateway's own answers ------------------------------------------------------ */

static ee_status answer(const ee_gateway_sink *sink, int http, ee_status status,
                        const char *message)
{
    json_t *doc = json_pack("{s:{s:s, s:s}}", "error", "status", ee_status_name(status),
                            "message", message);
    char *text = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    static const char *const head[] = {"Content-Type: application/json"};
    int stop = sink->head(http, head, 1, sink->payload);
    if (stop == 0 && text != NULL)
        stop = sink->body(text, strlen(text), sink->payload);
    free(text);
    return stop != 0 ? ee__error(EE_ECANCELLED, "ee_gateway_handle: the caller went away")
                     : EE_OK;
}

/* ---- request pieces ------------------------------------------------------------------- */

static const char *header_value(const ee_gateway_request *r, const char *name, size_t *len)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < r->n_headers; i++) {
        const char *h = r->headers[i];
        if (h != NULL && strncasecmp(h, name, n) == 0 && h[n] == ':') {
            const char *v = h + n + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            size_t l = strlen(v);
            while (l > 0 && (v[l - 1] == ' ' || v[l - 1] == '\t' || v[l - 1] == '\r'))
                l--;
            *len = l;
            return v;
        }
    }
    return NULL;
}

static bool hop_or_secret(const char *name, size_t n, const g_provider *p)
{
    static const char *const drop[] = {
        "authorization", "proxy-authorization", "connection", "keep-alive", "proxy-connection",
        "te", "trailer", "transfer-encoding", "upgrade", "host", "content-length", "expect",
        "proxy-authenticate",
        /* the transport negotiates and decodes compression itself */
        "accept-encoding",
    };
    for (size_t i = 0; i < sizeof drop / sizeof drop[0]; i++)
        if (strlen(drop[i]) == n && strncasecmp(name, drop[i], n) == 0)
            return true;
    return p->inject_header != NULL && strlen(p->inject_header) == n &&
           strncasecmp(name, p->inject_header, n) == 0;
}

static bool method_ok(const char *m)
{
    static const char *const ok[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (strcmp(m, ok[i]) == 0)
            return true;
    return false;
}

/* Whether the run was granted a credential type the provider takes. */
static bool granted(const g_grant *g, const g_provider *p)
{
    for (size_t c = 0; c < p->n_creds; c++)
        for (size_t i = 0; i < g->n_cred_types; i++)
            if (strcmp(g->cred_types[i], p->creds[c]) == 0)
                return true;
    return false;
}

/* The routed mapping the provider takes, or -1. */
static long mapping_for(const ee__cred_route *r, const g_provider *p)
{
    for (size_t c = 0; c < p->n_creds; c++)
        for (size_t i = 0; i < r->n_mappings; i++)
            if (strcmp(r->mappings[i].credential_name, p->creds[c]) == 0)
                return (long)i;
    return -1;
}

/* The key itself: raw for platform and customer keys; a personal
 * credential's apiKey or accessToken. *key_out is a secret (wipe it). */
static ee_status open_key(const ee__cred_route *r, size_t i, char **key_out, size_t *len_out)
{
    char *secret = NULL;
    size_t len = 0;
    bool is_json = false;
    ee_status s = ee__cred_route_open_secret(r, i, &secret, &len, &is_json);
    if (s != EE_OK)
        return s;
    if (!is_json) {
        *key_out = secret;
        *len_out = len;
        return EE_OK;
    }
    json_t *doc = json_loadb(secret, len, 0, NULL);
    ee__cred_secret_free(secret, len);
    const char *k = json_string_value(json_object_get(doc, "apiKey"));
    if (k == NULL)
        k = json_string_value(json_object_get(doc, "accessToken"));
    s = EE_OK;
    if (k == NULL)
        s = ee__error(EE_ECREDENTIALS, "gateway: the routed credential holds no API key");
    else if ((*key_out = strdup(k)) == NULL)
        s = ee__error(EE_ENOMEM, "out of memory opening a credential");
    else
        *len_out = strlen(k);
    /* wipe jansson's copies */
    const char *names[] = {"apiKey", "accessToken", "refreshToken"};
    for (size_t n = 0; n < 3; n++) {
        json_t *v = json_object_get(doc, names[n]);
        if (json_is_string(v))
            OPENSSL_cleanse((char *)json_string_value(v), json_string_length(v));
    }
    json_decref(doc);
    return s;
}

static void pct_encode(const char *in, size_t n, char *out)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            strchr("-_.~", c) != NULL) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
}

/* The provider path as URL text: a host's HTTP server (libmicrohttpd,
 * the embedded listener) hands the path over decoded, so a byte that cannot
 * stand in a URL's path is encoded again. '#' and '?' above all: decoded
 * from %23 and %3F they would end the path upstream (the rest dropped, or
 * moved into the query beside the injected key). '%' stays: a host may pass
 * the path as it came, still encoded. out holds 3 * strlen(in) + 1. */
static void path_encode(const char *in, char *out)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (; *in != '\0'; in++) {
        unsigned char c = (unsigned char)*in;
        if (c <= 0x20 || c >= 0x7f || strchr("#?\"<>\\^`{|}", c) != NULL) {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        } else {
            out[o++] = (char)c;
        }
    }
    out[o] = '\0';
}

/* Whether a provider path is free of "." and ".." segments: the transport
 * would resolve them, and "/openrouter/../x" leave the provider's base
 * path with the provider's key. */
static bool path_ok(const char *rest)
{
    for (const char *seg = rest; *seg != '\0';) {
        seg += *seg == '/';
        size_t len = strcspn(seg, "/");
        if ((len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
            return false;
        seg += len;
    }
    return true;
}

/* The upstream request with the key in it. */
static ee_status build(g_state *st, const g_provider *p, const ee_gateway_request *r,
                       const char *rest, const char *key, size_t key_len, ee_http_request **out)
{
    *out = NULL;
    size_t qlen = r->query != NULL ? strlen(r->query) : 0;
    size_t cap = strlen(p->base_url) + 3 * strlen(rest) + qlen + 3 * key_len + 160;
    char *url = malloc(cap);
    if (url == NULL)
        return ee__error(EE_ENOMEM, "out of memory forwarding a gateway call");
    int n = snprintf(url, cap, "%s", p->base_url);
    path_encode(rest, url + n);
    n += (int)strlen(url + n);
    n += snprintf(url + n, cap - (size_t)n, "%s%s", qlen > 0 ? "?" : "", qlen > 0 ? r->query : "");
    if (p->inject_query != NULL) {
        n += snprintf(url + n, cap - (size_t)n, "%s%s=", qlen > 0 ? "&" : "?", p->inject_query);
        pct_encode(key, key_len, url + n);
    }
    ee_http_request *req = NULL;
    ee_status s = ee_http_request_new(&req, r->method, url);
    OPENSSL_cleanse(url, cap);
    free(url);
    for (size_t i = 0; s == EE_OK && i < r->n_headers; i++) {
        const char *h = r->headers[i];
        const char *colon = h != NULL ? strchr(h, ':') : NULL;
        if (colon == NULL || colon == h || hop_or_secret(h, (size_t)(colon - h), p))
            continue;
        char name[128];
        if ((size_t)(colon - h) >= sizeof name)
            continue;
        memcpy(name, h, (size_t)(colon - h));
        name[colon - h] = '\0';
        const char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        if (ee_http_request_add_header(req, name, v) != EE_OK)
            ee_error_clear(); /* a header the transport will not carry is dropped */
    }
    if (s == EE_OK && p->inject_header != NULL) {
        size_t vcap = strlen(p->inject_format) + key_len + 1;
        char *value = malloc(vcap);
        if (value == NULL) {
            s = ee__error(EE_ENOMEM, "out of memory forwarding a gateway call");
        } else {
            const char *at = strstr(p->inject_format, "%s");
            size_t pre = (size_t)(at - p->inject_format);
            memcpy(value, p->inject_format, pre);
            memcpy(value + pre, key, key_len);
            strcpy(value + pre + key_len, at + 2);
            s = ee_http_request_add_header(req, p->inject_header, value);
            OPENSSL_cleanse(value, vcap);
            free(value);
        }
    }
    if (s == EE_OK && r->body_len > 0)
        s = ee_http_request_set_body(req, r->body, r->body_len);
    if (s == EE_OK)
        s = ee_http_request_set_limits(req, 0, st->timeout_ms, 0);
    if (s != EE_OK) {
        ee_http_request_free(req);
        return s;
    }
    *out = req;
    return EE_OK;
}

/* ---- metering and the answer ---------------------------------------------------------- */

/* The longest SSE line read for usage. */
#define G_LINE_MAX 65536

/* A call in flight: what the provider's answer has streamed to the caller
 * so far (an SSE answer goes on as it comes), and the usage seen in it.
 * The line buffer is allocated (not zeroed) only once a call turns out to
 * stream: a call answered whole does not zero 64 KiB. */
typedef struct {
    const g_provider *p;
    const ee_gateway_sink *sink;
    const char *source;          /* whose credential: ee__cred_source_name() */
    bool decided, streaming, aborted;
    int status;
    g_usage usage;               /* from the last complete SSE line carrying usage */
    char *line;                  /* the SSE line being received (G_LINE_MAX) */
    size_t line_len;
    bool line_overflow;
    int64_t upstream_us;         /* the transport's time, for the counts */
} g_call;

static size_t pass_headers(const ee_http_response *resp, char lines[][512], const char **heads)
{
    static const char *const pass[] = {"Content-Type", "Retry-After", "Cache-Control",
                                       "X-Request-Id", "X-Generation-Id"};
    size_t nh = 0;
    for (size_t i = 0; i < sizeof pass / sizeof pass[0]; i++) {
        const char *v = ee_http_response_header(resp, pass[i]);
        if (v != NULL && strlen(v) < 400) {
            snprintf(lines[nh], 512, "%s: %s", pass[i], v);
            heads[nh] = lines[nh];
            nh++;
        }
    }
    return nh;
}

static bool is_sse(const ee_http_response *resp)
{
    const char *ctype = ee_http_response_header(resp, "Content-Type");
    return ctype != NULL && strncasecmp(ctype, "text/event-stream", 17) == 0;
}

/* Read usage out of each complete SSE line as it passes. */
static void watch_lines(g_call *c, const char *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char ch = data[i];
        if (ch != '\n') {
            if (c->line_len + 1 < G_LINE_MAX)
                c->line[c->line_len++] = ch;
            else
                c->line_overflow = true;
            continue;
        }
        if (!c->line_overflow && c->line_len > 5 && memcmp(c->line, "data:", 5) == 0) {
            g_usage u;
            ee__gateway_usage_parse(c->line, c->line_len, true, &u);
            if (u.found) {
                if (u.model[0] == '\0')
                    memcpy(u.model, c->usage.model, sizeof u.model);
                c->usage = u;
            }
        }
        c->line_len = 0;
        c->line_overflow = false;
    }
}

/* The transport's stream: an SSE answer below 400 is relayed as it comes
 * (its cost is known only at its end, so it carries no cost headers: the
 * last message's usage has it); anything else waits to be whole. */
static int on_chunk(const ee_http_response *resp, const void *chunk, size_t len, void *payload)
{
    g_call *c = payload;
    if (!c->decided) {
        c->decided = true;
        c->status = ee_http_response_status(resp);
        c->streaming = c->p->meter_openrouter && is_sse(resp) && c->status < 400;
        /* without a line buffer the answer is passed on whole (and its
         * usage read from the whole body) */
        if (c->streaming && (c->line = malloc(G_LINE_MAX)) == NULL)
            c->streaming = false;
        if (c->streaming) {
            char lines[8][512];
            const char *heads[8];
            size_t nh = pass_headers(resp, lines, heads);
            if (c->sink->head(c->status, heads, nh, c->sink->payload) != 0) {
                c->aborted = true;
                return 1;
            }
        }
    }
    if (!c->streaming)
        return 0;
    watch_lines(c, chunk, len);
    if (c->sink->body(chunk, len, c->sink->payload) != 0) {
        c->aborted = true;
        return 1;
    }
    return 0;
}

static void usd_text(int64_t nano, char buf[32])
{
    ee__decimal_format(nano, 9, buf);
    size_t n = strlen(buf);
    while (n > 0 && buf[n - 1] == '0')
        buf[--n] = '\0';
    if (n > 0 && buf[n - 1] == '.')
        buf[--n] = '\0';
}

/* Meter the call: from the answer's body, or (streamed, perhaps cut short
 * by the caller) from the usage seen passing. Fills *call (its model points
 * into *u) and counts it; the write is the caller's (store()). */
static void meter(const g_call *c, const ee_http_response *resp, ee__gateway_call *call,
                  g_usage *u)
{
    const g_provider *p = c->p;
    *u = c->usage;
    call->source = c->source;
    if (p->meter_openrouter && resp != NULL && !c->streaming) {
        const void *data = NULL;
        size_t len = 0;
        ee_http_response_body(resp, &data, &len);
        ee__gateway_usage_parse(data, len, is_sse(resp), u);
    }
    if (p->meter_openrouter) {
        call->prompt_tokens = u->prompt_tokens;
        call->completion_tokens = u->completion_tokens;
        call->total_tokens = u->total_tokens;
        call->cost_nano = u->has_cost ? u->cost_nano : 0;
        call->model = u->model[0] != '\0' ? u->model : NULL;
    } else if (call->http_status < 400) {
        call->cost_nano = p->per_call_nano;
    }
    ee__gateway_count_call(p, call->http_status, call, c->upstream_us);
}

/* The call's metering write, now. */
static void store(g_state *st, const g_grant *g, const ee__gateway_call *call)
{
    ee_status s = ee__gateway_record(st, g, call, false);
    if (s != EE_OK) {
        /* The upstream has answered (and charged): the workflow gets its
         * answer; the operator learns the call went unmetered. */
        ee__log(ee__engine_logger(st->engine), EE_LOG_ERROR, "gateway",
                "execution %s: a %s call could not be metered: %s", g->execution_id,
                call->provider, ee_status_name(s));
        ee_error_clear();
    }
}

struct g_pending {
    g_grant *g;                  /* a reference (ee__gateway_grant_release()) */
    ee__gateway_call call;       /* model points into `model` */
    char model[sizeof ((g_usage *)0)->model];
    struct g_pending *next;      /* g_state.pending */
    struct g_pending *ready_next; /* g_state.ready */
};

/* The call's metering write: kept in *pending for after the answer when
 * the caller asked for that (and it can be kept), else done now. */
static void store_or_keep(g_state *st, g_grant *g, const ee__gateway_call *call,
                          g_pending **pending)
{
    g_pending *k = pending != NULL ? calloc(1, sizeof *k) : NULL;
    if (k == NULL) {
        store(st, g, call);
        return;
    }
    k->call = *call;
    if (call->model != NULL) {
        snprintf(k->model, sizeof k->model, "%s", call->model);
        k->call.model = k->model;
    }
    pthread_mutex_lock(&st->lock);
    g->refs++;
    k->g = g;
    k->next = st->pending;
    st->pending = k;
    pthread_mutex_unlock(&st->lock);
    *pending = k;
}

/* Store the call, take it off the pending list, free it. */
static void write_pending(g_state *st, g_pending *p)
{
    store(st, p->g, &p->call);
    pthread_mutex_lock(&st->lock);
    for (g_pending **at = &st->pending; *at != NULL; at = &(*at)->next)
        if (*at == p) {
            *at = p->next;
            break;
        }
    pthread_cond_broadcast(&st->settled);
    pthread_mutex_unlock(&st->lock);
    ee__gateway_grant_release(st, p->g);
    free(p);
}

static void *writer_main(void *arg)
{
    g_state *st = arg;
    pthread_mutex_lock(&st->lock);
    for (;;) {
        while (st->ready == NULL && !st->writer_stop)
            pthread_cond_wait(&st->ready_cond, &st->lock);
        g_pending *p = st->ready;
        if (p == NULL)
            break; /* stopped, and every call handed over is written */
        st->ready = p->ready_next;
        st->n_ready--;
        if (st->ready == NULL)
            st->ready_tail = &st->ready;
        pthread_mutex_unlock(&st->lock);
        write_pending(st, p);
        pthread_mutex_lock(&st->lock);
    }
    pthread_mutex_unlock(&st->lock);
    return NULL;
}

void ee__gateway_pending_commit(g_state *st, g_pending *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&st->lock);
    if (!st->writer_stop && !st->writer_started) /* the queue is empty (gateway_open) */
        st->writer_started = pthread_create(&st->writer, NULL, writer_main, st) == 0;
    if (st->writer_started && !st->writer_stop && st->n_ready < G_WRITER_QUEUE_MAX) {
        p->ready_next = NULL;
        *st->ready_tail = p;
        st->ready_tail = &p->ready_next;
        st->n_ready++;
        pthread_cond_signal(&st->ready_cond);
        pthread_mutex_unlock(&st->lock);
        return;
    }
    pthread_mutex_unlock(&st->lock);
    write_pending(st, p); /* no writer, or it is behind: on this thread */
}

void ee__gateway_writer_stop(g_state *st)
{
    pthread_mutex_lock(&st->lock);
    st->writer_stop = true;
    pthread_cond_signal(&st->ready_cond);
    bool started = st->writer_started;
    pthread_mutex_unlock(&st->lock);
    if (started)
        pthread_join(st->writer, NULL);
}

static bool pending_for(const g_state *st, const char *execution_id)
{
    for (const g_pending *p = st->pending; p != NULL; p = p->next)
        if (strcmp(p->g->execution_id, execution_id) == 0)
            return true;
    return false;
}

int64_t ee__gateway_pending_cost(g_state *st, const char *execution_id)
{
    int64_t sum = 0;
    pthread_mutex_lock(&st->lock);
    for (const g_pending *p = st->pending; p != NULL; p = p->next)
        if (strcmp(p->g->execution_id, execution_id) == 0)
            sum += p->call.cost_nano;
    pthread_mutex_unlock(&st->lock);
    return sum;
}

bool ee__gateway_settle(g_state *st, const char *execution_id, int64_t timeout_ms)
{
    struct timespec until;
    ee__deadline_after_ms(timeout_ms, &until);
    pthread_mutex_lock(&st->lock);
    while (pending_for(st, execution_id))
        if (pthread_cond_timedwait(&st->settled, &st->lock, &until) != 0)
            break;
    bool busy = pending_for(st, execution_id);
    pthread_mutex_unlock(&st->lock);
    return !busy;
}

/* The answer to the caller first, then the call's metering write (or, for
 * the listener, its hand-over in *pending): the workflow does not wait for
 * the storage. */
static ee_status pass_on(g_state *st, g_grant *g, const g_call *c,
                         const ee_http_response *resp, const ee_gateway_sink *sink,
                         g_pending **pending)
{
    ee__gateway_call call = {.provider = c->p->name, .http_status = ee_http_response_status(resp),
                             .at_ms = ee_engine_now_ms(st->engine)};
    g_usage u;
    meter(c, resp, &call, &u);
    if (c->streaming) {
        store(st, g, &call); /* head and body are with the caller already */
        return EE_OK;
    }
    const void *data = NULL;
    size_t len = 0;
    ee_http_response_body(resp, &data, &len);
    char lines[8][512];
    const char *heads[8];
    size_t nh = pass_headers(resp, lines, heads);
    char usd[32];
    usd_text(call.cost_nano, usd);
    snprintf(lines[nh], sizeof lines[nh], "x-litellm-response-cost: %s", usd);
    heads[nh] = lines[nh];
    nh++;
    snprintf(lines[nh], sizeof lines[nh], "x-ee-call-cost-nano: %lld", (long long)call.cost_nano);
    heads[nh] = lines[nh];
    nh++;
    int stop = sink->head(call.http_status, heads, nh, sink->payload);
    if (stop == 0 && len > 0)
        stop = sink->body(data, len, sink->payload);
    /* answered or not, the provider was called: the call is metered */
    store_or_keep(st, g, &call, stop == 0 ? pending : NULL);
    return stop != 0 ? ee__error(EE_ECANCELLED, "ee_gateway_handle: the caller went away")
                     : EE_OK;
}

static ee_status forward(g_state *st, g_grant *g, const g_provider *p,
                         const ee_gateway_request *r, const char *rest,
                         const ee_gateway_sink *sink, g_pending **pending)
{
    const ee__cred_route *route = NULL;
    ee_status s = ee__gateway_grant_route(st, g, &route);
    if (s != EE_OK) {
        ee_error_clear();
        return answer(sink, 502, EE_ECREDENTIALS, "the run's credentials cannot be opened");
    }
    long m = mapping_for(route, p);
    if (m < 0)
        return answer(sink, 403, EE_EPERM, "the provider is not routed for this execution");
    char *key = NULL;
    size_t key_len = 0;
    s = open_key(route, (size_t)m, &key, &key_len);
    if (s != EE_OK) {
        ee_error_clear();
        return answer(sink, 502, EE_ECREDENTIALS, "the routed credential cannot be opened");
    }
    ee_http_request *req = NULL;
    s = build(st, p, r, rest, key, key_len, &req);
    ee__cred_secret_free(key, key_len);
    if (s != EE_OK) {
        ee_error_clear();
        return answer(sink, s == EE_ENOMEM ? 500 : 400, s,
                      "the call cannot be forwarded (method, path or headers)");
    }
    g_call call_state = {.p = p, .sink = sink,
                         .source = ee__cred_source_name(route->mappings[m].source)};
    g_call *c = &call_state;
    ee_http_request_set_stream(req, on_chunk, c);
    ee_http_response *resp = NULL;
    int64_t t0 = ee__gateway_mono_us();
    s = ee_transport_http(ee__engine_transport(st->engine), req, &resp);
    c->upstream_us = ee__gateway_mono_us() - t0;
    ee_http_request_free(req);
    if (s == EE_OK)
        s = pass_on(st, g, c, resp, sink, pending);
    ee_http_response_free(resp);
    if (s != EE_OK && c->streaming) {
        /* cut short after the head went out (the caller went away, or the
         * provider failed mid-stream): metered as far as it got */
        ee__gateway_call call = {.provider = p->name, .http_status = c->status,
                                 .at_ms = ee_engine_now_ms(st->engine)};
        g_usage u;
        meter(c, NULL, &call, &u);
        store(st, g, &call);
        bool aborted = c->aborted;
        free(c->line);
        ee_error_clear();
        return aborted ? ee__error(EE_ECANCELLED, "ee_gateway_handle: the caller went away")
                       : EE_OK;
    }
    free(c->line);
    if (s == EE_OK || s == EE_ECANCELLED)
        return s;
    ee__gateway_count_call(p, 0, NULL, c->upstream_us); /* no answer came */
    ee_error_clear();
    if (s == EE_ETIMEOUT)
        return answer(sink, 504, EE_ETIMEOUT, "the provider did not answer in time");
    if (s == EE_ETOOBIG)
        return answer(sink, 502, EE_ETOOBIG, "the provider's answer is too large");
    return answer(sink, 502, EE_ENETWORK, "the provider is unreachable or reset the connection");
}

/* The audit entry of a call refused for the run's spent budget (402). */
static void audit_refusal(ee_engine *engine, const g_grant *g, const g_provider *p,
                          int64_t spent)
{
    json_t *detail = json_pack("{s:s, s:I, s:I}", "provider", p->name, "budget",
                               (json_int_t)g->budget_nano, "spent", (json_int_t)spent);
    ee__audit_append(engine, &(ee__audit_entry){.action = EE__AUDIT_GATEWAY_BUDGET_REFUSED,
                                                .workspace = g->workspace,
                                                .org = g->org,
                                                .actor = EE__AUDIT_ACTOR_ENGINE,
                                                .target_id = g->execution_id,
                                                .outcome = EE__AUDIT_REFUSED,
                                                .status = EE_ESPEND,
                                                .detail = detail});
    json_decref(detail);
}

/* The token's part of the checks: missing or malformed, unknown, revoked or
 * past its deadline is 401; storage failing is 503. On success *g_out holds
 * the grant (a reference) and *spent_out the run's spend so far; refused,
 * *g_out is NULL and the return is the answer's (the sink has it). One
 * function for ee_gateway_handle() and the listener's check of a request's
 * head (ee__gateway_check_head()), so both refuse alike. `with_total`:
 * read the run's total (its spend, and the revocation an ended run
 * leaves there) - the head's check does not, to cost a forwarded call no
 * more than the grant's lookup (cached); the full check that follows
 * does. */
static ee_status token_check(g_state *st, const ee_gateway_request *request,
                             const ee_gateway_sink *sink, bool with_total, g_grant **g_out,
                             int64_t *spent_out)
{
    *g_out = NULL;
    *spent_out = 0;
    size_t tlen = 0;
    const char *auth = header_value(request, "Authorization", &tlen);
    if (auth == NULL || tlen <= 7 || strncasecmp(auth, "Bearer ", 7) != 0)
        return answer(sink, 401, EE_EAUTH, "a gateway token is required (Authorization: Bearer)");
    g_grant *g = NULL;
    ee_status s = ee__gateway_grant_find(st, auth + 7, tlen - 7, &g);
    if (s == EE_EAUTH)
        return answer(sink, 401, EE_EAUTH, "unknown or malformed gateway token");
    if (s != EE_OK) {
        ee_error_clear();
        return answer(sink, 503, s, "the gateway cannot read its grants");
    }
    int64_t spent = 0;
    bool revoked = false;
    s = with_total ? ee__gateway_total(st, g, &spent, &revoked) : EE_OK;
    if (s != EE_OK) {
        ee__gateway_grant_release(st, g);
        ee_error_clear();
        return answer(sink, 503, s, "the gateway cannot read the execution's usage");
    }
    if (revoked || ee_engine_now_ms(st->engine) >= g->expires_at_ms) {
        ee__gateway_grant_release(st, g);
        return answer(sink, 401, EE_EAUTH, "the gateway token has expired or the execution ended");
    }
    *g_out = g;
    *spent_out = spent;
    return EE_OK;
}

static bool request_ok(const g_state *st, const ee_gateway_request *request,
                       const ee_gateway_sink *sink)
{
    return st != NULL && request != NULL && sink != NULL && sink->head != NULL &&
           sink->body != NULL && request->method != NULL && request->path != NULL &&
           (request->n_headers == 0 || request->headers != NULL) &&
           (request->body_len == 0 || request->body != NULL) &&
           request->version == EE_GATEWAY_REQUEST_VERSION;
}

bool ee__gateway_check_head(ee_engine *engine, const ee_gateway_request *request,
                            const ee_gateway_sink *sink)
{
    g_state *st = ee__gateway_state(engine);
    if (!request_ok(st, request, sink))
        return false; /* the full handling says what is wrong */
    g_grant *g = NULL;
    int64_t spent = 0;
    token_check(st, request, sink, false, &g, &spent);
    ee_error_clear();
    if (g == NULL)
        return true;
    ee__gateway_grant_release(st, g);
    return false;
}

ee_status ee_gateway_handle(ee_engine *engine, const ee_gateway_request *request,
                            const ee_gateway_sink *sink)
{
    return ee__gateway_handle_deferred(engine, request, sink, NULL);
}

ee_status ee__gateway_handle_deferred(ee_engine *engine, const ee_gateway_request *request,
                                      const ee_gateway_sink *sink, g_pending **pending)
{
    if (pending != NULL)
        *pending = NULL;
    g_state *st = ee__gateway_state(engine);
    if (st == NULL || request == NULL || sink == NULL || sink->head == NULL ||
        sink->body == NULL || request->method == NULL || request->path == NULL ||
        (request->n_headers > 0 && request->headers == NULL) ||
        (request->body_len > 0 && request->body == NULL))
        return ee__error(EE_EINVAL, "ee_gateway_handle: engine, request (method, path) and "
                                    "sink (head, body) must not be NULL");
    if (request->version != EE_GATEWAY_REQUEST_VERSION)
        return ee__error(EE_EINVAL, "ee_gateway_handle: unknown request version %u",
                         request->version);

    g_grant *g = NULL;
    int64_t spent = 0;
    ee_status out = token_check(st, request, sink, true, &g, &spent);
    if (g == NULL)
        return out; /* refused: answered */
    const char *path = request->path;
    const char *slash = path[0] == '/' ? strchr(path + 1, '/') : NULL;
    size_t plen = slash != NULL ? (size_t)(slash - path - 1) : (path[0] == '/' ? strlen(path + 1) : 0);
    const g_provider *p = plen > 0 ? ee__gateway_provider(st, path + 1, plen) : NULL;
    if (!method_ok(request->method))
        out = answer(sink, 405, EE_EINVAL, "method not allowed");
    else if (p == NULL)
        out = answer(sink, 404, EE_ENOTFOUND, "unknown provider");
    else if (slash != NULL && !path_ok(slash))
        out = answer(sink, 400, EE_EINVAL, "the provider path must not hold \".\" or \"..\" "
                                           "segments");
    else if (!granted(g, p))
        out = answer(sink, 403, EE_EPERM, "the provider is not routed for this execution");
    else if ((int64_t)request->body_len > st->body_max)
        out = answer(sink, 413, EE_ETOOBIG, "the request body exceeds EXEC_GATEWAY_BODY_MAX");
    else if (g->budget_nano >= 0 && spent >= g->budget_nano) {
        const ee__gateway_call call = {.provider = p->name, .http_status = 402,
                                       .at_ms = ee_engine_now_ms(engine)};
        ee__gateway_count_refused(p);
        if (ee__gateway_record(st, g, &call, true) != EE_OK)
            ee_error_clear();
        out = answer(sink, 402, EE_ESPEND, "the execution's budget is spent");
        audit_refusal(engine, g, p, spent);
    } else {
        out = forward(st, g, p, request, slash != NULL ? slash : "/", sink, pending);
    }
    ee__gateway_grant_release(st, g);
    return out;
}
