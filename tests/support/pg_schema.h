/*
 * tests/support/pg_schema.h - a schema of its own on the PostgreSQL of the
 * `servers` fixture, for a test (or a suite) that must not see another's
 * tables, and its removal. A test that includes this header includes
 * <libpq-fe.h> itself too: tests/CMakeLists.txt leaves such tests out of
 * builds without PostgreSQL by that include.
 */
#ifndef EE_TEST_PG_SCHEMA_H
#define EE_TEST_PG_SCHEMA_H

#include <libpq-fe.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "test_servers.h"

/* "<prefix>_<pid>_<n>" into schema, and the fixture's URI selecting it
 * (?schema= or &schema=) into uri. */
static inline void ee_test_pg_schema(const char *prefix, char *schema, size_t schema_cap,
                                     char *uri, size_t uri_cap)
{
    const char *base = ee_test_server_uri("EE_TEST_POSTGRES_URI");
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(schema, schema_cap, "%s_%d_%ld", prefix, (int)getpid(),
             (long)(ts.tv_nsec % 1000000));
    snprintf(uri, uri_cap, "%s%sschema=%s", base, strchr(base, '?') != NULL ? "&" : "?",
             schema);
}

static inline void ee_test_pg_quiet(void *arg, const char *message)
{
    (void)arg, (void)message; /* the NOTICEs of DROP SCHEMA ... CASCADE */
}

/* DROP SCHEMA IF EXISTS schema CASCADE; nothing when the server is gone. */
static inline void ee_test_pg_drop_schema(const char *schema)
{
    char sql[128];
    snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE", schema);
    PGconn *c = PQconnectdb(ee_test_server_uri("EE_TEST_POSTGRES_URI"));
    PQsetNoticeProcessor(c, ee_test_pg_quiet, NULL);
    if (PQstatus(c) == CONNECTION_OK)
        PQclear(PQexec(c, sql));
    PQfinish(c);
}

#endif
