/*
 * Start and stop tests/support/fake_http.py (a fault-injecting HTTP server
 * on 127.0.0.1) from a Criterion test, and read its request counts.
 * Each test starts its own server, so counts never mix between tests.
 */
#ifndef EE_TEST_FAKE_HTTP_H
#define EE_TEST_FAKE_HTTP_H

#include <criterion/criterion.h>
#include <jansson.h>

#include "fake_upstream.h"

/* Started, stopped and called as the other fakes are (fake_upstream.h). */
typedef ee_fake_upstream ee_fake_http;

static inline void ee_fake_http_start(ee_fake_http *f)
{
    ee_fake_upstream_start(f, "fake_http.py");
}

static inline void ee_fake_http_stop(ee_fake_http *f)
{
    ee_fake_upstream_stop(f);
}

/* The "count" the fake answers at `what` ("/__count?path=/x", "/__connections"). */
static inline int ee_fake_http_query(const ee_fake_http *f, const char *what)
{
    json_t *doc = NULL;
    ee_fake_upstream_call(f, "GET", what, NULL, &doc);
    json_t *count = json_object_get(doc, "count");
    cr_assert(json_is_integer(count), "bad count answer");
    int n = (int)json_integer_value(count);
    json_decref(doc);
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
