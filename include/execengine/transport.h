/*
 * execengine/transport.h - how the library talks to the network: HTTP
 * requests (n8n, OpenRouter, Resend-style mail APIs) and SMTP submission.
 *
 * A transport is an opaque handle (ee_transport) around a backend table
 * (ee_transport_backend). The library ships one backend built on libcurl
 * (ee_transport_curl_new()); a host that has its own HTTP stack plugs it in
 * with ee_transport_new_custom(). Either way the library adds, above the
 * backend, the same policy:
 *
 *   - defaults for every limit the request leaves unset (connect and total
 *     timeout, response size cap);
 *   - retries with exponential backoff and jitter, only when repeating the
 *     request cannot do harm: a request marked safe to retry (GET and HEAD
 *     are, by default) after a timeout, a network failure or an HTTP 429,
 *     502, 503 or 504; and any request, a POST included, that the backend
 *     reports never reached the server (connection refused, DNS failure).
 *     A POST that may have been received is never sent twice.
 *
 * Objects. Requests (ee_http_request), responses (ee_http_response), mail
 * messages (ee_mail) and transport options (ee_transport_options) are
 * opaque, built with setters and read with getters. Every input is copied.
 * Header values are treated as secrets: wiped from memory when freed and
 * never written into a message or a log line.
 *
 * Threads. An ee_transport is safe to use from any number of threads at
 * once (the library serialises calls into a backend that does not declare
 * EE_TRANSPORT_THREAD_SAFE). Requests, responses, mails and options are used
 * by one thread at a time and may move between threads.
 */
#ifndef EXECENGINE_TRANSPORT_H
#define EXECENGINE_TRANSPORT_H

#include "common.h"
#include "errors.h"

EE_BEGIN_DECLS

typedef struct ee_transport ee_transport;
typedef struct ee_transport_options ee_transport_options;
typedef struct ee_http_request ee_http_request;
typedef struct ee_http_response ee_http_response;
typedef struct ee_mail ee_mail;

/* ---- the backend table (for backend authors) ---------------------------- */

/** The newest backend table version this header describes. */
#define EE_TRANSPORT_BACKEND_VERSION 1

/** Backend capability: its slots may be called from several threads at once. */
#define EE_TRANSPORT_THREAD_SAFE 0x1u

/**
 * A transport backend. The first field is the table's version, forever:
 * ee_transport_new_custom() refuses 0 and versions newer than the library
 * knows, and copies only the fields the declared version defines. Later
 * versions only append fields. A NULL slot makes the matching call return
 * EE_ENOTSUPPORTED.
 *
 * Version 1:
 *
 * http: perform one attempt of `req` and fill `resp` with
 *   ee_http_response_set_status(), _add_header() and _append_body().
 *   Read the request with the ee_http_request_*() getters; the limits they
 *   return are already resolved (never 0). Return EE_OK when an HTTP
 *   response arrived, whatever its status; otherwise EE_ETIMEOUT,
 *   EE_ENETWORK (call ee_http_response_set_not_sent() first when the
 *   request certainly never reached the server, which allows a retry even
 *   for a POST), EE_ETOOBIG (the body passed the cap: _append_body() says
 *   so) or another status. Retries are the library's job, not the slot's.
 *   Must not put header values in error messages.
 * mail: submit one message (ee_mail getters) to its SMTP server. Return
 *   EE_OK once the server accepted it; EE_ENETWORK, EE_ETIMEOUT, EE_EAUTH
 *   (login refused), EE_EUPSTREAM (the server refused a sender, recipient
 *   or the data) otherwise. Never retried by the library.
 * free: release ctx; called once by ee_transport_free(). May be NULL.
 */
typedef struct ee_transport_backend {
    unsigned version; /* EE_TRANSPORT_BACKEND_VERSION */
    unsigned flags;   /* EE_TRANSPORT_THREAD_SAFE, or 0 */
    ee_status (*http)(void *ctx, const ee_http_request *req, ee_http_response *resp);
    ee_status (*mail)(void *ctx, const ee_mail *msg);
    void (*free)(void *ctx);
} ee_transport_backend;

/* ---- options ------------------------------------------------------------ */

/**
 * Create transport options holding every default. Keys (integers unless
 * said otherwise):
 *
 *   connect_timeout_ms   10000  connecting (TCP + TLS), per attempt
 *   timeout_ms           30000  whole attempt, from connect to last byte
 *   max_response_bytes   16777216 (16 MiB) body size cap: EE_ETOOBIG past it
 *   max_retries          2      extra attempts after the first (0 = none)
 *   retry_initial_ms     200    first backoff; doubles each retry, with jitter
 *   retry_max_ms         5000   longest single backoff (also caps Retry-After)
 *   tls_verify           1      verify the peer's certificate and host name
 *                               (0 turns both off: only for tests)
 *   ca_file    (text)    ""     PEM bundle of trusted CAs (default: system's)
 *   ca_path    (text)    ""     directory of hashed CA certificates
 *   proxy      (text)    unset  proxy URL for every request; "" means no
 *                               proxy. Unset: the environment decides
 *                               (http_proxy, https_proxy, no_proxy, ...).
 *   user_agent (text)    "libexecengine/<version>"
 *
 * *out is owned by the caller (ee_transport_options_free()).
 * Returns EE_OK, EE_EINVAL (out is NULL), EE_ENOMEM.
 */
EE_API ee_status ee_transport_options_new(ee_transport_options **out);

/** Free options. Accepts NULL. */
EE_API void ee_transport_options_free(ee_transport_options *opts);

/**
 * Set an integer option (see ee_transport_options_new()). Returns EE_OK;
 * EE_EINVAL for a NULL argument, an unknown key, a text key, or a value out
 * of range (timeouts 1..86400000, max_response_bytes >= 1, max_retries
 * 0..10, backoffs 0..600000, tls_verify 0 or 1); the message names the key.
 */
EE_API ee_status ee_transport_options_set_int64(ee_transport_options *opts, const char *key,
                                                int64_t value);

/**
 * Set a text option (ca_file, ca_path, proxy, user_agent); `value` is
 * copied; NULL restores the default. Returns EE_OK; EE_EINVAL (NULL opts
 * or key, unknown or integer key, a value with control characters),
 * EE_ETOOBIG (longer than 4096 bytes), EE_ENOMEM.
 */
EE_API ee_status ee_transport_options_set_string(ee_transport_options *opts, const char *key,
                                                 const char *value);

/* ---- transports --------------------------------------------------------- */

/**
 * The libcurl backend: one connection cache shared by every thread
 * (connections are reused), TLS verification on, proxies from the
 * environment unless the `proxy` option says otherwise, http and https
 * only, redirects not followed. `opts` may be NULL (every default) and is
 * copied. *out is owned by the caller (ee_transport_free()); NULL on
 * failure. Thread-safe. Returns EE_OK, EE_EINVAL (out is NULL), EE_ENOMEM,
 * EE_ENOTSUPPORTED (libcurl could not be initialised).
 */
EE_API ee_status ee_transport_curl_new(ee_transport **out, const ee_transport_options *opts);

/**
 * A transport over a host's own backend. The table is copied (only the
 * part its version defines); `ctx` is handed to every slot and released
 * with backend->free by ee_transport_free() (also when this call fails
 * after validating the table: it then owns ctx). `opts` (may be NULL)
 * supplies the defaults and retry policy; its TLS, proxy and user-agent
 * options are for the backend to honour or not. *out is owned by the
 * caller (ee_transport_free()).
 * Returns EE_OK; EE_EINVAL (NULL out or backend); EE_EVERSION (version 0
 * or newer than EE_TRANSPORT_BACKEND_VERSION; ctx not freed); EE_ENOMEM.
 */
EE_API ee_status ee_transport_new_custom(ee_transport **out, const ee_transport_backend *backend,
                                         void *ctx, const ee_transport_options *opts);

/**
 * Free a transport and its backend context. Accepts NULL. Not thread-safe
 * with respect to other calls on the same transport.
 */
EE_API void ee_transport_free(ee_transport *t);

/**
 * Send a request, retrying as the top of this header describes, and
 * return the final answer. An HTTP error status (4xx, 5xx) is EE_OK with
 * the response: interpreting it is the caller's business.
 *
 * *out is owned by the caller (ee_http_response_free()) and NULL on
 * failure. Thread-safe. Returns EE_OK; EE_EINVAL (NULL argument);
 * EE_ETIMEOUT (an attempt ran past its connect or total timeout);
 * EE_ENETWORK (connection refused or reset, DNS failure, TLS failure);
 * EE_ETOOBIG (the body exceeded the size cap); EE_ENOTSUPPORTED (the
 * backend has no http slot); EE_ENOMEM; or what a custom backend returned.
 * The message names the method and the URL without its query string or
 * password, and the number of attempts; never a header value.
 */
EE_API ee_status ee_transport_http(ee_transport *t, const ee_http_request *req,
                                   ee_http_response **out);

/**
 * Submit a mail message through the backend's mail slot (the libcurl
 * backend speaks SMTP/SMTPS with STARTTLS when offered; see ee_mail_new()).
 * Not retried. Thread-safe. Returns EE_OK; EE_EINVAL (NULL argument, no
 * recipient, no server); EE_ENOTSUPPORTED (no mail slot); EE_ENETWORK;
 * EE_ETIMEOUT; EE_EAUTH; EE_EUPSTREAM; EE_ENOMEM.
 */
EE_API ee_status ee_transport_mail(ee_transport *t, const ee_mail *msg);

/* ---- requests ----------------------------------------------------------- */

/**
 * A request: `method` is an HTTP token (GET, POST, PUT, PATCH, DELETE,
 * HEAD, OPTIONS or any other upper-case token), `url` an absolute http:// or
 * https:// URL. GET and HEAD are marked safe to retry; everything else is
 * not, until ee_http_request_set_retry_safe() says so. Limits start unset
 * (0): the transport's defaults apply.
 * *out is owned by the caller (ee_http_request_free()).
 * Returns EE_OK; EE_EINVAL (NULL argument, bad method, URL not http(s) or
 * with spaces or control characters); EE_ETOOBIG (URL over 8192 bytes);
 * EE_ENOMEM.
 */
EE_API ee_status ee_http_request_new(ee_http_request **out, const char *method, const char *url);

/** Free a request, wiping its header values and body. Accepts NULL. */
EE_API void ee_http_request_free(ee_http_request *req);

/**
 * Append a header (name and value copied; the value is wiped on free and
 * never logged). Returns EE_OK; EE_EINVAL (NULL argument, empty name, a
 * name that is not an HTTP token, CR/LF/NUL in the value); EE_ETOOBIG (more
 * than 64 headers, or a value over 8192 bytes); EE_ENOMEM.
 */
EE_API ee_status ee_http_request_add_header(ee_http_request *req, const char *name,
                                            const char *value);

/**
 * Set the body (copied; `len` bytes, may contain NUL; data may be NULL
 * when len is 0). Replaces a previous body. Returns EE_OK, EE_EINVAL,
 * EE_ETOOBIG (over 64 MiB), EE_ENOMEM.
 */
EE_API ee_status ee_http_request_set_body(ee_http_request *req, const void *data, size_t len);

/**
 * Per-request limits: connect timeout and total timeout in milliseconds,
 * response body cap in bytes; 0 keeps the transport's default. Returns
 * EE_OK or EE_EINVAL (NULL request, negative value).
 */
EE_API ee_status ee_http_request_set_limits(ee_http_request *req, int64_t connect_timeout_ms,
                                            int64_t timeout_ms, int64_t max_response_bytes);

/**
 * Whether the request may be sent again after a failure that may have
 * reached the server (1) or not (0): mark a POST safe only when the server
 * makes it idempotent (an idempotency key). Returns EE_OK or EE_EINVAL.
 */
EE_API ee_status ee_http_request_set_retry_safe(ee_http_request *req, int safe);

/**
 * Called with each chunk of a response body as it arrives (see
 * ee_http_request_set_stream()). `resp` is the response being received:
 * its status and headers are readable. Return 0 to go on, non-zero to stop
 * the transfer (ee_transport_http() then returns EE_ECANCELLED).
 */
typedef int (*ee_http_stream_fn)(const ee_http_response *resp, const void *chunk, size_t len,
                                 void *payload);

/**
 * Hand the response body to `fn` (with `payload`) chunk by chunk as the
 * backend receives it, once the status is known, besides keeping it in the
 * response as usual (the size cap still applies). A backend that sets the
 * status only after the whole body has the body delivered at once, before
 * ee_transport_http() returns. Once a chunk has been delivered the request
 * is never retried. NULL fn turns streaming off. Returns EE_OK or
 * EE_EINVAL (NULL request).
 */
EE_API ee_status ee_http_request_set_stream(ee_http_request *req, ee_http_stream_fn fn,
                                            void *payload);

/* Getters, chiefly for backends. Pointers are borrowed from the request and
 * live until it is freed or changed. Inside a backend's http slot the
 * limits are resolved: never 0. */

/** The method ("GET"), or "" for NULL. */
EE_API const char *ee_http_request_method(const ee_http_request *req);
/** The URL, or "" for NULL. */
EE_API const char *ee_http_request_url(const ee_http_request *req);
/** Number of headers (0 for NULL). */
EE_API size_t ee_http_request_header_count(const ee_http_request *req);
/**
 * The i-th header. Returns EE_OK, or EE_EINVAL (NULL argument, i out of
 * range: outputs set to NULL).
 */
EE_API ee_status ee_http_request_header_at(const ee_http_request *req, size_t i,
                                           const char **name, const char **value);
/** The body (NULL and 0 when there is none). Returns EE_OK or EE_EINVAL. */
EE_API ee_status ee_http_request_body(const ee_http_request *req, const void **data, size_t *len);
/** Connect timeout in ms (0: unset, outside a backend). */
EE_API int64_t ee_http_request_connect_timeout_ms(const ee_http_request *req);
/** Total timeout in ms (0: unset, outside a backend). */
EE_API int64_t ee_http_request_timeout_ms(const ee_http_request *req);
/** Response body cap in bytes (0: unset, outside a backend). */
EE_API int64_t ee_http_request_max_response_bytes(const ee_http_request *req);
/** 1 if the request is safe to retry, else 0. */
EE_API int ee_http_request_retry_safe(const ee_http_request *req);

/* ---- responses ---------------------------------------------------------- */

/** Free a response. Accepts NULL. */
EE_API void ee_http_response_free(ee_http_response *resp);

/** The HTTP status (200, 404 ...), 0 for NULL. */
EE_API int ee_http_response_status(const ee_http_response *resp);

/**
 * The value of the first header named `name` (case-insensitive), or NULL.
 * Borrowed from the response: lives until it is freed. Content-Type and
 * Retry-After are always kept; the libcurl backend keeps every header (up
 * to 100 of them, 64 KiB in all).
 */
EE_API const char *ee_http_response_header(const ee_http_response *resp, const char *name);

/**
 * The body, borrowed from the response (lives until it is freed). It is
 * always followed by a NUL byte not counted in *len, so text bodies can be
 * read as C strings. NULL response: *data NULL, *len 0. Returns EE_OK or
 * EE_EINVAL (NULL data or len).
 */
EE_API ee_status ee_http_response_body(const ee_http_response *resp, const void **data,
                                       size_t *len);

/** How many attempts ee_transport_http() made to get this response (>= 1). */
EE_API int ee_http_response_attempts(const ee_http_response *resp);

/* Setters, for backends inside their http slot. */

/** Record the status line's code (100..999). Returns EE_OK or EE_EINVAL. */
EE_API ee_status ee_http_response_set_status(ee_http_response *resp, int status);

/**
 * Record a header (copied). Headers beyond the response's bounds are
 * dropped silently, except Content-Type and Retry-After. Returns EE_OK,
 * EE_EINVAL, EE_ENOMEM.
 */
EE_API ee_status ee_http_response_add_header(ee_http_response *resp, const char *name,
                                             const char *value);

/** Forget the headers recorded so far (an interim 1xx answer). */
EE_API void ee_http_response_clear_headers(ee_http_response *resp);

/**
 * Append body bytes. Returns EE_OK; EE_ETOOBIG when the body would pass
 * the request's max_response_bytes (nothing appended: the slot should stop
 * reading and return EE_ETOOBIG); EE_EINVAL; EE_ENOMEM.
 */
EE_API ee_status ee_http_response_append_body(ee_http_response *resp, const void *data,
                                              size_t len);

/**
 * Declare that the failing attempt certainly never reached the server (no
 * byte of the request was sent), so even a POST may be retried.
 */
EE_API void ee_http_response_set_not_sent(ee_http_response *resp);

/* ---- mail --------------------------------------------------------------- */

/**
 * A mail submission: `server_url` is smtp://host[:port] (STARTTLS used
 * when the server offers it) or smtps://host[:port] (TLS from the start);
 * `from` the envelope sender address. *out is owned by the caller
 * (ee_mail_free()). Returns EE_OK; EE_EINVAL (NULL argument, other scheme,
 * CR/LF in an address); EE_ENOMEM.
 */
EE_API ee_status ee_mail_new(ee_mail **out, const char *server_url, const char *from);

/** Free a mail, wiping its password and content. Accepts NULL. */
EE_API void ee_mail_free(ee_mail *msg);

/**
 * Add an envelope recipient (up to 100). Returns EE_OK; EE_EINVAL (NULL,
 * empty, CR/LF/<> in the address); EE_ETOOBIG; EE_ENOMEM.
 */
EE_API ee_status ee_mail_add_recipient(ee_mail *msg, const char *address);

/**
 * The whole RFC 5322 message (headers, blank line, body; CRLF line ends),
 * copied. Returns EE_OK, EE_EINVAL, EE_ETOOBIG (over 32 MiB), EE_ENOMEM.
 */
EE_API ee_status ee_mail_set_message(ee_mail *msg, const void *data, size_t len);

/**
 * SMTP login (copied; the password is a secret: wiped on free, never in a
 * message). NULL user clears it. Returns EE_OK, EE_EINVAL, EE_ENOMEM.
 */
EE_API ee_status ee_mail_set_login(ee_mail *msg, const char *user, const char *password);

/**
 * Require TLS (1: fail unless the connection is encrypted, through smtps
 * or STARTTLS) or use it when offered (0, the default for smtp://).
 */
EE_API ee_status ee_mail_set_require_tls(ee_mail *msg, int require);

/* Getters for backends; borrowed, live until the mail is freed or changed. */
EE_API const char *ee_mail_server_url(const ee_mail *msg);
EE_API const char *ee_mail_from(const ee_mail *msg);
EE_API size_t ee_mail_recipient_count(const ee_mail *msg);
/** The i-th recipient, or NULL when out of range. */
EE_API const char *ee_mail_recipient_at(const ee_mail *msg, size_t i);
EE_API ee_status ee_mail_message(const ee_mail *msg, const void **data, size_t *len);
/** User (NULL if none) and password (NULL if none): never log them. */
EE_API ee_status ee_mail_login(const ee_mail *msg, const char **user, const char **password);
EE_API int ee_mail_require_tls(const ee_mail *msg);

EE_END_DECLS

#endif
