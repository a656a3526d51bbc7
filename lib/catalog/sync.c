/*
 * Sync of the catalog from n8n.
 *
 * Ownership rule (docs/catalog.md "Sync and the admin"):
 *   - sync owns trigger, credentialTypes, services and the "n8n" block:
 *     always rewritten from n8n;
 *   - shared fields (name, description, category, tags, isActive,
 *     requiresApiKey, apiKeyProvider) take n8n's value unless an admin
 *     edited them (adminEdited); an edited field keeps the admin's value
 *     until n8n's own value for it changes (compared with the value the
 *     previous sync derived, kept in n8n.source), which then wins;
 *   - the admin owns inputSchema, outputSchema, estimatedCost and
 *     emailTemplateId: sync never writes them.
 * A workflow whose derived content (hash of the source values, trigger,
 * credentials, n8n's active flag and versionId) did not change is left
 * untouched and counted as unchanged.
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog_internal.h"
#include "catalog/sync.h"
#include "core/data.h"

#define MAX_DERIVED 100 /* credential types, services, node types kept per entry */
#define CRED_MAX 128

/* ---- deriving an entry from a workflow ----------------------------------------------- */

static bool add_unique(json_t *set, const char *s)
{
    if (s == NULL || s[0] == '\0' || strlen(s) > CRED_MAX || json_array_size(set) >= MAX_DERIVED)
        return true;
    size_t i;
    json_t *v;
    json_array_foreach(set, i, v) {
        if (strcmp(json_string_value(v), s) == 0)
            return true;
    }
    return json_array_append_new(set, json_string(s)) == 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(json_string_value(*(json_t *const *)a), json_string_value(*(json_t *const *)b));
}

static json_t *sorted(json_t *set)
{
    size_t n = json_array_size(set);
    json_t *items[MAX_DERIVED];
    for (size_t i = 0; i < n; i++)
        items[i] = json_array_get(set, i);
    qsort(items, n, sizeof items[0], cmp_str);
    json_t *out = json_array();
    for (size_t i = 0; out && i < n; i++)
        json_array_append(out, items[i]);
    json_decref(set);
    return out;
}

/* A copy of n8n text cut to `max` bytes, control characters (C0 but
 * newlines and tabs where `multiline`, DEL, C1) made spaces. */
static json_t *clean_text(const char *s, size_t max, bool multiline)
{
    char *copy = strdup(s ? s : "");
    if (copy == NULL)
        return NULL;
    ee__utf8_sanitize(copy);
    ee__cat_utf8_cut(copy, max);
    unsigned char *w = (unsigned char *)copy;
    for (const unsigned char *p = w; *p; p++) {
        size_t ctl = ee__text_control_at(p);
        if (ctl == 1 && multiline && (*p == '\n' || *p == '\t'))
            ctl = 0;
        *w++ = ctl == 0 ? *p : ' ';
        p += ctl == 2; /* C1: two bytes, one space */
    }
    *w = '\0';
    json_t *v = json_string(copy);
    free(copy);
    return v;
}

/* The credentials module's one node-type mapping, so the catalog and
 * routing never disagree about what a node needs. */
static const ee__integration *service_of_node(const ee__integrations *integ, const char *type)
{
    const ee__integration *svc = NULL;
    ee__integrations_map_node(integ, type, &svc);
    return svc;
}

typedef struct {
    json_t *creds, *services, *types, *icats;
    bool llm;
} node_facts;

static bool note_service(node_facts *f, const ee__integration *svc)
{
    if (svc == NULL)
        return true;
    f->llm = f->llm || svc->is_llm;
    return add_unique(f->services, svc->service) && add_unique(f->icats, svc->category);
}

static bool scan_nodes(const json_t *nodes, const ee__integrations *integ, node_facts *f)
{
    size_t i;
    const json_t *node;
    json_array_foreach(nodes, i, node) {
        if (json_is_true(json_object_get(node, "disabled")))
            continue; /* a disabled node never runs: it needs nothing */
        const char *type = json_string_value(json_object_get(node, "type"));
        if (!add_unique(f->types, type))
            return false;
        const ee__integration *by_type = service_of_node(integ, type);
        const json_t *creds = json_object_get(node, "credentials");
        if (json_is_object(creds) && json_object_size(creds) > 0) {
            const char *k;
            const json_t *v;
            json_object_foreach((json_t *)creds, k, v) {
                (void)v;
                const ee__integration *svc =
                    integ ? ee__integrations_by_credential(integ, k) : NULL;
                if (!add_unique(f->creds, k) || !note_service(f, svc ? svc : by_type))
                    return false;
            }
        } else if (by_type != NULL) {
            /* a known service's node without configured credentials still needs one */
            const char *first = json_string_value(json_array_get(by_type->credentials, 0));
            if (!add_unique(f->creds, first) || !note_service(f, by_type))
                return false;
        }
    }
    return true;
}

static json_t *clean_tags(const json_t *tags)
{
    json_t *out = json_array();
    size_t i;
    const json_t *t;
    json_array_foreach(tags, i, t) {
        if (out == NULL || json_array_size(out) >= EE_CATALOG_TAGS_MAX)
            break;
        json_t *c = clean_text(json_string_value(t), EE_CATALOG_TAG_MAX, false);
        if (c == NULL || json_string_length(c) == 0) {
            json_decref(c);
            continue;
        }
        bool dup = false;
        size_t k;
        json_t *seen;
        json_array_foreach(out, k, seen) dup = dup || json_equal(seen, c);
        if (dup)
            json_decref(c);
        else
            json_array_append_new(out, c);
    }
    return out;
}

/* The trigger as the catalog keeps it: a structurally runnable workflow
 * that is not active in n8n has no production webhook registered. */
static json_t *effective_trigger(const json_t *trigger, bool active)
{
    if (!json_is_object(trigger))
        return json_pack("{s:b, s:s}", "runnable", 0, "reason", "n8n gave no trigger");
    json_t *t = json_deep_copy(trigger);
    if (t != NULL && json_is_true(json_object_get(t, "runnable")) && !active) {
        json_object_set_new(t, "runnable", json_false());
        json_object_set_new(t, "reason", json_string("the workflow is not active in n8n: its "
                                                     "production webhook is not registered"));
    }
    return t;
}

ee_status ee__catalog_derive(const json_t *wf, const ee__integrations *integ,
                             const ee__cat_rules *rules, json_t **out)
{
    *out = NULL;
    node_facts f = {json_array(), json_array(), json_array(), json_array(), false};
    bool ok = f.creds && f.services && f.types && f.icats
           && scan_nodes(json_object_get(wf, "nodes"), integ, &f);
    f.creds = sorted(f.creds);
    f.services = sorted(f.services);
    bool active = json_is_true(json_object_get(wf, "active"));
    bool archived = json_is_true(json_object_get(wf, "isArchived"));
    json_t *name = clean_text(json_string_value(json_object_get(wf, "name")),
                              EE_CATALOG_NAME_MAX, false);
    if (name != NULL && json_string_length(name) == 0) {
        json_decref(name);
        name = json_string("(unnamed n8n workflow)");
    }
    json_t *desc = clean_text(json_string_value(json_object_get(wf, "description")),
                              EE_CATALOG_DESCRIPTION_MAX, true);
    json_t *tags = clean_tags(json_object_get(wf, "tags"));
    json_t *trigger = effective_trigger(json_object_get(wf, "trigger"), active);
    const char *cat = NULL;
    if (ok && name && tags && rules)
        cat = ee__cat_rules_match(rules, json_string_value(name), tags, f.types, f.icats);
    bool runnable = json_is_true(json_object_get(trigger, "runnable"));
    json_t *src = json_pack("{s:o?, s:o?, s:o?, s:s?, s:b, s:b, s:s}", "name", name,
                            "description", desc, "tags", tags, "categoryName", cat, "isActive",
                            runnable && active && !archived, "requiresApiKey", f.llm,
                            "apiKeyProvider", f.llm ? "openrouter" : "platform");
    json_t *d = NULL;
    if (ok && src && name && desc && tags && trigger && f.creds && f.services)
        d = json_pack("{s:o, s:o, s:o, s:O, s:o, s:b, s:b, s:O?, s:O?}", "source", src,
                      "credentialTypes", f.creds, "services", f.services, "nodeTypes", f.types,
                      "trigger", trigger, "active", active, "archived", archived, "versionId",
                      json_object_get(wf, "versionId"), "updatedAt",
                      json_object_get(wf, "updatedAt"));
    else {
        json_decref(src);
        json_decref(f.creds);
        json_decref(f.services);
        json_decref(trigger);
    }
    json_decref(f.types);
    json_decref(f.icats);
    if (d == NULL)
        return ee__error(EE_ENOMEM, "out of memory deriving a catalog entry");
    *out = d;
    return EE_OK;
}

/* ---- the sync -------------------------------------------------------------------------- */

typedef struct {
    ee_engine *engine;
    ee_n8n *client;
    ee__cat_rules *rules;
    ee__integrations *integ;
    json_t *cat_ids;  /* category name -> id */
    json_t *existing; /* n8nWorkflowId -> {"id", "revision", "rec"} */
    json_t *seen;     /* n8nWorkflowId -> true */
    json_t *added, *updated, *deactivated, *not_runnable, *errors, *cats_created;
    size_t unchanged;
    int64_t now;
} sync_ctx;

static ee_status oom(void)
{
    return ee__error(EE_ENOMEM, "out of memory during catalog sync");
}

/* categories.json and integrations.json, read at every sync so an
 * administrator's edit applies to the next one (core/data.h says where
 * they come from). */
/* A data file's parse error, with the file named in front. */
static ee_status named(const char *file, ee_status st)
{
    if (st == EE_OK || st == EE_ENOMEM)
        return st;
    char msg[EE__ERROR_MSG_MAX];
    snprintf(msg, sizeof msg, "%s", ee_error_last_message());
    return ee__error(st, "%s: %s", file, msg);
}

static ee_status load_data(sync_ctx *c)
{
    const ee_config *cfg = ee__engine_config(c->engine);
    char *text = NULL;
    size_t len = 0;
    ee_status st = ee__data_read(cfg, "categories.json", &text, &len, NULL);
    if (st == EE_OK)
        st = named("categories.json", ee__cat_rules_parse(text, len, &c->rules));
    free(text);
    text = NULL;
    if (st == EE_OK)
        st = ee__data_read(cfg, "integrations.json", &text, &len, NULL);
    if (st == EE_OK)
        st = named("integrations.json", ee__integrations_parse(&c->integ, text, len));
    free(text);
    return st;
}

/* Map category names to ids, creating the declared categories missing. */
static ee_status ensure_categories(sync_ctx *c)
{
    json_t *all = NULL;
    ee_status st = ee__cat_categories_all(c->engine, true, &all);
    size_t i;
    json_t *cat;
    json_array_foreach(all, i, cat) {
        if (json_object_set(c->cat_ids, json_string_value(json_object_get(cat, "name")),
                            json_object_get(cat, "id"))
            != 0)
            st = oom();
    }
    json_decref(all);
    const json_t *declared = ee__cat_rules_categories(c->rules);
    json_array_foreach(declared, i, cat) {
        const char *name = json_string_value(json_object_get(cat, "name"));
        if (st != EE_OK || json_object_get(c->cat_ids, name) != NULL)
            continue;
        json_t *rec = json_deep_copy(cat);
        char id[25];
        st = rec ? ee__cat_category_insert(c->engine, rec, id) : oom();
        json_decref(rec);
        if (st == EE_EEXISTS) {
            /* created by another process meanwhile: take its id */
            json_decref(c->cat_ids);
            c->cat_ids = json_object();
            return c->cat_ids ? ensure_categories(c) : oom();
        }
        if (st == EE_OK && (json_object_set_new(c->cat_ids, name, json_string(id)) != 0
                            || json_array_append_new(c->cats_created, json_string(name)) != 0))
            st = oom();
    }
    return st;
}

static ee_status remember(const char *id, int64_t revision, json_t *rec, void *payload)
{
    sync_ctx *c = payload;
    const char *n8n_id = json_string_value(json_object_get(rec, "n8nWorkflowId"));
    if (n8n_id == NULL)
        return EE_OK;
    json_t *e = json_pack("{s:s, s:I, s:O}", "id", id, "revision", (json_int_t)revision, "rec",
                          rec);
    if (e == NULL || json_object_set_new(c->existing, n8n_id, e) != 0)
        return oom();
    return EE_OK;
}

static ee_status hash_of(const json_t *d, char out[65])
{
    json_t *h = json_pack("{s:O, s:O, s:O, s:O, s:O, s:O, s:O?}", "source",
                          json_object_get(d, "source"), "trigger", json_object_get(d, "trigger"),
                          "credentialTypes", json_object_get(d, "credentialTypes"), "services",
                          json_object_get(d, "services"), "active", json_object_get(d, "active"),
                          "archived", json_object_get(d, "archived"), "versionId",
                          json_object_get(d, "versionId"));
    char *text = h ? json_dumps(h, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(h);
    if (text == NULL)
        return oom();
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    int ok = EVP_Digest(text, strlen(text), md, &n, EVP_sha256(), NULL);
    free(text);
    if (!ok)
        return ee__error(EE_ENOMEM, "cannot hash a workflow (OpenSSL)");
    for (unsigned int i = 0; i < n && i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    return EE_OK;
}

/* The source values as stored fields (categoryName -> category id). */
static json_t *source_fields(sync_ctx *c, const json_t *d)
{
    json_t *src = json_deep_copy(json_object_get(d, "source"));
    if (src == NULL)
        return NULL;
    const char *cat = json_string_value(json_object_get(src, "categoryName"));
    json_t *id = cat ? json_object_get(c->cat_ids, cat) : NULL;
    json_object_del(src, "categoryName");
    if (json_object_set_new(src, "category", id ? json_incref(id) : json_null()) != 0) {
        json_decref(src);
        return NULL;
    }
    return src;
}

static json_t *n8n_block(const json_t *d, const json_t *src, const char *hash, int64_t now)
{
    return json_pack("{s:O, s:O, s:O?, s:O?, s:s, s:I, s:b, s:O}", "active",
                     json_object_get(d, "active"), "archived", json_object_get(d, "archived"),
                     "versionId", json_object_get(d, "versionId"), "updatedAt",
                     json_object_get(d, "updatedAt"), "hash", hash, "syncedAt", (json_int_t)now,
                     "missing", 0, "source", src);
}

static json_t *brief(const char *id, const json_t *rec)
{
    return json_pack("{s:s, s:O, s:O}", "id", id, "n8nWorkflowId",
                     json_object_get(rec, "n8nWorkflowId"), "name", json_object_get(rec, "name"));
}

static ee_status note_runnable(sync_ctx *c, const char *id, const json_t *rec)
{
    const json_t *t = json_object_get(rec, "trigger");
    if (json_is_true(json_object_get(t, "runnable")))
        return EE_OK;
    json_t *b = brief(id, rec);
    if (b == NULL || json_object_set(b, "reason", json_object_get(t, "reason")) != 0
        || json_array_append_new(c->not_runnable, b) != 0)
        return oom();
    return EE_OK;
}

static ee_status insert_new(sync_ctx *c, const char *n8n_id, const json_t *d, const char *hash)
{
    json_t *src = source_fields(c, d);
    json_t *rec = src ? json_pack(
        "{s:s, s:O, s:O, s:O, s:O, s:n, s:n, s:O, s:O, s:I, s:O, s:n, s:O, s:O, s:O, s:[], s:o, "
        "s:I, s:I}",
        "n8nWorkflowId", n8n_id, "name", json_object_get(src, "name"), "description",
        json_object_get(src, "description"), "category", json_object_get(src, "category"), "tags",
        json_object_get(src, "tags"), "inputSchema", "outputSchema", "isActive",
        json_object_get(src, "isActive"), "requiresApiKey",
        json_object_get(src, "requiresApiKey"), "estimatedCost", (json_int_t)0, "apiKeyProvider",
        json_object_get(src, "apiKeyProvider"), "emailTemplateId", "credentialTypes",
        json_object_get(d, "credentialTypes"), "services", json_object_get(d, "services"),
        "trigger", json_object_get(d, "trigger"), "adminEdited", "n8n",
        n8n_block(d, src, hash, c->now), "createdAt", (json_int_t)c->now, "updatedAt",
        (json_int_t)c->now) : NULL;
    json_decref(src);
    if (rec == NULL)
        return oom();
    char id[25];
    ee_status st = ee__cat_insert(c->engine, EE__CAT_COLL, rec, id);
    if (st == EE_OK) {
        json_t *b = brief(id, rec);
        if (b == NULL || json_array_append_new(c->added, b) != 0)
            st = oom();
    }
    if (st == EE_OK)
        st = note_runnable(c, id, rec);
    json_decref(rec);
    return st;
}

static void drop_from(json_t *arr, const char *s)
{
    for (size_t i = json_array_size(arr); i-- > 0;)
        if (strcmp(json_string_value(json_array_get(arr, i)), s) == 0)
            json_array_remove(arr, i);
}

/* Apply the ownership rule to `rec`; `fields` collects what changed. */
static ee_status merge(json_t *rec, const json_t *d, json_t *src, const char *hash, int64_t now,
                       json_t *fields)
{
    const json_t *old_n8n = json_object_get(rec, "n8n");
    const json_t *old_src = json_object_get(old_n8n, "source");
    json_t *edited = json_object_get(rec, "adminEdited");
    if (!json_is_array(edited)) {
        edited = json_array();
        if (edited == NULL || json_object_set_new(rec, "adminEdited", edited) != 0)
            return oom();
    }
    bool was_missing = json_is_true(json_object_get(old_n8n, "missing"));
    for (size_t i = 0; i < ee__cat_n_shared_fields; i++) {
        const char *f = ee__cat_shared_fields[i];
        json_t *nv = json_object_get(src, f);
        const json_t *ov = json_object_get(old_src, f);
        bool take;
        if (ee__cat_listed(edited, f)) {
            /* the admin's value stands until n8n's own value changes (or a
             * workflow that had vanished comes back: isActive follows n8n) */
            take = (ov != NULL && !json_equal(ov, nv))
                || (was_missing && strcmp(f, "isActive") == 0);
            if (take)
                drop_from(edited, f);
        } else {
            take = true;
        }
        if (take && !json_equal(json_object_get(rec, f), nv)) {
            if (json_object_set(rec, f, nv) != 0 || json_array_append_new(fields, json_string(f)))
                return oom();
        }
    }
    static const char *const owned[] = {"credentialTypes", "services", "trigger"};
    for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++) {
        json_t *nv = json_object_get(d, owned[i]);
        if (!json_equal(json_object_get(rec, owned[i]), nv)
            && (json_object_set(rec, owned[i], nv) != 0
                || json_array_append_new(fields, json_string(owned[i])) != 0))
            return oom();
    }
    if (json_array_size(fields) == 0 && json_array_append_new(fields, json_string("n8n")) != 0)
        return oom();
    json_t *blk = n8n_block(d, src, hash, now);
    if (blk == NULL || json_object_set_new(rec, "n8n", blk) != 0)
        return oom();
    return json_object_set_new(rec, "updatedAt", json_integer(now)) == 0 ? EE_OK : oom();
}

typedef struct sync_update {
    sync_ctx *c;
    const json_t *d;
    const char *hash;
    bool unchanged;
    json_t *fields; /* the fields the last attempt changed */
} sync_update;

static ee_status update_mutate(json_t *rec, void *payload)
{
    sync_update *u = payload;
    const json_t *n8n = json_object_get(rec, "n8n");
    const char *old_hash = json_string_value(json_object_get(n8n, "hash"));
    u->unchanged = old_hash != NULL && strcmp(old_hash, u->hash) == 0
                && !json_is_true(json_object_get(n8n, "missing"));
    if (u->unchanged)
        return EE__RECORD_KEEP;
    json_decref(u->fields);
    u->fields = json_array();
    json_t *src = source_fields(u->c, u->d);
    ee_status st = src && u->fields ? merge(rec, u->d, src, u->hash, u->c->now, u->fields)
                                    : oom();
    json_decref(src);
    return st;
}

static ee_status update_existing(sync_ctx *c, json_t *entry, const json_t *d, const char *hash)
{
    const char *id = json_string_value(json_object_get(entry, "id"));
    /* the record read by the scan first; an admin writing meanwhile makes
     * the record layer merge into the fresh record */
    sync_update u = {c, d, hash, false, NULL};
    json_t *rec = NULL;
    ee_status st = ee__cat_update(c->engine, EE__CAT_COLL, id, 0, entry, update_mutate, &u, &rec,
                                  NULL);
    if (st == EE_OK && u.unchanged) {
        c->unchanged++;
        st = note_runnable(c, id, rec);
    } else if (st == EE_OK) {
        json_t *b = brief(id, rec);
        if (b == NULL || json_object_set(b, "fields", u.fields) != 0
            || json_array_append_new(c->updated, b) != 0)
            st = oom();
        if (st == EE_OK)
            st = note_runnable(c, id, rec);
    }
    json_decref(u.fields);
    json_decref(rec);
    return st;
}

static ee_status note_error(sync_ctx *c, const char *n8n_id, ee_status status)
{
    json_t *e = json_pack("{s:s, s:s, s:s}", "n8nWorkflowId", n8n_id, "status",
                          ee_status_name(status), "message", ee_error_last_message());
    if (e == NULL || json_array_append_new(c->errors, e) != 0)
        return oom();
    return EE_OK;
}

/* Read one workflow with its nodes and upsert its entry. Failures that
 * concern this workflow only are recorded, not returned. */
static ee_status sync_one(sync_ctx *c, const char *n8n_id)
{
    char *text = NULL;
    ee_status st = ee_n8n_get_workflow(c->client, n8n_id, &text);
    json_t *wf = NULL, *d = NULL;
    if (st == EE_OK && (wf = json_loads(text, 0, NULL)) == NULL)
        st = ee__error(EE_EPARSE, "the n8n client's workflow document is not JSON");
    ee_free(text);
    if (st == EE_ENOMEM) {
        json_decref(wf);
        return st;
    }
    if (st == EE_OK)
        st = ee__catalog_derive(wf, c->integ, c->rules, &d);
    json_decref(wf);
    char hash[65] = "";
    if (st == EE_OK)
        st = hash_of(d, hash);
    if (st == EE_OK) {
        json_t *entry = json_object_get(c->existing, n8n_id);
        st = entry ? update_existing(c, entry, d, hash) : insert_new(c, n8n_id, d, hash);
    }
    json_decref(d);
    if (st == EE_OK || st == EE_ENOMEM)
        return st;
    return note_error(c, n8n_id, st);
}

typedef struct sync_deactivate {
    sync_ctx *c;
    bool written;
} sync_deactivate;

static ee_status deactivate_mutate(json_t *rec, void *payload)
{
    sync_deactivate *x = payload;
    sync_ctx *c = x->c;
    json_t *n8n = json_object_get(rec, "n8n");
    if (json_is_true(json_object_get(n8n, "missing")))
        return EE__RECORD_KEEP; /* deactivated by an earlier sync */
    if (!json_is_object(n8n)) {
        n8n = json_object();
        if (n8n == NULL || json_object_set_new(rec, "n8n", n8n) != 0)
            return oom();
    }
    json_t *src = json_object_get(n8n, "source");
    drop_from(json_object_get(rec, "adminEdited"), "isActive");
    if (json_object_set_new(n8n, "missing", json_true()) != 0
        || json_object_set_new(n8n, "syncedAt", json_integer(c->now)) != 0
        || json_object_set_new(rec, "isActive", json_false()) != 0
        || (json_is_object(src) && json_object_set_new(src, "isActive", json_false()) != 0)
        || json_object_set_new(rec, "trigger",
                               json_pack("{s:b, s:s}", "runnable", 0, "reason",
                                         "the workflow no longer exists in n8n"))
               != 0
        || json_object_set_new(rec, "updatedAt", json_integer(c->now)) != 0)
        return oom();
    x->written = true;
    return EE_OK;
}

static ee_status deactivate(sync_ctx *c, const char *id, json_t *entry)
{
    sync_deactivate x = {c, false};
    json_t *rec = NULL;
    ee_status st = ee__cat_update(c->engine, EE__CAT_COLL, id, 0, entry, deactivate_mutate, &x,
                                  &rec, NULL);
    if (st == EE_OK && x.written) {
        json_t *b = brief(id, rec);
        if (b == NULL || json_array_append_new(c->deactivated, b) != 0)
            st = oom();
    }
    json_decref(rec);
    return st;
}

static ee_status run(sync_ctx *c)
{
    ee_status st = load_data(c);
    if (st == EE_OK)
        st = ensure_categories(c);
    char *text = NULL;
    json_t *list = NULL;
    if (st == EE_OK && (st = ee_n8n_list_workflows(c->client, NULL, &text)) == EE_OK
        && (list = json_loads(text, 0, NULL)) == NULL)
        st = ee__error(EE_EPARSE, "the n8n client's listing is not JSON");
    ee_free(text);
    if (st == EE_OK)
        st = ee__cat_scan(c->engine, EE__CAT_COLL, remember, c);
    size_t i;
    json_t *wf;
    json_array_foreach(json_object_get(list, "data"), i, wf) {
        const char *n8n_id = json_string_value(json_object_get(wf, "id"));
        if (st != EE_OK)
            break;
        if (n8n_id == NULL || json_is_true(json_object_get(wf, "isArchived")))
            continue; /* archived: treated as gone */
        if (json_object_set_new(c->seen, n8n_id, json_true()) != 0)
            st = oom();
        else if (strlen(n8n_id) > EE_CATALOG_N8N_ID_MAX)
            st = note_error(c, n8n_id, ee__error(EE_ETOOBIG, "n8n workflow id longer than %d "
                                                             "bytes", EE_CATALOG_N8N_ID_MAX));
        /* ee_catalog_create()'s rule for an admin's n8nWorkflowId: an id
         * n8n sends is stored as the entry's key the same way */
        else if (!ee__text_token_ok(n8n_id, strlen(n8n_id)))
            st = note_error(c, n8n_id, ee__error(EE_EPARSE, "n8n workflow id is not printable "
                                                            "ASCII without spaces"));
        else
            st = sync_one(c, n8n_id);
    }
    json_decref(list);
    const char *n8n_id;
    json_t *entry;
    json_object_foreach(c->existing, n8n_id, entry) {
        if (st != EE_OK)
            break;
        if (json_object_get(c->seen, n8n_id) == NULL)
            st = deactivate(c, json_string_value(json_object_get(entry, "id")), entry);
    }
    return st;
}

/* ee_catalog_sync() with the engine's client. */
static ee_status sync_with(ee_engine *engine, ee_n8n *client, char **out)
{
    ee__catalog_state *state = ee__catalog_state_of(engine);
    if (state == NULL)
        return ee__error_out(out, EE_ESTATE);
    sync_ctx c = {0};
    c.engine = engine;
    c.client = client;
    c.now = ee_engine_now_ms(engine);
    c.cat_ids = json_object();
    c.existing = json_object();
    c.seen = json_object();
    c.added = json_array();
    c.updated = json_array();
    c.deactivated = json_array();
    c.not_runnable = json_array();
    c.errors = json_array();
    c.cats_created = json_array();
    ee_status st = c.cat_ids && c.existing && c.seen && c.added && c.updated && c.deactivated
                        && c.not_runnable && c.errors && c.cats_created
                    ? EE_OK
                    : oom();
    pthread_mutex_lock(&state->sync_lock);
    if (st == EE_OK)
        st = run(&c);
    bool changed = json_array_size(c.added) + json_array_size(c.updated)
                       + json_array_size(c.deactivated)
                   > 0;
    if (changed || json_array_size(c.cats_created) > 0)
        ee__catalog_invalidate(state);
    pthread_mutex_unlock(&state->sync_lock);
    if (st == EE_OK)
        ee__log(ee__engine_logger(engine), EE_LOG_INFO, "catalog",
                "sync: %zu added, %zu updated, %zu deactivated, %zu unchanged, %zu errors",
                json_array_size(c.added), json_array_size(c.updated),
                json_array_size(c.deactivated), c.unchanged, json_array_size(c.errors));
    json_t *counts = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "added",
                               (json_int_t)json_array_size(c.added), "updated",
                               (json_int_t)json_array_size(c.updated), "deactivated",
                               (json_int_t)json_array_size(c.deactivated), "unchanged",
                               (json_int_t)c.unchanged, "errors",
                               (json_int_t)json_array_size(c.errors), "categoriesCreated",
                               (json_int_t)json_array_size(c.cats_created));
    ee__audit_append(engine, &(ee__audit_entry){.action = EE__AUDIT_CATALOG_SYNCED,
                                                .workspace = EE__AUDIT_PLATFORM,
                                                .actor = EE__AUDIT_ACTOR_SYSTEM,
                                                .target_id = "catalog",
                                                .outcome = st == EE_OK ? EE__AUDIT_OK
                                                                       : EE__AUDIT_FAILED,
                                                .status = st,
                                                .detail = counts});
    json_decref(counts);
    json_t *report = NULL;
    if (st == EE_OK)
        report = json_pack("{s:O, s:O, s:O, s:O, s:I, s:O, s:O, s:b}", "added", c.added,
                           "updated", c.updated, "deactivated", c.deactivated, "notRunnable",
                           c.not_runnable, "unchanged", (json_int_t)c.unchanged, "errors",
                           c.errors, "categoriesCreated", c.cats_created, "changed", changed);
    ee__cat_rules_free(c.rules);
    ee__integrations_free(c.integ);
    json_decref(c.cat_ids);
    json_decref(c.existing);
    json_decref(c.seen);
    json_decref(c.added);
    json_decref(c.updated);
    json_decref(c.deactivated);
    json_decref(c.not_runnable);
    json_decref(c.errors);
    json_decref(c.cats_created);
    if (st != EE_OK)
        return ee__error_out(out, st);
    return ee__json_out(out, report);
}

ee_status ee_catalog_sync(ee_engine *engine, char **out_report)
{
    if (out_report == NULL)
        return ee__error(EE_EINVAL, "ee_catalog_sync: out_report is NULL");
    *out_report = NULL;
    if (engine == NULL)
        return ee__error_out(out_report, ee__error(EE_EINVAL, "ee_catalog_sync: engine is NULL"));
    ee_n8n *client = ee__engine_n8n(engine);
    if (client == NULL)
        return ee__error_out(out_report,
                             ee__error(EE_ESTATE, "catalog sync needs n8n: set N8N_API_KEY (and "
                                                  "N8N_BASE_URL) in the engine's config"));
    return sync_with(engine, client, out_report);
}
