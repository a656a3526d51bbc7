/*
 * Helpers shared by the fuzz targets that drive the public API: the input
 * as C text, an engine on memory storage, a custom HTTP transport that
 * answers with bytes the target chooses, and the checks every answer of a
 * `char **out` call must pass. Header-only: each target is one executable.
 */
#ifndef EE_FUZZ_ENGINE_H
#define EE_FUZZ_ENGINE_H

#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "execengine/execengine.h"

#include "fuzz_check.h"

/* The encryption secret of every fuzz engine (>= 32 bytes). */
#define FZ_SECRET "fuzz-secret-0123456789abcdef0123456789"

/* `n` bytes as a NUL-terminated string (free()). Text stops at the first
 * NUL byte, as it would for a C caller. */
static inline char *fz_text(const uint8_t *p, size_t n)
{
    char *t = malloc(n + 1);
    CHECK(t != NULL);
    memcpy(t, p, n);
    t[n] = '\0';
    return t;
}

/* Split the input at its first NUL: *a the bytes before, *b those after
 * (NULL when there is no NUL). Both free(). */
static inline void fz_split(const uint8_t *data, size_t size, char **a, char **b)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t alen = nul != NULL ? (size_t)(nul - data) : size;
    *a = fz_text(data, alen);
    *b = nul != NULL ? fz_text(nul + 1, size - alen - 1) : NULL;
}

/* Whether `st` is one of the `n` statuses that follow. */
static inline bool fz_status_in(ee_status st, int n, ...)
{
    va_list ap;
    va_start(ap, n);
    bool found = false;
    for (int i = 0; i < n && !found; i++)
        found = st == (ee_status)va_arg(ap, int);
    va_end(ap);
    return found;
}
#define FZ_NARGS_(a, b, c, d, e, f, g, h, i, j, k, l, N, ...) N
#define FZ_NARGS(...) FZ_NARGS_(__VA_ARGS__, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0)
/* CHECK_STATUS(st, EE_OK, EE_EINVAL, ...): st is one of those listed. */
#define CHECK_STATUS(st, ...)                                                                 \
    do {                                                                                      \
        ee_status st_ = (st);                                                                 \
        if (!fz_status_in(st_, FZ_NARGS(__VA_ARGS__), __VA_ARGS__)) {                         \
            fprintf(stderr, "unexpected status %s (%d)\n", ee_status_name(st_), (int)st_);     \
            CHECK(!"a documented status");                                                    \
        }                                                                                     \
    } while (0)

/* The answer of a `char **out` call: on EE_OK a JSON object; on failure
 * the error document naming the same status. Returns the parsed answer
 * (json_decref()) and frees `out`. The targets' status lists leave out
 * EE_ENOMEM, EE_ECORRUPT and EE_EIO: outside text must never cause them. */
static inline json_t *fz_answer(ee_status st, char *out)
{
    CHECK(out != NULL);
    if (getenv("FZ_PRINT") != NULL) /* checking a seed: FZ_PRINT=1 ./fuzz_x seed */
        fprintf(stderr, "%s: %.300s\n", ee_status_name(st), out);
    json_error_t jerr;
    json_t *doc = json_loads(out, 0, &jerr);
    if (doc == NULL)
        fprintf(stderr, "not JSON (%s): %.200s\n", jerr.text, out);
    CHECK(json_is_object(doc));
    if (st != EE_OK) {
        json_t *err = json_object_get(doc, "error");
        CHECK(json_is_object(err));
        CHECK(json_integer_value(json_object_get(err, "code")) == st);
        CHECK(json_is_string(json_object_get(err, "message")));
    }
    ee_free(out);
    return doc;
}

/* The source tree's data/ folder (engines load data files at open). */
static inline void fz_data_dir(char *out, size_t cap)
{
    snprintf(out, cap, "%s", __FILE__);
    for (int up = 0; up < 3; up++) {
        char *slash = strrchr(out, '/');
        CHECK(slash != NULL);
        *slash = '\0';
    }
    strncat(out, "/data", cap - strlen(out) - 1);
}

/* A config for a memory engine: the fuzz secret, the data dir, memory
 * storage and counters, a fixed clock. */
static int64_t fz_clock(void *payload)
{
    (void)payload;
    return 1760000000000; /* 2025-10-09 */
}

static inline ee_config *fz_config(void)
{
    char dir[1024];
    fz_data_dir(dir, sizeof dir);
    ee_config *cfg = NULL;
    CHECK(ee_config_new(&cfg) == EE_OK);
    CHECK(ee_config_set(cfg, "API_KEY_ENCRYPTION_SECRET", FZ_SECRET) == EE_OK);
    CHECK(ee_config_set(cfg, "EE_STORAGE_URI", "memory:") == EE_OK);
    CHECK(ee_config_set(cfg, "EE_COUNTERS_URI", "memory:") == EE_OK);
    CHECK(ee_config_set(cfg, "EE_DATA_DIR", dir) == EE_OK);
    CHECK(ee_config_set_clock(cfg, fz_clock, NULL) == EE_OK);
    return cfg;
}

static inline ee_engine *fz_engine_open(ee_config *cfg)
{
    ee_engine *e = NULL;
    CHECK(ee_engine_open(&e, cfg) == EE_OK);
    ee_config_free(cfg);
    return e;
}

/* ---- a custom transport answering with chosen bytes ----------------------- */

typedef struct {
    ee_status fail;      /* not EE_OK: the attempt fails with this instead */
    int status;          /* HTTP status of every answer */
    const uint8_t *body; /* borrowed for the call */
    size_t len;
    unsigned calls;      /* how many requests it answered */
} fz_upstream;

static ee_status fz_http(void *ctx, const ee_http_request *req, ee_http_response *resp)
{
    fz_upstream *u = ctx;
    CHECK(ee_http_request_method(req) != NULL && ee_http_request_url(req) != NULL);
    u->calls++;
    if (u->fail != EE_OK) {
        if (u->fail == EE_ENETWORK)
            ee_http_response_set_not_sent(resp);
        return u->fail;
    }
    CHECK(ee_http_response_set_status(resp, u->status) == EE_OK);
    CHECK(ee_http_response_add_header(resp, "Content-Type", "application/json") == EE_OK);
    /* _append_body() enforces the request's size cap (EE_ETOOBIG). */
    return ee_http_response_append_body(resp, u->body, u->len);
}

static const ee_transport_backend fz_backend = {EE_TRANSPORT_BACKEND_VERSION,
                                                EE_TRANSPORT_THREAD_SAFE, fz_http, NULL, NULL};

/* A custom transport over backend `b` with no retries (a retry only
 * repeats the answer) and, when max_response_bytes > 0, that cap. */
static inline ee_transport *fz_custom_transport(const ee_transport_backend *b, void *ctx,
                                                int64_t max_response_bytes)
{
    ee_transport_options *o = NULL;
    CHECK(ee_transport_options_new(&o) == EE_OK);
    CHECK(ee_transport_options_set_int64(o, "max_retries", 0) == EE_OK);
    if (max_response_bytes > 0)
        CHECK(ee_transport_options_set_int64(o, "max_response_bytes", max_response_bytes) ==
              EE_OK);
    ee_transport *t = NULL;
    CHECK(ee_transport_new_custom(&t, b, ctx, o) == EE_OK);
    ee_transport_options_free(o);
    return t;
}

/* A transport over `u` (fz_http), no retries. */
static inline ee_transport *fz_transport_new(fz_upstream *u)
{
    return fz_custom_transport(&fz_backend, u, 0);
}

/* `text` with every `from` replaced by `to` (free()). */
static inline char *fz_replace(const char *text, const char *from, const char *to)
{
    size_t fl = strlen(from), tl = strlen(to), n = 0;
    for (const char *p = strstr(text, from); p != NULL; p = strstr(p + fl, from))
        n++;
    char *out = malloc(strlen(text) + n * (tl > fl ? tl - fl : 0) + 1), *w = out;
    CHECK(out != NULL);
    for (const char *p = text;;) {
        const char *hit = strstr(p, from);
        if (hit == NULL) {
            strcpy(w, p);
            break;
        }
        memcpy(w, p, (size_t)(hit - p));
        w += hit - p;
        memcpy(w, to, tl);
        w += tl;
        p = hit + fl;
    }
    return out;
}

#endif
