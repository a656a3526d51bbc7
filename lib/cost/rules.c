/*
 * Estimation rules (data/cost_rules.json): which services and node types are
 * LLM calls, external APIs, platform-managed or personal, default token
 * budgets, and the complexity levels. Parsed completely, validated, and
 * turned into sorted lookup tables before a table ever sees them.
 */
#include "cost_internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

const char *const ee__cost_level_names[3] = {"low", "medium", "high"};

static void free_keys(ee__cost_key *k, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(k[i].key);
    free(k);
}

void ee__cost_rules_unref(ee__cost_rules *r)
{
    if (r == NULL || atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < r->n_prims; i++)
        free(r->prims[i].name);
    free(r->prims);
    for (size_t i = 0; i < r->n_services; i++) {
        free(r->services[i].name);
        free(r->services[i].model_prefix);
        free(r->services[i].default_model);
    }
    free(r->services);
    free_keys(r->node_types, r->n_node_types);
    free_keys(r->aliases, r->n_aliases);
    free_keys(r->creds, r->n_creds);
    for (size_t i = 0; i < r->n_model_aliases && r->model_targets; i++)
        free(r->model_targets[i]);
    free(r->model_targets);
    free_keys(r->model_aliases, r->n_model_aliases);
    free(r->default_model);
    free(r->levels);
    free(r);
}

static int key_cmp(const void *a, const void *b)
{
    return strcmp(((const ee__cost_key *)a)->key, ((const ee__cost_key *)b)->key);
}

int ee__cost_key_find(const ee__cost_key *keys, size_t n, const char *key)
{
    if (n == 0)
        return -1;
    ee__cost_key k = {.key = (char *)key};
    const ee__cost_key *hit = bsearch(&k, keys, n, sizeof k, key_cmp);
    return hit ? hit->value : -1;
}

/* ---- a growable key list ----------------------------------------------------------- */

typedef struct {
    ee__cost_key *v;
    size_t n, cap;
} keylist;

static ee_status keylist_add(keylist *l, const char *key, int value, bool lower)
{
    if (l->n == l->cap) {
        ee__cost_key *v = ee__grow(l->v, &l->cap, sizeof *v, 16);
        if (v == NULL)
            return ee__error(EE_ENOMEM, "out of memory loading cost rules");
        l->v = v;
    }
    char *k = strdup(key);
    if (k == NULL)
        return ee__error(EE_ENOMEM, "out of memory loading cost rules");
    if (lower)
        for (char *p = k; *p; p++)
            *p = (char)tolower((unsigned char)*p);
    l->v[l->n].key = k;
    l->v[l->n].value = value;
    l->n++;
    return EE_OK;
}

static ee_status keylist_finish(keylist *l, const char *what, ee__cost_key **out, size_t *n)
{
    if (l->n > 1)
        qsort(l->v, l->n, sizeof *l->v, key_cmp);
    for (size_t i = 1; i < l->n; i++)
        if (strcmp(l->v[i - 1].key, l->v[i].key) == 0) {
            char q[80];
            ee__quote_for_message(l->v[i].key, q, sizeof q);
            return ee__error(EE_EPARSE, "cost rules: %s \"%s\" is listed twice", what, q);
        }
    *out = l->v;
    *n = l->n;
    l->v = NULL;
    l->n = l->cap = 0;
    return EE_OK;
}

/* ---- member helpers --------------------------------------------------------------- */

static bool name_ok(const json_t *v)
{
    size_t len = json_string_length(v);
    return json_is_string(v) && len > 0 && len <= EE_COST_NAME_MAX
           && strlen(json_string_value(v)) == len;
}

static ee_status get_bool(const json_t *obj, const char *key, bool dflt, bool *out,
                          const char *where)
{
    json_t *v = json_object_get(obj, key);
    *out = dflt;
    if (v == NULL)
        return EE_OK;
    if (!json_is_boolean(v))
        return ee__error(EE_EPARSE, "cost rules: %s.%s must be a boolean", where, key);
    *out = json_is_true(v);
    return EE_OK;
}

static ee_status get_int(const json_t *obj, const char *key, int64_t dflt, int64_t max,
                         int64_t *out, const char *where)
{
    json_t *v = json_object_get(obj, key);
    *out = dflt;
    if (v == NULL)
        return EE_OK;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > max)
        return ee__error(EE_EPARSE, "cost rules: %s.%s must be an integer in 0..%lld", where,
                         key, (long long)max);
    *out = json_integer_value(v);
    return EE_OK;
}

static ee_status get_mode(const json_t *v, ee__cost_mode *out, const char *where)
{
    const char *s = json_string_value(v);
    if (s != NULL && strcmp(s, "platform") == 0)
        *out = EE__MODE_PLATFORM;
    else if (s != NULL && strcmp(s, "personal") == 0)
        *out = EE__MODE_PERSONAL;
    else if (s != NULL && strcmp(s, "none") == 0)
        *out = EE__MODE_NONE;
    else
        return ee__error(EE_EPARSE, "cost rules: %s must be \"platform\", \"personal\" or "
                         "\"none\"", where);
    return EE_OK;
}

static int prim_index(const ee__cost_rules *r, const char *name)
{
    for (size_t i = 0; i < r->n_prims; i++)
        if (strcmp(r->prims[i].name, name) == 0)
            return (int)i;
    return -1;
}

static ee_status get_prim(const ee__cost_rules *r, const json_t *v, int *out, const char *where)
{
    *out = json_is_string(v) ? prim_index(r, json_string_value(v)) : -1;
    if (*out < 0)
        return ee__error(EE_EPARSE, "cost rules: %s must name one of \"primitives\"", where);
    return EE_OK;
}

static ee_status dup_opt(const json_t *obj, const char *key, char **out, const char *where)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (v == NULL)
        return EE_OK;
    if (!name_ok(v))
        return ee__error(EE_EPARSE, "cost rules: %s.%s must be a string of 1..%d bytes", where,
                         key, EE_COST_NAME_MAX);
    *out = strdup(json_string_value(v));
    return *out ? EE_OK : ee__error(EE_ENOMEM, "out of memory loading cost rules");
}

/* Add every string of array member `key` to `l` with `value`. */
static ee_status add_names(keylist *l, const json_t *obj, const char *key, int value, bool lower,
                           const char *where)
{
    json_t *arr = json_object_get(obj, key);
    if (arr == NULL)
        return EE_OK;
    if (!json_is_array(arr))
        return ee__error(EE_EPARSE, "cost rules: %s.%s must be an array of strings", where, key);
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        if (!name_ok(v))
            return ee__error(EE_EPARSE, "cost rules: %s.%s[%zu] must be a string of 1..%d bytes",
                             where, key, i, EE_COST_NAME_MAX);
        ee_status st = keylist_add(l, json_string_value(v), value, lower);
        if (st != EE_OK)
            return st;
    }
    return EE_OK;
}

/* ---- sections ----------------------------------------------------------------------- */

static ee_status parse_primitives(ee__cost_rules *r, const json_t *prims)
{
    if (!json_is_object(prims) || json_object_size(prims) == 0 || json_object_size(prims) > 64)
        return ee__error(EE_EPARSE, "cost rules: \"primitives\" must be an object of 1..64 "
                         "entries");
    r->prims = calloc(json_object_size(prims), sizeof *r->prims);
    if (r->prims == NULL)
        return ee__error(EE_ENOMEM, "out of memory loading cost rules");
    const char *name;
    json_t *p;
    json_object_foreach((json_t *)prims, name, p) {
        char where[EE_COST_NAME_MAX + 32];
        char q[80];
        ee__quote_for_message(name, q, sizeof q);
        snprintf(where, sizeof where, "primitives.%s", q);
        if (!json_is_object(p) || strlen(name) == 0 || strlen(name) > EE_COST_NAME_MAX)
            return ee__error(EE_EPARSE, "cost rules: %s must be an object", where);
        ee__cost_primitive *d = &r->prims[r->n_prims];
        if ((d->name = strdup(name)) == NULL)
            return ee__error(EE_ENOMEM, "out of memory loading cost rules");
        r->n_prims++;
        ee_status st;
        if ((st = get_int(p, "predictions", 0, 1000, &d->predictions, where)) != EE_OK
            || (st = get_bool(p, "externalApi", false, &d->external, where)) != EE_OK
            || (st = get_bool(p, "llm", false, &d->llm, where)) != EE_OK
            || (st = get_bool(p, "step", true, &d->step, where)) != EE_OK)
            return st;
    }
    return EE_OK;
}

static ee_status parse_service(ee__cost_rules *r, const json_t *s, size_t i, keylist *types,
                               keylist *aliases, keylist *creds)
{
    char where[48];
    snprintf(where, sizeof where, "services[%zu]", i);
    if (!json_is_object(s))
        return ee__error(EE_EPARSE, "cost rules: %s must be an object", where);
    ee__cost_service *d = &r->services[r->n_services];
    ee_status st;
    json_t *name = json_object_get(s, "name");
    if (!name_ok(name))
        return ee__error(EE_EPARSE, "cost rules: %s.name must be a string of 1..%d bytes",
                         where, EE_COST_NAME_MAX);
    if ((d->name = strdup(json_string_value(name))) == NULL)
        return ee__error(EE_ENOMEM, "out of memory loading cost rules");
    r->n_services++;
    char pw[64], mw[64];
    snprintf(pw, sizeof pw, "%s.primitive", where);
    snprintf(mw, sizeof mw, "%s.credentials", where);
    json_t *mode = json_object_get(s, "credentials");
    d->mode = EE__MODE_NONE;
    if ((st = get_prim(r, json_object_get(s, "primitive"), &d->primitive, pw)) != EE_OK
        || (mode != NULL && (st = get_mode(mode, &d->mode, mw)) != EE_OK)
        || (st = dup_opt(s, "modelPrefix", &d->model_prefix, where)) != EE_OK
        || (st = dup_opt(s, "defaultModel", &d->default_model, where)) != EE_OK)
        return st;
    int idx = (int)(r->n_services - 1);
    if ((st = keylist_add(aliases, d->name, idx, true)) != EE_OK
        || (st = add_names(aliases, s, "aliases", idx, true, where)) != EE_OK
        || (st = add_names(types, s, "nodeTypes", idx, false, where)) != EE_OK
        || (st = add_names(creds, s, "credentialTypes", (int)d->mode, false, where)) != EE_OK)
        return st;
    return EE_OK;
}

static ee_status parse_levels(ee__cost_rules *r, const json_t *cx)
{
    json_t *dflt = json_object_get(cx, "default"), *rules = json_object_get(cx, "rules");
    r->default_level = -1;
    for (int l = 0; l < 3; l++)
        if (json_is_string(dflt) && strcmp(json_string_value(dflt), ee__cost_level_names[l]) == 0)
            r->default_level = l;
    if (!json_is_object(cx) || r->default_level < 0)
        return ee__error(EE_EPARSE, "cost rules: complexity.default must be \"low\", \"medium\" "
                         "or \"high\"");
    if (rules == NULL)
        return EE_OK;
    if (!json_is_array(rules) || json_array_size(rules) > 256)
        return ee__error(EE_EPARSE, "cost rules: complexity.rules must be an array of at most "
                         "256 rules");
    r->levels = calloc(json_array_size(rules) + 1, sizeof *r->levels);
    if (r->levels == NULL)
        return ee__error(EE_ENOMEM, "out of memory loading cost rules");
    size_t i;
    json_t *v;
    json_array_foreach(rules, i, v) {
        char where[48];
        snprintf(where, sizeof where, "complexity.rules[%zu]", i);
        ee__cost_level_rule *d = &r->levels[r->n_levels++];
        json_t *lvl = json_object_get(v, "level");
        d->level = -1;
        for (int l = 0; l < 3; l++)
            if (json_is_string(lvl) && strcmp(json_string_value(lvl), ee__cost_level_names[l]) == 0)
                d->level = l;
        if (!json_is_object(v) || d->level < 0)
            return ee__error(EE_EPARSE, "cost rules: %s.level must be \"low\", \"medium\" or "
                             "\"high\"", where);
        ee_status st;
        const int64_t max = EE_COST_MAX_NODES * INT64_C(1000);
        if ((st = get_int(v, "minSteps", -1, max, &d->min_steps, where)) != EE_OK
            || (st = get_int(v, "minPredictions", -1, max, &d->min_predictions, where)) != EE_OK
            || (st = get_int(v, "minExternalCalls", -1, max, &d->min_external, where)) != EE_OK
            || (st = get_int(v, "minPersonalCalls", -1, max, &d->min_personal, where)) != EE_OK
            || (st = get_int(v, "minPlatformCalls", -1, max, &d->min_platform, where)) != EE_OK)
            return st;
        if (d->min_steps < 0 && d->min_predictions < 0 && d->min_external < 0
            && d->min_personal < 0 && d->min_platform < 0)
            return ee__error(EE_EPARSE, "cost rules: %s has no condition (minSteps, "
                             "minPredictions, minExternalCalls, minPersonalCalls, "
                             "minPlatformCalls)", where);
    }
    return EE_OK;
}

/* "modelAliases": {"gpt-4o-mini": "openai/gpt-4o-mini", ...}: model names
 * as n8n nodes carry them, to price-table ids. */
static ee_status parse_model_aliases(ee__cost_rules *r, const json_t *m)
{
    if (m == NULL)
        return EE_OK;
    if (!json_is_object(m) || json_object_size(m) > EE_COST_PRICES_MAX_MODELS)
        return ee__error(EE_EPARSE, "cost rules: \"modelAliases\" must be an object of at most "
                         "%d names", EE_COST_PRICES_MAX_MODELS);
    size_t n = json_object_size(m);
    if (n == 0)
        return EE_OK;
    r->model_targets = calloc(n, sizeof *r->model_targets);
    keylist l = {0};
    ee_status st = r->model_targets ? EE_OK
                                    : ee__error(EE_ENOMEM, "out of memory loading cost rules");
    const char *k;
    json_t *v;
    size_t i = 0;
    json_object_foreach((json_t *)m, k, v) {
        if (st != EE_OK)
            break;
        if (!name_ok(v) || strlen(k) == 0 || strlen(k) > EE_COST_NAME_MAX) {
            st = ee__error(EE_EPARSE, "cost rules: modelAliases.%.200s must be a model id of "
                           "1..%d bytes", k, EE_COST_NAME_MAX);
            break;
        }
        if ((r->model_targets[i] = strdup(json_string_value(v))) == NULL)
            st = ee__error(EE_ENOMEM, "out of memory loading cost rules");
        else
            st = keylist_add(&l, k, (int)i, false);
        i++;
    }
    if (st == EE_OK)
        st = keylist_finish(&l, "model alias", &r->model_aliases, &r->n_model_aliases);
    if (st != EE_OK) {
        for (size_t j = 0; j < i; j++)
            free(r->model_targets[j]);
        free(r->model_targets);
        r->model_targets = NULL;
    }
    free_keys(l.v, l.n);
    return st;
}

static ee_status parse_doc(ee__cost_rules *r, const json_t *doc)
{
    ee_status st;
    if (!json_is_object(doc))
        return ee__error(EE_EPARSE, "cost rules: the document must be an object");
    json_t *ver = json_object_get(doc, "version");
    if (!json_is_integer(ver) || json_integer_value(ver) != 1)
        return ee__error(EE_EPARSE, "cost rules: \"version\" must be 1");
    if ((st = parse_primitives(r, json_object_get(doc, "primitives"))) != EE_OK)
        return st;

    json_t *llm = json_object_get(doc, "llm");
    if (!json_is_object(llm))
        return ee__error(EE_EPARSE, "cost rules: \"llm\" must be an object");
    if ((st = dup_opt(llm, "defaultModel", &r->default_model, "llm")) != EE_OK
        || (st = get_int(llm, "promptTokens", 1000, EE__TOKENS_MAX, &r->prompt_tokens, "llm"))
               != EE_OK
        || (st = get_int(llm, "completionTokens", 500, EE__TOKENS_MAX, &r->completion_tokens,
                         "llm")) != EE_OK)
        return st;
    if (r->default_model == NULL)
        return ee__error(EE_EPARSE, "cost rules: llm.defaultModel is required");

    json_t *services = json_object_get(doc, "services");
    if (!json_is_array(services) || json_array_size(services) > EE_COST_MAX_NODES)
        return ee__error(EE_EPARSE, "cost rules: \"services\" must be an array of at most %d",
                         EE_COST_MAX_NODES);
    if (json_array_size(services)
        && (r->services = calloc(json_array_size(services), sizeof *r->services)) == NULL)
        return ee__error(EE_ENOMEM, "out of memory loading cost rules");
    keylist types = {0}, aliases = {0}, creds = {0};
    size_t i;
    json_t *s;
    json_array_foreach(services, i, s) {
        if ((st = parse_service(r, s, i, &types, &aliases, &creds)) != EE_OK)
            break;
    }
    json_t *extra = json_object_get(doc, "credentialTypes");
    if (st == EE_OK && extra != NULL && !json_is_object(extra))
        st = ee__error(EE_EPARSE, "cost rules: \"credentialTypes\" must be an object");
    if (st == EE_OK && extra != NULL) {
        const char *k;
        json_t *v;
        json_object_foreach(extra, k, v) {
            ee__cost_mode m;
            char where[EE_COST_NAME_MAX + 32];
            snprintf(where, sizeof where, "credentialTypes.%.200s", k);
            if ((st = get_mode(v, &m, where)) != EE_OK
                || (st = keylist_add(&creds, k, (int)m, false)) != EE_OK)
                break;
        }
    }
    if (st == EE_OK)
        st = keylist_finish(&types, "node type", &r->node_types, &r->n_node_types);
    if (st == EE_OK)
        st = keylist_finish(&aliases, "service name or alias", &r->aliases, &r->n_aliases);
    if (st == EE_OK)
        st = keylist_finish(&creds, "credential type", &r->creds, &r->n_creds);
    free_keys(types.v, types.n);
    free_keys(aliases.v, aliases.n);
    free_keys(creds.v, creds.n);
    if (st != EE_OK)
        return st;

    if ((st = parse_model_aliases(r, json_object_get(doc, "modelAliases"))) != EE_OK)
        return st;
    json_t *uc = json_object_get(doc, "unknownCredential");
    r->unknown_credential = EE__MODE_PERSONAL;
    if (uc != NULL && (st = get_mode(uc, &r->unknown_credential, "unknownCredential")) != EE_OK)
        return st;
    json_t *un = json_object_get(doc, "unknownNodeType");
    if (!json_is_object(un))
        return ee__error(EE_EPARSE, "cost rules: \"unknownNodeType\" must be an object");
    if ((st = get_prim(r, json_object_get(un, "withCredentials"), &r->unknown_with_creds,
                       "unknownNodeType.withCredentials")) != EE_OK
        || (st = get_prim(r, json_object_get(un, "withoutCredentials"),
                          &r->unknown_without_creds, "unknownNodeType.withoutCredentials"))
               != EE_OK)
        return st;
    return parse_levels(r, json_object_get(doc, "complexity"));
}

ee_status ee__cost_rules_parse(const char *json, ee__cost_rules **out)
{
    *out = NULL;
    json_t *doc;
    ee_status st = ee__cost_json_parse(json, EE_COST_RULES_MAX_BYTES, "cost rules", &doc);
    if (st != EE_OK)
        return st;
    ee__cost_rules *r = calloc(1, sizeof *r);
    if (r == NULL) {
        json_decref(doc);
        return ee__error(EE_ENOMEM, "out of memory loading cost rules");
    }
    atomic_init(&r->refs, 1);
    st = parse_doc(r, doc);
    json_decref(doc);
    if (st != EE_OK) {
        ee__cost_rules_unref(r);
        return st;
    }
    *out = r;
    return EE_OK;
}
