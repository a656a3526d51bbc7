#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

static ee_config *cfg;

static void setup(void) { cr_assert_eq(ee_config_new(&cfg), EE_OK); }
static void teardown(void) { ee_config_free(cfg); }

static int64_t get_int(const char *key)
{
    int64_t v = -12345;
    cr_assert_eq(ee_config_get_int64(cfg, key, &v), EE_OK, "%s: %s", key, ee_error_last_message());
    return v;
}

static void expect_string(const char *key, const char *want)
{
    char *v = NULL;
    cr_assert_eq(ee_config_get_string(cfg, key, &v), EE_OK, "%s: %s", key, ee_error_last_message());
    if (want == NULL)
        cr_expect_null(v, "%s should have no value", key);
    else
        cr_expect_str_eq(v, want, "%s", key);
    ee_free(v);
}

TestSuite(config, .init = setup, .fini = teardown);

Test(config, defaults_follow_the_seeds)
{
    cr_expect_eq(get_int("MAX_EXECUTIONS_PER_USER_PER_HOUR"), 50);
    cr_expect_eq(get_int("MAX_CONCURRENT_EXECUTIONS"), 10);
    cr_expect_eq(get_int("RESULT_RETENTION_DAYS"), 90);
    cr_expect_eq(get_int("PLATFORM_API_MARKUP_PERCENTAGE"), 2000); /* 20% in basis points */
    cr_expect_eq(get_int("FREE_TIER_MONTHLY_ALLOWANCE"), INT64_C(10000000000)); /* $10 */
    cr_expect_eq(get_int("BILLING_CYCLE_DAY"), 1);
    cr_expect_eq(get_int("SMTP_PORT"), 587);
    expect_string("N8N_BASE_URL", "http://127.0.0.1:5678");
    expect_string("OPENROUTER_API_URL", "https://openrouter.ai/api/v1");
    /* unset: the engine picks storage: for a file or PostgreSQL, memory: else */
    expect_string("EE_COUNTERS_URI", NULL);
    expect_string("N8N_WEBHOOK_URL", NULL);
    expect_string("SMTP_HOST", NULL);
    int set = -1;
    cr_expect_eq(ee_config_is_set(cfg, "MAX_CONCURRENT_EXECUTIONS", &set), EE_OK);
    cr_expect_eq(set, 0);
}

Test(config, default_storage_is_a_sqlite_file_under_the_data_home)
{
    setenv("XDG_DATA_HOME", "/srv/data", 1);
    ee_config *c = NULL;
    cr_assert_eq(ee_config_new(&c), EE_OK);
    char *v = NULL;
    cr_assert_eq(ee_config_get_string(c, "EE_STORAGE_URI", &v), EE_OK);
    cr_expect_str_eq(v, "sqlite:///srv/data/execengine/execengine.db");
    ee_free(v);
    ee_config_free(c);

    unsetenv("XDG_DATA_HOME");
    setenv("HOME", "/home/ada", 1);
    cr_assert_eq(ee_config_new(&c), EE_OK);
    cr_assert_eq(ee_config_get_string(c, "EE_STORAGE_URI", &v), EE_OK);
    cr_expect_str_eq(v, "sqlite:///home/ada/.local/share/execengine/execengine.db");
    ee_free(v);
    ee_config_free(c);
}

/* Every variable named in both seeds (plus ours), loaded from an
 * environment block, then read back. */
static const char *const full_env[] = {
    "N8N_BASE_URL=https://n8n.example.com",
    "N8N_API_KEY=n8n-api-key-0123456789abcdef",
    "N8N_WEBHOOK_URL=https://crm.example.com/api/webhooks/n8n",
    "OPENROUTER_API_URL=https://openrouter.example/api/v1",
    "OPENROUTER_APP_NAME=CRM-X-SHIVAY",
    "OPENROUTER_APP_URL=https://crm.example.com",
    "PLATFORM_OPENROUTER_API_KEY=sk-or-v1-platform-seed1-0001",
    "PLATFORM_OPENROUTER_KEY=sk-or-v1-platform-seed2-0002",
    "PLATFORM_SERPER_KEY=serper-key-000000000001",
    "PLATFORM_FIRECRAWL_KEY=fc-key-00000000000001",
    "PLATFORM_RESEND_KEY=re_key_000000000000001",
    "PLATFORM_FROM_EMAIL=noreply@example.com",
    "PLATFORM_BRAVE_KEY=BSA-key-0000000000001",
    "PLATFORM_TAVILY_KEY=tvly-key-000000000001",
    "PLATFORM_YOUTUBE_KEY=AIzaSy-key-0000000001",
    "API_KEY_ENCRYPTION_SECRET=0123456789abcdef0123456789abcdef-secret",
    "SMTP_HOST=smtp.example.com",
    "SMTP_PORT=2525",
    "SMTP_USER=mailer",
    "SMTP_PASS=hunter2-smtp",
    "MAX_EXECUTIONS_PER_USER_PER_HOUR=75",
    "MAX_CONCURRENT_EXECUTIONS=3",
    "RESULT_RETENTION_DAYS=30",
    "PLATFORM_API_MARKUP_PERCENTAGE=12.5",
    "FREE_TIER_MONTHLY_ALLOWANCE=2.75",
    "BILLING_CYCLE_DAY=15",
    "EE_STORAGE_URI=postgres://ee:pgpass@db.example.com:5432/ee",
    "EE_COUNTERS_URI=redis://127.0.0.1:6379/2",
    "UNRELATED_VARIABLE=ignored",
    "NO_EQUALS_SIGN",
    NULL,
};

Test(config, every_variable_loads_from_an_environment_block)
{
    cr_assert_eq(ee_config_load_envp(cfg, full_env), EE_OK, "%s", ee_error_last_message());
    expect_string("N8N_BASE_URL", "https://n8n.example.com");
    expect_string("N8N_WEBHOOK_URL", "https://crm.example.com/api/webhooks/n8n");
    expect_string("OPENROUTER_API_URL", "https://openrouter.example/api/v1");
    expect_string("OPENROUTER_APP_NAME", "CRM-X-SHIVAY");
    expect_string("OPENROUTER_APP_URL", "https://crm.example.com");
    expect_string("PLATFORM_FROM_EMAIL", "noreply@example.com");
    expect_string("SMTP_HOST", "smtp.example.com");
    expect_string("SMTP_USER", "mailer");
    expect_string("EE_STORAGE_URI", "postgres://ee:***@db.example.com:5432/ee");
    expect_string("EE_COUNTERS_URI", "redis://127.0.0.1:6379/2");
    cr_expect_eq(get_int("SMTP_PORT"), 2525);
    cr_expect_eq(get_int("MAX_EXECUTIONS_PER_USER_PER_HOUR"), 75);
    cr_expect_eq(get_int("MAX_CONCURRENT_EXECUTIONS"), 3);
    cr_expect_eq(get_int("RESULT_RETENTION_DAYS"), 30);
    cr_expect_eq(get_int("PLATFORM_API_MARKUP_PERCENTAGE"), 1250);
    cr_expect_eq(get_int("FREE_TIER_MONTHLY_ALLOWANCE"), INT64_C(2750000000));
    cr_expect_eq(get_int("BILLING_CYCLE_DAY"), 15);

    static const char *const secrets[] = {
        "N8N_API_KEY", "PLATFORM_OPENROUTER_API_KEY", "PLATFORM_OPENROUTER_KEY",
        "PLATFORM_SERPER_KEY", "PLATFORM_FIRECRAWL_KEY", "PLATFORM_RESEND_KEY",
        "PLATFORM_BRAVE_KEY", "PLATFORM_TAVILY_KEY", "PLATFORM_YOUTUBE_KEY",
        "API_KEY_ENCRYPTION_SECRET", "SMTP_PASS",
    };
    for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++) {
        int set = 0;
        char *v = (char *)"untouched";
        cr_expect_eq(ee_config_is_set(cfg, secrets[i], &set), EE_OK);
        cr_expect_eq(set, 1, "%s should be set", secrets[i]);
        cr_expect_eq(ee_config_get_string(cfg, secrets[i], &v), EE_EPERM, "%s", secrets[i]);
        cr_expect_null(v);
        /* The internal accessor is what the credentials module will use. */
        cr_expect_not_null(ee__config_text(cfg, secrets[i]));
    }
    cr_expect_str_eq(ee__config_text(cfg, "SMTP_PASS"), "hunter2-smtp");
}

Test(config, load_env_reads_the_process_environment)
{
    setenv("MAX_CONCURRENT_EXECUTIONS", "7", 1);
    setenv("PLATFORM_SERPER_KEY", "serper-from-env-000000001", 1);
    setenv("BILLING_CYCLE_DAY", "", 1); /* empty counts as unset */
    cr_assert_eq(ee_config_load_env(cfg), EE_OK, "%s", ee_error_last_message());
    cr_expect_eq(get_int("MAX_CONCURRENT_EXECUTIONS"), 7);
    cr_expect_eq(get_int("BILLING_CYCLE_DAY"), 1);
    cr_expect_str_eq(ee__config_text(cfg, "PLATFORM_SERPER_KEY"), "serper-from-env-000000001");
}

/* ---- bad values ----------------------------------------------------------- */

typedef struct {
    const char *name;
    const char *value;
    ee_status status;
} bad_case;

static const bad_case bad_cases[] = {
    {"MAX_EXECUTIONS_PER_USER_PER_HOUR", "-1", EE_EINVAL},
    {"MAX_EXECUTIONS_PER_USER_PER_HOUR", "fifty", EE_EINVAL},
    {"MAX_EXECUTIONS_PER_USER_PER_HOUR", "50.5", EE_EINVAL},
    {"MAX_EXECUTIONS_PER_USER_PER_HOUR", " 50", EE_EINVAL},
    {"MAX_EXECUTIONS_PER_USER_PER_HOUR", "99999999999999999999999", EE_EINVAL},
    {"MAX_CONCURRENT_EXECUTIONS", "-10", EE_EINVAL},
    {"MAX_CONCURRENT_EXECUTIONS", "0", EE_EINVAL},
    {"MAX_CONCURRENT_EXECUTIONS", "", EE_EINVAL},
    {"RESULT_RETENTION_DAYS", "-90", EE_EINVAL},
    {"RESULT_RETENTION_DAYS", "90d", EE_EINVAL},
    {"PLATFORM_API_MARKUP_PERCENTAGE", "twenty", EE_EINVAL},
    {"PLATFORM_API_MARKUP_PERCENTAGE", "20%", EE_EINVAL},
    {"PLATFORM_API_MARKUP_PERCENTAGE", "-5", EE_EINVAL},
    {"PLATFORM_API_MARKUP_PERCENTAGE", "12.345", EE_EINVAL},
    {"PLATFORM_API_MARKUP_PERCENTAGE", "1e2", EE_EINVAL},
    {"PLATFORM_API_MARKUP_PERCENTAGE", "1000.01", EE_EINVAL},
    {"FREE_TIER_MONTHLY_ALLOWANCE", "$10", EE_EINVAL},
    {"FREE_TIER_MONTHLY_ALLOWANCE", "-1", EE_EINVAL},
    {"FREE_TIER_MONTHLY_ALLOWANCE", "0.0000000001", EE_EINVAL},
    {"FREE_TIER_MONTHLY_ALLOWANCE", "10.", EE_EINVAL},
    {"BILLING_CYCLE_DAY", "0", EE_EINVAL},
    {"BILLING_CYCLE_DAY", "29", EE_EINVAL},
    {"SMTP_PORT", "70000", EE_EINVAL},
    {"SMTP_PORT", "smtp", EE_EINVAL},
    {"SMTP_HOST", "smtp example com", EE_EINVAL},
    {"N8N_BASE_URL", "ftp://n8n.example.com", EE_EINVAL},
    {"N8N_BASE_URL", "n8n.example.com", EE_EINVAL},
    {"N8N_BASE_URL", "http://", EE_EINVAL},
    {"OPENROUTER_API_URL", "https://open router.ai", EE_EINVAL},
    {"PLATFORM_FROM_EMAIL", "not-an-address", EE_EINVAL},
    {"PLATFORM_FROM_EMAIL", "a@b@c.com", EE_EINVAL},
    /* what the From: header would read as more than one plain address,
     * or as bytes it cannot carry (passed the check before) */
    {"PLATFORM_FROM_EMAIL", "a@example.com,b@example.com", EE_EINVAL},
    {"PLATFORM_FROM_EMAIL", "a@example.com;b@example.com", EE_EINVAL},
    {"PLATFORM_FROM_EMAIL", "Results<results@example.com>", EE_EINVAL},
    {"PLATFORM_FROM_EMAIL", "<results@example.com>", EE_EINVAL},
    {"PLATFORM_FROM_EMAIL", "\"a\"@example.com", EE_EINVAL},
    {"PLATFORM_FROM_EMAIL", "a(c)@example.com", EE_EINVAL},
    {"PLATFORM_FROM_EMAIL", "ren\xc3\xa9@example.com", EE_EINVAL},
    {"PLATFORM_FROM_EMAIL", "a@ex\xc3\xa4mple.com", EE_EINVAL},
    {"PLATFORM_FROM_EMAIL", "a\tb@example.com", EE_EINVAL},
    {"PLATFORM_FROM_EMAIL", ".a@example.com", EE_EINVAL},
    {"PLATFORM_FROM_EMAIL", "a..b@example.com", EE_EINVAL},
    {"PLATFORM_FROM_EMAIL", "a@example..com", EE_EINVAL},
    {"PLATFORM_FROM_EMAIL", "a@example.com.", EE_EINVAL},
    {"PLATFORM_FROM_EMAIL", "a@-example.com", EE_EINVAL},
    {"PLATFORM_FROM_EMAIL", "a@example_1.com", EE_EINVAL},
    {"PLATFORM_FROM_EMAIL", "a@[127.0.0.1]", EE_EINVAL},
    {"PLATFORM_FROM_EMAIL", "a@localhost", EE_EINVAL},
    {"EE_STORAGE_URI", "mongodb://localhost/ee", EE_EINVAL},
    {"EE_STORAGE_URI", "sqlite://", EE_EINVAL},
    {"EE_COUNTERS_URI", "etcd://127.0.0.1", EE_EINVAL},
    {"API_KEY_ENCRYPTION_SECRET", "too-short-secret", EE_EINVAL},
    {"N8N_API_KEY", "key-with-newline\n-0000", EE_EINVAL},
    {"OPENROUTER_APP_NAME", "bad \xff utf8", EE_EINVAL},
};

Test(config, bad_values_are_rejected_naming_the_variable_and_change_nothing)
{
    char *before = NULL, *after = NULL;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const bad_case *c = &bad_cases[i];
        cr_assert_eq(ee_config_summary_json(cfg, &before), EE_OK);
        ee_status st = ee_config_set(cfg, c->name, c->value);
        cr_expect_eq(st, c->status, "%s=\"%s\": got %s", c->name, c->value, ee_status_name(st));
        cr_expect_not_null(strstr(ee_error_last_message(), c->name),
                           "message for %s does not name it: %s", c->name, ee_error_last_message());
        cr_assert_eq(ee_config_summary_json(cfg, &after), EE_OK);
        cr_expect_str_eq(after, before, "%s=\"%s\" changed the config", c->name, c->value);
        ee_free(before);
        ee_free(after);
    }
}

/* The address check is a plain addr-spec, not a guess: what RFC 5322
 * allows in a dot-atom is still taken. */
Test(config, plain_addresses_are_taken)
{
    static const char *const good[] = {
        "noreply@example.com", "first.last+tag@mail.example-host.co.uk",
        "o'brien_#1@example.com", "a!b$c%d&e*f=g?h^i`j{k|l}m~n/o@example.com",
        "ee@127.0.0.1", "X@EXAMPLE.COM",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        cr_expect_eq(ee_config_set(cfg, "PLATFORM_FROM_EMAIL", good[i]), EE_OK, "%s: %s",
                     good[i], ee_error_last_message());
    char local[80], addr[100];
    memset(local, 'l', 65);
    local[65] = '\0';
    snprintf(addr, sizeof addr, "%s@example.com", local);
    cr_expect_eq(ee_config_set(cfg, "PLATFORM_FROM_EMAIL", addr), EE_EINVAL,
                 "a local part over 64 bytes");
    local[64] = '\0';
    snprintf(addr, sizeof addr, "%s@example.com", local);
    cr_expect_eq(ee_config_set(cfg, "PLATFORM_FROM_EMAIL", addr), EE_OK, "%s",
                 ee_error_last_message());
}

Test(config, bad_environment_value_names_the_environment_variable)
{
    const char *env[] = {"MAX_CONCURRENT_EXECUTIONS=4", "PLATFORM_API_MARKUP_PERCENTAGE=abc", NULL};
    cr_expect_eq(ee_config_load_envp(cfg, env), EE_EINVAL);
    /* "abc" is not quoted back: text that is not a number may be a password
     * put in the wrong variable (config_canary.c). */
    cr_expect_str_eq(ee_error_last_message(),
                     "environment variable PLATFORM_API_MARKUP_PERCENTAGE: expected a non-negative "
                     "percentage with at most 2 decimals");
    /* Variables before the bad one were applied; documented behaviour. */
    cr_expect_eq(get_int("MAX_CONCURRENT_EXECUTIONS"), 4);

    setenv("MAX_EXECUTIONS_PER_USER_PER_HOUR", "-3", 1);
    cr_expect_eq(ee_config_load_env(cfg), EE_EINVAL);
    cr_expect_not_null(strstr(ee_error_last_message(),
                              "environment variable MAX_EXECUTIONS_PER_USER_PER_HOUR"));
    cr_expect_eq(get_int("MAX_EXECUTIONS_PER_USER_PER_HOUR"), 50);
}

Test(config, secret_values_never_appear_in_messages)
{
    const char *canary = "CANARY-short-secret-7f3a";
    cr_expect_eq(ee_config_set(cfg, "API_KEY_ENCRYPTION_SECRET", canary), EE_EINVAL);
    cr_expect_null(strstr(ee_error_last_message(), canary));
    cr_expect_null(strstr(ee_error_last_message(), "7f3a"));
}

/* A secret-key option's keys go into HTTP headers as they are
 * (Authorization: Bearer, X-N8N-API-KEY): each key is printable ASCII
 * without spaces. An 8-bit byte (valid UTF-8) or an inner space was
 * taken before; the refusal names the variable and quotes nothing. */
Test(config, secret_keys_are_printable_ascii_without_spaces)
{
    static const char *const keys[] = {"PLATFORM_OPENROUTER_API_KEY", "PLATFORM_SERPER_KEY",
                                       "N8N_API_KEY"};
    static const char *const bad[] = {
        "sk-or-CANARY\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", /* sk-or-éééé */
        "CANARY-nbsp\xc2\xa0tail",                          /* U+00A0 */
        "CANARY-c1\xc2\x85tail",                            /* U+0085 (NEL) */
        "CANARY inner-space",
        "CANARY-one,CANARY two",                             /* the second key */
        " , ",                                               /* no key at all */
    };
    static const char *const good[] = {
        "CANARY-plain-0123456789",
        "CANARY-one,CANARY-two",
        "CANARY-one , CANARY-two ",  /* spaces around a comma: trimmed by the pool */
        "!\"#$%&'()*+-./0123456789:;<=>?@AZ[\\]^_`az{|}~", /* 0x21..0x7E */
    };
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            cr_expect_eq(ee_config_set(cfg, keys[k], bad[i]), EE_EINVAL, "%s case %zu", keys[k],
                         i);
            const char *msg = ee_error_last_message();
            cr_expect_not_null(strstr(msg, keys[k]), "names the variable: %s", msg);
            cr_expect_null(strstr(msg, "CANARY"), "quotes the value: %s", msg);
            int set = -1;
            cr_expect_eq(ee_config_is_set(cfg, keys[k], &set), EE_OK);
            cr_expect_eq(set, 0, "%s case %zu was kept", keys[k], i);
        }
        for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
            cr_expect_eq(ee_config_set(cfg, keys[k], good[i]), EE_OK, "%s good %zu: %s", keys[k],
                         i, ee_error_last_message());
    }
}

/* Found by fuzz.config_options: a refused URI was quoted whole, password
 * included. Only its scheme, host and port are quoted now. */
Test(config, a_refused_uri_never_shows_its_password)
{
    const char *canary = "CANARY-db-password-9c1e";
    const char *env[] = {"EE_COUNTERS_URI=postgres://app:CANARY-db-password-9c1e@db:5432/ee", NULL};
    cr_expect_eq(ee_config_set(cfg, "EE_COUNTERS_URI",
                               "postgres://app:CANARY-db-password-9c1e@db:5432/ee"), EE_EINVAL);
    cr_expect_null(strstr(ee_error_last_message(), canary), "%s", ee_error_last_message());
    cr_expect_not_null(strstr(ee_error_last_message(), "postgres://***@db:5432"),
                       "%s", ee_error_last_message());
    cr_expect_eq(ee_config_load_envp(cfg, env), EE_EINVAL);
    cr_expect_null(strstr(ee_error_last_message(), canary), "%s", ee_error_last_message());
    cr_expect_eq(ee_config_set(cfg, "N8N_BASE_URL", "ftp://n8n:CANARY-db-password-9c1e@host/"),
                 EE_EINVAL);
    cr_expect_null(strstr(ee_error_last_message(), canary), "%s", ee_error_last_message());
}

Test(config, oversize_values)
{
    char *big = malloc(5000);
    memset(big, 'a', 4999);
    big[4999] = '\0';
    cr_expect_eq(ee_config_set(cfg, "OPENROUTER_APP_NAME", big), EE_ETOOBIG);
    cr_expect_not_null(strstr(ee_error_last_message(), "OPENROUTER_APP_NAME"));
    big[300] = '\0'; /* over the option's own 256-byte limit */
    cr_expect_eq(ee_config_set(cfg, "OPENROUTER_APP_NAME", big), EE_EINVAL);
    free(big);
}

Test(config, unknown_keys_and_null_arguments)
{
    cr_expect_eq(ee_config_set(cfg, "MAX_EXECUTIONS_PER_DAY", "5"), EE_EINVAL);
    cr_expect_not_null(strstr(ee_error_last_message(), "MAX_EXECUTIONS_PER_DAY"));
    cr_expect_eq(ee_config_set(NULL, "SMTP_PORT", "25"), EE_EINVAL);
    cr_expect_eq(ee_config_set(cfg, NULL, "25"), EE_EINVAL);
    cr_expect_eq(ee_config_set(cfg, "SMTP_PORT", NULL), EE_EINVAL);
    int64_t v;
    cr_expect_eq(ee_config_get_int64(cfg, "SMTP_HOST", &v), EE_EINVAL);
    char *s = NULL;
    cr_expect_eq(ee_config_get_string(cfg, "SMTP_PORT", &s), EE_EINVAL);
    cr_expect_eq(ee_config_new(NULL), EE_EINVAL);
    ee_config_free(NULL);
}

Test(config, typed_setter_checks_type_and_range)
{
    cr_expect_eq(ee_config_set_int64(cfg, "FREE_TIER_MONTHLY_ALLOWANCE", 1), EE_OK);
    cr_expect_eq(get_int("FREE_TIER_MONTHLY_ALLOWANCE"), 1);
    cr_expect_eq(ee_config_set_int64(cfg, "MAX_CONCURRENT_EXECUTIONS", -1), EE_EINVAL);
    cr_expect_not_null(strstr(ee_error_last_message(), "MAX_CONCURRENT_EXECUTIONS"));
    cr_expect_eq(get_int("MAX_CONCURRENT_EXECUTIONS"), 10);
    cr_expect_eq(ee_config_set_int64(cfg, "N8N_BASE_URL", 3), EE_EINVAL);
    cr_expect_eq(ee_config_set_int64(cfg, "PLATFORM_API_MARKUP_PERCENTAGE", 100001), EE_EINVAL);
}

Test(config, unset_restores_the_default_and_copy_is_independent)
{
    cr_assert_eq(ee_config_set(cfg, "SMTP_PORT", "25"), EE_OK);
    cr_assert_eq(ee_config_set(cfg, "SMTP_PASS", "pass-one"), EE_OK);
    ee_config *copy = NULL;
    cr_assert_eq(ee_config_copy(&copy, cfg), EE_OK);
    cr_assert_eq(ee_config_unset(cfg, "SMTP_PORT"), EE_OK);
    cr_assert_eq(ee_config_unset(cfg, "SMTP_PASS"), EE_OK);
    cr_expect_eq(get_int("SMTP_PORT"), 587);
    cr_expect_null(ee__config_text(cfg, "SMTP_PASS"));
    int64_t port = 0;
    cr_expect_eq(ee_config_get_int64(copy, "SMTP_PORT", &port), EE_OK);
    cr_expect_eq(port, 25);
    cr_expect_str_eq(ee__config_text(copy, "SMTP_PASS"), "pass-one");
    ee_config_free(copy);
}

Test(config, options_are_listed_once_each)
{
    char *text = NULL;
    cr_assert_eq(ee_config_options_json(&text), EE_OK);
    json_t *arr = json_loads(text, 0, NULL);
    ee_free(text);
    cr_assert(json_is_array(arr));
    cr_expect_eq(json_array_size(arr), 63); /* 40 + gateway 3 + exec 12 + audit 1 + notify 7 */
    size_t i;
    json_t *o;
    json_array_foreach(arr, i, o) {
        const char *name = json_string_value(json_object_get(o, "name"));
        cr_assert_not_null(name);
        int set;
        cr_expect_eq(ee_config_is_set(cfg, name, &set), EE_OK, "listed option %s unknown", name);
        if (json_is_true(json_object_get(o, "secret")))
            cr_expect(json_is_null(json_object_get(o, "default")), "%s default shown", name);
        for (size_t k = i + 1; k < json_array_size(arr); k++)
            cr_expect_str_neq(name, json_string_value(json_object_get(json_array_get(arr, k), "name")));
    }
    json_decref(arr);
}

Test(config, summary_masks_secrets_and_formats_money)
{
    cr_assert_eq(ee_config_load_envp(cfg, full_env), EE_OK);
    char *text = NULL;
    cr_assert_eq(ee_config_summary_json(cfg, &text), EE_OK);
    for (const char *const *e = full_env; *e != NULL; e++) {
        const char *eq = strchr(*e, '=');
        if (eq == NULL)
            continue;
        if (strstr(*e, "KEY=") != NULL || strstr(*e, "SECRET=") != NULL ||
            strstr(*e, "PASS=") != NULL)
            cr_expect_null(strstr(text, eq + 1), "summary leaks %s", *e);
    }
    cr_expect_null(strstr(text, "pgpass"));
    json_t *doc = json_loads(text, 0, NULL);
    ee_free(text);
    cr_assert_not_null(doc);
    json_t *k = json_object_get(doc, "PLATFORM_SERPER_KEY");
    cr_expect(json_is_true(json_object_get(k, "set")));
    cr_expect_str_eq(json_string_value(json_object_get(k, "last4")), "\xe2\x80\xa6" "0001");
    json_t *pw = json_object_get(doc, "SMTP_PASS");
    cr_expect_null(json_object_get(pw, "last4"));
    cr_expect_null(json_object_get(json_object_get(doc, "API_KEY_ENCRYPTION_SECRET"), "last4"));
    json_t *money = json_object_get(doc, "FREE_TIER_MONTHLY_ALLOWANCE");
    cr_expect_eq(json_integer_value(json_object_get(money, "nanoUsd")), 2750000000);
    cr_expect_str_eq(json_string_value(json_object_get(money, "usd")), "2.750000000");
    json_t *pct = json_object_get(doc, "PLATFORM_API_MARKUP_PERCENTAGE");
    cr_expect_str_eq(json_string_value(json_object_get(pct, "percent")), "12.50");
    cr_expect_str_eq(json_string_value(json_object_get(doc, "EE_STORAGE_URI")),
                     "postgres://ee:***@db.example.com:5432/ee");
    json_decref(doc);
}
