/*
 * The cost table handle. It points at two immutable, reference-counted
 * objects - the prices and the rules - and a load swaps in a complete new
 * one under a mutex. Readers take references to both under the same mutex,
 * so each call sees one consistent pair however loads interleave, and a
 * failed load never touches what is in use.
 */
#include "cost_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ee_cost_table {
    pthread_mutex_t lock; /* guards the two pointers only */
    ee__cost_prices *prices;
    ee__cost_rules *rules;
};

static ee__cost_prices *empty_prices(void)
{
    ee__cost_prices *p = calloc(1, sizeof *p);
    if (p != NULL)
        atomic_init(&p->refs, 1);
    return p;
}

ee_status ee_cost_table_new(ee_cost_table **out)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee_cost_table_new: out is NULL");
    *out = NULL;
    ee_cost_table *t = calloc(1, sizeof *t);
    if (t == NULL || (t->prices = empty_prices()) == NULL) {
        free(t);
        return ee__error(EE_ENOMEM, "out of memory creating a cost table");
    }
    if (pthread_mutex_init(&t->lock, NULL) != 0) {
        ee__cost_prices_unref(t->prices);
        free(t);
        return ee__error(EE_ENOMEM, "cannot create the cost table's mutex");
    }
    *out = t;
    return EE_OK;
}

void ee_cost_table_free(ee_cost_table *t)
{
    if (t == NULL)
        return;
    ee__cost_prices_unref(t->prices);
    ee__cost_rules_unref(t->rules);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

void ee__cost_snapshot_take(const ee_cost_table *ct, ee__cost_snapshot *s)
{
    /* The handle is logically const to readers; only its lock changes. */
    ee_cost_table *t = (ee_cost_table *)ct;
    pthread_mutex_lock(&t->lock);
    s->prices = t->prices;
    atomic_fetch_add_explicit(&s->prices->refs, 1, memory_order_relaxed);
    s->rules = t->rules;
    if (s->rules != NULL)
        atomic_fetch_add_explicit(&s->rules->refs, 1, memory_order_relaxed);
    pthread_mutex_unlock(&t->lock);
}

void ee__cost_snapshot_drop(ee__cost_snapshot *s)
{
    ee__cost_prices_unref(s->prices);
    ee__cost_rules_unref(s->rules);
    s->prices = NULL;
    s->rules = NULL;
}

/* ---- reading documents ------------------------------------------------------- */

ee_status ee__cost_read_file(const char *path, size_t max, char **out)
{
    size_t n = 0;
    ee_status st = ee__read_file(path, max, out, &n);
    if (st == EE_ENOTFOUND) {
        char why[EE__ERROR_MSG_MAX];
        snprintf(why, sizeof why, "%s", ee_error_last_message());
        st = ee__error(EE_EIO, "%s", why);
    }
    if (st == EE_OK && memchr(*out, '\0', n) != NULL) {
        char q[200];
        ee__quote_for_message(path, q, sizeof q);
        free(*out);
        *out = NULL;
        return ee__error(EE_EPARSE, "%s contains a NUL byte", q);
    }
    return st;
}

ee_status ee__cost_json_parse(const char *text, size_t max, const char *what, json_t **out)
{
    return ee__json_parse(text, max, EE__COST_MAX_DEPTH, EE__JSON_EXACT_NUMBERS, what, out);
}

/* ---- loading ------------------------------------------------------------------- */

/* Read the file at `path` (at most `max` bytes) and hand its text to `load`. */
static ee_status load_file(ee_cost_table *t, const char *path, size_t max,
                           ee_status (*load)(ee_cost_table *, const char *), const char *what)
{
    if (t == NULL || path == NULL)
        return ee__error(EE_EINVAL, "%s: NULL argument", what);
    char *text;
    ee_status st = ee__cost_read_file(path, max, &text);
    if (st != EE_OK)
        return st;
    st = load(t, text);
    free(text);
    return st;
}

ee_status ee_cost_table_load_prices_json(ee_cost_table *t, const char *json)
{
    if (t == NULL || json == NULL)
        return ee__error(EE_EINVAL, "ee_cost_table_load_prices_json: NULL argument");
    ee__cost_prices *p;
    ee_status st = ee__cost_prices_parse(json, &p);
    if (st != EE_OK)
        return st;
    pthread_mutex_lock(&t->lock);
    ee__cost_prices *old = t->prices;
    t->prices = p;
    pthread_mutex_unlock(&t->lock);
    ee__cost_prices_unref(old);
    return EE_OK;
}

ee_status ee_cost_table_load_prices_file(ee_cost_table *t, const char *path)
{
    return load_file(t, path, EE_COST_PRICES_MAX_BYTES, ee_cost_table_load_prices_json,
                     "ee_cost_table_load_prices_file");
}

ee_status ee_cost_table_load_rules_json(ee_cost_table *t, const char *json)
{
    if (t == NULL || json == NULL)
        return ee__error(EE_EINVAL, "ee_cost_table_load_rules_json: NULL argument");
    ee__cost_rules *r;
    ee_status st = ee__cost_rules_parse(json, &r);
    if (st != EE_OK)
        return st;
    pthread_mutex_lock(&t->lock);
    ee__cost_rules *old = t->rules;
    t->rules = r;
    pthread_mutex_unlock(&t->lock);
    ee__cost_rules_unref(old);
    return EE_OK;
}

ee_status ee_cost_table_load_rules_file(ee_cost_table *t, const char *path)
{
    return load_file(t, path, EE_COST_RULES_MAX_BYTES, ee_cost_table_load_rules_json,
                     "ee_cost_table_load_rules_file");
}

ee_status ee_cost_table_price_json(const ee_cost_table *t, const char *model, char **out)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee_cost_table_price_json: out is NULL");
    *out = NULL;
    if (t == NULL || model == NULL)
        return ee__error_out(out, ee__error(EE_EINVAL, "ee_cost_table_price_json: NULL argument"));
    ee__cost_snapshot s;
    ee__cost_snapshot_take(t, &s);
    ee__cost_policy none = {0};
    const ee__cost_price *p;
    bool unknown;
    ee_status st = ee__cost_price_pick(s.prices, &none, model, NULL, &p, &unknown);
    if (st != EE_OK) {
        ee__cost_snapshot_drop(&s);
        return ee__error_out(out, st);
    }
    char a[48], b[48], c[48];
    ee__cost_atto_format(p->prompt_atto, a);
    ee__cost_atto_format(p->completion_atto, b);
    ee__cost_atto_format(p->request_atto, c);
    json_t *doc = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "model", p->id, "prompt", a,
                            "completion", b, "request", c, "promptAttoUsd",
                            (json_int_t)p->prompt_atto, "completionAttoUsd",
                            (json_int_t)p->completion_atto, "requestAttoUsd",
                            (json_int_t)p->request_atto);
    ee__cost_snapshot_drop(&s);
    return ee__json_out(out, doc);
}
