/* The JSON door of the audit log: query, purge, stats (execengine/audit.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit_internal.h"
#include "execengine/storage.h"

/* How many stored entries one call with an action prefix examines, per
 * entry of its page: the bound on a call's work when few entries match. */
#define SCAN_FACTOR 20

typedef struct {
    json_t *data;
    const char *prefix; /* NULL: every entry */
    size_t prefix_len;
    size_t scanned;
    ee_status st;
} query_acc;

/* The stored entry as the door shows it (audit.h). */
static json_t *render(const char *id, json_t *rec)
{
    json_t *out = json_object();
    if (out == NULL)
        return NULL;
    json_object_set_new(out, "id", json_string(id));
    json_object_set(out, "time", json_object_get(rec, "createdAt"));
    json_object_set(out, "action", json_object_get(rec, "action"));
    json_object_set(out, "actor", json_object_get(rec, "userId"));
    json_object_set(out, "workspaceId", json_object_get(rec, "workspaceId"));
    json_t *org = json_object_get(rec, "orgId");
    if (org != NULL)
        json_object_set(out, "orgId", org);
    json_t *kind = json_object_get(rec, "targetKind");
    json_t *rid = json_object_get(rec, "resourceId");
    json_object_set_new(out, "target",
                        json_pack("{s:O, s:O}", "kind", kind != NULL ? kind : json_null(), "id",
                                  rid != NULL ? rid : json_null()));
    json_t *oc = json_object_get(rec, "outcome");
    json_object_set_new(out, "outcome", oc != NULL ? json_incref(oc) : json_string("ok"));
    json_t *status = json_object_get(rec, "status");
    json_object_set_new(out, "status",
                        status != NULL ? json_incref(status) : json_string("EE_OK"));
    json_t *detail = json_object_get(rec, "detail");
    json_object_set_new(out, "detail", detail != NULL ? json_incref(detail) : json_object());
    return out;
}

static int query_row(const ee_storage_row *row, void *payload)
{
    query_acc *a = payload;
    a->scanned++;
    json_t *rec = NULL;
    a->st = ee__record_decode(&ee__audit_map, row->data, row->len, false, &rec);
    if (a->st != EE_OK)
        return 1;
    const char *action = json_string_value(json_object_get(rec, "action"));
    if (a->prefix == NULL || (action != NULL && strncmp(action, a->prefix, a->prefix_len) == 0)) {
        char id[EE_STORAGE_ID_HEX_LEN + 1];
        ee__hex_encode(row->id, EE_STORAGE_ID_SIZE, id);
        json_t *e = render(id, rec);
        if (e == NULL) {
            json_decref(rec);
            a->st = ee__error(EE_ENOMEM, "out of memory listing audit entries");
            return 1;
        }
        json_array_append_new(a->data, e);
    }
    json_decref(rec);
    return 0;
}

static ee_status time_member(const json_t *q, const char *name, const char *what, int64_t *out,
                             bool *set)
{
    json_t *v = json_object_get(q, name);
    *set = v != NULL;
    if (v == NULL)
        return EE_OK;
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return ee__error(EE_EINVAL, "%s: \"%s\" (at /%s) must be a non-negative integer of ms",
                         what, name, name);
    *out = json_integer_value(v);
    return EE_OK;
}

ee_status ee_audit_query(ee_engine *engine, const ee_principal *principal,
                         const char *query_json, char **out)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee_audit_query: out must not be NULL");
    *out = NULL;
    if (ee__audit_state(engine) == NULL)
        return ee__error_out(out, ee__error(EE_EINVAL, "ee_audit_query: engine must not be "
                                                       "NULL"));
    /* NULL: the platform's own entries (the admin's view, as the catalog's
     * NULL principal) */
    const char *ws = principal != NULL ? ee_principal_workspace(principal) : EE__AUDIT_PLATFORM;
    static const char *const members[] = {"from", "to", "action", "limit", "cursor", NULL};
    const char *what = "audit query";
    json_t *q = NULL;
    ee_status st = ee__record_parse(query_json != NULL ? query_json : "{}", 16 * 1024, 4, 0, what,
                                    &q);
    if (st == EE_OK)
        st = ee__json_check_members(q, members, what, "");
    ee_storage_query_spec spec = {.version = EE_STORAGE_QUERY_VERSION,
                                  .order = EE_STORAGE_ORDER_TIME_DESC};
    bool from_set = false, to_set = false;
    if (st == EE_OK)
        st = time_member(q, "from", what, &spec.time_from, &from_set);
    if (st == EE_OK)
        st = time_member(q, "to", what, &spec.time_to, &to_set);
    if (st == EE_OK && from_set && to_set && spec.time_from > spec.time_to)
        st = ee__error(EE_EINVAL, "%s: \"from\" is after \"to\"", what);
    spec.flags = (from_set ? EE_STORAGE_QUERY_FROM : 0u) | (to_set ? EE_STORAGE_QUERY_TO : 0u);
    query_acc a = {.data = json_array(), .st = EE_OK};
    ee_storage_eq eq;
    json_t *act = json_object_get(q, "action");
    if (st == EE_OK && act != NULL) {
        if (!json_is_string(act) || json_string_length(act) == 0 ||
            json_string_length(act) > EE_STORAGE_VALUE_MAX)
            st = ee__error(EE_EINVAL, "%s: \"action\" (at /action) must be a non-empty string "
                                      "of at most %d bytes", what, EE_STORAGE_VALUE_MAX);
        else if (ee__audit_action_known(json_string_value(act))) {
            /* A whole name: the storage's index on action does the work. */
            eq = (ee_storage_eq){"action", json_string_value(act)};
            spec.eq = &eq;
            spec.n_eq = 1;
        } else {
            a.prefix = json_string_value(act);
            a.prefix_len = json_string_length(act);
        }
    }
    size_t limit = EE_AUDIT_LIMIT_DEFAULT;
    const char *from_cursor = NULL;
    if (st == EE_OK)
        st = ee__json_page_args(q, what, EE_AUDIT_LIMIT_DEFAULT, EE_AUDIT_LIMIT_MAX, &limit,
                                &from_cursor);
    char *next = NULL;
    if (st == EE_OK && a.data == NULL)
        st = ee__error(EE_ENOMEM, "out of memory listing audit entries");
    /* Each storage page asks for what is still missing, and every row of
     * it is consumed (kept or filtered out), so the storage's cursor after
     * the page is exactly where the next call goes on. */
    while (st == EE_OK) {
        spec.limit = limit - json_array_size(a.data);
        spec.cursor = from_cursor;
        char *page_next = NULL;
        st = ee_storage_query(ee__engine_storage(engine), EE__AUDIT_COLL, ws, &spec, query_row,
                              &a, &page_next);
        if (st == EE_ECANCELLED && a.st != EE_OK)
            st = a.st;
        ee_free(next);
        next = page_next;
        from_cursor = next;
        if (st != EE_OK || next == NULL || json_array_size(a.data) >= limit ||
            a.scanned >= SCAN_FACTOR * limit)
            break;
    }
    json_decref(q);
    return ee__json_page_out(out, st, a.data, next);
}

/* One entry per purge call, with its count, written after the delete (so
 * a purge never deletes its own entry); `before` 0: the retention kept
 * everything. */
static void audit_purge(ee_engine *engine, ee_status s, uint64_t deleted, int64_t before)
{
    json_t *detail = json_pack("{s:I}", "deleted", (json_int_t)deleted);
    if (detail != NULL && before != 0)
        json_object_set_new(detail, "before", json_integer(before));
    ee__audit_append(engine, &(ee__audit_entry){.action = EE__AUDIT_AUDIT_PURGED,
                                                .workspace = EE__AUDIT_PLATFORM,
                                                .actor = EE__AUDIT_ACTOR_SYSTEM,
                                                .target_id = EE__AUDIT_COLL,
                                                .outcome = s == EE_OK ? EE__AUDIT_OK
                                                                      : EE__AUDIT_FAILED,
                                                .status = s,
                                                .detail = detail});
    json_decref(detail);
}

ee_status ee_audit_purge(ee_engine *engine, int64_t before_ms, uint64_t *deleted_out)
{
    if (deleted_out != NULL)
        *deleted_out = 0;
    a_state *st = ee__audit_state(engine);
    if (st == NULL || before_ms < 0)
        return ee__error(EE_EINVAL, "ee_audit_purge: engine must not be NULL and before_ms "
                                    "not negative");
    if (before_ms == 0) {
        if (st->retention_days > 0)
            before_ms = ee_engine_now_ms(engine) - st->retention_days * 86400000;
        if (before_ms <= 0) { /* keep forever, or nothing that old can exist */
            audit_purge(engine, EE_OK, 0, 0);
            return EE_OK;
        }
    }
    uint64_t n = 0;
    ee_status s = ee_storage_delete_range(ee__engine_storage(engine), EE__AUDIT_COLL, NULL, 0,
                                          before_ms, &n);
    if (s == EE_OK && deleted_out != NULL)
        *deleted_out = n;
    if (s == EE_OK)
        ee__log(ee__engine_logger(engine), EE_LOG_INFO, "audit",
                "retention: %llu audit entries older than %lld ms deleted",
                (unsigned long long)n, (long long)before_ms);
    audit_purge(engine, s, s == EE_OK ? n : 0, before_ms);
    return s;
}

ee_status ee_audit_stats(ee_engine *engine, char **out)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee_audit_stats: out must not be NULL");
    *out = NULL;
    a_state *st = ee__audit_state(engine);
    if (st == NULL)
        return ee__error_out(out, ee__error(EE_EINVAL, "ee_audit_stats: engine must not be NULL"));
    return ee__json_out(out, json_pack("{s:I, s:I, s:I}", "appended",
                                       (json_int_t)atomic_load(&st->appended), "failed",
                                       (json_int_t)atomic_load(&st->failed), "truncatedDetails",
                                       (json_int_t)atomic_load(&st->truncated)));
}
