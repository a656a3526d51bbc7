/*
 * bench_server: the example REST server (examples/server) under load from
 * wrk on loopback, bounded in time (5 s per route, 2 threads, 16
 * connections; --quick: 2 s), three routes in the same run:
 *   server.healthz   GET /healthz: no library call, the HTTP floor
 *   server.catalog   GET /api/engines/catalog: token, ee_catalog_list(), answer
 *   server.execute   POST /api/engines/execute/{id}: a synchronous run
 *                    (ee_exec_run()) against an n8n that answers at once
 *                    (a libmicrohttpd responder in this process)
 * Each line reports wrk's p50 and p99 latency (ns) beside server.healthz's
 * p50 as the baseline; "added_p50_ns" = route p50 - healthz p50 is what the
 * engine adds per request (target on server.catalog: under 100 us). The
 * same three then run again on one connection (".c1" names): with 16
 * connections on a small machine the p50 is mostly queueing, with one it
 * is each request's own latency.
 * The server runs on a fresh SQLite store with a plan without limits (so
 * that no run is refused). Never fails: problems print
 * {"bench": ..., "skipped": reason}.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "bench_util.h"

#if EE_WITH_MHD && defined(EE_BENCH_SERVER_BIN)
#include <microhttpd.h>

#define TOKEN "bench-token-0123456789"
#define ADMIN "bench-admin-0123456789"

static int g_seconds = 5;

static void skipped(const char *bench, const char *why)
{
    printf("{\"bench\": \"%s\", \"backend\": \"sqlite\", \"skipped\": \"%s\"}\n", bench, why);
    fflush(stdout);
}

/* ---- the instant n8n --------------------------------------------------------- */

#define WORKFLOW                                                                                   \
    "{\"id\": \"benchEcho00001\", \"name\": \"Bench echo\", \"active\": true,"                    \
    " \"isArchived\": false, \"versionId\": \"v1\", \"updatedAt\": \"2026-01-01T00:00:00.000Z\"," \
    " \"tags\": [], \"connections\": {}, \"nodes\": [{\"name\": \"Webhook\", \"type\":"          \
    " \"n8n-nodes-base.webhook\", \"webhookId\": \"bench\", \"parameters\": {\"path\": \"bench\"," \
    " \"httpMethod\": \"POST\", \"responseMode\": \"lastNode\"}}]}"
static const char WORKFLOWS[] = "{\"data\": [" WORKFLOW "], \"nextCursor\": null}";
static const char ONE[] = WORKFLOW;
static const char ANSWER[] = "{\"status\": \"completed\", \"echo\": \"bench\"}";
static const char NOTFOUND[] = "{\"message\": \"Not Found\"}";

static enum MHD_Result n8n_handle(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **state)
{
    (void)cls, (void)method, (void)version, (void)upload;
    if (*state == NULL) {
        *state = (void *)1;
        return MHD_YES;
    }
    if (*upload_size != 0) {
        *upload_size = 0; /* the trigger's body is not needed */
        return MHD_YES;
    }
    const char *body = NOTFOUND;
    unsigned code = 404;
    if (strncmp(url, "/webhook/", 9) == 0)
        body = ANSWER, code = 200;
    else if (strcmp(url, "/api/v1/workflows") == 0)
        body = WORKFLOWS, code = 200;
    else if (strncmp(url, "/api/v1/workflows/", 18) == 0)
        body = ONE, code = 200;
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ret;
}

/* ---- a blocking HTTP/1.1 client for set-up ------------------------------------- */

/* The status of one request (its body in buf, NUL-terminated); -1. */
static int http(int port, const char *method, const char *path, const char *token,
                const char *body, char *buf, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    char req[1024];
    int n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                     "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     method, path, token, body ? strlen(body) : 0, body ? body : "");
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    size_t len = 0;
    ssize_t got;
    while (len + 1 < cap && (got = read(fd, buf + len, cap - len - 1)) > 0)
        len += (size_t)got;
    buf[len] = '\0';
    close(fd);
    int status = -1;
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
        return -1;
    char *b = strstr(buf, "\r\n\r\n");
    if (b != NULL)
        memmove(buf, b + 4, strlen(b + 4) + 1);
    return status;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
        port = ntohs(sa.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    int ok = fputs(text, f) >= 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* ---- wrk ------------------------------------------------------------------------ */

/* "123.45us" / "1.20ms" / "2.00s" -> ns. */
static uint64_t wrk_time(const char *s)
{
    char *end = NULL;
    double v = strtod(s, &end);
    if (end == s)
        return 0;
    if (strncmp(end, "us", 2) == 0)
        return (uint64_t)(v * 1e3);
    if (strncmp(end, "ms", 2) == 0)
        return (uint64_t)(v * 1e6);
    if (strncmp(end, "s", 1) == 0)
        return (uint64_t)(v * 1e9);
    if (strncmp(end, "m", 1) == 0)
        return (uint64_t)(v * 60e9);
    return 0;
}

typedef struct {
    uint64_t p50, p99;
    double rps;
    long requests, non2xx, errors;
} wrk_result;

/* Run wrk against `url` with `conns` connections (2 threads; 1 for one
 * connection), `script` a Lua file or NULL: 0 and *out; -1. */
static int run_wrk(const char *url, const char *script, int conns, wrk_result *out)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "wrk -t%d -c%d -d%ds --latency -H 'Authorization: Bearer %s' %s%s '%s' 2>&1",
             conns > 1 ? 2 : 1, conns, g_seconds, TOKEN, script ? "-s " : "",
             script ? script : "", url);
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        return -1;
    memset(out, 0, sizeof *out);
    char line[512];
    while (fgets(line, sizeof line, p) != NULL) {
        char *s = line;
        while (*s == ' ' || *s == '\t')
            s++;
        if (strncmp(s, "50%", 3) == 0)
            out->p50 = wrk_time(s + 3 + strspn(s + 3, " \t"));
        else if (strncmp(s, "99%", 3) == 0)
            out->p99 = wrk_time(s + 3 + strspn(s + 3, " \t"));
        else if (strncmp(s, "Requests/sec:", 13) == 0)
            out->rps = strtod(s + 13, NULL);
        else if (strstr(s, "requests in") != NULL)
            out->requests = strtol(s, NULL, 10);
        else if (strncmp(s, "Non-2xx or 3xx responses:", 25) == 0)
            out->non2xx = strtol(s + 25, NULL, 10);
        else if (strncmp(s, "Socket errors:", 14) == 0) {
            long a = 0, b = 0, c = 0, d = 0;
            sscanf(s, "Socket errors: connect %ld, read %ld, write %ld, timeout %ld", &a, &b,
                   &c, &d);
            out->errors = a + b + c + d;
        }
    }
    int rc = pclose(p);
    return rc == 0 && out->p50 > 0 ? 0 : -1;
}

static void report(const char *bench, const char *baseline, int conns, const wrk_result *r,
                   const wrk_result *base)
{
    char extra[256];
    snprintf(extra, sizeof extra,
             "\"added_p50_ns\": %lld, \"requests\": %ld, \"rps\": %.0f, \"non2xx\": %ld, "
             "\"socket_errors\": %ld, \"seconds\": %d, \"connections\": %d",
             (long long)r->p50 - (long long)base->p50, r->requests, r->rps, r->non2xx,
             r->errors, g_seconds, conns);
    bench_report(bench, "sqlite", extra, r->p50, r->p99, baseline, base->p50);
}

/* The three routes with `conns` connections; names get `suffix`. */
static void run_set(int port, const char *execute_path, const char *script, int conns,
                    const char *suffix)
{
    char url[256], name[64], base_name[64];
    wrk_result healthz, catalog, execute;
    snprintf(base_name, sizeof base_name, "server.healthz%s", suffix);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/healthz", port);
    if (run_wrk(url, NULL, conns, &healthz) != 0) {
        skipped(base_name, "wrk failed");
        return;
    }
    report(base_name, base_name, conns, &healthz, &healthz);
    snprintf(name, sizeof name, "server.catalog%s", suffix);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/api/engines/catalog", port);
    if (run_wrk(url, NULL, conns, &catalog) == 0)
        report(name, base_name, conns, &catalog, &healthz);
    else
        skipped(name, "wrk failed");
    snprintf(name, sizeof name, "server.execute%s", suffix);
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, execute_path);
    if (run_wrk(url, script, conns, &execute) == 0)
        report(name, base_name, conns, &execute, &healthz);
    else
        skipped(name, "wrk failed");
}

int main(int argc, char **argv)
{
    if (bench_quick(argc, argv))
        g_seconds = 2;
    if (system("command -v wrk >/dev/null 2>&1") != 0) {
        skipped("server", "wrk is not installed (scripts/setup installs it)");
        return 0;
    }
    if (access(EE_BENCH_SERVER_BIN, X_OK) != 0) {
        skipped("server", "execengine-server is not built");
        return 0;
    }
    signal(SIGPIPE, SIG_IGN);
    struct MHD_Daemon *n8n = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL_INTERNAL_THREAD, 0, NULL, NULL,
        n8n_handle, NULL, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)2, MHD_OPTION_END);
    if (n8n == NULL) {
        skipped("server", "cannot start the instant n8n");
        return 0;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(n8n, MHD_DAEMON_INFO_BIND_PORT);
    int n8n_port = info ? info->port : 0;

    char dir[] = "/tmp/ee-bench-server.XXXXXX";
    if (mkdtemp(dir) == NULL) {
        MHD_stop_daemon(n8n);
        skipped("server", "cannot create a temporary folder");
        return 0;
    }
    char path[1200], data[1100];
    snprintf(data, sizeof data, "%s/data", dir);
    mkdir(data, 0700);
    static const char *const files[] = {"categories.json", "cost_rules.json", "gateway.json",
                                        "integrations.json", "prices.json", NULL};
    for (size_t i = 0; files[i] != NULL; i++) {
        char src[1200];
        snprintf(src, sizeof src, "%s/%s", bench_data_dir(), files[i]);
        snprintf(path, sizeof path, "%s/%s", data, files[i]);
        if (symlink(src, path) != 0)
            fprintf(stderr, "bench_server: symlink %s: %s\n", path, strerror(errno));
    }
    snprintf(path, sizeof path, "%s/plans.json", data);
    write_file(path, "{\"version\": 1, \"defaultPlan\": \"bench\", \"plans\": [{\"name\": "
                     "\"bench\", \"predictionsPerPeriod\": -1, \"storageBytes\": -1, "
                     "\"executionsPerUserPerHour\": -1, \"concurrentExecutionsPerWorkspace\": "
                     "1000, \"monthlySpendCapNanoUsd\": -1, \"period\": \"calendarMonth\", "
                     "\"failedRunsConsume\": false}]}\n");
    char tokens[1200];
    snprintf(tokens, sizeof tokens, "%s/tokens.json", dir);
    write_file(tokens, "{\"tokens\": [{\"token\": \"" TOKEN "\", \"workspaceId\": \"ws-bench\", "
                       "\"userId\": \"u-bench\", \"role\": \"user\"}, {\"token\": \"" ADMIN
                       "\", \"workspaceId\": \"ws-ops\", \"userId\": \"u-ops\", \"role\": "
                       "\"admin\"}]}\n");
    char script[1200];
    snprintf(script, sizeof script, "%s/execute.lua", dir);
    write_file(script, "wrk.method = \"POST\"\n"
                       "wrk.body = '{\"parameters\": {\"text\": \"bench\"}}'\n"
                       "wrk.headers[\"Content-Type\"] = \"application/json\"\n");

    int port = free_port();
    pid_t pid = fork();
    if (pid == 0) {
        char addr[64], storage[1200], n8n_url[64];
        snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
        snprintf(storage, sizeof storage, "sqlite://%s/engine.db", dir);
        snprintf(n8n_url, sizeof n8n_url, "http://127.0.0.1:%d", n8n_port);
        setenv("EE_SERVER_ADDR", addr, 1);
        setenv("EE_SERVER_TOKENS", tokens, 1);
        setenv("EE_STORAGE_URI", storage, 1);
        setenv("EE_DATA_DIR", data, 1);
        setenv("N8N_BASE_URL", n8n_url, 1);
        setenv("N8N_API_KEY", "bench-n8n-key", 1);
        setenv("API_KEY_ENCRYPTION_SECRET", "bench-secret-0123456789-0123456789-0123456789", 1);
        setenv("MAX_EXECUTIONS_PER_USER_PER_HOUR", "1000000000", 1);
        setenv("MAX_CONCURRENT_EXECUTIONS", "64", 1);
        setenv("EXEC_WORKERS", "16", 1);
        if (freopen("/dev/null", "w", stderr) == NULL)
            _exit(127);
        execl(EE_BENCH_SERVER_BIN, "execengine-server", (char *)NULL);
        _exit(127);
    }
    char buf[65536];
    int up = 0;
    for (int i = 0; i < 200 && !up; i++) {
        up = http(port, "GET", "/healthz", "", NULL, buf, sizeof buf) == 200;
        if (!up)
            usleep(50 * 1000);
    }
    char wf[64] = "";
    const char *why = NULL;
    if (!up)
        why = "the server did not start";
    else if (http(port, "POST", "/api/engines/sync-workflows", ADMIN, NULL, buf, sizeof buf) !=
             200)
        why = "sync-workflows failed";
    else {
        const char *id = strstr(buf, "\"id\":\"");
        if (id == NULL || sscanf(id + 6, "%63[^\"]", wf) != 1)
            why = "no workflow after the sync";
    }
    char execute_path[160];
    snprintf(execute_path, sizeof execute_path, "/api/engines/execute/%s", wf);
    if (why == NULL) {
        int st = http(port, "POST", execute_path, TOKEN, "{\"parameters\": {\"text\": \"x\"}}",
                      buf, sizeof buf);
        if (st != 200)
            why = "a first execute failed";
    }
    if (why != NULL) {
        skipped("server", why);
    } else {
        /* 16 connections (throughput, queueing included), then one (each
         * request's own latency: the engine's added cost reads best here). */
        run_set(port, execute_path, script, 16, "");
        run_set(port, execute_path, script, 1, ".c1");
    }
    kill(pid, SIGTERM);
    int status = 0;
    waitpid(pid, &status, 0);
    MHD_stop_daemon(n8n);
    char rm[1300];
    snprintf(rm, sizeof rm, "rm -rf '%s'", dir);
    if (system(rm) != 0)
        fprintf(stderr, "bench_server: could not remove %s\n", dir);
    return 0;
}

#else

int main(void)
{
    printf("{\"bench\": \"server\", \"backend\": \"sqlite\", \"skipped\": \"built without "
           "libmicrohttpd or without examples/server\"}\n");
    return 0;
}

#endif
