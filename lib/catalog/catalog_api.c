/* The catalog's public calls for workflows: create, get, update, list,
 * search and input validation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "catalog/catalog_internal.h"

/* Entry text may hold a schema nested to the schema validator's limit. */
#define ENTRY_DEPTH (EE_SCHEMA_MAX_SCHEMA_DEPTH + 4)
#define CURSOR_MAX 2048

static ee_status check_engine(ee_engine *engine, const char *what, ee__catalog_state **st)
{
    *st = NULL;
    if (engine == NULL)
        return ee__error(EE_EINVAL, "%s: engine is NULL", what);
    *st = ee__catalog_state_of(engine);
    return *st ? EE_OK : EE_ESTATE;
}

static ee_status check_id(const char *id, const char *what)
{
    if (id == NULL)
        return ee__error(EE_EINVAL, "%s: id is NULL", what);
    if (!ee__cat_hex_id(id)) {
        char q[64];
        ee__quote_for_message(id, q, sizeof q);
        return ee__error(EE_EINVAL, "%s: \"%s\" is not an id (24 lowercase hex characters)", what,
                         q);
    }
    return EE_OK;
}

/* An entry as `principal` sees it: without "access" (the other workspaces
 * and plans it names are not a customer's to read); NULL principal: the
 * admin's view, as rendered. Takes `doc`. */
static json_t *customer_view(json_t *doc, const ee_principal *principal)
{
    if (doc != NULL && principal != NULL)
        json_object_del(doc, "access");
    return doc;
}

/* ---- create / get / update ------------------------------------------------------- */

void ee__cat_audit(ee_engine *engine, ee__audit_action action, const char *id,
                   const json_t *rec, const json_t *patch)
{
    json_t *detail = json_object();
    const json_t *name = json_object_get(rec, "name");
    if (detail != NULL && json_is_string(name))
        json_object_set_new(detail, "name", json_stringn(json_string_value(name),
                                                         json_string_length(name) > 200
                                                             ? 200 : json_string_length(name)));
    if (detail != NULL && patch != NULL) {
        json_t *fields = json_array();
        const char *k;
        const json_t *v;
        json_object_foreach((json_t *)patch, k, v) {
            (void)v;
            json_array_append_new(fields, json_string(k));
        }
        json_object_set_new(detail, "fields", fields);
    }
    ee__audit_append(engine, &(ee__audit_entry){.action = action,
                                                .workspace = EE__AUDIT_PLATFORM,
                                                .actor = EE__AUDIT_ACTOR_SYSTEM,
                                                .target_id = id,
                                                .outcome = EE__AUDIT_OK,
                                                .status = EE_OK,
                                                .detail = detail});
    json_decref(detail);
}

ee_status ee_catalog_create(ee_engine *engine, const char *entry_json, char **out)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee_catalog_create: out is NULL");
    *out = NULL;
    ee__catalog_state *state = NULL;
    ee_status st = check_engine(engine, "ee_catalog_create", &state);
    json_t *input = NULL, *rec = NULL;
    if (st == EE_OK)
        st = ee__cat_json_parse(entry_json, EE_CATALOG_DOC_MAX, ENTRY_DEPTH, "catalog entry",
                                &input);
    if (st == EE_OK && (rec = json_object()) == NULL)
        st = ee__error(EE_ENOMEM, "out of memory");
    if (st == EE_OK)
        st = ee__cat_entry_apply(engine, rec, input, true);
    char id[25] = "";
    if (st == EE_OK) {
        json_int_t now = ee_engine_now_ms(engine);
        if (json_object_set_new(rec, "createdAt", json_integer(now)) != 0
            || json_object_set_new(rec, "updatedAt", json_integer(now)) != 0)
            st = ee__error(EE_ENOMEM, "out of memory");
    }
    if (st == EE_OK) {
        st = ee__cat_insert(engine, EE__CAT_COLL, rec, id);
        if (st == EE_EEXISTS) {
            char q[160];
            ee__quote_for_message(json_string_value(json_object_get(rec, "n8nWorkflowId")), q,
                                  sizeof q);
            st = ee__error(EE_EEXISTS, "a catalog entry for n8n workflow \"%s\" already exists",
                           q);
        }
    }
    if (st == EE_OK) {
        ee__catalog_invalidate(state);
        ee__cat_audit(engine, EE__AUDIT_CATALOG_ENTRY_CREATED, id, rec, NULL);
        st = ee__json_out(out, ee__cat_entry_render(id, 1, rec, true));
    }
    json_decref(input);
    json_decref(rec);
    return st == EE_OK ? EE_OK : (*out ? st : ee__error_out(out, st));
}

ee_status ee_catalog_get(ee_engine *engine, const ee_principal *principal,
                         const char *workflow_id, unsigned flags, char **out)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee_catalog_get: out is NULL");
    *out = NULL;
    ee__catalog_state *state = NULL;
    ee_status st = check_engine(engine, "ee_catalog_get", &state);
    if (st == EE_OK)
        st = check_id(workflow_id, "ee_catalog_get");
    if (st == EE_OK && (flags & ~EE_CATALOG_INCLUDE_INACTIVE) != 0)
        st = ee__error(EE_EINVAL, "ee_catalog_get: unknown flags 0x%x", flags);
    ee__catalog_entry *entry = NULL;
    if (st == EE_OK)
        st = ee__catalog_entry_get(engine, principal, workflow_id,
                                   (flags & EE_CATALOG_INCLUDE_INACTIVE)
                                       ? EE__CATALOG_ENTRY_INACTIVE : 0u,
                                   &entry);
    if (st == EE_OK)
        st = ee__json_out(out, customer_view(ee__cat_entry_render(entry->id, entry->revision,
                                                                  ee__cat_entry_record(entry),
                                                                  true),
                                             principal));
    ee__catalog_entry_free(entry);
    return st == EE_OK ? EE_OK : ee__error_out(out, st);
}

/* The optional "revision" of a patch: 0 when absent. */
static ee_status expected_revision(const json_t *patch, int64_t *out)
{
    *out = 0;
    const json_t *r = json_object_get(patch, "revision");
    if (r == NULL)
        return EE_OK;
    if (!json_is_integer(r) || json_integer_value(r) < 1)
        return ee__error(EE_EINVAL, "\"revision\" must be a positive integer");
    *out = json_integer_value(r);
    return EE_OK;
}

/* Read-modify-write with optimistic concurrency (shared by entries and
 * categories): `apply` changes a copy of the stored record. */
typedef ee_status (*apply_fn)(ee_engine *engine, json_t *rec, const json_t *patch);

typedef struct update_ctx {
    ee_engine *engine;
    const json_t *patch;
    apply_fn apply;
} update_ctx;

static ee_status update_mutate(json_t *rec, void *payload)
{
    update_ctx *u = payload;
    ee_status st = u->apply(u->engine, rec, u->patch);
    int64_t prev = json_integer_value(json_object_get(rec, "updatedAt"));
    int64_t now = ee_engine_now_ms(u->engine);
    if (st == EE_OK
        && json_object_set_new(rec, "updatedAt", json_integer(now > prev ? now : prev)) != 0)
        st = ee__error(EE_ENOMEM, "out of memory");
    return st;
}

static ee_status update_record(ee_engine *engine, const char *coll, const char *id,
                               const json_t *patch, apply_fn apply, json_t **rec_out,
                               int64_t *rev_out)
{
    *rec_out = NULL;
    int64_t expected;
    ee_status st = expected_revision(patch, &expected);
    if (st != EE_OK)
        return st;
    /* without "revision", a concurrent write re-applies the patch to the
     * fresh record (the record layer's retry policy) */
    update_ctx u = {engine, patch, apply};
    return ee__cat_update(engine, coll, id, expected, NULL, update_mutate, &u, rec_out, rev_out);
}

static ee_status apply_entry(ee_engine *engine, json_t *rec, const json_t *patch)
{
    return ee__cat_entry_apply(engine, rec, patch, false);
}

ee_status ee_catalog_update(ee_engine *engine, const char *workflow_id, const char *patch_json,
                            char **out)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee_catalog_update: out is NULL");
    *out = NULL;
    ee__catalog_state *state = NULL;
    ee_status st = check_engine(engine, "ee_catalog_update", &state);
    if (st == EE_OK)
        st = check_id(workflow_id, "ee_catalog_update");
    json_t *patch = NULL, *rec = NULL;
    if (st == EE_OK)
        st = ee__cat_json_parse(patch_json, EE_CATALOG_DOC_MAX, ENTRY_DEPTH, "catalog patch",
                                &patch);
    if (st == EE_OK && !json_is_object(patch))
        st = ee__error(EE_EINVAL, "a catalog patch must be a JSON object");
    int64_t rev = 0;
    if (st == EE_OK)
        st = update_record(engine, EE__CAT_COLL, workflow_id, patch, apply_entry, &rec, &rev);
    if (st == EE_OK) {
        ee__catalog_invalidate(state);
        ee__cat_audit(engine, EE__AUDIT_CATALOG_ENTRY_UPDATED, workflow_id, rec, patch);
        st = ee__json_out(out, ee__cat_entry_render(workflow_id, rev, rec, true));
    }
    json_decref(patch);
    json_decref(rec);
    return st == EE_OK ? EE_OK : (*out ? st : ee__error_out(out, st));
}

/* ---- queries: filters, cursors ------------------------------------------------------------ */

typedef struct {
    bool admin;
    int active;          /* -1 any, else 0/1 */
    int requires_key;    /* -1 any */
    int has_category;    /* 0 any, 1 this id, 2 none */
    const char *category;
    const json_t *tags;  /* array or NULL */
    const char *n8n_id;
    int sort;
    bool desc;
    size_t limit;
    const char *cursor;
    const char *q;
    /* who reads (NULL: the admin or the library: every entry) */
    const ee_principal *principal;
    bool restricted;     /* the snapshot has entries not open to everyone */
    const char *ws;      /* the principal's workspace */
    bool plan_known;     /* plan was read (the snapshot has plans-mode entries) */
    char plan[EE_PRINCIPAL_ID_MAX + 1];
} cat_query;

static ee_status bool_opt(const json_t *v, const char *key, int *out)
{
    if (!json_is_boolean(v))
        return ee__error(EE_EINVAL, "query: \"%s\" must be true or false", key);
    *out = json_is_true(v);
    return EE_OK;
}

static ee_status parse_query(const json_t *doc, bool search, cat_query *q)
{
    memset(q, 0, sizeof *q);
    q->active = -1;
    q->requires_key = -1;
    q->limit = EE_CATALOG_PAGE_DEFAULT;
    if (doc == NULL)
        goto done;
    if (!json_is_object(doc))
        return ee__error(EE_EINVAL, "a catalog query must be a JSON object");
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)doc, key, v) {
        ee_status st = EE_OK;
        int b = 0;
        if (strcmp(key, "includeInactive") == 0) {
            st = bool_opt(v, key, &b);
            q->admin = b;
        } else if (strcmp(key, "isActive") == 0) {
            st = bool_opt(v, key, &q->active);
        } else if (strcmp(key, "requiresApiKey") == 0) {
            st = bool_opt(v, key, &q->requires_key);
        } else if (strcmp(key, "category") == 0) {
            if (json_is_null(v))
                q->has_category = 2;
            else if (ee__cat_hex_id(json_string_value(v)))
                q->has_category = 1, q->category = json_string_value(v);
            else
                st = ee__error(EE_EINVAL, "query: \"category\" must be a category id or null");
        } else if (strcmp(key, "tags") == 0) {
            if (!json_is_array(v) || json_array_size(v) > EE_CATALOG_TAGS_MAX)
                st = ee__error(EE_EINVAL, "query: \"tags\" must be an array of at most %d "
                                          "strings", EE_CATALOG_TAGS_MAX);
            size_t i;
            const json_t *t;
            json_array_foreach(v, i, t) {
                if (st == EE_OK && (!json_is_string(t) || json_string_length(t) == 0
                                    || json_string_length(t) > EE_CATALOG_TAG_MAX))
                    st = ee__error(EE_EINVAL, "query: \"tags\" must hold non-empty strings of "
                                              "at most %d bytes", EE_CATALOG_TAG_MAX);
            }
            q->tags = v;
        } else if (strcmp(key, "n8nWorkflowId") == 0) {
            if (!json_is_string(v) || json_string_length(v) > EE_CATALOG_N8N_ID_MAX)
                st = ee__error(EE_EINVAL, "query: \"n8nWorkflowId\" must be a string");
            q->n8n_id = json_string_value(v);
        } else if (!search && strcmp(key, "sort") == 0) {
            const char *s = json_string_value(v);
            if (s != NULL && strcmp(s, "name") == 0)
                q->sort = EE__CAT_SORT_NAME;
            else if (s != NULL && strcmp(s, "createdAt") == 0)
                q->sort = EE__CAT_SORT_CREATED;
            else if (s != NULL && strcmp(s, "updatedAt") == 0)
                q->sort = EE__CAT_SORT_UPDATED;
            else
                st = ee__error(EE_EINVAL, "query: \"sort\" must be \"name\", \"createdAt\" or "
                                          "\"updatedAt\"");
        } else if (!search && strcmp(key, "order") == 0) {
            const char *s = json_string_value(v);
            if (s != NULL && (strcmp(s, "asc") == 0 || strcmp(s, "desc") == 0))
                q->desc = strcmp(s, "desc") == 0;
            else
                st = ee__error(EE_EINVAL, "query: \"order\" must be \"asc\" or \"desc\"");
        } else if (strcmp(key, "limit") == 0) {
            if (!json_is_integer(v) || json_integer_value(v) < 1
                || json_integer_value(v) > EE_CATALOG_PAGE_MAX)
                st = ee__error(EE_EINVAL, "query: \"limit\" must be 1..%d", EE_CATALOG_PAGE_MAX);
            q->limit = (size_t)json_integer_value(v);
        } else if (strcmp(key, "cursor") == 0) {
            if (json_is_null(v))
                continue;
            if (!json_is_string(v) || json_string_length(v) > CURSOR_MAX)
                st = ee__error(EE_EINVAL, "query: malformed \"cursor\"");
            q->cursor = json_string_value(v);
        } else if (search && strcmp(key, "q") == 0) {
            if (!json_is_string(v))
                st = ee__error(EE_EINVAL, "query: \"q\" must be a string");
            else if (json_string_length(v) > EE__SEARCH_QUERY_MAX)
                st = ee__error(EE_ETOOBIG, "query: \"q\" is %zu bytes; the limit is %d",
                               json_string_length(v), EE__SEARCH_QUERY_MAX);
            q->q = json_string_value(v);
        } else {
            char qk[80];
            ee__quote_for_message(key, qk, sizeof qk);
            st = ee__error(EE_EINVAL, "catalog query: unknown member \"%s\" (at /%s)", qk, qk);
        }
        if (st != EE_OK)
            return st;
    }
done:
    if (!q->admin) {
        if (q->active == 0)
            return ee__error(EE_EINVAL, "query: \"isActive\": false needs \"includeInactive\": "
                                        "true (the admin's view)");
        q->active = 1;
    }
    if (search && q->q == NULL)
        return ee__error(EE_EINVAL, "query: \"q\" (the words to search) is required");
    return EE_OK;
}

static bool item_has_tag(const ee__cat_item *it, const char *tag)
{
    for (size_t i = 0; i < it->n_tags; i++)
        if (strcasecmp(it->tags[i], tag) == 0)
            return true;
    return false;
}

static bool accept_item(const cat_query *q, const ee__cat_item *it)
{
    if (q->active >= 0 && it->active != (q->active == 1))
        return false;
    if (q->restricted && !ee__cat_item_allows(it, q->ws, q->plan))
        return false;
    if (q->requires_key >= 0 && it->requires_key != (q->requires_key == 1))
        return false;
    if (q->has_category == 1 && strcmp(it->category, q->category) != 0)
        return false;
    if (q->has_category == 2 && it->category[0] != '\0')
        return false;
    if (q->n8n_id != NULL && strcmp(it->n8n_id, q->n8n_id) != 0)
        return false;
    size_t i;
    const json_t *t;
    json_array_foreach(q->tags, i, t) {
        if (!item_has_tag(it, json_string_value(t)))
            return false;
    }
    return true;
}

/* A fingerprint of everything but the page position, so a cursor from
 * another query is refused. FNV-1a over a canonical text. */
static uint64_t fnv(uint64_t h, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c - 'A' + 'a');
        h = (h ^ c) * 1099511628211ull;
    }
    return (h ^ 0x1f) * 1099511628211ull;
}

static uint64_t fingerprint(const cat_query *q, bool search)
{
    char buf[96];
    snprintf(buf, sizeof buf, "%d|%d|%d|%d|%d|%d|%d", search, q->admin, q->active,
             q->requires_key, q->has_category, q->sort, q->desc);
    uint64_t h = fnv(1469598103934665603ull, buf);
    h = fnv(h, q->category ? q->category : "");
    h = fnv(h, q->n8n_id ? q->n8n_id : "");
    h = fnv(h, q->q ? q->q : "");
    /* a page of one workspace's view continues in that view only */
    h = fnv(h, q->principal ? ee_principal_workspace(q->principal) : "");
    size_t i;
    const json_t *t;
    json_array_foreach(q->tags, i, t) h = fnv(h, json_string_value(t));
    return h;
}

static char *hex_encode(const char *s)
{
    size_t n = strlen(s);
    char *out = malloc(2 * n + 1);
    if (out != NULL)
        ee__hex_encode((const uint8_t *)s, n, out);
    return out;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static json_t *cursor_new(uint64_t fp)
{
    char f[17];
    snprintf(f, sizeof f, "%016llx", (unsigned long long)fp);
    return json_pack("{s:i, s:s}", "v", 1, "f", f);
}

static char *cursor_encode(json_t *c)
{
    char *text = c ? json_dumps(c, JSON_COMPACT) : NULL;
    json_decref(c);
    char *hex = text ? hex_encode(text) : NULL;
    free(text);
    return hex;
}

/* Decode a cursor made by cursor_encode() for a query with fingerprint fp. */
static ee_status cursor_decode(const char *cursor, uint64_t fp, json_t **out)
{
    *out = NULL;
    size_t n = strlen(cursor);
    char *raw = (n % 2 == 0 && n > 0) ? malloc(n / 2 + 1) : NULL;
    bool ok = raw != NULL;
    for (size_t i = 0; ok && i < n; i += 2) {
        int hi = hexval(cursor[i]), lo = hexval(cursor[i + 1]);
        ok = hi >= 0 && lo >= 0 && (hi || lo);
        if (ok)
            raw[i / 2] = (char)(hi << 4 | lo);
    }
    json_t *c = NULL;
    if (ok) {
        raw[n / 2] = '\0';
        c = ee__utf8_valid(raw, n / 2) ? json_loads(raw, 0, NULL) : NULL;
    }
    free(raw);
    char f[17];
    snprintf(f, sizeof f, "%016llx", (unsigned long long)fp);
    const char *cf = json_string_value(json_object_get(c, "f"));
    if (c == NULL || json_integer_value(json_object_get(c, "v")) != 1 || cf == NULL) {
        json_decref(c);
        return ee__error(EE_EINVAL, "query: malformed \"cursor\"");
    }
    if (strcmp(cf, f) != 0) {
        json_decref(c);
        return ee__error(EE_EINVAL, "query: the \"cursor\" belongs to another query");
    }
    *out = c;
    return EE_OK;
}

/* The end of an answer: "nextCursor" (`next`, freed here; NULL when there
 * is no next page, an error when there is one) and "total". */
static ee_status page_end(json_t *res, bool more, char *next, size_t total)
{
    if ((more && next == NULL)
        || json_object_set_new(res, "nextCursor", next ? json_string(next) : json_null()) != 0
        || json_object_set_new(res, "total", json_integer((json_int_t)total)) != 0) {
        free(next);
        return ee__error(EE_ENOMEM, "out of memory");
    }
    free(next);
    return EE_OK;
}

/* Load, check and render the entries of a page into res's "data" (entries gone since the
 * snapshot are skipped; so are entries deactivated since, in a customer's
 * view). `scores` may be NULL. */
static size_t rendered_slot(const char *id)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *id != '\0'; id++)
        h = (h ^ (unsigned char)*id) * 1099511628211ULL;
    return (size_t)(h % EE__CAT_RENDER_SLOTS);
}

/* Entry `id` at `revision`, decoded and rendered: from the state's slots
 * when they hold that revision, else from `data` (then kept). *rec and
 * *full are the caller's references. A slot filled by a run's read
 * (ee__cat_record_at) holds the record only: rendered here, once. */
static ee_status rendered_get(ee__catalog_state *state, const char *id, int64_t revision,
                              const uint8_t *data, size_t len, json_t **rec, json_t **full)
{
    ee__cat_rendered *slot = &state->rendered[rendered_slot(id)];
    *rec = *full = NULL;
    pthread_mutex_lock(&state->render_lock);
    if (slot->full != NULL && slot->revision == revision && strcmp(slot->id, id) == 0) {
        *rec = json_incref(slot->rec);
        *full = json_incref(slot->full);
    }
    pthread_mutex_unlock(&state->render_lock);
    if (*full != NULL)
        return EE_OK;
    ee_status st = ee__cat_record_at(state, id, revision, data, len, rec);
    if (st != EE_OK)
        return st;
    *full = ee__cat_entry_render(id, revision, *rec, false);
    if (*full == NULL) {
        json_decref(*rec);
        *rec = NULL;
        return ee__error(EE_ENOMEM, "out of memory");
    }
    pthread_mutex_lock(&state->render_lock);
    if (slot->rec == *rec && slot->full == NULL) /* still the record rendered */
        slot->full = json_incref(*full);
    pthread_mutex_unlock(&state->render_lock);
    return EE_OK;
}

ee_status ee__cat_record_at(ee__catalog_state *state, const char *id, int64_t revision,
                            const uint8_t *data, size_t len, json_t **rec)
{
    *rec = NULL;
    ee__cat_rendered *slot = &state->rendered[rendered_slot(id)];
    pthread_mutex_lock(&state->render_lock);
    if (slot->rec != NULL && slot->revision == revision && strcmp(slot->id, id) == 0)
        *rec = json_incref(slot->rec);
    pthread_mutex_unlock(&state->render_lock);
    if (*rec != NULL)
        return EE_OK;
    ee_status st = ee__cat_from_bson(data, len, rec);
    if (st != EE_OK)
        return st;
    pthread_mutex_lock(&state->render_lock);
    json_t *old_rec = slot->rec, *old_full = slot->full;
    snprintf(slot->id, sizeof slot->id, "%s", id);
    slot->revision = revision;
    slot->rec = json_incref(*rec);
    slot->full = NULL; /* rendered by the first page that shows it */
    pthread_mutex_unlock(&state->render_lock);
    json_decref(old_rec);
    json_decref(old_full);
    return EE_OK;
}

static ee_status render_page(ee_engine *engine, const cat_query *q, const ee__cat_snapshot *snap,
                             const uint32_t *docs, const uint32_t *scores, size_t n, json_t *res)
{
    json_t *data = json_array();
    if (data == NULL || json_object_set_new(res, "data", data) != 0)
        return ee__error(EE_ENOMEM, "out of memory");
    ee__catalog_state *state = ee__catalog_state_of(engine);
    if (state == NULL)
        return ee_error_last_status();
    for (size_t i = 0; i < n; i++) {
        const ee__cat_item *it = &snap->items[docs[i]];
        json_t *rec = NULL, *full = NULL;
        int64_t rev = 0;
        uint8_t *bytes = NULL;
        size_t len = 0;
        /* the stored revision, read at every call: a write in any process
         * changes it, and the cached rendering with it */
        ee_status st = ee_storage_get(ee__engine_storage(engine), EE__CAT_COLL, NULL, it->id,
                                      &bytes, &len, &rev);
        if (st == EE_ENOTFOUND) {
            ee__error(EE_ENOTFOUND, "no catalog entry with id %s", it->id);
            continue;
        }
        if (st == EE_OK)
            st = rendered_get(state, it->id, rev, bytes, len, &rec, &full);
        ee_free(bytes);
        if (st != EE_OK)
            return st;
        if (!q->admin && !json_is_true(json_object_get(rec, "isActive"))) {
            json_decref(rec);
            json_decref(full);
            continue;
        }
        /* the stored record, not the snapshot, has the last word: an entry
         * closed to this workspace since the snapshot is left out too */
        bool allowed = true;
        st = ee__cat_access_check(engine, rec, q->principal, q->plan_known ? q->plan : NULL,
                                  &allowed);
        if (st != EE_OK || !allowed) {
            json_decref(rec);
            json_decref(full);
            if (st != EE_OK)
                return st;
            continue;
        }
        /* a shallow copy: the page's own members (score, no access), the
         * cached rendering unchanged */
        json_t *item = customer_view(json_copy(full), q->principal);
        json_decref(full);
        json_decref(rec);
        if (item != NULL && scores != NULL
            && json_object_set_new(item, "score", json_integer(scores[i])) != 0) {
            json_decref(item);
            item = NULL;
        }
        if (item == NULL || json_array_append_new(data, item) != 0)
            return ee__error(EE_ENOMEM, "out of memory");
    }
    return EE_OK;
}

/* ---- list ------------------------------------------------------------------------------------ */

/* The position just after the cursor's (key, id) in `order`, walking in the
 * query's direction: for asc the first index past it, for desc the index
 * before it (returned +1, 0 meaning "nothing left"). */
static ee_status cursor_position(const cat_query *q, const ee__cat_snapshot *snap,
                                 const uint32_t *order, const json_t *c, size_t *pos)
{
    ee__cat_item probe;
    memset(&probe, 0, sizeof probe);
    const json_t *k = json_object_get(c, "k");
    const char *id = json_string_value(json_object_get(c, "i"));
    if (id == NULL || !ee__cat_hex_id(id)
        || (q->sort == EE__CAT_SORT_NAME ? !json_is_string(k) : !json_is_integer(k)))
        return ee__error(EE_EINVAL, "query: malformed \"cursor\"");
    snprintf(probe.id, sizeof probe.id, "%s", id);
    probe.name = (char *)(q->sort == EE__CAT_SORT_NAME ? json_string_value(k) : "");
    probe.created = probe.updated = json_integer_value(k);
    /* first index whose item sorts after the probe */
    size_t lo = 0, hi = snap->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ee__cat_item_cmp(&snap->items[order[mid]], &probe, q->sort) <= 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (!q->desc) {
        *pos = lo;
    } else {
        /* last index sorting before the probe, +1 */
        size_t before = lo;
        while (before > 0
               && ee__cat_item_cmp(&snap->items[order[before - 1]], &probe, q->sort) >= 0)
            before--;
        *pos = before;
    }
    return EE_OK;
}

static json_t *list_cursor(const cat_query *q, uint64_t fp, const ee__cat_item *last)
{
    json_t *c = cursor_new(fp);
    json_t *k = q->sort == EE__CAT_SORT_NAME      ? json_string(last->name)
                : q->sort == EE__CAT_SORT_CREATED ? json_integer(last->created)
                                                   : json_integer(last->updated);
    if (c == NULL || json_object_set_new(c, "k", k) != 0
        || json_object_set_new(c, "i", json_string(last->id)) != 0) {
        json_decref(c);
        return NULL;
    }
    return c;
}

static ee_status list_page(ee_engine *engine, ee__cat_snapshot *snap, const cat_query *q,
                           json_t *res)
{
    const uint32_t *order;
    ee_status st = ee__catalog_snapshot_order(snap, q->sort, &order);
    if (st != EE_OK)
        return st;
    uint64_t fp = fingerprint(q, false);
    size_t pos = q->desc ? snap->n : 0;
    if (q->cursor != NULL) {
        json_t *c;
        if ((st = cursor_decode(q->cursor, fp, &c)) != EE_OK)
            return st;
        st = cursor_position(q, snap, order, c, &pos);
        json_decref(c);
        if (st != EE_OK)
            return st;
    }
    uint32_t page[EE_CATALOG_PAGE_MAX];
    size_t n = 0;
    bool more = false;
    for (size_t k = 0; k < snap->n && !more; k++) {
        size_t i;
        if (q->desc) {
            if (pos == 0)
                break;
            i = --pos;
        } else {
            if (pos >= snap->n)
                break;
            i = pos++;
        }
        if (!accept_item(q, &snap->items[order[i]]))
            continue;
        if (n == q->limit)
            more = true;
        else
            page[n++] = order[i];
    }
    size_t total = 0;
    for (size_t i = 0; i < snap->n; i++)
        total += accept_item(q, &snap->items[i]);
    if ((st = render_page(engine, q, snap, page, NULL, n, res)) != EE_OK)
        return st;
    char *next = more ? cursor_encode(list_cursor(q, fp, &snap->items[page[n - 1]])) : NULL;
    return page_end(res, more, next, total);
}

typedef ee_status (*page_fn)(ee_engine *engine, ee__cat_snapshot *snap, const cat_query *q,
                             json_t *res);

/* The reader's side of access for this snapshot: nothing at all when every
 * entry is open to everyone; else the workspace, and the plan when some
 * entry is open to plans. */
static ee_status access_prepare(ee_engine *engine, const ee__cat_snapshot *snap,
                                const ee_principal *principal, cat_query *q)
{
    q->principal = principal;
    if (principal == NULL)
        return EE_OK;
    q->ws = ee_principal_workspace(principal);
    q->restricted = snap->n_restricted > 0;
    if (snap->n_by_plan == 0)
        return EE_OK;
    q->plan_known = true;
    return ee__cat_plan_of(engine, principal, q->plan);
}

static ee_status run_query(ee_engine *engine, const ee_principal *principal,
                           const char *query_json, bool search, page_fn page, const char *what,
                           char **out)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "%s: out is NULL", what);
    *out = NULL;
    ee__catalog_state *state = NULL;
    ee_status st = check_engine(engine, what, &state);
    json_t *doc = NULL, *res = NULL;
    cat_query q;
    if (st == EE_OK && query_json != NULL)
        st = ee__cat_json_parse(query_json, EE_CATALOG_DOC_MAX, EE_CATALOG_DEPTH_MAX,
                                "catalog query", &doc);
    if (st == EE_OK)
        st = parse_query(doc, search, &q);
    ee__cat_snapshot *snap = NULL;
    if (st == EE_OK)
        st = ee__catalog_snapshot_acquire(state, &snap);
    if (st == EE_OK)
        st = access_prepare(engine, snap, principal, &q);
    if (st == EE_OK && (res = json_object()) == NULL)
        st = ee__error(EE_ENOMEM, "out of memory");
    if (st == EE_OK)
        st = page(engine, snap, &q, res);
    ee__catalog_snapshot_release(state, snap);
    json_decref(doc);
    if (st == EE_OK)
        return ee__json_out(out, res);
    json_decref(res);
    return ee__error_out(out, st);
}

ee_status ee_catalog_list(ee_engine *engine, const ee_principal *principal,
                          const char *query_json, char **out)
{
    return run_query(engine, principal, query_json, false, list_page, "ee_catalog_list", out);
}

/* ---- search ---------------------------------------------------------------------------------- */

typedef struct {
    const cat_query *q;
    const ee__cat_snapshot *snap;
} accept_ctx;

static int accept_doc(uint32_t doc, void *payload)
{
    const accept_ctx *a = payload;
    return doc < a->snap->n && accept_item(a->q, &a->snap->items[doc]);
}

/* The query's filters as the snapshot's bitmaps where it keeps them
 * (isActive, requiresApiKey, category, what the workspace may run); the
 * rest (tags, n8nWorkflowId, a category or workspace past the snapshot's
 * bitmaps) through accept_doc, which checks every filter. */
static ee_status search_filter(ee__cat_snapshot *snap, const cat_query *q, accept_ctx *a,
                               const ee__search_bitmap *bitmaps[4], ee__search_filter *f)
{
    int kinds[3], n = 0;
    if (q->active >= 0)
        kinds[n++] = q->active ? EE__CAT_FILTER_ACTIVE : EE__CAT_FILTER_INACTIVE;
    if (q->requires_key >= 0)
        kinds[n++] = q->requires_key ? EE__CAT_FILTER_KEY : EE__CAT_FILTER_NO_KEY;
    if (q->has_category)
        kinds[n++] = q->has_category == 1 ? EE__CAT_FILTER_CATEGORY : EE__CAT_FILTER_NO_CATEGORY;
    bool residual = json_array_size(q->tags) > 0 || q->n8n_id != NULL;
    *f = (ee__search_filter){bitmaps, 0, NULL, a};
    for (int i = 0; i < n; i++) {
        const ee__search_bitmap *bm = NULL;
        ee_status st = ee__catalog_snapshot_filter(snap, kinds[i], q->category, &bm);
        if (st != EE_OK)
            return st;
        if (bm != NULL)
            bitmaps[f->n_bitmaps++] = bm;
        residual = residual || bm == NULL;
    }
    if (q->restricted) {
        const ee__search_bitmap *bm = NULL;
        ee_status st = ee__catalog_snapshot_visible(snap, q->ws, q->plan, &bm);
        if (st != EE_OK)
            return st;
        if (bm != NULL)
            bitmaps[f->n_bitmaps++] = bm;
        residual = residual || bm == NULL;
    }
    f->accept = residual ? accept_doc : NULL;
    return EE_OK;
}

static ee_status search_page(ee_engine *engine, ee__cat_snapshot *snap, const cat_query *q,
                             json_t *res)
{
    uint64_t fp = fingerprint(q, true);
    size_t offset = 0;
    if (q->cursor != NULL) {
        json_t *c;
        ee_status st = cursor_decode(q->cursor, fp, &c);
        if (st != EE_OK)
            return st;
        const json_t *o = json_object_get(c, "o");
        bool ok = json_is_integer(o) && json_integer_value(o) >= 0
               && json_integer_value(o) <= UINT32_MAX;
        offset = ok ? (size_t)json_integer_value(o) : 0;
        json_decref(c);
        if (!ok)
            return ee__error(EE_EINVAL, "query: malformed \"cursor\"");
    }
    ee__search_hit hits[EE_CATALOG_PAGE_MAX + 1];
    size_t n = 0, total = 0;
    accept_ctx a = {q, snap};
    const ee__search_bitmap *bitmaps[4];
    ee__search_filter f;
    ee_status st = search_filter(snap, q, &a, bitmaps, &f);
    if (st == EE_OK)
        st = ee__search(snap->index, q->q, &f, offset, q->limit + 1, hits, &n, &total);
    if (st != EE_OK)
        return st;
    bool more = n > q->limit;
    if (more)
        n = q->limit;
    uint32_t docs[EE_CATALOG_PAGE_MAX + 1], scores[EE_CATALOG_PAGE_MAX + 1];
    for (size_t i = 0; i < n; i++)
        docs[i] = hits[i].doc, scores[i] = hits[i].score;
    if ((st = render_page(engine, q, snap, docs, scores, n, res)) != EE_OK)
        return st;
    char *next = NULL;
    if (more) {
        json_t *c = cursor_new(fp);
        if (c != NULL && json_object_set_new(c, "o", json_integer((json_int_t)(offset + n))) != 0) {
            json_decref(c);
            c = NULL;
        }
        next = cursor_encode(c);
    }
    return page_end(res, more, next, total);
}

ee_status ee_catalog_search(ee_engine *engine, const ee_principal *principal,
                            const char *query_json, char **out)
{
    if (query_json == NULL && out != NULL) {
        *out = NULL;
        return ee__error_out(out, ee__error(EE_EINVAL, "ee_catalog_search: query is NULL"));
    }
    return run_query(engine, principal, query_json, true, search_page, "ee_catalog_search",
                     out);
}

/* ---- input validation ---------------------------------------------------------------------------- */

ee_status ee_catalog_validate_input(ee_engine *engine, const ee_principal *principal,
                                    const char *workflow_id, const char *parameters_json,
                                    char **out)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee_catalog_validate_input: out is NULL");
    *out = NULL;
    ee__catalog_state *state = NULL;
    ee_status st = check_engine(engine, "ee_catalog_validate_input", &state);
    if (st == EE_OK)
        st = check_id(workflow_id, "ee_catalog_validate_input");
    ee__catalog_params *params = NULL;
    if (st == EE_OK)
        st = ee__catalog_params_parse(parameters_json, &params);
    ee__catalog_entry *entry = NULL;
    if (st == EE_OK)
        st = ee__catalog_entry_get(engine, principal, workflow_id, 0u, &entry);
    if (st == EE_OK)
        st = ee__catalog_entry_validate(engine, entry, params, NULL);
    ee__catalog_entry_free(entry);
    if (st == EE_OK)
        st = ee__catalog_params_text(params, out);
    ee__catalog_params_free(params);
    return st == EE_OK ? EE_OK : ee__error_out(out, st);
}
