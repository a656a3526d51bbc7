/*
 * Actual cost of a finished run from its reported usage: a provider's own
 * cost wins for its entry, else tokens x the table's price (or the allowed
 * fallback). The total is rounded once; entries get the largest-remainder
 * split of it, and the optional charge is split the same way.
 */
#include "cost_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { SRC_PROVIDER, SRC_PRICE, SRC_FALLBACK } source;
static const char *const source_names[] = {"provider", "price", "fallback"};

typedef struct {
    const char *model, *node; /* borrowed from the usage document */
    int64_t prompt, completion;
    source src;
    ee__u128 atto;
} entry;

/* A token count member under its camelCase or snake_case name. */
static ee_status tokens(const json_t *e, const char *camel, const char *snake, size_t i,
                        int64_t *out)
{
    json_t *v = json_object_get(e, camel);
    if (v == NULL)
        v = json_object_get(e, snake);
    *out = 0;
    if (v == NULL)
        return EE_OK;
    /* null is no count: refused like any other wrong type, never read as 0 */
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > EE__TOKENS_MAX)
        return ee__error(EE_EINVAL, "usage[%zu].%s must be an integer in 0..2^53-1", i, camel);
    *out = json_integer_value(v);
    return EE_OK;
}

/* The provider-reported cost of an entry, if any, in atto-USD. */
static ee_status provider_cost(const json_t *e, size_t i, bool *has, ee__u128 *atto)
{
    json_t *cost = json_object_get(e, "cost"), *nano = json_object_get(e, "costNano");
    *has = false;
    if (cost != NULL && json_is_null(cost))
        cost = NULL;
    if (nano != NULL && json_is_null(nano))
        nano = NULL;
    if (cost != NULL && nano != NULL)
        return ee__error(EE_EINVAL, "usage[%zu]: give \"cost\" or \"costNano\", not both", i);
    if (nano != NULL) {
        if (!json_is_integer(nano) || json_integer_value(nano) < 0)
            return ee__error(EE_EINVAL, "usage[%zu].costNano must be a non-negative integer", i);
        *atto = (ee__u128)json_integer_value(nano) * (ee__u128)EE__ATTO_PER_NANO;
        *has = true;
    } else if (cost != NULL) {
        int64_t a;
        bool neg;
        if (ee__cost_json_atto(cost, &a, &neg) != EE_OK)
            return ee__error(EE_EPARSE, "usage[%zu].cost is not an exact decimal USD amount "
                             "(a string with at most 18 decimals, or a number of at most 15 "
                             "significant digits)", i);
        if (neg && a != 0)
            return ee__error(EE_EINVAL, "usage[%zu].cost is negative", i);
        *atto = (ee__u128)a;
        *has = true;
    }
    return EE_OK;
}

static ee_status read_entry(const json_t *e, size_t i, const ee__cost_prices *prices,
                            const ee__cost_policy *pol, entry *out, bool *unknown)
{
    if (!json_is_object(e))
        return ee__error(EE_EPARSE, "usage[%zu] is not an object", i);
    static const char *const members[] = {"model", "node", "promptTokens", "prompt_tokens",
                                          "completionTokens", "completion_tokens", "cost",
                                          "costNano", NULL};
    char ptr[48];
    snprintf(ptr, sizeof ptr, "/usage/%zu", i);
    ee_status mst = ee__json_check_members(e, members, "usage", ptr);
    if (mst != EE_OK)
        return mst;
    json_t *model = json_object_get(e, "model"), *node = json_object_get(e, "node");
    if (model != NULL && (!json_is_string(model) || json_string_length(model) == 0
                          || json_string_length(model) > EE_COST_NAME_MAX))
        return ee__error(EE_EINVAL, "usage[%zu].model must be a string of 1..%d bytes", i,
                         EE_COST_NAME_MAX);
    if (node != NULL && !json_is_string(node))
        return ee__error(EE_EINVAL, "usage[%zu].node must be a string", i);
    out->model = json_string_value(model);
    out->node = json_string_value(node);
    ee_status st;
    bool has;
    if ((st = tokens(e, "promptTokens", "prompt_tokens", i, &out->prompt)) != EE_OK
        || (st = tokens(e, "completionTokens", "completion_tokens", i, &out->completion)) != EE_OK
        || (st = provider_cost(e, i, &has, &out->atto)) != EE_OK)
        return st;
    *unknown = false;
    if (has) {
        out->src = SRC_PROVIDER;
        return EE_OK;
    }
    if (out->model == NULL)
        return ee__error(EE_EINVAL, "usage[%zu] has neither a provider cost nor a model", i);
    const ee__cost_price *p;
    if ((st = ee__cost_price_pick(prices, pol, out->model, out->node, &p, unknown)) != EE_OK)
        return st;
    out->src = *unknown ? SRC_FALLBACK : SRC_PRICE;
    (void)ee__cost_call_atto(p, out->prompt, out->completion, &out->atto);
    return EE_OK;
}

static json_t *entries_doc(const entry *v, size_t n, const int64_t *parts)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++) {
        json_t *o = json_pack("{s:s?, s:s?, s:I, s:I, s:s, s:o, s:b}", "model", v[i].model,
                              "node", v[i].node, "promptTokens", (json_int_t)v[i].prompt,
                              "completionTokens", (json_int_t)v[i].completion, "source",
                              source_names[v[i].src], "cost", ee__cost_money(parts[i]),
                              "priceUnknown", v[i].src == SRC_FALLBACK);
        if (o == NULL || json_array_append_new(arr, o) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    return arr;
}

static ee_status int_member(const json_t *o, const char *key, int64_t *out)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return ee__error(EE_EINVAL, "charge.%s must be a non-negative integer", key);
    *out = json_integer_value(v);
    return EE_OK;
}

/* The optional "charge": computed, and split over the entries like the cost. */
static ee_status charge_doc(const json_t *req, int64_t cost, const ee__u128 *atto, size_t n,
                            json_t **out)
{
    *out = NULL;
    if (req == NULL || json_is_null(req))
        return EE_OK;
    if (!json_is_object(req))
        return ee__error(EE_EINVAL, "\"charge\" must be an object");
    static const char *const members[] = {"platformKey", "markupBp", "allowanceNano",
                                          "allowanceUsedNano", NULL};
    ee_status mst = ee__json_check_members(req, members, "usage", "/charge");
    if (mst != EE_OK)
        return mst;
    json_t *pk = json_object_get(req, "platformKey");
    if (!json_is_boolean(pk))
        return ee__error(EE_EINVAL, "charge.platformKey must be a boolean");
    int64_t bp = 0, allowance = 0, used = 0, charged, consumed, after;
    ee_status st;
    bool platform = json_is_true(pk);
    if (platform && ((st = int_member(req, "markupBp", &bp)) != EE_OK
                     || (st = int_member(req, "allowanceNano", &allowance)) != EE_OK
                     || (st = int_member(req, "allowanceUsedNano", &used)) != EE_OK))
        return st;
    if ((st = ee_cost_charge_calc(cost, bp, allowance, used, platform, &charged, &consumed,
                                  &after)) != EE_OK)
        return st;
    json_t *doc = ee__cost_charge_doc(cost, bp, allowance, used, platform, charged, consumed,
                                      after);
    int64_t small[16], *parts = n <= 16 ? small : malloc(n * sizeof *parts);
    json_t *arr = json_array();
    st = doc && arr && parts ? EE_OK : ee__error(EE_ENOMEM, "out of memory charging usage");
    if (st == EE_OK)
        st = ee__cost_split(parts, charged, atto, n);
    for (size_t i = 0; st == EE_OK && i < n; i++)
        if (json_array_append_new(arr, ee__cost_money(parts[i])) != 0)
            st = ee__error(EE_ENOMEM, "out of memory charging usage");
    if (st == EE_OK && json_object_set(doc, "entries", arr) != 0)
        st = ee__error(EE_ENOMEM, "out of memory charging usage");
    json_decref(arr);
    if (parts != small)
        free(parts);
    if (st != EE_OK) {
        json_decref(doc);
        return st;
    }
    *out = doc;
    return EE_OK;
}

static ee_status add_checked(int64_t *sum, int64_t v)
{
    if (*sum > INT64_MAX - v)
        return ee__error(EE_ETOOBIG, "usage: token totals exceed the int64 range");
    *sum += v;
    return EE_OK;
}

static ee_status compute(const json_t *req, const ee__cost_prices *prices, char **out)
{
    if (!json_is_object(req))
        return ee__error(EE_EPARSE, "usage: expected {\"usage\": [...]}");
    static const char *const members[] = {"usage", "allowUnknownPrice", "fallbackPrice",
                                          "charge", NULL};
    ee_status mst = ee__json_check_members(req, members, "usage", "");
    if (mst != EE_OK)
        return mst;
    json_t *usage = json_object_get(req, "usage");
    if (!json_is_array(usage))
        return ee__error(EE_EPARSE, "usage: \"usage\" must be an array of entries");
    size_t n = json_array_size(usage);
    if (n > EE_COST_MAX_NODES)
        return ee__error(EE_ETOOBIG, "usage: %zu entries, more than %d", n, EE_COST_MAX_NODES);
    ee__cost_policy pol;
    ee_status st = ee__cost_policy_read(req, &pol);
    if (st != EE_OK)
        return st;
    entry *v = calloc(n ? n : 1, sizeof *v);
    ee__u128 *atto = calloc(n ? n : 1, sizeof *atto);
    int64_t *parts = calloc(n ? n : 1, sizeof *parts);
    if (v == NULL || atto == NULL || parts == NULL)
        st = ee__error(EE_ENOMEM, "out of memory reading usage");
    ee__u128 total = 0;
    int64_t prompt = 0, completion = 0, cost = 0;
    bool any_unknown = false;
    for (size_t i = 0; st == EE_OK && i < n; i++) {
        bool unknown;
        st = read_entry(json_array_get(usage, i), i, prices, &pol, &v[i], &unknown);
        if (st != EE_OK)
            break;
        any_unknown |= unknown;
        atto[i] = v[i].atto;
        if (total > EE__U128_SAFE)
            st = ee__error(EE_ETOOBIG, "usage: the cost exceeds the int64 range");
        total += atto[i];
        if (st == EE_OK && (st = add_checked(&prompt, v[i].prompt)) == EE_OK)
            st = add_checked(&completion, v[i].completion);
    }
    if (st == EE_OK && !ee__cost_atto_to_nano(total, &cost))
        st = ee__error(EE_ETOOBIG, "usage: the cost exceeds the int64 range");
    if (st == EE_OK && prompt > INT64_MAX - completion)
        st = ee__error(EE_ETOOBIG, "usage: token totals exceed the int64 range");
    if (st == EE_OK)
        st = ee__cost_split(parts, cost, atto, n);
    json_t *charge = NULL;
    if (st == EE_OK)
        st = charge_doc(json_object_get(req, "charge"), cost, atto, n, &charge);
    if (st == EE_OK) {
        json_t *doc = json_pack("{s:o, s:I, s:I, s:I, s:b, s:o}", "cost", ee__cost_money(cost),
                                "promptTokens", (json_int_t)prompt, "completionTokens",
                                (json_int_t)completion, "totalTokens",
                                (json_int_t)(prompt + completion), "priceUnknown", any_unknown,
                                "entries", entries_doc(v, n, parts));
        if (doc != NULL && charge != NULL && json_object_set(doc, "charge", charge) != 0) {
            json_decref(doc);
            doc = NULL;
        }
        st = ee__json_out(out, doc);
    }
    json_decref(charge);
    free(v);
    free(atto);
    free(parts);
    return st;
}

ee_status ee_cost_actual(const ee_cost_table *table, const char *usage_json, char **out)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee_cost_actual: out is NULL");
    *out = NULL;
    if (table == NULL || usage_json == NULL)
        return ee__error_out(out, ee__error(EE_EINVAL, "ee_cost_actual: NULL argument"));
    json_t *req;
    ee_status st = ee__cost_json_parse(usage_json, EE_COST_DOC_MAX_BYTES, "usage", &req);
    if (st != EE_OK)
        return ee__error_out(out, st);
    ee__cost_snapshot snap;
    ee__cost_snapshot_take(table, &snap);
    st = compute(req, snap.prices, out);
    ee__cost_snapshot_drop(&snap);
    json_decref(req);
    return st == EE_OK || *out != NULL ? st : ee__error_out(out, st);
}
