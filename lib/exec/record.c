/* The execution record: the seed's workflowExecutions document, typed
 * inside (x_rec), stored through the record layer's field map, rendered
 * as JSON only at the door. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/record.h"
#include "exec/exec.h"
#include "exec/exec_internal.h"
#include "storage/storage.h"

static const char *const status_names[] = {"pending", "running", "completed", "failed",
                                           "cancelled"};

const char *ee__exec_status_name(x_status s)
{
    return (unsigned)s < sizeof status_names / sizeof status_names[0] ? status_names[s] : "?";
}

bool ee__exec_status_parse(const char *name, x_status *out)
{
    for (size_t i = 0; name != NULL && i < sizeof status_names / sizeof status_names[0]; i++)
        if (strcmp(name, status_names[i]) == 0) {
            *out = (x_status)i;
            return true;
        }
    return false;
}

void ee__exec_rec_clear(x_rec *r)
{
    if (r == NULL)
        return;
    free(r->workflow_name);
    free(r->user_id);
    free(r->org_id);
    json_decref(r->input);
    json_decref(r->output);
    free(r->error_message);
    free(r->n8n_id);
    free(r->idem_key);
    free(r->ticket_json);
    free(r->email_to);
    memset(r, 0, sizeof *r);
}

/* ---- the field map ------------------------------------------------------------------ */

#define S(n, max) {.name = n, .kind = EE__REC_STRING, .max_bytes = max}
#define I(n) {.name = n, .kind = EE__REC_INT64}
#define D(n) {.name = n, .kind = EE__REC_DATE}

static const ee__rec_field ref_fields[] = {
    I("bytes"), S("sha256", 64), S("storageReservation", 24)};
static const ee__record_map ref_map = {"execution outputRef", ref_fields,
                                       sizeof ref_fields / sizeof ref_fields[0], false};

static const ee__rec_field key_fields[] = {
    S("type", 16), S("provider", 31), S("keyId", 63),
    {.name = "cost", .kind = EE__REC_MONEY}, {.name = "platformCost", .kind = EE__REC_MONEY},
    I("tokensUsed")};
static const ee__record_map key_map = {"execution apiKeyUsed", key_fields,
                                       sizeof key_fields / sizeof key_fields[0], false};

static const ee__rec_field charge_fields[] = {
    S("month", 7), {.name = "cost", .kind = EE__REC_MONEY},
    {.name = "markup", .kind = EE__REC_MONEY}, {.name = "allowanceUsed", .kind = EE__REC_MONEY},
    {.name = "charged", .kind = EE__REC_MONEY}};
static const ee__record_map charge_map = {"execution charge", charge_fields,
                                          sizeof charge_fields / sizeof charge_fields[0], false};

static const ee__rec_field run_fields[] = {
    S("quotaTicket", 4096), I("timeoutMs"), I("deadlineMs"), I("failStatus"),
    {.name = "useCustomApiKey", .kind = EE__REC_BOOL}, S("emailTo", 320),
    {.name = "emailOnDemand", .kind = EE__REC_BOOL}};
static const ee__record_map run_map = {"execution run", run_fields,
                                       sizeof run_fields / sizeof run_fields[0], false};

static const ee__rec_field x_fields[] = {
    {.name = "_id", .kind = EE__REC_ID},
    {.name = "workflowCatalogId", .kind = EE__REC_ID, .flags = EE__REC_REQUIRED},
    S("workflowName", 1024),
    {.name = "workspaceId", .kind = EE__REC_STRING, .flags = EE__REC_REQUIRED,
     .max_bytes = EE_STORAGE_WORKSPACE_MAX},
    S("userId", 256), S("orgId", 256),
    {.name = "status", .kind = EE__REC_STRING, .flags = EE__REC_REQUIRED, .max_bytes = 16},
    {.name = "inputData", .kind = EE__REC_OPAQUE},
    {.name = "outputData", .kind = EE__REC_OPAQUE, .flags = EE__REC_NULLABLE},
    {.name = "outputRef", .kind = EE__REC_DOC, .map = &ref_map},
    I("executionTimeMs"),
    {.name = "apiKeyUsed", .kind = EE__REC_DOC, .map = &key_map},
    {.name = "charge", .kind = EE__REC_DOC, .map = &charge_map},
    {.name = "emailSent", .kind = EE__REC_BOOL},
    D("emailSentAt"),
    S("errorMessage", 4096),
    S("n8nExecutionId", 128),
    S("idempotencyKey", 128),
    {.name = "createdAt", .kind = EE__REC_DATE, .flags = EE__REC_REQUIRED},
    D("startedAt"), D("completedAt"),
    {.name = "run", .kind = EE__REC_DOC, .map = &run_map},
};
static const ee__record_map x_map = {"execution record", x_fields,
                                     sizeof x_fields / sizeof x_fields[0], false};

/* ---- typed <-> stored JSON --------------------------------------------------------- */

static char *dup_or_null(const json_t *v)
{
    return json_is_string(v) ? strdup(json_string_value(v)) : NULL;
}

static int64_t int_of(const json_t *obj, const char *k)
{
    const json_t *v = json_object_get(obj, k);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

static ee_status from_json(const json_t *j, x_rec *r)
{
    const char *wf = json_string_value(json_object_get(j, "workflowCatalogId"));
    const char *ws = json_string_value(json_object_get(j, "workspaceId"));
    if (wf == NULL || ws == NULL ||
        !ee__exec_status_parse(json_string_value(json_object_get(j, "status")), &r->status))
        return ee__error(EE_ECORRUPT, "stored execution record %s lacks its workflow, workspace "
                                      "or a known status", r->id);
    snprintf(r->workflow_id, sizeof r->workflow_id, "%s", wf);
    snprintf(r->workspace, sizeof r->workspace, "%s", ws);
    r->workflow_name = dup_or_null(json_object_get(j, "workflowName"));
    r->user_id = dup_or_null(json_object_get(j, "userId"));
    r->org_id = dup_or_null(json_object_get(j, "orgId"));
    json_t *in = json_object_get(j, "inputData");
    r->input = json_is_object(in) ? json_incref(in) : json_object();
    json_t *out = json_object_get(j, "outputData");
    r->output = out != NULL && !json_is_null(out) ? json_incref(out) : NULL;
    const json_t *ref = json_object_get(j, "outputRef");
    if (json_is_object(ref)) {
        r->has_ref = true;
        r->ref.bytes = int_of(ref, "bytes");
        snprintf(r->ref.sha256, sizeof r->ref.sha256, "%s",
                 json_string_value(json_object_get(ref, "sha256")) ?: "");
        const char *resv = json_string_value(json_object_get(ref, "storageReservation"));
        r->ref.storage_resv = resv != NULL ? strtoull(resv, NULL, 10) : 0;
    }
    r->exec_ms = int_of(j, "executionTimeMs");
    const json_t *key = json_object_get(j, "apiKeyUsed");
    if (json_is_object(key)) {
        const char *type = json_string_value(json_object_get(key, "type"));
        r->key_customer = type != NULL && strcmp(type, "customer") == 0;
        snprintf(r->key_provider, sizeof r->key_provider, "%s",
                 json_string_value(json_object_get(key, "provider")) ?: "");
        snprintf(r->key_id, sizeof r->key_id, "%s",
                 json_string_value(json_object_get(key, "keyId")) ?: "");
        r->cost_nano = int_of(key, "cost");
        /* a record from before per-call sources: the run's key type decided */
        r->platform_cost_nano = json_object_get(key, "platformCost") != NULL
                                    ? int_of(key, "platformCost")
                                    : (r->key_customer ? 0 : r->cost_nano);
        r->tokens = int_of(key, "tokensUsed");
    }
    const json_t *charge = json_object_get(j, "charge");
    if (json_is_object(charge)) {
        r->charged = true;
        snprintf(r->charge_month, sizeof r->charge_month, "%s",
                 json_string_value(json_object_get(charge, "month")) ?: "");
        r->charge_cost = int_of(charge, "cost");
        r->charge_markup = int_of(charge, "markup");
        r->charge_allowance = int_of(charge, "allowanceUsed");
        r->charge_charged = int_of(charge, "charged");
    }
    r->email_sent = json_is_true(json_object_get(j, "emailSent"));
    r->email_sent_at = int_of(j, "emailSentAt");
    r->error_message = dup_or_null(json_object_get(j, "errorMessage"));
    r->n8n_id = dup_or_null(json_object_get(j, "n8nExecutionId"));
    r->idem_key = dup_or_null(json_object_get(j, "idempotencyKey"));
    r->created_at = int_of(j, "createdAt");
    r->started_at = int_of(j, "startedAt");
    r->completed_at = int_of(j, "completedAt");
    const json_t *run = json_object_get(j, "run");
    r->ticket_json = dup_or_null(json_object_get(run, "quotaTicket"));
    r->timeout_ms = int_of(run, "timeoutMs");
    r->deadline_ms = int_of(run, "deadlineMs");
    r->fail_status = (int)int_of(run, "failStatus");
    r->use_customer_key = json_is_true(json_object_get(run, "useCustomApiKey"));
    r->email_to = dup_or_null(json_object_get(run, "emailTo"));
    r->email_on_demand = json_is_true(json_object_get(run, "emailOnDemand"));
    return EE_OK;
}

static void set_str(json_t *o, const char *k, const char *v)
{
    if (v != NULL)
        json_object_set_new(o, k, json_string(v));
}

static void set_int(json_t *o, const char *k, int64_t v)
{
    json_object_set_new(o, k, json_integer((json_int_t)v));
}

/* The two shapes of a record: what is stored (no "_id" - the storage
 * keeps it -, dates as ms, the output reference's storage reservation and
 * the "run" member) and what the door answers ("_id" first, dates as ISO
 * text, the cost also in USD, nothing of "run"; the list leaves out the
 * input and output). One builder, so a field added to the record reaches
 * both. */
typedef enum { AS_STORED, AS_ANSWER, AS_ANSWER_BRIEF } x_shape;

static void set_date(json_t *o, const char *k, int64_t ms, x_shape shape);

static void set_money(json_t *o, const char *k, int64_t nano, bool usd)
{
    set_int(o, k, nano);
    if (usd) {
        char key[48], text[32];
        snprintf(key, sizeof key, "%sUsd", k);
        ee__decimal_format(nano, 9, text);
        set_str(o, key, text);
    }
}

json_t *ee__exec_charge_json(const x_rec *r, bool stored)
{
    json_t *c = json_object();
    if (c == NULL)
        return NULL;
    set_str(c, "month", r->charge_month);
    set_money(c, "cost", r->charge_cost, !stored);
    set_money(c, "markup", r->charge_markup, !stored);
    set_money(c, "allowanceUsed", r->charge_allowance, !stored);
    set_money(c, "charged", r->charge_charged, !stored);
    return c;
}

static json_t *build(const x_rec *r, x_shape shape)
{
    bool stored = shape == AS_STORED;
    json_t *j = json_object();
    if (j == NULL)
        return NULL;
    if (!stored)
        set_str(j, "_id", r->id);
    set_str(j, "workflowCatalogId", r->workflow_id);
    set_str(j, "workflowName", r->workflow_name);
    set_str(j, "workspaceId", r->workspace);
    set_str(j, "userId", r->user_id);
    set_str(j, "orgId", r->org_id);
    set_str(j, "status", ee__exec_status_name(r->status));
    if (shape != AS_ANSWER_BRIEF) {
        json_object_set(j, "inputData", r->input != NULL ? r->input : json_object());
        json_object_set(j, "outputData", r->output != NULL ? r->output : json_null());
    }
    if (r->has_ref) {
        json_t *ref = json_pack("{s:I, s:s}", "bytes", (json_int_t)r->ref.bytes, "sha256",
                                r->ref.sha256);
        if (ref != NULL && stored) {
            char resv[24];
            snprintf(resv, sizeof resv, "%" PRIu64, r->ref.storage_resv);
            set_str(ref, "storageReservation", resv);
        }
        json_object_set_new(j, "outputRef", ref);
    }
    set_int(j, "executionTimeMs", r->exec_ms);
    if (r->key_provider[0] != '\0') {
        json_t *k = json_pack("{s:s, s:s, s:I}", "type", r->key_customer ? "customer" : "platform",
                              "provider", r->key_provider, "cost", (json_int_t)r->cost_nano);
        if (k != NULL && !stored) {
            char usd[32];
            ee__decimal_format(r->cost_nano, 9, usd);
            set_str(k, "costUsd", usd);
        }
        if (k != NULL)
            set_money(k, "platformCost", r->platform_cost_nano, !stored);
        if (k != NULL)
            set_int(k, "tokensUsed", r->tokens);
        if (k != NULL && r->key_id[0] != '\0')
            set_str(k, "keyId", r->key_id);
        json_object_set_new(j, "apiKeyUsed", k);
    }
    if (r->charged)
        json_object_set_new(j, "charge", ee__exec_charge_json(r, stored));
    json_object_set_new(j, "emailSent", json_boolean(r->email_sent));
    if (r->email_sent_at > 0)
        set_date(j, "emailSentAt", r->email_sent_at, shape);
    set_str(j, "errorMessage", r->error_message);
    set_str(j, "n8nExecutionId", r->n8n_id);
    set_str(j, "idempotencyKey", r->idem_key);
    set_date(j, "createdAt", r->created_at, shape);
    if (r->started_at > 0)
        set_date(j, "startedAt", r->started_at, shape);
    if (r->completed_at > 0)
        set_date(j, "completedAt", r->completed_at, shape);
    if (stored) {
        json_t *run = json_object();
        set_str(run, "quotaTicket", r->ticket_json);
        set_int(run, "timeoutMs", r->timeout_ms);
        set_int(run, "deadlineMs", r->deadline_ms);
        set_int(run, "failStatus", r->fail_status);
        json_object_set_new(run, "useCustomApiKey", json_boolean(r->use_customer_key));
        set_str(run, "emailTo", r->email_to);
        if (r->email_on_demand)
            json_object_set_new(run, "emailOnDemand", json_true());
        json_object_set_new(j, "run", run);
    }
    return j;
}

static json_t *to_json(const x_rec *r)
{
    return build(r, AS_STORED);
}

ee_status ee__exec_decode(const uint8_t *data, size_t len, const char *id, int64_t revision,
                          x_rec *out)
{
    memset(out, 0, sizeof *out);
    json_t *j = NULL;
    ee_status st = ee__record_decode(&x_map, data, len, false, &j);
    if (st != EE_OK)
        return st;
    snprintf(out->id, sizeof out->id, "%s", id);
    out->revision = revision;
    st = from_json(j, out);
    json_decref(j);
    if (st != EE_OK)
        ee__exec_rec_clear(out);
    return st;
}

/* ---- storage ------------------------------------------------------------------------ */

ee_status ee__exec_insert(ee_engine *engine, x_rec *r)
{
    json_t *j = to_json(r);
    if (j == NULL)
        return ee__error(EE_ENOMEM, "out of memory storing an execution");
    json_object_set_new(j, "_id", json_string(r->id));
    uint8_t *data = NULL;
    size_t len = 0;
    ee_status st = ee__record_encode(&x_map, j, &data, &len);
    json_decref(j);
    if (st == EE_OK) {
        st = ee_storage_insert(ee__engine_storage(engine), X_COLL, r->workspace, data, len, NULL);
        r->revision = 1;
    }
    free(data);
    return st;
}

/* Whether id is an execution id as the library writes them: 24 lowercase
 * hex digits. Storage reads any case of hex to the same document, but the
 * id is also a key as text (the record's "_id", accounting, the gateway's
 * grant, the callback key): "6B16..." would load the run under a second
 * name, so it is not found, as every other malformed id. */
static bool exec_id_ok(const char *id)
{
    if (id == NULL || strlen(id) != EE_EXEC_ID_SIZE - 1)
        return false;
    for (const char *c = id; *c != '\0'; c++)
        if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
            return false;
    return true;
}

ee_status ee__exec_load(ee_engine *engine, const char *workspace, const char *id, x_rec *out)
{
    memset(out, 0, sizeof *out);
    if (!exec_id_ok(id))
        return ee__error(EE_ENOTFOUND, "no execution %s in this workspace", "with that id");
    uint8_t *data = NULL;
    size_t len = 0;
    int64_t rev = 0;
    ee_status st = ee_storage_get(ee__engine_storage(engine), X_COLL, workspace, id, &data, &len,
                                  &rev);
    if (st == EE_ENOTFOUND)
        st = ee__error(EE_ENOTFOUND, "no execution %s in this workspace", id);
    if (st == EE_OK)
        st = ee__exec_decode(data, len, id, rev, out);
    ee_free(data);
    return st;
}

ee_status ee__exec_find_idem(ee_engine *engine, const char *workspace, const char *key,
                             x_rec *out)
{
    memset(out, 0, sizeof *out);
    ee__record_found f;
    memset(&f, 0, sizeof f);
    ee_status st = ee__record_find(ee__engine_storage(engine), &x_map, X_COLL, workspace,
                                   "idempotencyKey", key, &f);
    if (st != EE_OK)
        return st;
    if (f.rec == NULL)
        return ee__error(EE_ECORRUPT, "stored execution %s: %s", f.id, f.why);
    snprintf(out->id, sizeof out->id, "%s", f.id);
    out->revision = f.revision;
    st = from_json(f.rec, out);
    json_decref(f.rec);
    return st;
}

ee_status ee__exec_replace(ee_engine *engine, x_rec *r)
{
    json_t *j = to_json(r);
    if (j == NULL)
        return ee__error(EE_ENOMEM, "out of memory storing an execution");
    uint8_t *data = NULL;
    size_t len = 0;
    ee_status st = ee__record_encode(&x_map, j, &data, &len);
    json_decref(j);
    int64_t rev = 0;
    if (st == EE_OK)
        st = ee_storage_replace(ee__engine_storage(engine), X_COLL, r->workspace, r->id,
                                r->revision, data, len, &rev);
    if (st == EE_OK)
        r->revision = rev;
    free(data);
    return st;
}

typedef struct {
    x_change_fn fn;
    void *payload;
    const char *id;
} change_arg;

static ee_status change_mutate(json_t *rec, void *payload)
{
    change_arg *a = payload;
    x_rec r;
    memset(&r, 0, sizeof r);
    snprintf(r.id, sizeof r.id, "%s", a->id);
    ee_status st = from_json(rec, &r);
    if (st == EE_OK)
        st = a->fn(&r, a->payload);
    if (st == EE_OK) {
        json_t *j = to_json(&r);
        if (j == NULL)
            st = ee__error(EE_ENOMEM, "out of memory updating an execution");
        else {
            json_object_clear(rec);
            json_object_update(rec, j);
            json_decref(j);
        }
    }
    ee__exec_rec_clear(&r);
    return st;
}

ee_status ee__exec_change(ee_engine *engine, const char *workspace, const char *id,
                          x_change_fn fn, void *payload, x_rec *out)
{
    change_arg a = {fn, payload, id};
    ee__record_update_spec spec = {.storage = ee__engine_storage(engine),
                                   .map = &x_map,
                                   .collection = X_COLL,
                                   .workspace = workspace,
                                   .id = id,
                                   .mutate = change_mutate,
                                   .payload = &a};
    json_t *rec = NULL;
    int64_t rev = 0;
    ee_status st = ee__record_update(&spec, out != NULL ? &rec : NULL, &rev);
    if (st == EE_OK && out != NULL) {
        memset(out, 0, sizeof *out);
        snprintf(out->id, sizeof out->id, "%s", id);
        out->revision = rev;
        st = from_json(rec, out);
    }
    json_decref(rec);
    return st;
}

static bool dup_str(char **dst, const char *src)
{
    *dst = NULL;
    return src == NULL || (*dst = strdup(src)) != NULL;
}

ee_status ee__exec_rec_copy(x_rec *dst, const x_rec *src)
{
    *dst = *src;
    /* the JSON members are shared (never changed in place: a change
     * replaces them), the strings copied */
    if (dst->input != NULL)
        json_incref(dst->input);
    if (dst->output != NULL)
        json_incref(dst->output);
    bool ok = dup_str(&dst->workflow_name, src->workflow_name);
    ok = dup_str(&dst->user_id, src->user_id) && ok;
    ok = dup_str(&dst->org_id, src->org_id) && ok;
    ok = dup_str(&dst->error_message, src->error_message) && ok;
    ok = dup_str(&dst->n8n_id, src->n8n_id) && ok;
    ok = dup_str(&dst->idem_key, src->idem_key) && ok;
    ok = dup_str(&dst->ticket_json, src->ticket_json) && ok;
    ok = dup_str(&dst->email_to, src->email_to) && ok;
    if (!ok) {
        ee__exec_rec_clear(dst);
        return ee__error(EE_ENOMEM, "out of memory copying an execution");
    }
    return EE_OK;
}

ee_status ee__exec_change_from(ee_engine *engine, const x_rec *known, x_change_fn fn,
                               void *payload, x_rec *out)
{
    if (known->revision > 0) {
        x_rec r;
        ee__error_saved saved;
        ee__error_save(&saved);
        ee_status st = ee__exec_rec_copy(&r, known);
        if (st == EE_OK && (st = fn(&r, payload)) == EE_OK)
            st = ee__exec_replace(engine, &r); /* at known's revision */
        if (st == EE_OK) {
            if (out != NULL)
                *out = r;
            else
                ee__exec_rec_clear(&r);
            return EE_OK;
        }
        ee__exec_rec_clear(&r);
        /* changed since (EE_ECONFLICT), or nothing to write, or failed on
         * what may be out of date: decided again on the stored record */
        ee__error_restore(&saved);
    }
    return ee__exec_change(engine, known->workspace, known->id, fn, payload, out);
}

ee_status ee__exec_decode_row(const ee_storage_row *row, x_rec *out)
{
    char id[EE_EXEC_ID_SIZE];
    ee__hex_encode(row->id, EE_STORAGE_ID_SIZE, id);
    return ee__exec_decode(row->data, row->len, id, row->revision, out);
}

/* ---- the door ------------------------------------------------------------------------ */

static void set_date(json_t *o, const char *k, int64_t ms, x_shape shape)
{
    if (shape == AS_STORED) {
        set_int(o, k, ms);
        return;
    }
    char buf[32];
    ee__time_iso(ms, buf);
    json_object_set_new(o, k, json_string(buf));
}

json_t *ee__exec_render(const x_rec *r, bool full)
{
    return build(r, full ? AS_ANSWER : AS_ANSWER_BRIEF);
}

/* ---- audit ------------------------------------------------------------------------------ */

void ee__exec_audit(ee_engine *engine, const x_rec *r, ee__audit_action action,
                    const char *actor)
{
    ee__audit_outcome oc = EE__AUDIT_OK;
    ee_status status = EE_OK;
    if (action == EE__AUDIT_EXEC_FINISHED && r->status != X_COMPLETED) {
        status = r->fail_status != EE_OK ? (ee_status)r->fail_status : EE_EUPSTREAM;
        oc = status == EE_ESPEND ? EE__AUDIT_REFUSED : EE__AUDIT_FAILED;
    }
    /* Names, ids and numbers: never the input or output of the run. */
    json_t *detail = json_pack("{s:s, s:s}", "workflowId", r->workflow_id, "status",
                               ee__exec_status_name(r->status));
    if (detail != NULL && action == EE__AUDIT_EXEC_REQUESTED)
        json_object_set_new(detail, "apiKeyType",
                            json_string(r->key_customer ? "customer" : "platform"));
    if (detail != NULL && action == EE__AUDIT_EXEC_FINISHED) {
        json_object_set_new(detail, "executionTimeMs", json_integer(r->exec_ms));
        json_object_set_new(detail, "cost", json_integer(r->cost_nano));
        json_object_set_new(detail, "tokens", json_integer(r->tokens));
    }
    ee__audit_append(engine, &(ee__audit_entry){.action = action,
                                                .workspace = r->workspace,
                                                .org = r->org_id,
                                                .actor = actor != NULL ? actor
                                                                       : EE__AUDIT_ACTOR_ENGINE,
                                                .target_id = r->id,
                                                .outcome = oc,
                                                .status = status,
                                                .detail = detail});
    json_decref(detail);
}

/* ---- facts for other modules (exec.h) ------------------------------------------------- */

typedef struct {
    ee__exec_fact_fn fn;
    void *payload;
    uint64_t seen, max;
    ee_status st;
} walk_acc;

static int walk_row(const ee_storage_row *row, void *payload)
{
    walk_acc *a = payload;
    if (++a->seen > a->max) {
        a->st = ee__error(EE_ETOOBIG, "more than %llu executions in the range: ask a shorter one",
                          (unsigned long long)a->max);
        return 1;
    }
    x_rec r;
    a->st = ee__exec_decode_row(row, &r);
    if (a->st != EE_OK)
        return 1;
    ee__exec_fact f = {.user_id = r.user_id != NULL ? r.user_id : "",
                       .workflow_id = r.workflow_id,
                       .created_at = r.created_at,
                       .ended = x_final(r.status),
                       .completed = r.status == X_COMPLETED,
                       .exec_ms = r.exec_ms,
                       /* emailSent alone: a record from before emailOnDemand */
                       .email_requested = (r.email_to != NULL && r.email_to[0] != '\0') ||
                                          r.email_on_demand || r.email_sent,
                       .email_sent = r.email_sent};
    int stop = a->fn(&f, a->payload);
    ee__exec_rec_clear(&r);
    if (stop != 0)
        a->st = ee__error(EE_ECANCELLED, "the walk over executions was stopped");
    return stop;
}

ee_status ee__exec_walk(ee_engine *engine, const char *workspace, int64_t from, int64_t to,
                        uint64_t max, ee__exec_fact_fn fn, void *payload)
{
    if (engine == NULL || workspace == NULL || fn == NULL)
        return ee__error(EE_EINVAL, "executions walk: NULL argument");
    walk_acc a = {fn, payload, 0, max, EE_OK};
    ee_storage_query_spec q = {.version = EE_STORAGE_QUERY_VERSION,
                               .flags = EE_STORAGE_QUERY_FROM | EE_STORAGE_QUERY_TO,
                               .time_from = from,
                               .time_to = to,
                               .order = EE_STORAGE_ORDER_TIME_ASC,
                               .limit = EE_STORAGE_LIMIT_MAX};
    ee_status st = ee__storage_query_all(ee__engine_storage(engine), X_COLL, workspace, &q,
                                         walk_row, &a, &a.st);
    return st;
}

/* ---- e-mail (lib/notify) ------------------------------------------------------------- */

ee_status ee__exec_email_view(ee_engine *engine, const char *workspace, const char *id,
                              json_t **record_out, char **email_to_out)
{
    *record_out = NULL;
    *email_to_out = NULL;
    x_rec r;
    ee_status st = ee__exec_load(engine, workspace, id, &r);
    if (st != EE_OK)
        return st;
    *record_out = ee__exec_render(&r, true);
    if (r.email_to != NULL && r.email_to[0] != '\0')
        *email_to_out = strdup(r.email_to);
    ee__exec_rec_clear(&r);
    if (*record_out == NULL) {
        free(*email_to_out);
        *email_to_out = NULL;
        return ee__error(EE_ENOMEM, "out of memory reading execution %s", id);
    }
    return EE_OK;
}

static ee_status mark_sent(x_rec *r, void *payload)
{
    if (r->email_sent)
        return EE__RECORD_KEEP;
    r->email_sent = true;
    r->email_sent_at = *(const int64_t *)payload;
    return EE_OK;
}

ee_status ee__exec_mark_email_sent(ee_engine *engine, const char *workspace, const char *id,
                                   int64_t at_ms)
{
    return ee__exec_change(engine, workspace, id, mark_sent, &at_ms, NULL);
}

static ee_status mark_requested(x_rec *r, void *payload)
{
    (void)payload;
    if (r->email_on_demand)
        return EE__RECORD_KEEP;
    r->email_on_demand = true;
    return EE_OK;
}

ee_status ee__exec_mark_email_requested(ee_engine *engine, const char *workspace, const char *id)
{
    return ee__exec_change(engine, workspace, id, mark_requested, NULL, NULL);
}
