/*
 * The storage wrapper itself: URIs, custom backend tables and their
 * versions, serialisation of backends that are not thread-safe, the
 * collection table, and the five kinds of bad input with distinct statuses.
 */
#include <arpa/inet.h>
#include <bson/bson.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "execengine/storage.h"

#if EE_WITH_POSTGRES
/* A loopback port nobody listens on: bind one, read it, close it. */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t n = sizeof a;
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &n), 0);
    close(fd);
    return ntohs(a.sin_port);
}
#endif

Test(storage_api, unknown_uri_scheme_names_the_scheme)
{
    ee_storage *s = (ee_storage *)1;
    cr_expect_eq(ee_storage_open_uri(&s, "mongodb://u:secret@127.0.0.1/db"), EE_EINVAL);
    cr_expect_null(s);
    cr_expect(strstr(ee_error_last_message(), "'mongodb'") != NULL, "%s",
              ee_error_last_message());
    cr_expect(strstr(ee_error_last_message(), "secret") == NULL);
    cr_expect_eq(ee_storage_open_uri(&s, "no scheme at all"), EE_EINVAL);
    cr_expect_eq(ee_storage_open_uri(&s, "sqlite://"), EE_EINVAL);
    cr_expect_eq(ee_storage_open_uri(&s, NULL), EE_EINVAL);
    cr_expect_eq(ee_storage_open_uri(NULL, "memory:"), EE_EINVAL);
#if EE_WITH_POSTGRES /* else EE_ENOTSUPPORTED: tests/unit/core/features.c */
    cr_expect_eq(ee_storage_open_uri(&s, "postgres://127.0.0.1/db?schema=Bad-Name"), EE_EINVAL);
#endif
}

#if EE_WITH_POSTGRES /* these two need the PostgreSQL backend built in */
Test(storage_api, unreachable_postgres_is_a_network_error_without_the_password)
{
    char uri[160];
    snprintf(uri, sizeof uri,
             "postgres://ee:hunter2secret@127.0.0.1:%d/ee?connect_timeout=2&schema=x", closed_port());
    ee_storage *s = (ee_storage *)1;
    cr_expect_eq(ee_storage_open_uri(&s, uri), EE_ENETWORK, "%s", ee_error_last_message());
    cr_expect_null(s);
    const char *m = ee_error_last_message();
    cr_expect(strstr(m, "hunter2secret") == NULL, "password leaked: %s", m);
    cr_expect(strstr(m, "127.0.0.1") != NULL, "%s", m);
    snprintf(uri, sizeof uri, "host=127.0.0.1 port=%d password=hunter2secret connect_timeout=2",
             closed_port());
    cr_expect_eq(ee_storage_postgres_new(&s, uri), EE_ENETWORK);
    cr_expect(strstr(ee_error_last_message(), "hunter2secret") == NULL, "%s",
              ee_error_last_message());
}

Test(storage_api, five_bad_inputs_five_statuses_store_unchanged)
{
    ee_storage *s = NULL;
    cr_assert_eq(ee_storage_open_uri(&s, "memory:"), EE_OK);
    bson_t *d = BCON_NEW("workspaceId", "w", "userId", "u", "createdAt", BCON_DATE_TIME(1));
    char id[25];
    cr_assert_eq(ee_storage_insert(s, "auditLog", "w", bson_get_data(d), d->len, id), EE_OK);
    uint64_t before = 0, after = 0;
    cr_assert_eq(ee_storage_count(s, "auditLog", "w", NULL, &before), EE_OK);

    ee_status st[5];
    char msg[5][256];
    uint8_t bad[256];
    memcpy(bad, bson_get_data(d), d->len);
    bad[d->len - 1] = 1; /* no terminator */
    st[0] = ee_storage_insert(s, "auditLog", "w", bad, d->len, NULL);
    snprintf(msg[0], 256, "%s", ee_error_last_message());
    st[1] = ee_storage_insert(s, "auditLogs", "w", bson_get_data(d), d->len, NULL);
    snprintf(msg[1], 256, "%s", ee_error_last_message());
    st[2] = ee_storage_delete(s, "auditLog", "w", "0123456789abcdef0123456789abcdef");
    snprintf(msg[2], 256, "%s", ee_error_last_message());
    ee_storage *other = NULL;
    st[3] = ee_storage_open_uri(&other, "ftp://example/x");
    snprintf(msg[3], 256, "%s", ee_error_last_message());
    char uri[128];
    snprintf(uri, sizeof uri, "postgresql://ee@127.0.0.1:%d/ee?connect_timeout=2", closed_port());
    st[4] = ee_storage_open_uri(&other, uri);
    snprintf(msg[4], 256, "%s", ee_error_last_message());
    bson_destroy(d);

    ee_status want[5] = {EE_EPARSE, EE_ENOTSUPPORTED, EE_ETOOBIG, EE_EINVAL, EE_ENETWORK};
    for (int i = 0; i < 5; i++) {
        cr_expect_eq(st[i], want[i], "case %d: %s (%s)", i, ee_status_name(st[i]), msg[i]);
        cr_expect_neq(msg[i][0], '\0');
        for (int j = 0; j < i; j++) {
            cr_expect_neq(st[i], st[j], "cases %d and %d share a status", i, j);
            cr_expect_str_neq(msg[i], msg[j]);
        }
    }
    cr_assert_eq(ee_storage_count(s, "auditLog", "w", NULL, &after), EE_OK);
    cr_expect_eq(after, before);
    uint8_t *data = NULL;
    size_t len = 0;
    cr_expect_eq(ee_storage_get(s, "auditLog", "w", id, &data, &len, NULL), EE_OK);
    ee_free(data);
    ee_storage_free(s);
}
#endif

Test(storage_api, collections_are_declared_once)
{
    const ee_storage_collection *const *list;
    size_t n = 0;
    cr_assert_eq(ee_storage_collection_list(&list, &n), EE_OK);
    const char *want[] = {"workflowCatalog", "workflowCategories", "workflowExecutions",
                          "executionEmailTemplates", "userWorkflowUsage", "customerApiKeys",
                          "platformUsageBilling", "credentials", "auditLog", "plans",
                          "subscriptions", "executionQueue", "executionQueueCounters", "gatewayGrants",
                          "gatewayCalls", "emailOutbox"};
    cr_assert_eq(n, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < n; i++) {
        cr_expect_str_eq(list[i]->name, want[i]);
        cr_expect_str_eq(list[i]->time_field,
                         strcmp(want[i], "executionQueue") == 0 || strcmp(want[i], "emailOutbox") == 0
                             ? "claimableAt"
                             : "createdAt");
        for (size_t k = 0; k < list[i]->n_indexes; k++)
            for (const int *f = list[i]->indexes[k]; *f >= 0; f++)
                cr_expect_lt((size_t)*f, list[i]->n_fields, "%s index %zu", want[i], k);
        for (size_t u = 0; u < list[i]->n_unique; u++)
            cr_expect_lt((size_t)list[i]->unique[u], list[i]->n_fields);
    }
    cr_expect_eq(ee_storage_collection_list(NULL, &n), EE_EINVAL);
    char id[25];
    cr_assert_eq(ee_storage_id_new(id), EE_OK);
    cr_expect_eq(strlen(id), 24);
    cr_expect_eq(strspn(id, "0123456789abcdef"), 24);
}

/* ---- custom backends ------------------------------------------------------------ */

typedef struct fake {
    atomic_int inside, overlap, destroyed, inserts;
} fake;

static ee_status fake_insert(void *ctx, const ee_storage_collection *c,
                             const ee_storage_record *r)
{
    fake *f = ctx;
    (void)c;
    (void)r;
    if (atomic_fetch_add(&f->inside, 1) != 0)
        atomic_fetch_add(&f->overlap, 1);
    usleep(200);
    atomic_fetch_sub(&f->inside, 1);
    atomic_fetch_add(&f->inserts, 1);
    return EE_OK;
}

static ee_status fake_remove(void *ctx, const ee_storage_collection *c, const char *ws,
                             const uint8_t *id)
{
    (void)ctx, (void)c, (void)ws, (void)id;
    return EE_EIO; /* without a message: the wrapper supplies one */
}

static void fake_destroy(void *ctx)
{
    atomic_fetch_add(&((fake *)ctx)->destroyed, 1);
}

static ee_storage *shared;

static void *hammer(void *arg)
{
    (void)arg;
    bson_t *d = BCON_NEW("workspaceId", "w", "createdAt", BCON_DATE_TIME(1));
    for (int i = 0; i < 50; i++)
        cr_assert_eq(ee_storage_insert(shared, "auditLog", "w", bson_get_data(d), d->len, NULL),
                     EE_OK);
    bson_destroy(d);
    return NULL;
}

Test(storage_api, custom_backend_versions_slots_and_serialisation)
{
    fake f = {0};
    ee_storage_backend be = {.version = 0, .name = "fake", .destroy = fake_destroy,
                             .insert = fake_insert, .remove = fake_remove};
    ee_storage *s = NULL;
    cr_expect_eq(ee_storage_new_custom(&s, &be, &f), EE_EVERSION);
    be.version = EE_STORAGE_BACKEND_VERSION + 1;
    cr_expect_eq(ee_storage_new_custom(&s, &be, &f), EE_EVERSION);
    cr_expect(strstr(ee_error_last_message(), "version") != NULL);
    cr_expect_eq(f.destroyed, 0);
    be.version = EE_STORAGE_BACKEND_VERSION;
    be.flags = 0; /* not thread-safe: the library must serialise */
    cr_assert_eq(ee_storage_new_custom(&s, &be, &f), EE_OK);
    cr_expect_str_eq(ee_storage_backend_name(s), "fake");
    shared = s;
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, hammer, NULL);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    cr_expect_eq(f.inserts, 200);
    cr_expect_eq(f.overlap, 0, "calls overlapped on a backend that is not thread-safe");
    /* Missing slots. */
    uint8_t *data;
    size_t len;
    cr_expect_eq(ee_storage_get(s, "auditLog", "w", "0123456789abcdef01234567", &data, &len,
                                NULL), EE_ENOTSUPPORTED);
    cr_expect(strstr(ee_error_last_message(), "fake") != NULL, "%s", ee_error_last_message());
    uint64_t n;
    cr_expect_eq(ee_storage_count(s, "auditLog", "w", NULL, &n), EE_ENOTSUPPORTED);
    ee_error_clear();
    cr_expect_eq(ee_storage_delete(s, "auditLog", "w", "0123456789abcdef01234567"), EE_EIO);
    cr_expect(strstr(ee_error_last_message(), "fake") != NULL, "%s", ee_error_last_message());
    ee_storage_free(s);
    cr_expect_eq(f.destroyed, 1);
    ee_storage_free(NULL);
    cr_expect_str_eq(ee_storage_backend_name(NULL), "");
}
