/*
 * The fake n8n's "llm" workflow spending through the engine's gateway, for
 * the tests that need a run to spend (exec_budget.c, audit/canary.c,
 * billing/billing_pipeline.c): a custom transport (no retries) that answers
 * the gateway's upstream and, on the "llm" webhook, calls the engine's
 * gateway with the run's token as the workflow's OpenRouter node would.
 *
 *   static ee_status http(void *ctx, const ee_http_request *req, ee_http_response *resp)
 *   {
 *       if (gw_is_upstream(req)) { ...; return gw_upstream_answer(resp, json); }
 *       gw_llm_webhook(req, spend);             (spend gets the run's token)
 *       return fake_http(ctx, req, resp);
 *   }
 *   gw_client_new(&transport, &client, http);  in the suite's set-up
 *   engine = gw_engine_open(cfg, transport, client);
 *   int status = gw_call(engine, token);       one gateway call, its HTTP status
 */
#ifndef EE_TEST_EXEC_GATEWAY_H
#define EE_TEST_EXEC_GATEWAY_H

#include "exec_fake.h"

#include <execengine/credentials.h>
#include <execengine/gateway.h>

/* The upstream's answer to a chat completion: 123457 nano-USD per call. */
#define GW_UP_ANSWER                                                                               \
    "{\"id\": \"gen-1\", \"model\": \"openai/gpt-4o-mini\", \"choices\": [{\"index\": 0, "       \
    "\"message\": {\"role\": \"assistant\", \"content\": \"hi\"}}], \"usage\": "                  \
    "{\"prompt_tokens\": 12, \"completion_tokens\": 30, \"total_tokens\": 42, "                   \
    "\"cost\": 0.000123456789}}"

static int gw_sink_head(int status, const char *const *h, size_t n, void *payload)
{
    (void)h;
    (void)n;
    *(int *)payload = status;
    return 0;
}

static int gw_sink_body(const char *chunk, size_t len, void *payload)
{
    (void)chunk;
    (void)len;
    (void)payload;
    return 0;
}

/* One chat completion through the engine's gateway with the run's token;
 * returns the HTTP status the gateway answered. */
static int gw_call(ee_engine *e, const char *token)
{
    char auth[128];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
    const char *headers[] = {auth, "Content-Type: application/json"};
    static const char body[] = "{\"model\": \"openai/gpt-4o-mini\", \"messages\": []}";
    ee_gateway_request req = {EE_GATEWAY_REQUEST_VERSION, "POST",
                              "/openrouter/api/v1/chat/completions", NULL, headers, 2, body,
                              sizeof body - 1};
    int status = 0;
    ee_gateway_sink sink = {gw_sink_head, gw_sink_body, &status};
    cr_assert_eq(ee_gateway_handle(e, &req, &sink), EE_OK, "%s", ee_error_last_message());
    return status;
}

/* A request to OpenRouter, the gateway's upstream (data/gateway.json's base URL). */
static int gw_is_upstream(const ee_http_request *req)
{
    return strncmp(ee_http_request_url(req), "https://openrouter.ai/", 22) == 0;
}

static ee_status gw_upstream_answer(ee_http_response *resp, const char *json)
{
    ee_http_response_set_status(resp, 200);
    ee_http_response_add_header(resp, "Content-Type", "application/json");
    ee_http_response_append_body(resp, json, strlen(json));
    return EE_OK;
}

/* On the "llm" webhook, hands the run's gateway token to spend(); other
 * requests are left alone. */
static void gw_llm_webhook(const ee_http_request *req, void (*spend)(const char *token))
{
    if (strcmp(ee_http_request_url(req), "http://fake.n8n/webhook/llm") != 0)
        return;
    const void *data = NULL;
    size_t len = 0;
    ee_http_request_body(req, &data, &len);
    json_t *b = json_loadb(data, len, 0, NULL);
    const char *token = json_string_value(json_object_get(json_object_get(b, "ee"),
                                                          "gatewayToken"));
    cr_assert(token != NULL, "the webhook body carries no gateway token");
    spend(token);
    json_decref(b);
}

/* The custom transport (no retries) answering through http, and the n8n
 * client on it. */
static void gw_client_new(ee_transport **transport_out, ee_n8n **client_out,
                          ee_status (*http)(void *ctx, const ee_http_request *req,
                                            ee_http_response *resp))
{
    ee_transport_backend be = {EE_TRANSPORT_BACKEND_VERSION, EE_TRANSPORT_THREAD_SAFE, http,
                               NULL, NULL};
    ee_transport_options *o = NULL;
    cr_assert_eq(ee_transport_options_new(&o), EE_OK);
    cr_assert_eq(ee_transport_options_set_int64(o, "max_retries", 0), EE_OK);
    cr_assert_eq(ee_transport_new_custom(transport_out, &be, NULL, o), EE_OK);
    ee_transport_options_free(o);
    cr_assert_eq(ee_n8n_new(client_out, *transport_out, "http://fake.n8n", "fake-key"), EE_OK);
}

/* The engine on this transport and client, from cfg (released), platform
 * keys provisioned and the fake n8n's workflows synced. */
static ee_engine *gw_engine_open(ee_config *cfg, ee_transport *transport, ee_n8n *client)
{
    ee_engine *engine = NULL;
    ee_engine_parts parts = {.version = EE_ENGINE_PARTS_VERSION, .n8n = client,
                             .transport = transport};
    ee_status st = ee_engine_open_parts(&engine, cfg, &parts);
    ee_config_free(cfg);
    cr_assert_eq(st, EE_OK, "%s", ee_error_last_message());
    char *out = NULL;
    cr_assert_eq(ee_cred_platform_provision(engine, &out), EE_OK, "%s", ee_error_last_message());
    ee_free(out);
    fake_sync(engine);
    return engine;
}

#endif
