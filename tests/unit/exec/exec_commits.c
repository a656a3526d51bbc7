/*
 * Durable writes per execution on SQLite: the steps of a run group their
 * writes into transactions (ee__storage_atomic()), so one execution
 * commits 5 storage transactions - submit (queue item + record), claim
 * (item + backlog counter), start (`running` + gateway grant), the final
 * write, the release (token revoked + item removed) - plus the quota's 3
 * (admission, commit, release) on the counters, which share the file
 * (storage: counters, their own connection, synchronous=NORMAL). When each
 * storage write was its own transaction the run committed 14. The commits
 * are counted in the file's write-ahead log: its commit frames before and
 * after the run. Of the 5, the claim and the release are not synced on
 * their own (ee__storage_atomic_deferred(): the next synced commit carries
 * them, and recovery redoes them if an OS crash loses them): a submitted
 * run costs 3 fsyncs on the default synchronous=FULL, counted by a VFS
 * shim, and a run by ee_exec_run() 2 (its submit rides on its start).
 * The run's audit entries (execution requested, started, finished) are
 * written inside the submit, start and final transactions: they add no
 * commit and no sync, and each commits with the step it records.
 */
#include <sqlite3.h>
#include <stdint.h>

#include "engine/engine.h"
#include "exec/queue.h"
#include "exec_fake.h"
#include "sqlite_sync_count.h"

static char dir[] = "/tmp/ee-exec-commits-XXXXXX";
static char path[128], uri[160];
static ee_engine *engine;
static ee_principal *alice;

static void setup(void)
{
    cr_assert_eq(sqlite_sync_count_install(), SQLITE_OK);
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/engine.db", dir);
    snprintf(uri, sizeof uri, "sqlite://%s", path);
    fake_setup();
    ee_config *cfg = ee_test_config_new(uri, NULL, NULL);
    ee_test_config_set(cfg, "EXEC_WORKERS", "1");
    ee_test_config_set(cfg, "EXEC_POLL_MS", "20");
    engine = fake_engine_config(cfg);
    fake_sync(engine);
    cr_assert_eq(ee_principal_new(&alice, "ws-alice", "u1", "org-a"), EE_OK);
}

static void teardown(void)
{
    ee_engine_close(engine);
    ee_principal_free(alice);
    fake_teardown();
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

TestSuite(exec_commits, .init = setup, .fini = teardown, .timeout = 60);

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Commit frames of the log's current generation (their salts are the
 * header's: frames of an earlier generation may follow); *salt_out the
 * generation's salts (a checkpoint that restarts the log changes them). */
static int commits(uint64_t *salt_out)
{
    char wal[160];
    snprintf(wal, sizeof wal, "%s-wal", path);
    FILE *f = fopen(wal, "rb");
    if (f == NULL) {
        *salt_out = 0;
        return 0;
    }
    unsigned char hdr[32], fh[24];
    int n = 0;
    *salt_out = 0;
    if (fread(hdr, 1, sizeof hdr, f) == sizeof hdr) {
        *salt_out = (uint64_t)be32(hdr + 16) << 32 | be32(hdr + 20);
        uint32_t page = be32(hdr + 8);
        while (fread(fh, 1, sizeof fh, f) == sizeof fh && memcmp(fh + 8, hdr + 16, 8) == 0) {
            if (be32(fh + 4) != 0)
                n++;
            if (fseek(f, (long)page, SEEK_CUR) != 0)
                break;
        }
    }
    fclose(f);
    return n;
}

/* ee_exec_run() returns at the final write; the accounting after it ends
 * with the queue item's removal: wait for that (bounded). */
static void wait_accounted(void)
{
    uint64_t waiting = 1, claimed = 1;
    for (int i = 0; i < 500 && (waiting != 0 || claimed != 0); i++) {
        cr_assert_eq(ee__queue_depth(ee__engine_storage(engine), &waiting, &claimed), EE_OK);
        if (waiting != 0 || claimed != 0)
            usleep(10000);
    }
    cr_assert_eq(waiting + claimed, 0, "the run's queue item was never removed");
}

static long syncs_of_last_run;

/* One run, by ee_exec_run() or (submitted) by ee_exec_submit() and
 * ee_exec_wait(). */
static int one_run_by(bool submitted)
{
    long syncs = atomic_load(&sqlite_syncs_wal);
    char wf[25], *out = NULL;
    entry_id(engine, "wf0", wf);
    uint64_t salt = 0, salt_after = 0;
    int before = commits(&salt);
    static const char req[] = "{\"parameters\": {\"text\": \"hi\"}}";
    ee_status st;
    if (submitted) {
        char id[EE_EXEC_ID_SIZE];
        cr_assert_eq(ee_exec_submit(engine, alice, wf, req, NULL, NULL, id), EE_OK, "%s",
                     ee_error_last_message());
        st = ee_exec_wait(engine, alice, id, 30000, &out);
    } else {
        st = ee_exec_run(engine, alice, wf, req, &out);
    }
    cr_assert_eq(st, EE_OK, "%s", out != NULL ? out : ee_error_last_message());
    json_t *doc = parse_doc(out);
    ee_free(out);
    cr_expect_str_eq(sget(doc, "status"), "completed");
    json_decref(doc);
    wait_accounted();
    int after = commits(&salt_after);
    syncs_of_last_run = atomic_load(&sqlite_syncs_wal) - syncs;
    cr_assert_eq(salt, salt_after, "the log was restarted meanwhile: the count is lost");
    return after - before;
}

static int one_run(void)
{
    return one_run_by(false);
}

Test(exec_commits, one_execution_commits_at_most_eight_transactions)
{
    (void)one_run(); /* the first run creates the counters' and rounds' documents */
    int n = one_run();
    cr_expect_eq(fake_hits("echo"), 2, "each run triggered its webhook once");
    cr_expect_leq(n, 8, "one execution committed %d transactions", n);
    cr_expect_geq(n, 3, "the count sees the commits (%d)", n);
}

/* ee_exec_run(): the start and the final write. Its submit rides on the
 * start: the caller is told nothing before the run has ended. */
Test(exec_commits, one_execution_run_and_waited_for_syncs_the_log_twice)
{
    (void)one_run();
    int n = one_run();
    cr_expect_geq(n, 5, "submit, claim, start, final, release are all committed (%d)", n);
    /* start, final: the submit, the claim and the release ride on them */
    cr_expect_eq(syncs_of_last_run, 2, "one execution synced the log %ld times",
                 syncs_of_last_run);
}

/* ee_exec_submit() hands out the execution's id: its commit is synced
 * before, so a submitted run syncs three times (submit, start, final). */
Test(exec_commits, one_submitted_execution_syncs_the_log_three_times)
{
    (void)one_run_by(true);
    int n = one_run_by(true);
    cr_expect_geq(n, 5, "submit, claim, start, final, release are all committed (%d)", n);
    cr_expect_eq(syncs_of_last_run, 3, "one execution synced the log %ld times",
                 syncs_of_last_run);
}
