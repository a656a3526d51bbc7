/*
 * The counters handle itself: selection by URI, the backend table's version
 * rule and missing slots, serialisation of a backend that is not
 * thread-safe, and servers that cannot be reached (a closed port on
 * 127.0.0.1: no server needed).
 */
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "counters/counters_internal.h"
#include "execengine/counters.h"

#define T0 INT64_C(1700000000000)

/* A loopback port nobody listens on: bound, never listened, then closed. */
static int closed_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(s >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    cr_assert_eq(getsockname(s, (struct sockaddr *)&a, &len), 0);
    close(s);
    return ntohs(a.sin_port);
}

Test(uri, memory_and_storage_schemes_select_their_backends)
{
    ee_counters *c = NULL;
    cr_assert_eq(ee_counters_open_uri(&c, "memory:", NULL), EE_OK);
    cr_expect_str_eq(ee_counters_backend_name(c), "memory");
    ee_counters_free(c);

    char path[64], uri[96];
    snprintf(path, sizeof path, "/tmp/ee-counters-api-%ld.db", (long)getpid());
    snprintf(uri, sizeof uri, "sqlite://%s", path);
    cr_assert_eq(ee_counters_open_uri(&c, "storage:", uri), EE_OK, "%s", ee_error_last_message());
    cr_expect_str_eq(ee_counters_backend_name(c), "storage-sqlite");
    ee_counters_free(c);
    unlink(path);
    char wal[80];
    snprintf(wal, sizeof wal, "%s-wal", path);
    unlink(wal);
    snprintf(wal, sizeof wal, "%s-shm", path);
    unlink(wal);
}

Test(uri, unknown_schemes_and_missing_parts_are_distinct_errors)
{
    ee_counters *c = (ee_counters *)1;
    cr_expect_eq(ee_counters_open_uri(&c, "memcached://127.0.0.1:11211", NULL), EE_EINVAL);
    cr_expect_null(c);
    cr_expect(strstr(ee_error_last_message(), "\"memcached\"") != NULL, "%s",
              ee_error_last_message());
    cr_expect_eq(ee_counters_open_uri(&c, "nothing-here", NULL), EE_EINVAL);
    cr_expect(strstr(ee_error_last_message(), "no scheme") != NULL);
    cr_expect_eq(ee_counters_open_uri(&c, "storage:", NULL), EE_EINVAL);
    cr_expect(strstr(ee_error_last_message(), "needs a storage URI") != NULL);
    cr_expect_eq(ee_counters_open_uri(&c, "storage:", "memory:"), EE_ENOTSUPPORTED);
    cr_expect_eq(ee_counters_open_uri(&c, "storage:", "mongodb://u:secretpw@h/db"), EE_EINVAL);
    cr_expect(strstr(ee_error_last_message(), "\"mongodb\"") != NULL);
    cr_expect(strstr(ee_error_last_message(), "secretpw") == NULL);
    cr_expect_eq(ee_counters_open_uri(NULL, "memory:", NULL), EE_EINVAL);
    /* no counters URI: the default, memory: without a database storage */
    cr_expect_eq(ee_counters_open_uri(&c, NULL, NULL), EE_OK);
    cr_expect_str_eq(ee_counters_backend_name(c), "memory");
    ee_counters_free(c);
    c = NULL;
#if EE_WITH_REDIS /* else EE_ENOTSUPPORTED: tests/unit/core/features.c */
    cr_expect_eq(ee_counters_open_uri(&c, "redis://127.0.0.1:notaport/0", NULL), EE_EINVAL);
    cr_expect_eq(ee_counters_open_uri(&c, "redis://127.0.0.1:6379/x", NULL), EE_EINVAL);
#endif
}

Test(uri, unreachable_servers_are_network_errors_without_the_password)
{
    int port = closed_port();
    char uri[160];
    ee_counters *c = (ee_counters *)1;
    (void)port, (void)uri, (void)c;
#if EE_WITH_REDIS /* without a backend: tests/unit/core/features.c */
    snprintf(uri, sizeof uri, "redis://:hunter2secret@127.0.0.1:%d/0", port);
    cr_expect_eq(ee_counters_open_uri(&c, uri, NULL), EE_ENETWORK);
    cr_expect_null(c);
    cr_expect(strstr(ee_error_last_message(), "hunter2secret") == NULL, "%s",
              ee_error_last_message());
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    cr_expect(strstr(ee_error_last_message(), portstr) != NULL, "%s", ee_error_last_message());
#endif

#if EE_WITH_POSTGRES
    snprintf(uri, sizeof uri, "postgres://ee:hunter2secret@127.0.0.1:%d/ee?connect_timeout=2",
             port);
    cr_expect_eq(ee_counters_open_uri(&c, "storage:", uri), EE_ENETWORK);
    cr_expect_null(c);
    cr_expect(strstr(ee_error_last_message(), "hunter2secret") == NULL, "%s",
              ee_error_last_message());
    cr_expect(strstr(ee_error_last_message(), "***") != NULL, "%s", ee_error_last_message());
    cr_expect_eq(ee_counters_postgres_new(&c, uri), EE_ENETWORK);
#endif
}

/* ---- custom tables --------------------------------------------------------------- */

typedef struct {
    atomic_int inside, overlap, calls, freed;
    _Atomic int64_t last_lease;
} fake;

static ee_status fake_reserve(void *ctx, const ee_counter_req *reqs, size_t count,
                              int64_t lease, int64_t now, ee_counter_result *res, int *granted)
{
    (void)reqs, (void)now;
    fake *f = ctx;
    atomic_store(&f->last_lease, lease);
    if (atomic_fetch_add(&f->inside, 1) != 0)
        atomic_fetch_add(&f->overlap, 1);
    usleep(200);
    atomic_fetch_add(&f->calls, 1);
    for (size_t i = 0; i < count; i++)
        res[i].resv_id = 42;
    *granted = 1;
    atomic_fetch_sub(&f->inside, 1);
    return EE_OK;
}

static void fake_free(void *ctx)
{
    atomic_fetch_add(&((fake *)ctx)->freed, 1);
}

static void *hammer(void *p)
{
    ee_counters *c = p;
    ee_counter_req q = {"k", 1, 1, 0, 0};
    for (int i = 0; i < 20; i++) {
        ee_counter_result r;
        int g;
        cr_assert_eq(ee_counters_reserve(c, &q, 1000, T0, &r, &g), EE_OK);
    }
    return NULL;
}

Test(custom, versions_missing_slots_and_serialisation)
{
    fake f;
    memset(&f, 0, sizeof f);
    ee_counters_backend t;
    memset(&t, 0, sizeof t);
    t.version = 0;
    t.reserve_many = fake_reserve;
    t.free = fake_free;
    ee_counters *c = (ee_counters *)1;
    cr_expect_eq(ee_counters_new_custom(&c, &t, &f), EE_EVERSION);
    cr_expect_null(c);
    t.version = EE_COUNTERS_BACKEND_VERSION + 1;
    cr_expect_eq(ee_counters_new_custom(&c, &t, &f), EE_EVERSION);
    char want[32];
    snprintf(want, sizeof want, "version %u", EE_COUNTERS_BACKEND_VERSION + 1);
    cr_expect(strstr(ee_error_last_message(), want) != NULL, "%s", ee_error_last_message());
    cr_expect_eq(atomic_load(&f.freed), 0, "a refused table's ctx is not freed");
    cr_expect_eq(ee_counters_new_custom(&c, NULL, &f), EE_EINVAL);

    t.version = 1;
    t.flags = 0; /* not thread-safe: the library serialises calls */
    cr_assert_eq(ee_counters_new_custom(&c, &t, &f), EE_OK);
    cr_expect_str_eq(ee_counters_backend_name(c), "custom");
    cr_expect_eq(ee_counters_commit(c, "k", 42, EE_COUNTERS_ALL, T0), EE_ENOTSUPPORTED);
    cr_expect(strstr(ee_error_last_message(), "commit") != NULL);
    cr_expect_eq(ee_counters_release(c, "k", 42, T0), EE_ENOTSUPPORTED);
    cr_expect_eq(ee_counters_renew(c, "k", 42, 10, T0), EE_ENOTSUPPORTED);
    ee_counter_result r;
    cr_expect_eq(ee_counters_get(c, "k", T0, &r), EE_ENOTSUPPORTED);
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, hammer, c);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    cr_expect_eq(atomic_load(&f.calls), 80);
    cr_expect_eq(atomic_load(&f.overlap), 0, "calls overlapped on a non-thread-safe backend");

    /* Per-request leases on a table that has only one lease per call: the
     * longest, and a custom backend has no handles. */
    ee_counter_req two[2] = {{"a", 1, 1, 0, 0}, {"b", 1, 1, 0, 0}};
    int64_t leases[2] = {900, 3600};
    ee_counter_result res[2];
    int g = 0;
    void *h = (void *)1;
    cr_expect_eq(ee__counters_resolve(c, "a", &h), EE_OK);
    cr_expect_null(h);
    cr_expect_eq(ee__counters_reserve_leased(c, two, NULL, leases, 2, T0, res, &g), EE_OK);
    cr_expect_eq(g, 1);
    cr_expect_eq(atomic_load(&f.last_lease), 3600);
    ee_counters_free(c);
    cr_expect_eq(atomic_load(&f.freed), 1);
    ee_counters_free(NULL);
}

/* ---- per-request leases through the public table ------------------------------------ */

typedef struct {
    int64_t leases[EE_COUNTERS_MANY_MAX];
    size_t count;
    int many_calls, leased_calls;
} lease_fake;

static ee_status lf_reserve_many(void *ctx, const ee_counter_req *reqs, size_t count,
                                 int64_t lease, int64_t now, ee_counter_result *res, int *granted)
{
    (void)reqs, (void)now;
    lease_fake *f = ctx;
    f->many_calls++;
    f->count = count;
    for (size_t i = 0; i < count; i++) {
        f->leases[i] = lease;
        res[i].resv_id = 7;
        res[i].fits = 1;
    }
    *granted = 1;
    return EE_OK;
}

static ee_status lf_reserve_leased(void *ctx, const ee_counter_req *reqs, const int64_t *leases,
                                   size_t count, int64_t now, ee_counter_result *res,
                                   int *granted)
{
    (void)reqs, (void)now;
    lease_fake *f = ctx;
    f->leased_calls++;
    f->count = count;
    for (size_t i = 0; i < count; i++) {
        f->leases[i] = leases[i];
        res[i].resv_id = 9;
        res[i].fits = 1;
    }
    *granted = 1;
    return EE_OK;
}

static ee_status never_called(void *ctx, const ee_counter_req *reqs, const int64_t *leases,
                              size_t count, int64_t now, ee_counter_result *res, int *granted)
{
    (void)ctx, (void)reqs, (void)leases, (void)count, (void)now, (void)res, (void)granted;
    abort(); /* a version-1 table's bytes past `free` are not the library's to read */
}

Test(custom, per_request_leases_on_version_2_and_version_1_tables)
{
    ee_counter_req two[2] = {{"rate", 1, 50, 0, 0}, {"slot", 1, 10, 0, 0}};
    int64_t leases[2] = {3600000, 900000};
    ee_counter_result res[2];
    int g = 0;

    lease_fake f2;
    memset(&f2, 0, sizeof f2);
    ee_counters_backend t;
    memset(&t, 0, sizeof t);
    t.version = 2;
    t.flags = EE_COUNTERS_THREAD_SAFE;
    t.reserve_many = lf_reserve_many;
    t.reserve_leased = lf_reserve_leased;
    ee_counters *c = NULL;
    cr_assert_eq(ee_counters_new_custom(&c, &t, &f2), EE_OK);
    cr_assert_eq(ee_counters_reserve_many_leased(c, two, leases, 2, T0, res, &g), EE_OK);
    cr_expect_eq(g, 1);
    cr_expect_eq(f2.leased_calls, 1);
    cr_expect_eq(f2.leases[0], 3600000);
    cr_expect_eq(f2.leases[1], 900000, "each counter its own lease");
    cr_expect_eq(res[1].resv_id, 9);
    /* One lease for all still goes to reserve_many. */
    cr_assert_eq(ee_counters_reserve_many(c, two, 2, 1000, T0, res, &g), EE_OK);
    cr_expect_eq(f2.many_calls, 1);
    /* Bad input. */
    int64_t bad[2] = {1000, 0};
    cr_expect_eq(ee_counters_reserve_many_leased(c, two, bad, 2, T0, res, &g), EE_EINVAL);
    cr_expect_eq(ee_counters_reserve_many_leased(c, two, NULL, 2, T0, res, &g), EE_EINVAL);
    cr_expect_eq(ee_counters_reserve_many_leased(NULL, two, leases, 2, T0, res, &g), EE_EINVAL);
    cr_expect_eq(f2.leased_calls, 1, "nothing reached the backend");
    ee_counters_free(c);

    /* A version-1 table: whatever follows `free` is ignored; the longest
     * lease is used for every counter. */
    lease_fake f1;
    memset(&f1, 0, sizeof f1);
    t.version = 1;
    t.reserve_leased = never_called;
    cr_assert_eq(ee_counters_new_custom(&c, &t, &f1), EE_OK);
    cr_assert_eq(ee_counters_reserve_many_leased(c, two, leases, 2, T0, res, &g), EE_OK);
    cr_expect_eq(f1.many_calls, 1);
    cr_expect_eq(f1.leases[0], 3600000);
    cr_expect_eq(f1.leases[1], 3600000);
    ee_counters_free(c);
}
