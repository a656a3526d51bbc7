/*
 * libFuzzer: arbitrary bytes as what reaches e-mailed results from
 * outside (fuzz_runs.h: memory engines with an ended run whose output
 * holds awkward text - control characters, markup, line breaks). The first byte picks the
 * call; the rest is its input:
 *   0  ee_email_template_put() document ("WFID" stands for the run's
 *      workflow): an accepted template reads back, the run's results are
 *      e-mailed with it (ee_email_send_execution) and the outbox delivers
 *      them through the e-mail API; the template is deleted after.
 *   1  ee_email_send_execution() request for the ended run ("XID" stands
 *      for its id), then the outbox runs.
 *   2  the e-mail API's answer to a delivery: the next byte picks its
 *      HTTP status, the rest is its body.
 *   3  the SMTP server's answer to a delivery (the SMTP engine): the next
 *      byte picks the status the transport reports, the two after it the
 *      reply code, the rest the server's own words (any bytes) as the
 *      curl backend puts them in its message.
 *   4  ee_template_render() as a host previews a template:
 *      "<template>\0<data JSON>\0<partials JSON>" (a missing part: NULL).
 * Invariants: documented statuses only (never EE_ENOMEM, EE_ECORRUPT or
 * EE_EIO for outside input); answers are JSON, a failure's the error
 * document of its status; a queued message is claimed by the next outbox
 * run, which answers EE_OK whatever the server said, and is sent exactly
 * when the server accepted it (2xx; SMTP EE_OK); the outbox's stats read
 * (no stored message fails to decode); the Resend key (a canary) is in no
 * answer. Engines are opened again every FZ_RESET inputs (messages
 * accumulate).
 */
#include "fuzz_runs.h"

#define FZ_RESET 250

static fz_runs api, smtp; /* e-mail through the API, through SMTP */
static char api_run[EE_EXEC_ID_SIZE], smtp_run[EE_EXEC_ID_SIZE];
static unsigned inputs;

static const char OUTPUT[] = "{\"text\": \"a\\u0001b <b>&amp;\\u00e9\", \"nl\": \"one\\r\\ntwo\", "
                             "\"n\": 1.5, \"list\": [1, \"two\", null, {\"x\": true}], "
                             "\"deep\": {\"x\": {\"y\": \"z\"}}, \"empty\": \"\"}";

static void open_one(fz_runs *r, bool via_smtp, char run[EE_EXEC_ID_SIZE])
{
    fz_runs_open(r, via_smtp, false);
    fz_runs_submit(r, r->plain_id, "{\"parameters\": {\"text\": \"hi\"}}", run);
    CHECK(fz_runs_complete(r, run, "completed", OUTPUT) == EE_OK);
}

static void open_engines(void)
{
    if (api.engine != NULL) {
        fz_runs_close(&api);
        fz_runs_close(&smtp);
    }
    open_one(&api, false, api_run);
    open_one(&smtp, true, smtp_run);
}

static void answered(ee_status st, char *out)
{
    CHECK(out != NULL);
    CHECK(strstr(out, FZ_RESEND_KEY) == NULL);
    json_decref(fz_answer(st, out));
}

/* The outbox: one run; `queued` whether a message was queued just before
 * (then it is claimed: handed to the server exactly once); the count sent.
 * The stats must read after. */
static uint64_t deliver(fz_runs *r, bool queued)
{
    unsigned before = fz_mail.sent;
    uint64_t sent = 0;
    ee_status st = ee_email_outbox_run(r->engine, 4, &sent);
    if (st != EE_OK)
        fprintf(stderr, "outbox: %s\n", ee_error_last_message());
    CHECK(st == EE_OK);
    if (queued)
        CHECK(fz_mail.sent == before + 1);
    char *out = NULL;
    st = ee_email_outbox_stats(r->engine, &out);
    if (st != EE_OK)
        fprintf(stderr, "stats: %s\n", out);
    CHECK(st == EE_OK);
    answered(st, out);
    return sent;
}

static ee_status send(fz_runs *r, const char *run, const char *request)
{
    char *out = NULL;
    ee_status st = ee_email_send_execution(r->engine, r->user, run, request, &out);
    CHECK_STATUS(st, EE_OK, EE_EINVAL, EE_EPARSE, EE_ETOOBIG, EE_ENOTFOUND);
    answered(st, out);
    return st;
}

static void template_put(const char *raw)
{
    char *doc = fz_replace(raw, "WFID", api.plain_id);
    char *out = NULL;
    ee_status st = ee_email_template_put(api.engine, NULL, doc, &out);
    CHECK_STATUS(st, EE_OK, EE_EINVAL, EE_EPARSE, EE_ETOOBIG, EE_ENOTFOUND);
    answered(st, out);
    if (st == EE_OK) {
        CHECK(ee_email_template_get(api.engine, NULL, api.plain_id, &out) == EE_OK);
        answered(EE_OK, out);
        fz_mail.api_status = 200;
        fz_mail.api_body = NULL;
        fz_mail.api_len = 0;
        if (send(&api, api_run, "{\"to\": \"reader@fz.example.com\"}") == EE_OK)
            CHECK(deliver(&api, true) == 1);
        CHECK(ee_email_template_delete(api.engine, NULL, api.plain_id) == EE_OK);
    }
    free(doc);
}

static void send_request(const char *raw)
{
    char *request = fz_replace(raw, "XID", api_run);
    fz_mail.api_status = 200;
    fz_mail.api_body = NULL;
    fz_mail.api_len = 0;
    ee_status st = send(&api, api_run, request);
    CHECK(deliver(&api, st == EE_OK) == (st == EE_OK ? 1u : 0u));
    free(request);
}

static void api_answer(const uint8_t *data, size_t size)
{
    static const int statuses[] = {200, 201, 202, 204, 299, 300, 400, 401, 403, 404,
                                   409, 413, 422, 429, 500, 502, 503, 100, 999};
    if (size < 1)
        return;
    fz_mail.api_status = statuses[data[0] % (sizeof statuses / sizeof statuses[0])];
    fz_mail.api_body = data + 1;
    fz_mail.api_len = size - 1;
    CHECK(send(&api, api_run, "{\"to\": \"reader@fz.example.com\"}") == EE_OK);
    uint64_t sent = deliver(&api, true);
    CHECK(sent == (fz_mail.api_status >= 200 && fz_mail.api_status < 300 ? 1u : 0u));
}

static void smtp_answer(const uint8_t *data, size_t size)
{
    static const ee_status outcomes[] = {EE_OK, EE_EUPSTREAM, EE_EUPSTREAM, EE_ENETWORK,
                                         EE_ETIMEOUT, EE_EAUTH};
    if (size < 3)
        return;
    fz_mail.smtp = outcomes[data[0] % (sizeof outcomes / sizeof outcomes[0])];
    fz_mail.smtp_reply = (data[1] << 8 | data[2]) % 1000;
    size_t n = size - 3 < sizeof fz_mail.smtp_text - 1 ? size - 3 : sizeof fz_mail.smtp_text - 1;
    memcpy(fz_mail.smtp_text, data + 3, n);
    fz_mail.smtp_text[n] = '\0';
    CHECK(send(&smtp, smtp_run, "{\"to\": \"reader@fz.example.com\"}") == EE_OK);
    uint64_t sent = deliver(&smtp, true);
    CHECK(sent == (fz_mail.smtp == EE_OK ? 1u : 0u));
    fz_mail.smtp = EE_OK;
}

static void render(const uint8_t *data, size_t size)
{
    /* three parts at the first two NULs; a missing one is NULL */
    char *tmpl = NULL, *rest = NULL, *json = NULL, *partials = NULL;
    fz_split(data, size, &tmpl, &rest);
    if (rest != NULL) /* rest holds the size - strlen(tmpl) - 1 bytes after the NUL */
        fz_split((const uint8_t *)rest, size - strlen(tmpl) - 1, &json, &partials);
    char *out = NULL;
    size_t len = 0;
    ee_status st = ee_template_render_len(tmpl, json, partials, &out, &len);
    CHECK_STATUS(st, EE_OK, EE_EINVAL, EE_EPARSE, EE_ENOTFOUND, EE_ETOOBIG);
    CHECK((st == EE_OK) == (out != NULL));
    if (st == EE_OK)
        CHECK(out[len] == '\0');
    else
        CHECK(len == 0);
    ee_free(out);
    free(tmpl);
    free(rest);
    free(json);
    free(partials);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (data[0] % 5 == 4) { /* no engine */
        render(data + 1, size - 1);
        ee_error_clear();
        return 0;
    }
    if (api.engine == NULL || ++inputs % FZ_RESET == 0)
        open_engines();
    char *text = fz_text(data + 1, size - 1);
    switch (data[0] % 5) {
    case 0: template_put(text); break;
    case 1: send_request(text); break;
    case 2: api_answer(data + 1, size - 1); break;
    default: smtp_answer(data + 1, size - 1); break;
    }
    free(text);
    ee_error_clear();
    return 0;
}
