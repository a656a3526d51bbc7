/* No rejected option value leaks a password: every option the config lists
 * is set to bad values carrying a canary password (URI userinfo, plain
 * text, past the quoted prefix, at the end, percent-encoded), and the
 * canary must appear in no error message, no error document, no log line
 * and no config summary. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "execengine/engine.h"

#define CANARY "hunter2CANARYq7Zp"

/* Any of these pieces is a leak: a cut quote may hold part of it. The last
 * one is the canary's last four characters, which a summary shows on
 * purpose for an API key (secret-key options). */
static const char *const pieces[] = {"hunter2", "CANARY", "q7Zp"};
static bool allow_last4;

static char logtext[1 << 16];
static size_t loglen;

static void capture(ee_log_level level, const char *module, const char *line, void *payload)
{
    (void)level;
    (void)module;
    (void)payload;
    int n = snprintf(logtext + loglen, sizeof logtext - loglen, "%s\n", line);
    if (n > 0 && (size_t)n < sizeof logtext - loglen)
        loglen += (size_t)n;
}

static void expect_clean(const char *what, const char *name, const char *value, const char *text)
{
    size_t n = sizeof pieces / sizeof pieces[0] - (allow_last4 ? 1 : 0);
    for (size_t i = 0; text != NULL && i < n; i++)
        cr_expect_null(strstr(text, pieces[i]), "%s leaks the canary (%s = \"%.60s\"): %s", what,
                       name, value, text);
}

/* Bad (for most options) values with the canary in every position a
 * password takes. "{}" is the canary. */
static const char *const shapes[] = {
    "postgress://ee:{}@db/ee",             /* the example: a typo in the scheme */
    "postgres://ee:{}@db/ee",              /* a good storage URI, a bad anything else */
    "http://ee:{}@example.com/a b",        /* a space */
    "redis://:{}@127.0.0.1:6379/0",        /* password-only userinfo */
    "etcd://{}@127.0.0.1:2379",            /* userinfo without a colon */
    "postgress://ee:{}",                   /* the canary at the end, no host */
    "postgress://ee:pa/ss{}@db/ee",        /* an unencoded '/' in the password */
    "postgress://ee:p%40ss{}@db/ee",       /* percent-encoded */
    "postgress:ee:{}@db",                  /* no "//" */
    "{}",                                  /* plain text */
    "12{}",                                /* starts like a number */
    "{}@localhost",                        /* almost an email */
    "a b {}",                              /* the canary at the end of text */
    "{}\n",                                /* a control character */
    "{}\xff",                              /* not UTF-8 */
    "http://example.com/{}",               /* in a URL path */
    "http://example.com:{}/",              /* as the port */
};

static char *with_canary(const char *shape)
{
    const char *at = strstr(shape, "{}");
    cr_assert_not_null(at);
    char *v = malloc(strlen(shape) + sizeof CANARY);
    cr_assert_not_null(v);
    snprintf(v, strlen(shape) + sizeof CANARY, "%.*s%s%s", (int)(at - shape), shape, CANARY,
             at + 2);
    return v;
}

/* A long value: 100 bytes of padding then the canary (past any quoted
 * prefix), or the canary first and then padding to `total` bytes. */
static char *long_value(bool canary_first, size_t total)
{
    char *v = malloc(total + 1);
    cr_assert_not_null(v);
    memset(v, 'a', total);
    v[total] = '\0';
    memcpy(canary_first ? v : v + total - strlen(CANARY), CANARY, strlen(CANARY));
    return v;
}

/* An accepted value is shown in a summary as set: fine for a plain user
 * name or a URL's path, never for a secret or a URI option's userinfo. */
static bool summary_may_show(const json_t *opt, const char *value)
{
    const char *type = json_string_value(json_object_get(opt, "type"));
    bool uri = strcmp(type, "url") == 0 || strstr(type, "-uri") != NULL;
    const char *sep = strstr(value, "://");
    return !json_is_true(json_object_get(opt, "secret")) &&
           !(uri && sep != NULL && strchr(sep, '@') != NULL);
}

static ee_status try_value(ee_config *cfg, const json_t *opt, const char *value)
{
    const char *name = json_string_value(json_object_get(opt, "name"));
    char *summary = NULL;
    ee_status st = ee_config_set(cfg, name, value);
    if (st != EE_OK) {
        expect_clean("ee_config_set's message", name, value, ee_error_last_message());
        char *doc = NULL;
        cr_assert_eq(ee_error_last_json(&doc), EE_OK);
        expect_clean("the error document", name, value, doc);
        ee_free(doc);
    }
    cr_assert_eq(ee_config_summary_json(cfg, &summary), EE_OK);
    allow_last4 = strcmp(json_string_value(json_object_get(opt, "type")), "secret-key") == 0;
    if (st != EE_OK || !summary_may_show(opt, value))
        expect_clean("the config summary", name, value, summary);
    allow_last4 = false;
    ee_free(summary);

    /* The same value from the environment. */
    size_t n = strlen(name) + strlen(value) + 2;
    char *entry = malloc(n);
    snprintf(entry, n, "%s=%s", name, value);
    const char *env[] = {entry, NULL};
    if (ee_config_load_envp(cfg, env) != EE_OK)
        expect_clean("ee_config_load_envp's message", name, value, ee_error_last_message());
    free(entry);
    cr_assert_eq(ee_config_unset(cfg, name), EE_OK);
    return st;
}

Test(config_canary, no_rejected_value_leaks_a_password)
{
    char *text = NULL;
    cr_assert_eq(ee_config_options_json(&text), EE_OK);
    json_t *options = json_loads(text, 0, NULL);
    ee_free(text);
    cr_assert(json_is_array(options));
    ee_config *cfg = NULL;
    cr_assert_eq(ee_config_new(&cfg), EE_OK);
    size_t i, rejected = 0, tried = 0;
    json_t *opt;
    json_array_foreach(options, i, opt) {
        for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
            char *v = with_canary(shapes[k]);
            rejected += try_value(cfg, opt, v) != EE_OK;
            tried++;
            free(v);
        }
        const size_t lengths[] = {120, 2100, 5000};
        for (size_t k = 0; k < 3; k++)
            for (int first = 0; first < 2; first++) {
                char *v = long_value(first, lengths[k]);
                rejected += try_value(cfg, opt, v) != EE_OK;
                tried++;
                free(v);
            }
    }
    /* Most of those were refused: the test looked at real messages. */
    cr_expect_gt(rejected, tried / 2, "%zu of %zu refused", rejected, tried);
    cr_expect_gt(tried, 500);
    json_decref(options);
    ee_config_free(cfg);
}

/* The example, exactly: the message still says what was wrong and
 * shows the scheme and host, never the userinfo. */
Test(config_canary, a_mistyped_storage_uri_shows_its_scheme_not_its_password)
{
    ee_config *cfg = NULL;
    cr_assert_eq(ee_config_new(&cfg), EE_OK);
    cr_expect_eq(ee_config_set(cfg, "EE_STORAGE_URI", "postgress://ee:hunter2hunter2@db/ee"),
                 EE_EINVAL);
    const char *msg = ee_error_last_message();
    cr_expect_null(strstr(msg, "hunter2"), "%s", msg);
    cr_expect_not_null(strstr(msg, "EE_STORAGE_URI"), "%s", msg);
    cr_expect_not_null(strstr(msg, "\"postgress://***@db...\""), "%s", msg);
    ee_config_free(cfg);
}

/* Opening an engine with a password in the storage (EE_STORAGE_URI, or the
 * DATABASE_* variables, whose URI the config builds) to a server that is
 * not there: neither the failure nor its log lines carry the password,
 * whether as given or percent-encoded. */
Test(config_canary, engine_open_failures_do_not_leak_the_database_password)
{
    const char *const passwords[] = {CANARY, "p@ss/" CANARY ":%"};
    for (size_t k = 0; k < 2; k++) {
        for (int use_vars = 0; use_vars < 2; use_vars++) {
            ee_config *cfg = NULL;
            cr_assert_eq(ee_config_new(&cfg), EE_OK);
            cr_assert_eq(ee_config_set_log(cfg, capture, EE_LOG_DEBUG, NULL), EE_OK);
            cr_assert_eq(ee_config_set(cfg, "API_KEY_ENCRYPTION_SECRET",
                                       "test-secret-0123456789abcdef0123456789"), EE_OK);
            if (use_vars) {
                cr_assert_eq(ee_config_set(cfg, "DATABASE_TYPE", "postgres"), EE_OK);
                cr_assert_eq(ee_config_set(cfg, "DATABASE_HOST", "127.0.0.1"), EE_OK);
                cr_assert_eq(ee_config_set(cfg, "DATABASE_PORT", "1"), EE_OK);
                cr_assert_eq(ee_config_set(cfg, "DATABASE_USER", "ee"), EE_OK);
                cr_assert_eq(ee_config_set(cfg, "DATABASE_PASSWORD", passwords[k]), EE_OK);
            } else {
                char uri[160];
                snprintf(uri, sizeof uri, "postgres://ee:%s@127.0.0.1:1/ee", CANARY);
                cr_assert_eq(ee_config_set(cfg, "EE_STORAGE_URI", uri), EE_OK);
            }
            loglen = 0;
            logtext[0] = '\0';
            ee_engine *e = NULL;
            ee_status st = ee_engine_open(&e, cfg);
            cr_expect_neq(st, EE_OK);
            expect_clean("the open's message", "storage", passwords[k], ee_error_last_message());
            expect_clean("the open's log lines", "storage", passwords[k], logtext);
            cr_expect_gt(loglen, 0, "the failure was logged");
            char *summary = NULL;
            cr_assert_eq(ee_config_summary_json(cfg, &summary), EE_OK);
            expect_clean("the config summary", "storage", passwords[k], summary);
            ee_free(summary);
            ee_config_free(cfg);
        }
    }
}
