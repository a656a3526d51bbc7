/*
 * The embedded listener with real HTTP: libcurl in the test, the engine's
 * own libcurl transport, and a fake provider (fake_upstream.py) that
 * gateway.json points at. The key is injected upstream (the provider sees
 * it, the caller never does), usage is metered from a JSON body and from an
 * SSE stream, the gateway's refusals and upstream failures come back as
 * JSON errors with their HTTP codes, and a body over EXEC_GATEWAY_BODY_MAX
 * is refused with 413 whether it declares its length or not.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <dirent.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>

#include "gw_test.h"

#define EXEC_A "aaaaaaaaaaaaaaaaaaaaaaaa"

#if EE_WITH_MHD

static pid_t fake_pid;
static char fake_base[64];
static char dir[64];
static ee_engine *e;
static ee_principal *p;
static char *gw_url;
static char tok[EE__GATEWAY_TOKEN_SIZE];

static void start_fake(void)
{
    char script[1024];
    snprintf(script, sizeof script, "%s", __FILE__);
    *strrchr(script, '/') = '\0';
    strcat(script, "/fake_upstream.py");
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    fake_pid = fork();
    cr_assert_neq(fake_pid, -1);
    if (fake_pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execlp("python3", "python3", script, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    FILE *in = fdopen(fds[0], "r");
    char line[64] = "";
    cr_assert_not_null(fgets(line, sizeof line, in), "fake_upstream.py did not start");
    fclose(in);
    int port = 0;
    cr_assert_eq(sscanf(line, "PORT %d", &port), 1);
    snprintf(fake_base, sizeof fake_base, "http://127.0.0.1:%d", port);
}

/* A data dir: the source's files, gateway.json's providers pointed at the fake. */
static void make_data_dir(void)
{
    snprintf(dir, sizeof dir, "/tmp/ee-gw-listen-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    DIR *d = opendir(EE_TEST_DATA_DIR);
    cr_assert_not_null(d);
    struct dirent *ent;
    while ((ent = readdir(d)) != NULL) {
        if (strstr(ent->d_name, ".json") == NULL)
            continue;
        char from[512], to[512];
        snprintf(from, sizeof from, "%s/%s", EE_TEST_DATA_DIR, ent->d_name);
        snprintf(to, sizeof to, "%s/%s", dir, ent->d_name);
        json_t *doc = json_load_file(from, 0, NULL);
        cr_assert_not_null(doc, "%s", from);
        if (strcmp(ent->d_name, "gateway.json") == 0) {
            size_t i;
            json_t *prov;
            json_array_foreach(json_object_get(doc, "providers"), i, prov)
                json_object_set_new(prov, "baseUrl", json_string(fake_base));
        }
        cr_assert_eq(json_dump_file(doc, to, 0), 0);
        json_decref(doc);
    }
    closedir(d);
}

static void setup(void)
{
    gw_log_len = 0;
    start_fake();
    make_data_dir();
    ee_config *cfg = ee_test_config_new(NULL, gw_clock, NULL);
    ee_test_config_set(cfg, "EE_DATA_DIR", dir);
    ee_test_config_set(cfg, "PLATFORM_SERPER_KEY", C_SERPER);
    ee_test_config_set(cfg, "PLATFORM_OPENROUTER_KEY", C_OPENROUTER);
    ee_test_config_set(cfg, "OPENROUTER_API_URL", "http://127.0.0.1:9/api/v1");
    ee_test_config_set(cfg, "EXEC_GATEWAY_BODY_MAX", "2000");
    ee_test_config_set(cfg, "EXEC_GATEWAY_TIMEOUT_MS", "1000");
    cr_assert_eq(ee_config_set_log(cfg, gw_log_fn, EE_LOG_DEBUG, NULL), EE_OK);
    e = ee_test_engine_open_config(cfg);
    char *out = NULL;
    cr_assert_eq(ee_cred_platform_provision(e, &out), EE_OK);
    ee_free(out);
    p = gw_principal("ws-listen", "u1");
    static const char *const types[] = {"openrouter", "serper"};
    gw_grant(e, p, EXEC_A, types, 2, NULL, -1, gw_now + 600000, tok);
    cr_assert_eq(ee_gateway_listen(e, "127.0.0.1:0", &gw_url), EE_OK, "%s",
                 ee_error_last_message());
}

static void teardown(void)
{
    ee_free(gw_url);
    gw_url = NULL;
    ee_principal_free(p);
    ee_engine_close(e);
    kill(fake_pid, SIGTERM);
    waitpid(fake_pid, NULL, 0);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(gateway_listen, .init = setup, .fini = teardown, .timeout = 60);

typedef struct {
    long status;
    char headers[4096];
    char body[16384];
    size_t len;
} http_answer;

static size_t on_body(char *data, size_t size, size_t n, void *payload)
{
    http_answer *a = payload;
    size_t len = size * n;
    if (a->len + len < sizeof a->body) {
        memcpy(a->body + a->len, data, len);
        a->len += len;
        a->body[a->len] = '\0';
    }
    return len;
}

static size_t on_header(char *data, size_t size, size_t n, void *payload)
{
    http_answer *a = payload;
    size_t len = size * n, l = strlen(a->headers);
    if (l + len < sizeof a->headers) {
        memcpy(a->headers + l, data, len);
        a->headers[l + len] = '\0';
    }
    return len;
}

/* A request to the listener: `path` below its URL; auth_token NULL: none;
 * chunked: send the body without a Content-Length. */
static http_answer http(const char *method, const char *path, const char *auth_token,
                        const char *body, size_t len, bool chunked)
{
    http_answer a = {0};
    CURL *c = curl_easy_init();
    cr_assert_not_null(c);
    char url[512], auth[128];
    snprintf(url, sizeof url, "%s%s", gw_url, path);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    if (auth_token != NULL) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", auth_token);
        h = curl_slist_append(h, auth);
    }
    if (chunked)
        h = curl_slist_append(h, "Transfer-Encoding: chunked");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    if (body != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        if (!chunked)
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)len);
    }
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &a);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &a);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    CURLcode rc = curl_easy_perform(c);
    cr_assert_eq(rc, CURLE_OK, "%s %s: %s", method, url, curl_easy_strerror(rc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a.status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return a;
}

/* What the fake provider saw last. */
static json_t *provider_saw(void)
{
    char url[128];
    snprintf(url, sizeof url, "%s/__last", fake_base);
    http_answer a = {0};
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &a);
    cr_assert_eq(curl_easy_perform(c), CURLE_OK);
    curl_easy_cleanup(c);
    json_t *doc = json_loads(a.body, 0, NULL);
    cr_assert_not_null(doc, "%s", a.body);
    return doc;
}

static const char *saw_header(const json_t *saw, const char *name)
{
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(saw, "headers"), k, v) {
        if (strcasecmp(k, name) == 0)
            return json_string_value(v);
    }
    return NULL;
}

static bool has_header(const http_answer *a, const char *line)
{
    /* case-insensitive on the name, as HTTP says */
    const char *colon = strchr(line, ':');
    size_t n = (size_t)(colon - line);
    for (const char *h = a->headers; *h != '\0';) {
        const char *eol = strstr(h, "\r\n");
        if (eol == NULL)
            break;
        if (strncasecmp(h, line, n) == 0 && strncmp(h + n, colon, strlen(colon)) == 0 &&
            (size_t)(eol - h) == strlen(line))
            return true;
        h = eol + 2;
    }
    return false;
}

static const char CHAT[] = "{\"model\": \"openai/gpt-4o-mini\", \"messages\": [{\"role\": "
                           "\"user\", \"content\": \"hi\"}]}";

Test(gateway_listen, key_injected_upstream_usage_metered_and_costs_returned)
{
    cr_expect_eq(strncmp(gw_url, "http://127.0.0.1:", 17), 0, "%s", gw_url);
    cr_expect_not_null(strstr(gw_url, "/gateway"));
    cr_expect_str_eq(ee__gateway_url(e), gw_url, "workflows are given the listener's URL");
    http_answer a = http("POST", "/openrouter/api/v1/chat/completions?trace=a%20b", tok, CHAT,
                         sizeof CHAT - 1, false);
    cr_assert_eq(a.status, 200, "%s", a.body);
    cr_expect_not_null(strstr(a.body, "gen-1"));
    cr_expect(has_header(&a, "x-litellm-response-cost: 0.000123457"), "%s", a.headers);
    cr_expect(has_header(&a, "x-ee-call-cost-nano: 123457"), "%s", a.headers);
    json_t *saw = provider_saw();
    cr_expect_str_eq(json_string_value(json_object_get(saw, "path")), "/api/v1/chat/completions");
    cr_expect_str_eq(json_string_value(json_object_get(saw, "query")), "trace=a%20b");
    cr_expect_str_eq(saw_header(saw, "Authorization"), "Bearer " C_OPENROUTER);
    cr_expect_str_eq(json_string_value(json_object_get(saw, "body")), CHAT);
    char *text = json_dumps(saw, 0);
    cr_expect_null(strstr(text, tok), "the token never travels upstream");
    free(text);
    json_decref(saw);
    cr_expect_null(strstr(a.headers, C_OPENROUTER));
    cr_expect_null(strstr(a.body, C_OPENROUTER));

    /* Serper with its header */
    a = http("POST", "/serper/search", tok, "{\"q\": \"x\"}", 10, false);
    cr_expect_eq(a.status, 200);
    saw = provider_saw();
    cr_expect_str_eq(saw_header(saw, "X-API-KEY"), C_SERPER);
    cr_expect_null(saw_header(saw, "Authorization"));
    json_decref(saw);

    ee__gateway_usage u;
    cr_assert_eq(ee__gateway_usage_of(e, "ws-listen", EXEC_A, &u), EE_OK);
    cr_expect_eq(u.calls, 2);
    cr_expect_eq(u.total_tokens, 42);
    cr_expect_eq(u.cost_nano, 123457 + 1000000);
}

Test(gateway_listen, an_sse_stream_reaches_the_caller_and_is_metered)
{
    static const char body[] = "{\"model\": \"openai/gpt-4o-mini\", \"stream\": true}";
    http_answer a = http("POST", "/openrouter/api/v1/chat/completions", tok, body,
                         sizeof body - 1, false);
    cr_assert_eq(a.status, 200, "%s", a.body);
    cr_expect(has_header(&a, "Content-Type: text/event-stream"), "%s", a.headers);
    cr_expect_not_null(strstr(a.body, "\"Hel\""));
    cr_expect_not_null(strstr(a.body, "data: [DONE]"));
    cr_expect_null(strstr(a.headers, "x-ee-call-cost-nano"), "a stream's cost is in its usage");
    ee__gateway_usage u;
    cr_assert_eq(ee__gateway_usage_of(e, "ws-listen", EXEC_A, &u), EE_OK);
    cr_expect_eq(u.cost_nano, 15000);
    cr_expect_eq(u.prompt_tokens, 12);
}

/* The client's side of a held stream: on its first chunk, release the
 * provider - which only a relayed chunk can make happen. */
typedef struct {
    http_answer a;
    bool released;
} held_answer;

static size_t on_held_body(char *data, size_t size, size_t n, void *payload)
{
    held_answer *h = payload;
    if (!h->released) {
        h->released = true;
        char url[128];
        snprintf(url, sizeof url, "%s/__release", fake_base);
        CURL *c = curl_easy_init();
        http_answer ignore = {0};
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &ignore);
        curl_easy_perform(c);
        curl_easy_cleanup(c);
    }
    return on_body(data, size, n, &h->a);
}

/* A chat completion POSTed to the listener at `base` with `token`, its
 * body handed to fn(payload) as it arrives; the HTTP status. */
static long post_chat(const char *base, const char *token, const char *body,
                      curl_write_callback fn, void *payload)
{
    char url[512], auth[128];
    snprintf(url, sizeof url, "%s/openrouter/api/v1/chat/completions", base);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
    struct curl_slist *hd = curl_slist_append(NULL, "Content-Type: application/json");
    hd = curl_slist_append(hd, auth);
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, fn);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, payload);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    cr_assert_eq(curl_easy_perform(c), CURLE_OK);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hd);
    curl_easy_cleanup(c);
    return status;
}

Test(gateway_listen, an_sse_stream_is_relayed_while_the_provider_is_still_sending)
{
    static const char body[] = "{\"model\": \"openai/gpt-4o-mini\", \"stream\": true, "
                               "\"hold\": true}";
    held_answer h = {0};
    long status = post_chat(gw_url, tok, body, on_held_body, &h);
    char url[512];
    cr_expect_eq(status, 200);
    cr_expect_not_null(strstr(h.a.body, "data: [DONE]"));
    /* the provider was let go by the client, which saw the first message
     * while the provider still held the rest: relayed, not buffered */
    snprintf(url, sizeof url, "%s/__held", fake_base);
    http_answer held = {0};
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &held);
    cr_assert_eq(curl_easy_perform(c), CURLE_OK);
    curl_easy_cleanup(c);
    cr_expect_not_null(strstr(held.body, "by-client"), "%s", held.body);
    ee__gateway_usage u;
    cr_assert_eq(ee__gateway_usage_of(e, "ws-listen", EXEC_A, &u), EE_OK);
    cr_expect_eq(u.cost_nano, 15000, "metered from the stream's last usage");
}

static void expect_error(const http_answer *a, long status, const char *name)
{
    cr_expect_eq(a->status, status, "HTTP %ld, want %ld: %s", a->status, status, a->body);
    json_t *doc = json_loads(a->body, 0, NULL);
    const char *s = json_string_value(json_object_get(json_object_get(doc, "error"), "status"));
    cr_expect(s != NULL && strcmp(s, name) == 0, "%s", a->body);
    json_decref(doc);
}

Test(gateway_listen, refusals_and_upstream_failures)
{
    http_answer a = http("POST", "/openrouter/api/v1/chat/completions", NULL, CHAT,
                         sizeof CHAT - 1, false);
    expect_error(&a, 401, "EE_EAUTH");
    a = http("POST", "/openrouter/api/v1/chat/completions", "eeg_nope", CHAT, sizeof CHAT - 1,
             false);
    expect_error(&a, 401, "EE_EAUTH");
    a = http("POST", "/tavily/search", tok, CHAT, sizeof CHAT - 1, false);
    expect_error(&a, 403, "EE_EPERM");
    a = http("POST", "/nope/x", tok, CHAT, sizeof CHAT - 1, false);
    expect_error(&a, 404, "EE_ENOTFOUND");
    /* EXEC_GATEWAY_TIMEOUT_MS is 1000; the provider takes 3 s */
    a = http("POST", "/serper/slow", tok, "{}", 2, false);
    expect_error(&a, 504, "EE_ETIMEOUT");
    a = http("POST", "/serper/reset", tok, "{}", 2, false);
    expect_error(&a, 502, "EE_ENETWORK");
    /* revoked: the same token, replayed */
    cr_assert_eq(ee__gateway_revoke(e, "ws-listen", EXEC_A), EE_OK);
    a = http("POST", "/serper/search", tok, "{}", 2, false);
    expect_error(&a, 401, "EE_EAUTH");
    /* none of it is metered as a provider's answer */
    ee__gateway_usage u;
    cr_assert_eq(ee__gateway_usage_of(e, "ws-listen", EXEC_A, &u), EE_OK);
    cr_expect_eq(u.cost_nano, 0);
}

Test(gateway_listen, bodies_over_the_limit_are_refused_declared_or_chunked)
{
    char big[4001];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    http_answer a = http("POST", "/serper/search", tok, big, 4000, false);
    expect_error(&a, 413, "EE_ETOOBIG");
    a = http("POST", "/serper/search", tok, big, 4000, true);
    expect_error(&a, 413, "EE_ETOOBIG");
    a = http("POST", "/serper/search", tok, big, 2000, false);
    cr_expect_eq(a.status, 200, "exactly the limit passes: %s", a.body);
    json_t *saw = provider_saw();
    cr_expect_eq(strlen(json_string_value(json_object_get(saw, "body"))), 2000);
    json_decref(saw);
    /* outside /gateway/ */
    char url[256];
    snprintf(url, sizeof url, "%s", gw_url);
    *strstr(url, "/gateway") = '\0';
    CURL *c = curl_easy_init();
    strcat(url, "/other");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &a);
    cr_assert_eq(curl_easy_perform(c), CURLE_OK);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    cr_expect_eq(status, 404);
}

Test(gateway_listen, listen_twice_and_bad_addresses)
{
    char *url = NULL;
    cr_expect_eq(ee_gateway_listen(e, "127.0.0.1:0", &url), EE_ESTATE);
    cr_expect_null(url);
    cr_expect_eq(ee_gateway_listen(e, "localhost:80", &url), EE_EINVAL);
    cr_expect_eq(ee_gateway_listen(e, "127.0.0.1", &url), EE_EINVAL);
    cr_expect_eq(ee_gateway_listen(e, "127.0.0.1:99999", &url), EE_EINVAL);
    cr_expect_eq(ee_gateway_listen(NULL, "127.0.0.1:0", &url), EE_EINVAL);
}

Test(gateway_listen, no_key_or_token_in_logs_or_answers)
{
    const char *paths[] = {"/openrouter/api/v1/chat/completions", "/serper/search",
                           "/serper/reset", "/nope/x"};
    char all[1 << 15];
    size_t n = 0;
    for (size_t i = 0; i < 4; i++) {
        http_answer a = http("POST", paths[i], tok, CHAT, sizeof CHAT - 1, false);
        n += (size_t)snprintf(all + n, sizeof all - n, "%s%s", a.headers, a.body);
    }
    const char *const bad[] = {C_OPENROUTER, C_SERPER, tok};
    for (size_t i = 0; i < 3; i++) {
        cr_expect_null(memmem(all, n, bad[i], strlen(bad[i])), "answers hold secret %zu", i);
        cr_expect_null(memmem(gw_log, gw_log_len, bad[i], strlen(bad[i])),
                       "the log holds secret %zu", i);
    }
    cr_expect_not_null(strstr(all, "gen-1"), "the scan saw real answers");
}


/* With EXEC_GATEWAY_URL set, workflows may reach the gateway through a
 * proxy and another process's listener, whose pending writes the run's
 * process cannot wait for: the listener writes each call before its
 * answer. Counted from inside the client's body callback, the moment the
 * answer arrives. */
typedef struct {
    http_answer a;
    ee_engine *e;
    int seen; /* calls stored when the answer's first bytes arrived */
} counted_answer;

static int count_one(const ee__gateway_call *call, void *payload)
{
    (void)call;
    (*(int *)payload)++;
    return 0;
}

static size_t on_counted_body(char *data, size_t size, size_t n, void *payload)
{
    counted_answer *c = payload;
    if (c->seen < 0) {
        c->seen = 0;
        if (ee__gateway_calls(c->e, "ws-listen", "cccccccccccccccccccccccc", count_one,
                              &c->seen) != EE_OK)
            c->seen = -2;
    }
    return on_body(data, size, n, &c->a);
}

Test(gateway_listen, behind_a_configured_gateway_url_each_call_is_written_before_its_answer)
{
    /* an SQLite file: its write takes long enough that an answer sent
     * before it would arrive first */
    char uri[600];
    snprintf(uri, sizeof uri, "sqlite://%s/behind.db", dir);
    ee_config *cfg = ee_test_config_new(uri, gw_clock, NULL);
    ee_test_config_set(cfg, "EE_DATA_DIR", dir);
    ee_test_config_set(cfg, "PLATFORM_OPENROUTER_KEY", C_OPENROUTER);
    ee_test_config_set(cfg, "EXEC_GATEWAY_URL", "https://gateway.example.com/gateway");
    ee_engine *e2 = ee_test_engine_open_config(cfg);
    char *out = NULL;
    cr_assert_eq(ee_cred_platform_provision(e2, &out), EE_OK);
    ee_free(out);
    static const char *const types[] = {"openrouter"};
    char tok2[EE__GATEWAY_TOKEN_SIZE], *url2 = NULL;
    gw_grant(e2, p, "cccccccccccccccccccccccc", types, 1, NULL, -1, gw_now + 600000, tok2);
    cr_assert_eq(ee_gateway_listen(e2, "127.0.0.1:0", &url2), EE_OK, "%s",
                 ee_error_last_message());
    for (int i = 1; i <= 10; i++) {
        counted_answer c = {.e = e2, .seen = -1};
        c.a.status = post_chat(url2, tok2, CHAT, on_counted_body, &c);
        cr_expect_eq(c.a.status, 200, "%s", c.a.body);
        cr_expect_eq(c.seen, i, "call %d: %d stored when its answer arrived", i, c.seen);
    }
    ee_free(url2);
    ee_engine_close(e2);
}

/* ---- raw HTTP: what libcurl would not send ------------------------------------------ */

/* A connection to the listener at `base` ("http://127.0.0.1:<port>/..."),
 * its reads timing out after timeout_ms. */
static int raw_connect(const char *base, int timeout_ms)
{
    int port = 0;
    cr_assert_eq(sscanf(base, "http://127.0.0.1:%d", &port), 1, "%s", base);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

static void raw_send(int fd, const char *data)
{
    size_t len = strlen(data), off = 0;
    while (off < len) {
        ssize_t n = send(fd, data + off, len - off, MSG_NOSIGNAL);
        cr_assert_gt(n, 0, "send");
        off += (size_t)n;
    }
}

typedef struct {
    long status;        /* 0: no answer before the read timed out or the peer closed */
    char head[4096];    /* the status line and headers */
    char body[16384];
} raw_answer;

/* One answer read off fd: its head, then Content-Length bytes of body. */
static raw_answer raw_read(int fd)
{
    raw_answer a = {0};
    static char buf[sizeof a.head + sizeof a.body];
    size_t len = 0;
    char *end = NULL;
    size_t want = 0;
    for (;;) {
        if (end == NULL && (end = memmem(buf, len, "\r\n\r\n", 4)) != NULL) {
            snprintf(a.head, sizeof a.head, "%.*s", (int)(end - buf), buf);
            const char *cl = strcasestr(a.head, "\r\nContent-Length:");
            want = (size_t)(end - buf) + 4 + (cl != NULL ? strtoul(cl + 17, NULL, 10) : 0);
        }
        if (end != NULL && len >= want)
            break;
        if (len == sizeof buf)
            return a;
        ssize_t n = recv(fd, buf + len, sizeof buf - len, 0);
        if (n <= 0)
            return a; /* timed out, or closed before a whole answer */
        len += (size_t)n;
    }
    size_t head_len = (size_t)(end - buf) + 4;
    snprintf(a.body, sizeof a.body, "%.*s", (int)(want - head_len), buf + head_len);
    sscanf(a.head, "HTTP/1.%*d %ld", &a.status);
    return a;
}

/* One request on a connection of its own; the answer. */
static raw_answer raw_exchange(const char *base, const char *request)
{
    int fd = raw_connect(base, 5000);
    raw_send(fd, request);
    raw_answer a = raw_read(fd);
    close(fd);
    return a;
}

static void expect_raw_error(const raw_answer *a, long status, const char *name,
                             const char *words)
{
    cr_expect_eq(a->status, status, "HTTP %ld, want %ld: %s\n%s", a->status, status, a->head,
                 a->body);
    json_t *doc = json_loads(a->body, 0, NULL);
    json_t *err = json_object_get(doc, "error");
    const char *s = json_string_value(json_object_get(err, "status"));
    const char *m = json_string_value(json_object_get(err, "message"));
    cr_expect(s != NULL && strcmp(s, name) == 0, "%s", a->body);
    cr_expect(m != NULL && strstr(m, words) != NULL, "want \"%s\" in %s", words, a->body);
    json_decref(doc);
}

/* What the provider saw last, as "<path>?<query>" (static). */
static const char *provider_last(void)
{
    static char last[512];
    json_t *saw = provider_saw();
    snprintf(last, sizeof last, "%s?%s", json_string_value(json_object_get(saw, "path")),
             json_string_value(json_object_get(saw, "query")));
    json_decref(saw);
    return last;
}

/* A call the provider sees, so that what it sees next shows. */
static void mark_provider(void)
{
    http_answer a = http("POST", "/serper/search?mark=1", tok, "{}", 2, false);
    cr_assert_eq(a.status, 200, "%s", a.body);
    cr_assert_str_eq(provider_last(), "/search?mark=1");
}

Test(gateway_listen, an_encoded_nul_in_the_path_or_query_is_400_and_nothing_is_forwarded)
{
    /* libmicrohttpd decodes the path and the query into C strings: %00
     * would end them there, and the provider be called on what is left */
    char req[1024];
    const char *const urls[] = {"/gateway/serper/search%00x", "/gateway/serper/search?q=a%00b",
                                "/gateway/serper/search?a%00b=1", "/gateway/_ee/callback%00"};
    for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
        mark_provider();
        snprintf(req, sizeof req,
                 "POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                 "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
                 urls[i], tok);
        raw_answer a = raw_exchange(gw_url, req);
        expect_raw_error(&a, 400, "EE_EINVAL", "(%00)");
        cr_expect(strcasestr(a.head, "\r\nContent-Type: application/json") != NULL, "%s",
                  a.head);
        cr_expect_str_eq(provider_last(), "/search?mark=1", "%s reached the provider", urls[i]);
    }
    /* refused before its body (libmicrohttpd ends the connection then):
     * nothing of the request is read as another one */
    int fd = raw_connect(gw_url, 5000);
    snprintf(req, sizeof req,
             "POST /gateway/serper/search%%00x HTTP/1.1\r\nHost: x\r\n"
             "Authorization: Bearer %s\r\nContent-Length: 76\r\n\r\n"
             "POST /gateway/serper/search?inner=1 HTTP/1.1\r\nHost: x\r\n"
             "Content-Length: 0\r\n\r\n",
             tok);
    raw_send(fd, req);
    raw_answer a = raw_read(fd);
    expect_raw_error(&a, 400, "EE_EINVAL", "(%00)");
    char rest[64];
    cr_expect_leq(recv(fd, rest, sizeof rest, 0), 0, "the connection ends after it");
    close(fd);
    cr_expect_str_eq(provider_last(), "/search?mark=1");
    /* other encoded bytes reach ee_gateway_handle() decoded, which encodes
     * them again for the provider: %23 stays in the path */
    http_answer h = http("POST", "/serper/a%23b%20c?q=x%26y", tok, "{}", 2, false);
    cr_expect_eq(h.status, 404, "the provider's own 404: %s", h.body);
    cr_expect_str_eq(provider_last(), "/a%23b%20c?q=x%26y");
}

Test(gateway_listen, ambiguous_framing_is_400_and_the_connection_closes)
{
    /* two lengths, or a length beside chunked: a proxy in front may end the
     * body elsewhere than libmicrohttpd (request smuggling) */
    static const struct {
        const char *framing, *words;
    } cases[] = {
        {"Content-Length: 2\r\nContent-Length: 40\r\n", "more than one Content-Length"},
        {"Content-Length: 40\r\nContent-Length: 2\r\n", "more than one Content-Length"},
        {"Content-Length: 7\r\nTransfer-Encoding: chunked\r\n",
         "both Content-Length and Transfer-Encoding"},
        {"Transfer-Encoding: chunked\r\nContent-Length: 7\r\n",
         "both Content-Length and Transfer-Encoding"},
    };
    char req[1024];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mark_provider();
        snprintf(req, sizeof req,
                 "POST /gateway/serper/search?smuggled=1 HTTP/1.1\r\nHost: x\r\n"
                 "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
                 "Connection: keep-alive\r\n%s\r\n2\r\n{}\r\n0\r\n\r\n",
                 tok, cases[i].framing);
        int fd = raw_connect(gw_url, 5000);
        raw_send(fd, req);
        raw_answer a = raw_read(fd);
        expect_raw_error(&a, 400, "EE_EINVAL", cases[i].words);
        cr_expect(strcasestr(a.head, "\r\nConnection: close") != NULL, "%s", a.head);
        char rest[64];
        cr_expect_leq(recv(fd, rest, sizeof rest, 0), 0, "the connection ends after it");
        close(fd);
        cr_expect_str_eq(provider_last(), "/search?mark=1", "case %zu reached the provider", i);
    }
    /* HTTP/1.1 requires Host (RFC 9112 3.2); HTTP/1.0 does not */
    mark_provider();
    snprintf(req, sizeof req,
             "POST /gateway/serper/search?nohost=1 HTTP/1.1\r\nAuthorization: Bearer %s\r\n"
             "Content-Length: 2\r\n\r\n{}",
             tok);
    raw_answer a = raw_exchange(gw_url, req);
    expect_raw_error(&a, 400, "EE_EINVAL", "an HTTP/1.1 request without Host");
    cr_expect(strcasestr(a.head, "\r\nConnection: close") != NULL, "%s", a.head);
    cr_expect_str_eq(provider_last(), "/search?mark=1");
    snprintf(req, sizeof req,
             "POST /gateway/serper/search?http10=1 HTTP/1.0\r\nAuthorization: Bearer %s\r\n"
             "Content-Length: 2\r\n\r\n{}",
             tok);
    a = raw_exchange(gw_url, req);
    cr_expect_eq(a.status, 200, "%s\n%s", a.head, a.body);
    cr_expect_str_eq(provider_last(), "/search?http10=1");
}

/* The listener's refusal of a request whose body it was never sent, against
 * ee_gateway_handle()'s answer to the same headers with a body. */
static void expect_refused_with_the_head(ee_engine *eng, const char *url, const char *auth_line,
                                         const char *auth_value)
{
    char req[1024];
    snprintf(req, sizeof req,
             "POST /gateway/serper/search HTTP/1.1\r\nHost: x\r\n%s"
             "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n",
             auth_line, 5 * 1024 * 1024);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    /* the body never comes: a listener that waits for it times the read out */
    int fd = raw_connect(url, 5000);
    raw_send(fd, req);
    raw_answer a = raw_read(fd);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    close(fd);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    cr_expect_eq(a.status, 401, "%s: HTTP %ld after %.0f ms: %s", auth_line, a.status, ms,
                 a.head);
    cr_expect_lt(ms, 4000, "answered with the head, not after a wait: %.0f ms", ms);
    gw_answer direct = gw_call_h(eng, "POST", "/serper/search", auth_value, NULL, 0, "{}", 2);
    cr_expect_eq(direct.status, 401);
    cr_expect_str_eq(a.body, direct.body != NULL ? direct.body : "",
                     "the same refusal as ee_gateway_handle()");
    cr_expect(strcasestr(a.head, "\r\nContent-Type: application/json") != NULL, "%s", a.head);
    gw_answer_free(&direct);
}

Test(gateway_listen, a_bad_token_is_401_before_the_body_is_read)
{
    /* the default EXEC_GATEWAY_BODY_MAX (10 MiB): a 5 MiB body is not
     * refused for its size */
    ee_config *cfg = ee_test_config_new(NULL, gw_clock, NULL);
    ee_test_config_set(cfg, "EE_DATA_DIR", dir);
    ee_test_config_set(cfg, "PLATFORM_SERPER_KEY", C_SERPER);
    ee_engine *e2 = ee_test_engine_open_config(cfg);
    char *out = NULL, *url2 = NULL;
    cr_assert_eq(ee_cred_platform_provision(e2, &out), EE_OK);
    ee_free(out);
    static const char *const types[] = {"serper"};
    char live[EE__GATEWAY_TOKEN_SIZE], revoked[EE__GATEWAY_TOKEN_SIZE],
        expired[EE__GATEWAY_TOKEN_SIZE];
    gw_grant(e2, p, "dddddddddddddddddddddddd", types, 1, NULL, -1, gw_now + 600000, live);
    gw_grant(e2, p, "eeeeeeeeeeeeeeeeeeeeeeee", types, 1, NULL, -1, gw_now + 600000, revoked);
    gw_grant(e2, p, "ffffffffffffffffffffffff", types, 1, NULL, -1, gw_now - 1, expired);
    cr_assert_eq(ee__gateway_revoke(e2, "ws-listen", "eeeeeeeeeeeeeeeeeeeeeeee"), EE_OK);
    cr_assert_eq(ee_gateway_listen(e2, "127.0.0.1:0", &url2), EE_OK, "%s",
                 ee_error_last_message());

    char line[128], value[128];
    expect_refused_with_the_head(e2, url2, "", NULL);
    expect_refused_with_the_head(e2, url2, "Authorization: Basic eDp5\r\n", "Basic eDp5");
    expect_refused_with_the_head(e2, url2, "Authorization: Bearer eeg_nope\r\n",
                                 "Bearer eeg_nope");
    static const char unknown[] = "eeg_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    cr_assert_eq(strlen(unknown), EE__GATEWAY_TOKEN_SIZE - 1);
    const char *const bad[] = {unknown, expired};
    for (size_t i = 0; i < 2; i++) {
        snprintf(line, sizeof line, "Authorization: Bearer %s\r\n", bad[i]);
        snprintf(value, sizeof value, "Bearer %s", bad[i]);
        expect_refused_with_the_head(e2, url2, line, value);
    }
    /* revoked before its deadline (the run ended): the revocation is in the
     * run's total, which the head's check does not read - refused once the
     * body is in */
    char req[512];
    snprintf(req, sizeof req,
             "POST /gateway/serper/search HTTP/1.1\r\nHost: x\r\n"
             "Authorization: Bearer %s\r\nContent-Length: 2\r\n\r\n{}",
             revoked);
    raw_answer a = raw_exchange(url2, req);
    cr_expect_eq(a.status, 401, "%s\n%s", a.head, a.body);

    /* a live token's request is read and served as before */
    snprintf(req, sizeof req,
             "POST /gateway/serper/search?live=1 HTTP/1.1\r\nHost: x\r\n"
             "Authorization: Bearer %s\r\nContent-Length: 2\r\n\r\n{}",
             live);
    a = raw_exchange(url2, req);
    cr_expect_eq(a.status, 200, "%s\n%s", a.head, a.body);
    cr_expect_str_eq(provider_last(), "/search?live=1");
    /* and its head alone is not answered: the listener waits for the body */
    snprintf(req, sizeof req,
             "POST /gateway/serper/search HTTP/1.1\r\nHost: x\r\n"
             "Authorization: Bearer %s\r\nContent-Length: 100\r\n\r\n",
             live);
    int fd = raw_connect(url2, 300);
    raw_send(fd, req);
    a = raw_read(fd);
    cr_expect_eq(a.status, 0, "a live token's request is not refused early: %s", a.head);
    close(fd);
    ee_free(url2);
    ee_engine_close(e2);
}

#else

Test(gateway_listen, without_libmicrohttpd_listen_is_not_supported)
{
    ee_engine *eng = ee_test_engine_open(NULL, NULL, NULL);
    char *url = (char *)"x";
    cr_expect_eq(ee_gateway_listen(eng, "127.0.0.1:0", &url), EE_ENOTSUPPORTED);
    cr_expect_null(url);
    ee_engine_close(eng);
}

#endif

