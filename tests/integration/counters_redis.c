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

/* PTTL of counter k's key, asserted to be in (lo, hi]. */
static void expect_ttl(redisContext *r, const char *k, long long lo, long long hi)
{
    redisReply *rep = redisCommand(r, "PTTL eec3:{%s}", k);
    cr_assert(rep != NULL && rep->type == REDIS_REPLY_INTEGER);
    cr_expect(rep->integer > lo && rep->integer <= hi, "PTTL of %s: %lld, expected (%lld, %lld]",
              k, rep->integer, lo, hi);
    freeReplyObject(rep);
}

Test(redis, a_windowed_counters_key_lives_until_its_window_ends)
{
    ee_counters *c;
    conf_open(&c);
    const char *k = conf_key("ttl");
    ee_counter_req q = req_of(k, 1, 5);
    q.window_ms = 120000;
    cr_assert_neq(try_reserve(c, q, 1000, T0, NULL), 0);
    redisContext *r = raw();
    expect_ttl(r, k, 110000, 120000);
    /* Set when the window began and kept by later writes (this one two
     * seconds later on the caller's clock, none on Redis's: set again it
     * would be 118 s). */
    cr_assert_neq(try_reserve(c, q, 1000, T0 + 2000, NULL), 0);
    expect_ttl(r, k, 118500, 120000);
    /* A new window (the caller's clock passed the end), a minute long: set
     * again. */
    q.window_ms = 60000;
    cr_assert_neq(try_reserve(c, q, 1000, T0 + 120000 + 30000, NULL), 0);
    expect_ttl(r, k, 50000, 60000);
    redisFree(r);
    ee_counters_free(c);
}

Test(redis, a_windowless_counter_lives_one_to_two_hours_past_its_last_lease_unless_committed)
{
    ee_counters *c;
    conf_open(&c);
    const char *k = conf_key("idle");
    redisContext *r = raw();
    /* The TTL covers the last lease and an hour more, and reaches an hour
     * further so that most writes keep it. */
    uint64_t a = try_reserve(c, req_of(k, 1, 5), 1000, T0, NULL);
    cr_assert_neq(a, 0);
    expect_ttl(r, k, 7190000, 7201000);
    cr_assert_neq(try_reserve(c, req_of(k, 1, 5), 60000, T0, NULL), 0);
    expect_ttl(r, k, 7190000, 7201000); /* 60 s + 1 h are covered: kept */
    /* Two hours later on the caller's clock a one-hour lease is not
     * covered: renewed to its end plus two hours. */
    cr_assert_neq(try_reserve(c, req_of(k, 1, 5), 3600000, T0 + 7200000, NULL), 0);
    expect_ttl(r, k, 10790000, 10800000);
    /* A committed value has no end: the key stays, also after more writes. */
    uint64_t b = try_reserve(c, req_of(k, 1, 5), 1000, T0 + 7200000, NULL);
    cr_assert_eq(ee_counters_commit(c, k, b, EE_COUNTERS_ALL, T0 + 7200000), EE_OK, "%s",
                 ee_error_last_message());
    expect_ttl(r, k, -2, -1);
    cr_assert_neq(try_reserve(c, req_of(k, 1, 5), 1000, T0 + 7200000, NULL), 0);
    expect_ttl(r, k, -2, -1);
    redisFree(r);
    ee_counters_free(c);
}

/* The test server's URI with another database, so the id block counter can
 * be moved without touching the other tests' counters. */
static void open_db(ee_counters **out, int db)
{
    char uri[160];
    snprintf(uri, sizeof uri, "%s", ee_test_server_uri("EE_TEST_REDIS_URI"));
    char *slash = strrchr(uri, '/');
    cr_assert(slash != NULL && slash > uri + 8);
    snprintf(slash, sizeof uri - (size_t)(slash - uri), "/%d", db);
    cr_assert_eq(ee_counters_open_uri(out, uri, NULL), EE_OK, "%s", ee_error_last_message());
}

/* Run a command that answers OK in database db. */
static void in_db(int db, const char *cmd)
{
    redisContext *r = raw();
    redisReply *rep = redisCommand(r, "SELECT %d", db);
    cr_assert(rep != NULL && rep->type == REDIS_REPLY_STATUS);
    freeReplyObject(rep);
    rep = redisCommand(r, cmd);
    cr_assert(rep != NULL && rep->type == REDIS_REPLY_STATUS, "%s", cmd);
    freeReplyObject(rep);
    redisFree(r);
}

Test(redis, reservation_ids_stay_exact_up_to_2_to_the_53_and_then_run_out)
{
    ee_counters *c;
    open_db(&c, 7);
    /* The last two blocks whose ids stay below 2^53: ids near 9.007e15,
     * where a double has no room to spare. */
    in_db(7, "SET eec3:seq 8589934588");
    const char *k = conf_key("bigid");
    ee_counter_result res;
    uint64_t a = try_reserve(c, req_of(k, 1, 5), LEASE, T0, &res);
    uint64_t b = try_reserve(c, req_of(k, 1, 5), LEASE, T0, &res);
    cr_assert_eq(a, UINT64_C(8589934589) * 1048576 + 1, "id %llu", (unsigned long long)a);
    cr_assert_eq(b, a + 1);
    cr_expect_eq(ee_counters_commit(c, k, b, EE_COUNTERS_ALL, T0), EE_OK, "%s",
                 ee_error_last_message());
    cr_expect_eq(ee_counters_release(c, k, a, T0), EE_OK, "%s", ee_error_last_message());
    expect_value(c, k, T0, 1, 1);
    /* New keys of one call share the next block, 2^16 ids each. */
    ee_counter_req two[2] = {req_of(conf_key("new1"), 1, 5), req_of(conf_key("new2"), 1, 5)};
    ee_counter_result rr[2];
    int got = 0;
    cr_assert_eq(ee_counters_reserve_many(c, two, 2, LEASE, T0, rr, &got), EE_OK, "%s",
                 ee_error_last_message());
    cr_assert_eq(got, 1);
    cr_expect_eq(rr[0].resv_id, UINT64_C(8589934590) * 1048576 + 1);
    cr_expect_eq(rr[1].resv_id, UINT64_C(8589934590) * 1048576 + 65536 + 1);
    cr_expect_eq(ee_counters_commit(c, two[1].key, rr[1].resv_id, EE_COUNTERS_ALL, T0), EE_OK);
    /* No block is left for a new counter: an error, never a reused id. */
    int granted = 0;
    ee_counter_req q = req_of(conf_key("noids"), 1, 5);
    cr_expect_eq(ee_counters_reserve(c, &q, LEASE, T0, &res, &granted), EE_EUPSTREAM);
    cr_expect_eq(granted, 0);
    cr_expect(strstr(ee_error_last_message(), "counter ids exhausted") != NULL, "%s",
              ee_error_last_message());
    ee_counters_free(c);
    in_db(7, "FLUSHDB");
}

Test(redis, a_finish_finds_its_id_and_not_an_equal_amount)
{
    /* Reservations are found by the bytes of their id: an amount (or an
     * expiry) with the same value, earlier in the string, must be passed
     * over. */
    ee_counters *c;
    open_db(&c, 8);
    in_db(8, "FLUSHDB");
    in_db(8, "SET eec3:seq 41");
    const uint64_t base = UINT64_C(42) * 1048576;
    const char *k = conf_key("lookalike");
    uint64_t a = try_reserve(c, req_of(k, (int64_t)(base + 2), INT64_C(1) << 52), LEASE, T0,
                             NULL);
    uint64_t b = try_reserve(c, req_of(k, 1, INT64_C(1) << 52), LEASE, T0, NULL);
    cr_assert_eq(a, base + 1);
    cr_assert_eq(b, base + 2, "b's id equals a's amount");
    cr_assert_eq(ee_counters_commit(c, k, b, EE_COUNTERS_ALL, T0), EE_OK, "%s",
                 ee_error_last_message());
    expect_value(c, k, T0, (int64_t)(base + 3), 1);
    cr_assert_eq(ee_counters_release(c, k, a, T0), EE_OK, "%s", ee_error_last_message());
    expect_value(c, k, T0, 1, 1);
    ee_counters_free(c);
    in_db(8, "FLUSHDB");
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
