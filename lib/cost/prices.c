/*
 * The model price table: an OpenRouter GET /models answer parsed exactly
 * into atto-USD per token, sorted by model id, and the unknown-price policy.
 */
#include "cost_internal.h"

#include <stdlib.h>
#include <string.h>

void ee__cost_prices_unref(ee__cost_prices *p)
{
    if (p == NULL || atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < p->n; i++)
        free(p->v[i].id);
    free(p->v);
    free(p);
}

static int price_cmp(const void *a, const void *b)
{
    return strcmp(((const ee__cost_price *)a)->id, ((const ee__cost_price *)b)->id);
}

const ee__cost_price *ee__cost_price_find(const ee__cost_prices *p, const char *id)
{
    ee__cost_price key = {.id = (char *)id};
    return p->n ? bsearch(&key, p->v, p->n, sizeof key, price_cmp) : NULL;
}

/* One pricing member into atto-USD. *skip is set for a negative price
 * (OpenRouter's "-1": variable, i.e. unknown). */
static ee_status read_price(const json_t *pricing, const char *member, bool required,
                            const char *model, int64_t *atto, bool *skip)
{
    *atto = 0;
    json_t *v = json_object_get(pricing, member);
    if (v == NULL || json_is_null(v)) {
        if (!required)
            return EE_OK;
        return ee__error(EE_EPARSE, "prices: model \"%s\" has no pricing.%s", model, member);
    }
    bool negative;
    if (ee__cost_json_atto(v, atto, &negative) != EE_OK) {
        char q[64] = "(not a string)";
        if (json_is_string(v))
            ee__quote_for_message(json_string_value(v), q, sizeof q);
        return ee__error(EE_EPARSE, "prices: model \"%s\": pricing.%s %s is not an exact "
                         "decimal USD amount (at most 18 decimals)", model, member, q);
    }
    if (negative && *atto != 0)
        *skip = true;
    return EE_OK;
}

static ee_status read_model(const json_t *m, size_t i, ee__cost_price *out, bool *skip)
{
    *skip = false;
    if (!json_is_object(m))
        return ee__error(EE_EPARSE, "prices: data[%zu] is not an object", i);
    json_t *id = json_object_get(m, "id");
    size_t len = json_string_length(id);
    if (!json_is_string(id) || len == 0 || len > EE_COST_NAME_MAX
        || strlen(json_string_value(id)) != len)
        return ee__error(EE_EPARSE, "prices: data[%zu].id is not a string of 1..%d bytes", i,
                         EE_COST_NAME_MAX);
    char model[EE_COST_NAME_MAX + 8];
    ee__quote_for_message(json_string_value(id), model, 80);
    json_t *pricing = json_object_get(m, "pricing");
    if (!json_is_object(pricing))
        return ee__error(EE_EPARSE, "prices: model \"%s\" has no pricing object", model);
    ee_status st;
    if ((st = read_price(pricing, "prompt", true, model, &out->prompt_atto, skip)) != EE_OK
        || (st = read_price(pricing, "completion", true, model, &out->completion_atto, skip))
               != EE_OK
        || (st = read_price(pricing, "request", false, model, &out->request_atto, skip)) != EE_OK)
        return st;
    if (*skip)
        return EE_OK;
    out->id = strdup(json_string_value(id));
    return out->id ? EE_OK : ee__error(EE_ENOMEM, "out of memory loading prices");
}

ee_status ee__cost_prices_parse(const char *json, ee__cost_prices **out)
{
    *out = NULL;
    json_t *doc;
    ee_status st = ee__cost_json_parse(json, EE_COST_PRICES_MAX_BYTES, "prices", &doc);
    if (st != EE_OK)
        return st;
    json_t *data = json_object_get(doc, "data");
    if (!json_is_object(doc) || !json_is_array(data)) {
        json_decref(doc);
        return ee__error(EE_EPARSE, "prices: expected {\"data\": [...]} as OpenRouter's "
                         "GET /models answers");
    }
    size_t n = json_array_size(data);
    if (n > EE_COST_PRICES_MAX_MODELS) {
        json_decref(doc);
        return ee__error(EE_ETOOBIG, "prices: %zu models, more than %d", n,
                         EE_COST_PRICES_MAX_MODELS);
    }
    ee__cost_prices *p = calloc(1, sizeof *p);
    if (p == NULL || (n && (p->v = calloc(n, sizeof *p->v)) == NULL)) {
        free(p);
        json_decref(doc);
        return ee__error(EE_ENOMEM, "out of memory loading prices");
    }
    atomic_init(&p->refs, 1);
    for (size_t i = 0; i < n && st == EE_OK; i++) {
        bool skip;
        st = read_model(json_array_get(data, i), i, &p->v[p->n], &skip);
        if (st == EE_OK && !skip)
            p->n++;
    }
    json_decref(doc);
    if (st == EE_OK && p->n > 1) {
        qsort(p->v, p->n, sizeof *p->v, price_cmp);
        for (size_t i = 1; i < p->n && st == EE_OK; i++)
            if (strcmp(p->v[i - 1].id, p->v[i].id) == 0) {
                char q[80];
                ee__quote_for_message(p->v[i].id, q, sizeof q);
                st = ee__error(EE_EPARSE, "prices: model \"%s\" is listed twice", q);
            }
    }
    if (st != EE_OK) {
        ee__cost_prices_unref(p);
        return st;
    }
    *out = p;
    return EE_OK;
}

/* ---- unknown-price policy ------------------------------------------------------- */

ee_status ee__cost_policy_read(const json_t *req, ee__cost_policy *out)
{
    memset(out, 0, sizeof *out);
    if (req == NULL)
        return EE_OK;
    json_t *allow = json_object_get(req, "allowUnknownPrice");
    if (allow != NULL && !json_is_boolean(allow))
        return ee__error(EE_EINVAL, "\"allowUnknownPrice\" must be a boolean");
    out->allow_unknown = json_is_true(allow);
    json_t *fb = json_object_get(req, "fallbackPrice");
    if (fb == NULL || json_is_null(fb)) {
        if (out->allow_unknown)
            return ee__error(EE_EINVAL, "\"allowUnknownPrice\" needs a \"fallbackPrice\" "
                             "{\"prompt\", \"completion\"}: an unknown price never costs zero "
                             "silently");
        return EE_OK;
    }
    if (!json_is_object(fb))
        return ee__error(EE_EINVAL, "\"fallbackPrice\" must be an object");
    static const char *const known[] = {"prompt", "completion", "request", NULL};
    ee_status st = ee__json_check_members(fb, known, "fallbackPrice", "/fallbackPrice");
    if (st != EE_OK)
        return st;
    static const char *const members[] = {"prompt", "completion", "request"};
    int64_t *dst[] = {&out->fallback.prompt_atto, &out->fallback.completion_atto,
                      &out->fallback.request_atto};
    for (int i = 0; i < 3; i++) {
        json_t *v = json_object_get(fb, members[i]);
        bool neg = false;
        if (v == NULL && i == 2)
            continue;
        if (v == NULL || ee__cost_json_atto(v, dst[i], &neg) != EE_OK || neg)
            return ee__error(EE_EINVAL, "\"fallbackPrice.%s\" must be a non-negative decimal "
                             "USD amount per token", members[i]);
    }
    return EE_OK;
}

ee_status ee__cost_price_pick(const ee__cost_prices *prices, const ee__cost_policy *pol,
                              const char *model, const char *node,
                              const ee__cost_price **price, bool *unknown)
{
    *unknown = false;
    *price = ee__cost_price_find(prices, model);
    if (*price != NULL)
        return EE_OK;
    if (pol->allow_unknown) {
        *price = &pol->fallback;
        *unknown = true;
        return EE_OK;
    }
    char qm[120], qn[120];
    ee__quote_for_message(model, qm, sizeof qm);
    json_t *detail = json_pack("{s:s}", "model", model);
    if (node != NULL) {
        ee__quote_for_message(node, qn, sizeof qn);
        if (detail != NULL)
            json_object_set_new(detail, "node", json_string(node));
        return ee__error_full(EE_EPRICE, 0, detail, "no known price for model \"%s\" (node "
                              "\"%s\"); refresh the price table or allow a fallback price",
                              qm, qn);
    }
    return ee__error_full(EE_EPRICE, 0, detail, "no known price for model \"%s\"; refresh the "
                          "price table or allow a fallback price", qm);
}

bool ee__cost_call_atto(const ee__cost_price *p, int64_t prompt_tokens, int64_t completion_tokens,
                        ee__u128 *atto)
{
    if (prompt_tokens < 0 || completion_tokens < 0 || prompt_tokens > EE__TOKENS_MAX
        || completion_tokens > EE__TOKENS_MAX)
        return false;
    /* Each product < 2^53 x 2^63 = 2^116: the sum of three stays < 2^118. */
    *atto = (ee__u128)prompt_tokens * (ee__u128)p->prompt_atto
            + (ee__u128)completion_tokens * (ee__u128)p->completion_atto
            + (ee__u128)p->request_atto;
    return true;
}
