/*
 * Evaluating a compiled schema against an instance.
 *
 * ee__schema_eval() walks a node's keywords in table order and calls each
 * keyword's validator. Violations go to c->errors with the instance and
 * schema paths of the moment; inside subschemas whose failure is not itself
 * a violation (anyOf, oneOf, not, if, contains, propertyNames) c->errors is
 * NULL: nothing is reported, paths are not maintained, and evaluation stops
 * at the first failure. Annotations for unevaluatedProperties/Items are
 * only gathered under a node that has one of them.
 *
 * Bounds: nested evaluations (EE__SCHEMA_MAX_FRAMES) and total work (one
 * budget per validation, EE__SCHEMA_WORK_BUDGET, that subschema
 * evaluations, value comparisons, string scans and PCRE2 match work all
 * draw from) end with EE_ETOOBIG rather than exhausting the stack or the
 * CPU.
 *
 * Dynamic scope: when the schema has a bookended $dynamicRef, the
 * evaluation keeps the stack of schema resources it is inside (a resource
 * is pushed when a node of another resource is entered, popped when that
 * node is left), at most one per nested evaluation. A $dynamicRef then
 * takes the "$dynamicAnchor" of its name in the outermost resource of
 * that stack that declares one, and falls back to its static target.
 */
#include "schema/schema_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *p;
    size_t len, cap;
} sbuf;

struct sch_vctx {
    json_t *errors; /* NULL: silent */
    size_t nerrors;
    bool truncated;
    ee_status status; /* first fatal failure (ETOOBIG, ENOMEM) */
    sbuf ipath, spath;
    size_t frames;
    uint64_t work; /* units spent of EE__SCHEMA_WORK_BUDGET */
    ee__schema_matcher *matcher;
    const ee_schema *schema;
    bool dynamic;   /* track the dynamic scope (schema->dynamic) */
    size_t *scope;  /* resources entered, outermost first (dynamic only) */
    size_t nscope;
};

#define V(name)                                                                               \
    bool ee__schema_v_##name(sch_vctx *c, const sch_node *node, const sch_kw *kw,             \
                             const json_t *inst, sch_ann *ann)
#define UNUSED_ARGS (void)c, (void)node, (void)kw, (void)inst, (void)ann

/* ---- failures ------------------------------------------------------------- */

static void fatal(sch_vctx *c, ee_status st, const char *fmt, ...) EE__PRINTF(3, 4);

static void fatal(sch_vctx *c, ee_status st, const char *fmt, ...)
{
    if (c->status != EE_OK)
        return;
    char msg[EE__ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->status = ee__error(st, "%s", msg);
}

static void oom(sch_vctx *c)
{
    fatal(c, EE_ENOMEM, "out of memory validating an instance");
}

static void out_of_work(sch_vctx *c)
{
    c->work = EE__SCHEMA_WORK_BUDGET;
    fatal(c, EE_ETOOBIG,
          "validation needed more work than its budget of %u units allows (about %u ms): the "
          "schema fans out (allOf/anyOf/$ref), a pattern backtracks, or the instance is too "
          "large for it",
          EE__SCHEMA_WORK_BUDGET, EE__SCHEMA_WORK_BUDGET / 1000000u);
}

/* Draw `units` from the validation's work budget; false once it is spent. */
static bool charge(sch_vctx *c, uint64_t units)
{
    if (c->work + units > EE__SCHEMA_WORK_BUDGET) {
        out_of_work(c);
        return false;
    }
    c->work += units;
    return true;
}

/* Work of scanning `len` bytes of a string. */
static uint64_t scan_cost(size_t len)
{
    return 1 + len / EE__SCHEMA_BYTES_PER_UNIT;
}

static void report(sch_vctx *c, const char *keyword, const char *fmt, ...) EE__PRINTF(3, 4);

/* Whether a violation found now would be listed: validators skip building
 * its message (excerpts of values) when it would not. */
static bool listing(sch_vctx *c)
{
    if (c->errors == NULL)
        return false;
    if (c->nerrors >= EE_SCHEMA_MAX_ERRORS) {
        c->truncated = true;
        return false;
    }
    return true;
}

static void report(sch_vctx *c, const char *keyword, const char *fmt, ...)
{
    if (c->errors == NULL)
        return;
    if (c->nerrors >= EE_SCHEMA_MAX_ERRORS) {
        c->truncated = true;
        return;
    }
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ee__utf8_sanitize(msg);
    json_t *e = json_pack("{s:s, s:s, s:s, s:s}", "instancePath", c->ipath.p, "schemaPath",
                          c->spath.p, "keyword", keyword, "message", msg);
    if (e == NULL || json_array_append_new(c->errors, e) != 0) {
        oom(c);
        return;
    }
    c->nerrors++;
}

/* ---- JSON pointers being built ---------------------------------------------- */

static bool sbuf_reserve(sbuf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return true;
    size_t cap = (b->len + extra + 1) * 2;
    char *p = realloc(b->p, cap);
    if (p == NULL)
        return false;
    b->p = p;
    b->cap = cap;
    return true;
}

/* Append "/" + token (escaped per RFC 6901); returns the length to pop to. */
static size_t push(sch_vctx *c, sbuf *b, const char *tok)
{
    size_t mark = b->len;
    if (c->errors == NULL)
        return mark;
    size_t n = strlen(tok);
    if (!sbuf_reserve(b, 2 * n + 1)) {
        oom(c);
        return mark;
    }
    b->p[b->len++] = '/';
    for (size_t i = 0; i < n; i++) {
        if (tok[i] == '~' || tok[i] == '/') {
            b->p[b->len++] = '~';
            b->p[b->len++] = tok[i] == '~' ? '0' : '1';
        } else {
            b->p[b->len++] = tok[i];
        }
    }
    b->p[b->len] = '\0';
    return mark;
}

static size_t push_index(sch_vctx *c, sbuf *b, size_t i)
{
    char num[24];
    snprintf(num, sizeof num, "%zu", i);
    return push(c, b, num);
}

static void pop(sbuf *b, size_t mark)
{
    if (b->p == NULL) /* the silent pass keeps no paths */
        return;
    b->len = mark;
    b->p[mark] = '\0';
}

/* ---- annotations ------------------------------------------------------------- */

static void ann_clear(sch_ann *a)
{
    json_decref(a->props);
    free(a->items_hit);
    memset(a, 0, sizeof *a);
}

static void ann_mark_prop(sch_vctx *c, sch_ann *a, const char *key)
{
    if (a == NULL || !charge(c, EE__SCHEMA_COST_VALUE))
        return;
    if (a->props == NULL && (a->props = json_object()) == NULL) {
        oom(c);
        return;
    }
    if (json_object_set_new(a->props, key, json_null()) != 0)
        oom(c);
}

static void ann_mark_all_props(sch_vctx *c, sch_ann *a, const json_t *obj)
{
    const char *key;
    json_t *v;
    if (a != NULL)
        json_object_foreach((json_t *)obj, key, v) ann_mark_prop(c, a, key);
}

static void ann_merge(sch_vctx *c, sch_ann *dst, sch_ann *src)
{
    if (src->props != NULL) {
        if (dst->props != NULL && !charge(c, json_object_size(src->props) * EE__SCHEMA_COST_VALUE))
            return;
        if (dst->props == NULL) {
            dst->props = src->props;
            src->props = NULL;
        } else if (json_object_update(dst->props, src->props) != 0) {
            oom(c);
        }
    }
    dst->items_all |= src->items_all;
    if (src->items_prefix > dst->items_prefix)
        dst->items_prefix = src->items_prefix;
    if (src->items_hit != NULL) {
        if (dst->items_hit == NULL) {
            dst->items_hit = src->items_hit;
            dst->n_items = src->n_items;
            src->items_hit = NULL;
        } else {
            for (size_t i = 0; i < dst->n_items && i < src->n_items; i++)
                dst->items_hit[i] |= src->items_hit[i];
        }
    }
}

/* ---- the evaluator ----------------------------------------------------------- */

/* The built-in meta-schema: the instance must be a schema. */
static bool meta_check(sch_vctx *c, const json_t *inst)
{
    /* compiling a schema costs a few units per byte of its text */
    size_t depth, values, bytes;
    ee__schema_measure(inst, EE_SCHEMA_MAX_SCHEMA_DEPTH, EE_SCHEMA_MAX_TEXT, &depth, &values, &bytes);
    if (!charge(c, values * EE__SCHEMA_COST_VALUE + 40 * (uint64_t)bytes))
        return false;
    ee_status st = json_is_object(inst) || json_is_boolean(inst)
                       ? ee__schema_check(inst)
                       : ee__error(EE_EINVAL, "a schema must be an object or a boolean, got %s",
                                   ee__schema_type_name(inst));
    if (st == EE_ENOMEM)
        oom(c);
    else if (st != EE_OK)
        report(c, "$ref", "not a valid JSON Schema: %s", ee_error_last_message());
    return st == EE_OK;
}

bool ee__schema_eval(sch_vctx *c, const sch_node *node, const json_t *inst, sch_ann *ann)
{
    if (node->boolean == 1)
        return true;
    if (node->boolean == 0) {
        report(c, "false", "no value is allowed here (the schema is false)");
        return false;
    }
    if (c->status != EE_OK)
        return false;
    if (node->boolean == EE__SCHEMA_META)
        return meta_check(c, inst);
    if (c->frames >= EE__SCHEMA_MAX_FRAMES) {
        fatal(c, EE_ETOOBIG, "schema evaluation nested deeper than %d subschemas",
              EE__SCHEMA_MAX_FRAMES);
        return false;
    }
    if (!charge(c, EE__SCHEMA_COST_EVAL))
        return false;
    c->frames++;
    /* one push per frame at most: nscope <= EE__SCHEMA_MAX_FRAMES + 1 */
    bool entered = c->dynamic && node->res != c->scope[c->nscope - 1];
    if (entered)
        c->scope[c->nscope++] = node->res;
    sch_ann local = {0};
    sch_ann *a = ann != NULL || node->wants_annotations ? &local : NULL;
    bool ok = true;
    for (size_t i = 0; i < node->nkws; i++) {
        const sch_kw *kw = &node->kws[i];
        if (kw->def->validate == NULL)
            continue;
        size_t mark = push(c, &c->spath, kw->def->name);
        bool r = kw->def->validate(c, node, kw, inst, a);
        pop(&c->spath, mark);
        if (!r) {
            ok = false;
            if (c->errors == NULL || c->status != EE_OK)
                break;
        }
    }
    if (ok && ann != NULL)
        ann_merge(c, ann, &local);
    ann_clear(&local);
    c->nscope -= entered;
    c->frames--;
    return ok && c->status == EE_OK;
}

/* Evaluate `sub` silently: whether it holds, nothing reported. */
static bool probe(sch_vctx *c, const sch_node *sub, const json_t *inst, sch_ann *ann)
{
    json_t *saved = c->errors;
    c->errors = NULL;
    bool ok = ee__schema_eval(c, sub, inst, ann);
    c->errors = saved;
    return ok;
}

/* Evaluate `sub` on the member `key` of the object under validation. */
static bool eval_member(sch_vctx *c, const char *kwname, const sch_node *sub, const char *key,
                        const json_t *v, const char *stoken)
{
    size_t im = push(c, &c->ipath, key);
    size_t sm = stoken != NULL ? push(c, &c->spath, stoken) : c->spath.len;
    bool ok;
    if (sub->boolean == 0) {
        char q[96];
        ee__quote_for_message(key, q, sizeof q);
        report(c, kwname, "property \"%s\" is not allowed", q);
        ok = false;
    } else {
        ok = ee__schema_eval(c, sub, v, NULL);
    }
    pop(&c->spath, sm);
    pop(&c->ipath, im);
    return ok;
}

/* 1 match, 0 none, -1 per-match limit (the caller reports it), -2 ENOMEM
 * or the work budget ran out (c->status says which). */
static int match(sch_vctx *c, const ee__schema_regex *re, const char *s, size_t len)
{
    if (c->status != EE_OK)
        return -2;
    uint64_t used = 0;
    int rc = ee__schema_regex_match(re, &c->matcher, s, len, EE__SCHEMA_WORK_BUDGET - c->work,
                                    &used);
    c->work += used;
    if (rc == -2)
        oom(c);
    if (rc == -3) {
        out_of_work(c);
        rc = -2;
    }
    return rc;
}

/* Equality of two values, charged per value compared. */
static bool equal(sch_vctx *c, const json_t *a, const json_t *b)
{
    uint64_t visited = 0;
    bool r = ee__schema_equal(a, b, &visited);
    charge(c, visited * EE__SCHEMA_COST_VALUE);
    return r;
}

/* ---- type, enum, const ------------------------------------------------------ */

static unsigned type_bits(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_NULL: return T_NULL;
    case JSON_TRUE:
    case JSON_FALSE: return T_BOOLEAN;
    case JSON_OBJECT: return T_OBJECT;
    case JSON_ARRAY: return T_ARRAY;
    case JSON_STRING: return T_STRING;
    default: return T_NUMBER | (ee__schema_is_integral(v) ? T_INTEGER : 0u);
    }
}

static void types_text(unsigned types, char *out, size_t cap)
{
    static const char *const names[] = {"null", "boolean", "object", "array",
                                        "number", "string", "integer"};
    out[0] = '\0';
    for (unsigned i = 0; i < 7; i++) {
        if (!(types & (1u << i)))
            continue;
        size_t len = strlen(out);
        snprintf(out + len, cap - len, "%s%s", len > 0 ? " or " : "", names[i]);
    }
}

V(type)
{
    UNUSED_ARGS;
    if (kw->types & type_bits(inst))
        return true;
    char want[96];
    types_text(kw->types, want, sizeof want);
    report(c, "type", "expected %s, got %s", want, ee__schema_type_name(inst));
    return false;
}

V(enum)
{
    UNUSED_ARGS;
    uint64_t visited = 0, h = ee__schema_hash(inst, &visited);
    if (!charge(c, visited * EE__SCHEMA_COST_VALUE))
        return false;
    /* the first member with hash h, then every member sharing it */
    size_t lo = 0, hi = kw->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (kw->hashes[2 * mid] < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i < kw->n && kw->hashes[2 * i] == h && c->status == EE_OK; i++)
        if (equal(c, inst, json_array_get(kw->val, (size_t)kw->hashes[2 * i + 1])))
            return true;
    if (c->status != EE_OK || !listing(c))
        return false;
    char allowed[200];
    ee__schema_excerpt(kw->val, allowed, sizeof allowed);
    report(c, "enum", "value must be one of %s", allowed);
    return false;
}

V(const)
{
    UNUSED_ARGS;
    if (equal(c, inst, kw->val))
        return true;
    if (c->status != EE_OK || !listing(c))
        return false;
    char want[200];
    ee__schema_excerpt(kw->val, want, sizeof want);
    report(c, "const", "value must be %s", want);
    return false;
}

/* ---- numbers -------------------------------------------------------------------- */

V(multipleOf)
{
    UNUSED_ARGS;
    if (!json_is_number(inst))
        return true;
    /* a real's decimal digits take up to three formatting rounds */
    if (json_is_real(inst) && !charge(c, EE__SCHEMA_COST_REAL_DIGITS))
        return false;
    if (ee__schema_big_of(inst) != NULL || ee__schema_big_of(kw->val) != NULL) {
        uint64_t cost;
        int r = ee__schema_big_multiple(inst, kw->val, EE__SCHEMA_WORK_BUDGET - c->work, &cost);
        if (r == -2) {
            oom(c);
            return false;
        }
        if (!charge(c, cost) || r < 0)
            return false;
        if (r == 1)
            return true;
    } else if (ee__schema_dec_multiple(ee__schema_dec_of(inst), kw->dec)) {
        return true;
    }
    if (!listing(c))
        return false;
    char got[64], by[64];
    ee__schema_excerpt(inst, got, sizeof got);
    ee__schema_excerpt(kw->val, by, sizeof by);
    report(c, "multipleOf", "must be a multiple of %s, got %s", by, got);
    return false;
}

/* Shared by the four bounds: `bad_when` is the comparison that fails. */
static bool bound(sch_vctx *c, const sch_kw *kw, const json_t *inst, const char *op,
                  bool (*bad_when)(int))
{
    if (!json_is_number(inst))
        return true;
    const ee__schema_big *b = ee__schema_big_of(inst);
    if (b != NULL && !charge(c, b->nd / 16))
        return false;
    if (!bad_when(ee__schema_num_cmp(inst, kw->val)))
        return true;
    if (!listing(c))
        return false;
    char got[64], lim[64];
    ee__schema_excerpt(inst, got, sizeof got);
    ee__schema_excerpt(kw->val, lim, sizeof lim);
    report(c, kw->def->name, "must be %s %s, got %s", op, lim, got);
    return false;
}

static bool gt0(int r) { return r > 0; }
static bool ge0(int r) { return r >= 0; }
static bool lt0(int r) { return r < 0; }
static bool le0(int r) { return r <= 0; }

V(maximum) { UNUSED_ARGS; return bound(c, kw, inst, "<=", gt0); }
V(exclusiveMaximum) { UNUSED_ARGS; return bound(c, kw, inst, "<", ge0); }
V(minimum) { UNUSED_ARGS; return bound(c, kw, inst, ">=", lt0); }
V(exclusiveMinimum) { UNUSED_ARGS; return bound(c, kw, inst, ">", le0); }

/* ---- strings ---------------------------------------------------------------------- */

V(maxLength)
{
    UNUSED_ARGS;
    if (!json_is_string(inst) || !charge(c, scan_cost(json_string_length(inst))))
        return c->status == EE_OK;
    size_t n = ee__schema_utf8_len(json_string_value(inst), json_string_length(inst));
    if (n <= kw->count)
        return true;
    report(c, "maxLength", "must be at most %llu characters long, got %zu",
           (unsigned long long)kw->count, n);
    return false;
}

V(minLength)
{
    UNUSED_ARGS;
    if (!json_is_string(inst) || !charge(c, scan_cost(json_string_length(inst))))
        return c->status == EE_OK;
    size_t n = ee__schema_utf8_len(json_string_value(inst), json_string_length(inst));
    if (n >= kw->count)
        return true;
    report(c, "minLength", "must be at least %llu characters long, got %zu",
           (unsigned long long)kw->count, n);
    return false;
}

V(pattern)
{
    UNUSED_ARGS;
    if (!json_is_string(inst))
        return true;
    int rc = match(c, kw->res[0], json_string_value(inst), json_string_length(inst));
    if (rc == 1)
        return true;
    char q[96];
    ee__quote_for_message(ee__schema_regex_source(kw->res[0]), q, sizeof q);
    if (rc == 0)
        report(c, "pattern", "does not match pattern \"%s\"", q);
    else if (rc == -1)
        report(c, "pattern",
               "could not be checked against pattern \"%s\": the regular expression exceeded "
               "its matching limits",
               q);
    return false;
}

V(format)
{
    UNUSED_ARGS;
    if (kw->count == 0 || !json_is_string(inst))
        return true;
    size_t len = json_string_length(inst);
    /* a format check reads the string a few times (idn: libidn2, regex: a
     * PCRE2 compile) */
    if (!charge(c, 1 + 8 * (uint64_t)len))
        return false;
    if (ee__schema_format_check((int)kw->count - 1, json_string_value(inst), len))
        return true;
    char q[96];
    ee__quote_for_message(json_string_value(kw->val), q, sizeof q);
    report(c, "format", "is not a valid \"%s\"", q);
    return false;
}

/* ---- arrays ------------------------------------------------------------------------- */

V(maxItems)
{
    UNUSED_ARGS;
    if (!json_is_array(inst) || json_array_size(inst) <= kw->count)
        return true;
    report(c, "maxItems", "array has %zu items, at most %llu allowed", json_array_size(inst),
           (unsigned long long)kw->count);
    return false;
}

V(minItems)
{
    UNUSED_ARGS;
    if (!json_is_array(inst) || json_array_size(inst) >= kw->count)
        return true;
    report(c, "minItems", "array has %zu items, at least %llu required", json_array_size(inst),
           (unsigned long long)kw->count);
    return false;
}

typedef struct {
    uint64_t h;
    size_t i;
} hashed;

static int by_hash(const void *a, const void *b)
{
    const hashed *x = a, *y = b;
    if (x->h != y->h)
        return x->h < y->h ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

/* Sort by hash, then compare only items whose hashes collide: O(n log n). */
V(uniqueItems)
{
    UNUSED_ARGS;
    size_t n = json_array_size(inst);
    if (!json_is_true(kw->val) || !json_is_array(inst) || n < 2)
        return true;
    /* the sort: about log2(n) comparisons per item */
    uint64_t visited = 0, log2n = 1;
    while ((UINT64_C(1) << log2n) < n)
        log2n++;
    if (!charge(c, n * log2n))
        return false;
    hashed *hs = malloc(n * sizeof *hs);
    if (hs == NULL) {
        oom(c);
        return false;
    }
    for (size_t i = 0; i < n; i++)
        hs[i] = (hashed){ee__schema_hash(json_array_get(inst, i), &visited), i};
    if (!charge(c, visited * EE__SCHEMA_COST_VALUE)) {
        free(hs);
        return false;
    }
    qsort(hs, n, sizeof *hs, by_hash);
    size_t dup_a = 0, dup_b = 0;
    bool dup = false;
    for (size_t s = 0; s < n && !dup;) {
        size_t e = s + 1;
        while (e < n && hs[e].h == hs[s].h)
            e++;
        for (size_t x = s; x < e && !dup && c->status == EE_OK; x++)
            for (size_t y = x + 1; y < e && !dup && c->status == EE_OK; y++)
                if (equal(c, json_array_get(inst, hs[x].i), json_array_get(inst, hs[y].i)))
                    dup = true, dup_a = hs[x].i, dup_b = hs[y].i;
        s = e;
    }
    free(hs);
    if (c->status != EE_OK)
        return false;
    if (dup)
        report(c, "uniqueItems", "items %zu and %zu are equal; all items must be unique", dup_a,
               dup_b);
    return !dup;
}

V(prefixItems)
{
    UNUSED_ARGS;
    if (!json_is_array(inst))
        return true;
    size_t n = json_array_size(inst) < kw->n ? json_array_size(inst) : kw->n;
    bool ok = true;
    for (size_t i = 0; i < n && (ok || c->errors != NULL); i++) {
        size_t im = push_index(c, &c->ipath, i), sm = push_index(c, &c->spath, i);
        ok &= ee__schema_eval(c, kw->subs[i], json_array_get(inst, i), NULL);
        pop(&c->spath, sm);
        pop(&c->ipath, im);
    }
    if (ann != NULL && n > ann->items_prefix)
        ann->items_prefix = n;
    return ok;
}

V(items)
{
    UNUSED_ARGS;
    if (!json_is_array(inst))
        return true;
    size_t start = node->prefix_items != NULL ? node->prefix_items->n : 0;
    size_t n = json_array_size(inst);
    if (ann != NULL)
        ann->items_all = true;
    if (start >= n)
        return true;
    if (kw->sub->boolean == 0) {
        report(c, "items", "array has %zu items, at most %zu allowed", n, start);
        return false;
    }
    bool ok = true;
    for (size_t i = start; i < n && (ok || c->errors != NULL); i++) {
        size_t im = push_index(c, &c->ipath, i);
        ok &= ee__schema_eval(c, kw->sub, json_array_get(inst, i), NULL);
        pop(&c->ipath, im);
    }
    return ok;
}

V(contains)
{
    UNUSED_ARGS;
    if (!json_is_array(inst))
        return true;
    size_t n = json_array_size(inst), found = 0;
    uint64_t min = node->has_min_contains ? node->min_contains : 1;
    if (ann != NULL && ann->items_hit == NULL && n > 0) {
        if (!charge(c, n))
            return false;
        if ((ann->items_hit = calloc(n, 1)) == NULL) {
            oom(c);
            return false;
        }
        ann->n_items = n;
    }
    for (size_t i = 0; i < n; i++) {
        if (probe(c, kw->sub, json_array_get(inst, i), NULL)) {
            found++;
            if (ann != NULL)
                ann->items_hit[i] = 1;
            else if (!node->has_max_contains && found >= min)
                break; /* nothing more to learn */
        }
        if (c->status != EE_OK)
            return false;
    }
    if (found < min) {
        report(c, "contains", "array contains %zu matching items, at least %llu required", found,
               (unsigned long long)min);
        return false;
    }
    if (node->has_max_contains && found > node->max_contains) {
        report(c, "maxContains", "array contains %zu matching items, at most %llu allowed", found,
               (unsigned long long)node->max_contains);
        return false;
    }
    return true;
}

V(unevaluatedItems)
{
    UNUSED_ARGS;
    if (!json_is_array(inst) || ann == NULL || ann->items_all)
        return true;
    bool ok = true;
    size_t n = json_array_size(inst);
    for (size_t i = ann->items_prefix; i < n && (ok || c->errors != NULL); i++) {
        if (ann->items_hit != NULL && i < ann->n_items && ann->items_hit[i])
            continue;
        size_t im = push_index(c, &c->ipath, i);
        if (kw->sub->boolean == 0) {
            report(c, "unevaluatedItems", "item %zu is not allowed here", i);
            ok = false;
        } else {
            ok &= ee__schema_eval(c, kw->sub, json_array_get(inst, i), NULL);
        }
        pop(&c->ipath, im);
    }
    ann->items_all = true;
    return ok;
}

/* ---- objects -------------------------------------------------------------------------- */

V(maxProperties)
{
    UNUSED_ARGS;
    if (!json_is_object(inst) || json_object_size(inst) <= kw->count)
        return true;
    report(c, "maxProperties", "object has %zu properties, at most %llu allowed",
           json_object_size(inst), (unsigned long long)kw->count);
    return false;
}

V(minProperties)
{
    UNUSED_ARGS;
    if (!json_is_object(inst) || json_object_size(inst) >= kw->count)
        return true;
    report(c, "minProperties", "object has %zu properties, at least %llu required",
           json_object_size(inst), (unsigned long long)kw->count);
    return false;
}

/* Report each name of `names` missing from the object; `why` may be NULL. */
static bool require_all(sch_vctx *c, const char *kwname, const json_t *names, const json_t *obj,
                        const char *because)
{
    bool ok = true;
    if (!charge(c, json_array_size(names) * EE__SCHEMA_COST_VALUE))
        return false;
    for (size_t i = 0; i < json_array_size(names) && (ok || c->errors != NULL); i++) {
        const char *name = json_string_value(json_array_get(names, i));
        if (json_object_get(obj, name) != NULL)
            continue;
        ok = false;
        char q[96], b[96];
        ee__quote_for_message(name, q, sizeof q);
        if (because == NULL) {
            report(c, kwname, "required property \"%s\" is missing", q);
        } else {
            ee__quote_for_message(because, b, sizeof b);
            report(c, kwname, "property \"%s\" is required when \"%s\" is present", q, b);
        }
    }
    return ok;
}

V(required)
{
    UNUSED_ARGS;
    return !json_is_object(inst) || require_all(c, "required", kw->val, inst, NULL);
}

V(dependentRequired)
{
    UNUSED_ARGS;
    if (!json_is_object(inst) || !charge(c, json_object_size(kw->val) * EE__SCHEMA_COST_VALUE))
        return c->status == EE_OK;
    bool ok = true;
    const char *key;
    json_t *names;
    json_object_foreach((json_t *)kw->val, key, names) {
        if (json_object_get(inst, key) == NULL)
            continue;
        size_t sm = push(c, &c->spath, key);
        ok &= require_all(c, "dependentRequired", names, inst, key);
        pop(&c->spath, sm);
        if (!ok && c->errors == NULL)
            break;
    }
    return ok;
}

V(properties)
{
    UNUSED_ARGS;
    if (!json_is_object(inst) || !charge(c, kw->n * EE__SCHEMA_COST_VALUE))
        return c->status == EE_OK;
    bool ok = true;
    for (size_t i = 0; i < kw->n && (ok || c->errors != NULL); i++) {
        const json_t *v = json_object_get(inst, kw->keys[i]);
        if (v == NULL)
            continue;
        ok &= eval_member(c, "properties", kw->subs[i], kw->keys[i], v, kw->keys[i]);
        ann_mark_prop(c, ann, kw->keys[i]);
    }
    return ok;
}

/* Whether `key` matches pattern i of a patternProperties keyword; a
 * pattern that hits its limits is reported and counts as failing. */
static int key_matches(sch_vctx *c, const sch_kw *pp, size_t i, const char *key, bool *ok)
{
    int rc = match(c, pp->res[i], key, strlen(key));
    if (rc == -1) {
        char q[96], k[96];
        ee__quote_for_message(pp->keys[i], q, sizeof q);
        ee__quote_for_message(key, k, sizeof k);
        size_t im = push(c, &c->ipath, key);
        report(c, "patternProperties",
               "property name \"%s\" could not be checked against pattern \"%s\": the regular "
               "expression exceeded its matching limits",
               k, q);
        pop(&c->ipath, im);
        *ok = false;
    }
    return rc;
}

V(patternProperties)
{
    UNUSED_ARGS;
    if (!json_is_object(inst))
        return true;
    bool ok = true;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)inst, key, v) {
        for (size_t i = 0; i < kw->n; i++) {
            if (key_matches(c, kw, i, key, &ok) != 1)
                continue;
            ok &= eval_member(c, "patternProperties", kw->subs[i], key, v, kw->keys[i]);
            ann_mark_prop(c, ann, key);
        }
        if ((!ok && c->errors == NULL) || c->status != EE_OK)
            return false;
    }
    return ok;
}

static bool is_additional(sch_vctx *c, const sch_node *node, const char *key)
{
    if (!charge(c, EE__SCHEMA_COST_VALUE))
        return false;
    if (node->properties != NULL && json_object_get(node->properties->val, key) != NULL)
        return false;
    const sch_kw *pp = node->pattern_properties;
    for (size_t i = 0; pp != NULL && i < pp->n; i++)
        if (match(c, pp->res[i], key, strlen(key)) != 0) /* a limit counts as matched: */
            return false;                                /* patternProperties reports it */
    return true;
}

V(additionalProperties)
{
    UNUSED_ARGS;
    if (!json_is_object(inst))
        return true;
    bool ok = true;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)inst, key, v) {
        if (!is_additional(c, node, key))
            continue;
        ok &= eval_member(c, "additionalProperties", kw->sub, key, v, NULL);
        ann_mark_prop(c, ann, key);
        if ((!ok && c->errors == NULL) || c->status != EE_OK)
            return false;
    }
    return ok;
}

V(unevaluatedProperties)
{
    UNUSED_ARGS;
    if (!json_is_object(inst) || ann == NULL)
        return true;
    bool ok = true;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)inst, key, v) {
        if (!charge(c, EE__SCHEMA_COST_VALUE))
            return false;
        if (ann->props != NULL && json_object_get(ann->props, key) != NULL)
            continue;
        ok &= eval_member(c, "unevaluatedProperties", kw->sub, key, v, NULL);
        if ((!ok && c->errors == NULL) || c->status != EE_OK)
            return false;
    }
    ann_mark_all_props(c, ann, inst);
    return ok;
}

V(propertyNames)
{
    UNUSED_ARGS;
    if (!json_is_object(inst) || kw->sub->boolean == 1)
        return true;
    bool ok = true;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)inst, key, v) {
        if (!charge(c, scan_cost(strlen(key))))
            return false;
        json_t *name = json_string_nocheck(key);
        if (name == NULL) {
            oom(c);
            return false;
        }
        bool r = probe(c, kw->sub, name, NULL);
        json_decref(name);
        if (c->status != EE_OK)
            return false;
        if (r)
            continue;
        ok = false;
        char q[96];
        ee__quote_for_message(key, q, sizeof q);
        size_t im = push(c, &c->ipath, key);
        report(c, "propertyNames", "property name \"%s\" does not match the propertyNames schema",
               q);
        pop(&c->ipath, im);
        if (c->errors == NULL)
            break;
    }
    return ok;
}

V(dependentSchemas)
{
    UNUSED_ARGS;
    if (!json_is_object(inst))
        return true;
    bool ok = true;
    for (size_t i = 0; i < kw->n && (ok || c->errors != NULL); i++) {
        if (json_object_get(inst, kw->keys[i]) == NULL)
            continue;
        size_t sm = push(c, &c->spath, kw->keys[i]);
        ok &= ee__schema_eval(c, kw->subs[i], inst, ann);
        pop(&c->spath, sm);
    }
    return ok;
}

/* Draft 7's "dependencies": a member's array as dependentRequired, its
 * schema as dependentSchemas. */
V(dependencies)
{
    UNUSED_ARGS;
    if (!json_is_object(inst) || !charge(c, kw->n * EE__SCHEMA_COST_VALUE))
        return c->status == EE_OK;
    bool ok = true;
    for (size_t i = 0; i < kw->n && (ok || c->errors != NULL); i++) {
        if (json_object_get(inst, kw->keys[i]) == NULL)
            continue;
        size_t sm = push(c, &c->spath, kw->keys[i]);
        if (kw->subs[i] == NULL)
            ok &= require_all(c, "dependencies", json_object_get(kw->val, kw->keys[i]), inst,
                              kw->keys[i]);
        else
            ok &= ee__schema_eval(c, kw->subs[i], inst, ann);
        pop(&c->spath, sm);
    }
    return ok;
}

/* ---- applicators on the same instance ---------------------------------------------- */

V(ref)
{
    UNUSED_ARGS;
    return ee__schema_eval(c, kw->sub, inst, ann);
}

/* The node of group g declared in resource r, or NULL. */
static const sch_node *group_member(const sch_dyn_group *g, size_t r)
{
    for (size_t lo = 0, hi = g->n; lo < hi;) {
        size_t mid = lo + (hi - lo) / 2;
        if (g->nodes[mid]->res == r)
            return g->nodes[mid];
        if (g->nodes[mid]->res < r)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

V(dynamicRef)
{
    UNUSED_ARGS;
    const sch_node *target = kw->sub;
    if (kw->count > 0 && c->dynamic) {
        const sch_dyn_group *g = &c->schema->dyn[kw->count - 1];
        /* The outermost resource in scope that declares the anchor. With
         * one declaration in the document it is the static target. */
        for (size_t i = 0; g->n > 1 && i < c->nscope; i++) {
            if (!charge(c, EE__SCHEMA_COST_VALUE))
                return false;
            const sch_node *m = group_member(g, c->scope[i]);
            if (m != NULL) {
                target = m;
                break;
            }
        }
    }
    return ee__schema_eval(c, target, inst, ann);
}

V(allOf)
{
    UNUSED_ARGS;
    bool ok = true;
    for (size_t i = 0; i < kw->n && (ok || c->errors != NULL); i++) {
        size_t sm = push_index(c, &c->spath, i);
        ok &= ee__schema_eval(c, kw->subs[i], inst, ann);
        pop(&c->spath, sm);
    }
    return ok;
}

V(anyOf)
{
    UNUSED_ARGS;
    size_t matched = 0;
    /* With annotations wanted every branch runs: each valid one adds. */
    for (size_t i = 0; i < kw->n && (matched == 0 || ann != NULL); i++)
        matched += probe(c, kw->subs[i], inst, ann);
    if (c->status != EE_OK)
        return false;
    if (matched == 0)
        report(c, "anyOf", "value does not match any of the %zu anyOf subschemas", kw->n);
    return matched > 0;
}

V(oneOf)
{
    UNUSED_ARGS;
    size_t matched = 0, first = 0, second = 0;
    for (size_t i = 0; i < kw->n && matched < 2; i++) {
        if (!probe(c, kw->subs[i], inst, ann))
            continue;
        if (matched++ == 0)
            first = i;
        else
            second = i;
    }
    if (c->status != EE_OK)
        return false;
    if (matched == 0)
        report(c, "oneOf", "value does not match any of the %zu oneOf subschemas", kw->n);
    else if (matched > 1)
        report(c, "oneOf", "value matches oneOf subschemas %zu and %zu; exactly one must match",
               first, second);
    return matched == 1;
}

V(not)
{
    UNUSED_ARGS;
    bool r = probe(c, kw->sub, inst, NULL);
    if (c->status != EE_OK)
        return false;
    if (r)
        report(c, "not", "value must not match the \"not\" subschema");
    return !r;
}

V(if)
{
    UNUSED_ARGS;
    bool cond = probe(c, kw->sub, inst, ann);
    if (c->status != EE_OK)
        return false;
    const sch_node *branch = cond ? kw->then_node : kw->else_node;
    if (branch == NULL)
        return true;
    /* Errors of the branch belong under "/then" or "/else", not "/if". */
    size_t base = c->spath.len;
    if (c->errors != NULL) {
        base -= strlen("/if");
        pop(&c->spath, base);
    }
    size_t sm = push(c, &c->spath, cond ? "then" : "else");
    bool ok = ee__schema_eval(c, branch, inst, ann);
    pop(&c->spath, sm);
    return ok;
}

/* ---- entry point ------------------------------------------------------------------------- */

static void first_error_text(const json_t *errors, char *out, size_t cap)
{
    const json_t *e = json_array_get(errors, 0);
    const char *ip = json_string_value(json_object_get(e, "instancePath"));
    const char *msg = json_string_value(json_object_get(e, "message"));
    snprintf(out, cap, "%s: %s", ip != NULL && ip[0] != '\0' ? ip : "(root)",
             msg != NULL ? msg : "invalid");
}

static ee_status finish(sch_vctx *c, bool ok, json_t **report_out)
{
    if (ok && report_out == NULL)
        return EE_OK;
    if (!ok && json_array_size(c->errors) == 0)
        report(c, "schema", "value is not valid");
    json_t *rep = json_pack("{s:b, s:O}", "valid", ok, "errors", c->errors);
    if (rep != NULL && c->truncated && json_object_set_new(rep, "truncated", json_true()) != 0)
        json_decref(rep), rep = NULL;
    if (rep == NULL)
        return ee__error(EE_ENOMEM, "out of memory building a validation report");
    ee_status st = EE_OK;
    if (!ok) {
        char first[700];
        first_error_text(c->errors, first, sizeof first);
        st = ee__error_full(EE_EVALIDATION, 0, json_incref(rep),
                            "input failed validation: %zu violation%s%s; first at %s", c->nerrors,
                            c->nerrors == 1 ? "" : "s", c->truncated ? " (list truncated)" : "",
                            first);
    }
    if (report_out != NULL)
        *report_out = rep;
    else
        json_decref(rep);
    return st;
}

ee_status ee__schema_validate(const ee_schema *schema, const json_t *instance, json_t **report)
{
    if (report != NULL)
        *report = NULL;
    if (schema == NULL || instance == NULL)
        return ee__error(EE_EINVAL, "ee_schema_validate: schema and instance must not be NULL");
    size_t values;
    ee_status st = ee__schema_check_instance_size(instance, &values);
    if (st != EE_OK)
        return st;
    return ee__schema_validate_bigs(schema, instance, NULL, report);
}

ee_status ee__schema_validate_bigs(const ee_schema *schema, const json_t *instance,
                                   const ee__schema_bigs *bigs, json_t **report)
{
    const ee__schema_bigs *saved[2];
    ee__schema_bigs_enter(schema != NULL ? schema->bigs : NULL, bigs, saved);
    ee_status st = ee__schema_validate_parsed(schema, instance, report);
    ee__schema_bigs_leave(saved);
    return st;
}

ee_status ee__schema_validate_parsed(const ee_schema *schema, const json_t *instance,
                                     json_t **report)
{
    if (report != NULL)
        *report = NULL;
    if (schema == NULL || instance == NULL)
        return ee__error(EE_EINVAL, "ee_schema_validate: schema and instance must not be NULL");
    /* A silent pass first: no paths, no report, stops at the first
     * violation. Only an invalid instance pays for the reporting pass; both
     * draw from the one work budget. */
    size_t scope[EE__SCHEMA_MAX_FRAMES + 2];
    sch_vctx c = {.schema = schema, .dynamic = schema->dynamic, .scope = scope, .nscope = 1};
    scope[0] = schema->root->res;
    bool ok = ee__schema_eval(&c, schema->root, instance, NULL);
    ee_status st = c.status;
    if (st == EE_OK && !ok) {
        c.errors = json_array();
        c.ipath.p = calloc(1, 128), c.ipath.cap = 128;
        c.spath.p = calloc(1, 128), c.spath.cap = 128;
        if (c.errors == NULL || c.ipath.p == NULL || c.spath.p == NULL) {
            st = ee__error(EE_ENOMEM, "out of memory validating an instance");
        } else {
            c.nscope = 1;
            ok = ee__schema_eval(&c, schema->root, instance, NULL);
            st = c.status;
        }
    }
    if (st == EE_OK) {
        if (c.errors == NULL && (c.errors = json_array()) == NULL)
            st = ee__error(EE_ENOMEM, "out of memory validating an instance");
        else
            st = finish(&c, ok, report);
    }
    json_decref(c.errors);
    free(c.ipath.p);
    free(c.spath.p);
    ee__schema_matcher_free(c.matcher);
    return st;
}
