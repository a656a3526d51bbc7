/*
 * Start and stop tests/support/fake_http.py (a fault-injecting HTTP server
 * on 127.0.0.1) from a Criterion test, and read its request counts.
 * Each test starts its own server, so counts never mix between tests.
 */
#ifndef EE_TEST_FAKE_HTTP_H
#define EE_TEST_FAKE_HTTP_H

#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "execengine/transport.h"

typedef struct {
    pid_t pid;
    int port;
    char base[64]; /* "http://127.0.0.1:PORT" */
} ee_fake_http;

/* The script lives beside this header; __FILE__ is its absolute path. */
static inline void ee_fake_http_script(char *out, size_t cap)
{
    snprintf(out, cap, "%s", __FILE__);
    char *slash = strrchr(out, '/');
    cr_assert_not_null(slash, "cannot locate tests/support from %s", __FILE__);
    snprintf(slash + 1, cap - (size_t)(slash + 1 - out), "fake_http.py");
}

static inline void ee_fake_http_start(ee_fake_http *f)
{
    char script[1024];
    ee_fake_http_script(script, sizeof script);
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execlp("python3", "python3", script, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    FILE *in = fdopen(fds[0], "r");
    char line[64] = "";
    cr_assert_not_null(fgets(line, sizeof line, in), "fake_http.py did not start (python3?)");
    fclose(in);
    f->pid = pid;
    cr_assert_eq(sscanf(line, "PORT %d", &f->port), 1, "fake_http.py said: %s", line);
    snprintf(f->base, sizeof f->base, "http://127.0.0.1:%d", f->port);
}

static inline void ee_fake_http_stop(ee_fake_http *f)
{
    if (f->pid > 0) {
        kill(f->pid, SIGTERM);
        waitpid(f->pid, NULL, 0);
        f->pid = 0;
    }
}

/* The "count" the fake answers at `what` ("/__count?path=/x", "/__connections"). */
static inline int ee_fake_http_query(const ee_fake_http *f, const char *what)
{
    char url[640];
    snprintf(url, sizeof url, "%s%s", f->base, what);
    ee_transport *t;
    cr_assert_eq(ee_transport_curl_new(&t, NULL), EE_OK);
    ee_http_request *req;
    cr_assert_eq(ee_http_request_new(&req, "GET", url), EE_OK);
    ee_http_response *resp;
    cr_assert_eq(ee_transport_http(t, req, &resp), EE_OK);
    const void *body;
    size_t len;
    ee_http_response_body(resp, &body, &len);
    int n = -1;
    const char *p = strstr((const char *)body, "\"count\":");
    cr_assert_not_null(p, "bad count answer");
    n = atoi(p + 8);
    ee_http_response_free(resp);
    ee_http_request_free(req);
    ee_transport_free(t);
    return n;
}

/* Requests the fake has seen for `path` (query excluded). */
static inline int ee_fake_http_count(const ee_fake_http *f, const char *path)
{
    char what[512];
    snprintf(what, sizeof what, "/__count?path=%s", path);
    return ee_fake_http_query(f, what);
}

/* A port on 127.0.0.1 that nothing listens on (bound, then closed). */
static inline int ee_fake_http_closed_port(void);

#include <netinet/in.h>
#include <sys/socket.h>

static inline int ee_fake_http_closed_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    getsockname(s, (struct sockaddr *)&a, &len);
    close(s);
    return ntohs(a.sin_port);
}

#endif
