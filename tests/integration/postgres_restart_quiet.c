/*
 * The library never prints (execengine/log.h): during a PostgreSQL restart
 * libpq used to write "WARNING: terminating connection due to immediate
 * shutdown command" to stderr from every idle connection. An engine on the
 * `servers` fixture's PostgreSQL (storage and its "storage:" counters) is
 * used, the server is restarted with `pg_ctl restart -m immediate`, and the
 * engine used again, with the process's stderr redirected to a file: the
 * file stays empty and the notice reaches the log callback instead.
 *
 * Restarting the shared server disturbs any test running at the same time:
 * tests/CMakeLists.txt runs this one serially.
 */
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <execengine/execengine.h>

#include "core/core.h"
#include "test_servers.h"
#include "engine/engine.h"

static char log_text[16384];
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static void capture(ee_log_level level, const char *module, const char *line, void *payload)
{
    (void)level, (void)payload;
    pthread_mutex_lock(&log_lock);
    size_t n = strlen(log_text);
    snprintf(log_text + n, sizeof log_text - n, "%s: %s\n", module, line);
    pthread_mutex_unlock(&log_lock);
}

static void data_dir(char *out, size_t cap)
{
    const char *env = getenv("EE_TEST_SERVERS_ENV");
    cr_assert_not_null(env, "EE_TEST_SERVERS_ENV is not set: run this test through ctest");
    char copy[1024];
    snprintf(copy, sizeof copy, "%s", env);
    snprintf(out, cap, "%s/pg", dirname(copy));
}

/* pg_ctl restart, in a child that keeps none of our descriptors: the new
 * postmaster must not hold ctest's output pipe (or our saved stderr) open. */
static void restart_postgres(void)
{
    char dir[1100], cmd[3000];
    data_dir(dir, sizeof dir);
    snprintf(cmd, sizeof cmd,
             "bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1); "
             "as_pg() { if [ \"$(id -u)\" = 0 ]; then runuser -u postgres -- \"$@\"; "
             "else \"$@\"; fi; }; "
             "as_pg \"$bin/pg_ctl\" -D '%s' -l '%s/server.log' -m immediate -w -t 60 restart",
             dir, dir);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        for (int fd = 3; fd < 4096; fd++)
            close(fd);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "pg_ctl restart failed");
}

static ee_status use_storage(ee_engine *e)
{
    uint64_t n = 0;
    ee_storage_query_spec q = {.version = EE_STORAGE_QUERY_VERSION};
    return ee_storage_count(ee__engine_storage(e), "credentials", "quiet-test", &q, &n);
}

static ee_status use_counters(ee_engine *e)
{
    ee_counter_result r;
    return ee_counters_get(ee__engine_counters(e), "quiet-test", ee_engine_now_ms(e), &r);
}

/* The first calls after a restart may meet a dropped connection; the
 * handle recovers by itself. */
static ee_status until_ok(ee_status (*use)(ee_engine *), ee_engine *e)
{
    ee_status st = EE_ENETWORK;
    for (int i = 0; i < 50 && st != EE_OK; i++) {
        st = use(e);
        if (st != EE_OK)
            usleep(100 * 1000);
    }
    return st;
}

Test(postgres_restart, library_prints_nothing_on_stderr, .timeout = 300)
{
    char data[1100];
    snprintf(data, sizeof data, "%s", __FILE__);
    for (int up = 0; up < 3; up++)
        *strrchr(data, '/') = '\0';
    strncat(data, "/data", sizeof data - strlen(data) - 1);

    char err_path[] = "/tmp/ee-stderr-XXXXXX";
    int err_fd = mkstemp(err_path);
    cr_assert_geq(err_fd, 0);
    fflush(stderr);
    int saved = dup(2);
    cr_assert_eq(dup2(err_fd, 2), 2);

    ee_config *cfg = NULL;
    cr_assert_eq(ee_config_new(&cfg), EE_OK);
    cr_assert_eq(ee_config_set(cfg, "API_KEY_ENCRYPTION_SECRET",
                               "test-secret-0123456789abcdef0123456789"), EE_OK);
    cr_assert_eq(ee_config_set(cfg, "EE_DATA_DIR", data), EE_OK);
    cr_assert_eq(ee_config_set(cfg, "EE_STORAGE_URI", ee_test_server_uri("EE_TEST_POSTGRES_URI")),
                 EE_OK);
    cr_assert_eq(ee_config_set(cfg, "EE_COUNTERS_URI", "storage:"), EE_OK);
    cr_assert_eq(ee_config_set_log(cfg, capture, EE_LOG_DEBUG, NULL), EE_OK);
    ee_engine *e = NULL;
    ee_status st = ee_engine_open(&e, cfg);
    ee_config_free(cfg);
    cr_assert_eq(st, EE_OK, "%s", ee_error_last_message());
    cr_assert_eq(use_storage(e), EE_OK, "%s", ee_error_last_message());
    cr_assert_eq(use_counters(e), EE_OK, "%s", ee_error_last_message());

    restart_postgres();

    st = until_ok(use_storage, e);
    cr_expect_eq(st, EE_OK, "storage after the restart: %s", ee_error_last_message());
    st = until_ok(use_counters, e);
    cr_expect_eq(st, EE_OK, "counters after the restart: %s", ee_error_last_message());
    ee_engine_close(e);

    fflush(stderr);
    cr_assert_eq(dup2(saved, 2), 2);
    close(saved);
    struct stat sb;
    cr_assert_eq(fstat(err_fd, &sb), 0);
    char printed[2048] = "";
    ssize_t got = pread(err_fd, printed, sizeof printed - 1, 0);
    printed[got > 0 ? got : 0] = '\0';
    close(err_fd);
    unlink(err_path);
    cr_expect_eq(sb.st_size, 0, "the library printed %lld bytes: %s", (long long)sb.st_size,
                 printed);
    pthread_mutex_lock(&log_lock);
    cr_expect(strstr(log_text, "terminating connection") != NULL,
              "the server's notice reaches the log callback instead; log:\n%s", log_text);
    pthread_mutex_unlock(&log_lock);
}
