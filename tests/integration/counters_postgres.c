/*
 * The counters conformance suite on the storage backend over the real
 * PostgreSQL the test fixture started, its exactness with 8 threads in each
 * of 4 processes, and a SIGKILLed holder's reservation coming back after
 * its lease. Each test process works in its own schema (search_path in the
 * connection URI), dropped when it ends.
 */
#define CONF_SHARED 1
#include "../unit/counters/conformance.h"

#include <libpq-fe.h>

#include "test_servers.h"

static char schema[64];
static char conninfo[512];
static pid_t schema_owner;

static void pg_run(const char *sql)
{
    PGconn *c = PQconnectdb(ee_test_server_uri("EE_TEST_POSTGRES_URI"));
    cr_assert_eq(PQstatus(c), CONNECTION_OK, "%s", PQerrorMessage(c));
    PGresult *r = PQexec(c, sql);
    cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
}

static void drop_schema(void)
{
    if (getpid() != schema_owner)
        return;
    char sql[192];
    snprintf(sql, sizeof sql, "SET client_min_messages TO warning; DROP SCHEMA IF EXISTS %s CASCADE",
             schema);
    PGconn *c = PQconnectdb(ee_test_server_uri("EE_TEST_POSTGRES_URI"));
    PQclear(PQexec(c, sql));
    PQfinish(c);
}

static const char *conf_conninfo(void)
{
    if (schema[0] == '\0') {
        snprintf(schema, sizeof schema, "ee_ctr_%ld_%ld", (long)getpid(), (long)time(NULL));
        schema_owner = getpid();
        char sql[128];
        snprintf(sql, sizeof sql, "CREATE SCHEMA %s", schema);
        pg_run(sql);
        atexit(drop_schema);
        snprintf(conninfo, sizeof conninfo, "%s?options=-csearch_path%%3D%s",
                 ee_test_server_uri("EE_TEST_POSTGRES_URI"), schema);
    }
    return conninfo;
}

static void conf_open(ee_counters **out)
{
    ee_status st = ee_counters_open_uri(out, "storage:", conf_conninfo());
    cr_assert_eq(st, EE_OK, "%s", ee_error_last_message());
    cr_assert_str_eq(ee_counters_backend_name(*out), "storage-postgres");
}

Test(postgres, eight_threads_in_each_of_four_processes_grant_exactly_the_limit, .timeout = 240)
{
    conf_contention(4, 8);
}

Test(postgres, tables_of_a_newer_schema_are_refused)
{
    ee_counters *c;
    conf_open(&c);
    ee_counters_free(c);
    char sql[160];
    snprintf(sql, sizeof sql, "UPDATE %s.ee_counters_schema SET version = 42", schema);
    pg_run(sql);
    c = NULL;
    cr_expect_eq(ee_counters_postgres_new(&c, conf_conninfo()), EE_EVERSION);
    cr_expect_null(c);
    cr_expect(strstr(ee_error_last_message(), "42") != NULL, "%s", ee_error_last_message());
}
