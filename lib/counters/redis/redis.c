/*
 * The redis counters backend (hiredis 0.14): every operation is ONE Lua
 * script call (EVALSHA; on NOSCRIPT the script is sent with EVAL, which
 * also caches it), so each check-and-change is atomic on the server and
 * exact across processes and hosts. reserve_many is one script for all its
 * counters: all granted or none.
 *
 * Data of counter K, one string (the braces keep a counter's key in one
 * cluster hash slot):
 *   eec3:{K}  a header of 6 numbers - window end (0: none), committed,
 *             value (committed + outstanding, what limits are checked
 *             against), the last reservation id issued, the last id of the
 *             counter's id block and when the key's TTL was last made to
 *             end - then 3 numbers per outstanding reservation - lease
 *             expiry, id, amount - in expiry order.
 *             Reservations whose lease ended are dropped by the next
 *             reserve; get and finish read past them.
 *   eec3:seq  counter of id blocks: block b holds ids b * 2^20 + 1 ..
 *             b * 2^20 + 2^20 - 1, handed out 2^16 at a time to the
 *             counters of one reserve call (one INCR however many of its
 *             keys are new), so an id is never issued twice, also after a
 *             counter's key expired and came back.
 * Numbers are integers below 2^53 stored as little-endian IEEE-754
 * doubles (exact), and cross between client and script packed the same
 * way, never as text: Redis's Lua pays far more for converting numbers to
 * and from text, building tables and calling commands than for
 * struct.pack/unpack, so a reserve of three counters is one MGET, one SET
 * per counter and a few dozen Lua operations. The price: a call copies the
 * counter's outstanding reservations (24 bytes each), which is linear in
 * them - fine for quota counters (a rate unit per run of the last hour, a
 * slot per running execution), slow for a counter holding 10^5 at once.
 * ("eec3": the layout before this one kept hashes and sorted sets under
 * "eec2:"; the two never mix.)
 *
 * Epoch (only with a durable store beside, the engine's database): Redis
 * without persistence comes back empty after a restart. eec3:epoch marks
 * the epoch the counters belong to and every script checks it against the
 * caller's (-100 when missing or other); eec3:lost holds when a missing
 * marker was first seen. Admissions then fail closed (EE_EBUSY) for the
 * longest lease, a new epoch is begun (numbered by the durable store; its
 * ids start at block epoch * 2^24) and each key is read back from durable
 * usage when first used (reserve answers -101 for a missing key of a
 * windowed counter; windowless ones have no durable usage). See
 * recover() and docs/counters.md.
 *
 * Time: the scripts judge windows and leases with the caller's now_ms,
 * passed as an argument; Redis's own clock is never compared with it. A
 * key's TTL, set relative to the call (Redis counts it on its own clock),
 * only collects memory: a windowed counter's key lives until its window
 * ends, a windowless one with nothing committed one to two hours past its
 * last lease, one with a committed value forever. Most writes keep the TTL
 * (SET ... KEEPTTL): it is set again only when the window changes or the
 * last lease passes the hour it covers.
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
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/core.h"

#define POOL_MAX 64
#define KEY_BUF (EE_COUNTERS_KEY_MAX + 16)
#define SEQ_KEY "eec3:seq"
#define EPOCH_SPAN 16777216 /* id blocks per epoch (2^24): epoch E's ids start at block E * 2^24 */
#define LOST (-100)         /* a script's answer: the epoch marker is missing or another */
#define SEED (-101)         /* reserve's answer: a counter's key is missing (read it back) */
/* Durable keys (on the storage counters beside): the last epoch begun, and
 * one token per reservation whose commit came after the loss. */
#define DURABLE_EPOCH_KEY "eec3/epoch"
#define DEFAULT_RECOVERY_MS (15 * 60 * 1000)
#define RESERVE_NUMS 4 /* numbers per counter passed to the reserve script */
#define RESULT_NUMS 6  /* numbers per counter in its answer */

/* ---- scripts ------------------------------------------------------------------- */

/* Shared by the scripts. H: the header's format (its sixth number, g, is
 * when - on the caller's clock - the key's TTL was last made to end, 0:
 * none). ttl(): what the next SET of a counter does with the key's TTL
 * (nil: KEEPTTL, -1: none, else PX ms) and the new g, for window end e,
 * committed c and last lease expiry xl (nil: none): a windowed counter's
 * key ends with its window, a windowless one with nothing committed an
 * hour or two after its last lease (the TTL is renewed only once that
 * hour is not covered, so most writes keep it), one with a committed
 * value never. write(): store a counter. insert(): a lease record into a
 * body of records, in expiry order (after equal expiries). */
#define LUA_COMMON                                                                             \
    "local H = '<dddddd'\n"                                                                    \
    "local function ttl(e, c, g, xl, now)\n"                                                   \
    "  if e ~= 0 then\n"                                                                       \
    "    if g == e then return nil, g end\n"                                                   \
    "    return e - now, e\n"                                                                  \
    "  end\n"                                                                                  \
    "  if c ~= 0 then\n"                                                                       \
    "    if g == 0 then return nil, 0 end\n"                                                   \
    "    return -1, 0\n"                                                                       \
    "  end\n"                                                                                  \
    "  local need = (xl or now) + 3600000\n"                                                   \
    "  if g >= need then return nil, g end\n"                                                  \
    "  return need + 3600000 - now, need + 3600000\n"                                          \
    "end\n"                                                                                    \
    "local function set(k, s, t)\n"                                                            \
    "  if t == nil then return redis.call('SET', k, s, 'KEEPTTL') end\n"                       \
    "  if t < 0 then return redis.call('SET', k, s) end\n"                                     \
    "  return redis.call('SET', k, s, 'PX', string.format('%d', t))\n"                         \
    "end\n"                                                                                    \
    "local function insert(body, x, rec)\n"                                                    \
    "  local m = #body\n"                                                                      \
    "  if m == 0 or x >= struct.unpack('<d', body, m - 23) then return body .. rec end\n"      \
    "  local lo, hi = 0, m / 24\n"                                                             \
    "  while lo < hi do\n"                                                                     \
    "    local mid = math.floor((lo + hi) / 2)\n"                                              \
    "    if struct.unpack('<d', body, mid * 24 + 1) <= x then lo = mid + 1 else hi = mid end\n" \
    "  end\n"                                                                                  \
    "  return string.sub(body, 1, lo * 24) .. rec .. string.sub(body, lo * 24 + 1)\n"          \
    "end\n"                                                                                    \
    "local function write(k, e, c, v, q, qm, g, body, now)\n"                                  \
    "  local xl\n"                                                                             \
    "  if #body > 0 then xl = struct.unpack('<d', body, #body - 23) end\n"                     \
    "  local t, ng = ttl(e, c, g, xl, now)\n"                                                  \
    "  return set(k, struct.pack(H, e, c, v, q, qm, ng) .. body, t)\n"                         \
    "end\n"

/* KEYS: the id block counter, then one key per counter. ARGV[1]: packed
 * numbers: now, then per counter room (limit - n), n, the end of a window
 * that begins now (0: none) and the lease's expiry, then the epoch (0: no
 * epoch marker is kept). Returns packed numbers: granted, then per counter
 * fits, value, committed, window end, retry at, reservation id; or -100
 * (the epoch marker is not `epoch`) or -101 (with an epoch: the key of a
 * windowed counter is missing, to be read back from the durable store
 * first; windowless ones - rate units, slots - have no durable usage). */
static const char script_reserve[] =
    LUA_COMMON
    "local nk = #KEYS - 1\n"
    "local a = {struct.unpack('<' .. string.rep('d', 2 + 4 * nk), ARGV[1])}\n"
    "local now, ep = a[1], a[2 + 4 * nk]\n"
    "if ep ~= 0 and tonumber(redis.call('GET', 'eec3:epoch') or '0') ~= ep then return -100 end\n"
    "local cur = redis.call('MGET', unpack(KEYS, 2))\n"
    "local S, all = {}, true\n"
    "for i = 1, nk do\n"
    "  local b, s = 4 * i - 3, cur[i]\n"
    "  if ep ~= 0 and not s and a[b + 3] ~= 0 then return -101 end\n"
    "  local e, c, v, q, qm, g, off = 0, 0, 0, 0, 0, 0, 49\n"
    "  if s then e, c, v, q, qm, g = struct.unpack(H, s) end\n"
    "  if not s or (e ~= 0 and now >= e) then\n"
    "    e, c, v, s, off = a[b + 3], 0, 0, '', 1\n"
    "  else\n"
    "    local len = #s\n"
    "    while off < len do\n"
    "      local x, _, n = struct.unpack('<ddd', s, off)\n"
    "      if x > now then break end\n"
    "      v, off = v - n, off + 24\n"
    "    end\n"
    "  end\n"
    "  local fits = v <= a[b + 1]\n"
    "  if not fits then all = false end\n"
    "  S[i] = {e, c, v, q, qm, s, off, fits, g}\n"
    "end\n"
    "local out, fmt = {}, '<' .. string.rep('d', 1 + 6 * nk)\n"
    "if all then\n"
    "  local blk\n"
    "  for i = 1, nk do\n"
    "    local b, t = 4 * i - 3, S[i]\n"
    "    local e, c, v, q, qm = t[1], t[2], t[3], t[4], t[5]\n"
    /* ids for a new key (or a used-up range): the i-th 2^16 of one block
     * taken for the whole call */
    "    if q >= qm then\n"
    "      if not blk then\n"
    "        blk = redis.call('INCR', KEYS[1])\n"
    "        if blk >= 8589934591 then return redis.error_reply('counter ids exhausted') end\n"
    "      end\n"
    "      q = blk * 1048576 + (i - 1) * 65536\n"
    "      qm = q + 65535\n"
    "    end\n"
    "    q, v = q + 1, v + a[b + 2]\n"
    "    local x, s, off = a[b + 4], t[6], t[7]\n"
    "    local rec, len = struct.pack('<ddd', x, q, a[b + 2]), #s\n"
    /* The usual case, the lease at the end: write() and insert() in one
     * concatenation (building strings is what costs here). */
    "    if len < off or x >= struct.unpack('<d', s, len - 23) then\n"
    "      local tl, ng = ttl(e, c, t[9], x, now)\n"
    "      set(KEYS[i + 1], struct.pack(H, e, c, v, q, qm, ng) .. string.sub(s, off) .. rec, tl)\n"
    "    else\n"
    "      write(KEYS[i + 1], e, c, v, q, qm, t[9], insert(string.sub(s, off), x, rec), now)\n"
    "    end\n"
    "    local o = 6 * i - 6\n"
    "    out[o + 1], out[o + 2], out[o + 3], out[o + 4], out[o + 5], out[o + 6] =\n"
    "      1, v, c, e, 0, q\n"
    "  end\n"
    "  return struct.pack(fmt, 1, unpack(out))\n"
    "end\n"
    "for i = 1, nk do\n"
    "  local b, t = 4 * i - 3, S[i]\n"
    "  local e, c, v, s, off = t[1], t[2], t[3], t[6], t[7]\n"
    "  local retry = 0\n"
    "  if not t[8] then\n"
    "    local n = a[b + 2]\n"
    "    local limit = a[b + 1] + n\n"
    "    if n <= limit then\n"
    "      if c + n > limit then retry = e\n"
    "      else\n"
    "        local need, len = v + n - limit, #s\n"
    "        retry = e\n"
    "        while off < len do\n"
    "          local x, _, m = struct.unpack('<ddd', s, off)\n"
    "          need = need - m\n"
    "          if need <= 0 then\n"
    "            if e ~= 0 and x > e then x = e end\n"
    "            retry = x\n"
    "            break\n"
    "          end\n"
    "          off = off + 24\n"
    "        end\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  local o = 6 * i - 6\n"
    "  out[o + 1], out[o + 2], out[o + 3], out[o + 4], out[o + 5], out[o + 6] =\n"
    "    t[8] and 1 or 0, v, c, e, retry, 0\n"
    "end\n"
    "return struct.pack(fmt, 0, unpack(out))\n";

/* KEYS: the counter's key. ARGV[1]: packed numbers now, id, amount (-1: all;
 * release: 0), new expiry (renew; 0 otherwise), epoch (0: none). Returns an
 * EE__FINISH_* code: 0 done, -6 unknown or finished, -2 window ended, -3
 * expired, -4 amount > n; or -100 (the epoch marker is not `epoch`). */
static const char script_finish[] =
    LUA_COMMON
    "local now, id, amount, renew, ep = struct.unpack('<ddddd', ARGV[1])\n"
    "if ep ~= 0 and tonumber(redis.call('GET', 'eec3:epoch') or '0') ~= ep then return -100 end\n"
    "local k = KEYS[1]\n"
    "local s = redis.call('GET', k)\n"
    "if not s then return -6 end\n"
    "local e, c, v, q, qm, g = struct.unpack(H, s)\n"
    "if e ~= 0 and now >= e then return -2 end\n"
    /* the record whose id field (8 bytes into a 24-byte record) is id */
    "local pat, p, at = struct.pack('<d', id), 57, nil\n"
    "while true do\n"
    "  local f = string.find(s, pat, p, true)\n"
    "  if not f then return -6 end\n"
    "  if (f - 57) % 24 == 0 then at = f - 8 break end\n"
    "  p = f + 1\n"
    "end\n"
    "local x, _, n = struct.unpack('<ddd', s, at)\n"
    "local body = string.sub(s, 49, at - 1) .. string.sub(s, at + 24)\n"
    "if x > now and renew > 0 then\n"
    "  write(k, e, c, v, q, qm, g, insert(body, renew, struct.pack('<ddd', renew, id, n)), now)\n"
    "  return 0\n"
    "end\n"
    "if x > now and amount > n then return -4 end\n"
    "if x <= now then\n"
    "  write(k, e, c, v - n, q, qm, g, body, now)\n"
    "  return -3\n"
    "end\n"
    "if amount < 0 then amount = n end\n"
    "write(k, e, c + amount, v - n + amount, q, qm, g, body, now)\n"
    "return 0\n";

/* KEYS: the counter's key. ARGV[1]: packed now, epoch (0: none). Returns
 * packed numbers value, committed, window end (all 0 when the window ended
 * or none began), or -100 (the epoch marker is not `epoch`), or -101 (with
 * an epoch: the key is missing; its durable usage is what it holds).
 * Changes nothing. */
static const char script_get[] =
    "local now, ep = struct.unpack('<dd', ARGV[1])\n"
    "if ep ~= 0 and tonumber(redis.call('GET', 'eec3:epoch') or '0') ~= ep then return -100 end\n"
    "local s = redis.call('GET', KEYS[1])\n"
    "if not s and ep ~= 0 then return -101 end\n"
    "if not s then return struct.pack('<ddd', 0, 0, 0) end\n"
    "local e, c, v = struct.unpack('<ddd', s)\n"
    "if e ~= 0 and now >= e then return struct.pack('<ddd', 0, 0, 0) end\n"
    "local off, len = 49, #s\n"
    "while off < len do\n"
    "  local x, _, n = struct.unpack('<ddd', s, off)\n"
    "  if x > now then break end\n"
    "  v, off = v - n, off + 24\n"
    "end\n"
    "return struct.pack('<ddd', v, c, e)\n";

/* KEYS: counter keys. ARGV[1]: packed epoch, now, then per key committed
 * and window end (0: none; after now). Each key that is still missing is
 * created holding `committed` as committed usage (nothing outstanding),
 * so a key is read back once per epoch however many callers race. Returns
 * 0, or -100 (the epoch marker is not `epoch`). */
static const char script_seed[] =
    LUA_COMMON
    "local nk = #KEYS\n"
    "local a = {struct.unpack('<' .. string.rep('d', 2 + 2 * nk), ARGV[1])}\n"
    "if tonumber(redis.call('GET', 'eec3:epoch') or '0') ~= a[1] then return -100 end\n"
    "for i = 1, nk do\n"
    "  if redis.call('EXISTS', KEYS[i]) == 0 then\n"
    "    local c, e = a[1 + 2 * i], a[2 + 2 * i]\n"
    "    write(KEYS[i], e, c, c, 0, 0, 0, '', a[2])\n"
    "  end\n"
    "end\n"
    "return 0\n";

/* No KEYS. ARGV[1]: packed now, claim. The epoch marker's value when it is
 * there (and 0, 0); else notes that the counters were found lost at `now`
 * (unless an earlier caller did) and answers 0, that time and, when
 * `claim` is set, whether this caller took the right to begin the new
 * epoch (eec3:rebuild, for 30 s: one caller numbers it). Packed numbers. */
static const char script_lost[] =
    "local now, claim = struct.unpack('<dd', ARGV[1])\n"
    "local ep = redis.call('GET', 'eec3:epoch')\n"
    "if ep then return struct.pack('<ddd', tonumber(ep), 0, 0) end\n"
    "redis.call('SET', 'eec3:lost', string.format('%d', now), 'NX')\n"
    "local got = 0\n"
    "if claim > 0 and redis.call('SET', 'eec3:rebuild', '1', 'NX', 'PX', 30000) then got = 1 end\n"
    "return struct.pack('<ddd', 0, tonumber(redis.call('GET', 'eec3:lost')), got)\n";

/* No KEYS. ARGV[1]: packed epoch, span. Publishes `epoch` unless an epoch
 * marker is there already (a racing caller published first), moving the
 * id block counter up to epoch * span so no id of an earlier epoch is
 * issued again. Returns the epoch in force (packed). */
static const char script_publish[] =
    "local ep, span = struct.unpack('<dd', ARGV[1])\n"
    "local cur = redis.call('GET', 'eec3:epoch')\n"
    "if cur then return struct.pack('<d', tonumber(cur)) end\n"
    "local base = ep * span\n"
    "if tonumber(redis.call('GET', 'eec3:seq') or '0') < base then\n"
    "  redis.call('SET', 'eec3:seq', string.format('%d', base))\n"
    "end\n"
    "redis.call('SET', 'eec3:epoch', string.format('%d', ep))\n"
    "redis.call('DEL', 'eec3:lost', 'eec3:rebuild')\n"
    "return struct.pack('<d', ep)\n";

enum { SC_RESERVE, SC_FINISH, SC_GET, SC_SEED, SC_LOST, SC_PUBLISH, SC_COUNT };

static const char *const scripts[SC_COUNT] = {script_reserve, script_finish, script_get,
                                              script_seed,    script_lost,   script_publish};

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
    /* With durable counters beside (the engine's storage): the epoch the
     * counters are known to be in (0: not known yet), and how long
     * admissions stay closed after a loss (the longest lease). */
    ee_counters *durable;
    _Atomic int64_t epoch;
    _Atomic int64_t recovery_ms;
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
    const char *argv[3 + 1 + EE_COUNTERS_MANY_MAX + 1];
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

static size_t counter_key(const char *key, char *out)
{
    return (size_t)snprintf(out, KEY_BUF, "eec3:{%s}", key);
}

/* ---- numbers as the scripts pack them ----------------------------------------------- */

/* An integer (|v| <= 2^53, exact in a double) as a little-endian double. */
static void put_num(unsigned char *p, int64_t v)
{
    double d = (double)v;
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(u >> (8 * i));
}

/* A little-endian double that must be an integer with |v| <= 2^53. */
static bool get_num(const unsigned char *p, int64_t *out)
{
    uint64_t u = 0;
    for (int i = 0; i < 8; i++)
        u |= (uint64_t)p[i] << (8 * i);
    double d;
    memcpy(&d, &u, sizeof d);
    if (!(d >= -9007199254740992.0 && d <= 9007199254740992.0)) /* also NaN */
        return false;
    *out = (int64_t)d;
    return (double)*out == d;
}

/* A reply of exactly `count` packed numbers. */
static bool reply_nums(const redisReply *rep, size_t count, int64_t *out)
{
    if (rep->type != REDIS_REPLY_STRING || (size_t)rep->len != count * 8)
        return false;
    for (size_t i = 0; i < count; i++)
        if (!get_num((const unsigned char *)rep->str + 8 * i, &out[i]))
            return false;
    return true;
}

/* ---- the epoch: counters lost by Redis ---------------------------------------------- */

/* A script answering one integer: whether it is LOST. */
static bool is_lost(const redisReply *rep)
{
    return rep->type == REDIS_REPLY_INTEGER && rep->integer == LOST;
}

/* A durable counter's committed value and window end at now (0, 0 when
 * it has none). */
static ee_status durable_get(rds *r, const char *key, int64_t now, int64_t *committed,
                             int64_t *end)
{
    ee_counter_result g;
    ee_status st = ee_counters_get(r->durable, key, now, &g);
    *committed = st == EE_OK ? g.committed : 0;
    *end = st == EE_OK ? g.window_end_ms : 0;
    return st;
}

/* The lost script: the marker's epoch (0: none), when the loss was seen
 * and whether the right to begin the next epoch was taken (with claim). */
static ee_status lost_state(rds *r, int64_t now, bool claim, int64_t v[3])
{
    unsigned char nums[16];
    put_num(nums, now);
    put_num(nums + 8, claim ? 1 : 0);
    const char *args[1] = {(const char *)nums};
    size_t lens[1] = {sizeof nums};
    redisReply *rep = NULL;
    ee_status st = run_script(r, SC_LOST, 0, 1, args, lens, &rep);
    if (st != EE_OK)
        return st;
    if (!reply_nums(rep, 3, v))
        return bad_reply(r, rep);
    freeReplyObject(rep);
    return EE_OK;
}

/* Establish the epoch the counters are in, after a script found the
 * marker missing or other (or before the first call): adopt the marker
 * when it is there; when it is not, the counters were lost (or never
 * had one): note when that was first seen, keep admissions closed
 * (EE_EBUSY) until the longest lease since has passed, so every
 * reservation made before the loss is finished or expired, then begin a
 * new epoch (numbered by the durable store) whose keys are read back
 * from durable usage as they are first used. With no epoch ever begun
 * (durable number 0) nothing was lost: the first epoch begins at once.
 * One caller (eec3:rebuild) numbers and publishes the epoch; the others
 * wait up to a second for its marker, then answer EE_EBUSY. */
static ee_status recover(rds *r, int64_t now)
{
    int64_t v[3];
    ee_status st = lost_state(r, now, false, v);
    if (st != EE_OK)
        return st;
    if (v[0] > 0) {
        atomic_store(&r->epoch, v[0]);
        return EE_OK;
    }
    int64_t begun, end;
    if ((st = durable_get(r, DURABLE_EPOCH_KEY, now, &begun, &end)) != EE_OK)
        return st;
    int64_t open_at = v[1] + atomic_load(&r->recovery_ms);
    if (begun > 0 && now < open_at)
        return ee__error(EE_EBUSY,
                         "redis counters at %s:%d lost their data (Redis came back empty); "
                         "admissions stay closed until every reservation made before may "
                         "have ended, then the counters are rebuilt from the storage's "
                         "period usage (in %lld ms)",
                         r->host, r->port, (long long)(open_at - now));
    /* One caller numbers the new epoch; the others wait for its marker. */
    if ((st = lost_state(r, now, true, v)) != EE_OK)
        return st;
    if (v[0] > 0) {
        atomic_store(&r->epoch, v[0]);
        return EE_OK;
    }
    for (int i = 0; v[2] != 1 && v[0] == 0 && i < 100; i++) {
        usleep(10000);
        if ((st = lost_state(r, now, false, v)) != EE_OK)
            return st;
    }
    if (v[0] > 0) {
        atomic_store(&r->epoch, v[0]);
        return EE_OK;
    }
    if (v[2] != 1)
        return ee__error(EE_EBUSY, "redis counters at %s:%d lost their data (Redis came back "
                                   "empty) and are being rebuilt from the storage's period "
                                   "usage; try again", r->host, r->port);
    if ((st = ee__counters_credit(r->durable, DURABLE_EPOCH_KEY, 1, 0, now)) != EE_OK ||
        (st = durable_get(r, DURABLE_EPOCH_KEY, now, &begun, &end)) != EE_OK)
        return st;
    if (begun <= 0 || begun >= 8589934591 / EPOCH_SPAN)
        return ee__error(EE_EUPSTREAM, "redis counters at %s:%d: no epoch left to begin",
                         r->host, r->port);
    unsigned char nums[16];
    put_num(nums, begun);
    put_num(nums + 8, EPOCH_SPAN);
    const char *args[1] = {(const char *)nums};
    size_t lens[1] = {sizeof nums};
    redisReply *rep = NULL;
    if ((st = run_script(r, SC_PUBLISH, 0, 1, args, lens, &rep)) != EE_OK)
        return st;
    if (!reply_nums(rep, 1, v) || v[0] <= 0)
        return bad_reply(r, rep);
    freeReplyObject(rep);
    atomic_store(&r->epoch, v[0]);
    return EE_OK;
}

/* The epoch to pass to a script: 0 without a durable store (no marker
 * kept), else the one in force, established first if not known yet. */
static ee_status epoch_of(rds *r, int64_t now, int64_t *epoch)
{
    *epoch = 0;
    if (r->durable == NULL)
        return EE_OK;
    ee_status st = atomic_load(&r->epoch) == 0 ? recover(r, now) : EE_OK;
    *epoch = atomic_load(&r->epoch);
    return st;
}

/* Read the missing keys among `reqs` back from the durable store into
 * Redis (each one only if still missing): a windowed counter's committed
 * usage in the durable window, else an empty counter in the window a
 * reserve would begin. */
static ee_status seed(rds *r, const ee_counter_req *reqs, size_t count, int64_t epoch,
                      int64_t now)
{
    char keys[EE_COUNTERS_MANY_MAX][KEY_BUF];
    unsigned char nums[8 * (2 + 2 * EE_COUNTERS_MANY_MAX)];
    const char *args[EE_COUNTERS_MANY_MAX + 1];
    size_t lens[sizeof args / sizeof args[0]];
    put_num(nums, epoch);
    put_num(nums + 8, now);
    for (size_t i = 0; i < count; i++) {
        int64_t c = 0, e = 0;
        /* only windowed counters have durable usage (period usage) */
        ee_status st = ee__counters_new_window_end(&reqs[i], now) == 0
                           ? EE_OK
                           : durable_get(r, reqs[i].key, now, &c, &e);
        if (st != EE_OK)
            return st;
        if (c <= 0 || e == 0 || e <= now) { /* nothing committed in a current window */
            c = 0;
            e = ee__counters_new_window_end(&reqs[i], now);
        }
        put_num(nums + 8 * (2 + 2 * i), c);
        put_num(nums + 8 * (3 + 2 * i), e);
        lens[i] = counter_key(reqs[i].key, keys[i]);
        args[i] = keys[i];
    }
    args[count] = (const char *)nums;
    lens[count] = 8 * (2 + 2 * count);
    redisReply *rep = NULL;
    ee_status st = run_script(r, SC_SEED, (int)count, (int)count + 1, args, lens, &rep);
    if (st != EE_OK)
        return st;
    if (rep->type != REDIS_REPLY_INTEGER || (rep->integer != 0 && rep->integer != LOST))
        return bad_reply(r, rep);
    freeReplyObject(rep);
    return EE_OK; /* LOST: the reserve finds it again */
}

/* ---- operations ------------------------------------------------------------------ */

static ee_status reserve_once(rds *r, const ee_counter_req *reqs, const int64_t *leases,
                              size_t count, int64_t now, int64_t epoch, ee_counter_result *res,
                              int *granted, int *code)
{
    *code = 0;
    char keys[EE_COUNTERS_MANY_MAX][KEY_BUF];
    unsigned char nums[8 * (2 + RESERVE_NUMS * EE_COUNTERS_MANY_MAX)];
    const char *args[1 + EE_COUNTERS_MANY_MAX + 1];
    size_t lens[sizeof args / sizeof args[0]];
    args[0] = SEQ_KEY;
    lens[0] = strlen(SEQ_KEY);
    put_num(nums, now);
    for (size_t i = 0; i < count; i++) {
        lens[1 + i] = counter_key(reqs[i].key, keys[i]);
        args[1 + i] = keys[i];
        unsigned char *p = nums + 8 * (1 + RESERVE_NUMS * i);
        put_num(p, reqs[i].limit - reqs[i].n); /* room: the value may be at most this */
        put_num(p + 8, reqs[i].n);
        put_num(p + 16, ee__counters_new_window_end(&reqs[i], now));
        put_num(p + 24, now + leases[i]);
    }
    put_num(nums + 8 * (1 + RESERVE_NUMS * count), epoch);
    args[1 + count] = (const char *)nums;
    lens[1 + count] = 8 * (2 + RESERVE_NUMS * count);
    redisReply *rep = NULL;
    ee_status st = run_script(r, SC_RESERVE, (int)count + 1, (int)count + 2, args, lens, &rep);
    if (st != EE_OK)
        return st;
    if (rep->type == REDIS_REPLY_INTEGER && (rep->integer == LOST || rep->integer == SEED)) {
        *code = (int)rep->integer;
        freeReplyObject(rep);
        return EE_OK;
    }
    int64_t v[1 + RESULT_NUMS * EE_COUNTERS_MANY_MAX];
    if (!reply_nums(rep, 1 + RESULT_NUMS * count, v) || (v[0] != 0 && v[0] != 1))
        return bad_reply(r, rep);
    freeReplyObject(rep);
    for (size_t i = 0; i < count; i++) {
        const int64_t *x = v + 1 + RESULT_NUMS * i;
        res[i] = (ee_counter_result){.fits = x[0] != 0,
                                     .value = x[1],
                                     .committed = x[2],
                                     .limit = reqs[i].limit,
                                     .window_end_ms = x[3],
                                     .retry_at_ms = x[4],
                                     .resv_id = (uint64_t)x[5]};
        if (v[0] == 1 && x[5] <= 0)
            return ee__error(EE_EUPSTREAM, "redis counters at %s:%d: a granted reservation "
                                           "without an id", r->host, r->port);
    }
    *granted = (int)v[0];
    return EE_OK;
}

static ee_status r_reserve_leased(void *ctx, const ee_counter_req *reqs, void *const *handles,
                                  const uint8_t *order, const int64_t *leases, size_t count,
                                  int64_t now, ee_counter_result *res, int *granted)
{
    (void)handles; /* keys are the server's names */
    (void)order;
    rds *r = ctx;
    int64_t epoch;
    ee_status st = epoch_of(r, now, &epoch);
    /* A lost epoch is established again and a missing key read back, then
     * the reserve is tried again: a few rounds at most, unless others keep
     * changing the same things meanwhile. */
    for (int round = 0; st == EE_OK && round < 4; round++) {
        int code;
        st = reserve_once(r, reqs, leases, count, now, epoch, res, granted, &code);
        if (st != EE_OK || code == 0)
            return st;
        if (code == SEED) {
            st = seed(r, reqs, count, epoch, now);
        } else {
            atomic_store(&r->epoch, 0);
            st = epoch_of(r, now, &epoch);
        }
    }
    if (st == EE_OK)
        st = ee__error(EE_EBUSY, "redis counters at %s:%d: the counters kept changing while "
                                 "being rebuilt; try again", r->host, r->port);
    return st;
}

const ee__counters_ext ee__counters_redis_ext = {
    .resolve = NULL,
    .lock_order = NULL,
    .reserve_leased = r_reserve_leased,
};

/* A finish of a reservation made before the counters were lost, while
 * admissions are closed (no reservation of the new epoch exists yet): a
 * renew finds nothing; a release has nothing left to give back; a commit
 * is accepted once per reservation id (a token on the durable store), and
 * the caller writes its usage through to the durable store as for any
 * commit, from where the rebuild reads it. */
static ee_status finish_lost(rds *r, const char *key, uint64_t id, int64_t amount,
                             int64_t renew_to, int64_t now)
{
    if (renew_to > 0)
        return ee__counters_not_found(key, id, "was lost with the counters (Redis came back "
                                               "empty)");
    if (amount == 0)
        return EE_OK;
    char tk[48];
    snprintf(tk, sizeof tk, "eec3/late/%llu", (unsigned long long)id);
    ee_counter_req q = {tk, 1, 1, 0, 0};
    ee_counter_result g;
    int granted = 0;
    ee_status st = ee_counters_reserve(r->durable, &q, 60000, now, &g, &granted);
    if (st == EE_OK && !granted)
        return ee__counters_not_found(key, id, "is already finished");
    if (st == EE_OK)
        st = ee_counters_commit(r->durable, tk, g.resv_id, EE_COUNTERS_ALL, now);
    return st;
}

static ee_status finish_once(rds *r, const char *key, uint64_t id, int64_t amount,
                             int64_t renew_to, int64_t now, int64_t epoch, int *code)
{
    char k[KEY_BUF];
    unsigned char nums[40];
    put_num(nums, now);
    put_num(nums + 8, (int64_t)id);
    put_num(nums + 16, amount);
    put_num(nums + 24, renew_to);
    put_num(nums + 32, epoch);
    const char *args[2] = {k, (const char *)nums};
    size_t lens[2] = {counter_key(key, k), sizeof nums};
    redisReply *rep = NULL;
    ee_status st = run_script(r, SC_FINISH, 1, 2, args, lens, &rep);
    if (st != EE_OK)
        return st;
    if (rep->type != REDIS_REPLY_INTEGER)
        return bad_reply(r, rep);
    *code = (int)rep->integer;
    freeReplyObject(rep);
    return EE_OK;
}

static ee_status r_finish(rds *r, const char *key, uint64_t id, int64_t amount,
                          int64_t renew_to, int64_t now)
{
    if (id == 0 || id > (uint64_t)EE_COUNTERS_VALUE_MAX)
        return ee__counters_not_found(key, id, "is unknown or already finished");
    int64_t epoch;
    int code = LOST;
    ee_status st = EE_OK;
    for (int round = 0; st == EE_OK && code == LOST && round < 3; round++) {
        if (round > 0)
            atomic_store(&r->epoch, 0);
        st = epoch_of(r, now, &epoch);
        if (st == EE_EBUSY)
            return finish_lost(r, key, id, amount, renew_to, now);
        if (st == EE_OK)
            st = finish_once(r, key, id, amount, renew_to, now, epoch, &code);
    }
    if (st != EE_OK)
        return st;
    if (code == LOST)
        return ee__error(EE_EBUSY, "redis counters at %s:%d: the counters kept changing while "
                                   "being rebuilt; try again", r->host, r->port);
    return ee__counters_finish_answer(key, id, amount, code);
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

static ee_status get_durable(rds *r, const char *key, int64_t now, ee_counter_result *out)
{
    ee_status st = durable_get(r, key, now, &out->committed, &out->window_end_ms);
    out->value = out->committed;
    return st;
}

static ee_status get_once(rds *r, const char *key, int64_t now, int64_t epoch,
                          ee_counter_result *out, bool *lost)
{
    char k[KEY_BUF];
    unsigned char nums[16];
    put_num(nums, now);
    put_num(nums + 8, epoch);
    const char *args[2] = {k, (const char *)nums};
    size_t lens[2] = {counter_key(key, k), sizeof nums};
    redisReply *rep = NULL;
    ee_status st = run_script(r, SC_GET, 1, 2, args, lens, &rep);
    if (st != EE_OK)
        return st;
    *lost = is_lost(rep);
    int64_t v[3];
    if (*lost || rep->type == REDIS_REPLY_INTEGER) {
        bool missing = !*lost && rep->integer == SEED;
        freeReplyObject(rep);
        if (!*lost && !missing)
            return ee__error(EE_EUPSTREAM, "redis counters at %s:%d: unexpected script reply",
                             r->host, r->port);
        return missing ? get_durable(r, key, now, out) : EE_OK;
    }
    if (!reply_nums(rep, 3, v))
        return bad_reply(r, rep);
    freeReplyObject(rep);
    out->value = v[0];
    out->committed = v[1];
    out->window_end_ms = v[2];
    return EE_OK;
}

/* While admissions are closed after a loss, and while a key is not read
 * back yet, a counter reads as its durable usage (what the rebuild gives
 * it). */
static ee_status r_get(void *ctx, const char *key, int64_t now, ee_counter_result *out)
{
    rds *r = ctx;
    bool lost = true;
    ee_status st = EE_OK;
    for (int round = 0; st == EE_OK && lost && round < 3; round++) {
        int64_t epoch;
        if (round > 0)
            atomic_store(&r->epoch, 0);
        st = epoch_of(r, now, &epoch);
        if (st == EE_EBUSY)
            return get_durable(r, key, now, out);
        if (st == EE_OK)
            st = get_once(r, key, now, epoch, out, &lost);
    }
    if (st == EE_OK && lost)
        st = ee__error(EE_EBUSY, "redis counters at %s:%d: the counters kept changing while "
                                 "being rebuilt; try again", r->host, r->port);
    return st;
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
    atomic_init(&r->epoch, 0);
    atomic_init(&r->recovery_ms, DEFAULT_RECOVERY_MS);
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

void ee__counters_redis_durable(void *ctx, ee_counters *durable)
{
    rds *r = ctx;
    r->durable = durable;
}

void ee__counters_redis_recovery(void *ctx, int64_t ms)
{
    rds *r = ctx;
    int64_t cur = atomic_load(&r->recovery_ms);
    /* the longest lease any caller uses */
    while (ms > cur && !atomic_compare_exchange_weak(&r->recovery_ms, &cur, ms))
        ;
}
