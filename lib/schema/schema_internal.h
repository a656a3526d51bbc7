/*
 * lib/schema/schema_internal.h - shared between the validator's files
 * (schema.c compiles, schema_validate.c evaluates, schema_regex.c wraps
 * PCRE2, schema_value.c compares JSON values and numbers, schema_defaults.c
 * applies defaults, schema_uri.c resolves URI references). Nothing here
 * leaves lib/schema/schema*.c.
 */
#ifndef EE_SCHEMA_INTERNAL_H
#define EE_SCHEMA_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "schema/schema.h"

/* Nested subschema evaluations allowed on the C stack at once. Each
 * instance level costs a few (properties -> $ref -> allOf ...), and a $ref
 * cycle that does not consume the instance is refused at compile time, so
 * this is a safety net for long acyclic $ref chains. */
#define EE__SCHEMA_MAX_FRAMES 512
/* The longest URI a schema resource's "$id" may resolve to (bytes). */
#define EE__SCHEMA_MAX_URI 2048
/* Work bound for applying defaults, in subschema visits: a fixed budget
 * plus a share per instance value. */
#define EE__SCHEMA_BASE_STEPS 1000000u
#define EE__SCHEMA_STEPS_PER_VALUE 64u
/* One work budget per validation (both passes together), in units of
 * about a nanosecond on a current x86-64 core: every subschema evaluation,
 * every value compared (enum, const, uniqueItems), every string byte
 * scanned and every unit of PCRE2 match work (its match limit) draws from
 * it, so no schema and instance under the size limits can keep a thread
 * much longer than EE__SCHEMA_WORK_BUDGET units (bench "schema.worst").
 * Running out ends the validation with EE_ETOOBIG. */
#define EE__SCHEMA_WORK_BUDGET 25000000u
#define EE__SCHEMA_COST_EVAL 24u       /* one subschema evaluation */
#define EE__SCHEMA_COST_VALUE 8u       /* one value compared or hashed */
#define EE__SCHEMA_BYTES_PER_UNIT 1u   /* string bytes scanned per unit */
#define EE__SCHEMA_COST_REAL_DIGITS 300u /* a real's decimal digits (multipleOf) */
/* PCRE2 limits for one match (see schema_regex.c): a match that needs
 * more is a violation ("exceeded its matching limits"), not a hang. */
#define EE__SCHEMA_MATCH_LIMIT 1000000u
#define EE__SCHEMA_DEPTH_LIMIT 10000u
#define EE__SCHEMA_HEAP_LIMIT_KIB 65536u

/* JSON type bits for "type". */
enum {
    T_NULL = 1u << 0,
    T_BOOLEAN = 1u << 1,
    T_OBJECT = 1u << 2,
    T_ARRAY = 1u << 3,
    T_NUMBER = 1u << 4,
    T_STRING = 1u << 5,
    T_INTEGER = 1u << 6,
};

typedef struct sch_node sch_node;
typedef struct sch_kw sch_kw;
typedef struct sch_vctx sch_vctx;
typedef struct sch_ann sch_ann;
typedef struct ee__schema_regex ee__schema_regex;

/* A number jansson cannot hold exactly (schema_bignum.c): the value is
 * (-1)^neg * digits * 10^exp, digits without leading or trailing zeros. */
typedef struct ee__schema_big {
    const json_t *key;   /* its placeholder in the parsed document */
    size_t ord;          /* its position among the document's numbers */
    bool neg, integer_token;
    int64_t exp;
    const char *digits;  /* nd significant digits (in buf) */
    size_t nd;
    const char *token;   /* the token as written, for messages (in buf) */
    size_t token_len;
    char *buf;           /* owned */
} ee__schema_big;
/* Bounds on such a number: more digits or a larger exponent is EE_ETOOBIG. */
#define EE__SCHEMA_BIG_MAX_DIGITS 10000
#define EE__SCHEMA_BIG_MAX_EXP INT64_C(1000000000)
/* Dividend digits times divisor digits (times this) charged for a
 * multipleOf whose divisor does not fit 64 bits. */
#define EE__SCHEMA_COST_BIG_DIGIT 12u

/* A keyword's compile and validate functions (schema.c's table). */
typedef struct sch_kwdef {
    const char *name;
    /* Check the value's type and fill kw; EE_EINVAL with a message naming
     * the path on a malformed value. NULL: nothing to compile. */
    ee_status (*compile)(ee_schema *s, sch_node *node, sch_kw *kw, const char *path);
    /* True when the instance satisfies the keyword. NULL: annotation-only
     * or evaluated by a sibling (then/else by if, minContains by contains). */
    bool (*validate)(sch_vctx *c, const sch_node *node, const sch_kw *kw, const json_t *inst,
                     sch_ann *ann);
} sch_kwdef;

/* A decimal m * 10^e with m > 0 free of trailing zeros (or m == 0). */
typedef struct sch_dec {
    uint64_t m;
    int e;
} sch_dec;

struct sch_kw {
    const sch_kwdef *def;
    const json_t *val;   /* the keyword's value in the schema copy (borrowed) */
    sch_node *sub;       /* single subschema (not, items, contains, if ...) */
    sch_node **subs;     /* subschema per element or member */
    const char **keys;   /* member names for properties / dependentSchemas */
    ee__schema_regex **res; /* pattern, or one per patternProperties member */
    size_t n;            /* count of subs / keys / res */
    uint64_t count;      /* a non-negative integer keyword's value */
    unsigned types;      /* "type" bits */
    sch_dec dec;         /* multipleOf divisor */
    sch_node *then_node, *else_node; /* for "if" */
    uint64_t *hashes;    /* enum: (hash, index) pairs sorted, 2 * n words */
    /* $dynamicRef: `sub` is the target it resolves to statically; `count`
     * is 1 + the index of its sch_dyn_group in ee_schema.dyn when the
     * target carries the same "$dynamicAnchor" (the bookend), 0 when it
     * behaves as "$ref". */
};

struct sch_node {
    int boolean;         /* 1: true, 0: false, -1: object, EE__SCHEMA_META */
    const json_t *json;  /* the schema object (borrowed from the copy) */
    sch_kw *kws;
    size_t nkws;
    /* siblings other keywords consult */
    const sch_kw *properties, *pattern_properties, *prefix_items, *items, *contains;
    bool has_min_contains, has_max_contains;
    uint64_t min_contains, max_contains;
    bool wants_annotations; /* has unevaluatedProperties / unevaluatedItems */
    bool constrains;        /* has at least one validating keyword */
    const char *path;       /* where it was compiled (for compile messages) */
    size_t idx;             /* position in ee_schema.nodes */
    size_t res;             /* its schema resource (ee_schema.res index) */
};

/* A schema resource: the document's root, or a subschema with an "$id",
 * which sets the base URI of everything inside it up to the next one. */
typedef struct sch_res {
    char *uri;           /* absolute, without fragment (owned) */
    const json_t *json;  /* its root schema (borrowed from the copy) */
} sch_res;

/* The subschemas carrying one "$dynamicAnchor" name, one per resource at
 * most, sorted by resource index: where a bookended $dynamicRef looks. */
typedef struct sch_dyn_group {
    const char *name;    /* borrowed from the copy */
    const sch_node **nodes;
    size_t n;
} sch_dyn_group;

struct ee_schema {
    json_t *doc;          /* owned deep copy of the schema document */
    sch_node *root;
    sch_node **nodes;     /* every object node, owned */
    size_t nnodes, cap_nodes;
    ee__schema_regex **regexes; /* every regex, owned */
    size_t nregexes, cap_regexes;
    char **strings;       /* owned strings (paths), freed with the schema */
    ee__schema_bigs *bigs; /* numbers of doc jansson cannot hold, or NULL */
    size_t nstrings, cap_strings;
    sch_res *res;         /* schema resources, [0] the root's, owned */
    size_t nres, cap_res;
    sch_dyn_group *dyn;   /* per "$dynamicAnchor" name, owned */
    size_t ndyn;
    bool dynamic;         /* some $dynamicRef is bookended: track the dynamic scope */
    void *compiling;      /* compile-time state, NULL once compiled */
};

/* Annotations gathered for unevaluatedProperties / unevaluatedItems from
 * the keywords that evaluated the same instance. */
struct sch_ann {
    json_t *props;       /* object used as a set of evaluated names, or NULL */
    bool items_all;      /* every item was evaluated */
    size_t items_prefix; /* items [0, items_prefix) were evaluated */
    unsigned char *items_hit; /* per-item flags from contains (n_items) */
    size_t n_items;
};

/* ---- schema.c ---------------------------------------------------------- */
/* sch_node.boolean of the built-in draft 2020-12 meta-schema. */
#define EE__SCHEMA_META 2
extern sch_node ee__schema_true_node, ee__schema_false_node, ee__schema_meta_node;
/* Whether `schema` is structurally a schema (every keyword value of the
 * right type, patterns compile); $refs are not resolved. Status and
 * message as ee__schema_compile(). */
ee_status ee__schema_check(const json_t *schema);
const sch_kwdef *ee__schema_kwdef(const char *name);

/* ee__schema_compile_flags() of a document parsed by
 * ee__schema_parse_text(); `bigs` (may be NULL) is taken over. */
ee_status ee__schema_compile_bigs(ee_schema **out, const json_t *schema, unsigned flags,
                                  ee__schema_bigs *bigs);

/* ---- schema_validate.c ------------------------------------------------- */
/* Evaluate `node` against `inst`. */
bool ee__schema_eval(sch_vctx *c, const sch_node *node, const json_t *inst, sch_ann *ann);

/* The keyword validators the table in schema.c points at. */
#define EE__SCHEMA_VALIDATORS(XX)                                                         \
    XX(type) XX(enum) XX(const) XX(multipleOf) XX(maximum) XX(exclusiveMaximum)           \
    XX(minimum) XX(exclusiveMinimum) XX(maxLength) XX(minLength) XX(pattern) XX(maxItems) \
    XX(minItems) XX(uniqueItems) XX(maxProperties) XX(minProperties) XX(required)         \
    XX(dependentRequired) XX(ref) XX(dynamicRef) XX(allOf) XX(anyOf) XX(oneOf) XX(not)    \
    XX(if) XX(dependentSchemas) XX(properties) XX(patternProperties)                      \
    XX(additionalProperties) XX(propertyNames) XX(prefixItems) XX(items) XX(contains)     \
    XX(unevaluatedItems) XX(unevaluatedProperties) XX(format) XX(dependencies)
#define EE__SCHEMA_DECLARE_VALIDATOR(name)                                                 \
    bool ee__schema_v_##name(sch_vctx *c, const sch_node *node, const sch_kw *kw,          \
                             const json_t *inst, sch_ann *ann);
EE__SCHEMA_VALIDATORS(EE__SCHEMA_DECLARE_VALIDATOR)
#undef EE__SCHEMA_DECLARE_VALIDATOR

/* ---- schema_value.c ---------------------------------------------------- */
/* JSON equality where numbers compare by value (1 == 1.0). *visited (may
 * be NULL) is increased by the number of values compared. */
bool ee__schema_equal(const json_t *a, const json_t *b, uint64_t *visited);
/* A hash consistent with ee__schema_equal(); *visited as there. */
uint64_t ee__schema_hash(const json_t *v, uint64_t *visited);
/* Exact comparison of two JSON numbers: <0, 0, >0. */
int ee__schema_num_cmp(const json_t *a, const json_t *b);
/* Whether a number is integral (1, 1.0, 1e2). */
bool ee__schema_is_integral(const json_t *v);
/* The decimal magnitude of a number (the shortest decimal that reads back
 * as the same double, for reals). */
sch_dec ee__schema_dec_of(const json_t *v);
/* Whether a is an integer multiple of b (b.m > 0), exactly. */
bool ee__schema_dec_multiple(sch_dec a, sch_dec b);
/* The type name of a value as "type" spells it ("integer" for integral
 * numbers). */
const char *ee__schema_type_name(const json_t *v);
/* Number of code points of a UTF-8 string. */
size_t ee__schema_utf8_len(const char *s, size_t len);
/* Measure a value without recursion: nesting depth (0 for scalars, stops
 * counting past `max_depth` + 1), number of values, and the size in bytes
 * of its compact JSON text as jansson writes it (reals as "%.17g"; when the
 * size is not near `max_bytes` reals may be counted at 3 bytes, so *bytes
 * is exact only where it decides the limit). */
void ee__schema_measure(const json_t *v, size_t max_depth, size_t max_bytes, size_t *depth,
                        size_t *values, size_t *bytes);
/* An instance within EE_SCHEMA_MAX_DEPTH and EE_SCHEMA_MAX_TEXT: EE_OK and
 * its number of values in *values; else EE_ETOOBIG saying which. */
ee_status ee__schema_check_instance_size(const json_t *instance, size_t *values);
/* ee__schema_validate() on an instance parsed from text that was measured
 * already (size and depth), as schema_api.c does. */
ee_status ee__schema_validate_parsed(const ee_schema *schema, const json_t *instance,
                                     json_t **report);
/* Append v compactly to a short text for messages ("..." when cut). */
void ee__schema_excerpt(const json_t *v, char *out, size_t cap);

/* The shortest decimal that reads back as d (d > 0, finite). */
sch_dec ee__schema_dec_of_double(double d);
/* Whether a is a multiple of b (b > 0) when either is a big number: 1
 * yes, 0 no, -1 the work would pass `budget` units (*cost gets the units
 * it needs). */
int ee__schema_big_multiple(const json_t *a, const json_t *b, uint64_t budget, uint64_t *cost);
/* Whether v is a number below 0 (big numbers included). */
bool ee__schema_num_negative(const json_t *v);

/* ---- schema_uri.c ------------------------------------------------------ */
/* Resolve the URI reference `ref` against the absolute URI `base` (RFC
 * 3986 5.2). *uri_out gets the target without its fragment, *frag_out the
 * fragment as written (NULL when `ref` has none); both the caller's to
 * free(). EE_OK; EE_ENOMEM. */
ee_status ee__schema_uri_resolve(const char *base, const char *ref, char **uri_out,
                                 char **frag_out);

/* ---- schema_bignum.c --------------------------------------------------- */
/* (ee__schema_parse_text, ee__schema_bigs_free: schema/schema.h) */
/* Point the table at the same numbers of `doc`, a deep copy of the parsed
 * document. */
ee_status ee__schema_bigs_key(ee__schema_bigs *t, const json_t *doc);
/* Make the tables (either may be NULL) the ones this thread consults until
 * ee__schema_bigs_leave(saved). */
void ee__schema_bigs_enter(const ee__schema_bigs *schema_bigs, const ee__schema_bigs *inst_bigs,
                           const ee__schema_bigs *saved[2]);
void ee__schema_bigs_leave(const ee__schema_bigs *const saved[2]);
/* The big number v stands for, or NULL (ordinary value). */
const ee__schema_big *ee__schema_big_of(const json_t *v);
bool ee__schema_bigs_active(void);
/* Whether v (a value of the document t was keyed to) holds one of t's
 * numbers. */
bool ee__schema_bigs_within(const ee__schema_bigs *t, const json_t *v);
/* (ee__schema_bigs_dump, ee__schema_validate_bigs: schema/schema.h) */

/* ---- schema_regex.c ---------------------------------------------------- */
/* Compile an ECMA-262 pattern for PCRE2. EE_EINVAL names `path`. */
ee_status ee__schema_regex_compile(ee__schema_regex **out, const char *pattern, size_t len,
                                   const char *path, bool jit);
void ee__schema_regex_free(ee__schema_regex *re);
/* Whether `pattern` is an ECMA-262 regular expression that compiles, with
 * no error reported (format "regex"). */
bool ee__schema_regex_valid(const char *pattern, size_t len);

/* ---- schema_format.c --------------------------------------------------- */
/* The id of an asserted format ("email", "date-time" ...), -1 for a format
 * that stays an annotation. */
int ee__schema_format_id(const char *name);
/* Whether the string is valid for format `id`. Linear in len. */
bool ee__schema_format_check(int id, const char *s, size_t len);
/* The pattern's source text. */
const char *ee__schema_regex_source(const ee__schema_regex *re);
/* Per-evaluation match state (PCRE2 match data and limits), made lazily. */
typedef struct ee__schema_matcher ee__schema_matcher;
void ee__schema_matcher_free(ee__schema_matcher *m);
/* Match with at most `budget` units of work; *used gets the units charged
 * for it (an upper bound of PCRE2's match-limit count plus the subject's
 * length). 1 match, 0 no match, -1 the per-match limit was hit, -2 out of
 * memory, -3 the budget ran out first. */
int ee__schema_regex_match(const ee__schema_regex *re, ee__schema_matcher **m, const char *s,
                           size_t len, uint64_t budget, uint64_t *used);

#endif
