/*
 * Parsing and normalising n8n's answers. Input is untrusted: every field
 * is type-checked, counts are bounded, and anything unexpected is
 * EE_EPARSE with a message, never a crash.
 */
#include "n8n/n8n_internal.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/core.h"

/* ---- bounded JSON ---------------------------------------------------------- */

ee_status ee__n8n_json_parse(const char *data, size_t len, size_t max_depth, const char *what,
                             json_t **out)
{
    *out = NULL;
    if (data == NULL || len == 0)
        return ee__error(EE_EPARSE, "%s: empty answer where JSON was expected", what);
    if (!ee__json_depth_ok(data, len, max_depth))
        return ee__error(EE_EPARSE, "%s: JSON nested deeper than %zu levels", what, max_depth);
    json_error_t err;
    json_t *doc = json_loadb(data, len, JSON_REJECT_DUPLICATES, &err);
    if (doc == NULL) {
        char q[160];
        ee__quote_for_message(err.text, q, sizeof q);
        return ee__error(EE_EPARSE, "%s: malformed JSON at byte %d: %s", what, err.position, q);
    }
    *out = doc;
    return EE_OK;
}

/* ---- field helpers ------------------------------------------------------------ */

/* An id n8n may send as a string or (older executions) a number. */
static json_t *id_value(const json_t *v)
{
    if (json_is_string(v) && json_string_length(v) > 0 && json_string_length(v) <= 128)
        return json_stringn(json_string_value(v), json_string_length(v));
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        char buf[32];
        snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
        return json_string(buf);
    }
    return NULL;
}

/* Copy member `key` of `src` into `dst` when it is a string (or null, if
 * allowed); other types are a parse error only when `strict`. */
static ee_status copy_string(json_t *dst, const json_t *src, const char *key, bool null_ok,
                             bool strict, const char *what)
{
    json_t *v = json_object_get(src, key);
    if (v == NULL)
        return EE_OK;
    if (json_is_string(v) || (null_ok && json_is_null(v)))
        return json_object_set(dst, key, v) == 0 ? EE_OK : EE_ENOMEM;
    if (strict)
        return ee__error(EE_EPARSE, "%s: \"%s\" is not a string", what, key);
    return EE_OK;
}

static ee_status bool_member(const json_t *obj, const char *key, bool dflt, bool *out,
                             const char *what)
{
    json_t *v = json_object_get(obj, key);
    *out = dflt;
    if (v == NULL || json_is_null(v))
        return EE_OK;
    if (!json_is_boolean(v))
        return ee__error(EE_EPARSE, "%s: \"%s\" is not a boolean", what, key);
    *out = json_is_true(v);
    return EE_OK;
}

/* ---- workflows ------------------------------------------------------------------ */

/* The nodes that run: an active workflow's published version when n8n
 * sends it (n8n 2.x), else the workflow's own. */
static void pick_nodes(const json_t *wf, json_t **nodes, json_t **connections)
{
    *nodes = json_object_get(wf, "nodes");
    *connections = json_object_get(wf, "connections");
    json_t *active = json_object_get(wf, "activeVersion");
    if (json_is_true(json_object_get(wf, "active")) && json_is_object(active)
        && json_is_array(json_object_get(active, "nodes"))) {
        *nodes = json_object_get(active, "nodes");
        if (json_is_object(json_object_get(active, "connections")))
            *connections = json_object_get(active, "connections");
    }
}

static ee_status check_nodes(const json_t *nodes, const char *what)
{
    if (!json_is_array(nodes))
        return ee__error(EE_EPARSE, "%s: \"nodes\" is missing or not an array", what);
    if (json_array_size(nodes) > EE__N8N_MAX_NODES)
        return ee__error(EE_EPARSE, "%s: more than %d nodes", what, EE__N8N_MAX_NODES);
    size_t i;
    json_t *n;
    json_array_foreach(nodes, i, n) {
        if (!json_is_object(n) || !json_is_string(json_object_get(n, "name"))
            || !json_is_string(json_object_get(n, "type")))
            return ee__error(EE_EPARSE, "%s: node %zu has no string \"name\" and \"type\"", what,
                             i);
        json_t *p = json_object_get(n, "parameters");
        json_t *c = json_object_get(n, "credentials");
        json_t *d = json_object_get(n, "disabled");
        if ((p != NULL && !json_is_object(p) && !json_is_null(p))
            || (c != NULL && !json_is_object(c) && !json_is_null(c))
            || (d != NULL && !json_is_boolean(d) && !json_is_null(d)))
            return ee__error(EE_EPARSE,
                             "%s: node %zu has a malformed \"parameters\", \"credentials\" or "
                             "\"disabled\"",
                             what, i);
    }
    return EE_OK;
}

static ee_status tag_names(const json_t *tags, json_t **out, const char *what)
{
    *out = json_array();
    if (*out == NULL)
        return EE_ENOMEM;
    if (tags == NULL || json_is_null(tags))
        return EE_OK;
    if (!json_is_array(tags) || json_array_size(tags) > EE__N8N_MAX_TAGS) {
        json_decref(*out);
        *out = NULL;
        return ee__error(EE_EPARSE, "%s: \"tags\" is not an array of at most %d tags", what,
                         EE__N8N_MAX_TAGS);
    }
    size_t i;
    json_t *t;
    json_array_foreach(tags, i, t) {
        json_t *name = json_is_object(t) ? json_object_get(t, "name") : t;
        if (!json_is_string(name)) {
            json_decref(*out);
            *out = NULL;
            return ee__error(EE_EPARSE, "%s: tag %zu has no string name", what, i);
        }
        if (json_array_append(*out, name) != 0) {
            json_decref(*out);
            *out = NULL;
            return EE_ENOMEM;
        }
    }
    return EE_OK;
}

ee_status ee__n8n_workflow_normalise(const json_t *wf, json_t **out)
{
    const char *what = "n8n workflow";
    *out = NULL;
    if (!json_is_object(wf))
        return ee__error(EE_EPARSE, "%s: not a JSON object", what);
    json_t *id = id_value(json_object_get(wf, "id"));
    if (id == NULL)
        return ee__error(EE_EPARSE, "%s: no usable \"id\"", what);
    json_t *res = json_object();
    json_t *tags = NULL, *trigger = NULL;
    ee_status st = EE_ENOMEM;
    if (res == NULL || json_object_set_new(res, "id", id) != 0) {
        if (res == NULL)
            json_decref(id);
        goto fail;
    }
    if (!json_is_string(json_object_get(wf, "name"))) {
        st = ee__error(EE_EPARSE, "%s: \"name\" is missing or not a string", what);
        goto fail;
    }
    bool active, archived;
    if ((st = bool_member(wf, "active", false, &active, what)) != EE_OK
        || (st = bool_member(wf, "isArchived", false, &archived, what)) != EE_OK)
        goto fail;
    json_t *nodes, *connections;
    pick_nodes(wf, &nodes, &connections);
    if ((st = check_nodes(nodes, what)) != EE_OK)
        goto fail;
    if (connections != NULL && !json_is_object(connections) && !json_is_null(connections)) {
        st = ee__error(EE_EPARSE, "%s: \"connections\" is not an object", what);
        goto fail;
    }
    if ((st = tag_names(json_object_get(wf, "tags"), &tags, what)) != EE_OK)
        goto fail;
    st = EE_ENOMEM;
    if (json_object_set(res, "name", json_object_get(wf, "name")) != 0
        || json_object_set_new(res, "active", json_boolean(active)) != 0
        || json_object_set_new(res, "isArchived", json_boolean(archived)) != 0)
        goto fail;
    if ((st = copy_string(res, wf, "description", true, false, what)) != EE_OK
        || (st = copy_string(res, wf, "createdAt", false, false, what)) != EE_OK
        || (st = copy_string(res, wf, "updatedAt", false, false, what)) != EE_OK
        || (st = copy_string(res, wf, "versionId", false, false, what)) != EE_OK)
        goto fail;
    st = EE_ENOMEM;
    if (json_object_set_new(res, "tags", tags) != 0) {
        tags = NULL;
        goto fail;
    }
    tags = NULL;
    if (json_object_set(res, "nodes", nodes) != 0
        || json_object_set_new(res, "connections",
                               json_is_object(connections) ? json_incref(connections)
                                                           : json_object())
               != 0)
        goto fail;
    if ((st = ee__n8n_trigger(res, &trigger)) != EE_OK)
        goto fail;
    if (json_object_set_new(res, "trigger", trigger) != 0) {
        st = EE_ENOMEM;
        goto fail;
    }
    *out = res;
    return EE_OK;
fail:
    json_decref(tags);
    json_decref(res);
    if (st == EE_ENOMEM)
        return ee__error(EE_ENOMEM, "out of memory normalising an n8n workflow");
    return st;
}

/* ---- executions -------------------------------------------------------------- */

const char *ee_n8n_map_status(const char *s)
{
    if (s == NULL)
        return NULL;
    static const struct {
        const char *n8n, *ours;
    } map[] = {
        {"new", "pending"},      {"running", "running"}, {"waiting", "running"},
        {"success", "completed"}, {"error", "failed"},    {"crashed", "failed"},
        {"canceled", "failed"},  {"cancelled", "failed"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(s, map[i].n8n) == 0)
            return map[i].ours;
    return NULL;
}

/* What the run produced, from data.resultData (when present and sound):
 * lastNodeExecuted, the error, and the json of the last node's last
 * run's first output. Anything unexpected is left out, not an error: the
 * raw data is n8n-internal and changes between versions. */
static ee_status derive_result(json_t *res, const json_t *data)
{
    json_t *rd = json_object_get(data, "resultData");
    if (!json_is_object(rd))
        return EE_OK;
    json_t *last = json_object_get(rd, "lastNodeExecuted");
    if (json_is_string(last) && json_object_set(res, "lastNodeExecuted", last) != 0)
        return EE_ENOMEM;
    json_t *err = json_object_get(rd, "error");
    if (json_is_object(err)) {
        json_t *e = json_object();
        if (e == NULL || json_object_set_new(res, "error", e) != 0)
            return EE_ENOMEM;
        json_t *msg = json_object_get(err, "message");
        json_t *desc = json_object_get(err, "description");
        json_t *node = json_object_get(json_object_get(err, "node"), "name");
        if (json_object_set_new(e, "message", json_is_string(msg) ? json_incref(msg)
                                                                  : json_string("unknown error"))
                != 0
            || (json_is_string(desc) && json_object_set(e, "description", desc) != 0)
            || (json_is_string(node) && json_object_set(e, "node", node) != 0))
            return EE_ENOMEM;
    }
    json_t *runs = json_is_string(last) ? json_object_get(json_object_get(rd, "runData"),
                                                          json_string_value(last))
                                        : NULL;
    if (!json_is_array(runs) || json_array_size(runs) == 0)
        return EE_OK;
    json_t *run = json_array_get(runs, json_array_size(runs) - 1);
    json_t *outs = json_object_get(json_object_get(run, "data"), "main");
    json_t *items = json_array_get(outs, 0);
    if (!json_is_array(items))
        return EE_OK;
    json_t *output = json_array();
    if (output == NULL || json_object_set_new(res, "output", output) != 0)
        return EE_ENOMEM;
    size_t i;
    json_t *item;
    json_array_foreach(items, i, item) {
        json_t *j = json_object_get(item, "json");
        if (j != NULL && json_array_append(output, j) != 0)
            return EE_ENOMEM;
    }
    return EE_OK;
}

ee_status ee__n8n_execution_normalise(const json_t *ex, bool keep_data, json_t **out)
{
    const char *what = "n8n execution";
    *out = NULL;
    if (!json_is_object(ex))
        return ee__error(EE_EPARSE, "%s: not a JSON object", what);
    json_t *id = id_value(json_object_get(ex, "id"));
    if (id == NULL)
        return ee__error(EE_EPARSE, "%s: no usable \"id\"", what);
    json_t *res = json_object();
    ee_status st = EE_ENOMEM;
    if (res == NULL || json_object_set_new(res, "id", id) != 0) {
        if (res == NULL)
            json_decref(id);
        goto fail;
    }
    json_t *wid = json_object_get(ex, "workflowId");
    if (wid != NULL && !json_is_null(wid)) {
        json_t *w = id_value(wid);
        if (w == NULL) {
            st = ee__error(EE_EPARSE, "%s: \"workflowId\" is not an id", what);
            goto fail;
        }
        if (json_object_set_new(res, "workflowId", w) != 0)
            goto fail;
    }
    bool finished;
    if ((st = bool_member(ex, "finished", false, &finished, what)) != EE_OK)
        goto fail;
    json_t *n8n_status = json_object_get(ex, "status");
    if (n8n_status != NULL && !json_is_string(n8n_status) && !json_is_null(n8n_status)) {
        st = ee__error(EE_EPARSE, "%s: \"status\" is not a string", what);
        goto fail;
    }
    const char *ours = ee_n8n_map_status(json_string_value(n8n_status));
    json_t *stopped = json_object_get(ex, "stoppedAt");
    if (ours == NULL) /* no or an unknown status: judge from what else is known */
        ours = finished ? "completed" : json_is_string(stopped) ? "failed" : "running";
    st = EE_ENOMEM;
    if (json_object_set_new(res, "status", json_string(ours)) != 0
        || json_object_set_new(res, "n8nStatus",
                               json_is_string(n8n_status) ? json_incref(n8n_status) : json_null())
               != 0
        || json_object_set_new(res, "finished", json_boolean(finished)) != 0)
        goto fail;
    if ((st = copy_string(res, ex, "mode", false, true, what)) != EE_OK
        || (st = copy_string(res, ex, "startedAt", true, true, what)) != EE_OK
        || (st = copy_string(res, ex, "stoppedAt", true, true, what)) != EE_OK
        || (st = copy_string(res, ex, "waitTill", true, true, what)) != EE_OK)
        goto fail;
    json_t *data = json_object_get(ex, "data");
    if (json_is_object(data)) {
        if ((st = derive_result(res, data)) != EE_OK)
            goto fail;
        if (keep_data && json_object_set(res, "data", data) != 0) {
            st = EE_ENOMEM;
            goto fail;
        }
    }
    *out = res;
    return EE_OK;
fail:
    json_decref(res);
    if (st == EE_ENOMEM)
        return ee__error(EE_ENOMEM, "out of memory normalising an n8n execution");
    return st;
}

/* ---- pages ------------------------------------------------------------------- */

ee_status ee__n8n_page_parse(const json_t *page, ee__n8n_kind kind, bool keep_data, json_t *into,
                             const char **next)
{
    const char *what = kind == EE__N8N_WORKFLOWS ? "n8n workflow list" : "n8n execution list";
    *next = NULL;
    json_t *data = json_object_get(page, "data");
    if (!json_is_object(page) || !json_is_array(data))
        return ee__error(EE_EPARSE, "%s: no \"data\" array", what);
    json_t *cursor = json_object_get(page, "nextCursor");
    if (cursor != NULL && !json_is_null(cursor)
        && (!json_is_string(cursor) || json_string_length(cursor) == 0
            || json_string_length(cursor) > 4096))
        return ee__error(EE_EPARSE, "%s: \"nextCursor\" is not a string or null", what);
    size_t i;
    json_t *item;
    json_array_foreach(data, i, item) {
        json_t *norm;
        ee_status st = kind == EE__N8N_WORKFLOWS
                           ? ee__n8n_workflow_normalise(item, &norm)
                           : ee__n8n_execution_normalise(item, keep_data, &norm);
        if (st != EE_OK)
            return st;
        if (json_array_append_new(into, norm) != 0)
            return ee__error(EE_ENOMEM, "out of memory collecting a listing");
    }
    *next = json_is_string(cursor) ? json_string_value(cursor) : NULL;
    return EE_OK;
}

/* ---- triggers ------------------------------------------------------------------ */

static bool is_trigger_type(const char *type)
{
    const char *dot = strrchr(type, '.');
    const char *base = dot ? dot + 1 : type;
    size_t n = strlen(base);
    return strcmp(base, "webhook") == 0 || (n >= 7 && strcasecmp(base + n - 7, "trigger") == 0);
}

bool ee__n8n_path_ok(const char *path, const char **why)
{
    size_t n = strlen(path);
    if (n == 0) {
        *why = "the webhook path is empty";
        return false;
    }
    if (n > 1000) {
        *why = "the webhook path is longer than 1000 bytes";
        return false;
    }
    if (path[0] == '=') {
        *why = "the webhook path is an expression";
        return false;
    }
    for (const char *p = path; *p != '\0'; p++) {
        if (*p == ':' && (p == path || p[-1] == '/')) {
            *why = "the webhook path has parameters (\":name\")";
            return false;
        }
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')
              || strchr("-._~/!$&'()*+,;=:@%", *p) != NULL)) {
            *why = "the webhook path has characters that cannot appear in a URL path";
            return false;
        }
    }
    if (strstr(path, "..") != NULL) {
        *why = "the webhook path contains \"..\"";
        return false;
    }
    return true;
}

static json_t *not_runnable(const char *reason, json_t *triggers)
{
    return json_pack("{s:b, s:s, s:o}", "runnable", 0, "reason", reason, "triggers", triggers);
}

/* The method a Webhook node answers: httpMethod (default GET), or with
 * "multiple methods" an array, of which POST is preferred. */
static const char *webhook_method(const json_t *params)
{
    static const char *const known[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"};
    json_t *m = json_object_get(params, "httpMethod");
    const char *pick = NULL;
    if (m == NULL || json_is_null(m))
        pick = "GET";
    else if (json_is_string(m))
        pick = json_string_value(m);
    else if (json_is_array(m)) {
        size_t i;
        json_t *v;
        json_array_foreach(m, i, v) {
            if (!json_is_string(v))
                continue;
            if (pick == NULL || strcmp(json_string_value(v), "POST") == 0)
                pick = json_string_value(v);
        }
    }
    for (size_t i = 0; pick != NULL && i < sizeof known / sizeof known[0]; i++)
        if (strcmp(pick, known[i]) == 0)
            return known[i];
    return NULL;
}

static json_t *runnable_doc(const json_t *node)
{
    json_t *params = json_object_get(node, "parameters");
    json_t *jpath = json_object_get(params, "path");
    json_t *jhook = json_object_get(node, "webhookId");
    const char *path = json_is_string(jpath) ? json_string_value(jpath) : "";
    /* n8n registers a Webhook node without a path under its webhookId */
    if (path[0] == '\0' && json_is_string(jhook))
        path = json_string_value(jhook);
    while (*path == '/')
        path++;
    char trimmed[1001];
    snprintf(trimmed, sizeof trimmed, "%s", path);
    size_t n = strlen(trimmed);
    while (n > 0 && trimmed[n - 1] == '/')
        trimmed[--n] = '\0';
    const char *why = NULL;
    if (strlen(path) > 1000 || !ee__n8n_path_ok(trimmed, &why))
        return json_pack("{s:s}", "reason", why ? why : "the webhook path is too long");
    const char *method = webhook_method(params);
    if (method == NULL)
        return json_pack("{s:s}", "reason", "the Webhook node's HTTP method is not one of GET, "
                                            "POST, PUT, PATCH, DELETE, HEAD");
    json_t *mode = json_object_get(params, "responseMode");
    json_t *auth = json_object_get(params, "authentication");
    json_t *doc = json_pack("{s:b, s:O, s:s, s:s, s:s}", "runnable", 1, "node",
                            json_object_get(node, "name"), "method", method, "path", trimmed,
                            "responseMode", json_is_string(mode) ? json_string_value(mode)
                                                                 : "onReceived");
    if (doc == NULL)
        return NULL;
    if ((json_is_string(jhook) && json_object_set(doc, "webhookId", jhook) != 0)
        || (json_is_string(auth) && strcmp(json_string_value(auth), "none") != 0
            && json_object_set(doc, "authentication", auth) != 0)) {
        json_decref(doc);
        return NULL;
    }
    return doc;
}

ee_status ee__n8n_trigger(const json_t *wf, json_t **out)
{
    *out = NULL;
    json_t *nodes = json_object_get(wf, "nodes");
    if (!json_is_object(wf) || !json_is_array(nodes))
        return ee__error(EE_EINVAL, "workflow has no \"nodes\" array");
    json_t *triggers = json_array();
    if (triggers == NULL)
        return ee__error(EE_ENOMEM, "out of memory deriving a trigger");
    const json_t *webhook = NULL;
    size_t disabled = 0, i;
    json_t *n;
    json_array_foreach(nodes, i, n) {
        const char *type = json_string_value(json_object_get(n, "type"));
        if (type == NULL || !is_trigger_type(type))
            continue;
        bool off = json_is_true(json_object_get(n, "disabled"));
        if (!off && json_array_size(triggers) < 20) {
            bool seen = false;
            size_t j;
            json_t *t;
            json_array_foreach(triggers, j, t) seen = seen || strcmp(json_string_value(t), type) == 0;
            if (!seen && json_array_append_new(triggers, json_string(type)) != 0) {
                json_decref(triggers);
                return ee__error(EE_ENOMEM, "out of memory deriving a trigger");
            }
        }
        if (strcmp(type, "n8n-nodes-base.webhook") != 0)
            continue;
        if (off)
            disabled++;
        else if (webhook == NULL && json_is_string(json_object_get(n, "name")))
            webhook = n;
    }
    json_t *doc;
    if (webhook == NULL) {
        char reason[200];
        if (disabled > 0)
            snprintf(reason, sizeof reason, "its Webhook node is disabled");
        else if (json_array_size(triggers) > 0)
            snprintf(reason, sizeof reason,
                     "no Webhook node: it starts from another trigger, which cannot be called "
                     "over HTTP");
        else
            snprintf(reason, sizeof reason, "no Webhook node and no trigger node");
        doc = not_runnable(reason, triggers);
    } else {
        doc = runnable_doc(webhook);
        if (doc != NULL && json_object_get(doc, "runnable") == NULL) {
            json_t *d = not_runnable(json_string_value(json_object_get(doc, "reason")), triggers);
            json_decref(doc);
            doc = d;
        } else {
            json_decref(triggers);
        }
    }
    if (doc == NULL)
        return ee__error(EE_ENOMEM, "out of memory deriving a trigger");
    *out = doc;
    return EE_OK;
}

/* ---- error answers -------------------------------------------------------------- */

static void clean_text(const char *in, size_t len, char *out, size_t cap)
{
    char tmp[EE__N8N_MESSAGE_MAX + 8];
    /* cut at a character boundary, leaving room for the "..." mark */
    size_t n = len <= EE__N8N_MESSAGE_MAX ? len : ee__utf8_cut(in, len, EE__N8N_MESSAGE_MAX - 3);
    memcpy(tmp, in, n);
    tmp[n] = '\0';
    if (n < len)
        memcpy(tmp + n, "...", 4);
    ee__utf8_sanitize(tmp);
    ee__quote_for_message(tmp, out, cap);
    ee__redact(out, cap);
}

void ee__n8n_error_text(const char *body, size_t len, char *msg, size_t msg_cap, char *hint,
                        size_t hint_cap)
{
    msg[0] = '\0';
    hint[0] = '\0';
    if (body == NULL || len == 0)
        return;
    json_t *doc = NULL;
    if (len <= 1024 * 1024 && ee__json_depth_ok(body, len, 32))
        doc = json_loadb(body, len, 0, NULL);
    if (json_is_object(doc)) {
        json_t *m = json_object_get(doc, "message");
        if (!json_is_string(m))
            m = json_object_get(doc, "error");
        if (json_is_string(m))
            clean_text(json_string_value(m), json_string_length(m), msg, msg_cap);
        json_t *h = json_object_get(doc, "hint");
        if (json_is_string(h))
            clean_text(json_string_value(h), json_string_length(h), hint, hint_cap);
    }
    if (msg[0] == '\0' && doc == NULL)
        clean_text(body, len, msg, msg_cap);
    json_decref(doc);
}
