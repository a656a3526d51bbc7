/*
 * execengine/counters.h - atomic bounded counters with windows and leases,
 * and the versioned table a counters backend implements.
 *
 * A counter is named by a key (1..EE_COUNTERS_KEY_MAX bytes of UTF-8, no
 * control characters). Its value in the current window is
 *     committed + outstanding reservations
 * and never exceeds the limit a reservation was checked against:
 *
 *   reserve  n against a limit: granted (a reservation id comes back and the
 *            value grows by n) or refused (nothing changes) - never both,
 *            never past the limit, whatever the interleaving of threads,
 *            processes and hosts sharing the backend;
 *   commit   a reservation: its amount (or part of it) becomes committed,
 *            the rest is given back;
 *   release  a reservation: its amount is given back;
 *   renew    a reservation's lease;
 *   get      the value, the committed part and the window's end.
 *
 * Several counters can be reserved at once with ee_counters_reserve_many():
 * all are granted or none is (a refused admission consumes nothing).
 *
 * Time. Every call takes `now_ms`, milliseconds since the Unix epoch from
 * the caller's clock (the engine's injected clock). No backend reads a clock
 * to decide anything: windows and leases are judged against now_ms only.
 * (The redis backend sets key TTLs for garbage collection relative to
 * Redis's own clock, as (window end - now_ms) from the moment of the call;
 * correctness never depends on them.)
 *
 * Windows. A request names the window its counter lives in: either an
 * absolute end (window_end_ms > now_ms), or a length (window_ms > 0) that
 * starts at the first reservation after the previous window ended, or
 * neither (both 0: the counter never resets). A counter keeps the window it
 * has until now_ms reaches its end; the window fields of later requests
 * only matter when a new window begins. When a window ends, its committed
 * value and its outstanding reservations are gone: the next window starts
 * at 0.
 *
 * Leases. A reservation lives for lease_ms from now_ms (ee_counters_renew()
 * extends it). Once now_ms reaches its expiry it stops counting, so a holder
 * that crashed cannot keep the capacity forever. Committing, releasing or
 * renewing a reservation that expired, whose window ended, or that was
 * already committed or released returns EE_ENOTFOUND and changes nothing:
 * an expired reservation is never committed after the fact (it could push
 * the value past a limit someone else was admitted against).
 *
 * Numbers. n, limits and values are integers in [0, EE_COUNTERS_VALUE_MAX]
 * and times in [0, EE_COUNTERS_TIME_MAX] (2^53 - 1: every backend, Redis's
 * Lua included, is exact in this range).
 *
 * Structs. ee_counter_req and ee_counter_result are part of the counters
 * table's ABI: their layout is fixed and never changes; a later table
 * version adds slots at the end of ee_counters_backend (version 2 added
 * reserve_leased) and, if ever needed, new structs.
 */
#ifndef EXECENGINE_COUNTERS_H
#define EXECENGINE_COUNTERS_H

#include "common.h"
#include "errors.h"

EE_BEGIN_DECLS

/** Longest key, in bytes, without the terminator. */
#define EE_COUNTERS_KEY_MAX 200
/** Largest n, limit or value (2^53 - 1). */
#define EE_COUNTERS_VALUE_MAX INT64_C(9007199254740991)
/** Largest time or duration in milliseconds (2^53 - 1). */
#define EE_COUNTERS_TIME_MAX INT64_C(9007199254740991)
/** Most requests in one ee_counters_reserve_many() call. */
#define EE_COUNTERS_MANY_MAX 16
/** ee_counters_commit() amount meaning "the whole reservation". */
#define EE_COUNTERS_ALL INT64_C(-1)

/** One counter to reserve against. The strings are borrowed for the call. */
typedef struct ee_counter_req {
    const char *key;       /* the counter's name */
    int64_t n;             /* amount to reserve, 1..EE_COUNTERS_VALUE_MAX */
    int64_t limit;         /* the value may not pass this, 0..EE_COUNTERS_VALUE_MAX */
    int64_t window_ms;     /* > 0: a new window lasts this long from its first use */
    int64_t window_end_ms; /* > 0: a new window ends here (must be > now_ms); wins over window_ms */
} ee_counter_req;

/** What a backend answers about one counter. */
typedef struct ee_counter_result {
    uint64_t resv_id;      /* granted: the reservation's id (never 0); else 0 */
    int64_t value;         /* committed + outstanding reservations, after the call */
    int64_t committed;     /* the committed part of value */
    int64_t limit;         /* the limit the request was checked against (0 for get) */
    int64_t window_end_ms; /* end of the counter's current window; 0: no window (or none begun) */
    int64_t retry_at_ms;   /* refused: earliest now_ms at which this request alone would fit if
                              no one reserved, committed or released meanwhile (window end or a
                              lease expiry); 0 when it fits now or no such time exists */
    int32_t fits;          /* 1 when this counter had room for the request */
    int32_t reserved_;     /* padding, always 0 */
} ee_counter_result;

/* ---- the backend table ---------------------------------------------------- */

/** The table version this header describes (2 added reserve_leased). */
#define EE_COUNTERS_BACKEND_VERSION 2u

/** Capability flags (ee_counters_backend.flags). */
#define EE_COUNTERS_THREAD_SAFE 0x1u   /* calls may come from many threads at once */
#define EE_COUNTERS_SHARED 0x2u        /* exact across processes (and hosts) using the same store */

/**
 * A counters backend: a const table plus a `void *ctx` handed to every slot.
 * The library validates every argument before calling a slot (keys, amounts,
 * times and counts are in range, pointers non-NULL, 1 <= count <=
 * EE_COUNTERS_MANY_MAX, distinct keys), so a slot may rely on that.
 *
 * Version rule: `version` comes first, forever. The library refuses 0 and
 * versions newer than it knows, copies only the fields the declared version
 * defines (a version-1 table ends at `free`), and answers EE_ENOTSUPPORTED
 * for a slot that is NULL (reserve_leased excepted, see there). Later
 * versions only append fields. Without EE_COUNTERS_THREAD_SAFE the library
 * serialises calls on the handle.
 */
typedef struct ee_counters_backend {
    unsigned version; /* EE_COUNTERS_BACKEND_VERSION */
    unsigned flags;   /* EE_COUNTERS_* capability flags */

    /* Reserve reqs[i].n on each counter with lease lease_ms, all or none.
     * Fill results[0..count) (fits, value, committed, limit, window end,
     * retry_at; resv_id when granted) and *granted (1 or 0). Refusal is
     * EE_OK with *granted = 0. */
    ee_status (*reserve_many)(void *ctx, const ee_counter_req *reqs, size_t count,
                              int64_t lease_ms, int64_t now_ms, ee_counter_result *results,
                              int *granted);
    /* Commit `amount` (0..n, or EE_COUNTERS_ALL) of reservation `id` on
     * `key`, giving back the rest. EE_ENOTFOUND when it is unknown, expired,
     * finished, or its window ended; EE_EINVAL when amount > n. */
    ee_status (*commit)(void *ctx, const char *key, uint64_t id, int64_t amount,
                        int64_t now_ms);
    /* Give reservation `id` on `key` back. EE_ENOTFOUND as for commit. */
    ee_status (*release)(void *ctx, const char *key, uint64_t id, int64_t now_ms);
    /* Set the reservation's expiry to now_ms + lease_ms. EE_ENOTFOUND as for commit. */
    ee_status (*renew)(void *ctx, const char *key, uint64_t id, int64_t lease_ms,
                       int64_t now_ms);
    /* The counter's value, committed part and window end at now_ms (an ended
     * window reads as 0 with window end 0; an unknown key likewise). */
    ee_status (*get)(void *ctx, const char *key, int64_t now_ms, ee_counter_result *out);
    /* Release ctx and everything it holds (may be NULL). */
    void (*free)(void *ctx);

    /* ---- version 2 ---- */

    /* reserve_many with a lease per request: leases[i] (1..
     * EE_COUNTERS_TIME_MAX) for reqs[i]. May be NULL (and is absent from a
     * version-1 table): ee_counters_reserve_many_leased() then calls
     * reserve_many with the longest of the leases. */
    ee_status (*reserve_leased)(void *ctx, const ee_counter_req *reqs, const int64_t *leases,
                                size_t count, int64_t now_ms, ee_counter_result *results,
                                int *granted);
} ee_counters_backend;

/* ---- the handle ---------------------------------------------------------- */

/**
 * A counters handle. Every operation on it is thread-safe (the library
 * serialises a backend that is not). Free it after all calls returned.
 */
typedef struct ee_counters ee_counters;

/**
 * Open a counters backend by URI:
 *   "storage:"                 rows in the database of `storage_uri`
 *                              ("sqlite:///path/file.db", "sqlite:relative.db",
 *                              "postgres://..." or "postgresql://...");
 *   "redis://host:port/db"     Redis (port defaults to 6379, db to 0;
 *                              "redis://:password@host:port/db" authenticates);
 *   "memory:"                  in-process counters (this process only). Over
 *                              a sqlite or postgres storage_uri they hold a
 *                              lock of that storage while they live (a
 *                              second holder gets EE_EBUSY) and keep period
 *                              usage durable in its database (see
 *                              docs/counters.md);
 *   NULL                       the default: "storage:" when storage_uri is a
 *                              sqlite or postgres URI, else "memory:".
 * storage_uri may be NULL for "redis://" and "memory:".
 *
 * *out is owned by the caller (ee_counters_free()); NULL on failure.
 * Returns EE_OK; EE_EINVAL (NULL out, malformed URI, unknown scheme - the
 * message names it); EE_ENOTSUPPORTED ("storage:" over a storage URI whose
 * database the counters cannot use, e.g. "memory:"); EE_EBUSY ("memory:"
 * over a storage another holder of memory counters has locked: the message
 * names EE_COUNTERS_URI); EE_ENETWORK (server unreachable); EE_EAUTH
 * (server refused the credentials); EE_EIO (database or lock file cannot be
 * opened or set up); EE_EVERSION (tables of a newer library); EE_ENOMEM.
 * Messages never contain a password.
 */
EE_API ee_status ee_counters_open_uri(ee_counters **out, const char *counters_uri,
                                      const char *storage_uri);

/**
 * In-process counters (this process's threads): a short spinlock per
 * counter, key lookups without a lock. Returns EE_OK, EE_EINVAL, EE_ENOMEM.
 */
EE_API ee_status ee_counters_memory_new(ee_counters **out);

/**
 * Counters in the SQLite file `path` (created if missing; WAL mode, busy
 * timeout), exact across threads and processes on one host. Returns EE_OK,
 * EE_EINVAL, EE_EIO, EE_EVERSION, EE_ENOMEM.
 */
EE_API ee_status ee_counters_sqlite_new(ee_counters **out, const char *path);

/**
 * Counters in PostgreSQL (libpq `conninfo`: a postgres:// URI or key=value
 * string), exact across hosts. Returns EE_OK, EE_EINVAL, EE_ENETWORK,
 * EE_EAUTH, EE_EIO, EE_EVERSION, EE_ENOMEM.
 */
EE_API ee_status ee_counters_postgres_new(ee_counters **out, const char *conninfo);

/**
 * Counters in Redis at `uri` ("redis://[:password@]host[:port][/db]"),
 * exact across hosts; every operation is one Lua script call. Returns
 * EE_OK, EE_EINVAL, EE_ENETWORK, EE_EAUTH, EE_EUPSTREAM, EE_ENOMEM.
 */
EE_API ee_status ee_counters_redis_new(ee_counters **out, const char *uri);

/**
 * Wrap a caller's backend. The table is copied (the declared version's
 * part); ctx is owned by the handle from now on, released by table->free
 * when the handle is freed - also when this call fails after checking the
 * version. Returns EE_OK; EE_EINVAL (NULL out or table); EE_EVERSION (version
 * 0 or newer than EE_COUNTERS_BACKEND_VERSION: ctx is then NOT freed);
 * EE_ENOMEM.
 */
EE_API ee_status ee_counters_new_custom(ee_counters **out, const ee_counters_backend *table,
                                        void *ctx);

/** Free a handle and its backend. Accepts NULL. */
EE_API void ee_counters_free(ee_counters *counters);

/**
 * The backend's name ("memory", "storage-sqlite", "storage-postgres",
 * "redis", "custom"). Static string, never NULL.
 */
EE_API const char *ee_counters_backend_name(const ee_counters *counters);

/**
 * Reserve req->n on one counter for lease_ms (1..EE_COUNTERS_TIME_MAX).
 * *granted is 1 (result->resv_id names the reservation) or 0 (refused:
 * nothing changed; result says why and when to retry). `result` may not be
 * NULL. Returns EE_OK (granted or refused); EE_EINVAL (bad key, n <= 0,
 * negative limit, bad window, lease or now - nothing changed); the
 * backend's EE_ENETWORK, EE_EIO, EE_EBUSY, EE_ETIMEOUT, EE_EUPSTREAM,
 * EE_ENOTSUPPORTED, EE_ENOMEM (then the reservation may or may not exist;
 * it expires with its lease).
 */
EE_API ee_status ee_counters_reserve(ee_counters *counters, const ee_counter_req *req,
                                     int64_t lease_ms, int64_t now_ms,
                                     ee_counter_result *result, int *granted);

/**
 * Reserve on `count` distinct counters (1..EE_COUNTERS_MANY_MAX) at once:
 * every one is granted (*granted = 1, results[i].resv_id for each) or none
 * is (*granted = 0, nothing changed; results[i].fits says which had room).
 * The same statuses as ee_counters_reserve(), and EE_EINVAL for a repeated
 * key or a count out of range.
 */
EE_API ee_status ee_counters_reserve_many(ee_counters *counters, const ee_counter_req *reqs,
                                          size_t count, int64_t lease_ms, int64_t now_ms,
                                          ee_counter_result *results, int *granted);

/**
 * ee_counters_reserve_many() with a lease per counter: leases[i] (1..
 * EE_COUNTERS_TIME_MAX) for reqs[i], all granted or none - e.g. a rate
 * unit held for its hour beside a concurrency slot held for a run's
 * lease. Every built-in backend keeps each lease; a custom backend whose
 * table has no reserve_leased slot gets every counter at the longest lease.
 * Statuses as ee_counters_reserve_many(); EE_EINVAL also for a NULL leases
 * or a lease out of range.
 */
EE_API ee_status ee_counters_reserve_many_leased(ee_counters *counters,
                                                 const ee_counter_req *reqs,
                                                 const int64_t *leases, size_t count,
                                                 int64_t now_ms, ee_counter_result *results,
                                                 int *granted);

/**
 * Commit `amount` (0..the reserved n, or EE_COUNTERS_ALL) of reservation
 * `id` on `key`; the rest of it is given back. Returns EE_OK; EE_ENOTFOUND
 * (unknown, already committed or released, lease expired, or window ended:
 * nothing changes); EE_EINVAL (bad key, amount out of range); backend
 * failures as for reserve.
 */
EE_API ee_status ee_counters_commit(ee_counters *counters, const char *key, uint64_t id,
                                    int64_t amount, int64_t now_ms);

/** Give reservation `id` on `key` back. Statuses as ee_counters_commit(). */
EE_API ee_status ee_counters_release(ee_counters *counters, const char *key, uint64_t id,
                                     int64_t now_ms);

/**
 * Extend reservation `id` on `key` to expire at now_ms + lease_ms (a long
 * run keeps its slot). Statuses as ee_counters_commit().
 */
EE_API ee_status ee_counters_renew(ee_counters *counters, const char *key, uint64_t id,
                                   int64_t lease_ms, int64_t now_ms);

/**
 * Read a counter at now_ms into *result (value, committed, window_end_ms;
 * limit, retry_at_ms, resv_id and fits are 0). An unknown key or an ended
 * window reads as value 0, window end 0. Returns EE_OK; EE_EINVAL; backend
 * failures as for reserve.
 */
EE_API ee_status ee_counters_get(ee_counters *counters, const char *key, int64_t now_ms,
                                 ee_counter_result *result);

EE_END_DECLS

#endif
