/* Steps 1-6 of an execution (exec.h): the request, the entry, the
 * parameters, idempotency, credentials, admission, then the queue item and
 * the "pending" record. And the calls that wait for or cancel one. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bson/bson.h>

#include "catalog/catalog.h"
#include "core/record.h"
#include "credentials/credentials.h"
#include "exec/exec_internal.h"
#include "exec/queue.h"
#include "notify/notify.h"
#include "execengine/quota.h"
#include "quota/quota.h"
#include "storage/storage.h"

#define X_REQ_DEPTH 64

/* ---- the request ----------------------------------------------------------------- */

typedef struct {
    json_t *doc;
    json_t *parameters;        /* borrowed from doc */
    bool use_customer_key;
    const char *api_key_id;
    const char *idem_key;
    const char *email_to;
    int64_t timeout_ms;        /* 0: default */
} x_request;

static bool printable(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return false;
    return true;
}

static ee_status parse_request(const char *text, x_request *q)
{
    memset(q, 0, sizeof *q);
    static const char *const members[] = {"parameters", "useCustomApiKey", "apiKeyId",
                                          "idempotencyKey", "email", "timeoutMs", NULL};
    const char *what = "execution request";
    ee_status st = ee__record_parse(text != NULL ? text : "{}", EE_EXEC_REQUEST_MAX, X_REQ_DEPTH,
                                    0, what, &q->doc);
    if (st != EE_OK)
        return st;
    if ((st = ee__json_check_members(q->doc, members, what, "")) != EE_OK)
        return st;
    json_t *v = json_object_get(q->doc, "parameters");
    if (v != NULL && !json_is_object(v))
        return ee__error(EE_EINVAL, "%s: \"parameters\" (at /parameters) must be an object", what);
    q->parameters = v;
    v = json_object_get(q->doc, "useCustomApiKey");
    if (v != NULL && !json_is_boolean(v))
        return ee__error(EE_EINVAL, "%s: \"useCustomApiKey\" must be true or false", what);
    q->use_customer_key = json_is_true(v);
    v = json_object_get(q->doc, "apiKeyId");
    if (v != NULL && (!json_is_string(v) || !printable(json_string_value(v), EE__CRED_ID_MAX - 1)))
        return ee__error(EE_EINVAL, "%s: \"apiKeyId\" must be a key id (1..%d printable "
                                    "characters)", what, EE__CRED_ID_MAX - 1);
    q->api_key_id = json_string_value(v);
    if (q->use_customer_key && q->api_key_id == NULL)
        return ee__error(EE_EINVAL, "%s: \"apiKeyId\" is required with \"useCustomApiKey\": true",
                         what);
    v = json_object_get(q->doc, "idempotencyKey");
    if (v != NULL && (!json_is_string(v) || !printable(json_string_value(v), 128)))
        return ee__error(EE_EINVAL, "%s: \"idempotencyKey\" must be 1..128 printable characters",
                         what);
    q->idem_key = json_string_value(v);
    v = json_object_get(q->doc, "email");
    if (v != NULL) {
        static const char *const email_members[] = {"to", NULL};
        if (!json_is_object(v))
            return ee__error(EE_EINVAL, "%s: \"email\" must be an object {\"to\": address}", what);
        if ((st = ee__json_check_members(v, email_members, what, "/email")) != EE_OK)
            return st;
        const char *to = json_string_value(json_object_get(v, "to"));
        /* the check the outbox applies when the run ends: an address it
         * would refuse then is refused now, not dropped after the run */
        if (to == NULL || !ee__email_address_ok(to))
            return ee__error(EE_EINVAL, "%s: \"email.to\" (at /email/to) must be a plain "
                                        "e-mail address (local-part@host.domain, ASCII)", what);
        q->email_to = to;
    }
    v = json_object_get(q->doc, "timeoutMs");
    if (v != NULL && (!json_is_integer(v) || json_integer_value(v) < 1000 ||
                      json_integer_value(v) > 86400000))
        return ee__error(EE_EINVAL, "%s: \"timeoutMs\" must be an integer 1000..86400000", what);
    q->timeout_ms = v != NULL ? (int64_t)json_integer_value(v) : 0;
    return EE_OK;
}

/* ---- refusals with their detail ------------------------------------------------------ */

static ee_status gaps_error(const ee__cred_route *route)
{
    json_t *gaps = json_array(), *unknown = json_array();
    for (size_t i = 0; i < route->n_gaps; i++) {
        const ee__cred_gap *g = &route->gaps[i];
        json_t *o = json_pack("{s:s, s:s, s:b}", "credentialName", g->credential_name, "kind",
                              g->kind == EE__CRED_GAP_API_KEY ? "apiKey" : "credential",
                              "isPersonal", g->is_personal);
        if (o != NULL && g->service != NULL)
            json_object_set_new(o, "service", json_string(g->service));
        const char *why = ee__cred_gap_reason_text(g->reason);
        if (o != NULL && why != NULL)
            json_object_set_new(o, "reason", json_string(why));
        json_array_append_new(gaps, o);
    }
    for (size_t i = 0; i < route->n_unknown; i++)
        json_array_append_new(unknown, json_string(route->unknown_nodes[i]));
    const char *first = route->n_gaps > 0 ? route->gaps[0].credential_name
                                          : route->unknown_nodes[0];
    return ee__error_full(EE_ECREDENTIALS, 0,
                          json_pack("{s:o, s:o}", "gaps", gaps, "unknownNodes", unknown),
                          "the workflow cannot run: %zu credential(s) missing and %zu node "
                          "type(s) unknown (first: %s)",
                          route->n_gaps, route->n_unknown, first);
}

static ee_status refusal_error(ee_status st, const ee__quota_refusal *r)
{
    if (r->quota == NULL)
        return st;
    char msg[EE__ERROR_MSG_MAX];
    snprintf(msg, sizeof msg, "%s", ee_error_last_message());
    json_t *d = json_pack("{s:b, s:s, s:I, s:I, s:I, s:I, s:I}", "allowed", 0, "quota", r->quota,
                          "usage", (json_int_t)r->usage, "limit", (json_int_t)r->limit,
                          "remaining", (json_int_t)r->remaining, "resetsAt",
                          (json_int_t)r->resets_at_ms, "retryAfterMs",
                          (json_int_t)r->retry_after_ms);
    return ee__error_full(st, 0, d, "%s", msg);
}

/* Give back what an admission reserved (a refusal after it): keeps this
 * thread's error. */
/* The queue item and the record, in one transaction (one commit): the
 * pending record and its item appear together, or neither does. */
typedef struct enqueue_arg {
    ee_engine *engine;
    x_rec *r;
    const char *ws;
    uint64_t queue_max;
    bool pushed;
} enqueue_arg;

static ee_status enqueue(ee_storage *sto, void *payload)
{
    enqueue_arg *a = payload;
    ee_status st = ee__queue_push(sto, a->ws, a->r->id, a->r->created_at, a->queue_max);
    if (st != EE_OK)
        return st;
    a->pushed = true;
    st = ee__exec_insert(a->engine, a->r);
    if (st == EE_OK) /* commits with the record */
        ee__exec_audit(a->engine, a->r, EE__AUDIT_EXEC_REQUESTED, a->r->user_id);
    return st;
}

static void release_ticket(ee_engine *engine, ee_quota_ticket *t)
{
    char *err = NULL;
    ee_error_last_json(&err);
    int status = ee_error_last_status();
    char msg[EE__ERROR_MSG_MAX];
    snprintf(msg, sizeof msg, "%s", ee_error_last_message());
    (void)ee_quota_finish(engine, t, 0, 0);
    json_t *doc = err != NULL ? json_loads(err, 0, NULL) : NULL;
    json_t *detail = json_incref(json_object_get(json_object_get(doc, "error"), "detail"));
    if (detail != NULL && json_is_null(detail)) {
        json_decref(detail);
        detail = NULL;
    }
    ee__error_full((ee_status)status, 0, detail, "%s", msg);
    json_decref(doc);
    ee_free(err);
}

static unsigned idem_stripe(const char *ws, const char *key)
{
    uint32_t h = 2166136261u;
    for (const char *p = ws; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    h = (h ^ 0xffu) * 16777619u;
    for (const char *p = key; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    return h % X_IDEM_STRIPES;
}

/* ---- submit ------------------------------------------------------------------------------ */

typedef struct {
    x_state *st;
    const ee_principal *p;
    const char *workflow_id;
    x_request q;
    ee_exec_done_fn done;
    void *payload;
    char *id_out;
    /* ee_exec_run(): the caller learns nothing before the run's start,
     * whose commit is synced and carries this one (see submit_locked) */
    bool deferred;
    int64_t timeout_ms; /* out: the new record's timeout; 0 when the id is an earlier run's */
    /* ee_exec_run(): out, the new run's watch, set before it is queued so
     * that its end cannot come before its waiter (NULL: none made) */
    x_watch **watch_out;
} submit_ctx;

/* A request the rules refused (credentials, validation, quota, rate,
 * concurrency, spend, a full backlog): one "execution.refused" entry
 * naming the workflow (no execution exists). A malformed
 * request or a storage failure is not an action and leaves none. */
static void audit_refusal(ee_engine *engine, const submit_ctx *c, const char *workflow_id,
                          ee_status st)
{
    switch (st) {
    case EE_ECREDENTIALS: case EE_EVALIDATION: case EE_EQUOTA: case EE_ERATELIMIT:
    case EE_ECONCURRENCY: case EE_ESPEND: case EE_EBUSY:
        break;
    default:
        return;
    }
    json_t *detail = json_pack("{s:s}", "workflowId", workflow_id);
    ee__audit_append(engine, &(ee__audit_entry){.action = EE__AUDIT_EXEC_REFUSED,
                                                .workspace = ee_principal_workspace(c->p),
                                                .org = ee_principal_org(c->p),
                                                .actor = ee_principal_user(c->p),
                                                .target_id = workflow_id,
                                                .outcome = EE__AUDIT_REFUSED,
                                                .status = st,
                                                .detail = detail});
    json_decref(detail);
}

static ee_status submit_locked(submit_ctx *c)
{
    ee_engine *engine = c->st->engine;
    const char *ws = ee_principal_workspace(c->p);
    x_rec first;
    if (c->q.idem_key != NULL) {
        ee_status fst = ee__exec_find_idem(engine, ws, c->q.idem_key, &first);
        if (fst == EE_OK) {
            snprintf(c->id_out, EE_EXEC_ID_SIZE, "%s", first.id);
            ee__exec_rec_clear(&first);
            return EE_OK;
        }
        if (fst != EE_ENOTFOUND)
            return fst;
        ee_error_clear();
    }
    ee__catalog_entry *entry = NULL;
    ee_status st = ee__catalog_entry_get(engine, c->p, c->workflow_id, EE__CATALOG_ENTRY_COMPILED,
                                         &entry);
    if (st == EE_EINVAL && !ee__id_valid(c->workflow_id))
        st = ee__error(EE_ENOTFOUND, "no workflow with this id for this workspace");
    if (st != EE_OK)
        return st;
    ee__catalog_params *params = NULL;
    ee__cred_route *route = NULL;
    char *params_text = NULL;
    ee_quota_ticket ticket;
    bool admitted = false;
    x_rec r;
    memset(&r, 0, sizeof r);
    if (!entry->trigger.runnable) {
        st = ee__error(EE_ESTATE, "workflow \"%s\" cannot be run: %s", entry->name,
                       entry->trigger.reason != NULL ? entry->trigger.reason
                                                     : "it has no webhook trigger");
        goto out;
    }
    /* parameters: validated, the schema's defaults added */
    char *ptext = c->q.parameters != NULL ? ee__json_text(c->q.parameters, NULL)
                                          : strdup("{}");
    if (ptext == NULL) {
        st = ee__error(EE_ENOMEM, "out of memory reading parameters");
        goto out;
    }
    st = ee__catalog_params_parse(ptext, &params);
    free(ptext);
    if (st == EE_OK)
        st = ee__catalog_entry_validate(engine, entry, params, NULL);
    if (st == EE_OK)
        st = ee__catalog_params_text(params, &params_text);
    if (st != EE_OK)
        goto out;
    /* credentials before admission: a run with gaps consumes nothing */
    ee__cred_choice choice = {c->q.use_customer_key, c->q.api_key_id};
    st = ee__cred_route_nodes(engine, c->p, entry->requirements, entry->n_requirements, &choice,
                              &route);
    if (st != EE_OK)
        goto out;
    if (!route->ready) {
        st = gaps_error(route);
        goto out;
    }
    /* the run is on the customer's key when a node of it takes that key
     * (the choice alone, on a workflow that calls no LLM, changes nothing) */
    bool customer = false;
    for (size_t i = 0; i < route->n_mappings; i++)
        customer = customer || route->mappings[i].source == EE__CRED_SOURCE_CUSTOMER;
    ee__quota_refusal refusal;
    /* the platform's estimated spend: none on the customer's own key */
    st = ee__quota_admit(engine, c->p, customer ? 0 : entry->estimated_cost_nano, &ticket,
                         &refusal, NULL);
    if (st != EE_OK) {
        st = refusal_error(st, &refusal);
        goto out;
    }
    admitted = true;
    /* the record */
    bson_oid_t oid;
    ee__oid_new(oid.bytes);
    bson_oid_to_string(&oid, r.id);
    snprintf(r.workflow_id, sizeof r.workflow_id, "%s", entry->id);
    r.workflow_name = strdup(entry->name != NULL ? entry->name : "");
    snprintf(r.workspace, sizeof r.workspace, "%s", ws);
    r.user_id = strdup(ee_principal_user(c->p));
    r.org_id = strdup(ee_principal_org(c->p));
    r.status = X_PENDING;
    r.input = json_loads(params_text, 0, NULL);
    r.key_customer = customer;
    snprintf(r.key_provider, sizeof r.key_provider, "%s",
             customer || entry->requires_api_key
                 ? (entry->api_key_provider != NULL ? entry->api_key_provider : "openrouter")
                 : "platform");
    if (customer)
        snprintf(r.key_id, sizeof r.key_id, "%s", c->q.api_key_id);
    r.use_customer_key = customer; /* the choice the worker routes again with */
    r.idem_key = c->q.idem_key != NULL ? strdup(c->q.idem_key) : NULL;
    r.email_to = c->q.email_to != NULL ? strdup(c->q.email_to) : NULL;
    r.timeout_ms = c->q.timeout_ms > 0 ? c->q.timeout_ms : c->st->timeout_ms;
    r.created_at = ee_engine_now_ms(engine);
    if ((st = ee_quota_ticket_json(&ticket, &r.ticket_json)) != EE_OK || r.input == NULL ||
        r.workflow_name == NULL || r.user_id == NULL || r.org_id == NULL) {
        if (st == EE_OK)
            st = ee__error(EE_ENOMEM, "out of memory building an execution");
        goto out;
    }
    ee__exec_done_register(c->st, r.id, ws, c->done, c->payload);
    if (c->watch_out != NULL) {
        *c->watch_out = ee__exec_watch(c->st, r.id); /* NULL: the waiter makes its own */
        ee_error_clear();
    }
    /* Queue first, record second: a queue item whose record never appears
     * (a crash in between) is dropped by the worker that claims it, while
     * every stored record that has not ended has its queue item - the
     * handle recovery finds it by (docs/execution.md). */
    ee_storage *sto = ee__engine_storage(engine);
    enqueue_arg ea = {engine, &r, ws, (uint64_t)c->st->queue_max, false};
    /* ee_exec_submit() hands out the id: the commit reaches the disk
     * first. ee_exec_run() hands out nothing until the run has ended, and
     * the run's start (`running` and its grant, before n8n is called) is a
     * synced commit ordered after this one: an OS crash before it loses a
     * run nobody was told of and n8n never saw (its quota reservation
     * comes back with its lease), never one that ran. */
    st = c->deferred ? ee__engine_atomic_deferred(engine, enqueue, &ea)
                     : ee__engine_atomic(engine, enqueue, &ea);
    if (st == EE_OK)
        ee__exec_count_submitted(c->st);
    if (st != EE_OK && ea.pushed && !ee__storage_atomic_native(sto)) {
        /* a custom backend: the push stayed, take it back */
        char msg[EE__ERROR_MSG_MAX];
        snprintf(msg, sizeof msg, "%s", ee_error_last_message());
        (void)ee__queue_remove(sto, ws, r.id);
        ee__error(st, "%s", msg);
    }
    if (st != EE_OK) {
        x_rec gone = {0};
        snprintf(gone.id, sizeof gone.id, "%s", r.id);
        ee__exec_done_forget(c->st, r.id);
        if (c->watch_out != NULL) {
            ee__exec_unwatch(c->st, *c->watch_out);
            *c->watch_out = NULL;
        }
        if (st == EE_EEXISTS && c->q.idem_key != NULL) {
            /* another process stored the key first: its execution answers */
            release_ticket(engine, &ticket);
            admitted = false;
            if (ee__exec_find_idem(engine, ws, c->q.idem_key, &first) == EE_OK) {
                snprintf(c->id_out, EE_EXEC_ID_SIZE, "%s", first.id);
                ee__exec_rec_clear(&first);
                ee_error_clear();
                st = EE_OK;
            }
        }
        goto out;
    }
    admitted = false; /* the record holds the ticket now */
    snprintf(c->id_out, EE_EXEC_ID_SIZE, "%s", r.id);
    c->timeout_ms = r.timeout_ms;
    (void)ee__exec_workers_ensure(c->st); /* queued either way: a failure is logged */
    ee__exec_kick(c->st);
out:
    if (admitted)
        release_ticket(engine, &ticket);
    if (st != EE_OK && entry != NULL)
        audit_refusal(engine, c, entry->id, st);
    ee__exec_rec_clear(&r);
    ee_free(params_text);
    ee__catalog_params_free(params);
    ee__cred_route_free(route);
    ee__catalog_entry_free(entry);
    return st;
}

static ee_status submit(ee_engine *engine, const ee_principal *principal,
                        const char *workflow_id, const char *request_json, ee_exec_done_fn done,
                        void *payload, char id_out[EE_EXEC_ID_SIZE], bool deferred,
                        int64_t *timeout_out, x_watch **watch_out)
{
    if (watch_out != NULL)
        *watch_out = NULL;
    if (timeout_out != NULL)
        *timeout_out = 0;
    if (id_out != NULL)
        id_out[0] = '\0';
    x_state *st = ee__exec_state(engine);
    if (st == NULL || principal == NULL || workflow_id == NULL || id_out == NULL)
        return ee__error(EE_EINVAL, "ee_exec_submit: engine, principal, workflow_id and id_out "
                                    "must not be NULL");
    submit_ctx c = {st, principal, workflow_id, {0}, done, payload, id_out, deferred, 0,
                    watch_out};
    ee_status s = parse_request(request_json, &c.q);
    if (s == EE_OK) {
        /* One submit per (workspace, key) at a time in this process: a
         * concurrent repeat waits and finds the first. Across processes the
         * collection's unique key decides (EE_EEXISTS above). */
        pthread_mutex_t *m = c.q.idem_key != NULL
                                 ? &st->idem[idem_stripe(ee_principal_workspace(principal),
                                                         c.q.idem_key)]
                                 : NULL;
        /* another thread's submit of the key waits for it: no host
         * callback under it */
        ee__engine_hold h;
        if (m != NULL) {
            ee__engine_hold_begin(engine, &h);
            pthread_mutex_lock(m);
        }
        s = submit_locked(&c);
        if (m != NULL) {
            pthread_mutex_unlock(m);
            ee__engine_hold_end(&h);
        }
    }
    json_decref(c.q.doc);
    if (s == EE_OK && timeout_out != NULL)
        *timeout_out = c.timeout_ms;
    return s;
}

ee_status ee_exec_submit(ee_engine *engine, const ee_principal *principal,
                         const char *workflow_id, const char *request_json,
                         ee_exec_done_fn done, void *payload, char id_out[EE_EXEC_ID_SIZE])
{
    return submit(engine, principal, workflow_id, request_json, done, payload, id_out, false,
                  NULL, NULL);
}

/* ---- wait, run, cancel ------------------------------------------------------------------ */

ee_status ee__exec_final_status(const x_rec *r)
{
    switch (r->status) {
    case X_COMPLETED:
        return EE_OK;
    case X_CANCELLED:
        return EE_ECANCELLED;
    case X_FAILED:
        return r->fail_status < 0 ? (ee_status)r->fail_status : EE_EUPSTREAM;
    default:
        return EE_ETIMEOUT;
    }
}

static ee_status render_out(const x_rec *r, char **out)
{
    if (out == NULL)
        return EE_OK;
    json_t *j = ee__exec_render(r, true);
    return ee__json_out(out, j);
}

/* Until the run's end in this process after `gen` (its watch's), a poll
 * interval (ends in other processes are only seen by reading), `until` or
 * the close. */
static void wait_end(x_state *st, x_watch *w, uint64_t gen, int64_t until, int64_t now)
{
    int64_t wait = until - now < st->poll_ms ? until - now : st->poll_ms;
    struct timespec ts;
    ee__deadline_after_ms(wait, &ts);
    pthread_mutex_lock(&st->lock);
    while (w->gen == gen && !st->closing) {
        if (pthread_cond_timedwait(&w->cond, &st->lock, &ts) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&st->lock);
}

static uint64_t ended_gen(x_state *st)
{
    pthread_mutex_lock(&st->lock);
    uint64_t gen = st->ended_gen;
    pthread_mutex_unlock(&st->lock);
    return gen;
}

static uint64_t watch_gen(x_state *st, const x_watch *w)
{
    pthread_mutex_lock(&st->lock);
    uint64_t gen = w->gen;
    pthread_mutex_unlock(&st->lock);
    return gen;
}

/* ee_exec_wait()'s loop. `fresh`: the run was submitted by this caller,
 * so the first read of its record waits for its end (or a poll interval)
 * rather than finding it pending - its end is still to come while `pre`,
 * the watch set before it was queued, has seen none (without `pre`, out of
 * memory then: while nothing ended in this process since `gen0`). Only
 * the run's own end wakes this thread: a waiter costs no read when other
 * runs end. */
static ee_status wait_for(ee_engine *engine, x_state *st, const ee_principal *principal,
                          const char *execution_id, int64_t timeout_ms, bool fresh,
                          uint64_t gen0, x_watch *pre, char **out)
{
    int64_t until = timeout_ms < 0 ? INT64_MAX : ee__mono_ms() + timeout_ms;
    const char *ws = ee_principal_workspace(principal);
    (void)ee__exec_workers_ensure(st); /* a waiter expects progress */
    x_watch *w = pre != NULL ? pre : ee__exec_watch(st, execution_id);
    if (w == NULL)
        return ee__error_out(out, EE_ENOMEM);
    /* An ended run is settled when its queue item is gone: its quota,
     * key totals and token are accounted. A worker does that right after
     * the final write, or (it died) the next claimer within a lease. */
    int64_t settle_until = -1;
    ee_status result;
    for (;;) {
        uint64_t gen = watch_gen(st, w);
        if (fresh) {
            fresh = false;
            int64_t now = ee__mono_ms();
            /* watched since before it was queued: its end has not come
             * while the watch has seen none */
            bool to_come = pre != NULL ? gen == 0 : ended_gen(st) == gen0;
            if (to_come && now < until) {
                wait_end(st, w, gen, until, now);
                gen = watch_gen(st, w);
            }
        }
        x_rec r;
        /* accounted by a worker of this process: handed over, not read */
        bool settled = ee__exec_watch_settled(st, w, ws, &r);
        ee_status s = settled ? EE_OK : ee__exec_load(engine, ws, execution_id, &r);
        if (s != EE_OK) {
            result = ee__error_out(out, s);
            break;
        }
        int64_t now = ee__mono_ms();
        if (!settled && x_final(r.status)) {
            if (settle_until < 0)
                settle_until = now + st->lease_ms + st->poll_ms;
            bool queued = false;
            settled = now >= settle_until ||
                      ee__queue_has(ee__engine_storage(engine), ws, execution_id, &queued) !=
                          EE_OK ||
                      !queued;
            ee_error_clear();
        }
        if (settled || now >= until) {
            ee_status fs = x_final(r.status) ? ee__exec_final_status(&r) : EE_ETIMEOUT;
            ee_status rs = render_out(&r, out);
            ee__exec_rec_clear(&r);
            if (rs != EE_OK) {
                result = rs;
                break;
            }
            if (fs != EE_OK)
                ee__error(fs, "execution %s %s", execution_id,
                          fs == EE_ETIMEOUT ? "has not ended yet" : "did not complete");
            result = fs;
            break;
        }
        ee__exec_rec_clear(&r);
        wait_end(st, w, gen, until, now);
    }
    /* the message of `result` survives the release (it sets none) */
    ee__exec_unwatch(st, w);
    return result;
}

ee_status ee_exec_wait(ee_engine *engine, const ee_principal *principal,
                       const char *execution_id, int64_t timeout_ms, char **out)
{
    if (out != NULL)
        *out = NULL;
    x_state *st = ee__exec_state(engine);
    if (st == NULL || principal == NULL || execution_id == NULL)
        return ee__error_out(out, ee__error(EE_EINVAL, "ee_exec_wait: engine, principal and "
                                                       "execution_id must not be NULL"));
    return wait_for(engine, st, principal, execution_id, timeout_ms, false, 0, NULL, out);
}

ee_status ee_exec_run(ee_engine *engine, const ee_principal *principal, const char *workflow_id,
                      const char *request_json, char **out)
{
    if (out != NULL)
        *out = NULL;
    char id[EE_EXEC_ID_SIZE];
    x_state *st = ee__exec_state(engine);
    uint64_t gen0 = st != NULL ? ended_gen(st) : 0;
    int64_t timeout = 0;
    x_watch *w = NULL;
    ee_status s = submit(engine, principal, workflow_id, request_json, NULL, NULL, id, true,
                         &timeout, &w);
    if (s != EE_OK)
        return ee__error_out(out, s);
    /* an idempotent repeat answers with an earlier run: its own timeout */
    bool fresh = timeout > 0;
    x_rec r;
    if (!fresh) {
        timeout = st->timeout_ms;
        if (ee__exec_load(engine, ee_principal_workspace(principal), id, &r) == EE_OK) {
            timeout = r.timeout_ms;
            ee__exec_rec_clear(&r);
        }
    }
    /* the run's own timeout, plus room for its queueing and accounting */
    return wait_for(engine, st, principal, id, timeout + st->lease_ms, fresh, gen0, w, out);
}

typedef struct {
    int64_t now;
    bool was_final;
    x_status before;
} cancel_arg;

static ee_status cancel_change(x_rec *r, void *payload)
{
    cancel_arg *a = payload;
    a->before = r->status;
    if (x_final(r->status)) {
        a->was_final = true;
        return EE__RECORD_KEEP;
    }
    r->status = X_CANCELLED;
    r->completed_at = a->now;
    r->fail_status = EE_ECANCELLED;
    if (r->started_at > 0)
        r->exec_ms = a->now - r->started_at;
    free(r->error_message);
    r->error_message = strdup("cancelled");
    return EE_OK;
}

ee_status ee_exec_cancel(ee_engine *engine, const ee_principal *principal,
                         const char *execution_id)
{
    x_rec r;
    ee_status s = ee__exec_door_load(engine, principal, execution_id, "ee_exec_cancel", &r);
    if (s != EE_OK)
        return s;
    ee__exec_rec_clear(&r);
    x_state *st = ee__exec_state(engine);
    const char *ws = ee_principal_workspace(principal);
    cancel_arg a = {ee_engine_now_ms(engine), false, X_PENDING};
    s = ee__exec_change(engine, ws, execution_id, cancel_change, &a, &r);
    if (s != EE_OK)
        return s;
    if (a.was_final) {
        ee__exec_rec_clear(&r);
        return ee__error(EE_ESTATE, "execution %s has already ended (%s)", execution_id,
                         ee__exec_status_name(a.before));
    }
    /* A queued one never runs (its item goes; a worker that claimed it
     * meanwhile finds it cancelled before triggering). A running one: n8n's
     * public API has no call to stop an execution, so the run goes on in
     * n8n, its token is revoked now (its provider calls fail with 401) and
     * whatever it answers later is ignored (docs/execution.md). */
    ee__exec_count_ended(st, &r);
    ee__exec_audit(engine, &r, EE__AUDIT_EXEC_CANCELLED, ee_principal_user(principal));
    ee__exec_account(st, &r);
    ee__exec_rec_clear(&r);
    return EE_OK;
}
