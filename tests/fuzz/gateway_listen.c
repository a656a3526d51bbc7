/*
 * libFuzzer: arbitrary bytes sent to the engine's embedded gateway
 * listener (ee_gateway_listen(), libmicrohttpd) over a loopback TCP
 * connection, as anyone who can reach the port may send them: request
 * lines, headers, framing (Content-Length, chunked), bodies, pipelined
 * requests, the gateway's routes and its callback route
 * (/gateway/_ee/callback). The engine is fuzz_runs.h's (no workers), with
 * a gateway grant over OpenRouter (its fake answers a chat completion, an
 * SSE stream when the call asks for one). Placeholders: "TOKEN" stands
 * for the grant's token, "XID" for the id of a run queued for the input,
 * "WSID" for its workspace, "TS" for now's unix seconds; then "SIG" for
 * the callback signature of what follows the first blank line, and
 * "CLEN" for that body's length. The connection is half-closed once the
 * input is written and read until the listener closes it.
 * Invariants: no crash, leak, sanitizer report or hang (libFuzzer's
 * -timeout); what comes back, if anything, is HTTP/1.x; the listener
 * still answers a plain request afterwards (checked every 64 inputs); the
 * platform key (a canary) is in no answer. The engine (and its listener)
 * is opened again every FZ_RESET inputs: runs and metered calls pile up.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz_gateway.h"
#include "fuzz_runs.h"

static fz_runs R;
static int port; /* 0: built without the listener */
static char token[EE__GATEWAY_TOKEN_SIZE];
static char queued[EE_EXEC_ID_SIZE];
static unsigned inputs;

#define FZ_RESET 2000

/* At the end of the run: the listener stopped (its connection threads
 * joined, their connections freed) before LeakSanitizer's check at exit,
 * which otherwise could meet a connection libmicrohttpd was still tearing
 * down on its thread (a 456-byte "leak" in one CI run of 30 s). */
static void close_at_exit(void)
{
    if (R.engine != NULL)
        fz_runs_close(&R);
}

static void open_engine(void)
{
    static bool registered;
    if (!registered)
        registered = atexit(close_at_exit) == 0;
    if (R.engine != NULL)
        fz_runs_close(&R); /* stops the listener */
    fz_runs_open(&R, false, false);
    char *url = NULL;
    ee_status st = ee_gateway_listen(R.engine, "127.0.0.1:0", &url);
    if (st == EE_ENOTSUPPORTED) {
        fprintf(stderr, "gateway_listen: built without libmicrohttpd, nothing to fuzz\n");
        return;
    }
    if (st != EE_OK)
        fprintf(stderr, "listen: %s\n", ee_error_last_message());
    CHECK(st == EE_OK);
    const char *colon = strrchr(url + 7, ':');
    CHECK(colon != NULL);
    port = atoi(colon + 1);
    ee_free(url);
    /* a token holding none of the other placeholders: they are replaced
     * after it */
    static const char *const types[] = {"openrouter"};
    do {
        fz_grant(R.engine, R.user, "aaaaaaaaaaaaaaaaaaaaaaaa", types, 1, NULL, -1,
                 ee_engine_now_ms(R.engine) + 3600000, token);
    } while (strstr(token, "XID") || strstr(token, "WSID") || strstr(token, "TS") ||
             strstr(token, "SIG") || strstr(token, "CLEN"));
}

/* Send `len` bytes on a new connection, half-close it, read the answer
 * into *out (free()) until the listener closes the connection. */
static size_t exchange(const char *data, size_t len, char **out)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        /* interrupted, the connection goes on: wait until it is made */
        CHECK(errno == EINTR);
        struct pollfd w = {fd, POLLOUT, 0};
        while (poll(&w, 1, 5000) < 0 && errno == EINTR)
            ;
        int err = 0;
        socklen_t el = sizeof err;
        CHECK(getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0);
        if (err != 0)
            fprintf(stderr, "connect: %s\n", strerror(err));
        CHECK(err == 0);
    }
    /* closed with a reset: no TIME_WAIT per input, ports stay free */
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    /* libFuzzer's -timeout alarm (SIGALRM) interrupts the calls: EINTR is
     * tried again */
    size_t sent = 0;
    while (sent < len) {
        ssize_t n = send(fd, data + sent, len - sent, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* the listener closed early (it may refuse before the body) */
        sent += (size_t)n;
    }
    shutdown(fd, SHUT_WR);
    size_t cap = 4096, got = 0;
    char *buf = malloc(cap + 1);
    CHECK(buf != NULL);
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        int r = poll(&p, 1, 5000);
        if (r < 0 && errno == EINTR)
            continue;
        CHECK(r > 0); /* an answer, or the close, within 5 s */
        if (got == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
            CHECK(buf != NULL);
        }
        ssize_t n = recv(fd, buf + got, cap - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* closed (or reset) */
        got += (size_t)n;
    }
    buf[got] = '\0';
    close(fd);
    *out = buf;
    return got;
}

/* The input with its placeholders replaced (free()); *len its length (it
 * may hold NUL bytes, kept as they are). */
static char *prepare(const uint8_t *data, size_t size, size_t *len)
{
    /* NUL bytes would stop the text replacements: they become 0x01 first
     * and go back after */
    char *text = fz_text(data, size);
    for (size_t i = 0; i < size; i++)
        if (text[i] == '\0')
            text[i] = '\x01';
    char ts[32];
    snprintf(ts, sizeof ts, "%lld", (long long)(ee_engine_now_ms(R.engine) / 1000));
    if (strstr(text, "XID") != NULL) /* a run a callback may end */
        fz_runs_submit(&R, R.plain_id, NULL, queued);
    else
        snprintf(queued, sizeof queued, "%s", "000000000000000000000000");
    char *a = fz_replace(text, "TOKEN", token);
    char *b = fz_replace(a, "XID", queued);
    char *c = fz_replace(b, "WSID", FZ_WS);
    char *d = fz_replace(c, "TS", ts);
    free(text);
    free(a);
    free(b);
    free(c);
    char *blank = strstr(d, "\r\n\r\n");
    const char *body = blank != NULL ? blank + 4 : "";
    size_t blen = strlen(body);
    char key[65], sig[68], clen[32];
    CHECK(ee__callback_key(R.engine, queued, key) == EE_OK);
    CHECK(ee__callback_sign(key, ts, body, blen, sig) == EE_OK);
    snprintf(clen, sizeof clen, "%zu", blen);
    char *e = fz_replace(d, "SIG", sig);
    char *f = fz_replace(e, "CLEN", clen);
    free(d);
    free(e);
    *len = strlen(f);
    for (size_t i = 0; i < *len; i++)
        if (f[i] == '\x01')
            f[i] = '\0';
    return f;
}

/* What came back: HTTP, and never the platform key (the token may come
 * back: the sender has it, and a refusal may quote what it was sent). */
static void check_answer(const uint8_t *data, size_t size, const char *out, size_t n)
{
    if (n > 0)
        CHECK(n >= 7 && strncmp(out, "HTTP/1.", 7) == 0);
    CHECK(fz_holds((const char *)data, size, FZ_OPENROUTER_KEY) ||
          !fz_holds(out, n, FZ_OPENROUTER_KEY));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (R.engine == NULL || inputs % FZ_RESET == FZ_RESET - 1)
        open_engine();
    if (port == 0)
        return 0;
    size_t len = 0;
    char *request = prepare(data, size, &len);
    char *out = NULL;
    size_t n = exchange(request, len, &out);
    if (getenv("FZ_PRINT") != NULL) /* checking a seed */
        fprintf(stderr, "%zu bytes back: %.400s\n", n, out);
    check_answer(data, size, out, n);
    if (strcmp(queued, "000000000000000000000000") != 0) {
        /* the input's run ends, by its callback or here */
        ee_status st = ee_exec_cancel(R.engine, R.user, queued);
        CHECK(st == EE_OK || st == EE_ESTATE);
    }
    free(out);
    free(request);
    if (++inputs % 64 == 0) {
        static const char ping[] = "GET /gateway/openrouter/x HTTP/1.1\r\nHost: fz\r\n"
                                   "Connection: close\r\n\r\n";
        n = exchange(ping, sizeof ping - 1, &out);
        CHECK(n > 12 && strncmp(out, "HTTP/1.1 401", 12) == 0);
        free(out);
    }
    ee_error_clear();
    return 0;
}
