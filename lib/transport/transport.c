/*
 * The transport handle, its request/response/mail objects, and the policy
 * the library applies above any backend: limits' defaults, and retries with
 * exponential backoff and jitter for requests that are safe to repeat.
 */
#include "transport/transport_internal.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>

#include "core/core.h"

struct ee_transport {
    ee_transport_backend vt; /* only the declared version's part is copied */
    void *ctx;
    ee_transport_options opts;
    bool serialise; /* backend is not thread-safe */
    pthread_mutex_t lock;
};

static _Thread_local int tls_last_attempts;

int ee__transport_last_attempts(void)
{
    return tls_last_attempts;
}

/* ---- small helpers --------------------------------------------------------- */

static void wipe_free(void *p, size_t len)
{
    if (p == NULL)
        return;
    OPENSSL_cleanse(p, len);
    free(p);
}

static void wipe_free_str(char *s)
{
    if (s != NULL)
        wipe_free(s, strlen(s));
}

static bool has_ctl(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

/* RFC 9110 token characters. */
static bool is_token(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= 0x20 || c >= 0x7f || strchr("\"(),/:;<=>?@[\\]{}", c) != NULL)
            return false;
    }
    return true;
}

/* ---- options --------------------------------------------------------------- */

void ee__transport_options_defaults(ee_transport_options *o)
{
    memset(o, 0, sizeof *o);
    o->connect_timeout_ms = 10000;
    o->timeout_ms = 30000;
    o->max_response_bytes = 16 * 1024 * 1024;
    o->max_retries = 2;
    o->retry_initial_ms = 200;
    o->retry_max_ms = 5000;
    o->tls_verify = 1;
}

void ee__transport_options_clear(ee_transport_options *o)
{
    if (o == NULL)
        return;
    free(o->ca_file);
    free(o->ca_path);
    wipe_free_str(o->proxy); /* a proxy URL may carry a password */
    free(o->user_agent);
    o->ca_file = o->ca_path = o->proxy = o->user_agent = NULL;
}

static ee_status dup_opt(char **dst, const char *src)
{
    *dst = NULL;
    if (src == NULL)
        return EE_OK;
    *dst = strdup(src);
    return *dst ? EE_OK : EE_ENOMEM;
}

ee_status ee__transport_options_copy(ee_transport_options *dst, const ee_transport_options *src)
{
    ee__transport_options_defaults(dst);
    if (src == NULL)
        return EE_OK;
    *dst = *src;
    dst->ca_file = dst->ca_path = dst->proxy = dst->user_agent = NULL;
    if (dup_opt(&dst->ca_file, src->ca_file) != EE_OK || dup_opt(&dst->ca_path, src->ca_path) != EE_OK
        || dup_opt(&dst->proxy, src->proxy) != EE_OK
        || dup_opt(&dst->user_agent, src->user_agent) != EE_OK) {
        ee__transport_options_clear(dst);
        return EE_ENOMEM;
    }
    return EE_OK;
}

ee_status ee_transport_options_new(ee_transport_options **out)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee_transport_options_new: out is NULL");
    *out = malloc(sizeof **out);
    if (*out == NULL)
        return ee__error(EE_ENOMEM, "out of memory creating transport options");
    ee__transport_options_defaults(*out);
    return EE_OK;
}

void ee_transport_options_free(ee_transport_options *opts)
{
    ee__transport_options_clear(opts);
    free(opts);
}

typedef struct {
    const char *key;
    size_t offset;
    int64_t min, max;
} int_option;

static const int_option int_options[] = {
    {"connect_timeout_ms", offsetof(ee_transport_options, connect_timeout_ms), 1, 86400000},
    {"timeout_ms", offsetof(ee_transport_options, timeout_ms), 1, 86400000},
    {"max_response_bytes", offsetof(ee_transport_options, max_response_bytes), 1, INT64_MAX},
    {"max_retries", offsetof(ee_transport_options, max_retries), 0, 10},
    {"retry_initial_ms", offsetof(ee_transport_options, retry_initial_ms), 0, 600000},
    {"retry_max_ms", offsetof(ee_transport_options, retry_max_ms), 0, 600000},
    {"tls_verify", offsetof(ee_transport_options, tls_verify), 0, 1},
};

ee_status ee_transport_options_set_int64(ee_transport_options *opts, const char *key,
                                         int64_t value)
{
    if (opts == NULL || key == NULL)
        return ee__error(EE_EINVAL, "ee_transport_options_set_int64: NULL argument");
    for (size_t i = 0; i < sizeof int_options / sizeof int_options[0]; i++) {
        const int_option *o = &int_options[i];
        if (strcmp(o->key, key) != 0)
            continue;
        if (value < o->min || value > o->max)
            return ee__error(EE_EINVAL,
                             "transport option %s: %lld is out of range %lld..%lld", key,
                             (long long)value, (long long)o->min, (long long)o->max);
        *(int64_t *)(void *)((char *)opts + o->offset) = value;
        return EE_OK;
    }
    char q[80];
    ee__quote_for_message(key, q, sizeof q);
    return ee__error(EE_EINVAL, "unknown integer transport option '%s'", q);
}

ee_status ee_transport_options_set_string(ee_transport_options *opts, const char *key,
                                          const char *value)
{
    if (opts == NULL || key == NULL)
        return ee__error(EE_EINVAL, "ee_transport_options_set_string: NULL argument");
    char **slot = NULL;
    if (strcmp(key, "ca_file") == 0)
        slot = &opts->ca_file;
    else if (strcmp(key, "ca_path") == 0)
        slot = &opts->ca_path;
    else if (strcmp(key, "proxy") == 0)
        slot = &opts->proxy;
    else if (strcmp(key, "user_agent") == 0)
        slot = &opts->user_agent;
    if (slot == NULL) {
        char q[80];
        ee__quote_for_message(key, q, sizeof q);
        return ee__error(EE_EINVAL, "unknown text transport option '%s'", q);
    }
    if (value != NULL && strlen(value) > EE__OPTION_TEXT_MAX)
        return ee__error(EE_ETOOBIG, "transport option %s: value longer than %d bytes", key,
                         EE__OPTION_TEXT_MAX);
    if (value != NULL && has_ctl(value))
        return ee__error(EE_EINVAL, "transport option %s: value has control characters", key);
    char *copy = NULL;
    if (value != NULL && (copy = strdup(value)) == NULL)
        return ee__error(EE_ENOMEM, "out of memory setting transport option %s", key);
    if (slot == &opts->proxy)
        wipe_free_str(*slot);
    else
        free(*slot);
    *slot = copy;
    return EE_OK;
}

/* ---- requests -------------------------------------------------------------- */

static bool url_ok(const char *url)
{
    size_t skip;
    if (strncasecmp(url, "http://", 7) == 0)
        skip = 7;
    else if (strncasecmp(url, "https://", 8) == 0)
        skip = 8;
    else
        return false;
    if (url[skip] == '\0' || url[skip] == '/')
        return false;
    for (const char *p = url; *p != '\0'; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return false;
    return true;
}

ee_status ee_http_request_new(ee_http_request **out, const char *method, const char *url)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee_http_request_new: out is NULL");
    *out = NULL;
    if (method == NULL || url == NULL)
        return ee__error(EE_EINVAL, "ee_http_request_new: NULL method or URL");
    size_t mlen = strlen(method);
    bool mok = mlen > 0 && mlen < sizeof((ee_http_request *)0)->method;
    for (size_t i = 0; mok && i < mlen; i++)
        mok = method[i] >= 'A' && method[i] <= 'Z';
    if (!mok) {
        char q[40];
        ee__quote_for_message(method, q, sizeof q);
        return ee__error(EE_EINVAL, "HTTP method '%s' is not an upper-case token", q);
    }
    if (strlen(url) > EE__HTTP_MAX_URL)
        return ee__error(EE_ETOOBIG, "URL longer than %d bytes", EE__HTTP_MAX_URL);
    if (!url_ok(url))
        return ee__error(EE_EINVAL,
                         "URL must be absolute http:// or https:// with a host and no spaces "
                         "or control characters");
    ee_http_request *r = calloc(1, sizeof *r);
    if (r == NULL || (r->url = strdup(url)) == NULL) {
        free(r);
        return ee__error(EE_ENOMEM, "out of memory creating an HTTP request");
    }
    memcpy(r->method, method, mlen + 1);
    r->retry_safe = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    *out = r;
    return EE_OK;
}

void ee_http_request_free(ee_http_request *req)
{
    if (req == NULL)
        return;
    for (size_t i = 0; i < req->header_count; i++) {
        free(req->headers[i].name);
        wipe_free_str(req->headers[i].value);
    }
    wipe_free_str(req->url); /* a URL may hold a token in its query */
    wipe_free(req->body, req->body_len);
    free(req);
}

ee_status ee_http_request_add_header(ee_http_request *req, const char *name, const char *value)
{
    if (req == NULL || name == NULL || value == NULL)
        return ee__error(EE_EINVAL, "ee_http_request_add_header: NULL argument");
    if (!is_token(name)) {
        char q[80];
        ee__quote_for_message(name, q, sizeof q);
        return ee__error(EE_EINVAL, "header name '%s' is not an HTTP token", q);
    }
    if (strpbrk(value, "\r\n") != NULL) /* never echo the value: it may be a key */
        return ee__error(EE_EINVAL, "header %s: value contains CR or LF", name);
    if (strlen(value) > EE__HTTP_MAX_HEADER_VALUE)
        return ee__error(EE_ETOOBIG, "header %s: value longer than %d bytes", name,
                         EE__HTTP_MAX_HEADER_VALUE);
    if (req->header_count == EE__HTTP_MAX_HEADERS)
        return ee__error(EE_ETOOBIG, "more than %d headers on one request", EE__HTTP_MAX_HEADERS);
    ee__header *h = &req->headers[req->header_count];
    h->name = strdup(name);
    h->value = strdup(value);
    if (h->name == NULL || h->value == NULL) {
        free(h->name);
        wipe_free_str(h->value);
        h->name = h->value = NULL;
        return ee__error(EE_ENOMEM, "out of memory adding a header");
    }
    req->header_count++;
    return EE_OK;
}

ee_status ee_http_request_set_body(ee_http_request *req, const void *data, size_t len)
{
    if (req == NULL || (data == NULL && len > 0))
        return ee__error(EE_EINVAL, "ee_http_request_set_body: NULL argument");
    if (len > EE__HTTP_MAX_BODY)
        return ee__error(EE_ETOOBIG, "request body of %zu bytes is over the %zu-byte limit", len,
                         EE__HTTP_MAX_BODY);
    unsigned char *copy = NULL;
    if (len > 0) {
        if ((copy = malloc(len)) == NULL)
            return ee__error(EE_ENOMEM, "out of memory copying a request body");
        memcpy(copy, data, len);
    }
    wipe_free(req->body, req->body_len);
    req->body = copy;
    req->body_len = len;
    return EE_OK;
}

ee_status ee_http_request_set_limits(ee_http_request *req, int64_t connect_timeout_ms,
                                     int64_t timeout_ms, int64_t max_response_bytes)
{
    if (req == NULL)
        return ee__error(EE_EINVAL, "ee_http_request_set_limits: NULL request");
    if (connect_timeout_ms < 0 || timeout_ms < 0 || max_response_bytes < 0)
        return ee__error(EE_EINVAL, "HTTP request limits must not be negative");
    req->connect_timeout_ms = connect_timeout_ms;
    req->timeout_ms = timeout_ms;
    req->max_response_bytes = max_response_bytes;
    return EE_OK;
}

ee_status ee_http_request_set_stream(ee_http_request *req, ee_http_stream_fn fn, void *payload)
{
    if (req == NULL)
        return ee__error(EE_EINVAL, "ee_http_request_set_stream: NULL request");
    req->stream = fn;
    req->stream_payload = fn != NULL ? payload : NULL;
    return EE_OK;
}

ee_status ee_http_request_set_retry_safe(ee_http_request *req, int safe)
{
    if (req == NULL)
        return ee__error(EE_EINVAL, "ee_http_request_set_retry_safe: NULL request");
    req->retry_safe = safe != 0;
    return EE_OK;
}

const char *ee_http_request_method(const ee_http_request *req)
{
    return req ? req->method : "";
}

const char *ee_http_request_url(const ee_http_request *req)
{
    return req ? req->url : "";
}

size_t ee_http_request_header_count(const ee_http_request *req)
{
    return req ? req->header_count : 0;
}

ee_status ee_http_request_header_at(const ee_http_request *req, size_t i, const char **name,
                                    const char **value)
{
    if (name != NULL)
        *name = NULL;
    if (value != NULL)
        *value = NULL;
    if (req == NULL || name == NULL || value == NULL || i >= req->header_count)
        return ee__error(EE_EINVAL, "ee_http_request_header_at: no header %zu", i);
    *name = req->headers[i].name;
    *value = req->headers[i].value;
    return EE_OK;
}

ee_status ee_http_request_body(const ee_http_request *req, const void **data, size_t *len)
{
    if (req == NULL || data == NULL || len == NULL)
        return ee__error(EE_EINVAL, "ee_http_request_body: NULL argument");
    *data = req->body;
    *len = req->body_len;
    return EE_OK;
}

int64_t ee_http_request_connect_timeout_ms(const ee_http_request *req)
{
    return req ? req->connect_timeout_ms : 0;
}

int64_t ee_http_request_timeout_ms(const ee_http_request *req)
{
    return req ? req->timeout_ms : 0;
}

int64_t ee_http_request_max_response_bytes(const ee_http_request *req)
{
    return req ? req->max_response_bytes : 0;
}

int ee_http_request_retry_safe(const ee_http_request *req)
{
    return req ? req->retry_safe : 0;
}

void ee__transport_describe(const ee_http_request *req, char *out, size_t cap)
{
    /* scheme://[user[:pass]@]host/path?query -> scheme://host/path */
    char tmp[512];
    const char *url = req->url;
    const char *auth = strstr(url, "://");
    size_t n = 0;
    if (auth != NULL) {
        auth += 3;
        size_t scheme_len = (size_t)(auth - url);
        size_t alen = strcspn(auth, "/?#");
        const char *at = memchr(auth, '@', alen);
        const char *host = at ? at + 1 : auth;
        size_t rest = strcspn(host, "?#");
        n = (size_t)snprintf(tmp, sizeof tmp, "%.*s%.*s", (int)scheme_len, url,
                             (int)(rest > 400 ? 400 : rest), host);
    }
    (void)n;
    char q[480];
    ee__quote_for_message(auth ? tmp : "(bad URL)", q, sizeof q);
    snprintf(out, cap, "%s %s", req->method, q);
}

/* ---- responses ------------------------------------------------------------- */

/* Deliver what the stream has not had yet (ee_http_request_set_stream()). */
static ee_status stream_out(ee_http_response *resp)
{
    if (resp->stream == NULL || resp->streamed >= resp->body_len)
        return EE_OK;
    if (resp->stream_stopped ||
        resp->stream(resp, resp->body + resp->streamed, resp->body_len - resp->streamed,
                     resp->stream_payload) != 0) {
        resp->stream_stopped = true;
        return ee__error(EE_ECANCELLED, "the response's receiver stopped it");
    }
    resp->streamed = resp->body_len;
    return EE_OK;
}

static ee_http_response *response_new(size_t max_body)
{
    ee_http_response *r = calloc(1, sizeof *r);
    if (r != NULL)
        r->max_body = max_body;
    return r;
}

void ee_http_response_free(ee_http_response *resp)
{
    if (resp == NULL)
        return;
    ee_http_response_clear_headers(resp);
    free(resp->headers);
    free(resp->body);
    free(resp);
}

int ee_http_response_status(const ee_http_response *resp)
{
    return resp ? resp->status : 0;
}

const char *ee_http_response_header(const ee_http_response *resp, const char *name)
{
    if (resp == NULL || name == NULL)
        return NULL;
    for (size_t i = 0; i < resp->header_count; i++)
        if (strcasecmp(resp->headers[i].name, name) == 0)
            return resp->headers[i].value;
    return NULL;
}

ee_status ee_http_response_body(const ee_http_response *resp, const void **data, size_t *len)
{
    if (data == NULL || len == NULL)
        return ee__error(EE_EINVAL, "ee_http_response_body: NULL argument");
    static const char empty[1] = "";
    *data = resp ? (resp->body ? (const void *)resp->body : (const void *)empty) : NULL;
    *len = resp ? resp->body_len : 0;
    return EE_OK;
}

int ee_http_response_attempts(const ee_http_response *resp)
{
    return resp ? resp->attempts : 0;
}

ee_status ee_http_response_set_status(ee_http_response *resp, int status)
{
    if (resp == NULL || status < 100 || status > 999)
        return ee__error(EE_EINVAL, "HTTP status %d is out of range", status);
    resp->status = status;
    return EE_OK;
}

ee_status ee_http_response_add_header(ee_http_response *resp, const char *name, const char *value)
{
    if (resp == NULL || name == NULL || value == NULL)
        return ee__error(EE_EINVAL, "ee_http_response_add_header: NULL argument");
    size_t need = strlen(name) + strlen(value) + 2;
    bool vital = strcasecmp(name, "content-type") == 0 || strcasecmp(name, "retry-after") == 0;
    if (!vital && (resp->header_count >= EE__HTTP_RESP_MAX_HEADERS
                   || resp->header_bytes + need > EE__HTTP_RESP_MAX_HEADER_BYTES))
        return EE_OK; /* bounded: extra headers are dropped */
    if (vital && need > EE__HTTP_MAX_HEADER_VALUE)
        return EE_OK;
    if (resp->header_count == resp->header_cap) {
        ee__header *h = ee__grow(resp->headers, &resp->header_cap, sizeof *h, 8);
        if (h == NULL)
            return ee__error(EE_ENOMEM, "out of memory keeping a response header");
        resp->headers = h;
    }
    ee__header *h = &resp->headers[resp->header_count];
    h->name = strdup(name);
    h->value = strdup(value);
    if (h->name == NULL || h->value == NULL) {
        free(h->name);
        free(h->value);
        return ee__error(EE_ENOMEM, "out of memory keeping a response header");
    }
    resp->header_count++;
    resp->header_bytes += need;
    return EE_OK;
}

void ee_http_response_clear_headers(ee_http_response *resp)
{
    if (resp == NULL)
        return;
    for (size_t i = 0; i < resp->header_count; i++) {
        free(resp->headers[i].name);
        free(resp->headers[i].value);
    }
    resp->header_count = 0;
    resp->header_bytes = 0;
}

ee_status ee_http_response_append_body(ee_http_response *resp, const void *data, size_t len)
{
    if (resp == NULL || (data == NULL && len > 0))
        return ee__error(EE_EINVAL, "ee_http_response_append_body: NULL argument");
    if (len > resp->max_body || resp->body_len > resp->max_body - len)
        return ee__error(EE_ETOOBIG, "response body is larger than the %zu-byte cap",
                         resp->max_body);
    if (resp->body_len + len + 1 > resp->body_cap) {
        size_t cap = resp->body_cap ? resp->body_cap : 1024;
        while (cap < resp->body_len + len + 1)
            cap = cap > SIZE_MAX / 2 ? resp->body_len + len + 1 : cap * 2;
        unsigned char *b = realloc(resp->body, cap);
        if (b == NULL)
            return ee__error(EE_ENOMEM, "out of memory reading a response body");
        resp->body = b;
        resp->body_cap = cap;
    }
    if (len > 0)
        memcpy(resp->body + resp->body_len, data, len);
    resp->body_len += len;
    resp->body[resp->body_len] = '\0';
    return resp->status != 0 ? stream_out(resp) : EE_OK;
}

void ee_http_response_set_not_sent(ee_http_response *resp)
{
    if (resp != NULL)
        resp->not_sent = true;
}

/* ---- mail ------------------------------------------------------------------ */

static bool address_ok(const char *a)
{
    return a[0] != '\0' && strpbrk(a, "\r\n<>") == NULL && !has_ctl(a) && strlen(a) <= 320;
}

ee_status ee_mail_new(ee_mail **out, const char *server_url, const char *from)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee_mail_new: out is NULL");
    *out = NULL;
    if (server_url == NULL || from == NULL)
        return ee__error(EE_EINVAL, "ee_mail_new: NULL server URL or sender");
    if ((strncasecmp(server_url, "smtp://", 7) != 0 && strncasecmp(server_url, "smtps://", 8) != 0)
        || has_ctl(server_url) || strchr(server_url, ' ') != NULL
        || strlen(server_url) > EE__HTTP_MAX_URL)
        return ee__error(EE_EINVAL, "mail server URL must be smtp:// or smtps://");
    if (!address_ok(from))
        return ee__error(EE_EINVAL, "mail sender address is empty or malformed");
    ee_mail *m = calloc(1, sizeof *m);
    if (m == NULL || (m->server_url = strdup(server_url)) == NULL
        || (m->from = strdup(from)) == NULL) {
        ee_mail_free(m);
        return ee__error(EE_ENOMEM, "out of memory creating a mail");
    }
    *out = m;
    return EE_OK;
}

void ee_mail_free(ee_mail *m)
{
    if (m == NULL)
        return;
    wipe_free_str(m->server_url);
    free(m->from);
    for (size_t i = 0; i < m->rcpt_count; i++)
        free(m->rcpt[i]);
    free(m->rcpt);
    wipe_free(m->message, m->message_len);
    free(m->user);
    wipe_free_str(m->password);
    free(m);
}

ee_status ee_mail_add_recipient(ee_mail *m, const char *address)
{
    if (m == NULL || address == NULL)
        return ee__error(EE_EINVAL, "ee_mail_add_recipient: NULL argument");
    if (!address_ok(address))
        return ee__error(EE_EINVAL, "mail recipient address is empty or malformed");
    if (m->rcpt_count == 100)
        return ee__error(EE_ETOOBIG, "more than 100 recipients on one mail");
    char **r = realloc(m->rcpt, (m->rcpt_count + 1) * sizeof *r);
    if (r == NULL)
        return ee__error(EE_ENOMEM, "out of memory adding a recipient");
    m->rcpt = r;
    if ((r[m->rcpt_count] = strdup(address)) == NULL)
        return ee__error(EE_ENOMEM, "out of memory adding a recipient");
    m->rcpt_count++;
    return EE_OK;
}

ee_status ee_mail_set_message(ee_mail *m, const void *data, size_t len)
{
    if (m == NULL || (data == NULL && len > 0))
        return ee__error(EE_EINVAL, "ee_mail_set_message: NULL argument");
    if (len > (size_t)32 * 1024 * 1024)
        return ee__error(EE_ETOOBIG, "mail message of %zu bytes is over 32 MiB", len);
    unsigned char *copy = malloc(len ? len : 1);
    if (copy == NULL)
        return ee__error(EE_ENOMEM, "out of memory copying a mail message");
    if (len > 0)
        memcpy(copy, data, len);
    wipe_free(m->message, m->message_len);
    m->message = copy;
    m->message_len = len;
    return EE_OK;
}

ee_status ee_mail_set_login(ee_mail *m, const char *user, const char *password)
{
    if (m == NULL)
        return ee__error(EE_EINVAL, "ee_mail_set_login: NULL mail");
    char *u = NULL, *p = NULL;
    if (user != NULL) {
        u = strdup(user);
        p = ee__secret_dup(password ? password : "");
        if (u == NULL || p == NULL) {
            free(u);
            ee__secret_free(p);
            return ee__error(EE_ENOMEM, "out of memory setting the SMTP login");
        }
    }
    free(m->user);
    wipe_free_str(m->password);
    m->user = u;
    m->password = p;
    return EE_OK;
}

ee_status ee_mail_set_require_tls(ee_mail *m, int require)
{
    if (m == NULL)
        return ee__error(EE_EINVAL, "ee_mail_set_require_tls: NULL mail");
    m->require_tls = require != 0;
    return EE_OK;
}

const char *ee_mail_server_url(const ee_mail *m)
{
    return m ? m->server_url : "";
}

const char *ee_mail_from(const ee_mail *m)
{
    return m ? m->from : "";
}

size_t ee_mail_recipient_count(const ee_mail *m)
{
    return m ? m->rcpt_count : 0;
}

const char *ee_mail_recipient_at(const ee_mail *m, size_t i)
{
    return m && i < m->rcpt_count ? m->rcpt[i] : NULL;
}

ee_status ee_mail_message(const ee_mail *m, const void **data, size_t *len)
{
    if (m == NULL || data == NULL || len == NULL)
        return ee__error(EE_EINVAL, "ee_mail_message: NULL argument");
    *data = m->message;
    *len = m->message_len;
    return EE_OK;
}

ee_status ee_mail_login(const ee_mail *m, const char **user, const char **password)
{
    if (m == NULL || user == NULL || password == NULL)
        return ee__error(EE_EINVAL, "ee_mail_login: NULL argument");
    *user = m->user;
    *password = m->password;
    return EE_OK;
}

int ee_mail_require_tls(const ee_mail *m)
{
    return m ? m->require_tls : 0;
}

/* ---- transports ------------------------------------------------------------ */

/* The part of the table each version defines. */
static const size_t backend_sizes[] = {
    offsetof(ee_transport_backend, free) + sizeof(((ee_transport_backend *)0)->free), /* 1 */
};

static ee_status transport_wrap(ee_transport **out, const ee_transport_backend *backend, void *ctx,
                                const ee_transport_options *opts)
{
    ee_transport_backend vt;
    ee_status st = EE__VTABLE_ADOPT(&vt, backend, backend_sizes, "transport backend table");
    if (st != EE_OK)
        return st;
    ee_transport *t = calloc(1, sizeof *t);
    if (t == NULL)
        goto nomem;
    t->vt = vt;
    t->ctx = ctx;
    if (ee__transport_options_copy(&t->opts, opts) != EE_OK) {
        free(t);
        goto nomem;
    }
    t->serialise = (t->vt.flags & EE_TRANSPORT_THREAD_SAFE) == 0;
    if (pthread_mutex_init(&t->lock, NULL) != 0) {
        ee__transport_options_clear(&t->opts);
        free(t);
        goto nomem;
    }
    *out = t;
    return EE_OK;
nomem:
    if (backend->free != NULL)
        backend->free(ctx);
    return ee__error(EE_ENOMEM, "out of memory creating a transport");
}

ee_status ee_transport_new_custom(ee_transport **out, const ee_transport_backend *backend,
                                  void *ctx, const ee_transport_options *opts)
{
    if (out == NULL || backend == NULL)
        return ee__error(EE_EINVAL, "ee_transport_new_custom: NULL argument");
    *out = NULL;
    return transport_wrap(out, backend, ctx, opts);
}

ee_status ee_transport_curl_new(ee_transport **out, const ee_transport_options *opts)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee_transport_curl_new: out is NULL");
    *out = NULL;
    const ee_transport_backend *table;
    void *ctx;
    ee_status st = ee__transport_curl_backend(opts, &table, &ctx);
    if (st != EE_OK)
        return st;
    return transport_wrap(out, table, ctx, opts);
}

uint64_t ee__transport_curl_handles(const ee_transport *t)
{
    if (t == NULL || t->vt.http != ee__transport_curl_table()->http)
        return 0;
    return ee__transport_curl_handles_made(t->ctx);
}

bool ee__transport_curl_reuses(const ee_transport *t)
{
    if (t == NULL || t->vt.http != ee__transport_curl_table()->http)
        return false;
    return ee__transport_curl_reuses_ctx(t->ctx);
}

void ee_transport_free(ee_transport *t)
{
    if (t == NULL)
        return;
    if (t->vt.free != NULL)
        t->vt.free(t->ctx);
    ee__transport_options_clear(&t->opts);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

/* Jitter only needs to spread clients apart, not be unpredictable. */
static uint64_t jitter_next(void)
{
    static _Thread_local uint64_t s;
    if (s == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        s = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)&s;
        s |= 1;
    }
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
}

/* "Equal jitter": half the exponential delay, plus a random part of the
 * other half, so retries of many clients spread out but never collapse to 0. */
static int64_t backoff_ms(const ee_transport_options *o, int retry)
{
    int64_t d = o->retry_initial_ms;
    for (int i = 1; i < retry && d < o->retry_max_ms; i++)
        d *= 2;
    if (d > o->retry_max_ms)
        d = o->retry_max_ms;
    if (d <= 1)
        return d;
    return d / 2 + (int64_t)(jitter_next() % (uint64_t)(d - d / 2 + 1));
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Retry-After in delta-seconds (an HTTP date is ignored: the backoff applies). */
static int64_t retry_after_ms(const ee_http_response *resp)
{
    const char *v = ee_http_response_header(resp, "retry-after");
    int64_t secs;
    if (v == NULL || ee__int_parse(v, &secs) != EE_OK || secs < 0 || secs > 86400)
        return -1;
    return secs * 1000;
}

static bool status_retryable(int status)
{
    return status == 429 || status == 502 || status == 503 || status == 504;
}

static ee_status call_http(ee_transport *t, const ee_http_request *req, ee_http_response *resp)
{
    if (t->serialise)
        pthread_mutex_lock(&t->lock);
    ee_status st = t->vt.http(t->ctx, req, resp);
    if (t->serialise)
        pthread_mutex_unlock(&t->lock);
    return st;
}

ee_status ee_transport_http(ee_transport *t, const ee_http_request *req, ee_http_response **out)
{
    if (out != NULL)
        *out = NULL;
    tls_last_attempts = 0;
    if (t == NULL || req == NULL || out == NULL)
        return ee__error(EE_EINVAL, "ee_transport_http: NULL argument");
    if (t->vt.http == NULL)
        return ee__error(EE_ENOTSUPPORTED, "this transport's backend cannot send HTTP requests");

    /* The backend sees the request with every limit resolved. The struct is
     * private, so a shallow copy shares the caller's strings safely. */
    ee_http_request eff = *req;
    if (eff.connect_timeout_ms == 0)
        eff.connect_timeout_ms = t->opts.connect_timeout_ms;
    if (eff.timeout_ms == 0)
        eff.timeout_ms = t->opts.timeout_ms;
    if (eff.max_response_bytes == 0)
        eff.max_response_bytes = t->opts.max_response_bytes;
    size_t cap = (uint64_t)eff.max_response_bytes > SIZE_MAX - 1 ? SIZE_MAX - 1
                                                                   : (size_t)eff.max_response_bytes;
    char what[600];
    ee__transport_describe(req, what, sizeof what);

    for (int attempt = 1;; attempt++) {
        tls_last_attempts = attempt;
        ee_http_response *resp = response_new(cap);
        if (resp == NULL)
            return ee__error(EE_ENOMEM, "out of memory for an HTTP response");
        resp->attempts = attempt;
        resp->stream = eff.stream;
        resp->stream_payload = eff.stream_payload;
        ee_error_clear();
        ee_status st = call_http(t, &eff, resp);
        if (st == EE_OK && resp->status != 0)
            st = stream_out(resp); /* a backend that set the status last */
        if (resp->stream_stopped)
            st = ee__error(EE_ECANCELLED, "%s: the response's receiver stopped it", what);
        if (st == EE_OK && resp->status == 0)
            st = ee__error(EE_EUPSTREAM, "the transport backend gave no HTTP status");

        bool retry = false;
        int64_t wait = backoff_ms(&t->opts, attempt);
        if (st == EE_OK) {
            if (eff.retry_safe && status_retryable(resp->status)) {
                int64_t ra = retry_after_ms(resp);
                retry = ra <= t->opts.retry_max_ms;
                if (ra > wait)
                    wait = ra;
            }
        } else if (st == EE_ETIMEOUT || st == EE_ENETWORK) {
            retry = eff.retry_safe || resp->not_sent;
        }
        if (resp->streamed > 0)
            retry = false; /* the receiver has part of this answer already */
        if (!retry || attempt > t->opts.max_retries) {
            if (st == EE_OK) {
                *out = resp;
                return EE_OK;
            }
            char detail[EE__ERROR_MSG_MAX];
            snprintf(detail, sizeof detail, "%s",
                     ee_error_last_status() == (int)st ? ee_error_last_message() : ee_strerror(st));
            ee_http_response_free(resp);
            return ee__error(st, "%s: %s (%d attempt%s)", what, detail, attempt,
                             attempt == 1 ? "" : "s");
        }
        ee_http_response_free(resp);
        sleep_ms(wait);
    }
}

ee_status ee_transport_mail(ee_transport *t, const ee_mail *msg)
{
    if (t == NULL || msg == NULL)
        return ee__error(EE_EINVAL, "ee_transport_mail: NULL argument");
    if (msg->rcpt_count == 0)
        return ee__error(EE_EINVAL, "mail has no recipient");
    if (t->vt.mail == NULL)
        return ee__error(EE_ENOTSUPPORTED, "this transport's backend cannot submit mail");
    if (t->serialise)
        pthread_mutex_lock(&t->lock);
    ee_status st = t->vt.mail(t->ctx, msg);
    if (t->serialise)
        pthread_mutex_unlock(&t->lock);
    return st;
}
