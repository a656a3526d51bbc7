/* The credentials module refuses to open an engine without a usable
 * encryption secret, and says which variable, never its value. */
#include "cred_test.h"

#include "core/core.h"

static ee_config *base_config(void)
{
    ee_config *cfg = NULL;
    cr_assert_eq(ee_config_new(&cfg), EE_OK);
    ee_test_config_set(cfg, "EE_STORAGE_URI", "memory:");
    ee_test_config_set(cfg, "EE_DATA_DIR", EE_TEST_DATA_DIR);
    return cfg;
}

Test(module, refuses_to_open_without_a_secret)
{
    ee_config *cfg = base_config();
    ee_engine *e = (ee_engine *)1;
    cr_expect_eq(ee_engine_open(&e, cfg), EE_EINVAL);
    cr_expect_null(e);
    cr_expect_not_null(strstr(ee_error_last_message(), "API_KEY_ENCRYPTION_SECRET"), "%s",
                       ee_error_last_message());
    cr_expect_not_null(strstr(ee_error_last_message(), "not set"));
    ee_config_free(cfg);
}

Test(module, refuses_a_short_secret_without_echoing_it)
{
    static const char short_secret[] = "short-canary-secret-1234";
    ee_config *cfg = base_config();
    /* The config itself refuses it, naming the key and not the value ... */
    cr_expect_eq(ee_config_set(cfg, "API_KEY_ENCRYPTION_SECRET", short_secret), EE_EINVAL);
    cr_expect_not_null(strstr(ee_error_last_message(), "API_KEY_ENCRYPTION_SECRET"));
    cr_expect_null(strstr(ee_error_last_message(), short_secret));
    /* ... and the engine still refuses to open, as no secret is set. */
    ee_engine *e = NULL;
    cr_expect_eq(ee_engine_open(&e, cfg), EE_EINVAL);
    cr_expect_not_null(strstr(ee_error_last_message(), "API_KEY_ENCRYPTION_SECRET"));
    cr_expect_null(strstr(ee_error_last_message(), short_secret));
    ee_config_free(cfg);
}

Test(module, refuses_a_short_previous_secret)
{
    ee_config *cfg = base_config();
    ee_test_config_set(cfg, "API_KEY_ENCRYPTION_SECRET", EE_TEST_ENCRYPTION_SECRET);
    ee_test_config_set(cfg, "API_KEY_ENCRYPTION_PREVIOUS_SECRETS",
                       "previous-secret-number-one-0123456789, tiny-canary");
    ee_engine *e = NULL;
    cr_expect_eq(ee_engine_open(&e, cfg), EE_EINVAL);
    cr_expect_not_null(strstr(ee_error_last_message(), "API_KEY_ENCRYPTION_PREVIOUS_SECRETS entry 2"),
                       "%s", ee_error_last_message());
    cr_expect_null(strstr(ee_error_last_message(), "tiny-canary"));
    ee_config_free(cfg);
}

Test(module, opens_with_the_fixture_and_with_previous_secrets)
{
    ee_engine *e = ee_test_engine_open(NULL, NULL, NULL);
    cr_expect_not_null(e);
    ee_engine_close(e);
    ee_config *cfg = ee_test_config_new(NULL, NULL, NULL);
    ee_test_config_set(cfg, "API_KEY_ENCRYPTION_PREVIOUS_SECRETS",
                       "previous-secret-number-one-0123456789,previous-secret-number-two-0123456789");
    e = ee_test_engine_open_config(cfg);
    ee_engine_close(e);
}

Test(module, a_missing_catalog_fails_the_open)
{
    ee_config *cfg = ee_test_config_new(NULL, NULL, NULL);
    ee_test_config_set(cfg, "EE_DATA_DIR", "/nonexistent-ee-data");
    ee_engine *e = NULL;
    cr_expect_eq(ee_engine_open(&e, cfg), EE_EIO);
    cr_expect_not_null(strstr(ee_error_last_message(), "integrations.json"));
    ee_config_free(cfg);
}
