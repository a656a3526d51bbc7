/*
 * libFuzzer: arbitrary bytes as what a client or a workflow hands the
 * execution door (fuzz_runs.h: a memory engine, no workers, a fake n8n).
 * The first byte picks the call; the rest is its input:
 *   0, 1  ee_exec_submit() request of the "plain" (0) or "llm" (1)
 *         workflow; "KEYID" stands for the user's customer key id. An
 *         accepted request is submitted again: a repeated idempotencyKey
 *         answers the same id, otherwise a new one; the runs are read back
 *         and cancelled.
 *   2     an execution id given to ee_exec_get, _cost, _results,
 *         _wait(0) and _cancel; "XID" stands for a completed run (not for
 *         _cancel), "QID" for a queued one.
 *   3     a callback "<headers JSON>\0<body>" to ee_exec_ingest_webhook(),
 *         for a run queued for this input: in both parts "XID" stands for
 *         its id, "WSID" for its workspace; in the headers "TS" for now's
 *         timestamp and "SIG" for the signature of the body.
 *   4     a callback body alone, signed as the run's workflow would
 *         (placeholders as in 3): the run ends with what the body says.
 * Invariants: documented statuses only (never EE_ENOMEM, EE_ECORRUPT or
 * EE_EIO for outside input); answers are JSON, a failure's the error
 * document of its status; a callback is applied only with the right
 * signature; a run ended by a callback reads back (get, results, cost)
 * with the status the body gave; no answer shows a platform or customer
 * key (canaries) unless the input holds it. The engine is opened again
 * every FZ_RESET inputs, so what the accepted inputs stored stays small.
 */
#include <strings.h>

#include "fuzz_runs.h"

#define FZ_RESET 1000

static fz_runs R;
static unsigned inputs;
static char done_id[EE_EXEC_ID_SIZE], queued_id[EE_EXEC_ID_SIZE];

static void open_engine(void)
{
    fz_runs_open(&R, false, false);
    fz_runs_submit(&R, R.plain_id, "{\"parameters\": {\"text\": \"hello\"}}", done_id);
    CHECK(fz_runs_complete(&R, done_id, "completed", "{\"answer\": 42, \"items\": [1, 2]}") ==
          EE_OK);
    fz_runs_submit(&R, R.plain_id, NULL, queued_id);
}

static void no_canary(const char *text, size_t n, const char *input)
{
    static const char *const canaries[] = {FZ_OPENROUTER_KEY, FZ_SERPER_KEY, FZ_CUSTOMER_KEY,
                                           FZ_RESEND_KEY};
    for (size_t i = 0; i < sizeof canaries / sizeof canaries[0]; i++)
        CHECK(strstr(input, canaries[i]) != NULL || !fz_holds(text, n, canaries[i]));
}

/* An answer of a `char **out` call, checked and freed; its status. */
static ee_status answered(ee_status st, char *out, const char *input)
{
    CHECK(out != NULL);
    no_canary(out, strlen(out), input);
    json_decref(fz_answer(st, out));
    return st;
}

static bool hex24(const char *id)
{
    if (strlen(id) != 24)
        return false;
    for (size_t i = 0; i < 24; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            return false;
    return true;
}

static const char *status_of(const char *id)
{
    static char status[16];
    char *out = NULL;
    CHECK(ee_exec_get(R.engine, R.user, id, &out) == EE_OK);
    json_t *doc = fz_answer(EE_OK, out);
    snprintf(status, sizeof status, "%s", json_string_value(json_object_get(doc, "status")));
    json_decref(doc);
    return status;
}

static void end_if_queued(const char *id)
{
    if (strcmp(status_of(id), "pending") == 0)
        CHECK(ee_exec_cancel(R.engine, R.user, id) == EE_OK);
}

static void submit_request(bool llm, const char *text)
{
    char *request = fz_replace(text, "KEYID", R.key_id);
    char id[EE_EXEC_ID_SIZE];
    ee_status st = ee_exec_submit(R.engine, R.user, llm ? R.llm_id : R.plain_id, request, NULL,
                                  NULL, id);
    CHECK_STATUS(st, EE_OK, EE_EINVAL, EE_EPARSE, EE_ETOOBIG, EE_EVALIDATION, EE_ECREDENTIALS,
                 EE_ENOTFOUND);
    no_canary(ee_error_last_message(), strlen(ee_error_last_message()), request);
    if (st == EE_OK) {
        CHECK(hex24(id));
        json_t *q = json_loads(request, 0, NULL);
        bool idem = json_is_string(json_object_get(q, "idempotencyKey"));
        json_decref(q);
        char again[EE_EXEC_ID_SIZE];
        CHECK(ee_exec_submit(R.engine, R.user, llm ? R.llm_id : R.plain_id, request, NULL, NULL,
                             again) == EE_OK);
        CHECK((strcmp(id, again) == 0) == idem);
        char *out = NULL;
        CHECK(answered(ee_exec_get(R.engine, R.user, id, &out), out, request) == EE_OK);
        end_if_queued(id);
        end_if_queued(again);
    } else {
        CHECK(id[0] == '\0');
    }
    free(request);
}

static void execution_id(const char *text)
{
    char *a = fz_replace(text, "XID", done_id);
    char *id = fz_replace(a, "QID", queued_id);
    free(a);
    char *out = NULL;
    ee_status st = answered(ee_exec_get(R.engine, R.user, id, &out), out, text);
    CHECK_STATUS(st, EE_OK, EE_ENOTFOUND, EE_EINVAL);
    st = answered(ee_exec_cost(R.engine, R.user, id, &out), out, text);
    CHECK_STATUS(st, EE_OK, EE_ENOTFOUND, EE_EINVAL);
    st = answered(ee_exec_results(R.engine, R.user, id, &out), out, text);
    CHECK_STATUS(st, EE_OK, EE_ENOTFOUND, EE_EINVAL, EE_ESTATE);
    /* a run that has not ended (EE_ETIMEOUT), or ended otherwise (the
     * status it failed with), answers its record, not an error document */
    st = ee_exec_wait(R.engine, R.user, id, 0, &out);
    CHECK_STATUS(st, EE_OK, EE_ENOTFOUND, EE_EINVAL, EE_ETIMEOUT, EE_EUPSTREAM, EE_ECANCELLED);
    if (st == EE_OK || st == EE_ENOTFOUND || st == EE_EINVAL) {
        answered(st, out, text);
    } else {
        CHECK(out != NULL);
        no_canary(out, strlen(out), text);
        json_t *rec = json_loads(out, 0, NULL);
        CHECK(json_is_string(json_object_get(rec, "status")));
        json_decref(rec);
        ee_free(out);
    }
    /* the placeholders' runs stay as they are (the text may still name
     * the queued run, if the fuzzer learnt its id) */
    st = ee_exec_cancel(R.engine, R.user, text);
    CHECK_STATUS(st, EE_OK, EE_ENOTFOUND, EE_EINVAL, EE_ESTATE);
    free(id);
}

/* The rest as a callback; signed: the body alone, with a real signature. */
static void callback(const uint8_t *data, size_t size, bool sign)
{
    char id[EE_EXEC_ID_SIZE];
    fz_runs_submit(&R, R.plain_id, "{\"email\": {\"to\": \"reader@fz.example.com\"}}", id);
    char *head_raw = NULL, *body_raw = NULL;
    if (sign) {
        head_raw = strdup("{}");
        body_raw = fz_text(data, size);
    } else {
        fz_split(data, size, &head_raw, &body_raw);
        if (body_raw == NULL)
            body_raw = strdup("");
    }
    char *b1 = fz_replace(body_raw, "XID", id);
    char *body = fz_replace(b1, "WSID", FZ_WS);
    free(b1);
    size_t blen = strlen(body);
    char *headers;
    char key[65], ts[32], sig[68];
    CHECK(ee__callback_key(R.engine, id, key) == EE_OK);
    snprintf(ts, sizeof ts, "%lld", (long long)(ee_engine_now_ms(R.engine) / 1000));
    CHECK(ee__callback_sign(key, ts, body, blen, sig) == EE_OK);
    if (sign) {
        headers = fz_runs_signed_headers(&R, id, body, blen);
    } else {
        char *h1 = fz_replace(head_raw, "XID", id);
        char *h2 = fz_replace(h1, "WSID", FZ_WS);
        char *h3 = fz_replace(h2, "SIG", sig);
        headers = fz_replace(h3, "TS", ts);
        free(h1);
        free(h2);
        free(h3);
    }
    char *out = NULL;
    ee_status st = ee_exec_ingest_webhook(R.engine, headers, body, blen, &out);
    CHECK_STATUS(st, EE_OK, EE_EAUTH, EE_EINVAL, EE_EPARSE, EE_ETOOBIG, EE_ENOTFOUND);
    if (st == EE_OK) {
        /* only the right signature opens the door (hex in any case) */
        json_t *h = json_loads(headers, 0, NULL);
        bool found = false;
        const char *k;
        json_t *v;
        json_object_foreach(h, k, v)
            found = found || (json_is_string(v) && strcasecmp(json_string_value(v), sig) == 0);
        json_decref(h);
        CHECK(found);
    }
    json_t *doc = fz_answer(st, out);
    bool applied = st == EE_OK && json_is_true(json_object_get(doc, "applied"));
    json_decref(doc);
    const char *status = status_of(id);
    if (applied) {
        json_t *b = json_loads(body, 0, NULL);
        const char *want = json_string_value(json_object_get(b, "status"));
        CHECK(want != NULL && strcmp(want, status) == 0);
        json_decref(b);
        st = answered(ee_exec_results(R.engine, R.user, id, &out), out, body);
        CHECK(st == EE_OK);
        st = answered(ee_exec_cost(R.engine, R.user, id, &out), out, body);
        CHECK(st == EE_OK);
    } else {
        CHECK(strcmp(status, "pending") == 0);
        CHECK(ee_exec_cancel(R.engine, R.user, id) == EE_OK);
    }
    free(headers);
    free(body);
    free(head_raw);
    free(body_raw);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (R.engine == NULL || ++inputs % FZ_RESET == 0) {
        if (R.engine != NULL)
            fz_runs_close(&R);
        open_engine();
    }
    char *text = fz_text(data + 1, size - 1);
    switch (data[0] % 5) {
    case 0:
    case 1: submit_request(data[0] % 5 == 1, text); break;
    case 2: execution_id(text); break;
    case 3: callback(data + 1, size - 1, false); break;
    default: callback(data + 1, size - 1, true); break;
    }
    free(text);
    ee_error_clear();
    return 0;
}
