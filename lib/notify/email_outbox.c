/*
 * The e-mail outbox: messages queued -> sending -> sent | failed, claimed
 * under a lease so that several processes on one database never send the
 * same message twice, delivered by SMTP or a Resend-style HTTP API, retried
 * with exponential backoff and jitter; the door that queues an e-mail about
 * an execution; the outbox's counts (docs/email.md).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "audit/audit.h"
#include "core/core.h"
#include "exec/exec.h"
#include "execengine/notify.h"
#include "execengine/principal.h"
#include "execengine/storage.h"
#include "execengine/transport.h"
#include "notify/notify_internal.h"
#include "storage/storage.h"

#define ERROR_MAX 512

#define F_STR(n, max, fl) {.name = n, .kind = EE__REC_STRING, .flags = fl, .max_bytes = max}
#define F_INT(n, fl) {.name = n, .kind = EE__REC_INT64, .flags = fl}
static const ee__rec_field outbox_fields[] = {
    F_STR("workspaceId", EE_STORAGE_WORKSPACE_MAX, EE__REC_REQUIRED),
    F_STR("userId", EE_STORAGE_VALUE_MAX, 0),
    F_STR("orgId", EE_STORAGE_VALUE_MAX, 0),
    F_STR("executionId", EE_STORAGE_VALUE_MAX, EE__REC_REQUIRED),
    F_STR("to", 254, EE__REC_REQUIRED),
    F_STR("subject", 1024, EE__REC_REQUIRED),
    F_STR("body", 0, EE__REC_REQUIRED),
    F_STR("status", 16, EE__REC_REQUIRED),
    F_STR("active", 1, EE__REC_REQUIRED),
    F_INT("attempts", EE__REC_REQUIRED),
    F_INT("claimableAt", EE__REC_REQUIRED),
    F_INT("nextAttemptAt", 0),
    F_INT("createdAt", EE__REC_REQUIRED),
    F_INT("sentAt", 0),
    F_INT("failedAt", 0),
    F_STR("lastError", ERROR_MAX, 0),
    F_STR("owner", 64, 0),
};
const ee__record_map ee__email_outbox_map = {"e-mail message", outbox_fields,
                                             sizeof outbox_fields / sizeof outbox_fields[0],
                                             false};

/* ---- enqueue ---------------------------------------------------------------------------- */

ee_status ee__email_enqueue(ee_engine *engine, const ee__email_exec *x, const char *to,
                            char *id_out)
{
    if (!ee__email_address_ok(to))
        return ee__error(EE_EINVAL, "e-mail of execution %s: the recipient is not an e-mail "
                                    "address", x->execution_id);
    char *subject = NULL, *body = NULL;
    size_t body_len = 0;
    ee_status st = ee__email_render(engine, x, &subject, &body, &body_len);
    if (st != EE_OK)
        return st;
    int64_t now = ee_engine_now_ms(engine);
    json_t *doc = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s%, s:s, s:s, s:i, s:I, s:I, s:I}",
                            "workspaceId", x->workspace, "userId", x->user != NULL ? x->user : "",
                            "orgId", x->org != NULL ? x->org : "", "executionId",
                            x->execution_id, "to", to, "subject", subject, "body", body, body_len,
                            "status", "queued", "active", "1", "attempts", 0, "claimableAt",
                            (json_int_t)now, "nextAttemptAt", (json_int_t)now, "createdAt",
                            (json_int_t)now);
    free(subject);
    free(body);
    if (doc == NULL)
        return ee__error(EE_ENOMEM, "out of memory queueing an e-mail");
    uint8_t *data = NULL;
    size_t len = 0;
    st = ee__record_encode(&ee__email_outbox_map, doc, &data, &len);
    json_decref(doc);
    if (st == EE_OK)
        st = ee_storage_insert(ee__engine_storage(engine), EE__EMAIL_OUTBOX_COLL, NULL, data, len,
                               id_out);
    free(data);
    return st;
}

/* ---- the door --------------------------------------------------------------------------- */

typedef struct {
    ee_engine *engine;
    const ee__email_exec *x;
    const char *to;
    char *id;
} on_demand_arg;

/* The message queued and the execution marked as having asked for an
 * e-mail, in one commit: analytics count it as requested exactly when
 * there is a message that may set its emailSent. */
static ee_status on_demand_scope(ee_storage *storage, void *payload)
{
    (void)storage;
    on_demand_arg *a = payload;
    ee_status st = ee__email_enqueue(a->engine, a->x, a->to, a->id);
    if (st == EE_OK)
        st = ee__exec_mark_email_requested(a->engine, a->x->workspace, a->x->execution_id);
    return st;
}

static bool final_status(const char *s)
{
    return s != NULL &&
           (strcmp(s, "completed") == 0 || strcmp(s, "failed") == 0 || strcmp(s, "cancelled") == 0);
}

ee_status ee_email_send_execution(ee_engine *engine, const ee_principal *principal,
                                  const char *execution_id, const char *request_json, char **out)
{
    const char *what = "ee_email_send_execution";
    if (out == NULL)
        return ee__error(EE_EINVAL, "%s: out must not be NULL", what);
    *out = NULL;
    if (engine == NULL || principal == NULL || execution_id == NULL)
        return ee__error_out(out, ee__error(EE_EINVAL, "%s: engine, principal and execution_id "
                                                       "must not be NULL", what));
    json_t *req = NULL;
    static const char *const members[] = {"to", NULL};
    ee_status st = ee__record_parse(request_json != NULL ? request_json : "{}", EE_EMAIL_REQUEST_MAX, 4, 0, what,
                                    &req);
    if (st == EE_OK)
        st = ee__json_check_members(req, members, what, "");
    json_t *to_v = json_object_get(req, "to");
    if (st == EE_OK && to_v != NULL && !json_is_string(to_v))
        st = ee__error(EE_EINVAL, "%s: \"to\" must be an e-mail address", what);
    if (st == EE_OK && !ee__email_configured(engine))
        st = EE_ENOTSUPPORTED;
    const char *ws = ee_principal_workspace(principal);
    json_t *rec = NULL;
    char *to_default = NULL;
    if (st == EE_OK) {
        bool hex = strlen(execution_id) == 24;
        for (size_t i = 0; hex && i < 24; i++)
            hex = ee__hex_digit(execution_id[i]) >= 0;
        st = hex ? ee__exec_email_view(engine, ws, execution_id, &rec, &to_default)
                 : ee__error(EE_EINVAL, "%s: the execution id must be 24 hex characters", what);
        if (st == EE_ENOTFOUND)
            st = ee__error(EE_ENOTFOUND, "%s: no execution %s in workspace %s", what,
                           execution_id, ws);
    }
    const char *status = json_string_value(json_object_get(rec, "status"));
    if (st == EE_OK && !final_status(status))
        st = ee__error(EE_ESTATE, "%s: execution %s is %s: its results are e-mailed once it "
                                  "has ended", what, execution_id, status != NULL ? status : "?");
    const char *to = to_v != NULL ? json_string_value(to_v) : to_default;
    if (st == EE_OK && to == NULL)
        st = ee__error(EE_EINVAL, "%s: no recipient: give \"to\" (the run did not ask for an "
                                  "e-mail)", what);
    if (st == EE_OK && !ee__email_address_ok(to))
        st = ee__error(EE_EINVAL, "%s: \"to\" must be an e-mail address", what);
    const char *user = ee_principal_user(principal);
    uint64_t resv = 0;
    if (st == EE_OK)
        st = ee__email_reserve(engine, ws, user, &resv);
    char id[EE_STORAGE_ID_HEX_LEN + 1] = "";
    if (st == EE_OK) {
        ee__email_exec x = {ws,
                            user,
                            ee_principal_org(principal),
                            execution_id,
                            json_string_value(json_object_get(rec, "workflowCatalogId")),
                            json_string_value(json_object_get(rec, "workflowName")),
                            rec};
        if (x.workflow_id == NULL)
            x.workflow_id = "";
        on_demand_arg a = {engine, &x, to, id};
        st = ee__engine_atomic(engine, on_demand_scope, &a);
        ee__email_reserve_end(engine, ws, user, resv, st == EE_OK);
    }
    json_t *answer = st == EE_OK ? json_pack("{s:s, s:s, s:s, s:s}", "id", id, "executionId",
                                             execution_id, "to", to, "status", "queued")
                                 : NULL;
    free(to_default);
    json_decref(rec);
    json_decref(req);
    if (st != EE_OK)
        return ee__error_out(out, st);
    return ee__json_out(out, answer);
}

/* ---- MIME ------------------------------------------------------------------------------- */


static void put_b64(ee__text *b, const unsigned char *in, size_t n)
{
    unsigned char out[4 * ((57 + 2) / 3) + 1];
    int k = EVP_EncodeBlock(out, in, (int)n);
    ee__text_add(b, out, (size_t)k);
}

/* RFC 2047: plain printable ASCII stays as it is; anything else becomes
 * UTF-8 "B" encoded words of at most 45 bytes each (75 characters), split
 * on character boundaries and folded onto continuation lines. */
static void put_subject(ee__text *b, const char *s)
{
    size_t n = strlen(s);
    bool plain = true;
    for (size_t i = 0; i < n && plain; i++)
        plain = s[i] >= 0x20 && s[i] < 0x7f;
    if (plain && strstr(s, "=?") == NULL) {
        ee__text_puts(b, s);
        return;
    }
    size_t at = 0;
    bool first = true;
    while (at < n) {
        size_t take = ee__utf8_cut(s + at, n - at, 45);
        if (take == 0)
            take = 1;
        if (!first)
            ee__text_puts(b, "\r\n ");
        ee__text_puts(b, "=?UTF-8?B?");
        put_b64(b, (const unsigned char *)s + at, take);
        ee__text_puts(b, "?=");
        at += take;
        first = false;
    }
}

static void rfc5322_date(int64_t ms, char out[64])
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, 64, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday], tm.tm_mday,
             months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* The whole message: headers, blank line, base64 body in 76-character
 * lines; CRLF line ends. Every header value was checked: the addresses
 * by ee__email_address_ok(), the subject when rendered. The Message-ID is
 * the outbox id at the sender's domain, the same on every attempt: a
 * message the server accepted but whose delivery could not be recorded
 * (its lease ended) may be sent again, and receivers then see one id
 * twice and can drop the copy (docs/email.md, "Delivery semantics"). */
static ee_status build_mime(const char *id, const char *from, const char *to, const char *subject,
                            const char *body, size_t body_len, int64_t now, ee__text *b)
{
    char date[64];
    rfc5322_date(now, date);
    const char *domain = strrchr(from, '@');
    ee__text_puts(b, "Date: ");
    ee__text_puts(b, date);
    ee__text_puts(b, "\r\nMessage-ID: <");
    ee__text_puts(b, id);
    ee__text_puts(b, domain != NULL ? domain : "@execengine.invalid");
    ee__text_puts(b, ">\r\nFrom: ");
    ee__text_puts(b, from);
    ee__text_puts(b, "\r\nTo: ");
    ee__text_puts(b, to);
    ee__text_puts(b, "\r\nSubject: ");
    put_subject(b, subject);
    ee__text_puts(b, "\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n"
             "Content-Transfer-Encoding: base64\r\n\r\n");
    for (size_t at = 0; at < body_len; at += 57) {
        put_b64(b, (const unsigned char *)body + at, body_len - at < 57 ? body_len - at : 57);
        ee__text_puts(b, "\r\n");
    }
    return b->oom ? ee__error(EE_ENOMEM, "out of memory building an e-mail") : EE_OK;
}

/* ---- delivery ----------------------------------------------------------------------------- */

typedef enum { D_SENT, D_RETRY, D_FAILED } d_outcome;

typedef struct {
    n_state *st;
    int64_t now;
    json_t *rec;           /* the message as claimed */
    bool exhausted;        /* no attempt left: marked failed by the claim */
} claim_ctx;

static ee_status claim_build(const ee_storage_row *row, bson_t *out, void *payload)
{
    claim_ctx *c = payload;
    json_t *rec = NULL;
    ee_status s = ee__record_decode(&ee__email_outbox_map, row->data, row->len, false, &rec);
    if (s != EE_OK)
        return s;
    int64_t attempts = (int64_t)json_integer_value(json_object_get(rec, "attempts"));
    c->exhausted = attempts >= c->st->max_attempts;
    if (c->exhausted) {
        /* its last attempt's sender died before recording the outcome */
        json_object_set_new(rec, "status", json_string("failed"));
        json_object_set_new(rec, "active", json_string("0"));
        json_object_set_new(rec, "failedAt", json_integer(c->now));
        json_object_set_new(rec, "claimableAt", json_integer(c->now));
        json_object_set_new(rec, "lastError",
                            json_string("no attempt left: the last sender did not report"));
    } else {
        int64_t lease = c->now > INT64_MAX - c->st->lease_ms ? INT64_MAX
                                                             : c->now + c->st->lease_ms;
        json_object_set_new(rec, "status", json_string("sending"));
        json_object_set_new(rec, "attempts", json_integer(attempts + 1));
        json_object_set_new(rec, "claimableAt", json_integer(lease));
        json_object_set_new(rec, "owner", json_string(c->st->owner));
    }
    s = ee__record_append(out, &ee__email_outbox_map, rec, NULL);
    if (s == EE_OK)
        c->rec = rec;
    else
        json_decref(rec);
    return s;
}

static void error_text(ee_status s, const char *msg, char out[ERROR_MAX])
{
    snprintf(out, ERROR_MAX, "%s: %s", ee_status_name(s), msg);
    ee__utf8_trim(out);
    ee__utf8_sanitize(out);
}

/* Whether an SMTP failure is for good (RFC 5321 4.2.1): a 5yz reply to the
 * message or its recipient (550 no such mailbox, 553 a bad address, 554
 * refused...) fails the message at once. Everything else is retried until
 * the attempts run out: 4yz replies are temporary by definition (a full
 * mailbox, greylisting), network failures pass, and a refusal of the
 * engine's own login or TLS (530, 534, 535, 538) is the configuration's to
 * fix - failing every queued message for it would lose them. */
static bool smtp_permanent(ee_status s, int reply)
{
    if (s != EE_EUPSTREAM || reply < 500 || reply > 599)
        return false;
    return reply != 530 && reply != 534 && reply != 535 && reply != 538;
}

static d_outcome send_smtp(n_state *st, const char *from, const char *to, const ee__text *msg,
                           char err[ERROR_MAX])
{
    const ee_config *cfg = ee__engine_config(st->engine);
    const char *host = ee__config_text(cfg, "SMTP_HOST");
    int64_t port = ee__config_int(cfg, "SMTP_PORT");
    char url[300];
    snprintf(url, sizeof url, "%s://%s:%lld", port == 465 ? "smtps" : "smtp", host,
             (long long)port);
    ee_mail *m = NULL;
    ee_status s = ee_mail_new(&m, url, from);
    if (s == EE_OK)
        s = ee_mail_add_recipient(m, to);
    if (s == EE_OK)
        s = ee_mail_set_message(m, msg->p, msg->len);
    const char *user = ee__config_text(cfg, "SMTP_USER");
    if (s == EE_OK && user != NULL)
        s = ee_mail_set_login(m, user, ee__config_text(cfg, "SMTP_PASS"));
    /* A login never goes out in clear by default: with SMTP_USER the
     * message needs TLS (smtps://, or STARTTLS offered and completed), else
     * nothing is sent and the attempt fails - retried, as the server may be
     * fixed. SMTP_REQUIRE_TLS=0 is the way to a trusted relay without TLS. */
    bool require_tls = ee__config_explicit(cfg, "SMTP_REQUIRE_TLS")
                           ? ee__config_int(cfg, "SMTP_REQUIRE_TLS") != 0
                           : user != NULL;
    if (s == EE_OK && require_tls)
        s = ee_mail_set_require_tls(m, 1);
    if (s == EE_OK)
        s = ee_transport_mail(ee__engine_transport(st->engine), m);
    ee_mail_free(m);
    if (s == EE_OK)
        return D_SENT;
    int reply = ee_error_last_http_status(); /* the server's SMTP reply code */
    error_text(s, ee_error_last_message(), err);
    return smtp_permanent(s, reply) ? D_FAILED : D_RETRY;
}

static d_outcome send_api(n_state *st, const char *id, const char *from, const char *to,
                          const char *subject, const char *body, size_t body_len,
                          char err[ERROR_MAX])
{
    const ee_config *cfg = ee__engine_config(st->engine);
    const char *base = ee__config_text(cfg, "EMAIL_API_URL");
    const char *key = ee__config_text(cfg, "PLATFORM_RESEND_KEY");
    size_t blen = strlen(base);
    char url[EE__OPT_MAX_URL + 16];
    snprintf(url, sizeof url, "%.*s/emails", (int)(blen > 0 && base[blen - 1] == '/' ? blen - 1
                                                                                       : blen),
             base);
    json_t *doc = json_pack("{s:s, s:[s], s:s, s:s%}", "from", from, "to", to, "subject", subject,
                            "html", body, body_len);
    char *text = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    size_t klen = key != NULL ? strlen(key) : 0;
    char *auth = key != NULL ? malloc(klen + 8) : NULL;
    if (auth != NULL)
        snprintf(auth, klen + 8, "Bearer %s", key);
    ee_http_request *req = NULL;
    ee_status s = text == NULL || auth == NULL ? ee__error(EE_ENOMEM, "out of memory")
                                               : ee_http_request_new(&req, "POST", url);
    if (s == EE_OK)
        s = ee_http_request_add_header(req, "Authorization", auth);
    if (s == EE_OK)
        s = ee_http_request_add_header(req, "Content-Type", "application/json");
    /* The message's id makes a repeated POST one e-mail at the API. The
     * POST is not retried by the transport: the outbox's backoff does it. */
    if (s == EE_OK)
        s = ee_http_request_add_header(req, "Idempotency-Key", id);
    if (s == EE_OK)
        s = ee_http_request_set_body(req, text, strlen(text));
    ee_http_response *resp = NULL;
    if (s == EE_OK)
        s = ee_transport_http(ee__engine_transport(st->engine), req, &resp);
    if (auth != NULL) {
        OPENSSL_cleanse(auth, klen + 8);
        free(auth);
    }
    free(text);
    ee_http_request_free(req);
    if (s != EE_OK) {
        error_text(s, ee_error_last_message(), err);
        return s == EE_ENOMEM || s == EE_EINVAL ? D_FAILED : D_RETRY;
    }
    int code = ee_http_response_status(resp);
    ee_http_response_free(resp);
    if (code >= 200 && code < 300)
        return D_SENT;
    /* The answer's body is not kept: an API may echo what it was sent. A
     * refused key (401, 403) is the configuration's to fix, as an SMTP
     * login refusal is: failing every queued message for it would lose
     * them, so they wait for the operator's new PLATFORM_RESEND_KEY. */
    bool key_refused = code == 401 || code == 403;
    char msg[128];
    snprintf(msg, sizeof msg, "the e-mail API answered HTTP %d%s", code,
             key_refused ? ": the API refused PLATFORM_RESEND_KEY" : "");
    error_text(key_refused ? EE_EAUTH : EE_EUPSTREAM, msg, err);
    return key_refused || code == 429 || code >= 500 ? D_RETRY : D_FAILED;
}

/* The wait before attempt `attempts` + 1: backoff * 2^(attempts - 1), at
 * most the cap, then a random point in its upper half (jitter). */
static int64_t backoff(const n_state *st, int64_t attempts)
{
    int64_t d = st->backoff_ms;
    for (int64_t i = 1; i < attempts && d < st->backoff_max_ms; i++)
        d *= 2;
    if (d > st->backoff_max_ms)
        d = st->backoff_max_ms;
    uint32_t r = 0;
    if (RAND_bytes((unsigned char *)&r, sizeof r) != 1)
        r = (uint32_t)rand();
    return d / 2 + (d - d / 2) * (int64_t)(r % 1001) / 1000;
}

typedef struct {
    n_state *st;
    const char *id;
    int64_t revision;
    json_t *rec;
    d_outcome outcome;
    const char *err;
    int64_t now;
    bool final_failure;
} finish_ctx;

static void audit(n_state *st, const json_t *rec, const char *id, bool sent, ee_status status)
{
    json_t *detail = json_pack("{s:s?, s:I, s:s}", "executionId",
                               json_string_value(json_object_get(rec, "executionId")), "attempts",
                               json_integer_value(json_object_get(rec, "attempts")), "via",
                               st->via == N_SMTP ? "smtp" : "api");
    ee__audit_entry e = {sent ? EE__AUDIT_EMAIL_SENT : EE__AUDIT_EMAIL_FAILED,
                         json_string_value(json_object_get(rec, "workspaceId")),
                         json_string_value(json_object_get(rec, "orgId")),
                         EE__AUDIT_ACTOR_ENGINE,
                         id,
                         sent ? EE__AUDIT_OK : EE__AUDIT_FAILED,
                         status,
                         detail};
    ee__audit_append(st->engine, &e);
    json_decref(detail);
}

void ee__email_audit_dropped(ee_engine *engine, const char *workspace, const char *org,
                             const char *execution_id, ee_status why)
{
    const char *reason = why == EE_ERATELIMIT      ? "rateLimited"
                         : why == EE_ENOTSUPPORTED ? "notConfigured"
                         : why == EE_EINVAL || why == EE_EPARSE || why == EE_ENOTFOUND ||
                                 why == EE_ETOOBIG
                             ? "notRendered"
                             : "error";
    bool refused = strcmp(reason, "error") != 0;
    json_t *detail = json_pack("{s:s?, s:s}", "executionId", execution_id, "reason", reason);
    ee__audit_entry e = {EE__AUDIT_EMAIL_FAILED,
                         workspace,
                         org != NULL && org[0] != '\0' ? org : NULL,
                         EE__AUDIT_ACTOR_ENGINE,
                         NULL,
                         refused ? EE__AUDIT_REFUSED : EE__AUDIT_FAILED,
                         why,
                         detail};
    ee__audit_append(engine, &e);
    json_decref(detail);
}

static ee_status finish_step(ee_storage *sto, void *payload)
{
    finish_ctx *f = payload;
    json_t *rec = f->rec;
    int64_t attempts = (int64_t)json_integer_value(json_object_get(rec, "attempts"));
    json_object_del(rec, "owner");
    if (f->outcome == D_SENT) {
        json_object_set_new(rec, "status", json_string("sent"));
        json_object_set_new(rec, "active", json_string("0"));
        json_object_set_new(rec, "sentAt", json_integer(f->now));
        json_object_set_new(rec, "claimableAt", json_integer(f->now));
        json_object_del(rec, "lastError");
    } else {
        json_object_set_new(rec, "lastError", json_string(f->err));
        f->final_failure = f->outcome == D_FAILED || attempts >= f->st->max_attempts;
        if (f->final_failure) {
            json_object_set_new(rec, "status", json_string("failed"));
            json_object_set_new(rec, "active", json_string("0"));
            json_object_set_new(rec, "failedAt", json_integer(f->now));
            json_object_set_new(rec, "claimableAt", json_integer(f->now));
        } else {
            int64_t next = f->now + backoff(f->st, attempts);
            json_object_set_new(rec, "status", json_string("queued"));
            json_object_set_new(rec, "nextAttemptAt", json_integer(next));
            json_object_set_new(rec, "claimableAt", json_integer(next));
        }
    }
    uint8_t *data = NULL;
    size_t len = 0;
    ee_status s = ee__record_encode(&ee__email_outbox_map, rec, &data, &len);
    if (s == EE_OK)
        s = ee_storage_replace(sto, EE__EMAIL_OUTBOX_COLL, NULL, f->id, f->revision, data, len,
                               NULL);
    free(data);
    if (s == EE_ECONFLICT)
        s = ee__error(EE_ECONFLICT, "e-mail %s: its lease ended and another sender took it "
                                    "(raise EMAIL_LEASE_MS)", f->id);
    const char *ws = json_string_value(json_object_get(rec, "workspaceId"));
    const char *xid = json_string_value(json_object_get(rec, "executionId"));
    if (s == EE_OK && f->outcome == D_SENT && ws != NULL && xid != NULL) {
        s = ee__exec_mark_email_sent(f->st->engine, ws, xid, f->now);
        if (s == EE_ENOTFOUND) /* the execution was purged meanwhile */
            s = EE_OK;
    }
    if (s == EE_OK && f->outcome == D_SENT)
        audit(f->st, rec, f->id, true, EE_OK);
    if (s == EE_OK && f->outcome != D_SENT && f->final_failure)
        audit(f->st, rec, f->id, false, EE_EUPSTREAM);
    return s;
}

/* Claim one due message and deliver it. EE_OK (*sent says whether it went
 * out); EE_ENOTFOUND when none is due; the storage's statuses. */
static ee_status run_one(n_state *st, bool *sent)
{
    *sent = false;
    ee_engine *e = st->engine;
    int64_t now = ee_engine_now_ms(e);
    ee_storage_eq eq = {"active", "1"};
    ee_storage_query_spec q = {.version = EE_STORAGE_QUERY_VERSION,
                               .flags = EE_STORAGE_QUERY_TO,
                               .eq = &eq,
                               .n_eq = 1,
                               .time_to = now == INT64_MAX ? INT64_MAX : now + 1};
    claim_ctx c = {st, now, NULL, false};
    char id[EE_STORAGE_ID_HEX_LEN + 1];
    int64_t rev = 0;
    ee_status s = ee__storage_claim(ee__engine_storage(e), EE__EMAIL_OUTBOX_COLL, NULL, &q, NULL,
                                    claim_build, &c, id, &rev);
    if (s != EE_OK) {
        json_decref(c.rec);
        return s;
    }
    if (c.exhausted) {
        audit(st, c.rec, id, false, EE_EUNKNOWN);
        json_decref(c.rec);
        return EE_OK;
    }
    const char *from = ee__config_text(ee__engine_config(e), "PLATFORM_FROM_EMAIL");
    const char *to = json_string_value(json_object_get(c.rec, "to"));
    const char *subject = json_string_value(json_object_get(c.rec, "subject"));
    json_t *body_v = json_object_get(c.rec, "body");
    char err[ERROR_MAX] = "";
    d_outcome oc;
    if (st->via == N_NONE || from == NULL || to == NULL || subject == NULL ||
        !json_is_string(body_v)) {
        snprintf(err, sizeof err, "EE_ENOTSUPPORTED: e-mail is not configured (SMTP_HOST or "
                                  "PLATFORM_RESEND_KEY, and PLATFORM_FROM_EMAIL)");
        oc = D_RETRY;
    } else if (st->via == N_SMTP) {
        ee__text msg = {0};
        s = build_mime(id, from, to, subject, json_string_value(body_v),
                       json_string_length(body_v), now, &msg);
        oc = s == EE_OK ? send_smtp(st, from, to, &msg, err) : D_RETRY;
        if (s != EE_OK)
            error_text(s, ee_error_last_message(), err);
        if (msg.p != NULL)
            OPENSSL_cleanse(msg.p, msg.len);
        free(msg.p);
    } else {
        oc = send_api(st, id, from, to, subject, json_string_value(body_v),
                      json_string_length(body_v), err);
    }
    finish_ctx f = {st, id, rev, c.rec, oc, err, ee_engine_now_ms(e), false};
    s = ee__engine_atomic(e, finish_step, &f);
    if (s != EE_OK)
        ee__log(ee__engine_logger(e), EE_LOG_ERROR, "notify", "e-mail %s: recording its %s: %s",
                id, oc == D_SENT ? "delivery" : "failed attempt", ee_error_last_message());
    else if (oc != D_SENT)
        ee__log(ee__engine_logger(e), f.final_failure ? EE_LOG_ERROR : EE_LOG_WARN, "notify",
                "e-mail %s: attempt %lld failed%s: %s", id,
                (long long)json_integer_value(json_object_get(c.rec, "attempts")),
                f.final_failure ? " for good" : ", will retry", err);
    *sent = oc == D_SENT;
    json_decref(c.rec);
    return s;
}

ee_status ee_email_outbox_run(ee_engine *engine, uint32_t max, uint64_t *sent_out)
{
    if (sent_out != NULL)
        *sent_out = 0;
    n_state *st = ee__notify_state(engine);
    if (st == NULL || max == 0)
        return ee__error(EE_EINVAL, "ee_email_outbox_run: engine must not be NULL and max at "
                                    "least 1");
    uint64_t sent = 0;
    ee_status s = EE_OK;
    for (uint32_t i = 0; i < max; i++) {
        bool one = false;
        s = run_one(st, &one);
        if (s == EE_ENOTFOUND) {
            s = EE_OK;
            break;
        }
        if (s != EE_OK)
            break;
        sent += one ? 1u : 0u;
    }
    if (sent_out != NULL)
        *sent_out = sent;
    if (s == EE_OK)
        ee_error_clear();
    return s;
}

/* ---- retention --------------------------------------------------------------------------- */

ee_status ee__email_outbox_purge(ee_engine *engine, int64_t before_ms, uint64_t *deleted_out)
{
    /* An ended message (active "0") never changes again, and its time field
     * is when it ended; the claim's index (active, time) finds them. */
    ee_storage_eq eq = {"active", "0"};
    ee_storage_query_spec q = {.version = EE_STORAGE_QUERY_VERSION,
                               .flags = EE_STORAGE_QUERY_TO,
                               .eq = &eq,
                               .n_eq = 1,
                               .time_to = before_ms,
                               .order = EE_STORAGE_ORDER_TIME_ASC};
    return ee__storage_delete_matching(ee__engine_storage(engine), EE__EMAIL_OUTBOX_COLL, NULL,
                                       &q, NULL, deleted_out);
}

/* ---- stats ------------------------------------------------------------------------------- */

/* Queued messages ee_email_outbox_stats() reads for the oldest one's age. */
#define N_OUTBOX_AGE_PAGE 1000

static int oldest_row(const ee_storage_row *row, void *payload)
{
    int64_t *oldest = payload;
    json_t *rec = NULL;
    if (ee__record_decode(&ee__email_outbox_map, row->data, row->len, false, &rec) == EE_OK) {
        int64_t c = (int64_t)json_integer_value(json_object_get(rec, "createdAt"));
        if (*oldest == 0 || c < *oldest)
            *oldest = c;
    }
    json_decref(rec);
    return 0;
}

ee_status ee_email_outbox_stats(ee_engine *engine, char **out)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee_email_outbox_stats: out must not be NULL");
    *out = NULL;
    n_state *st = ee__notify_state(engine);
    if (st == NULL)
        return ee__error_out(out, ee__error(EE_EINVAL, "ee_email_outbox_stats: engine must not "
                                                       "be NULL"));
    static const char *const names[] = {"queued", "sending", "sent", "failed"};
    json_t *doc = json_object();
    ee_status s = EE_OK;
    for (size_t i = 0; i < 4 && s == EE_OK; i++) {
        ee_storage_eq eq = {"status", names[i]};
        ee_storage_query_spec q = {.version = EE_STORAGE_QUERY_VERSION, .eq = &eq, .n_eq = 1};
        uint64_t n = 0;
        s = ee_storage_count(ee__engine_storage(engine), EE__EMAIL_OUTBOX_COLL, NULL, &q, &n);
        json_object_set_new(doc, names[i], json_integer((json_int_t)n));
    }
    /* The oldest among the queued messages due first: one bounded page
     * (the outbox has no cap, and a transport that is down lets it grow;
     * every /metrics scrape asks). A message retried is due later than it
     * was queued, so a long queue of retries may hide an older one behind
     * the page: the figure is then a lower bound. */
    int64_t oldest = 0;
    if (s == EE_OK) {
        ee_storage_eq eq = {"status", "queued"};
        ee_storage_query_spec q = {.version = EE_STORAGE_QUERY_VERSION, .eq = &eq, .n_eq = 1,
                                   .order = EE_STORAGE_ORDER_TIME_ASC,
                                   .limit = N_OUTBOX_AGE_PAGE};
        s = ee_storage_query(ee__engine_storage(engine), EE__EMAIL_OUTBOX_COLL, NULL, &q,
                             oldest_row, &oldest, NULL);
    }
    if (s != EE_OK) {
        json_decref(doc);
        return ee__error_out(out, s);
    }
    int64_t now = ee_engine_now_ms(engine);
    json_object_set_new(doc, "oldestQueuedAgeMs",
                        json_integer(oldest > 0 && now > oldest ? (json_int_t)(now - oldest) : 0));
    json_object_set_new(doc, "transport", json_string(st->via == N_SMTP     ? "smtp"
                                                      : st->via == N_RESEND ? "api"
                                                                            : "none"));
    return ee__json_out(out, doc);
}
