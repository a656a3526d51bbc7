/*
 * libFuzzer: arbitrary bytes as EE_STORAGE_URI and EE_COUNTERS_URI, given
 * to ee_storage_open_uri() and ee_counters_open_uri(). Nothing is opened:
 * the link wraps the backends' openers (tests/fuzz/CMakeLists.txt,
 * EE_FUZZ_WRAPS) so the parsers run to the end and hand over what they
 * parsed, which is checked here; a parsed storage gets a memory backend,
 * a parsed counters database is refused with EE_ECANCELLED, and a redis
 * connection goes to a Unix socket that does not exist.
 * The first byte picks:
 *   0  storage URI            2  storage URI "postgres://fz:<canary>@" + text
 *   1  counters URI           3  counters URI "redis://fz:<canary>@" + text
 * (counters: the second byte picks the storage URI beside it).
 * Invariants: the status is a documented one; what reaches a backend is
 * well formed (a sqlite path without '?', options in range, a postgres
 * schema that is a plain identifier and no "schema=" left for libpq, a
 * redis host and port); EE_OK only when a backend was reached; a
 * password never shows in a message (unless the input copies it elsewhere).
 */
#include <ctype.h>
#include <hiredis/hiredis.h>

#include "counters/counters_internal.h"
#include "fuzz_engine.h"
#include "storage/internal.h"

#define CANARY "Pw9Canary4Rt"

static int reached;

ee_status __wrap_ee__storage_sqlite_open(ee_storage **out, const ee__sqlite_options *o);
ee_status __wrap_ee__storage_sqlite_open(ee_storage **out, const ee__sqlite_options *o)
{
    reached++;
    CHECK(o->path != NULL && o->path[0] != '\0' && strchr(o->path, '?') == NULL);
    CHECK(o->synchronous >= 0 && o->synchronous <= 2);
    CHECK(o->busy_timeout_ms >= 0 && o->busy_timeout_ms <= 600000);
    return ee__storage_memory_open(out);
}

static bool plain_identifier(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63 || !(islower((unsigned char)s[0]) || s[0] == '_'))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '_'))
            return false;
    return true;
}

ee_status __wrap_ee__storage_postgres_open(ee_storage **out, const char *conninfo,
                                           const char *schema);
ee_status __wrap_ee__storage_postgres_open(ee_storage **out, const char *conninfo,
                                           const char *schema)
{
    reached++;
    CHECK(conninfo != NULL);
    CHECK(strncasecmp(conninfo, "postgres://", 11) == 0 ||
          strncasecmp(conninfo, "postgresql://", 13) == 0);
    const char *q = strchr(conninfo, '?');
    if (q != NULL) {
        /* Our own option is taken out; libpq would refuse it. */
        for (const char *p = q + 1; p != NULL && *p != '\0';) {
            CHECK(strncmp(p, "schema=", 7) != 0);
            p = strchr(p, '&');
            if (p != NULL)
                p++;
        }
        CHECK(q[1] != '\0'); /* no dangling '?' */
    }
    CHECK(schema == NULL || plain_identifier(schema));
    return ee__storage_memory_open(out);
}

ee_status __wrap_ee__counters_sqlite_create(const char *path, const ee_counters_backend **table,
                                            void **ctx);
ee_status __wrap_ee__counters_sqlite_create(const char *path, const ee_counters_backend **table,
                                            void **ctx)
{
    (void)table, (void)ctx;
    reached++;
    CHECK(path != NULL && path[0] != '\0');
    return ee__error(EE_ECANCELLED, "fuzz: sqlite counters not opened");
}

ee_status __wrap_ee__counters_postgres_create(const char *conninfo,
                                              const ee_counters_backend **table, void **ctx);
ee_status __wrap_ee__counters_postgres_create(const char *conninfo,
                                              const ee_counters_backend **table, void **ctx)
{
    (void)table, (void)ctx;
    reached++;
    CHECK(conninfo != NULL && conninfo[0] != '\0');
    return ee__error(EE_ECANCELLED, "fuzz: postgres counters not opened");
}

/* The lock memory and storage counters take on a database beside them: a
 * plain file or a PostgreSQL connection, so it is stood in for too (its
 * target is what the parser handed over). */
ee_status __wrap_ee__counters_lock_take(const char *kind, const char *target, bool shared,
                                        ee__counters_lock **out);
ee_status __wrap_ee__counters_lock_take(const char *kind, const char *target, bool shared,
                                        ee__counters_lock **out)
{
    (void)shared;
    CHECK(kind != NULL && target != NULL && target[0] != '\0');
    CHECK(strcmp(kind, "sqlite") != 0 || strchr(target, '?') == NULL);
    *out = NULL;
    return EE_OK;
}

redisContext *__wrap_redisConnectWithTimeout(const char *ip, int port, const struct timeval tv);
redisContext *__wrap_redisConnectWithTimeout(const char *ip, int port, const struct timeval tv)
{
    (void)tv;
    reached++;
    CHECK(ip != NULL && ip[0] != '\0' && strlen(ip) < 256);
    CHECK(port >= 1 && port <= 65535);
    return redisConnectUnix("/nonexistent/ee-fuzz-redis.sock");
}

static const char *const storage_uris[] = {NULL, "", "memory:", "sqlite:///tmp/ee-fuzz/x.db",
                                           "sqlite:relative.db", "postgres://db/ee", "etcd://x"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    int mode = data[0] % 4;
    const char *beside = storage_uris[data[1] % (sizeof storage_uris / sizeof storage_uris[0])];
    char *raw = fz_text(data + 2, size - 2);
    size_t cap = strlen(raw) + 64;
    char *uri = malloc(cap);
    CHECK(uri != NULL);
    if (mode == 2)
        snprintf(uri, cap, "postgres://fz:" CANARY "@%s", raw);
    else if (mode == 3)
        snprintf(uri, cap, "redis://fz:" CANARY "@%s", raw);
    else
        snprintf(uri, cap, "%s", raw);

    reached = 0;
    ee_status st;
    if (mode % 2 == 0) {
        ee_storage *s = NULL;
        st = ee_storage_open_uri(&s, uri);
        CHECK_STATUS(st, EE_OK, EE_EINVAL);
        CHECK((st == EE_OK) == (s != NULL));
        if (st == EE_OK)
            CHECK(reached == 1 || strncasecmp(uri, "memory:", 7) == 0);
        ee_storage_free(s);
    } else {
        ee_counters *c = NULL;
        st = ee_counters_open_uri(&c, uri, beside);
        CHECK_STATUS(st, EE_OK, EE_EINVAL, EE_ENOTSUPPORTED, EE_ENETWORK, EE_ECANCELLED);
        CHECK((st == EE_OK) == (c != NULL));
        if (st == EE_OK)
            CHECK(strncmp(uri, "memory:", 7) == 0);
        if (st == EE_ECANCELLED || st == EE_ENETWORK)
            CHECK(reached == 1);
        ee_counters_free(c);
    }
    if (getenv("FZ_PRINT") != NULL)
        fprintf(stderr, "%s reached %d: %s\n", ee_status_name(st), reached,
                ee_error_last_message());
    /* The canary is the password; the fuzzer may copy it into the host,
     * which messages do show. */
    if (mode >= 2 && strstr(raw, CANARY) == NULL)
        CHECK(strstr(ee_error_last_message(), CANARY) == NULL);
    free(uri);
    free(raw);
    ee_error_clear();
    return 0;
}
