/*
 * The results e-mails' templates (the seed's executionEmailTemplates): one
 * per workflow, admin-only put/get/list/delete, compiled when stored, and
 * the rendering of an e-mail about an execution (docs/email.md).
 */
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "execengine/catalog.h"
#include "execengine/notify.h"
#include "execengine/storage.h"
#include "notify/handlebars.h"
#include "notify/notify_internal.h"
#include "storage/storage.h"

#define SUBJECT_MAX 4096

static const ee__rec_field template_fields[] = {
    {.name = "workflowCatalogId", .kind = EE__REC_ID, .flags = EE__REC_REQUIRED},
    {.name = "subjectTemplate", .kind = EE__REC_STRING, .flags = EE__REC_REQUIRED,
     .max_bytes = SUBJECT_MAX},
    {.name = "bodyTemplate", .kind = EE__REC_STRING, .flags = EE__REC_REQUIRED,
     .max_bytes = EE_TEMPLATE_MAX_TEMPLATE},
    {.name = "isActive", .kind = EE__REC_BOOL},
    {.name = "createdAt", .kind = EE__REC_DATE, .flags = EE__REC_REQUIRED},
    {.name = "updatedAt", .kind = EE__REC_DATE},
};
static const ee__record_map template_map = {"e-mail template", template_fields,
                                            sizeof template_fields / sizeof template_fields[0],
                                            false};

const char *const ee__email_default_subject = "{{{workflowName}}}: {{execution.status}}";
const char *const ee__email_default_body =
    "<!DOCTYPE html>\n<html><body>\n"
    "<h1>{{workflowName}}</h1>\n"
    "<p>Status: <strong>{{execution.status}}</strong>"
    "{{#if execution.executionTimeMs}} in {{execution.executionTimeMs}} ms{{/if}}</p>\n"
    "{{#if execution.errorMessage}}<p>Error: {{execution.errorMessage}}</p>\n{{/if}}"
    "{{#if execution.apiKeyUsed}}<p>Cost: ${{execution.apiKeyUsed.costUsd}} "
    "({{execution.apiKeyUsed.tokensUsed}} tokens)</p>\n{{/if}}"
    "{{#if resultsText}}<h2>Results</h2>\n<pre>{{resultsText}}</pre>\n{{/if}}"
    "<p>Execution {{execution._id}}</p>\n"
    "</body></html>\n";

static ee_status admin_only(const ee_principal *principal, const char *what)
{
    if (principal != NULL)
        return ee__error(EE_EPERM, "%s: e-mail templates are the admin's: call it without a "
                                   "principal (the host's own call)", what);
    return EE_OK;
}

/* The audit entry of a committed template change (the admin's: no
 * principal, so the actor is the host). Names the workflow, never the
 * template's text. */
static void audit_template(ee_engine *engine, ee__audit_action action, const char *workflow_id,
                           json_t *detail)
{
    ee__audit_append(engine, &(ee__audit_entry){.action = action,
                                                .workspace = EE__AUDIT_PLATFORM,
                                                .actor = EE__AUDIT_ACTOR_SYSTEM,
                                                .target_id = workflow_id,
                                                .outcome = EE__AUDIT_OK,
                                                .status = EE_OK,
                                                .detail = detail});
    json_decref(detail);
}

static bool id_ok(const char *id)
{
    if (id == NULL || strlen(id) != 24)
        return false;
    for (size_t i = 0; i < 24; i++)
        if (ee__hex_digit(id[i]) < 0 || (id[i] >= 'A' && id[i] <= 'F'))
            return false;
    return true;
}

/* A template compiles: rendered once over no data. Only its syntax is
 * judged (a missing helper or partial is one too: handlebars.js throws). */
static ee_status compile(const char *field, const char *text)
{
    char *out = NULL;
    ee_status st = ee__template_render(text, strlen(text), NULL, NULL, &out, NULL);
    free(out);
    if (st == EE_OK)
        return EE_OK;
    char msg[EE__ERROR_MSG_MAX];
    snprintf(msg, sizeof msg, "%s", ee_error_last_message());
    return ee__error(st, "%s: %s", field, msg);
}

static json_t *render_template(const char *id, const json_t *rec)
{
    json_t *j = json_object();
    json_object_set_new(j, "id", json_string(id));
    const char *keys[] = {"workflowCatalogId", "subjectTemplate", "bodyTemplate"};
    for (size_t i = 0; i < 3; i++)
        json_object_set(j, keys[i], json_object_get(rec, keys[i]));
    json_object_set_new(j, "isActive", json_boolean(!json_is_false(json_object_get(rec,
                                                                                   "isActive"))));
    const char *dates[] = {"createdAt", "updatedAt"};
    for (size_t i = 0; i < 2; i++) {
        json_t *v = json_object_get(rec, dates[i]);
        if (json_is_integer(v)) {
            char iso[32];
            ee__time_iso((int64_t)json_integer_value(v), iso);
            json_object_set_new(j, dates[i], json_string(iso));
        }
    }
    return j;
}

typedef struct {
    const json_t *in;
    int64_t now;
} put_arg;

static ee_status put_mutate(json_t *rec, void *payload)
{
    put_arg *a = payload;
    const char *keys[] = {"workflowCatalogId", "subjectTemplate", "bodyTemplate"};
    for (size_t i = 0; i < 3; i++)
        json_object_set(rec, keys[i], json_object_get(a->in, keys[i]));
    json_t *act = json_object_get(a->in, "isActive");
    json_object_set_new(rec, "isActive", json_boolean(act == NULL || json_is_true(act)));
    if (json_object_get(rec, "createdAt") == NULL)
        json_object_set_new(rec, "createdAt", json_integer(a->now));
    json_object_set_new(rec, "updatedAt", json_integer(a->now));
    return EE_OK;
}

ee_status ee_email_template_put(ee_engine *engine, const ee_principal *principal,
                                const char *template_json, char **out)
{
    const char *what = "ee_email_template_put";
    if (out == NULL)
        return ee__error(EE_EINVAL, "%s: out must not be NULL", what);
    *out = NULL;
    if (engine == NULL || template_json == NULL)
        return ee__error_out(out, ee__error(EE_EINVAL, "%s: NULL argument", what));
    ee_status st = admin_only(principal, what);
    if (st != EE_OK)
        return ee__error_out(out, st);
    static const char *const members[] = {"workflowCatalogId", "subjectTemplate", "bodyTemplate",
                                          "isActive", NULL};
    json_t *in = NULL;
    st = ee__record_parse(template_json, EE_EMAIL_TEMPLATE_DOC_MAX, 4, 0, what, &in);
    if (st == EE_OK)
        st = ee__json_check_members(in, members, what, "");
    const char *wf = json_string_value(json_object_get(in, "workflowCatalogId"));
    const char *subj = json_string_value(json_object_get(in, "subjectTemplate"));
    const char *body = json_string_value(json_object_get(in, "bodyTemplate"));
    json_t *act = json_object_get(in, "isActive");
    if (st == EE_OK && !id_ok(wf))
        st = ee__error(EE_EINVAL, "%s: \"workflowCatalogId\" must be 24 lowercase hex "
                                  "characters", what);
    if (st == EE_OK && (subj == NULL || body == NULL))
        st = ee__error(EE_EINVAL, "%s: \"subjectTemplate\" and \"bodyTemplate\" must be "
                                  "strings", what);
    if (st == EE_OK && (strlen(subj) != json_string_length(json_object_get(in, "subjectTemplate")) ||
                        strlen(body) != json_string_length(json_object_get(in, "bodyTemplate"))))
        st = ee__error(EE_EINVAL, "%s: a template must not hold NUL", what);
    if (st == EE_OK && strlen(subj) > SUBJECT_MAX)
        st = ee__error(EE_ETOOBIG, "%s: \"subjectTemplate\" exceeds %d bytes", what, SUBJECT_MAX);
    if (st == EE_OK && strlen(body) > EE_TEMPLATE_MAX_TEMPLATE)
        st = ee__error(EE_ETOOBIG, "%s: \"bodyTemplate\" exceeds %d bytes", what,
                       EE_TEMPLATE_MAX_TEMPLATE);
    if (st == EE_OK && act != NULL && !json_is_boolean(act))
        st = ee__error(EE_EINVAL, "%s: \"isActive\" must be true or false", what);
    if (st == EE_OK)
        st = compile("subjectTemplate", subj);
    if (st == EE_OK)
        st = compile("bodyTemplate", body);
    if (st == EE_OK) {
        char *entry = NULL;
        st = ee_catalog_get(engine, NULL, wf, EE_CATALOG_INCLUDE_INACTIVE, &entry);
        ee_free(entry);
        if (st == EE_ENOTFOUND)
            st = ee__error(EE_ENOTFOUND, "%s: no workflow %s in the catalog", what, wf);
    }
    if (st == EE_OK) {
        /* The collection has no unique key: a first template takes the
         * workflow's id as its own, so that of two first puts at once the
         * second insert is refused (EE_EEXISTS) and replaces the first's
         * instead of adding a second template. (Templates stored before
         * keep their ids: a put finds and replaces them.) */
        put_arg a = {in, ee_engine_now_ms(engine)};
        st = ee__record_upsert(ee__engine_storage(engine), &template_map,
                               EE__EMAIL_TEMPLATES_COLL, NULL, "workflowCatalogId", wf, wf,
                               put_mutate, &a);
    }
    char id[EE_STORAGE_ID_HEX_LEN + 1] = "";
    if (wf != NULL)
        snprintf(id, sizeof id, "%s", wf);
    if (st == EE_OK)
        audit_template(engine, EE__AUDIT_EMAIL_TEMPLATE_PUT, id,
                       json_pack("{s:b}", "isActive", act == NULL || json_is_true(act)));
    json_decref(in);
    if (st != EE_OK)
        return ee__error_out(out, st);
    return ee_email_template_get(engine, NULL, id, out);
}

ee_status ee__email_template_find(ee_engine *engine, const char *workflow_id, json_t **out)
{
    *out = NULL;
    ee__record_found f;
    ee_status st = ee__record_find(ee__engine_storage(engine), &template_map,
                                   EE__EMAIL_TEMPLATES_COLL, NULL, "workflowCatalogId",
                                   workflow_id, &f);
    if (st != EE_OK)
        return st;
    if (f.rec == NULL)
        return ee__error(EE_ECORRUPT, "stored e-mail template of workflow %s: %s", workflow_id,
                         f.why);
    json_object_set_new(f.rec, "id", json_string(f.id));
    *out = f.rec;
    return EE_OK;
}

ee_status ee_email_template_get(ee_engine *engine, const ee_principal *principal,
                                const char *workflow_id, char **out)
{
    const char *what = "ee_email_template_get";
    if (out == NULL)
        return ee__error(EE_EINVAL, "%s: out must not be NULL", what);
    *out = NULL;
    if (engine == NULL || !id_ok(workflow_id))
        return ee__error_out(out, ee__error(EE_EINVAL, "%s: engine must not be NULL and the "
                                                       "workflow id 24 lowercase hex", what));
    ee_status st = admin_only(principal, what);
    json_t *rec = NULL;
    if (st == EE_OK)
        st = ee__email_template_find(engine, workflow_id, &rec);
    if (st == EE_ENOTFOUND)
        st = ee__error(EE_ENOTFOUND, "%s: workflow %s has no e-mail template", what,
                       workflow_id);
    if (st != EE_OK)
        return ee__error_out(out, st);
    json_t *j = render_template(json_string_value(json_object_get(rec, "id")), rec);
    json_decref(rec);
    return ee__json_out(out, j);
}

typedef struct {
    json_t *data;
    ee_status st;
} list_acc;

static int list_row(const ee_storage_row *row, void *payload)
{
    list_acc *a = payload;
    json_t *rec = NULL;
    a->st = ee__record_decode(&template_map, row->data, row->len, false, &rec);
    if (a->st != EE_OK)
        return 1;
    char id[EE_STORAGE_ID_HEX_LEN + 1];
    ee__hex_encode(row->id, EE_STORAGE_ID_SIZE, id);
    json_array_append_new(a->data, render_template(id, rec));
    json_decref(rec);
    return 0;
}

ee_status ee_email_template_list(ee_engine *engine, const ee_principal *principal,
                                 const char *query_json, char **out)
{
    const char *what = "ee_email_template_list";
    if (out == NULL)
        return ee__error(EE_EINVAL, "%s: out must not be NULL", what);
    *out = NULL;
    if (engine == NULL)
        return ee__error_out(out, ee__error(EE_EINVAL, "%s: engine must not be NULL", what));
    ee_status st = admin_only(principal, what);
    json_t *q = NULL;
    static const char *const members[] = {"isActive", "limit", "cursor", NULL};
    if (st == EE_OK)
        st = ee__record_parse(query_json != NULL ? query_json : "{}", EE_EMAIL_QUERY_MAX, 4, 0, what,
                              &q);
    if (st == EE_OK)
        st = ee__json_check_members(q, members, what, "");
    size_t limit = 50;
    const char *cursor = NULL;
    if (st == EE_OK)
        st = ee__json_page_args(q, what, 50, EE_STORAGE_LIMIT_MAX, &limit, &cursor);
    ee_storage_eq eq = {"isActive", NULL};
    json_t *act = json_object_get(q, "isActive");
    if (st == EE_OK && act != NULL && !json_is_boolean(act))
        st = ee__error(EE_EINVAL, "%s: \"isActive\" must be true or false", what);
    if (act != NULL)
        eq.value = json_is_true(act) ? "true" : "false";
    ee_storage_query_spec spec = {.version = EE_STORAGE_QUERY_VERSION,
                                  .order = EE_STORAGE_ORDER_TIME_DESC,
                                  .eq = act != NULL ? &eq : NULL,
                                  .n_eq = act != NULL ? 1 : 0,
                                  .limit = limit,
                                  .cursor = cursor};
    list_acc a = {json_array(), EE_OK};
    char *next = NULL;
    if (st == EE_OK) {
        st = ee_storage_query(ee__engine_storage(engine), EE__EMAIL_TEMPLATES_COLL, NULL, &spec,
                              list_row, &a, &next);
        if (st == EE_ECANCELLED && a.st != EE_OK)
            st = a.st;
    }
    json_decref(q);
    return ee__json_page_out(out, st, a.data, next);
}

ee_status ee_email_template_delete(ee_engine *engine, const ee_principal *principal,
                                   const char *workflow_id)
{
    const char *what = "ee_email_template_delete";
    if (engine == NULL || !id_ok(workflow_id))
        return ee__error(EE_EINVAL, "%s: engine must not be NULL and the workflow id 24 "
                                    "lowercase hex", what);
    ee_status st = admin_only(principal, what);
    if (st != EE_OK)
        return st;
    /* one template a workflow; more (puts that raced on a storage without
     * a unique index) are deleted too */
    ee_storage_eq eq = {"workflowCatalogId", workflow_id};
    ee_storage_query_spec spec = {.version = EE_STORAGE_QUERY_VERSION, .eq = &eq, .n_eq = 1,
                                  .limit = 16};
    uint64_t found = 0;
    st = ee__storage_delete_matching(ee__engine_storage(engine), EE__EMAIL_TEMPLATES_COLL, NULL,
                                     &spec, &found, NULL);
    if (st == EE_OK && found == 0)
        st = ee__error(EE_ENOTFOUND, "%s: workflow %s has no e-mail template", what,
                       workflow_id);
    if (st == EE_OK)
        audit_template(engine, EE__AUDIT_EMAIL_TEMPLATE_DELETED, workflow_id, NULL);
    return st;
}

/* ---- rendering ------------------------------------------------------------------------ */

#define RESULTS_TEXT_MAX 16384

ee_status ee__email_render(ee_engine *engine, const ee__email_exec *x, char **subject_out,
                           char **body_out, size_t *body_len_out)
{
    *subject_out = NULL;
    *body_out = NULL;
    *body_len_out = 0;
    const char *subj_t = ee__email_default_subject, *body_t = ee__email_default_body;
    json_t *tpl = NULL;
    ee_status st = ee__email_template_find(engine, x->workflow_id, &tpl);
    if (st == EE_OK && !json_is_false(json_object_get(tpl, "isActive"))) {
        subj_t = json_string_value(json_object_get(tpl, "subjectTemplate"));
        body_t = json_string_value(json_object_get(tpl, "bodyTemplate"));
    } else if (st != EE_OK && st != EE_ENOTFOUND) {
        return st;
    }
    ee_error_clear();
    /* The data: the public record (never a secret: the pipeline drops
     * secret-looking output members before storing it), its results, the
     * workflow's name, and the results as indented JSON for a <pre>. */
    json_t *results = json_object_get(x->record, "outputData");
    char *rtext = results != NULL ? json_dumps(results, JSON_INDENT(2) | JSON_ENCODE_ANY) : NULL;
    if (rtext != NULL && strlen(rtext) > RESULTS_TEXT_MAX) {
        size_t cut = ee__utf8_cut(rtext, strlen(rtext), RESULTS_TEXT_MAX);
        memcpy(rtext + cut, "\n...", 5);
    }
    json_t *data = json_pack("{s:O, s:O, s:s, s:{s:s, s:s}, s:s?}", "execution", x->record,
                             "results", results != NULL ? results : json_null(), "workflowName",
                             x->workflow_name != NULL ? x->workflow_name : "",
                             "workflow", "id", x->workflow_id, "name",
                             x->workflow_name != NULL ? x->workflow_name : "", "resultsText",
                             rtext);
    free(rtext);
    if (data == NULL) {
        json_decref(tpl);
        return ee__error(EE_ENOMEM, "out of memory rendering an e-mail");
    }
    size_t slen = 0;
    st = ee__template_render(subj_t, strlen(subj_t), data, NULL, subject_out, &slen);
    if (st == EE_OK)
        st = ee__template_render(body_t, strlen(body_t), data, NULL, body_out, body_len_out);
    json_decref(data);
    json_decref(tpl);
    if (st == EE_OK) {
        /* A subject is one header line: a line break or NUL from the data
         * would start a header of its own. Refused, never folded; the
         * message does not quote it. */
        for (size_t i = 0; i < slen; i++)
            if ((*subject_out)[i] == '\r' || (*subject_out)[i] == '\n' ||
                (*subject_out)[i] == '\0') {
                st = ee__error(EE_EINVAL, "e-mail of execution %s: the rendered subject holds a "
                                          "line break or NUL", x->execution_id);
                break;
            }
        if (st == EE_OK && slen > 900)
            st = ee__error(EE_ETOOBIG, "e-mail of execution %s: the rendered subject exceeds "
                                       "900 bytes", x->execution_id);
        if (st == EE_OK && !ee__utf8_valid(*subject_out, slen))
            st = ee__error(EE_EINVAL, "e-mail of execution %s: the rendered subject is not "
                                      "UTF-8", x->execution_id);
    }
    if (st != EE_OK) {
        free(*subject_out);
        free(*body_out);
        *subject_out = NULL;
        *body_out = NULL;
        *body_len_out = 0;
    }
    return st;
}
