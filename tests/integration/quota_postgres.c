/*
 * Quota admission with storage and counters in the real PostgreSQL the test
 * fixture started (EE_COUNTERS_URI "storage:"): exactly 10 of 500
 * concurrent admissions from 4 processes get the 10 predictions left, where
 * seed 2's check-then-increment lets more through. Plans and subscriptions
 * are shared through the storage too.
 */
#include "../unit/quota/quota_race.h"

#include <libpq-fe.h>

#include "test_servers.h"

Test(quota_postgres, exactly_10_of_500_admissions_from_4_processes)
{
    const char *pg = ee_test_server_uri("EE_TEST_POSTGRES_URI");
    char uri[600];
    snprintf(uri, sizeof uri, "%s", pg);
    qr_run(uri, "storage:", false);
}

Test(quota_postgres, writers_of_one_subscription_at_once_leave_one)
{
    qr_subscription_race(ee_test_server_uri("EE_TEST_POSTGRES_URI"));
}

/* Nothing but the storage set: the counters are PostgreSQL's own. memory:
 * counters over it are one engine's (the database's advisory lock: a second
 * engine is refused with a message naming EE_COUNTERS_URI, and may open
 * once the first closed), and the period usage they committed is read back
 * by the next engine. */
Test(quota_postgres, default_counters_and_memory_counters_over_postgres)
{
    const char *pg = ee_test_server_uri("EE_TEST_POSTGRES_URI");
    ee_counters *c = NULL;
    cr_assert_eq(ee_counters_open_uri(&c, NULL, pg), EE_OK, "%s", ee_error_last_message());
    cr_expect_str_eq(ee_counters_backend_name(c), "storage-postgres");
    ee_counters_free(c);

    qt_set_now(QT_T0);
    char org[64];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(org, sizeof org, "org-pgmem-%d-%ld", (int)getpid(), (long)(ts.tv_nsec % 100000000));
    ee_engine *e = qt_engine_kv(pg, "memory:", NULL);
    qt_plan(e, "{\"name\": \"pgmem3\", \"predictionsPerPeriod\": 3}");
    qt_subscribe(e, org, "pgmem3", QT_T0, NULL);
    ee_principal *p = qt_principal("ws-pgmem", "u-pgmem", org);
    ee_quota_subject *s = qt_subject(e, p);
    qt_use(e, s, 3);
    ee_quota_subject_free(s);

    ee_counters *other = NULL;
    cr_expect_eq(ee_counters_open_uri(&other, "memory:", pg), EE_EBUSY,
                 "a second holder of memory counters on one database");
    cr_expect(strstr(ee_error_last_message(), "EE_COUNTERS_URI") != NULL, "%s",
              ee_error_last_message());
    cr_expect_null(other);
    ee_engine_close(e);

    qt_advance(QT_HOUR);
    e = qt_engine_kv(pg, "memory:", NULL);
    s = qt_subject(e, p);
    ee_quota_ticket tk;
    cr_expect_eq(ee_quota_admit_fast(e, s, 0, &tk), EE_EQUOTA, "a restart reset the quota");
    char *doc = NULL;
    cr_assert_eq(ee_quota_usage(e, p, &doc), EE_OK, "%s", ee_error_last_message());
    cr_expect_eq(qt_json_int(doc, "predictions", "usage"), 3, "%s", doc);
    ee_free(doc);
    ee_quota_subject_free(s);
    ee_principal_free(p);
    ee_engine_close(e);
}

/* A storage URI with the storage's own option schema= (libpq refuses it):
 * the counters opened on it (storage:, the default) connect, and their
 * tables are in that schema, not in public. */
Test(quota_postgres, counters_over_a_storage_uri_with_schema_live_in_that_schema)
{
    const char *pg = ee_test_server_uri("EE_TEST_POSTGRES_URI");
    char schema[64], uri[700];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(schema, sizeof schema, "ee_qsch_%d_%ld", (int)getpid(), (long)(ts.tv_nsec % 1000000));
    snprintf(uri, sizeof uri, "%s%sschema=%s", pg, strchr(pg, '?') != NULL ? "&" : "?", schema);
    ee_storage *s = NULL; /* the storage creates the schema */
    cr_assert_eq(ee_storage_open_uri(&s, uri), EE_OK, "%s", ee_error_last_message());
    ee_counters *c = NULL;
    ee_status st = ee_counters_open_uri(&c, NULL, uri);
    cr_assert_eq(st, EE_OK, "%s", ee_error_last_message());
    ee_counter_req req = {.key = "schema-probe", .n = 1, .limit = 5};
    ee_counter_result res;
    int granted = 0;
    cr_assert_eq(ee_counters_reserve(c, &req, 60000, QT_T0, &res, &granted), EE_OK, "%s",
                 ee_error_last_message());
    cr_expect_eq(granted, 1);
    ee_counters_free(c);
    ee_storage_free(s);

    PGconn *pc = PQconnectdb(pg);
    cr_assert_eq(PQstatus(pc), CONNECTION_OK, "%s", PQerrorMessage(pc));
    const char *args[] = {schema};
    PGresult *r = PQexecParams(pc, "SELECT count(*) FROM information_schema.tables "
                                   "WHERE table_schema = $1 AND table_name LIKE '%counter%'",
                               1, NULL, args, NULL, NULL, 0);
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQerrorMessage(pc));
    long n = strtol(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    char sql[160];
    snprintf(sql, sizeof sql, "SET client_min_messages TO warning; DROP SCHEMA IF EXISTS %s CASCADE",
             schema);
    PQclear(PQexec(pc, sql));
    PQfinish(pc);
    cr_expect_gt(n, 0, "the counters' tables are in schema %s", schema);
}
