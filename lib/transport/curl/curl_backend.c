/*
 * The libcurl transport backend.
 *
 * One CURLSH per transport shares the connection cache, DNS cache and TLS
 * sessions between every thread, so connections are reused. An HTTP call
 * takes an easy handle from the transport's pool of idle ones (or makes
 * one) and gives it back reset (curl_easy_reset(): every option back to
 * its default, no header list, body, method or error buffer of the call
 * left in it), so no handle is ever used by two threads at once and no
 * call sees another's options. A fresh handle per call cost a socketpair,
 * four fcntl()s, two close()s and three sigaction()s (the easy handle's
 * own multi handle, made and torn down each time), about 40 us a call on
 * the test machine (docs/gateway.md). Mail keeps a fresh handle per
 * message. Retries are not done here: transport.c does them, for every
 * backend alike. This backend only reports, per attempt, what happened and
 * whether the request certainly never reached the server.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "core/core.h"
#include "execengine/version.h"
#include "transport/transport_internal.h"

/* Idle easy handles kept for reuse; a handle given back beyond this is
 * cleaned up (a burst of concurrent calls does not stay allocated). */
#define CURL_POOL_MAX 16

typedef struct {
    CURLSH *share;
    pthread_mutex_t locks[CURL_LOCK_DATA_LAST];
    ee_transport_options opts;
    char user_agent[80];
    pthread_mutex_t pool_lock;
    CURL *pool[CURL_POOL_MAX]; /* idle handles, reset */
    size_t n_pool;
    uint64_t made;             /* easy handles made for HTTP calls (tests) */
    bool reuse;                /* handles go back to the pool (see REUSE_SAFE_FROM) */
    /* Without reuse: idle multi handles a fresh easy handle runs in (see
     * perform()), at most CURL_POOL_MAX, under pool_lock. */
    CURLM *multis[CURL_POOL_MAX];
    size_t n_multis;
} curl_ctx;

/* libcurl before 8.1.0 keeps a pointer to the last header it stored
 * ("prevhead", for unfolding) across transfers of one easy handle, while
 * the next transfer frees what it points at: a server whose answer's first
 * header line is a continuation (starts with a space or a tab) then makes
 * libcurl read freed memory (heap use-after-free; curl commit "headers:
 * clear (possibly) lingering pointer in init", 8.1.0). Any server the
 * engine calls - n8n, a provider behind the gateway, an e-mail API - could.
 * With such a libcurl no handle serves two calls: each is cleaned up after
 * its call (the CURLSH still shares connections, DNS and TLS sessions).
 * What made a fresh handle cost (its own multi handle, made by
 * curl_easy_perform() and torn down with it: a socketpair, fcntl()s,
 * close()s) is avoided by running it in a pooled multi handle instead
 * (perform()): only the easy handle is new - its header state with it. */
#define REUSE_SAFE_FROM 0x080100

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;

/* curl_global_init is not thread-safe in every libcurl: run it once. It is
 * never undone: the process may have other libcurl users. */
static void global_init(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *payload)
{
    (void)h;
    (void)access;
    curl_ctx *c = payload;
    if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
        pthread_mutex_lock(&c->locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *payload)
{
    (void)h;
    curl_ctx *c = payload;
    if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
        pthread_mutex_unlock(&c->locks[data]);
}

static void ctx_free(void *vctx)
{
    curl_ctx *c = vctx;
    if (c == NULL)
        return;
    /* the handles first: they use the share */
    for (size_t i = 0; i < c->n_pool; i++)
        curl_easy_cleanup(c->pool[i]);
    c->n_pool = 0;
    for (size_t i = 0; i < c->n_multis; i++)
        curl_multi_cleanup(c->multis[i]);
    c->n_multis = 0;
    if (c->share != NULL)
        curl_share_cleanup(c->share);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_destroy(&c->locks[i]);
    pthread_mutex_destroy(&c->pool_lock);
    ee__transport_options_clear(&c->opts);
    free(c);
}

/* ---- the pool of easy handles --------------------------------------------- */

static CURL *handle_take(curl_ctx *c)
{
    CURL *h = NULL;
    pthread_mutex_lock(&c->pool_lock);
    if (c->n_pool > 0)
        h = c->pool[--c->n_pool];
    else
        c->made++;
    pthread_mutex_unlock(&c->pool_lock);
    return h != NULL ? h : curl_easy_init();
}

/* Back to the pool, reset: nothing of the call stays set in it (its header
 * list, body, error buffer and sink are the caller's, freed after). */
static void handle_give_back(curl_ctx *c, CURL *h)
{
    if (!c->reuse) {
        curl_easy_cleanup(h);
        return;
    }
    curl_easy_reset(h);
    pthread_mutex_lock(&c->pool_lock);
    if (c->n_pool < CURL_POOL_MAX) {
        c->pool[c->n_pool++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&c->pool_lock);
    if (h != NULL)
        curl_easy_cleanup(h);
}

/* curl_easy_perform(h), in a multi handle of the pool when easy handles
 * are not reused (each would otherwise make and tear down its own). The
 * multi interface honours the same options (timeouts, callbacks, their
 * aborts); the connection cache is the CURLSH's either way. */
static CURLcode perform(curl_ctx *c, CURL *h)
{
    if (c->reuse)
        return curl_easy_perform(h);
    CURLM *m = NULL;
    pthread_mutex_lock(&c->pool_lock);
    if (c->n_multis > 0)
        m = c->multis[--c->n_multis];
    pthread_mutex_unlock(&c->pool_lock);
    if (m == NULL && (m = curl_multi_init()) == NULL)
        return CURLE_OUT_OF_MEMORY;
    if (curl_multi_add_handle(m, h) != CURLM_OK) {
        curl_multi_cleanup(m);
        return CURLE_OUT_OF_MEMORY;
    }
    CURLcode rc = CURLE_OK;
    bool done = false, healthy = true;
    while (!done) {
        int running = 0;
        CURLMcode mc = curl_multi_perform(m, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left)) != NULL)
            if (msg->msg == CURLMSG_DONE && msg->easy_handle == h) {
                rc = msg->data.result;
                done = true;
            }
        if (done)
            break;
        if (mc != CURLM_OK || running == 0) { /* ended without a result */
            rc = mc == CURLM_OUT_OF_MEMORY ? CURLE_OUT_OF_MEMORY : CURLE_SEND_ERROR;
            healthy = false;
            break;
        }
        /* at most libcurl's own next timeout (the call's, among them) */
        if (curl_multi_poll(m, NULL, 0, 1000, NULL) != CURLM_OK) {
            rc = CURLE_RECV_ERROR;
            healthy = false;
            break;
        }
    }
    if (curl_multi_remove_handle(m, h) != CURLM_OK)
        healthy = false;
    pthread_mutex_lock(&c->pool_lock);
    if (healthy && c->n_multis < CURL_POOL_MAX) {
        c->multis[c->n_multis++] = m;
        m = NULL;
    }
    pthread_mutex_unlock(&c->pool_lock);
    if (m != NULL)
        curl_multi_cleanup(m);
    return rc;
}

bool ee__transport_curl_reuses_ctx(const void *vctx)
{
    return ((const curl_ctx *)vctx)->reuse;
}

uint64_t ee__transport_curl_handles_made(const void *vctx)
{
    curl_ctx *c = (curl_ctx *)vctx;
    pthread_mutex_lock(&c->pool_lock);
    uint64_t n = c->made;
    pthread_mutex_unlock(&c->pool_lock);
    return n;
}

/* ---- options common to HTTP and SMTP -------------------------------------- */

static void set_protocols(CURL *h, const char *list)
{
#if LIBCURL_VERSION_NUM >= 0x075500 /* 7.85.0: CURLOPT_PROTOCOLS_STR */
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, list);
#else
    long mask = strncmp(list, "http", 4) == 0 ? (CURLPROTO_HTTP | CURLPROTO_HTTPS)
                                              : (CURLPROTO_SMTP | CURLPROTO_SMTPS);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS, mask);
#endif
}

static void set_common(curl_ctx *c, CURL *h, int64_t connect_ms, int64_t total_ms, char *errbuf)
{
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L); /* threads: no SIGALRM for DNS timeouts */
    curl_easy_setopt(h, CURLOPT_SHARE, c->share);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)connect_ms);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)total_ms);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, c->opts.tls_verify ? 1L : 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, c->opts.tls_verify ? 2L : 0L);
    if (c->opts.ca_file != NULL && c->opts.ca_file[0] != '\0')
        curl_easy_setopt(h, CURLOPT_CAINFO, c->opts.ca_file);
    if (c->opts.ca_path != NULL && c->opts.ca_path[0] != '\0')
        curl_easy_setopt(h, CURLOPT_CAPATH, c->opts.ca_path);
    /* Unset: libcurl reads http_proxy/https_proxy/no_proxy itself. */
    if (c->opts.proxy != NULL)
        curl_easy_setopt(h, CURLOPT_PROXY, c->opts.proxy);
}

static int64_t clamp_long(int64_t v)
{
    return v > 0x7fffffffL ? 0x7fffffffL : v;
}

/* ---- HTTP -------------------------------------------------------------------- */

typedef struct {
    ee_http_response *resp;
    bool too_big;
    bool nomem;
} http_sink;

static size_t on_body(char *data, size_t size, size_t nmemb, void *payload)
{
    http_sink *s = payload;
    size_t n = size * nmemb;
    ee_status st = ee_http_response_append_body(s->resp, data, n);
    if (st == EE_ETOOBIG)
        s->too_big = true;
    else if (st != EE_OK)
        s->nomem = true;
    return st == EE_OK ? n : 0; /* 0 makes curl stop with CURLE_WRITE_ERROR */
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *payload)
{
    http_sink *s = payload;
    size_t n = size * nmemb;
    if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        /* a new status line: headers of an interim (1xx) answer are dropped;
         * the status is known from here on (a streamed body needs it) */
        ee_http_response_clear_headers(s->resp);
        const char *sp = memchr(data, ' ', n);
        if (sp != NULL && (size_t)(sp - data) + 4 <= n) {
            int code = 0;
            for (int i = 1; i <= 3 && sp[i] >= '0' && sp[i] <= '9'; i++)
                code = code * 10 + (sp[i] - '0');
            if (code >= 100)
                ee_http_response_set_status(s->resp, code);
        }
        return n;
    }
    const char *colon = memchr(data, ':', n);
    if (colon == NULL || colon == data || n > 16384)
        return n;
    char name[256], value[16384];
    size_t nlen = (size_t)(colon - data);
    if (nlen >= sizeof name)
        return n;
    memcpy(name, data, nlen);
    name[nlen] = '\0';
    const char *v = colon + 1, *end = data + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t vlen = (size_t)(end - v);
    if (vlen >= sizeof value)
        return n;
    memcpy(value, v, vlen);
    value[vlen] = '\0';
    if (memchr(value, '\0', vlen) == NULL && ee_http_response_add_header(s->resp, name, value) != EE_OK)
        s->nomem = true;
    return n;
}

static void slist_wipe_free(struct curl_slist *l)
{
    for (struct curl_slist *p = l; p != NULL; p = p->next)
        OPENSSL_cleanse(p->data, strlen(p->data));
    curl_slist_free_all(l);
}

/* Header lines "Name: value" for curl (values may be secrets: wiped after). */
static ee_status build_headers(const ee_http_request *req, struct curl_slist **out)
{
    struct curl_slist *list = NULL;
    size_t count = ee_http_request_header_count(req);
    for (size_t i = 0; i < count; i++) {
        const char *name, *value;
        (void)ee_http_request_header_at(req, i, &name, &value);
        size_t len = strlen(name) + strlen(value) + 3;
        char *line = malloc(len);
        if (line == NULL)
            goto nomem;
        /* "Name;" is curl's way to send a header with an empty value */
        if (value[0] == '\0')
            snprintf(line, len, "%s;", name);
        else
            snprintf(line, len, "%s: %s", name, value);
        struct curl_slist *next = curl_slist_append(list, line);
        OPENSSL_cleanse(line, len);
        free(line);
        if (next == NULL)
            goto nomem;
        list = next;
    }
    /* No "Expect: 100-continue" round trip before a large body. */
    struct curl_slist *next = curl_slist_append(list, "Expect:");
    if (next == NULL)
        goto nomem;
    *out = next;
    return EE_OK;
nomem:
    slist_wipe_free(list);
    return ee__error(EE_ENOMEM, "out of memory building request headers");
}

static void set_method(CURL *h, const ee_http_request *req)
{
    const char *m = ee_http_request_method(req);
    const void *body;
    size_t len;
    (void)ee_http_request_body(req, &body, &len);
    if (strcmp(m, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
        return;
    }
    if (strcmp(m, "GET") == 0 && len == 0)
        return;
    /* Every other method, or a body: send the bytes as given, whatever the
     * method, with CURLOPT_CUSTOMREQUEST naming it. */
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, len ? body : "");
    if (strcmp(m, "POST") != 0)
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, m);
    else if (len == 0)
        curl_easy_setopt(h, CURLOPT_POST, 1L);
}

/* Whether the request certainly never left: no connection was made. */
static bool never_sent(CURL *h)
{
    curl_off_t connect_us = 0;
    long request_size = 0;
    curl_easy_getinfo(h, CURLINFO_CONNECT_TIME_T, &connect_us);
    curl_easy_getinfo(h, CURLINFO_REQUEST_SIZE, &request_size);
    return connect_us == 0 && request_size == 0;
}

static ee_status map_http_error(CURL *h, CURLcode rc, const http_sink *sink, const char *errbuf,
                                ee_http_response *resp)
{
    const char *why = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    if (sink->too_big || rc == CURLE_FILESIZE_EXCEEDED)
        return ee__error(EE_ETOOBIG, "response body is larger than the %lld-byte cap",
                         (long long)resp->max_body);
    if (sink->nomem || rc == CURLE_OUT_OF_MEMORY)
        return ee__error(EE_ENOMEM, "out of memory receiving a response");
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
        if (never_sent(h))
            ee_http_response_set_not_sent(resp);
        return ee__error(EE_ETIMEOUT, "timed out: %s", why);
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        ee_http_response_set_not_sent(resp);
        return ee__error(EE_ENETWORK, "could not connect: %s", why);
    case CURLE_UNSUPPORTED_PROTOCOL:
        /* Before a connection it is the URL's scheme; after, the server's
         * answer was not HTTP (libcurl reports an answer without a status
         * line, "HTTP/0.9", so): a broken answer is the network's failure,
         * as a malformed chunk is - not a bad argument of the caller's, which
         * the e-mail outbox fails a message for at once. */
        if (!never_sent(h))
            return ee__error(EE_ENETWORK, "the server's answer is not HTTP: %s", why);
        return ee__error(EE_EINVAL, "bad URL: %s", why);
    case CURLE_URL_MALFORMAT:
        return ee__error(EE_EINVAL, "bad URL: %s", why);
    default:
        return ee__error(EE_ENETWORK, "%s", why);
    }
}

static ee_status curl_http(void *vctx, const ee_http_request *req, ee_http_response *resp)
{
    curl_ctx *c = vctx;
    CURL *h = handle_take(c);
    if (h == NULL)
        return ee__error(EE_ENOMEM, "could not create a libcurl handle");
    struct curl_slist *headers = NULL;
    ee_status st = build_headers(req, &headers);
    if (st != EE_OK) {
        handle_give_back(c, h);
        return st;
    }
    char errbuf[CURL_ERROR_SIZE];
    errbuf[0] = '\0';
    http_sink sink = {resp, false, false};
    set_common(c, h, clamp_long(ee_http_request_connect_timeout_ms(req)),
               clamp_long(ee_http_request_timeout_ms(req)), errbuf);
    set_protocols(h, "http,https");
    curl_easy_setopt(h, CURLOPT_URL, ee_http_request_url(req));
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_USERAGENT, c->user_agent);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, ""); /* the cap applies after decoding */
    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE,
                     (curl_off_t)ee_http_request_max_response_bytes(req));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &sink);
    set_method(h, req);

    CURLcode rc = perform(c, h);
    if (rc == CURLE_OK) {
        long code = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
        st = ee_http_response_set_status(resp, (int)code);
        if (st != EE_OK)
            st = ee__error(EE_EUPSTREAM, "the server sent no valid HTTP status (%ld)", code);
    } else {
        st = map_http_error(h, rc, &sink, errbuf, resp);
    }
    handle_give_back(c, h);
    slist_wipe_free(headers);
    return st;
}

/* ---- SMTP -------------------------------------------------------------------- */

typedef struct {
    const unsigned char *data;
    size_t len, pos;
} mail_source;

static size_t on_mail_read(char *buf, size_t size, size_t nmemb, void *payload)
{
    mail_source *s = payload;
    size_t room = size * nmemb, left = s->len - s->pos;
    size_t n = left < room ? left : room;
    memcpy(buf, s->data + s->pos, n);
    s->pos += n;
    return n;
}

static ee_status map_mail_error(CURL *h, CURLcode rc, const char *errbuf)
{
    const char *why = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
        return ee__error(EE_ETIMEOUT, "SMTP timed out: %s", why);
    case CURLE_LOGIN_DENIED:
        return ee__error_full(EE_EAUTH, (int)code, NULL, "SMTP login refused: %s", why);
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return ee__error(EE_ENETWORK, "could not connect to the SMTP server: %s", why);
    case CURLE_USE_SSL_FAILED:
        return ee__error(EE_ENETWORK, "the SMTP server did not offer STARTTLS and the message "
                                      "requires TLS: nothing was sent");
    case CURLE_OUT_OF_MEMORY:
        return ee__error(EE_ENOMEM, "out of memory submitting mail");
    default:
        if (code >= 400)
            return ee__error_full(EE_EUPSTREAM, (int)code, NULL, "SMTP server refused: %s", why);
        return ee__error(EE_ENETWORK, "SMTP: %s", why);
    }
}

static ee_status curl_mail(void *vctx, const ee_mail *msg)
{
    curl_ctx *c = vctx;
    CURL *h = curl_easy_init();
    if (h == NULL)
        return ee__error(EE_ENOMEM, "could not create a libcurl handle");
    struct curl_slist *rcpt = NULL;
    ee_status st = EE_OK;
    char addr[400];
    for (size_t i = 0; i < ee_mail_recipient_count(msg); i++) {
        snprintf(addr, sizeof addr, "<%s>", ee_mail_recipient_at(msg, i));
        struct curl_slist *next = curl_slist_append(rcpt, addr);
        if (next == NULL) {
            curl_slist_free_all(rcpt);
            curl_easy_cleanup(h);
            return ee__error(EE_ENOMEM, "out of memory listing recipients");
        }
        rcpt = next;
    }
    char from[400];
    snprintf(from, sizeof from, "<%s>", ee_mail_from(msg));
    mail_source src = {NULL, 0, 0};
    const void *data;
    (void)ee_mail_message(msg, &data, &src.len);
    src.data = data;
    const char *user, *password;
    (void)ee_mail_login(msg, &user, &password);

    char errbuf[CURL_ERROR_SIZE];
    errbuf[0] = '\0';
    set_common(c, h, c->opts.connect_timeout_ms, c->opts.timeout_ms, errbuf);
    set_protocols(h, "smtp,smtps");
    curl_easy_setopt(h, CURLOPT_URL, ee_mail_server_url(msg));
    curl_easy_setopt(h, CURLOPT_MAIL_FROM, from);
    curl_easy_setopt(h, CURLOPT_MAIL_RCPT, rcpt);
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, on_mail_read);
    curl_easy_setopt(h, CURLOPT_READDATA, &src);
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)src.len);
    curl_easy_setopt(h, CURLOPT_USE_SSL, ee_mail_require_tls(msg) ? (long)CURLUSESSL_ALL
                                                                   : (long)CURLUSESSL_TRY);
    if (user != NULL) {
        curl_easy_setopt(h, CURLOPT_USERNAME, user);
        curl_easy_setopt(h, CURLOPT_PASSWORD, password ? password : "");
    }
    CURLcode rc = curl_easy_perform(h);
    if (rc != CURLE_OK)
        st = map_mail_error(h, rc, errbuf);
    curl_easy_cleanup(h);
    curl_slist_free_all(rcpt);
    return st;
}

/* ---- construction -------------------------------------------------------------- */

static const ee_transport_backend curl_table = {
    .version = 1,
    .flags = EE_TRANSPORT_THREAD_SAFE,
    .http = curl_http,
    .mail = curl_mail,
    .free = ctx_free,
};

const ee_transport_backend *ee__transport_curl_table(void)
{
    return &curl_table;
}

ee_status ee__transport_curl_backend(const ee_transport_options *opts,
                                     const ee_transport_backend **table, void **out)
{
    (void)pthread_once(&global_once, global_init);
    if (global_rc != CURLE_OK)
        return ee__error(EE_ENOTSUPPORTED, "libcurl could not be initialised: %s",
                         curl_easy_strerror(global_rc));
    curl_ctx *c = calloc(1, sizeof *c);
    if (c == NULL)
        return ee__error(EE_ENOMEM, "out of memory creating the curl transport");
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&c->locks[i], NULL);
    pthread_mutex_init(&c->pool_lock, NULL);
    if (ee__transport_options_copy(&c->opts, opts) != EE_OK || (c->share = curl_share_init()) == NULL) {
        ctx_free(c);
        return ee__error(EE_ENOMEM, "out of memory creating the curl transport");
    }
    curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, share_lock);
    curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
    curl_share_setopt(c->share, CURLSHOPT_USERDATA, c);
    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    c->reuse = v != NULL && v->version_num >= REUSE_SAFE_FROM;
    snprintf(c->user_agent, sizeof c->user_agent, "%s",
             c->opts.user_agent ? c->opts.user_agent : "libexecengine/" EE_VERSION_STRING);
    *table = &curl_table;
    *out = c;
    return EE_OK;
}
