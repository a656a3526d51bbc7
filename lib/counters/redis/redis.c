/*
 * The redis counters backend (hiredis 0.14): every operation is ONE Lua
 * script call (EVALSHA; on NOSCRIPT the script is sent with EVAL, which
 * also caches it), so each check-and-change is atomic on the server and
 * exact across processes and hosts. reserve_many is one script for all its
 * counters: all granted or none.
 *
 * Data of counter K (the braces make both keys one cluster hash slot):
 *   eec2:{K}:h  hash  e = window end (0: none), c = committed,
 *                     v = committed + outstanding (the value limits are
 *                     checked against), r<id> = a live reservation's amount
 *                     when it is not 1, m = how many r<id> there are (while
 *                     m is 0, expiring is one ZREMRANGEBYSCORE)
 *   eec2:{K}:r  zset  reservation id -> lease expiry
 *   eec2:seq    counter of reserve calls; the i-th counter of call s gets
 *               reservation id s * 100 + i (never reused)
 * ("eec2": the layout before this one kept other fields under "eec:"; the
 * two never mix.)
 * Time: the scripts judge windows and leases with the caller's now_ms,
 * passed as an argument; Redis's own clock is never compared with it. The
 * keys get a TTL of (window end - now_ms) ms, which Redis counts on its own
 * clock from the call: that only collects the memory of ended windows.
 *
 * Connections: a mutex-guarded pool (a connection is used by one thread at
 * a time). A pooled connection the server closed meanwhile (restart, idle
 * timeout, CLIENT KILL) is noticed before it is used and replaced; a
 * connection that fails during a call is dropped, the call answers
 * EE_ENETWORK (its outcome is unknown: a reservation it may have made
 * expires with its lease), and the next call connects again.
 */
#include "counters/counters_internal.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/core.h"

#define POOL_MAX 64
#define KEY_BUF (EE_COUNTERS_KEY_MAX + 16)
#define RESERVE_NUMS 5 /* numbers per counter passed to the reserve script */
/* Keys and arguments of the largest script call (reserve). */
#define SCRIPT_ARGS_MAX (1 + 2 * EE_COUNTERS_MANY_MAX + 1 + RESERVE_NUMS * EE_COUNTERS_MANY_MAX)

/* ---- scripts -------------------------------------------------------------------
 * Redis's Lua pays for every conversion between numbers and text (here a
 * number-to-string conversion costs more than a command), so the scripts
 * keep what they only store or pass back as the text they were given:
 * the client computes expiries, room (limit - n) and TTLs, amounts are
 * added with HINCRBY, and values read only to be answered go back as text. */

/* Drop the reservations of (h, z) whose lease ended by nows (text); the new
 * value v, or nil when none had ended. m: how many live reservations have
 * an amount other than 1 (only those have an r<id> field). */
#define LUA_EXPIRE                                                                             \
    "local function expire(h, z, nows, m)\n"                                                   \
    "  if m == 0 then\n"                                                                       \
    "    local k = redis.call('ZREMRANGEBYSCORE', z, '-inf', nows)\n"                          \
    "    if k == 0 then return nil end\n"                                                      \
    "    return redis.call('HINCRBY', h, 'v', -k)\n"                                           \
    "  end\n"                                                                                  \
    "  local v\n"                                                                              \
    "  while true do\n"                                                                        \
    "    local old = redis.call('ZRANGEBYSCORE', z, '-inf', nows, 'LIMIT', 0, 256)\n"          \
    "    if #old == 0 then return v end\n"                                                     \
    "    local f = {}\n"                                                                       \
    "    for j = 1, #old do f[j] = 'r' .. old[j] end\n"                                        \
    "    local amts = redis.call('HMGET', h, unpack(f))\n"                                     \
    "    local sum, big = 0, 0\n"                                                              \
    "    for j = 1, #old do\n"                                                                 \
    "      if amts[j] then sum, big = sum + tonumber(amts[j]), big + 1 else sum = sum + 1 end\n" \
    "    end\n"                                                                                \
    "    if big > 0 then\n"                                                                    \
    "      redis.call('HDEL', h, unpack(f))\n"                                                 \
    "      redis.call('HINCRBY', h, 'm', -big)\n"                                              \
    "    end\n"                                                                                \
    "    redis.call('ZREM', z, unpack(old))\n"                                                 \
    "    v = redis.call('HINCRBY', h, 'v', -sum)\n"                                            \
    "    if #old < 256 then return v end\n"                                                    \
    "  end\n"                                                                                  \
    "end\n"

/* KEYS: seq, then h, z per counter. ARGV: now, then per counter room
 * (limit - n), n, new window end, its TTL (0: none) and the lease's expiry.
 * Returns {granted, seq, {{fits, value, committed, window_end, retry_at}...}};
 * counter i's reservation id is seq * 100 + i. */
static const char script_reserve[] =
    LUA_EXPIRE
    "local SUF = {'00', '01', '02', '03', '04', '05', '06', '07', '08', '09', '10', '11', "
    "'12', '13', '14', '15'}\n"
    "local nows = ARGV[1]\n"
    "local now = tonumber(nows)\n"
    "local count = (#KEYS - 1) / 2\n"
    "local st, all = {}, true\n"
    "for i = 1, count do\n"
    "  local h, z, a = KEYS[2 * i], KEYS[2 * i + 1], 2 + (i - 1) * 5\n"
    "  local r = redis.call('HMGET', h, 'e', 'v', 'c', 'm')\n"
    "  local e = tonumber(r[1])\n"
    "  local v, c, es\n"
    "  if e == nil or (e ~= 0 and now >= e) then\n"
    "    if e ~= nil then redis.call('DEL', h, z) end\n"
    "    es, v, c = ARGV[a + 2], 0, '0'\n"
    "    redis.call('HSET', h, 'e', es, 'c', '0', 'v', '0', 'm', '0')\n"
    "    if ARGV[a + 3] ~= '0' then redis.call('PEXPIRE', h, ARGV[a + 3]) end\n"
    "  else\n"
    "    es, c = r[1], r[3] or '0'\n"
    "    v = expire(h, z, nows, tonumber(r[4]) or 0) or tonumber(r[2]) or 0\n"
    "  end\n"
    "  local fits = v <= tonumber(ARGV[a])\n"
    "  if not fits then all = false end\n"
    "  st[i] = {v, c, es, fits}\n"
    "end\n"
    "local out = {}\n"
    "if all then\n"
    "  local seq = redis.call('INCR', KEYS[1])\n"
    "  local base = string.format('%d', seq)\n"
    "  for i = 1, count do\n"
    "    local h, z, a, s = KEYS[2 * i], KEYS[2 * i + 1], 2 + (i - 1) * 5, st[i]\n"
    "    local id, n = base .. SUF[i], ARGV[a + 1]\n"
    "    if n ~= '1' then\n"
    "      redis.call('HSET', h, 'r' .. id, n)\n"
    "      redis.call('HINCRBY', h, 'm', 1)\n"
    "    end\n"
    "    local v = redis.call('HINCRBY', h, 'v', n)\n"
    "    redis.call('ZADD', z, ARGV[a + 4], id)\n"
    /* Nothing was outstanding: the zset is new and needs the window's TTL. */
    "    if s[3] ~= '0' and s[1] == tonumber(s[2]) then\n"
    "      local t = redis.call('PTTL', h)\n"
    "      if t > 0 then redis.call('PEXPIRE', z, t) end\n"
    "    end\n"
    "    out[i] = {1, v, s[2], s[3], 0}\n"
    "  end\n"
    "  return {1, seq, out}\n"
    "end\n"
    "for i = 1, count do\n"
    "  local h, z, a, s = KEYS[2 * i], KEYS[2 * i + 1], 2 + (i - 1) * 5, st[i]\n"
    "  local retry = 0\n"
    "  if not s[4] then\n"
    "    local n = tonumber(ARGV[a + 1])\n"
    "    local limit = tonumber(ARGV[a]) + n\n"
    "    local e, c, v = tonumber(s[3]), tonumber(s[2]), s[1]\n"
    "    if n <= limit then\n"
    "      if c + n > limit then retry = e\n"
    "      else\n"
    "        local need = v + n - limit\n"
    "        local live = redis.call('ZRANGE', z, 0, -1, 'WITHSCORES')\n"
    "        retry = e\n"
    "        for j = 1, #live, 2 do\n"
    "          need = need - (tonumber(redis.call('HGET', h, 'r' .. live[j])) or 1)\n"
    "          if need <= 0 then\n"
    "            local y = tonumber(live[j + 1])\n"
    "            if e ~= 0 and y > e then y = e end\n"
    "            retry = y\n"
    "            break\n"
    "          end\n"
    "        end\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  out[i] = {s[4] and 1 or 0, s[1], s[2], s[3], retry}\n"
    "end\n"
    "return {0, 0, out}\n";

/* KEYS: h, z. ARGV: now, id, amount (-1: all; release: 0), new expiry
 * (renew; 0 otherwise). Returns an EE__FINISH_* code: 0 done, -6 unknown
 * or finished, -2 window ended, -3 expired, -4 amount > n. */
static const char script_finish[] =
    "local now, id, amount, renew = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), ARGV[4]\n"
    "local h, z = KEYS[1], KEYS[2]\n"
    "local r = redis.call('HMGET', h, 'e', 'r' .. id)\n"
    "local e = tonumber(r[1])\n"
    "if e == nil then return -6 end\n"
    "if e ~= 0 and now >= e then return -2 end\n"
    "local xs = redis.call('ZSCORE', z, id)\n"
    "if not xs then return -6 end\n"
    "local x = tonumber(xs)\n"
    "if x > now and renew ~= '0' then\n"
    "  redis.call('ZADD', z, 'XX', renew, id)\n"
    "  return 0\n"
    "end\n"
    "local ns = r[2] or '1'\n"
    "local n = tonumber(ns)\n"
    "if x > now and amount > n then return -4 end\n"
    "redis.call('ZREM', z, id)\n"
    "if r[2] then\n"
    "  redis.call('HDEL', h, 'r' .. id)\n"
    "  redis.call('HINCRBY', h, 'm', -1)\n"
    "end\n"
    "if x <= now then\n"
    "  redis.call('HINCRBY', h, 'v', '-' .. ns)\n"
    "  return -3\n"
    "end\n"
    "if amount < 0 or amount == n then\n"
    "  redis.call('HINCRBY', h, 'c', ns)\n"
    "elseif amount == 0 then\n"
    "  redis.call('HINCRBY', h, 'v', '-' .. ns)\n"
    "else\n"
    "  redis.call('HINCRBY', h, 'c', ARGV[3])\n"
    "  redis.call('HINCRBY', h, 'v', amount - n)\n"
    "end\n"
    "return 0\n";

/* KEYS: h, z. ARGV: now. Returns {value, committed, window_end}. */
static const char script_get[] =
    LUA_EXPIRE
    "local nows = ARGV[1]\n"
    "local now = tonumber(nows)\n"
    "local r = redis.call('HMGET', KEYS[1], 'e', 'v', 'c', 'm')\n"
    "local e = tonumber(r[1])\n"
    "if e == nil or (e ~= 0 and now >= e) then return {0, 0, 0} end\n"
    "local v = expire(KEYS[1], KEYS[2], nows, tonumber(r[4]) or 0) or tonumber(r[2]) or 0\n"
    "return {v, tonumber(r[3]) or 0, e}\n";

enum { SC_RESERVE, SC_FINISH, SC_GET, SC_COUNT };

static const char *const scripts[SC_COUNT] = {script_reserve, script_finish, script_get};

/* ---- backend state -------------------------------------------------------------- */

typedef struct rds {
    char host[256];
    int port;
    int db;
    char *user;     /* NULL: AUTH with the password alone */
    char *password; /* NULL: no AUTH; registered for redaction */
    char sha[SC_COUNT][41];
    pthread_mutex_t lock;
    redisContext *idle[POOL_MAX];
    size_t nidle;
} rds;

static ee_status net_error(const rds *r, const redisContext *c, const char *what)
{
    return ee__error(EE_ENETWORK, "redis counters at %s:%d: %s: %s", r->host, r->port, what,
                     c != NULL && c->errstr[0] ? c->errstr : "connection failed");
}

static bool is_auth_error(const char *s)
{
    return strstr(s, "NOAUTH") != NULL || strstr(s, "WRONGPASS") != NULL ||
           strstr(s, "invalid password") != NULL || strstr(s, "invalid username") != NULL;
}

/* Run one command on a fresh connection during set-up. */
static ee_status setup_cmd(rds *r, redisContext *c, int argc, const char **argv, const char *what)
{
    redisReply *rep = redisCommandArgv(c, argc, argv, NULL);
    if (rep == NULL)
        return net_error(r, c, what);
    ee_status st = EE_OK;
    if (rep->type == REDIS_REPLY_ERROR) {
        if (is_auth_error(rep->str) || strcmp(what, "AUTH") == 0)
            st = ee__error(EE_EAUTH, "redis counters at %s:%d refused the credentials (%s)",
                           r->host, r->port, what);
        else
            st = ee__error(EE_EUPSTREAM, "redis counters at %s:%d: %s failed: %.200s", r->host,
                           r->port, what, rep->str);
    }
    freeReplyObject(rep);
    return st;
}

static ee_status connect_one(rds *r, redisContext **out)
{
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout(r->host, r->port, tv);
    if (c == NULL)
        return ee__error(EE_ENOMEM, "out of memory connecting to redis");
    if (c->err) {
        ee_status st = net_error(r, c, "cannot connect");
        redisFree(c);
        return st;
    }
    struct timeval cmd_tv = {5, 0};
    redisSetTimeout(c, cmd_tv);
    ee_status st = EE_OK;
    if (r->password != NULL) {
        const char *argv[3] = {"AUTH", r->user ? r->user : r->password, r->password};
        st = setup_cmd(r, c, r->user ? 3 : 2, argv, "AUTH");
    }
    if (st == EE_OK && r->db != 0) {
        char db[16];
        snprintf(db, sizeof db, "%d", r->db);
        const char *argv[2] = {"SELECT", db};
        st = setup_cmd(r, c, 2, argv, "SELECT");
    }
    if (st == EE_OK) {
        /* Named so an operator (or a test) can tell whose connection it is. */
        char name[48];
        snprintf(name, sizeof name, "ee-counters-%ld", (long)getpid());
        const char *argv[3] = {"CLIENT", "SETNAME", name};
        st = setup_cmd(r, c, 3, argv, "CLIENT SETNAME");
    }
    if (st != EE_OK) {
        redisFree(c);
        return st;
    }
    *out = c;
    return EE_OK;
}

/* Whether a pooled connection was closed by the server while idle: a
 * readable EOF (or unexpected data) before we sent anything. */
static bool went_away(redisContext *c)
{
    char b;
    ssize_t n = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0)
        return !(errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
    return true;
}

static ee_status take_conn(rds *r, redisContext **out)
{
    for (;;) {
        redisContext *c = NULL;
        pthread_mutex_lock(&r->lock);
        if (r->nidle > 0)
            c = r->idle[--r->nidle];
        pthread_mutex_unlock(&r->lock);
        if (c == NULL)
            return connect_one(r, out);
        if (!went_away(c)) {
            *out = c;
            return EE_OK;
        }
        redisFree(c);
    }
}

static void give_conn(rds *r, redisContext *c, bool ok)
{
    if (c == NULL)
        return;
    if (ok && c->err == 0) {
        pthread_mutex_lock(&r->lock);
        if (r->nidle < POOL_MAX) {
            r->idle[r->nidle++] = c;
            c = NULL;
        }
        pthread_mutex_unlock(&r->lock);
    }
    if (c != NULL)
        redisFree(c);
}

/* EVALSHA script with the given keys and arguments (one round trip; two
 * only the first time a server sees the script). *out is the reply. */
static ee_status run_script(rds *r, int sc, int nkeys, int nargs, const char **args,
                            const size_t *lens, redisReply **out)
{
    const char *argv[3 + SCRIPT_ARGS_MAX];
    size_t argl[sizeof argv / sizeof argv[0]];
    char nk[8];
    snprintf(nk, sizeof nk, "%d", nkeys);
    argv[0] = "EVALSHA";
    argv[1] = r->sha[sc];
    argv[2] = nk;
    argl[0] = 7;
    argl[1] = 40;
    argl[2] = strlen(nk);
    for (int i = 0; i < nargs; i++) {
        argv[3 + i] = args[i];
        argl[3 + i] = lens[i];
    }
    redisContext *c = NULL;
    ee_status st = take_conn(r, &c);
    if (st != EE_OK)
        return st;
    redisReply *rep = redisCommandArgv(c, 3 + nargs, argv, argl);
    if (rep != NULL && rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, "NOSCRIPT", 8) == 0) {
        freeReplyObject(rep);
        argv[0] = "EVAL";
        argl[0] = 4;
        argv[1] = scripts[sc];
        argl[1] = strlen(scripts[sc]);
        rep = redisCommandArgv(c, 3 + nargs, argv, argl);
    }
    if (rep == NULL) {
        st = net_error(r, c, "the operation's outcome is unknown");
        give_conn(r, c, false);
        return st;
    }
    give_conn(r, c, true);
    if (rep->type == REDIS_REPLY_ERROR) {
        st = is_auth_error(rep->str)
                 ? ee__error(EE_EAUTH, "redis counters at %s:%d: not authenticated", r->host,
                             r->port)
                 : ee__error(EE_EUPSTREAM, "redis counters at %s:%d: script failed: %.300s",
                             r->host, r->port, rep->str);
        freeReplyObject(rep);
        return st;
    }
    *out = rep;
    return EE_OK;
}

static ee_status bad_reply(rds *r, redisReply *rep)
{
    freeReplyObject(rep);
    return ee__error(EE_EUPSTREAM, "redis counters at %s:%d: unexpected script reply", r->host,
                     r->port);
}

static size_t counter_keys(const char *key, char *h, char *z)
{
    int n = snprintf(h, KEY_BUF, "eec2:{%s}:h", key);
    snprintf(z, KEY_BUF, "eec2:{%s}:r", key);
    return (size_t)n;
}

/* ---- operations ------------------------------------------------------------------ */

/* An integer element of a script reply, sent as a number or as text. */
static bool reply_int(const redisReply *e, long long *out)
{
    if (e->type == REDIS_REPLY_INTEGER) {
        *out = e->integer;
        return true;
    }
    if (e->type != REDIS_REPLY_STRING || e->len == 0 || e->len > 20)
        return false;
    char buf[24], *end = NULL;
    memcpy(buf, e->str, e->len);
    buf[e->len] = '\0';
    errno = 0;
    *out = strtoll(buf, &end, 10);
    return errno == 0 && *end == '\0';
}

/* The reserve script's answer for counter i into res. */
static bool read_reserved(const redisReply *e, long long seq, size_t i, ee_counter_result *res)
{
    long long v[5];
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 5)
        return false;
    for (size_t j = 0; j < 5; j++)
        if (!reply_int(e->element[j], &v[j]))
            return false;
    memset(res, 0, sizeof *res);
    res->fits = (int32_t)v[0];
    res->value = v[1];
    res->committed = v[2];
    res->window_end_ms = v[3];
    res->retry_at_ms = v[4];
    res->resv_id = seq > 0 ? (uint64_t)seq * 100u + i : 0;
    return true;
}

static ee_status r_reserve_leased(void *ctx, const ee_counter_req *reqs, void *const *handles,
                                  const int64_t *leases, size_t count, int64_t now,
                                  ee_counter_result *res, int *granted)
{
    (void)handles; /* keys are the server's names */
    rds *r = ctx;
    char keys[EE_COUNTERS_MANY_MAX][2][KEY_BUF];
    char nums[1 + RESERVE_NUMS * EE_COUNTERS_MANY_MAX][24];
    const char *args[SCRIPT_ARGS_MAX];
    size_t lens[SCRIPT_ARGS_MAX];
    int a = 0, nn = 0;
    args[a] = "eec2:seq";
    lens[a++] = 8;
    for (size_t i = 0; i < count; i++) {
        size_t kl = counter_keys(reqs[i].key, keys[i][0], keys[i][1]);
        args[a] = keys[i][0];
        lens[a++] = kl;
        args[a] = keys[i][1];
        lens[a++] = kl;
    }
    int nkeys = a;
#define NUM(v)                                                                                 \
    do {                                                                                       \
        lens[a] = (size_t)snprintf(nums[nn], sizeof nums[nn], "%lld", (long long)(v));         \
        args[a++] = nums[nn++];                                                                \
    } while (0)
    NUM(now);
    for (size_t i = 0; i < count; i++) {
        int64_t end = ee__counters_new_window_end(&reqs[i], now);
        NUM(reqs[i].limit - reqs[i].n); /* room: the value may be at most this */
        NUM(reqs[i].n);
        NUM(end);
        NUM(end != 0 ? end - now : 0);
        NUM(now + leases[i]);
    }
#undef NUM
    redisReply *rep = NULL;
    ee_status st = run_script(r, SC_RESERVE, nkeys, a, args, lens, &rep);
    if (st != EE_OK)
        return st;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 3 ||
        rep->element[0]->type != REDIS_REPLY_INTEGER ||
        rep->element[1]->type != REDIS_REPLY_INTEGER ||
        rep->element[2]->type != REDIS_REPLY_ARRAY || rep->element[2]->elements != count)
        return bad_reply(r, rep);
    long long seq = rep->element[0]->integer == 1 ? rep->element[1]->integer : 0;
    for (size_t i = 0; i < count; i++) {
        if (!read_reserved(rep->element[2]->element[i], seq, i, &res[i]))
            return bad_reply(r, rep);
        res[i].limit = reqs[i].limit;
    }
    *granted = rep->element[0]->integer == 1;
    freeReplyObject(rep);
    return EE_OK;
}

const ee__counters_ext ee__counters_redis_ext = {
    .resolve = NULL,
    .reserve_leased = r_reserve_leased,
};

static ee_status r_finish(rds *r, const char *key, uint64_t id, int64_t amount,
                          int64_t renew_to, int64_t now)
{
    char h[KEY_BUF], z[KEY_BUF], nowb[24], idb[24], amb[24], rnb[24];
    size_t kl = counter_keys(key, h, z);
    const char *args[6] = {h, z, nowb, idb, amb, rnb};
    size_t lens[6] = {kl, kl, 0, 0, 0, 0};
    lens[2] = (size_t)snprintf(nowb, sizeof nowb, "%lld", (long long)now);
    lens[3] = (size_t)snprintf(idb, sizeof idb, "%llu", (unsigned long long)id);
    lens[4] = (size_t)snprintf(amb, sizeof amb, "%lld", (long long)amount);
    lens[5] = (size_t)snprintf(rnb, sizeof rnb, "%lld", (long long)renew_to);
    redisReply *rep = NULL;
    ee_status st = run_script(r, SC_FINISH, 2, 6, args, lens, &rep);
    if (st != EE_OK)
        return st;
    if (rep->type != REDIS_REPLY_INTEGER)
        return bad_reply(r, rep);
    long long code = rep->integer;
    freeReplyObject(rep);
    return ee__counters_finish_answer(key, id, amount, (int)code);
}

static ee_status r_commit(void *ctx, const char *key, uint64_t id, int64_t amount, int64_t now)
{
    return r_finish(ctx, key, id, amount, 0, now);
}

static ee_status r_release(void *ctx, const char *key, uint64_t id, int64_t now)
{
    return r_finish(ctx, key, id, 0, 0, now);
}

static ee_status r_renew(void *ctx, const char *key, uint64_t id, int64_t lease, int64_t now)
{
    return r_finish(ctx, key, id, 0, now + lease, now);
}

static ee_status r_get(void *ctx, const char *key, int64_t now, ee_counter_result *out)
{
    rds *r = ctx;
    char h[KEY_BUF], z[KEY_BUF], nowb[24];
    size_t kl = counter_keys(key, h, z);
    const char *args[3] = {h, z, nowb};
    size_t lens[3] = {kl, kl, (size_t)snprintf(nowb, sizeof nowb, "%lld", (long long)now)};
    redisReply *rep = NULL;
    ee_status st = run_script(r, SC_GET, 2, 3, args, lens, &rep);
    if (st != EE_OK)
        return st;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 3)
        return bad_reply(r, rep);
    for (size_t j = 0; j < 3; j++)
        if (rep->element[j]->type != REDIS_REPLY_INTEGER)
            return bad_reply(r, rep);
    out->value = rep->element[0]->integer;
    out->committed = rep->element[1]->integer;
    out->window_end_ms = rep->element[2]->integer;
    freeReplyObject(rep);
    return EE_OK;
}

/* ---- lifetime ---------------------------------------------------------------------- */

static void r_free(void *ctx)
{
    rds *r = ctx;
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->nidle; i++)
        redisFree(r->idle[i]);
    if (r->password != NULL)
        ee__redact_unregister(r->password, strlen(r->password));
    ee__secret_free(r->password);
    ee__secret_free(r->user);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

static const ee_counters_backend redis_table = {
    .version = EE_COUNTERS_BACKEND_VERSION,
    .flags = EE_COUNTERS_THREAD_SAFE | EE_COUNTERS_SHARED,
    .reserve_many = NULL, /* the library calls ee__counters_redis_ext.reserve_leased */
    .commit = r_commit,
    .release = r_release,
    .renew = r_renew,
    .get = r_get,
    .free = r_free,
};

static bool parse_int(const char *s, size_t n, long min, long max, long *out)
{
    if (n == 0 || n > 9)
        return false;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    if (v < min || v > max)
        return false;
    *out = v;
    return true;
}

static char *dup_n(const char *s, size_t n)
{
    char *tmp = malloc(n + 1);
    if (tmp == NULL)
        return NULL;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    char *out = ee__secret_dup(tmp);
    ee__secret_free(tmp);
    return out;
}

/* redis://[[user]:password@]host[:port][/db] */
static ee_status parse_uri(rds *r, const char *uri)
{
    if (strncmp(uri, "redis://", 8) != 0)
        return ee__error(EE_EINVAL, "redis counters URI must start with redis://");
    const char *p = uri + 8;
    size_t auth_len = strcspn(p, "/");
    const char *at = NULL;
    for (size_t i = 0; i < auth_len; i++)
        if (p[i] == '@')
            at = p + i;
    if (at != NULL) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (colon == NULL) {
            r->password = dup_n(p, (size_t)(at - p));
        } else {
            if (colon > p)
                r->user = dup_n(p, (size_t)(colon - p));
            r->password = dup_n(colon + 1, (size_t)(at - colon - 1));
        }
        if (r->password == NULL || (colon != NULL && colon > p && r->user == NULL))
            return ee__error(EE_ENOMEM, "out of memory parsing the redis URI");
        if (r->password[0] == '\0') {
            ee__secret_free(r->password);
            r->password = NULL;
        }
        p = at + 1;
    }
    size_t hp = strcspn(p, "/");
    const char *colon = memchr(p, ':', hp);
    size_t hl = colon ? (size_t)(colon - p) : hp;
    if (hl == 0 || hl >= sizeof r->host)
        return ee__error(EE_EINVAL, "redis counters URI has no host (or one too long)");
    memcpy(r->host, p, hl);
    r->host[hl] = '\0';
    long v = 6379;
    if (colon != NULL && !parse_int(colon + 1, hp - hl - 1, 1, 65535, &v))
        return ee__error(EE_EINVAL, "redis counters URI: the port is not a number in "
                                    "1..65535");
    r->port = (int)v;
    p += hp;
    v = 0;
    if (*p == '/' && p[1] != '\0' && !parse_int(p + 1, strlen(p + 1), 0, 100000, &v))
        return ee__error(EE_EINVAL, "redis counters URI: the database after '/' is not a "
                                    "number");
    r->db = (int)v;
    return EE_OK;
}

ee_status ee__counters_redis_create(const char *uri, const ee_counters_backend **table,
                                    void **ctx)
{
    rds *r = calloc(1, sizeof *r);
    if (r == NULL)
        return ee__error(EE_ENOMEM, "out of memory opening redis counters");
    pthread_mutex_init(&r->lock, NULL);
    ee_status st = parse_uri(r, uri);
    if (st == EE_OK && r->password != NULL)
        st = ee__redact_register(r->password, strlen(r->password));
    if (st != EE_OK) {
        /* Not registered for redaction (that is the last step that can
         * fail), so nothing to unregister. */
        ee__secret_free(r->password);
        r->password = NULL;
        r_free(r);
        return st;
    }
    for (int i = 0; i < SC_COUNT; i++) {
        unsigned char md[SHA_DIGEST_LENGTH];
        SHA1((const unsigned char *)scripts[i], strlen(scripts[i]), md);
        for (int j = 0; j < SHA_DIGEST_LENGTH; j++)
            snprintf(r->sha[i] + 2 * j, 3, "%02x", md[j]);
    }
    /* Connect now so a wrong address or password fails at open. */
    redisContext *c = NULL;
    if ((st = connect_one(r, &c)) != EE_OK) {
        r_free(r);
        return st;
    }
    give_conn(r, c, true);
    *table = &redis_table;
    *ctx = r;
    return EE_OK;
}
