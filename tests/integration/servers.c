/*
 * The servers fixture really started PostgreSQL and Redis on loopback:
 * every integration test relies on this, so it is checked on its own.
 */
#include <criterion/criterion.h>
#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <string.h>

#include "test_servers.h"

Test(servers, postgres_answers_on_loopback)
{
    const char *uri = ee_test_server_uri("EE_TEST_POSTGRES_URI");
    cr_assert(strncmp(uri, "postgres://ee@127.0.0.1:", 24) == 0, "unexpected URI %s", uri);
    PGconn *c = PQconnectdb(uri);
    cr_assert_eq(PQstatus(c), CONNECTION_OK, "connect: %s", PQerrorMessage(c));
    PGresult *r = PQexec(c, "SELECT 40 + 2");
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK);
    cr_expect_str_eq(PQgetvalue(r, 0, 0), "42");
    PQclear(r);
    PQfinish(c);
}

Test(servers, redis_answers_on_loopback)
{
    const char *uri = ee_test_server_uri("EE_TEST_REDIS_URI");
    int port = 0;
    cr_assert_eq(sscanf(uri, "redis://127.0.0.1:%d/0", &port), 1, "unexpected URI %s", uri);
    redisContext *c = redisConnect("127.0.0.1", port);
    cr_assert(c != NULL && c->err == 0, "connect failed");
    redisReply *r = redisCommand(c, "PING");
    cr_assert_not_null(r);
    cr_expect_str_eq(r->str, "PONG");
    freeReplyObject(r);
    redisFree(c);
}
