/*
 * The embedded listener's callback route (POST <listener>/_ee/callback)
 * with real HTTP (libcurl against ee_gateway_listen()), over the fake n8n:
 * with the listener up and EXEC_CALLBACK_URL unset, a run is given the
 * route as ee.callbackUrl; a signed callback sent there finishes the run
 * once; bad signatures, old timestamps, malformed or oversized bodies,
 * other methods and unknown executions are refused with their HTTP codes
 * and leave the record as it was; no answer carries the callback key.
 * EXEC_CALLBACK_URL, when set, wins; with neither, no callbackUrl is given.
 * A provider named like the route ("_ee") is refused in gateway.json.
 */
#if EE_WITH_MHD

#include "exec_fake.h"

#include <curl/curl.h>
#include <dirent.h>
#include <sys/stat.h>

#include "exec/support.h"
#include "execengine/gateway.h"

static char dir[256];
static ee_principal *alice;

static void setup(void)
{
    fake_setup();
    snprintf(dir, sizeof dir, "/tmp/ee-exec-cbroute-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    cr_assert_eq(ee_principal_new(&alice, "ws-alice", "u1", "org-a"), EE_OK);
}

static void teardown(void)
{
    ee_principal_free(alice);
    fake_teardown();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    (void)system(cmd);
}

TestSuite(exec_callback_route, .init = setup, .fini = teardown, .timeout = 120);

static ee_config *config(void)
{
    char uri[400], results[300];
    snprintf(uri, sizeof uri, "sqlite://%s/ee.db", dir);
    snprintf(results, sizeof results, "%s/results", dir);
    ee_config *cfg = ee_test_config_new(uri, NULL, NULL);
    ee_test_config_set(cfg, "EXEC_WORKERS", "2");
    ee_test_config_set(cfg, "EXEC_POLL_MS", "50");
    ee_test_config_set(cfg, "EXEC_RESULTS_DIR", results);
    return cfg;
}

static json_t *get(ee_engine *e, const char *id)
{
    char *out = NULL;
    cr_assert_eq(ee_exec_get(e, alice, id, &out), EE_OK, "%s", out);
    json_t *rec = parse_doc(out);
    ee_free(out);
    return rec;
}

/* The record's text, to compare before and after a refused callback. */
static char *record_text(ee_engine *e, const char *id)
{
    char *out = NULL;
    cr_assert_eq(ee_exec_get(e, alice, id, &out), EE_OK, "%s", out);
    return out;
}

/* Submit a run of the "callback" workflow and wait until the fake has its
 * trigger; the "ee" member it received goes to *ee_out (the caller's). */
static void start_run(ee_engine *e, char id[EE_EXEC_ID_SIZE], json_t **ee_out)
{
    char wf[25];
    entry_id(e, "wfC", wf);
    int before = fake_hits("callback");
    cr_assert_eq(ee_exec_submit(e, alice, wf, "{}", NULL, NULL, id), EE_OK, "%s",
                 ee_error_last_message());
    for (int i = 0; i < 1000 && fake_hits("callback") == before; i++)
        usleep(10000);
    cr_assert_gt(fake_hits("callback"), before, "the workflow was never triggered");
    /* the record turns "running" before the trigger is sent */
    json_t *rec = get(e, id);
    cr_assert_str_eq(sget(rec, "status"), "running");
    json_decref(rec);
    pthread_mutex_lock(&fake.lock);
    size_t n = json_array_size(fake.bodies);
    json_t *sent = parse_doc(json_string_value(json_array_get(fake.bodies, n - 1)));
    pthread_mutex_unlock(&fake.lock);
    *ee_out = json_incref(json_object_get(sent, "ee"));
    json_decref(sent);
    cr_assert_str_eq(sget(*ee_out, "executionId"), id);
}

typedef struct {
    long status;
    char *body;
    size_t len;
} answer;

static size_t on_body(char *data, size_t size, size_t n, void *payload)
{
    answer *a = payload;
    size_t len = size * n;
    char *grown = realloc(a->body, a->len + len + 1);
    cr_assert_not_null(grown);
    a->body = grown;
    memcpy(a->body + a->len, data, len);
    a->len += len;
    a->body[a->len] = '\0';
    return len;
}

/* One request to `url`; timestamp/signature NULL: header not sent. */
static answer http(const char *method, const char *url, const char *timestamp,
                   const char *signature, const char *body, size_t len, bool chunked)
{
    answer a = {0, NULL, 0};
    CURL *c = curl_easy_init();
    cr_assert_not_null(c);
    char th[64], sh[128];
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    if (timestamp != NULL) {
        snprintf(th, sizeof th, "X-EE-Timestamp: %s", timestamp);
        h = curl_slist_append(h, th);
    }
    if (signature != NULL) {
        snprintf(sh, sizeof sh, "X-EE-Signature: %s", signature);
        h = curl_slist_append(h, sh);
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
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    CURLcode rc = curl_easy_perform(c);
    cr_assert_eq(rc, CURLE_OK, "%s %s: %s", method, url, curl_easy_strerror(rc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a.status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (a.body == NULL)
        a.body = calloc(1, 1);
    return a;
}

/* POST `body` to the route signed with `key` at `ts` (spoil: one hex digit
 * of the signature changed). */
static answer deliver(const char *url, const char *key, int64_t ts, const char *body,
                      bool spoil)
{
    char t[32], sig[68];
    snprintf(t, sizeof t, "%lld", (long long)ts);
    cr_assert_eq(ee__callback_sign(key, t, body, strlen(body), sig), EE_OK);
    if (spoil)
        sig[10] = sig[10] == 'a' ? 'b' : 'a';
    return http("POST", url, t, sig, body, strlen(body), false);
}

/* A refusal: the HTTP code, the gateway's error shape with `status`, no
 * key in it, and the record as it was. */
static void refused(answer a, long code, const char *status, const char *key, ee_engine *e,
                    const char *id, const char *before, const char *what)
{
    cr_assert_eq(a.status, code, "%s: HTTP %ld %s", what, a.status, a.body);
    json_t *doc = parse_doc(a.body);
    cr_assert_str_eq(sget(json_object_get(doc, "error"), "status"), status, "%s: %s", what,
                     a.body);
    json_decref(doc);
    cr_assert_null(strstr(a.body, key), "%s: the answer holds the callback key", what);
    char *now = record_text(e, id);
    cr_assert_str_eq(now, before, "%s changed the record", what);
    ee_free(now);
    free(a.body);
}

Test(exec_callback_route, the_listener_takes_a_signed_callback_and_refuses_bad_ones)
{
    ee_engine *e = fake_engine_config(config());
    fake_sync(e);
    char *gw = NULL;
    cr_assert_eq(ee_gateway_listen(e, "127.0.0.1:0", &gw), EE_OK, "%s", ee_error_last_message());
    char route[256];
    snprintf(route, sizeof route, "%s/_ee/callback", gw);
    ee_free(gw);

    char id[EE_EXEC_ID_SIZE];
    json_t *ee = NULL;
    start_run(e, id, &ee);
    cr_assert_str_eq(sget(ee, "callbackUrl"), route, "the run is given the listener's route");
    char key[65];
    cr_assert_not_null(sget(ee, "callbackKey"));
    snprintf(key, sizeof key, "%s", sget(ee, "callbackKey"));
    cr_assert_eq(strlen(key), 64);
    json_decref(ee);

    char body[512];
    snprintf(body, sizeof body,
             "{\"executionId\": \"%s\", \"workspaceId\": \"ws-alice\", \"status\": "
             "\"completed\", \"output\": {\"summary\": \"by the route\"}}",
             id);
    int64_t now_s = ee_engine_now_ms(e) / 1000;
    char *before = record_text(e, id);

    refused(http("GET", route, NULL, NULL, NULL, 0, false), 405, "EE_EINVAL", key, e, id,
            before, "GET");
    refused(deliver(route, key, now_s, body, true), 401, "EE_EAUTH", key, e, id, before,
            "a bad signature");
    refused(deliver(route, key, now_s - 600, body, false), 401, "EE_EAUTH", key, e, id, before,
            "a timestamp 600 s old");
    refused(http("POST", route, NULL, NULL, body, strlen(body), false), 401, "EE_EAUTH", key, e,
            id, before, "no signature");
    refused(deliver(route, key, now_s, "{\"executionId\": ", false), 400, "EE_EPARSE", key, e,
            id, before, "a malformed body");
    /* over the callback limit (EE_EXEC_REQUEST_MAX, under EXEC_GATEWAY_BODY_MAX's
     * default): declared, then chunked */
    size_t big_len = EE_EXEC_REQUEST_MAX + 1;
    char *big = malloc(big_len + 1);
    cr_assert_not_null(big);
    memset(big, ' ', big_len);
    big[big_len] = '\0';
    memcpy(big, body, strlen(body));
    refused(http("POST", route, "1", "v1=00", big, big_len, false), 413, "EE_ETOOBIG", key, e, id,
            before, "a declared body over the limit");
    refused(http("POST", route, "1", "v1=00", big, big_len, true), 413, "EE_ETOOBIG", key, e, id,
            before, "a chunked body over the limit");
    free(big);
    /* an execution nobody has, signed with its own key */
    const char *ghost = "0123456789abcdef01234567";
    char ghost_key[65], ghost_body[512];
    cr_assert_eq(ee__callback_key(e, ghost, ghost_key), EE_OK);
    snprintf(ghost_body, sizeof ghost_body,
             "{\"executionId\": \"%s\", \"workspaceId\": \"ws-alice\", \"status\": "
             "\"completed\", \"output\": {}}",
             ghost);
    refused(deliver(route, ghost_key, now_s, ghost_body, false), 404, "EE_ENOTFOUND", key, e, id,
            before, "an unknown execution");
    ee_free(before);

    answer a = deliver(route, key, now_s, body, false);
    cr_assert_eq(a.status, 200, "HTTP %ld %s", a.status, a.body);
    cr_assert_null(strstr(a.body, key));
    json_t *ans = parse_doc(a.body);
    free(a.body);
    cr_assert(json_is_true(json_object_get(ans, "applied")));
    cr_assert_str_eq(sget(ans, "executionId"), id);
    json_decref(ans);

    char *out = NULL;
    cr_assert_eq(ee_exec_wait(e, alice, id, 30000, &out), EE_OK, "%s", out);
    json_t *rec = parse_doc(out);
    ee_free(out);
    cr_assert_str_eq(sget(rec, "status"), "completed");
    cr_assert_str_eq(sget(json_object_get(rec, "outputData"), "summary"), "by the route");
    json_decref(rec);

    a = deliver(route, key, now_s, body, false);
    cr_assert_eq(a.status, 200, "HTTP %ld %s", a.status, a.body);
    ans = parse_doc(a.body);
    free(a.body);
    cr_assert(json_is_false(json_object_get(ans, "applied")), "a repeat applies nothing");
    json_decref(ans);
    ee_engine_close(e);
}

Test(exec_callback_route, a_configured_callback_url_wins_and_without_either_none_is_given)
{
    /* neither the option nor a listener: no callbackUrl, no key */
    ee_engine *e = fake_engine_config(config());
    fake_sync(e);
    char id[EE_EXEC_ID_SIZE];
    json_t *ee = NULL;
    start_run(e, id, &ee);
    cr_assert_null(json_object_get(ee, "callbackUrl"));
    cr_assert_null(json_object_get(ee, "callbackKey"));
    json_decref(ee);
    /* the listener started after the engine opened: the next run gets it */
    char *gw = NULL;
    cr_assert_eq(ee_gateway_listen(e, "127.0.0.1:0", &gw), EE_OK, "%s", ee_error_last_message());
    char route[256];
    snprintf(route, sizeof route, "%s/_ee/callback", gw);
    ee_free(gw);
    start_run(e, id, &ee);
    cr_assert_str_eq(sget(ee, "callbackUrl"), route);
    cr_assert_not_null(json_object_get(ee, "callbackKey"));
    json_decref(ee);
    ee_engine_close(e);

    /* EXEC_CALLBACK_URL set: it is given, listener or not */
    ee_config *cfg = config();
    ee_test_config_set(cfg, "EXEC_CALLBACK_URL", "http://host.test/ee/callback");
    e = fake_engine_config(cfg);
    cr_assert_eq(ee_gateway_listen(e, "127.0.0.1:0", NULL), EE_OK, "%s", ee_error_last_message());
    start_run(e, id, &ee);
    cr_assert_str_eq(sget(ee, "callbackUrl"), "http://host.test/ee/callback");
    cr_assert_not_null(json_object_get(ee, "callbackKey"));
    json_decref(ee);
    ee_engine_close(e);
}

/* gateway.json naming a provider "_ee": the route would hide it. */
Test(exec_callback_route, a_provider_named_like_the_route_is_refused)
{
    char data[300];
    snprintf(data, sizeof data, "%s/data", dir);
    cr_assert_eq(mkdir(data, 0700), 0);
    DIR *d = opendir(EE_TEST_DATA_DIR);
    cr_assert_not_null(d);
    struct dirent *ent;
    while ((ent = readdir(d)) != NULL) {
        if (strstr(ent->d_name, ".json") == NULL)
            continue;
        char from[512], to[600];
        snprintf(from, sizeof from, "%s/%s", EE_TEST_DATA_DIR, ent->d_name);
        snprintf(to, sizeof to, "%s/%s", data, ent->d_name);
        json_t *doc = json_load_file(from, 0, NULL);
        cr_assert_not_null(doc, "%s", from);
        if (strcmp(ent->d_name, "gateway.json") == 0)
            json_array_append_new(json_object_get(doc, "providers"),
                                  json_pack("{s:s, s:s, s:[s], s:{s:s, s:s}}", "provider", "_ee",
                                            "baseUrl", "http://127.0.0.1:9", "credentials",
                                            "serperApi", "inject", "header", "X-API-KEY",
                                            "format", "%s"));
        cr_assert_eq(json_dump_file(doc, to, 0), 0);
        json_decref(doc);
    }
    closedir(d);
    ee_config *cfg = config();
    ee_test_config_set(cfg, "EE_DATA_DIR", data);
    ee_engine *e = NULL;
    ee_status st = ee_engine_open(&e, cfg);
    ee_config_free(cfg);
    cr_assert_eq(st, EE_EINVAL, "a provider \"_ee\" was taken");
    cr_assert_null(e);
    cr_assert_not_null(strstr(ee_error_last_message(), "_ee/callback"), "%s",
                       ee_error_last_message());
}

#else

/* Without libmicrohttpd there is no listener, so no route: nothing to run
 * here (tests/unit/gateway/listen.c checks ee_gateway_listen() says so). */
#include <criterion/criterion.h>

#endif
