/*
 * A queued run wakes one idle worker, not all of them. Waking every idle
 * worker had the others race the one that gets the run for the queue and
 * lose: a claim transaction each for nothing, and on SQLite each held the
 * file's write lock the winner's next write then waited for (SQLite's
 * busy handler sleeps 1 ms, then 2 ms, ...). The claims are counted by a
 * forwarding storage backend (tests/unit/storage/custom_backend.h); the
 * workers' own polling is set far off so that only wake-ups claim.
 */
#include "../storage/custom_backend.h"
#include "exec_fake.h"

static ee_storage *store;
static ee_engine *engine;
static ee_principal *alice;

/* The engine over a fresh counting store, `workers` workers polling only
 * every 10 minutes, the fake's workflows synced. */
static void open_engine(const char *workers)
{
    store = custom_open(2);
    ee_config *cfg = ee_test_config_new("memory:", NULL, NULL);
    ee_test_config_set(cfg, "EE_COUNTERS_URI", "memory:");
    ee_test_config_set(cfg, "EXEC_WORKERS", workers);
    ee_test_config_set(cfg, "EXEC_POLL_MS", "600000");
    ee_engine_parts parts = {.version = EE_ENGINE_PARTS_VERSION, .n8n = fake_client,
                             .transport = fake_transport, .storage = store};
    ee_status st = ee_engine_open_parts(&engine, cfg, &parts);
    ee_config_free(cfg);
    cr_assert_eq(st, EE_OK, "%s", ee_error_last_message());
    fake_sync(engine);
}

static void setup(void)
{
    fake_setup();
    open_engine("4");
    cr_assert_eq(ee_principal_new(&alice, "ws-alice", "u1", "org-a"), EE_OK);
}

static void teardown(void)
{
    ee_engine_close(engine);
    ee_storage_free(store);
    ee_principal_free(alice);
    fake_teardown();
}

TestSuite(exec_wakeups, .init = setup, .fini = teardown, .timeout = 60);

/* The workers started and each found the queue empty once: all idle. */
static void idle_workers(void)
{
    cr_assert_eq(ee_exec_workers_start(engine), EE_OK, "%s", ee_error_last_message());
    for (int i = 0; i < 500 && atomic_load(&custom_state->queue_claims) < 4; i++)
        usleep(2000);
    cr_assert_geq(atomic_load(&custom_state->queue_claims), 4, "the 4 workers' first claims");
    usleep(200000); /* and are waiting */
}

Test(exec_wakeups, one_queued_run_wakes_one_worker)
{
    idle_workers();
    char wf[25], *out = NULL;
    entry_id(engine, "wf0", wf);
    for (int run = 0; run < 5; run++) {
        atomic_store(&custom_state->queue_claims, 0);
        ee_status st = ee_exec_run(engine, alice, wf, "{\"parameters\": {\"text\": \"hi\"}}", &out);
        cr_assert_eq(st, EE_OK, "%s", out != NULL ? out : ee_error_last_message());
        ee_free(out);
        out = NULL;
        usleep(50000); /* any other worker woken would have claimed by now */
        /* the push's look at the queue's round (it goes through the claim
         * slot, claiming nothing), the woken worker's claim of the run and
         * its claim for a next one after it (it claims again before it
         * waits): 3; each of the other 3 workers woken would add one (6
         * when a queued run woke them all) */
        int claims = atomic_load(&custom_state->queue_claims);
        cr_expect_leq(claims, 3, "run %d: %d claims of the queue for one queued run", run,
                      claims);
        cr_expect_geq(claims, 2, "run %d: the run was claimed", run);
    }
}

/* Runs queued back to back, faster than a worker ends one: none is left
 * waiting for the workers' polling (10 minutes here). */
Test(exec_wakeups, runs_queued_together_are_all_run)
{
    idle_workers();
    char wf[25], ids[8][EE_EXEC_ID_SIZE];
    entry_id(engine, "wf0", wf);
    for (int i = 0; i < 8; i++)
        cr_assert_eq(ee_exec_submit(engine, alice, wf, "{\"parameters\": {\"text\": \"hi\"}}",
                                    NULL, NULL, ids[i]),
                     EE_OK, "%s", ee_error_last_message());
    for (int i = 0; i < 8; i++) {
        char *out = NULL;
        ee_status st = ee_exec_wait(engine, alice, ids[i], 30000, &out);
        cr_assert_eq(st, EE_OK, "%s", out != NULL ? out : ee_error_last_message());
        json_t *doc = parse_doc(out);
        cr_expect_str_eq(sget(doc, "status"), "completed");
        json_decref(doc);
        ee_free(out);
    }
}

/* ---- waiters: an end wakes its own ------------------------------------------------ */

enum { WAITERS = 24 };

typedef struct waiter {
    ee_principal *p; /* each its own workspace: under the per-workspace cap (10) */
    char id[EE_EXEC_ID_SIZE];
    ee_status st;
} waiter;

static void *wait_one(void *arg)
{
    waiter *w = arg;
    char *out = NULL;
    w->st = ee_exec_wait(engine, w->p, w->id, 30000, &out);
    ee_free(out);
    return NULL;
}

/* 24 callers wait on 24 queued runs, then the one worker runs them. An end
 * broadcast to every waiter had each re-read its record at every end:
 * about 24 * 25 / 2 = 300 reads more than the runs' own (O(waiters) a
 * end). Now an end wakes its own waiter: its reads stay within a few a
 * run (the pipeline's own, a waiter's first and last). */
Test(exec_wakeups, an_end_wakes_its_own_waiter_only)
{
    idle_workers();
    char wf[25];
    entry_id(engine, "wf0", wf);
    /* what one run costs in record reads, waited for by one caller */
    atomic_store(&custom_state->record_gets, 0);
    char *out = NULL;
    cr_assert_eq(ee_exec_run(engine, alice, wf, "{\"parameters\": {\"text\": \"hi\"}}", &out),
                 EE_OK, "%s", out != NULL ? out : ee_error_last_message());
    ee_free(out);
    int one = atomic_load(&custom_state->record_gets);
    cr_assert_gt(one, 0);
    /* one worker, held by the gate: the runs queue up with their waiters in
     * place */
    ee_engine_close(engine);
    ee_storage_free(store);
    open_engine("1");
    entry_id(engine, "wf0", wf);
    waiter ws[WAITERS];
    pthread_t tid[WAITERS];
    atomic_store(&fake_echo_gate, 1); /* the worker holds the first run */
    for (int i = 0; i < WAITERS; i++) {
        char wsid[32];
        snprintf(wsid, sizeof wsid, "ws-wait-%d", i);
        cr_assert_eq(ee_principal_new(&ws[i].p, wsid, "u1", "org-a"), EE_OK);
        cr_assert_eq(ee_exec_submit(engine, ws[i].p, wf, "{\"parameters\": {\"text\": \"hi\"}}",
                                    NULL, NULL, ws[i].id),
                     EE_OK, "%s", ee_error_last_message());
        ws[i].st = EE_EUNKNOWN;
    }
    atomic_store(&custom_state->record_gets, 0);
    for (int i = 0; i < WAITERS; i++)
        cr_assert_eq(pthread_create(&tid[i], NULL, wait_one, &ws[i]), 0);
    usleep(300000); /* every waiter has read its run pending and waits */
    atomic_store(&fake_echo_gate, 0);
    for (int i = 0; i < WAITERS; i++)
        pthread_join(tid[i], NULL);
    for (int i = 0; i < WAITERS; i++) {
        cr_expect_eq(ws[i].st, EE_OK, "waiter %d: %s", i, ee_status_name(ws[i].st));
        ee_principal_free(ws[i].p);
    }
    int gets = atomic_load(&custom_state->record_gets);
    /* each run: its own reads (`one`) and at most two more (a waiter that
     * read it pending, then ended) */
    cr_expect_leq(gets, WAITERS * (one + 2), "%d record reads for %d runs (%d for one run)",
                  gets, WAITERS, one);
}

/* ---- a run's own reads of its record ----------------------------------------------- */

/* One run, waited for by its caller: the worker reads the record once when
 * it claims the run; its start, end and booking then write from the record
 * as it last wrote it (ee__exec_change_from), and the caller is handed the
 * settled record (ee__exec_settled) - no read back. Before, each of those
 * steps read the record first: six reads a run. */
Test(exec_wakeups, a_run_waited_for_reads_its_record_once)
{
    idle_workers();
    char wf[25];
    entry_id(engine, "wf0", wf);
    for (int i = 0; i < 3; i++) {
        atomic_store(&custom_state->record_gets, 0);
        char *out = NULL;
        cr_assert_eq(ee_exec_run(engine, alice, wf, "{\"parameters\": {\"text\": \"hi\"}}",
                                 &out),
                     EE_OK, "%s", out != NULL ? out : ee_error_last_message());
        json_t *doc = parse_doc(out);
        ee_free(out);
        cr_expect_str_eq(sget(doc, "status"), "completed");
        cr_expect_str_eq(sget(json_object_get(doc, "outputData"), "echo"), "hi");
        cr_expect_not_null(json_object_get(doc, "charge"), "the answer carries its booking");
        json_decref(doc);
        cr_expect_eq(atomic_load(&custom_state->record_gets), 1, "run %d: %d record reads", i,
                     atomic_load(&custom_state->record_gets));
    }
}
