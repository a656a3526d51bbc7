/*
 * Compiling a JSON Schema (draft 2020-12) into a tree of nodes.
 *
 * Each schema object becomes a sch_node holding its keywords, in the order
 * of the table below, each with its value checked and pre-digested
 * (subschemas compiled, patterns compiled, counts converted). While the
 * tree is built, every subschema with an "$id" becomes a schema resource
 * (its URI resolved against the enclosing one's, RFC 3986) and every
 * "$anchor" / "$dynamicAnchor" is recorded in its resource. Then the
 * $refs and $dynamicRefs are resolved against the base URI of the
 * resource they sit in: to a resource of this document and a JSON pointer
 * or anchor inside it, compiling pointer targets on demand when they lie
 * outside the places keywords define as subschemas (e.g. draft-07
 * "definitions"). Any other document is refused (EE_ENOTSUPPORTED) but
 * for the built-in meta-schema. A reference cycle that never moves to a
 * member of the instance would loop forever and is refused. The compiled
 * schema is immutable afterwards; evaluation lives in schema_validate.c.
 */
#include "schema/schema_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

sch_node ee__schema_true_node = {.boolean = 1, .path = ""};
sch_node ee__schema_false_node = {.boolean = 0, .path = "", .constrains = true};
sch_node ee__schema_meta_node = {.boolean = EE__SCHEMA_META, .path = "", .constrains = true};

/* The draft 2020-12 meta-schema, built in: "$ref" to it checks that the
 * instance is a schema, with this compiler's own keyword checks. */
static const char meta_uri[] = "https://json-schema.org/draft/2020-12/schema";

/* The base URI of a document without a root "$id". Relative references
 * resolve against it like against any other (a sibling "x.json" becomes
 * ee-schema:///x.json, found only if some "$id" names it). */
static const char default_base[] = "ee-schema:///root";

/* Compile-time state: json_t* -> node map, $refs to resolve, anchors. */
typedef struct {
    sch_kw *kw;
    const char *path;
    size_t res; /* the resource whose base URI it resolves against */
} pending_ref;

typedef struct {
    size_t res;
    const char *name;
    sch_node *node;
    bool dynamic; /* "$dynamicAnchor" rather than "$anchor" */
} anchor_def;

typedef struct {
    const json_t **keys;
    sch_node **vals;
    size_t cap, n;
    pending_ref *refs;
    size_t nrefs, cap_refs;
    anchor_def *anchors; /* sorted by (res, name) once the tree is built */
    size_t nanchors, cap_anchors;
    void *res_by_uri;   /* res_key: resources sorted by URI */
    size_t cur_res;     /* the resource of the schema being compiled */
    bool resolving;     /* the tree is built: only $ref targets compile now */
    bool structural; /* only check keyword values: refs unresolved, $id free */
    bool format_assert; /* "format" asserts (see format_asserts()) */
} compiling;

static compiling *cc_of(ee_schema *s);

/* ---- small helpers ------------------------------------------------------- */

static const char *shown(const char *path)
{
    return path[0] != '\0' ? path : "(root)";
}

static ee_status bad(const char *path, const char *what, const json_t *got)
{
    return ee__error(EE_EINVAL, "invalid schema at %s: %s, got %s", shown(path), what,
                     got != NULL ? ee__schema_type_name(got) : "nothing");
}

static bool grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return true;
    size_t n = *cap != 0 ? *cap * 2 : 16;
    while (n < need)
        n *= 2;
    void *p = realloc(*arr, n * elem);
    if (p == NULL)
        return false;
    *arr = p;
    *cap = n;
    return true;
}

/* A path kept for the schema's lifetime: parent + "/" + escaped token. */
static const char *keep_path(ee_schema *s, const char *parent, const char *token)
{
    size_t pl = strlen(parent), tl = strlen(token), extra = 0;
    for (size_t i = 0; i < tl; i++)
        extra += token[i] == '~' || token[i] == '/';
    char *p = malloc(pl + 1 + tl + extra + 1);
    if (p == NULL || !grow((void **)&s->strings, &s->cap_strings, s->nstrings + 1, sizeof(char *))) {
        free(p);
        return NULL;
    }
    char *w = p;
    memcpy(w, parent, pl);
    w += pl;
    *w++ = '/';
    for (size_t i = 0; i < tl; i++) {
        if (token[i] == '~' || token[i] == '/') {
            *w++ = '~';
            *w++ = token[i] == '~' ? '0' : '1';
        } else {
            *w++ = token[i];
        }
    }
    *w = '\0';
    s->strings[s->nstrings++] = p;
    return p;
}

static const char *keep_index_path(ee_schema *s, const char *parent, size_t i)
{
    char num[24];
    snprintf(num, sizeof num, "%zu", i);
    return keep_path(s, parent, num);
}

/* ---- the json_t* -> node map --------------------------------------------- */

static size_t ptr_slot(const void *p, size_t cap)
{
    uintptr_t x = (uintptr_t)p;
    x ^= x >> 17;
    x *= (uintptr_t)0x9E3779B97F4A7C15u;
    return (size_t)(x >> 7) & (cap - 1);
}

static sch_node *map_get(const compiling *cc, const json_t *key)
{
    if (cc->cap == 0)
        return NULL;
    for (size_t i = ptr_slot(key, cc->cap);; i = (i + 1) & (cc->cap - 1)) {
        if (cc->keys[i] == key)
            return cc->vals[i];
        if (cc->keys[i] == NULL)
            return NULL;
    }
}

static bool map_put_raw(compiling *cc, const json_t *key, sch_node *val)
{
    size_t i = ptr_slot(key, cc->cap);
    while (cc->keys[i] != NULL)
        i = (i + 1) & (cc->cap - 1);
    cc->keys[i] = key;
    cc->vals[i] = val;
    cc->n++;
    return true;
}

static bool map_put(compiling *cc, const json_t *key, sch_node *val)
{
    if ((cc->n + 1) * 2 > cc->cap) {
        size_t ncap = cc->cap != 0 ? cc->cap * 2 : 64;
        compiling bigger = {.keys = calloc(ncap, sizeof(json_t *)),
                            .vals = calloc(ncap, sizeof(sch_node *)), .cap = ncap};
        if (bigger.keys == NULL || bigger.vals == NULL) {
            free(bigger.keys), free(bigger.vals);
            return false;
        }
        for (size_t i = 0; i < cc->cap; i++)
            if (cc->keys[i] != NULL)
                map_put_raw(&bigger, cc->keys[i], cc->vals[i]);
        free(cc->keys), free(cc->vals);
        cc->keys = bigger.keys;
        cc->vals = bigger.vals;
        cc->cap = ncap;
    }
    return map_put_raw(cc, key, val);
}

/* ---- nodes ----------------------------------------------------------------- */

static ee_status compile_node(ee_schema *s, const json_t *json, const char *path, sch_node **out);

static ee_status compile_sub(ee_schema *s, const json_t *json, const char *parent,
                             const char *token, sch_node **out)
{
    const char *path = keep_path(s, parent, token);
    if (path == NULL)
        return ee__error(EE_ENOMEM, "out of memory compiling a schema");
    return compile_node(s, json, path, out);
}

/* ---- keyword compilers ------------------------------------------------------- */

static ee_status c_schema(ee_schema *s, sch_node *node, sch_kw *kw, const char *path)
{
    (void)node;
    return compile_node(s, kw->val, path, &kw->sub);
}

static ee_status c_schema_array(ee_schema *s, sch_node *node, sch_kw *kw, const char *path)
{
    (void)node;
    if (!json_is_array(kw->val) || json_array_size(kw->val) == 0)
        return bad(path, "expected a non-empty array of schemas", kw->val);
    kw->n = json_array_size(kw->val);
    if ((kw->subs = calloc(kw->n, sizeof *kw->subs)) == NULL)
        return ee__error(EE_ENOMEM, "out of memory compiling a schema");
    for (size_t i = 0; i < kw->n; i++) {
        const char *p = keep_index_path(s, path, i);
        if (p == NULL)
            return ee__error(EE_ENOMEM, "out of memory compiling a schema");
        ee_status st = compile_node(s, json_array_get(kw->val, i), p, &kw->subs[i]);
        if (st != EE_OK)
            return st;
    }
    return EE_OK;
}

/* A keyword whose value must be an object (else the error `expected` at
 * path): one sub-schema slot and one key per member (NULL-terminated),
 * filled by the caller in member order. */
static ee_status kw_map_alloc(sch_kw *kw, const char *path, const char *expected)
{
    if (!json_is_object(kw->val))
        return bad(path, expected, kw->val);
    kw->n = json_object_size(kw->val);
    kw->subs = calloc(kw->n + 1, sizeof *kw->subs);
    kw->keys = calloc(kw->n + 1, sizeof *kw->keys);
    if (kw->subs == NULL || kw->keys == NULL)
        return ee__error(EE_ENOMEM, "out of memory compiling a schema");
    return EE_OK;
}

static ee_status c_schema_map(ee_schema *s, sch_node *node, sch_kw *kw, const char *path)
{
    (void)node;
    ee_status ast = kw_map_alloc(kw, path, "expected an object whose members are schemas");
    if (ast != EE_OK)
        return ast;
    size_t i = 0;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)kw->val, key, v) {
        kw->keys[i] = key;
        ee_status st = compile_sub(s, v, path, key, &kw->subs[i]);
        if (st != EE_OK)
            return st;
        i++;
    }
    return EE_OK;
}

static ee_status keep_regex(ee_schema *s, const char *pattern, size_t len, const char *path,
                            ee__schema_regex **out)
{
    if (!grow((void **)&s->regexes, &s->cap_regexes, s->nregexes + 1, sizeof *s->regexes))
        return ee__error(EE_ENOMEM, "out of memory compiling a schema");
    /* JIT only pays for a schema that validates; a structural check
     * (the meta-schema applied to an instance) only needs the pattern to
     * compile. */
    ee_status st = ee__schema_regex_compile(out, pattern, len, path, !cc_of(s)->structural);
    if (st == EE_OK)
        s->regexes[s->nregexes++] = *out;
    return st;
}

static ee_status c_pattern_map(ee_schema *s, sch_node *node, sch_kw *kw, const char *path)
{
    ee_status st = c_schema_map(s, node, kw, path);
    if (st != EE_OK)
        return st;
    if ((kw->res = calloc(kw->n + 1, sizeof *kw->res)) == NULL)
        return ee__error(EE_ENOMEM, "out of memory compiling a schema");
    for (size_t i = 0; i < kw->n; i++) {
        const char *p = keep_path(s, path, kw->keys[i]);
        if (p == NULL)
            return ee__error(EE_ENOMEM, "out of memory compiling a schema");
        if ((st = keep_regex(s, kw->keys[i], strlen(kw->keys[i]), p, &kw->res[i])) != EE_OK)
            return st;
    }
    return EE_OK;
}

static ee_status c_pattern(ee_schema *s, sch_node *node, sch_kw *kw, const char *path)
{
    (void)node;
    if (!json_is_string(kw->val))
        return bad(path, "expected a regular expression string", kw->val);
    if ((kw->res = calloc(1, sizeof *kw->res)) == NULL)
        return ee__error(EE_ENOMEM, "out of memory compiling a schema");
    kw->n = 1;
    return keep_regex(s, json_string_value(kw->val), json_string_length(kw->val), path,
                      &kw->res[0]);
}

static ee_status c_number(ee_schema *s, sch_node *node, sch_kw *kw, const char *path)
{
    (void)s, (void)node;
    return json_is_number(kw->val) ? EE_OK : bad(path, "expected a number", kw->val);
}

static ee_status c_multiple_of(ee_schema *s, sch_node *node, sch_kw *kw, const char *path)
{
    (void)s, (void)node;
    if (ee__schema_big_of(kw->val) != NULL) /* validated exactly, see ee__schema_big_multiple */
        return ee__schema_num_negative(kw->val)
                   ? bad(path, "expected a number greater than 0", kw->val)
                   : EE_OK;
    if (!json_is_number(kw->val) || json_number_value(kw->val) <= 0)
        return bad(path, "expected a number greater than 0", kw->val);
    kw->dec = ee__schema_dec_of(kw->val);
    return EE_OK;
}

static ee_status c_count(ee_schema *s, sch_node *node, sch_kw *kw, const char *path)
{
    (void)s, (void)node;
    const json_t *v = kw->val;
    if (ee__schema_big_of(v) != NULL) /* beyond int64, or not integral */
        return bad(path, "expected a non-negative integer", v);
    if (!ee__schema_is_integral(v) || json_number_value(v) < 0 ||
        json_number_value(v) >= 9.2e18)
        return bad(path, "expected a non-negative integer", v);
    kw->count = json_is_integer(v) ? (uint64_t)json_integer_value(v)
                                   : (uint64_t)json_real_value(v);
    return EE_OK;
}

static ee_status c_boolean(ee_schema *s, sch_node *node, sch_kw *kw, const char *path)
{
    (void)s, (void)node;
    return json_is_boolean(kw->val) ? EE_OK : bad(path, "expected a boolean", kw->val);
}

static ee_status c_any(ee_schema *s, sch_node *node, sch_kw *kw, const char *path)
{
    (void)s, (void)node, (void)kw, (void)path;
    return EE_OK;
}

static int by_hash_then_index(const void *a, const void *b)
{
    const uint64_t *x = a, *y = b;
    if (x[0] != y[0])
        return x[0] < y[0] ? -1 : 1;
    return x[1] < y[1] ? -1 : x[1] > y[1];
}

/* The members' hashes are sorted once, so that checking a value against a
 * wide enum is a binary search, not a comparison with every member. */
static ee_status c_enum(ee_schema *s, sch_node *node, sch_kw *kw, const char *path)
{
    (void)s, (void)node;
    if (!json_is_array(kw->val))
        return bad(path, "expected an array of values", kw->val);
    kw->n = json_array_size(kw->val);
    if ((kw->hashes = malloc((2 * kw->n + 1) * sizeof *kw->hashes)) == NULL)
        return ee__error(EE_ENOMEM, "out of memory compiling a schema");
    for (size_t i = 0; i < kw->n; i++) {
        kw->hashes[2 * i] = ee__schema_hash(json_array_get(kw->val, i), NULL);
        kw->hashes[2 * i + 1] = i;
    }
    qsort(kw->hashes, kw->n, 2 * sizeof *kw->hashes, by_hash_then_index);
    return EE_OK;
}

static bool is_string_array(const json_t *v)
{
    if (!json_is_array(v))
        return false;
    for (size_t i = 0; i < json_array_size(v); i++)
        if (!json_is_string(json_array_get(v, i)))
            return false;
    return true;
}

static ee_status c_required(ee_schema *s, sch_node *node, sch_kw *kw, const char *path)
{
    (void)s, (void)node;
    return is_string_array(kw->val) ? EE_OK
                                    : bad(path, "expected an array of property names", kw->val);
}

static ee_status c_dependent_required(ee_schema *s, sch_node *node, sch_kw *kw, const char *path)
{
    (void)node;
    if (!json_is_object(kw->val))
        return bad(path, "expected an object of property-name arrays", kw->val);
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)kw->val, key, v) {
        if (!is_string_array(v)) {
            const char *p = keep_path(s, path, key);
            return bad(p != NULL ? p : path, "expected an array of property names", v);
        }
    }
    return EE_OK;
}

/* "dependencies" (draft 7; draft 2020-12 split it into dependentRequired
 * and dependentSchemas): each member is an array of property names or a
 * schema. kw->subs[i] is the schema of member kw->keys[i], NULL for an
 * array (its names stay in kw->val). */
static ee_status c_dependencies(ee_schema *s, sch_node *node, sch_kw *kw, const char *path)
{
    (void)node;
    ee_status ast = kw_map_alloc(
        kw, path, "expected an object whose members are schemas or property-name arrays");
    if (ast != EE_OK)
        return ast;
    size_t i = 0;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)kw->val, key, v) {
        kw->keys[i] = key;
        if (json_is_array(v)) {
            if (!is_string_array(v)) {
                const char *p = keep_path(s, path, key);
                return bad(p != NULL ? p : path, "expected an array of property names", v);
            }
        } else {
            ee_status st = compile_sub(s, v, path, key, &kw->subs[i]);
            if (st != EE_OK)
                return st;
        }
        i++;
    }
    return EE_OK;
}

static const struct {
    const char *name;
    unsigned bit;
} type_names[] = {{"null", T_NULL},     {"boolean", T_BOOLEAN}, {"object", T_OBJECT},
                  {"array", T_ARRAY},   {"number", T_NUMBER},   {"string", T_STRING},
                  {"integer", T_INTEGER}};

static unsigned type_bit(const json_t *v)
{
    if (json_is_string(v))
        for (size_t i = 0; i < sizeof type_names / sizeof type_names[0]; i++)
            if (strcmp(json_string_value(v), type_names[i].name) == 0)
                return type_names[i].bit;
    return 0;
}

static ee_status c_type(ee_schema *s, sch_node *node, sch_kw *kw, const char *path)
{
    (void)s, (void)node;
    const char *what = "expected a type name (null, boolean, object, array, number, string, "
                       "integer) or a non-empty array of them";
    if (json_is_string(kw->val)) {
        kw->types = type_bit(kw->val);
    } else if (json_is_array(kw->val)) {
        for (size_t i = 0; i < json_array_size(kw->val); i++) {
            unsigned bit = type_bit(json_array_get(kw->val, i));
            if (bit == 0)
                return bad(path, what, json_array_get(kw->val, i));
            kw->types |= bit;
        }
    }
    return kw->types != 0 ? EE_OK : bad(path, what, kw->val);
}

/* "format": a string; kw->count is 1 + the asserted format's id, or 0
 * when the format stays an annotation (unknown, or assertion off). */
static ee_status c_format(ee_schema *s, sch_node *node, sch_kw *kw, const char *path)
{
    (void)node;
    if (!json_is_string(kw->val))
        return bad(path, "expected a string", kw->val);
    int id = cc_of(s)->format_assert ? ee__schema_format_id(json_string_value(kw->val)) : -1;
    kw->count = (uint64_t)(id + 1);
    return EE_OK;
}

static ee_status c_ref(ee_schema *s, sch_node *node, sch_kw *kw, const char *path)
{
    (void)node;
    if (!json_is_string(kw->val))
        return bad(path, kw->def->name[1] == 'd' ? "$dynamicRef must be a string"
                                                 : "$ref must be a string", kw->val);
    if (strlen(json_string_value(kw->val)) != json_string_length(kw->val))
        return ee__error(EE_EINVAL, "invalid schema at %s: %s holds a NUL character",
                         shown(path), kw->def->name);
    compiling *cc = cc_of(s);
    if (!grow((void **)&cc->refs, &cc->cap_refs, cc->nrefs + 1, sizeof *cc->refs))
        return ee__error(EE_ENOMEM, "out of memory compiling a schema");
    cc->refs[cc->nrefs++] = (pending_ref){kw, path, cc->cur_res};
    return EE_OK;
}

/* "$id": a URI reference without a fragment (an empty one is allowed);
 * the resource itself is made by compile_node(). */
static ee_status c_id(ee_schema *s, sch_node *node, sch_kw *kw, const char *path)
{
    (void)s, (void)node;
    if (!json_is_string(kw->val))
        return bad(path, "expected a string", kw->val);
    if (strlen(json_string_value(kw->val)) != json_string_length(kw->val))
        return ee__error(EE_EINVAL, "invalid schema at %s: $id holds a NUL character",
                         shown(path));
    const char *hash = strchr(json_string_value(kw->val), '#');
    if (hash != NULL && hash[1] != '\0') {
        char q[120];
        ee__quote_for_message(json_string_value(kw->val), q, sizeof q);
        return ee__error(EE_EINVAL,
                         "invalid schema at %s: $id \"%s\" has a fragment; an $id names a "
                         "resource (use $anchor to name a subschema)",
                         shown(path), q);
    }
    return EE_OK;
}

/* Whether `a` is a plain-name fragment as "$anchor" and "$dynamicAnchor"
 * take them: ^[A-Za-z_][-A-Za-z0-9._]*$ */
static bool anchor_name_ok(const char *a)
{
    if (!((*a >= 'A' && *a <= 'Z') || (*a >= 'a' && *a <= 'z') || *a == '_'))
        return false;
    for (a++; *a != '\0'; a++)
        if (!((*a >= 'A' && *a <= 'Z') || (*a >= 'a' && *a <= 'z') || (*a >= '0' && *a <= '9') ||
              *a == '_' || *a == '-' || *a == '.'))
            return false;
    return true;
}

/* "$anchor" and "$dynamicAnchor": a plain name, recorded in the resource
 * being compiled. Subschemas compiled only as $ref targets (outside the
 * places keywords define) record none: they are not identifiers there, as
 * inside an unknown keyword. */
static ee_status c_anchor(ee_schema *s, sch_node *node, sch_kw *kw, const char *path)
{
    if (!json_is_string(kw->val))
        return bad(path, "expected a string", kw->val);
    const char *name = json_string_value(kw->val);
    if (!anchor_name_ok(name) || strlen(name) != json_string_length(kw->val)) {
        char q[120];
        ee__quote_for_message(name, q, sizeof q);
        return ee__error(EE_EINVAL,
                         "invalid schema at %s: \"%s\" is not an anchor name (a letter or "
                         "'_', then letters, digits, '-', '_' or '.')",
                         shown(path), q);
    }
    compiling *cc = cc_of(s);
    if (cc->structural || cc->resolving)
        return EE_OK;
    if (!grow((void **)&cc->anchors, &cc->cap_anchors, cc->nanchors + 1, sizeof *cc->anchors))
        return ee__error(EE_ENOMEM, "out of memory compiling a schema");
    cc->anchors[cc->nanchors++] =
        (anchor_def){cc->cur_res, name, node, strcmp(kw->def->name, "$dynamicAnchor") == 0};
    return EE_OK;
}

static ee_status c_string(ee_schema *s, sch_node *node, sch_kw *kw, const char *path)
{
    (void)s, (void)node;
    return json_is_string(kw->val) ? EE_OK : bad(path, "expected a string", kw->val);
}

static ee_status c_array(ee_schema *s, sch_node *node, sch_kw *kw, const char *path)
{
    (void)s, (void)node;
    return json_is_array(kw->val) ? EE_OK : bad(path, "expected an array", kw->val);
}

static ee_status c_object(ee_schema *s, sch_node *node, sch_kw *kw, const char *path)
{
    (void)s, (void)node;
    return json_is_object(kw->val) ? EE_OK : bad(path, "expected an object", kw->val);
}

static ee_status c_unsupported(ee_schema *s, sch_node *node, sch_kw *kw, const char *path)
{
    (void)node;
    if (!json_is_string(kw->val))
        return bad(path, "expected a string", kw->val);
    if (cc_of(s)->structural)
        return EE_OK;
    return ee__error(EE_ENOTSUPPORTED,
                     "unsupported schema at %s: %s (draft 2019-09) is not supported; draft "
                     "2020-12 has $dynamicRef and $dynamicAnchor",
                     shown(path), kw->def->name);
}

/* Keywords in evaluation order. unevaluatedItems / unevaluatedProperties
 * come last: they read what every other keyword evaluated. Keywords not
 * listed are ignored, as the specification requires of unknown ones. */
#define V(name) ee__schema_v_##name
static const sch_kwdef table[] = {
    {"$ref", c_ref, V(ref)},
    {"$dynamicRef", c_ref, V(dynamicRef)},
    {"type", c_type, V(type)},
    {"enum", c_enum, V(enum)},
    {"const", c_any, V(const)},
    {"multipleOf", c_multiple_of, V(multipleOf)},
    {"maximum", c_number, V(maximum)},
    {"exclusiveMaximum", c_number, V(exclusiveMaximum)},
    {"minimum", c_number, V(minimum)},
    {"exclusiveMinimum", c_number, V(exclusiveMinimum)},
    {"maxLength", c_count, V(maxLength)},
    {"minLength", c_count, V(minLength)},
    {"pattern", c_pattern, V(pattern)},
    {"maxItems", c_count, V(maxItems)},
    {"minItems", c_count, V(minItems)},
    {"uniqueItems", c_boolean, V(uniqueItems)},
    {"maxContains", c_count, NULL},
    {"minContains", c_count, NULL},
    {"maxProperties", c_count, V(maxProperties)},
    {"minProperties", c_count, V(minProperties)},
    {"required", c_required, V(required)},
    {"dependentRequired", c_dependent_required, V(dependentRequired)},
    {"allOf", c_schema_array, V(allOf)},
    {"anyOf", c_schema_array, V(anyOf)},
    {"oneOf", c_schema_array, V(oneOf)},
    {"not", c_schema, V(not)},
    {"if", c_schema, V(if)},
    {"then", c_schema, NULL},
    {"else", c_schema, NULL},
    {"dependentSchemas", c_schema_map, V(dependentSchemas)},
    {"dependencies", c_dependencies, V(dependencies)},
    {"properties", c_schema_map, V(properties)},
    {"patternProperties", c_pattern_map, V(patternProperties)},
    {"additionalProperties", c_schema, V(additionalProperties)},
    {"propertyNames", c_schema, V(propertyNames)},
    {"prefixItems", c_schema_array, V(prefixItems)},
    {"items", c_schema, V(items)},
    {"contains", c_schema, V(contains)},
    {"$defs", c_schema_map, NULL},
    {"$recursiveRef", c_unsupported, NULL},
    {"contentSchema", c_schema, NULL},
    /* annotations and identifiers: only their types are checked */
    {"$id", c_id, NULL},
    {"$schema", c_string, NULL},
    {"$anchor", c_anchor, NULL},
    {"$dynamicAnchor", c_anchor, NULL},
    {"$comment", c_string, NULL},
    {"$vocabulary", c_object, NULL},
    {"title", c_string, NULL},
    {"description", c_string, NULL},
    {"format", c_format, V(format)},
    {"contentEncoding", c_string, NULL},
    {"contentMediaType", c_string, NULL},
    {"deprecated", c_boolean, NULL},
    {"readOnly", c_boolean, NULL},
    {"writeOnly", c_boolean, NULL},
    {"examples", c_array, NULL},
    {"unevaluatedItems", c_schema, V(unevaluatedItems)},
    {"unevaluatedProperties", c_schema, V(unevaluatedProperties)},
};
#undef V
#define NKW (sizeof table / sizeof table[0])

const sch_kwdef *ee__schema_kwdef(const char *name)
{
    for (size_t i = 0; i < NKW; i++)
        if (strcmp(table[i].name, name) == 0)
            return &table[i];
    return NULL;
}

static const sch_kw *find_kw(const sch_node *n, const char *name)
{
    for (size_t i = 0; i < n->nkws; i++)
        if (strcmp(n->kws[i].def->name, name) == 0)
            return &n->kws[i];
    return NULL;
}

/* Wire up what keywords read from their siblings. */
static void link_siblings(sch_node *n)
{
    n->properties = find_kw(n, "properties");
    n->pattern_properties = find_kw(n, "patternProperties");
    n->prefix_items = find_kw(n, "prefixItems");
    n->items = find_kw(n, "items");
    n->contains = find_kw(n, "contains");
    const sch_kw *k;
    if ((k = find_kw(n, "minContains")) != NULL)
        n->has_min_contains = true, n->min_contains = k->count;
    if ((k = find_kw(n, "maxContains")) != NULL)
        n->has_max_contains = true, n->max_contains = k->count;
    n->wants_annotations = find_kw(n, "unevaluatedItems") != NULL ||
                           find_kw(n, "unevaluatedProperties") != NULL;
    sch_kw *if_kw = (sch_kw *)find_kw(n, "if");
    if (if_kw != NULL) {
        const sch_kw *t = find_kw(n, "then"), *e = find_kw(n, "else");
        if_kw->then_node = t != NULL ? t->sub : NULL;
        if_kw->else_node = e != NULL ? e->sub : NULL;
    }
    for (size_t i = 0; i < n->nkws; i++)
        n->constrains |= n->kws[i].def->validate != NULL;
}

static ee_status new_node(ee_schema *s, const json_t *json, const char *path, sch_node **out)
{
    sch_node *n = calloc(1, sizeof *n);
    if (n == NULL ||
        !grow((void **)&s->nodes, &s->cap_nodes, s->nnodes + 1, sizeof *s->nodes) ||
        !map_put(cc_of(s), json, n)) {
        free(n);
        return ee__error(EE_ENOMEM, "out of memory compiling a schema");
    }
    n->boolean = -1;
    n->json = json;
    n->path = path;
    n->idx = s->nnodes;
    s->nodes[s->nnodes++] = n;
    *out = n;
    return EE_OK;
}

/* Every $ref resolved against a resource copies its URI: bounded, so that
 * compiling stays linear in the schema's size. */
static ee_status uri_length_ok(const char *uri, const char *path)
{
    size_t n = strlen(uri);
    if (n <= EE__SCHEMA_MAX_URI)
        return EE_OK;
    return ee__error(EE_ETOOBIG,
                     "schema at %s: its $id resolves to a URI of %zu bytes, more than the %d "
                     "allowed",
                     shown(path), n, EE__SCHEMA_MAX_URI);
}

/* A subschema with an "$id" (not the root's, made by compile_all()): a
 * new resource whose URI is the $id resolved against the enclosing one's,
 * and the resource of what is compiled inside it. */
static ee_status add_resource(ee_schema *s, const json_t *json, const char *id, const char *path)
{
    compiling *cc = cc_of(s);
    if (cc->resolving)
        return ee__error(EE_ENOTSUPPORTED,
                         "unsupported schema at %s: $id in a subschema reached only through a "
                         "JSON pointer (outside the keywords that hold subschemas) is not "
                         "supported",
                         shown(path));
    char *uri = NULL, *frag = NULL;
    ee_status st = ee__schema_uri_resolve(s->res[cc->cur_res].uri, id, &uri, &frag);
    free(frag); /* c_id refuses a non-empty one */
    if (st == EE_OK)
        st = uri_length_ok(uri, path);
    if (st != EE_OK) {
        free(uri);
        return st;
    }
    if (!grow((void **)&s->res, &s->cap_res, s->nres + 1, sizeof *s->res)) {
        free(uri);
        return ee__error(EE_ENOMEM, "out of memory compiling a schema");
    }
    s->res[s->nres] = (sch_res){uri, json};
    cc->cur_res = s->nres++;
    return EE_OK;
}

static ee_status compile_node(ee_schema *s, const json_t *json, const char *path, sch_node **out)
{
    if (json_is_true(json) || json_is_false(json)) {
        *out = json_is_true(json) ? &ee__schema_true_node : &ee__schema_false_node;
        return EE_OK;
    }
    if (!json_is_object(json))
        return bad(path, "a schema must be an object or a boolean", json);
    compiling *cc = cc_of(s);
    if ((*out = map_get(cc, json)) != NULL)
        return EE_OK;
    size_t outer_res = cc->cur_res;
    const json_t *id = json_object_get(json, "$id");
    ee_status st;
    if (json != s->doc && json_is_string(id) && !cc->structural &&
        (st = add_resource(s, json, json_string_value(id), path)) != EE_OK)
        return st;
    sch_node *n = NULL;
    if ((st = new_node(s, json, path, &n)) != EE_OK)
        return st;
    n->res = cc->cur_res;
    size_t count = 0;
    for (size_t i = 0; i < NKW; i++)
        count += json_object_get(json, table[i].name) != NULL;
    if (count > 0 && (n->kws = calloc(count, sizeof *n->kws)) == NULL)
        return ee__error(EE_ENOMEM, "out of memory compiling a schema");
    for (size_t i = 0; i < NKW; i++) {
        const json_t *v = json_object_get(json, table[i].name);
        if (v == NULL)
            continue;
        sch_kw *kw = &n->kws[n->nkws++];
        kw->def = &table[i];
        kw->val = v;
        const char *kpath = keep_path(s, path, table[i].name);
        if (kpath == NULL)
            return ee__error(EE_ENOMEM, "out of memory compiling a schema");
        if ((st = table[i].compile(s, n, kw, kpath)) != EE_OK)
            return st;
    }
    link_siblings(n);
    cc->cur_res = outer_res;
    *out = n;
    return EE_OK;
}

/* ---- $ref resolution --------------------------------------------------------- */

/* Percent-decode a URI fragment in place; false on a malformed escape. */
static bool percent_decode(char *s)
{
    char *w = s;
    for (const char *r = s; *r != '\0'; r++) {
        if (*r != '%') {
            *w++ = *r;
            continue;
        }
        int hi = ee__hex_digit(r[1]), lo = hi >= 0 ? ee__hex_digit(r[2]) : -1;
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
            return false;
        *w++ = (char)(hi * 16 + lo);
        r += 2;
    }
    *w = '\0';
    return true;
}

/* Unescape one JSON-pointer token in place (~1 -> /, ~0 -> ~). */
static bool pointer_unescape(char *t)
{
    char *w = t;
    for (const char *r = t; *r != '\0'; r++) {
        if (*r == '~') {
            if (r[1] != '0' && r[1] != '1')
                return false;
            *w++ = r[1] == '0' ? '~' : '/';
            r++;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
    return true;
}

static const json_t *pointer_step(const json_t *cur, const char *tok)
{
    if (json_is_object(cur))
        return json_object_get(cur, tok);
    if (!json_is_array(cur) || tok[0] == '\0' || (tok[0] == '0' && tok[1] != '\0'))
        return NULL;
    size_t idx = 0;
    for (const char *p = tok; *p != '\0'; p++) {
        if (*p < '0' || *p > '9' || idx > SIZE_MAX / 10 - 1)
            return NULL;
        idx = idx * 10 + (size_t)(*p - '0');
    }
    return json_array_get(cur, idx);
}

/* Follow the fragment `frag` ("" or "/a/b", percent-decoded) from root;
 * NULL when it points at nothing. Tokens are unescaped in place. *res is
 * set to the resource of the last compiled subschema passed on the way
 * (root's included): the base URI of a target compiled on demand. */
static const json_t *resolve_pointer(const compiling *cc, const json_t *root, char *frag,
                                     bool *malformed, size_t *res)
{
    *malformed = false;
    if (*frag == '\0')
        return root;
    if (*frag != '/') {
        *malformed = true;
        return NULL;
    }
    const json_t *cur = root;
    for (char *p = frag + 1;;) {
        char *end = strchr(p, '/');
        if (end != NULL)
            *end = '\0';
        if (!pointer_unescape(p)) {
            *malformed = true;
            return NULL;
        }
        if ((cur = pointer_step(cur, p)) == NULL)
            return NULL;
        const sch_node *passed = json_is_object(cur) ? map_get(cc, cur) : NULL;
        if (passed != NULL)
            *res = passed->res;
        if (end == NULL)
            return cur;
        p = end + 1;
    }
}

/* ---- resources and anchors, indexed once the tree is built ----------------- */

typedef struct {
    const char *uri;
    size_t idx;
} res_key;

static int by_uri(const void *a, const void *b)
{
    return strcmp(((const res_key *)a)->uri, ((const res_key *)b)->uri);
}

static int by_res_then_name(const void *a, const void *b)
{
    const anchor_def *x = a, *y = b;
    if (x->res != y->res)
        return x->res < y->res ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int by_name_then_res(const void *a, const void *b)
{
    const anchor_def *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c != 0)
        return c;
    return x->res < y->res ? -1 : x->res > y->res;
}

static const char *res_path(ee_schema *s, size_t r)
{
    const sch_node *n = map_get(cc_of(s), s->res[r].json);
    return n != NULL ? n->path : "";
}

static ee_status oom_compiling(void)
{
    return ee__error(EE_ENOMEM, "out of memory compiling a schema");
}

/* Sort the resources by URI and the anchors by (resource, name), refusing
 * duplicates, and group the "$dynamicAnchor"s by name. */
static ee_status index_resources(ee_schema *s)
{
    compiling *cc = cc_of(s);
    res_key *keys = malloc(s->nres * sizeof *keys);
    if (keys == NULL)
        return oom_compiling();
    for (size_t i = 0; i < s->nres; i++)
        keys[i] = (res_key){s->res[i].uri, i};
    qsort(keys, s->nres, sizeof *keys, by_uri);
    cc->res_by_uri = keys;
    for (size_t i = 1; i < s->nres; i++) {
        if (strcmp(keys[i - 1].uri, keys[i].uri) != 0)
            continue;
        size_t a = keys[i - 1].idx < keys[i].idx ? keys[i - 1].idx : keys[i].idx;
        size_t b = keys[i - 1].idx ^ keys[i].idx ^ a;
        char q[120];
        ee__quote_for_message(keys[i].uri, q, sizeof q);
        return ee__error(EE_EINVAL,
                         "invalid schema at %s: $id names the resource \"%s\", which the "
                         "schema at %s names already",
                         shown(res_path(s, b)), q, shown(res_path(s, a)));
    }
    if (cc->nanchors == 0)
        return EE_OK;
    qsort(cc->anchors, cc->nanchors, sizeof *cc->anchors, by_res_then_name);
    size_t w = 0, ndyn = 0;
    for (size_t i = 0; i < cc->nanchors; i++) {
        anchor_def *prev = w > 0 ? &cc->anchors[w - 1] : NULL;
        if (prev != NULL && by_res_then_name(prev, &cc->anchors[i]) == 0) {
            if (prev->node != cc->anchors[i].node) {
                char q[120];
                ee__quote_for_message(prev->name, q, sizeof q);
                return ee__error(EE_EINVAL,
                                 "invalid schema at %s: the anchor \"%s\" is declared twice in "
                                 "one schema resource (also at %s)",
                                 shown(cc->anchors[i].node->path), q, shown(prev->node->path));
            }
            /* "$anchor" and "$dynamicAnchor" of one name on one subschema */
            ndyn += cc->anchors[i].dynamic && !prev->dynamic;
            prev->dynamic |= cc->anchors[i].dynamic;
            continue;
        }
        ndyn += cc->anchors[i].dynamic;
        cc->anchors[w++] = cc->anchors[i];
    }
    cc->nanchors = w;
    if (ndyn == 0)
        return EE_OK;
    anchor_def *dyn = malloc(ndyn * sizeof *dyn);
    if (dyn == NULL)
        return oom_compiling();
    size_t k = 0;
    for (size_t i = 0; i < cc->nanchors; i++)
        if (cc->anchors[i].dynamic)
            dyn[k++] = cc->anchors[i];
    qsort(dyn, ndyn, sizeof *dyn, by_name_then_res);
    ee_status st = EE_OK;
    if ((s->dyn = calloc(ndyn, sizeof *s->dyn)) == NULL)
        st = oom_compiling();
    for (size_t i = 0; st == EE_OK && i < ndyn;) {
        size_t j = i;
        while (j < ndyn && strcmp(dyn[j].name, dyn[i].name) == 0)
            j++;
        sch_dyn_group *g = &s->dyn[s->ndyn++];
        g->name = dyn[i].name;
        if ((g->nodes = malloc((j - i) * sizeof *g->nodes)) == NULL) {
            st = oom_compiling();
            break;
        }
        for (size_t m = i; m < j; m++)
            g->nodes[g->n++] = dyn[m].node;
        i = j;
    }
    free(dyn);
    return st;
}

static size_t find_resource(const ee_schema *s, const compiling *cc, const char *uri)
{
    res_key key = {uri, 0};
    const res_key *hit = bsearch(&key, cc->res_by_uri, s->nres, sizeof key, by_uri);
    return hit != NULL ? hit->idx : SIZE_MAX;
}

static const anchor_def *find_anchor(const compiling *cc, size_t res, const char *name)
{
    anchor_def key = {.res = res, .name = name};
    if (cc->nanchors == 0)
        return NULL;
    return bsearch(&key, cc->anchors, cc->nanchors, sizeof key, by_res_then_name);
}

static size_t find_dyn_group(const ee_schema *s, const char *name)
{
    for (size_t lo = 0, hi = s->ndyn; lo < hi;) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(s->dyn[mid].name, name);
        if (c == 0)
            return mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return SIZE_MAX;
}

/* A path kept for the schema's lifetime: a + b. */
static const char *keep_concat(ee_schema *s, const char *a, const char *b)
{
    size_t al = strlen(a), bl = strlen(b);
    char *p = malloc(al + bl + 1);
    if (p == NULL || !grow((void **)&s->strings, &s->cap_strings, s->nstrings + 1, sizeof(char *))) {
        free(p);
        return NULL;
    }
    memcpy(p, a, al);
    memcpy(p + al, b, bl + 1);
    s->strings[s->nstrings++] = p;
    return p;
}

/* The target of an empty or JSON-pointer fragment in resource r: `frag`
 * is decoded in place, `raw` is the same fragment as written in the
 * schema (for the path of a target compiled on demand). */
static ee_status resolve_in_resource(ee_schema *s, sch_kw *kw, const char *path, size_t r,
                                     char *frag, const char *raw, const char *q)
{
    compiling *cc = cc_of(s);
    bool malformed = !percent_decode(frag);
    size_t tres = r;
    const json_t *target =
        malformed ? NULL : resolve_pointer(cc, s->res[r].json, frag, &malformed, &tres);
    if (malformed)
        return ee__error(EE_EINVAL, "invalid schema at %s: %s \"%s\" is not a valid JSON pointer",
                         shown(path), kw->def->name, q);
    if (target == NULL)
        return ee__error(EE_EINVAL, "invalid schema at %s: %s \"%s\" points at nothing",
                         shown(path), kw->def->name, q);
    if (json_is_object(target) && (kw->sub = map_get(cc, target)) != NULL)
        return EE_OK;
    /* outside the subschemas keywords define: compiled now, in the
     * resource of the last subschema the pointer passed */
    const char *rp = res_path(s, r);
    const char *tpath = rp[0] == '\0' ? raw : keep_concat(s, rp, raw);
    if (tpath == NULL)
        return oom_compiling();
    size_t saved = cc->cur_res;
    cc->cur_res = tres;
    ee_status st = compile_node(s, target, tpath, &kw->sub);
    cc->cur_res = saved;
    return st;
}

static ee_status resolve_ref(ee_schema *s, const pending_ref *p)
{
    sch_kw *kw = p->kw;
    const char *path = p->path, *ref = json_string_value(kw->val);
    bool dynamic = kw->def->validate == ee__schema_v_dynamicRef;
    compiling *cc = cc_of(s);
    char q[120];
    ee__quote_for_message(ref, q, sizeof q);
    const char *hash = strchr(ref, '#');
    const char *raw = hash != NULL ? hash + 1 : "";
    char *uri = NULL, *frag = NULL;
    size_t r = p->res;
    ee_status st = EE_OK;
    if (ref[0] == '#') { /* the common case: this resource, no URI to resolve */
        if ((frag = strdup(ref + 1)) == NULL)
            return oom_compiling();
    } else {
        if ((st = ee__schema_uri_resolve(s->res[p->res].uri, ref, &uri, &frag)) != EE_OK)
            return st;
        r = find_resource(s, cc, uri);
    }
    if (r == SIZE_MAX && strcmp(uri, meta_uri) == 0 && (frag == NULL || frag[0] == '\0')) {
        kw->sub = &ee__schema_meta_node;
    } else if (r == SIZE_MAX) {
        /* the resolved URI, unless it is only relative to default_base */
        char u[160] = "", shown_uri[180] = "";
        if (strncmp(uri, default_base, strlen("ee-schema:")) != 0) {
            ee__quote_for_message(uri, u, sizeof u);
            snprintf(shown_uri, sizeof shown_uri, " (\"%s\")", u);
        }
        st = ee__error(EE_ENOTSUPPORTED,
                       "unsupported schema at %s: %s \"%s\" names another document%s; only "
                       "this document's own resources (its root, subschemas with an $id) and "
                       "the draft 2020-12 meta-schema can be referenced",
                       shown(path), kw->def->name, q, shown_uri);
    } else if (frag == NULL || frag[0] == '\0' || frag[0] == '/') {
        char empty[1] = "";
        st = resolve_in_resource(s, kw, path, r, frag != NULL ? frag : empty, raw, q);
    } else {
        const anchor_def *a = percent_decode(frag) ? find_anchor(cc, r, frag) : NULL;
        if (a == NULL) {
            st = ee__error(EE_EINVAL,
                           "invalid schema at %s: %s \"%s\" names an anchor that no subschema "
                           "of its resource declares",
                           shown(path), kw->def->name, q);
        } else {
            kw->sub = a->node;
            /* bookended: the target declares the same "$dynamicAnchor" */
            if (dynamic && a->dynamic) {
                kw->count = find_dyn_group(s, a->name) + 1;
                s->dynamic = true;
            }
        }
    }
    free(uri);
    free(frag);
    return st;
}

/* ---- refusing $ref cycles that never consume the instance ------------------- */

/* The graph of subschemas applied to the same instance: a vertex per
 * node (its idx) and one per sch_dyn_group (nnodes + its index), since a
 * bookended $dynamicRef may land on any node of its group, depending on
 * the dynamic scope. A group's edges stand for all of those at once, so
 * the graph stays linear in the schema's size. Next successor of v, or
 * SIZE_MAX. */
static size_t in_place_next(const ee_schema *s, size_t v, size_t *kwi, size_t *j)
{
    static const char *const in_place[] = {"$ref", "$dynamicRef", "allOf", "anyOf", "oneOf",
                                           "not", "if", "then", "else", "dependentSchemas",
                                           "dependencies"};
    if (v >= s->nnodes) {
        const sch_dyn_group *g = &s->dyn[v - s->nnodes];
        return *j < g->n ? g->nodes[(*j)++]->idx : SIZE_MAX;
    }
    const sch_node *n = s->nodes[v];
    for (; *kwi < n->nkws; (*kwi)++, *j = 0) {
        const sch_kw *kw = &n->kws[*kwi];
        bool applies = false;
        for (size_t k = 0; k < sizeof in_place / sizeof in_place[0]; k++)
            applies |= strcmp(kw->def->name, in_place[k]) == 0;
        if (!applies)
            continue;
        size_t total = kw->subs != NULL ? kw->n : 1;
        size_t group = kw->def->validate == ee__schema_v_dynamicRef && kw->count > 0;
        while (*j < total + group) {
            size_t k = (*j)++;
            if (k == total)
                return s->nnodes + (size_t)kw->count - 1;
            const sch_node *c = kw->subs != NULL ? kw->subs[k] : kw->sub;
            if (c != NULL && c->boolean < 0)
                return c->idx;
        }
    }
    return SIZE_MAX;
}

typedef struct {
    size_t v, kwi, j;
} dfs_frame;

static const char *vertex_path(const ee_schema *s, size_t v)
{
    return v < s->nnodes ? s->nodes[v]->path : "";
}

static ee_status cycle_error(const ee_schema *s, const dfs_frame *st, size_t top, size_t c)
{
    /* the cycle is the stack from c up; through a group it is a
     * $dynamicRef's possible target, which the scope may or may not pick */
    size_t from = top;
    while (from > 0 && st[from - 1].v != c)
        from--;
    const char *group = NULL;
    for (size_t k = from > 0 ? from - 1 : 0; k < top; k++)
        if (st[k].v >= s->nnodes)
            group = s->dyn[st[k].v - s->nnodes].name;
    size_t at = c < s->nnodes ? c : st[from].v, via = st[top - 1].v;
    if (via >= s->nnodes)
        via = st[top - 2].v;
    if (group == NULL)
        return ee__error(EE_EINVAL,
                         "invalid schema at %s: $ref cycle through %s never reaches a member of "
                         "the instance (it would recurse forever)",
                         shown(vertex_path(s, at)), shown(vertex_path(s, via)));
    char q[96];
    ee__quote_for_message(group, q, sizeof q);
    return ee__error(EE_EINVAL,
                     "invalid schema at %s: $dynamicRef cycle through %s (the $dynamicAnchor "
                     "\"%s\") can come back without reaching a member of the instance (it "
                     "could recurse forever)",
                     shown(vertex_path(s, at)), shown(vertex_path(s, via)), q);
}

static ee_status check_cycles(ee_schema *s)
{
    size_t nv = s->nnodes + s->ndyn;
    unsigned char *color = calloc(nv + 1, 1); /* 0 new, 1 on stack, 2 done */
    dfs_frame *st = calloc(nv + 1, sizeof *st);
    ee_status rc = EE_OK;
    if (color == NULL || st == NULL)
        rc = oom_compiling();
    for (size_t r = 0; rc == EE_OK && r < nv; r++) {
        if (color[r] != 0)
            continue;
        size_t top = 0;
        st[top++] = (dfs_frame){r, 0, 0};
        color[r] = 1;
        while (top > 0 && rc == EE_OK) {
            dfs_frame *f = &st[top - 1];
            size_t c = in_place_next(s, f->v, &f->kwi, &f->j);
            if (c == SIZE_MAX) {
                color[f->v] = 2;
                top--;
            } else if (color[c] == 1) {
                rc = cycle_error(s, st, top, c);
            } else if (color[c] == 0) {
                color[c] = 1;
                st[top++] = (dfs_frame){c, 0, 0};
            }
        }
    }
    free(color);
    free(st);
    return rc;
}

/* ---- lifecycle ------------------------------------------------------------------ */

static compiling *cc_of(ee_schema *s)
{
    return s->compiling;
}

static void free_node(sch_node *n)
{
    for (size_t i = 0; i < n->nkws; i++) {
        free(n->kws[i].subs);
        free(n->kws[i].keys);
        free(n->kws[i].res);
        free(n->kws[i].hashes);
    }
    free(n->kws);
    free(n);
}

void ee_schema_free(ee_schema *schema)
{
    if (schema == NULL)
        return;
    for (size_t i = 0; i < schema->nnodes; i++)
        free_node(schema->nodes[i]);
    for (size_t i = 0; i < schema->nregexes; i++)
        ee__schema_regex_free(schema->regexes[i]);
    for (size_t i = 0; i < schema->nstrings; i++)
        free(schema->strings[i]);
    for (size_t i = 0; i < schema->nres; i++)
        free(schema->res[i].uri);
    for (size_t i = 0; i < schema->ndyn; i++)
        free(schema->dyn[i].nodes);
    free(schema->nodes);
    free(schema->regexes);
    free(schema->strings);
    free(schema->res);
    free(schema->dyn);
    json_decref(schema->doc);
    ee__schema_bigs_free(schema->bigs);
    free(schema);
}

static ee_status compile_all(ee_schema *s)
{
    compiling *cc = cc_of(s);
    if (cc->structural) /* keyword values only: no resources, nothing resolved */
        return compile_node(s, s->doc, "", &s->root);
    /* the root resource: its "$id" resolved against the default base */
    const json_t *id = json_is_object(s->doc) ? json_object_get(s->doc, "$id") : NULL;
    char *uri = NULL, *frag = NULL;
    ee_status st = ee__schema_uri_resolve(default_base, json_is_string(id) ? json_string_value(id) : "",
                                          &uri, &frag);
    free(frag);
    if (st == EE_OK)
        st = uri_length_ok(uri, "");
    if (st != EE_OK) {
        free(uri);
        return st;
    }
    if (!grow((void **)&s->res, &s->cap_res, 1, sizeof *s->res)) {
        free(uri);
        return oom_compiling();
    }
    s->res[s->nres++] = (sch_res){uri, s->doc};
    if ((st = compile_node(s, s->doc, "", &s->root)) != EE_OK ||
        (st = index_resources(s)) != EE_OK)
        return st;
    /* Targets compiled on demand may add $refs: the loop sees them too. */
    cc->resolving = true;
    for (size_t i = 0; st == EE_OK && i < cc->nrefs; i++)
        st = resolve_ref(s, &cc->refs[i]);
    return st == EE_OK ? check_cycles(s) : st;
}

#define VOCAB "https://json-schema.org/draft/2020-12/vocab/"

/* Whether "format" asserts: on unless the caller turned it off, or the
 * root's "$vocabulary" lists the format-annotation vocabulary without the
 * format-assertion one (draft 2020-12 section 7.2.1). */
static bool format_asserts(const json_t *schema, unsigned flags)
{
    if (flags & EE__SCHEMA_FORMAT_ANNOTATE)
        return false;
    const json_t *vocab = json_is_object(schema) ? json_object_get(schema, "$vocabulary") : NULL;
    if (!json_is_object(vocab))
        return true;
    return json_object_get(vocab, VOCAB "format-assertion") != NULL ||
           json_object_get(vocab, VOCAB "format-annotation") == NULL;
}

static ee_status compile(ee_schema **out, const json_t *schema, bool structural, unsigned flags,
                         ee__schema_bigs *bigs)
{
    if (out == NULL || schema == NULL) {
        ee__schema_bigs_free(bigs);
        return ee__error(EE_EINVAL, "ee_schema_compile: out and schema must not be NULL");
    }
    *out = NULL;
    size_t depth, values, bytes;
    ee__schema_measure(schema, EE_SCHEMA_MAX_SCHEMA_DEPTH, EE_SCHEMA_MAX_TEXT, &depth, &values, &bytes);
    if (depth > EE_SCHEMA_MAX_SCHEMA_DEPTH || bytes > EE_SCHEMA_MAX_TEXT)
        ee__schema_bigs_free(bigs);
    if (depth > EE_SCHEMA_MAX_SCHEMA_DEPTH)
        return ee__error(EE_ETOOBIG, "schema nests deeper than %d levels",
                         EE_SCHEMA_MAX_SCHEMA_DEPTH);
    if (bytes > EE_SCHEMA_MAX_TEXT)
        return ee__error(EE_ETOOBIG, "schema is larger than %d bytes", EE_SCHEMA_MAX_TEXT);
    ee_schema *s = calloc(1, sizeof *s);
    compiling cc = {.structural = structural, .format_assert = format_asserts(schema, flags)};
    if (s == NULL || (s->doc = json_deep_copy(schema)) == NULL) {
        free(s);
        ee__schema_bigs_free(bigs);
        return ee__error(EE_ENOMEM, "out of memory compiling a schema");
    }
    /* the copy's numbers, in the same order, stand for the same big ones */
    s->bigs = bigs;
    ee_status st = ee__schema_bigs_key(s->bigs, s->doc);
    if (st != EE_OK) {
        ee_schema_free(s);
        return st;
    }
    const ee__schema_bigs *saved[2];
    ee__schema_bigs_enter(s->bigs, NULL, saved);
    s->compiling = &cc;
    st = compile_all(s);
    s->compiling = NULL;
    ee__schema_bigs_leave(saved);
    free(cc.keys), free(cc.vals), free(cc.refs), free(cc.anchors), free(cc.res_by_uri);
    if (st != EE_OK) {
        ee_schema_free(s);
        return st;
    }
    *out = s;
    return EE_OK;
}

ee_status ee__schema_compile(ee_schema **out, const json_t *schema)
{
    return compile(out, schema, false, 0, NULL);
}

ee_status ee__schema_compile_flags(ee_schema **out, const json_t *schema, unsigned flags)
{
    return compile(out, schema, false, flags, NULL);
}

ee_status ee__schema_compile_bigs(ee_schema **out, const json_t *schema, unsigned flags,
                                  ee__schema_bigs *bigs)
{
    return compile(out, schema, false, flags, bigs);
}

ee_status ee__schema_check(const json_t *schema)
{
    ee_schema *s = NULL;
    ee_status st = compile(&s, schema, true, EE__SCHEMA_FORMAT_ANNOTATE, NULL);
    ee_schema_free(s);
    return st;
}

bool ee__schema_accepts_all(const ee_schema *schema)
{
    const sch_node *r = schema->root;
    return r->boolean == 1 || (r->boolean < 0 && !r->constrains);
}
