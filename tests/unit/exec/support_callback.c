/*
 * The signed completion callback (lib/exec/support.h, callback.c): the
 * per-execution key and where its install secret comes from, a good
 * signature, and every way a callback is refused - bad signature, another
 * execution's key, old and future timestamps, malformed headers, a body
 * changed by one byte - with the install secret in no message.
 */
#include <openssl/hmac.h>

#include "support_test.h"

#define CANARY_SECRET "CANARY-callback-install-secret-0123456789"
#define CANARY_ENC "CANARY-encryption-secret-abcdefghijklmnop"
#define NOW_MS INT64_C(1765000000000) /* 2025-12-06 */
#define WINDOW_MS INT64_C(300000)     /* 5 minutes */

static ee_engine *callback_engine(const char *secret)
{
    const char *kv[] = {"EXEC_CALLBACK_SECRET", secret, NULL};
    return st_engine(NULL, secret != NULL ? kv : NULL);
}

static void key_of(ee_engine *e, const char *id, char key[65])
{
    cr_assert_eq(ee__callback_key(e, id, key), EE_OK, "%s", ee_error_last_message());
}

static void hmac_hex(const void *k, size_t kl, const char *msg, size_t ml, char hex[65])
{
    unsigned char md[32];
    unsigned int n = 0;
    HMAC(EVP_sha256(), k, (int)kl, (const unsigned char *)msg, ml, md, &n);
    for (int i = 0; i < 32; i++)
        sprintf(hex + 2 * i, "%02x", md[i]);
}

/* Every message a refusal left must be free of these. */
static void no_leak(const char *msg, const char *const *secrets)
{
    for (size_t i = 0; secrets[i] != NULL; i++)
        cr_expect_null(strstr(msg, secrets[i]), "\"%s\" leaks a secret", msg);
}

Test(exec_callback, the_key_is_hmac_of_the_install_secret_and_the_execution)
{
    ee_engine *e = callback_engine(CANARY_SECRET);
    char k1[65], k2[65], again[65], want[65];
    key_of(e, "exec-1", k1);
    key_of(e, "exec-2", k2);
    key_of(e, "exec-1", again);
    cr_expect_eq(strlen(k1), 64);
    cr_expect_str_eq(k1, again, "every call (and process) derives the same key");
    cr_expect_str_neq(k1, k2, "one key per execution");
    hmac_hex(CANARY_SECRET, strlen(CANARY_SECRET), "ee-callback-v1:exec-1", 21, want);
    cr_expect_str_eq(k1, want, "HMAC-SHA256(EXEC_CALLBACK_SECRET, \"ee-callback-v1:\" + id)");
    ee_engine_close(e);

    /* Another install secret, other keys. */
    e = callback_engine("another-install-secret-0123456789abcdef");
    key_of(e, "exec-1", k2);
    cr_expect_str_neq(k1, k2);
    ee_engine_close(e);
}

Test(exec_callback, without_a_callback_secret_it_is_derived_from_the_encryption_secret)
{
    ee_engine *e = callback_engine(NULL);
    char k1[65], k2[65], k3[65];
    key_of(e, "exec-1", k1);
    ee_engine_close(e);
    e = callback_engine(NULL);
    key_of(e, "exec-1", k2);
    ee_engine_close(e);
    cr_expect_str_eq(k1, k2, "the same install, the same key");
    /* not the encryption secret itself as the HMAC key */
    char raw[65];
    hmac_hex(ST_SECRET, strlen(ST_SECRET), "ee-callback-v1:exec-1", 21, raw);
    cr_expect_str_neq(k1, raw, "derived through HKDF, not the secret as is");
    /* another encryption secret, another key */
    ee_config *cfg = st_config(NULL, NULL);
    st_set(cfg, "API_KEY_ENCRYPTION_SECRET", CANARY_ENC);
    ee_engine *e2 = NULL;
    cr_assert_eq(ee_engine_open(&e2, cfg), EE_OK, "%s", ee_error_last_message());
    ee_config_free(cfg);
    key_of(e2, "exec-1", k3);
    cr_expect_str_neq(k1, k3);
    ee_engine_close(e2);
}

Test(exec_callback, no_secret_at_all_is_a_clear_state_error)
{
    uint8_t out[64];
    size_t len = 99;
    cr_expect_eq(ee__callback_install_secret(NULL, NULL, out, sizeof out, &len), EE_ESTATE);
    cr_expect_eq(len, 0);
    const char *msg = ee_error_last_message();
    cr_expect_not_null(strstr(msg, "EXEC_CALLBACK_SECRET"), "%s", msg);
    cr_expect_not_null(strstr(msg, "API_KEY_ENCRYPTION_SECRET"), "%s", msg);
    cr_expect_eq(ee__callback_install_secret("", "", out, sizeof out, &len), EE_ESTATE);
    /* and with them: the callback secret as is, else 32 derived bytes */
    cr_expect_eq(ee__callback_install_secret(CANARY_SECRET, CANARY_ENC, out, sizeof out, &len),
                 EE_OK);
    cr_expect(len == strlen(CANARY_SECRET) && memcmp(out, CANARY_SECRET, len) == 0);
    cr_expect_eq(ee__callback_install_secret(NULL, CANARY_ENC, out, sizeof out, &len), EE_OK);
    cr_expect_eq(len, 32);
    cr_expect_eq(ee__callback_install_secret(CANARY_SECRET, NULL, out, 8, &len), EE_ETOOBIG);
    const char *secrets[] = {CANARY_SECRET, CANARY_ENC, NULL};
    no_leak(ee_error_last_message(), secrets);
}

Test(exec_callback, a_good_signature_verifies_and_is_the_documented_hmac)
{
    ee_engine *e = callback_engine(CANARY_SECRET);
    char key[65], sig[68], want[65];
    key_of(e, "exec-1", key);
    const char body[] = "{\"executionId\": \"exec-1\", \"status\": \"success\"}";
    cr_assert_eq(ee__callback_sign(key, "1765000000", body, sizeof body - 1, sig), EE_OK);
    cr_expect_eq(strncmp(sig, "v1=", 3), 0);
    cr_expect_eq(strlen(sig), 67);
    /* what a workflow computes: HMAC-SHA256 keyed by the key's 64 characters
     * over "<timestamp>.<body>" */
    char msg[256];
    int n = snprintf(msg, sizeof msg, "1765000000.%s", body);
    hmac_hex(key, 64, msg, (size_t)n, want);
    cr_expect_str_eq(sig + 3, want);
    cr_expect_eq(ee__callback_verify(key, "1765000000", sig, body, sizeof body - 1, NOW_MS,
                                     WINDOW_MS),
                 EE_OK, "%s", ee_error_last_message());
    /* upper-case hex is the same signature */
    char upper[68];
    for (int i = 0; i < 68; i++)
        upper[i] = i >= 3 && sig[i] >= 'a' && sig[i] <= 'f' ? (char)(sig[i] - 32) : sig[i];
    cr_expect_eq(ee__callback_verify(key, "1765000000", upper, body, sizeof body - 1, NOW_MS,
                                     WINDOW_MS),
                 EE_OK);
    /* an empty body signs too */
    cr_assert_eq(ee__callback_sign(key, "1765000000", NULL, 0, sig), EE_OK);
    cr_expect_eq(ee__callback_verify(key, "1765000000", sig, "", 0, NOW_MS, WINDOW_MS), EE_OK);
    ee_engine_close(e);
}

/* All refusals of one setting collected, to check their messages. */
static char messages[8192];

static void expect_refused(ee_status st, const char *what)
{
    cr_expect_eq(st, EE_EAUTH, "%s: %s", what, ee_status_name(st));
    strncat(messages, ee_error_last_message(), sizeof messages - strlen(messages) - 2);
    strcat(messages, "\n");
}

Test(exec_callback, bad_signatures_and_other_executions_keys_are_refused)
{
    ee_engine *e = callback_engine(CANARY_SECRET);
    char key[65], other[65], sig[68], bad[68];
    key_of(e, "exec-1", key);
    key_of(e, "exec-2", other);
    const char body[] = "{\"status\": \"success\", \"output\": 1}";
    size_t blen = sizeof body - 1;
    cr_assert_eq(ee__callback_sign(key, "1765000000", body, blen, sig), EE_OK);

    memcpy(bad, sig, sizeof bad);
    bad[10] = bad[10] == '0' ? '1' : '0';
    expect_refused(ee__callback_verify(key, "1765000000", bad, body, blen, NOW_MS, WINDOW_MS),
                   "one hex digit changed");
    char theirs[68];
    cr_assert_eq(ee__callback_sign(other, "1765000000", body, blen, theirs), EE_OK);
    expect_refused(ee__callback_verify(key, "1765000000", theirs, body, blen, NOW_MS, WINDOW_MS),
                   "signed with another execution's key");
    expect_refused(ee__callback_verify(other, "1765000000", sig, body, blen, NOW_MS, WINDOW_MS),
                   "checked against another execution");
    cr_expect_not_null(strstr(ee_error_last_message(), "does not match"), "%s",
                       ee_error_last_message());

    /* a body changed by one byte, anywhere, even past a NUL */
    char changed[sizeof body];
    for (size_t i = 0; i < blen; i += 7) {
        memcpy(changed, body, sizeof body);
        changed[i] ^= 0x01;
        expect_refused(ee__callback_verify(key, "1765000000", sig, changed, blen, NOW_MS,
                                           WINDOW_MS),
                       "body changed");
    }
    expect_refused(ee__callback_verify(key, "1765000000", sig, body, blen - 1, NOW_MS, WINDOW_MS),
                   "body cut by one byte");
    char longer[sizeof body + 1];
    memcpy(longer, body, sizeof body);
    longer[blen] = '\0';
    expect_refused(ee__callback_verify(key, "1765000000", sig, longer, blen + 1, NOW_MS,
                                       WINDOW_MS),
                   "a NUL appended");
    /* the same signature under another timestamp */
    expect_refused(ee__callback_verify(key, "1765000001", sig, body, blen, NOW_MS, WINDOW_MS),
                   "timestamp changed");

    /* No message holds the install secret, the key or the expected value. */
    const char *secrets[] = {CANARY_SECRET, key, other, sig + 3, theirs + 3, NULL};
    no_leak(messages, secrets);
    ee_engine_close(e);
}

Test(exec_callback, old_and_future_timestamps_are_refused)
{
    ee_engine *e = callback_engine(CANARY_SECRET);
    char key[65], sig[68], ts[32];
    key_of(e, "exec-1", key);
    const char body[] = "{}";
    const int64_t now_s = NOW_MS / 1000, win_s = WINDOW_MS / 1000;
    const struct {
        int64_t at;
        ee_status want;
    } cases[] = {
        {now_s, EE_OK},
        {now_s - win_s, EE_OK},      /* at the edge */
        {now_s + win_s, EE_OK},
        {now_s - win_s - 1, EE_EAUTH}, /* old */
        {now_s + win_s + 1, EE_EAUTH}, /* from the future */
        {now_s - 86400, EE_EAUTH},
        {now_s + 86400, EE_EAUTH},
        {0, EE_EAUTH},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(ts, sizeof ts, "%lld", (long long)cases[i].at);
        cr_assert_eq(ee__callback_sign(key, ts, body, 2, sig), EE_OK);
        ee_status st = ee__callback_verify(key, ts, sig, body, 2, NOW_MS, WINDOW_MS);
        cr_expect_eq(st, cases[i].want, "timestamp %s: %s (%s)", ts, ee_status_name(st),
                     ee_error_last_message());
        if (cases[i].want != EE_OK)
            cr_expect_not_null(strstr(ee_error_last_message(), "X-EE-Timestamp"), "%s",
                               ee_error_last_message());
    }
    /* a correctly signed replay an hour later is refused */
    snprintf(ts, sizeof ts, "%lld", (long long)now_s);
    cr_assert_eq(ee__callback_sign(key, ts, body, 2, sig), EE_OK);
    cr_expect_eq(ee__callback_verify(key, ts, sig, body, 2, NOW_MS + 3600000, WINDOW_MS),
                 EE_EAUTH);
    /* extreme clocks do not overflow into acceptance */
    cr_expect_eq(ee__callback_verify(key, ts, sig, body, 2, INT64_MIN, WINDOW_MS), EE_EAUTH);
    cr_expect_eq(ee__callback_verify(key, ts, sig, body, 2, INT64_MAX, WINDOW_MS), EE_EAUTH);
    cr_expect_eq(ee__callback_verify(key, ts, sig, body, 2, NOW_MS, INT64_MAX), EE_OK);
    ee_engine_close(e);
}

Test(exec_callback, malformed_headers_are_refused)
{
    ee_engine *e = callback_engine(CANARY_SECRET);
    char key[65], sig[68];
    key_of(e, "exec-1", key);
    const char body[] = "{}";
    cr_assert_eq(ee__callback_sign(key, "1765000000", body, 2, sig), EE_OK);
    messages[0] = '\0';
    const char *timestamps[] = {NULL, "", " 1765000000", "1765000000 ", "+1765000000",
                                "-1765000000", "01765000000", "1765000000.0", "1.765e9",
                                "17650000001234", "0x69330000", "1765000000\n", "１７６５"};
    for (size_t i = 0; i < sizeof timestamps / sizeof timestamps[0]; i++) {
        /* signed over the malformed text itself, as a careless or hostile
         * sender would: only the strict parse refuses it */
        char own[68] = "v1=", msg[64];
        const char *t = timestamps[i];
        int n = snprintf(msg, sizeof msg, "%s.{}", t != NULL ? t : "");
        hmac_hex(key, 64, msg, (size_t)n, own + 3);
        expect_refused(ee__callback_verify(key, t, own, body, 2, NOW_MS, WINDOW_MS),
                       t != NULL ? t : "(no timestamp)");
        cr_expect_not_null(strstr(ee_error_last_message(), "X-EE-Timestamp"), "%s",
                           ee_error_last_message());
    }
    char hex[65];
    memcpy(hex, sig + 3, 65);
    /* each as prefix + the hex (cut to `keep` digits, -1: all) + suffix */
    const struct {
        const char *pre;
        int keep;
        const char *post;
    } forms[] = {{"", 0, ""},       {"v1=", 0, ""},     {"v2=", -1, ""},   {"V1=", -1, ""},
                 {"v1 =", -1, ""},  {"v1=", -1, ",v1="}, {"", -1, ""},     {"v1=", 63, ""},
                 {"v1=", -1, "0"},  {"v1=", 63, "g"},   {" v1=", -1, ""},  {"v1=", -1, " "},
                 {"v1=", -1, "\n"}, {"v1=", 62, "zz"}};
    char s[200];
    expect_refused(ee__callback_verify(key, "1765000000", NULL, body, 2, NOW_MS, WINDOW_MS),
                   "(no signature)");
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        int keep = forms[i].keep < 0 ? 64 : forms[i].keep;
        snprintf(s, sizeof s, "%s%.*s%s", forms[i].pre, keep, hex, forms[i].post);
        expect_refused(ee__callback_verify(key, "1765000000", s, body, 2, NOW_MS, WINDOW_MS), s);
    }
    /* the well-formed one still passes: the refusals were the format's */
    cr_expect_eq(ee__callback_verify(key, "1765000000", sig, body, 2, NOW_MS, WINDOW_MS), EE_OK);
    const char *secrets[] = {CANARY_SECRET, key, hex, NULL};
    no_leak(messages, secrets);
    /* a key that is not one is the caller's error, not the callback's */
    char short_key[65] = "0123abcd";
    cr_expect_eq(ee__callback_verify(short_key, "1765000000", sig, body, 2, NOW_MS, WINDOW_MS),
                 EE_EINVAL);
    char odd_key[65];
    memcpy(odd_key, key, 65);
    odd_key[5] = 'x';
    cr_expect_eq(ee__callback_verify(odd_key, "1765000000", sig, body, 2, NOW_MS, WINDOW_MS),
                 EE_EINVAL);
    cr_expect_eq(ee__callback_verify(NULL, "1765000000", sig, body, 2, NOW_MS, WINDOW_MS),
                 EE_EINVAL);
    cr_expect_eq(ee__callback_sign(key, "not a time", body, 2, sig), EE_EINVAL);
    ee_engine_close(e);
}

Test(exec_callback, the_install_secret_is_in_no_message_summary_or_log)
{
    ee_engine *e = callback_engine(CANARY_SECRET);
    char *summary = NULL;
    cr_assert_eq(ee_engine_summary_json(e, &summary), EE_OK);
    cr_expect_null(strstr(summary, CANARY_SECRET), "%s", summary);
    cr_expect_null(strstr(summary, "CANARY"), "%s", summary);
    cr_expect_not_null(strstr(summary, "EXEC_CALLBACK_SECRET"), "listed (as set), not shown");
    ee_free(summary);
    /* a message that would quote it is redacted by the engine's registry */
    ee__error(EE_EINVAL, "oops %s", CANARY_SECRET);
    cr_expect_null(strstr(ee_error_last_message(), CANARY_SECRET), "%s", ee_error_last_message());
    /* the refusals of a bad length secret quote nothing of it */
    ee_config *cfg = st_config(NULL, NULL);
    cr_expect_eq(ee_config_set(cfg, "EXEC_CALLBACK_SECRET", "CANARY-short"), EE_EINVAL);
    cr_expect_null(strstr(ee_error_last_message(), "CANARY"), "%s", ee_error_last_message());
    ee_config_free(cfg);
    ee_engine_close(e);
}
