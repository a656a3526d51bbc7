/*
 * execengine-server: the example REST server, a thin HTTP front of
 * libexecengine using the public API only, libmicrohttpd and jansson.
 * Every route maps to one library call (docs/server.md has the table); the
 * server holds no logic of its own beyond who is asking and HTTP.
 *
 * Environment: EE_SERVER_ADDR (default 127.0.0.1:8080), EE_SERVER_TOKENS
 * (a JSON file {"tokens": [{"token","workspaceId","userId","orgId","role"}]}),
 * EE_SERVER_MAX_CALLS (most requests waiting on n8n or a provider at once,
 * gateway and other routes each, default 256) and the engine's own
 * configuration (ee_config_load_env()).
 * Exit status: 0 after SIGTERM/SIGINT, 1 engine or listener failure,
 * 2 bad EE_SERVER_ADDR, EE_SERVER_MAX_CALLS or tokens file.
 * SIGTERM/SIGINT: stop accepting, let running requests finish (bounded),
 * then ee_engine_close() (queued executions stay in storage for recovery).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>

#include <execengine/execengine.h>

/* libmicrohttpd glue the library's gateway listener uses too (no library
 * internals: header-only, see its head) */
#include "../../lib/gateway/mhd_guard.h"

#define MAX_TOKENS 256
/* Largest tokens file read (bytes). */
#define MAX_TOKENS_FILE (1024 * 1024)
/* Largest request body of the API routes and of the gateway (bytes). */
#define API_BODY_MAX EE_EXEC_REQUEST_MAX
#define GATEWAY_BODY_MAX (10 * 1024 * 1024)
/* Longest wait for running requests at shutdown (seconds). */
#define DRAIN_MAX_S 300
#define MAX_SEGMENTS 8
/* Most calls waiting on threads of their own at once (EE_SERVER_MAX_CALLS):
 * the default, and the largest value accepted. */
#define DEFAULT_MAX_CALLS 256
#define MAX_CALLS_LIMIT 4096

typedef struct {
    char token[256];
    char workspace[128];
    char user[128];
    char org[128];
    int admin;
    ee_principal *principal;
} token_entry;

/* The list of a request's headers, collected before it is handed to a
 * thread of its own (the gateway's "Name: value" lines). */
typedef struct {
    json_t *obj;   /* the callback: {"name": "value"} */
    char **lines;  /* the gateway: "Name: value" */
    size_t n;
    size_t cap;
} header_list;

/* A growing text buffer (the gateway's query, answers, /metrics). */
typedef struct {
    char *buf;
    size_t len;
    size_t cap;
} strbuf;

/* What the gateway answered, kept until the pool sends it. */
typedef struct {
    int status;
    char **headers;
    size_t n_headers;
    strbuf body;
} gw_answer;

/* Library calls that may wait on n8n or a provider: each runs on a thread
 * of its own while the connection is suspended, so that it holds no
 * worker of the pool (see start_call()). */
enum { CALL_NONE, CALL_RUN, CALL_VALIDATE, CALL_SYNC, CALL_CANCEL, CALL_GATEWAY };

/* One request: its body as it arrives, and a waiting call's arguments and
 * outcome. */
typedef struct {
    char *body;
    size_t len;
    size_t cap;
    int too_big;
    struct MHD_Connection *conn;
    const ee_principal *principal;
    int call;           /* CALL_... */
    char *call_arg;     /* the workflow, key or execution id; the gateway's path */
    char *call_text;    /* a run's request; the gateway's method */
    header_list call_headers; /* the gateway's request headers */
    strbuf call_query;  /* the gateway's query, re-encoded */
    atomic_int call_phase; /* 0 none, 1 running, 2 ended: call_status, call_out, call_error */
    pthread_mutex_t call_lock; /* held by start_call() until the connection is suspended */
    ee_status call_status;
    char *call_out;     /* the library's document */
    char *call_error;   /* the call thread's ee_error_last_json() */
    gw_answer call_gw;  /* the gateway's answer */
    /* Shared by the connection and its call's thread, under gw_lock: rs
     * lives until both let go (refs), since a streamed gateway answer's
     * connection may end while the provider's call still runs. */
    pthread_mutex_t gw_lock;
    pthread_cond_t gw_drained; /* the reader took bytes, or the client went away */
    int refs;           /* the connection's, and its call thread's while it runs */
    bool gw_stream;     /* the gateway's head said text/event-stream: relayed as it comes */
    bool gw_done;       /* ee_gateway_handle() returned: the stream ends once sent */
    bool gw_failed;     /* a chunk could not be kept (out of memory): the stream ends cut */
    bool gw_gone;       /* the connection ended: the sink stops the provider's call */
    bool gw_waiting;    /* gw_read() suspended the connection for want of data */
    const token_entry *who; /* the bearer token's entry, checked with the head */
    uint64_t start_ns;  /* when the request's head arrived (latency histogram) */
    int family;         /* its route family (FAM_...) */
} req_state;

static token_entry g_tokens[MAX_TOKENS];
static size_t g_ntokens;
static ee_engine *g_engine;
static volatile sig_atomic_t g_stop;
static atomic_int g_active;
/* Calls waiting on threads of their own (start_call()), counted apart for
 * the gateway ([1]) and for the other routes ([0]), at most g_calls_max
 * (EE_SERVER_MAX_CALLS) of each; past that such a request is answered 503
 * with Retry-After, never run on a pool worker. Apart, because a run
 * waiting on n8n needs its workflow's gateway calls to go through: runs
 * filling the bound must not refuse them. */
static atomic_int g_call_threads[2];
static int g_calls_max = DEFAULT_MAX_CALLS;
/* The answer when memory runs out, rendered at start. */
static char *g_enomem_body;
/* Answers given, by HTTP status (the server's own figure for /metrics). */
static atomic_ulong g_answers[600];

/* ---- the server's own metrics (rendered by /metrics) --------------------- */

/* Route families of the request latency histogram. */
enum {
    FAM_HEALTHZ, FAM_CATALOG, FAM_EXECUTE, FAM_EXECUTIONS, FAM_API_KEYS, FAM_USAGE,
    FAM_BILLING, FAM_ADMIN, FAM_V1, FAM_GATEWAY, FAM_CALLBACK, FAM_METRICS, FAM_OTHER,
    FAM_COUNT
};
static const char *const g_family_names[FAM_COUNT] = {
    "healthz", "catalog", "execute", "executions", "api_keys", "usage", "billing",
    "admin", "v1", "gateway", "callback", "metrics", "other"};
/* Upper bounds of the latency buckets (seconds); one more bucket is +Inf. */
static const double g_buckets[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                   0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
#define NBUCKETS (sizeof g_buckets / sizeof g_buckets[0])
static atomic_ulong g_lat_bucket[FAM_COUNT][NBUCKETS + 1]; /* not cumulative */
static atomic_ullong g_lat_sum_ns[FAM_COUNT];

/* A counter by two label values, for values the server learns at run time
 * (an error status, a quota name, a gateway provider). At most LC_MAX
 * pairs; past that everything counts as ("other", "other"), so a client
 * cannot grow the table. */
#define LC_MAX 64
#define LC_VALUE_MAX 64
typedef struct {
    pthread_mutex_t lock;
    size_t n;
    struct {
        char a[LC_VALUE_MAX];
        char b[LC_VALUE_MAX];
        unsigned long count;
    } e[LC_MAX];
} label_counter;

/* Execute requests by outcome; refusals (429, 402) by status and quota;
 * gateway requests by provider and HTTP status. */
static label_counter g_execute = {.lock = PTHREAD_MUTEX_INITIALIZER};
static label_counter g_refusals = {.lock = PTHREAD_MUTEX_INITIALIZER};
static label_counter g_gateway = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void lc_add(label_counter *t, const char *a, const char *b)
{
    pthread_mutex_lock(&t->lock);
    size_t i;
    for (i = 0; i < t->n; i++)
        if (strncmp(t->e[i].a, a, LC_VALUE_MAX - 1) == 0 &&
            strncmp(t->e[i].b, b, LC_VALUE_MAX - 1) == 0)
            break;
    if (i == t->n) {
        if (t->n >= LC_MAX - 1) { /* full but for ("other", "other") */
            a = "other";
            b = "other";
            for (i = 0; i < t->n; i++)
                if (strcmp(t->e[i].a, "other") == 0 && strcmp(t->e[i].b, "other") == 0)
                    break;
        }
        if (i == t->n) {
            snprintf(t->e[i].a, LC_VALUE_MAX, "%s", a);
            snprintf(t->e[i].b, LC_VALUE_MAX, "%s", b);
            t->e[i].count = 0;
            t->n++;
        }
    }
    t->e[i].count++;
    pthread_mutex_unlock(&t->lock);
}

static int has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static int family_of(const char *url)
{
    if (strcmp(url, "/healthz") == 0)
        return FAM_HEALTHZ;
    if (has_prefix(url, "/gateway/"))
        return FAM_GATEWAY;
    if (strcmp(url, "/_ee/callback") == 0)
        return FAM_CALLBACK;
    if (strcmp(url, "/metrics") == 0)
        return FAM_METRICS;
    if (has_prefix(url, "/api/engines/catalog"))
        return FAM_CATALOG;
    if (has_prefix(url, "/api/engines/execute/") ||
        (has_prefix(url, "/api/engines/workflows/") && strlen(url) > 8 &&
         strcmp(url + strlen(url) - 8, "/execute") == 0))
        return FAM_EXECUTE;
    if (has_prefix(url, "/api/engines/executions"))
        return FAM_EXECUTIONS;
    if (has_prefix(url, "/api/engines/api-keys"))
        return FAM_API_KEYS;
    if (has_prefix(url, "/api/engines/usage/") || has_prefix(url, "/api/v1/usage/"))
        return FAM_USAGE;
    if (has_prefix(url, "/api/engines/billing/"))
        return FAM_BILLING;
    if (has_prefix(url, "/api/admin/"))
        return FAM_ADMIN;
    if (has_prefix(url, "/api/v1/"))
        return FAM_V1;
    return FAM_OTHER;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void observe_latency(int family, uint64_t ns)
{
    double s = (double)ns / 1e9;
    size_t b = 0;
    while (b < NBUCKETS && s > g_buckets[b])
        b++;
    atomic_fetch_add(&g_lat_bucket[family][b], 1);
    atomic_fetch_add(&g_lat_sum_ns[family], ns);
}

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

/* ---- tokens ------------------------------------------------------------ */

static int token_field(json_t *entry, const char *key, char *buf, size_t cap, int required,
                       size_t index)
{
    json_t *v = json_object_get(entry, key);
    if (v == NULL && !required) {
        buf[0] = '\0';
        return 0;
    }
    const char *s = json_string_value(v);
    if (s == NULL || *s == '\0' || strlen(s) >= cap) {
        fprintf(stderr,
                "execengine-server: EE_SERVER_TOKENS: /tokens/%zu/%s must be a non-empty "
                "string shorter than %zu bytes\n",
                index, key, cap);
        return -1;
    }
    memcpy(buf, s, strlen(s) + 1);
    return 0;
}

static int load_entry(json_t *entry, size_t i)
{
    token_entry *t = &g_tokens[g_ntokens];
    char role[16];
    if (!json_is_object(entry)) {
        fprintf(stderr, "execengine-server: EE_SERVER_TOKENS: /tokens/%zu must be an object\n",
                i);
        return -1;
    }
    if (token_field(entry, "token", t->token, sizeof t->token, 1, i) != 0 ||
        token_field(entry, "workspaceId", t->workspace, sizeof t->workspace, 1, i) != 0 ||
        token_field(entry, "userId", t->user, sizeof t->user, 1, i) != 0 ||
        token_field(entry, "orgId", t->org, sizeof t->org, 0, i) != 0 ||
        token_field(entry, "role", role, sizeof role, 0, i) != 0)
        return -1;
    if (role[0] != '\0' && strcmp(role, "user") != 0 && strcmp(role, "admin") != 0) {
        fprintf(stderr,
                "execengine-server: EE_SERVER_TOKENS: /tokens/%zu/role must be \"user\" or "
                "\"admin\"\n",
                i);
        return -1;
    }
    t->admin = strcmp(role, "admin") == 0;
    ee_status st = ee_principal_new(&t->principal, t->workspace, t->user,
                                    t->org[0] ? t->org : NULL);
    if (st != EE_OK) {
        fprintf(stderr, "execengine-server: EE_SERVER_TOKENS: /tokens/%zu: %s\n", i,
                ee_error_last_message());
        return -1;
    }
    g_ntokens++;
    return 0;
}

/* Read the tokens file with jansson; every problem is named on stderr. */
static int load_tokens(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "execengine-server: EE_SERVER_TOKENS: cannot open %s: %s\n", path,
                strerror(errno));
        return -1;
    }
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || sb.st_size > MAX_TOKENS_FILE) {
        fprintf(stderr, "execengine-server: EE_SERVER_TOKENS: %s is over %d bytes\n", path,
                MAX_TOKENS_FILE);
        fclose(f);
        return -1;
    }
    json_error_t jerr;
    json_t *doc = json_loadf(f, JSON_REJECT_DUPLICATES, &jerr);
    fclose(f);
    if (doc == NULL) {
        fprintf(stderr, "execengine-server: EE_SERVER_TOKENS: %s: line %d: %s\n", path,
                jerr.line, jerr.text);
        return -1;
    }
    json_t *list = json_object_get(doc, "tokens");
    if (!json_is_array(list) || json_array_size(list) > MAX_TOKENS) {
        fprintf(stderr,
                "execengine-server: EE_SERVER_TOKENS: /tokens must be an array of at most %d "
                "entries\n",
                MAX_TOKENS);
        json_decref(doc);
        return -1;
    }
    size_t i;
    json_t *entry;
    json_array_foreach(list, i, entry)
    {
        if (load_entry(entry, i) != 0) {
            json_decref(doc);
            return -1;
        }
    }
    json_decref(doc);
    return 0;
}

static void free_tokens(void)
{
    for (size_t i = 0; i < g_ntokens; i++)
        ee_principal_free(g_tokens[i].principal);
    g_ntokens = 0;
}

/* Every entry compared in full, whatever matches: time does not depend on
 * which entry (or which byte of it) matched. */
static const token_entry *find_token(const char *given)
{
    const token_entry *found = NULL;
    size_t glen = strlen(given);
    for (size_t i = 0; i < g_ntokens; i++) {
        const char *t = g_tokens[i].token;
        size_t tlen = strlen(t);
        unsigned char diff = (unsigned char)(glen != tlen);
        for (size_t k = 0; k < tlen; k++)
            diff |= (unsigned char)(t[k] ^ (k < glen ? given[k] : 0));
        if (diff == 0)
            found = &g_tokens[i];
    }
    return found;
}

/* ---- answers ------------------------------------------------------------ */

/* One table: library status -> HTTP status. */
static unsigned http_of(ee_status st)
{
    switch (st) {
    case EE_OK: return 200;
    case EE_EINVAL: case EE_EPARSE: case EE_EVALIDATION: return 400;
    case EE_EAUTH: return 401;
    case EE_EPERM: return 403;
    case EE_ENOTFOUND: return 404;
    case EE_EEXISTS: case EE_ECONFLICT: case EE_ESTATE: case EE_ECANCELLED: return 409;
    case EE_ETOOBIG: return 413;
    case EE_ECREDENTIALS: return 422;
    case EE_ESPEND: return 402;
    case EE_EQUOTA: case EE_ERATELIMIT: case EE_ECONCURRENCY: case EE_EBUSY: return 429;
    case EE_ENOTSUPPORTED: return 501;
    case EE_ENETWORK: case EE_EUPSTREAM: return 502;
    case EE_EUNKNOWN: return 503;
    case EE_ETIMEOUT: return 504;
    default: return 500;
    }
}

static enum MHD_Result queue(struct MHD_Connection *c, unsigned code, struct MHD_Response *r)
{
    if (code < 600)
        atomic_fetch_add(&g_answers[code], 1);
    enum MHD_Result ret = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result send_text(struct MHD_Connection *c, unsigned code, const char *body,
                                 const char *ctype, const char *hname, const char *hvalue)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)body,
                                                             MHD_RESPMEM_MUST_COPY);
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", ctype);
    if (hname != NULL)
        MHD_add_response_header(r, hname, hvalue);
    return queue(c, code, r);
}

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned code, const char *body)
{
    return send_text(c, code, body, "application/json", NULL, NULL);
}

/* Send a document built with jansson (reference stolen). */
static enum MHD_Result send_doc_h(struct MHD_Connection *c, unsigned code, json_t *doc,
                                  const char *hname, const char *hvalue)
{
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (text == NULL)
        return send_json(c, 500, g_enomem_body);
    enum MHD_Result r = send_text(c, code, text, "application/json", hname, hvalue);
    free(text);
    return r;
}

static enum MHD_Result send_doc(struct MHD_Connection *c, unsigned code, json_t *doc)
{
    return send_doc_h(c, code, doc, NULL, NULL);
}

static enum MHD_Result send_error(struct MHD_Connection *c, unsigned code, const char *status,
                                  const char *message)
{
    return send_doc(c, code,
                    json_pack("{s:{s:s, s:s}}", "error", "status", status, "message", message));
}

/*
 * A failed call: {"error": {"status", "message", ...detail}} from this
 * thread's error detail, with Retry-After on 429. `record` (may be NULL):
 * the execution a failed run left, added as "execution".
 */
static enum MHD_Result send_failure_from(struct MHD_Connection *c, ee_status st,
                                        const char *record, const char *last)
{
    json_t *err = json_object();
    json_t *ldoc = last != NULL ? json_loads(last, 0, NULL) : NULL;
    json_t *lerr = json_object_get(ldoc, "error");
    const char *lname = json_string_value(json_object_get(lerr, "name"));
    const char *msg = json_string_value(json_object_get(lerr, "message"));
    int same = lname != NULL && strcmp(lname, ee_status_name(st)) == 0;
    json_t *detail = same ? json_object_get(lerr, "detail") : NULL;
    if (json_is_object(detail))
        json_object_update(err, detail);
    json_object_set_new(err, "status", json_string(ee_status_name(st)));
    json_object_set_new(err, "message", json_string(same && msg ? msg : ee_strerror(st)));
    if (record != NULL) {
        json_t *rec = json_loads(record, 0, NULL);
        if (json_is_object(rec) && json_object_get(rec, "error") == NULL)
            json_object_set(err, "execution", rec);
        json_decref(rec);
    }
    unsigned code = http_of(st);
    if (code == 429 || code == 402) {
        const char *quota = json_string_value(json_object_get(err, "quota"));
        lc_add(&g_refusals, ee_status_name(st), quota ? quota : "");
    }
    char retry[32] = "";
    if (code == 429) {
        json_int_t ms = json_integer_value(json_object_get(detail, "retryAfterMs"));
        long long s = ms > 0 ? (ms + 999) / 1000 : 1;
        snprintf(retry, sizeof retry, "%lld", s);
    }
    json_decref(ldoc);
    return send_doc_h(c, code, json_pack("{s:o}", "error", err), retry[0] ? "Retry-After" : NULL,
                      retry);
}

/* As send_failure_from() with this thread's error detail. */
static enum MHD_Result send_failure(struct MHD_Connection *c, ee_status st, const char *record)
{
    char *last = NULL;
    if (ee_error_last_json(&last) != EE_OK)
        last = NULL;
    enum MHD_Result r = send_failure_from(c, st, record, last);
    ee_free(last);
    return r;
}

/* The answer of a library call that renders its document into *outp (the
 * address, read after the call: argument order is unspecified in C). */
static enum MHD_Result answer(struct MHD_Connection *c, ee_status st, char **outp, unsigned ok)
{
    char *out = *outp;
    *outp = NULL;
    enum MHD_Result r = st == EE_OK ? send_json(c, ok, out ? out : "{}") : send_failure(c, st, NULL);
    ee_free(out);
    return r;
}

/* ---- request helpers ---------------------------------------------------- */

/* The body as a JSON object ({} when empty); NULL after answering 400
 * (413 nested too deep). The message says what is wrong and at which byte,
 * never the text there (jansson's "near '...'" may quote a key). */
static json_t *body_object(struct MHD_Connection *c, req_state *rs, enum MHD_Result *ret)
{
    if (rs->len == 0)
        return json_object();
    json_error_t jerr;
    json_t *doc = json_loadb(rs->body, rs->len, JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL) {
        char *near = strstr(jerr.text, " near '");
        if (near != NULL)
            *near = '\0';
        int deep = json_error_code(&jerr) == json_error_stack_overflow;
        char msg[JSON_ERROR_TEXT_LENGTH + 64];
        snprintf(msg, sizeof msg, "the request body is not JSON: %s at byte %d", jerr.text,
                 jerr.position);
        *ret = send_error(c, deep ? 413 : 400, deep ? "EE_ETOOBIG" : "EE_EPARSE", msg);
        return NULL;
    }
    if (!json_is_object(doc)) {
        json_decref(doc);
        *ret = send_error(c, 400, "EE_EINVAL", "the request body must be a JSON object");
        return NULL;
    }
    return doc;
}

/* The body as text for a library call ("{}" when empty); NUL-terminated. */
static const char *body_text(req_state *rs)
{
    return rs->len ? rs->body : "{}";
}

/* Query arguments named in `keys` as a JSON object; "limit", "from" and
 * "to" as numbers when they are ones (else as text, for the library to refuse by name). NULL
 * when an argument is not UTF-8 (or memory ran out). */
static char *query_json(struct MHD_Connection *c, const char *const *keys, json_t *base)
{
    json_t *q = base ? base : json_object();
    for (size_t i = 0; keys[i] != NULL; i++) {
        const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, keys[i]);
        if (v == NULL)
            continue;
        char *end = NULL;
        errno = 0;
        long long n = strtoll(v, &end, 10);
        /* out of range: as text too (strtoll's clamped LLONG_MAX is not
         * what the client sent) */
        int numeric = (strcmp(keys[i], "limit") == 0 || strcmp(keys[i], "from") == 0 ||
                       strcmp(keys[i], "to") == 0) && errno != ERANGE;
        json_t *jv = (numeric && *v && *end == '\0') ? json_integer(n) : json_string(v);
        if (jv == NULL || json_object_set_new(q, keys[i], jv) != 0) {
            json_decref(q);
            return NULL;
        }
    }
    char *text = json_dumps(q, JSON_COMPACT);
    json_decref(q);
    return text;
}

static int is(const char *method, const char *want)
{
    return strcmp(method, want) == 0;
}

/* ---- routes -------------------------------------------------------------- */

/* The catalog as `p` sees it (NULL: the admin's view, inactive entries too). */
static enum MHD_Result route_catalog(struct MHD_Connection *c, const ee_principal *p)
{
    static const char *const keys[] = {"q", "category", "limit", "cursor", NULL};
    const char *q = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "q");
    json_t *base = p ? NULL : json_pack("{s:b}", "includeInactive", 1);
    char *qtext = query_json(c, keys, base);
    if (qtext == NULL)
        return send_error(c, 400, "EE_EINVAL", "query arguments must be UTF-8 text");
    char *out = NULL;
    ee_status st = q ? ee_catalog_search(g_engine, p, qtext, &out)
                     : ee_catalog_list(g_engine, p, qtext, &out);
    free(qtext);
    return answer(c, st, &out, 200);
}

static ee_status gateway_call(req_state *rs);
static enum MHD_Result gateway_answer(struct MHD_Connection *c, req_state *rs);
static int gateway_stream_end(req_state *rs);

/* Free a request's state once nobody holds it. */
static void rs_free(req_state *rs)
{
    free(rs->body);
    free(rs->call_arg);
    free(rs->call_text);
    for (size_t i = 0; i < rs->call_headers.n; i++)
        free(rs->call_headers.lines[i]);
    free(rs->call_headers.lines);
    free(rs->call_query.buf);
    ee_free(rs->call_out);
    ee_free(rs->call_error);
    for (size_t i = 0; i < rs->call_gw.n_headers; i++)
        free(rs->call_gw.headers[i]);
    free(rs->call_gw.headers);
    free(rs->call_gw.body.buf);
    pthread_mutex_destroy(&rs->call_lock);
    pthread_mutex_destroy(&rs->gw_lock);
    pthread_cond_destroy(&rs->gw_drained);
    free(rs);
}

/* Let go of rs (the connection, or its call's thread): the last frees it. */
static void rs_release(req_state *rs)
{
    pthread_mutex_lock(&rs->gw_lock);
    int left = --rs->refs;
    pthread_mutex_unlock(&rs->gw_lock);
    if (left == 0)
        rs_free(rs);
}

static void *call_thread(void *arg)
{
    req_state *rs = arg;
    char *out = NULL;
    ee_status st;
    switch (rs->call) {
    case CALL_RUN:
        st = ee_exec_run(g_engine, rs->principal, rs->call_arg, rs->call_text, &out);
        break;
    case CALL_VALIDATE:
        st = ee_cred_key_validate(g_engine, rs->principal, rs->call_arg, &out);
        break;
    case CALL_SYNC:
        st = ee_catalog_sync(g_engine, &out);
        break;
    case CALL_CANCEL:
        st = ee_exec_cancel(g_engine, rs->principal, rs->call_arg);
        if (st == EE_OK)
            st = ee_exec_get(g_engine, rs->principal, rs->call_arg, &out);
        break;
    default:
        st = gateway_call(rs);
        break;
    }
    atomic_int *slots = &g_call_threads[rs->call == CALL_GATEWAY];
    if (rs->call == CALL_GATEWAY && gateway_stream_end(rs)) {
        /* A stream: its head went out already and its connection is the
         * content reader's, which sends the rest and the end. */
        ee_error_clear();
        rs_release(rs);
        atomic_fetch_sub(slots, 1);
        return NULL;
    }
    char *last = NULL;
    if (st != EE_OK && ee_error_last_json(&last) != EE_OK)
        last = NULL;
    rs->call_status = st;
    rs->call_out = out;
    rs->call_error = last;
    struct MHD_Connection *c = rs->conn;
    atomic_store(&rs->call_phase, 2);
    pthread_mutex_lock(&rs->call_lock); /* start_call() has suspended it */
    pthread_mutex_unlock(&rs->call_lock);
    /* Not the last holder: the connection is suspended, so it has not
     * ended. Once resumed, the request (and rs) may end on a pool thread:
     * rs is not touched after this. The count drops after it, so that
     * shutdown never stops the daemon with this connection still
     * suspended. */
    rs_release(rs);
    MHD_resume_connection(c);
    atomic_fetch_sub(slots, 1);
    return NULL;
}

/* 503 with Retry-After: no room for another waiting call. */
static enum MHD_Result send_busy(struct MHD_Connection *c)
{
    return send_doc_h(c, 503,
                      json_pack("{s:{s:s, s:s}}", "error", "status", "EE_EBUSY", "message",
                                "too many requests are waiting on n8n or a provider; retry "
                                "later"),
                      "Retry-After", "1");
}

/*
 * Run the call `kind` (its arguments already in rs->call_*) on a thread of
 * its own and suspend the connection; call_answer() answers it on a pool
 * thread once it ended. A library call that waits on n8n or a provider
 * would otherwise hold one of the pool's 4 workers for as long as the
 * upstream takes. Past g_calls_max waiting calls of its kind (gateway or
 * not), or when no thread can be made, the request is answered 503 with
 * Retry-After instead (it is never run on the pool worker). Returns what
 * the handler returns.
 */
static enum MHD_Result start_call(struct MHD_Connection *c, req_state *rs, int kind,
                                  const ee_principal *p)
{
    atomic_int *slots = &g_call_threads[kind == CALL_GATEWAY];
    if (atomic_fetch_add(slots, 1) >= g_calls_max) {
        atomic_fetch_sub(slots, 1);
        return send_busy(c);
    }
    rs->conn = c;
    rs->principal = p;
    rs->call = kind;
    atomic_store(&rs->call_phase, 1);
    pthread_mutex_lock(&rs->gw_lock);
    rs->refs++; /* the thread's */
    pthread_mutex_unlock(&rs->gw_lock);
    /* The thread resumes the connection only after it is suspended here. */
    pthread_mutex_lock(&rs->call_lock);
    pthread_attr_t attr;
    pthread_t t;
    int ok = pthread_attr_init(&attr) == 0;
    if (ok) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        ok = pthread_create(&t, &attr, call_thread, rs) == 0;
        pthread_attr_destroy(&attr);
    }
    if (!ok) {
        pthread_mutex_unlock(&rs->call_lock);
        rs_release(rs); /* the connection's is left */
        atomic_store(&rs->call_phase, 0);
        rs->call = CALL_NONE;
        atomic_fetch_sub(slots, 1);
        return send_busy(c);
    }
    MHD_suspend_connection(c);
    pthread_mutex_unlock(&rs->call_lock);
    return MHD_YES;
}

/* Count an execute request's outcome: "completed" for a synchronous run
 * that succeeded (ee_exec_run() answers EE_OK only then), "accepted" for
 * an asynchronous one, else the refusal's or failure's status name. */
static void count_execute(ee_status st, int async)
{
    lc_add(&g_execute, st != EE_OK ? ee_status_name(st) : async ? "accepted" : "completed", "");
}

/* The answer of a call that ended on its own thread. A failed run's
 * document is the record it left, added to the error as "execution". */
static enum MHD_Result call_answer(struct MHD_Connection *c, req_state *rs)
{
    if (rs->call == CALL_GATEWAY)
        return gateway_answer(c, rs);
    if (rs->call == CALL_RUN)
        count_execute(rs->call_status, 0);
    if (rs->call_status == EE_OK)
        return send_json(c, 200, rs->call_out ? rs->call_out : "{}");
    return send_failure_from(c, rs->call_status, rs->call == CALL_RUN ? rs->call_out : NULL,
                             rs->call_error);
}

/* A refusal of the server's own about one member of the request: 400
 * EE_EINVAL in the shape of the library's schema violations, "errors":
 * [{"instancePath", "keyword", "message"}], so that a client reads every
 * field-level 400 the same way. */
static enum MHD_Result send_invalid(struct MHD_Connection *c, const char *message,
                                   const char *pointer, const char *keyword, const char *what)
{
    return send_doc(c, 400,
                    json_pack("{s:{s:s, s:s, s:[{s:s, s:s, s:s}]}}", "error", "status",
                              "EE_EINVAL", "message", message, "errors", "instancePath", pointer,
                              "keyword", keyword, "message", what));
}

/* The optional string member `name` of body `req` into *out (NULL when
 * absent); -1 when it is there and not a string: *ret holds the 400 (naming
 * "/name") and req is released. */
static int string_member(struct MHD_Connection *c, json_t *req, const char *name,
                         const char **out, enum MHD_Result *ret)
{
    json_t *v = json_object_get(req, name);
    *out = json_string_value(v);
    if (v == NULL || json_is_string(v))
        return 0;
    char pointer[64], message[96];
    snprintf(pointer, sizeof pointer, "/%s", name);
    snprintf(message, sizeof message, "%s: must be a string", pointer);
    json_decref(req);
    *ret = send_invalid(c, message, pointer, "type", "must be a string");
    return -1;
}

/* POST execute: {"parameters", "useCustomApiKey", "apiKeyId", "idempotencyKey",
 * "timeoutMs", "async": bool}. Sync: 200 with the final record; async: 202. */
static enum MHD_Result route_execute(struct MHD_Connection *c, const token_entry *who,
                                     req_state *rs, const char *workflow)
{
    enum MHD_Result ret = MHD_NO;
    json_t *req = body_object(c, rs, &ret);
    if (req == NULL)
        return ret;
    json_t *jasync = json_object_get(req, "async");
    if (jasync != NULL && !json_is_boolean(jasync)) {
        json_decref(req);
        return send_invalid(c, "/async: must be true or false", "/async", "type",
                            "must be a boolean");
    }
    int async = json_is_true(jasync);
    json_object_del(req, "async");
    char *text = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    if (text == NULL)
        return send_error(c, 500, "EE_ENOMEM", "out of memory");
    if (!async) {
        rs->call_text = text;
        rs->call_arg = strdup(workflow);
        if (rs->call_arg == NULL)
            return send_error(c, 500, "EE_ENOMEM", "out of memory");
        return start_call(c, rs, CALL_RUN, who->principal);
    }
    char id[EE_EXEC_ID_SIZE];
    ee_status st = ee_exec_submit(g_engine, who->principal, workflow, text, NULL, NULL, id);
    free(text);
    count_execute(st, 1);
    if (st != EE_OK)
        return send_failure(c, st, NULL);
    char location[96];
    snprintf(location, sizeof location, "/api/engines/executions/%s", id);
    return send_doc_h(c, 202, json_pack("{s:s, s:s}", "executionId", id, "location", location),
                      "Location", location);
}

static enum MHD_Result route_executions(struct MHD_Connection *c, const token_entry *who,
                                        req_state *rs, const char *method, char **seg,
                                        size_t n)
{
    ee_principal *p = who->principal;
    char *out = NULL;
    if (n == 3) {
        static const char *const keys[] = {"workflowId", "status", "userId", "limit", "cursor",
                                           NULL};
        if (!is(method, "GET"))
            return send_error(c, 404, "EE_ENOTFOUND", "no such route");
        char *q = query_json(c, keys, NULL);
        if (q == NULL)
            return send_error(c, 400, "EE_EINVAL", "query arguments must be UTF-8 text");
        ee_status st = ee_exec_list(g_engine, p, q, &out);
        free(q);
        return answer(c, st, &out, 200);
    }
    const char *id = seg[3];
    if (n == 4 && is(method, "GET"))
        return answer(c, ee_exec_get(g_engine, p, id, &out), &out, 200);
    if (n == 5 && is(method, "GET") && strcmp(seg[4], "results") == 0)
        return answer(c, ee_exec_results(g_engine, p, id, &out), &out, 200);
    if (n == 5 && is(method, "GET") && strcmp(seg[4], "cost") == 0)
        return answer(c, ee_exec_cost(g_engine, p, id, &out), &out, 200);
    if (n == 5 && is(method, "POST") && strcmp(seg[4], "cancel") == 0) {
        /* cancelling a running execution asks n8n to stop it */
        rs->call_arg = strdup(id);
        if (rs->call_arg == NULL)
            return send_error(c, 500, "EE_ENOMEM", "out of memory");
        return start_call(c, rs, CALL_CANCEL, p);
    }
    /* queued for the outbox: 202, delivery follows (emailSent on the record) */
    if (n == 5 && is(method, "POST") && strcmp(seg[4], "email") == 0)
        return answer(c, ee_email_send_execution(g_engine, p, id, rs->len ? body_text(rs) : NULL,
                                                 &out),
                      &out, 202);
    return send_error(c, 404, "EE_ENOTFOUND", "no such route");
}

static enum MHD_Result route_api_keys(struct MHD_Connection *c, const token_entry *who,
                                      req_state *rs, const char *method, char **seg,
                                      size_t n)
{
    ee_principal *p = who->principal;
    char *out = NULL;
    if (n == 3 && is(method, "GET"))
        return answer(c, ee_cred_key_list(g_engine, p, &out), &out, 200);
    if (n == 3 && is(method, "POST"))
        return answer(c, ee_cred_key_add(g_engine, p, body_text(rs), &out), &out, 201);
    if (n == 4 && is(method, "GET"))
        return answer(c, ee_cred_key_get(g_engine, p, seg[3], &out), &out, 200);
    if (n == 4 && (is(method, "PUT") || is(method, "PATCH")))
        return answer(c, ee_cred_key_update(g_engine, p, seg[3], body_text(rs), &out), &out, 200);
    if (n == 4 && is(method, "DELETE")) {
        ee_status st = ee_cred_key_delete(g_engine, p, seg[3]);
        if (st != EE_OK)
            return send_failure(c, st, NULL);
        return send_doc(c, 200, json_pack("{s:s, s:b}", "id", seg[3], "deleted", 1));
    }
    if (n == 5 && is(method, "POST") && strcmp(seg[4], "validate") == 0) {
        /* asks the provider */
        rs->call_arg = strdup(seg[3]);
        if (rs->call_arg == NULL)
            return send_error(c, 500, "EE_ENOMEM", "out of memory");
        return start_call(c, rs, CALL_VALIDATE, p);
    }
    return send_error(c, 404, "EE_ENOTFOUND", "no such route");
}

/*
 * Admin routes acting on one workspace named by ?workspaceId= (&orgId=,
 * default the workspace): op 0 usage analytics (ee_billing_analytics),
 * 1 billing history, 2 close a month / mark it paid, 3 export a month
 * (?format=json|csv), 4 the audit log (without workspaceId: the
 * platform's own entries).
 */
static enum MHD_Result route_admin_workspace(struct MHD_Connection *c, const token_entry *who,
                                             int op, const char *month, const char *verb)
{
    static const char *const analytics_keys[] = {"from", "to", "granularity", NULL};
    static const char *const history_keys[] = {"status", "limit", "cursor", NULL};
    static const char *const audit_keys[] = {"from", "to", "action", "limit", "cursor", NULL};
    const char *ws = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "workspaceId");
    const char *org = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "orgId");
    ee_principal *p = NULL;
    if (ws == NULL && op != 4)
        return send_invalid(c, "/workspaceId: the query argument is required", "/workspaceId",
                            "required", "required query argument");
    if (ws != NULL) {
        ee_status st = ee_principal_new(&p, ws, who->user, org && *org ? org : NULL);
        if (st != EE_OK)
            return send_failure(c, st, NULL);
    }
    const char *const *keys = op == 0 ? analytics_keys : op == 4 ? audit_keys : history_keys;
    char *q = op == 0 || op == 1 || op == 4 ? query_json(c, keys, NULL) : NULL;
    char *out = NULL;
    ee_status st = EE_OK;
    enum MHD_Result ret;
    if ((op == 0 || op == 1 || op == 4) && q == NULL) {
        ret = send_error(c, 400, "EE_EINVAL", "query arguments must be UTF-8 text");
        goto done;
    }
    switch (op) {
    case 0: st = ee_billing_analytics(g_engine, p, q, &out); break;
    case 1: st = ee_billing_history(g_engine, p, q, &out); break;
    case 2:
        st = strcmp(verb, "close") == 0 ? ee_billing_close_month(g_engine, p, month, &out)
                                        : ee_billing_mark_paid(g_engine, p, month, &out);
        break;
    case 3: {
        const char *format = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "format");
        if (format == NULL)
            format = "json";
        st = ee_billing_export(g_engine, p, month, format, &out);
        if (st == EE_OK && strcmp(format, "csv") == 0) {
            char disp[96];
            snprintf(disp, sizeof disp, "attachment; filename=\"billing-%.16s.csv\"", month);
            ret = send_text(c, 200, out ? out : "", "text/csv; charset=utf-8",
                            "Content-Disposition", disp);
            ee_free(out);
            goto done;
        }
        break;
    }
    default: st = ee_audit_query(g_engine, p, q, &out); break;
    }
    ret = answer(c, st, &out, 200);
done:
    free(q);
    ee_principal_free(p);
    return ret;
}

/* E-mail templates, one per workflow (admin): GET .../email-templates
 * [?isActive=&limit=&cursor=], GET/PUT/DELETE .../email-templates/{workflowId}
 * (PUT's body: {"subjectTemplate", "bodyTemplate", "isActive"}; the
 * workflow comes from the path). */
static enum MHD_Result route_email_templates(struct MHD_Connection *c, req_state *rs,
                                             const char *method, char **seg, size_t n)
{
    char *out = NULL;
    enum MHD_Result ret = MHD_NO;
    if (n == 4 && is(method, "GET")) {
        static const char *const keys[] = {"limit", "cursor", NULL};
        json_t *base = json_object();
        const char *active = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "isActive");
        if (base != NULL && active != NULL) {
            if (strcmp(active, "true") != 0 && strcmp(active, "false") != 0) {
                json_decref(base);
                return send_error(c, 400, "EE_EINVAL", "isActive must be true or false");
            }
            json_object_set_new(base, "isActive", json_boolean(strcmp(active, "true") == 0));
        }
        char *q = base != NULL ? query_json(c, keys, base) : NULL;
        if (q == NULL)
            return send_error(c, 400, "EE_EINVAL", "query arguments must be UTF-8 text");
        ee_status st = ee_email_template_list(g_engine, NULL, q, &out);
        free(q);
        return answer(c, st, &out, 200);
    }
    if (n != 5)
        return send_error(c, 404, "EE_ENOTFOUND", "no such route");
    if (is(method, "GET"))
        return answer(c, ee_email_template_get(g_engine, NULL, seg[4], &out), &out, 200);
    if (is(method, "DELETE")) {
        ee_status st = ee_email_template_delete(g_engine, NULL, seg[4]);
        if (st != EE_OK)
            return send_failure(c, st, NULL);
        return send_doc(c, 200, json_pack("{s:s, s:b}", "workflowCatalogId", seg[4], "deleted", 1));
    }
    if (is(method, "PUT")) {
        json_t *doc = body_object(c, rs, &ret);
        if (doc == NULL)
            return ret;
        json_t *given = json_object_get(doc, "workflowCatalogId");
        if (given != NULL && !(json_is_string(given) && strcmp(json_string_value(given), seg[4]) == 0)) {
            json_decref(doc);
            return send_error(c, 400, "EE_EINVAL",
                              "workflowCatalogId in the body differs from the path");
        }
        json_object_set_new(doc, "workflowCatalogId", json_string(seg[4]));
        char *text = json_dumps(doc, JSON_COMPACT);
        json_decref(doc);
        if (text == NULL)
            return send_error(c, 500, "EE_ENOMEM", "out of memory");
        ee_status st = ee_email_template_put(g_engine, NULL, text, &out);
        free(text);
        return answer(c, st, &out, 200);
    }
    return send_error(c, 404, "EE_ENOTFOUND", "no such route");
}

static enum MHD_Result route_admin(struct MHD_Connection *c, const token_entry *who,
                                   req_state *rs, const char *method, char **seg, size_t n)
{
    char *out = NULL;
    if (!who->admin)
        return send_error(c, 403, "EE_EPERM", "admin role required");
    if (n < 4 || strcmp(seg[2], "engines") != 0)
        return send_error(c, 404, "EE_ENOTFOUND", "no such route");
    if (strcmp(seg[3], "workflows") == 0) {
        if (n == 4 && is(method, "GET"))
            return route_catalog(c, NULL);
        if (n == 5 && is(method, "GET"))
            return answer(c, ee_catalog_get(g_engine, NULL, seg[4], EE_CATALOG_INCLUDE_INACTIVE, &out),
                          &out, 200);
        if (n == 5 && (is(method, "PUT") || is(method, "PATCH")))
            return answer(c, ee_catalog_update(g_engine, seg[4], body_text(rs), &out), &out, 200);
    } else if (strcmp(seg[3], "categories") == 0 && n == 4) {
        if (is(method, "GET"))
            return answer(c, ee_catalog_category_list(g_engine, NULL, &out), &out, 200);
        if (is(method, "POST"))
            return answer(c, ee_catalog_category_create(g_engine, body_text(rs), &out), &out, 201);
    } else if (strcmp(seg[3], "usage") == 0 && n == 4 && is(method, "GET")) {
        return route_admin_workspace(c, who, 0, NULL, NULL);
    } else if (strcmp(seg[3], "billing") == 0) {
        if (n == 4 && is(method, "GET"))
            return route_admin_workspace(c, who, 1, NULL, NULL);
        if (n == 6 && is(method, "POST") &&
            (strcmp(seg[5], "close") == 0 || strcmp(seg[5], "paid") == 0))
            return route_admin_workspace(c, who, 2, seg[4], seg[5]);
        if (n == 6 && is(method, "GET") && strcmp(seg[5], "export") == 0)
            return route_admin_workspace(c, who, 3, seg[4], NULL);
    } else if (strcmp(seg[3], "audit") == 0 && n == 4 && is(method, "GET")) {
        return route_admin_workspace(c, who, 4, NULL, NULL);
    } else if (strcmp(seg[3], "email-templates") == 0) {
        return route_email_templates(c, rs, method, seg, n);
    }
    return send_error(c, 404, "EE_ENOTFOUND", "no such route");
}

/* The hosts' API: /api/v1/... */
static enum MHD_Result route_v1(struct MHD_Connection *c, const token_entry *who,
                                req_state *rs, const char *method, char **seg, size_t n)
{
    ee_principal *p = who->principal;
    char *out = NULL;
    enum MHD_Result ret = MHD_NO;
    if (n == 4 && strcmp(seg[2], "usage") == 0 && strcmp(seg[3], "current") == 0 &&
        is(method, "GET"))
        return answer(c, ee_quota_usage(g_engine, p, &out), &out, 200);
    if (n == 4 && strcmp(seg[2], "quota") == 0 && strcmp(seg[3], "check") == 0 &&
        is(method, "POST")) {
        json_t *req = body_object(c, rs, &ret);
        if (req == NULL)
            return ret;
        /* The organisation is the token's: another one's is not found. */
        const char *org = NULL;
        if (string_member(c, req, "orgId", &org, &ret) != 0)
            return ret;
        int other = org != NULL && strcmp(org, ee_principal_org(p)) != 0;
        json_decref(req);
        if (other)
            return send_error(c, 404, "EE_ENOTFOUND", "no such organisation");
        return answer(c, ee_quota_check(g_engine, p, &out), &out, 200);
    }
    if (n == 3 && strcmp(seg[2], "credentials") == 0 && is(method, "GET")) {
        const char *ws = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "workspaceId");
        if (ws != NULL && strcmp(ws, "platform") == 0)
            return answer(c, ee_cred_platform_list(g_engine, &out), &out, 200);
        if (ws == NULL || strcmp(ws, who->workspace) == 0)
            return answer(c, ee_cred_personal_list(g_engine, p, &out), &out, 200);
        return send_error(c, 404, "EE_ENOTFOUND", "no such workspace");
    }
    if (n == 4 && strcmp(seg[2], "copilot") == 0 && strcmp(seg[3], "validate-credentials") == 0 &&
        is(method, "POST")) {
        json_t *req = body_object(c, rs, &ret);
        if (req == NULL)
            return ret;
        const char *ws = NULL;
        if (string_member(c, req, "workspaceId", &ws, &ret) != 0)
            return ret;
        if (ws != NULL && strcmp(ws, who->workspace) != 0) {
            json_decref(req);
            return send_error(c, 404, "EE_ENOTFOUND", "no such workspace");
        }
        json_t *wf = json_pack("{s:O?}", "nodeNames", json_object_get(req, "nodeNames"));
        json_decref(req);
        char *text = wf ? json_dumps(wf, JSON_COMPACT) : NULL;
        json_decref(wf);
        if (text == NULL)
            return send_error(c, 500, "EE_ENOMEM", "out of memory");
        ee_status st = ee_cred_route(g_engine, p, text, NULL, &out);
        free(text);
        return answer(c, st, &out, 200);
    }
    return send_error(c, 404, "EE_ENOTFOUND", "no such route");
}

/* GET /api/engines/usage/current: the quota usage (ee_quota_usage()) with
 * the current billing month's usage per user and workflow
 * (ee_billing_usage()) as "workflowUsage". */
static enum MHD_Result route_usage_current(struct MHD_Connection *c, const ee_principal *p)
{
    char *quota = NULL, *usage = NULL;
    ee_status st = ee_quota_usage(g_engine, p, &quota);
    if (st != EE_OK) {
        ee_free(quota);
        return send_failure(c, st, NULL);
    }
    st = ee_billing_usage(g_engine, p, NULL, &usage);
    if (st != EE_OK) {
        ee_free(quota);
        ee_free(usage);
        return send_failure(c, st, NULL);
    }
    json_t *doc = json_loads(quota, 0, NULL);
    json_t *rows = json_loads(usage, 0, NULL);
    ee_free(quota);
    ee_free(usage);
    if (!json_is_object(doc) || rows == NULL) {
        json_decref(doc);
        json_decref(rows);
        return send_error(c, 500, "EE_ERROR", "the library answered a document that is not JSON");
    }
    json_object_set_new(doc, "workflowUsage", rows);
    return send_doc(c, 200, doc);
}

/* /api/engines/... */
static enum MHD_Result route_engines(struct MHD_Connection *c, const token_entry *who,
                                     req_state *rs, const char *method, char **seg,
                                     size_t n)
{
    char *out = NULL;
    const char *what = seg[2];
    if (strcmp(what, "catalog") == 0 && n == 3 && is(method, "GET"))
        return route_catalog(c, who->principal);
    if (strcmp(what, "execute") == 0 && n == 4 && is(method, "POST"))
        return route_execute(c, who, rs, seg[3]);
    if (strcmp(what, "executions") == 0)
        return route_executions(c, who, rs, method, seg, n);
    if (strcmp(what, "api-keys") == 0)
        return route_api_keys(c, who, rs, method, seg, n);
    if (strcmp(what, "usage") == 0 && n == 4 && strcmp(seg[3], "current") == 0 &&
        is(method, "GET"))
        return route_usage_current(c, who->principal);
    if (strcmp(what, "usage") == 0 && n == 4 && strcmp(seg[3], "history") == 0 &&
        is(method, "GET")) {
        static const char *const keys[] = {"period", "userId", "limit", "cursor", NULL};
        char *q = query_json(c, keys, NULL);
        if (q == NULL)
            return send_error(c, 400, "EE_EINVAL", "query arguments must be UTF-8 text");
        ee_status st = ee_billing_usage(g_engine, who->principal, q, &out);
        free(q);
        return answer(c, st, &out, 200);
    }
    if (strcmp(what, "billing") == 0 && n == 4 && strcmp(seg[3], "current") == 0 &&
        is(method, "GET"))
        return answer(c, ee_billing_current(g_engine, who->principal, &out), &out, 200);
    if (strcmp(what, "billing") == 0 && n == 4 && strcmp(seg[3], "history") == 0 &&
        is(method, "GET")) {
        static const char *const keys[] = {"status", "limit", "cursor", NULL};
        char *q = query_json(c, keys, NULL);
        if (q == NULL)
            return send_error(c, 400, "EE_EINVAL", "query arguments must be UTF-8 text");
        ee_status st = ee_billing_history(g_engine, who->principal, q, &out);
        free(q);
        return answer(c, st, &out, 200);
    }
    if (strcmp(what, "billing") == 0 && n == 5 && strcmp(seg[3], "months") == 0 &&
        is(method, "GET"))
        return answer(c, ee_billing_month(g_engine, who->principal, seg[4], &out), &out, 200);
    if (strcmp(what, "sync-workflows") == 0 && n == 3 && (is(method, "GET") || is(method, "POST"))) {
        if (!who->admin)
            return send_error(c, 403, "EE_EPERM", "admin role required");
        return start_call(c, rs, CALL_SYNC, NULL); /* reads n8n's workflows */
    }
    if (strcmp(what, "workflows") == 0 && n == 5) {
        if (strcmp(seg[4], "execute") == 0 && is(method, "POST"))
            return route_execute(c, who, rs, seg[3]);
        if (strcmp(seg[4], "status") == 0 && is(method, "GET"))
            return answer(c, ee_catalog_get(g_engine, who->principal, seg[3], 0, &out), &out, 200);
    }
    return send_error(c, 404, "EE_ENOTFOUND", "no such route");
}

/* ---- the gateway, the callback, metrics ------------------------------------ */

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
    (void)kind;
    header_list *h = cls;
    if (value == NULL)
        value = "";
    if (h->obj != NULL) {
        json_object_set_new(h->obj, key, json_string(value));
        return MHD_YES;
    }
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 16;
        char **lines = realloc(h->lines, cap * sizeof *lines);
        if (lines == NULL)
            return MHD_NO;
        h->lines = lines;
        h->cap = cap;
    }
    size_t len = strlen(key) + strlen(value) + 3;
    char *line = malloc(len);
    if (line == NULL)
        return MHD_NO;
    snprintf(line, len, "%s: %s", key, value);
    h->lines[h->n++] = line;
    return MHD_YES;
}


static int sb_put(strbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2;
        char *nb = realloc(b->buf, cap);
        if (nb == NULL)
            return -1;
        b->buf = nb;
        b->cap = cap;
    }
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = '\0';
    return 0;
}

static void sb_printf(strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(strbuf *b, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n > 0)
        sb_put(b, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

static void sb_encode(strbuf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '_' || ch == '.' || ch == '~') {
            sb_put(b, (const char *)&ch, 1);
        } else {
            char e[3] = {'%', hex[ch >> 4], hex[ch & 15]};
            sb_put(b, e, 3);
        }
    }
}

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    (void)kind;
    strbuf *b = cls;
    if (b->len)
        sb_put(b, "&", 1);
    sb_encode(b, key);
    if (value != NULL) {
        sb_put(b, "=", 1);
        sb_encode(b, value);
    }
    return MHD_YES;
}

/* The gateway's head on the call's thread. An SSE answer (the library
 * relays it chunk by chunk as the provider sends it) is answered at once:
 * the connection is resumed to send the head, and the body follows as it
 * comes (gw_read()). Any other answer is kept whole until the call ends. */
static int gw_head(int http_status, const char *const *headers, size_t n_headers, void *payload)
{
    req_state *rs = payload;
    gw_answer *a = &rs->call_gw;
    a->status = http_status;
    a->headers = calloc(n_headers ? n_headers : 1, sizeof *a->headers);
    if (a->headers == NULL)
        return 1;
    int sse = 0;
    for (size_t i = 0; i < n_headers; i++) {
        a->headers[i] = strdup(headers[i]);
        if (a->headers[i] == NULL)
            return 1;
        a->n_headers = i + 1;
        if (strncasecmp(headers[i], "Content-Type:", 13) == 0) {
            const char *v = headers[i] + 13;
            while (*v == ' ')
                v++;
            sse = strncasecmp(v, "text/event-stream", 17) == 0;
        }
    }
    if (!sse)
        return 0;
    pthread_mutex_lock(&rs->gw_lock);
    rs->gw_stream = true;
    pthread_mutex_unlock(&rs->gw_lock);
    atomic_store(&rs->call_phase, 3);
    pthread_mutex_lock(&rs->call_lock); /* start_call() has suspended it */
    pthread_mutex_unlock(&rs->call_lock);
    /* The connection is not the thread's to resume again unless gw_read()
     * suspends it (gw_waiting). */
    MHD_resume_connection(rs->conn);
    return 0;
}

/* The most of a stream kept for a client that reads slower than the
 * provider sends; past it the call's thread waits for the client (the
 * provider's connection is not read meanwhile: TCP slows it down), at most
 * GW_STREAM_STALL_S, then the call stops as if the client had gone. */
#define GW_STREAM_BUFFER_MAX (1024 * 1024)
#define GW_STREAM_STALL_S 60

/* A chunk of the gateway's answer, on the call's thread: kept for the
 * content reader (waking the connection if the reader waits for it), or
 * the call stops when the client has gone. A stream's buffer is bounded
 * (GW_STREAM_BUFFER_MAX): a full one waits for the reader to take bytes.
 * A whole answer is bounded by the transport's response limit. */
static int gw_body(const char *chunk, size_t len, void *payload)
{
    req_state *rs = payload;
    pthread_mutex_lock(&rs->gw_lock);
    if (rs->gw_stream && rs->call_gw.body.len + len > GW_STREAM_BUFFER_MAX &&
        rs->call_gw.body.len > 0) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += GW_STREAM_STALL_S;
        while (!rs->gw_gone && rs->call_gw.body.len + len > GW_STREAM_BUFFER_MAX &&
               rs->call_gw.body.len > 0)
            if (pthread_cond_timedwait(&rs->gw_drained, &rs->gw_lock, &until) != 0) {
                /* a client that stopped reading: the provider's call stops,
                 * the stream ends cut once the kept bytes are sent */
                rs->gw_failed = true;
                break;
            }
    }
    int stop = rs->gw_gone || rs->gw_failed;
    if (!stop && sb_put(&rs->call_gw.body, chunk, len) != 0)
        stop = rs->gw_failed = true;
    bool wake = rs->gw_waiting && !rs->gw_gone;
    rs->gw_waiting = false;
    pthread_mutex_unlock(&rs->gw_lock);
    /* Outside gw_lock (no MHD lock is taken under it from this side). The
     * connection stays suspended until this: the reader is not called. */
    if (wake)
        MHD_resume_connection(rs->conn);
    return stop;
}

/* On the call's thread once ee_gateway_handle() returned: whether the
 * answer was a stream (then the content reader is told it has ended, and
 * woken if it waits). The library metered the call already. */
static int gateway_stream_end(req_state *rs)
{
    pthread_mutex_lock(&rs->gw_lock);
    int streamed = rs->gw_stream;
    bool wake = streamed && rs->gw_waiting && !rs->gw_gone;
    if (streamed) {
        rs->gw_done = true;
        rs->gw_waiting = false;
    }
    pthread_mutex_unlock(&rs->gw_lock);
    if (wake)
        MHD_resume_connection(rs->conn);
    return streamed;
}

/*
 * MHD pulls a streamed gateway answer: the bytes relayed so far, or the
 * end once the call has returned. With nothing to send yet it suspends the
 * connection and returns 0; the call's thread resumes it when a chunk (or
 * the end) arrives, and MHD then calls this again. libmicrohttpd 0.9
 * documents both halves: in internal polling mode a reader returning 0 is
 * called again at once (a pool thread busy-looping for as long as the
 * provider is silent), "returning zero should only be used in conjunction
 * with MHD_suspend_connection()", and a reader is one of the two places
 * that may suspend. Waiting on a condition here instead (as the library's
 * thread-per-connection listener does) would hold one of the pool's 4
 * threads for the whole stream. A suspended connection does not time out
 * and its client's going away is seen on the next chunk written: the
 * connection then ends (request_done()), the sink answers non-zero and the
 * library stops the provider's call. gw_lock orders suspend and resume: the
 * reader suspends under it, and the call's thread resumes (after letting go
 * of it) only a connection gw_waiting said was suspended.
 */
static ssize_t gw_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    req_state *rs = cls;
    ssize_t n;
    pthread_mutex_lock(&rs->gw_lock);
    strbuf *b = &rs->call_gw.body;
    if (b->len > 0) {
        size_t k = b->len < max ? b->len : max;
        memcpy(buf, b->buf, k);
        memmove(b->buf, b->buf + k, b->len - k);
        b->len -= k;
        n = (ssize_t)k;
        pthread_cond_broadcast(&rs->gw_drained); /* room for the provider's next chunk */
    } else if (rs->gw_done || rs->gw_failed) {
        n = rs->gw_failed ? MHD_CONTENT_READER_END_WITH_ERROR : MHD_CONTENT_READER_END_OF_STREAM;
    } else {
        rs->gw_waiting = true;
        MHD_suspend_connection(rs->conn);
        n = 0;
    }
    pthread_mutex_unlock(&rs->gw_lock);
    return n;
}

/* Headers the server sets itself, not copied from the gateway's answer. */
static int hop_header(const char *name, size_t len)
{
    static const char *const skip[] = {"content-length", "transfer-encoding", "connection",
                                       "keep-alive", NULL};
    for (size_t i = 0; skip[i] != NULL; i++)
        if (strlen(skip[i]) == len && strncasecmp(name, skip[i], len) == 0)
            return 1;
    return 0;
}

/* ANY /gateway/<provider>/<path> -> ee_gateway_handle() on a thread of its
 * own (start_call()): the provider may take minutes, and every provider
 * call of every workflow comes this way. An SSE answer is relayed as it
 * comes (gateway_stream_answer()), any other sent whole at its end
 * (gateway_answer()). */
static enum MHD_Result route_gateway(struct MHD_Connection *c, const char *url, const char *method,
                                     req_state *rs)
{
    if (MHD_get_connection_values(c, MHD_HEADER_KIND, collect_header, &rs->call_headers) < 0 ||
        MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, collect_arg, &rs->call_query) < 0)
        return send_error(c, 500, "EE_ENOMEM", "out of memory");
    rs->call_arg = strdup(url);
    rs->call_text = strdup(method);
    if (rs->call_arg == NULL || rs->call_text == NULL)
        return send_error(c, 500, "EE_ENOMEM", "out of memory");
    return start_call(c, rs, CALL_GATEWAY, NULL);
}

/* On the call's thread: the gateway's answer into rs->call_gw. */
static ee_status gateway_call(req_state *rs)
{
    ee_gateway_request req = {
        .version = EE_GATEWAY_REQUEST_VERSION,
        .method = rs->call_text,
        .path = rs->call_arg + strlen("/gateway"),
        .query = rs->call_query.len ? rs->call_query.buf : NULL,
        .headers = (const char *const *)rs->call_headers.lines,
        .n_headers = rs->call_headers.n,
        .body = rs->len ? rs->body : NULL,
        .body_len = rs->len,
    };
    ee_gateway_sink sink = {gw_head, gw_body, rs};
    return ee_gateway_handle(g_engine, &req, &sink);
}

/* Count a gateway answer by the provider named in its path. */
static void count_gateway(const req_state *rs, int code)
{
    char provider[LC_VALUE_MAX];
    const char *pstart = rs->call_arg + strlen("/gateway/");
    size_t plen = strcspn(pstart, "/");
    snprintf(provider, sizeof provider, "%.*s", (int)(plen < sizeof provider ? plen : sizeof provider - 1),
             pstart);
    char codebuf[8];
    snprintf(codebuf, sizeof codebuf, "%d", code);
    lc_add(&g_gateway, provider, codebuf);
}

/* The gateway's headers onto r, but for those the server sets itself. */
static void gateway_headers(struct MHD_Response *r, const gw_answer *a)
{
    for (size_t i = 0; i < a->n_headers; i++) {
        const char *colon = strchr(a->headers[i], ':');
        if (colon == NULL || hop_header(a->headers[i], (size_t)(colon - a->headers[i])))
            continue;
        char name[128];
        size_t nl = (size_t)(colon - a->headers[i]);
        if (nl >= sizeof name)
            continue;
        memcpy(name, a->headers[i], nl);
        name[nl] = '\0';
        const char *v = colon + 1;
        while (*v == ' ')
            v++;
        MHD_add_response_header(r, name, v);
    }
}

/* On a pool thread: the gateway's answer as it came, or its failure. */
static enum MHD_Result gateway_answer(struct MHD_Connection *c, req_state *rs)
{
    ee_status st = rs->call_status;
    gw_answer *a = &rs->call_gw;
    int failed = st != EE_OK || a->status < 100 || a->status > 599;
    count_gateway(rs, failed ? (int)http_of(st != EE_OK ? st : EE_ERROR) : a->status);
    if (failed)
        return send_failure_from(c, st != EE_OK ? st : EE_ERROR, NULL, rs->call_error);
    struct MHD_Response *r = MHD_create_response_from_buffer(
        a->body.len, a->body.buf ? a->body.buf : (void *)"", MHD_RESPMEM_MUST_COPY);
    if (r != NULL)
        gateway_headers(r, a);
    return r ? queue(c, (unsigned)a->status, r) : MHD_NO;
}

/* On a pool thread, once the gateway's head said SSE: the answer as a
 * callback response of unknown size (chunked transfer encoding), fed by
 * gw_read() as the provider's chunks arrive. The head was kept before the
 * connection was resumed, and the call's thread does not change it. */
static enum MHD_Result gateway_stream_answer(struct MHD_Connection *c, req_state *rs)
{
    gw_answer *a = &rs->call_gw;
    count_gateway(rs, a->status);
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, gw_read,
                                                               rs, NULL);
    if (r == NULL)
        return MHD_NO; /* the connection ends: the sink stops the call */
    gateway_headers(r, a);
    return queue(c, (unsigned)a->status, r);
}

/* POST /_ee/callback: a workflow's signed completion callback. */
static enum MHD_Result route_callback(struct MHD_Connection *c, req_state *rs)
{
    header_list h = {.obj = json_object()};
    if (h.obj == NULL)
        return send_error(c, 500, "EE_ENOMEM", "out of memory");
    MHD_get_connection_values(c, MHD_HEADER_KIND, collect_header, &h);
    char *headers = json_dumps(h.obj, JSON_COMPACT);
    json_decref(h.obj);
    if (headers == NULL)
        return send_error(c, 500, "EE_ENOMEM", "out of memory");
    char *out = NULL;
    ee_status st = ee_exec_ingest_webhook(g_engine, headers, rs->len ? rs->body : "", rs->len,
                                          &out);
    free(headers);
    return answer(c, st, &out, 200);
}

/* A label value in the exposition format: backslash, double quote and
 * line feed escaped. */
static void sb_label(strbuf *b, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\')
            sb_put(b, "\\\\", 2);
        else if (*v == '"')
            sb_put(b, "\\\"", 2);
        else if (*v == '\n')
            sb_put(b, "\\n", 2);
        else
            sb_put(b, v, 1);
    }
}

/* One family of a label_counter: `la` and `lb` its label names (`lb`
 * NULL when it has one). */
static void render_counter(strbuf *b, label_counter *t, const char *name, const char *help,
                           const char *la, const char *lb)
{
    sb_printf(b, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
    pthread_mutex_lock(&t->lock);
    for (size_t i = 0; i < t->n; i++) {
        sb_printf(b, "%s{%s=\"", name, la);
        sb_label(b, t->e[i].a);
        if (lb != NULL) {
            sb_printf(b, "\",%s=\"", lb);
            sb_label(b, t->e[i].b);
        }
        sb_printf(b, "\"} %lu\n", t->e[i].count);
    }
    pthread_mutex_unlock(&t->lock);
}

static long long member_int(json_t *o, const char *key)
{
    return (long long)json_integer_value(json_object_get(o, key));
}

/* One series of a histogram family from the library's {"count", sum,
 * "buckets"} (cumulative, one per bound of `le`, in ms): labelled
 * `lname`=`lval`; `sum_key`'s value times `sum_scale` is the sum in seconds. */
static void render_lib_hist(strbuf *b, const char *name, const char *lname, const char *lval,
                            const json_t *le, const json_t *h, const char *sum_key,
                            double sum_scale)
{
    const json_t *buckets = json_object_get(h, "buckets");
    long long count = member_int((json_t *)h, "count");
    for (size_t i = 0; i <= json_array_size(le); i++) {
        sb_printf(b, "%s_bucket{%s=\"", name, lname);
        sb_label(b, lval);
        if (i < json_array_size(le))
            sb_printf(b, "\",le=\"%g\"} %lld\n",
                      (double)json_integer_value(json_array_get(le, i)) / 1000.0,
                      (long long)json_integer_value(json_array_get(buckets, i)));
        else
            sb_printf(b, "\",le=\"+Inf\"} %lld\n", count);
    }
    sb_printf(b, "%s_sum{%s=\"", name, lname);
    sb_label(b, lval);
    sb_printf(b, "\"} %.9f\n%s_count{%s=\"", (double)member_int((json_t *)h, sum_key) * sum_scale,
              name, lname);
    sb_label(b, lval);
    sb_printf(b, "\"} %lld\n", count);
}

/* What the library counted since the engine opened: executions by final
 * status and their execution time (ee_exec_stats()), admissions and
 * refusals by reason (ee_quota_stats()), gateway calls, cost, tokens and
 * upstream time by provider (ee_gateway_stats()). */
static void render_library_counts(strbuf *b, json_t *ex, json_t *q, json_t *gw)
{
    static const char *const ends[][2] = {{"completed", "completed"},
                                          {"failed", "failed"},
                                          {"cancelled", "cancelled"},
                                          {"timedOut", "timed_out"}};
    json_t *ended = json_object_get(ex, "ended");
    sb_printf(b,
              "# HELP execengine_executions_submitted_total Executions this engine queued.\n"
              "# TYPE execengine_executions_submitted_total counter\n"
              "execengine_executions_submitted_total %lld\n"
              "# HELP execengine_executions_started_total Runs this engine's workers started.\n"
              "# TYPE execengine_executions_started_total counter\n"
              "execengine_executions_started_total %lld\n"
              "# HELP execengine_executions_ended_total Executions this engine ended, by final "
              "status.\n"
              "# TYPE execengine_executions_ended_total counter\n",
              member_int(ex, "submitted"), member_int(ex, "started"));
    for (size_t i = 0; i < sizeof ends / sizeof ends[0]; i++)
        sb_printf(b, "execengine_executions_ended_total{status=\"%s\"} %lld\n", ends[i][1],
                  member_int(ended, ends[i][0]));
    const char *h = "execengine_execution_duration_seconds";
    sb_printf(b,
              "# HELP %s Execution time (executionTimeMs) of the runs this engine ended, by "
              "final status.\n# TYPE %s histogram\n",
              h, h);
    json_t *lat = json_object_get(ex, "executionTimeMs");
    for (size_t i = 0; i < sizeof ends / sizeof ends[0]; i++)
        render_lib_hist(b, h, "status", ends[i][1], json_object_get(lat, "le"),
                        json_object_get(lat, ends[i][0]), "sum", 1e-3);

    sb_printf(b,
              "# HELP execengine_quota_admissions_total Admissions this engine granted.\n"
              "# TYPE execengine_quota_admissions_total counter\n"
              "execengine_quota_admissions_total %lld\n"
              "# HELP execengine_quota_admission_errors_total Admissions that failed (counters "
              "or limits unreadable).\n"
              "# TYPE execengine_quota_admission_errors_total counter\n"
              "execengine_quota_admission_errors_total %lld\n"
              "# HELP execengine_quota_refusals_total Admissions this engine refused, by "
              "reason.\n"
              "# TYPE execengine_quota_refusals_total counter\n",
              member_int(q, "admitted"), member_int(q, "errors"));
    const char *key;
    json_t *v;
    json_object_foreach(json_object_get(q, "refused"), key, v) {
        sb_printf(b, "execengine_quota_refusals_total{reason=\"");
        sb_label(b, key);
        sb_printf(b, "\"} %lld\n", (long long)json_integer_value(v));
    }

    json_t *providers = json_object_get(gw, "providers");
    static const char *const classes[] = {"2xx", "3xx", "4xx", "5xx", "none"};
    sb_printf(b, "# HELP execengine_gateway_calls_total Calls the gateway forwarded, by "
                 "provider and the answer's status class (none: no answer).\n"
                 "# TYPE execengine_gateway_calls_total counter\n");
    json_object_foreach(providers, key, v) {
        for (size_t i = 0; i < sizeof classes / sizeof classes[0]; i++) {
            sb_printf(b, "execengine_gateway_calls_total{provider=\"");
            sb_label(b, key);
            sb_printf(b, "\",class=\"%s\"} %lld\n", classes[i],
                      member_int(json_object_get(v, "byStatusClass"), classes[i]));
        }
    }
    sb_printf(b, "# HELP execengine_gateway_budget_refusals_total Calls the gateway refused "
                 "because the run's budget was spent, by provider.\n"
                 "# TYPE execengine_gateway_budget_refusals_total counter\n");
    json_object_foreach(providers, key, v) {
        sb_printf(b, "execengine_gateway_budget_refusals_total{provider=\"");
        sb_label(b, key);
        sb_printf(b, "\"} %lld\n", member_int(v, "refusedBudget"));
    }
    sb_printf(b, "# HELP execengine_gateway_cost_usd_total Metered cost of the gateway's calls, "
                 "by provider and who paid (platform: the platform's credentials; other: the "
                 "customer's or the workspace's own).\n"
                 "# TYPE execengine_gateway_cost_usd_total counter\n");
    json_object_foreach(providers, key, v) {
        long long all = member_int(v, "costNano"), plat = member_int(v, "platformCostNano");
        sb_printf(b, "execengine_gateway_cost_usd_total{provider=\"");
        sb_label(b, key);
        sb_printf(b, "\",payer=\"platform\"} %.9f\n", (double)plat / 1e9);
        sb_printf(b, "execengine_gateway_cost_usd_total{provider=\"");
        sb_label(b, key);
        sb_printf(b, "\",payer=\"other\"} %.9f\n", (double)(all - plat) / 1e9);
    }
    sb_printf(b, "# HELP execengine_gateway_tokens_total Tokens metered on the gateway's calls, "
                 "by provider and kind.\n"
                 "# TYPE execengine_gateway_tokens_total counter\n");
    json_object_foreach(providers, key, v) {
        static const char *const kinds[] = {"prompt", "completion"};
        for (size_t i = 0; i < 2; i++) {
            sb_printf(b, "execengine_gateway_tokens_total{provider=\"");
            sb_label(b, key);
            sb_printf(b, "\",kind=\"%s\"} %lld\n", kinds[i],
                      member_int(json_object_get(v, "tokens"), kinds[i]));
        }
    }
    h = "execengine_gateway_upstream_duration_seconds";
    sb_printf(b,
              "# HELP %s Time the provider took per forwarded call (to the answer's end), by "
              "provider.\n# TYPE %s histogram\n",
              h, h);
    json_object_foreach(providers, key, v)
        render_lib_hist(b, h, "provider", key, json_object_get(gw, "upstreamMsLe"),
                        json_object_get(v, "upstreamMs"), "sumUs", 1e-6);
}

/* GET /metrics (admin): Prometheus text format 0.0.4. The library's own
 * figures (ee_exec_stats(), ee_quota_stats(), ee_gateway_stats(),
 * ee_audit_stats()) and what this server saw. */
static enum MHD_Result route_metrics(struct MHD_Connection *c)
{
    char *stats = NULL;
    ee_status st = ee_exec_stats(g_engine, &stats);
    if (st != EE_OK)
        return answer(c, st, &stats, 200);
    json_t *s = json_loads(stats, 0, NULL);
    ee_free(stats);
    char *audit = NULL;
    st = ee_audit_stats(g_engine, &audit);
    if (st != EE_OK) {
        json_decref(s);
        return answer(c, st, &audit, 200);
    }
    json_t *a = json_loads(audit, 0, NULL);
    ee_free(audit);
    char *quota = NULL, *gateway = NULL, *outbox = NULL;
    st = ee_quota_stats(g_engine, &quota);
    if (st == EE_OK)
        st = ee_gateway_stats(g_engine, &gateway);
    if (st == EE_OK)
        st = ee_email_outbox_stats(g_engine, &outbox);
    if (st != EE_OK) {
        json_decref(s);
        json_decref(a);
        ee_free(quota);
        ee_free(gateway);
        ee_free(outbox);
        return send_failure(c, st, NULL);
    }
    json_t *ob = json_loads(outbox, 0, NULL);
    ee_free(outbox);
    json_t *q = json_loads(quota, 0, NULL), *gw = json_loads(gateway, 0, NULL);
    ee_free(quota);
    ee_free(gateway);
    strbuf b = {0};
    sb_printf(&b,
              "# HELP execengine_executions Executions of the queue by status.\n"
              "# TYPE execengine_executions gauge\n"
              "execengine_executions{status=\"pending\"} %lld\n"
              "execengine_executions{status=\"running\"} %lld\n",
              member_int(s, "queued"), member_int(s, "running"));
    sb_printf(&b,
              "# HELP execengine_exec_workers Execution workers of this engine.\n"
              "# TYPE execengine_exec_workers gauge\n"
              "execengine_exec_workers %lld\n"
              "# HELP execengine_exec_backlog_max Most executions waiting in the queue.\n"
              "# TYPE execengine_exec_backlog_max gauge\n"
              "execengine_exec_backlog_max %lld\n",
              member_int(s, "workers"), member_int(s, "backlogMax"));
    render_library_counts(&b, s, q, gw);
    json_decref(s);
    json_decref(q);
    json_decref(gw);
    sb_printf(&b,
              "# HELP execengine_audit_entries_total Audit entries this engine appended or "
              "failed to write.\n"
              "# TYPE execengine_audit_entries_total counter\n"
              "execengine_audit_entries_total{result=\"appended\"} %lld\n"
              "execengine_audit_entries_total{result=\"failed\"} %lld\n"
              "# HELP execengine_audit_truncated_details_total Audit entries whose detail was "
              "truncated.\n"
              "# TYPE execengine_audit_truncated_details_total counter\n"
              "execengine_audit_truncated_details_total %lld\n",
              member_int(a, "appended"), member_int(a, "failed"),
              member_int(a, "truncatedDetails"));
    json_decref(a);
    /* the e-mail outbox, from storage: every process's messages */
    sb_printf(&b,
              "# HELP execengine_email_outbox E-mail outbox messages by status.\n"
              "# TYPE execengine_email_outbox gauge\n"
              "execengine_email_outbox{status=\"queued\"} %lld\n"
              "execengine_email_outbox{status=\"sending\"} %lld\n"
              "execengine_email_outbox{status=\"sent\"} %lld\n"
              "execengine_email_outbox{status=\"failed\"} %lld\n"
              "# HELP execengine_email_outbox_oldest_queued_seconds Age of the oldest queued "
              "e-mail.\n"
              "# TYPE execengine_email_outbox_oldest_queued_seconds gauge\n"
              "execengine_email_outbox_oldest_queued_seconds %.3f\n",
              member_int(ob, "queued"), member_int(ob, "sending"), member_int(ob, "sent"),
              member_int(ob, "failed"), (double)member_int(ob, "oldestQueuedAgeMs") / 1000.0);
    json_decref(ob);
    sb_printf(&b, "# HELP execengine_server_answers_total HTTP answers of this server by status.\n"
                  "# TYPE execengine_server_answers_total counter\n");
    for (unsigned code = 100; code < 600; code++) {
        unsigned long v = atomic_load(&g_answers[code]);
        if (v != 0)
            sb_printf(&b, "execengine_server_answers_total{code=\"%u\"} %lu\n", code, v);
    }
    sb_printf(&b,
              "# HELP execengine_server_waiting_calls Requests waiting on n8n or a provider on "
              "threads of their own (EE_SERVER_MAX_CALLS bounds each), streamed gateway "
              "answers included until their end.\n"
              "# TYPE execengine_server_waiting_calls gauge\n"
              "execengine_server_waiting_calls{route=\"gateway\"} %d\n"
              "execengine_server_waiting_calls{route=\"other\"} %d\n",
              atomic_load(&g_call_threads[1]), atomic_load(&g_call_threads[0]));
    render_counter(&b, &g_execute, "execengine_server_execute_total",
                   "Execute requests answered by this server, by outcome (the final status of "
                   "a synchronous run, accepted for an asynchronous one, else the refusal or "
                   "failure status).",
                   "outcome", NULL);
    render_counter(&b, &g_refusals, "execengine_server_refusals_total",
                   "Requests refused with 429 or 402, by status and quota.", "status", "quota");
    render_counter(&b, &g_gateway, "execengine_server_gateway_requests_total",
                   "Credential gateway requests by provider and HTTP status.", "provider",
                   "code");
    const char *h = "execengine_server_request_duration_seconds";
    sb_printf(&b,
              "# HELP %s Time from a request's head to its answer sent, by route family.\n"
              "# TYPE %s histogram\n",
              h, h);
    for (int f = 0; f < FAM_COUNT; f++) {
        unsigned long cum = 0;
        for (size_t k = 0; k <= NBUCKETS; k++) {
            cum += atomic_load(&g_lat_bucket[f][k]);
            if (k < NBUCKETS)
                sb_printf(&b, "%s_bucket{family=\"%s\",le=\"%g\"} %lu\n", h,
                          g_family_names[f], g_buckets[k], cum);
            else
                sb_printf(&b, "%s_bucket{family=\"%s\",le=\"+Inf\"} %lu\n", h,
                          g_family_names[f], cum);
        }
        sb_printf(&b, "%s_sum{family=\"%s\"} %.9f\n%s_count{family=\"%s\"} %lu\n", h,
                  g_family_names[f], (double)atomic_load(&g_lat_sum_ns[f]) / 1e9, h,
                  g_family_names[f], cum);
    }
    enum MHD_Result r = b.buf ? send_text(c, 200, b.buf, "text/plain; version=0.0.4", NULL, NULL)
                              : send_error(c, 500, "EE_ENOMEM", "out of memory");
    free(b.buf);
    return r;
}

/* ---- dispatch --------------------------------------------------------------- */

/* Every route's path ('*': one segment, an id or a month) and the methods it
 * takes: a known path asked with another method is 405 with Allow, not the
 * 404 of a path that is no route. The route functions below decide the rest. */
static const struct {
    const char *path;
    const char *allow;
} g_routes[] = {
    {"healthz", "GET, HEAD"},
    {"metrics", "GET, HEAD"},
    {"_ee/callback", "POST"},
    {"api/engines/catalog", "GET, HEAD"},
    {"api/engines/execute/*", "POST"},
    {"api/engines/executions", "GET, HEAD"},
    {"api/engines/executions/*", "GET, HEAD"},
    {"api/engines/executions/*/results", "GET, HEAD"},
    {"api/engines/executions/*/cost", "GET, HEAD"},
    {"api/engines/executions/*/cancel", "POST"},
    {"api/engines/executions/*/email", "POST"},
    {"api/engines/api-keys", "GET, HEAD, POST"},
    {"api/engines/api-keys/*", "GET, HEAD, PUT, PATCH, DELETE"},
    {"api/engines/api-keys/*/validate", "POST"},
    {"api/engines/usage/current", "GET, HEAD"},
    {"api/engines/usage/history", "GET, HEAD"},
    {"api/engines/billing/current", "GET, HEAD"},
    {"api/engines/billing/history", "GET, HEAD"},
    {"api/engines/billing/months/*", "GET, HEAD"},
    {"api/engines/sync-workflows", "GET, POST"}, /* a GET syncs: HEAD must not */
    {"api/engines/workflows/*/execute", "POST"},
    {"api/engines/workflows/*/status", "GET, HEAD"},
    {"api/admin/engines/workflows", "GET, HEAD"},
    {"api/admin/engines/workflows/*", "GET, HEAD, PUT, PATCH"},
    {"api/admin/engines/categories", "GET, HEAD, POST"},
    {"api/admin/engines/usage", "GET, HEAD"},
    {"api/admin/engines/billing", "GET, HEAD"},
    {"api/admin/engines/billing/*/close", "POST"},
    {"api/admin/engines/billing/*/paid", "POST"},
    {"api/admin/engines/billing/*/export", "GET, HEAD"},
    {"api/admin/engines/audit", "GET, HEAD"},
    {"api/admin/engines/email-templates", "GET, HEAD"},
    {"api/admin/engines/email-templates/*", "GET, HEAD, PUT, DELETE"},
    {"api/v1/usage/current", "GET, HEAD"},
    {"api/v1/quota/check", "POST"},
    {"api/v1/credentials", "GET, HEAD"},
    {"api/v1/copilot/validate-credentials", "POST"},
};

/* The Allow list of the route whose path is seg[0..n), or NULL. */
static const char *allow_of(char *const *seg, size_t n)
{
    for (size_t r = 0; r < sizeof g_routes / sizeof g_routes[0]; r++) {
        const char *p = g_routes[r].path;
        size_t i = 0;
        for (; i < n && *p != '\0'; i++) {
            size_t len = strcspn(p, "/");
            if (!(len == 1 && *p == '*') && (strlen(seg[i]) != len || strncmp(seg[i], p, len) != 0))
                break;
            p += len + (p[len] == '/');
        }
        if (i == n && *p == '\0')
            return g_routes[r].allow;
    }
    return NULL;
}

/* Whether `method` is one of `allow` ("GET, HEAD, POST"). */
static int method_in(const char *method, const char *allow)
{
    size_t m = strlen(method);
    for (const char *a = allow; *a != '\0';) {
        size_t len = strcspn(a, ",");
        if (len == m && strncmp(a, method, m) == 0)
            return 1;
        a += len;
        a += strspn(a, ", ");
    }
    return 0;
}

/* 405: the route exists, not with this method. */
static enum MHD_Result send_not_allowed(struct MHD_Connection *c, const char *method,
                                        const char *allow)
{
    char msg[160];
    snprintf(msg, sizeof msg, "method %.32s is not allowed on this route (Allow: %s)", method,
             allow);
    return send_doc_h(c, 405, json_pack("{s:{s:s, s:s}}", "error", "status", "EE_EINVAL",
                                        "message", msg),
                      "Allow", allow);
}

/* A path split on '/' into at most MAX_SEGMENTS segments (in buf); -1 when
 * it does not fit, -2 when it has more segments. */
static int split_path(const char *url, char *buf, size_t cap, char **seg, size_t *n)
{
    if (strlen(url) >= cap)
        return -1;
    memcpy(buf, url, strlen(url) + 1);
    *n = 0;
    for (char *save = NULL, *t = strtok_r(buf, "/", &save); t != NULL;
         t = strtok_r(NULL, "/", &save)) {
        if (*n == MAX_SEGMENTS)
            return -2;
        seg[(*n)++] = t;
    }
    return 0;
}

static enum MHD_Result dispatch(struct MHD_Connection *c, const char *url, const char *method,
                                req_state *rs)
{
    if (strncmp(url, "/gateway/", 9) == 0)
        return route_gateway(c, url, method, rs);
    char path[1024];
    char *seg[MAX_SEGMENTS];
    size_t n = 0;
    int split = split_path(url, path, sizeof path, seg, &n);
    if (split == -1) /* no route is that long: an id past any id's length */
        return send_error(c, 414, "EE_ETOOBIG", "the URL's path is longer than 1023 bytes");
    if (split != 0)
        return send_error(c, 404, "EE_ENOTFOUND", "no such route");
    const char *allow = allow_of(seg, n);
    if (allow != NULL && !method_in(method, allow))
        return send_not_allowed(c, method, allow);
    /* HEAD is GET without the body (libmicrohttpd sends none) */
    if (is(method, "HEAD"))
        method = "GET";
    if (strcmp(url, "/healthz") == 0)
        return send_doc(c, 200, json_pack("{s:s}", "status", "ok"));
    if (strcmp(url, "/_ee/callback") == 0)
        return route_callback(c, rs);

    const token_entry *who = rs->who; /* handle() refused a request without one */
    if (who == NULL)
        return send_error(c, 401, "EE_EAUTH", "missing or unknown bearer token");
    /* Bodies reach the library as C text: a NUL would end them early and
     * what follows it would be ignored, not refused. */
    const char *nul = rs->len ? memchr(rs->body, '\0', rs->len) : NULL;
    if (nul != NULL) {
        char msg[96];
        snprintf(msg, sizeof msg, "the request body holds a NUL byte (at byte %zu)",
                 (size_t)(nul - rs->body));
        return send_error(c, 400, "EE_EPARSE", msg);
    }

    if (strcmp(url, "/metrics") == 0 && is(method, "GET")) {
        if (!who->admin)
            return send_error(c, 403, "EE_EPERM", "admin role required");
        return route_metrics(c);
    }

    if (n >= 3 && strcmp(seg[0], "api") == 0) {
        if (strcmp(seg[1], "engines") == 0)
            return route_engines(c, who, rs, method, seg, n);
        if (strcmp(seg[1], "admin") == 0)
            return route_admin(c, who, rs, method, seg, n);
        if (strcmp(seg[1], "v1") == 0)
            return route_v1(c, who, rs, method, seg, n);
    }
    return send_error(c, 404, "EE_ENOTFOUND", "no such route");
}

/* The routes that take no bearer token (docs/server.md, Who is asking). */
static int public_route(const char *url)
{
    return strcmp(url, "/healthz") == 0 || strcmp(url, "/_ee/callback") == 0 ||
           strncmp(url, "/gateway/", 9) == 0;
}

/* The entry of the request's bearer token, or NULL. */
static const token_entry *who_of(struct MHD_Connection *c)
{
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    return auth != NULL && strncmp(auth, "Bearer ", 7) == 0 ? find_token(auth + 7) : NULL;
}

/* What the library would answer 401 on a public route's head alone, or
 * NULL (see handle()). The conditions are the library's own first checks:
 * an Authorization value of "Bearer " and something (any case), the two
 * X-EE- headers of a signed callback (asked with its method: another is
 * 405 as on any route). */
static const char *early_refusal(struct MHD_Connection *c, const char *url, const char *method)
{
    if (strncmp(url, "/gateway/", 9) == 0) {
        const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
        if (auth == NULL || strlen(auth) <= 7 || strncasecmp(auth, "Bearer ", 7) != 0)
            return "a gateway token is required (Authorization: Bearer)";
    } else if (strcmp(url, "/_ee/callback") == 0 && strcmp(method, "POST") == 0) {
        if (MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-EE-Timestamp") == NULL)
            return "callback refused: no X-EE-Timestamp header";
        if (MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-EE-Signature") == NULL)
            return "callback refused: no X-EE-Signature header";
    }
    return NULL;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **state)
{
    (void)cls;
    size_t limit = strncmp(url, "/gateway/", 9) == 0 ? GATEWAY_BODY_MAX : API_BODY_MAX;
    req_state *rs = *state;
    if (rs == NULL) {
        rs = calloc(1, sizeof *rs);
        if (rs == NULL)
            return MHD_NO;
        if (pthread_mutex_init(&rs->call_lock, NULL) != 0) {
            free(rs);
            return MHD_NO;
        }
        if (pthread_mutex_init(&rs->gw_lock, NULL) != 0) {
            pthread_mutex_destroy(&rs->call_lock);
            free(rs);
            return MHD_NO;
        }
        if (pthread_cond_init(&rs->gw_drained, NULL) != 0) {
            pthread_mutex_destroy(&rs->gw_lock);
            pthread_mutex_destroy(&rs->call_lock);
            free(rs);
            return MHD_NO;
        }
        rs->refs = 1; /* the connection's */
        *state = rs;
        rs->start_ns = now_ns();
        rs->family = family_of(url);
        atomic_fetch_add(&g_active, 1);
        if (ee__mhd_url_nul(c))
            return send_error(c, 400, "EE_EINVAL",
                              "the URL holds an encoded NUL byte (%00) in its path or query");
        const char *framing = ee__mhd_framing_error(c, version);
        if (framing != NULL) {
            char msg[128];
            snprintf(msg, sizeof msg, "malformed request: %s", framing);
            /* where its body ends is unknown: the connection ends too */
            return send_doc_h(c, 400, json_pack("{s:{s:s, s:s}}", "error", "status", "EE_EINVAL",
                                                "message", msg),
                              "Connection", "close");
        }
        /* The token with the head: a client without one is answered before
         * its body is read, not after up to 1 MiB of it was kept (times
         * 512 connections, for anyone who can connect). */
        if (!public_route(url) && (rs->who = who_of(c)) == NULL)
            return send_error(c, 401, "EE_EAUTH", "missing or unknown bearer token");
        /* The public routes with a body refuse from the head what the
         * library would refuse first, in the library's words: a gateway
         * call without a token (ee_gateway_handle()'s first check), a
         * callback without its signature headers (ee_exec_ingest_webhook()
         * refuses it whatever the body) - the body (up to 10 MiB on the
         * gateway) is then never read. A token or signature that is there
         * is checked with the body, by the library. */
        const char *early = early_refusal(c, url, method);
        if (early != NULL)
            return send_error(c, 401, "EE_EAUTH", early);
        const char *len = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (len != NULL && strtoull(len, NULL, 10) > limit)
            return send_error(c, 413, "EE_ETOOBIG", "request body over the limit");
        return MHD_YES;
    }
    if (*upload_size != 0) {
        /* Over the limit (chunked): drop the rest, answer 413 at the end. */
        if (!rs->too_big && rs->len + *upload_size > limit) {
            rs->too_big = 1;
            free(rs->body);
            rs->body = NULL;
            rs->len = rs->cap = 0;
        }
        if (!rs->too_big) {
            if (rs->len + *upload_size + 1 > rs->cap) {
                size_t cap = (rs->len + *upload_size + 1) * 2;
                char *nb = realloc(rs->body, cap < limit + 1 ? cap : limit + 1);
                if (nb == NULL)
                    return MHD_NO;
                rs->body = nb;
                rs->cap = cap < limit + 1 ? cap : limit + 1;
            }
            memcpy(rs->body + rs->len, upload, *upload_size);
            rs->len += *upload_size;
            rs->body[rs->len] = '\0';
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (rs->too_big)
        return send_error(c, 413, "EE_ETOOBIG", "request body over the limit");
    int phase = atomic_load(&rs->call_phase);
    if (phase == 2)
        return call_answer(c, rs);
    if (phase == 3)
        return gateway_stream_answer(c, rs);
    if (phase == 1)
        return MHD_YES; /* not ended yet (a spurious call while suspended) */
    return dispatch(c, url, method, rs);
}

static void request_done(void *cls, struct MHD_Connection *c, void **state,
                         enum MHD_RequestTerminationCode why)
{
    (void)cls;
    (void)c;
    (void)why;
    req_state *rs = *state;
    if (rs == NULL)
        return;
    observe_latency(rs->family, now_ns() - rs->start_ns);
    /* A stream's call may still run (the client went away mid-stream): its
     * sink now stops it, and its thread frees rs. */
    pthread_mutex_lock(&rs->gw_lock);
    rs->gw_gone = true;
    rs->gw_waiting = false;
    pthread_cond_broadcast(&rs->gw_drained);
    pthread_mutex_unlock(&rs->gw_lock);
    rs_release(rs);
    *state = NULL;
    atomic_fetch_sub(&g_active, 1);
}

/* ---- main --------------------------------------------------------------- */

/* Tell workflows to reach the gateway and the callback through this server,
 * unless the configuration already names other URLs. */
static ee_status default_url(ee_config *cfg, const char *key, const char *addr, const char *path)
{
    int set = 0;
    ee_status st = ee_config_is_set(cfg, key, &set);
    if (st != EE_OK || set)
        return st;
    char url[160];
    snprintf(url, sizeof url, "http://%s%s", addr, path);
    return ee_config_set(cfg, key, url);
}

/* Whether this process's configuration names any platform key
 * (PLATFORM_<SERVICE>_KEY, PLATFORM_OPENROUTER_API_KEY ...): the server then
 * provisions the platform pool from it at start. Without one it leaves the
 * stored pool alone - provisioning removes the slots a configuration no
 * longer names, and a server started without keys is not the pool's
 * source of truth. */
static bool platform_keys_set(const ee_config *cfg)
{
    char *opts = NULL;
    if (ee_config_options_json(&opts) != EE_OK)
        return false;
    json_t *doc = json_loads(opts, 0, NULL);
    ee_free(opts);
    bool any = false;
    size_t i;
    json_t *o;
    json_array_foreach(doc, i, o) {
        const char *name = json_string_value(json_object_get(o, "name"));
        size_t n = name != NULL ? strlen(name) : 0;
        int set = 0;
        if (n > 13 && strncmp(name, "PLATFORM_", 9) == 0 && strcmp(name + n - 4, "_KEY") == 0 &&
            ee_config_is_set(cfg, name, &set) == EE_OK && set)
            any = true;
    }
    json_decref(doc);
    return any;
}

/* Provision the platform pool from PLATFORM_* (idempotent: unchanged keys
 * stay, changed ones are re-sealed, slots no longer configured removed),
 * so a zero-config run on platform credentials works on a fresh store. A
 * failure stops the start: every platform-funded run would fail. */
static int provision_platform(void)
{
    char *out = NULL;
    ee_status st = ee_cred_platform_provision(g_engine, &out);
    json_t *doc = out != NULL ? json_loads(out, 0, NULL) : NULL;
    ee_free(out);
    if (st != EE_OK) {
        fprintf(stderr, "execengine-server: provisioning platform credentials: %s: %s\n",
                ee_status_name(st), ee_error_last_message());
        json_decref(doc);
        return -1;
    }
    /* the report's counts (it holds masked keys only; print none) */
    static const char *const kinds[] = {"created", "updated", "unchanged", "removed"};
    fprintf(stderr, "execengine-server: platform credentials provisioned:");
    for (size_t k = 0; k < 4; k++) {
        json_t *v = json_object_get(doc, kinds[k]);
        size_t n = json_is_array(v) ? json_array_size(v) : (size_t)json_integer_value(v);
        fprintf(stderr, " %zu %s%s", n, kinds[k], k < 3 ? "," : "\n");
    }
    json_decref(doc);
    return 0;
}

int main(void)
{
    const char *addr = getenv("EE_SERVER_ADDR");
    if (addr == NULL || *addr == '\0')
        addr = "127.0.0.1:8080";
    char host[64];
    const char *colon = strrchr(addr, ':');
    if (colon == NULL || (size_t)(colon - addr) >= sizeof host || strlen(addr) > 100) {
        fprintf(stderr, "execengine-server: EE_SERVER_ADDR must be HOST:PORT\n");
        return 2;
    }
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    int port = atoi(colon + 1);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (port <= 0 || port > 65535 || inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        fprintf(stderr, "execengine-server: EE_SERVER_ADDR must be IPv4:PORT\n");
        return 2;
    }
    const char *max_calls = getenv("EE_SERVER_MAX_CALLS");
    if (max_calls != NULL && *max_calls != '\0') {
        char *end = NULL;
        long v = strtol(max_calls, &end, 10);
        if (*end != '\0' || v < 1 || v > MAX_CALLS_LIMIT) {
            fprintf(stderr, "execengine-server: EE_SERVER_MAX_CALLS must be an integer from 1 to %d\n",
                    MAX_CALLS_LIMIT);
            return 2;
        }
        g_calls_max = (int)v;
    }
    const char *tokens = getenv("EE_SERVER_TOKENS");
    if (tokens == NULL || *tokens == '\0') {
        fprintf(stderr, "execengine-server: EE_SERVER_TOKENS must name the tokens file\n");
        return 2;
    }
    if (load_tokens(tokens) != 0) {
        free_tokens();
        return 2;
    }
    json_t *enomem = json_pack("{s:{s:s, s:s}}", "error", "status", "EE_ENOMEM", "message",
                               ee_strerror(EE_ENOMEM));
    g_enomem_body = enomem ? json_dumps(enomem, JSON_COMPACT) : NULL;
    json_decref(enomem);
    if (g_enomem_body == NULL) {
        fprintf(stderr, "execengine-server: out of memory\n");
        free_tokens();
        return 1;
    }

    ee_config *cfg = NULL;
    ee_status st = ee_config_new(&cfg);
    if (st == EE_OK)
        st = ee_config_load_env(cfg);
    if (st == EE_OK)
        st = default_url(cfg, "EXEC_GATEWAY_URL", addr, "/gateway");
    if (st == EE_OK)
        st = default_url(cfg, "EXEC_CALLBACK_URL", addr, "/_ee/callback");
    bool provision = st == EE_OK && platform_keys_set(cfg);
    if (st == EE_OK)
        st = ee_engine_open(&g_engine, cfg);
    ee_config_free(cfg);
    if (st != EE_OK) {
        fprintf(stderr, "execengine-server: engine: %s: %s\n", ee_status_name(st),
                ee_error_last_message());
        free_tokens();
        free(g_enomem_body);
        return 1;
    }
    if (provision && provision_platform() != 0) {
        ee_engine_close(g_engine);
        free_tokens();
        free(g_enomem_body);
        return 1;
    }

    /* Workers from the start: a restarted server recovers what a dead one
     * left, and runs queued by other processes (the CLI's run --no-wait)
     * do not wait for this server's first request. */
    st = ee_exec_workers_start(g_engine);
    if (st != EE_OK) {
        fprintf(stderr, "execengine-server: workers: %s: %s\n", ee_status_name(st),
                ee_error_last_message());
        ee_engine_close(g_engine);
        free_tokens();
        free(g_enomem_body);
        return 1;
    }

    struct sigaction act;
    memset(&act, 0, sizeof act);
    act.sa_handler = on_signal;
    sigaction(SIGTERM, &act, NULL);
    sigaction(SIGINT, &act, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* A pool of 4 threads on epoll: a slow client holds a connection (closed
     * after 30 s idle), never a thread; 64 KiB per connection bounds the
     * headers; at most 512 connections. */
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC |
            MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG,
        0, NULL, NULL, handle, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)4, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024), MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)512, MHD_OPTION_NOTIFY_COMPLETED, request_done, NULL,
        MHD_OPTION_NOTIFY_CONNECTION, ee__mhd_on_connection, NULL,
        MHD_OPTION_UNESCAPE_CALLBACK, ee__mhd_unescape, NULL, MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, "execengine-server: cannot listen on %s\n", addr);
        ee_engine_close(g_engine);
        free_tokens();
        free(g_enomem_body);
        return 1;
    }
    fprintf(stderr, "execengine-server: listening on %s\n", addr);
    while (!g_stop)
        pause();
    /* Stop accepting, let running requests finish (bounded), then close
     * the engine: executions still queued stay in storage for recovery. */
    fprintf(stderr, "execengine-server: stopping\n");
    MHD_quiesce_daemon(d);
    /* Calls on their own threads are waited for in any case: each is
     * bounded by its timeout (the run's, n8n's, the gateway's), and its
     * thread holds its request. */
    for (int i = 0; atomic_load(&g_call_threads[0]) + atomic_load(&g_call_threads[1]) > 0 ||
                    (i < DRAIN_MAX_S * 20 && atomic_load(&g_active) > 0);
         i++) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    MHD_stop_daemon(d);
    ee_engine_close(g_engine);
    free_tokens();
    free(g_enomem_body);
    return 0;
}
