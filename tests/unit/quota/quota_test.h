/*
 * Helpers shared by the quota tests (unit and integration): an engine with
 * an injected clock, plans and subscriptions, principals, counter reads.
 * Every helper asserts (Criterion) and prints the library's message.
 */
#ifndef EE_QUOTA_TEST_H
#define EE_QUOTA_TEST_H

#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <execengine/execengine.h>
#include <execengine/quota.h>

#include "core/core.h"
#include "engine/engine.h"

/* 2024-01-01T00:00:00Z */
#define QT_T0 INT64_C(1704067200000)
#define QT_HOUR INT64_C(3600000)
#define QT_DAY INT64_C(86400000)

static _Atomic int64_t qt_now = QT_T0;

static int64_t qt_clock(void *payload)
{
    (void)payload;
    return atomic_load(&qt_now);
}

static inline void qt_set_now(int64_t t)
{
    atomic_store(&qt_now, t);
}

static inline void qt_advance(int64_t ms)
{
    atomic_fetch_add(&qt_now, ms);
}

static inline void qt_cfg_set(ee_config *cfg, const char *key, const char *value)
{
    cr_assert_eq(ee_config_set(cfg, key, value), EE_OK, "ee_config_set(%s): %s", key,
                 ee_error_last_message());
}

/* The source tree's data/ (integration tests have no EE_SOURCE_DIR: it is
 * found from this header's own path, which the compiler gets absolute). */
static inline const char *qt_data_dir(void)
{
#ifdef EE_SOURCE_DIR
    return EE_SOURCE_DIR "/data";
#else
    static char dir[1024];
    const char *f = __FILE__, *cut = strstr(f, "/tests/");
    cr_assert_not_null(cut, "cannot find the source tree from %s", f);
    snprintf(dir, sizeof dir, "%.*s/data", (int)(cut - f), f);
    return dir;
#endif
}

/* An engine on `storage_uri` (NULL: memory:) and `counters_uri` (NULL:
 * memory:), the test secret, the source data dir, the injected clock, and
 * extra options as key/value pairs ending with NULL. */
static inline ee_engine *qt_engine_kv(const char *storage_uri, const char *counters_uri,
                                      const char *const *kv)
{
    ee_config *cfg = NULL;
    cr_assert_eq(ee_config_new(&cfg), EE_OK);
    qt_cfg_set(cfg, "API_KEY_ENCRYPTION_SECRET", "test-secret-0123456789abcdef0123456789");
    qt_cfg_set(cfg, "EE_DATA_DIR", qt_data_dir());
    qt_cfg_set(cfg, "EE_STORAGE_URI", storage_uri != NULL ? storage_uri : "memory:");
    qt_cfg_set(cfg, "EE_COUNTERS_URI", counters_uri != NULL ? counters_uri : "memory:");
    for (size_t i = 0; kv != NULL && kv[i] != NULL; i += 2)
        qt_cfg_set(cfg, kv[i], kv[i + 1]);
    cr_assert_eq(ee_config_set_clock(cfg, qt_clock, NULL), EE_OK);
    ee_engine *e = NULL;
#ifdef QT_HOST_COUNTERS
    /* The suite over a host's own counters (tests/unit/engine/quota_*.c):
     * where it would use memory counters, every engine of the test process
     * is opened by ee_engine_open_parts() on one custom table that
     * QT_HOST_COUNTERS() makes (kept in a static: reachable, not a leak;
     * engines only borrow it). */
    static ee_counters *host;
    if (counters_uri == NULL) {
        if (host == NULL)
            host = QT_HOST_COUNTERS();
        ee_engine_parts parts = {.version = EE_ENGINE_PARTS_VERSION, .counters = host};
        ee_status st = ee_engine_open_parts(&e, cfg, &parts);
        ee_config_free(cfg);
        cr_assert_eq(st, EE_OK, "ee_engine_open_parts: %s (%s)", ee_status_name(st),
                     ee_error_last_message());
        cr_assert_eq(ee__engine_counters(e), host, "the engine counts on the host's table");
        cr_assert_str_eq(ee_counters_backend_name(host), "custom");
        return e;
    }
#endif
    ee_status st = ee_engine_open(&e, cfg);
    ee_config_free(cfg);
    cr_assert_eq(st, EE_OK, "ee_engine_open: %s (%s)", ee_status_name(st),
                 ee_error_last_message());
    return e;
}

static inline ee_engine *qt_engine(void)
{
    return qt_engine_kv(NULL, NULL, NULL);
}

static inline void qt_plan(ee_engine *e, const char *json)
{
    ee_status st = ee_quota_plan_put(e, json, NULL);
    cr_assert_eq(st, EE_OK, "plan_put %s: %s (%s)", json, ee_status_name(st),
                 ee_error_last_message());
}

static inline void qt_subscribe(ee_engine *e, const char *org, const char *plan,
                                int64_t period_start, const char *multipliers)
{
    char doc[512];
    snprintf(doc, sizeof doc, "{\"orgId\": \"%s\", \"plan\": \"%s\", \"periodStart\": %lld%s%s}",
             org, plan, (long long)period_start, multipliers ? ", \"multipliers\": " : "",
             multipliers ? multipliers : "");
    char *out = NULL;
    ee_status st = ee_quota_subscription_put(e, doc, &out);
    cr_assert_eq(st, EE_OK, "subscription_put %s: %s (%s)", doc, ee_status_name(st),
                 out ? out : "");
    ee_free(out);
}

static inline ee_principal *qt_principal(const char *ws, const char *user, const char *org)
{
    ee_principal *p = NULL;
    cr_assert_eq(ee_principal_new(&p, ws, user, org), EE_OK, "%s", ee_error_last_message());
    return p;
}

static inline ee_quota_subject *qt_subject(ee_engine *e, const ee_principal *p)
{
    ee_quota_subject *s = NULL;
    ee_status st = ee_quota_subject_new(&s, e, p);
    cr_assert_eq(st, EE_OK, "subject_new: %s (%s)", ee_status_name(st), ee_error_last_message());
    return s;
}

/* The value of the quota counter "eeq/<what>/<id>" now. */
static inline int64_t qt_counter(ee_engine *e, const char *what, const char *id)
{
    char key[200];
    if (id != NULL)
        snprintf(key, sizeof key, "eeq/%s/%s", what, id);
    else
        snprintf(key, sizeof key, "eeq/%s", what);
    ee_counter_result r;
    ee_status st = ee_counters_get(ee__engine_counters(e), key, ee_engine_now_ms(e), &r);
    cr_assert_eq(st, EE_OK, "counters_get %s: %s", key, ee_error_last_message());
    return r.value;
}

/* Admit and finish successfully n times (cost 0). */
static inline void qt_use(ee_engine *e, ee_quota_subject *s, int n)
{
    for (int i = 0; i < n; i++) {
        ee_quota_ticket t;
        ee_status st = ee_quota_admit_fast(e, s, 0, &t);
        cr_assert_eq(st, EE_OK, "admission %d: %s (%s)", i, ee_status_name(st),
                     ee_error_last_message());
        cr_assert_eq(ee_quota_finish(e, &t, 1, 0), EE_OK, "%s", ee_error_last_message());
    }
}

/* A JSON number member of a document (asserting it exists). */
static inline long long qt_json_int(const char *doc, const char *path1, const char *path2)
{
    json_t *j = json_loads(doc, 0, NULL);
    cr_assert_not_null(j, "not JSON: %s", doc);
    json_t *v = json_object_get(j, path1);
    if (path2 != NULL)
        v = json_object_get(v, path2);
    cr_assert(json_is_integer(v), "%s.%s missing in %s", path1, path2 ? path2 : "", doc);
    long long r = (long long)json_integer_value(v);
    json_decref(j);
    return r;
}

#endif
