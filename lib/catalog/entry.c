/* The catalog's typed view (catalog.h): an entry built from the stored
 * record, a run's parameters, and their validation against the entry's
 * compiled inputSchema. The JSON adapters are in catalog_api.c. */
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog.h"
#include "catalog/catalog_internal.h"

struct ee__catalog_entry_private {
    json_t *rec;               /* the stored record: the entry's strings live in it */
    ee__catalog_state *state;  /* for the schema cache */
    ee__cat_schema *cached;    /* with EE__CATALOG_ENTRY_COMPILED, else NULL */
};

/* One allocation: the entry, its private part, then its arrays. */
typedef struct {
    ee__catalog_entry pub;
    ee__catalog_entry_private priv;
} entry_block;

static const char *str_or_null(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static void copy_id(char dst[25], const json_t *v)
{
    const char *s = json_string_value(v);
    if (s != NULL && ee__cat_hex_id(s))
        memcpy(dst, s, 25);
    else
        dst[0] = '\0';
}

static size_t count_strings(const json_t *arr)
{
    size_t n = 0, i;
    const json_t *v;
    json_array_foreach(arr, i, v) n += json_is_string(v);
    return n;
}

static size_t take_strings(const json_t *arr, const char **dst)
{
    size_t n = 0, i;
    const json_t *v;
    json_array_foreach(arr, i, v) {
        if (json_is_string(v))
            dst[n++] = json_string_value(v);
    }
    return n;
}

/* Build the entry over `rec` (the entry takes the reference). */
static ee_status entry_build(const char *id, int64_t revision, json_t *rec,
                             ee__catalog_entry **out)
{
    const json_t *creds = json_object_get(rec, "credentialTypes");
    const json_t *services = json_object_get(rec, "services");
    size_t nc = count_strings(creds), ns = count_strings(services);
    entry_block *b = calloc(1, sizeof *b + (nc + ns) * sizeof(const char *)
                                   + nc * sizeof(ee__cred_node));
    if (b == NULL) {
        json_decref(rec);
        return ee__error(EE_ENOMEM, "out of memory reading a catalog entry");
    }
    ee__catalog_entry *e = &b->pub;
    e->priv = &b->priv;
    b->priv.rec = rec;
    /* the arrays follow the block: pointers first (aligned), then the nodes */
    const char **ptrs = (const char **)(b + 1);
    ee__cred_node *nodes = (ee__cred_node *)(ptrs + nc + ns);
    memcpy(e->id, id, 25);
    e->revision = revision;
    e->name = str_or_null(rec, "name");
    e->description = str_or_null(rec, "description");
    e->n8n_workflow_id = str_or_null(rec, "n8nWorkflowId");
    copy_id(e->category, json_object_get(rec, "category"));
    copy_id(e->email_template_id, json_object_get(rec, "emailTemplateId"));
    e->is_active = json_is_true(json_object_get(rec, "isActive"));
    e->requires_api_key = json_is_true(json_object_get(rec, "requiresApiKey"));
    e->api_key_provider = str_or_null(rec, "apiKeyProvider");
    e->estimated_cost_nano = json_integer_value(json_object_get(rec, "estimatedCost"));
    const json_t *t = json_object_get(rec, "trigger");
    e->trigger.runnable = json_is_true(json_object_get(t, "runnable"));
    e->trigger.reason = str_or_null(t, "reason");
    e->trigger.method = str_or_null(t, "method");
    e->trigger.path = str_or_null(t, "path");
    e->trigger.node = str_or_null(t, "node");
    e->trigger.response_mode = str_or_null(t, "responseMode");
    e->trigger.webhook_id = str_or_null(t, "webhookId");
    e->n_credential_types = take_strings(creds, ptrs);
    e->credential_types = ptrs;
    e->n_services = take_strings(services, ptrs + nc);
    e->services = ptrs + nc;
    for (size_t i = 0; i < nc; i++)
        nodes[i] = (ee__cred_node){ptrs[i], ptrs[i], &ptrs[i], 1};
    e->n_requirements = nc;
    e->requirements = nodes;
    e->has_input_schema = json_is_string(json_object_get(rec, "inputSchema"));
    *out = e;
    return EE_OK;
}

ee_status ee__catalog_entry_get(ee_engine *engine, const ee_principal *principal,
                                const char *id, unsigned flags, ee__catalog_entry **out)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee__catalog_entry_get: out is NULL");
    *out = NULL;
    if (engine == NULL || id == NULL)
        return ee__error(EE_EINVAL, "ee__catalog_entry_get: NULL argument");
    if (!ee__cat_hex_id(id)) {
        char q[64];
        ee__quote_for_message(id, q, sizeof q);
        return ee__error(EE_EINVAL, "catalog entry: \"%s\" is not an id (24 lowercase hex "
                                    "characters)", q);
    }
    if ((flags & ~(EE__CATALOG_ENTRY_INACTIVE | EE__CATALOG_ENTRY_COMPILED)) != 0)
        return ee__error(EE_EINVAL, "ee__catalog_entry_get: unknown flags 0x%x", flags);
    ee__catalog_state *state = ee__catalog_state_of(engine);
    if (state == NULL)
        return EE_ESTATE;
    json_t *rec = NULL;
    int64_t rev = 0;
    uint8_t *data = NULL;
    size_t len = 0;
    /* the stored revision, read at every call (a write in any process
     * changes it); decoded once per revision */
    ee_status st = ee_storage_get(ee__engine_storage(engine), EE__CAT_COLL, NULL, id, &data, &len,
                                  &rev);
    if (st == EE_ENOTFOUND)
        return ee__error(EE_ENOTFOUND, "no catalog entry with id %s", id);
    if (st == EE_OK)
        st = ee__cat_record_at(state, id, rev, data, len, &rec);
    ee_free(data);
    if (st != EE_OK)
        return st;
    bool allowed = true;
    if (!(flags & EE__CATALOG_ENTRY_INACTIVE) && !json_is_true(json_object_get(rec, "isActive")))
        allowed = false;
    else if ((st = ee__cat_access_check(engine, rec, principal, NULL, &allowed)) != EE_OK) {
        json_decref(rec);
        return st;
    }
    if (!allowed) {
        /* an entry the principal may not run answers as one that does not
         * exist: the same status and message, nothing about who may */
        json_decref(rec);
        return ee__error(EE_ENOTFOUND, "no active catalog entry with id %s", id);
    }
    ee__catalog_entry *e = NULL;
    if ((st = entry_build(id, rev, rec, &e)) != EE_OK)
        return st;
    e->priv->state = state;
    if (flags & EE__CATALOG_ENTRY_COMPILED) {
        st = ee__catalog_schema_get(state, id, rev, str_or_null(e->priv->rec, "inputSchema"),
                                    &e->priv->cached);
        if (st != EE_OK) {
            ee__catalog_entry_free(e);
            return st;
        }
        e->input_schema = e->priv->cached->schema;
    }
    *out = e;
    return EE_OK;
}

void ee__catalog_entry_free(ee__catalog_entry *entry)
{
    if (entry == NULL)
        return;
    if (entry->priv->cached != NULL)
        ee__catalog_schema_release(entry->priv->state, entry->priv->cached);
    json_decref(entry->priv->rec);
    free((entry_block *)entry);
}

const json_t *ee__cat_entry_record(const ee__catalog_entry *entry)
{
    return entry->priv->rec;
}

/* ---- parameters ------------------------------------------------------------------- */

struct ee__catalog_params {
    json_t *doc;
    ee__schema_bigs *bigs; /* numbers jansson cannot hold, or NULL */
};

ee_status ee__catalog_params_parse(const char *text, ee__catalog_params **out)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee__catalog_params_parse: out is NULL");
    *out = NULL;
    json_t *doc = NULL;
    ee__schema_bigs *bigs = NULL;
    /* Numbers jansson cannot hold (beyond int64 or a double) are kept
     * exactly beside the document: validated exactly, given back as written. */
    ee_status st = ee__schema_parse_text(text, EE_CATALOG_PARAMETERS_MAX, EE_CATALOG_DEPTH_MAX,
                                         "parameters", &doc, &bigs);
    if (st == EE_OK && !json_is_object(doc))
        st = ee__error(EE_EINVAL, "parameters must be a JSON object");
    ee__catalog_params *p = NULL;
    if (st == EE_OK && (p = malloc(sizeof *p)) == NULL)
        st = ee__error(EE_ENOMEM, "out of memory reading parameters");
    if (st != EE_OK) {
        json_decref(doc);
        ee__schema_bigs_free(bigs);
        return st;
    }
    p->doc = doc;
    p->bigs = bigs;
    *out = p;
    return EE_OK;
}

ee_status ee__catalog_params_text(const ee__catalog_params *params, char **out)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee__catalog_params_text: out is NULL");
    *out = NULL;
    if (params == NULL)
        return ee__error(EE_EINVAL, "ee__catalog_params_text: params is NULL");
    return ee__schema_bigs_dump(params->doc, params->bigs, out);
}

void ee__catalog_params_free(ee__catalog_params *params)
{
    if (params == NULL)
        return;
    json_decref(params->doc);
    ee__schema_bigs_free(params->bigs);
    free(params);
}

/* ---- validation ------------------------------------------------------------------- */

struct ee__catalog_violations_private {
    json_t *report; /* the items' strings live in it */
};

typedef struct {
    ee__catalog_violations pub;
    ee__catalog_violations_private priv;
} violations_block;

static ee_status violations_of(json_t *report, ee__catalog_violations **out)
{
    const json_t *errors = json_object_get(report, "errors");
    size_t n = json_array_size(errors);
    violations_block *b = calloc(1, sizeof *b + n * sizeof(ee__catalog_violation));
    if (b == NULL) {
        json_decref(report);
        return ee__error(EE_ENOMEM, "out of memory listing violations");
    }
    ee__catalog_violation *items = (ee__catalog_violation *)(b + 1);
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(errors, i);
        items[i] = (ee__catalog_violation){
            str_or_null(e, "instancePath"), str_or_null(e, "schemaPath"),
            str_or_null(e, "keyword"), str_or_null(e, "message")};
    }
    b->priv.report = report;
    b->pub.n = n;
    b->pub.items = items;
    b->pub.truncated = json_is_true(json_object_get(report, "truncated"));
    b->pub.priv = &b->priv;
    *out = &b->pub;
    return EE_OK;
}

ee_status ee__catalog_entry_validate(ee_engine *engine, const ee__catalog_entry *entry,
                                     ee__catalog_params *params,
                                     ee__catalog_violations **violations_out)
{
    if (violations_out != NULL)
        *violations_out = NULL;
    if (engine == NULL || entry == NULL || params == NULL)
        return ee__error(EE_EINVAL, "ee__catalog_entry_validate: NULL argument");
    ee__catalog_state *state = ee__catalog_state_of(engine);
    if (state == NULL)
        return EE_ESTATE;
    ee__cat_schema *cached = entry->priv->cached;
    ee_status st = EE_OK;
    if (cached == NULL)
        st = ee__catalog_schema_get(state, entry->id, entry->revision,
                                    str_or_null(entry->priv->rec, "inputSchema"), &cached);
    json_t *report = NULL;
    if (st == EE_OK && cached->schema != NULL) {
        st = ee__schema_apply_defaults(cached->schema, params->doc);
        if (st == EE_OK)
            st = ee__schema_validate_bigs(cached->schema, params->doc, params->bigs,
                                          violations_out ? &report : NULL);
    }
    if (cached != entry->priv->cached)
        ee__catalog_schema_release(state, cached);
    if (st == EE_EVALIDATION && report != NULL) {
        /* the thread's error detail (the report) stays as the validator set it */
        ee_status vst = violations_of(report, violations_out);
        return vst == EE_OK ? st : vst;
    }
    json_decref(report);
    return st;
}

void ee__catalog_violations_free(ee__catalog_violations *violations)
{
    if (violations == NULL)
        return;
    json_decref(violations->priv->report);
    free((violations_block *)violations);
}
