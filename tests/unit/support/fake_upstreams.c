/*
 * The fake upstreams the gateway and end-to-end tests rely on
 * (tests/support/fake_openrouter.py, fake_serper.py): OpenRouter's chat
 * completions shape with its usage accounting (JSON and SSE), Serper's
 * search shape, the knobs (reset mid-answer, status, delay) and the record
 * of what they received.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <string.h>

#include "fake_upstream.h"
#include "execengine/errors.h"
#include "execengine/transport.h"

static ee_fake_upstream orouter, serper;

static void setup(void)
{
    ee_fake_upstream_start(&orouter, "fake_openrouter.py");
    ee_fake_upstream_start(&serper, "fake_serper.py");
}

static void teardown(void)
{
    ee_fake_upstream_stop(&orouter);
    ee_fake_upstream_stop(&serper);
}

TestSuite(fake_upstreams, .init = setup, .fini = teardown, .timeout = 60);

typedef struct {
    ee_status st;
    int status;
    char *body;     /* NUL-terminated copy (malloc) or NULL */
    char ctype[64];
} answer;

/* POST `body` to base+path with one extra header line ("Name: value" or NULL). */
static answer post(const char *base, const char *path, const char *header_name,
                   const char *header_value, const char *body, int64_t timeout_ms)
{
    answer a = {0};
    char url[512];
    snprintf(url, sizeof url, "%s%s", base, path);
    ee_transport *t;
    cr_assert_eq(ee_transport_curl_new(&t, NULL), EE_OK);
    ee_http_request *req;
    cr_assert_eq(ee_http_request_new(&req, "POST", url), EE_OK);
    cr_assert_eq(ee_http_request_add_header(req, "Content-Type", "application/json"), EE_OK);
    if (header_name != NULL)
        cr_assert_eq(ee_http_request_add_header(req, header_name, header_value), EE_OK);
    cr_assert_eq(ee_http_request_set_body(req, body, strlen(body)), EE_OK);
    if (timeout_ms > 0)
        cr_assert_eq(ee_http_request_set_limits(req, 2000, timeout_ms, 0), EE_OK);
    ee_http_response *resp = NULL;
    a.st = ee_transport_http(t, req, &resp);
    if (a.st == EE_OK) {
        a.status = ee_http_response_status(resp);
        const void *data;
        size_t len;
        ee_http_response_body(resp, &data, &len);
        a.body = strndup(data, len);
        const char *ct = ee_http_response_header(resp, "Content-Type");
        snprintf(a.ctype, sizeof a.ctype, "%s", ct ? ct : "");
    }
    ee_http_response_free(resp);
    ee_http_request_free(req);
    ee_transport_free(t);
    return a;
}

#define CHAT "/api/v1/chat/completions"
#define KEY "sk-or-v1-fake-upstream-canary-0001"

Test(fake_upstreams, chat_completion_has_openrouters_shape_and_fixed_usage)
{
    answer a = post(orouter.base, CHAT, "Authorization", "Bearer " KEY,
                    "{\"model\": \"m/x\", \"messages\": [{\"role\": \"user\", \"content\": "
                    "\"alpha beta\"}], \"usage\": {\"include\": true}}", 0);
    cr_assert_eq(a.st, EE_OK);
    cr_assert_eq(a.status, 200);
    json_t *doc = json_loads(a.body, 0, NULL);
    cr_assert_not_null(doc);
    cr_assert_str_eq(json_string_value(json_object_get(doc, "object")), "chat.completion");
    cr_assert_str_eq(json_string_value(json_object_get(doc, "model")), "m/x");
    json_t *msg = json_object_get(json_array_get(json_object_get(doc, "choices"), 0), "message");
    cr_assert_str_eq(json_string_value(json_object_get(msg, "content")), "Summary: alpha beta");
    json_t *u = json_object_get(doc, "usage");
    cr_assert_eq(json_integer_value(json_object_get(u, "prompt_tokens")), 42);
    cr_assert_eq(json_integer_value(json_object_get(u, "completion_tokens")), 17);
    cr_assert_eq(json_integer_value(json_object_get(u, "total_tokens")), 59);
    cr_assert_not_null(strstr(a.body, "\"cost\": 0.000123"), "cost as OpenRouter writes it");
    json_decref(doc);
    free(a.body);
}

Test(fake_upstreams, usage_and_content_follow_the_config_knob)
{
    ee_fake_upstream_post(&orouter, "/__config",
                          "{\"usage\": {\"prompt_tokens\": 1000, \"cost\": 0.5}, \"content\": \"ok\"}");
    answer a = post(orouter.base, CHAT, "Authorization", "Bearer " KEY, "{\"messages\": []}", 0);
    cr_assert_eq(a.status, 200);
    json_t *doc = json_loads(a.body, 0, NULL);
    json_t *u = json_object_get(doc, "usage");
    cr_assert_eq(json_integer_value(json_object_get(u, "prompt_tokens")), 1000);
    cr_assert_eq(json_integer_value(json_object_get(u, "completion_tokens")), 17, "others kept");
    cr_assert_float_eq(json_real_value(json_object_get(u, "cost")), 0.5, 1e-12);
    json_t *msg = json_object_get(json_array_get(json_object_get(doc, "choices"), 0), "message");
    cr_assert_str_eq(json_string_value(json_object_get(msg, "content")), "ok");
    json_decref(doc);
    free(a.body);
}

Test(fake_upstreams, stream_sends_usage_in_the_last_data_message)
{
    answer a = post(orouter.base, "/openrouter" CHAT, "Authorization", "Bearer " KEY,
                    "{\"stream\": true, \"messages\": [{\"role\": \"user\", \"content\": \"a b\"}]}",
                    0);
    cr_assert_eq(a.status, 200);
    cr_assert_not_null(strstr(a.ctype, "text/event-stream"));
    cr_assert_eq(strncmp(a.body, ": OPENROUTER PROCESSING\n\n", 25), 0);
    /* the data messages: the last before [DONE] carries usage, no earlier one does */
    const char *done = strstr(a.body, "data: [DONE]\n\n");
    cr_assert_not_null(done);
    cr_assert_eq(done[strlen("data: [DONE]\n\n")], '\0', "[DONE] ends the stream");
    const char *last = NULL;
    for (const char *p = strstr(a.body, "data: {"); p != NULL && p < done; p = strstr(p + 1, "data: {"))
        last = p;
    cr_assert_not_null(last);
    json_t *msg = json_loadb(last + 6, (size_t)(done - last - 6), 0, NULL);
    cr_assert_not_null(msg, "the last data message is JSON");
    cr_assert_eq(json_array_size(json_object_get(msg, "choices")), 0);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(msg, "usage"), "total_tokens")),
                 59);
    json_decref(msg);
    size_t usages = 0;
    for (const char *p = strstr(a.body, "\"usage\""); p != NULL; p = strstr(p + 1, "\"usage\""))
        usages++;
    cr_assert_eq(usages, 1, "usage only in the last data message");
    cr_assert_not_null(strstr(a.body, "\"content\": \" b\""), "one delta per word");
    free(a.body);
}

Test(fake_upstreams, reset_knob_breaks_the_answer_midway)
{
    answer a = post(orouter.base, "/reset" CHAT, "Authorization", "Bearer " KEY,
                    "{\"messages\": []}", 0);
    cr_assert_neq(a.st, EE_OK, "a reset mid-answer is a transport failure, got %d", a.status);
    free(a.body);
    ee_fake_upstream_post(&orouter, "/__config", "{\"reset\": true}");
    a = post(orouter.base, CHAT, "Authorization", "Bearer " KEY, "{\"stream\": true}", 0);
    cr_assert_neq(a.st, EE_OK, "a stream reset after its first messages fails too");
    free(a.body);
}

Test(fake_upstreams, delay_knob_outlasts_a_short_timeout)
{
    ee_fake_upstream_post(&orouter, "/__config", "{\"delayMs\": 3000}");
    answer a = post(orouter.base, CHAT, "Authorization", "Bearer " KEY, "{}", 300);
    cr_assert_eq(a.st, EE_ETIMEOUT, "the fake answered before its delay: %s",
                 ee_status_name(a.st));
    free(a.body);
}

Test(fake_upstreams, status_knob_and_missing_key_answer_errors)
{
    answer a = post(orouter.base, "/status-429" CHAT, "Authorization", "Bearer " KEY, "{}", 0);
    cr_assert_eq(a.status, 429);
    cr_assert_not_null(strstr(a.body, "\"error\""));
    free(a.body);
    a = post(orouter.base, CHAT, NULL, NULL, "{}", 0);
    cr_assert_eq(a.status, 401, "no bearer token");
    free(a.body);
    a = post(serper.base, "/search", NULL, NULL, "{\"q\": \"x\"}", 0);
    cr_assert_eq(a.status, 403, "no X-API-KEY");
    free(a.body);
}

Test(fake_upstreams, serper_answers_its_search_shape)
{
    answer a = post(serper.base, "/search", "X-API-KEY", "serper-canary-key",
                    "{\"q\": \"c d\", \"num\": 2}", 0);
    cr_assert_eq(a.status, 200);
    json_t *doc = json_loads(a.body, 0, NULL);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(doc, "searchParameters"),
                                                       "q")), "c d");
    json_t *org = json_object_get(doc, "organic");
    cr_assert_eq(json_array_size(org), 2);
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(org, 1), "position")), 2);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(org, 0), "link")),
                     "https://example.com/1?q=c%20d");
    cr_assert_eq(json_integer_value(json_object_get(doc, "credits")), 1);
    json_decref(doc);
    free(a.body);
}

Test(fake_upstreams, requests_are_recorded_with_their_headers)
{
    answer a = post(orouter.base, "/openrouter" CHAT, "Authorization", "Bearer " KEY,
                    "{\"messages\": []}", 0);
    free(a.body);
    a = post(serper.base, "/serper/search", "X-API-KEY", "serper-canary-key", "{\"q\": \"z\"}", 0);
    free(a.body);
    json_t *reqs = ee_fake_upstream_requests(&orouter);
    cr_assert_eq(json_array_size(reqs), 1);
    json_t *r = json_array_get(reqs, 0);
    cr_assert_str_eq(json_string_value(json_object_get(r, "path")), "/openrouter" CHAT);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(r, "headers"),
                                                       "authorization")), "Bearer " KEY);
    cr_assert_str_eq(json_string_value(json_object_get(r, "body")), "{\"messages\": []}");
    json_decref(reqs);
    reqs = ee_fake_upstream_requests(&serper);
    cr_assert_eq(json_array_size(reqs), 1);
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(json_array_get(reqs, 0), "headers"), "x-api-key")),
                     "serper-canary-key");
    json_decref(reqs);
    ee_fake_upstream_post(&serper, "/__reset", "{}");
    reqs = ee_fake_upstream_requests(&serper);
    cr_assert_eq(json_array_size(reqs), 0, "reset forgets");
    json_decref(reqs);
}
