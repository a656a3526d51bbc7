/*
 * The n8n client: requests over an ee_transport, answers through the
 * bounded parsers of parse.c, n8n's HTTP errors mapped onto our statuses.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/core.h"
#include "n8n/n8n.h"
#include "n8n/n8n_internal.h"

struct ee_n8n {
    ee_transport *transport;
    bool own_transport;
    char *base;    /* no trailing '/' */
    char *api_key; /* secret: wiped, registered for redaction */
    int64_t timeout_ms;
    int64_t webhook_timeout_ms;
    int64_t max_bytes;
    int64_t max_depth;
    int64_t page_limit;
    int64_t max_items;
};

/* ---- small helpers ------------------------------------------------------------ */

/* A growable string; `failed` records an allocation failure once. */
typedef struct {
    char *s;
    size_t len, cap;
    bool failed;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->s, cap);
        if (p == NULL) {
            b->failed = true;
            return;
        }
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void sb_str(sbuf *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

/* Percent-encode everything but RFC 3986 unreserved characters (and '/'
 * when keep_slash: webhook paths). */
static void sb_enc(sbuf *b, const char *s, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
            || c == '-' || c == '.' || c == '_' || c == '~' || (keep_slash && c == '/')) {
            sb_add(b, (const char *)&c, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            sb_add(b, e, 3);
        }
    }
}

static void query_sep(sbuf *b, bool *first)
{
    sb_str(b, *first ? "?" : "&");
    *first = false;
}

static ee_status nomem(char **out, const char *what)
{
    return ee__error_out(out, ee__error(EE_ENOMEM, "out of memory %s", what));
}

/* ---- lifetime ------------------------------------------------------------------- */

ee_status ee_n8n_new(ee_n8n **out, ee_transport *transport, const char *base_url,
                     const char *api_key)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee_n8n_new: out is NULL");
    *out = NULL;
    if (base_url == NULL || api_key == NULL)
        return ee__error(EE_EINVAL, "ee_n8n_new: NULL base URL or API key");
    size_t blen = strlen(base_url);
    while (blen > 0 && base_url[blen - 1] == '/')
        blen--;
    bool scheme = strncasecmp(base_url, "http://", 7) == 0 || strncasecmp(base_url, "https://", 8) == 0;
    if (!scheme || blen <= 8 || blen > 2048 || strpbrk(base_url, "?# \t\r\n") != NULL) {
        char *masked = ee__uri_masked(base_url);
        char q[200];
        ee__quote_for_message(masked ? masked : "", q, sizeof q);
        free(masked);
        return ee__error(EE_EINVAL,
                         "n8n base URL '%s' must be http:// or https:// with a host and no query",
                         q);
    }
    for (const char *p = api_key; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return ee__error(EE_EINVAL, "the n8n API key contains control characters");
    ee_n8n *c = calloc(1, sizeof *c);
    if (c == NULL || (c->base = strndup(base_url, blen)) == NULL
        || (c->api_key = ee__secret_dup(api_key)) == NULL) {
        if (c != NULL)
            free(c->base);
        free(c);
        return ee__error(EE_ENOMEM, "out of memory creating an n8n client");
    }
    if (ee__redact_register(api_key, strlen(api_key)) != EE_OK) {
        ee__secret_free(c->api_key);
        free(c->base);
        free(c);
        return ee__error(EE_ENOMEM, "out of memory creating an n8n client");
    }
    c->timeout_ms = 30000;
    c->webhook_timeout_ms = 300000;
    c->max_bytes = 32 * 1024 * 1024;
    c->max_depth = EE__N8N_DEFAULT_MAX_DEPTH;
    c->page_limit = 100;
    c->max_items = 100000;
    c->transport = transport;
    if (transport == NULL) {
        ee_status st = ee_transport_curl_new(&c->transport, NULL);
        if (st != EE_OK) {
            ee_n8n_free(c);
            return st;
        }
        c->own_transport = true;
    }
    *out = c;
    return EE_OK;
}

void ee_n8n_free(ee_n8n *c)
{
    if (c == NULL)
        return;
    if (c->own_transport)
        ee_transport_free(c->transport);
    ee__redact_unregister(c->api_key, strlen(c->api_key));
    ee__secret_free(c->api_key);
    free(c->base);
    free(c);
}

typedef struct {
    const char *key;
    size_t offset;
    int64_t min, max;
} n8n_option;

static const n8n_option n8n_options[] = {
    {"timeoutMs", offsetof(ee_n8n, timeout_ms), 1, 86400000},
    {"webhookTimeoutMs", offsetof(ee_n8n, webhook_timeout_ms), 1, 86400000},
    {"maxResponseBytes", offsetof(ee_n8n, max_bytes), 1024, (int64_t)1 << 32},
    {"maxDepth", offsetof(ee_n8n, max_depth), 8, 1000},
    {"pageLimit", offsetof(ee_n8n, page_limit), 1, 250},
    {"maxItems", offsetof(ee_n8n, max_items), 1, 10000000},
};

ee_status ee_n8n_configure(ee_n8n *c, const char *options_json)
{
    if (c == NULL || options_json == NULL)
        return ee__error(EE_EINVAL, "ee_n8n_configure: NULL argument");
    json_t *doc;
    ee_status st = ee__json_parse(options_json, EE__N8N_OPTIONS_MAX, 8, 0, "n8n client options",
                                  &doc);
    if (st != EE_OK)
        return st;
    if (!json_is_object(doc)) {
        json_decref(doc);
        return ee__error(EE_EINVAL, "n8n client options must be a JSON object");
    }
    static const char *const members[] = {"timeoutMs", "webhookTimeoutMs", "maxResponseBytes",
                                          "maxDepth", "pageLimit", "maxItems", NULL};
    if ((st = ee__json_check_members(doc, members, "n8n client options", "")) != EE_OK) {
        json_decref(doc);
        return st;
    }
    /* validate everything first: a bad key changes nothing */
    int64_t values[sizeof n8n_options / sizeof n8n_options[0]];
    bool set[sizeof n8n_options / sizeof n8n_options[0]] = {false};
    const char *key;
    json_t *v;
    json_object_foreach(doc, key, v) {
        size_t i = 0;
        while (i < sizeof n8n_options / sizeof n8n_options[0] && strcmp(n8n_options[i].key, key) != 0)
            i++;
        char q[80];
        ee__quote_for_message(key, q, sizeof q);
        if (i == sizeof n8n_options / sizeof n8n_options[0]) {
            json_decref(doc);
            return ee__error(EE_EINVAL, "unknown n8n client option '%s'", q);
        }
        if (!json_is_integer(v) || json_integer_value(v) < n8n_options[i].min
            || json_integer_value(v) > n8n_options[i].max) {
            json_decref(doc);
            return ee__error(EE_EINVAL, "n8n client option %s must be an integer in %lld..%lld",
                             q, (long long)n8n_options[i].min, (long long)n8n_options[i].max);
        }
        values[i] = json_integer_value(v);
        set[i] = true;
    }
    for (size_t i = 0; i < sizeof n8n_options / sizeof n8n_options[0]; i++)
        if (set[i])
            *(int64_t *)(void *)((char *)c + n8n_options[i].offset) = values[i];
    json_decref(doc);
    return EE_OK;
}

/* ---- one request ----------------------------------------------------------------- */

/* n8n's HTTP status -> ours, with n8n's message kept in the detail. */
static ee_status http_error(const ee_http_response *resp, const char *what)
{
    int code = ee_http_response_status(resp);
    const void *body;
    size_t len;
    (void)ee_http_response_body(resp, &body, &len);
    char msg[EE__N8N_MESSAGE_MAX + 8], hint[EE__N8N_MESSAGE_MAX + 8];
    ee__n8n_error_text(body, len, msg, sizeof msg, hint, sizeof hint);
    ee_status st;
    switch (code) {
    case 401:
        st = EE_EAUTH;
        break;
    case 403:
        st = EE_EPERM;
        break;
    case 404:
        st = EE_ENOTFOUND;
        break;
    case 400:
    case 405:
    case 409:
    case 422:
        st = EE_EINVAL;
        break;
    case 429:
        st = EE_ERATELIMIT;
        break;
    default:
        st = EE_EUPSTREAM;
    }
    json_t *detail = json_pack("{s:s}", "n8nMessage", msg);
    if (detail != NULL && hint[0] != '\0')
        json_object_set_new(detail, "hint", json_string(hint));
    return ee__error_full(st, code, detail, "%s: n8n answered HTTP %d%s%s", what, code,
                          msg[0] ? ": " : "", msg);
}

/* Send one request; *resp gets any answer (2xx or not). */
static ee_status n8n_send(ee_n8n *c, const char *method, const char *url, bool api, const char *body,
                      size_t body_len, int64_t timeout_ms, ee_http_response **resp)
{
    ee_http_request *req;
    ee_status st = ee_http_request_new(&req, method, url);
    if (st != EE_OK)
        return st;
    if ((st = ee_http_request_add_header(req, "Accept", "application/json")) == EE_OK && api)
        st = ee_http_request_add_header(req, "X-N8N-API-KEY", c->api_key);
    if (st == EE_OK && body != NULL) {
        st = ee_http_request_add_header(req, "Content-Type", "application/json");
        if (st == EE_OK)
            st = ee_http_request_set_body(req, body, body_len);
    }
    if (st == EE_OK)
        st = ee_http_request_set_limits(req, 0, timeout_ms, c->max_bytes);
    if (st == EE_OK)
        st = ee_transport_http(c->transport, req, resp);
    ee_http_request_free(req);
    return st;
}

/* GET the API path built in `path` ("/workflows/x?y=z"; freed here, a
 * failed build is EE_ENOMEM); parse a 2xx answer's JSON. */
static ee_status api_get(ee_n8n *c, sbuf *path, const char *what, json_t **doc)
{
    *doc = NULL;
    sbuf url = {0};
    if (!path->failed) {
        sb_str(&url, c->base);
        sb_str(&url, "/api/v1");
        sb_str(&url, path->s);
    }
    free(path->s);
    path->s = NULL;
    if (path->failed || url.failed) {
        free(url.s);
        return ee__error(EE_ENOMEM, "out of memory building a URL");
    }
    ee_http_response *resp = NULL;
    ee_status st = n8n_send(c, "GET", url.s, true, NULL, 0, c->timeout_ms, &resp);
    free(url.s);
    if (st != EE_OK)
        return st;
    int code = ee_http_response_status(resp);
    if (code < 200 || code > 299) {
        st = http_error(resp, what);
    } else {
        const void *body;
        size_t len;
        (void)ee_http_response_body(resp, &body, &len);
        st = ee__n8n_json_parse(body, len, (size_t)c->max_depth, what, doc);
    }
    ee_http_response_free(resp);
    return st;
}

static bool id_ok(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    return n > 0 && n <= 128;
}

/* ---- workflows and executions ------------------------------------------------------ */

ee_status ee_n8n_get_workflow(ee_n8n *c, const char *id, char **out)
{
    if (out != NULL)
        *out = NULL;
    if (c == NULL || out == NULL || !id_ok(id))
        return ee__error_out(out, ee__error(EE_EINVAL, "ee_n8n_get_workflow: NULL client or "
                                                       "empty/overlong workflow id"));
    sbuf path = {0};
    sb_str(&path, "/workflows/");
    sb_enc(&path, id, false);
    json_t *doc, *norm;
    ee_status st = api_get(c, &path, "reading an n8n workflow", &doc);
    if (st != EE_OK)
        return ee__error_out(out, st);
    st = ee__n8n_workflow_normalise(doc, &norm);
    json_decref(doc);
    if (st != EE_OK)
        return ee__error_out(out, st);
    return ee__json_out(out, norm);
}

ee_status ee_n8n_get_execution(ee_n8n *c, const char *id, int include_data, char **out)
{
    if (out != NULL)
        *out = NULL;
    if (c == NULL || out == NULL || !id_ok(id))
        return ee__error_out(out, ee__error(EE_EINVAL, "ee_n8n_get_execution: NULL client or "
                                                       "empty/overlong execution id"));
    sbuf path = {0};
    sb_str(&path, "/executions/");
    sb_enc(&path, id, false);
    if (include_data)
        sb_str(&path, "?includeData=true");
    json_t *doc, *norm;
    ee_status st = api_get(c, &path, "reading an n8n execution", &doc);
    if (st != EE_OK)
        return ee__error_out(out, st);
    st = ee__n8n_execution_normalise(doc, include_data != 0, &norm);
    json_decref(doc);
    if (st != EE_OK)
        return ee__error_out(out, st);
    return ee__json_out(out, norm);
}

/* ---- listings ---------------------------------------------------------------------- */

typedef struct {
    sbuf filters; /* "&a=b..." without limit and cursor */
    int64_t limit;
    int64_t max_pages;
    const char *cursor;
    bool include_data;
} list_query;

static ee_status query_error(const char *key, const char *expected)
{
    return ee__error(EE_EINVAL, "listing query: \"%s\" must be %s", key, expected);
}

static void add_filter(list_query *q, const char *key, const char *value)
{
    sb_str(&q->filters, "&");
    sb_str(&q->filters, key);
    sb_str(&q->filters, "=");
    sb_enc(&q->filters, value, false);
}

/* Read the query document; filters the listing kind knows. */
static ee_status read_query(ee_n8n *c, const json_t *q, ee__n8n_kind kind, list_query *lq)
{
    memset(lq, 0, sizeof *lq);
    lq->limit = c->page_limit;
    if (q == NULL)
        return EE_OK;
    if (!json_is_object(q))
        return ee__error(EE_EINVAL, "listing query must be a JSON object");
    static const char *const wf_members[] = {"limit", "maxPages", "cursor", "active", "tags",
                                             "name", "projectId", NULL};
    static const char *const ex_members[] = {"limit", "maxPages", "cursor", "workflowId",
                                             "projectId", "status", "includeData", NULL};
    ee_status mst = ee__json_check_members(q, kind == EE__N8N_WORKFLOWS ? wf_members : ex_members,
                                           "listing query", "");
    if (mst != EE_OK)
        return mst;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)q, key, v) {
        if (strcmp(key, "limit") == 0) {
            if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 250)
                return query_error(key, "an integer in 1..250");
            lq->limit = json_integer_value(v);
        } else if (strcmp(key, "maxPages") == 0) {
            if (!json_is_integer(v) || json_integer_value(v) < 0)
                return query_error(key, "a non-negative integer");
            lq->max_pages = json_integer_value(v);
        } else if (strcmp(key, "cursor") == 0) {
            if (!json_is_string(v) && !json_is_null(v))
                return query_error(key, "a string or null");
            lq->cursor = json_string_value(v);
        } else if (kind == EE__N8N_WORKFLOWS && strcmp(key, "active") == 0) {
            if (!json_is_boolean(v))
                return query_error(key, "a boolean");
            add_filter(lq, "active", json_is_true(v) ? "true" : "false");
        } else if (kind == EE__N8N_WORKFLOWS && strcmp(key, "tags") == 0) {
            /* n8n takes tag names comma-separated */
            if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > 100)
                return query_error(key, "an array of 1..100 tag names");
            sbuf joined = {0};
            size_t i;
            json_t *t;
            json_array_foreach(v, i, t) {
                if (!json_is_string(t) || json_string_length(t) == 0
                    || strchr(json_string_value(t), ',') != NULL) {
                    free(joined.s);
                    return query_error(key, "an array of non-empty tag names without commas");
                }
                if (i > 0)
                    sb_str(&joined, ",");
                sb_str(&joined, json_string_value(t));
            }
            if (!joined.failed)
                add_filter(lq, "tags", joined.s);
            lq->filters.failed |= joined.failed;
            free(joined.s);
        } else if ((kind == EE__N8N_WORKFLOWS
                    && (strcmp(key, "name") == 0 || strcmp(key, "projectId") == 0))
                   || (kind == EE__N8N_EXECUTIONS
                       && (strcmp(key, "workflowId") == 0 || strcmp(key, "projectId") == 0))) {
            if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 1024)
                return query_error(key, "a non-empty string");
            add_filter(lq, key, json_string_value(v));
        } else if (kind == EE__N8N_EXECUTIONS && strcmp(key, "status") == 0) {
            static const char *const known[] = {"canceled", "error", "running", "success",
                                                "waiting"};
            bool ok = false;
            for (size_t i = 0; json_is_string(v) && i < 5; i++)
                ok = ok || strcmp(json_string_value(v), known[i]) == 0;
            if (!ok)
                return query_error(key, "one of canceled, error, running, success, waiting");
            add_filter(lq, key, json_string_value(v));
        } else if (kind == EE__N8N_EXECUTIONS && strcmp(key, "includeData") == 0) {
            if (!json_is_boolean(v))
                return query_error(key, "a boolean");
            lq->include_data = json_is_true(v);
            if (lq->include_data)
                add_filter(lq, key, "true");
        } else {
            char q2[80];
            ee__quote_for_message(key, q2, sizeof q2);
            return ee__error(EE_EINVAL, "listing query: unknown key '%s'", q2);
        }
    }
    return lq->filters.failed ? ee__error(EE_ENOMEM, "out of memory building a query") : EE_OK;
}

static ee_status list_all(ee_n8n *c, const char *query_json, ee__n8n_kind kind, char **out)
{
    const char *what = kind == EE__N8N_WORKFLOWS ? "listing n8n workflows"
                                                 : "listing n8n executions";
    json_t *q = NULL;
    ee_status st;
    if (query_json != NULL
        && (st = ee__json_parse(query_json, EE__N8N_OPTIONS_MAX, 8, 0, "listing query", &q))
               != EE_OK)
        return ee__error_out(out, st);
    list_query lq;
    st = read_query(c, q, kind, &lq);
    json_t *items = json_array();
    char *cursor = lq.cursor ? strdup(lq.cursor) : NULL;
    if (st == EE_OK && (items == NULL || (lq.cursor != NULL && cursor == NULL)))
        st = ee__error(EE_ENOMEM, "out of memory %s", what);
    int64_t pages = 0;
    while (st == EE_OK) {
        sbuf path = {0};
        char limit[32];
        snprintf(limit, sizeof limit, "?limit=%lld", (long long)lq.limit);
        sb_str(&path, kind == EE__N8N_WORKFLOWS ? "/workflows" : "/executions");
        sb_str(&path, limit);
        if (lq.filters.s != NULL)
            sb_str(&path, lq.filters.s);
        if (cursor != NULL) {
            sb_str(&path, "&cursor=");
            sb_enc(&path, cursor, false);
        }
        json_t *page = NULL;
        st = api_get(c, &path, what, &page);
        if (st != EE_OK)
            break;
        size_t before = json_array_size(items);
        const char *next = NULL;
        st = ee__n8n_page_parse(page, kind, lq.include_data, items, &next);
        pages++;
        if (st == EE_OK && next != NULL && json_array_size(items) == before)
            st = ee__error(EE_EPARSE, "%s: an empty page came with a nextCursor", what);
        if (st == EE_OK && next != NULL && cursor != NULL && strcmp(next, cursor) == 0)
            st = ee__error(EE_EPARSE, "%s: n8n sent the same cursor twice", what);
        if (st == EE_OK && (int64_t)json_array_size(items) > c->max_items)
            st = ee__error(EE_ETOOBIG, "%s: more than %lld items (maxItems)", what,
                           (long long)c->max_items);
        char *next_copy = NULL;
        if (st == EE_OK && next != NULL && (next_copy = strdup(next)) == NULL)
            st = ee__error(EE_ENOMEM, "out of memory %s", what);
        json_decref(page);
        free(cursor);
        cursor = next_copy;
        if (st != EE_OK || cursor == NULL || (lq.max_pages > 0 && pages >= lq.max_pages))
            break;
    }
    json_decref(q);
    free(lq.filters.s);
    if (st != EE_OK) {
        free(cursor);
        json_decref(items);
        return ee__error_out(out, st);
    }
    json_t *doc = json_pack("{s:o, s:s?}", "data", items, "nextCursor", cursor);
    free(cursor);
    return ee__json_out(out, doc);
}

ee_status ee_n8n_list_workflows(ee_n8n *c, const char *query_json, char **out)
{
    if (out != NULL)
        *out = NULL;
    if (c == NULL || out == NULL)
        return ee__error_out(out, ee__error(EE_EINVAL, "ee_n8n_list_workflows: NULL argument"));
    return list_all(c, query_json, EE__N8N_WORKFLOWS, out);
}

ee_status ee_n8n_list_executions(ee_n8n *c, const char *query_json, char **out)
{
    if (out != NULL)
        *out = NULL;
    if (c == NULL || out == NULL)
        return ee__error_out(out, ee__error(EE_EINVAL, "ee_n8n_list_executions: NULL argument"));
    return list_all(c, query_json, EE__N8N_EXECUTIONS, out);
}

/* ---- webhooks ------------------------------------------------------------------------ */

static bool method_ok(const char *m)
{
    static const char *const known[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"};
    for (size_t i = 0; m != NULL && i < sizeof known / sizeof known[0]; i++)
        if (strcmp(m, known[i]) == 0)
            return true;
    return false;
}

/* For GET/HEAD/DELETE: the body's top-level scalars as query parameters. */
static ee_status body_as_query(const json_t *body, sbuf *url)
{
    if (body == NULL || json_is_null(body))
        return EE_OK;
    if (!json_is_object(body))
        return ee__error(EE_EINVAL, "a GET/HEAD/DELETE webhook takes an object of parameters");
    bool first = true;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)body, key, v) {
        char num[64];
        const char *text;
        if (json_is_string(v))
            text = json_string_value(v);
        else if (json_is_integer(v))
            snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v)), text = num;
        else if (json_is_real(v))
            snprintf(num, sizeof num, "%.17g", json_real_value(v)), text = num;
        else if (json_is_boolean(v))
            text = json_is_true(v) ? "true" : "false";
        else if (json_is_null(v))
            continue;
        else
            return ee__error(EE_EINVAL, "webhook query parameter \"%.100s\" is not a scalar", key);
        query_sep(url, &first);
        sb_enc(url, key, false);
        sb_str(url, "=");
        sb_enc(url, text, false);
    }
    return EE_OK;
}

/* The 2xx answer of a webhook as {"httpStatus", "body", "executionId"?}. */
static ee_status webhook_result(ee_n8n *c, const ee_http_response *resp, char **out)
{
    const void *data;
    size_t len;
    (void)ee_http_response_body(resp, &data, &len);
    const char *ctype = ee_http_response_header(resp, "content-type");
    json_t *body = NULL;
    if (len > 0 && ctype != NULL && strcasestr(ctype, "json") != NULL) {
        ee_status st = ee__n8n_json_parse(data, len, (size_t)c->max_depth, "n8n webhook answer",
                                          &body);
        if (st != EE_OK)
            return ee__error_out(out, st);
    } else if (len > 0) {
        char *text = malloc(len + 1);
        if (text == NULL)
            return nomem(out, "reading a webhook answer");
        memcpy(text, data, len);
        text[len] = '\0';
        ee__utf8_sanitize(text); /* JSON strings must be UTF-8 */
        body = json_stringn(text, strnlen(text, len));
        free(text);
    } else {
        body = json_null();
    }
    json_t *doc = json_pack("{s:i, s:o}", "httpStatus", ee_http_response_status(resp), "body", body);
    json_t *eid = json_is_object(body) ? json_object_get(body, "executionId") : NULL;
    if (doc != NULL && (json_is_string(eid) || json_is_integer(eid))) {
        json_t *idv = json_is_string(eid) ? json_incref(eid) : NULL;
        if (idv == NULL) {
            char buf[32];
            snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(eid));
            idv = json_string(buf);
        }
        json_object_set_new(doc, "executionId", idv);
    }
    return ee__json_out(out, doc);
}

ee_status ee_n8n_trigger_webhook(ee_n8n *c, const char *method, const char *path,
                                 const char *body_json, char **out)
{
    return ee__n8n_trigger_webhook_within(c, method, path, body_json, 0, out);
}

ee_status ee__n8n_trigger_webhook_within(ee_n8n *c, const char *method, const char *path,
                                         const char *body_json, int64_t timeout_ms, char **out)
{
    if (out != NULL)
        *out = NULL;
    if (c == NULL || out == NULL || path == NULL)
        return ee__error_out(out, ee__error(EE_EINVAL, "ee_n8n_trigger_webhook: NULL argument"));
    int64_t limit = c->webhook_timeout_ms;
    if (timeout_ms > 0 && timeout_ms < limit)
        limit = timeout_ms;
    if (!method_ok(method))
        return ee__error_out(out, ee__error(EE_EINVAL, "webhook method must be one of GET, POST, "
                                                       "PUT, PATCH, DELETE, HEAD"));
    while (*path == '/')
        path++;
    const char *why;
    if (!ee__n8n_path_ok(path, &why))
        return ee__error_out(out, ee__error(EE_EINVAL, "cannot call this webhook: %s", why));
    json_t *body = NULL;
    ee_status st;
    if (body_json != NULL
        && (st = ee__json_parse(body_json, EE__N8N_BODY_MAX, (size_t)c->max_depth,
                                0, "webhook body", &body))
               != EE_OK) {
        if (st == EE_ETOOBIG) /* a size limit says so; a malformed body is an argument error */
            return ee__error_out(out, st);
        char parse_why[EE__ERROR_MSG_MAX]; /* re-recorded as EINVAL: copy it first */
        snprintf(parse_why, sizeof parse_why, "%s", ee_error_last_message());
        return ee__error_out(out, ee__error(EE_EINVAL, "%s", parse_why));
    }
    bool as_query = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0
                    || strcmp(method, "DELETE") == 0;
    sbuf url = {0};
    sb_str(&url, c->base);
    sb_str(&url, "/webhook/");
    sb_enc(&url, path, true);
    char *text = NULL;
    st = EE_OK;
    if (as_query)
        st = body_as_query(body, &url);
    else if (body != NULL && (text = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY)) == NULL)
        st = ee__error(EE_ENOMEM, "out of memory encoding a webhook body");
    json_decref(body);
    if (st == EE_OK && url.failed)
        st = ee__error(EE_ENOMEM, "out of memory building a URL");
    ee_http_response *resp = NULL;
    if (st == EE_OK)
        st = n8n_send(c, method, url.s, false, as_query ? NULL : (text ? text : "{}"),
                  as_query ? 0 : strlen(text ? text : "{}"), limit, &resp);
    free(url.s);
    free(text);
    if (st != EE_OK)
        return ee__error_out(out, st);
    int code = ee_http_response_status(resp);
    if (code >= 200 && code <= 299)
        st = webhook_result(c, resp, out);
    else
        st = ee__error_out(out, http_error(resp, "calling an n8n webhook"));
    ee_http_response_free(resp);
    return st;
}

ee_status ee_n8n_workflow_trigger(const char *workflow_json, char **out)
{
    if (out != NULL)
        *out = NULL;
    if (workflow_json == NULL || out == NULL)
        return ee__error_out(out, ee__error(EE_EINVAL, "ee_n8n_workflow_trigger: NULL argument"));
    json_t *doc, *trig;
    ee_status st = ee__json_parse(workflow_json, EE__N8N_WORKFLOW_MAX, EE__N8N_DEFAULT_MAX_DEPTH,
                                  0, "workflow", &doc);
    if (st != EE_OK)
        return ee__error_out(out, st);
    /* for an n8n document, the nodes that run (active version) decide */
    json_t *norm = NULL;
    if (ee__n8n_workflow_normalise(doc, &norm) == EE_OK) {
        json_decref(doc);
        doc = norm;
    }
    st = ee__n8n_trigger(doc, &trig);
    json_decref(doc);
    if (st != EE_OK)
        return ee__error_out(out, st);
    return ee__json_out(out, trig);
}
