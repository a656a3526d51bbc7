/*
 * Canary secrets: values set in the config must never reach a log line, an
 * error message, an error document or a JSON answer.
 */
#include <criterion/criterion.h>
#include <ctype.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "engine/engine.h"

/* Every secret-bearing option, each with a distinct canary value. */
static const char *const canaries[][2] = {
    {"N8N_API_KEY", "CANARY-n8n-1f9d7c0e5b2a"},
    {"PLATFORM_OPENROUTER_API_KEY", "CANARY-or1-8e1b4d7c2f0a"},
    {"PLATFORM_OPENROUTER_KEY", "CANARY-or2-3c6a9f1e7d4b"},
    {"PLATFORM_SERPER_KEY", "CANARY-serper-5d2e8b"},
    {"PLATFORM_FIRECRAWL_KEY", "CANARY-firecrawl-0a7c"},
    {"PLATFORM_RESEND_KEY", "CANARY-resend-9b3f1e"},
    {"PLATFORM_BRAVE_KEY", "CANARY-brave-4e8a2d6c"},
    {"PLATFORM_TAVILY_KEY", "CANARY-tavily-7f1c3b9e"},
    {"PLATFORM_YOUTUBE_KEY", "CANARY-youtube-2d5a8f0"},
    {"API_KEY_ENCRYPTION_SECRET", "CANARY-encryption-secret-6b0e3a9d1c4f7e2a"},
    {"SMTP_PASS", "CANARY-smtp-pass-1a2b"},
};
#define NCANARIES (sizeof canaries / sizeof canaries[0])
static const char *const pg_password = "CANARYpgpw77";

/* Everything the log callback received, concatenated. */
static struct {
    pthread_mutex_t lock;
    char text[1 << 16];
    size_t len;
    int lines;
} logbuf = {PTHREAD_MUTEX_INITIALIZER, {0}, 0, 0};

static void capture(ee_log_level level, const char *module, const char *msg, void *payload)
{
    (void)level;
    (void)module;
    cr_assert_eq(payload, &logbuf);
    pthread_mutex_lock(&logbuf.lock);
    size_t n = strlen(msg);
    if (logbuf.len + n + 2 < sizeof logbuf.text) {
        memcpy(logbuf.text + logbuf.len, msg, n);
        logbuf.len += n;
        logbuf.text[logbuf.len++] = '\n';
    }
    logbuf.lines++;
    pthread_mutex_unlock(&logbuf.lock);
}

static void expect_no_canary(const char *where, const char *text)
{
    for (size_t i = 0; i < NCANARIES; i++)
        cr_expect_null(strstr(text, canaries[i][1]), "%s leaks %s", where, canaries[i][0]);
    cr_expect_null(strstr(text, pg_password), "%s leaks the storage URI password", where);
}

static ee_engine *open_with_canaries(void)
{
    ee_config *cfg = NULL;
    cr_assert_eq(ee_config_new(&cfg), EE_OK);
    for (size_t i = 0; i < NCANARIES; i++)
        cr_assert_eq(ee_config_set(cfg, canaries[i][0], canaries[i][1]), EE_OK, "%s: %s",
                     canaries[i][0], ee_error_last_message());
    cr_assert_eq(ee_config_set(cfg, "EE_STORAGE_URI", "memory:"), EE_OK);
    cr_assert_eq(ee_config_set_log(cfg, capture, EE_LOG_DEBUG, &logbuf), EE_OK);
    ee_engine *e = NULL;
    cr_assert_eq(ee_engine_open(&e, cfg), EE_OK, "%s", ee_error_last_message());
    ee_config_free(cfg);
    return e;
}

Test(secrets, never_in_logs_messages_or_json)
{
    ee_engine *e = open_with_canaries();
    const ee__logger *lg = ee__engine_logger(e);

    /* A careless module logging and failing with every secret verbatim. */
    for (size_t i = 0; i < NCANARIES; i++) {
        ee__log(lg, EE_LOG_ERROR, "test", "calling upstream with %s=%s (header %s)",
                canaries[i][0], canaries[i][1], canaries[i][1]);
        ee__error_full(EE_EUPSTREAM, 500, json_pack("{s:s}", "echo", "redacted below"),
                       "upstream rejected key %s", canaries[i][1]);
        expect_no_canary("error message", ee_error_last_message());
        cr_expect_not_null(strstr(ee_error_last_message(), "[REDACTED]"));
        char *doc = NULL;
        cr_assert_eq(ee_error_last_json(&doc), EE_OK);
        expect_no_canary("error document", doc);
        ee_free(doc);
    }

    char *summary = NULL;
    cr_assert_eq(ee_engine_summary_json(e, &summary), EE_OK);
    expect_no_canary("engine summary", summary);
    ee_free(summary);
    char *options = NULL;
    cr_assert_eq(ee_config_options_json(&options), EE_OK);
    expect_no_canary("options list", options);
    ee_free(options);

    ee_engine_close(e);
    cr_expect_geq(logbuf.lines, (int)NCANARIES + 2, "open, one line per canary, close");
    expect_no_canary("log lines", logbuf.text);
    cr_expect_not_null(strstr(logbuf.text, "[REDACTED]"));
}

/* A storage URI's password never leaves the config: not in the error of a
 * failed connection, not in the log line about it. */
#if EE_WITH_POSTGRES /* a failed PostgreSQL connection (without it: core/features.c) */
Test(secrets, storage_password_not_in_connection_errors)
{
    ee_config *cfg = NULL;
    cr_assert_eq(ee_config_new(&cfg), EE_OK);
    char uri[160];
    snprintf(uri, sizeof uri, "postgres://ee:%s@127.0.0.1:1/ee?connect_timeout=2", pg_password);
    cr_assert_eq(ee_config_set(cfg, "EE_STORAGE_URI", uri), EE_OK);
    cr_assert_eq(ee_config_set_log(cfg, capture, EE_LOG_DEBUG, &logbuf), EE_OK);
    ee_engine *e = NULL;
    cr_expect_eq(ee_engine_open(&e, cfg), EE_ENETWORK);
    expect_no_canary("connection error", ee_error_last_message());
    char *doc = NULL;
    cr_assert_eq(ee_error_last_json(&doc), EE_OK);
    expect_no_canary("connection error document", doc);
    ee_free(doc);
    char *summary = NULL;
    cr_assert_eq(ee_config_summary_json(cfg, &summary), EE_OK);
    expect_no_canary("config summary", summary);
    ee_free(summary);
    ee_config_free(cfg);
    cr_expect_gt(logbuf.lines, 0, "the failure was logged");
    expect_no_canary("log lines", logbuf.text);
}
#endif

Test(secrets, token_shapes_are_redacted_even_when_unknown)
{
    char line[512];
    snprintf(line, sizeof line,
             "GET /key Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig "
             "X-N8N-API-KEY: n8n_api_abcdef123456 body {\"apiKey\":\"xyz-789\"} "
             "key sk-or-v1-0123456789abcdef0123 and password=hunter2&user=bob");
    ee__redact(line, sizeof line);
    cr_expect_null(strstr(line, "eyJhbGci"));
    cr_expect_null(strstr(line, "n8n_api_abcdef123456"));
    cr_expect_null(strstr(line, "xyz-789"));
    cr_expect_null(strstr(line, "sk-or-v1-0123456789abcdef0123"));
    cr_expect_null(strstr(line, "hunter2"));
    cr_expect_not_null(strstr(line, "user=bob"), "non-secret text must survive: %s", line);
    cr_expect_not_null(strstr(line, "GET /key"));
}

Test(secrets, short_words_are_not_mistaken_for_keys)
{
    char line[128] = "task-runner sk-short ok";
    ee__redact(line, sizeof line);
    cr_expect_str_eq(line, "task-runner sk-short ok");
}

Test(secrets, redaction_truncates_safely_at_capacity)
{
    /* The mark is longer than the 7-byte secret: the line grows past its
     * capacity and must be cut, never overflowed. */
    ee__redact_register("SECRETV", 7);
    char small[16] = "aSECRETVbcdefgh";
    ee__redact(small, sizeof small);
    cr_expect_str_eq(small, "a[REDACTED]bcde");
    char edge[8] = "xSECRET";
    ee__redact(edge, sizeof edge);
    cr_expect_str_eq(edge, "xSECRET", "a partial secret is not a secret");
    char tight[12] = "abcSECRETV";
    ee__redact(tight, sizeof tight);
    cr_expect_str_eq(tight, "abc[REDACTE");
    cr_expect_null(strstr(tight, "SECRETV"));
    ee__redact_unregister("SECRETV", 7);
    char after[32] = "aSECRETVb";
    ee__redact(after, sizeof after);
    cr_expect_str_eq(after, "aSECRETVb", "unregistered values are no longer redacted");
}

Test(secrets, registration_is_counted_across_engines)
{
    ee_engine *a = open_with_canaries();
    ee_engine *b = open_with_canaries();
    ee_engine_close(a);
    char msg[128];
    snprintf(msg, sizeof msg, "still %s", canaries[3][1]);
    ee__redact(msg, sizeof msg);
    cr_expect_str_eq(msg, "still [REDACTED]", "b still holds the secret");
    ee_engine_close(b);
}

Test(secrets, log_level_filters_before_formatting)
{
    ee_config *cfg = NULL;
    cr_assert_eq(ee_config_new(&cfg), EE_OK);
    cr_assert_eq(ee_config_set_log(cfg, capture, EE_LOG_WARN, &logbuf), EE_OK);
    cr_assert_eq(ee_config_set(cfg, "EE_STORAGE_URI", "memory:"), EE_OK);
    cr_assert_eq(ee_config_set(cfg, "API_KEY_ENCRYPTION_SECRET",
                               "test-secret-0123456789abcdef0123456789"), EE_OK);
    cr_expect_eq(ee_config_set_log(cfg, capture, (ee_log_level)9, &logbuf), EE_EINVAL);
    ee_engine *e = NULL;
    cr_assert_eq(ee_engine_open(&e, cfg), EE_OK);
    ee_config_free(cfg);
    int before = logbuf.lines;
    ee__log(ee__engine_logger(e), EE_LOG_DEBUG, "test", "not delivered");
    ee__log(ee__engine_logger(e), EE_LOG_WARN, "test", "delivered");
    cr_expect_eq(logbuf.lines, before + 1);
    cr_expect_null(strstr(logbuf.text, "not delivered"));
    ee_engine_close(e);
}

/* Every marker the redactor knows, each in the shape it appears in: the
 * value after it is replaced, the text around it survives. A marker added
 * to the redactor without a row here fails `every_marker_has_a_row`. */
static const struct {
    const char *marker; /* as ee__redact_markers() lists it */
    const char *line;   /* holds the value "CANARY-v4lue-9d3e" after the marker */
} marker_rows[] = {
    {"bearer ", "GET /x Authorization: Bearer CANARY-v4lue-9d3e end"},
    {"basic ", "GET /x Authorization: Basic CANARY-v4lue-9d3e end"},
    {"x-n8n-api-key: ", "header X-N8N-API-KEY: CANARY-v4lue-9d3e end"},
    {"x-n8n-api-key:", "header x-n8n-api-key:CANARY-v4lue-9d3e end"},
    {"x-n8n-api-key=", "query x-n8n-api-key=CANARY-v4lue-9d3e&end"},
    {"api_key=", "GET /search?api_key=CANARY-v4lue-9d3e&q=end"},
    {"apikey=", "GET /search?apikey=CANARY-v4lue-9d3e&q=end"},
    {"api-key=", "GET /search?api-key=CANARY-v4lue-9d3e&q=end"},
    {"password=", "dsn host=db password=CANARY-v4lue-9d3e end"},
    {"passwd=", "dsn host=db passwd=CANARY-v4lue-9d3e end"},
    {"secret=", "POST client_secret=CANARY-v4lue-9d3e&end"},
    {"token=", "GET /cb?access_token=CANARY-v4lue-9d3e&end"},
    {"\"apikey\":\"", "body {\"apiKey\":\"CANARY-v4lue-9d3e\",\"end\":1}"},
    {"\"api_key\":\"", "body {\"api_key\": \"CANARY-v4lue-9d3e\", \"end\": 1}"},
    {"\"password\":\"", "body {\"password\" : \"CANARY-v4lue-9d3e\", \"end\": 1}"},
    {"\"secret\":\"", "body {\"secret\":\"CANARY-v4lue-9d3e\",\"end\":1}"},
    {"\"token\":\"", "body {\"token\": \"CANARY-v4lue-9d3e\", \"end\": 1}"},
    {"\"accesstoken\":\"", "body {\"accessToken\": \"CANARY-v4lue-9d3e\", \"end\": 1}"},
    {"\"refreshtoken\":\"", "body {\"refreshToken\": \"CANARY-v4lue-9d3e\", \"end\": 1}"},
    {"\"access_token\":\"", "oauth {\"access_token\": \"CANARY-v4lue-9d3e\", \"end\": 1}"},
    {"\"refresh_token\":\"", "oauth {\"refresh_token\":\"CANARY-v4lue-9d3e\",\"end\":1}"},
    {"\"client_secret\":\"", "oauth {\"client_secret\": \"CANARY-v4lue-9d3e\", \"end\": 1}"},
};

Test(secrets, every_marker_redacts_its_value)
{
    for (size_t i = 0; i < sizeof marker_rows / sizeof marker_rows[0]; i++) {
        char line[256];
        snprintf(line, sizeof line, "%s", marker_rows[i].line);
        ee__redact(line, sizeof line);
        cr_expect_null(strstr(line, "CANARY-v4lue-9d3e"), "marker %s: %s", marker_rows[i].marker,
                       line);
        cr_expect_not_null(strstr(line, "[REDACTED]"), "marker %s: %s", marker_rows[i].marker,
                           line);
        cr_expect_not_null(strstr(line, "end"), "marker %s: the rest survives: %s",
                           marker_rows[i].marker, line);
    }
}

Test(secrets, every_marker_has_a_row)
{
    size_t n = 0;
    const char *const *markers = ee__redact_markers(&n);
    cr_assert_gt(n, 0);
    for (size_t m = 0; m < n; m++) {
        /* the redactor skips a position whose lowered character is not
         * the marker's first: a marker must start lowercase */
        cr_expect_eq(tolower((unsigned char)markers[m][0]), (unsigned char)markers[m][0],
                     "marker %s must start with a lowercase character", markers[m]);
        bool found = false;
        for (size_t i = 0; i < sizeof marker_rows / sizeof marker_rows[0]; i++)
            found = found || strcmp(marker_rows[i].marker, markers[m]) == 0;
        cr_expect(found, "the redactor's marker %s has no row in marker_rows", markers[m]);
    }
    for (size_t i = 0; i < sizeof marker_rows / sizeof marker_rows[0]; i++) {
        bool known = false;
        for (size_t m = 0; m < n; m++)
            known = known || strcmp(marker_rows[i].marker, markers[m]) == 0;
        cr_expect(known, "row %s names no marker of the redactor", marker_rows[i].marker);
    }
}
