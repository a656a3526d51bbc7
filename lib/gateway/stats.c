/* ee_gateway_stats(): per provider of gateway.json, the calls this engine's
 * gateway forwarded (by HTTP status class of the answer), refused for a
 * spent budget, metered (cost, tokens) and the time upstream took; per
 * process since the engine opened. The table is fixed at open (one entry
 * per provider), so the answer's size is bounded by gateway.json. */
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "execengine/gateway.h"
#include "gateway/gateway_internal.h"

static const char *const class_names[G_CLASS_COUNT] = {"2xx", "3xx", "4xx", "5xx", "none"};
/* upstream latency bucket bounds (ms); past the last: +Inf */
static const int64_t lat_le_ms[G_LAT_BUCKETS] = {50,   100,  250,   500,   1000,
                                                 2500, 5000, 10000, 30000, 60000};

int64_t ee__gateway_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void add(_Atomic uint64_t *a, int64_t v)
{
    if (v > 0)
        atomic_fetch_add_explicit(a, (uint64_t)v, memory_order_relaxed);
}

void ee__gateway_count_call(const g_provider *p, int http_status, const ee__gateway_call *call,
                            int64_t upstream_us)
{
    g_pstats *c = p->stats;
    if (c == NULL)
        return;
    int k = http_status <= 0    ? G_CLASS_NONE
            : http_status < 300 ? G_CLASS_2XX
            : http_status < 400 ? G_CLASS_3XX
            : http_status < 500 ? G_CLASS_4XX
                                : G_CLASS_5XX;
    atomic_fetch_add_explicit(&c->calls, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->by_class[k], 1, memory_order_relaxed);
    if (call != NULL) {
        add(&c->cost_nano, call->cost_nano);
        if (call->source != NULL && strcmp(call->source, "platform") == 0)
            add(&c->platform_cost_nano, call->cost_nano);
        add(&c->prompt_tokens, call->prompt_tokens);
        add(&c->completion_tokens, call->completion_tokens);
        add(&c->total_tokens, call->total_tokens);
    }
    if (upstream_us < 0)
        upstream_us = 0;
    size_t b = 0;
    while (b < G_LAT_BUCKETS && upstream_us > lat_le_ms[b] * 1000)
        b++;
    atomic_fetch_add_explicit(&c->lat_bucket[b], 1, memory_order_relaxed);
    add(&c->lat_sum_us, upstream_us);
}

void ee__gateway_count_refused(const g_provider *p)
{
    if (p->stats != NULL)
        atomic_fetch_add_explicit(&p->stats->refused_budget, 1, memory_order_relaxed);
}

static json_int_t load(const _Atomic uint64_t *a)
{
    return (json_int_t)atomic_load_explicit(a, memory_order_relaxed);
}

static json_t *provider_json(const g_pstats *c)
{
    json_t *classes = json_object();
    for (int k = 0; k < G_CLASS_COUNT && classes != NULL; k++)
        json_object_set_new(classes, class_names[k], json_integer(load(&c->by_class[k])));
    /* cumulative, as Prometheus buckets are; the count is the +Inf one */
    json_t *buckets = json_array();
    json_int_t cum = 0;
    for (size_t b = 0; b <= G_LAT_BUCKETS && buckets != NULL; b++) {
        cum += load(&c->lat_bucket[b]);
        if (b < G_LAT_BUCKETS)
            json_array_append_new(buckets, json_integer(cum));
    }
    if (classes == NULL || buckets == NULL) {
        json_decref(classes);
        json_decref(buckets);
        return NULL;
    }
    return json_pack("{s:I, s:o, s:I, s:I, s:I, s:{s:I, s:I, s:I}, s:{s:I, s:I, s:o}}", "calls",
                     load(&c->calls), "byStatusClass", classes, "refusedBudget",
                     load(&c->refused_budget), "costNano", load(&c->cost_nano),
                     "platformCostNano", load(&c->platform_cost_nano), "tokens", "prompt",
                     load(&c->prompt_tokens), "completion", load(&c->completion_tokens), "total",
                     load(&c->total_tokens), "upstreamMs", "count", cum, "sumUs",
                     load(&c->lat_sum_us), "buckets", buckets);
}

ee_status ee_gateway_stats(ee_engine *engine, char **out)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee_gateway_stats: out must not be NULL");
    *out = NULL;
    g_state *st = ee__gateway_state(engine);
    if (st == NULL)
        return ee__error_out(out, ee__error(EE_EINVAL, "ee_gateway_stats: engine must not be "
                                                       "NULL"));
    json_t *le = json_array();
    for (size_t b = 0; b < G_LAT_BUCKETS && le != NULL; b++)
        json_array_append_new(le, json_integer(lat_le_ms[b]));
    json_t *providers = json_object();
    for (size_t i = 0; i < st->n_providers && providers != NULL; i++) {
        json_t *pj = provider_json(&st->pstats[i]);
        if (pj == NULL || json_object_set_new(providers, st->providers[i].name, pj) != 0) {
            json_decref(providers);
            providers = NULL;
        }
    }
    json_t *doc = le != NULL && providers != NULL
                      ? json_pack("{s:I, s:o, s:o}", "since", (json_int_t)st->opened_at,
                                  "upstreamMsLe", le, "providers", providers)
                      : NULL;
    if (doc == NULL) {
        if (le == NULL || providers == NULL) {
            json_decref(le);
            json_decref(providers);
        }
        return ee__error_out(out, ee__error(EE_ENOMEM, "out of memory answering gateway "
                                                       "stats"));
    }
    return ee__json_out(out, doc);
}
