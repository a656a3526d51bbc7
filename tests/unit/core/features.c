/* What a build has: ee_version_features() agrees with the build's options
 * (EE_WITH_POSTGRES, EE_WITH_REDIS), and a backend left out answers every
 * way of reaching it - its URI schemes, its constructors, DATABASE_TYPE at
 * engine open, counters over its storage - with EE_ENOTSUPPORTED and a
 * message saying the library was built without it (and no secret). With a
 * backend in, the same calls reach it (a malformed URI is parsed and
 * refused as such). Compiled in every configuration; scripts/test runs it
 * in the minimal one too. */
#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <execengine/execengine.h>

#define CANARY "CANARY-pw-5e1f0c"
#define SECRET "test-secret-0123456789abcdef0123456789"

static bool has_word(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = list; (p = strstr(p, word)) != NULL; p += n)
        if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
            return true;
    return false;
}

#if !EE_WITH_POSTGRES || !EE_WITH_REDIS
/* The last call was refused as not built, naming the feature and the
 * option, and quoting no secret. */
static void expect_not_built(ee_status st, const char *feature, const char *option)
{
    const char *msg = ee_error_last_message();
    cr_expect_eq(st, EE_ENOTSUPPORTED, "%s: %s", ee_status_name(st), msg);
    char want[96];
    snprintf(want, sizeof want, "built without %s", feature);
    cr_expect_not_null(strstr(msg, want), "%s", msg);
    cr_expect_not_null(strstr(msg, option), "%s", msg);
    cr_expect_null(strstr(msg, CANARY), "the message quotes the password: %s", msg);
}
#endif

Test(features, the_list_names_what_the_build_has)
{
    const char *f = ee_version_features();
    cr_assert_not_null(f);
    cr_expect_eq(strncmp(f, "sqlite memory", 13), 0, "%s", f);
    cr_expect_eq(has_word(f, "postgres"), EE_WITH_POSTGRES != 0, "%s", f);
    cr_expect_eq(has_word(f, "redis"), EE_WITH_REDIS != 0, "%s", f);
}

Test(features, postgres_storage)
{
    ee_storage *s = (ee_storage *)1;
    ee_status st = ee_storage_open_uri(&s, "postgres://ee:" CANARY "@127.0.0.1:1/ee?schema=Bad-Name");
    cr_expect_null(s);
#if EE_WITH_POSTGRES
    cr_expect_eq(st, EE_EINVAL, "parsed by the backend: %s", ee_error_last_message());
#else
    expect_not_built(st, "PostgreSQL", "EE_WITH_POSTGRES");
    expect_not_built(ee_storage_open_uri(&s, "postgresql://ee:" CANARY "@db/ee"), "PostgreSQL",
                     "EE_WITH_POSTGRES");
    expect_not_built(ee_storage_postgres_new(&s, "host=db password=" CANARY), "PostgreSQL",
                     "EE_WITH_POSTGRES");
    cr_expect_null(s);
#endif
}

Test(features, postgres_counters)
{
    ee_counters *c = (ee_counters *)1;
    const char *uri = "postgres://ee:" CANARY "@127.0.0.1:1/ee?connect_timeout=2";
#if EE_WITH_POSTGRES
    cr_expect_eq(ee_counters_open_uri(&c, "storage:", uri), EE_ENETWORK, "%s",
                 ee_error_last_message());
#else
    expect_not_built(ee_counters_open_uri(&c, "storage:", uri), "PostgreSQL", "EE_WITH_POSTGRES");
    cr_expect_null(c);
    /* the default counters over that storage, and memory counters beside it */
    expect_not_built(ee_counters_open_uri(&c, NULL, uri), "PostgreSQL", "EE_WITH_POSTGRES");
    expect_not_built(ee_counters_open_uri(&c, "memory:", uri), "PostgreSQL", "EE_WITH_POSTGRES");
    expect_not_built(ee_counters_postgres_new(&c, "host=db password=" CANARY), "PostgreSQL",
                     "EE_WITH_POSTGRES");
#endif
    cr_expect_null(c);
}

Test(features, redis_counters)
{
    ee_counters *c = (ee_counters *)1;
#if EE_WITH_REDIS
    cr_expect_eq(ee_counters_open_uri(&c, "redis://:" CANARY "@127.0.0.1:notaport/0", NULL),
                 EE_EINVAL, "parsed by the backend: %s", ee_error_last_message());
#else
    expect_not_built(ee_counters_open_uri(&c, "redis://:" CANARY "@127.0.0.1:6379/0", NULL),
                     "Redis", "EE_WITH_REDIS");
    cr_expect_null(c);
    expect_not_built(ee_counters_redis_new(&c, "redis://:" CANARY "@127.0.0.1:6379/0"), "Redis",
                     "EE_WITH_REDIS");
    /* refused before the storage beside it is opened (this one cannot be) */
    expect_not_built(ee_counters_open_uri(&c, "redis://127.0.0.1:6379/0",
                                          "sqlite:///proc/no-such-dir/x.db"),
                     "Redis", "EE_WITH_REDIS");
#endif
    cr_expect_null(c);
}

/* DATABASE_TYPE=postgres (seed 2's variables) at engine open. */
Test(features, engine_open_on_postgres)
{
    ee_config *cfg = NULL;
    cr_assert_eq(ee_config_new(&cfg), EE_OK);
    cr_assert_eq(ee_config_set(cfg, "API_KEY_ENCRYPTION_SECRET", SECRET), EE_OK);
    cr_assert_eq(ee_config_set(cfg, "DATABASE_TYPE", "postgres"), EE_OK);
    cr_assert_eq(ee_config_set(cfg, "DATABASE_HOST", "127.0.0.1"), EE_OK);
    cr_assert_eq(ee_config_set(cfg, "DATABASE_PORT", "1"), EE_OK);
    cr_assert_eq(ee_config_set(cfg, "DATABASE_PASSWORD", CANARY), EE_OK);
    ee_engine *e = (ee_engine *)1;
    ee_status st = ee_engine_open(&e, cfg);
    cr_expect_null(e);
#if EE_WITH_POSTGRES
    cr_expect_eq(st, EE_ENETWORK, "%s", ee_error_last_message());
#else
    expect_not_built(st, "PostgreSQL", "EE_WITH_POSTGRES");
#endif
    ee_engine_close(e);
    ee_config_free(cfg);
}
