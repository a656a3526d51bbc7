/*
 * The registry: every module the engine assembles, once. The option set the
 * config works over is gathered from it here, so core never names a module
 * (ee_config_new() and ee_config_options_json() live here for that reason).
 */
#include "engine/engine.h"

#include <pthread.h>

static const ee__module *const modules[EE__MOD_COUNT] = {
    [EE__MOD_AUDIT] = &ee__audit_module,
    [EE__MOD_CREDENTIALS] = &ee__credentials_module,
    [EE__MOD_CATALOG] = &ee__catalog_module,
    [EE__MOD_QUOTA] = &ee__quota_module,
    [EE__MOD_GATEWAY] = &ee__gateway_module,
    [EE__MOD_BILLING] = &ee__billing_module,
    [EE__MOD_NOTIFY] = &ee__notify_module,
    [EE__MOD_EXEC] = &ee__exec_module,
};

const ee__module *ee__engine_registry(int id)
{
    return id >= 0 && id < EE__MOD_COUNT ? modules[id] : NULL;
}

/* Room for every option. Gathering stops at the limit; the engine's test
 * engine_registry.every_option_is_listed_once_from_its_modules_table
 * fails, not a host, if the modules ever outgrow it. */
#define MAX_OPTIONS 128

static const ee__option *flat[MAX_OPTIONS];
static ee__option_set all = {flat, 0};
static pthread_once_t gathered = PTHREAD_ONCE_INIT;

static void add_module(const ee__module *m)
{
    for (size_t i = 0; i < m->noptions && all.count < MAX_OPTIONS; i++)
        flat[all.count++] = &m->options[i];
}

static void gather(void)
{
    add_module(&ee__engine_own_module);
    for (int id = 0; id < EE__MOD_COUNT; id++)
        add_module(modules[id]);
}

const ee__option_set *ee__engine_options(void)
{
    pthread_once(&gathered, gather);
    return &all;
}

ee_status ee_config_new(ee_config **out)
{
    return ee__config_new_over(out, ee__engine_options());
}

ee_status ee_config_options_json(char **out)
{
    return ee__config_options_json_over(out, ee__engine_options());
}

ee_status ee__engine_config_resolve(ee_config *cfg)
{
    /* The modules' rules first (the encryption secret's alias), then the
     * engine's own (DATABASE_* into EE_STORAGE_URI): the order the checks
     * have always run in, so a config with two problems names the same one. */
    for (int id = 0; id < EE__MOD_COUNT; id++)
        if (modules[id]->resolve != NULL) {
            ee_status st = modules[id]->resolve(cfg);
            if (st != EE_OK)
                return st;
        }
    return ee__engine_own_module.resolve(cfg);
}
