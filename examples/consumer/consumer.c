/*
 * The getting-started example (docs/getting-started.md walks through it):
 * a program that links the installed libexecengine, opens an engine and
 * handles errors. Built by the test suite against an installed copy, once
 * with pkg-config and once with CMake's find_package.
 */
#include <stdio.h>
#include <string.h>

#include <execengine/execengine.h>

int main(void)
{
    /* 1. The headers and the library agree on the major version. */
    if (ee_version_num() >> 16 != EE_VERSION_MAJOR) {
        fprintf(stderr, "built against %s, running %s\n", EE_VERSION_STRING, ee_version());
        return 1;
    }

    /* 2. A config holds every default; options are named by their
     *    environment variables. */
    ee_config *cfg = NULL;
    if (ee_config_new(&cfg) != EE_OK)
        return 1;
    ee_config_set(cfg, "EE_STORAGE_URI", "memory:");
    /* Credentials are sealed with keys derived from this secret (at least
     * 32 bytes). A real host loads it from the environment or a secret
     * store, e.g. with ee_config_load_env(cfg); never hard-code one. */
    ee_config_set(cfg, "API_KEY_ENCRYPTION_SECRET", "example-only-0123456789abcdef0123456789");

    /* 3. Every call returns an ee_status; the detail is per thread. */
    ee_status st = ee_config_set(cfg, "MAX_CONCURRENT_EXECUTIONS", "-5");
    if (st != EE_OK)
        printf("rejected as expected: %s: %s\n", ee_status_name(st), ee_error_last_message());

    /* 4. Open the engine; the config is copied and can be freed at once. */
    ee_engine *engine = NULL;
    st = ee_engine_open(&engine, cfg);
    ee_config_free(cfg);
    if (st != EE_OK) {
        fprintf(stderr, "open failed: %s\n", ee_error_last_message());
        return 1;
    }

    /* 5. Documents come back as JSON text the caller frees with ee_free(). */
    char *summary = NULL;
    st = ee_engine_summary_json(engine, &summary);
    if (st == EE_OK)
        printf("libexecengine %s: %s\n", ee_version(), summary);
    ee_free(summary);

    /* 6. Close once, after every other call on the engine has returned. */
    ee_engine_close(engine);
    return st == EE_OK ? 0 : 1;
}
