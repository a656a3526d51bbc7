/*
 * lib/counters/counters_internal.h - private: what the counters wrapper and
 * its built-in backends share (never installed). Nothing here leaves
 * lib/counters/ (the module's tests and benchmarks apart): other modules
 * use counters/counters.h. A backend folder reaches the rest of the library
 * only through this header, counters/counters.h and core.
 */
#ifndef EE_COUNTERS_INTERNAL_H
#define EE_COUNTERS_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "core/core.h"
#include "counters/counters.h"
#include "execengine/counters.h"

/* Each built-in backend's constructor: on EE_OK *table and *ctx are set and
 * the caller owns ctx (table->free). On failure the error is recorded. */
ee_status ee__counters_memory_create(const ee_counters_backend **table, void **ctx);
ee_status ee__counters_sqlite_create(const char *path, const ee_counters_backend **table,
                                     void **ctx);
/* libpq's notices go to `lg` (may be NULL: dropped), never to stderr. */
ee_status ee__counters_postgres_create(const char *conninfo, const ee__logger *lg,
                                       const ee_counters_backend **table, void **ctx);
ee_status ee__counters_redis_create(const char *uri, const ee_counters_backend **table,
                                    void **ctx);

/* What the built-in backends offer beyond the public table (never part of
 * the ABI; a custom backend has none of it):
 *   resolve         a handle for `key` that lives as long as the backend, so
 *                   a hot path skips the key work (NULL: no handles);
 *   lock_order      for requests on `count` handles (every one set), their
 *                   indices in the order reserve_leased works on them (NULL:
 *                   the backend has no such order);
 *   reserve_leased  reserve_many with a lease per request and, for each
 *                   request, a handle from resolve or NULL (then by key).
 *                   `order` is NULL, or what lock_order gave for these
 *                   handles (then every handle is set): a caller reusing
 *                   one request set works the order out once. */
typedef ee_status (*ee__counters_reserve_fn)(void *ctx, const ee_counter_req *reqs,
                                             void *const *handles, const uint8_t *order,
                                             const int64_t *leases, size_t count,
                                             int64_t now_ms, ee_counter_result *results,
                                             int *granted);
typedef struct ee__counters_ext {
    ee_status (*resolve)(void *ctx, const char *key, void **handle);
    void (*lock_order)(void *const *handles, size_t count, uint8_t *order);
    ee__counters_reserve_fn reserve_leased;
    /* Add `amount` to the committed part of `key` in one transaction: the
     * counter is created (window ending at window_end, 0: none) or rolled
     * over into that window if its own ended (NULL: the backend is not a
     * durable store). */
    ee_status (*credit)(void *ctx, const char *key, int64_t amount, int64_t window_end,
                        int64_t now_ms);
} ee__counters_ext;

extern const ee__counters_ext ee__counters_memory_ext;
extern const ee__counters_ext ee__counters_storage_ext;
extern const ee__counters_ext ee__counters_redis_ext;

/* Wrap a validated built-in table: like ee_counters_new_custom() with a
 * backend name and its extension (may be NULL). On failure ctx is freed
 * through the table. */
ee_status ee__counters_wrap(ee_counters **out, const ee_counters_backend *table, void *ctx,
                            const char *name, const ee__counters_ext *ext);

/* ---- the lock of memory counters over a database storage (lock.c) ------------------------ */

/* Held by memory counters opened over a sqlite or postgres storage, for as
 * long as they live: `kind` "sqlite" locks the file `target` (flock on
 * "<target>.counters-lock"), "postgres" takes an advisory lock on the
 * database of conninfo `target`. `shared` (sqlite only): the lock storage:
 * counters opened by URI hold, which excludes memory counters but not
 * each other. EE_EBUSY (message naming EE_COUNTERS_URI) when another
 * holder has it; EE_EIO, EE_ENETWORK, EE_EAUTH, EE_ENOMEM. */
typedef struct ee__counters_lock ee__counters_lock;
ee_status ee__counters_lock_take(const char *kind, const char *target, bool shared,
                                 ee__counters_lock **out);
void ee__counters_lock_free(ee__counters_lock *lock);

/* ---- what counters/counters.h's calls are made of (counters.c, prepared.c) ------------- */

/* Redis counters' part of ee__counters_durable() and
 * ee__counters_set_recovery() (lib/counters/redis): the durable store
 * beside them (their epoch is kept only with one) and the recovery
 * time. */
void ee__counters_redis_durable(void *ctx, ee_counters *durable);
void ee__counters_redis_recovery(void *ctx, int64_t ms);

/* A handle for `key` (validated here) on backends that have them; *handle
 * is NULL on the others, which is not an error. Returns EE_OK, EE_EINVAL
 * (bad key), EE_ENOMEM. */
ee_status ee__counters_resolve(ee_counters *counters, const char *key, void **handle);

/* ee_counters_reserve_many_leased() with optional handles from
 * ee__counters_resolve() (handles may be NULL, or hold NULL entries; a
 * request with a handle must name the key it was resolved from, which is
 * not checked again). */
ee_status ee__counters_reserve_leased(ee_counters *counters, const ee_counter_req *reqs,
                                      void *const *handles, const int64_t *leases, size_t count,
                                      int64_t now_ms, ee_counter_result *results, int *granted);

/* Validate a prepared request set once (what ee__counters_reserve_leased()
 * checks on every call: keys, numbers, leases, repeated counters), for
 * requests reused with ee__counters_direct()'s function until their window
 * ends (ee__counters_prepared_set). Returns EE_OK or EE_EINVAL. */
ee_status ee__counters_check_prepared(const ee_counter_req *reqs, void *const *handles,
                                      const int64_t *leases, size_t count, int64_t now_ms);

/* The backend's own leased reserve, for requests checked once with
 * ee__counters_check_prepared() and kept valid since (only amounts the
 * caller changed, and checked, differ; now_ms has not gone back and is
 * before every window_end_ms): *fn and *ctx, valid as long as `counters`,
 * when it is a built-in, thread-safe backend. Otherwise *fn is NULL: use
 * ee__counters_reserve_leased(). A direct call checks nothing, takes no
 * lock of the wrapper's and leaves *granted unspecified on failure; its
 * `order` comes from ee__counters_lock_order() for the same handles. */
void ee__counters_direct(ee_counters *counters, ee__counters_reserve_fn *fn, void **ctx);

/* The `order` argument of a direct call on `count` (1..EE_COUNTERS_MANY_MAX)
 * handles, every one set: the backend's lock_order, or 0 .. count - 1 for
 * a backend without one (it ignores the order). */
void ee__counters_lock_order(ee_counters *counters, void *const *handles, size_t count,
                             uint8_t *order);

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

/* EE_ENOTFOUND "counter \"key\": reservation <id> <why>", the one
 * wording every backend uses. */
ee_status ee__counters_not_found(const char *key, uint64_t id, const char *why);

/* What a server-side finish (a Redis script, a PostgreSQL function)
 * answers, and the status and message each becomes
 * (ee__counters_finish_answer; `amount` is only quoted). */
enum {
    EE__FINISH_DONE = 0,
    EE__FINISH_NO_COUNTER = -1,    /* "is unknown" */
    EE__FINISH_WINDOW_ENDED = -2,
    EE__FINISH_EXPIRED = -3,
    EE__FINISH_TOO_MUCH = -4,      /* commit amount > n: EE_EINVAL */
    EE__FINISH_NOT_LIVE = -5,      /* renew found nothing live */
    EE__FINISH_UNKNOWN = -6        /* "is unknown or already finished" */
};
ee_status ee__counters_finish_answer(const char *key, uint64_t id, int64_t amount, int code);

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
