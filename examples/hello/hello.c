/*
 * ee-hello: open an engine from the environment (N8N_*, PLATFORM_*,
 * EE_STORAGE_URI ...) and print the library version and the engine's
 * configuration summary as JSON. Log lines go to stderr.
 *
 *   ee-hello            print the summary
 *   ee-hello --options  list every configuration option
 */
#include <stdio.h>
#include <string.h>

#include <execengine/execengine.h>

static void log_to_stderr(ee_log_level level, const char *module, const char *message,
                          void *payload)
{
    (void)payload;
    fprintf(stderr, "[%s] %s: %s\n", ee_log_level_name(level), module, message);
}

static int fail(const char *what, ee_status st)
{
    fprintf(stderr, "ee-hello: %s: %s (%s): %s\n", what, ee_status_name(st), ee_strerror(st),
            ee_error_last_message());
    return 1;
}

static int print_options(void)
{
    char *json = NULL;
    ee_status st = ee_config_options_json(&json);
    if (st != EE_OK)
        return fail("listing options", st);
    printf("%s\n", json);
    ee_free(json);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--options") == 0)
        return print_options();

    ee_config *cfg = NULL;
    ee_status st = ee_config_new(&cfg);
    if (st != EE_OK)
        return fail("creating config", st);
    st = ee_config_load_env(cfg);
    if (st == EE_OK)
        st = ee_config_set_log(cfg, log_to_stderr, EE_LOG_INFO, NULL);
    if (st != EE_OK) {
        ee_config_free(cfg);
        return fail("loading configuration from the environment", st);
    }

    ee_engine *engine = NULL;
    st = ee_engine_open(&engine, cfg);
    ee_config_free(cfg);
    if (st != EE_OK)
        return fail("opening the engine", st);

    char *summary = NULL;
    st = ee_engine_summary_json(engine, &summary);
    if (st == EE_OK)
        printf("libexecengine %s\n%s\n", ee_version(), summary);
    ee_free(summary);
    ee_engine_close(engine);
    return st == EE_OK ? 0 : fail("summarising the engine", st);
}
