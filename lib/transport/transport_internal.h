/*
 * lib/transport/transport_internal.h - the transport family's private
 * interface, shared by transport.c and the backends under lib/transport/.
 */
#ifndef EE_TRANSPORT_INTERNAL_H
#define EE_TRANSPORT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "execengine/transport.h"

/* Fixed bounds on what a request may carry. */
#define EE__HTTP_MAX_URL 8192
#define EE__HTTP_MAX_HEADERS 64
#define EE__HTTP_MAX_HEADER_VALUE 8192
#define EE__HTTP_MAX_BODY ((size_t)64 * 1024 * 1024)
/* What a response keeps of the headers (beyond Content-Type, Retry-After). */
#define EE__HTTP_RESP_MAX_HEADERS 100
#define EE__HTTP_RESP_MAX_HEADER_BYTES (64 * 1024)
#define EE__OPTION_TEXT_MAX 4096

struct ee_transport_options {
    int64_t connect_timeout_ms;
    int64_t timeout_ms;
    int64_t max_response_bytes;
    int64_t max_retries;
    int64_t retry_initial_ms;
    int64_t retry_max_ms;
    int64_t tls_verify;
    char *ca_file;    /* NULL: system default */
    char *ca_path;    /* NULL: system default */
    char *proxy;      /* NULL: environment decides; "" : no proxy */
    char *user_agent; /* NULL: "libexecengine/<version>" */
};

typedef struct ee__header {
    char *name;
    char *value;
} ee__header;

struct ee_http_request {
    char method[16];
    char *url;
    ee__header headers[EE__HTTP_MAX_HEADERS];
    size_t header_count;
    unsigned char *body;
    size_t body_len;
    int64_t connect_timeout_ms;
    int64_t timeout_ms;
    int64_t max_response_bytes;
    int retry_safe;
    ee_http_stream_fn stream; /* ee_http_request_set_stream(), or NULL */
    void *stream_payload;
};

struct ee_http_response {
    int status;
    ee__header *headers;
    size_t header_count, header_cap, header_bytes;
    unsigned char *body;
    size_t body_len, body_cap;
    size_t max_body; /* the cap set by the transport before each attempt */
    bool not_sent;
    int attempts;
    ee_http_stream_fn stream; /* copied from the request for each attempt */
    void *stream_payload;
    size_t streamed;          /* body bytes delivered to `stream` so far */
    bool stream_stopped;      /* `stream` asked to stop */
};

struct ee_mail {
    char *server_url;
    char *from;
    char **rcpt;
    size_t rcpt_count;
    unsigned char *message;
    size_t message_len;
    char *user;
    char *password;
    int require_tls;
};

/* Copy `src` (NULL: defaults) into `dst`, which owns its strings after;
 * free with ee__transport_options_clear(). Returns EE_OK or EE_ENOMEM. */
ee_status ee__transport_options_copy(ee_transport_options *dst, const ee_transport_options *src);
void ee__transport_options_clear(ee_transport_options *opts);
void ee__transport_options_defaults(ee_transport_options *opts);

/* "METHOD scheme://host/path" for messages: no query, no password. */
void ee__transport_describe(const ee_http_request *req, char *out, size_t cap);

/* The libcurl backend's table and context constructor (curl/curl_backend.c). */
ee_status ee__transport_curl_backend(const ee_transport_options *opts,
                                     const ee_transport_backend **table, void **ctx);

/* The libcurl backend's table (to tell its transports apart), and how
 * many easy handles a libcurl transport has made for HTTP calls: idle
 * handles are reused, so sequential calls make one (tests). 0 for a
 * transport of another backend. */
const ee_transport_backend *ee__transport_curl_table(void);
uint64_t ee__transport_curl_handles_made(const void *ctx);
uint64_t ee__transport_curl_handles(const ee_transport *t);
/* Whether a libcurl transport reuses its easy handles (not with a libcurl
 * older than 8.1.0: curl_backend.c says why); false for another backend. */
bool ee__transport_curl_reuses_ctx(const void *ctx);
bool ee__transport_curl_reuses(const ee_transport *t);

/* How many attempts this thread's last ee_transport_http() made (tests). */
int ee__transport_last_attempts(void);

#endif
