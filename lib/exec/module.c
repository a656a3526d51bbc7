/* The execution pipeline's per-engine state: its options, the worker pool
 * started at the first use (a submit, a wait, ee_exec_workers_start()) and
 * stopped at close (docs/execution.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exec/exec_internal.h"
#include "exec/support_internal.h"

x_state *ee__exec_state(ee_engine *engine)
{
    return engine == NULL ? NULL : ee__engine_module(engine, EE__MOD_EXEC);
}

static void free_done(ee__hnode *n)
{
    free(EE__HTAB_ENTRY(n, x_done, node));
}

static void state_free(x_state *st)
{
    if (st == NULL)
        return;
    ee__htab_clear(&st->dones, free_done);
    st->done_first = st->done_last = NULL;
    ee__htab_clear(&st->watches, NULL); /* empty: every watcher has returned */
    ee__secret_names_free(st->secret_names);
    free(st->slots);
    free(st->threads);
    for (int i = 0; i < X_IDEM_STRIPES; i++)
        pthread_mutex_destroy(&st->idem[i]);
    pthread_cond_destroy(&st->work);
    pthread_cond_destroy(&st->stop);
    pthread_mutex_destroy(&st->lock);
    free(st);
}

static ee_status exec_open(ee_engine *engine, void **state_out)
{
    *state_out = NULL;
    x_state *st = calloc(1, sizeof *st);
    if (st == NULL)
        return ee__error(EE_ENOMEM, "out of memory opening the execution module");
    st->engine = engine;
    pthread_mutex_init(&st->lock, NULL);
    pthread_cond_init(&st->work, NULL);
    pthread_cond_init(&st->stop, NULL);
    for (int i = 0; i < X_IDEM_STRIPES; i++)
        pthread_mutex_init(&st->idem[i], NULL);
    atomic_init(&st->running, 0);
    st->opened_at = ee_engine_now_ms(engine);
    const ee_config *cfg = ee__engine_config(engine);
    st->workers = ee__config_int(cfg, "EXEC_WORKERS");
    /* MAX_CONCURRENT_EXECUTIONS goes up to 10^6 (a per-workspace cap); as a
     * thread count it is held to EXEC_WORKERS' own maximum */
    if (st->workers < 0)
        st->workers = ee__config_int(cfg, "MAX_CONCURRENT_EXECUTIONS");
    if (st->workers > X_WORKERS_MAX)
        st->workers = X_WORKERS_MAX;
    st->poll_ms = ee__config_int(cfg, "EXEC_POLL_MS");
    st->lease_ms = ee__config_int(cfg, "EXEC_LEASE_MS");
    st->budget_factor = ee__config_int(cfg, "EXEC_BUDGET_FACTOR");
    st->budget_max = ee__config_int(cfg, "EXEC_RUN_BUDGET_MAX");
    st->timeout_ms = ee__config_int(cfg, "EXEC_TIMEOUT_MS");
    st->queue_max = ee__config_int(cfg, "EXEC_QUEUE_MAX");
    st->inline_max = ee__config_int(cfg, "EXEC_OUTPUT_INLINE_MAX");
    st->retention_days = ee__config_int(cfg, "RESULT_RETENTION_DAYS");
    st->callback_url = ee__config_text(cfg, "EXEC_CALLBACK_URL");
    snprintf(st->owner, sizeof st->owner, "pid %ld engine %p", (long)getpid(), (void *)engine);
    ee_status s = ee__secret_names_parse(ee__config_text(cfg, "EXEC_SECRET_FIELDS"),
                                         &st->secret_names);
    if (s != EE_OK) {
        state_free(st);
        return s;
    }
    *state_out = st;
    return EE_OK;
}

static void exec_close(void *state)
{
    x_state *st = state;
    if (st == NULL)
        return;
    /* Workers finish the step they are in (a webhook call in flight is
     * waited for, up to its timeout) and stop; executions still running
     * keep their queue item, whose lease runs out: recovery resolves them
     * in whichever process claims them next. */
    ee__exec_workers_stop(st);
    state_free(st);
}

static const ee__option exec_options[] = {
    EE__OPTION("EXEC_WORKERS", EE__OPT_INT, "-1", -1, X_WORKERS_MAX,
               "Execution workers this engine runs (-1: MAX_CONCURRENT_EXECUTIONS, at most "
               "10000; 0: this process only submits, others run)"),
    EE__OPTION("EXEC_POLL_MS", EE__OPT_INT, "1000", 10, 3600000,
               "How often idle workers look for executions other processes queued, ms"),
    EE__OPTION("EXEC_LEASE_MS", EE__OPT_INT, "30000", 1000, 3600000,
               "Lease of a claimed execution, renewed while it runs; a dead worker's "
               "executions are recovered after it, ms"),
    EE__OPTION("EXEC_BUDGET_FACTOR", EE__OPT_INT, "3", 1, 1000,
               "A run's metered budget: its estimated cost times this factor"),
    EE__OPTION("EXEC_RUN_BUDGET_MAX", EE__OPT_MONEY, "1", 0, INT64_C(1000000000000000),
               "Most a run may spend through the gateway, USD (up to 9 decimals): the cap of "
               "estimate x EXEC_BUDGET_FACTOR, and the budget of a run without an estimate; a "
               "plan's runBudgetMaxNanoUsd replaces it"),
    EE__OPTION("EXEC_TIMEOUT_MS", EE__OPT_INT, "300000", 1000, 86400000,
               "Default timeout of one execution (a request's timeoutMs overrides it), ms"),
    EE__OPTION("EXEC_QUEUE_MAX", EE__OPT_INT, "10000", 1, 100000000,
               "Most executions waiting in the queue; past it a submit is refused (EE_EBUSY)"),
    EE__OPTION("EXEC_OUTPUT_INLINE_MAX", EE__OPT_INT, "262144", 0, 16000000,
               "Largest output kept in its execution record; bigger ones go to the result "
               "store, bytes"),
    EE__OPTION("EXEC_CALLBACK_URL", EE__OPT_URL, NULL, 1, EE__OPT_MAX_URL,
               "URL at which the host receives workflows' signed completion callbacks "
               "(given to each run as ee.callbackUrl; unset: the embedded gateway listener's "
               "<listener>/_ee/callback while it runs, else none)"),
    EE__EXEC_SUPPORT_OPTIONS,
};

const ee__module ee__exec_module = {
    "exec", exec_options, sizeof exec_options / sizeof exec_options[0], NULL,
    exec_open, exec_close,
};
