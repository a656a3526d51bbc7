/* The JSON door of executions: get, list, results, cost, stats, purge and
 * the signed completion callback. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/record.h"
#include "exec/exec_internal.h"
#include "gateway/gateway.h"
#include "notify/notify.h"

/* The preamble of every call on one execution of the door (get, results,
 * cost, cancel): the arguments are checked and the record is loaded from
 * the principal's workspace (another workspace's id is not found). */
ee_status ee__exec_door_load(ee_engine *engine, const ee_principal *principal,
                             const char *execution_id, const char *what, x_rec *out)
{
    if (ee__exec_state(engine) == NULL || principal == NULL || execution_id == NULL)
        return ee__error(EE_EINVAL, "%s: engine, principal and execution_id must not be NULL",
                         what);
    return ee__exec_load(engine, ee_principal_workspace(principal), execution_id, out);
}

ee_status ee_exec_get(ee_engine *engine, const ee_principal *principal,
                      const char *execution_id, char **out)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee_exec_get: out must not be NULL");
    *out = NULL;
    x_rec r;
    ee_status st = ee__exec_door_load(engine, principal, execution_id, "ee_exec_get", &r);
    if (st != EE_OK)
        return ee__error_out(out, st);
    st = ee__json_out(out, ee__exec_render(&r, true));
    ee__exec_rec_clear(&r);
    return st;
}

/* ---- list ---------------------------------------------------------------------------- */

typedef struct {
    json_t *data;
    ee_status st;
} list_acc;

static int list_row(const ee_storage_row *row, void *payload)
{
    list_acc *a = payload;
    x_rec r;
    a->st = ee__exec_decode_row(row, &r);
    if (a->st != EE_OK)
        return 1;
    json_array_append_new(a->data, ee__exec_render(&r, false));
    ee__exec_rec_clear(&r);
    return 0;
}

ee_status ee_exec_list(ee_engine *engine, const ee_principal *principal, const char *query_json,
                       char **out)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee_exec_list: out must not be NULL");
    *out = NULL;
    if (ee__exec_state(engine) == NULL || principal == NULL)
        return ee__error_out(out, ee__error(EE_EINVAL, "ee_exec_list: engine and principal "
                                                       "must not be NULL"));
    static const char *const members[] = {"workflowId", "status", "userId", "limit", "cursor",
                                          NULL};
    const char *what = "execution list query";
    json_t *q = NULL;
    ee_status st = ee__record_parse(query_json != NULL ? query_json : "{}", 64 * 1024, 8, 0, what,
                                    &q);
    if (st == EE_OK)
        st = ee__json_check_members(q, members, what, "");
    ee_storage_eq eq[3];
    size_t n_eq = 0;
    static const char *const fields[] = {"workflowId", "status", "userId"};
    static const char *const stored[] = {"workflowCatalogId", "status", "userId"};
    for (size_t i = 0; st == EE_OK && i < 3; i++) {
        json_t *v = json_object_get(q, fields[i]);
        if (v == NULL)
            continue;
        x_status xs;
        if (!json_is_string(v) || json_string_length(v) == 0 ||
            json_string_length(v) > EE_STORAGE_VALUE_MAX ||
            (i == 0 && !ee__id_valid(json_string_value(v))) ||
            (i == 1 && !ee__exec_status_parse(json_string_value(v), &xs)))
            st = ee__error(EE_EINVAL, "%s: \"%s\" (at /%s) is not a valid %s", what, fields[i],
                           fields[i], i == 0 ? "workflow id" : i == 1 ? "status" : "user id");
        else
            eq[n_eq++] = (ee_storage_eq){stored[i], json_string_value(v)};
    }
    size_t limit = 20;
    const char *cursor = NULL;
    if (st == EE_OK)
        st = ee__json_page_args(q, what, 20, 100, &limit, &cursor);
    list_acc a = {json_array(), EE_OK};
    char *next = NULL;
    if (st == EE_OK) {
        ee_storage_query_spec spec = {.version = EE_STORAGE_QUERY_VERSION,
                                      .eq = eq,
                                      .n_eq = n_eq,
                                      .order = EE_STORAGE_ORDER_TIME_DESC,
                                      .limit = limit,
                                      .cursor = cursor};
        st = ee_storage_query(ee__engine_storage(engine), X_COLL,
                              ee_principal_workspace(principal), &spec, list_row, &a, &next);
        if (st == EE_ECANCELLED && a.st != EE_OK)
            st = a.st;
    }
    json_decref(q);
    return ee__json_page_out(out, st, a.data, next);
}

/* ---- results and cost ------------------------------------------------------------------ */

ee_status ee_exec_results(ee_engine *engine, const ee_principal *principal,
                          const char *execution_id, char **out)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee_exec_results: out must not be NULL");
    *out = NULL;
    x_rec r;
    ee_status st = ee__exec_door_load(engine, principal, execution_id, "ee_exec_results", &r);
    if (st != EE_OK)
        return ee__error_out(out, st);
    json_t *output = NULL;
    if (!x_final(r.status)) {
        st = ee__error(EE_ESTATE, "execution %s has not ended (%s)", execution_id,
                       ee__exec_status_name(r.status));
    } else if (r.has_ref) {
        char *data = NULL;
        size_t len = 0;
        st = ee__results_get(engine, r.workspace, r.id, &r.ref, &data, &len);
        if (st == EE_OK) {
            output = json_loadb(data, len, 0, NULL);
            if (output == NULL)
                st = ee__error(EE_ECORRUPT, "the stored output of execution %s is not JSON",
                               execution_id);
        }
        ee_free(data);
    } else {
        output = r.output != NULL ? json_incref(r.output) : json_null();
    }
    if (st != EE_OK) {
        ee__exec_rec_clear(&r);
        return ee__error_out(out, st);
    }
    char done[32] = "";
    if (r.completed_at > 0)
        ee__time_iso(r.completed_at, done);
    json_t *doc = json_pack("{s:s, s:s, s:o, s:I, s:s?}", "executionId", r.id, "status",
                            ee__exec_status_name(r.status), "outputData", output,
                            "executionTimeMs", (json_int_t)r.exec_ms, "completedAt",
                            done[0] != '\0' ? done : NULL);
    ee__exec_rec_clear(&r);
    return ee__json_out(out, doc);
}

typedef struct {
    json_t *calls;
    int64_t tokens, cost;
    bool overflow;
} cost_acc;

static int cost_call(const ee__gateway_call *c, void *payload)
{
    cost_acc *a = payload;
    char usd[32], at[32];
    ee__decimal_format(c->cost_nano, 9, usd);
    ee__time_iso(c->at_ms, at);
    json_t *o = json_pack("{s:s, s:I, s:I, s:I, s:I, s:s, s:i, s:s}", "provider",
                          c->provider != NULL ? c->provider : "", "promptTokens",
                          (json_int_t)c->prompt_tokens, "completionTokens",
                          (json_int_t)c->completion_tokens, "totalTokens",
                          (json_int_t)c->total_tokens, "cost", (json_int_t)c->cost_nano,
                          "costUsd", usd, "status", c->http_status, "at", at);
    if (o != NULL && c->model != NULL)
        json_object_set_new(o, "model", json_string(c->model));
    if (o != NULL && c->source != NULL)
        json_object_set_new(o, "source", json_string(c->source));
    json_array_append_new(a->calls, o);
    /* the stored calls' counts are summed here, not read from the run's
     * total (which refuses to pass int64): calls written past it - another
     * process, a host's storage - must not wrap the totals */
    if (__builtin_add_overflow(a->tokens, c->total_tokens, &a->tokens) ||
        __builtin_add_overflow(a->cost, c->cost_nano, &a->cost)) {
        a->overflow = true;
        return 1;
    }
    return 0;
}

ee_status ee_exec_cost(ee_engine *engine, const ee_principal *principal, const char *execution_id,
                       char **out)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee_exec_cost: out must not be NULL");
    *out = NULL;
    x_rec r;
    ee_status st = ee__exec_door_load(engine, principal, execution_id, "ee_exec_cost", &r);
    if (st != EE_OK)
        return ee__error_out(out, st);
    cost_acc a = {json_array(), 0, 0, false};
    st = ee__gateway_calls(engine, r.workspace, r.id, cost_call, &a);
    if (st == EE_OK && a.overflow)
        st = ee__error(EE_ECORRUPT, "execution %s: its stored calls' tokens or cost sum past "
                                    "int64", r.id);
    if (st != EE_OK) {
        json_decref(a.calls);
        ee__exec_rec_clear(&r);
        return ee__error_out(out, st);
    }
    json_t *rec = ee__exec_render(&r, false);
    json_t *key = json_incref(json_object_get(rec, "apiKeyUsed"));
    json_decref(rec);
    char usd[32];
    ee__decimal_format(a.cost, 9, usd);
    json_t *doc = json_pack("{s:s, s:o, s:o, s:{s:I, s:I, s:I, s:s}}", "executionId", r.id,
                            "apiKeyUsed", key != NULL ? key : json_null(), "calls", a.calls,
                            "totals", "calls", (json_int_t)json_array_size(a.calls), "tokens",
                            (json_int_t)a.tokens, "cost", (json_int_t)a.cost, "costUsd", usd);
    /* then markup and allowance: the charge billing booked (null until the run is accounted) */
    if (doc != NULL)
        json_object_set_new(doc, "charge", r.charged ? ee__exec_charge_json(&r, false) : json_null());
    ee__exec_rec_clear(&r);
    return ee__json_out(out, doc);
}

/* ---- stats and purge ------------------------------------------------------------------ */

ee_status ee_exec_stats(ee_engine *engine, char **out)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee_exec_stats: out must not be NULL");
    *out = NULL;
    x_state *st = ee__exec_state(engine);
    if (st == NULL)
        return ee__error_out(out, ee__error(EE_EINVAL, "ee_exec_stats: engine must not be NULL"));
    uint64_t waiting = 0, claimed = 0;
    ee_status s = ee__queue_depth(ee__engine_storage(engine), &waiting, &claimed);
    if (s != EE_OK)
        return ee__error_out(out, s);
    json_t *doc = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "queued", (json_int_t)waiting,
                            "running", (json_int_t)claimed, "runningHere",
                            (json_int_t)atomic_load(&st->running), "workers",
                            (json_int_t)st->workers, "backlogMax", (json_int_t)st->queue_max,
                            "leaseMs", (json_int_t)st->lease_ms);
    if (doc != NULL)
        ee__exec_counts_json(st, doc);
    return ee__json_out(out, doc);
}

/* Temporary files of the result store older than this were left by a put
 * that stopped (a put takes milliseconds). */
#define PURGE_TEMP_AGE_MS (INT64_C(10) * 60000)
#define PURGE_PAGE 100

typedef struct {
    ee_engine *engine;
    int64_t cut, file_age_ms;
    uint64_t records, files;
    ee_status st;
} purge_ctx;

/* One record the purge is about to delete: its stored output goes first,
 * so a crash between the two leaves a record that points at nothing (the
 * next purge deletes it; the reservation is released once: a second
 * release answers "gone"), never a file nothing points at. */
static int purge_row(const ee_storage_row *row, void *payload)
{
    purge_ctx *c = payload;
    x_rec r;
    if (ee__exec_decode_row(row, &r) != EE_OK) {
        /* A record this engine cannot read has no output it could find
         * either; the range delete removes it all the same. */
        ee_error_clear();
        return 0;
    }
    if (r.has_ref) {
        c->st = ee__results_delete(c->engine, r.workspace, r.id, &r.ref);
        if (c->st == EE_OK)
            c->files++;
    }
    ee__exec_rec_clear(&r);
    return c->st != EE_OK;
}

static bool purge_has_record(ee_engine *engine, const char *workspace, const char *id,
                             void *payload)
{
    (void)payload;
    uint8_t raw[EE_STORAGE_ID_SIZE];
    if (strlen(id) != 2 * EE_STORAGE_ID_SIZE || !ee__hex_decode(id, sizeof raw, raw))
        return false; /* not an execution id: no record can have it */
    x_rec r;
    ee_status st = ee__exec_load(engine, workspace, id, &r);
    if (st == EE_OK)
        ee__exec_rec_clear(&r);
    else
        ee_error_clear();
    return st != EE_ENOTFOUND; /* a failed read keeps the file */
}

/* One workspace of the result store: the outputs of its records past the
 * retention, page by page, then the records, then the files nothing
 * points at. */
static ee_status purge_workspace(const char *workspace, void *payload)
{
    purge_ctx *c = payload;
    ee_storage *storage = ee__engine_storage(c->engine);
    char *cursor = NULL;
    ee_status st;
    do {
        ee_storage_query_spec spec = {.version = EE_STORAGE_QUERY_VERSION,
                                      .flags = EE_STORAGE_QUERY_TO,
                                      .time_to = c->cut,
                                      .order = EE_STORAGE_ORDER_TIME_ASC,
                                      .limit = PURGE_PAGE,
                                      .cursor = cursor};
        char *next = NULL;
        st = ee_storage_query(storage, X_COLL, workspace, &spec, purge_row, c, &next);
        if (st == EE_ECANCELLED && c->st != EE_OK)
            st = c->st;
        ee_free(cursor);
        cursor = next;
    } while (st == EE_OK && cursor != NULL);
    ee_free(cursor);
    uint64_t n = 0;
    if (st == EE_OK)
        st = ee_storage_delete_range(storage, X_COLL, workspace, INT64_MIN, c->cut, &n);
    c->records += n;
    uint64_t swept = 0;
    if (st == EE_OK)
        st = ee__results_sweep(c->engine, workspace, PURGE_TEMP_AGE_MS, c->file_age_ms,
                               purge_has_record, NULL, &swept);
    c->files += swept;
    return st;
}

/* One audit entry per purge call, with its counts (not one per record:
 * a purge deletes thousands); `before` 0: the retention kept everything. */
static void audit_purge(ee_engine *engine, ee_status s, uint64_t records, uint64_t files,
                        uint64_t mails, int64_t before)
{
    json_t *detail = json_pack("{s:I, s:I, s:I}", "deleted", (json_int_t)records, "files",
                               (json_int_t)files, "emails", (json_int_t)mails);
    if (detail != NULL && before != 0)
        json_object_set_new(detail, "before", json_integer(before));
    ee__audit_append(engine, &(ee__audit_entry){.action = EE__AUDIT_EXEC_PURGED,
                                                .workspace = EE__AUDIT_PLATFORM,
                                                .actor = EE__AUDIT_ACTOR_SYSTEM,
                                                .target_id = X_COLL,
                                                .outcome = s == EE_OK ? EE__AUDIT_OK
                                                                      : EE__AUDIT_FAILED,
                                                .status = s,
                                                .detail = detail});
    json_decref(detail);
}

ee_status ee_exec_purge(ee_engine *engine, uint64_t *deleted_out)
{
    if (deleted_out != NULL)
        *deleted_out = 0;
    x_state *st = ee__exec_state(engine);
    if (st == NULL)
        return ee__error(EE_EINVAL, "ee_exec_purge: engine must not be NULL");
    if (st->retention_days <= 0) { /* kept forever */
        audit_purge(engine, EE_OK, 0, 0, 0, 0);
        return EE_OK;
    }
    /* Records are dated by createdAt (the collection's time field); an
     * execution lasts at most a day (timeoutMs), so a record created more
     * than RESULT_RETENTION_DAYS + 1 days ago has ended more than the
     * retention ago. The storage has no walk across workspaces, but the
     * result store has: every workspace with a folder there has its
     * outputs deleted (file first, then record) before the records of all
     * workspaces go. */
    int64_t keep_ms = (st->retention_days + 1) * INT64_C(86400000);
    purge_ctx c = {engine, ee_engine_now_ms(engine) - keep_ms, keep_ms, 0, 0, EE_OK};
    ee_status s = ee__results_each_workspace(engine, purge_workspace, &c);
    uint64_t n = 0;
    if (s == EE_OK)
        s = ee_storage_delete_range(ee__engine_storage(engine), X_COLL, NULL, INT64_MIN, c.cut,
                                    &n);
    /* The e-mails about those runs hold their rendered results and the
     * recipients: the ended ones go after the same retention (dated by
     * when they ended); queued ones stay until delivered or failed. */
    uint64_t mails = 0;
    if (s == EE_OK)
        s = ee__email_outbox_purge(engine, ee_engine_now_ms(engine) -
                                               st->retention_days * INT64_C(86400000),
                                   &mails);
    if (deleted_out != NULL)
        *deleted_out = c.records + n;
    if (c.files > 0)
        ee__log(ee__engine_logger(engine), EE_LOG_INFO, "exec",
                "purge: %llu stored output(s) deleted", (unsigned long long)c.files);
    if (mails > 0)
        ee__log(ee__engine_logger(engine), EE_LOG_INFO, "exec",
                "purge: %llu ended e-mail(s) deleted from the outbox",
                (unsigned long long)mails);
    audit_purge(engine, s, c.records + n, c.files, mails, c.cut);
    return s;
}

/* ---- the signed completion callback -------------------------------------------------- */

static const char *header_of(const json_t *h, const char *name)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)h, k, v) {
        if (strcasecmp(k, name) == 0)
            return json_string_value(v);
    }
    return NULL;
}

ee_status ee_exec_ingest_webhook(ee_engine *engine, const char *headers_json, const char *body,
                                 size_t body_len, char **out)
{
    if (out != NULL)
        *out = NULL;
    x_state *st = ee__exec_state(engine);
    if (st == NULL || headers_json == NULL || body == NULL)
        return ee__error_out(out, ee__error(EE_EINVAL, "ee_exec_ingest_webhook: engine, headers "
                                                       "and body must not be NULL"));
    if (body_len > EE_EXEC_REQUEST_MAX)
        return ee__error_out(out, ee__error(EE_ETOOBIG, "callback body exceeds %d bytes",
                                            EE_EXEC_REQUEST_MAX));
    json_t *h = NULL, *b = NULL;
    ee_status s = ee__record_parse(headers_json, 64 * 1024, 4, 0, "callback headers", &h);
    char *text = NULL;
    if (s == EE_OK && (text = malloc(body_len + 1)) == NULL)
        s = ee__error(EE_ENOMEM, "out of memory reading a callback");
    if (s == EE_OK) {
        memcpy(text, body, body_len);
        text[body_len] = '\0';
        if (strlen(text) != body_len)
            s = ee__error(EE_EPARSE, "callback body holds a NUL byte");
    }
    if (s == EE_OK)
        s = ee__record_parse(text, EE_EXEC_REQUEST_MAX, 64, 0, "callback body", &b);
    static const char *const members[] = {"executionId", "workspaceId", "status", "output",
                                          "error", NULL};
    if (s == EE_OK)
        s = ee__json_check_members(b, members, "callback body", "");
    const char *id = json_string_value(json_object_get(b, "executionId"));
    const char *ws = json_string_value(json_object_get(b, "workspaceId"));
    const char *status = json_string_value(json_object_get(b, "status"));
    if (s == EE_OK && (id == NULL || !ee__id_valid(id) || ws == NULL || ws[0] == '\0' ||
                       strlen(ws) > EE_STORAGE_WORKSPACE_MAX))
        s = ee__error(EE_EINVAL, "callback body: \"executionId\" (24 hex) and \"workspaceId\" "
                                 "are required");
    if (s == EE_OK && (status == NULL ||
                       (strcmp(status, "completed") != 0 && strcmp(status, "failed") != 0)))
        s = ee__error(EE_EINVAL, "callback body: \"status\" must be \"completed\" or \"failed\"");
    if (s == EE_OK) {
        char key[65];
        s = ee__callback_key(engine, id, key);
        if (s == EE_OK)
            s = ee__callback_verify(key, header_of(h, "X-EE-Timestamp"),
                                    header_of(h, "X-EE-Signature"), body, body_len,
                                    ee_engine_now_ms(engine), 300000);
    }
    bool applied = false;
    if (s == EE_OK) {
        x_rec r;
        s = ee__exec_load(engine, ws, id, &r);
        if (s == EE_OK && !x_final(r.status)) {
            bool ok = strcmp(status, "completed") == 0;
            json_t *output = json_object_get(b, "output");
            const char *err = json_string_value(json_object_get(b, "error"));
            x_outcome oc = {ok ? EE_OK : EE_EUPSTREAM, output != NULL ? json_incref(output) : NULL,
                            ok ? NULL : (err != NULL ? err : "the workflow reported a failure"),
                            NULL};
            x_rec fin;
            s = ee__exec_finish_write(st, ws, id, &r, &oc, &applied, &fin);
            json_decref(oc.output);
            if (s == EE_OK) {
                if (applied)
                    ee__exec_account(st, &fin);
                ee__exec_rec_clear(&fin);
            }
        }
        ee__exec_rec_clear(&r);
    }
    char idbuf[EE_EXEC_ID_SIZE] = "";
    if (id != NULL)
        snprintf(idbuf, sizeof idbuf, "%s", id);
    json_decref(h);
    json_decref(b);
    free(text);
    if (s != EE_OK)
        return ee__error_out(out, s);
    if (out != NULL)
        return ee__json_out(out, json_pack("{s:s, s:b}", "executionId", idbuf, "applied",
                                           applied));
    return EE_OK;
}
