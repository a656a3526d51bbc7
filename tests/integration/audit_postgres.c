/*
 * The audit log on the real PostgreSQL the `servers` fixture started: two
 * engines (two hosts) append to one workspace at once, the pages of a
 * query cover every entry there before the walk exactly once while a
 * third thread keeps appending, the action prefix filters, and retention
 * deletes what is older than its time. Each run gets its own schema.
 */
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../unit/audit/audit_test.h"
#include "audit/audit.h"
#include "test_servers.h"

#define T0 INT64_C(1800000000000)

static _Atomic int64_t now_ms = T0;

static int64_t clock_fn(void *payload)
{
    (void)payload;
    return atomic_fetch_add(&now_ms, 1);
}

static char uri[800], schema[64];

static ee_engine *open_engine(void)
{
    ee_config *cfg = NULL;
    cr_assert_eq(ee_config_new(&cfg), EE_OK);
    cr_assert_eq(ee_config_set(cfg, "API_KEY_ENCRYPTION_SECRET",
                               "test-secret-0123456789abcdef0123456789"),
                 EE_OK);
    cr_assert_eq(ee_config_set(cfg, "EE_STORAGE_URI", uri), EE_OK, "%s",
                 ee_error_last_message());
    cr_assert_eq(ee_config_set_clock(cfg, clock_fn, NULL), EE_OK);
    ee_engine *e = NULL;
    ee_status st = ee_engine_open(&e, cfg);
    ee_config_free(cfg);
    cr_assert_eq(st, EE_OK, "open: %s", ee_error_last_message());
    return e;
}

typedef struct {
    ee_engine *e;
    int n;
    ee__audit_action action;
    const char *target;
    atomic_int *stop;
} writer;

static void *write_n(void *arg)
{
    writer *w = arg;
    for (int i = 0; i < w->n && (w->stop == NULL || !atomic_load(w->stop)); i++)
        ee__audit_append(w->e, &(ee__audit_entry){.action = w->action,
                                                  .workspace = "ws-pg",
                                                  .org = "org-pg",
                                                  .actor = "u-pg",
                                                  .target_id = w->target,
                                                  .outcome = EE__AUDIT_OK,
                                                  .status = EE_OK});
    return NULL;
}

Test(audit_postgres, two_hosts_append_and_pages_cover_everything_once, .timeout = 120)
{
    const char *base = ee_test_server_uri("EE_TEST_POSTGRES_URI");
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(schema, sizeof schema, "ee_audit_%d_%ld", (int)getpid(), (long)(ts.tv_nsec % 1000000));
    snprintf(uri, sizeof uri, "%s%sschema=%s", base, strchr(base, '?') != NULL ? "&" : "?",
             schema);
    ee_engine *h1 = open_engine(), *h2 = open_engine();
    ee_principal *p = NULL, *other = NULL;
    cr_assert_eq(ee_principal_new(&p, "ws-pg", "u-pg", "org-pg"), EE_OK);
    cr_assert_eq(ee_principal_new(&other, "ws-other", "u-o", "org-o"), EE_OK);

    /* two hosts at once: 150 key entries and 150 execution entries */
    writer w1 = {h1, 150, EE__AUDIT_KEY_ADDED, "early", NULL};
    writer w2 = {h2, 150, EE__AUDIT_EXEC_FINISHED, "early", NULL};
    pthread_t t1, t2;
    pthread_create(&t1, NULL, write_n, &w1);
    pthread_create(&t2, NULL, write_n, &w2);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    cr_expect_eq(audit_stat(h1, "appended") + audit_stat(h2, "appended"), 300);
    cr_expect_eq(audit_stat(h1, "failed") + audit_stat(h2, "failed"), 0);

    /* pages while host 2 keeps appending: each early entry once, none twice */
    static const struct {
        const char *extra;
        int limit, early;
    } walks[] = {{"", 9, 300}, {"\"action\": \"credentials.\"", 4, 150},
                 {"\"action\": \"execution.finished\"", 13, 150}};
    for (size_t k = 0; k < sizeof walks / sizeof walks[0]; k++) {
        atomic_int stop = 0;
        writer late = {h2, 100000, k % 2 ? EE__AUDIT_EXEC_FINISHED : EE__AUDIT_KEY_ADDED, "late",
                       &stop};
        pthread_t tl;
        pthread_create(&tl, NULL, write_n, &late);
        json_t *all = audit_all(h1, p, walks[k].extra, walks[k].limit);
        atomic_store(&stop, 1);
        pthread_join(tl, NULL);
        json_t *seen = json_object();
        int early = 0;
        size_t i;
        json_t *v;
        json_array_foreach(all, i, v) {
            const char *id = audit_str(v, "id");
            cr_assert_null(json_object_get(seen, id), "walk %zu: entry %s twice", k, id);
            json_object_set_new(seen, id, json_true());
            early += strcmp(audit_str(v, "target.id"), "early") == 0;
            cr_expect_str_eq(audit_str(v, "workspaceId"), "ws-pg");
        }
        cr_expect_eq(early, walks[k].early, "walk %zu: %d early entries", k, early);
        json_decref(seen);
        json_decref(all);
    }
    /* another workspace sees none */
    json_t *none = audit_all(h1, other, "", 50);
    cr_expect_eq(json_array_size(none), 0);
    json_decref(none);

    /* retention: everything before a time, from any host */
    int64_t cut = atomic_load(&now_ms);
    writer after = {h1, 5, EE__AUDIT_KEY_DELETED, "after", NULL};
    write_n(&after);
    uint64_t n = 0;
    cr_assert_eq(ee_audit_purge(h2, cut, &n), EE_OK, "%s", ee_error_last_message());
    cr_expect_geq(n, 300);
    json_t *rest = audit_all(h1, p, "", 100);
    cr_expect_eq(json_array_size(rest), 5);
    json_decref(rest);

    ee_principal_free(p);
    ee_principal_free(other);
    ee_engine_close(h1);
    ee_engine_close(h2);
    PGconn *c = PQconnectdb(base);
    if (PQstatus(c) == CONNECTION_OK) {
        char sql[128];
        snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE", schema);
        PQclear(PQexec(c, sql));
    }
    PQfinish(c);
}
