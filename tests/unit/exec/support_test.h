/*
 * Helpers for the tests of the execution pipeline's standalone pieces
 * (lib/exec/support.h): a config that knows their options (the engine's
 * own set plus ee__exec_support_options, the latter only while the exec
 * module does not list them yet), and an engine over it. Every helper
 * asserts (Criterion) and prints the library's message.
 */
#ifndef EE_TEST_EXEC_SUPPORT_H
#define EE_TEST_EXEC_SUPPORT_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <execengine/execengine.h>

#include "core/core.h"
#include "engine/engine.h"
#include "exec/support.h"
#include "exec/support_internal.h"

#define ST_SECRET "test-secret-0123456789abcdef0123456789"

static const ee__option_set *st_options(void)
{
    static const ee__option *flat[512];
    static ee__option_set set = {flat, 0};
    if (set.count == 0) {
        const ee__option_set *base = ee__engine_options();
        for (size_t i = 0; i < base->count; i++)
            flat[set.count++] = base->options[i];
        for (size_t j = 0; j < ee__exec_support_noptions; j++) {
            bool listed = false;
            for (size_t i = 0; i < base->count; i++)
                listed |= strcmp(base->options[i]->name, ee__exec_support_options[j].name) == 0;
            if (!listed)
                flat[set.count++] = &ee__exec_support_options[j];
        }
    }
    return &set;
}

static inline void st_set(ee_config *cfg, const char *key, const char *value)
{
    cr_assert_eq(ee_config_set(cfg, key, value), EE_OK, "ee_config_set(%s): %s", key,
                 ee_error_last_message());
}

/* A config with the test secret, the data dir, `storage_uri` (NULL:
 * memory:), memory counters, and extra key/value pairs ending in NULL. */
static inline ee_config *st_config(const char *storage_uri, const char *const *kv)
{
    ee_config *cfg = NULL;
    cr_assert_eq(ee__config_new_over(&cfg, st_options()), EE_OK, "%s", ee_error_last_message());
    st_set(cfg, "API_KEY_ENCRYPTION_SECRET", ST_SECRET);
    st_set(cfg, "EE_DATA_DIR", EE_SOURCE_DIR "/data");
    st_set(cfg, "EE_STORAGE_URI", storage_uri != NULL ? storage_uri : "memory:");
    st_set(cfg, "EE_COUNTERS_URI", "memory:");
    for (size_t i = 0; kv != NULL && kv[i] != NULL; i += 2)
        st_set(cfg, kv[i], kv[i + 1]);
    return cfg;
}

static inline ee_engine *st_engine(const char *storage_uri, const char *const *kv)
{
    ee_config *cfg = st_config(storage_uri, kv);
    ee_engine *e = NULL;
    ee_status st = ee_engine_open(&e, cfg);
    ee_config_free(cfg);
    cr_assert_eq(st, EE_OK, "ee_engine_open: %s (%s)", ee_status_name(st),
                 ee_error_last_message());
    return e;
}

static inline ee_principal *st_principal(const char *ws, const char *org)
{
    ee_principal *p = NULL;
    cr_assert_eq(ee_principal_new(&p, ws, "user-1", org), EE_OK, "%s", ee_error_last_message());
    return p;
}

#endif
