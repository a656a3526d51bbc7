/*
 * Retention (ee_exec_purge with RESULT_RETENTION_DAYS): records past the
 * retention go with their stored outputs and the storage-quota bytes those
 * held; recent ones stay; the result store's leftovers (temporary files of
 * a put that stopped, result files whose record is gone) are swept once
 * old enough; a second purge changes nothing.
 */
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "exec_fake.h"

#include "execengine/quota.h"

static _Atomic int64_t fake_now;

/* Lowercase hex of s, as the result store names its folders and files. */
static void hex_of(const char *s, char *out)
{
    for (; *s != '\0'; s++, out += 2)
        sprintf(out, "%02x", (unsigned char)*s);
    *out = '\0';
}

static int64_t clock_fn(void *payload)
{
    (void)payload;
    return fake_now;
}

static ee_engine *engine;
static ee_principal *alice;
static char base[256], store[300], wsdir[400];

static void setup(void)
{
    fake_setup();
    snprintf(base, sizeof base, "/tmp/ee-retention-%d", (int)getpid());
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", base, base);
    cr_assert_eq(system(cmd), 0);
    snprintf(store, sizeof store, "%s/store", base);
    char hex[2 * 8 + 1];
    hex_of("ws-alice", hex);
    snprintf(wsdir, sizeof wsdir, "%s/%s", store, hex);
    fake_now = INT64_C(1800000000000);
    ee_config *cfg = ee_test_config_new(NULL, clock_fn, NULL);
    ee_test_config_set(cfg, "EXEC_WORKERS", "1");
    ee_test_config_set(cfg, "RESULT_RETENTION_DAYS", "30");
    ee_test_config_set(cfg, "EXEC_OUTPUT_INLINE_MAX", "0"); /* every output to the store */
    ee_test_config_set(cfg, "EXEC_RESULTS_DIR", store);
    engine = fake_engine_config(cfg);
    fake_sync(engine);
    cr_assert_eq(ee_principal_new(&alice, "ws-alice", "u1", "org-a"), EE_OK);
    cr_assert_eq(ee_quota_plan_put(engine,
                                   "{\"name\": \"keep\", \"predictionsPerPeriod\": 100, "
                                   "\"storageBytes\": 1000000}",
                                   NULL),
                 EE_OK, "%s", ee_error_last_message());
    char *out = NULL;
    ee_status st = ee_quota_subscription_put(
        engine, "{\"orgId\": \"org-a\", \"plan\": \"keep\", \"periodStart\": 0}", &out);
    cr_assert_eq(st, EE_OK, "%s", out ? out : "");
    ee_free(out);
}

static void teardown(void)
{
    ee_engine_close(engine);
    ee_principal_free(alice);
    fake_teardown();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(exec_retention, .init = setup, .fini = teardown, .timeout = 60);

static long long stored_bytes(void)
{
    char *out = NULL;
    cr_assert_eq(ee_quota_usage(engine, alice, &out), EE_OK, "%s", out ? out : "");
    json_t *doc = parse_doc(out);
    ee_free(out);
    json_t *v = json_object_get(json_object_get(doc, "storage"), "usage");
    cr_assert(json_is_integer(v));
    long long n = (long long)json_integer_value(v);
    json_decref(doc);
    return n;
}

/* One completed run of wf0 whose output went to the store; its id. */
static void run_stored(char id[EE_EXEC_ID_SIZE])
{
    char wf[25], *out = NULL;
    entry_id(engine, "wf0", wf);
    cr_assert_eq(ee_exec_run(engine, alice, wf, NULL, &out), EE_OK,
                 "%s", out ? out : "");
    json_t *rec = parse_doc(out);
    ee_free(out);
    cr_assert_str_eq(sget(rec, "status"), "completed");
    snprintf(id, EE_EXEC_ID_SIZE, "%s", sget(rec, "_id"));
    json_decref(rec);
}

/* The path of execution id's stored output. */
static void result_path(const char *id, char *out, size_t cap)
{
    char hex[2 * EE_EXEC_ID_SIZE + 1];
    hex_of(id, hex);
    snprintf(out, cap, "%s/%s.result", wsdir, hex);
}

static bool exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* A file of the workspace's folder, last changed age_s seconds ago. */
static void leftover(const char *name, long age_s, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", wsdir, name);
    FILE *f = fopen(path, "w");
    cr_assert(f != NULL);
    fputs("EE-RESULT leftover", f);
    fclose(f);
    struct timeval tv[2];
    gettimeofday(&tv[0], NULL);
    tv[0].tv_sec -= age_s;
    tv[1] = tv[0];
    cr_assert_eq(utimes(path, tv), 0);
}

Test(exec_retention, purge_deletes_old_records_with_their_outputs_and_quota_and_sweeps_leftovers)
{
    cr_assert_eq(stored_bytes(), 0);
    char old_id[EE_EXEC_ID_SIZE], new_id[EE_EXEC_ID_SIZE];
    run_stored(old_id);
    long long old_bytes = stored_bytes();
    cr_assert_gt(old_bytes, 0, "the output was not stored out of its record");
    fake_now += INT64_C(20) * 86400000;
    run_stored(new_id);
    long long both = stored_bytes();
    cr_assert_gt(both, old_bytes);
    char old_file[600], new_file[600];
    result_path(old_id, old_file, sizeof old_file);
    result_path(new_id, new_file, sizeof new_file);
    cr_assert(exists(old_file) && exists(new_file));
    cr_assert_eq(fake_hits("echo"), 2);

    /* leftovers: ".<hex id>.result.XXXXXX" of a put that stopped, an hour
     * old and a second old; result files nobody points at, 40 days
     * old (one not even named as an execution id) */
    char old_tmp[600], young_tmp[600], orphan[600], orphan_id[600], gone_id[2 * 24 + 8];
    hex_of("0123456789abcdef01234567", gone_id);
    strcat(gone_id, ".result");
    leftover(gone_id, 40L * 86400, orphan_id, sizeof orphan_id);
    leftover(".6f7270686131.result.AbC123", 3600, old_tmp, sizeof old_tmp);
    leftover(".6f7270686132.result.XyZ789", 1, young_tmp, sizeof young_tmp);
    leftover("6f727068616e.result", 40L * 86400, orphan, sizeof orphan);

    /* 32 days after the first run, 12 after the second */
    fake_now += INT64_C(12) * 86400000;
    uint64_t n = 99;
    cr_assert_eq(ee_exec_purge(engine, &n), EE_OK, "%s", ee_error_last_message());
    cr_assert_eq(n, 1, "one record past the retention");
    char *out = NULL;
    cr_assert_eq(ee_exec_get(engine, alice, old_id, &out), EE_ENOTFOUND);
    ee_free(out);
    out = NULL;
    cr_assert_eq(ee_exec_get(engine, alice, new_id, &out), EE_OK);
    ee_free(out);
    cr_assert(!exists(old_file), "the old record's output was left behind");
    cr_assert(exists(new_file), "a recent record's output was deleted");
    cr_assert_eq(stored_bytes(), both - old_bytes, "the old output's bytes were not given back");
    cr_assert(!exists(old_tmp), "an old temporary file was kept");
    cr_assert(exists(young_tmp), "a young temporary file (a put under way) was removed");
    cr_assert(!exists(orphan), "a result file without a record was kept");
    cr_assert(!exists(orphan_id), "a result file whose record is gone was kept");

    /* a second purge: nothing left to do */
    n = 99;
    cr_assert_eq(ee_exec_purge(engine, &n), EE_OK, "%s", ee_error_last_message());
    cr_assert_eq(n, 0);
    cr_assert(exists(new_file) && exists(young_tmp));
    cr_assert_eq(stored_bytes(), both - old_bytes);
    out = NULL;
    cr_assert_eq(ee_exec_get(engine, alice, new_id, &out), EE_OK);
    ee_free(out);
}
