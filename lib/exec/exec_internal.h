/*
 * lib/exec/exec_internal.h - the execution pipeline's own files only
 * (module.c, record.c, submit.c, worker.c, exec_api.c). Other modules
 * reach executions through include/execengine/exec.h.
 *
 * An execution is a typed x_rec inside; JSON exists only at the door
 * (exec_api.c renders it) and through the record layer's field map when
 * it is stored (record.c).
 */
#ifndef EE_EXEC_EXEC_INTERNAL_H
#define EE_EXEC_EXEC_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "audit/audit.h"
#include "core/core.h"
#include "core/htab.h"
#include "engine/engine.h"
#include "exec/queue.h"
#include "exec/support.h"
#include "execengine/exec.h"
#include "execengine/storage.h"
#include "storage/storage.h"

#define X_COLL "workflowExecutions"
/* Most worker threads one engine runs (EXEC_WORKERS' maximum). */
#define X_WORKERS_MAX 10000

typedef enum {
    X_PENDING,
    X_RUNNING,
    X_COMPLETED,
    X_FAILED,
    X_CANCELLED,
} x_status;

const char *ee__exec_status_name(x_status s);
bool ee__exec_status_parse(const char *name, x_status *out);
static inline bool x_final(x_status s)
{
    return s == X_COMPLETED || s == X_FAILED || s == X_CANCELLED;
}

/* One execution record. Strings are owned (free with ee__exec_rec_clear). */
typedef struct x_rec {
    char id[EE_EXEC_ID_SIZE];
    int64_t revision;
    char workflow_id[EE_EXEC_ID_SIZE];
    char *workflow_name;
    char workspace[EE_STORAGE_WORKSPACE_MAX + 1];
    char *user_id;
    char *org_id;
    x_status status;
    json_t *input;            /* inputData (object) */
    json_t *output;           /* outputData, NULL when none or kept in the result store */
    bool has_ref;
    ee__result_ref ref;       /* outputRef */
    int64_t exec_ms;          /* executionTimeMs */
    /* apiKeyUsed */
    bool key_customer;
    char key_provider[32];
    char key_id[64];
    int64_t cost_nano;        /* every metered call */
    int64_t platform_cost_nano; /* of it, the calls on platform credentials (platformCost) */
    int64_t tokens;
    /* charge: booked once by the accounting step (bill.c), with its parts */
    bool charged;
    char charge_month[8];     /* the billing month it went to, "YYYY-MM" */
    int64_t charge_cost;      /* the platform's cost (0 for a customer key) */
    int64_t charge_markup;
    int64_t charge_allowance; /* taken from the month's free allowance */
    int64_t charge_charged;   /* cost + markup - allowance */
    bool email_sent;
    int64_t email_sent_at;
    char *error_message;
    char *n8n_id;
    char *idem_key;
    int64_t created_at, started_at, completed_at;
    /* "run": the pipeline's own, never rendered */
    char *ticket_json;        /* the quota ticket (ee_quota_ticket_json) */
    int64_t timeout_ms;
    int64_t deadline_ms;      /* set when the trigger is about to be sent */
    int fail_status;          /* the ee_status a run that did not complete ended with */
    bool use_customer_key;
    char *email_to;
    bool email_on_demand;     /* an e-mail was queued for it by ee_email_send_execution() */
} x_rec;

void ee__exec_rec_clear(x_rec *r);

/* Replace the stored record with `r` if it is still at r->revision (which
 * becomes the new one). EE_ECONFLICT when another writer came first. */
ee_status ee__exec_replace(ee_engine *engine, x_rec *r);


/* ---- the module's state (module.c) ------------------------------------------------ */

/* A completion callback waiting for its run: in x_state.dones by id, and
 * in the keeper's round (oldest first) that looks for runs other
 * processes ended (ee__exec_done_sweep). */
typedef struct x_done {
    ee__hnode node; /* in x_state.dones, keyed by id */
    struct x_done *prev, *next; /* x_state.done_first .. done_last */
    char id[EE_EXEC_ID_SIZE];
    char workspace[EE_PRINCIPAL_ID_MAX + 1];
    int64_t registered_ms; /* monotonic ms */
    int64_t seen_ms;       /* monotonic ms the keeper last looked (or registered_ms) */
    ee_exec_done_fn fn;
    void *payload;
} x_done;

/* The threads waiting for one execution's end in this process (waiters of
 * ee_exec_wait()/ee_exec_run(), a worker awaiting a run that continues in
 * n8n): in x_state.watches by id. An end wakes its own watchers only. */
typedef struct x_watch {
    ee__hnode node;
    char id[EE_EXEC_ID_SIZE];
    uint64_t gen;        /* bumped at each end of the run (under st->lock) */
    x_rec *settled;      /* the run's record as this process accounted it, or NULL */
    int users;           /* threads holding it */
    pthread_cond_t cond; /* with st->lock */
} x_watch;

typedef struct x_slot {
    bool busy;
    ee__queue_item item;
    char ticket_json[4097];
    bool has_ticket;
} x_slot;

/* ---- this engine's counts (stats.c) ----------------------------------------------- */

/* Final statuses as ee_exec_stats() counts them: a failed run whose status
 * is EE_ETIMEOUT counts as timed out, not failed. */
enum { X_END_COMPLETED, X_END_FAILED, X_END_CANCELLED, X_END_TIMED_OUT, X_END_COUNT };
/* Upper bounds (ms) of the executionTimeMs buckets; the last is +Inf. */
#define X_LAT_BUCKETS 10

/* Per process, since the engine opened (Prometheus counters): relaxed
 * atomics, no lock. */
typedef struct x_counts {
    _Atomic uint64_t submitted;
    _Atomic uint64_t started;
    _Atomic uint64_t ended[X_END_COUNT];
    _Atomic uint64_t lat_sum_ms[X_END_COUNT]; /* runs that started, by final status */
    _Atomic uint64_t lat_bucket[X_END_COUNT][X_LAT_BUCKETS + 1]; /* not cumulative */
} x_counts;

struct x_state;
void ee__exec_count_submitted(struct x_state *st);
void ee__exec_count_started(struct x_state *st);
/* `r` has just turned final through this engine (its final write applied). */
void ee__exec_count_ended(struct x_state *st, const x_rec *r);
/* Add the counts to ee_exec_stats()'s document. */
void ee__exec_counts_json(struct x_state *st, json_t *doc);

#define X_IDEM_STRIPES 64

typedef struct x_state {
    ee_engine *engine;
    /* options */
    int64_t workers;
    int64_t poll_ms;
    int64_t lease_ms;
    int64_t budget_factor;
    int64_t budget_max; /* nano-USD, EXEC_RUN_BUDGET_MAX */
    int64_t timeout_ms;
    int64_t queue_max;
    int64_t inline_max;
    int64_t retention_days;
    const char *callback_url;
    ee__secret_names *secret_names;
    char owner[96];

    pthread_mutex_t lock;     /* everything below */
    pthread_cond_t work;      /* a submit queued something / closing */
    pthread_cond_t stop;      /* closing (the lease keeper) */
    uint64_t kick_gen;
    bool closing;
    uint64_t ended_gen;       /* bumped at every end in this process */
    ee__htab watches;         /* x_watch by execution id */
    ee__htab dones; /* x_done by execution id */
    x_done *done_first, *done_last; /* the same, the keeper's round */
    uint64_t keeper_gen;      /* bumped to wake the keeper (a callback registered) */
    x_slot *slots;            /* one per worker */
    pthread_t *threads;
    size_t nthreads;
    pthread_t keeper;
    bool keeper_started;
    int64_t waiting_renew_at; /* the keeper's next pass over waiting runs' tickets (its own) */
    _Atomic int64_t waiting_pass_at; /* engine time the last pass started at (tests wait on it) */
    bool started;             /* the workers were started (lazily: ee__exec_workers_ensure) */
    atomic_int running;       /* executions a worker of this engine runs now */
    int64_t opened_at;        /* engine time at open: the counts run from it */
    x_counts counts;
    pthread_mutex_t idem[X_IDEM_STRIPES];
} x_state;

x_state *ee__exec_state(ee_engine *engine);

/* ---- records (record.c) ------------------------------------------------------------ */

/* Insert a new record (r->id set by the caller, revision out). EE_EEXISTS
 * when the workspace already has the idempotency key. */
ee_status ee__exec_insert(ee_engine *engine, x_rec *r);

/* The audit entry of a step of `r`: `action` is one of EE__AUDIT_EXEC_*
 * (lib/audit/audit.h), `actor` the user who asked (requested, cancelled)
 * or NULL for the engine (started, finished); the outcome of a finished run
 * follows its status. Requested, started and finished are written inside
 * the step's own transaction (submit, start, final write) and commit with
 * it; cancelled after its step. Never fails. */
void ee__exec_audit(ee_engine *engine, const x_rec *r, ee__audit_action action,
                    const char *actor);
/* Read one record of `workspace`. */
ee_status ee__exec_load(ee_engine *engine, const char *workspace, const char *id, x_rec *out);
/* The record of the workspace's idempotency key. EE_ENOTFOUND. */
ee_status ee__exec_find_idem(ee_engine *engine, const char *workspace, const char *key,
                             x_rec *out);

/* A transition: `fn` changes the typed record (read afresh on each
 * attempt); returning EE__RECORD_KEEP writes nothing. *out (may be NULL)
 * gets the record as written or as read. */
typedef ee_status (*x_change_fn)(x_rec *r, void *payload);
ee_status ee__exec_change(ee_engine *engine, const char *workspace, const char *id,
                          x_change_fn fn, void *payload, x_rec *out);

/* A deep copy of `src` (its JSON members shared: a change replaces them,
 * never edits them in place). EE_ENOMEM (dst left empty). */
ee_status ee__exec_rec_copy(x_rec *dst, const x_rec *src);
/* ee__exec_change() from `known`, the record as this thread last read or
 * wrote it, without reading it again: `fn` changes a copy, written at
 * known->revision. When the stored record moved on (EE_ECONFLICT), or `fn`
 * keeps it (EE__RECORD_KEEP: decided on what may be out of date) or
 * fails, it is all done again by ee__exec_change() on the stored record -
 * `fn` may be called twice, as there. */
ee_status ee__exec_change_from(ee_engine *engine, const x_rec *known, x_change_fn fn,
                               void *payload, x_rec *out);

/* The door's calls on one execution (exec_api.c): EE_EINVAL naming `what`
 * when engine, principal or execution_id is NULL, else ee__exec_load of the
 * principal's workspace. */
ee_status ee__exec_door_load(ee_engine *engine, const ee_principal *principal,
                             const char *execution_id, const char *what, x_rec *out);

/* The record as the door renders it (full: inputData/outputData too). */
json_t *ee__exec_render(const x_rec *r, bool full);
/* The record's charge member: stored (integers) or answered (USD too). */
json_t *ee__exec_charge_json(const x_rec *r, bool stored);
/* Decode a stored document. */
ee_status ee__exec_decode(const uint8_t *data, size_t len, const char *id, int64_t revision,
                          x_rec *out);
/* Decode a row of the executions collection (its id in hex). */
ee_status ee__exec_decode_row(const ee_storage_row *row, x_rec *out);

/* ---- the run (worker.c) ------------------------------------------------------------ */

ee_status ee__exec_workers_start(x_state *st);
void ee__exec_workers_stop(x_state *st);
/* Start the workers once, the first time something needs them (a submit,
 * a wait, ee_exec_workers_start()): an engine that never runs an execution
 * starts no thread, so a host's clock and log callbacks are called from its
 * own threads only until it does. EE_OK also when already started or
 * EXEC_WORKERS is 0. */
ee_status ee__exec_workers_ensure(x_state *st);
/* Wake the workers of this process (a local submit). */
void ee__exec_kick(x_state *st);
/* Execution `id` ended in this process: wake its watchers. */
void ee__exec_ended(x_state *st, const char *id);
/* `r` was accounted in this process (final, booked, its queue item gone):
 * wake its watchers with a copy of it (they need not read it back). */
void ee__exec_settled(x_state *st, const x_rec *r);
/* The record `w`'s run was settled with (ee__exec_settled), copied into
 * *out, if it is of `workspace`. */
bool ee__exec_watch_settled(x_state *st, x_watch *w, const char *workspace, x_rec *out);
/* Watch execution `id`'s end (ee__exec_ended); NULL when out of memory.
 * Release with ee__exec_unwatch(). */
x_watch *ee__exec_watch(x_state *st, const char *id);
void ee__exec_unwatch(x_state *st, x_watch *w);

/* The outcome of a run, to finish its record with. */
typedef struct x_outcome {
    ee_status status;         /* EE_OK: completed */
    json_t *output;           /* stolen; may be NULL */
    const char *message;      /* errorMessage for a failure */
    const char *n8n_id;       /* may be NULL */
} x_outcome;

/* Write the final state of a non-final record (revision-checked: the first
 * writer wins; *applied_out false when it had already ended). `known` (may
 * be NULL) is the record as the caller last read or wrote it: not read
 * again unless it moved on since (ee__exec_change_from). Usage from
 * the gateway, output cleaned of secrets and moved to the result store when
 * big. */
ee_status ee__exec_finish_write(x_state *st, const char *workspace, const char *id,
                                const x_rec *known, x_outcome *oc, bool *applied_out,
                                x_rec *out);
/* Book the ended run `r` into billing once (bill.c): its charge lands on
 * the stored record, in one transaction with the month and usage rows, and
 * with `then` (may be NULL: the run's release), called after the booking -
 * or after finding it booked before - in the same transaction. A run
 * already booked, or never started, is not booked again. *out (may be NULL)
 * gets the record as stored after it. EE_OK or the failure (logged by the
 * caller; the accounting is repeated by recovery). */
ee_status ee__exec_bill(x_state *st, const x_rec *r, ee__storage_atomic_fn then,
                        void *then_payload, x_rec *out);
/* Everything after the final write, each step idempotent: quota finished,
 * the charge and the customer key's totals booked (ee__exec_bill), gateway
 * token revoked, queue item deleted, the done callback called (once, in
 * this process), waiters woken. */
void ee__exec_account(x_state *st, const x_rec *r);

/* The principal a record was made for (its workspace, user, organisation),
 * owned by the caller (ee_principal_free()); NULL when it cannot be built
 * (out of memory, ids no longer valid: the caller logs or skips). */
ee_principal *ee__exec_principal_of(const x_rec *r);
/* The gateway budget of one run, nano-USD: the entry's estimate times
 * `factor`, at most `cap`; `cap` when there is no estimate (<= 0) or the
 * product overflows. Never unbounded (never -1). */
int64_t ee__exec_run_budget(int64_t estimate_nano, int64_t factor, int64_t cap);

/* Register the done callback of an execution in `workspace` (no-op for a
 * NULL fn). Its run may end here (ee__exec_done_call() from the account)
 * or in another process sharing the storage: the lease keeper looks for
 * those (ee__exec_done_sweep(); started here for an engine without
 * workers). */
void ee__exec_done_register(x_state *st, const char *id, const char *workspace,
                            ee_exec_done_fn fn, void *payload);
/* Take the done callback of r's run, if any, and call it with r. */
void ee__exec_done_call(x_state *st, const x_rec *r);
/* Drop the done callback of `id` without calling it (its submit failed). */
void ee__exec_done_forget(x_state *st, const char *id);
/* The keeper's pass: the callbacks of runs that ended elsewhere. Returns
 * whether callbacks are still waiting. */
bool ee__exec_done_sweep(x_state *st);

/* The status a final record reports (ee_exec_wait/run). */
ee_status ee__exec_final_status(const x_rec *r);

#endif
