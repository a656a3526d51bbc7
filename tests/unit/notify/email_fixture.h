/*
 * The e-mail tests' fixture: the fake n8n of the execution tests
 * (tests/unit/exec/exec_fake.h) behind a transport whose mail slot goes to a
 * real libcurl transport (the SMTP sink, tests/support/smtp_sink.py) and
 * whose http slot also answers a fake Resend-style API at http://fake.resend;
 * an engine clock the tests move; helpers to start and stop the sink.
 */
#ifndef EE_TEST_EMAIL_FIXTURE_H
#define EE_TEST_EMAIL_FIXTURE_H

#include <dirent.h>
#include <openssl/evp.h>
#include <signal.h>
#include <sys/wait.h>

#include "../exec/exec_fake.h"
#include "source_dir.h"
#include "temp_dir.h"

#include "execengine/audit.h"
#include "execengine/notify.h"

/* exec_fake.h's, unused here */
static __attribute__((unused)) int (*const unused_fake_hits)(const char *) = fake_hits;

/* ---- the clock ---------------------------------------------------------------------- */

static _Atomic int64_t clock_offset_ms;

static int64_t test_clock(void *payload)
{
    (void)payload;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + clock_offset_ms;
}

/* ---- the fake API ------------------------------------------------------------------- */

typedef struct {
    pthread_mutex_t lock;
    json_t *requests;   /* {"auth", "idem", "body"} */
    int codes[16];      /* the answers to give, in order; then 200 */
    int ncodes, next;
} fake_api_t;

static fake_api_t fake_api;

static ee_status api_http(const ee_http_request *req, ee_http_response *resp)
{
    const void *data = NULL;
    size_t len = 0;
    ee_http_request_body(req, &data, &len);
    pthread_mutex_lock(&fake_api.lock);
    const char *auth = fake_request_header(req, "Authorization");
    const char *idem = fake_request_header(req, "Idempotency-Key");
    json_array_append_new(fake_api.requests,
                          json_pack("{s:s?, s:s?, s:s, s:s%}", "auth", auth, "idem", idem, "url",
                                    ee_http_request_url(req), "body", data != NULL ? data : "",
                                    len));
    int code = fake_api.next < fake_api.ncodes ? fake_api.codes[fake_api.next] : 200;
    fake_api.next++;
    pthread_mutex_unlock(&fake_api.lock);
    if (code >= 200 && code < 300)
        return fake_answer_json(resp, code, json_pack("{s:s}", "id", "re_msg_1"));
    return fake_answer_json(resp, code, json_pack("{s:s}", "message", "refused"));
}

static ee_transport *curl_transport;

static ee_status mixed_http(void *ctx, const ee_http_request *req, ee_http_response *resp)
{
    if (strncmp(ee_http_request_url(req), "http://fake.resend/", 19) == 0)
        return api_http(req, resp);
    return fake_http(ctx, req, resp);
}

/* Called after each message the real transport delivered (NULL: none). */
static void (*mail_hook)(void);

static ee_status mixed_mail(void *ctx, const ee_mail *msg)
{
    (void)ctx;
    ee_status s = ee_transport_mail(curl_transport, msg);
    if (s == EE_OK && mail_hook != NULL)
        mail_hook();
    return s;
}

/* ---- what the engines logged ------------------------------------------------------- */

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char *log_text;      /* every line of every engine, one per line */
static size_t log_len;

static void fixture_log(ee_log_level level, const char *module, const char *message,
                        void *payload)
{
    (void)level;
    (void)payload;
    pthread_mutex_lock(&log_lock);
    size_t n = strlen(module) + strlen(message) + 3;
    char *grown = realloc(log_text, log_len + n + 1);
    if (grown != NULL) {
        log_text = grown;
        log_len += (size_t)snprintf(log_text + log_len, n + 1, "%s: %s\n", module, message);
    }
    pthread_mutex_unlock(&log_lock);
}

/* Whether a logged line holds `needle`. */
static __attribute__((unused)) bool log_holds(const char *needle)
{
    pthread_mutex_lock(&log_lock);
    bool found = log_text != NULL && strstr(log_text, needle) != NULL;
    pthread_mutex_unlock(&log_lock);
    return found;
}

/* ---- the SMTP sink ------------------------------------------------------------------- */

typedef struct {
    pid_t pid;
    int port;
    char dir[64];
    /* optional, kept for restarts: STARTTLS required with this certificate
     * and key; a login required, only user/pass accepted (auth.log) */
    const char *cert, *key, *user, *pass;
} smtp_sink;

/* Start tests/support/smtp_sink.py on `port` (0: a free one). Fails the
 * test, never skips it, when the server does not start. */
static __attribute__((unused)) void sink_start(smtp_sink *s, int port)
{
    /* found from this header's own path: integration tests have no EE_SOURCE_DIR */
    char script[1024];
    snprintf(script, sizeof script, "%s", __FILE__); /* <root>/tests/unit/notify/email_fixture.h */
    for (int up = 0; up < 3; up++) {
        char *slash = strrchr(script, '/');
        cr_assert_not_null(slash);
        *slash = '\0';
    }
    strncat(script, "/support/smtp_sink.py", sizeof script - strlen(script) - 1);
    char portbuf[16];
    snprintf(portbuf, sizeof portbuf, "%d", port);
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        const char *argv[12] = {"python3", script, s->dir, portbuf};
        int argc = 4;
        if (s->cert != NULL) {
            argv[argc++] = "--tls";
            argv[argc++] = s->cert;
            argv[argc++] = s->key;
        }
        if (s->user != NULL) {
            argv[argc++] = "--auth";
            argv[argc++] = s->user;
            argv[argc++] = s->pass;
        }
        argv[argc] = NULL;
        execvp("python3", (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    FILE *in = fdopen(fds[0], "r");
    char line[64] = "";
    bool got = fgets(line, sizeof line, in) != NULL;
    fclose(in);
    s->pid = pid;
    cr_assert(got, "the SMTP sink did not start (python3-aiosmtpd installed? scripts/setup)");
    cr_assert_eq(sscanf(line, "PORT %d", &s->port), 1, "the sink said: %s", line);
}

static __attribute__((unused)) void sink_stop(smtp_sink *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
    }
}

/* The AUTH commands the sink received (its auth.log, malloc'ed; "" when
 * none). */
static __attribute__((unused)) char *sink_auth_log(const smtp_sink *s)
{
    char path[128];
    snprintf(path, sizeof path, "%s/auth.log", s->dir);
    char *text = calloc(1, 1 << 16);
    FILE *f = fopen(path, "rb");
    if (f != NULL) {
        size_t len = fread(text, 1, (1 << 16) - 1, f);
        text[len] = '\0';
        fclose(f);
    }
    return text;
}

/* A self-signed certificate for 127.0.0.1 and its key, made by the openssl
 * command: DIR/cert.pem, DIR/key.pem. */
static __attribute__((unused)) void make_cert(const char *dir, char cert[128], char key[128])
{
    snprintf(cert, 128, "%s/cert.pem", dir);
    snprintf(key, 128, "%s/key.pem", dir);
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout %s -out %s -days 2 -subj /CN=127.0.0.1 "
             "-addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1",
             key, cert);
    cr_assert_eq(system(cmd), 0, "openssl could not make a certificate");
}

/* The messages the sink accepted. */
static __attribute__((unused)) int sink_count(const smtp_sink *s)
{
    DIR *d = opendir(s->dir);
    cr_assert_not_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += strstr(e->d_name, ".eml") != NULL;
    closedir(d);
    return n;
}

/* Message n (from 1), malloc'ed text. */
static __attribute__((unused)) char *sink_message(const smtp_sink *s, int n)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%d.eml", s->dir, n);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "no message %d", n);
    char *text = calloc(1, 1 << 20);
    size_t len = fread(text, 1, (1 << 20) - 1, f);
    fclose(f);
    text[len] = '\0';
    return text;
}

/* The decoded base64 body of a message (malloc'ed). */
static __attribute__((unused)) char *mime_body(const char *msg)
{
    const char *at = strstr(msg, "\r\n\r\n");
    if (at == NULL)
        at = strstr(msg, "\n\n");
    cr_assert_not_null(at, "no body");
    char *b64 = malloc(strlen(at) + 1);
    size_t k = 0;
    for (const char *p = at; *p != '\0'; p++)
        if (*p != '\r' && *p != '\n')
            b64[k++] = *p;
    char *out = calloc(1, k + 4);
    int n = EVP_DecodeBlock((unsigned char *)out, (unsigned char *)b64, (int)k);
    cr_assert_geq(n, 0, "body not base64");
    free(b64);
    return out;
}

/* ---- the engine ---------------------------------------------------------------------- */

/* The real transport trusts `ca_file` (NULL: the system's CAs) from now
 * on: the CA option of the transport, as a host gives it. */
static __attribute__((unused)) void fixture_trust(const char *ca_file)
{
    ee_transport_options *o = NULL;
    cr_assert_eq(ee_transport_options_new(&o), EE_OK);
    cr_assert_eq(ee_transport_options_set_string(o, "ca_file", ca_file), EE_OK);
    ee_transport_free(curl_transport);
    cr_assert_eq(ee_transport_curl_new(&curl_transport, o), EE_OK);
    ee_transport_options_free(o);
}

static ee_transport *mixed_transport(void)
{
    cr_assert_eq(ee_transport_curl_new(&curl_transport, NULL), EE_OK);
    ee_n8n_free(fake_client);
    ee_transport_free(fake_transport);
    ee_transport_backend b = {EE_TRANSPORT_BACKEND_VERSION, EE_TRANSPORT_THREAD_SAFE, mixed_http,
                              mixed_mail, NULL};
    cr_assert_eq(ee_transport_new_custom(&fake_transport, &b, NULL, NULL), EE_OK);
    cr_assert_eq(ee_n8n_new(&fake_client, fake_transport, "http://fake.n8n", "fake-key"), EE_OK);
    return fake_transport;
}

static void fixture_setup(void)
{
    fake_setup();
    mixed_transport();
    pthread_mutex_init(&fake_api.lock, NULL);
    fake_api.requests = json_array();
    fake_api.ncodes = fake_api.next = 0;
    clock_offset_ms = 0;
}

static void fixture_teardown(void)
{
    fake_teardown();
    ee_transport_free(curl_transport);
    curl_transport = NULL;
    json_decref(fake_api.requests);
    mail_hook = NULL;
    pthread_mutex_lock(&log_lock);
    free(log_text);
    log_text = NULL;
    log_len = 0;
    pthread_mutex_unlock(&log_lock);
}

/* An engine over the fake n8n and `kv` (key, value, ..., NULL) on the
 * SQLite file `db` (or the storage URI `db`, when it has "://"), the test
 * clock, no outbox thread. */
static __attribute__((unused)) ee_engine *email_engine(const char *db, const char *const *kv)
{
    char uri[1024];
    snprintf(uri, sizeof uri, "%s%s", strstr(db, "://") != NULL ? "" : "sqlite://", db);
    ee_config *cfg = ee_test_config_new(uri, test_clock, NULL);
    ee_test_config_set(cfg, "EXEC_WORKERS", "2");
    ee_test_config_set(cfg, "EXEC_POLL_MS", "50");
    ee_test_config_set(cfg, "EMAIL_POLL_MS", "0");
    ee_test_config_set(cfg, "EMAIL_BACKOFF_MS", "60000");
    ee_test_config_set(cfg, "PLATFORM_FROM_EMAIL", "results@example.com");
    cr_assert_eq(ee_config_set_log(cfg, fixture_log, EE_LOG_DEBUG, NULL), EE_OK);
    char data_dir[1024];
    cr_assert(ee_test_source_data_dir(data_dir, sizeof data_dir));
    ee_test_config_set(cfg, "EE_DATA_DIR", data_dir);
    for (size_t i = 0; kv != NULL && kv[i] != NULL; i += 2)
        ee_test_config_set(cfg, kv[i], kv[i + 1]);
    ee_engine *e = fake_engine_config(cfg);
    fake_sync(e);
    return e;
}

/* Run the workflow synced from `n8n_id` to its end; its id into id[25]. */
static void run_to_end(ee_engine *e, const ee_principal *p, const char *n8n_id,
                       const char *request, char id[25])
{
    char wf[25], *out = NULL;
    entry_id(e, n8n_id, wf);
    ee_status st = ee_exec_run(e, p, wf, request, &out);
    cr_assert_eq(st, EE_OK, "run: %s", out);
    json_t *doc = parse_doc(out);
    ee_free(out);
    snprintf(id, 25, "%s", sget(doc, "_id"));
    json_decref(doc);
}

static __attribute__((unused)) json_t *outbox_stats(ee_engine *e)
{
    char *out = NULL;
    cr_assert_eq(ee_email_outbox_stats(e, &out), EE_OK, "%s", out);
    json_t *doc = parse_doc(out);
    ee_free(out);
    return doc;
}

static int64_t stat_of(ee_engine *e, const char *key)
{
    json_t *doc = outbox_stats(e);
    int64_t v = (int64_t)json_integer_value(json_object_get(doc, key));
    json_decref(doc);
    return v;
}

/* The execution as ee_exec_get() gives it. */
static __attribute__((unused)) json_t *exec_doc(ee_engine *e, const ee_principal *p, const char *id)
{
    char *out = NULL;
    cr_assert_eq(ee_exec_get(e, p, id, &out), EE_OK, "%s", out);
    json_t *doc = parse_doc(out);
    ee_free(out);
    return doc;
}

/* Audit entries of `action` in the principal's workspace. */
static int audit_count(ee_engine *e, const ee_principal *p, const char *action)
{
    char q[128], *out = NULL;
    snprintf(q, sizeof q, "{\"action\": \"%s\", \"limit\": 500}", action);
    cr_assert_eq(ee_audit_query(e, p, q, &out), EE_OK, "%s", out);
    json_t *doc = parse_doc(out);
    int n = (int)json_array_size(json_object_get(doc, "data"));
    json_decref(doc);
    ee_free(out);
    return n;
}

/* Whether the file `path` holds `needle` anywhere (a canary scan). */
static __attribute__((unused)) bool file_holds(const char *path, const char *needle)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return false;
    size_t n = strlen(needle), cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    bool found = false;
    for (;;) {
        size_t r = fread(buf + len, 1, cap - len, f);
        len += r;
        buf[len < cap ? len : cap - 1] = '\0';
        if (memmem(buf, len, needle, n) != NULL) {
            found = true;
            break;
        }
        if (r == 0)
            break;
        if (len > n) {
            memmove(buf, buf + len - n, n);
            len = n;
        }
    }
    free(buf);
    fclose(f);
    return found;
}

#endif
