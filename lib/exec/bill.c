/* Step 8's billing: an ended run is booked once - its charge and parts on
 * its record, its month row and its user's usage row, and its customer
 * key's totals - in one storage transaction (lib/billing/billing.h says
 * why that makes it exact). */
#include <string.h>

#include "billing/billing.h"
#include "credentials/credentials.h"
#include "exec/exec_internal.h"
#include "storage/storage.h"

typedef struct {
    x_state *st;
    const char *workspace, *id;
    const x_rec *known; /* the first attempt's record, or NULL: read it */
    x_rec *rec; /* as stored after the scope */
    ee__storage_atomic_fn then;
    void *then_payload;
} bill_arg;

static ee_status bill_then(ee_storage *sto, const bill_arg *a, ee_status s)
{
    return s == EE_OK && a->then != NULL ? a->then(sto, a->then_payload) : s;
}

/* The customer key's totals (executions, tokensUsed, lastUsedAt), in the
 * booking's transaction: the record's `charged`, set by the same commit,
 * makes a repeated booking (recovery after a lost commit, however late)
 * count the key once - the key's own memory of the execution ids it
 * counted holds only the last EE__KEY_RECENT_EXECUTIONS. A key that cannot
 * be counted (deleted since) does not hold up the charge: logged. */
static void count_key(ee_engine *e, const x_rec *r)
{
    ee_principal *p = ee__exec_principal_of(r);
    ee_status s = p != NULL ? ee__cred_key_record_usage(e, p, r->key_id, r->id, r->tokens, NULL)
                            : ee__error(EE_EINVAL, "its principal cannot be rebuilt");
    if (s != EE_OK)
        ee__log(ee__engine_logger(e), EE_LOG_WARN, "exec",
                "execution %s: counting its customer key: %s", r->id, ee_error_last_message());
    ee_error_clear();
    ee_principal_free(p);
}

static ee_status bill_scope(ee_storage *sto, void *payload)
{
    bill_arg *a = payload;
    ee_engine *e = a->st->engine;
    ee__exec_rec_clear(a->rec);
    /* The first attempt books from the record as the caller knows it (just
     * written by the final write): the replace below is at its revision, so
     * if it moved on since, all this rolls back and the next attempt reads
     * it. */
    ee_status s = a->known != NULL ? ee__exec_rec_copy(a->rec, a->known)
                                   : ee__exec_load(e, a->workspace, a->id, a->rec);
    if (s != EE_OK)
        return s;
    x_rec *r = a->rec;
    /* booked before (a replay), not ended, or never started (nothing ran) */
    if (r->charged || !x_final(r->status) || r->started_at <= 0)
        return bill_then(sto, a, EE_OK);
    ee__billing_exec x = {.workspace = r->workspace,
                          .user_id = r->user_id != NULL ? r->user_id : "",
                          .workflow_id = r->workflow_id,
                          .execution_id = r->id,
                          .ended_at = r->completed_at,
                          .cost_nano = r->platform_cost_nano,
                          .tokens = r->tokens,
                          .exec_ms = r->exec_ms,
                          /* what the platform paid for is charged: also
                           * a customer-key run's calls on platform
                           * credentials (its search, say) */
                          .platform_key = !r->key_customer || r->platform_cost_nano > 0,
                          .completed = r->status == X_COMPLETED};
    ee__billing_charge c;
    s = ee__billing_apply(e, sto, &x, &c);
    if (s != EE_OK)
        return s;
    if (r->key_customer && r->key_id[0] != '\0')
        count_key(e, r);
    r->charged = true;
    snprintf(r->charge_month, sizeof r->charge_month, "%s", c.month);
    r->charge_cost = c.cost_nano;
    r->charge_markup = c.markup_nano;
    r->charge_allowance = c.allowance_used_nano;
    r->charge_charged = c.charged_nano;
    /* EE_ECONFLICT: someone came first, all rolls back */
    return bill_then(sto, a, ee__exec_replace(e, r));
}

static ee_status bill_attempt(int attempt, bool *final, void *payload)
{
    (void)final;
    bill_arg *a = payload;
    if (attempt > 0)
        a->known = NULL;
    /* deferred durability: the final record before it was synced, and a
     * lost booking leaves the queue item that makes recovery book again */
    return ee__engine_atomic_deferred(a->st->engine, bill_scope, a);
}

ee_status ee__exec_bill(x_state *st, const x_rec *r, ee__storage_atomic_fn then,
                        void *then_payload, x_rec *out)
{
    x_rec rec;
    memset(&rec, 0, sizeof rec);
    bill_arg a = {st, r->workspace, r->id, r->revision > 0 ? r : NULL, &rec, then, then_payload};
    ee_status s = ee__record_retry(bill_attempt, &a, "the execution's billing month");
    if (s == EE_OK && out != NULL)
        *out = rec;
    else
        ee__exec_rec_clear(&rec);
    return s;
}
