/*
 * Completion callbacks of runs that end in another process. Engine A
 * (EXEC_WORKERS=0: it only submits) and engine B (one worker) share one
 * SQLite file; B runs what A queued. A's callbacks used to wait forever
 * (an end was only announced in the process that ran it) and stayed
 * registered until A closed. Now A's lease keeper looks for its callbacks'
 * runs every poll interval and calls each once, with the settled record
 * (its charge booked, its queue item gone); a run that fails elsewhere
 * reports its status.
 */
#include "exec_fake.h"

#include "exec/exec_internal.h"
#include "temp_dir.h"

static char dir[256];
static ee_principal *alice;

static void setup(void)
{
    fake_setup();
    ee_test_temp_dir("/tmp/ee-exec-elsewhere-XXXXXX", dir, sizeof dir);
    cr_assert_eq(ee_principal_new(&alice, "ws-alice", "u1", "org-a"), EE_OK);
}

static void teardown(void)
{
    ee_principal_free(alice);
    fake_teardown();
    ee_test_temp_dir_remove(dir);
}

TestSuite(exec_done_elsewhere, .init = setup, .fini = teardown, .timeout = 120);

static ee_engine *open_on_file(const char *workers)
{
    char uri[400];
    snprintf(uri, sizeof uri, "sqlite://%s/ee.db", dir);
    ee_config *cfg = ee_test_config_new(uri, NULL, NULL);
    ee_test_config_set(cfg, "EXEC_WORKERS", workers);
    ee_test_config_set(cfg, "EXEC_POLL_MS", "50");
    return fake_engine_config(cfg);
}

enum { RUNS = 6 };

typedef struct calls {
    pthread_mutex_t lock;
    char id[RUNS][EE_EXEC_ID_SIZE];
    int count[RUNS];
    ee_status status[RUNS];
    char record_status[RUNS][16];
    int charged[RUNS]; /* the record carried its booked charge */
    int unknown;       /* calls for ids never submitted */
} calls;

static calls seen;

static void on_done(const char *id, ee_status status, const char *record_json, void *payload)
{
    (void)payload;
    json_t *rec = json_loads(record_json, 0, NULL);
    pthread_mutex_lock(&seen.lock);
    int k = -1;
    for (int i = 0; i < RUNS; i++)
        if (strcmp(seen.id[i], id) == 0)
            k = i;
    if (k < 0) {
        seen.unknown++;
    } else {
        seen.count[k]++;
        seen.status[k] = status;
        snprintf(seen.record_status[k], sizeof seen.record_status[k], "%s",
                 rec != NULL ? sget(rec, "status") : "?");
        seen.charged[k] = rec != NULL && json_object_get(rec, "charge") != NULL;
    }
    pthread_mutex_unlock(&seen.lock);
    json_decref(rec);
}

static int total_calls(void)
{
    pthread_mutex_lock(&seen.lock);
    int n = seen.unknown;
    for (int i = 0; i < RUNS; i++)
        n += seen.count[i];
    pthread_mutex_unlock(&seen.lock);
    return n;
}

Test(exec_done_elsewhere, callbacks_of_runs_another_process_ran_are_called_once)
{
    memset(&seen, 0, sizeof seen);
    pthread_mutex_init(&seen.lock, NULL);
    ee_engine *a = open_on_file("0");
    ee_engine *b = open_on_file("1");
    fake_sync(a);
    char echo[25], fail[25];
    entry_id(a, "wf0", echo);
    entry_id(a, "wf2", fail);
    for (int i = 0; i < RUNS; i++) {
        /* the last one fails in n8n */
        const char *wf = i == RUNS - 1 ? fail : echo;
        char id[EE_EXEC_ID_SIZE];
        pthread_mutex_lock(&seen.lock); /* the callback may come before the id is noted */
        ee_status st = ee_exec_submit(a, alice, wf, "{\"parameters\": {\"text\": \"hi\"}}",
                                      on_done, NULL, id);
        snprintf(seen.id[i], sizeof seen.id[i], "%s", id);
        pthread_mutex_unlock(&seen.lock);
        cr_assert_eq(st, EE_OK, "%s", ee_error_last_message());
    }
    cr_assert_eq(ee_exec_workers_start(b), EE_OK);
    for (int t = 0; t < 1000 && total_calls() < RUNS; t++)
        usleep(10000);
    ee_engine_close(b);
    usleep(300000); /* a second call would come within a few poll intervals */
    pthread_mutex_lock(&seen.lock);
    cr_expect_eq(seen.unknown, 0);
    for (int i = 0; i < RUNS; i++) {
        cr_expect_eq(seen.count[i], 1, "run %d (%s): %d calls", i, seen.id[i], seen.count[i]);
        if (i == RUNS - 1) {
            cr_expect_eq(seen.status[i], EE_EUPSTREAM, "%s", ee_status_name(seen.status[i]));
            cr_expect_str_eq(seen.record_status[i], "failed");
        } else {
            cr_expect_eq(seen.status[i], EE_OK, "%s", ee_status_name(seen.status[i]));
            cr_expect_str_eq(seen.record_status[i], "completed");
            cr_expect(seen.charged[i], "run %d: the settled record, its charge booked", i);
        }
    }
    pthread_mutex_unlock(&seen.lock);
    x_state *st = ee__exec_state(a);
    pthread_mutex_lock(&st->lock);
    size_t left = st->dones.n;
    pthread_mutex_unlock(&st->lock);
    cr_expect_eq(left, 0, "no callback stays registered: %zu", left);
    ee_engine_close(a);
    pthread_mutex_destroy(&seen.lock);
}
