/*
 * An engine that can run workflows, for the targets that need executions
 * (exec_requests, history_queries, notify_email, gateway_listen): memory
 * storage and counters, the fixed clock of fuzz_engine.h, no execution
 * workers unless asked (EXEC_WORKERS=0: a submitted run stays queued until
 * a signed callback or a cancel ends it, nothing runs behind the target's
 * back), and a fake n8n as the engine's transport and n8n client (its
 * webhooks end a run at once). Its catalog is
 * synced from two n8n workflows with a webhook trigger: "plain" (inputs
 * checked by a schema) and "llm" (an OpenRouter node: platform key, or
 * the customer key with useCustomApiKey). The organisation is on the
 * enterprise plan (no hourly or monthly limit: inputs are refused for
 * what they say, not because earlier inputs used the quota up), the user
 * has a customer key, and results e-mails go through a Resend-style API
 * (or SMTP) whose every answer the target may choose (fz_mail).
 * Header-only, like fuzz_engine.h.
 */
#ifndef EE_FUZZ_RUNS_H
#define EE_FUZZ_RUNS_H

#include "fuzz_engine.h"

#include "core/core.h"
#include "exec/support.h"

#define FZ_WS "ws-fz"
#define FZ_USER "u-fz"
#define FZ_ORG "org-fz"
/* platform keys and the customer key: canaries no answer may show */
#define FZ_OPENROUTER_KEY "sk-or-v1-FZCANARY-platform-0a1b2c"
#define FZ_SERPER_KEY "FZCANARY-serper-3d4e5f"
#define FZ_CUSTOMER_KEY "sk-or-v1-FZCANARY-customer-6a7b8c"
#define FZ_RESEND_KEY "re_FZCANARY_resend_9d8e7f"

/* ---- what the mail server or the e-mail API answers ------------------------- */

typedef struct {
    ee_status smtp;          /* the SMTP slot's status (EE_OK: accepted) */
    int smtp_reply;          /* its reply code (ee_error_last_http_status()) */
    char smtp_text[512];     /* its message: the server's words, any bytes */
    int api_status;          /* the e-mail API's HTTP status */
    const uint8_t *api_body; /* its body (borrowed) */
    size_t api_len;
    unsigned sent;           /* messages handed to either */
} fz_mail_answer;

static fz_mail_answer fz_mail = {EE_OK, 250, "", 200, NULL, 0, 0};

/* Whether `hay` (n bytes) holds `needle`. */
static inline bool fz_holds(const char *hay, size_t n, const char *needle)
{
    return hay != NULL && memmem(hay, n, needle, strlen(needle)) != NULL;
}

/* ---- the fake n8n -------------------------------------------------------------- */

static inline json_t *fz_n8n_node(const char *name, const char *type, const char *cred)
{
    json_t *n = json_pack("{s:s, s:s, s:{}}", "name", name, "type", type, "parameters");
    if (cred != NULL)
        json_object_set_new(n, "credentials", json_pack("{s:{s:s, s:s}}", cred, "id", "c1",
                                                        "name", "c"));
    return n;
}

static inline json_t *fz_n8n_workflow(const char *id, const char *path, json_t *extra)
{
    json_t *hook = json_pack("{s:s, s:s, s:s, s:{s:s, s:s, s:s}}", "name", "Webhook", "type",
                             "n8n-nodes-base.webhook", "webhookId", path, "parameters", "path",
                             path, "httpMethod", "POST", "responseMode", "responseNode");
    json_t *nodes = json_pack("[o, o]", hook, fz_n8n_node("Set", "n8n-nodes-base.set", NULL));
    if (extra != NULL)
        json_array_append_new(nodes, extra);
    return json_pack("{s:s, s:s, s:b, s:b, s:s, s:s, s:o, s:{}, s:[]}", "id", id, "name", path,
                     "active", 1, "isArchived", 0, "versionId", "v1", "updatedAt",
                     "2025-10-01T00:00:00.000Z", "nodes", nodes, "connections", "tags");
}

static inline json_t *fz_n8n_workflows(void)
{
    static json_t *list;
    if (list == NULL)
        list = json_pack("[o, o]", fz_n8n_workflow("wf-plain", "plain", NULL),
                         fz_n8n_workflow("wf-llm", "llm",
                                         fz_n8n_node("LLM", "@n8n/n8n-nodes-langchain."
                                                     "lmChatOpenRouter", "openRouterApi")));
    return list;
}

static inline ee_status fz_answer_json(ee_http_response *resp, int status, json_t *doc)
{
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    CHECK(text != NULL);
    CHECK(ee_http_response_set_status(resp, status) == EE_OK);
    CHECK(ee_http_response_add_header(resp, "Content-Type", "application/json") == EE_OK);
    ee_status st = ee_http_response_append_body(resp, text, strlen(text));
    free(text);
    return st;
}

static inline ee_status fz_runs_http(void *ctx, const ee_http_request *req, ee_http_response *resp)
{
    (void)ctx;
    const char *url = ee_http_request_url(req);
    static const char api[] = "http://fz.n8n/api/v1/", mail[] = "http://fz.mail/emails",
                      hook[] = "http://fz.n8n/webhook/";
    if (strncmp(url, hook, sizeof hook - 1) == 0) {
        /* a workflow run by a worker (fz_runs_open() with workers): it ends
         * at once, failed when its "text" parameter is "fail" */
        const void *b = NULL;
        size_t blen = 0;
        ee_http_request_body(req, &b, &blen);
        json_t *body = json_loadb(b, blen, 0, NULL);
        const char *text = json_string_value(json_object_get(body, "text"));
        bool fail = text != NULL && strcmp(text, "fail") == 0;
        json_decref(body);
        return fz_answer_json(resp, 200,
                              fail ? json_pack("{s:s, s:s}", "status", "failed", "error",
                                               "the workflow failed")
                                   : json_pack("{s:s, s:s, s:[i, i]}", "status", "completed",
                                               "summary", "done", "items", 1, 2));
    }
    if (strncmp(url, "https://openrouter.ai/", 22) == 0) {
        /* the provider behind the gateway: a chat completion with its
         * usage, as an SSE stream (in small pieces) when the call asks */
        const void *b = NULL;
        size_t blen = 0;
        ee_http_request_body(req, &b, &blen);
        bool stream = b != NULL && (fz_holds(b, blen, "\"stream\": true") ||
                                    fz_holds(b, blen, "\"stream\":true"));
        static const char sse[] =
            "data: {\"id\": \"g\", \"choices\": [{\"delta\": {\"content\": \"Hi\"}}]}\n\n"
            "data: {\"id\": \"g\", \"model\": \"m\", \"usage\": {\"prompt_tokens\": 3, "
            "\"completion_tokens\": 2, \"total_tokens\": 5, \"cost\": 0.00001}}\n\ndata: [DONE]\n\n";
        static const char doc[] = "{\"id\": \"g\", \"model\": \"m\", \"choices\": [], \"usage\": "
                                  "{\"prompt_tokens\": 3, \"completion_tokens\": 2, "
                                  "\"total_tokens\": 5, \"cost\": 0.00001}}";
        CHECK(ee_http_response_set_status(resp, 200) == EE_OK);
        CHECK(ee_http_response_add_header(resp, "Content-Type", stream ? "text/event-stream"
                                                                        : "application/json") ==
              EE_OK);
        const char *text = stream ? sse : doc;
        size_t n = strlen(text), step = stream ? 16 : n;
        ee_status st = EE_OK;
        for (size_t at = 0; st == EE_OK && at < n; at += step)
            st = ee_http_response_append_body(resp, text + at, n - at < step ? n - at : step);
        return st;
    }
    if (strcmp(url, mail) == 0) {
        fz_mail.sent++;
        CHECK(ee_http_response_set_status(resp, fz_mail.api_status) == EE_OK);
        return ee_http_response_append_body(resp, fz_mail.api_body, fz_mail.api_len);
    }
    if (strncmp(url, api, sizeof api - 1) == 0) {
        const char *rest = url + sizeof api - 1;
        json_t *list = fz_n8n_workflows();
        if (strncmp(rest, "workflows?", 10) == 0)
            return fz_answer_json(resp, 200, json_pack("{s:O, s:n}", "data", list,
                                                       "nextCursor"));
        size_t i;
        json_t *wf;
        json_array_foreach(list, i, wf) {
            if (strncmp(rest, "workflows/", 10) == 0 &&
                strcmp(rest + 10, json_string_value(json_object_get(wf, "id"))) == 0)
                return fz_answer_json(resp, 200, json_incref(wf));
        }
    }
    return fz_answer_json(resp, 404, json_pack("{s:s}", "message", "Not Found"));
}

static inline ee_status fz_runs_mail(void *ctx, const ee_mail *msg)
{
    (void)ctx;
    (void)msg;
    fz_mail.sent++;
    if (fz_mail.smtp == EE_OK)
        return EE_OK;
    /* as the curl backend reports a refusal: the reply code and the
     * server's own words in the message */
    return ee__error_full(fz_mail.smtp, fz_mail.smtp_reply, NULL, "SMTP server refused: %s",
                          fz_mail.smtp_text);
}

static const ee_transport_backend fz_runs_backend = {
    EE_TRANSPORT_BACKEND_VERSION, EE_TRANSPORT_THREAD_SAFE, fz_runs_http, fz_runs_mail, NULL};

/* ---- the engine ---------------------------------------------------------------- */

typedef struct {
    ee_engine *engine;
    ee_transport *transport;
    ee_n8n *n8n;
    ee_principal *user;           /* FZ_WS / FZ_USER / FZ_ORG */
    char plain_id[32], llm_id[32]; /* catalog ids of the two workflows */
    char key_id[32];              /* the user's customer key */
} fz_runs;

static inline void fz_runs_set(ee_config *cfg, const char *key, const char *value)
{
    if (ee_config_set(cfg, key, value) != EE_OK) {
        fprintf(stderr, "%s: %s\n", key, ee_error_last_message());
        CHECK(!"a valid option");
    }
}

/* The catalog id of the entry synced from n8n workflow `n8n_id`. */
static inline void fz_runs_entry_id(ee_engine *e, const char *n8n_id, char id[32])
{
    char q[128], *out = NULL;
    snprintf(q, sizeof q, "{\"n8nWorkflowId\": \"%s\"}", n8n_id);
    CHECK(ee_catalog_list(e, NULL, q, &out) == EE_OK);
    json_t *doc = json_loads(out, 0, NULL);
    ee_free(out);
    const char *v = json_string_value(
        json_object_get(json_array_get(json_object_get(doc, "data"), 0), "id"));
    CHECK(v != NULL);
    snprintf(id, 32, "%s", v);
    json_decref(doc);
}

/* Open the engine: e-mail through the API (smtp false) or SMTP (true);
 * one execution worker (workers true: ee_exec_run() runs a workflow, which
 * ends at once and is booked) or none. */
static inline void fz_runs_open(fz_runs *r, bool smtp, bool workers)
{
    memset(r, 0, sizeof *r);
    CHECK(ee_transport_new_custom(&r->transport, &fz_runs_backend, NULL, NULL) == EE_OK);
    CHECK(ee_n8n_new(&r->n8n, r->transport, "http://fz.n8n", "fz-n8n-key") == EE_OK);
    ee_config *cfg = fz_config();
    fz_runs_set(cfg, "EXEC_WORKERS", workers ? "1" : "0");
    fz_runs_set(cfg, "EMAIL_POLL_MS", "0");
    fz_runs_set(cfg, "EMAIL_MAX_PER_USER_PER_HOUR", "1000000");
    fz_runs_set(cfg, "PLATFORM_OPENROUTER_KEY", FZ_OPENROUTER_KEY);
    fz_runs_set(cfg, "PLATFORM_SERPER_KEY", FZ_SERPER_KEY);
    fz_runs_set(cfg, "OPENROUTER_API_URL", "http://fz.openrouter/api/v1");
    fz_runs_set(cfg, "PLATFORM_FROM_EMAIL", "results@fz.example.com");
    if (smtp) {
        fz_runs_set(cfg, "SMTP_HOST", "smtp.fz.example.com");
    } else {
        fz_runs_set(cfg, "PLATFORM_RESEND_KEY", FZ_RESEND_KEY);
        fz_runs_set(cfg, "EMAIL_API_URL", "http://fz.mail");
    }
    ee_engine_parts parts = {.version = EE_ENGINE_PARTS_VERSION, .transport = r->transport,
                             .n8n = r->n8n};
    ee_status st = ee_engine_open_parts(&r->engine, cfg, &parts);
    ee_config_free(cfg);
    if (st != EE_OK)
        fprintf(stderr, "open: %s\n", ee_error_last_message());
    CHECK(st == EE_OK);
    char *out = NULL;
    CHECK(ee_cred_platform_provision(r->engine, &out) == EE_OK);
    ee_free(out);
    st = ee_catalog_sync(r->engine, &out);
    if (st != EE_OK)
        fprintf(stderr, "sync: %s\n", out);
    CHECK(st == EE_OK);
    ee_free(out);
    fz_runs_entry_id(r->engine, "wf-plain", r->plain_id);
    fz_runs_entry_id(r->engine, "wf-llm", r->llm_id);
    CHECK(ee_catalog_update(r->engine, r->plain_id,
                            "{\"inputSchema\": {\"type\": \"object\", \"properties\": "
                            "{\"text\": {\"type\": \"string\", \"maxLength\": 200}, "
                            "\"n\": {\"type\": \"integer\", \"default\": 3}}}}",
                            &out) == EE_OK);
    ee_free(out);
    CHECK(ee_quota_subscription_put(r->engine, "{\"orgId\": \"" FZ_ORG "\", \"plan\": "
                                               "\"enterprise\"}", &out) == EE_OK);
    ee_free(out);
    CHECK(ee_principal_new(&r->user, FZ_WS, FZ_USER, FZ_ORG) == EE_OK);
    CHECK(ee_cred_key_add(r->engine, r->user, "{\"keyName\": \"mine\", \"provider\": "
                                              "\"openrouter\", \"apiKey\": \"" FZ_CUSTOMER_KEY
                                              "\"}", &out) == EE_OK);
    json_t *doc = json_loads(out, 0, NULL);
    snprintf(r->key_id, sizeof r->key_id, "%s", json_string_value(json_object_get(doc, "id")));
    json_decref(doc);
    ee_free(out);
    ee_error_clear();
}

static inline void fz_runs_close(fz_runs *r)
{
    ee_principal_free(r->user);
    ee_engine_close(r->engine);
    ee_n8n_free(r->n8n);
    ee_transport_free(r->transport);
    memset(r, 0, sizeof *r);
}

/* A queued run of `workflow_id` with a fixed request; its id into id. */
static inline void fz_runs_submit(fz_runs *r, const char *workflow_id, const char *request,
                           char id[EE_EXEC_ID_SIZE])
{
    ee_status st = ee_exec_submit(r->engine, r->user, workflow_id, request, NULL, NULL, id);
    if (st != EE_OK)
        fprintf(stderr, "submit: %s\n", ee_error_last_message());
    CHECK(st == EE_OK);
}

/* The headers of a callback for `body`, signed with the run's key at the
 * engine's now (JSON text, free()). */
static inline char *fz_runs_signed_headers(fz_runs *r, const char *execution_id, const char *body,
                                    size_t len)
{
    char key[65], ts[32], sig[68];
    CHECK(ee__callback_key(r->engine, execution_id, key) == EE_OK);
    snprintf(ts, sizeof ts, "%lld", (long long)(ee_engine_now_ms(r->engine) / 1000));
    CHECK(ee__callback_sign(key, ts, body, len, sig) == EE_OK);
    json_t *h = json_pack("{s:s, s:s, s:s}", "Content-Type", "application/json",
                          "X-EE-Timestamp", ts, "X-EE-Signature", sig);
    char *text = json_dumps(h, JSON_COMPACT);
    json_decref(h);
    CHECK(text != NULL);
    return text;
}

/* End run `id` with a signed callback of `status` and `output_json` (NULL:
 * none). Returns the callback's status. */
static inline ee_status fz_runs_complete(fz_runs *r, const char *id, const char *status,
                                  const char *output_json)
{
    char *body = NULL;
    size_t n = (size_t)snprintf(NULL, 0, "{\"executionId\": \"%s\", \"workspaceId\": \"%s\", "
                                         "\"status\": \"%s\"%s%s}",
                                id, FZ_WS, status, output_json ? ", \"output\": " : "",
                                output_json ? output_json : "");
    body = malloc(n + 1);
    CHECK(body != NULL);
    snprintf(body, n + 1, "{\"executionId\": \"%s\", \"workspaceId\": \"%s\", \"status\": "
                          "\"%s\"%s%s}",
             id, FZ_WS, status, output_json ? ", \"output\": " : "",
             output_json ? output_json : "");
    char *headers = fz_runs_signed_headers(r, id, body, n);
    char *out = NULL;
    ee_status st = ee_exec_ingest_webhook(r->engine, headers, body, n, &out);
    ee_free(out);
    free(headers);
    free(body);
    return st;
}

#endif
