/*
 * Quota admission on the real Redis the test fixture started: exactly 10 of
 * 500 concurrent admissions from 4 processes get the 10 predictions left,
 * where seed 2's check-then-increment lets more through. Storage is memory:
 * per process (each stores the plan itself); the counters are shared.
 */
#include "../unit/quota/quota_race.h"

#include "test_servers.h"

Test(quota_redis, exactly_10_of_500_admissions_from_4_processes)
{
    qr_run("memory:", ee_test_server_uri("EE_TEST_REDIS_URI"), true);
}

Test(quota_redis, a_refused_admission_changes_no_counter_and_a_lost_slot_comes_back)
{
    qt_set_now(QT_T0);
    ee_engine *e = qt_engine_kv("memory:", ee_test_server_uri("EE_TEST_REDIS_URI"), NULL);
    char org[64];
    snprintf(org, sizeof org, "org-rr-%d-%ld", (int)getpid(), (long)time(NULL));
    qt_plan(e, "{\"name\": \"one\", \"predictionsPerPeriod\": 5, "
               "\"executionsPerUserPerHour\": -1, \"concurrentExecutionsPerWorkspace\": 1}");
    qt_subscribe(e, org, "one", QT_T0, NULL);
    char ws[80];
    snprintf(ws, sizeof ws, "ws-%s", org);
    ee_principal *p = qt_principal(ws, "u-rr", org);
    ee_quota_subject *s = qt_subject(e, p);
    ee_quota_ticket a, b;
    cr_assert_eq(ee_quota_admit_fast(e, s, 0, &a), EE_OK, "%s", ee_error_last_message());
    int64_t pred = qt_counter(e, "pred", org), conc = qt_counter(e, "conc", ws);
    cr_assert_eq(ee_quota_admit_fast(e, s, 0, &b), EE_ECONCURRENCY);
    cr_expect_eq(qt_counter(e, "pred", org), pred);
    cr_expect_eq(qt_counter(e, "conc", ws), conc);
    /* The holder "crashed": after runLeaseMs the slot and its prediction are back. */
    qt_advance(15 * 60000);
    cr_expect_eq(qt_counter(e, "conc", ws), 0);
    cr_expect_eq(qt_counter(e, "pred", org), 0);
    cr_assert_eq(ee_quota_admit_fast(e, s, 0, &b), EE_OK, "%s", ee_error_last_message());
    cr_assert_eq(ee_quota_finish(e, &b, 1, 0), EE_OK);
    cr_expect_eq(qt_counter(e, "pred", org), 1);
    ee_quota_subject_free(s);
    ee_principal_free(p);
    ee_engine_close(e);
}

/* ee_quota_storage_commit of an unknown or released reservation is
 * EE_ENOTFOUND on Redis too, also when the sizes are equal (it answered
 * EE_OK without asking the counters). */
Test(quota_redis, storage_commit_of_an_unknown_reservation_is_not_found)
{
    qt_set_now(QT_T0);
    ee_engine *e = qt_engine_kv("memory:", ee_test_server_uri("EE_TEST_REDIS_URI"), NULL);
    char org[64];
    snprintf(org, sizeof org, "org-rsc-%d-%ld", (int)getpid(), (long)time(NULL));
    qt_plan(e, "{\"name\": \"bytes\", \"predictionsPerPeriod\": 5, \"storageBytes\": 1000}");
    qt_subscribe(e, org, "bytes", QT_T0, NULL);
    ee_principal *p = qt_principal("ws-rsc", "u-rsc", org);
    uint64_t id = 0, out = 7;
    cr_assert_eq(ee_quota_storage_reserve(e, p, 100, &id), EE_OK, "%s", ee_error_last_message());
    cr_expect_eq(ee_quota_storage_commit(e, p, id, 100, 100, &out), EE_OK, "%s",
                 ee_error_last_message());
    cr_expect_eq(out, id);
    cr_expect_eq(ee_quota_storage_commit(e, p, id + 1000, 100, 100, &out), EE_ENOTFOUND);
    cr_expect_eq(out, 0);
    cr_assert_eq(ee_quota_storage_release(e, p, id), EE_OK, "%s", ee_error_last_message());
    cr_expect_eq(ee_quota_storage_commit(e, p, id, 100, 100, &out), EE_ENOTFOUND);
    ee_principal_free(p);
    ee_engine_close(e);
}

/* ---- Redis that comes back empty ------------------------------------------------------------ */

#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

/* A private redis-server on a free loopback port (so the other tests'
 * Redis is not disturbed), without persistence like the fixture's: killed
 * with SIGKILL and started again on the same port, it comes back empty. */
typedef struct {
    int port;
    pid_t pid;
    char dir[64];
    char uri[64];
} loss_redis;

static void loss_redis_start(loss_redis *r)
{
    char port[16], log[96];
    snprintf(port, sizeof port, "%d", r->port);
    snprintf(log, sizeof log, "%s/redis.log", r->dir);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* gone with the test, even one that failed */
        execlp("redis-server", "redis-server", "--bind", "127.0.0.1", "--port", port, "--save",
               "", "--appendonly", "no", "--dir", r->dir, "--logfile", log, (char *)NULL);
        _exit(127);
    }
    r->pid = pid;
    for (int i = 0; i < 200; i++) {
        redisContext *c = redisConnect("127.0.0.1", r->port);
        bool up = c != NULL && c->err == 0;
        if (up) {
            redisReply *rep = redisCommand(c, "PING");
            up = rep != NULL && rep->type == REDIS_REPLY_STATUS;
            freeReplyObject(rep);
        }
        redisFree(c);
        if (up)
            return;
        usleep(20000);
    }
    cr_assert_fail("redis-server on port %d did not start", r->port);
}

static void loss_redis_open(loss_redis *r)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    cr_assert(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
              getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    r->port = ntohs(a.sin_port);
    close(fd);
    snprintf(r->dir, sizeof r->dir, "/tmp/ee-loss-XXXXXX");
    cr_assert(mkdtemp(r->dir) != NULL);
    snprintf(r->uri, sizeof r->uri, "redis://127.0.0.1:%d/0", r->port);
    loss_redis_start(r);
}

/* SIGKILL (no chance to save anything: it saves nothing anyway) and start
 * again on the same port: empty. */
static void loss_redis_restart(loss_redis *r)
{
    cr_assert_eq(kill(r->pid, SIGKILL), 0);
    cr_assert_eq(waitpid(r->pid, NULL, 0), r->pid);
    loss_redis_start(r);
}

static void loss_redis_stop(loss_redis *r)
{
    kill(r->pid, SIGKILL);
    waitpid(r->pid, NULL, 0);
    char cmd[96];
    snprintf(cmd, sizeof cmd, "rm -rf %s", r->dir);
    cr_expect_eq(system(cmd), 0);
}

/* An engine over a sqlite storage (where durable period usage lives) in the
 * private Redis's folder, counting on that Redis; the plan gives 1000
 * predictions a period and limits nothing else. */
static ee_engine *loss_engine(loss_redis *r, const char *org)
{
    char storage[128];
    snprintf(storage, sizeof storage, "sqlite://%s/store.db", r->dir);
    ee_engine *e = qt_engine_kv(storage, r->uri, NULL);
    qt_plan(e, "{\"name\": \"k\", \"predictionsPerPeriod\": 1000, "
               "\"executionsPerUserPerHour\": -1, \"concurrentExecutionsPerWorkspace\": -1}");
    qt_subscribe(e, org, "k", QT_T0, NULL);
    return e;
}

typedef struct {
    ee_engine *e;
    ee_principal *p;
    atomic_int *stop;
    int admitted, busy, lost_finish;
    ee_status lost_st;
} burst_arg;

/* Admit and finish (successfully) until told to stop, counting the
 * admissions whose commit was taken, those whose finish failed for good,
 * and every refusal because the counters were lost. */
static void *burst(void *arg)
{
    burst_arg *b = arg;
    ee_quota_subject *s = NULL;
    while (ee_quota_subject_new(&s, b->e, b->p) != EE_OK && !atomic_load(b->stop))
        usleep(1000);
    while (s != NULL && !atomic_load(b->stop)) {
        ee_quota_ticket t;
        ee_status st = ee_quota_admit_fast(b->e, s, 0, &t);
        if (st == EE_OK) {
            /* A finish whose outcome is unknown (Redis died under it) is
             * tried again from the ticket's JSON, as a client would. */
            char *json = NULL;
            ee_quota_ticket_json(&t, &json);
            ee_status f = ee_quota_finish(b->e, &t, 1, 0);
            for (int i = 0; f == EE_ENETWORK && json != NULL && i < 50; i++) {
                usleep(10000);
                ee_quota_ticket again;
                if (ee_quota_ticket_from_json(json, &again) == EE_OK)
                    f = ee_quota_finish(b->e, &again, 1, 0);
            }
            ee_free(json);
            if (f == EE_OK)
                b->admitted++; /* committed */
            else
                b->lost_finish++;
            if (f != EE_OK)
                b->lost_st = f;
        } else if (st == EE_EBUSY) {
            b->busy++;
        }
        usleep(200);
    }
    ee_quota_subject_free(s);
    return NULL;
}

/* Redis killed with SIGKILL and started again (empty) while 4 threads
 * admit at 990/1000: no more than the 10 left are ever admitted (before,
 * the empty counters admitted up to 1000 more). */
Test(quota_redis_loss, redis_killed_and_restarted_mid_burst_admits_no_more_than_the_limit,
     .timeout = 120)
{
    qt_set_now(QT_T0);
    loss_redis r;
    loss_redis_open(&r);
    const char *org = "org-burst";
    ee_engine *e = loss_engine(&r, org);
    ee_principal *p = qt_principal("ws-burst", "u-burst", org);
    ee_quota_subject *s = qt_subject(e, p);
    qt_use(e, s, 990);
    cr_assert_eq(qt_counter(e, "pred", org), 990);
    atomic_int stop = 0;
    burst_arg b[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        b[i] = (burst_arg){e, p, &stop, 0, 0, 0, EE_OK};
        cr_assert_eq(pthread_create(&th[i], NULL, burst, &b[i]), 0);
    }
    usleep(2000); /* mid-burst: some of the 10 are taken, maybe not all */
    loss_redis_restart(&r);
    usleep(300000);
    atomic_store(&stop, 1);
    int admitted = 0, busy = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        admitted += b[i].admitted;
        busy += b[i].busy;
        if (b[i].lost_finish)
            fprintf(stderr, "thread %d: %d finishes failed (%s)\n", i, b[i].lost_finish,
                    ee_status_name(b[i].lost_st));
    }
    int unfinished = 0;
    for (int i = 0; i < 4; i++)
        unfinished += b[i].lost_finish;
    cr_expect_eq(unfinished, 0, "%d finishes failed for good", unfinished);
    cr_expect_leq(admitted, 10, "%d admitted at 990/1000 across the loss", admitted);
    cr_expect_gt(busy, 0, "no admission was refused as lost");
    /* Also once admissions reopen: the rebuilt counters hold every commit. */
    qt_advance(15 * 60000 + 1);
    ee_quota_ticket t;
    int more = 0;
    ee_status st;
    while ((st = ee_quota_admit_fast(e, s, 0, &t)) == EE_OK && more < 1000) {
        more++;
        cr_assert_eq(ee_quota_finish(e, &t, 1, 0), EE_OK, "%s", ee_error_last_message());
    }
    cr_expect_eq(st, EE_EQUOTA, "%s: %s", ee_status_name(st), ee_error_last_message());
    cr_expect_leq(admitted + more, 10, "%d + %d admitted at 990/1000", admitted, more);
    ee_quota_subject_free(s);
    ee_principal_free(p);
    ee_engine_close(e);
    loss_redis_stop(&r);
}

/* After the loss admission fails closed with EE_EBUSY and a message saying
 * so; a late finish of a reservation from before the loss is counted once
 * (also when repeated from the ticket's JSON); after the lease window the
 * counters are rebuilt from the storage and admission resumes with exactly
 * what is left. */
Test(quota_redis_loss, admission_closes_after_the_loss_and_resumes_with_the_right_quota,
     .timeout = 60)
{
    qt_set_now(QT_T0);
    loss_redis r;
    loss_redis_open(&r);
    const char *org = "org-closed";
    ee_engine *e = loss_engine(&r, org);
    ee_principal *p = qt_principal("ws-closed", "u-closed", org);
    ee_quota_subject *s = qt_subject(e, p);
    qt_use(e, s, 990);
    ee_quota_ticket held[3];
    for (int i = 0; i < 3; i++)
        cr_assert_eq(ee_quota_admit_fast(e, s, 0, &held[i]), EE_OK, "%s",
                     ee_error_last_message());
    char *json = NULL;
    cr_assert_eq(ee_quota_ticket_json(&held[0], &json), EE_OK);
    loss_redis_restart(&r);
    qt_advance(1000);

    ee_quota_ticket t;
    cr_assert_eq(ee_quota_admit_fast(e, s, 0, &t), EE_EBUSY, "%s",
                 ee_error_last_message());
    cr_expect(strstr(ee_error_last_message(), "lost") != NULL, "%s", ee_error_last_message());
    /* Late finishes of the 3 held reservations: counted (durably) once. */
    for (int i = 0; i < 3; i++)
        cr_expect_eq(ee_quota_finish(e, &held[i], 1, 0), EE_OK, "%s", ee_error_last_message());
    ee_quota_ticket again;
    cr_assert_eq(ee_quota_ticket_from_json(json, &again), EE_OK);
    ee_free(json);
    cr_expect_neq(ee_quota_finish(e, &again, 1, 0), EE_OK);
    cr_expect_eq(qt_counter(e, "pred", org), 993);
    /* Still closed until a whole lease passed since the loss was seen. */
    qt_advance(14 * 60000);
    cr_expect_eq(ee_quota_admit_fast(e, s, 0, &t), EE_EBUSY);
    qt_advance(60000);
    /* A second engine (as another process would) on the same storage and
     * Redis admits too: the key is read back once between them. */
    char storage[128];
    snprintf(storage, sizeof storage, "sqlite://%s/store.db", r.dir);
    ee_engine *e2 = qt_engine_kv(storage, r.uri, NULL);
    ee_quota_subject *s2 = qt_subject(e2, p);
    int more = 0;
    ee_status st;
    for (;;) {
        bool second = more % 2 == 1;
        ee_engine *en = second ? e2 : e;
        if ((st = ee_quota_admit_fast(en, second ? s2 : s, 0, &t)) != EE_OK || more >= 1000)
            break;
        more++;
        cr_assert_eq(ee_quota_finish(en, &t, 1, 0), EE_OK, "%s", ee_error_last_message());
    }
    cr_expect_eq(st, EE_EQUOTA, "%s: %s", ee_status_name(st), ee_error_last_message());
    cr_expect_eq(more, 7, "%d admitted after the rebuild, 7 were left", more);
    cr_expect_eq(qt_counter(e, "pred", org), 1000);
    cr_expect_eq(qt_counter(e2, "pred", org), 1000);
    ee_quota_subject_free(s2);
    ee_engine_close(e2);
    ee_quota_subject_free(s);
    ee_principal_free(p);
    ee_engine_close(e);
    loss_redis_stop(&r);
}

/* Stored bytes on redis counters over a database live in the durable
 * counters: reserved, committed and released on the same ones. */
Test(quota_redis_loss, stored_bytes_are_reserved_and_released_on_the_same_counters)
{
    qt_set_now(QT_T0);
    loss_redis r;
    loss_redis_open(&r);
    const char *org = "org-bytes";
    ee_engine *e = loss_engine(&r, org);
    qt_plan(e, "{\"name\": \"b\", \"predictionsPerPeriod\": 5, \"storageBytes\": 1000}");
    qt_subscribe(e, org, "b", QT_T0, NULL);
    ee_principal *p = qt_principal("ws-bytes", "u-bytes", org);
    uint64_t id = 0, out = 0;
    cr_assert_eq(ee_quota_storage_reserve(e, p, 600, &id), EE_OK, "%s", ee_error_last_message());
    cr_assert_eq(ee_quota_storage_commit(e, p, id, 600, 600, &out), EE_OK, "%s",
                 ee_error_last_message());
    cr_expect_eq(ee_quota_storage_reserve(e, p, 600, &id), EE_EQUOTA);
    cr_expect_eq(ee_quota_storage_release(e, p, out), EE_OK, "%s", ee_error_last_message());
    cr_expect_eq(ee_quota_storage_reserve(e, p, 600, &id), EE_OK, "%s",
                 ee_error_last_message());
    ee_principal_free(p);
    ee_engine_close(e);
    loss_redis_stop(&r);
}

/* The id sequence starts again with an empty Redis: the new epoch's ids
 * begin past every id of the one before, so a finish of a reservation from
 * before the loss never finishes a new one (it would have the same id). */
Test(quota_redis_loss, ids_of_the_new_epoch_never_repeat_those_of_the_lost_one)
{
    loss_redis r;
    loss_redis_open(&r);
    char storage[128];
    snprintf(storage, sizeof storage, "sqlite://%s/store.db", r.dir);
    ee_counters *c = NULL;
    cr_assert_eq(ee_counters_open_uri(&c, r.uri, storage), EE_OK, "%s", ee_error_last_message());
    ee_counter_req q = {"k-ids", 1, 5, 0, 0};
    ee_counter_result a, b;
    int g = 0;
    cr_assert_eq(ee_counters_reserve(c, &q, 60000, QT_T0, &a, &g), EE_OK, "%s",
                 ee_error_last_message());
    cr_assert_eq(g, 1);
    loss_redis_restart(&r);
    cr_expect_eq(ee_counters_reserve(c, &q, 60000, QT_T0 + 1000, &b, &g), EE_EBUSY);
    /* A release from before the loss has nothing left to give back; a
     * renew cannot extend a lease nobody knows. */
    cr_expect_eq(ee_counters_renew(c, q.key, a.resv_id, 60000, QT_T0 + 2000), EE_ENOTFOUND);
    int64_t later = QT_T0 + 1000 + 15 * 60000;
    cr_assert_eq(ee_counters_reserve(c, &q, 60000, later, &b, &g), EE_OK, "%s",
                 ee_error_last_message());
    cr_assert_eq(g, 1);
    cr_expect_neq(b.resv_id, a.resv_id);
    cr_expect_eq(ee_counters_commit(c, q.key, a.resv_id, EE_COUNTERS_ALL, later), EE_ENOTFOUND);
    cr_expect_eq(ee_counters_commit(c, q.key, b.resv_id, EE_COUNTERS_ALL, later), EE_OK, "%s",
                 ee_error_last_message());
    ee_counters_free(c);
    loss_redis_stop(&r);
}

typedef struct {
    const char *uri, *storage;
    int64_t now;
    ee_status st;
    int granted;
} rebuild_arg;

static void *rebuild_one(void *arg)
{
    rebuild_arg *a = arg;
    ee_counters *c = NULL;
    a->st = ee_counters_open_uri(&c, a->uri, a->storage);
    ee_counter_req q = {"k-race", 1, 100, 0, 0};
    ee_counter_result res;
    if (a->st == EE_OK)
        a->st = ee_counters_reserve(c, &q, 60000, a->now, &res, &a->granted);
    ee_counters_free(c);
    return NULL;
}

/* Eight handles (as eight processes would) find the loss over at once:
 * one of them begins the new epoch, the others adopt it - the epoch number
 * in the storage moves by one, not by eight - and all of them admit. */
Test(quota_redis_loss, handles_racing_the_rebuild_begin_one_epoch)
{
    loss_redis r;
    loss_redis_open(&r);
    char storage[128];
    snprintf(storage, sizeof storage, "sqlite://%s/store.db", r.dir);
    rebuild_arg first = {r.uri, storage, QT_T0, EE_OK, 0};
    rebuild_one(&first);
    cr_assert_eq(first.st, EE_OK, "%s", ee_error_last_message());
    loss_redis_restart(&r);
    rebuild_arg seen = {r.uri, storage, QT_T0 + 1000, EE_OK, 0};
    rebuild_one(&seen);
    cr_assert_eq(seen.st, EE_EBUSY);
    rebuild_arg a[8];
    pthread_t th[8];
    for (int i = 0; i < 8; i++) {
        a[i] = (rebuild_arg){r.uri, storage, QT_T0 + 1000 + 15 * 60000, EE_OK, 0};
        cr_assert_eq(pthread_create(&th[i], NULL, rebuild_one, &a[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        cr_expect_eq(a[i].st, EE_OK, "handle %d: %s", i, ee_status_name(a[i].st));
        cr_expect_eq(a[i].granted, 1);
    }
    ee_counters *d = NULL;
    cr_assert_eq(ee_counters_open_uri(&d, "storage:", storage), EE_OK);
    ee_counter_result g;
    cr_assert_eq(ee_counters_get(d, "eec3/epoch", QT_T0 + 2000 + 15 * 60000, &g), EE_OK);
    cr_expect_eq(g.committed, 2, "epoch %lld after one loss", (long long)g.committed);
    ee_counters_free(d);
    loss_redis_stop(&r);
}
