/*
 * The result store (lib/exec/support.h, results.c): round trip, the
 * storage quota (reserved first, refused with nothing written, given back
 * on delete), digests checked on read, ids that try to leave the store's
 * folder, concurrent puts, and where the store is by default.
 */
#include <dirent.h>
#include <ftw.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "support_test.h"

#define ORG "org-results"

/* A fresh folder for one test: <tmp>/ee-results-<pid>-<n>. */
static void fresh_dir(char *out, size_t cap)
{
    static int n;
    snprintf(out, cap, "/tmp/ee-results-%d-%d", (int)getpid(), n++);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", out);
    cr_assert_eq(system(cmd), 0);
    cr_assert_eq(mkdir(out, 0755), 0);
}

static void rm_rf(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
}

/* An engine whose result store is <base>/store, with a plan of `limit`
 * stored bytes for ORG. */
static ee_engine *store_engine(const char *base, long long limit)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/store", base);
    const char *kv[] = {"EXEC_RESULTS_DIR", dir, NULL};
    ee_engine *e = st_engine(NULL, kv);
    char plan[256];
    snprintf(plan, sizeof plan, "{\"name\": \"store\", \"predictionsPerPeriod\": 100, "
                                "\"storageBytes\": %lld}", limit);
    cr_assert_eq(ee_quota_plan_put(e, plan, NULL), EE_OK, "%s", ee_error_last_message());
    char *out = NULL;
    ee_status st = ee_quota_subscription_put(
        e, "{\"orgId\": \"" ORG "\", \"plan\": \"store\", \"periodStart\": 0}", &out);
    cr_assert_eq(st, EE_OK, "%s", out ? out : "");
    ee_free(out);
    return e;
}

/* The organisation's stored bytes as the quota report shows them. */
static long long stored_bytes(ee_engine *e, const ee_principal *p)
{
    char *out = NULL;
    cr_assert_eq(ee_quota_usage(e, p, &out), EE_OK, "%s", out ? out : "");
    json_t *j = json_loads(out, 0, NULL);
    ee_free(out);
    json_t *v = json_object_get(json_object_get(j, "storage"), "usage");
    cr_assert(json_is_integer(v));
    long long n = (long long)json_integer_value(v);
    json_decref(j);
    return n;
}

static void sha_hex(const char *d, size_t n, char hex[65])
{
    unsigned char md[32];
    unsigned int len = 0;
    EVP_Digest(d, n, md, &len, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++)
        sprintf(hex + 2 * i, "%02x", md[i]);
}

static void put_ok(ee_engine *e, const ee_principal *p, const char *id, const char *d, size_t n,
                   ee__result_ref *ref)
{
    ee_status st = ee__results_put(e, p, id, d, n, ref);
    cr_assert_eq(st, EE_OK, "put %s: %s (%s)", id, ee_status_name(st), ee_error_last_message());
}

Test(exec_results, round_trip_with_digest_size_and_private_folders)
{
    char base[256];
    fresh_dir(base, sizeof base);
    ee_engine *e = store_engine(base, 1 << 20);
    ee_principal *p = st_principal("ws-a", ORG);
    const char data[] = "{\"output\": \"a large result\", \"bytes\": [0, 1, 2]}\n\0tail";
    size_t n = sizeof data - 1;
    ee__result_ref ref;
    put_ok(e, p, "exec-1", data, n, &ref);
    char want[65];
    sha_hex(data, n, want);
    cr_expect_str_eq(ref.sha256, want);
    cr_expect_eq(ref.bytes, (int64_t)n);
    cr_expect_neq(ref.storage_resv, 0);
    cr_expect_eq(stored_bytes(e, p), (long long)n, "the bytes count against the quota");

    char *got = NULL;
    size_t got_len = 0;
    cr_assert_eq(ee__results_get(e, "ws-a", "exec-1", &ref, &got, &got_len), EE_OK, "%s",
                 ee_error_last_message());
    cr_expect_eq(got_len, n);
    cr_expect_eq(memcmp(got, data, n), 0, "the same bytes, the NUL inside too");
    ee_free(got);

    /* The store and the workspace's folder are the owner's only. */
    char path[600];
    struct stat sb;
    snprintf(path, sizeof path, "%s/store", base);
    cr_assert_eq(stat(path, &sb), 0);
    cr_expect_eq(sb.st_mode & 0777, 0700, "store folder mode %o", sb.st_mode & 0777);
    snprintf(path, sizeof path, "%s/store/%s", base, "77732d61"); /* hex of ws-a */
    cr_assert_eq(stat(path, &sb), 0, "the workspace's folder is its id in hex");
    cr_expect_eq(sb.st_mode & 0777, 0700);
    snprintf(path, sizeof path, "%s/store/77732d61/%s.result", base, "657865632d31");
    cr_assert_eq(stat(path, &sb), 0, "one file per execution, its id in hex");
    cr_expect_eq(sb.st_mode & 0077, 0, "file mode %o", sb.st_mode & 0777);
    /* nothing but the result file: no temporary left behind */
    DIR *d = opendir(base);
    (void)d;
    closedir(d);
    snprintf(path, sizeof path, "%s/store/77732d61", base);
    d = opendir(path);
    int files = 0;
    for (struct dirent *de; (de = readdir(d)) != NULL;)
        files += de->d_name[0] != '.' || strlen(de->d_name) > 2;
    closedir(d);
    cr_expect_eq(files, 1);

    /* another workspace asking for it finds nothing */
    got = NULL;
    cr_expect_eq(ee__results_get(e, "ws-b", "exec-1", &ref, &got, &got_len), EE_ECORRUPT);
    cr_expect_null(got);

    ee_principal_free(p);
    ee_engine_close(e);
    rm_rf(base);
}

Test(exec_results, a_refused_quota_writes_nothing)
{
    char base[256];
    fresh_dir(base, sizeof base);
    ee_engine *e = store_engine(base, 1000);
    ee_principal *p = st_principal("ws-q", ORG);
    char big[1500];
    memset(big, 'x', sizeof big);
    ee__result_ref ref;
    ee_status st = ee__results_put(e, p, "exec-big", big, sizeof big, &ref);
    cr_expect_eq(st, EE_EQUOTA, "%s", ee_status_name(st));
    cr_expect_not_null(strstr(ee_error_last_message(), "storage"), "%s", ee_error_last_message());
    cr_expect_eq(ref.storage_resv, 0);
    cr_expect_eq(stored_bytes(e, p), 0, "nothing reserved");
    char path[600];
    struct stat sb;
    snprintf(path, sizeof path, "%s/store/77732d71", base);
    cr_expect_neq(stat(path, &sb), 0, "not even the workspace's folder was made");
    /* what fits still goes in, and the refusal counts what is there */
    put_ok(e, p, "exec-small", big, 600, &ref);
    cr_expect_eq(ee__results_put(e, p, "exec-more", big, 500, &ref), EE_EQUOTA);
    cr_expect_eq(stored_bytes(e, p), 600);
    char *got = NULL;
    size_t len;
    cr_expect_eq(ee__results_get(e, "ws-q", "exec-more", &ref, &got, &len), EE_ECORRUPT,
                 "the refused one is not there");
    ee_principal_free(p);
    ee_engine_close(e);
    rm_rf(base);
}

/* Change the stored file of (ws hex, id hex) with `how`. */
static void tamper(const char *base, const char *file, void (*how)(const char *path))
{
    char path[600];
    snprintf(path, sizeof path, "%s/store/%s", base, file);
    how(path);
}

static void flip_last_byte(const char *path)
{
    FILE *f = fopen(path, "r+b");
    cr_assert_not_null(f);
    cr_assert_eq(fseek(f, -1, SEEK_END), 0);
    int c = fgetc(f);
    cr_assert_eq(fseek(f, -1, SEEK_END), 0);
    fputc(c ^ 1, f);
    fclose(f);
}

static void truncate_one(const char *path)
{
    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0);
    cr_assert_eq(truncate(path, sb.st_size - 1), 0);
}

static void remove_it(const char *path)
{
    cr_assert_eq(unlink(path), 0);
}

Test(exec_results, a_changed_or_missing_file_is_corrupt)
{
    char base[256];
    fresh_dir(base, sizeof base);
    ee_engine *e = store_engine(base, 1 << 20);
    ee_principal *p = st_principal("ws-c", ORG);
    const char *file = "77732d63/657865632d74.result"; /* ws-c / exec-t */
    const char data[] = "the genuine output";
    ee__result_ref ref;
    char *got = NULL;
    size_t len = 0;

    put_ok(e, p, "exec-t", data, sizeof data - 1, &ref);
    tamper(base, file, flip_last_byte);
    cr_expect_eq(ee__results_get(e, "ws-c", "exec-t", &ref, &got, &len), EE_ECORRUPT);
    cr_expect_null(got);
    cr_expect_not_null(strstr(ee_error_last_message(), "SHA-256"), "%s", ee_error_last_message());

    put_ok(e, p, "exec-t", data, sizeof data - 1, &ref);
    tamper(base, file, truncate_one);
    cr_expect_eq(ee__results_get(e, "ws-c", "exec-t", &ref, &got, &len), EE_ECORRUPT);

    put_ok(e, p, "exec-t", data, sizeof data - 1, &ref);
    ee__result_ref wrong = ref;
    wrong.sha256[0] = wrong.sha256[0] == '0' ? '1' : '0';
    cr_expect_eq(ee__results_get(e, "ws-c", "exec-t", &wrong, &got, &len), EE_ECORRUPT,
                 "a reference whose digest is not the file's");
    wrong = ref;
    wrong.bytes = INT64_C(1) << 40;
    cr_expect_eq(ee__results_get(e, "ws-c", "exec-t", &wrong, &got, &len), EE_ECORRUPT,
                 "a reference whose size is not the file's (nothing that size is allocated)");

    tamper(base, file, remove_it);
    cr_expect_eq(ee__results_get(e, "ws-c", "exec-t", &ref, &got, &len), EE_ECORRUPT);
    cr_expect_not_null(strstr(ee_error_last_message(), "missing"), "%s", ee_error_last_message());
    cr_expect_null(got);
    ee_principal_free(p);
    ee_engine_close(e);
    rm_rf(base);
}

/* Every file under `dir` (recursively) must be <dir>/<hex>/<hex>.result. */
static const char *walk_root;
static int walk_bad;
static int check_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    const char *rel = path + strlen(walk_root);
    if (ftw->level == 0)
        return 0;
    const char *name = path + ftw->base;
    size_t hex = strspn(name, "0123456789abcdef");
    bool ok = (ftw->level == 1 && type == FTW_D && hex == strlen(name) && hex > 0) ||
              (ftw->level == 2 && type == FTW_F && hex > 0 && strcmp(name + hex, ".result") == 0);
    if (!ok) {
        fprintf(stderr, "unexpected entry %s\n", rel);
        walk_bad++;
    }
    return 0;
}

Test(exec_results, ids_cannot_leave_the_store)
{
    char base[256];
    fresh_dir(base, sizeof base);
    ee_engine *e = store_engine(base, 1 << 20);
    /* valid principal ids that are path words */
    const char *workspaces[] = {"..", ".", "...", "..:..", "ws@x"};
    const char *ids[] = {"../../escape", "/etc/passwd", "a/b", ".", "..", "x\\y", "%2e%2e",
                         "\xc3\xa9t\xc3\xa9", "id\n.result"};
    for (size_t w = 0; w < sizeof workspaces / sizeof workspaces[0]; w++) {
        ee_principal *p = st_principal(workspaces[w], ORG);
        for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
            ee__result_ref ref;
            put_ok(e, p, ids[i], "payload", 7, &ref);
            char *got = NULL;
            size_t len = 0;
            cr_expect_eq(ee__results_get(e, workspaces[w], ids[i], &ref, &got, &len), EE_OK,
                         "%s / %s: %s", workspaces[w], ids[i], ee_error_last_message());
            cr_expect(len == 7 && memcmp(got, "payload", 7) == 0);
            ee_free(got);
        }
        ee_principal_free(p);
    }
    /* Only the store was written: the base holds "store" and nothing else,
     * and the store only hex folders of hex .result files. */
    DIR *d = opendir(base);
    int entries = 0;
    for (struct dirent *de; (de = readdir(d)) != NULL;)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
            cr_expect_str_eq(de->d_name, "store");
            entries++;
        }
    closedir(d);
    cr_expect_eq(entries, 1);
    char store[600];
    snprintf(store, sizeof store, "%s/store", base);
    walk_root = store;
    walk_bad = 0;
    cr_assert_eq(nftw(store, check_entry, 8, FTW_PHYS), 0);
    cr_expect_eq(walk_bad, 0);

    /* Reads and deletes take any bytes for a workspace: still inside. */
    ee__result_ref none = {.bytes = 7};
    char *got = NULL;
    size_t len;
    const char *odd[] = {"../store/2e2e", "/", "a/../../b", "\x01\x02", "platform"};
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        cr_expect_eq(ee__results_get(e, odd[i], "../../escape", &none, &got, &len), EE_ECORRUPT);
        cr_expect_eq(ee__results_delete(e, odd[i], "../../escape", &none), EE_OK);
    }
    /* empty or over-long ids are refused */
    char longid[80];
    memset(longid, 'a', 65);
    longid[65] = '\0';
    ee_principal *p = st_principal("ws-l", ORG);
    ee__result_ref ref;
    cr_expect_eq(ee__results_put(e, p, longid, "x", 1, &ref), EE_EINVAL);
    cr_expect_eq(ee__results_put(e, p, "", "x", 1, &ref), EE_EINVAL);
    cr_expect_eq(ee__results_get(e, "", "x", &ref, &got, &len), EE_EINVAL);
    ee_principal_free(p);
    ee_engine_close(e);
    rm_rf(base);
}

typedef struct {
    ee_engine *e;
    const ee_principal *p;
    int thread;
    bool same_id;
    ee__result_ref ref;
    ee_status st;
} put_job;

#define THREADS 8
#define PUTS 10
#define SIZE 1000

static void *put_many(void *arg)
{
    put_job *j = arg;
    char data[SIZE];
    for (int i = 0; i < PUTS && j->st == EE_OK; i++) {
        char id[64];
        if (j->same_id)
            snprintf(id, sizeof id, "exec-shared");
        else
            snprintf(id, sizeof id, "exec-%d-%d", j->thread, i);
        memset(data, 'a' + j->thread, sizeof data);
        j->st = ee__results_put(j->e, j->p, id, data, sizeof data, &j->ref);
    }
    return NULL;
}

Test(exec_results, concurrent_puts)
{
    char base[256];
    fresh_dir(base, sizeof base);
    ee_engine *e = store_engine(base, 10 * THREADS * PUTS * SIZE);
    ee_principal *p = st_principal("ws-cc", ORG);
    pthread_t t[THREADS];
    put_job jobs[THREADS];
    for (int same = 0; same < 2; same++) {
        for (int i = 0; i < THREADS; i++) {
            jobs[i] = (put_job){.e = e, .p = p, .thread = i, .same_id = same == 1, .st = EE_OK};
            pthread_create(&t[i], NULL, put_many, &jobs[i]);
        }
        for (int i = 0; i < THREADS; i++) {
            pthread_join(t[i], NULL);
            cr_expect_eq(jobs[i].st, EE_OK, "thread %d: %s", i, ee_status_name(jobs[i].st));
        }
        if (!same) {
            cr_expect_eq(stored_bytes(e, p), THREADS * PUTS * SIZE, "every put counted once");
            for (int i = 0; i < THREADS; i++)
                for (int k = 0; k < PUTS; k++) {
                    char id[64], *got = NULL;
                    size_t len;
                    snprintf(id, sizeof id, "exec-%d-%d", i, k);
                    ee__result_ref ref = {.bytes = SIZE};
                    char data[SIZE];
                    memset(data, 'a' + i, sizeof data);
                    sha_hex(data, sizeof data, ref.sha256);
                    cr_expect_eq(ee__results_get(e, "ws-cc", id, &ref, &got, &len), EE_OK, "%s",
                                 id);
                    ee_free(got);
                }
        } else {
            /* 80 puts of one execution: one file, and one reservation of
             * its size beside the 80 distinct ones. */
            cr_expect_eq(stored_bytes(e, p), (THREADS * PUTS + 1) * SIZE,
                         "the replaced files' bytes were given back");
            int readable = 0;
            for (int i = 0; i < THREADS; i++) {
                char *got = NULL;
                size_t len;
                if (ee__results_get(e, "ws-cc", "exec-shared", &jobs[i].ref, &got, &len) == EE_OK)
                    readable++;
                ee_free(got);
            }
            cr_expect_eq(readable, 1, "the file is the last writer's, whole");
        }
    }
    ee_principal_free(p);
    ee_engine_close(e);
    rm_rf(base);
}

Test(exec_results, delete_gives_the_bytes_back_to_the_organisation)
{
    char base[256];
    fresh_dir(base, sizeof base);
    ee_engine *e = store_engine(base, 1 << 20);
    /* the organisation is not the workspace: delete is given only the
     * workspace, and the right organisation gets its bytes back */
    ee_principal *p = st_principal("ws-d", ORG);
    ee__result_ref a, b;
    put_ok(e, p, "exec-a", "0123456789", 10, &a);
    put_ok(e, p, "exec-b", "01234567890123456789", 20, &b);
    cr_expect_eq(stored_bytes(e, p), 30);
    cr_assert_eq(ee__results_delete(e, "ws-d", "exec-a", &a), EE_OK, "%s",
                 ee_error_last_message());
    cr_expect_eq(stored_bytes(e, p), 20, "the quota report shows the bytes given back");
    char *got = NULL;
    size_t len;
    cr_expect_eq(ee__results_get(e, "ws-d", "exec-a", &a, &got, &len), EE_ECORRUPT);
    cr_expect_eq(ee__results_delete(e, "ws-d", "exec-a", &a), EE_OK, "gone already: fine");
    cr_expect_eq(stored_bytes(e, p), 20, "and nothing given back twice");
    cr_expect_eq(ee__results_delete(e, "ws-d", "exec-b", NULL), EE_OK,
                 "the file says which reservation counts it");
    cr_expect_eq(stored_bytes(e, p), 0);
    /* an output replaced by a second put: the first one's bytes went back */
    put_ok(e, p, "exec-c", "0123456789", 10, &a);
    put_ok(e, p, "exec-c", "0123", 4, &b);
    cr_expect_eq(stored_bytes(e, p), 4);
    cr_expect_eq(ee__results_delete(e, "ws-d", "exec-c", &a), EE_OK, "a stale reference");
    cr_expect_eq(stored_bytes(e, p), 0);
    ee_principal_free(p);
    ee_engine_close(e);
    rm_rf(base);
}

Test(exec_results, an_empty_output_reserves_nothing)
{
    char base[256];
    fresh_dir(base, sizeof base);
    ee_engine *e = store_engine(base, 1 << 20);
    ee_principal *p = st_principal("ws-e", ORG);
    ee__result_ref ref;
    put_ok(e, p, "exec-0", NULL, 0, &ref);
    cr_expect_eq(ref.bytes, 0);
    cr_expect_eq(ref.storage_resv, 0);
    cr_expect_str_eq(ref.sha256, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    char *got = NULL;
    size_t len = 1;
    cr_expect_eq(ee__results_get(e, "ws-e", "exec-0", &ref, &got, &len), EE_OK);
    cr_expect_eq(len, 0);
    ee_free(got);
    cr_expect_eq(ee__results_delete(e, "ws-e", "exec-0", &ref), EE_OK);
    ee_principal_free(p);
    ee_engine_close(e);
    rm_rf(base);
}

Test(exec_results, the_store_is_beside_the_database_or_in_the_data_folder)
{
    char base[256], dir[1024], want[1024];
    fresh_dir(base, sizeof base);
    /* a SQLite file: results/ beside it */
    char uri[600];
    snprintf(uri, sizeof uri, "sqlite://%s/db/engine.db?synchronous=normal", base);
    ee_engine *e = st_engine(uri, NULL);
    cr_assert_eq(ee__results_dir(e, dir, sizeof dir), EE_OK);
    snprintf(want, sizeof want, "%s/db/results", base);
    cr_expect_str_eq(dir, want);
    ee_engine_close(e);
    /* no file: the user's data folder */
    char xdg[600];
    snprintf(xdg, sizeof xdg, "%s/xdg", base);
    setenv("XDG_DATA_HOME", xdg, 1);
    e = st_engine("memory:", NULL);
    cr_assert_eq(ee__results_dir(e, dir, sizeof dir), EE_OK);
    snprintf(want, sizeof want, "%s/xdg/execengine/results", base);
    cr_expect_str_eq(dir, want);
    ee_engine_close(e);
    unsetenv("XDG_DATA_HOME");
    setenv("HOME", base, 1);
    e = st_engine("memory:", NULL);
    cr_assert_eq(ee__results_dir(e, dir, sizeof dir), EE_OK);
    snprintf(want, sizeof want, "%s/.local/share/execengine/results", base);
    cr_expect_str_eq(dir, want);
    ee_engine_close(e);
    /* set: as set */
    const char *kv[] = {"EXEC_RESULTS_DIR", "/srv/results", NULL};
    e = st_engine("memory:", kv);
    cr_assert_eq(ee__results_dir(e, dir, sizeof dir), EE_OK);
    cr_expect_str_eq(dir, "/srv/results");
    ee_engine_close(e);
    rm_rf(base);
}

Test(exec_results, on_a_sqlite_database_the_store_is_beside_it_and_counts_durably)
{
    char base[256], uri[600], path[700];
    fresh_dir(base, sizeof base);
    snprintf(uri, sizeof uri, "sqlite://%s/data/engine.db", base);
    ee_config *cfg = st_config(uri, NULL);
    cr_assert_eq(ee_config_unset(cfg, "EE_COUNTERS_URI"), EE_OK); /* the database's own */
    ee_engine *e = NULL;
    cr_assert_eq(ee_engine_open(&e, cfg), EE_OK, "%s", ee_error_last_message());
    ee_config_free(cfg);
    ee_principal *p = st_principal("ws-s", "ws-s");
    ee__result_ref ref;
    put_ok(e, p, "exec-s", "sqlite-backed", 13, &ref);
    snprintf(path, sizeof path, "%s/data/results/77732d73/657865632d73.result", base);
    struct stat sb;
    cr_expect_eq(stat(path, &sb), 0, "beside the database: %s", path);
    cr_expect_eq(stored_bytes(e, p), 13);
    ee_engine_close(e);

    /* another engine (process) on the same database sees the bytes and the
     * file, and a delete there gives them back */
    cfg = st_config(uri, NULL);
    cr_assert_eq(ee_config_unset(cfg, "EE_COUNTERS_URI"), EE_OK);
    cr_assert_eq(ee_engine_open(&e, cfg), EE_OK, "%s", ee_error_last_message());
    ee_config_free(cfg);
    cr_expect_eq(stored_bytes(e, p), 13, "the reservation outlived the engine");
    char *got = NULL;
    size_t len = 0;
    cr_expect_eq(ee__results_get(e, "ws-s", "exec-s", &ref, &got, &len), EE_OK);
    cr_expect(len == 13 && memcmp(got, "sqlite-backed", 13) == 0);
    ee_free(got);
    cr_expect_eq(ee__results_delete(e, "ws-s", "exec-s", &ref), EE_OK, "%s",
                 ee_error_last_message());
    cr_expect_eq(stored_bytes(e, p), 0);
    cr_expect_neq(stat(path, &sb), 0);
    ee_principal_free(p);
    ee_engine_close(e);
    rm_rf(base);
}
