/* Seed 2's DATABASE_* variables against the real PostgreSQL of the servers
 * fixture: the URI the config builds from them (user, password and a
 * database name with a space, all percent-encoded) is one libpq accepts,
 * and the engine opens on it. */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <execengine/execengine.h>

#include "test_servers.h"

static void exec_sql(const char *uri, const char *sql)
{
    PGconn *c = PQconnectdb(uri);
    cr_assert_eq(PQstatus(c), CONNECTION_OK, "%s", PQerrorMessage(c));
    PGresult *r = PQexec(c, sql);
    cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
}

static void set(ee_config *cfg, const char *key, const char *value)
{
    cr_assert_eq(ee_config_set(cfg, key, value), EE_OK, "%s: %s", key, ee_error_last_message());
}

Test(config_database, postgres_from_the_database_variables)
{
    const char *base = ee_test_server_uri("EE_TEST_POSTGRES_URI");
    /* postgres://ee@127.0.0.1:PORT/ee_test */
    const char *host = strstr(base, "@127.0.0.1:");
    cr_assert_not_null(host, "unexpected fixture URI %s", base);
    char port[8];
    snprintf(port, sizeof port, "%.*s", (int)strcspn(host + 11, "/"), host + 11);
    char db[64], sql[128];
    snprintf(db, sizeof db, "ee cfg %d", (int)getpid());
    snprintf(sql, sizeof sql, "CREATE DATABASE \"%s\"", db);
    exec_sql(base, sql);

    ee_config *cfg = NULL;
    cr_assert_eq(ee_config_new(&cfg), EE_OK);
    set(cfg, "API_KEY_ENCRYPTION_SECRET", "test-secret-0123456789abcdef0123456789");
    set(cfg, "DATABASE_TYPE", "postgres");
    set(cfg, "DATABASE_HOST", "127.0.0.1");
    set(cfg, "DATABASE_PORT", port);
    set(cfg, "DATABASE_NAME", db);
    set(cfg, "DATABASE_USER", "ee");
    /* The fixture trusts loopback, so the password is not checked, but
     * libpq must still parse the URI it is encoded in. */
    set(cfg, "DATABASE_PASSWORD", "p@ss/w:rd%?#");
    ee_engine *e = NULL;
    ee_status st = ee_engine_open(&e, cfg);
    ee_config_free(cfg);
    cr_assert_eq(st, EE_OK, "%s", ee_error_last_message());
    char *summary = NULL;
    cr_assert_eq(ee_engine_summary_json(e, &summary), EE_OK);
    cr_expect_not_null(strstr(summary, "\"backend\":\"postgres\""), "%s", summary);
    cr_expect_not_null(strstr(summary, "ee%20cfg%20"), "%s", summary);
    cr_expect_null(strstr(summary, "p@ss"), "%s", summary);
    cr_expect_null(strstr(summary, "p%40ss"), "%s", summary);
    ee_free(summary);
    ee_engine_close(e);

    snprintf(sql, sizeof sql, "DROP DATABASE \"%s\"", db);
    exec_sql(base, sql);
}
