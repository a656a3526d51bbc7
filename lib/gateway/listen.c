/* ee_gateway_listen(): the embedded listener (libmicrohttpd).
 *
 * One thread per connection (MHD's internal polling thread accepts), so a
 * slow provider holds only its own caller. Requests under /gateway/ are
 * served by ee_gateway_handle(). A request with a body and without a valid
 * token is refused (401, ee_gateway_handle()'s own answer) with its head,
 * before the body is read; all checks run again once it is in. A body over
 * EXEC_GATEWAY_BODY_MAX is refused with 413: before it is read when its
 * Content-Length says so, else (chunked) once it ends - nothing past the
 * limit is kept. What libmicrohttpd 0.9 would serve wrongly is 400: %00 in
 * the path or query (decoded into C strings, they would be cut there), and
 * framing a proxy may read otherwise (two Content-Lengths, one beside
 * Transfer-Encoding, HTTP/1.1 without Host; the connection is closed).
 *
 * One more route: POST /gateway/_ee/callback takes a workflow's signed
 * completion callback and hands its headers (as a JSON object) and body to
 * the handler the engine wired (ee__gateway_set_callback(): the exec
 * module's ee_exec_ingest_webhook()), so a host needs no HTTP route of its
 * own for callbacks. Its answers: 200 with the handler's document, 401 a
 * bad signature or timestamp, 400 malformed, 404 unknown execution, 405
 * another method, 413 a body over the smaller of the two limits.
 *
 * Most calls are answered from the connection's thread, the answer queued
 * whole. A call that asks for a stream ("stream": true in its JSON body, or
 * Accept: text/event-stream) runs ee_gateway_handle() on a worker thread
 * instead, and the answer is an MHD callback response fed chunk by chunk
 * as the provider's SSE arrives (chunked transfer encoding); a client that
 * goes away stops the provider's call. The hand-off costs a thread per
 * call (~300 us measured), which only a stream is worth. The listener
 * stops with the module (ee_engine_close()), after its connections have
 * finished. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "execengine/gateway.h"
#include "gateway/gateway_internal.h"

#if EE_WITH_MHD

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "gateway/mhd_guard.h"

#define PREFIX "/gateway"
#define MAX_HEADERS 64
/* connections served at once (one thread each); MHD turns away more */
#define G_MAX_CONNECTIONS 512

struct g_listener {
    struct MHD_Daemon *daemon;
};

/* One request: its body as read, then the answer (under `lock` once a
 * worker runs). */
typedef struct {
    g_state *st;
    char *body;
    size_t len, cap;
    int64_t body_max;      /* the route's limit */
    bool too_big;
    /* the callback route: its handler (else a gateway call) */
    ee__gateway_callback_fn callback;
    /* the request as ee_gateway_handle() takes it */
    char *method, *path, *query;
    char *headers[MAX_HEADERS];
    size_t n_headers;
    /* the answer */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t worker;
    bool started, done, gone;
    bool have_head, failed;
    int status;
    char **head;
    size_t n_head;
    char *out;             /* body bytes not yet taken by MHD */
    size_t out_len, out_cap;
    /* the call's metering write, done once the answer has gone out */
    g_pending *pending;
} g_req;

static void req_free(g_req *r)
{
    if (r == NULL)
        return;
    /* MHD has sent the answer (or the connection failed): meter the call */
    ee__gateway_pending_commit(r->st, r->pending);
    if (r->started) {
        pthread_mutex_lock(&r->lock);
        r->gone = true; /* the sink tells ee_gateway_handle() to stop */
        pthread_cond_broadcast(&r->cond);
        pthread_mutex_unlock(&r->lock);
        pthread_join(r->worker, NULL);
    }
    free(r->body);
    free(r->method);
    free(r->path);
    free(r->query);
    for (size_t i = 0; i < r->n_headers; i++)
        free(r->headers[i]);
    for (size_t i = 0; i < r->n_head; i++)
        free(r->head[i]);
    free(r->head);
    free(r->out);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->cond);
    free(r);
}

/* ---- the sink ------------------------------------------------------------------- */

static int sink_head(int status, const char *const *headers, size_t n, void *payload)
{
    g_req *r = payload;
    char **copy = calloc(n + 1, sizeof *copy);
    size_t k = 0;
    for (size_t i = 0; copy != NULL && i < n; i++)
        if ((copy[k] = strdup(headers[i])) != NULL)
            k++;
    pthread_mutex_lock(&r->lock);
    r->head = copy;
    r->n_head = k;
    r->status = status;
    r->have_head = true;
    bool gone = r->gone;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
    return gone ? 1 : 0;
}

static int sink_body(const char *chunk, size_t len, void *payload)
{
    g_req *r = payload;
    pthread_mutex_lock(&r->lock);
    bool stop = r->gone;
    if (!stop && r->out_len + len > r->out_cap) {
        size_t cap = r->out_cap ? r->out_cap : 16384;
        while (cap < r->out_len + len)
            cap *= 2;
        char *grown = realloc(r->out, cap);
        if (grown == NULL) {
            r->failed = stop = true;
        } else {
            r->out = grown;
            r->out_cap = cap;
        }
    }
    if (!stop) {
        memcpy(r->out + r->out_len, chunk, len);
        r->out_len += len;
        pthread_cond_broadcast(&r->cond);
    }
    pthread_mutex_unlock(&r->lock);
    return stop ? 1 : 0;
}

/* defer: the answer is queued whole after this returns, so the call's
 * metering write waits for it to be sent (req_free()) */
static void serve(g_req *r, bool defer)
{
    ee_gateway_request req = {EE_GATEWAY_REQUEST_VERSION, r->method, r->path, r->query,
                              (const char *const *)r->headers, r->n_headers, r->body, r->len};
    ee_gateway_sink sink = {sink_head, sink_body, r};
    ee__gateway_handle_deferred(r->st->engine, &req, &sink, defer ? &r->pending : NULL);
    ee_error_clear();
    pthread_mutex_lock(&r->lock);
    if (!r->have_head)
        r->failed = true; /* not answered at all (out of memory) */
    r->have_head = r->done = true;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
}

static void *work(void *arg)
{
    serve(arg, false);
    return NULL;
}

/* MHD pulls a streamed answer: the worker's next chunk, or its end. */
static ssize_t reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    g_req *r = cls;
    pthread_mutex_lock(&r->lock);
    while (r->out_len == 0 && !r->done)
        pthread_cond_wait(&r->cond, &r->lock);
    if (r->out_len == 0) {
        pthread_mutex_unlock(&r->lock);
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    size_t n = r->out_len < max ? r->out_len : max;
    memcpy(buf, r->out, n);
    memmove(r->out, r->out + n, r->out_len - n);
    r->out_len -= n;
    pthread_mutex_unlock(&r->lock);
    return (ssize_t)n;
}

/* ---- MHD callbacks ----------------------------------------------------------------- */

static enum MHD_Result queue_json(struct MHD_Connection *c, unsigned status, const char *text)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(text), (void *)text,
                                                                MHD_RESPMEM_MUST_COPY);
    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "application/json");
    enum MHD_Result ok = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return ok;
}

static const char TOO_BIG[] = "{\"error\": {\"status\": \"EE_ETOOBIG\", \"message\": \"the "
                              "request body exceeds EXEC_GATEWAY_BODY_MAX\"}}";
static const char NOT_HERE[] = "{\"error\": {\"status\": \"EE_ENOTFOUND\", \"message\": "
                               "\"not a gateway URL: " PREFIX "/<provider>/<path>\"}}";

/* A refusal of the listener's own, in the gateway's shape (as handle.c's
 * answer() writes it); close: the connection ends after it (where the
 * request's body ends is unknown). */
static enum MHD_Result queue_error(struct MHD_Connection *c, unsigned http, ee_status status,
                                   const char *message, bool close)
{
    json_t *doc = json_pack("{s:{s:s, s:s}}", "error", "status", ee_status_name(status),
                            "message", message);
    char *text = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (text == NULL)
        return MHD_NO;
    struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(text), text,
                                                                MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "application/json");
    if (close)
        MHD_add_response_header(resp, "Connection", "close");
    enum MHD_Result ok = MHD_queue_response(c, http, resp);
    MHD_destroy_response(resp);
    return ok;
}

/* ---- the callback route ------------------------------------------------------------ */

static const char CB_METHOD[] = "{\"error\": {\"status\": \"EE_EINVAL\", \"message\": \"the "
                                "callback route takes POST only\"}}";
static const char CB_TOO_BIG[] = "{\"error\": {\"status\": \"EE_ETOOBIG\", \"message\": \"the "
                                 "callback body exceeds the callback limit\"}}";
static const char CB_FAILED[] = "{\"error\": {\"status\": \"EE_ENOMEM\", \"message\": "
                                "\"the callback could not be answered\"}}";

static enum MHD_Result method_not_allowed(struct MHD_Connection *c)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        strlen(CB_METHOD), (void *)CB_METHOD, MHD_RESPMEM_PERSISTENT);
    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "application/json");
    MHD_add_response_header(resp, "Allow", "POST");
    enum MHD_Result ok = MHD_queue_response(c, 405, resp);
    MHD_destroy_response(resp);
    return ok;
}

static enum MHD_Result collect_header_json(void *cls, enum MHD_ValueKind kind, const char *key,
                                           const char *value)
{
    (void)kind;
    json_t *h = cls;
    if (json_object_size(h) >= MAX_HEADERS)
        return MHD_NO;
    /* a value that is not UTF-8 cannot be a signature header: left out */
    json_t *v = json_string(value != NULL ? value : "");
    if (v != NULL)
        json_object_set_new(h, key, v);
    return MHD_YES;
}

/* The HTTP status of the handler's refusal (exec.h, ee_exec_ingest_webhook()). */
static unsigned callback_http_status(ee_status s)
{
    switch (s) {
    case EE_EAUTH:
        return 401;
    case EE_EINVAL:
    case EE_EPARSE:
        return 400;
    case EE_ENOTFOUND:
        return 404;
    case EE_ETOOBIG:
        return 413;
    case EE_EBUSY:
    case EE_ETIMEOUT:
    case EE_ENETWORK:
        return 503;
    default:
        return 500;
    }
}

static enum MHD_Result answer_callback(struct MHD_Connection *c, g_req *r)
{
    json_t *h = json_object();
    if (h == NULL)
        return queue_json(c, 500, CB_FAILED);
    MHD_get_connection_values(c, MHD_HEADER_KIND, collect_header_json, h);
    char *headers = json_dumps(h, JSON_COMPACT);
    json_decref(h);
    if (headers == NULL)
        return queue_json(c, 500, CB_FAILED);
    char *out = NULL;
    ee_status s = r->callback(r->st->engine, headers, r->body != NULL ? r->body : "", r->len,
                              &out);
    free(headers);
    if (s == EE_OK && out != NULL) {
        enum MHD_Result ok = queue_json(c, 200, out);
        ee_free(out);
        return ok;
    }
    ee_free(out);
    /* The refusal in the gateway's own shape: the status's name and the
     * handler's message (messages never carry a secret; the key is never
     * in one). */
    json_t *doc = json_pack("{s:{s:s, s:s}}", "error", "status",
                            ee_status_name(s == EE_OK ? EE_ENOMEM : s), "message",
                            s == EE_OK ? "the callback could not be answered"
                                       : ee_error_last_message());
    char *text = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    ee_error_clear();
    if (text == NULL)
        return queue_json(c, 500, CB_FAILED);
    enum MHD_Result ok = queue_json(c, s == EE_OK ? 500 : callback_http_status(s), text);
    free(text);
    return ok;
}

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
    (void)kind;
    g_req *r = cls;
    if (r->n_headers >= MAX_HEADERS)
        return MHD_NO;
    size_t n = strlen(key) + strlen(value) + 3;
    char *line = malloc(n);
    if (line == NULL)
        return MHD_NO;
    snprintf(line, n, "%s: %s", key, value);
    r->headers[r->n_headers++] = line;
    return MHD_YES;
}

/* The query as MHD parsed it, encoded again for the upstream (MHD keeps
 * no raw copy of the request line). */
typedef struct {
    char *buf;
    size_t len, cap;
    bool bad;
} qbuf;

static void qadd(qbuf *q, const char *s, bool encode)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s != '\0' && !q->bad; s++) {
        if (q->len + 4 > q->cap) {
            size_t cap = q->cap ? q->cap * 2 : 256;
            char *g = realloc(q->buf, cap);
            if (g == NULL) {
                q->bad = true;
                return;
            }
            q->buf = g;
            q->cap = cap;
        }
        unsigned char ch = (unsigned char)*s;
        if (!encode || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
            (ch >= '0' && ch <= '9') || strchr("-_.~", ch) != NULL) {
            q->buf[q->len++] = (char)ch;
        } else {
            q->buf[q->len++] = '%';
            q->buf[q->len++] = hex[ch >> 4];
            q->buf[q->len++] = hex[ch & 15];
        }
        q->buf[q->len] = '\0';
    }
}

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    (void)kind;
    qbuf *q = cls;
    if (q->len > 0)
        qadd(q, "&", false);
    qadd(q, key, true);
    if (value != NULL) {
        qadd(q, "=", false);
        qadd(q, value, true);
    }
    return MHD_YES;
}

static bool wants_stream(const g_req *r)
{
    for (size_t i = 0; i < r->n_headers; i++)
        if (strncasecmp(r->headers[i], "Accept:", 7) == 0 &&
            strstr(r->headers[i], "text/event-stream") != NULL)
            return true;
    return ee__gateway_wants_stream(r->body, r->len);
}

/* The answer the sink was given (r->status, r->head, r->out), queued. */
static enum MHD_Result queue_answer(struct MHD_Connection *c, g_req *r, bool streaming)
{
    struct MHD_Response *resp;
    if (streaming) {
        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, reader, r, NULL);
    } else {
        resp = MHD_create_response_from_buffer(r->out_len, r->out, MHD_RESPMEM_MUST_FREE);
        if (resp != NULL)
            r->out = NULL; /* the response's now */
    }
    if (resp == NULL)
        return MHD_NO;
    for (size_t i = 0; i < r->n_head; i++) {
        char *line = r->head[i];
        char *colon = strchr(line, ':');
        if (colon == NULL)
            continue;
        *colon = '\0';
        const char *v = colon + 1;
        while (*v == ' ')
            v++;
        MHD_add_response_header(resp, line, v);
        *colon = ':';
    }
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return ok;
}

/* A request with a body: Content-Length above 0, or Transfer-Encoding
 * (ee__mhd_framing_error() has refused both at once). */
static bool has_body(struct MHD_Connection *c)
{
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    return (cl != NULL && strtoull(cl, NULL, 10) > 0) ||
           MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Transfer-Encoding") != NULL;
}

/* The token checked with the request's head, before its body is read (up
 * to EXEC_GATEWAY_BODY_MAX, on each of G_MAX_CONNECTIONS connections, for
 * anyone who can connect): refused, the answer is queued and true. It is
 * ee_gateway_handle()'s own refusal, word for word; a request that passes
 * is checked again in full once its body is in (a token may expire or be
 * revoked in between). Only a request with a body is checked early: one
 * without is answered at once anyway, and the check reads the run's total. */
static bool refused_early(struct MHD_Connection *c, g_req *r, enum MHD_Result *out)
{
    if (!has_body(c))
        return false;
    ee_gateway_request req = {EE_GATEWAY_REQUEST_VERSION, r->method, r->path, NULL,
                              (const char *const *)r->headers, r->n_headers, NULL, 0};
    ee_gateway_sink sink = {sink_head, sink_body, r};
    if (!ee__gateway_check_head(r->st->engine, &req, &sink))
        return false;
    *out = r->have_head && !r->failed ? queue_answer(c, r, false) : MHD_NO;
    return true;
}

static enum MHD_Result answer(struct MHD_Connection *c, g_req *r)
{
    qbuf q = {0};
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, collect_arg, &q);
    if (q.bad) {
        free(q.buf);
        return MHD_NO;
    }
    r->query = q.buf;
    bool streaming = false;
    if (wants_stream(r) && pthread_create(&r->worker, NULL, work, r) == 0) {
        r->started = true;
        pthread_mutex_lock(&r->lock);
        while (!r->have_head)
            pthread_cond_wait(&r->cond, &r->lock);
        streaming = !r->done; /* else answered already (a refusal, an error) */
        bool failed = r->failed;
        pthread_mutex_unlock(&r->lock);
        if (failed)
            return MHD_NO;
    } else {
        /* The run's accounting waits for the writes still pending in its
         * own process (ee__gateway_settle()). Workflows are given this
         * listener's URL, so that is where their calls land - unless
         * EXEC_GATEWAY_URL sends them through a proxy, perhaps to another
         * process's listener: then the write comes before the answer. */
        serve(r, !r->st->url_configured);
        if (r->failed)
            return MHD_NO; /* out of memory: MHD closes the connection */
    }
    return queue_answer(c, r, streaming);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    g_state *st = cls;
    g_req *r = *con_cls;
    if (r == NULL) {
        if (ee__mhd_url_nul(c))
            return queue_error(c, 400, EE_EINVAL,
                               "the URL holds an encoded NUL byte (%00) in its path or query",
                               false);
        const char *framing = ee__mhd_framing_error(c, version);
        if (framing != NULL) {
            char msg[128];
            snprintf(msg, sizeof msg, "malformed request: %s", framing);
            return queue_error(c, 400, EE_EINVAL, msg, true);
        }
        if (strncmp(url, PREFIX "/", sizeof PREFIX) != 0)
            return queue_json(c, 404, NOT_HERE);
        int64_t limit = st->body_max;
        ee__gateway_callback_fn callback = NULL;
        if (strcmp(url, PREFIX EE__GATEWAY_CALLBACK_PATH) == 0) {
            pthread_mutex_lock(&st->lock);
            callback = st->callback_fn;
            if (callback != NULL && st->callback_body_max < limit)
                limit = st->callback_body_max;
            pthread_mutex_unlock(&st->lock);
            if (callback != NULL && strcmp(method, "POST") != 0)
                return method_not_allowed(c);
        }
        r = calloc(1, sizeof *r);
        if (r == NULL)
            return MHD_NO;
        pthread_mutex_init(&r->lock, NULL);
        pthread_cond_init(&r->cond, NULL);
        r->st = st;
        r->body_max = limit;
        r->callback = callback;
        r->method = strdup(method);
        r->path = strdup(url + sizeof PREFIX - 1);
        if (r->method == NULL || r->path == NULL) {
            req_free(r);
            return MHD_NO;
        }
        enum MHD_Result early = MHD_NO;
        if (callback == NULL) {
            /* the callback route's body is its signed document: its
             * handler checks it, not a token */
            MHD_get_connection_values(c, MHD_HEADER_KIND, collect_header, r);
            if (refused_early(c, r, &early)) {
                req_free(r);
                return early;
            }
        }
        /* refuse a declared oversize body before reading a byte of it (after
         * the token: a caller without one learns nothing of the limit) */
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl != NULL && strtoull(cl, NULL, 10) > (unsigned long long)limit) {
            req_free(r);
            return queue_json(c, 413, callback != NULL ? CB_TOO_BIG : TOO_BIG);
        }
        *con_cls = r;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (r->too_big || (int64_t)(r->len + n) > r->body_max) {
            /* drop the rest (MHD 0.9 cannot answer before the upload ends):
             * the answer is 413, nothing past the limit is kept */
            r->too_big = true;
            return MHD_YES;
        }
        if (r->len + n + 1 > r->cap) {
            size_t cap = r->cap ? r->cap : 4096;
            while (cap < r->len + n + 1)
                cap *= 2;
            char *grown = realloc(r->body, cap);
            if (grown == NULL)
                return MHD_NO;
            r->body = grown;
            r->cap = cap;
        }
        memcpy(r->body + r->len, upload_data, n);
        r->len += n;
        return MHD_YES;
    }
    if (r->too_big)
        return queue_json(c, 413, r->callback != NULL ? CB_TOO_BIG : TOO_BIG);
    if (r->callback != NULL)
        return answer_callback(c, r);
    return answer(c, r);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    req_free(*con_cls);
    *con_cls = NULL;
}

/* "a.b.c.d:port" or "[v6]:port". */
static bool parse_address(const char *address, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[64];
    const char *colon = strrchr(address, ':');
    if (colon == NULL || colon == address || (size_t)(colon - address) >= sizeof host)
        return false;
    char *end = NULL;
    long port = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || port < 0 || port > 65535)
        return false;
    memcpy(host, address, (size_t)(colon - address));
    host[colon - address] = '\0';
    memset(ss, 0, sizeof *ss);
    if (host[0] == '[') {
        size_t n = strlen(host);
        if (n < 3 || host[n - 1] != ']')
            return false;
        host[n - 1] = '\0';
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        *len = sizeof *a;
        return inet_pton(AF_INET6, host + 1, &a->sin6_addr) == 1;
    }
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    *len = sizeof *a;
    return inet_pton(AF_INET, host, &a->sin_addr) == 1;
}

ee_status ee_gateway_listen(ee_engine *engine, const char *address, char **url_out)
{
    if (url_out != NULL)
        *url_out = NULL;
    g_state *st = ee__gateway_state(engine);
    if (st == NULL || address == NULL)
        return ee__error(EE_EINVAL, "ee_gateway_listen: engine and address must not be NULL");
    struct sockaddr_storage ss;
    socklen_t slen = 0;
    if (!parse_address(address, &ss, &slen))
        return ee__error(EE_EINVAL, "ee_gateway_listen: the address must be an IP literal and "
                                    "a port (\"127.0.0.1:0\", \"[::1]:8080\")");
    pthread_mutex_lock(&st->lock);
    if (st->listener != NULL) {
        pthread_mutex_unlock(&st->lock);
        return ee__error(EE_ESTATE, "ee_gateway_listen: the engine is already listening");
    }
    struct g_listener *l = calloc(1, sizeof *l);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_POLL;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    if (l != NULL)
        l->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, st,
                                     MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                                     MHD_OPTION_NOTIFY_COMPLETED, on_completed, st,
                                     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)300,
                                     MHD_OPTION_CONNECTION_LIMIT, (unsigned)G_MAX_CONNECTIONS,
                                     MHD_OPTION_NOTIFY_CONNECTION, ee__mhd_on_connection, st,
                                     MHD_OPTION_UNESCAPE_CALLBACK, ee__mhd_unescape, st,
                                     MHD_OPTION_END);
    if (l == NULL || l->daemon == NULL) {
        pthread_mutex_unlock(&st->lock);
        free(l);
        return ee__error(EE_EIO, "ee_gateway_listen: cannot listen on %s", address);
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(l->daemon, MHD_DAEMON_INFO_BIND_PORT);
    unsigned port = di != NULL ? di->port : 0;
    char host[64];
    const char *colon = strrchr(address, ':');
    snprintf(host, sizeof host, "%.*s", (int)(colon - address), address);
    char url[160];
    snprintf(url, sizeof url, "http://%s:%u" PREFIX, host, port);
    ee_status s = EE_OK;
    char *mine = NULL;
    if (st->url == NULL && (st->url = strdup(url)) == NULL)
        s = ee__error(EE_ENOMEM, "out of memory starting the gateway listener");
    if (s == EE_OK && url_out != NULL && (mine = strdup(url)) == NULL)
        s = ee__error(EE_ENOMEM, "out of memory starting the gateway listener");
    /* the listener's own address, whatever EXEC_GATEWAY_URL says: the
     * callback route is served here, not by a host's ee_gateway_handle() */
    if (s == EE_OK && st->callback_url == NULL) {
        size_t n = strlen(url) + sizeof EE__GATEWAY_CALLBACK_PATH;
        if ((st->callback_url = malloc(n)) == NULL)
            s = ee__error(EE_ENOMEM, "out of memory starting the gateway listener");
        else
            snprintf(st->callback_url, n, "%s" EE__GATEWAY_CALLBACK_PATH, url);
    }
    if (s != EE_OK) {
        pthread_mutex_unlock(&st->lock);
        MHD_stop_daemon(l->daemon);
        free(l);
        return s;
    }
    st->listener = l;
    pthread_mutex_unlock(&st->lock);
    if (url_out != NULL)
        *url_out = mine;
    return EE_OK;
}

void ee__gateway_listener_stop(g_state *st)
{
    pthread_mutex_lock(&st->lock);
    struct g_listener *l = st->listener;
    st->listener = NULL;
    pthread_mutex_unlock(&st->lock);
    if (l == NULL)
        return;
    MHD_stop_daemon(l->daemon);
    free(l);
}

#else /* built without libmicrohttpd */

ee_status ee_gateway_listen(ee_engine *engine, const char *address, char **url_out)
{
    (void)engine;
    (void)address;
    if (url_out != NULL)
        *url_out = NULL;
    return ee__error(EE_ENOTSUPPORTED, "ee_gateway_listen: this build has no embedded "
                                       "listener (EE_WITH_MHD=OFF); serve ee_gateway_handle() "
                                       "from the host's HTTP server");
}

void ee__gateway_listener_stop(g_state *st)
{
    (void)st;
}

#endif
