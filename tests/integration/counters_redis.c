/*
 * The counters conformance suite on the redis backend against the real
 * Redis the test fixture started, its exactness with 8 threads in each of
 * 4 processes, a SIGKILLed holder's reservation coming back after its
 * lease, and the connection handling (script cache flushed, connection
 * killed by the server, wrong password).
 */
#define CONF_SHARED 1
#include "../unit/counters/conformance.h"

#include <hiredis/hiredis.h>

#include "test_servers.h"

static void conf_open(ee_counters **out)
{
    ee_status st = ee_counters_open_uri(out, ee_test_server_uri("EE_TEST_REDIS_URI"), NULL);
    cr_assert_eq(st, EE_OK, "%s", ee_error_last_message());
    cr_assert_str_eq(ee_counters_backend_name(*out), "redis");
}

static redisContext *raw(void)
{
    int port = 0;
    cr_assert_eq(sscanf(ee_test_server_uri("EE_TEST_REDIS_URI"), "redis://127.0.0.1:%d", &port),
                 1);
    redisContext *c = redisConnect("127.0.0.1", port);
    cr_assert(c != NULL && c->err == 0);
    return c;
}

Test(redis, eight_threads_in_each_of_four_processes_grant_exactly_the_limit, .timeout = 240)
{
    conf_contention(4, 8);
}

/* PTTL of eec2:{k}:<which>, asserted to be the window's (120 s, less the
 * test's own time). */
static void expect_window_ttl(redisContext *r, const char *k, const char *which)
{
    redisReply *rep = redisCommand(r, "PTTL eec2:{%s}:%s", k, which);
    cr_assert_eq(rep->type, REDIS_REPLY_INTEGER);
    cr_expect(rep->integer > 110000 && rep->integer <= 120000, "PTTL of %s: %lld", which,
              rep->integer);
    freeReplyObject(rep);
}

Test(redis, keys_expire_with_the_window)
{
    ee_counters *c;
    conf_open(&c);
    const char *k = conf_key("ttl");
    ee_counter_req q = req_of(k, 1, 5);
    q.window_ms = 120000;
    cr_assert_neq(try_reserve(c, q, 1000, T0, NULL), 0);
    redisContext *r = raw();
    expect_window_ttl(r, k, "h");
    expect_window_ttl(r, k, "r");
    /* The lease ends: the zset empties and is gone; made again, it gets the
     * window's TTL again. */
    expect_value(c, k, T0 + 1000, 0, 0);
    redisReply *rep = redisCommand(r, "EXISTS eec2:{%s}:r", k);
    cr_expect_eq(rep->integer, 0);
    freeReplyObject(rep);
    cr_assert_neq(try_reserve(c, q, 1000, T0 + 2000, NULL), 0);
    expect_window_ttl(r, k, "r");
    redisFree(r);
    ee_counters_free(c);
}

Test(redis, reservation_ids_stay_exact_past_10_to_the_14_calls)
{
    /* Lua prints 1e14 as "1e+14": ids are built from the call counter as
     * integers, not by tostring. */
    ee_counters *c;
    conf_open(&c);
    redisContext *r = raw();
    redisReply *rep = redisCommand(r, "SET eec2:seq 99999999999999");
    cr_assert(rep != NULL && rep->type == REDIS_REPLY_STATUS);
    freeReplyObject(rep);
    redisFree(r);
    const char *k = conf_key("bigseq");
    ee_counter_result res;
    uint64_t id = try_reserve(c, req_of(k, 1, 5), LEASE, T0, &res);
    cr_assert_geq(id, UINT64_C(10000000000000000), "id %llu", (unsigned long long)id);
    cr_expect_eq(ee_counters_commit(c, k, id, EE_COUNTERS_ALL, T0), EE_OK, "%s",
                 ee_error_last_message());
    expect_value(c, k, T0, 1, 1);
    ee_counters_free(c);
}

Test(redis, survives_a_flushed_script_cache_and_a_killed_connection)
{
    ee_counters *c;
    conf_open(&c);
    const char *k = conf_key("reconnect");
    uint64_t a = try_reserve(c, req_of(k, 1, 5), LEASE, T0, NULL);
    cr_assert_neq(a, 0);
    redisContext *r = raw();
    freeReplyObject(redisCommand(r, "SCRIPT FLUSH"));
    uint64_t b = try_reserve(c, req_of(k, 1, 5), LEASE, T0, NULL);
    cr_assert_neq(b, 0, "EVALSHA falls back to EVAL on NOSCRIPT");
    /* Kill this process's counters connections only (they are named by
     * pid): other test programs may be using the server meanwhile. */
    redisReply *list = redisCommand(r, "CLIENT LIST");
    cr_assert(list != NULL && list->type == REDIS_REPLY_STRING);
    char name[64];
    snprintf(name, sizeof name, " name=ee-counters-%ld ", (long)getpid());
    int killed = 0;
    for (char *line = strtok(list->str, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        long long cid = 0;
        if (strstr(line, name) == NULL || sscanf(line, "id=%lld", &cid) != 1)
            continue;
        redisReply *rep = redisCommand(r, "CLIENT KILL ID %lld", cid);
        cr_assert(rep != NULL && rep->type == REDIS_REPLY_INTEGER);
        killed += (int)rep->integer;
        freeReplyObject(rep);
    }
    freeReplyObject(list);
    cr_assert_geq(killed, 1, "no connection of this process was found to kill");
    redisFree(r);
    usleep(20000);
    cr_assert_eq(ee_counters_commit(c, k, a, EE_COUNTERS_ALL, T0), EE_OK, "%s",
                 ee_error_last_message());
    expect_value(c, k, T0, 2, 1);
    ee_counters_free(c);
}

Test(redis, a_wrong_password_is_an_auth_error_without_the_password)
{
    int port = 0;
    cr_assert_eq(sscanf(ee_test_server_uri("EE_TEST_REDIS_URI"), "redis://127.0.0.1:%d", &port),
                 1);
    char uri[128];
    snprintf(uri, sizeof uri, "redis://:wrong-secret-pw@127.0.0.1:%d/0", port);
    ee_counters *c = (ee_counters *)1;
    cr_expect_eq(ee_counters_redis_new(&c, uri), EE_EAUTH);
    cr_expect_null(c);
    cr_expect(strstr(ee_error_last_message(), "wrong-secret-pw") == NULL, "%s",
              ee_error_last_message());
}
