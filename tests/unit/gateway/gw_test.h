/*
 * Helpers shared by the gateway tests: an engine with platform keys and a
 * customer key (canaries), a grant for a run that routed chosen services,
 * a sink that keeps the answer, a transcript of every log line, and a
 * scripted upstream as an injected transport (ee_engine_open_parts()) that
 * records what it was sent.
 */
#ifndef EE_TEST_GW_TEST_H
#define EE_TEST_GW_TEST_H

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <jansson.h>

#include <execengine/credentials.h>
#include <execengine/execengine.h>
#include <execengine/gateway.h>
#include <execengine/transport.h>

#include "credentials/credentials.h"
#include "engine_fixture.h"
#include "fake_transport.h"
#include "gateway/gateway.h"

#define C_OPENROUTER "sk-or-v1-CANARY-gw-platform-7e3a1c"
#define C_SERPER "CANARY-gw-serper-2b9d4f"
#define C_CUSTOMER "sk-or-v1-CANARY-gw-customer-5a6b7c"
/* characters a query string must carry percent-encoded */
#define C_YOUTUBE "AIza+CANARY/gw=youtube&x"
#define C_YOUTUBE_ENC "AIza%2BCANARY%2Fgw%3Dyoutube%26x"

/* ---- transcript of log lines ---------------------------------------------------- */

static char gw_log[1 << 16];
static size_t gw_log_len;
static pthread_mutex_t gw_log_lock = PTHREAD_MUTEX_INITIALIZER;

static inline void gw_log_fn(ee_log_level level, const char *module, const char *line,
                             void *payload)
{
    (void)level;
    (void)module;
    (void)payload;
    pthread_mutex_lock(&gw_log_lock);
    size_t n = strlen(line);
    if (gw_log_len + n + 2 < sizeof gw_log) {
        memcpy(gw_log + gw_log_len, line, n);
        gw_log_len += n;
        gw_log[gw_log_len++] = '\n';
        gw_log[gw_log_len] = '\0';
    }
    pthread_mutex_unlock(&gw_log_lock);
}

/* ---- the scripted upstream --------------------------------------------------------- */

typedef enum {
    UP_OPENROUTER_JSON, /* 200, OpenRouter chat completion with usage */
    UP_OPENROUTER_SSE,  /* 200, text/event-stream, usage in the last data message */
    UP_SEARCH,          /* 200, a Serper-like JSON answer */
    UP_429,             /* 429 with Retry-After */
    UP_TIMEOUT,         /* the transport times out */
    UP_RESET,           /* the connection is reset */
} up_mode;

#define UP_COST "0.000123456789"
#define UP_COST_NANO 123457
#define UP_COST_USD "0.000123457"

typedef struct {
    pthread_mutex_t lock;
    up_mode mode;
    int calls;
    char url[4096];
    char method[16];
    char headers[8192]; /* "Name: value\n" each */
    char body[4096];
} upstream;

static upstream up = {.lock = PTHREAD_MUTEX_INITIALIZER};

static inline ee_status up_http(void *ctx, const ee_http_request *req, ee_http_response *resp)
{
    (void)ctx;
    const char *url = ee_http_request_url(req);
    if (strstr(url, "/key") != NULL && strstr(url, "127.0.0.1:9") != NULL) {
        /* the customer key's validation: "unreachable", as other tests do */
        ee_http_response_set_not_sent(resp);
        return EE_ENETWORK;
    }
    pthread_mutex_lock(&up.lock);
    up.calls++;
    snprintf(up.url, sizeof up.url, "%s", url);
    snprintf(up.method, sizeof up.method, "%s", ee_http_request_method(req));
    up.headers[0] = '\0';
    for (size_t i = 0; i < ee_http_request_header_count(req); i++) {
        const char *n, *v;
        ee_http_request_header_at(req, i, &n, &v);
        size_t l = strlen(up.headers);
        snprintf(up.headers + l, sizeof up.headers - l, "%s: %s\n", n, v);
    }
    const void *b;
    size_t blen;
    ee_http_request_body(req, &b, &blen);
    snprintf(up.body, sizeof up.body, "%.*s", (int)blen, b != NULL ? (const char *)b : "");
    up_mode mode = up.mode;
    pthread_mutex_unlock(&up.lock);
    const char *text = NULL, *ctype = "application/json";
    int status = 200;
    switch (mode) {
    case UP_OPENROUTER_JSON:
        text = "{\"id\": \"gen-1\", \"model\": \"openai/gpt-4o-mini\", \"object\": "
               "\"chat.completion\", \"choices\": [{\"index\": 0, \"message\": {\"role\": "
               "\"assistant\", \"content\": \"usage: {\\\"cost\\\": 9}\"}}], \"usage\": "
               "{\"prompt_tokens\": 12, \"completion_tokens\": 30, \"total_tokens\": 42, "
               "\"cost\": " UP_COST ", \"prompt_tokens_details\": {\"cached_tokens\": 0}}}";
        break;
    case UP_OPENROUTER_SSE:
        ctype = "text/event-stream";
        text = ": OPENROUTER PROCESSING\n\n"
               "data: {\"id\": \"gen-2\", \"model\": \"openai/gpt-4o-mini\", \"choices\": "
               "[{\"delta\": {\"content\": \"Hel\"}}]}\n\n"
               "data: {\"id\": \"gen-2\", \"model\": \"openai/gpt-4o-mini\", \"choices\": "
               "[{\"delta\": {\"content\": \"lo\"}}]}\n\n"
               "data: {\"id\": \"gen-2\", \"model\": \"openai/gpt-4o-mini\", \"choices\": "
               "[{\"delta\": {}, \"finish_reason\": \"stop\"}], \"usage\": {\"prompt_tokens\": "
               "7, \"completion_tokens\": 5, \"total_tokens\": 12, \"cost\": 1.5e-5}}\n\n"
               "data: [DONE]\n\n";
        break;
    case UP_SEARCH:
        text = "{\"organic\": [{\"title\": \"libexecengine\"}]}";
        break;
    case UP_429:
        status = 429;
        text = "{\"message\": \"slow down\"}";
        ee_http_response_add_header(resp, "Retry-After", "7");
        break;
    case UP_TIMEOUT:
        return EE_ETIMEOUT;
    case UP_RESET:
        return EE_ENETWORK;
    }
    ee_http_response_set_status(resp, status);
    ee_http_response_add_header(resp, "Content-Type", ctype);
    ee_http_response_append_body(resp, text, strlen(text));
    return EE_OK;
}

static inline void up_reset(up_mode mode)
{
    pthread_mutex_lock(&up.lock);
    up.mode = mode;
    up.calls = 0;
    up.url[0] = up.method[0] = up.headers[0] = up.body[0] = '\0';
    pthread_mutex_unlock(&up.lock);
}

static inline ee_transport *up_transport(void)
{
    static const ee_transport_backend be = {EE_TRANSPORT_BACKEND_VERSION,
                                            EE_TRANSPORT_THREAD_SAFE, up_http, NULL, NULL};
    ee_transport_options *o = NULL;
    cr_assert_eq(ee_transport_options_new(&o), EE_OK);
    cr_assert_eq(ee_transport_options_set_int64(o, "max_retries", 0), EE_OK);
    ee_transport *t = NULL;
    cr_assert_eq(ee_transport_new_custom(&t, &be, NULL, o), EE_OK);
    ee_transport_options_free(o);
    return t;
}

/* ---- engines ----------------------------------------------------------------------- */

static int64_t gw_now = 1800000000000;

static inline int64_t gw_clock(void *payload)
{
    (void)payload;
    return __atomic_load_n(&gw_now, __ATOMIC_SEQ_CST);
}

/* An engine on `uri` (NULL: memory:) over transport `t` (NULL: the
 * engine's own), with the platform keys provisioned. `body_max` 0 keeps
 * the default. */
static inline ee_engine *gw_engine(const char *uri, ee_transport *t, int64_t body_max)
{
    ee_config *cfg = ee_test_config_new(uri, gw_clock, NULL);
    ee_test_config_set(cfg, "PLATFORM_SERPER_KEY", C_SERPER);
    ee_test_config_set(cfg, "PLATFORM_OPENROUTER_KEY", C_OPENROUTER);
    ee_test_config_set(cfg, "PLATFORM_YOUTUBE_KEY", C_YOUTUBE);
    ee_test_config_set(cfg, "OPENROUTER_API_URL", "http://127.0.0.1:9/api/v1");
    if (body_max > 0)
        cr_assert_eq(ee_config_set_int64(cfg, "EXEC_GATEWAY_BODY_MAX", body_max), EE_OK);
    cr_assert_eq(ee_config_set_log(cfg, gw_log_fn, EE_LOG_DEBUG, NULL), EE_OK);
    ee_engine_parts parts = {.version = EE_ENGINE_PARTS_VERSION, .transport = t};
    ee_engine *e = NULL;
    ee_status st = ee_engine_open_parts(&e, cfg, &parts);
    ee_config_free(cfg);
    cr_assert_eq(st, EE_OK, "open: %s", ee_error_last_message());
    char *out = NULL;
    cr_assert_eq(ee_cred_platform_provision(e, &out), EE_OK, "%s", ee_error_last_message());
    ee_free(out);
    return e;
}

static inline ee_principal *gw_principal(const char *ws, const char *user)
{
    ee_principal *p = NULL;
    cr_assert_eq(ee_principal_new(&p, ws, user, "org-1"), EE_OK);
    return p;
}

/* A customer key of `p`'s user; its id into `id`. */
static inline void gw_customer_key(ee_engine *e, const ee_principal *p, char id[32])
{
    char *out = NULL;
    ee_status st = ee_cred_key_add(e, p, "{\"keyName\": \"mine\", \"provider\": \"openrouter\", "
                                         "\"apiKey\": \"" C_CUSTOMER "\"}", &out);
    cr_assert_eq(st, EE_OK, "%s", out != NULL ? out : ee_error_last_message());
    json_t *doc = json_loads(out, 0, NULL);
    snprintf(id, 32, "%s", json_string_value(json_object_get(doc, "id")));
    json_decref(doc);
    ee_free(out);
}

/* Grant execution `exec_id` a run routed over `types` (n node types:
 * "openrouter", "serper" ...), budget and expiry as given. */
static inline void gw_grant(ee_engine *e, const ee_principal *p, const char *exec_id,
                            const char *const *types, size_t n, const char *customer_key_id,
                            int64_t budget_nano, int64_t expires_at_ms,
                            char token[EE__GATEWAY_TOKEN_SIZE])
{
    ee__cred_node nodes[8];
    for (size_t i = 0; i < n; i++)
        nodes[i] = (ee__cred_node){.name = types[i], .type = types[i]};
    ee__cred_choice choice = {customer_key_id != NULL, customer_key_id};
    ee__cred_route *r = NULL;
    cr_assert_eq(ee__cred_route_nodes(e, p, nodes, n, customer_key_id ? &choice : NULL, &r),
                 EE_OK, "%s", ee_error_last_message());
    cr_assert(r->ready, "the route is ready");
    ee__gateway_grant_spec spec = {
        .execution_id = exec_id, .principal = p,
        .workflow_catalog_id = "0123456789abcdef01234567", .route = r,
        .choice = customer_key_id ? &choice : NULL, .budget_nano = budget_nano,
        .expires_at_ms = expires_at_ms,
    };
    cr_assert_eq(ee__gateway_grant(e, &spec, token), EE_OK, "%s", ee_error_last_message());
    ee__cred_route_free(r);
}

/* ---- calls and answers ------------------------------------------------------------- */

typedef struct {
    int status;
    char headers[4096];
    char *body;
    size_t len;
    int abort_at_head;
    int abort_at_body;
} gw_answer;

static inline int gw_head(int status, const char *const *h, size_t n, void *payload)
{
    gw_answer *a = payload;
    a->status = status;
    a->headers[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(a->headers);
        snprintf(a->headers + l, sizeof a->headers - l, "%s\n", h[i]);
    }
    return a->abort_at_head;
}

static inline int gw_body(const char *chunk, size_t len, void *payload)
{
    gw_answer *a = payload;
    if (a->abort_at_body)
        return 1;
    a->body = realloc(a->body, a->len + len + 1);
    memcpy(a->body + a->len, chunk, len);
    a->len += len;
    a->body[a->len] = '\0';
    return 0;
}

static inline void gw_answer_free(gw_answer *a)
{
    free(a->body);
    memset(a, 0, sizeof *a);
}

/* The value of header `name` in an answer ("" if absent; static). */
static inline const char *gw_header(const gw_answer *a, const char *name)
{
    static char v[512];
    v[0] = '\0';
    size_t n = strlen(name);
    for (const char *p = a->headers; *p != '\0';) {
        const char *eol = strchr(p, '\n');
        if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
            snprintf(v, sizeof v, "%.*s", (int)(eol - p - n - 2), p + n + 2);
            return v;
        }
        p = eol + 1;
    }
    return v;
}

/* Call the gateway: method, path, the Authorization value (NULL: none),
 * extra header lines, body. */
static inline gw_answer gw_call_h(ee_engine *e, const char *method, const char *path,
                                  const char *auth, const char *const *extra, size_t n_extra,
                                  const char *body, size_t body_len)
{
    const char *headers[16];
    size_t n = 0;
    char line[256];
    if (auth != NULL) {
        snprintf(line, sizeof line, "Authorization: %s", auth);
        headers[n++] = line;
    }
    headers[n++] = "Content-Type: application/json";
    for (size_t i = 0; i < n_extra; i++)
        headers[n++] = extra[i];
    ee_gateway_request req = {EE_GATEWAY_REQUEST_VERSION, method, path, NULL, headers, n,
                              body, body_len};
    gw_answer a = {0};
    ee_gateway_sink sink = {gw_head, gw_body, &a};
    ee_status st = ee_gateway_handle(e, &req, &sink);
    cr_assert_eq(st, EE_OK, "ee_gateway_handle: %s", ee_error_last_message());
    return a;
}

static inline gw_answer gw_call(ee_engine *e, const char *path, const char *token)
{
    char auth[128];
    snprintf(auth, sizeof auth, "Bearer %s", token);
    static const char body[] = "{\"model\": \"openai/gpt-4o-mini\", \"messages\": []}";
    return gw_call_h(e, "POST", path, auth, NULL, 0, body, sizeof body - 1);
}

/* The "status" of the gateway's own error answer. */
static inline void gw_expect_error(const gw_answer *a, int http, const char *status)
{
    cr_expect_eq(a->status, http, "HTTP %d, want %d: %s", a->status, http,
                 a->body ? a->body : "");
    json_t *doc = a->body ? json_loads(a->body, 0, NULL) : NULL;
    const char *s = json_string_value(json_object_get(json_object_get(doc, "error"), "status"));
    cr_expect(s != NULL && strcmp(s, status) == 0, "error status %s, want %s", s ? s : "(none)",
              status);
    cr_expect_not_null(json_string_value(json_object_get(json_object_get(doc, "error"),
                                                         "message")));
    json_decref(doc);
}

#define OPENROUTER_PATH "/openrouter/api/v1/chat/completions"

#endif
