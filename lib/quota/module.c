/* The quota module's per-engine state: opened and closed by ee_engine_open()
 * and ee_engine_close() (see ee__module in engine/engine.h). It reads
 * plans.json from EE_DATA_DIR and the config defaults, and keeps the
 * organisations it has seen (their limits and alert memory). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/data.h"
#include "engine/engine.h"
#include "quota/quota_internal.h"

q_state *ee__quota_state(ee_engine *engine)
{
    return engine == NULL ? NULL : ee__engine_module(engine, EE__MOD_QUOTA);
}

/* Without a plans file (an engine embedded without its data directory)
 * one plan applies: seed 2's 1000 predictions per 30 days. */
static ee_status builtin_plans(q_file *f)
{
    f->plans = calloc(1, sizeof *f->plans);
    if (f->plans == NULL)
        return ee__error(EE_ENOMEM, "out of memory opening the quota module");
    q_plan *p = &f->plans[0];
    snprintf(p->name, sizeof p->name, "free");
    for (int i = 0; i < Q_L_COUNT; i++) {
        p->limit[i] = Q_UNLIMITED;
        p->mult[i] = Q_MULT_ONE;
    }
    p->limit[Q_L_PRED] = 1000;
    p->has[Q_L_PRED] = true;
    p->period = Q_PERIOD_ROLLING;
    p->active = true;
    p->run_budget_max = -1;
    f->nplans = 1;
    return EE_OK;
}

/* Whether EE_DATA_DIR is set and simply has no plans.json. */
static bool plans_missing_from_data_dir(const ee_config *cfg)
{
    int set = 0;
    const char *dir = ee__config_text(cfg, "EE_DATA_DIR");
    if (ee_config_is_set(cfg, "EE_DATA_DIR", &set) != EE_OK || !set || dir == NULL)
        return false;
    char path[4200];
    snprintf(path, sizeof path, "%s/plans.json", dir);
    struct stat sb;
    return stat(path, &sb) != 0 && errno == ENOENT;
}

static ee_status quota_open(ee_engine *engine, void **state_out)
{
    *state_out = NULL;
    q_state *st = calloc(1, sizeof *st);
    if (st == NULL)
        return ee__error(EE_ENOMEM, "out of memory opening the quota module");
    st->engine = engine;
    atomic_init(&st->gen, 1);
    st->opened_at = ee_engine_now_ms(engine);
    pthread_mutex_init(&st->lock, NULL);
    pthread_rwlock_init(&st->alert_lock, NULL);
    const ee_config *cfg = ee__engine_config(engine);
    st->cfg_rate = ee__config_int(cfg, "MAX_EXECUTIONS_PER_USER_PER_HOUR");
    st->cfg_conc = ee__config_int(cfg, "MAX_CONCURRENT_EXECUTIONS");
    st->billing_day = ee__config_int(cfg, "BILLING_CYCLE_DAY");
    /* plans.json from EE_DATA_DIR, the installed share/execengine, or the
     * copy built into the library (core/data.h). */
    char *text = NULL;
    size_t len = 0;
    const char *origin = NULL;
    ee_status s = ee__data_read(cfg, "plans.json", &text, &len, &origin);
    if (s == EE_EIO && plans_missing_from_data_dir(cfg))
        s = EE_ENOTFOUND; /* a data dir made for other files: tolerated, with a warning */
    if (s == EE_ENOTFOUND) {
        ee_error_clear();
        ee__log(ee__engine_logger(engine), EE_LOG_WARN, "quota",
                "no plans.json: the built-in plan \"free\" (1000 predictions per 30 days) "
                "applies");
        ee__quota_file_defaults(&st->file);
        s = builtin_plans(&st->file);
    } else if (s == EE_OK) {
        char label[64];
        snprintf(label, sizeof label, "plans.json (%s)", origin != NULL ? origin : "?");
        s = ee__quota_file_load(&st->file, text, len, label);
    }
    free(text);
    if (s != EE_OK) {
        pthread_mutex_destroy(&st->lock);
        pthread_rwlock_destroy(&st->alert_lock);
        free(st);
        return s;
    }
    *state_out = st;
    return EE_OK;
}

static void free_org(ee__hnode *n)
{
    free(EE__HTAB_ENTRY(n, q_org, node));
}

static void quota_close(void *state)
{
    q_state *st = state;
    if (st == NULL)
        return;
    ee__htab_clear(&st->orgs, free_org);
    ee__quota_file_free(&st->file);
    pthread_mutex_destroy(&st->lock);
    pthread_rwlock_destroy(&st->alert_lock);
    free(st);
}

ee_status ee_quota_set_alert_callback(ee_engine *engine, ee_quota_alert_fn fn, void *payload)
{
    q_state *st = ee__quota_state(engine);
    if (st == NULL)
        return ee__error(EE_EINVAL, "ee_quota_set_alert_callback: engine must not be NULL");
    /* The write lock waits for callbacks in progress: once this returns,
     * the old callback is not running and will not be called again. */
    pthread_rwlock_wrlock(&st->alert_lock);
    st->alert_fn = fn;
    st->alert_payload = payload;
    pthread_rwlock_unlock(&st->alert_lock);
    return EE_OK;
}

static const ee__option quota_options[] = {
    EE__OPTION("MAX_EXECUTIONS_PER_USER_PER_HOUR", EE__OPT_INT, "50", 0, 1000000000,
               "Default per-user limit of executions in any 60-minute window"),
    EE__OPTION("MAX_CONCURRENT_EXECUTIONS", EE__OPT_INT, "10", 1, 1000000,
               "Default cap of executions running at once per workspace"),
    EE__OPTION("BILLING_CYCLE_DAY", EE__OPT_INT, "1", 1, 28,
               "Day of the month billing periods start"),
};

const ee__module ee__quota_module = {
    "quota", quota_options, sizeof quota_options / sizeof quota_options[0], NULL,
    quota_open, quota_close,
};
