/*
 * lib/counters/counters_internal.h - what the counters wrapper and its
 * built-in backends share (never installed). A backend folder reaches the
 * rest of the library only through this header and counters.h.
 */
#ifndef EE_COUNTERS_INTERNAL_H
#define EE_COUNTERS_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "execengine/counters.h"

/* Each built-in backend's constructor: on EE_OK *table and *ctx are set and
 * the caller owns ctx (table->free). On failure the error is recorded. */
ee_status ee__counters_memory_create(const ee_counters_backend **table, void **ctx);
ee_status ee__counters_sqlite_create(const char *path, const ee_counters_backend **table,
                                     void **ctx);
ee_status ee__counters_postgres_create(const char *conninfo, const ee_counters_backend **table,
                                       void **ctx);
ee_status ee__counters_redis_create(const char *uri, const ee_counters_backend **table,
                                    void **ctx);

/* Wrap a validated built-in table: like ee_counters_new_custom() with a
 * backend name. On failure ctx is freed through the table. */
ee_status ee__counters_wrap(ee_counters **out, const ee_counters_backend *table, void *ctx,
                            const char *name);

/* The end of a new window that begins at now_ms for `req` (0: no window).
 * The wrapper has checked window_end_ms > now_ms when it is set. */
static inline int64_t ee__counters_new_window_end(const ee_counter_req *req, int64_t now_ms)
{
    if (req->window_end_ms > 0)
        return req->window_end_ms;
    if (req->window_ms > 0)
        return now_ms + req->window_ms;
    return 0;
}

/* Whether a window ending at `end` (0: none) is over at now_ms. */
static inline bool ee__counters_window_over(int64_t end, int64_t now_ms)
{
    return end != 0 && now_ms >= end;
}

/* One outstanding reservation, for ee__counters_retry_at(). */
typedef struct ee__counters_lease {
    int64_t n;
    int64_t expires;
} ee__counters_lease;

/* The earliest time at which `n` more would fit under `limit` if nobody
 * reserved, committed or released meanwhile: committed never drops before
 * the window ends; reservations drop when their leases expire. `leases`
 * (the live reservations, `count` of them) is sorted in place. 0 if no
 * such time exists. Shared so every backend answers the same. */
int64_t ee__counters_retry_at(int64_t committed, int64_t outstanding, int64_t n, int64_t limit,
                              int64_t window_end, ee__counters_lease *leases, size_t count);

/* The memory backend's key hash (8 bytes per step); the benchmarks use it
 * so their baseline differs from the backend only in what counters add. */
uint64_t ee__counters_key_hash(const char *key, size_t len);

#endif
