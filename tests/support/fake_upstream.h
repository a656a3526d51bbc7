/*
 * Start and stop the fake upstreams (tests/support/fake_openrouter.py,
 * fake_serper.py; what they share is in fake_upstream.py) from a Criterion
 * test, read what they received and set their knobs.
 *
 *   ee_fake_upstream f;
 *   ee_fake_upstream_start(&f, "fake_openrouter.py");
 *   ... f.base is "http://127.0.0.1:PORT" ...
 *   ee_fake_upstream_post(&f, "/__config", "{\"delayMs\": 200}");
 *   json_t *reqs = ee_fake_upstream_requests(&f);   (json_decref it)
 *   ee_fake_upstream_stop(&f);
 */
#ifndef EE_TEST_FAKE_UPSTREAM_H
#define EE_TEST_FAKE_UPSTREAM_H

#include <criterion/criterion.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "execengine/transport.h"

typedef struct {
    pid_t pid;
    int port;
    char base[64]; /* "http://127.0.0.1:PORT" */
} ee_fake_upstream;

static inline void ee_fake_upstream_start(ee_fake_upstream *f, const char *script_name)
{
    char script[1024];
    snprintf(script, sizeof script, "%s", __FILE__); /* beside this header */
    char *slash = strrchr(script, '/');
    cr_assert_not_null(slash);
    snprintf(slash + 1, sizeof script - (size_t)(slash + 1 - script), "%s", script_name);
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
    cr_assert_not_null(fgets(line, sizeof line, in), "%s did not start (python3?)", script_name);
    fclose(in);
    f->pid = pid;
    cr_assert_eq(sscanf(line, "PORT %d", &f->port), 1, "%s said: %s", script_name, line);
    snprintf(f->base, sizeof f->base, "http://127.0.0.1:%d", f->port);
}

static inline void ee_fake_upstream_stop(ee_fake_upstream *f)
{
    if (f->pid > 0) {
        kill(f->pid, SIGTERM);
        waitpid(f->pid, NULL, 0);
        f->pid = 0;
    }
}

/* One call to the fake; returns the HTTP status and *out the JSON answer
 * (NULL when it is not JSON; out may be NULL). */
static inline int ee_fake_upstream_call(const ee_fake_upstream *f, const char *method,
                                        const char *path, const char *body, json_t **out)
{
    char url[640]; /* base (64) and a path of up to 512 */
    snprintf(url, sizeof url, "%s%s", f->base, path);
    ee_transport *t;
    cr_assert_eq(ee_transport_curl_new(&t, NULL), EE_OK);
    ee_http_request *req;
    cr_assert_eq(ee_http_request_new(&req, method, url), EE_OK);
    if (body != NULL) {
        cr_assert_eq(ee_http_request_add_header(req, "Content-Type", "application/json"), EE_OK);
        cr_assert_eq(ee_http_request_set_body(req, body, strlen(body)), EE_OK);
    }
    ee_http_response *resp;
    cr_assert_eq(ee_transport_http(t, req, &resp), EE_OK, "%s %s", method, url);
    int status = ee_http_response_status(resp);
    if (out != NULL) {
        const void *data;
        size_t len;
        ee_http_response_body(resp, &data, &len);
        *out = json_loadb(data, len, 0, NULL);
    }
    ee_http_response_free(resp);
    ee_http_request_free(req);
    ee_transport_free(t);
    return status;
}

static inline void ee_fake_upstream_post(const ee_fake_upstream *f, const char *path,
                                         const char *body)
{
    cr_assert_eq(ee_fake_upstream_call(f, "POST", path, body, NULL), 200, "POST %s", path);
}

/* The requests the fake received, oldest first (a JSON array; the caller's). */
static inline json_t *ee_fake_upstream_requests(const ee_fake_upstream *f)
{
    json_t *doc = NULL;
    cr_assert_eq(ee_fake_upstream_call(f, "GET", "/__requests", NULL, &doc), 200);
    cr_assert_not_null(doc);
    json_t *reqs = json_incref(json_object_get(doc, "requests"));
    json_decref(doc);
    cr_assert(json_is_array(reqs));
    return reqs;
}

#endif
