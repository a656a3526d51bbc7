/*
 * libFuzzer: arbitrary bytes as what a server sends the engine's own
 * transport (ee_transport_curl_new()) over the wire: the raw HTTP answer
 * of an n8n, OpenRouter or e-mail API (status line, headers, chunked or
 * compressed body), or the replies of an SMTP server. A thread of the
 * target listens on loopback; for each input it accepts one connection,
 * writes the rest of the input at once, half-closes and drains what the
 * client sends. The first byte picks the request:
 *   0  GET          2  GET with a stream callback that stops after the
 *   1  POST            byte count the second byte picks (x64; 0: never)
 *   3  SMTP submission of a small message (bit 6 of the first byte: with
 *      a login whose password is a canary, bit 7: TLS required)
 * Requests ask for "Connection: close", no retries, a 64 KiB body cap,
 * 3 s to answer.
 * Invariants: the status is one transport.h documents (never EE_ENOMEM
 * or EE_EIO); EE_ECANCELLED exactly when the stream callback stopped;
 * an answer's status is 100..999 and its body within the cap (the cap
 * holds after decompression); the message and the error document are
 * valid (JSON) and never hold the password; every call returns within
 * libFuzzer's -timeout.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz_engine.h"

#define PASSWORD "smtp-FZCANARY-pass-5e6f"
#define CAP 65536

/* ---- the server ------------------------------------------------------------------ */

static struct {
    pthread_mutex_t lock;
    uint8_t *data;       /* what the next connection is sent (a copy) */
    size_t len;
    unsigned gen;        /* the input being run */
    bool done;           /* its call has returned */
    int fd;              /* listening socket */
    int port;
} srv = {PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0, false, -1, 0};

static void serve_one(int c)
{
    pthread_mutex_lock(&srv.lock);
    unsigned gen = srv.gen;
    size_t len = srv.len;
    uint8_t *data = malloc(len + 1);
    CHECK(data != NULL);
    memcpy(data, srv.data, len);
    pthread_mutex_unlock(&srv.lock);
    /* libFuzzer's -timeout alarm (SIGALRM) may interrupt this thread's
     * calls: EINTR is tried again, so the answer is always sent whole */
    for (size_t at = 0; at < len;) {
        ssize_t n = send(c, data + at, len - at, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        at += (size_t)n;
    }
    free(data);
    shutdown(c, SHUT_WR);
    /* drain until the client closes, or its call has returned */
    char buf[4096];
    for (;;) {
        struct pollfd p = {c, POLLIN, 0};
        if (poll(&p, 1, 20) > 0) {
            ssize_t n = recv(c, buf, sizeof buf, 0);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            continue;
        }
        pthread_mutex_lock(&srv.lock);
        bool over = srv.done || srv.gen != gen;
        pthread_mutex_unlock(&srv.lock);
        if (over)
            break;
    }
    close(c);
}

static void *server(void *arg)
{
    (void)arg;
    for (;;) {
        int c = accept(srv.fd, NULL, NULL);
        if (c >= 0)
            serve_one(c);
    }
    return NULL;
}

static void start_server(void)
{
    srv.fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(srv.fd >= 0);
    int one = 1;
    setsockopt(srv.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(srv.fd, (struct sockaddr *)&a, sizeof a) == 0);
    socklen_t al = sizeof a;
    CHECK(getsockname(srv.fd, (struct sockaddr *)&a, &al) == 0);
    srv.port = ntohs(a.sin_port);
    CHECK(listen(srv.fd, 16) == 0);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, server, NULL) == 0);
    pthread_detach(t);
}

/* ---- the client ---------------------------------------------------------------------- */

static ee_transport *transport;

static void open_once(void)
{
    if (transport != NULL)
        return;
    start_server();
    ee_transport_options *o = NULL;
    CHECK(ee_transport_options_new(&o) == EE_OK);
    CHECK(ee_transport_options_set_int64(o, "max_retries", 0) == EE_OK);
    CHECK(ee_transport_options_set_int64(o, "connect_timeout_ms", 2000) == EE_OK);
    CHECK(ee_transport_options_set_int64(o, "timeout_ms", 3000) == EE_OK);
    CHECK(ee_transport_options_set_int64(o, "max_response_bytes", CAP) == EE_OK);
    CHECK(ee_transport_options_set_string(o, "proxy", "") == EE_OK);
    CHECK(ee_transport_curl_new(&transport, o) == EE_OK);
    ee_transport_options_free(o);
}

typedef struct {
    size_t stop_after; /* 0: never */
    size_t got;
    bool stopped;
} stream_state;

static int on_chunk(const ee_http_response *resp, const void *chunk, size_t len, void *payload)
{
    stream_state *s = payload;
    int status = ee_http_response_status(resp);
    CHECK(status >= 100 && status <= 999);
    CHECK(len == 0 || chunk != NULL);
    s->got += len;
    if (s->stop_after > 0 && s->got >= s->stop_after)
        s->stopped = true;
    return s->stopped;
}

static void check_error(ee_status st)
{
    const char *msg = ee_error_last_message();
    CHECK(strstr(msg, PASSWORD) == NULL);
    char *doc = NULL;
    CHECK(ee_error_last_json(&doc) == EE_OK);
    json_t *d = json_loads(doc, 0, NULL);
    CHECK(json_integer_value(json_object_get(json_object_get(d, "error"), "code")) == st);
    json_decref(d);
    ee_free(doc);
}

static void http(unsigned kind, const uint8_t *arg)
{
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/api/v1/x?q=1", srv.port);
    ee_http_request *req = NULL;
    CHECK(ee_http_request_new(&req, kind == 1 ? "POST" : "GET", url) == EE_OK);
    CHECK(ee_http_request_add_header(req, "Connection", "close") == EE_OK);
    CHECK(ee_http_request_add_header(req, "Authorization", "Bearer " PASSWORD) == EE_OK);
    if (kind == 1)
        CHECK(ee_http_request_set_body(req, "{\"a\": 1}", 8) == EE_OK);
    stream_state s = {(size_t)arg[0] * 64, 0, false};
    if (kind == 2)
        CHECK(ee_http_request_set_stream(req, on_chunk, &s) == EE_OK);
    ee_http_response *resp = NULL;
    ee_status st = ee_transport_http(transport, req, &resp);
    if (getenv("FZ_PRINT") != NULL)
        fprintf(stderr, "%s: %s\n", ee_status_name(st), st == EE_OK ? "" : ee_error_last_message());
    CHECK_STATUS(st, EE_OK, EE_ETIMEOUT, EE_ENETWORK, EE_ETOOBIG, EE_EUPSTREAM, EE_ECANCELLED);
    CHECK((st == EE_ECANCELLED) == s.stopped);
    if (st == EE_OK) {
        int status = ee_http_response_status(resp);
        CHECK(status >= 100 && status <= 999);
        const void *body = NULL;
        size_t len = 0;
        CHECK(ee_http_response_body(resp, &body, &len) == EE_OK);
        CHECK(len <= CAP);
        if (kind == 2)
            CHECK(s.got == len);
        const char *ct = ee_http_response_header(resp, "Content-Type");
        CHECK(ct == NULL || strlen(ct) < 16384);
    } else {
        CHECK(resp == NULL);
        check_error(st);
    }
    ee_http_response_free(resp);
    ee_http_request_free(req);
}

static void smtp(uint8_t flags)
{
    char url[64];
    snprintf(url, sizeof url, "smtp://127.0.0.1:%d", srv.port);
    ee_mail *m = NULL;
    CHECK(ee_mail_new(&m, url, "results@fz.example.com") == EE_OK);
    CHECK(ee_mail_add_recipient(m, "reader@fz.example.com") == EE_OK);
    static const char msg[] = "Subject: fz\r\n\r\nhello\r\n.\r\n..\r\n";
    CHECK(ee_mail_set_message(m, msg, sizeof msg - 1) == EE_OK);
    if (flags & 0x40)
        CHECK(ee_mail_set_login(m, "fz-user", PASSWORD) == EE_OK);
    CHECK(ee_mail_set_require_tls(m, (flags & 0x80) != 0) == EE_OK);
    ee_status st = ee_transport_mail(transport, m);
    if (getenv("FZ_PRINT") != NULL)
        fprintf(stderr, "%s: %s\n", ee_status_name(st), st == EE_OK ? "" : ee_error_last_message());
    CHECK_STATUS(st, EE_OK, EE_ETIMEOUT, EE_ENETWORK, EE_EAUTH, EE_EUPSTREAM);
    if (st != EE_OK)
        check_error(st);
    ee_mail_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    open_once();
    pthread_mutex_lock(&srv.lock);
    free(srv.data);
    srv.len = size - 2;
    srv.data = malloc(srv.len + 1);
    CHECK(srv.data != NULL);
    memcpy(srv.data, data + 2, srv.len);
    srv.gen++;
    srv.done = false;
    pthread_mutex_unlock(&srv.lock);
    unsigned kind = data[0] & 3;
    if (kind == 3)
        smtp(data[0]);
    else
        http(kind, data + 1);
    pthread_mutex_lock(&srv.lock);
    srv.done = true;
    pthread_mutex_unlock(&srv.lock);
    ee_error_clear();
    return 0;
}
