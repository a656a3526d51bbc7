/* This engine's execution counts for ee_exec_stats(): submitted, started,
 * ended by final status and the executionTimeMs of the runs that ended, per
 * process since the engine opened (what a Prometheus counter wants: it
 * restarts at 0 with the process). Relaxed atomics, no lock: they count
 * steps whose write this engine made, never read storage. */
#include <stdatomic.h>

#include "exec/exec_internal.h"

static const char *const end_names[X_END_COUNT] = {"completed", "failed", "cancelled",
                                                   "timedOut"};
/* executionTimeMs bucket bounds; past the last: +Inf */
static const int64_t lat_le_ms[X_LAT_BUCKETS] = {100,  250,   500,   1000,  2500,
                                                 5000, 10000, 30000, 60000, 300000};

void ee__exec_count_submitted(x_state *st)
{
    atomic_fetch_add_explicit(&st->counts.submitted, 1, memory_order_relaxed);
}

void ee__exec_count_started(x_state *st)
{
    atomic_fetch_add_explicit(&st->counts.started, 1, memory_order_relaxed);
}

void ee__exec_count_ended(x_state *st, const x_rec *r)
{
    int k;
    switch (r->status) {
    case X_COMPLETED:
        k = X_END_COMPLETED;
        break;
    case X_CANCELLED:
        k = X_END_CANCELLED;
        break;
    case X_FAILED:
        k = r->fail_status == EE_ETIMEOUT ? X_END_TIMED_OUT : X_END_FAILED;
        break;
    default:
        return;
    }
    x_counts *c = &st->counts;
    atomic_fetch_add_explicit(&c->ended[k], 1, memory_order_relaxed);
    if (r->started_at <= 0) /* never ran (cancelled while queued): no execution time */
        return;
    uint64_t ms = r->exec_ms > 0 ? (uint64_t)r->exec_ms : 0;
    size_t b = 0;
    while (b < X_LAT_BUCKETS && (int64_t)ms > lat_le_ms[b])
        b++;
    atomic_fetch_add_explicit(&c->lat_bucket[k][b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->lat_sum_ms[k], ms, memory_order_relaxed);
}

void ee__exec_counts_json(x_state *st, json_t *doc)
{
    x_counts *c = &st->counts;
    json_t *ended = json_object();
    json_t *lat = json_object();
    json_t *le = json_array();
    for (size_t b = 0; b < X_LAT_BUCKETS; b++)
        json_array_append_new(le, json_integer(lat_le_ms[b]));
    json_object_set_new(lat, "le", le);
    for (int k = 0; k < X_END_COUNT; k++) {
        json_object_set_new(ended, end_names[k],
                            json_integer((json_int_t)atomic_load_explicit(
                                &c->ended[k], memory_order_relaxed)));
        /* cumulative, as Prometheus buckets are; the count is the +Inf one */
        json_t *buckets = json_array();
        uint64_t cum = 0;
        for (size_t b = 0; b <= X_LAT_BUCKETS; b++) {
            cum += atomic_load_explicit(&c->lat_bucket[k][b], memory_order_relaxed);
            if (b < X_LAT_BUCKETS)
                json_array_append_new(buckets, json_integer((json_int_t)cum));
        }
        json_object_set_new(
            lat, end_names[k],
            json_pack("{s:I, s:I, s:o}", "count", (json_int_t)cum, "sum",
                      (json_int_t)atomic_load_explicit(&c->lat_sum_ms[k], memory_order_relaxed),
                      "buckets", buckets));
    }
    json_object_set_new(doc, "since", json_integer(st->opened_at));
    json_object_set_new(doc, "submitted",
                        json_integer((json_int_t)atomic_load_explicit(&c->submitted,
                                                                      memory_order_relaxed)));
    json_object_set_new(doc, "started",
                        json_integer((json_int_t)atomic_load_explicit(&c->started,
                                                                      memory_order_relaxed)));
    json_object_set_new(doc, "ended", ended);
    json_object_set_new(doc, "executionTimeMs", lat);
}
