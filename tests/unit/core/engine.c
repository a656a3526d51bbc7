#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <execengine/execengine.h>

#include "core/core.h"

/* Every engine needs an encryption secret: credentials are sealed with it. */
#define TEST_SECRET "test-secret-0123456789abcdef0123456789"

static int64_t fake_now = 1700000000000;

static int64_t fake_clock(void *payload)
{
    return *(int64_t *)payload;
}

Test(engine, open_close_and_injected_clock)
{
    ee_config *cfg = NULL;
    cr_assert_eq(ee_config_new(&cfg), EE_OK);
    cr_assert_eq(ee_config_set(cfg, "EE_STORAGE_URI", "memory:"), EE_OK);
    cr_assert_eq(ee_config_set(cfg, "API_KEY_ENCRYPTION_SECRET", TEST_SECRET), EE_OK);
    cr_assert_eq(ee_config_set_clock(cfg, fake_clock, &fake_now), EE_OK);
    ee_engine *e = NULL;
    cr_assert_eq(ee_engine_open(&e, cfg), EE_OK);
    ee_config_free(cfg); /* the engine keeps its own copy */
    cr_expect_eq(ee_engine_now_ms(e), 1700000000000);
    fake_now += 3600 * 1000;
    cr_expect_eq(ee_engine_now_ms(e), 1700003600000, "time moves without sleeping");
    ee_engine_close(e);
    ee_engine_close(NULL);
    cr_expect_eq(ee_engine_now_ms(NULL), 0);
}

Test(engine, default_clock_is_the_system_clock)
{
    ee_config *cfg = NULL;
    cr_assert_eq(ee_config_new(&cfg), EE_OK);
    cr_assert_eq(ee_config_set_clock(cfg, fake_clock, &fake_now), EE_OK);
    cr_assert_eq(ee_config_set_clock(cfg, NULL, NULL), EE_OK);
    cr_assert_eq(ee_config_set(cfg, "EE_STORAGE_URI", "memory:"), EE_OK);
    cr_assert_eq(ee_config_set(cfg, "API_KEY_ENCRYPTION_SECRET", TEST_SECRET), EE_OK);
    ee_engine *e = NULL;
    cr_assert_eq(ee_engine_open(&e, cfg), EE_OK);
    ee_config_free(cfg);
    int64_t sys = ee__clock_system_ms(NULL);
    int64_t now = ee_engine_now_ms(e);
    cr_expect(now >= sys && now - sys < 60000, "now %lld vs system %lld", (long long)now,
              (long long)sys);
    ee_engine_close(e);
}

Test(engine, opens_a_sqlite_file_and_summarises)
{
    char dir[] = "/tmp/ee-engine-XXXXXX", uri[160], path[128];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/nested/engine.db", dir);
    snprintf(uri, sizeof uri, "sqlite://%s", path);
    ee_config *cfg = NULL;
    cr_assert_eq(ee_config_new(&cfg), EE_OK);
    cr_assert_eq(ee_config_set(cfg, "EE_STORAGE_URI", uri), EE_OK);
    cr_assert_eq(ee_config_set(cfg, "API_KEY_ENCRYPTION_SECRET", TEST_SECRET), EE_OK);
    cr_assert_eq(ee_config_set(cfg, "EE_COUNTERS_URI", "storage:"), EE_OK);
    ee_engine *e = NULL;
    cr_assert_eq(ee_engine_open(&e, cfg), EE_OK);
    ee_config_free(cfg);
    char *text = NULL;
    cr_assert_eq(ee_engine_summary_json(e, &text), EE_OK);
    json_t *doc = json_loads(text, 0, NULL);
    ee_free(text);
    cr_assert_not_null(doc);
    cr_expect_str_eq(json_string_value(json_object_get(doc, "version")), ee_version());
    json_t *storage = json_object_get(doc, "storage");
    cr_expect_str_eq(json_string_value(json_object_get(storage, "backend")), "sqlite");
    cr_expect_str_eq(json_string_value(json_object_get(storage, "uri")), uri);
    cr_expect_str_eq(json_string_value(json_object_get(json_object_get(doc, "counters"), "backend")),
                     "storage-sqlite", "storage: counters live in the storage database");
    cr_expect_eq(json_integer_value(json_object_get(json_object_get(doc, "config"),
                                                    "MAX_CONCURRENT_EXECUTIONS")), 10);
    json_decref(doc);
    ee_engine_close(e);
    cr_expect_eq(access(path, F_OK), 0, "the database file and its directory were created");
    remove(path);
    for (const char *suffix = "-wal"; suffix; suffix = suffix[1] == 'w' ? "-shm" : NULL) {
        char side[160];
        snprintf(side, sizeof side, "%s%s", path, suffix);
        remove(side);
    }
}

Test(engine, storage_failures_fail_the_open)
{
    ee_config *cfg = NULL;
    cr_assert_eq(ee_config_new(&cfg), EE_OK);
    cr_assert_eq(ee_config_set(cfg, "EE_STORAGE_URI", "sqlite:///proc/no-such-dir/x.db"), EE_OK);
    ee_engine *e = (ee_engine *)1;
    cr_expect_eq(ee_engine_open(&e, cfg), EE_EIO);
    cr_expect_null(e);
#if EE_WITH_POSTGRES /* else EE_ENOTSUPPORTED: tests/unit/core/features.c */
    /* A closed port on loopback: unreachable, and quickly so. */
    cr_assert_eq(ee_config_set(cfg, "EE_STORAGE_URI", "postgres://ee@127.0.0.1:1/ee?connect_timeout=2"), EE_OK);
    cr_expect_eq(ee_engine_open(&e, cfg), EE_ENETWORK);
#endif
    ee_config_free(cfg);
}

Test(engine, bad_arguments)
{
    ee_engine *e = (ee_engine *)1;
    cr_expect_eq(ee_engine_open(&e, NULL), EE_EINVAL);
    cr_expect_null(e);
    ee_config *cfg = NULL;
    cr_assert_eq(ee_config_new(&cfg), EE_OK);
    cr_expect_eq(ee_engine_open(NULL, cfg), EE_EINVAL);
    ee_config_free(cfg);
    char *out = NULL;
    cr_expect_eq(ee_engine_summary_json(NULL, &out), EE_EINVAL);
    cr_assert_not_null(out, "failure fills *out with an error document");
    cr_expect_not_null(strstr(out, "\"EE_EINVAL\""));
    ee_free(out);
    cr_expect_eq(ee_engine_summary_json(NULL, NULL), EE_EINVAL);
}

/* Engines share nothing mutable but the redaction registry: open and close
 * them from many threads at once. */
static void *open_close_loop(void *arg)
{
    (void)arg;
    for (int i = 0; i < 200; i++) {
        ee_config *cfg = NULL;
        if (ee_config_new(&cfg) != EE_OK)
            return (void *)1;
        ee_config_set(cfg, "SMTP_PASS", i % 2 ? "shared-pass-aaaa" : "other-pass-bbbb");
        ee_config_set(cfg, "EE_STORAGE_URI", "memory:");
        ee_config_set(cfg, "API_KEY_ENCRYPTION_SECRET", TEST_SECRET);
        ee_engine *e = NULL;
        ee_status st = ee_engine_open(&e, cfg);
        ee_config_free(cfg);
        if (st != EE_OK)
            return (void *)1;
        char *s = NULL;
        st = ee_engine_summary_json(e, &s);
        ee_free(s);
        ee_engine_close(e);
        if (st != EE_OK)
            return (void *)1;
    }
    return NULL;
}

Test(engine, concurrent_open_close)
{
    pthread_t t[6];
    for (int i = 0; i < 6; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, open_close_loop, NULL), 0);
    for (int i = 0; i < 6; i++) {
        void *r;
        pthread_join(t[i], &r);
        cr_expect_null(r);
    }
    char msg[64] = "shared-pass-aaaa";
    ee__redact(msg, sizeof msg);
    cr_expect_str_eq(msg, "shared-pass-aaaa", "every engine closed: nothing stays registered");
}
