/* Catalog records: bounded JSON parsing, JSON <-> BSON, storage access,
 * validation of what an admin sends, and the documents the API answers. */
#include <bson/bson.h>
#include <string.h>

#include "catalog/catalog_internal.h"
#include "core/record.h"
#include "storage/storage.h"
#include "execengine/storage.h"

const char *const ee__cat_shared_fields[] = {"name",     "description",    "category",
                                             "tags",     "isActive",       "requiresApiKey",
                                             "apiKeyProvider"};
const size_t ee__cat_n_shared_fields = sizeof ee__cat_shared_fields / sizeof ee__cat_shared_fields[0];

/* ---- bounded parsing -------------------------------------------------------------- */

ee_status ee__cat_json_parse(const char *text, size_t max_bytes, size_t max_depth,
                             const char *what, json_t **out)
{
    return ee__json_parse(text, max_bytes, max_depth, 0, what, out);
}

bool ee__cat_hex_id(const char *s)
{
    if (s == NULL || strlen(s) != EE_STORAGE_ID_HEX_LEN)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

void ee__cat_utf8_cut(char *s, size_t max)
{
    s[ee__utf8_cut(s, strlen(s), max)] = '\0';
}

/* ---- JSON <-> BSON --------------------------------------------------------------- *
 * Through core's record layer. The catalog has always recognised its dates
 * (integers in createdAt, updatedAt, syncedAt) and ids (24-hex strings in
 * category, emailTemplateId) by name at any depth, and stored any other
 * value plainly: the map says exactly that (inherited, lenient), so every
 * stored record keeps its layout. */

#define CAT_DATE(n) {.name = n, .kind = EE__REC_DATE, .flags = EE__REC_LENIENT}
#define CAT_ID(n) {.name = n, .kind = EE__REC_ID, .flags = EE__REC_LENIENT}

static const ee__rec_field cat_fields[] = {CAT_DATE("createdAt"), CAT_DATE("updatedAt"),
                                           CAT_DATE("syncedAt"), CAT_ID("category"),
                                           CAT_ID("emailTemplateId")};

const ee__record_map ee__cat_record_map = {"catalog record", cat_fields,
                                           sizeof cat_fields / sizeof cat_fields[0], true};

ee_status ee__cat_to_bson(const json_t *rec, uint8_t **data, size_t *len)
{
    return ee__record_encode(&ee__cat_record_map, rec, data, len);
}

ee_status ee__cat_from_bson(const uint8_t *data, size_t len, json_t **out)
{
    return ee__record_decode(&ee__cat_record_map, data, len, false, out);
}

/* ---- storage -------------------------------------------------------------------- */

ee_status ee__cat_load(ee_engine *engine, const char *coll, const char *id, json_t **rec,
                       int64_t *revision)
{
    *rec = NULL;
    uint8_t *data = NULL;
    size_t len = 0;
    ee_status st = ee_storage_get(ee__engine_storage(engine), coll, NULL, id, &data, &len,
                                  revision);
    if (st == EE_ENOTFOUND)
        return ee__error(EE_ENOTFOUND, "no %s with id %s",
                         strcmp(coll, EE__CAT_COLL) == 0 ? "catalog entry" : "category", id);
    if (st != EE_OK)
        return st;
    st = ee__cat_from_bson(data, len, rec);
    ee_free(data);
    return st;
}

ee_status ee__cat_insert(ee_engine *engine, const char *coll, const json_t *rec, char id_out[25])
{
    uint8_t *data = NULL;
    size_t len = 0;
    ee_status st = ee__cat_to_bson(rec, &data, &len);
    if (st != EE_OK)
        return st;
    st = ee_storage_insert(ee__engine_storage(engine), coll, NULL, data, len, id_out);
    free(data);
    return st;
}

ee_status ee__cat_update(ee_engine *engine, const char *coll, const char *id, int64_t expected,
                         const json_t *entry, ee__record_mutate_fn mutate, void *payload,
                         json_t **rec_out, int64_t *revision_out)
{
    ee__record_update_spec spec = {
        .storage = ee__engine_storage(engine), .map = &ee__cat_record_map, .collection = coll,
        .id = id, .expected = expected, .seed = json_object_get(entry, "rec"),
        .seed_revision = json_integer_value(json_object_get(entry, "revision")),
        .mutate = mutate, .payload = payload};
    ee_status st = ee__record_update(&spec, rec_out, revision_out);
    if (st == EE_ENOTFOUND)
        return ee__error(EE_ENOTFOUND, "no %s with id %s",
                         strcmp(coll, EE__CAT_COLL) == 0 ? "catalog entry" : "category", id);
    return st;
}

typedef struct {
    ee__cat_each_fn fn;
    void *payload;
    ee_status st;
} scan_ctx;

static int scan_row(const ee_storage_row *row, void *payload)
{
    scan_ctx *c = payload;
    char id[EE_STORAGE_ID_HEX_LEN + 1];
    ee__hex_encode(row->id, EE_STORAGE_ID_SIZE, id);
    json_t *rec;
    c->st = ee__cat_from_bson(row->data, row->len, &rec);
    if (c->st != EE_OK)
        return 1;
    c->st = c->fn(id, row->revision, rec, c->payload);
    json_decref(rec);
    return c->st != EE_OK;
}

ee_status ee__cat_scan(ee_engine *engine, const char *coll, ee__cat_each_fn fn, void *payload)
{
    scan_ctx c = {fn, payload, EE_OK};
    ee_storage_query_spec q = {.version = EE_STORAGE_QUERY_VERSION,
                               .order = EE_STORAGE_ORDER_ID_ASC, .limit = EE_STORAGE_LIMIT_MAX};
    return ee__storage_query_all(ee__engine_storage(engine), coll, NULL, &q, scan_row, &c, &c.st);
}

/* ---- rendering ------------------------------------------------------------------- */

static json_t *get_or_null(const json_t *rec, const char *key)
{
    json_t *v = json_object_get(rec, key);
    return v ? json_incref(v) : json_null();
}

static json_t *schema_value(const json_t *rec, const char *key)
{
    const char *text = json_string_value(json_object_get(rec, key));
    if (text == NULL)
        return json_null();
    json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
    return v ? v : json_null();
}

static json_t *money(int64_t nano)
{
    char buf[32];
    ee__decimal_format(nano, 9, buf);
    return json_pack("{s:I, s:s}", "nanoUsd", (json_int_t)nano, "usd", buf);
}

json_t *ee__cat_entry_render(const char *id, int64_t revision, const json_t *rec, bool full)
{
    json_t *d = json_object();
    if (d == NULL)
        return NULL;
    static const char *const plain[] = {"n8nWorkflowId", "name", "description", "category",
                                        "tags", "isActive", "requiresApiKey", "apiKeyProvider",
                                        "emailTemplateId", "credentialTypes", "services",
                                        "trigger", "adminEdited"};
    int bad = json_object_set_new(d, "id", json_string(id));
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++)
        bad |= json_object_set_new(d, plain[i], get_or_null(rec, plain[i]));
    if (full) {
        bad |= json_object_set_new(d, "inputSchema", schema_value(rec, "inputSchema"));
        bad |= json_object_set_new(d, "outputSchema", schema_value(rec, "outputSchema"));
    } else {
        bad |= json_object_set_new(
            d, "hasInputSchema", json_boolean(json_is_string(json_object_get(rec, "inputSchema"))));
    }
    bad |= json_object_set_new(
        d, "estimatedCost", money(json_integer_value(json_object_get(rec, "estimatedCost"))));
    const json_t *trig = json_object_get(rec, "trigger");
    bad |= json_object_set_new(d, "runnable",
                               json_boolean(json_is_true(json_object_get(trig, "runnable"))));
    const json_t *n8n = json_object_get(rec, "n8n");
    json_t *n8n_out = json_null();
    if (json_is_object(n8n))
        n8n_out = json_pack("{s:O?, s:O?, s:O?, s:O?, s:O?, s:O?}", "active",
                            json_object_get(n8n, "active"), "archived",
                            json_object_get(n8n, "archived"), "versionId",
                            json_object_get(n8n, "versionId"), "updatedAt",
                            json_object_get(n8n, "updatedAt"), "syncedAt",
                            json_object_get(n8n, "syncedAt"), "missing",
                            json_object_get(n8n, "missing"));
    bad |= json_object_set_new(d, "n8n", n8n_out);
    bad |= json_object_set_new(d, "access", ee__cat_access_render(rec));
    bad |= json_object_set_new(d, "revision", json_integer(revision));
    bad |= json_object_set_new(d, "createdAt", get_or_null(rec, "createdAt"));
    bad |= json_object_set_new(d, "updatedAt", get_or_null(rec, "updatedAt"));
    if (bad) {
        json_decref(d);
        return NULL;
    }
    return d;
}

json_t *ee__cat_category_render(const char *id, int64_t revision, const json_t *rec)
{
    return json_pack("{s:s, s:O, s:O, s:O, s:O, s:O, s:I, s:O, s:O}", "id", id, "name",
                     json_object_get(rec, "name"), "description",
                     json_object_get(rec, "description"), "icon", json_object_get(rec, "icon"),
                     "sortOrder", json_object_get(rec, "sortOrder"), "isActive",
                     json_object_get(rec, "isActive"), "revision", (json_int_t)revision,
                     "createdAt", json_object_get(rec, "createdAt"), "updatedAt",
                     json_object_get(rec, "updatedAt"));
}

/* ---- validating an admin's input ---------------------------------------------------- */

/* A string field: bounded, no NUL, no C1 control character (U+0080 to
 * U+009F: UTF-8 0xC2 0x80..0x9F) and (unless `multiline`: newlines and
 * tabs) no C0 control character or DEL. EE_OK and *out set, or an error
 * naming the field. */
static ee_status text_field(const json_t *v, const char *field, size_t max, bool allow_empty,
                            bool multiline, const char **out)
{
    if (!json_is_string(v))
        return ee__error(EE_EINVAL, "\"%s\" must be a string", field);
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (strlen(s) != len)
        return ee__error(EE_EINVAL, "\"%s\" contains a NUL character", field);
    if (len > max)
        return ee__error(EE_ETOOBIG, "\"%s\" is %zu bytes; the limit is %zu", field, len, max);
    if (len == 0 && !allow_empty)
        return ee__error(EE_EINVAL, "\"%s\" must not be empty", field);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        size_t ctl = ee__text_control_at(p);
        if (ctl == 1 && !(multiline && (*p == '\n' || *p == '\r' || *p == '\t')))
            return ee__error(EE_EINVAL, "\"%s\" contains a control character", field);
        if (ctl == 2)
            return ee__error(EE_EINVAL, "\"%s\" contains a C1 control character (U+%04X)",
                             field, (unsigned)p[1]);
    }
    *out = s;
    return EE_OK;
}

static ee_status tags_field(const json_t *v, json_t **out)
{
    *out = NULL;
    if (!json_is_array(v))
        return ee__error(EE_EINVAL, "\"tags\" must be an array of strings");
    if (json_array_size(v) > EE_CATALOG_TAGS_MAX)
        return ee__error(EE_ETOOBIG, "\"tags\" has %zu tags; the limit is %d", json_array_size(v),
                         EE_CATALOG_TAGS_MAX);
    json_t *tags = json_array();
    size_t i;
    const json_t *t;
    json_array_foreach(v, i, t) {
        const char *s;
        ee_status st = text_field(t, "tags[]", EE_CATALOG_TAG_MAX, false, false, &s);
        if (st != EE_OK) {
            json_decref(tags);
            return st;
        }
        bool dup = false;
        size_t k;
        const json_t *seen;
        json_array_foreach(tags, k, seen) dup = dup || strcmp(json_string_value(seen), s) == 0;
        if (!dup && json_array_append_new(tags, json_string(s)) != 0) {
            json_decref(tags);
            return ee__error(EE_ENOMEM, "out of memory");
        }
    }
    *out = tags;
    return EE_OK;
}

/* Serialise and compile a schema field; *text (new reference) is the
 * stored text or JSON null. */
static ee_status schema_field(const json_t *v, const char *field, json_t **text)
{
    *text = NULL;
    if (json_is_null(v)) {
        *text = json_null();
        return EE_OK;
    }
    if (!json_is_object(v) && !json_is_boolean(v))
        return ee__error(EE_EINVAL, "\"%s\" must be a JSON Schema (an object or a boolean)",
                         field);
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (s == NULL)
        return ee__error(EE_ENOMEM, "out of memory serialising \"%s\"", field);
    size_t len = strlen(s);
    if (len > EE_CATALOG_SCHEMA_MAX) {
        free(s);
        return ee__error(EE_ETOOBIG, "\"%s\" is %zu bytes; the limit is %d", field, len,
                         EE_CATALOG_SCHEMA_MAX);
    }
    ee_schema *compiled = NULL;
    ee_status st = ee__schema_compile(&compiled, v);
    ee_schema_free(compiled);
    if (st != EE_OK) {
        free(s);
        char why[EE__ERROR_MSG_MAX];
        snprintf(why, sizeof why, "%s", ee_error_last_message());
        return ee__error(st, "\"%s\" is not a valid schema: %s", field, why);
    }
    *text = json_string(s);
    free(s);
    return *text ? EE_OK : ee__error(EE_ENOMEM, "out of memory");
}

static ee_status cost_field(const json_t *v, int64_t *out)
{
    const char *text = NULL;
    if (json_is_null(v)) {
        *out = 0;
        return EE_OK;
    }
    if (json_is_string(v)) {
        text = json_string_value(v);
    } else if (json_is_object(v) && json_object_size(v) == 1
               && json_is_string(json_object_get(v, "usd"))) {
        text = json_string_value(json_object_get(v, "usd"));
    } else if (json_is_object(v) && json_object_size(v) == 1
               && json_is_integer(json_object_get(v, "nanoUsd"))) {
        *out = json_integer_value(json_object_get(v, "nanoUsd"));
        if (*out < 0 || *out > EE_CATALOG_COST_MAX_NANO_USD)
            return ee__error(EE_EINVAL, "\"estimatedCost\" must be between 0 and $1,000,000");
        return EE_OK;
    } else {
        return ee__error(EE_EINVAL, "\"estimatedCost\" must be a decimal USD string (\"0.05\"), "
                                    "{\"usd\": \"0.05\"} or {\"nanoUsd\": n}");
    }
    if (ee__decimal_parse(text, 9, out) != EE_OK || *out > EE_CATALOG_COST_MAX_NANO_USD)
        return ee__error(EE_EINVAL,
                         "\"estimatedCost\" must be a non-negative decimal USD amount of at most "
                         "9 decimals and $1,000,000");
    return EE_OK;
}

static ee_status category_exists(ee_engine *engine, const char *id)
{
    json_t *rec;
    ee_status st = ee__cat_load(engine, EE__CAT_CATEGORIES, id, &rec, NULL);
    json_decref(rec);
    if (st == EE_ENOTFOUND)
        return ee__error(EE_EINVAL, "\"category\": unknown category id %s", id);
    return st;
}

bool ee__cat_listed(const json_t *arr, const char *s)
{
    size_t i;
    const json_t *v;
    json_array_foreach(arr, i, v) {
        if (strcmp(json_string_value(v), s) == 0)
            return true;
    }
    return false;
}

static bool is_shared(const char *key)
{
    for (size_t i = 0; i < ee__cat_n_shared_fields; i++)
        if (strcmp(ee__cat_shared_fields[i], key) == 0)
            return true;
    return false;
}

static bool is_read_only(const char *key)
{
    static const char *const ro[] = {"id", "createdAt", "updatedAt", "credentialTypes",
                                     "services", "trigger", "runnable", "adminEdited", "n8n",
                                     "hasInputSchema", "score"};
    for (size_t i = 0; i < sizeof ro / sizeof ro[0]; i++)
        if (strcmp(ro[i], key) == 0)
            return true;
    return false;
}

/* One key of an admin's entry input, applied to rec. */
static ee_status apply_key(ee_engine *engine, json_t *rec, const char *key, const json_t *v,
                           bool create)
{
    const char *s;
    ee_status st;
    json_t *nv = NULL;
    if (strcmp(key, "n8nWorkflowId") == 0) {
        if (!create)
            return ee__error(EE_EINVAL, "\"n8nWorkflowId\" cannot change once created");
        if ((st = text_field(v, key, EE_CATALOG_N8N_ID_MAX, false, false, &s)) != EE_OK)
            return st;
        if (!ee__text_token_ok(s, strlen(s)))
            return ee__error(EE_EINVAL, "\"n8nWorkflowId\" must be printable ASCII without "
                                        "spaces");
        nv = json_string(s);
    } else if (strcmp(key, "name") == 0) {
        if ((st = text_field(v, key, EE_CATALOG_NAME_MAX, false, false, &s)) != EE_OK)
            return st;
        nv = json_string(s);
    } else if (strcmp(key, "description") == 0) {
        if (json_is_null(v))
            s = "";
        else if ((st = text_field(v, key, EE_CATALOG_DESCRIPTION_MAX, true, true, &s)) != EE_OK)
            return st;
        nv = json_string(s);
    } else if (strcmp(key, "category") == 0 || strcmp(key, "emailTemplateId") == 0) {
        if (json_is_null(v)) {
            nv = json_null();
        } else {
            if (!ee__cat_hex_id(json_string_value(v)))
                return ee__error(EE_EINVAL, "\"%s\" must be an id of 24 lowercase hex "
                                            "characters or null", key);
            if (strcmp(key, "category") == 0
                && (st = category_exists(engine, json_string_value(v))) != EE_OK)
                return st;
            nv = json_incref((json_t *)v);
        }
    } else if (strcmp(key, "tags") == 0) {
        if ((st = tags_field(v, &nv)) != EE_OK)
            return st;
    } else if (strcmp(key, "inputSchema") == 0 || strcmp(key, "outputSchema") == 0) {
        if ((st = schema_field(v, key, &nv)) != EE_OK)
            return st;
    } else if (strcmp(key, "isActive") == 0 || strcmp(key, "requiresApiKey") == 0) {
        if (!json_is_boolean(v))
            return ee__error(EE_EINVAL, "\"%s\" must be true or false", key);
        nv = json_incref((json_t *)v);
    } else if (strcmp(key, "estimatedCost") == 0) {
        int64_t nano;
        if ((st = cost_field(v, &nano)) != EE_OK)
            return st;
        nv = json_integer(nano);
    } else if (strcmp(key, "apiKeyProvider") == 0) {
        s = json_string_value(v);
        if (s == NULL || (strcmp(s, "openrouter") != 0 && strcmp(s, "platform") != 0))
            return ee__error(EE_EINVAL, "\"apiKeyProvider\" must be \"openrouter\" or "
                                        "\"platform\"");
        nv = json_string(s);
    } else if (strcmp(key, "access") == 0) {
        if ((st = ee__cat_access_parse(v, &nv)) != EE_OK)
            return st;
    } else if (is_read_only(key) || (create && strcmp(key, "revision") == 0)) {
        return ee__error(EE_EINVAL, "\"%s\" is read-only", key);
    } else if (strcmp(key, "revision") == 0) {
        return EE_OK; /* the caller's expected revision, handled by update */
    } else {
        char q[80];
        ee__quote_for_message(key, q, sizeof q);
        return ee__error(EE_EINVAL, "catalog entry: unknown member \"%s\" (at /%s)", q, q);
    }
    if (nv == NULL || json_object_set_new(rec, key, nv) != 0)
        return ee__error(EE_ENOMEM, "out of memory");
    if (is_shared(key)) {
        json_t *edited = json_object_get(rec, "adminEdited");
        if (!ee__cat_listed(edited, key) && json_array_append_new(edited, json_string(key)) != 0)
            return ee__error(EE_ENOMEM, "out of memory");
    }
    return EE_OK;
}

static ee_status entry_defaults(json_t *rec)
{
    json_t *trig = json_pack("{s:b, s:s}", "runnable", 0, "reason",
                             "not synced from n8n yet: no webhook trigger known");
    int bad = json_object_set_new(rec, "description", json_string(""))
            | json_object_set_new(rec, "category", json_null())
            | json_object_set_new(rec, "tags", json_array())
            | json_object_set_new(rec, "inputSchema", json_null())
            | json_object_set_new(rec, "outputSchema", json_null())
            | json_object_set_new(rec, "isActive", json_true())
            | json_object_set_new(rec, "requiresApiKey", json_false())
            | json_object_set_new(rec, "estimatedCost", json_integer(0))
            | json_object_set_new(rec, "apiKeyProvider", json_string("platform"))
            | json_object_set_new(rec, "emailTemplateId", json_null())
            | json_object_set_new(rec, "credentialTypes", json_array())
            | json_object_set_new(rec, "services", json_array())
            | json_object_set_new(rec, "trigger", trig)
            | json_object_set_new(rec, "adminEdited", json_array())
            | json_object_set_new(rec, "n8n", json_null());
    return bad ? ee__error(EE_ENOMEM, "out of memory") : EE_OK;
}

ee_status ee__cat_entry_apply(ee_engine *engine, json_t *rec, const json_t *input, bool create)
{
    if (!json_is_object(input))
        return ee__error(EE_EINVAL, "a catalog entry must be a JSON object");
    ee_status st;
    if (create) {
        if (!json_is_string(json_object_get(input, "n8nWorkflowId")))
            return ee__error(EE_EINVAL, "\"n8nWorkflowId\" is required");
        if (!json_is_string(json_object_get(input, "name")))
            return ee__error(EE_EINVAL, "\"name\" is required");
        if ((st = entry_defaults(rec)) != EE_OK)
            return st;
    }
    if (!json_is_array(json_object_get(rec, "adminEdited"))
        && json_object_set_new(rec, "adminEdited", json_array()) != 0)
        return ee__error(EE_ENOMEM, "out of memory");
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)input, key, v) {
        if ((st = apply_key(engine, rec, key, v, create)) != EE_OK)
            return st;
    }
    return EE_OK;
}

ee_status ee__cat_category_apply(json_t *rec, const json_t *input, bool create)
{
    if (!json_is_object(input))
        return ee__error(EE_EINVAL, "a category must be a JSON object");
    if (create) {
        if (!json_is_string(json_object_get(input, "name")))
            return ee__error(EE_EINVAL, "\"name\" is required");
        if (json_object_set_new(rec, "description", json_string("")) != 0
            || json_object_set_new(rec, "icon", json_string("")) != 0
            || json_object_set_new(rec, "sortOrder", json_integer(0)) != 0
            || json_object_set_new(rec, "isActive", json_true()) != 0)
            return ee__error(EE_ENOMEM, "out of memory");
    }
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)input, key, v) {
        const char *s;
        ee_status st = EE_OK;
        json_t *nv = NULL;
        if (strcmp(key, "name") == 0) {
            st = text_field(v, key, EE_CATALOG_CATEGORY_NAME_MAX, false, false, &s);
            nv = st == EE_OK ? json_string(s) : NULL;
        } else if (strcmp(key, "description") == 0) {
            st = text_field(v, key, EE_CATALOG_CATEGORY_DESCRIPTION_MAX, true, true, &s);
            nv = st == EE_OK ? json_string(s) : NULL;
        } else if (strcmp(key, "icon") == 0) {
            st = text_field(v, key, EE_CATALOG_CATEGORY_ICON_MAX, true, false, &s);
            nv = st == EE_OK ? json_string(s) : NULL;
        } else if (strcmp(key, "sortOrder") == 0) {
            if (!json_is_integer(v) || json_integer_value(v) < INT32_MIN
                || json_integer_value(v) > INT32_MAX)
                return ee__error(EE_EINVAL, "\"sortOrder\" must be a 32-bit integer");
            nv = json_incref((json_t *)v);
        } else if (strcmp(key, "isActive") == 0) {
            if (!json_is_boolean(v))
                return ee__error(EE_EINVAL, "\"isActive\" must be true or false");
            nv = json_incref((json_t *)v);
        } else if (strcmp(key, "revision") == 0 && !create) {
            continue;
        } else if (strcmp(key, "id") == 0 || strcmp(key, "createdAt") == 0
                   || strcmp(key, "updatedAt") == 0 || strcmp(key, "revision") == 0) {
            return ee__error(EE_EINVAL, "\"%s\" is read-only", key);
        } else {
            char q[80];
            ee__quote_for_message(key, q, sizeof q);
            return ee__error(EE_EINVAL, "category: unknown member \"%s\" (at /%s)", q, q);
        }
        if (st != EE_OK)
            return st;
        if (nv == NULL || json_object_set_new(rec, key, nv) != 0)
            return ee__error(EE_ENOMEM, "out of memory");
    }
    return EE_OK;
}
