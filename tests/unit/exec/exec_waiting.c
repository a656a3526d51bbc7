/*
 * A run waiting in the queue keeps its quota reservations. Admission
 * reserves a prediction and a slot for the plan's runLeaseMs (15 minutes);
 * a run queued behind a busy pool for longer than that used to lose them:
 * when it finally ran, its completion counted nothing. The engine's lease
 * keeper now renews the tickets of waiting runs every third of that lease.
 * The engine clock is moved by hand; the keeper runs every EXEC_LEASE_MS/3
 * of real time and records the engine time of each pass.
 */
#include "exec_fake.h"

#include "exec/exec_internal.h"
#include "execengine/quota.h"

static _Atomic int64_t fake_now;

static int64_t clock_fn(void *payload)
{
    (void)payload;
    return fake_now;
}

static ee_engine *engine;
static ee_principal *alice;

static void setup(void)
{
    fake_setup();
    fake_now = INT64_C(1800000000000);
    ee_config *cfg = ee_test_config_new(NULL, clock_fn, NULL);
    ee_test_config_set(cfg, "EXEC_WORKERS", "1");
    ee_test_config_set(cfg, "EXEC_LEASE_MS", "1000");
    ee_test_config_set(cfg, "EXEC_POLL_MS", "20");
    ee_test_config_set(cfg, "EXEC_TIMEOUT_MS", "86400000");
    engine = fake_engine_config(cfg);
    fake_sync(engine);
    cr_assert_eq(ee_principal_new(&alice, "ws-alice", "u1", "org-a"), EE_OK);
}

static void teardown(void)
{
    ee_engine_close(engine);
    ee_principal_free(alice);
    fake_teardown();
}

TestSuite(exec_waiting, .init = setup, .fini = teardown, .timeout = 120);

static const char *status_of(const char *id, char buf[32])
{
    char *out = NULL;
    cr_assert_eq(ee_exec_get(engine, alice, id, &out), EE_OK);
    json_t *rec = parse_doc(out);
    ee_free(out);
    snprintf(buf, 32, "%s", sget(rec, "status"));
    json_decref(rec);
    return buf;
}

/* Bounded wait (real time) for the execution to reach `status`. */
static void wait_status(const char *id, const char *status)
{
    char buf[32];
    for (int i = 0; i < 3000 && strcmp(status_of(id, buf), status) != 0; i++)
        usleep(10000);
    cr_assert_str_eq(status_of(id, buf), status, "execution %s", id);
}

/* Bounded wait for a keeper pass that started at engine time >= now. */
static void wait_pass(void)
{
    x_state *st = ee__exec_state(engine);
    for (int i = 0; i < 3000 && atomic_load(&st->waiting_pass_at) < fake_now; i++)
        usleep(10000);
    cr_assert_geq(atomic_load(&st->waiting_pass_at), fake_now,
                  "no pass of the lease keeper over the waiting runs");
}

Test(exec_waiting, a_run_queued_past_the_quota_lease_keeps_its_reservation_and_counts)
{
    char wfa[25], wfe[25], a[EE_EXEC_ID_SIZE], b[EE_EXEC_ID_SIZE];
    entry_id(engine, "wfA", wfa); /* long: n8n says running until exec_done */
    entry_id(engine, "wf0", wfe); /* echo */
    cr_assert_eq(ee_exec_submit(engine, alice, wfa, "{}", NULL, NULL, a), EE_OK, "%s",
                 ee_error_last_message());
    wait_status(a, "running"); /* the only worker is busy */
    cr_assert_eq(ee_exec_submit(engine, alice, wfe, "{\"parameters\": {\"text\": \"x\"}}", NULL,
                                NULL, b),
                 EE_OK, "%s", ee_error_last_message());
    cr_assert_eq(fake_predictions_used(engine, alice), 2, "both runs hold a prediction");
    /* 24 minutes pass in steps of 6 (the plan's runLeaseMs is 15). */
    for (int i = 0; i < 4; i++) {
        fake_now += 6 * 60000;
        wait_pass();
        char buf[32];
        cr_assert_str_eq(status_of(b, buf), "pending", "b still waits");
    }
    cr_assert_eq(fake_predictions_used(engine, alice), 2, "the waiting run's prediction did not lapse");
    pthread_mutex_lock(&fake.lock);
    fake.exec_done = 1;
    pthread_mutex_unlock(&fake.lock);
    char *out = NULL;
    cr_assert_eq(ee_exec_wait(engine, alice, a, 60000, &out), EE_OK, "%s", out);
    ee_free(out);
    cr_assert_eq(ee_exec_wait(engine, alice, b, 60000, &out), EE_OK, "%s", out);
    ee_free(out);
    cr_assert_eq(fake_predictions_used(engine, alice), 2, "both completed runs counted");
    cr_assert_eq(fake_hits("echo"), 1, "the waiting run ran once");
}

Test(exec_waiting, the_waiting_list_pages_past_one_storage_page)
{
    /* 1,005 waiting items: more than a storage page (1,000) */
    ee_storage *s = ee__engine_storage(engine);
    for (int i = 0; i < 1005; i++) {
        char id[EE_EXEC_ID_SIZE];
        snprintf(id, sizeof id, "%024x", i + 1);
        cr_assert_eq(ee__queue_push(s, "ws-list", id, fake_now, 0), EE_OK, "%s",
                     ee_error_last_message());
    }
    ee__queue_ref *refs = NULL;
    size_t n = 0;
    cr_assert_eq(ee__queue_waiting(s, 5000, &refs, &n), EE_OK, "%s", ee_error_last_message());
    cr_assert_eq(n, 1005);
    free(refs);
    cr_assert_eq(ee__queue_waiting(s, 7, &refs, &n), EE_OK);
    cr_assert_eq(n, 7, "bounded by max");
    free(refs);
}
