/*
 * The counters handle: argument checks shared by every backend, the version
 * rule for backend tables, serialisation of backends that are not
 * thread-safe, and selection of a built-in backend by URI.
 */
#include "counters/counters_internal.h"

#include <ctype.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/core.h"
#include "counters/counters.h"
#include "core/features.h"

struct ee_counters {
    ee_counters_backend table; /* the declared version's part; the rest NULL */
    void *ctx;
    const char *name;
    const ee__counters_ext *ext; /* built-in backends only; NULL for a custom one */
    bool serialise;            /* backend is not thread-safe */
    pthread_mutex_t lock;
    /* memory counters over a database and storage counters over a file (see
     * open_memory, open_storage) */
    ee_counters *durable;      /* storage counters on that database: period usage */
    ee__counters_lock *owner;  /* memory: the storage's exclusive lock; storage: over a sqlite
                                  file by URI: its shared lock (see lock.c) */
};

/* ---- handle lifetime --------------------------------------------------- */

/* The part of the table each known version defines. */
static const size_t table_sizes[] = {
    offsetof(ee_counters_backend, reserve_leased), /* 1 */
    sizeof(ee_counters_backend),                   /* 2 */
};

ee_status ee__counters_wrap(ee_counters **out, const ee_counters_backend *table, void *ctx,
                            const char *name, const ee__counters_ext *ext)
{
    ee_counters_backend adopted;
    ee_status st = ee__vtable_adopt(&adopted, sizeof adopted, table, table->version, table_sizes,
                                    sizeof table_sizes / sizeof table_sizes[0],
                                    "counters backend table");
    if (st != EE_OK)
        return st;
    ee_counters *c = calloc(1, sizeof *c);
    if (c == NULL) {
        if (table->free != NULL)
            table->free(ctx);
        return ee__error(EE_ENOMEM, "out of memory opening counters");
    }
    c->table = adopted;
    c->ctx = ctx;
    c->name = name;
    c->ext = ext;
    c->serialise = (table->flags & EE_COUNTERS_THREAD_SAFE) == 0;
    if (c->serialise)
        pthread_mutex_init(&c->lock, NULL);
    *out = c;
    return EE_OK;
}

ee_status ee_counters_new_custom(ee_counters **out, const ee_counters_backend *table, void *ctx)
{
    if (out == NULL || table == NULL)
        return ee__error(EE_EINVAL, "ee_counters_new_custom: out and table must not be NULL");
    *out = NULL;
    return ee__counters_wrap(out, table, ctx, "custom", NULL);
}

void ee_counters_free(ee_counters *c)
{
    if (c == NULL)
        return;
    if (c->table.free != NULL)
        c->table.free(c->ctx);
    if (c->serialise)
        pthread_mutex_destroy(&c->lock);
    ee_counters_free(c->durable);
    ee__counters_lock_free(c->owner); /* last: nothing of ours is left on the storage */
    free(c);
}

const char *ee_counters_backend_name(const ee_counters *c)
{
    return c == NULL ? "none" : c->name;
}

static ee_status open_builtin(ee_counters **out, ee_status st, const ee_counters_backend *table,
                              void *ctx, const char *name, const ee__counters_ext *ext)
{
    if (st != EE_OK)
        return st;
    return ee__counters_wrap(out, table, ctx, name, ext);
}

/* The constructor runs before its results are read (argument evaluation
 * order is unspecified, so it cannot be one call expression). */
#define OPEN_BUILTIN(out, create_call, name, ext)                                              \
    do {                                                                                       \
        const ee_counters_backend *t_ = NULL;                                                  \
        void *ctx_ = NULL;                                                                     \
        ee_status st_ = create_call;                                                           \
        return open_builtin(out, st_, t_, ctx_, name, ext);                                    \
    } while (0)

ee_status ee_counters_memory_new(ee_counters **out)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee_counters_memory_new: out must not be NULL");
    *out = NULL;
    OPEN_BUILTIN(out, ee__counters_memory_create(&t_, &ctx_), "memory",
                 &ee__counters_memory_ext);
}

ee_status ee_counters_sqlite_new(ee_counters **out, const char *path)
{
    if (out == NULL || path == NULL || path[0] == '\0')
        return ee__error(EE_EINVAL, "ee_counters_sqlite_new: out and a non-empty path are "
                                    "required");
    *out = NULL;
    OPEN_BUILTIN(out, ee__counters_sqlite_create(path, &t_, &ctx_), "storage-sqlite",
                 &ee__counters_storage_ext);
}

static ee_status postgres_open(ee_counters **out, const char *conninfo, const ee__logger *lg)
{
    if (out == NULL || conninfo == NULL || conninfo[0] == '\0')
        return ee__error(EE_EINVAL, "ee_counters_postgres_new: out and a non-empty conninfo "
                                    "are required");
    *out = NULL;
#if EE_WITH_POSTGRES
    OPEN_BUILTIN(out, ee__counters_postgres_create(conninfo, lg, &t_, &ctx_), "storage-postgres",
                 &ee__counters_storage_ext);
#else
    (void)lg;
    return ee__not_built("PostgreSQL counters (ee_counters_postgres_new, or storage: over "
                         "postgres://)", "PostgreSQL", "EE_WITH_POSTGRES");
#endif
}

ee_status ee_counters_postgres_new(ee_counters **out, const char *conninfo)
{
    return postgres_open(out, conninfo, NULL);
}

ee_status ee_counters_redis_new(ee_counters **out, const char *uri)
{
    if (out == NULL || uri == NULL)
        return ee__error(EE_EINVAL, "ee_counters_redis_new: out and uri must not be NULL");
    *out = NULL;
#if EE_WITH_REDIS
    OPEN_BUILTIN(out, ee__counters_redis_create(uri, &t_, &ctx_), "redis",
                 &ee__counters_redis_ext);
#else
    return ee__not_built("Redis counters (redis://, ee_counters_redis_new)", "Redis",
                         "EE_WITH_REDIS");
#endif
}

/* ---- selection by URI ---------------------------------------------------- */

static bool has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Storage URI schemes are case-insensitive (as the storage reads them). */
static bool has_prefix_ci(const char *s, const char *prefix)
{
    return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

/* The scheme of `uri` (the text before ':', at most 31 bytes, sanitised)
 * for messages: never the rest, which may hold a password. */
static void scheme_of(const char *uri, char out[32])
{
    size_t n = strcspn(uri, ":");
    char tmp[32];
    if (n > sizeof tmp - 1)
        n = sizeof tmp - 1;
    memcpy(tmp, uri, n);
    tmp[n] = '\0';
    ee__quote_for_message(tmp, out, 32);
}

/* The database of a storage URI: *kind "sqlite" and *target the file's
 * path (the URI's options after '?' cut off), or "postgres" and the URI
 * itself as libpq's conninfo; *kind NULL for anything else (memory:, an
 * unknown scheme). *target is the caller's (free()). */
/* The libpq conninfo of a postgres storage URI. The storage's own option
 * `schema=NAME` (libpq refuses unknown parameters) becomes libpq's
 * `options=-c search_path=NAME`, so the counters' tables live in the
 * storage's schema (which the storage creates when it opens) on every
 * connection, reconnections included. NAME is checked as the storage checks
 * it: [a-z_][a-z0-9_]{0,62}, nothing to escape. */
static ee_status postgres_target(const char *uri, char **target)
{
    *target = NULL;
    size_t len = strlen(uri);
    char *t = malloc(4 * len + 32); /* each "schema=x" (8+) grows by 20 */
    if (t == NULL)
        return ee__error(EE_ENOMEM, "out of memory opening counters");
    const char *qm = strchr(uri, '?');
    size_t head = qm != NULL ? (size_t)(qm - uri) : len;
    memcpy(t, uri, head);
    size_t w = head;
    bool first = true;
    const char *src = qm != NULL ? qm + 1 : uri + len;
    while (*src != '\0') {
        size_t n = strcspn(src, "&");
        const char *name = NULL;
        size_t name_len = 0;
        if (strncmp(src, "schema=", 7) == 0) {
            name = src + 7;
            name_len = n - 7;
            bool ok = name_len > 0 && name_len <= 63 &&
                      (islower((unsigned char)name[0]) || name[0] == '_');
            for (size_t i = 0; ok && i < name_len; i++)
                ok = islower((unsigned char)name[i]) || isdigit((unsigned char)name[i]) ||
                     name[i] == '_';
            if (!ok) {
                free(t);
                return ee__error(EE_EINVAL, "postgres URI option schema: expected a lowercase "
                                            "identifier of at most 63 characters [a-z0-9_]");
            }
        }
        if (n > 0) {
            t[w++] = first ? '?' : '&';
            first = false;
            if (name != NULL) {
                static const char opt[] = "options=-c%20search_path%3D";
                memcpy(t + w, opt, sizeof opt - 1);
                w += sizeof opt - 1;
                memcpy(t + w, name, name_len);
                w += name_len;
            } else {
                memcpy(t + w, src, n);
                w += n;
            }
        }
        src += n;
        if (*src == '&')
            src++;
    }
    t[w] = '\0';
    *target = t;
    return EE_OK;
}

static ee_status storage_db(const char *storage_uri, const char **kind, char **target)
{
    *kind = NULL;
    *target = NULL;
    if (storage_uri == NULL)
        return EE_OK;
    const char *path = NULL;
    if (has_prefix_ci(storage_uri, "sqlite://"))
        path = storage_uri + strlen("sqlite://");
    else if (has_prefix_ci(storage_uri, "sqlite:"))
        path = storage_uri + strlen("sqlite:");
    if (path != NULL) {
        *kind = "sqlite";
        *target = strndup(path, strcspn(path, "?"));
    } else if (has_prefix_ci(storage_uri, "postgres://") ||
               has_prefix_ci(storage_uri, "postgresql://")) {
        *kind = "postgres";
        return postgres_target(storage_uri, target);
    } else {
        return EE_OK;
    }
    return *target != NULL ? EE_OK : ee__error(EE_ENOMEM, "out of memory opening counters");
}

static ee_status open_storage(ee_counters **out, const char *storage_uri,
                              const ee__logger *lg)
{
    if (storage_uri == NULL || storage_uri[0] == '\0')
        return ee__error(EE_EINVAL, "counters URI \"storage:\" needs a storage URI (sqlite:// or "
                                    "postgres://), and none was given");
    const char *kind;
    char *target;
    ee_status st = storage_db(storage_uri, &kind, &target);
    if (st != EE_OK)
        return st;
    if (kind != NULL && strcmp(kind, "sqlite") == 0) {
        /* The file's shared lock: no memory counters count it meanwhile. */
        ee__counters_lock *owner = NULL;
        st = ee__counters_lock_take(kind, target, true, &owner);
        if (st == EE_OK)
            st = ee_counters_sqlite_new(out, target);
        free(target);
        if (st != EE_OK)
            ee__counters_lock_free(owner);
        else
            (*out)->owner = owner;
        return st;
    }
    if (kind != NULL) {
        st = postgres_open(out, target, lg);
        free(target);
        return st;
    }
    char scheme[32];
    scheme_of(storage_uri, scheme);
    if (strcmp(scheme, "memory") == 0)
        return ee__error(EE_ENOTSUPPORTED, "counters URI \"storage:\" cannot use a memory: "
                                           "storage; use counters URI \"memory:\" instead");
    return ee__error(EE_EINVAL, "counters URI \"storage:\": unknown storage URI scheme \"%s\" "
                                "(expected sqlite: or postgres://)", scheme);
}

/* Memory counters. Over a database storage they are this process's alone:
 * they take the storage's lock (a second holder is refused with EE_EBUSY)
 * and open storage counters on the same database beside them, where the
 * quota module writes period usage through and reads it back. */
static ee_status open_memory(ee_counters **out, const char *storage_uri, const ee__logger *lg)
{
    const char *kind;
    char *target;
    ee_status st = storage_db(storage_uri, &kind, &target);
    if (st != EE_OK || kind == NULL)
        return st != EE_OK ? st : ee_counters_memory_new(out);
    ee__counters_lock *owner = NULL;
    ee_counters *durable = NULL;
    st = ee__counters_lock_take(kind, target, false, &owner);
    if (st == EE_OK)
        st = strcmp(kind, "sqlite") == 0 ? ee_counters_sqlite_new(&durable, target)
                                          : postgres_open(&durable, target, lg);
    if (st == EE_OK)
        st = ee_counters_memory_new(out);
    free(target);
    if (st != EE_OK) {
        ee_counters_free(durable);
        ee__counters_lock_free(owner);
        return st;
    }
    (*out)->durable = durable;
    (*out)->owner = owner;
    return EE_OK;
}

/* Redis counters. Over a database storage they keep storage counters on
 * the same database beside them: the quota module writes period usage
 * through to them, and the redis backend keeps its epoch there and reads
 * usage back from them after Redis lost its data (see redis.c). */
static ee_status open_redis(ee_counters **out, const char *uri, const char *storage_uri,
                             const ee__logger *lg)
{
#if !EE_WITH_REDIS /* refused before the storage counters are opened */
    return ee_counters_redis_new(out, uri);
#endif
    const char *kind;
    char *target;
    ee_status st = storage_db(storage_uri, &kind, &target);
    free(target);
    if (st != EE_OK)
        return st;
    ee_counters *durable = NULL;
    if (kind != NULL && (st = open_storage(&durable, storage_uri, lg)) != EE_OK)
        return st;
    if ((st = ee_counters_redis_new(out, uri)) != EE_OK) {
        ee_counters_free(durable);
        return st;
    }
    if (durable != NULL) {
        (*out)->durable = durable;
#if EE_WITH_REDIS /* else ee_counters_redis_new() has refused */
        ee__counters_redis_durable((*out)->ctx, durable);
#endif
    }
    return EE_OK;
}

bool ee__counters_shared(const ee_counters *c)
{
    return c != NULL && (c->table.flags & EE_COUNTERS_SHARED) != 0;
}

void ee__counters_set_recovery(ee_counters *c, int64_t ms)
{
#if EE_WITH_REDIS
    if (c != NULL && c->ext == &ee__counters_redis_ext && c->durable != NULL)
        ee__counters_redis_recovery(c->ctx, ms);
#else
    (void)c;
    (void)ms;
#endif
}

ee_status ee_counters_open_uri(ee_counters **out, const char *counters_uri,
                               const char *storage_uri)
{
    return ee__counters_open_uri_logged(out, counters_uri, storage_uri, NULL);
}

ee_status ee__counters_open_uri_logged(ee_counters **out, const char *counters_uri,
                                       const char *storage_uri, const ee__logger *lg)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee_counters_open_uri: out must not be NULL");
    *out = NULL;
    if (counters_uri == NULL) {
        /* The default: exact across processes whenever the storage is. */
        const char *kind;
        char *target;
        ee_status st = storage_db(storage_uri, &kind, &target);
        free(target);
        if (st != EE_OK)
            return st;
        counters_uri = kind != NULL ? "storage:" : "memory:";
    }
    if (strcmp(counters_uri, "memory:") == 0 || strcmp(counters_uri, "memory://") == 0)
        return open_memory(out, storage_uri, lg);
    if (strcmp(counters_uri, "storage:") == 0 || strcmp(counters_uri, "storage://") == 0)
        return open_storage(out, storage_uri, lg);
    if (has_prefix(counters_uri, "redis://"))
        return open_redis(out, counters_uri, storage_uri, lg);
    char scheme[32];
    scheme_of(counters_uri, scheme);
    if (strchr(counters_uri, ':') == NULL)
        return ee__error(EE_EINVAL, "counters URI has no scheme (expected memory:, storage: or "
                                    "redis://host:port/db)");
    return ee__error(EE_EINVAL, "unknown counters URI scheme \"%s\" (expected memory:, storage: "
                                "or redis://host:port/db)", scheme);
}

/* ---- argument checks ------------------------------------------------------ */

/* Whether any byte of x is a control character (< 0x20 or 0x7f) or not
 * ASCII (>= 0x80): the classic "has a byte less than n" bit trick. */
static inline bool word_needs_look(uint64_t x)
{
    const uint64_t ones = UINT64_C(0x0101010101010101), highs = UINT64_C(0x8080808080808080);
    uint64_t below_space = (x - ones * 0x20) & ~x & highs;
    uint64_t y = x ^ (ones * 0x7f);
    uint64_t is_del = (y - ones) & ~y & highs;
    return (below_space | is_del | (x & highs)) != 0;
}

static ee_status check_key(const char *key)
{
    if (key == NULL)
        return ee__error(EE_EINVAL, "counter key must not be NULL");
    size_t n = strnlen(key, EE_COUNTERS_KEY_MAX + 1);
    char q[64];
    if (n == 0)
        return ee__error(EE_EINVAL, "counter key must not be empty");
    if (n > EE_COUNTERS_KEY_MAX) {
        ee__quote_for_message(key, q, sizeof q);
        return ee__error(EE_EINVAL, "counter key \"%s\" is longer than %d bytes", q,
                         EE_COUNTERS_KEY_MAX);
    }
    /* Hot path: plain printable ASCII, checked 8 bytes at a time. */
    bool plain = true;
    size_t i = 0;
    for (; plain && i + 8 <= n; i += 8) {
        uint64_t x;
        memcpy(&x, key + i, 8);
        plain = !word_needs_look(x);
    }
    for (; plain && i < n; i++) {
        unsigned char ch = (unsigned char)key[i];
        plain = ch >= 0x20 && ch < 0x7f;
    }
    if (plain)
        return EE_OK;
    bool ascii = true;
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)key[i];
        if (ch < 0x20 || ch == 0x7f) {
            ee__quote_for_message(key, q, sizeof q);
            return ee__error(EE_EINVAL, "counter key \"%s\" contains a control character", q);
        }
        ascii &= ch < 0x80;
    }
    if (!ascii && !ee__utf8_valid(key, n))
        return ee__error(EE_EINVAL, "counter key is not valid UTF-8");
    return EE_OK;
}

static ee_status check_time(const char *what, int64_t v, int64_t min)
{
    if (v < min || v > EE_COUNTERS_TIME_MAX)
        return ee__error(EE_EINVAL, "%s %lld is out of range (%lld..2^53-1)", what, (long long)v,
                         (long long)min);
    return EE_OK;
}

#define LOCK(c)                                                                                \
    do {                                                                                       \
        if ((c)->serialise)                                                                    \
            pthread_mutex_lock(&(c)->lock);                                                    \
    } while (0)
#define UNLOCK(c)                                                                              \
    do {                                                                                       \
        if ((c)->serialise)                                                                    \
            pthread_mutex_unlock(&(c)->lock);                                                  \
    } while (0)

static ee_status missing_slot(const ee_counters *c, const char *slot)
{
    return ee__error(EE_ENOTSUPPORTED, "counters backend \"%s\" has no %s operation", c->name,
                     slot);
}

/* ---- operations ----------------------------------------------------------- */

/* The numbers of a request: amount, limit and window (the key apart). */
static ee_status check_numbers(const ee_counter_req *r, int64_t now_ms)
{
    if (r->n <= 0 || r->n > EE_COUNTERS_VALUE_MAX)
        return ee__error(EE_EINVAL, "counter \"%s\": amount n = %lld must be 1..2^53-1", r->key,
                         (long long)r->n);
    if (r->limit < 0 || r->limit > EE_COUNTERS_VALUE_MAX)
        return ee__error(EE_EINVAL, "counter \"%s\": limit %lld must be 0..2^53-1", r->key,
                         (long long)r->limit);
    if (r->window_ms < 0 || r->window_ms > EE_COUNTERS_TIME_MAX - now_ms)
        return ee__error(EE_EINVAL, "counter \"%s\": window_ms %lld is out of range", r->key,
                         (long long)r->window_ms);
    if (r->window_end_ms != 0 &&
        (r->window_end_ms <= now_ms || r->window_end_ms > EE_COUNTERS_TIME_MAX))
        return ee__error(EE_EINVAL,
                         "counter \"%s\": window_end_ms %lld must be after now_ms %lld (or 0)",
                         r->key, (long long)r->window_end_ms, (long long)now_ms);
    return EE_OK;
}

/* Everything a reserve checks before a backend sees it. A request with a
 * handle had its key checked when it was resolved; distinct handles are
 * distinct keys. */
static ee_status check_requests(const ee_counter_req *reqs, void *const *handles,
                                const int64_t *leases, size_t count, int64_t now_ms);

static ee_status check_reserve(const ee_counters *c, const ee_counter_req *reqs,
                               void *const *handles, const int64_t *leases, size_t count,
                               int64_t now_ms, const ee_counter_result *results,
                               const int *granted)
{
    if (c == NULL || reqs == NULL || leases == NULL || results == NULL || granted == NULL)
        return ee__error(EE_EINVAL, "ee_counters_reserve: counters, requests, results and "
                                    "granted must not be NULL");
    return check_requests(reqs, handles, leases, count, now_ms);
}

ee_status ee__counters_check_prepared(const ee_counter_req *reqs, void *const *handles,
                                      const int64_t *leases, size_t count, int64_t now_ms)
{
    if (reqs == NULL || leases == NULL)
        return ee__error(EE_EINVAL, "counters: prepared requests and leases are required");
    return check_requests(reqs, handles, leases, count, now_ms);
}

static ee_status check_requests(const ee_counter_req *reqs, void *const *handles,
                                const int64_t *leases, size_t count, int64_t now_ms)
{
    if (count == 0 || count > EE_COUNTERS_MANY_MAX)
        return ee__error(EE_EINVAL, "ee_counters_reserve_many: count %zu must be 1..%d", count,
                         EE_COUNTERS_MANY_MAX);
    ee_status st = check_time("now_ms", now_ms, 0);
    for (size_t i = 0; st == EE_OK && i < count; i++) {
        void *h = handles != NULL ? handles[i] : NULL;
        if ((st = check_time("lease_ms", leases[i], 1)) != EE_OK)
            return st;
        if ((h == NULL && (st = check_key(reqs[i].key)) != EE_OK) ||
            (st = check_numbers(&reqs[i], now_ms)) != EE_OK)
            return st;
        for (size_t j = 0; j < i; j++) {
            void *hj = handles != NULL ? handles[j] : NULL;
            bool same = h != NULL && hj != NULL ? h == hj : strcmp(reqs[i].key, reqs[j].key) == 0;
            if (same)
                return ee__error(EE_EINVAL, "ee_counters_reserve_many: key \"%s\" is repeated",
                                 reqs[i].key);
        }
    }
    return st;
}

static int64_t longest(const int64_t *leases, size_t count)
{
    int64_t max = 0;
    for (size_t i = 0; i < count; i++)
        max = leases[i] > max ? leases[i] : max;
    return max;
}

/* Validate, then hand the request to the backend: the built-ins' leased
 * call (which writes every result field), a table's reserve_leased, or
 * reserve_many at the longest lease. `uniform` (one lease for all) prefers
 * a table's reserve_many, the slot written for exactly that call. */
static ee_status reserve(ee_counters *c, const ee_counter_req *reqs, void *const *handles,
                         const int64_t *leases, size_t count, int64_t now_ms,
                         ee_counter_result *results, int *granted, bool uniform)
{
    if (granted != NULL)
        *granted = 0;
    ee_status st = check_reserve(c, reqs, handles, leases, count, now_ms, results, granted);
    if (st != EE_OK)
        return st;
    bool ext = c->ext != NULL && c->ext->reserve_leased != NULL;
    bool slot = c->table.reserve_leased != NULL && !(uniform && c->table.reserve_many != NULL);
    if (!ext && !slot && c->table.reserve_many == NULL)
        return missing_slot(c, "reserve");
    if (!ext)
        memset(results, 0, count * sizeof *results);
    LOCK(c);
    if (ext)
        st = c->ext->reserve_leased(c->ctx, reqs, handles, NULL, leases, count, now_ms,
                                    results, granted);
    else if (slot)
        st = c->table.reserve_leased(c->ctx, reqs, leases, count, now_ms, results, granted);
    else
        st = c->table.reserve_many(c->ctx, reqs, count, longest(leases, count), now_ms, results,
                                   granted);
    UNLOCK(c);
    if (st != EE_OK)
        *granted = 0;
    return st;
}

ee_status ee__counters_reserve_leased(ee_counters *c, const ee_counter_req *reqs,
                                      void *const *handles, const int64_t *leases, size_t count,
                                      int64_t now_ms, ee_counter_result *results, int *granted)
{
    return reserve(c, reqs, handles, leases, count, now_ms, results, granted, false);
}

void ee__counters_direct(ee_counters *c, ee__counters_reserve_fn *fn, void **ctx)
{
    bool direct = c != NULL && c->ext != NULL && c->ext->reserve_leased != NULL && !c->serialise;
    *fn = direct ? c->ext->reserve_leased : NULL;
    *ctx = direct ? c->ctx : NULL;
}

void ee__counters_lock_order(ee_counters *c, void *const *handles, size_t count,
                             uint8_t *order)
{
    if (c != NULL && c->ext != NULL && c->ext->lock_order != NULL) {
        c->ext->lock_order(handles, count, order);
        return;
    }
    for (size_t i = 0; i < count; i++)
        order[i] = (uint8_t)i;
}

ee_status ee_counters_reserve_many(ee_counters *c, const ee_counter_req *reqs, size_t count,
                                   int64_t lease_ms, int64_t now_ms, ee_counter_result *results,
                                   int *granted)
{
    int64_t leases[EE_COUNTERS_MANY_MAX];
    for (size_t i = 0; i < count && i < EE_COUNTERS_MANY_MAX; i++)
        leases[i] = lease_ms;
    return reserve(c, reqs, NULL, leases, count, now_ms, results, granted, true);
}

ee_status ee_counters_reserve_many_leased(ee_counters *c, const ee_counter_req *reqs,
                                         const int64_t *leases, size_t count, int64_t now_ms,
                                         ee_counter_result *results, int *granted)
{
    if (leases == NULL) {
        if (granted != NULL)
            *granted = 0;
        return ee__error(EE_EINVAL, "ee_counters_reserve_many_leased: leases must not be NULL");
    }
    return ee__counters_reserve_leased(c, reqs, NULL, leases, count, now_ms, results, granted);
}

ee_status ee__counters_not_found(const char *key, uint64_t id, const char *why)
{
    return ee__error(EE_ENOTFOUND, "counter \"%s\": reservation %llu %s", key,
                     (unsigned long long)id, why);
}

ee_status ee__counters_finish_answer(const char *key, uint64_t id, int64_t amount, int code)
{
    switch (code) {
    case EE__FINISH_DONE:
        return EE_OK;
    case EE__FINISH_NO_COUNTER:
        return ee__counters_not_found(key, id, "is unknown");
    case EE__FINISH_WINDOW_ENDED:
        return ee__counters_not_found(key, id, "belongs to a window that has ended");
    case EE__FINISH_EXPIRED:
        return ee__counters_not_found(key, id, "expired (its lease ended)");
    case EE__FINISH_TOO_MUCH:
        return ee__error(EE_EINVAL, "counter \"%s\": commit amount %lld exceeds the amount "
                                    "reserved", key, (long long)amount);
    case EE__FINISH_NOT_LIVE:
        return ee__counters_not_found(key, id, "is unknown, finished or expired");
    default:
        return ee__counters_not_found(key, id, "is unknown or already finished");
    }
}

ee_status ee__counters_resolve(ee_counters *c, const char *key, void **handle)
{
    if (handle == NULL || c == NULL)
        return ee__error(EE_EINVAL, "ee__counters_resolve: counters and handle are required");
    *handle = NULL;
    ee_status st = check_key(key);
    if (st != EE_OK || c->ext == NULL || c->ext->resolve == NULL)
        return st;
    return c->ext->resolve(c->ctx, key, handle);
}

ee_status ee_counters_reserve(ee_counters *c, const ee_counter_req *req, int64_t lease_ms,
                              int64_t now_ms, ee_counter_result *result, int *granted)
{
    return ee_counters_reserve_many(c, req, 1, lease_ms, now_ms, result, granted);
}

static ee_status check_handle_call(const ee_counters *c, const char *key, int64_t now_ms,
                                   const char *what)
{
    if (c == NULL)
        return ee__error(EE_EINVAL, "%s: counters must not be NULL", what);
    ee_status st = check_key(key);
    if (st == EE_OK)
        st = check_time("now_ms", now_ms, 0);
    return st;
}

ee_status ee_counters_commit(ee_counters *c, const char *key, uint64_t id, int64_t amount,
                             int64_t now_ms)
{
    ee_status st = check_handle_call(c, key, now_ms, "ee_counters_commit");
    if (st != EE_OK)
        return st;
    if (amount != EE_COUNTERS_ALL && (amount < 0 || amount > EE_COUNTERS_VALUE_MAX))
        return ee__error(EE_EINVAL, "counter \"%s\": commit amount %lld must be 0..n or "
                                    "EE_COUNTERS_ALL", key, (long long)amount);
    if (c->table.commit == NULL)
        return missing_slot(c, "commit");
    LOCK(c);
    st = c->table.commit(c->ctx, key, id, amount, now_ms);
    UNLOCK(c);
    return st;
}

ee_status ee_counters_release(ee_counters *c, const char *key, uint64_t id, int64_t now_ms)
{
    ee_status st = check_handle_call(c, key, now_ms, "ee_counters_release");
    if (st != EE_OK)
        return st;
    if (c->table.release == NULL)
        return missing_slot(c, "release");
    LOCK(c);
    st = c->table.release(c->ctx, key, id, now_ms);
    UNLOCK(c);
    return st;
}

ee_status ee_counters_renew(ee_counters *c, const char *key, uint64_t id, int64_t lease_ms,
                            int64_t now_ms)
{
    ee_status st = check_handle_call(c, key, now_ms, "ee_counters_renew");
    if (st == EE_OK)
        st = check_time("lease_ms", lease_ms, 1);
    if (st == EE_OK && lease_ms > EE_COUNTERS_TIME_MAX - now_ms)
        st = ee__error(EE_EINVAL, "lease_ms %lld runs past 2^53-1", (long long)lease_ms);
    if (st != EE_OK)
        return st;
    if (c->table.renew == NULL)
        return missing_slot(c, "renew");
    LOCK(c);
    st = c->table.renew(c->ctx, key, id, lease_ms, now_ms);
    UNLOCK(c);
    return st;
}

ee_status ee_counters_get(ee_counters *c, const char *key, int64_t now_ms,
                          ee_counter_result *result)
{
    ee_status st = check_handle_call(c, key, now_ms, "ee_counters_get");
    if (st != EE_OK)
        return st;
    if (result == NULL)
        return ee__error(EE_EINVAL, "ee_counters_get: result must not be NULL");
    if (c->table.get == NULL)
        return missing_slot(c, "get");
    memset(result, 0, sizeof *result);
    LOCK(c);
    st = c->table.get(c->ctx, key, now_ms, result);
    UNLOCK(c);
    return st;
}

/* ---- shared computations ---------------------------------------------------- */

static int lease_cmp(const void *a, const void *b)
{
    const ee__counters_lease *x = a, *y = b;
    return (x->expires > y->expires) - (x->expires < y->expires);
}

int64_t ee__counters_retry_at(int64_t committed, int64_t outstanding, int64_t n, int64_t limit,
                              int64_t window_end, ee__counters_lease *leases, size_t count)
{
    if (n > limit)
        return 0; /* never fits, not even in a new window */
    if (committed + n > limit)
        return window_end; /* only the window's end brings committed back to 0 */
    int64_t need = committed + outstanding + n - limit; /* > 0: what must expire */
    if (need <= 0)
        return 0;
    /* Under contention the snapshot of leases can be empty while other
     * reservations are still counted; qsort must not see a NULL array. */
    if (count > 0)
        qsort(leases, count, sizeof *leases, lease_cmp);
    for (size_t i = 0; i < count; i++) {
        need -= leases[i].n;
        if (need <= 0)
            return (window_end != 0 && leases[i].expires > window_end) ? window_end
                                                                       : leases[i].expires;
    }
    return window_end;
}

/* ---- durable usage beside memory counters ----------------------------------------- */

ee_counters *ee__counters_durable(ee_counters *c)
{
    return c != NULL ? c->durable : NULL;
}

ee_status ee__counters_credit(ee_counters *d, const char *key, int64_t amount,
                              int64_t window_end, int64_t now_ms)
{
    if (d == NULL || d->ext == NULL || d->ext->credit == NULL)
        return ee__error(EE_ENOTSUPPORTED, "counters backend \"%s\" keeps no durable usage",
                         ee_counters_backend_name(d));
    if (amount <= 0 || amount > EE_COUNTERS_VALUE_MAX || window_end < 0 ||
        window_end > EE_COUNTERS_TIME_MAX || now_ms < 0 || now_ms > EE_COUNTERS_TIME_MAX)
        return ee__error(EE_EINVAL, "counter \"%s\": durable credit %lld out of range", key,
                         (long long)amount);
    LOCK(d);
    ee_status st = d->ext->credit(d->ctx, key, amount, window_end, now_ms);
    UNLOCK(d);
    return st;
}
