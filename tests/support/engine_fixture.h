/*
 * tests/support/engine_fixture.h - open an engine the way every test needs
 * one: a fixed test encryption secret (the credentials module refuses to
 * open without API_KEY_ENCRYPTION_SECRET), EE_DATA_DIR pointing at the
 * source tree's data/ folder, a storage URI (memory: by default) and an
 * optional injected clock.
 *
 *   ee_engine *e = ee_test_engine_open(NULL, NULL, NULL);          // memory:
 *   ee_engine *e = ee_test_engine_open("sqlite:///tmp/x/t.db", clk, &now);
 *
 *   // more options: build the config, change it, then open it
 *   ee_config *cfg = ee_test_config_new("memory:", NULL, NULL);
 *   ee_test_config_set(cfg, "PLATFORM_SERPER_KEY", "...");
 *   ee_engine *e = ee_test_engine_open_config(cfg);   // frees cfg
 *
 * Every helper asserts (Criterion) on failure and prints the library's
 * message, so a test can use the result directly. Needs EE_SOURCE_DIR
 * (defined for every unit test by tests/CMakeLists.txt).
 */
#ifndef EE_TEST_ENGINE_FIXTURE_H
#define EE_TEST_ENGINE_FIXTURE_H

#include <criterion/criterion.h>

#include <execengine/execengine.h>

#ifndef EE_SOURCE_DIR
#  error "engine_fixture.h needs EE_SOURCE_DIR (the source tree's root)"
#endif

/* The fixed secret test engines encrypt with (>= 32 bytes). */
#define EE_TEST_ENCRYPTION_SECRET "test-secret-0123456789abcdef0123456789"
/* The source tree's data directory (integrations.json, prices.json ...). */
#define EE_TEST_DATA_DIR EE_SOURCE_DIR "/data"

/* Set an option or fail the test with the library's message. */
static inline void ee_test_config_set(ee_config *cfg, const char *key, const char *value)
{
    ee_status st = ee_config_set(cfg, key, value);
    cr_assert_eq(st, EE_OK, "ee_config_set(%s): %s", key, ee_error_last_message());
}

/* A new config with the test secret, the data dir, `storage_uri` (NULL
 * means "memory:") and `clock` (NULL keeps the system clock; `clock_payload`
 * must outlive the engine). Owned by the caller (ee_config_free(), or pass
 * it to ee_test_engine_open_config()). */
static inline ee_config *ee_test_config_new(const char *storage_uri, ee_clock_fn clock,
                                            void *clock_payload)
{
    ee_config *cfg = NULL;
    cr_assert_eq(ee_config_new(&cfg), EE_OK, "ee_config_new: %s", ee_error_last_message());
    ee_test_config_set(cfg, "API_KEY_ENCRYPTION_SECRET", EE_TEST_ENCRYPTION_SECRET);
    ee_test_config_set(cfg, "EE_DATA_DIR", EE_TEST_DATA_DIR);
    ee_test_config_set(cfg, "EE_STORAGE_URI", storage_uri != NULL ? storage_uri : "memory:");
    if (clock != NULL)
        cr_assert_eq(ee_config_set_clock(cfg, clock, clock_payload), EE_OK);
    return cfg;
}

/* Open an engine from `cfg` and free cfg (the engine keeps its own copy).
 * Fails the test if the open fails. Close it with ee_engine_close(). */
static inline ee_engine *ee_test_engine_open_config(ee_config *cfg)
{
    ee_engine *e = NULL;
    ee_status st = ee_engine_open(&e, cfg);
    ee_config_free(cfg);
    cr_assert_eq(st, EE_OK, "ee_engine_open: %s (%s)", ee_status_name(st),
                 ee_error_last_message());
    cr_assert_not_null(e);
    return e;
}

/* Open an engine on `storage_uri` (NULL: "memory:") with the test secret,
 * the source data dir and an optional injected clock. */
static inline ee_engine *ee_test_engine_open(const char *storage_uri, ee_clock_fn clock,
                                             void *clock_payload)
{
    return ee_test_engine_open_config(ee_test_config_new(storage_uri, clock, clock_payload));
}

#endif
