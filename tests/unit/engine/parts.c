/*
 * ee_engine_open_parts(): the version rule of ee_engine_parts, what a NULL
 * field means, the host's clock; and the registry the engine is assembled
 * from (every option comes from exactly one module's table).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "counting_storage.h"
#include "engine/engine.h"
#include "engine_fixture.h"

Test(engine_parts, version_zero_or_newer_is_refused_before_anything_opens)
{
    counting_storage *c = NULL;
    ee_storage *mine = counting_storage_new(&c);
    ee_config *cfg = ee_test_config_new(NULL, NULL, NULL);
    unsigned bad[] = {0, EE_ENGINE_PARTS_VERSION + 1};
    for (size_t i = 0; i < 2; i++) {
        ee_engine_parts parts = {.version = bad[i], .storage = mine};
        ee_engine *e = (ee_engine *)&parts; /* must be reset to NULL */
        cr_expect_eq(ee_engine_open_parts(&e, cfg, &parts), EE_EVERSION, "version %u", bad[i]);
        cr_expect_null(e);
        char want[128];
        snprintf(want, sizeof want,
                 "ee_engine_parts version %u is not supported (this library knows 1 to %d)",
                 bad[i], EE_ENGINE_PARTS_VERSION);
        cr_expect_str_eq(ee_error_last_message(), want);
    }
    cr_expect_eq(atomic_load(&c->inserts) + atomic_load(&c->gets) + atomic_load(&c->queries), 0,
                 "a refused open touches no part");
    cr_expect_eq(ee_engine_open_parts(NULL, cfg, NULL), EE_EINVAL);
    ee_engine *e = NULL;
    cr_expect_eq(ee_engine_open_parts(&e, NULL, NULL), EE_EINVAL);
    ee_config_free(cfg);
    ee_storage_free(mine);
}

static int64_t fixed_clock(void *payload)
{
    return *(const int64_t *)payload;
}

Test(engine_parts, null_fields_come_from_the_config_and_the_clock_is_the_hosts)
{
    int64_t now = INT64_C(1234567890123);
    ee_config *cfg = ee_test_config_new(NULL, NULL, NULL);
    ee_engine_parts parts = {.version = EE_ENGINE_PARTS_VERSION, .clock = fixed_clock,
                             .clock_payload = &now};
    ee_engine *e = NULL;
    cr_assert_eq(ee_engine_open_parts(&e, cfg, &parts), EE_OK, "%s", ee_error_last_message());
    cr_expect_eq(ee_engine_now_ms(e), now);
    /* storage and counters from the config, as ee_engine_open() */
    cr_expect_str_eq(ee_storage_backend_name(ee__engine_storage(e)), "memory");
    char *out = NULL;
    cr_assert_eq(ee_engine_summary_json(e, &out), EE_OK);
    cr_expect_not_null(strstr(out, "\"storage\":{\"uri\":\"memory:\""), "%s", out);
    ee_free(out);
    cr_expect_null(ee__engine_n8n(e), "no N8N_API_KEY, no client given: none");
    ee_engine_close(e);

    /* NULL parts: exactly ee_engine_open() */
    cr_assert_eq(ee_engine_open_parts(&e, cfg, NULL), EE_OK, "%s", ee_error_last_message());
    cr_expect_neq(ee_engine_now_ms(e), now);
    ee_engine_close(e);
    ee_config_free(cfg);
}

/* ---- the registry ------------------------------------------------------------ */

static size_t table_holding(const char *name, const ee__module **owner)
{
    size_t found = 0;
    const ee__module *all[EE__MOD_COUNT + 1];
    all[0] = &ee__engine_own_module;
    for (int id = 0; id < EE__MOD_COUNT; id++)
        all[id + 1] = ee__engine_registry(id);
    for (size_t m = 0; m < EE__MOD_COUNT + 1; m++)
        for (size_t i = 0; i < all[m]->noptions; i++)
            if (strcmp(all[m]->options[i].name, name) == 0) {
                found++;
                *owner = all[m];
            }
    return found;
}

Test(engine_registry, every_option_is_listed_once_from_its_modules_table)
{
    const ee__option_set *set = ee__engine_options();
    size_t total = ee__engine_own_module.noptions;
    for (int id = 0; id < EE__MOD_COUNT; id++)
        total += ee__engine_registry(id)->noptions;
    cr_assert_eq(set->count, total, "every table's options are gathered (%zu of %zu)",
                 set->count, total);
    for (size_t i = 0; i < set->count; i++) {
        const ee__module *owner = NULL;
        cr_expect_eq(table_holding(set->options[i]->name, &owner), 1, "%s",
                     set->options[i]->name);
    }
    /* options live next to the module that uses them */
    const struct {
        const char *option, *module;
    } homes[] = {
        {"SCHEMA_FORMAT_ASSERT", "catalog"},  {"BILLING_CYCLE_DAY", "quota"},
        {"MAX_CONCURRENT_EXECUTIONS", "quota"}, {"PLATFORM_SERPER_KEY", "credentials"},
        {"OPENROUTER_API_URL", "credentials"}, {"FLOWISE_SECRETKEY_OVERWRITE", "credentials"},
        {"EE_STORAGE_URI", "engine"},          {"SMTP_HOST", "engine"},
        {"AUDIT_RETENTION_DAYS", "audit"},
        {"N8N_API_KEY", "engine"},
    };
    for (size_t i = 0; i < sizeof homes / sizeof homes[0]; i++) {
        const ee__module *owner = NULL;
        cr_assert_eq(table_holding(homes[i].option, &owner), 1);
        cr_expect_str_eq(owner->name, homes[i].module, "%s", homes[i].option);
    }
    char *out = NULL;
    cr_assert_eq(ee_config_options_json(&out), EE_OK);
    json_t *list = json_loads(out, 0, NULL);
    ee_free(out);
    cr_expect_eq(json_array_size(list), set->count, "the listing is the registry's");
    json_decref(list);
}

Test(engine_parts, a_failed_open_leaves_the_hosts_parts_alone)
{
    counting_storage *c = NULL;
    ee_storage *mine = counting_storage_new(&c);
    ee_config *cfg = ee_test_config_new(NULL, NULL, NULL);
    /* the credentials module refuses to open without its secret */
    cr_assert_eq(ee_config_unset(cfg, "API_KEY_ENCRYPTION_SECRET"), EE_OK);
    ee_test_config_set(cfg, "EE_COUNTERS_URI", "memory:");
    ee_engine_parts parts = {.version = EE_ENGINE_PARTS_VERSION, .storage = mine};
    ee_engine *e = NULL;
    cr_expect_eq(ee_engine_open_parts(&e, cfg, &parts), EE_EINVAL);
    cr_expect_null(e);
    cr_expect_not_null(strstr(ee_error_last_message(), "API_KEY_ENCRYPTION_SECRET"), "%s",
                       ee_error_last_message());
    /* the host's storage is still open and still the host's to free */
    uint64_t n = 1;
    cr_expect_eq(ee_storage_count(mine, "workflowCatalog", NULL, NULL, &n), EE_OK,
                 "%s", ee_error_last_message());
    cr_expect_eq(n, 0);
    ee_config_free(cfg);
    ee_storage_free(mine);
}

Test(engine_parts, a_hosts_storage_needs_counters_named)
{
    counting_storage *c = NULL;
    ee_storage *mine = counting_storage_new(&c);
    /* a config whose own storage is a database: its counters would be
     * "storage:" on it, a database the engine does not use */
    char dir[64], uri[128];
    snprintf(dir, sizeof dir, "/tmp/ee-engine-parts-%d", (int)getpid());
    snprintf(uri, sizeof uri, "sqlite://%s/never.db", dir);
    ee_config *cfg = ee_test_config_new(uri, NULL, NULL);
    cr_assert_eq(ee_config_unset(cfg, "EE_COUNTERS_URI"), EE_OK);
    ee_engine_parts parts = {.version = EE_ENGINE_PARTS_VERSION, .storage = mine};
    ee_engine *e = NULL;
    /* neither host counters nor EE_COUNTERS_URI: the engine cannot know
     * whether other processes share the host's storage, so it refuses
     * rather than count per process */
    cr_expect_eq(ee_engine_open_parts(&e, cfg, &parts), EE_EINVAL);
    cr_expect_null(e);
    cr_expect_not_null(strstr(ee_error_last_message(), "EE_COUNTERS_URI"), "%s",
                       ee_error_last_message());
    /* named: memory: counters in this process, the config's database untouched */
    ee_test_config_set(cfg, "EE_COUNTERS_URI", "memory:");
    cr_assert_eq(ee_engine_open_parts(&e, cfg, &parts), EE_OK, "%s", ee_error_last_message());
    cr_expect_str_eq(ee_counters_backend_name(ee__engine_counters(e)), "memory");
    struct stat sb;
    cr_expect_neq(stat(dir, &sb), 0, "the config's storage was never opened");
    ee_engine_close(e);
    ee_config_free(cfg);
    ee_storage_free(mine);
}
