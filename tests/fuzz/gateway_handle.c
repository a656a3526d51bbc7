/*
 * libFuzzer: arbitrary bytes as a workflow's call through the credential
 * gateway (ee_gateway_handle) and as the provider's answer to it. The
 * memory engine has platform keys for OpenRouter, Serper and YouTube (a
 * key injected as a query parameter), a customer OpenRouter key (every
 * key a canary), and grants: a run routed over all three on the platform
 * (no budget), one on the customer key, one with a budget of one
 * nano-dollar (spent at its first metered call), one expired and one
 * revoked. The input is
 *   <flags byte> method \0 path \0 query \0 header lines (\n) \0 body \0
 *   <status byte> <content-type byte> <chunk byte> provider's answer body
 * where in an "Authorization:" line "TOKEN", "CUSTTOKEN", "BUDGETTOKEN",
 * "OLDTOKEN" and "GONETOKEN" stand for those grants' tokens, the flags
 * pick whether the caller goes away at the head or the first body chunk,
 * and the provider answers with the status and content type the bytes
 * pick (or times out, is unreachable, answers too much), its body in
 * chunks of the size picked. A query is given only when it is not empty.
 * Invariants: EE_OK, or EE_ECANCELLED exactly when the caller went away;
 * the head comes once, before any body, with an HTTP status; an answer
 * the gateway gave itself (nothing forwarded, or the provider failed) is
 * its JSON error document; a forwarded request goes to the provider's own
 * host, carries no token and no other provider's key (unless the input
 * held it elsewhere: libFuzzer learns the tokens from this target's own
 * comparisons); no answer shows a key or token the input did not hold;
 * ee_gateway_stats() reads after.
 * The engine is opened again every FZ_RESET inputs (metered calls pile
 * up).
 */
#include <strings.h>

#include "fuzz_gateway.h"

#define FZ_RESET 5000

#define K_OPENROUTER "sk-or-v1-GWCANARY-platform-11aa22"
#define K_SERPER "GWCANARY-serper-33bb44"
#define K_YOUTUBE "AIza+GWCANARY/youtube=55cc&66"
#define K_CUSTOMER "sk-or-v1-GWCANARY-customer-77dd88"

/* ---- the provider ------------------------------------------------------------ */

typedef struct {
    ee_status fail;            /* not EE_OK: the attempt fails so */
    int status;
    const char *ctype;         /* NULL: no Content-Type */
    size_t chunk;              /* body in pieces of this size (0: whole) */
    const uint8_t *body;
    size_t len;
    unsigned calls;
    char url[8192];
    bool url_cut;
    bool leak;                 /* the request held a token or a wrong key */
    const char *want[2];       /* the keys the called provider may be given */
    const uint8_t *input;      /* the whole input: what it holds is no leak */
    size_t input_len;
} provider;

static provider up;
static char tokens[5][EE__GATEWAY_TOKEN_SIZE];
static const char *const token_names[5] = {"CUSTTOKEN", "BUDGETTOKEN", "OLDTOKEN", "GONETOKEN",
                                           "TOKEN"};

static bool holds(const void *hay, size_t n, const char *needle)
{
    return hay != NULL && memmem(hay, n, needle, strlen(needle)) != NULL;
}

/* Whether the request carries a token, or a key the called provider does
 * not take (the input itself may hold any text, forwarded as it is). */
static bool leaks(const char *text, size_t n)
{
    static const char *const keys[] = {K_OPENROUTER, K_SERPER, K_YOUTUBE, K_CUSTOMER};
    for (size_t i = 0; i < 5; i++)
        if (holds(text, n, tokens[i]) && !holds(up.input, up.input_len, tokens[i]))
            return true;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        bool mine = (up.want[0] != NULL && strcmp(keys[i], up.want[0]) == 0) ||
                    (up.want[1] != NULL && strcmp(keys[i], up.want[1]) == 0);
        if (!mine && holds(text, n, keys[i]) && !holds(up.input, up.input_len, keys[i]))
            return true;
    }
    /* the YouTube key travels percent-encoded in the query */
    static const char yt[] = "AIza%2BGWCANARY%2Fyoutube%3D55cc%2666";
    return holds(text, n, yt) && !(up.want[0] != NULL && strcmp(up.want[0], K_YOUTUBE) == 0) &&
           !holds(up.input, up.input_len, yt);
}

static ee_status up_http(void *ctx, const ee_http_request *req, ee_http_response *resp)
{
    (void)ctx;
    up.calls++;
    const char *url = ee_http_request_url(req);
    snprintf(up.url, sizeof up.url, "%s", url);
    up.url_cut = strlen(url) >= sizeof up.url;
    up.leak = up.leak || leaks(url, strlen(url));
    for (size_t i = 0; i < ee_http_request_header_count(req); i++) {
        const char *n, *v;
        CHECK(ee_http_request_header_at(req, i, &n, &v) == EE_OK);
        up.leak = up.leak || leaks(n, strlen(n));
        /* the routed key travels in the provider's own header only */
        up.leak = up.leak || leaks(v, strlen(v));
    }
    const void *b = NULL;
    size_t blen = 0;
    ee_http_request_body(req, &b, &blen);
    up.leak = up.leak || leaks(b, blen);
    if (up.fail != EE_OK) {
        if (up.fail == EE_ENETWORK)
            ee_http_response_set_not_sent(resp);
        return up.fail;
    }
    CHECK(ee_http_response_set_status(resp, up.status) == EE_OK);
    if (up.ctype != NULL)
        CHECK(ee_http_response_add_header(resp, "Content-Type", up.ctype) == EE_OK);
    /* a header the gateway passes on, with the answer's first line in it */
    size_t line = 0;
    while (line < up.len && line < 450 && up.body[line] != '\n' && up.body[line] != '\r' &&
           up.body[line] != '\0')
        line++;
    char value[451];
    memcpy(value, up.body, line);
    value[line] = '\0';
    if (ee_http_response_add_header(resp, "X-Generation-Id", value) != EE_OK)
        ee_error_clear(); /* a value the transport refuses is not sent */
    size_t step = up.chunk > 0 ? up.chunk : (up.len > 0 ? up.len : 1);
    for (size_t at = 0; at < up.len; at += step) {
        ee_status st = ee_http_response_append_body(resp, up.body + at,
                                                    up.len - at < step ? up.len - at : step);
        if (st != EE_OK)
            return st; /* the caller went away (a stream stopped) or too large */
    }
    return EE_OK;
}

static const ee_transport_backend up_backend = {EE_TRANSPORT_BACKEND_VERSION,
                                                EE_TRANSPORT_THREAD_SAFE, up_http, NULL, NULL};

/* ---- the engine and its grants ------------------------------------------------- */

static ee_engine *engine;
static ee_transport *transport;
static ee_principal *user;
static unsigned inputs;

static void open_engine(void)
{
    if (engine != NULL) {
        ee_principal_free(user);
        ee_engine_close(engine);
        ee_transport_free(transport);
    }
    transport = fz_custom_transport(&up_backend, NULL, 65536);
    ee_config *cfg = fz_config();
    CHECK(ee_config_set(cfg, "PLATFORM_OPENROUTER_KEY", K_OPENROUTER) == EE_OK);
    CHECK(ee_config_set(cfg, "PLATFORM_SERPER_KEY", K_SERPER) == EE_OK);
    CHECK(ee_config_set(cfg, "PLATFORM_YOUTUBE_KEY", K_YOUTUBE) == EE_OK);
    CHECK(ee_config_set(cfg, "OPENROUTER_API_URL", "http://fz.openrouter/api/v1") == EE_OK);
    CHECK(ee_config_set(cfg, "EXEC_GATEWAY_BODY_MAX", "4096") == EE_OK);
    ee_engine_parts parts = {.version = EE_ENGINE_PARTS_VERSION, .transport = transport};
    CHECK(ee_engine_open_parts(&engine, cfg, &parts) == EE_OK);
    ee_config_free(cfg);
    char *out = NULL;
    CHECK(ee_cred_platform_provision(engine, &out) == EE_OK);
    ee_free(out);
    CHECK(ee_principal_new(&user, "ws-gw", "u-gw", "org-gw") == EE_OK);
    CHECK(ee_cred_key_add(engine, user, "{\"keyName\": \"mine\", \"provider\": \"openrouter\", "
                                        "\"apiKey\": \"" K_CUSTOMER "\"}", &out) == EE_OK);
    json_t *doc = json_loads(out, 0, NULL);
    char key_id[32];
    snprintf(key_id, sizeof key_id, "%s", json_string_value(json_object_get(doc, "id")));
    json_decref(doc);
    ee_free(out);
    int64_t now = ee_engine_now_ms(engine);
    static const char *const all[] = {"openrouter", "serper", "youtubeSearch"};
    fz_grant(engine, user, "aaaaaaaaaaaaaaaaaaaaaaaa", all, 1, key_id, -1, now + 3600000,
             tokens[0]);
    fz_grant(engine, user, "bbbbbbbbbbbbbbbbbbbbbbbb", all, 3, NULL, 1, now + 3600000, tokens[1]);
    fz_grant(engine, user, "cccccccccccccccccccccccc", all, 3, NULL, -1, now - 1, tokens[2]);
    fz_grant(engine, user, "dddddddddddddddddddddddd", all, 3, NULL, -1, now + 3600000,
             tokens[3]);
    CHECK(ee__gateway_revoke(engine, "ws-gw", "dddddddddddddddddddddddd") == EE_OK);
    fz_grant(engine, user, "eeeeeeeeeeeeeeeeeeeeeeee", all, 3, NULL, -1, now + 3600000,
             tokens[4]);
    ee_error_clear();
}

/* ---- the caller -------------------------------------------------------------------- */

typedef struct {
    int heads, status;
    char *body;
    size_t len;
    int abort_at; /* 0 never, 1 the head, 2 the first body chunk */
    bool aborted;
} caller;

static int on_head(int status, const char *const *headers, size_t n, void *payload)
{
    caller *c = payload;
    CHECK(c->heads == 0 && c->len == 0);
    c->heads++;
    c->status = status;
    for (size_t i = 0; i < n; i++)
        CHECK(headers[i] != NULL && strchr(headers[i], ':') != NULL);
    c->aborted = c->abort_at == 1;
    return c->aborted;
}

static int on_body(const char *chunk, size_t len, void *payload)
{
    caller *c = payload;
    CHECK(c->heads == 1 && !c->aborted);
    char *grown = realloc(c->body, c->len + len + 1);
    CHECK(grown != NULL);
    c->body = grown;
    memcpy(c->body + c->len, chunk, len);
    c->len += len;
    c->body[c->len] = '\0';
    c->aborted = c->abort_at == 2;
    return c->aborted;
}

/* The next NUL-ended part of the input (a missing one is empty). */
static char *part(const uint8_t **p, const uint8_t *end)
{
    const uint8_t *nul = memchr(*p, 0, (size_t)(end - *p));
    size_t n = nul != NULL ? (size_t)(nul - *p) : (size_t)(end - *p);
    char *s = fz_text(*p, n);
    *p = nul != NULL ? nul + 1 : end;
    return s;
}

/* "Authorization:" lines with the placeholders replaced (others as they are). */
static char *with_tokens(const char *line)
{
    if (strncasecmp(line, "Authorization:", 14) != 0)
        return strdup(line);
    size_t cap = strlen(line) * EE__GATEWAY_TOKEN_SIZE + 1;
    char *out = malloc(cap), *w = out;
    CHECK(out != NULL);
    for (const char *p = line; *p != '\0';) {
        size_t k = 0;
        while (k < 5 && strncmp(p, token_names[k], strlen(token_names[k])) != 0)
            k++;
        if (k < 5) {
            strcpy(w, tokens[k]);
            w += strlen(tokens[k]);
            p += strlen(token_names[k]);
        } else {
            *w++ = *p++;
        }
    }
    *w = '\0';
    return out;
}

/* The keys the provider the path names may be given. */
static void provider_keys(const char *path, const char *want[2])
{
    want[0] = want[1] = NULL;
    size_t n = path[0] == '/' ? strcspn(path + 1, "/") : 0;
    if (n == 10 && strncmp(path + 1, "openrouter", n) == 0) {
        want[0] = K_OPENROUTER; /* the platform's or the customer's */
        want[1] = K_CUSTOMER;
    } else if (n == 6 && strncmp(path + 1, "serper", n) == 0) {
        want[0] = K_SERPER;
    } else if (n == 7 && strncmp(path + 1, "youtube", n) == 0) {
        want[0] = K_YOUTUBE;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (engine == NULL || ++inputs % FZ_RESET == 0)
        open_engine();
    const uint8_t *p = data + 1, *end = data + size;
    char *method = part(&p, end), *path = part(&p, end), *query = part(&p, end);
    char *head_text = part(&p, end);
    const uint8_t *body = p;
    const uint8_t *nul = memchr(p, 0, (size_t)(end - p));
    size_t body_len = nul != NULL ? (size_t)(nul - p) : (size_t)(end - p);
    p = nul != NULL ? nul + 1 : end;

    /* the provider's answer */
    static const int statuses[] = {200, 200, 201, 204, 301, 400, 401, 402, 404, 413,
                                   429, 500, 502, 503, 100, 599, -1, -2, -3};
    static const char *const ctypes[] = {"application/json", "text/event-stream",
                                         "text/event-stream; charset=utf-8", "TEXT/EVENT-STREAM",
                                         "text/plain", NULL};
    memset(&up, 0, sizeof up);
    int s = end - p >= 1 ? statuses[p[0] % (sizeof statuses / sizeof statuses[0])] : 200;
    up.fail = s == -1 ? EE_ETIMEOUT : s == -2 ? EE_ENETWORK : s == -3 ? EE_ETOOBIG : EE_OK;
    up.status = s > 0 ? s : 200;
    up.ctype = end - p >= 2 ? ctypes[p[1] % (sizeof ctypes / sizeof ctypes[0])] : ctypes[0];
    up.chunk = end - p >= 3 ? p[2] : 0;
    up.body = end - p > 3 ? p + 3 : p;
    up.len = end - p > 3 ? (size_t)(end - p - 3) : 0;
    provider_keys(path, up.want);
    up.input = data;
    up.input_len = size;

    /* the request's header lines */
    char *lines[32];
    size_t n_lines = 0;
    for (char *save = NULL, *l = strtok_r(head_text, "\n", &save); l != NULL && n_lines < 32;
         l = strtok_r(NULL, "\n", &save))
        lines[n_lines++] = with_tokens(l);
    ee_gateway_request req = {EE_GATEWAY_REQUEST_VERSION, method, path,
                              query[0] != '\0' ? query : NULL, (const char *const *)lines,
                              n_lines, body_len > 0 ? (const char *)body : NULL, body_len};
    caller c = {.abort_at = data[0] % 3};
    ee_gateway_sink sink = {on_head, on_body, &c};
    ee_status st = ee_gateway_handle(engine, &req, &sink);
    if (getenv("FZ_PRINT") != NULL) /* checking a seed */
        fprintf(stderr, "%s: HTTP %d, %u upstream call(s) %s: %.300s\n", ee_status_name(st),
                c.status, up.calls, up.url, c.body != NULL ? c.body : "");
    CHECK_STATUS(st, EE_OK, EE_ECANCELLED);
    CHECK((st == EE_ECANCELLED) == c.aborted);
    CHECK(c.heads == 1);
    CHECK(c.status >= 100 && c.status <= 999);
    CHECK(!up.leak);
    if (up.calls > 0) {
        /* the provider's own host, whatever the path said */
        static const char *const bases[] = {"https://openrouter.ai/", "https://google.serper.dev/",
                                            "https://www.googleapis.com/"};
        bool ok = false;
        for (size_t i = 0; i < 3; i++)
            ok = ok || strncmp(up.url, bases[i], strlen(bases[i])) == 0;
        CHECK(ok);
    }
    bool own = up.calls == 0 || up.fail != EE_OK;
    if (own && !c.aborted) {
        json_t *doc = json_loadb(c.body != NULL ? c.body : "", c.len, 0, NULL);
        CHECK(json_is_string(json_object_get(json_object_get(doc, "error"), "status")));
        CHECK(json_is_string(json_object_get(json_object_get(doc, "error"), "message")));
        json_decref(doc);
    }
    /* no key or token reaches the caller unless the provider's answer (the
     * input) held it */
    static const char *const secrets[] = {K_OPENROUTER, K_SERPER, K_YOUTUBE, K_CUSTOMER,
                                          "GWCANARY"};
    for (size_t i = 0; c.body != NULL && i < sizeof secrets / sizeof secrets[0]; i++)
        CHECK(holds(data, size, secrets[i]) || !holds(c.body, c.len, secrets[i]));
    for (size_t i = 0; c.body != NULL && i < 5; i++) /* libFuzzer learns them from memcmp() */
        CHECK(holds(data, size, tokens[i]) || !holds(c.body, c.len, tokens[i]));
    char *out = NULL;
    CHECK(ee_gateway_stats(engine, &out) == EE_OK);
    json_decref(fz_answer(EE_OK, out));

    free(c.body);
    for (size_t i = 0; i < n_lines; i++)
        free(lines[i]);
    free(method);
    free(path);
    free(query);
    free(head_text);
    ee_error_clear();
    return 0;
}
