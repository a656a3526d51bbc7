/*
 * bench_quota: the whole pre-run check - ONE admission deciding the
 * per-user rate limit, the workspace concurrency slot and the
 * organisation's predictions quota together (ee_quota_admit_fast) - on each
 * counters backend, beside a baseline measured in the same run
 * (DESIGN.md "Tests and benchmarks"):
 *
 *   memory          baseline "hash.atomic_add x3": the counters bench's bare
 *                   minimum - per check, three key strings looked up in a
 *                   plain hash table and an atomic add on each counter found
 *   storage-sqlite  baseline "sqlite.update": one raw
 *                   UPDATE counters SET v = v + 1 WHERE k = ? step (WAL, NORMAL)
 *   redis           baseline "redis.ping": one raw PING round trip with hiredis
 *                   (only when EE_BENCH_REDIS_URI is set; else a "skipped" line)
 *
 * Workload: users each in their own workspace, of one organisation; plan
 * (its own plans.json, see data_dir()) with 50 runs per user per hour, 10
 * slots per workspace and 10^12 predictions, so nothing is refused. The
 * engine's clock is injected and moves so that each user admits 25 times
 * per hour (half the limit): the rate limit's one-hour leases turn over as
 * in production. Two memory runs: 16 users (hot caches) and 4096 users
 * (cold: each user's counters and subject leave the CPU caches between its
 * admissions). Admissions are timed in batches of 16 (consecutive users);
 * the tickets are finished outside the timed part ("quota.admit_finish"
 * times both).
 *
 * --quick keeps the whole run under ~15 s; --only memory|storage-sqlite|redis
 * runs one backend. Never fails: errors become "error" lines.
 */
#include <hiredis/hiredis.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench_util.h"
#include "counters/counters_internal.h"
#include "execengine/counters.h"
#include "execengine/engine.h"
#include "execengine/principal.h"
#include "execengine/quota.h"

#define USERS 4096 /* subjects: each user in its own workspace */
#define BATCH 16  /* admissions timed together */
#define T0 INT64_C(1704067200000)

static int64_t fake_now = T0;

static int64_t bench_clock(void *payload)
{
    (void)payload;
    return fake_now;
}

static void line_error(const char *bench, const char *backend, const char *what)
{
    char msg[512];
    snprintf(msg, sizeof msg, "%s", ee_error_last_message());
    for (char *c = msg; *c; c++)
        if (*c == '"' || *c == '\\')
            *c = '\'';
    printf("{\"bench\": \"%s\", \"backend\": \"%s\", \"error\": \"%s: %s\"}\n", bench, backend,
           what, msg);
    fflush(stdout);
}

static void line_skipped(const char *backend, const char *why)
{
    printf("{\"bench\": \"quota.admit\", \"backend\": \"%s\", \"skipped\": \"%s\"}\n", backend,
           why);
    fflush(stdout);
}

/* The bench compresses time (the injected clock moves seconds per
 * admission), so a 30 s plan cache would be re-read every few admissions
 * where in real time it is every ~300 M. Its data dir links the source
 * data files and has its own plans.json with a one-day cacheMs. */
static char bench_dir[256];

static const char *data_dir(void)
{
    if (bench_dir[0] != '\0')
        return bench_dir;
    snprintf(bench_dir, sizeof bench_dir, "/tmp/ee-bench-quota-data-%ld", (long)getpid());
    mkdir(bench_dir, 0700);
    const char *files[] = {"integrations.json", "prices.json", "cost_rules.json",
                           "categories.json", "gateway.json"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char from[1200], to[400];
        snprintf(from, sizeof from, "%s/%s", bench_data_dir(), files[i]);
        snprintf(to, sizeof to, "%s/%s", bench_dir, files[i]);
        if (access(from, R_OK) == 0 && symlink(from, to) != 0)
            perror("symlink");
    }
    char path[400];
    snprintf(path, sizeof path, "%s/plans.json", bench_dir);
    FILE *f = fopen(path, "w");
    if (f != NULL) {
        fputs("{\"version\": 1, \"defaultPlan\": \"bench\", \"cacheMs\": 86400000, "
              "\"plans\": [{\"name\": \"bench\", \"predictionsPerPeriod\": 1000000000000, "
              "\"executionsPerUserPerHour\": 50, \"concurrentExecutionsPerWorkspace\": 10}]}",
              f);
        fclose(f);
    }
    return bench_dir;
}

static void data_dir_remove(void)
{
    if (bench_dir[0] == '\0')
        return;
    const char *files[] = {"integrations.json", "prices.json", "cost_rules.json",
                           "categories.json", "gateway.json", "plans.json"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char p[400];
        snprintf(p, sizeof p, "%s/%s", bench_dir, files[i]);
        unlink(p);
    }
    rmdir(bench_dir);
}

/* ---- ours ------------------------------------------------------------------------ */

typedef struct ours {
    ee_engine *e;
    ee_principal *p[USERS];
    ee_quota_subject *s[USERS];
    ee_quota_ticket t[BATCH];
    long next;
    long users; /* subjects in rotation */
    int64_t step; /* clock per admission */
} ours;

static bool ours_open(ours *o, const char *storage_uri, const char *counters_uri)
{
    memset(o, 0, sizeof *o);
    ee_config *cfg = NULL;
    fake_now = T0;
    bool ok = ee_config_new(&cfg) == EE_OK &&
              ee_config_set(cfg, "API_KEY_ENCRYPTION_SECRET",
                            "bench-secret-0123456789abcdef0123456789") == EE_OK &&
              ee_config_set(cfg, "EE_DATA_DIR", data_dir()) == EE_OK &&
              ee_config_set(cfg, "EE_STORAGE_URI", storage_uri) == EE_OK &&
              ee_config_set(cfg, "EE_COUNTERS_URI", counters_uri) == EE_OK &&
              ee_config_set_clock(cfg, bench_clock, NULL) == EE_OK &&
              ee_engine_open(&o->e, cfg) == EE_OK;
    ee_config_free(cfg);
    if (!ok)
        return false;
    char org[64], sub[256];
    snprintf(org, sizeof org, "bench-org-%ld-%ld", (long)getpid(), (long)bench_now_ns() % 100000);
    snprintf(sub, sizeof sub, "{\"orgId\": \"%s\", \"plan\": \"bench\", \"periodStart\": %lld}",
             org, (long long)T0);
    if (ee_quota_subscription_put(o->e, sub, NULL) != EE_OK)
        return false;
    for (int i = 0; i < USERS; i++) {
        char ws[96], user[96];
        snprintf(ws, sizeof ws, "%s-ws%04d", org, i);
        snprintf(user, sizeof user, "%s-u%04d", org, i);
        if (ee_principal_new(&o->p[i], ws, user, org) != EE_OK ||
            ee_quota_subject_new(&o->s[i], o->e, o->p[i]) != EE_OK)
            return false;
    }
    return true;
}

static void ours_close(ours *o)
{
    for (int i = 0; i < USERS; i++) {
        ee_quota_subject_free(o->s[i]);
        ee_principal_free(o->p[i]);
    }
    ee_engine_close(o->e);
}

/* A finish is fine, also when the period ended between admission and
 * finish (the injected clock crosses period ends: that run is not counted). */
static bool finish_ok(ee_engine *e, ee_quota_ticket *t)
{
    ee_status st = ee_quota_finish(e, t, 1, 0);
    return st == EE_OK || st == EE_ENOTFOUND;
}

/* One batch: BATCH admissions of consecutive users timed; finishing them
 * untimed unless `with_finish`. */
static bool ours_batch(ours *o, bool with_finish, uint64_t *ns)
{
    long base = o->next;
    o->next = (o->next + BATCH) % o->users;
    uint64_t t0 = bench_now_ns();
    for (int i = 0; i < BATCH; i++) {
        fake_now += o->step;
        if (ee_quota_admit_fast(o->e, o->s[base + i], 0, &o->t[i]) != EE_OK)
            return false;
        if (with_finish && !finish_ok(o->e, &o->t[i]))
            return false;
    }
    *ns = bench_now_ns() - t0;
    if (!with_finish)
        for (int i = 0; i < BATCH; i++)
            if (!finish_ok(o->e, &o->t[i]))
                return false;
    return true;
}

/* ---- memory baseline: 3 keyed atomic adds on a plain hash table ----------------------- */

typedef struct plain_entry {
    const char *key;
    size_t len;
    uint64_t hash;
    _Atomic int64_t v;
} plain_entry;

#define PLAIN_SLOTS 16384
typedef struct plain {
    plain_entry slots[PLAIN_SLOTS];
    char keys[USERS][3][64];
    long next;
    long users;
} plain;

static plain_entry *plain_find(plain *p, const char *key)
{
    size_t len = strlen(key);
    uint64_t h = ee__counters_key_hash(key, len);
    for (size_t i = h & (PLAIN_SLOTS - 1);; i = (i + 1) & (PLAIN_SLOTS - 1)) {
        plain_entry *e = &p->slots[i];
        if (e->key == NULL) {
            e->key = key;
            e->len = len;
            e->hash = h;
            return e;
        }
        if (e->hash == h && e->len == len && memcmp(e->key, key, len) == 0)
            return e;
    }
}

static uint64_t plain_batch(plain *p)
{
    long base = p->next;
    p->next = (p->next + BATCH) % p->users;
    uint64_t t0 = bench_now_ns();
    for (int i = 0; i < BATCH; i++)
        for (int k = 0; k < 3; k++)
            atomic_fetch_add(&plain_find(p, p->keys[base + i][k])->v, 1);
    return bench_now_ns() - t0;
}

/* `users` subjects in rotation, each at half its limit of 50 per hour. */
static void bench_memory(bool quick, long users)
{
    static ours o;
    if (!ours_open(&o, "memory:", "memory:")) {
        line_error("quota.admit", "memory", "setup");
        ours_close(&o);
        return;
    }
    o.users = users;
    o.step = INT64_C(3600000) / 25 / users; /* each user 25 times per hour */
    static plain p;
    memset(&p, 0, sizeof p);
    p.users = users;
    for (int i = 0; i < USERS; i++) {
        snprintf(p.keys[i][0], 64, "eeq/pred/bench-org");
        snprintf(p.keys[i][1], 64, "eeq/rate/bench-org-1234-5678-u%04d", i);
        snprintf(p.keys[i][2], 64, "eeq/conc/bench-org-1234-5678-ws%04d", i);
    }
    long batches = quick ? 60000 : 300000; /* x BATCH admissions */
    int rounds = 10;
    uint64_t *la = malloc((size_t)batches * sizeof *la), *lb = malloc((size_t)batches * sizeof *lb);
    uint64_t *lf = malloc((size_t)(batches / 4) * sizeof *lf);
    uint64_t ta = 0, tb = 0, tf = 0;
    long na = 0, nb = 0, nf = 0;
    bool ok = la != NULL && lb != NULL && lf != NULL;
    /* warm: keys exist, slots allocated, the first hour of leases in place */
    for (long k = 0; ok && k < 30000; k++) {
        uint64_t ns = 0;
        ok = ours_batch(&o, false, &ns);
        plain_batch(&p);
    }
    for (int r = 0; ok && r < rounds; r++) {
        for (long k = 0; ok && k < batches / rounds; k++) {
            uint64_t ns = 0;
            ok = ours_batch(&o, false, &ns);
            la[na++] = ns / BATCH;
            ta += ns;
        }
        for (long k = 0; k < batches / rounds; k++) {
            uint64_t ns = plain_batch(&p);
            lb[nb++] = ns / BATCH;
            tb += ns;
        }
        for (long k = 0; ok && k < batches / rounds / 4; k++) {
            uint64_t ns = 0;
            ok = ours_batch(&o, true, &ns);
            lf[nf++] = ns / BATCH;
            tf += ns;
        }
    }
    if (!ok) {
        line_error("quota.admit", "memory", "admission");
    } else {
        uint64_t bp50 = bench_quantile(lb, (size_t)nb, 0.5);
        char extra[160];
        snprintf(extra, sizeof extra,
                 "\"checks\": \"rate+concurrency+predictions\", \"users\": %ld, "
                 "\"admits_per_s_measured\": %.0f",
                 users, (double)na * BATCH * 1e9 / (double)(ta ? ta : 1));
        bench_report("quota.admit", "memory", extra, bench_quantile(la, (size_t)na, 0.5),
                     bench_quantile(la, (size_t)na, 0.99), "hash.atomic_add_x3", bp50);
        snprintf(extra, sizeof extra, "\"users\": %ld, \"admit_finish_per_s_measured\": %.0f",
                 users, (double)nf * BATCH * 1e9 / (double)(tf ? tf : 1));
        bench_report("quota.admit_finish", "memory", extra, bench_quantile(lf, (size_t)nf, 0.5),
                     bench_quantile(lf, (size_t)nf, 0.99), "hash.atomic_add_x3", bp50);
    }
    (void)tb;
    free(la);
    free(lb);
    free(lf);
    ours_close(&o);
}

/* ---- storage-sqlite ---------------------------------------------------------------- */

static void bench_sqlite(bool quick)
{
    char path[128], raw[128], uri[160];
    snprintf(path, sizeof path, "/tmp/ee-bench-quota-%ld.db", (long)getpid());
    snprintf(raw, sizeof raw, "/tmp/ee-bench-quota-raw-%ld.db", (long)getpid());
    snprintf(uri, sizeof uri, "sqlite://%s", path);
    ours o;
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    bool ok = ours_open(&o, uri, "storage:");
    if (!ok) {
        line_error("quota.admit", "storage-sqlite", "setup");
        goto out;
    }
    ok = sqlite3_open(raw, &db) == SQLITE_OK &&
         sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                          "CREATE TABLE IF NOT EXISTS counters (k TEXT PRIMARY KEY, v INTEGER);"
                          "INSERT OR IGNORE INTO counters VALUES ('k', 0);",
                      NULL, NULL, NULL) == SQLITE_OK &&
         sqlite3_prepare_v2(db, "UPDATE counters SET v = v + 1 WHERE k = 'k'", -1, &st, NULL) ==
             SQLITE_OK;
    if (!ok) {
        printf("{\"bench\": \"quota.admit\", \"backend\": \"storage-sqlite\", \"error\": "
               "\"baseline setup\"}\n");
        goto out;
    }
    long n = quick ? 400 : 3000;
    uint64_t *la = malloc((size_t)n * sizeof *la), *lb = malloc((size_t)n * sizeof *lb);
    long na = 0, nb = 0;
    for (long k = 0; ok && la && lb && k < n / BATCH; k++) {
        for (int i = 0; ok && i < BATCH; i++) {
            fake_now += INT64_C(3600000) / 25 / USERS;
            ee_quota_subject *subj = o.s[(k * BATCH + i) % USERS];
            uint64_t t0 = bench_now_ns();
            ok = ee_quota_admit_fast(o.e, subj, 0, &o.t[i]) == EE_OK;
            la[na++] = bench_now_ns() - t0;
            ok = ok && finish_ok(o.e, &o.t[i]);
            t0 = bench_now_ns();
            ok = ok && sqlite3_step(st) == SQLITE_DONE;
            sqlite3_reset(st);
            lb[nb++] = bench_now_ns() - t0;
        }
    }
    if (!ok || la == NULL || lb == NULL)
        line_error("quota.admit", "storage-sqlite", "admission");
    else
        bench_report("quota.admit", "storage-sqlite",
                     "\"checks\": \"rate+concurrency+predictions\"",
                     bench_quantile(la, (size_t)na, 0.5), bench_quantile(la, (size_t)na, 0.99),
                     "sqlite.update", bench_quantile(lb, (size_t)nb, 0.5));
    free(la);
    free(lb);
out:
    if (st != NULL)
        sqlite3_finalize(st);
    if (db != NULL)
        sqlite3_close(db);
    ours_close(&o);
    unlink(path);
    unlink(raw);
    char side[160];
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-wal", raw);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", raw);
    unlink(side);
}

/* ---- redis ------------------------------------------------------------------------- */

static void bench_redis(bool quick)
{
    const char *uri = getenv("EE_BENCH_REDIS_URI");
    if (uri == NULL || uri[0] == '\0') {
        line_skipped("redis", "EE_BENCH_REDIS_URI is not set");
        return;
    }
    char host[256] = "127.0.0.1";
    int port = 6379;
    const char *h = strstr(uri, "://");
    h = h ? h + 3 : uri;
    const char *at = strchr(h, '@');
    if (at != NULL)
        h = at + 1;
    size_t hl = strcspn(h, ":/");
    if (hl > 0 && hl < sizeof host) {
        memcpy(host, h, hl);
        host[hl] = '\0';
    }
    if (h[hl] == ':')
        port = atoi(h + hl + 1);
    struct timeval tv = {2, 0};
    redisContext *rc = redisConnectWithTimeout(host, port, tv);
    ours o;
    bool ok = rc != NULL && rc->err == 0;
    if (ok && at != NULL) {
        /* the password is between ':' and '@' of the userinfo */
        const char *ui = strstr(uri, "://") + 3, *colon = memchr(ui, ':', (size_t)(at - ui));
        if (colon != NULL) {
            redisReply *r = redisCommand(rc, "AUTH %b", colon + 1, (size_t)(at - colon - 1));
            ok = r != NULL && r->type != REDIS_REPLY_ERROR;
            freeReplyObject(r);
        }
    }
    if (!ok) {
        printf("{\"bench\": \"quota.admit\", \"backend\": \"redis\", \"error\": \"cannot reach "
               "the baseline's Redis\"}\n");
        if (rc)
            redisFree(rc);
        return;
    }
    if (!ours_open(&o, "memory:", uri)) {
        line_error("quota.admit", "redis", "setup");
        ours_close(&o);
        redisFree(rc);
        return;
    }
    long n = quick ? 1000 : 8000;
    uint64_t *la = malloc((size_t)n * sizeof *la), *lb = malloc((size_t)n * sizeof *lb);
    long na = 0, nb = 0;
    for (long k = 0; ok && la && lb && k < n / BATCH; k++) {
        for (int i = 0; ok && i < BATCH; i++) {
            fake_now += INT64_C(3600000) / 25 / USERS;
            ee_quota_subject *subj = o.s[(k * BATCH + i) % USERS];
            uint64_t t0 = bench_now_ns();
            ok = ee_quota_admit_fast(o.e, subj, 0, &o.t[i]) == EE_OK;
            la[na++] = bench_now_ns() - t0;
            ok = ok && finish_ok(o.e, &o.t[i]);
            t0 = bench_now_ns();
            redisReply *r = redisCommand(rc, "PING");
            lb[nb++] = bench_now_ns() - t0;
            ok = ok && r != NULL;
            freeReplyObject(r);
        }
    }
    if (!ok || la == NULL || lb == NULL)
        line_error("quota.admit", "redis", "admission");
    else
        bench_report("quota.admit", "redis",
                     "\"checks\": \"rate+concurrency+predictions\", \"script_calls\": 1",
                     bench_quantile(la, (size_t)na, 0.5), bench_quantile(la, (size_t)na, 0.99),
                     "redis.ping", bench_quantile(lb, (size_t)nb, 0.5));
    free(la);
    free(lb);
    ours_close(&o);
    redisFree(rc);
}

/* Whether backend `name` runs: all of them, or the one after --only. */
static bool wanted(int argc, char **argv, const char *name)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "--only") == 0)
            return strcmp(argv[i + 1], name) == 0;
    return true;
}

int main(int argc, char **argv)
{
    bool quick = bench_quick(argc, argv);
    if (wanted(argc, argv, "memory")) {
        bench_memory(quick, BATCH);
        bench_memory(quick, USERS);
    }
    if (wanted(argc, argv, "storage-sqlite"))
        bench_sqlite(quick);
    if (wanted(argc, argv, "redis"))
        bench_redis(quick);
    data_dir_remove();
    return 0;
}
