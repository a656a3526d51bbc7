/*
 * Applying "default" annotations: a property that an object lacks gets the
 * default its subschema declares. The walk follows the subschemas that
 * always apply to a value ("properties", "prefixItems", "items", "$ref",
 * "allOf"), never the conditional ones (anyOf, oneOf, if/then/else), whose
 * defaults would depend on which branch holds. A property's own subschema
 * wins over one reached through $ref or allOf because it is applied first.
 */
#include "schema/schema_internal.h"

#include <string.h>

typedef struct {
    size_t frames, steps, max_steps;
    const ee__schema_bigs *bigs; /* the schema's numbers jansson cannot hold */
} dctx;

static const sch_kw *kw_named(const sch_node *n, const char *name)
{
    for (size_t i = 0; i < n->nkws; i++)
        if (strcmp(n->kws[i].def->name, name) == 0)
            return &n->kws[i];
    return NULL;
}

/* The default a subschema declares, directly or through a chain of $refs
 * (finite: compile refuses $ref cycles). */
static const json_t *default_of(const sch_node *n)
{
    while (n != NULL && n->boolean < 0) {
        const json_t *d = json_object_get(n->json, "default");
        if (d != NULL)
            return d;
        const sch_kw *ref = kw_named(n, "$ref");
        n = ref != NULL ? ref->sub : NULL;
    }
    return NULL;
}

static ee_status fill(dctx *d, const sch_node *n, json_t *inst);

static ee_status fill_properties(dctx *d, const sch_kw *kw, json_t *obj)
{
    for (size_t i = 0; i < kw->n; i++) {
        json_t *v = json_object_get(obj, kw->keys[i]);
        if (v == NULL) {
            const json_t *def = default_of(kw->subs[i]);
            if (def == NULL)
                continue;
            /* its copy would hold the placeholder, not the number */
            if (d->bigs != NULL && ee__schema_bigs_within(d->bigs, def))
                return ee__error(EE_ETOOBIG, "the default at %s holds a number beyond int64 "
                                 "or double, which defaults cannot copy", kw->subs[i]->path);
            if ((v = json_deep_copy(def)) == NULL || json_object_set_new(obj, kw->keys[i], v) != 0)
                return ee__error(EE_ENOMEM, "out of memory applying defaults");
        }
        ee_status st = fill(d, kw->subs[i], v);
        if (st != EE_OK)
            return st;
    }
    return EE_OK;
}

static ee_status fill_items(dctx *d, const sch_node *n, json_t *arr)
{
    const sch_kw *prefix = kw_named(n, "prefixItems"), *items = kw_named(n, "items");
    size_t start = prefix != NULL ? prefix->n : 0;
    ee_status st = EE_OK;
    for (size_t i = 0; st == EE_OK && i < json_array_size(arr); i++) {
        const sch_node *sub = i < start ? prefix->subs[i] : items != NULL ? items->sub : NULL;
        if (sub != NULL)
            st = fill(d, sub, json_array_get(arr, i));
    }
    return st;
}

static ee_status fill_in_place(dctx *d, const sch_node *n, json_t *inst)
{
    const sch_kw *ref = kw_named(n, "$ref"), *all = kw_named(n, "allOf");
    ee_status st = ref != NULL ? fill(d, ref->sub, inst) : EE_OK;
    for (size_t i = 0; st == EE_OK && all != NULL && i < all->n; i++)
        st = fill(d, all->subs[i], inst);
    return st;
}

static ee_status fill(dctx *d, const sch_node *n, json_t *inst)
{
    if (n->boolean >= 0 || !(json_is_object(inst) || json_is_array(inst)))
        return EE_OK;
    if (d->frames >= EE__SCHEMA_MAX_FRAMES)
        return ee__error(EE_ETOOBIG, "applying defaults nested deeper than %d subschemas",
                         EE__SCHEMA_MAX_FRAMES);
    if (++d->steps > d->max_steps)
        return ee__error(EE_ETOOBIG, "applying defaults needed more than %zu subschema visits",
                         d->max_steps);
    d->frames++;
    const sch_kw *props = kw_named(n, "properties");
    ee_status st = EE_OK;
    if (json_is_object(inst) && props != NULL)
        st = fill_properties(d, props, inst);
    if (st == EE_OK && json_is_array(inst))
        st = fill_items(d, n, inst);
    if (st == EE_OK)
        st = fill_in_place(d, n, inst);
    d->frames--;
    return st;
}

ee_status ee__schema_apply_defaults(const ee_schema *schema, json_t *instance)
{
    if (schema == NULL || instance == NULL)
        return ee__error(EE_EINVAL, "ee_schema_apply_defaults: schema and instance must not be NULL");
    size_t values;
    ee_status st = ee__schema_check_instance_size(instance, &values);
    if (st != EE_OK)
        return st;
    dctx d = {.max_steps = EE__SCHEMA_BASE_STEPS + values * EE__SCHEMA_STEPS_PER_VALUE,
              .bigs = schema->bigs};
    return fill(&d, schema->root, instance);
}
