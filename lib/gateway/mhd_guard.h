/*
 * lib/gateway/mhd_guard.h - what libmicrohttpd 0.9 serves and should not:
 * the checks the gateway listener (listen.c) and the example server
 * (examples/server/server.c) both make before a request reaches them.
 * Header-only, libmicrohttpd glue and nothing of the library's (no ee_
 * symbol, no engine): a host that embeds libmicrohttpd may use it as is.
 *
 *   MHD_start_daemon(...,
 *       MHD_OPTION_NOTIFY_CONNECTION, ee__mhd_on_connection, NULL,
 *       MHD_OPTION_UNESCAPE_CALLBACK, ee__mhd_unescape, NULL, ...);
 *   // in the handler, at a request's first call:
 *   if (ee__mhd_url_nul(c))                 -> 400
 *   if (ee__mhd_framing_error(c, version))  -> 400, Connection: close
 *
 * - "%00" in the path or query: libmicrohttpd decodes both into C strings
 *   before the handler sees them, so "/x/<id>%00junk" would reach it as
 *   "/x/<id>" and "?q=a%00b" as "q=a" - input silently cut, not refused.
 *   The unescape callback notes a decoded NUL in the connection's state
 *   (MHD_OPTION_NOTIFY_CONNECTION's socket context).
 * - Framing a proxy in front may read otherwise (RFC 9112 6.3, 3.2): two
 *   Content-Length headers (libmicrohttpd reads the first), one beside
 *   Transfer-Encoding (chunked wins), an HTTP/1.1 request without Host.
 *   Where such a body ends is unknown: the answer closes the connection.
 */
#ifndef EE_GATEWAY_MHD_GUARD_H
#define EE_GATEWAY_MHD_GUARD_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A connection's state: whether the request being read had "%00". */
typedef struct {
    bool url_nul;
} ee__mhd_conn;

/* MHD_OPTION_NOTIFY_CONNECTION: the state's life. calloc() may fail: the
 * state is then NULL, and ee__mhd_url_nul() answers as if %00 was seen
 * (the request is refused rather than read unchecked). */
static inline void ee__mhd_on_connection(void *cls, struct MHD_Connection *c,
                                         void **socket_context,
                                         enum MHD_ConnectionNotificationCode toe)
{
    (void)cls;
    (void)c;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        *socket_context = calloc(1, sizeof(ee__mhd_conn));
    } else {
        free(*socket_context);
        *socket_context = NULL;
    }
}

static inline ee__mhd_conn *ee__mhd_conn_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci != NULL ? (ee__mhd_conn *)ci->socket_context : NULL;
}

/* MHD_OPTION_UNESCAPE_CALLBACK: libmicrohttpd's own decoding of the path
 * and of each query key and value, noting a decoded NUL (on the
 * connection's thread, before the handler). */
static inline size_t ee__mhd_unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    size_t n = MHD_http_unescape(s);
    if (strlen(s) != n) {
        ee__mhd_conn *cs = ee__mhd_conn_of(c);
        if (cs != NULL)
            cs->url_nul = true;
    }
    return n;
}

/* Whether the request being read had "%00" in its path or query (or its
 * connection has no state to tell); the flag is this request's, cleared
 * for the next one on the connection. */
static inline bool ee__mhd_url_nul(struct MHD_Connection *c)
{
    ee__mhd_conn *cs = ee__mhd_conn_of(c);
    if (cs == NULL)
        return true;
    bool seen = cs->url_nul;
    cs->url_nul = false;
    return seen;
}

static inline enum MHD_Result ee__mhd_count_framing(void *cls, enum MHD_ValueKind kind,
                                                    const char *key, const char *value)
{
    (void)kind;
    (void)value;
    unsigned *n = cls; /* [0] Content-Length headers, [1] Transfer-Encoding headers */
    if (strcasecmp(key, "Content-Length") == 0)
        n[0]++;
    else if (strcasecmp(key, "Transfer-Encoding") == 0)
        n[1]++;
    return MHD_YES;
}

/* Why the request's framing is refused, or NULL. */
static inline const char *ee__mhd_framing_error(struct MHD_Connection *c, const char *version)
{
    unsigned n[2] = {0, 0};
    MHD_get_connection_values(c, MHD_HEADER_KIND, ee__mhd_count_framing, n);
    if (n[0] > 1)
        return "more than one Content-Length header";
    if (n[0] > 0 && n[1] > 0)
        return "both Content-Length and Transfer-Encoding";
    if (strcmp(version, MHD_HTTP_VERSION_1_1) == 0 &&
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host") == NULL)
        return "an HTTP/1.1 request without Host";
    return NULL;
}

#endif
