/* Steps 7-8 of an execution (exec.h): the worker pool claiming from the
 * durable queue, the trigger, completion (answer, polling, callback), the
 * final write and the accounting; and recovery of executions whose worker
 * died (docs/execution.md). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "catalog/catalog.h"
#include "credentials/credentials.h"
#include "exec/exec_internal.h"
#include "execengine/n8n.h"
#include "execengine/quota.h"
#include "gateway/gateway.h"
#include "n8n/n8n.h"
#include "notify/notify.h"
#include "quota/quota.h"
#include "storage/storage.h"

/* A claimed item whose record is not there yet is looked at again after
 * this long (its submit is between its two writes). */
#define X_ORPHAN_RECHECK_MS 50
#define X_POLL_FIRST_MS 200
#define X_POLL_MAX_MS 5000

/* fork(): an idle worker polls the queue through the storage, and a child
 * forked while one is inside the storage (sqlite's global mutexes, the
 * redaction lock) would deadlock on its first call. The polls hold this
 * lock shared; fork() takes it exclusively, so no engine of the process is
 * inside a poll when it forks. (Runs in progress are the host's threads'
 * business, as any of its own calls into the engine would be.) */
static pthread_rwlock_t fork_lock;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void fork_prepare(void)
{
    pthread_rwlock_wrlock(&fork_lock);
}

static void fork_parent(void)
{
    pthread_rwlock_unlock(&fork_lock);
}

static void fork_lock_init(void)
{
    pthread_rwlockattr_t a;
    pthread_rwlockattr_init(&a);
    /* polls come often: a waiting fork() goes first */
    pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&fork_lock, &a);
    pthread_rwlockattr_destroy(&a);
}

/* The child's one thread is not the thread that locked (another id):
 * unlocking would not release the write lock, so the lock starts afresh. */
static void fork_child(void)
{
    fork_lock_init();
}

static void fork_init(void)
{
    fork_lock_init();
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}

static void timed_wait(x_state *st, pthread_cond_t *cond, int64_t ms, const uint64_t *gen,
                       uint64_t seen)
{
    struct timespec ts;
    ee__deadline_after_ms(ms, &ts);
    pthread_mutex_lock(&st->lock);
    while (!st->closing && *gen == seen)
        if (pthread_cond_timedwait(cond, &st->lock, &ts) == ETIMEDOUT)
            break;
    pthread_mutex_unlock(&st->lock);
}

/* One run was queued: one idle worker is enough to claim it. Waking them
 * all had the others race it for the queue's write lock and lose - each a
 * claim transaction for nothing, and on SQLite each holding the lock the
 * winner's next write waits for. Several runs queued at once send as many
 * signals; a worker that ends a run claims again before it waits. */
void ee__exec_kick(x_state *st)
{
    pthread_mutex_lock(&st->lock);
    st->kick_gen++;
    pthread_cond_signal(&st->work);
    pthread_mutex_unlock(&st->lock);
}

/* An end of run `id` in this process: its watchers woken, with a copy of
 * `settled` (may be NULL) left for them. */
static void wake_watchers(x_state *st, const char *id, const x_rec *settled)
{
    pthread_mutex_lock(&st->lock);
    st->ended_gen++;
    x_watch *w = EE__HTAB_ENTRY(ee__htab_find(&st->watches, id), x_watch, node);
    if (w != NULL) {
        x_rec *copy = settled != NULL && w->settled == NULL ? malloc(sizeof *copy) : NULL;
        if (copy != NULL && ee__exec_rec_copy(copy, settled) == EE_OK)
            w->settled = copy;
        else
            free(copy); /* out of memory: the watchers read it */
        ee_error_clear();
        w->gen++;
        pthread_cond_broadcast(&w->cond);
    }
    pthread_mutex_unlock(&st->lock);
}

void ee__exec_ended(x_state *st, const char *id)
{
    wake_watchers(st, id, NULL);
}

void ee__exec_settled(x_state *st, const x_rec *r)
{
    wake_watchers(st, r->id, r);
}

bool ee__exec_watch_settled(x_state *st, x_watch *w, const char *workspace, x_rec *out)
{
    pthread_mutex_lock(&st->lock);
    bool got = w->settled != NULL && strcmp(w->settled->workspace, workspace) == 0 &&
               ee__exec_rec_copy(out, w->settled) == EE_OK;
    pthread_mutex_unlock(&st->lock);
    return got;
}

x_watch *ee__exec_watch(x_state *st, const char *id)
{
    pthread_mutex_lock(&st->lock);
    x_watch *w = EE__HTAB_ENTRY(ee__htab_find(&st->watches, id), x_watch, node);
    if (w == NULL && (w = calloc(1, sizeof *w)) != NULL) {
        snprintf(w->id, sizeof w->id, "%s", id);
        w->node.key = w->id;
        pthread_cond_init(&w->cond, NULL);
        if (!ee__htab_insert(&st->watches, &w->node)) {
            pthread_cond_destroy(&w->cond);
            free(w);
            w = NULL;
        }
    }
    if (w != NULL)
        w->users++;
    pthread_mutex_unlock(&st->lock);
    if (w == NULL)
        ee__error(EE_ENOMEM, "out of memory waiting for execution %s", id);
    return w;
}

void ee__exec_unwatch(x_state *st, x_watch *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&st->lock);
    bool last = --w->users == 0;
    if (last)
        (void)ee__htab_remove(&st->watches, w->id);
    pthread_mutex_unlock(&st->lock);
    if (last) {
        pthread_cond_destroy(&w->cond);
        ee__exec_rec_clear(w->settled);
        free(w->settled);
        free(w);
    }
}

/* ---- done callbacks ----------------------------------------------------------------- */

static ee_status keeper_ensure(x_state *st);

/* Out of the keeper's round (under st->lock). */
static void done_list_remove(x_state *st, x_done *d)
{
    if (d->prev != NULL)
        d->prev->next = d->next;
    else
        st->done_first = d->next;
    if (d->next != NULL)
        d->next->prev = d->prev;
    else
        st->done_last = d->prev;
    d->prev = d->next = NULL;
}

/* Out of both indexes (under st->lock). */
static void done_unlink(x_state *st, x_done *d)
{
    (void)ee__htab_remove(&st->dones, d->id);
    done_list_remove(st, d);
}

static void done_append(x_state *st, x_done *d)
{
    d->prev = st->done_last;
    d->next = NULL;
    if (st->done_last != NULL)
        st->done_last->next = d;
    else
        st->done_first = d;
    st->done_last = d;
}

void ee__exec_done_register(x_state *st, const char *id, const char *workspace,
                            ee_exec_done_fn fn, void *payload)
{
    if (fn == NULL)
        return;
    x_done *d = calloc(1, sizeof *d);
    if (d == NULL)
        return; /* the run goes on; only its callback is lost */
    snprintf(d->id, sizeof d->id, "%s", id);
    snprintf(d->workspace, sizeof d->workspace, "%s", workspace);
    d->node.key = d->id;
    d->registered_ms = d->seen_ms = ee__mono_ms();
    d->fn = fn;
    d->payload = payload;
    pthread_mutex_lock(&st->lock);
    bool in = ee__htab_insert(&st->dones, &d->node);
    if (in) {
        done_append(st, d);
        /* the keeper sleeps a lease third while no callback waits, a poll
         * interval while some do: the first one wakes it */
        if (st->dones.n == 1) {
            st->keeper_gen++;
            pthread_cond_broadcast(&st->stop);
        }
    }
    pthread_mutex_unlock(&st->lock);
    if (!in) {
        free(d); /* out of memory: as above */
        return;
    }
    /* without workers the runs end in other processes: the keeper finds
     * them (with workers it starts with them) */
    if (st->workers <= 0 && keeper_ensure(st) != EE_OK)
        ee__log(ee__engine_logger(st->engine), EE_LOG_WARN, "exec",
                "execution %s: no thread to watch for its end in other processes: %s", id,
                ee_error_last_message());
}

static x_done *done_take(x_state *st, const char *id)
{
    pthread_mutex_lock(&st->lock);
    x_done *d = EE__HTAB_ENTRY(ee__htab_find(&st->dones, id), x_done, node);
    if (d != NULL)
        done_unlink(st, d);
    pthread_mutex_unlock(&st->lock);
    return d;
}

void ee__exec_done_forget(x_state *st, const char *id)
{
    free(done_take(st, id));
}

static void done_fire(x_done *d, const char *id, ee_status status, const char *json)
{
    d->fn(id, status, json, d->payload);
    free(d);
}

void ee__exec_done_call(x_state *st, const x_rec *r)
{
    x_done *found = done_take(st, r->id);
    if (found == NULL)
        return;
    json_t *j = ee__exec_render(r, true);
    char *text = j != NULL ? ee__json_text(j, NULL) : NULL;
    json_decref(j);
    done_fire(found, r->id, ee__exec_final_status(r), text != NULL ? text : "{}");
    free(text);
}

/* Callbacks the keeper looks at a pass: the oldest first, each at most once
 * a poll interval; the rest wait for the next passes. */
#define X_DONE_SWEEP 64

typedef struct done_ref {
    char id[EE_EXEC_ID_SIZE];
    char workspace[EE_PRINCIPAL_ID_MAX + 1];
    int64_t age_ms; /* since its registration */
} done_ref;

static bool running_here(const x_state *st, const char *id)
{
    for (size_t i = 0; i < st->nthreads; i++)
        if (st->slots[i].busy && strcmp(st->slots[i].item.id, id) == 0)
            return true;
    return false;
}

bool ee__exec_done_sweep(x_state *st)
{
    done_ref refs[X_DONE_SWEEP];
    size_t n = 0;
    int64_t now = ee__mono_ms();
    pthread_mutex_lock(&st->lock);
    /* the round: take the head while it is due, move it to the tail */
    for (size_t k = 0; k < st->dones.n && n < X_DONE_SWEEP; k++) {
        x_done *d = st->done_first;
        if (d == NULL || now - d->seen_ms < st->poll_ms)
            break;
        done_list_remove(st, d);
        done_append(st, d);
        d->seen_ms = now;
        if (running_here(st, d->id))
            continue; /* its own worker calls it */
        snprintf(refs[n].id, sizeof refs[n].id, "%s", d->id);
        snprintf(refs[n].workspace, sizeof refs[n].workspace, "%s", d->workspace);
        refs[n].age_ms = now - d->registered_ms;
        n++;
    }
    pthread_mutex_unlock(&st->lock);
    ee_engine *e = st->engine;
    ee_storage *sto = ee__engine_storage(e);
    for (size_t i = 0; i < n; i++) {
        x_rec r;
        ee_status s = ee__exec_load(e, refs[i].workspace, refs[i].id, &r);
        bool queued = true;
        ee_status qs = ee__queue_has(sto, refs[i].workspace, refs[i].id, &queued);
        if (s == EE_OK) {
            /* settled: ended, and its item gone with its accounting (as
             * ee_exec_wait() waits for) */
            if (x_final(r.status) && qs == EE_OK && !queued)
                ee__exec_done_call(st, &r);
            ee__exec_rec_clear(&r);
        } else if (s == EE_ENOTFOUND && qs == EE_OK && !queued &&
                   refs[i].age_ms >= st->lease_ms) {
            /* neither record nor item, long after its submit: purged by
             * retention, or its submit's commit was lost - it cannot end */
            x_done *d = done_take(st, refs[i].id);
            if (d != NULL)
                done_fire(d, refs[i].id, EE_ENOTFOUND, "{}");
        }
        ee_error_clear();
    }
    pthread_mutex_lock(&st->lock);
    bool waiting = st->dones.n > 0;
    pthread_mutex_unlock(&st->lock);
    return waiting;
}

/* ---- the end of a run ------------------------------------------------------------------ */

ee_principal *ee__exec_principal_of(const x_rec *r)
{
    ee_principal *p = NULL;
    if (ee_principal_new(&p, r->workspace, r->user_id != NULL ? r->user_id : "",
                         r->org_id != NULL ? r->org_id : "") != EE_OK)
        return NULL;
    return p;
}

/* The run's last writes once it is accounted: revoke its gateway token
 * (done again when this step is repeated: it changes nothing) and remove
 * its queue item (the handle recovery finds it by: last). */
typedef struct release_arg {
    ee_engine *engine;
    const x_rec *r;
} release_arg;

static ee_status release_run(ee_storage *sto, void *payload)
{
    const release_arg *a = payload;
    (void)ee__gateway_revoke(a->engine, a->r->workspace, a->r->id);
    ee_status s = ee__queue_remove(sto, a->r->workspace, a->r->id);
    if (s == EE_ENOTFOUND) { /* removed before (a repeat): the revocation still counts */
        ee_error_clear();
        s = EE_OK;
    }
    return s;
}

void ee__exec_account(x_state *st, const x_rec *r)
{
    ee_engine *e = st->engine;
    const ee__logger *lg = ee__engine_logger(e);
    bool ok = r->status == X_COMPLETED;
    /* Each step is keyed so that doing it again changes nothing: a ticket
     * finished before answers ENOTFOUND/ESTATE, a key counts an execution
     * id once, a revoked token and a removed item stay so. */
    if (r->ticket_json != NULL) {
        /* the platform's spend: its calls on platform credentials only (a
         * run on the customer's key may also use platform search, say) */
        ee_status s = ee_quota_finish_json(e, r->ticket_json, ok ? 1 : 0, r->platform_cost_nano);
        if (s != EE_OK && s != EE_ENOTFOUND && s != EE_ESTATE)
            ee__log(lg, EE_LOG_WARN, "exec", "execution %s: finishing its quota ticket: %s", r->id,
                    ee_error_last_message());
    }
    /* its charge, month and usage rows and its customer key's totals (once,
     * keyed by the record's charge), the token's revocation and the item's
     * removal: one commit, not synced
     * on its own (the final record before it was). On failure - or if an OS
     * crash loses the commit - the item stays, and recovery accounts the run
     * again after its lease. */
    x_rec billed;
    release_arg ra = {e, r};
    ee_status bs = ee__exec_bill(st, r, release_run, &ra, &billed);
    if (bs != EE_OK)
        ee__log(lg, EE_LOG_WARN, "exec", "execution %s: booking its charge, removing its queue "
                "item: %s", r->id, ee_error_last_message());
    ee_error_clear();
    ee__exec_done_call(st, bs == EE_OK ? &billed : r);
    if (bs == EE_OK) {
        ee__exec_settled(st, &billed);
        ee__exec_rec_clear(&billed);
    } else {
        ee__exec_ended(st, r->id);
    }
}

typedef struct {
    x_state *st;
    x_outcome *oc;
    int64_t now;
    const ee__gateway_usage *use;
    json_t *output;            /* inline output, or NULL */
    const ee__result_ref *ref; /* or NULL */
    bool applied;
    const char *email_to;      /* the run asked for its results by e-mail (and may) */
    bool emailed;              /* the e-mail was queued with the final write */
    ee_status email_dropped;   /* asked for, refused before the write: limit, not configured */
} finish_arg;

static ee_status finish_change(x_rec *r, void *payload)
{
    finish_arg *a = payload;
    a->applied = false;
    if (x_final(r->status))
        return EE__RECORD_KEEP;
    a->applied = true;
    ee_status s = a->oc->status;
    const char *msg = a->oc->message;
    char budget[160];
    if (a->use->budget_refused) {
        s = EE_ESPEND;
        snprintf(budget, sizeof budget,
                 "the run's budget was spent: the gateway refused a call to %s",
                 a->use->refused_provider[0] != '\0' ? a->use->refused_provider : "a provider");
        msg = budget;
    }
    r->status = s == EE_OK ? X_COMPLETED : X_FAILED;
    r->fail_status = s;
    r->completed_at = a->now;
    r->exec_ms = r->started_at > 0 ? a->now - r->started_at : 0;
    if (a->oc->n8n_id != NULL && r->n8n_id == NULL)
        r->n8n_id = strdup(a->oc->n8n_id);
    json_decref(r->output);
    r->output = a->output != NULL ? json_incref(a->output) : NULL;
    r->has_ref = a->ref != NULL;
    if (a->ref != NULL)
        r->ref = *a->ref;
    r->cost_nano = a->use->cost_nano;
    r->platform_cost_nano = a->use->platform_cost_nano;
    r->tokens = a->use->total_tokens;
    free(r->error_message);
    r->error_message = s != EE_OK ? strdup(msg != NULL ? msg : ee_strerror(s)) : NULL;
    return EE_OK;
}

/* The final write and its audit entry: one commit. */
typedef struct final_step {
    ee_engine *e;
    const char *workspace, *id;
    const x_rec *known; /* the record as last read or written, or NULL */
    finish_arg *a;
    x_rec *dst;
} final_step;

/* Queue the results e-mail the run asked for, in the final write's
 * transaction: it commits with the end of the run or not at all, so it is
 * never lost nor queued twice. A template that does not render (a line
 * break in the subject) does not stop the run from ending: it is logged. */
static ee_status final_email(final_step *f)
{
    json_t *rec = ee__exec_render(f->dst, true);
    if (rec == NULL)
        return ee__error(EE_ENOMEM, "out of memory queueing the results e-mail");
    const x_rec *r = f->dst;
    ee__email_exec x = {r->workspace,     r->user_id != NULL ? r->user_id : "",
                        r->org_id != NULL ? r->org_id : "", r->id, r->workflow_id,
                        r->workflow_name, rec};
    ee_status s = ee__email_enqueue(f->e, &x, f->a->email_to, NULL);
    json_decref(rec);
    if (s == EE_OK) {
        f->a->emailed = true;
        return EE_OK;
    }
    if (s == EE_EINVAL || s == EE_EPARSE || s == EE_ENOTFOUND || s == EE_ETOOBIG) {
        ee__log(ee__engine_logger(f->e), EE_LOG_WARN, "exec",
                "execution %s: its results e-mail cannot be made: %s", r->id,
                ee_error_last_message());
        ee_error_clear();
        ee__email_audit_dropped(f->e, r->workspace, r->org_id, r->id, s);
        return EE_OK;
    }
    return s; /* the storage's: the whole step is retried by recovery */
}

static ee_status final_write(ee_storage *sto, void *payload)
{
    (void)sto;
    final_step *f = payload;
    ee_status s = f->known != NULL
                      ? ee__exec_change_from(f->e, f->known, finish_change, f->a, f->dst)
                      : ee__exec_change(f->e, f->workspace, f->id, finish_change, f->a, f->dst);
    if (s == EE_OK && f->a->applied)
        ee__exec_audit(f->e, f->dst, EE__AUDIT_EXEC_FINISHED, NULL);
    if (s == EE_OK && f->a->applied && f->a->email_to != NULL)
        s = final_email(f);
    if (s == EE_OK && f->a->applied && f->a->email_dropped != EE_OK)
        ee__email_audit_dropped(f->e, f->dst->workspace, f->dst->org_id, f->dst->id,
                                f->a->email_dropped);
    return s;
}

ee_status ee__exec_finish_write(x_state *st, const char *workspace, const char *id,
                                const x_rec *known, x_outcome *oc, bool *applied_out,
                                x_rec *out)
{
    ee_engine *e = st->engine;
    if (applied_out != NULL)
        *applied_out = false;
    ee__gateway_usage use;
    memset(&use, 0, sizeof use);
    if (ee__gateway_usage_of(e, workspace, id, &use) != EE_OK) {
        ee__log(ee__engine_logger(e), EE_LOG_WARN, "exec",
                "execution %s: reading its metered usage: %s", id, ee_error_last_message());
        memset(&use, 0, sizeof use);
    }
    /* the output: secret-looking members dropped, big ones to the result store */
    json_t *output = oc->output;
    oc->output = NULL;
    if (output != NULL && !json_is_object(output)) {
        json_t *wrap = json_pack("{s:o}", "data", output);
        output = wrap;
    }
    if (output != NULL)
        (void)ee__drop_secrets(st->secret_names, output);
    ee__result_ref ref;
    bool has_ref = false;
    size_t text_len = 0;
    char *text = output != NULL && st->inline_max >= 0 ? ee__json_text(output, &text_len) : NULL;
    bool to_store = text != NULL && (int64_t)text_len > st->inline_max;
    /* The record as the caller knows it, unless the output goes to the
     * result store: it is kept there under the run's id, and a copy of an
     * older record could replace the file of an end another writer stored
     * meanwhile. Otherwise what is decided on it is checked by the final
     * write (ee__exec_change_from). */
    bool use_known = known != NULL && known->revision > 0 && !to_store;
    x_rec cur;
    ee_status s = use_known ? ee__exec_rec_copy(&cur, known) : ee__exec_load(e, workspace, id, &cur);
    if (s != EE_OK) {
        free(text);
        json_decref(output);
        return s;
    }
    if (to_store && !x_final(cur.status)) {
        ee_principal *p = ee__exec_principal_of(&cur);
        ee_status rs = p != NULL ? ee__results_put(e, p, id, text, text_len, &ref) : EE_ENOMEM;
        ee_principal_free(p);
        if (rs == EE_OK) {
            has_ref = true;
        } else {
            /* kept nowhere: the run fails with the reason */
            oc->status = rs;
            oc->message = "the output could not be stored in the result store";
        }
        json_decref(output);
        output = NULL;
    }
    free(text);
    /* The e-mail the run asked for takes its place in the user's hourly
     * limit before the final write (the counters are not written inside a
     * storage transaction): given back if the run had already ended. */
    char *email_to = NULL;
    uint64_t email_resv = 0;
    ee_status email_dropped = EE_OK;
    if (cur.email_to != NULL && cur.email_to[0] != '\0' && !x_final(cur.status)) {
        ee__error_saved saved;
        ee__error_save(&saved);
        email_dropped = !ee__email_configured(e)
                            ? EE_ENOTSUPPORTED
                            : ee__email_reserve(e, workspace,
                                                cur.user_id != NULL ? cur.user_id : "",
                                                &email_resv);
        /* dropped: logged now, audited with the final write (if it applies) */
        if (email_dropped != EE_OK)
            ee__log(ee__engine_logger(e), EE_LOG_WARN, "exec",
                    "execution %s: its results e-mail is not sent: %s", id,
                    ee_error_last_message());
        else
            email_to = strdup(cur.email_to);
        ee__error_restore(&saved);
    }
    char *email_user = cur.user_id != NULL ? strdup(cur.user_id) : NULL;
    ee__exec_rec_clear(&cur);
    finish_arg a = {st, oc, ee_engine_now_ms(e), &use, output, has_ref ? &ref : NULL, false,
                    email_to, false, email_dropped};
    x_rec tmp;
    final_step fs = {e, workspace, id, use_known ? known : NULL, &a, out != NULL ? out : &tmp};
    s = ee__engine_atomic(e, final_write, &fs);
    if (email_resv != 0)
        ee__email_reserve_end(e, workspace, email_user != NULL ? email_user : "", email_resv,
                              s == EE_OK && a.emailed);
    free(email_to);
    free(email_user);
    if (s == EE_OK && a.applied)
        ee__exec_count_ended(st, fs.dst);
    if (out == NULL && s == EE_OK)
        ee__exec_rec_clear(&tmp);
    if (has_ref && (!a.applied || s != EE_OK))
        (void)ee__results_delete(e, workspace, id, &ref);
    json_decref(output);
    if (applied_out != NULL)
        *applied_out = a.applied && s == EE_OK;
    return s;
}

/* Finish the record with `oc` (or take the end another writer stored) and
 * account. */
static void finish(x_state *st, const x_rec *r, x_outcome *oc)
{
    x_rec fin;
    ee_status s = ee__exec_finish_write(st, r->workspace, r->id, r, oc, NULL, &fin);
    json_decref(oc->output);
    oc->output = NULL;
    if (s != EE_OK) {
        ee__log(ee__engine_logger(st->engine), EE_LOG_ERROR, "exec",
                "execution %s: storing its end: %s (recovery will finish it)", r->id,
                ee_error_last_message());
        return;
    }
    ee__exec_account(st, &fin);
    ee__exec_rec_clear(&fin);
}

/* ---- n8n's answers ---------------------------------------------------------------------- */

/* The message of the n8n error document in `out` (or this thread's). */
static void n8n_message(const char *out, char *buf, size_t cap)
{
    json_t *doc = out != NULL ? json_loads(out, 0, NULL) : NULL;
    json_t *err = json_object_get(doc, "error");
    const char *m = json_string_value(json_object_get(json_object_get(err, "detail"),
                                                      "n8nMessage"));
    if (m == NULL)
        m = json_string_value(json_object_get(err, "message"));
    snprintf(buf, cap, "%s", m != NULL ? m : ee_error_last_message());
    json_decref(doc);
}

static bool is_running_answer(const json_t *body)
{
    const char *s = json_string_value(json_object_get(body, "status"));
    return s != NULL && (strcmp(s, "running") == 0 || strcmp(s, "waiting") == 0 ||
                         strcmp(s, "pending") == 0);
}

static bool is_failed_answer(const json_t *body)
{
    const char *s = json_string_value(json_object_get(body, "status"));
    return s != NULL && (strcmp(s, "failed") == 0 || strcmp(s, "error") == 0);
}

/* The output of a finished n8n execution as ee_n8n_get_execution() gives it. */
static json_t *execution_output(const json_t *ex)
{
    json_t *items = json_object_get(ex, "output");
    if (json_is_array(items) && json_array_size(items) == 1 &&
        json_is_object(json_array_get(items, 0)))
        return json_incref(json_array_get(items, 0));
    if (json_is_array(items))
        return json_pack("{s:O}", "items", items);
    return json_object();
}

typedef struct {
    const char *n8n_id;
} n8n_id_arg;

static ee_status set_n8n_id(x_rec *r, void *payload)
{
    n8n_id_arg *a = payload;
    if (x_final(r->status) || (r->n8n_id != NULL && strcmp(r->n8n_id, a->n8n_id) == 0))
        return EE__RECORD_KEEP;
    free(r->n8n_id);
    r->n8n_id = strdup(a->n8n_id);
    return r->n8n_id != NULL ? EE_OK : ee__error(EE_ENOMEM, "out of memory");
}

/* n8n's id of the execution our run `id` started, when its answer named
 * none: the workflow's recent executions (includeData) are searched for
 * the trigger's ee.executionId, which only that run's data holds (24
 * random hex characters). NULL when not found (yet). Only finished
 * executions are listed by n8n unless asked for running ones, so both are
 * asked. */
static char *find_in_list(ee_n8n *n8n, const char *n8n_workflow_id, const char *id,
                          const char *const *statuses, size_t n_statuses)
{
    for (size_t s = 0; s < n_statuses; s++) {
        json_t *q = json_pack("{s:s, s:b, s:i, s:i}", "workflowId", n8n_workflow_id,
                              "includeData", 1, "limit", 20, "maxPages", 1);
        if (q != NULL && statuses[s] != NULL)
            json_object_set_new(q, "status", json_string(statuses[s]));
        char *qt = q != NULL ? json_dumps(q, JSON_COMPACT) : NULL;
        json_decref(q);
        char *out = NULL;
        ee_status st = qt != NULL ? ee_n8n_list_executions(n8n, qt, &out) : EE_ENOMEM;
        free(qt);
        json_t *doc = st == EE_OK ? json_loads(out, 0, NULL) : NULL;
        ee_free(out);
        size_t i;
        json_t *ex;
        char *found = NULL;
        json_array_foreach(json_object_get(doc, "data"), i, ex) {
            char *data = json_dumps(json_object_get(ex, "data"), JSON_COMPACT | JSON_ENCODE_ANY);
            const char *eid = json_string_value(json_object_get(ex, "id"));
            if (data != NULL && eid != NULL && strstr(data, id) != NULL)
                found = strdup(eid);
            free(data);
            if (found != NULL)
                break;
        }
        json_decref(doc);
        ee_error_clear();
        if (found != NULL)
            return found;
    }
    return NULL;
}

static char *find_n8n_id(ee_n8n *n8n, const char *n8n_workflow_id, const char *id)
{
    static const char *const statuses[] = {"running", "waiting", NULL};
    return find_in_list(n8n, n8n_workflow_id, id, statuses, sizeof statuses / sizeof statuses[0]);
}

/* n8n answers a workflow that failed behind a lastNode webhook with a
 * generic 500 "Error in workflow": the workflow's own message is in its
 * execution. That execution (found, as find_n8n_id() does, by our
 * ee.executionId in its data, among the workflow's failed executions) is
 * read once with its data; n8n may store it just after it answers, so a
 * miss is looked for once more after a short wait. Bounded: at most two
 * listings and one read. On success `msg` holds the failing node's message
 * (redacted as error messages are) and *n8n_id_out n8n's execution id (the caller's, free()); else both are
 * left as they were. */
#define X_FAILED_LOOKUP_WAIT_MS 300
static void failed_execution_message(ee_n8n *n8n, const char *n8n_workflow_id, const char *id,
                                     char *msg, size_t cap, char **n8n_id_out)
{
    static const char *const failed[] = {"error", "crashed"};
    if (n8n == NULL || n8n_workflow_id == NULL)
        return;
    char *eid = find_in_list(n8n, n8n_workflow_id, id, failed, sizeof failed / sizeof failed[0]);
    if (eid == NULL) {
        usleep(X_FAILED_LOOKUP_WAIT_MS * 1000);
        eid = find_in_list(n8n, n8n_workflow_id, id, failed, sizeof failed / sizeof failed[0]);
    }
    if (eid == NULL)
        return;
    char *out = NULL;
    json_t *ex = ee_n8n_get_execution(n8n, eid, 1, &out) == EE_OK ? json_loads(out, 0, NULL)
                                                                  : NULL;
    ee_free(out);
    json_t *err = json_object_get(ex, "error");
    const char *m = json_string_value(json_object_get(err, "message"));
    if (m != NULL && m[0] != '\0') {
        snprintf(msg, cap, "%s", m);
        ee__redact(msg, cap); /* a node's message may quote what it was sent */
        *n8n_id_out = eid;
        eid = NULL;
    }
    json_decref(ex);
    free(eid);
    ee_error_clear();
}

/* Wait for a run that continues in n8n: its record ending (a callback, a
 * cancel, another process), n8n's executions API saying it ended, or its
 * deadline. */
static void await_end(x_state *st, const x_rec *start, const char *n8n_id_in,
                      const char *n8n_workflow_id)
{
    ee_engine *e = st->engine;
    ee_n8n *n8n = ee__engine_n8n(e);
    char *n8n_id = n8n_id_in != NULL ? strdup(n8n_id_in) : NULL;
    int64_t delay = X_POLL_FIRST_MS;
    /* its end here (a callback, a cancel) wakes it; without the watch (out
     * of memory) it polls */
    x_watch *w = ee__exec_watch(st, start->id);
    ee_error_clear();
    uint64_t never = 0;
    for (;;) {
        pthread_mutex_lock(&st->lock);
        uint64_t gen = w != NULL ? w->gen : 0;
        bool closing = st->closing;
        pthread_mutex_unlock(&st->lock);
        if (closing)
            break; /* left to recovery: the item's lease runs out */
        x_rec r;
        if (ee__exec_load(e, start->workspace, start->id, &r) != EE_OK)
            break;
        if (x_final(r.status)) {
            ee__exec_account(st, &r);
            ee__exec_rec_clear(&r);
            break;
        }
        int64_t now = ee_engine_now_ms(e);
        if (r.deadline_ms > 0 && now >= r.deadline_ms) {
            char msg[128];
            snprintf(msg, sizeof msg, "timed out after %lld ms without an answer from the workflow",
                     (long long)r.timeout_ms);
            x_outcome oc = {EE_ETIMEOUT, NULL, msg, n8n_id};
            finish(st, &r, &oc);
            ee__exec_rec_clear(&r);
            break;
        }
        if (n8n_id == NULL && n8n != NULL && n8n_workflow_id != NULL &&
            (n8n_id = find_n8n_id(n8n, n8n_workflow_id, start->id)) != NULL) {
            n8n_id_arg na = {n8n_id};
            (void)ee__exec_change(e, start->workspace, start->id, set_n8n_id, &na, NULL);
        }
        if (n8n_id != NULL && n8n != NULL) {
            char *out = NULL;
            ee_status s = ee_n8n_get_execution(n8n, n8n_id, 1, &out);
            json_t *ex = s == EE_OK ? json_loads(out, 0, NULL) : NULL;
            const char *status = json_string_value(json_object_get(ex, "status"));
            if (status != NULL && strcmp(status, "completed") == 0) {
                x_outcome oc = {EE_OK, execution_output(ex), NULL, n8n_id};
                finish(st, &r, &oc);
                json_decref(ex);
                ee_free(out);
                ee__exec_rec_clear(&r);
                break;
            }
            if (status != NULL && strcmp(status, "failed") == 0) {
                const char *m = json_string_value(
                    json_object_get(json_object_get(ex, "error"), "message"));
                x_outcome oc = {EE_EUPSTREAM, NULL, m != NULL ? m : "the workflow failed in n8n",
                                n8n_id};
                finish(st, &r, &oc);
                json_decref(ex);
                ee_free(out);
                ee__exec_rec_clear(&r);
                break;
            }
            if (s == EE_ENOTFOUND) {
                x_outcome oc = {EE_EUPSTREAM, NULL, "n8n no longer knows the execution", n8n_id};
                finish(st, &r, &oc);
                ee_free(out);
                ee__exec_rec_clear(&r);
                break;
            }
            json_decref(ex);
            ee_free(out);
        }
        int64_t left = r.deadline_ms > 0 ? r.deadline_ms - now : delay;
        ee__exec_rec_clear(&r);
        int64_t ms = delay < left ? delay : (left > 0 ? left : 1);
        if (w != NULL)
            timed_wait(st, &w->cond, ms, &w->gen, gen);
        else
            timed_wait(st, &st->stop, ms, &never, 0);
        delay = delay * 2 > X_POLL_MAX_MS ? X_POLL_MAX_MS : delay * 2;
    }
    ee__exec_unwatch(st, w);
    free(n8n_id);
}

/* ---- one run ------------------------------------------------------------------------------ */

typedef struct {
    int64_t now;
    bool started;
} start_arg;

/* pending -> running, before the trigger is sent: from here on a crash
 * leaves "running without an n8n execution id", which recovery fails
 * rather than risk a second run. */
static ee_status start_change(x_rec *r, void *payload)
{
    start_arg *a = payload;
    a->started = false;
    if (r->status != X_PENDING)
        return EE__RECORD_KEEP;
    r->status = X_RUNNING;
    r->started_at = a->now;
    r->deadline_ms = a->now + r->timeout_ms;
    a->started = true;
    return EE_OK;
}

/* pending -> running and the run's gateway grant, in one transaction (one
 * commit): both are written before the trigger is sent; a failed grant
 * takes the `running` write back with it. */
typedef struct start_step {
    x_state *st;
    const x_rec *r0;
    ee_principal *p;
    const ee__cred_route *route;
    const ee__cred_choice *choice;
    int64_t budget;
    char *token;
    start_arg sa;
    x_rec r;
    bool have_r, grant_failed;
} start_step;

int64_t ee__exec_run_budget(int64_t estimate_nano, int64_t factor, int64_t cap)
{
    if (cap < 0)
        cap = 0;
    if (estimate_nano <= 0 || factor <= 0 || estimate_nano > cap / factor)
        return cap; /* no estimate, or estimate x factor past the cap (or past INT64_MAX) */
    return estimate_nano * factor;
}

static ee_status start_and_grant(ee_storage *sto, void *payload)
{
    (void)sto;
    start_step *a = payload;
    ee_engine *e = a->st->engine;
    ee_status s = ee__exec_change_from(e, a->r0, start_change, &a->sa, &a->r);
    if (s != EE_OK)
        return s;
    a->have_r = true;
    if (!a->sa.started)
        return EE_OK;
    ee__gateway_grant_spec spec = {a->r.id,     a->p,          a->r.workflow_id,
                                   a->route,    a->choice,     a->budget,
                                   a->r.deadline_ms + a->st->lease_ms};
    if ((s = ee__gateway_grant(e, &spec, a->token)) != EE_OK)
        a->grant_failed = true;
    else
        ee__exec_audit(e, &a->r, EE__AUDIT_EXEC_STARTED, NULL); /* commits with the start */
    return s;
}

static json_t *webhook_body(x_state *st, const x_rec *r, const char *token)
{
    json_t *body = json_deep_copy(r->input != NULL ? r->input : json_object());
    if (body == NULL)
        return NULL;
    json_t *ee = json_pack("{s:s, s:s}", "executionId", r->id, "workspaceId", r->workspace);
    const char *gw = ee__gateway_url(st->engine);
    if (gw != NULL)
        json_object_set_new(ee, "gatewayUrl", json_string(gw));
    if (token != NULL)
        json_object_set_new(ee, "gatewayToken", json_string(token));
    /* EXEC_CALLBACK_URL, else the embedded listener's callback route while
     * it listens (asked per run: the host may start it after the engine) */
    const char *cb = st->callback_url;
    if (cb == NULL)
        cb = ee__gateway_callback_url(st->engine);
    if (cb != NULL) {
        char key[65];
        if (ee__callback_key(st->engine, r->id, key) == EE_OK) {
            json_object_set_new(ee, "callbackUrl", json_string(cb));
            json_object_set_new(ee, "callbackKey", json_string(key));
        } else if (st->callback_url != NULL) {
            /* as configured; without an install secret no callback verifies */
            json_object_set_new(ee, "callbackUrl", json_string(cb));
        }
    }
    json_object_set_new(body, "ee", ee);
    return body;
}

static void run_one(x_state *st, const x_rec *r0)
{
    ee_engine *e = st->engine;
    ee_principal *p = ee__exec_principal_of(r0);
    ee__catalog_entry *entry = NULL;
    ee__cred_route *route = NULL;
    char token[EE__GATEWAY_TOKEN_SIZE] = "";
    char msg[EE__ERROR_MSG_MAX];
    x_outcome oc = {EE_OK, NULL, NULL, NULL};
    ee_status s = p != NULL ? ee__catalog_entry_get(e, p, r0->workflow_id, 0, &entry)
                            : EE_ENOMEM;
    if (s != EE_OK) {
        snprintf(msg, sizeof msg, "the workflow cannot be run any more: %s",
                 ee_error_last_message());
        oc = (x_outcome){s, NULL, msg, NULL};
        finish(st, r0, &oc);
        goto out;
    }
    ee__cred_choice choice = {r0->use_customer_key, r0->key_id[0] != '\0' ? r0->key_id : NULL};
    s = ee__cred_route_nodes(e, p, entry->requirements, entry->n_requirements, &choice, &route);
    if (s == EE_OK && !route->ready)
        s = ee__error(EE_ECREDENTIALS, "credentials the workflow needs went missing after it "
                                       "was queued (first: %s)",
                      route->n_gaps > 0 ? route->gaps[0].credential_name : "an unknown node");
    if (s != EE_OK) {
        snprintf(msg, sizeof msg, "%s", ee_error_last_message());
        oc = (x_outcome){s, NULL, msg, NULL};
        finish(st, r0, &oc);
        goto out;
    }
    /* the plan's per-run cap when it names one, else EXEC_RUN_BUDGET_MAX */
    int64_t cap = st->budget_max, plan_cap = -1;
    ee_status qs = ee__quota_run_budget_max(e, p, &plan_cap);
    if (qs == EE_ESTATE) {
        ee_error_clear(); /* no quota module: no plans */
    } else if (qs != EE_OK) {
        ee__log(ee__engine_logger(e), EE_LOG_WARN, "exec",
                "execution %s: reading the plan's per-run budget cap: %s (EXEC_RUN_BUDGET_MAX "
                "applies)", r0->id, ee_error_last_message());
        ee_error_clear();
    } else if (plan_cap >= 0) {
        cap = plan_cap;
    }
    int64_t budget = ee__exec_run_budget(entry->estimated_cost_nano, st->budget_factor, cap);
    start_step ss = {.st = st, .r0 = r0, .p = p, .route = route, .choice = &choice,
                     .budget = budget, .token = token, .sa = {ee_engine_now_ms(e), false}};
    s = ee__engine_atomic(e, start_and_grant, &ss);
    if (s == EE_OK && ss.sa.started)
        ee__exec_count_started(st);
    x_rec r = ss.r;
    if (ss.grant_failed) {
        /* the `running` write went with the grant (a custom backend's
         * stayed): the run fails without being sent */
        snprintf(msg, sizeof msg, "issuing the run's gateway token: %s", ee_error_last_message());
        oc = (x_outcome){s, NULL, msg, NULL};
        finish(st, r0, &oc);
        if (ss.have_r)
            ee__exec_rec_clear(&r);
        goto out;
    }
    if (s != EE_OK) {
        if (ss.have_r)
            ee__exec_rec_clear(&r);
        goto out; /* the item stays claimed: its lease runs out and it is claimed again */
    }
    if (!ss.sa.started) {
        if (x_final(r.status))
            ee__exec_account(st, &r); /* cancelled while queued */
        ee__exec_rec_clear(&r);
        goto out;
    }
    ee_n8n *n8n = ee__engine_n8n(e);
    json_t *body = webhook_body(st, &r, token);
    char *body_text = body != NULL ? ee__json_text(body, NULL) : NULL;
    json_decref(body);
    if (n8n == NULL || body_text == NULL) {
        oc = (x_outcome){n8n == NULL ? EE_ESTATE : EE_ENOMEM, NULL,
                         n8n == NULL ? "no n8n client is configured (N8N_API_KEY)"
                                     : "out of memory building the webhook body",
                         NULL};
        free(body_text);
        finish(st, &r, &oc);
        ee__exec_rec_clear(&r);
        goto out;
    }
    char *out = NULL;
    /* The transport retries, with backoff, only attempts it knows never
     * reached n8n (connection refused: ee_http_response_set_not_sent());
     * whatever fails after the request may have been received is never
     * sent again - n8n would run the workflow twice. */
    /* The run's timeout bounds the wait for the webhook's answer too (a
     * lastNode webhook answers when the workflow ends). */
    int64_t left = r.deadline_ms > 0 ? r.deadline_ms - ee_engine_now_ms(e) : 0;
    s = ee__n8n_trigger_webhook_within(n8n,
                                       entry->trigger.method != NULL ? entry->trigger.method
                                                                     : "POST",
                                       entry->trigger.path, body_text, left > 0 ? left : 1, &out);
    memset(body_text, 0, strlen(body_text)); /* it held the run's token */
    free(body_text);
    json_t *doc = s == EE_OK ? json_loads(out, 0, NULL) : NULL;
    if (s == EE_OK) {
        json_t *ans = json_object_get(doc, "body");
        const char *nid = json_string_value(json_object_get(doc, "executionId"));
        if (nid == NULL)
            nid = json_string_value(json_object_get(ans, "n8nExecutionId"));
        bool on_received = entry->trigger.response_mode != NULL &&
                           strcmp(entry->trigger.response_mode, "onReceived") == 0;
        if (is_running_answer(ans) || (on_received && !is_failed_answer(ans))) {
            if (nid != NULL) {
                n8n_id_arg na = {nid};
                (void)ee__exec_change(e, r.workspace, r.id, set_n8n_id, &na, NULL);
            }
            await_end(st, &r, nid, entry->n8n_workflow_id);
        } else if (is_failed_answer(ans)) {
            const char *m = json_string_value(json_object_get(ans, "error"));
            if (m == NULL)
                m = json_string_value(json_object_get(ans, "message"));
            oc = (x_outcome){EE_EUPSTREAM, NULL, m != NULL ? m : "the workflow reported a failure",
                             nid};
            finish(st, &r, &oc);
        } else {
            json_t *output = json_is_object(ans) ? json_deep_copy(ans) : json_incref(ans);
            if (json_is_object(output))
                json_object_del(output, "status");
            oc = (x_outcome){EE_OK, output, NULL, nid};
            finish(st, &r, &oc);
        }
    } else {
        char n8nmsg[600];
        n8n_message(out, n8nmsg, sizeof n8nmsg);
        switch (s) {
        case EE_ETIMEOUT:
            snprintf(msg, sizeof msg, "n8n did not answer within the run's timeout (%lld ms): %s",
                     (long long)r.timeout_ms, n8nmsg);
            break;
        case EE_ENETWORK:
            snprintf(msg, sizeof msg, "the connection to n8n failed after the request may have "
                                      "been received (not retried: %s)", n8nmsg);
            break;
        case EE_EPARSE:
            snprintf(msg, sizeof msg, "n8n's answer was not the JSON expected: %s", n8nmsg);
            break;
        case EE_ENOTFOUND:
            snprintf(msg, sizeof msg, "n8n has no such webhook (is the workflow active?): %s",
                     n8nmsg);
            break;
        default:
            snprintf(msg, sizeof msg, "%s", n8nmsg);
        }
        char *failed_id = NULL;
        if (s == EE_EUPSTREAM) /* n8n's generic 500: the workflow's own message instead */
            failed_execution_message(n8n, entry->n8n_workflow_id, r.id, msg, sizeof msg,
                                     &failed_id);
        oc = (x_outcome){s, NULL, msg, failed_id};
        finish(st, &r, &oc);
        free(failed_id);
    }
    json_decref(doc);
    ee_free(out);
    ee__exec_rec_clear(&r);
out:
    ee__cred_route_free(route);
    ee__catalog_entry_free(entry);
    ee_principal_free(p);
}

/* A record whose last worker died (its item claimed again, or the record
 * found running by a new claim). */
static void recover_one(x_state *st, const x_rec *r)
{
    if (r->n8n_id != NULL) {
        await_end(st, r, r->n8n_id, NULL); /* ask n8n; keep polling until it ends */
        return;
    }
    x_outcome oc = {EE_EUNKNOWN, NULL,
                    "interrupted: the engine stopped before the run's outcome was known", NULL};
    finish(st, r, &oc);
}

static void handle(x_state *st, x_slot *slot)
{
    ee_engine *e = st->engine;
    ee_storage *sto = ee__engine_storage(e);
    ee__queue_item item = slot->item;
    x_rec r;
    ee_status s = ee__exec_load(e, item.workspace, item.execution_id, &r);
    if (s == EE_ENOTFOUND) {
        usleep(X_ORPHAN_RECHECK_MS * 1000);
        s = ee__exec_load(e, item.workspace, item.execution_id, &r);
    }
    if (s == EE_ENOTFOUND) {
        /* Its submit is between its two writes, or died there. The first
         * claim keeps the item without renewing it: when its lease runs out
         * it is claimed again (a released claim would not count as an
         * attempt); a second claim that still finds no record drops it.
         * The submit's quota reservations come back with their lease. */
        if (item.attempts > 1)
            (void)ee__queue_done(sto, &item);
        ee_error_clear();
        return;
    }
    if (s != EE_OK) {
        ee__log(ee__engine_logger(e), EE_LOG_WARN, "exec", "execution %s: reading it: %s",
                item.execution_id, ee_error_last_message());
        (void)ee__queue_release(sto, &item, ee_engine_now_ms(e), st->poll_ms);
        return;
    }
    pthread_mutex_lock(&st->lock);
    slot->has_ticket = r.ticket_json != NULL && strlen(r.ticket_json) < sizeof slot->ticket_json;
    if (slot->has_ticket)
        snprintf(slot->ticket_json, sizeof slot->ticket_json, "%s", r.ticket_json);
    pthread_mutex_unlock(&st->lock);
    if (x_final(r.status))
        ee__exec_account(st, &r); /* ended, not yet accounted: finish that */
    else if (r.status == X_RUNNING)
        recover_one(st, &r);
    else
        run_one(st, &r);
    ee__exec_rec_clear(&r);
}

typedef struct {
    x_state *st;
    size_t i;
} worker_arg;

/* The claim and its backlog counter's return, in one transaction (one
 * commit). */
typedef struct claim_arg {
    const char *owner;
    int64_t now, lease_ms;
    ee__queue_item *item;
} claim_arg;

static ee_status claim_step(ee_storage *sto, void *payload)
{
    claim_arg *a = payload;
    return ee__queue_claim(sto, a->owner, a->now, a->lease_ms, a->item);
}

static void *worker_main(void *arg)
{
    x_state *st = ((worker_arg *)arg)->st;
    size_t i = ((worker_arg *)arg)->i;
    free(arg);
    x_slot *slot = &st->slots[i];
    char owner[128];
    snprintf(owner, sizeof owner, "%s worker %zu", st->owner, i);
    for (;;) {
        pthread_mutex_lock(&st->lock);
        bool closing = st->closing;
        uint64_t gen = st->kick_gen;
        pthread_mutex_unlock(&st->lock);
        if (closing)
            break;
        ee__queue_item item;
        pthread_rwlock_rdlock(&fork_lock);
        claim_arg ca = {owner, ee_engine_now_ms(st->engine), st->lease_ms, &item};
        /* not synced on its own: the start that follows is, and carries it
         * to the disk; a claim lost before that is claimed again, fresh,
         * and nothing had been sent */
        ee_status s = ee__engine_atomic_deferred(st->engine, claim_step,
                                                  &ca);
        pthread_rwlock_unlock(&fork_lock);
        if (s == EE_OK) {
            pthread_mutex_lock(&st->lock);
            slot->item = item;
            slot->busy = true;
            slot->has_ticket = false;
            pthread_mutex_unlock(&st->lock);
            atomic_fetch_add(&st->running, 1);
            handle(st, slot);
            atomic_fetch_sub(&st->running, 1);
            pthread_mutex_lock(&st->lock);
            slot->busy = false;
            pthread_mutex_unlock(&st->lock);
            continue;
        }
        if (s != EE_ENOTFOUND)
            ee__log(ee__engine_logger(st->engine), EE_LOG_WARN, "exec",
                    "claiming from the execution queue: %s", ee_error_last_message());
        ee_error_clear();
        timed_wait(st, &st->work, st->poll_ms, &st->kick_gen, gen);
    }
    return NULL;
}

/* The quota reservations of runs still waiting in the queue: admission
 * reserved them for the plan's runLeaseMs, and a run may wait longer than
 * that behind a busy pool. Every third of that lease (and at each round
 * while nothing waits) the keeper renews the ticket of each run that has
 * waited a third of it or more (a younger one is renewed by the pass after,
 * still within its lease). Every
 * process with workers does it for the whole shared queue: renewing twice
 * only extends the same lease; a run claimed or finished meanwhile is
 * renewed by its worker or no longer renewable (EE_ENOTFOUND/EE_ESTATE,
 * harmless). At most EXEC_QUEUE_MAX runs a pass. */
static void renew_waiting(x_state *st)
{
    ee_engine *e = st->engine;
    int64_t now = ee_engine_now_ms(e);
    if (now < st->waiting_renew_at)
        return;
    ee__queue_ref *refs = NULL;
    size_t n = 0;
    size_t max = st->queue_max > 0 ? (size_t)st->queue_max : 10000;
    ee_status s = ee__queue_waiting(ee__engine_storage(e), max, &refs, &n);
    if (s != EE_OK) {
        ee__log(ee__engine_logger(e), EE_LOG_WARN, "exec",
                "listing the waiting executions to renew their quota: %s",
                ee_error_last_message());
        ee_error_clear();
        return; /* again next round */
    }
    int64_t min_lease = INT64_MAX;
    for (size_t i = 0; i < n; i++) {
        x_rec r;
        if (ee__exec_load(e, refs[i].workspace, refs[i].execution_id, &r) != EE_OK) {
            ee_error_clear(); /* gone meanwhile */
            continue;
        }
        ee_quota_ticket t;
        if (r.status == X_PENDING && r.ticket_json != NULL &&
            ee_quota_ticket_from_json(r.ticket_json, &t) == EE_OK) {
            int64_t lease = ee__quota_ticket_lease_ms(&t);
            if (lease > 0 && lease < min_lease)
                min_lease = lease;
            /* admitted less than a third of its lease ago: fresh enough
             * until the next pass (a run that waits only briefly costs no
             * counter write) */
            s = lease > 0 && now - r.created_at < lease / 3 ? EE_OK : ee_quota_renew(e, &t);
            if (s != EE_OK && s != EE_ESTATE)
                ee__log(ee__engine_logger(e), EE_LOG_WARN, "exec",
                        "execution %s waited in the queue past its quota reservation's lease "
                        "(%s): its reservations expired before it ran", r.id,
                        ee_error_last_message());
        }
        ee_error_clear();
        ee__exec_rec_clear(&r);
    }
    free(refs);
    st->waiting_renew_at = min_lease == INT64_MAX ? now : now + min_lease / 3;
    atomic_store(&st->waiting_pass_at, now);
}

/* Renews the leases of what this engine's workers run: the queue items
 * and the quota reservations. */
static void renew_running(x_state *st)
{
    for (size_t i = 0; i < st->nthreads; i++) {
        pthread_mutex_lock(&st->lock);
        bool busy = st->slots[i].busy;
        ee__queue_item item = st->slots[i].item;
        char ticket[sizeof st->slots[i].ticket_json];
        bool has_ticket = st->slots[i].has_ticket;
        if (has_ticket)
            memcpy(ticket, st->slots[i].ticket_json, sizeof ticket);
        pthread_mutex_unlock(&st->lock);
        if (!busy)
            continue;
        ee_status s = ee__queue_renew(ee__engine_storage(st->engine), &item,
                                      ee_engine_now_ms(st->engine), st->lease_ms);
        if (s == EE_OK) {
            pthread_mutex_lock(&st->lock);
            if (st->slots[i].busy && strcmp(st->slots[i].item.id, item.id) == 0)
                st->slots[i].item = item;
            pthread_mutex_unlock(&st->lock);
        }
        ee_quota_ticket t;
        if (has_ticket && ee_quota_ticket_from_json(ticket, &t) == EE_OK)
            (void)ee_quota_renew(st->engine, &t);
        ee_error_clear();
    }
}

/* The lease keeper: every third of the lease it renews what this engine's
 * workers run (renew_running) and the quota reservations of runs waiting
 * in the queue (renew_waiting); while completion callbacks wait, it looks
 * every poll interval for their runs ended in other processes
 * (ee__exec_done_sweep). */
static void *keeper_main(void *arg)
{
    x_state *st = arg;
    int64_t renew_at = 0; /* monotonic: the next renewal of running items */
    bool waiting = false; /* completion callbacks wait for their runs */
    for (;;) {
        pthread_mutex_lock(&st->lock);
        bool closing = st->closing;
        uint64_t kgen = st->keeper_gen;
        pthread_mutex_unlock(&st->lock);
        if (closing)
            break;
        int64_t now = ee__mono_ms();
        if (now >= renew_at) {
            renew_at = now + st->lease_ms / 3;
            renew_running(st);
            if (st->workers > 0) /* a process that only submits leaves it to them */
                renew_waiting(st);
        }
        waiting = ee__exec_done_sweep(st);
        now = ee__mono_ms();
        int64_t sleep = renew_at - now;
        if (waiting && sleep > st->poll_ms)
            sleep = st->poll_ms;
        timed_wait(st, &st->stop, sleep > 0 ? sleep : 1, &st->keeper_gen, kgen);
    }
    return NULL;
}

/* Start the lease keeper once: with the workers, or alone for an engine
 * without workers whose submits wait for completion callbacks
 * (ee__exec_done_register). */
static ee_status keeper_ensure(x_state *st)
{
    pthread_mutex_lock(&st->lock);
    ee_status s = EE_OK;
    if (!st->keeper_started && !st->closing) {
        pthread_once(&fork_once, fork_init);
        if (pthread_create(&st->keeper, NULL, keeper_main, st) != 0)
            s = ee__error(EE_ENOMEM, "cannot start the execution lease keeper");
        else
            st->keeper_started = true;
    }
    pthread_mutex_unlock(&st->lock);
    return s;
}

ee_status ee__exec_workers_start(x_state *st)
{
    if (st->workers <= 0)
        return EE_OK;
    pthread_once(&fork_once, fork_init);
    st->slots = calloc((size_t)st->workers, sizeof *st->slots);
    st->threads = calloc((size_t)st->workers, sizeof *st->threads);
    if (st->slots == NULL || st->threads == NULL)
        return ee__error(EE_ENOMEM, "out of memory starting execution workers");
    for (size_t i = 0; i < (size_t)st->workers; i++) {
        worker_arg *a = malloc(sizeof *a);
        if (a == NULL)
            return ee__error(EE_ENOMEM, "out of memory starting execution workers");
        a->st = st;
        a->i = i;
        if (pthread_create(&st->threads[i], NULL, worker_main, a) != 0) {
            free(a);
            return ee__error(EE_ENOMEM, "cannot start execution worker %zu", i);
        }
        st->nthreads++;
    }
    ee_status s = keeper_ensure(st);
    if (s != EE_OK)
        return s;
    /* the results e-mails the runs queue go out from here too */
    return ee__email_worker_start(st->engine);
}

ee_status ee__exec_workers_ensure(x_state *st)
{
    pthread_mutex_lock(&st->lock);
    if (st->started || st->closing || st->workers <= 0) {
        pthread_mutex_unlock(&st->lock);
        return EE_OK;
    }
    st->started = true;
    pthread_mutex_unlock(&st->lock);
    /* Only the caller that flipped `started` gets here; stop() joins what it
     * made, also after a partial start. */
    ee_status s = ee__exec_workers_start(st);
    if (s != EE_OK)
        ee__log(ee__engine_logger(st->engine), EE_LOG_ERROR, "exec", "cannot start the workers: %s",
                ee_error_last_message());
    return s;
}

ee_status ee_exec_workers_start(ee_engine *engine)
{
    x_state *st = ee__exec_state(engine);
    if (st == NULL)
        return ee__error(EE_EINVAL, "ee_exec_workers_start: engine must not be NULL");
    return ee__exec_workers_ensure(st);
}

static void wake_watch(ee__hnode *n, void *arg)
{
    (void)arg;
    pthread_cond_broadcast(&EE__HTAB_ENTRY(n, x_watch, node)->cond);
}

void ee__exec_workers_stop(x_state *st)
{
    pthread_mutex_lock(&st->lock);
    st->closing = true;
    pthread_cond_broadcast(&st->work);
    pthread_cond_broadcast(&st->stop);
    ee__htab_each(&st->watches, wake_watch, NULL);
    pthread_mutex_unlock(&st->lock);
    for (size_t i = 0; i < st->nthreads; i++)
        pthread_join(st->threads[i], NULL);
    st->nthreads = 0;
    if (st->keeper_started)
        pthread_join(st->keeper, NULL);
    st->keeper_started = false;
    ee__email_worker_stop(st->engine);
}
