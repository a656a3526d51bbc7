/*
 * The storage conformance suite against the postgres backend, on the
 * PostgreSQL the `servers` fixture started. Every test gets its own fresh
 * schema (URI option schema=...), dropped afterwards, so tests never see
 * each other's data. Plus what is specific to postgres: schema versions,
 * several handles (hosts) incrementing one row.
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bson/bson.h>

#include "execengine/storage.h"
#include "test_servers.h"

#define CONF_SUITE storage_postgres

static char schema[64];
static char store_uri[700];

static void make_uri(void)
{
    const char *base = ee_test_server_uri("EE_TEST_POSTGRES_URI");
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(schema, sizeof schema, "ee_t_%d_%ld", (int)getpid(), (long)(ts.tv_nsec % 1000000));
    snprintf(store_uri, sizeof store_uri, "%s%sschema=%s", base,
             strchr(base, '?') != NULL ? "&" : "?", schema);
}

static ee_storage *conf_open(void)
{
    make_uri();
    ee_storage *s = NULL;
    ee_status st = ee_storage_open_uri(&s, store_uri);
    cr_assert_eq(st, EE_OK, "open %s: %s", store_uri, ee_error_last_message());
    return s;
}

static void quiet(void *arg, const char *message)
{
    (void)arg, (void)message; /* NOTICEs of DROP SCHEMA ... CASCADE */
}

static void run_sql(const char *sql)
{
    PGconn *c = PQconnectdb(ee_test_server_uri("EE_TEST_POSTGRES_URI"));
    PQsetNoticeProcessor(c, quiet, NULL);
    cr_assert_eq(PQstatus(c), CONNECTION_OK, "%s", PQerrorMessage(c));
    PGresult *r = PQexec(c, sql);
    cr_assert(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK,
              "%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
}

static void conf_cleanup(void)
{
    char sql[128];
    if (schema[0] == '\0')
        return;
    snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE", schema);
    run_sql(sql);
}

#include "../unit/storage/conformance.h"

/* ---- postgres only --------------------------------------------------------------- */

Test(CONF_SUITE, newer_schema_is_refused_and_reopen_is_idempotent)
{
    ee_storage *again = NULL;
    cr_assert_eq(ee_storage_open_uri(&again, store_uri), EE_OK, "%s", ee_error_last_message());
    ee_storage_free(again);
    char sql[160];
    snprintf(sql, sizeof sql, "UPDATE %s.ee_meta SET value = 42 WHERE key = 'schema_version'",
             schema);
    run_sql(sql);
    again = NULL;
    cr_expect_eq(ee_storage_open_uri(&again, store_uri), EE_EVERSION);
    cr_expect_null(again);
    cr_expect(strstr(ee_error_last_message(), "42") != NULL, "%s", ee_error_last_message());
}

/* The first column of the first row of `sql`, as text (caller frees). */
static char *sql_text(const char *sql)
{
    PGconn *c = PQconnectdb(ee_test_server_uri("EE_TEST_POSTGRES_URI"));
    cr_assert_eq(PQstatus(c), CONNECTION_OK, "%s", PQerrorMessage(c));
    PGresult *r = PQexec(c, sql);
    cr_assert(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0, "%s: %s", sql,
              PQerrorMessage(c));
    char *out = strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    PQfinish(c);
    return out;
}

static void put_subscription(ee_storage *s, const char *org, const char *plan, ee_status want)
{
    bson_t *d = bson_new();
    BSON_APPEND_UTF8(d, "orgId", org);
    BSON_APPEND_UTF8(d, "planId", plan);
    BSON_APPEND_UTF8(d, "status", "active");
    BSON_APPEND_DATE_TIME(d, "createdAt", 1700000000000LL);
    cr_assert_eq(ee_storage_insert(s, "subscriptions", org, bson_get_data(d), d->len, NULL),
                 want, "%s", ee_error_last_message());
    bson_destroy(d);
}

Test(CONF_SUITE, version_1_databases_keep_one_subscription_per_organisation)
{
    /* Version 1 had no unique key on subscriptions: a race could leave two
     * of one organisation. Opening keeps the newest, then refuses another. */
    ee_storage *s = NULL;
    cr_assert_eq(ee_storage_open_uri(&s, store_uri), EE_OK, "%s", ee_error_last_message());
    put_subscription(s, "org-1", "free", EE_OK);
    put_subscription(s, "org-1", "free", EE_EEXISTS);
    ee_storage_free(s);
    char sql[900];
    snprintf(sql, sizeof sql,
             "DROP INDEX %s.\"ee_subscriptions_u\"; "
             "UPDATE %s.ee_meta SET value = 1 WHERE key = 'schema_version'; "
             "INSERT INTO %s.\"ee_subscriptions\" (id, ws, rev, t, f_orgId, f_planId, f_status, "
             "doc) SELECT substring(decode(md5(random()::text), 'hex') from 1 for 12), ws, rev, "
             "t + 5, f_orgId, 'pro', f_status, doc FROM %s.\"ee_subscriptions\"",
             schema, schema, schema, schema);
    run_sql(sql);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s.\"ee_subscriptions\"", schema);
    char *n = sql_text(sql);
    cr_assert_str_eq(n, "2", "the test made its duplicate");
    free(n);

    cr_assert_eq(ee_storage_open_uri(&s, store_uri), EE_OK, "%s", ee_error_last_message());
    n = sql_text(sql);
    cr_expect_str_eq(n, "1");
    free(n);
    snprintf(sql, sizeof sql, "SELECT f_planId FROM %s.\"ee_subscriptions\"", schema);
    n = sql_text(sql);
    cr_expect_str_eq(n, "pro", "the newest stays");
    free(n);
    snprintf(sql, sizeof sql, "SELECT value FROM %s.ee_meta WHERE key = 'schema_version'",
             schema);
    n = sql_text(sql);
    cr_expect_str_eq(n, "4");
    free(n);
    put_subscription(s, "org-1", "team", EE_EEXISTS);
    ee_storage_free(s);
}

Test(CONF_SUITE, version_2_databases_gain_the_gateway_collections)
{
    ee_storage *s = NULL;
    cr_assert_eq(ee_storage_open_uri(&s, store_uri), EE_OK, "%s", ee_error_last_message());
    ee_storage_free(s);
    char sql[600];
    snprintf(sql, sizeof sql,
             "DROP TABLE %s.\"ee_gatewayGrants\"; DROP TABLE %s.\"ee_gatewayCalls\"; "
             "UPDATE %s.ee_meta SET value = 2 WHERE key = 'schema_version'",
             schema, schema, schema);
    run_sql(sql);
    cr_assert_eq(ee_storage_open_uri(&s, store_uri), EE_OK, "%s", ee_error_last_message());
    ee_storage_eq key[2] = {{"executionId", "aaaaaaaaaaaaaaaaaaaaaaaa"}, {"callId", "total"}};
    ee_storage_inc inc = {"costNano", 5};
    int64_t total = 0;
    cr_expect_eq(ee_storage_increment(s, "gatewayCalls", "ws-1", key, 2, &inc, 1,
                                      1700000000000LL, &total),
                 EE_OK, "%s", ee_error_last_message());
    cr_expect_eq(total, 5);
    snprintf(sql, sizeof sql, "SELECT value FROM %s.ee_meta WHERE key = 'schema_version'",
             schema);
    char *n = sql_text(sql);
    cr_expect_str_eq(n, "4");
    free(n);
    ee_storage_free(s);
}

Test(CONF_SUITE, version_3_databases_gain_the_email_outbox)
{
    ee_storage *s = NULL;
    cr_assert_eq(ee_storage_open_uri(&s, store_uri), EE_OK, "%s", ee_error_last_message());
    ee_storage_free(s);
    char sql[600];
    snprintf(sql, sizeof sql,
             "DROP TABLE %s.\"ee_emailOutbox\"; "
             "UPDATE %s.ee_meta SET value = 3 WHERE key = 'schema_version'",
             schema, schema);
    run_sql(sql);
    cr_assert_eq(ee_storage_open_uri(&s, store_uri), EE_OK, "%s", ee_error_last_message());
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s.\"ee_emailOutbox\"", schema);
    char *n = sql_text(sql);
    cr_expect_str_eq(n, "0", "the outbox table was not created again");
    free(n);
    snprintf(sql, sizeof sql, "SELECT value FROM %s.ee_meta WHERE key = 'schema_version'",
             schema);
    n = sql_text(sql);
    cr_expect_str_eq(n, "4");
    free(n);
    ee_storage_free(s);
}

#define HOSTS 3
#define PER_HOST 30

static void *host_work(void *arg)
{
    ee_storage *h = arg;
    ee_storage_inc inc[2] = {{"executionsCount", 1}, {"tokensUsed", 7}};
    for (int i = 0; i < PER_HOST; i++) {
        ee_status st = ee_storage_increment(h, "platformUsageBilling", "ws-a",
                                            (ee_storage_eq[2]){{"month", "2025-10"},
                                                               {"userId", ""}},
                                            2, inc, 2, T0, NULL);
        cr_assert_eq(st, EE_OK, "%s", ee_error_last_message());
    }
    return NULL;
}

Test(CONF_SUITE, several_hosts_increment_one_row_exactly)
{
    ee_storage *hosts[HOSTS];
    pthread_t t[HOSTS];
    for (int i = 0; i < HOSTS; i++) {
        cr_assert_eq(ee_storage_open_uri(&hosts[i], store_uri), EE_OK);
        pthread_create(&t[i], NULL, host_work, hosts[i]);
    }
    for (int i = 0; i < HOSTS; i++) {
        pthread_join(t[i], NULL);
        ee_storage_free(hosts[i]);
    }
    ee_storage_inc zero[2] = {{"executionsCount", 0}, {"tokensUsed", 0}};
    int64_t totals[2];
    cr_assert_eq(ee_storage_increment(S, "platformUsageBilling", "ws-a",
                                      (ee_storage_eq[2]){{"month", "2025-10"}, {"userId", ""}},
                                      2, zero, 2, T0, totals), EE_OK);
    cr_expect_eq(totals[0], HOSTS * PER_HOST);
    cr_expect_eq(totals[1], 7 * HOSTS * PER_HOST);
    cr_expect_eq(count_of("platformUsageBilling", "ws-a"), 1, "the upsert created one row");
}

Test(CONF_SUITE, damaged_stored_document_is_reported)
{
    char id[25];
    insert_ok("workflowExecutions", "ws-a", exec_doc("ws-a", "u1", "pending", T0), id);
    char sql[160];
    snprintf(sql, sizeof sql, "UPDATE %s.\"ee_workflowExecutions\" SET doc = '\\x0500'", schema);
    run_sql(sql);
    uint8_t *data = NULL;
    size_t len = 0;
    cr_expect_eq(ee_storage_get(S, "workflowExecutions", "ws-a", id, &data, &len, NULL),
                 EE_ECORRUPT);
    cr_expect_null(data);
}

Test(CONF_SUITE, three_processes_drain_300_claims_each_once)
{
    /* FOR UPDATE SKIP LOCKED: three hosts claim at once, none waits for
     * another's row, none gets a row twice, none is left. */
    claim_drain_processes(S, store_uri, 3, 300);
    uint64_t n = 0;
    ee_storage_eq eq = {"state", "waiting"};
    ee_storage_query_spec q = {.version = EE_STORAGE_QUERY_VERSION, .eq = &eq, .n_eq = 1};
    cr_assert_eq(ee_storage_count(S, "executionQueue", NULL, &q, &n), EE_OK);
    cr_expect_eq(n, 0, "nothing left waiting");
}

Test(CONF_SUITE, version_2_databases_gain_the_queue_collections)
{
    char sql[400];
    snprintf(sql, sizeof sql,
             "DROP TABLE %s.\"ee_executionQueue\"; DROP TABLE %s.\"ee_executionQueueCounters\"; "
             "UPDATE %s.ee_meta SET value = 2 WHERE key = 'schema_version'",
             schema, schema, schema);
    run_sql(sql);
    ee_storage *s = NULL;
    cr_assert_eq(ee_storage_open_uri(&s, store_uri), EE_OK, "%s", ee_error_last_message());
    bson_t *d = claim_item("e-1", "ws-a", 0, 1000);
    cr_assert_eq(ee_storage_insert(s, "executionQueue", NULL, bson_get_data(d), d->len, NULL),
                 EE_OK, "%s", ee_error_last_message());
    bson_destroy(d);
    claim_mark m = {.owner = "w", .until = CLAIM_FAR, .fail = EE_OK};
    cr_expect_eq(claim_next(s, 2000, &m, NULL, NULL), EE_OK, "%s", ee_error_last_message());
    ee_storage_free(s);
    snprintf(sql, sizeof sql, "SELECT value FROM %s.ee_meta WHERE key = 'schema_version'",
             schema);
    char *v = sql_text(sql);
    cr_expect_str_eq(v, "4");
    free(v);
}
