/*
 * libFuzzer: the n8n client's public calls over a custom transport whose
 * every answer is the fuzz input. The first byte picks the call, the
 * second the HTTP status (or a timeout / network failure); the rest, up to
 * its first NUL, is the answer's body, and what follows the NUL the
 * call's own text argument:
 *   0 ee_n8n_list_workflows(query)     1 ee_n8n_get_workflow(id)
 *   2 ee_n8n_get_execution(id, 1)      3 ee_n8n_list_executions(query)
 *   4 ee_n8n_trigger_webhook("POST", path, body)
 *   5 ee_n8n_trigger_webhook("GET", path, body)
 *   6 ee_n8n_configure(options), then ee_n8n_list_workflows(NULL)
 *   7 ee_n8n_workflow_trigger(argument) (no request)
 * Invariants: each status is one the header documents, mapped from the
 * HTTP status as it says (401 EE_EAUTH, 403 EE_EPERM, 404 EE_ENOTFOUND,
 * 429 EE_ERATELIMIT, 5xx EE_EUPSTREAM) when the arguments were accepted;
 * never EE_ENOMEM, EE_ECORRUPT or EE_EIO; the answer is JSON, a failure's
 * the error document of its status; a workflow has a "trigger", an
 * execution one of our four statuses; listings a "data" array; the API key
 * (a canary) shows nowhere unless the input holds it.
 */
#include "fuzz_engine.h"

#define CANARY "Nk4Canary6Jd"
#define API_KEY "n8n_api_" CANARY "_0001"

static fz_upstream upstream;
static ee_transport *transport;

static const int statuses[] = {200, 200, 200, 201, 204, 400, 401, 403, 404, 409, 422, 429, 500, 502};
#define NSTATUS (sizeof statuses / sizeof statuses[0])

static void check_workflow(const json_t *w)
{
    CHECK(json_is_object(w));
    CHECK(json_is_string(json_object_get(w, "id")));
    CHECK(json_is_object(json_object_get(w, "trigger")));
    CHECK(json_is_array(json_object_get(w, "nodes")));
}

static void check_execution(const json_t *x)
{
    CHECK(json_is_object(x));
    const char *s = json_string_value(json_object_get(x, "status"));
    CHECK(s != NULL);
    CHECK(strcmp(s, "pending") == 0 || strcmp(s, "running") == 0 ||
          strcmp(s, "completed") == 0 || strcmp(s, "failed") == 0);
}

static void check_list(const json_t *doc, void (*item)(const json_t *))
{
    const json_t *items = json_object_get(doc, "data");
    CHECK(json_is_array(items));
    const json_t *next = json_object_get(doc, "nextCursor");
    CHECK(json_is_null(next) || json_is_string(next));
    size_t i;
    const json_t *it;
    json_array_foreach(items, i, it)
        item(it);
}

/* The status an accepted call must have for this upstream answer, when
 * the HTTP status alone decides; EE_OK when the body decides. */
static ee_status by_http(void)
{
    if (upstream.fail != EE_OK)
        return upstream.fail;
    switch (upstream.status) {
    case 401: return EE_EAUTH;
    case 403: return EE_EPERM;
    case 404: return EE_ENOTFOUND;
    case 429: return EE_ERATELIMIT;
    case 500:
    case 502: return EE_EUPSTREAM;
    default: return EE_OK;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    if (transport == NULL)
        transport = fz_transport_new(&upstream);
    int call = data[0] % 8;
    size_t pick = data[1] % (NSTATUS + 2);
    upstream.fail = pick == NSTATUS ? EE_ETIMEOUT : pick == NSTATUS + 1 ? EE_ENETWORK : EE_OK;
    upstream.status = upstream.fail == EE_OK ? statuses[pick] : 0;
    const uint8_t *rest = data + 2;
    size_t len = size - 2;
    const uint8_t *nul = memchr(rest, 0, len);
    upstream.body = rest;
    upstream.len = nul != NULL ? (size_t)(nul - rest) : len;
    upstream.calls = 0;
    char *arg = nul != NULL ? fz_text(nul + 1, len - upstream.len - 1) : NULL;
    bool echoes = memmem(data, size, CANARY, strlen(CANARY)) != NULL;

    ee_n8n *c = NULL;
    CHECK(ee_n8n_new(&c, transport, "http://127.0.0.1:5678/", API_KEY) == EE_OK);
    char *out = NULL;
    ee_status st;
    switch (call) {
    case 0: st = ee_n8n_list_workflows(c, arg, &out); break;
    case 1: st = ee_n8n_get_workflow(c, arg ? arg : "wf1", &out); break;
    case 2: st = ee_n8n_get_execution(c, arg ? arg : "42", 1, &out); break;
    case 3: st = ee_n8n_list_executions(c, arg, &out); break;
    case 4: st = ee_n8n_trigger_webhook(c, "POST", "fuzz/run", arg, &out); break;
    case 5: st = ee_n8n_trigger_webhook(c, "GET", arg ? arg : "fuzz/run", "{\"q\": 1}", &out); break;
    case 6:
        st = ee_n8n_configure(c, arg ? arg : "{}");
        CHECK_STATUS(st, EE_OK, EE_EINVAL, EE_EPARSE, EE_ETOOBIG);
        if (st != EE_OK)
            goto done;
        st = ee_n8n_list_workflows(c, "{\"maxPages\": 1}", &out);
        break;
    default:
        st = ee_n8n_workflow_trigger(arg ? arg : "{\"nodes\": []}", &out);
        CHECK(upstream.calls == 0);
        break;
    }
    CHECK_STATUS(st, EE_OK, EE_EINVAL, EE_ENOTFOUND, EE_EPARSE, EE_ETOOBIG, EE_EAUTH, EE_EPERM,
                 EE_ERATELIMIT, EE_EUPSTREAM, EE_ETIMEOUT, EE_ENETWORK);
    /* A request that was sent gets the status its HTTP status maps to. */
    if (call != 7 && upstream.calls > 0 && by_http() != EE_OK)
        CHECK(st == by_http());
    if (!echoes) {
        CHECK(strstr(out, CANARY) == NULL);
        CHECK(strstr(ee_error_last_message(), CANARY) == NULL);
    }
    json_t *doc = fz_answer(st, out);
    if (st == EE_OK) {
        switch (call) {
        case 0:
        case 6: check_list(doc, check_workflow); break;
        case 1: check_workflow(doc); break;
        case 2: check_execution(doc); break;
        case 3: check_list(doc, check_execution); break;
        case 4:
        case 5:
            CHECK(json_is_integer(json_object_get(doc, "httpStatus")));
            CHECK(json_object_get(doc, "body") != NULL);
            break;
        default: CHECK(json_is_boolean(json_object_get(doc, "runnable"))); break;
        }
    }
    json_decref(doc);
done:
    ee_n8n_free(c);
    free(arg);
    ee_error_clear();
    return 0;
}
