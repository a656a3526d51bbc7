/*
 * lib/counters/counters.h - semi-private: what the library's other modules
 * (quota, the engine) call of the counters module; never installed. C types, no JSON.
 * The public calls are in execengine/counters.h; the counters' own files
 * and their built-in backends share lib/counters/counters_internal.h
 * (private: nothing of it leaves lib/counters/).
 */
#ifndef EE_COUNTERS_COUNTERS_H
#define EE_COUNTERS_COUNTERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "execengine/counters.h"

/* ---- a prepared reservation ------------------------------------------------------------- */

/*
 * A set of reservation requests that a caller makes again and again (the
 * quota module: one per subject, the same keys and limits for every
 * admission until its limits are resolved again), checked once when it is
 * set and then reserved with only the checks that can change per call.
 * On a built-in, thread-safe backend the reservation goes straight to the
 * backend's own leased reserve, with the counters' handles resolved and
 * their lock order worked out once; otherwise (a custom table, a backend
 * that is serialised, a clock outside the range the set was checked for)
 * through the checked ee_counters_reserve_many_leased() path. The result
 * is the same either way.
 *
 * Fixed-size storage the caller embeds (a hot path allocates nothing and
 * reads it beside its own data): its layout is the counters module's own.
 * It holds pointers into itself, so it is never copied or moved once
 * initialised; it holds nothing to free. It names the counters it was
 * initialised on, which must outlive it. Used by one thread at a time (a
 * reservation writes the call's amount into it for the call's duration).
 *
 *   ee__counters_prepared_init      once: the counters and the keys (1..6,
 *                                   distinct, 512 bytes together at most)
 *   ee__counters_prepared_set       per set of limits: the requests (each
 *                                   naming one of the keys) and their leases
 *   ee__counters_prepared_reserve   per call: the first `count` requests
 */
#define EE__COUNTERS_PREPARED_MAX 6
#define EE__COUNTERS_PREPARED_KEY_BYTES 512
#define EE__COUNTERS_PREPARED_SIZE 1024

typedef struct ee__counters_prepared {
    _Alignas(64) unsigned char opaque_[EE__COUNTERS_PREPARED_SIZE];
} ee__counters_prepared;

/* Initialise *p on `counters` for requests on `keys` (nkeys of them): the
 * keys are checked and copied, and their counters resolved (memory
 * counters create them). No request is set yet: reserving before
 * ee__counters_prepared_set() succeeds is EE_ESTATE. Returns EE_OK;
 * EE_EINVAL (p, counters or keys NULL, nkeys not 1..6, a key invalid or
 * repeated, the keys longer than 512 bytes together); EE_ENOMEM. On failure
 * *p is not initialised. */
ee_status ee__counters_prepared_init(ee__counters_prepared *p, ee_counters *counters,
                                     const char *const *keys, size_t nkeys);

/* Set the requests the reservations send: `count` (1..the number of keys)
 * requests, each naming one of the initialised keys (compared by content:
 * the request's key pointer is not kept) and none twice, with one lease
 * per request; checked as ee_counters_reserve_many_leased() checks them at
 * now_ms. Requests are copied. Returns EE_OK; EE_EINVAL (p not
 * initialised, reqs or leases NULL, count out of range, a key not
 * initialised or repeated, an amount, limit, window or lease out of range);
 * on failure no request is set (reservations answer EE_ESTATE). */
ee_status ee__counters_prepared_set(ee__counters_prepared *p, const ee_counter_req *reqs,
                                    const int64_t *leases, size_t count, int64_t now_ms);

/* Reserve the first `count` (1..the number set) requests at now_ms, all or
 * nothing, as ee_counters_reserve_many_leased() does; `last_n` 0 sends each
 * request's amount as set, 1..2^53-1 replaces the amount of the last one
 * sent, for this call only. `counters` must be the ones *p was initialised
 * on. results has room for `count`; *granted is 0 on any failure. Returns
 * EE_OK (granted or not: see *granted and results); EE_EINVAL (p, counters,
 * results or granted NULL, other counters, count or last_n out of range, a
 * request no longer valid at now_ms); EE_ESTATE (no request set); the
 * backend's failures. */
ee_status ee__counters_prepared_reserve(ee__counters_prepared *p, ee_counters *counters,
                                        size_t count, int64_t last_n, int64_t now_ms,
                                        ee_counter_result *results, int *granted);

/* ---- durable usage beside the counters ---------------------------------------------------- */

/* Where period usage is kept durable when `counters` are not: memory
 * counters opened over a sqlite or postgres storage keep a "storage"
 * counters handle on the same database beside them (the mirror); NULL when
 * the counters are durable themselves (storage:) or have no database
 * (memory: over a memory: storage). Lives as long as `counters`. */
ee_counters *ee__counters_durable(ee_counters *counters);

/* Whether `counters` are shared by every process that uses them (redis,
 * storage), so period usage is never read back into them per engine. */
bool ee__counters_shared(const ee_counters *counters);

/* The longest lease (ms) callers use on `counters`: redis counters with a
 * durable store beside keep admissions closed that long after they found
 * their data lost (at least 15 minutes). Others ignore it. */
void ee__counters_set_recovery(ee_counters *counters, int64_t ms);

/* Add `amount` (1..EE_COUNTERS_VALUE_MAX) to the committed part of `key` on
 * a durable handle, in one transaction: the counter is created (window
 * ending at window_end, 0: none) or rolled over into that window if its own
 * ended. What a commit on the counters beside it is written through as.
 * Returns EE_OK; EE_ENOTSUPPORTED (not a storage counters handle);
 * EE_EINVAL (a number out of range); the backend's failures. */
ee_status ee__counters_credit(ee_counters *durable, const char *key, int64_t amount,
                              int64_t window_end, int64_t now_ms);

/* ---- opening (the engine) ------------------------------------------------------------------ */

/* ee_counters_open_uri() with the engine's logger (it must outlive the
 * handle), which receives the diagnostics of the libraries it uses. `lg`
 * may be NULL. */
ee_status ee__counters_open_uri_logged(ee_counters **out, const char *counters_uri,
                                       const char *storage_uri, const ee__logger *lg);

#endif
