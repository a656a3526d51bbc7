/*
 * No host callback runs while the engine holds a lock another thread's
 * public call may wait for. A host may run its callbacks on one thread of
 * its own (Node runs them on its event loop: a library thread calling back
 * waits until that thread has run the callback). If that thread is inside
 * a public call waiting for a lock - the storage's write lock, say - held
 * by the thread calling back, neither goes on.
 *
 * Here the test's thread plays the event loop: it submits executions and
 * lists them (public calls that take the storage's lock) and, between
 * calls, runs the callbacks the engine's workers queued for it. Its clock
 * and log callbacks, called on another thread, queue themselves and wait
 * for the loop - at most WAIT_MS, after which they count a "stuck" call
 * (the deadlock) and go on with the system clock, so a regression fails
 * the test instead of hanging it.
 */
#include <errno.h>
#include <time.h>

#include "exec_fake.h"
#include "execengine/config.h"
#include "execengine/log.h"

#define WAIT_MS 3000
#define RUNS 120

typedef struct call {
    struct call *next;
    bool done;
} call;

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t loop;
    bool direct; /* callbacks run where they are called (during close) */
    call *queue;
    int served, stuck, lines, lines_direct;
} host = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static int64_t system_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Hand the call to the loop and wait for it; false when it never came. */
static bool through_loop(void)
{
    pthread_mutex_lock(&host.lock);
    if (host.direct || pthread_equal(pthread_self(), host.loop)) {
        pthread_mutex_unlock(&host.lock);
        return true;
    }
    call c = {host.queue, false};
    host.queue = &c;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += WAIT_MS / 1000;
    while (!c.done)
        if (pthread_cond_timedwait(&host.cond, &host.lock, &until) == ETIMEDOUT)
            break;
    bool done = c.done;
    if (!done) { /* take it off the queue: the loop never came */
        for (call **p = &host.queue; *p != NULL; p = &(*p)->next)
            if (*p == &c) {
                *p = c.next;
                break;
            }
        host.stuck++;
    }
    pthread_mutex_unlock(&host.lock);
    return done;
}

/* The loop's turn: run every queued callback. */
static void serve(void)
{
    pthread_mutex_lock(&host.lock);
    for (call *c = host.queue; c != NULL; c = c->next) {
        c->done = true;
        host.served++;
    }
    host.queue = NULL;
    pthread_cond_broadcast(&host.cond);
    pthread_mutex_unlock(&host.lock);
}

static int64_t loop_clock(void *payload)
{
    (void)payload;
    through_loop();
    return system_ms();
}

static void loop_log(ee_log_level level, const char *module, const char *msg, void *payload)
{
    (void)level;
    (void)module;
    (void)msg;
    (void)payload;
    bool looped = !pthread_equal(pthread_self(), host.loop);
    through_loop();
    pthread_mutex_lock(&host.lock);
    host.lines++;
    host.lines_direct += !looped;
    pthread_mutex_unlock(&host.lock);
}

static void run_loop(const char *storage_uri)
{
    host.loop = pthread_self();
    host.direct = false;
    host.served = host.stuck = host.lines = host.lines_direct = 0;
    ee_config *cfg = ee_test_config_new(storage_uri, loop_clock, NULL);
    ee_test_config_set(cfg, "EE_COUNTERS_URI", "memory:");
    ee_test_config_set(cfg, "EXEC_WORKERS", "4");
    cr_assert_eq(ee_config_set_log(cfg, loop_log, EE_LOG_DEBUG, NULL), EE_OK);
    ee_engine *e = fake_engine_config(cfg);
    fake_sync(e);
    char wf[25];
    entry_id(e, "wf0", wf); /* echo */
    char id[EE_EXEC_ID_SIZE];
    int submitted = 0;
    for (int i = 0; i < RUNS; i++) {
        char ws[32], user[32];
        snprintf(ws, sizeof ws, "ws-loop-%d", i % 40);
        snprintf(user, sizeof user, "u-loop-%d", i); /* 50 runs an hour each */
        ee_principal *p = NULL;
        cr_assert_eq(ee_principal_new(&p, ws, user, "org-loop"), EE_OK);
        ee_status st = ee_exec_submit(e, p, wf, "{\"parameters\": {\"text\": \"hi\"}}", NULL,
                                      NULL, id);
        /* EE_EBUSY: SQLite's busy timeout ran out while a worker held the
         * write lock waiting for this thread */
        cr_assert(st == EE_OK || st == EE_ECONCURRENCY || st == EE_EQUOTA, "submit: %s %s", ee_status_name(st),
                  ee_error_last_message());
        submitted += st == EE_OK;
        char *out = NULL;
        cr_assert_eq(ee_exec_list(e, p, "{}", &out), EE_OK, "%s", out);
        ee_free(out);
        ee_principal_free(p);
        serve();
        cr_assert_eq(host.stuck, 0, "run %d: a callback waited %d ms for the loop while the "
                                    "loop waited for a lock it held", i, WAIT_MS);
    }
    /* Let the runs end, serving the workers' callbacks meanwhile. */
    for (int i = 0; i < 2000; i++) {
        serve();
        char *out = NULL;
        cr_assert_eq(ee_exec_stats(e, &out), EE_OK);
        json_t *doc = parse_doc(out);
        ee_free(out);
        cr_assert_null(sget(doc, "error"));
        bool idle = json_integer_value(json_object_get(doc, "queued")) == 0 &&
                    json_integer_value(json_object_get(doc, "running")) == 0;
        json_decref(doc);
        if (idle)
            break;
        usleep(5000);
    }
    pthread_mutex_lock(&host.lock);
    host.direct = true; /* close joins the workers: their last callbacks run on them */
    pthread_cond_broadcast(&host.cond);
    pthread_mutex_unlock(&host.lock);
    serve();
    ee_engine_close(e);
    cr_assert_gt(submitted, 0);
    cr_assert_gt(host.served, 0, "the workers called the clock through the loop");
    cr_assert_eq(host.stuck, 0,
                 "%d callback(s) waited %d ms for the loop while it waited for a lock they "
                 "held (%d served)",
                 host.stuck, WAIT_MS, host.served);
}

TestSuite(exec_callbacks, .init = fake_setup, .fini = fake_teardown, .timeout = 240);

Test(exec_callbacks, a_callback_on_the_hosts_own_thread_never_waits_under_a_memory_lock)
{
    run_loop("memory:");
}

Test(exec_callbacks, a_callback_on_the_hosts_own_thread_never_waits_under_a_sqlite_lock)
{
    char path[] = "/tmp/ee-callbacks-XXXXXX";
    cr_assert_not_null(mkdtemp(path));
    char uri[128];
    snprintf(uri, sizeof uri, "sqlite://%s/db.sqlite", path);
    run_loop(uri);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    cr_assert_eq(system(cmd), 0);
}
