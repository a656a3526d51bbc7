/* The seeds' names: DATABASE_* build the storage URI, FLOWISE_SECRETKEY_OVERWRITE
 * is the encryption secret's other name, and options that have no effect yet
 * say so. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"
#include "engine/engine.h"

#define SECRET "test-secret-0123456789abcdef0123456789"

static ee_config *cfg;

static void setup(void) { cr_assert_eq(ee_config_new(&cfg), EE_OK); }
static void teardown(void) { ee_config_free(cfg); }

TestSuite(config_database, .init = setup, .fini = teardown);

static void set(const char *key, const char *value)
{
    cr_assert_eq(ee_config_set(cfg, key, value), EE_OK, "%s: %s", key, ee_error_last_message());
}

/* The storage URI the engine would open (unmasked: internal accessor). */
static const char *resolved_uri(void)
{
    cr_assert_eq(ee__engine_config_resolve(cfg), EE_OK, "%s", ee_error_last_message());
    return ee__config_text(cfg, "EE_STORAGE_URI");
}

static void expect_refused(const char *first, const char *second)
{
    cr_expect_eq(ee__engine_config_resolve(cfg), EE_EINVAL);
    const char *msg = ee_error_last_message();
    cr_expect_not_null(strstr(msg, first), "message does not name %s: %s", first, msg);
    cr_expect_not_null(strstr(msg, second), "message does not name %s: %s", second, msg);
}

Test(config_database, postgres_variables_build_the_uri_with_encoded_parts)
{
    set("DATABASE_TYPE", "postgres");
    set("DATABASE_HOST", "db.example.com");
    set("DATABASE_NAME", "flowise db");
    set("DATABASE_USER", "ee user");
    set("DATABASE_PASSWORD", "p@ss:w/rd%?#");
    cr_expect_str_eq(resolved_uri(),
                     "postgres://ee%20user:p%40ss%3Aw%2Frd%25%3F%23@db.example.com:5432/flowise%20db");
    set("DATABASE_PORT", "6543");
    cr_expect_str_eq(resolved_uri(),
                     "postgres://ee%20user:p%40ss%3Aw%2Frd%25%3F%23@db.example.com:6543/flowise%20db");
    /* Shown and read back masked. */
    char *v = NULL;
    cr_assert_eq(ee_config_get_string(cfg, "EE_STORAGE_URI", &v), EE_OK);
    cr_expect_str_eq(v, "postgres://ee%20user:***@db.example.com:6543/flowise%20db");
    ee_free(v);
}

Test(config_database, postgres_defaults_follow_the_seed)
{
    set("DATABASE_TYPE", "postgres");
    cr_expect_str_eq(resolved_uri(), "postgres://localhost:5432");
    set("DATABASE_HOST", "::1");
    set("DATABASE_USER", "ee");
    cr_expect_str_eq(resolved_uri(), "postgres://ee@[::1]:5432");
}

Test(config_database, sqlite_path_is_the_directory_of_database_sqlite)
{
    char *before = strdup(ee__config_text(cfg, "EE_STORAGE_URI"));
    set("DATABASE_TYPE", "sqlite");
    cr_expect_str_eq(resolved_uri(), before, "no DATABASE_PATH: the default file");
    free(before);
    set("DATABASE_PATH", "/srv/flowise/");
    cr_expect_str_eq(resolved_uri(), "sqlite:///srv/flowise/database.sqlite");
    ee_config_unset(cfg, "DATABASE_TYPE"); /* sqlite is the default type */
    cr_expect_str_eq(resolved_uri(), "sqlite:///srv/flowise/database.sqlite");
    set("DATABASE_PATH", "/srv/odd?dir");
    expect_refused("DATABASE_PATH", "'?'");
}

Test(config_database, nothing_set_changes_nothing)
{
    char *before = strdup(ee__config_text(cfg, "EE_STORAGE_URI"));
    cr_expect_str_eq(resolved_uri(), before);
    free(before);
    set("EE_STORAGE_URI", "memory:");
    cr_expect_str_eq(resolved_uri(), "memory:");
}

Test(config_database, mysql_and_mariadb_are_refused_naming_the_supported_types)
{
    const char *const refused[] = {"mysql", "mariadb", "MySQL", "oracle"};
    for (size_t i = 0; i < 4; i++) {
        cr_expect_eq(ee_config_set(cfg, "DATABASE_TYPE", refused[i]), EE_EINVAL, "%s", refused[i]);
        const char *msg = ee_error_last_message();
        cr_expect_not_null(strstr(msg, "DATABASE_TYPE"), "%s", msg);
        cr_expect_not_null(strstr(msg, "sqlite"), "%s", msg);
        cr_expect_not_null(strstr(msg, "postgres"), "%s", msg);
    }
    set("DATABASE_TYPE", "POSTGRES");
}

Test(config_database, conflicts_name_both_options)
{
    set("EE_STORAGE_URI", "memory:");
    set("DATABASE_HOST", "db");
    expect_refused("EE_STORAGE_URI", "DATABASE_HOST");
    ee_config_unset(cfg, "EE_STORAGE_URI");
    /* DATABASE_HOST with the default type, sqlite. */
    expect_refused("DATABASE_HOST", "DATABASE_TYPE");
    ee_config_unset(cfg, "DATABASE_HOST");
    set("DATABASE_TYPE", "postgres");
    set("DATABASE_PATH", "/srv/flowise");
    expect_refused("DATABASE_PATH", "DATABASE_TYPE");
}

/* Through the public API: the engine refuses to open on a conflict. */
Test(config_database, engine_open_refuses_a_conflict)
{
    set("API_KEY_ENCRYPTION_SECRET", SECRET);
    set("EE_STORAGE_URI", "memory:");
    set("DATABASE_TYPE", "sqlite");
    ee_engine *e = NULL;
    cr_expect_eq(ee_engine_open(&e, cfg), EE_EINVAL);
    cr_expect_null(e);
    cr_expect_not_null(strstr(ee_error_last_message(), "EE_STORAGE_URI"));
    cr_expect_not_null(strstr(ee_error_last_message(), "DATABASE_TYPE"));
}

/* Through the public API: DATABASE_PATH decides where the SQLite file is. */
Test(config_database, engine_opens_sqlite_at_database_path)
{
    char dir[] = "/tmp/ee-dbpath-XXXXXX", file[96];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(file, sizeof file, "%s/database.sqlite", dir);
    set("API_KEY_ENCRYPTION_SECRET", SECRET);
    set("EE_DATA_DIR", EE_SOURCE_DIR "/data");
    set("DATABASE_TYPE", "sqlite");
    set("DATABASE_PATH", dir);
    ee_engine *e = NULL;
    cr_assert_eq(ee_engine_open(&e, cfg), EE_OK, "%s", ee_error_last_message());
    struct stat sb;
    cr_expect_eq(stat(file, &sb), 0, "%s was not created", file);
    char *summary = NULL;
    cr_assert_eq(ee_engine_summary_json(e, &summary), EE_OK);
    cr_expect_not_null(strstr(summary, file), "%s", summary);
    ee_free(summary);
    ee_engine_close(e);
    unlink(file);
    char side[128];
    snprintf(side, sizeof side, "%s-wal", file);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", file);
    unlink(side);
    rmdir(dir);
}

Test(config_database, flowise_secret_name_opens_the_engine)
{
    set("EE_STORAGE_URI", "memory:");
    set("EE_DATA_DIR", EE_SOURCE_DIR "/data");
    set("FLOWISE_SECRETKEY_OVERWRITE", SECRET);
    ee_engine *e = NULL;
    cr_expect_eq(ee_engine_open(&e, cfg), EE_OK, "%s", ee_error_last_message());
    ee_engine_close(e);

    /* Both names, same value: fine. Different values: refused, naming both. */
    set("API_KEY_ENCRYPTION_SECRET", SECRET);
    cr_expect_eq(ee_engine_open(&e, cfg), EE_OK, "%s", ee_error_last_message());
    ee_engine_close(e);
    e = NULL;
    set("API_KEY_ENCRYPTION_SECRET", SECRET "-other");
    cr_expect_eq(ee_engine_open(&e, cfg), EE_EINVAL);
    cr_expect_null(e);
    const char *msg = ee_error_last_message();
    cr_expect_not_null(strstr(msg, "API_KEY_ENCRYPTION_SECRET"), "%s", msg);
    cr_expect_not_null(strstr(msg, "FLOWISE_SECRETKEY_OVERWRITE"), "%s", msg);
    cr_expect_null(strstr(msg, "0123456789abcdef"), "%s", msg);
    /* The alias is a secret like the name it stands for. */
    cr_expect_eq(ee_config_set(cfg, "FLOWISE_SECRETKEY_OVERWRITE", "too-short"), EE_EINVAL);
    char *v = NULL;
    cr_expect_eq(ee_config_get_string(cfg, "FLOWISE_SECRETKEY_OVERWRITE", &v), EE_EPERM);
}

Test(config_database, options_not_yet_in_effect_are_marked)
{
    char *text = NULL;
    cr_assert_eq(ee_config_options_json(&text), EE_OK);
    json_t *arr = json_loads(text, 0, NULL);
    ee_free(text);
    /* the markup and the allowance took effect with billing */
    /* the SMTP options took effect with e-mailed results (docs/email.md) */
    const char *const pending[] = {"N8N_WEBHOOK_URL"};
    size_t i, off = 0;
    json_t *o;
    json_array_foreach(arr, i, o) {
        const char *name = json_string_value(json_object_get(o, "name"));
        const json_t *in = json_object_get(o, "inEffect");
        cr_assert(json_is_boolean(in), "%s has no inEffect", name);
        bool want = true;
        for (size_t k = 0; k < sizeof pending / sizeof pending[0]; k++)
            if (strcmp(name, pending[k]) == 0)
                want = false;
        cr_expect_eq(json_is_true(in), want, "%s inEffect", name);
        off += !json_is_true(in);
    }
    cr_expect_eq(off, sizeof pending / sizeof pending[0]);
    json_decref(arr);
}
