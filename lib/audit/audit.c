/*
 * The audit log: its per-engine state (options, counters) and the one
 * append every module calls where its action commits (docs/audit.md).
 *
 * An append never fails the action it records. The action has committed
 * when the entry is written (a key stored, a run ended): failing the call
 * then would tell the caller "not done" about something done, and a
 * retry would do it twice. So a failed append is logged as an error and
 * counted (ee_audit_stats() "failed") for the host to alert on, and the
 * caller's own status and error detail are left as they were.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit_internal.h"
#include "execengine/storage.h"

static const char *const action_names[EE__AUDIT_ACTION_COUNT] = {
#define EE__AUDIT_NAME(e, name, kind) name,
    EE__AUDIT_ACTIONS(EE__AUDIT_NAME)
#undef EE__AUDIT_NAME
};

static const char *const target_kinds[EE__AUDIT_ACTION_COUNT] = {
#define EE__AUDIT_KIND(e, name, kind) kind,
    EE__AUDIT_ACTIONS(EE__AUDIT_KIND)
#undef EE__AUDIT_KIND
};

static const char *const outcome_names[] = {"ok", "refused", "failed"};

const char *ee__audit_action_name(ee__audit_action action)
{
    return (int)action >= 0 && action < EE__AUDIT_ACTION_COUNT ? action_names[action] : "";
}

bool ee__audit_action_known(const char *name)
{
    for (int i = 0; i < EE__AUDIT_ACTION_COUNT; i++)
        if (strcmp(action_names[i], name) == 0)
            return true;
    return false;
}

a_state *ee__audit_state(const ee_engine *engine)
{
    return engine == NULL ? NULL : ee__engine_module(engine, EE__MOD_AUDIT);
}

/* The stored entry (collection auditLog: indexed userId, action,
 * resourceId; time field createdAt). userId holds the actor. Entries the
 * quota module wrote before this module existed have no outcome, status
 * or targetKind: nothing else is required when read. */
#define F_STR(n, max, fl) {.name = n, .kind = EE__REC_STRING, .flags = fl, .max_bytes = max}
static const ee__rec_field entry_fields[] = {
    F_STR("workspaceId", EE_STORAGE_WORKSPACE_MAX, EE__REC_REQUIRED),
    F_STR("orgId", EE_STORAGE_VALUE_MAX, 0),
    F_STR("userId", EE_STORAGE_VALUE_MAX, EE__REC_REQUIRED),
    F_STR("action", EE_STORAGE_VALUE_MAX, EE__REC_REQUIRED),
    F_STR("targetKind", 64, 0),
    F_STR("resourceId", EE_STORAGE_VALUE_MAX, 0),
    F_STR("outcome", 16, 0),
    F_STR("status", 64, 0),
    {.name = "detail", .kind = EE__REC_DOC},
    {.name = "createdAt", .kind = EE__REC_INT64, .flags = EE__REC_REQUIRED},
};
const ee__record_map ee__audit_map = {"audit entry", entry_fields,
                                      sizeof entry_fields / sizeof entry_fields[0], false};

/* At most `max` bytes of `s`, cut on a UTF-8 character boundary. */
static json_t *bounded_string(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n > max) {
        n = max;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    return json_stringn(s, n);
}

/* The detail as stored: the caller's, or a marker when it is too large. */
static json_t *bounded_detail(a_state *st, const json_t *detail)
{
    if (detail == NULL || !json_is_object(detail))
        return json_object();
    size_t n = 0;
    char *text = ee__json_text(detail, &n);
    free(text);
    /* shared, not copied: the entry is encoded and dropped, never changed */
    if (text != NULL && n <= EE_AUDIT_DETAIL_MAX)
        return json_incref((json_t *)detail);
    atomic_fetch_add(&st->truncated, 1);
    return json_pack("{s:b, s:I}", "truncated", 1, "bytes", (json_int_t)n);
}

static ee_status append(a_state *st, const ee__audit_entry *e)
{
    const char *ws = e->workspace != NULL ? e->workspace : EE__AUDIT_PLATFORM;
    const char *actor = e->actor != NULL && e->actor[0] != '\0' ? e->actor : EE__AUDIT_ACTOR_SYSTEM;
    int oc = (int)e->outcome >= 0 && e->outcome <= EE__AUDIT_FAILED ? (int)e->outcome : 2;
    json_t *doc = json_object();
    if (doc == NULL)
        return ee__error(EE_ENOMEM, "out of memory writing an audit entry");
    /* Not cut: an entry in another workspace than its action's would be
     * worse than none (the storage refuses one too long, counted). */
    json_object_set_new(doc, "workspaceId", json_string(ws));
    if (e->org != NULL && e->org[0] != '\0')
        json_object_set_new(doc, "orgId", bounded_string(e->org, EE_STORAGE_VALUE_MAX));
    json_object_set_new(doc, "userId", bounded_string(actor, EE_STORAGE_VALUE_MAX));
    json_object_set_new(doc, "action", json_string(action_names[e->action]));
    json_object_set_new(doc, "targetKind", json_string(target_kinds[e->action]));
    if (e->target_id != NULL)
        json_object_set_new(doc, "resourceId",
                            bounded_string(e->target_id, EE_STORAGE_VALUE_MAX));
    json_object_set_new(doc, "outcome", json_string(outcome_names[oc]));
    json_object_set_new(doc, "status", json_string(ee_status_name(e->status)));
    json_object_set_new(doc, "detail", bounded_detail(st, e->detail));
    json_object_set_new(doc, "createdAt", json_integer(ee_engine_now_ms(st->engine)));
    uint8_t *data = NULL;
    size_t len = 0;
    ee_status s = ee__record_encode(&ee__audit_map, doc, &data, &len);
    json_decref(doc);
    if (s == EE_OK)
        s = ee_storage_insert(ee__engine_storage(st->engine), EE__AUDIT_COLL, ws, data, len, NULL);
    free(data);
    return s;
}

void ee__audit_append(ee_engine *engine, const ee__audit_entry *entry)
{
    a_state *st = ee__audit_state(engine);
    if (st == NULL || entry == NULL || (int)entry->action < 0 ||
        entry->action >= EE__AUDIT_ACTION_COUNT)
        return;
    ee__error_saved saved;
    ee__error_save(&saved);
    ee_status s = append(st, entry);
    if (s == EE_OK) {
        atomic_fetch_add(&st->appended, 1);
    } else {
        atomic_fetch_add(&st->failed, 1);
        /* The message names the action and target, never the detail. */
        ee__log(ee__engine_logger(engine), EE_LOG_ERROR, "audit",
                "cannot write the audit entry %s of %s \"%s\": %s (%s)",
                action_names[entry->action], target_kinds[entry->action],
                entry->target_id != NULL ? entry->target_id : "", ee_strerror(s),
                ee_error_last_message());
    }
    ee__error_restore(&saved);
}

/* ---- module --------------------------------------------------------------------------- */

static ee_status audit_open(ee_engine *engine, void **state_out)
{
    *state_out = NULL;
    a_state *st = calloc(1, sizeof *st);
    if (st == NULL)
        return ee__error(EE_ENOMEM, "out of memory opening the audit module");
    st->engine = engine;
    st->retention_days = ee__config_int(ee__engine_config(engine), "AUDIT_RETENTION_DAYS");
    atomic_init(&st->appended, 0);
    atomic_init(&st->failed, 0);
    atomic_init(&st->truncated, 0);
    *state_out = st;
    return EE_OK;
}

static void audit_close(void *state)
{
    free(state);
}

static const ee__option audit_options[] = {
    EE__OPTION("AUDIT_RETENTION_DAYS", EE__OPT_INT, "365", 0, 36500,
               "Days ee_audit_purge() keeps audit entries (0: forever)"),
};

const ee__module ee__audit_module = {
    "audit", audit_options, sizeof audit_options / sizeof audit_options[0], NULL,
    audit_open, audit_close,
};
