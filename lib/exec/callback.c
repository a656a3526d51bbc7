/*
 * The signed completion callback (support.h). Each execution has its own
 * key, HMAC-SHA256(install secret, "ee-callback-v1:" + execution id), so
 * the key a workflow is given signs that execution's callback and nothing
 * else, and every process of an install derives the same key without
 * storing one. A callback carries
 *
 *   X-EE-Timestamp: <unix seconds>
 *   X-EE-Signature: v1=<hex HMAC-SHA256(key, timestamp + "." + body)>
 *
 * where the key is the 64 hex characters as text (what a workflow's Crypto
 * or Code node is given). The signature is compared in constant time and
 * the timestamp must be within the window of now, either way.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include "engine/engine.h"
#include "exec/support.h"
#include "exec/support_internal.h"

#define KEY_INFO "ee-callback-v1"
#define KEY_PREFIX "ee-callback-v1:"
/* The HKDF salt: the install secret is not the credential keys (those use
 * another salt and info from the same API_KEY_ENCRYPTION_SECRET). */
#define KEY_SALT "libexecengine callbacks"
/* Longest timestamp text taken: 1..12 digits (unix seconds to year 33658). */
#define TS_DIGITS_MAX 12

/* ---- HMAC-SHA256 over up to three parts --------------------------------------------- */

static ee_status hmac3(const void *key, size_t key_len, const void *a, size_t alen,
                       const void *b, size_t blen, const void *c, size_t clen,
                       unsigned char out[32])
{
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;
    EVP_MAC_free(mac);
    if (ctx == NULL)
        return ee__error(EE_ECRYPTO, "HMAC-SHA256 unavailable in OpenSSL");
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    size_t n = 0;
    /* A zero-length part still needs a valid pointer for OpenSSL. */
    int ok = EVP_MAC_init(ctx, key, key_len, params) == 1 &&
             EVP_MAC_update(ctx, alen ? a : (const void *)"", alen) == 1 &&
             EVP_MAC_update(ctx, blen ? b : (const void *)"", blen) == 1 &&
             EVP_MAC_update(ctx, clen ? c : (const void *)"", clen) == 1 &&
             EVP_MAC_final(ctx, out, &n, 32) == 1 && n == 32;
    EVP_MAC_CTX_free(ctx);
    return ok ? EE_OK : ee__error(EE_ECRYPTO, "computing an HMAC-SHA256 failed");
}

/* ---- the install secret and the keys ------------------------------------------------ */

ee_status ee__callback_install_secret(const char *callback_secret,
                                      const char *encryption_secret, uint8_t *out, size_t cap,
                                      size_t *len_out)
{
    *len_out = 0;
    if (callback_secret != NULL && callback_secret[0] != '\0') {
        size_t n = strlen(callback_secret);
        if (n > cap)
            return ee__error(EE_ETOOBIG, "EXEC_CALLBACK_SECRET is longer than %zu bytes", cap);
        memcpy(out, callback_secret, n);
        *len_out = n;
        return EE_OK;
    }
    if (encryption_secret == NULL || encryption_secret[0] == '\0')
        return ee__error(EE_ESTATE, "signed callbacks need an install secret: set "
                                    "EXEC_CALLBACK_SECRET, or API_KEY_ENCRYPTION_SECRET to "
                                    "derive it from");
    if (cap < 32)
        return ee__error(EE_ETOOBIG, "the callback install secret needs 32 bytes");
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *ctx = kdf != NULL ? EVP_KDF_CTX_new(kdf) : NULL;
    EVP_KDF_free(kdf);
    if (ctx == NULL)
        return ee__error(EE_ECRYPTO, "HKDF unavailable in OpenSSL");
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)encryption_secret,
                                          strlen(encryption_secret)),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)KEY_SALT,
                                          sizeof KEY_SALT - 1),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)KEY_INFO,
                                          sizeof KEY_INFO - 1),
        OSSL_PARAM_construct_end(),
    };
    int ok = EVP_KDF_derive(ctx, out, 32, params);
    EVP_KDF_CTX_free(ctx);
    if (ok != 1)
        return ee__error(EE_ECRYPTO, "deriving the callback install secret failed");
    *len_out = 32;
    return EE_OK;
}

ee_status ee__callback_key(ee_engine *engine, const char *execution_id, char key_hex[65])
{
    if (key_hex != NULL)
        key_hex[0] = '\0';
    if (engine == NULL || execution_id == NULL || execution_id[0] == '\0' || key_hex == NULL)
        return ee__error(EE_EINVAL, "ee__callback_key: NULL or empty argument");
    const ee_config *cfg = ee__engine_config(engine);
    uint8_t secret[EE__OPT_MAX_TEXT];
    size_t slen = 0;
    ee_status st = ee__callback_install_secret(ee__config_text(cfg, "EXEC_CALLBACK_SECRET"),
                                               ee__config_text(cfg, "API_KEY_ENCRYPTION_SECRET"),
                                               secret, sizeof secret, &slen);
    unsigned char mac[32];
    if (st == EE_OK)
        st = hmac3(secret, slen, KEY_PREFIX, sizeof KEY_PREFIX - 1, execution_id,
                   strlen(execution_id), NULL, 0, mac);
    OPENSSL_cleanse(secret, sizeof secret);
    if (st != EE_OK)
        return st;
    ee__hex_encode(mac, sizeof mac, key_hex);
    OPENSSL_cleanse(mac, sizeof mac);
    return EE_OK;
}

/* ---- signing and checking ----------------------------------------------------------- */

static bool key_ok(const char *key_hex)
{
    if (key_hex == NULL)
        return false;
    for (int i = 0; i < 64; i++) {
        char c = key_hex[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return false;
    }
    return key_hex[64] == '\0';
}

/* Unix seconds as sent: 1..TS_DIGITS_MAX ASCII digits, no sign, no
 * space, no leading zero (but "0" itself). */
static bool timestamp_parse(const char *ts, int64_t *secs)
{
    if (ts == NULL)
        return false;
    size_t n = strlen(ts);
    if (n == 0 || n > TS_DIGITS_MAX || (n > 1 && ts[0] == '0'))
        return false;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (ts[i] < '0' || ts[i] > '9')
            return false;
        v = v * 10 + (ts[i] - '0');
    }
    *secs = v;
    return true;
}

/* "v1=" + exactly 64 hex digits into 32 bytes. */
static bool signature_parse(const char *sig, unsigned char out[32])
{
    if (sig == NULL || strncmp(sig, "v1=", 3) != 0 || strlen(sig) != 3 + 64)
        return false;
    return ee__hex_decode(sig + 3, 32, out);
}

static ee_status sign_raw(const char key_hex[65], const char *timestamp, const char *body,
                          size_t body_len, unsigned char mac[32])
{
    return hmac3(key_hex, 64, timestamp, strlen(timestamp), ".", 1, body, body_len, mac);
}

ee_status ee__callback_sign(const char key_hex[65], const char *timestamp, const char *body,
                            size_t body_len, char out[68])
{
    if (out != NULL)
        out[0] = '\0';
    int64_t secs;
    if (out == NULL || (body == NULL && body_len > 0))
        return ee__error(EE_EINVAL, "ee__callback_sign: NULL argument");
    if (!key_ok(key_hex))
        return ee__error(EE_EINVAL, "ee__callback_sign: the key must be 64 hex digits");
    if (!timestamp_parse(timestamp, &secs))
        return ee__error(EE_EINVAL, "ee__callback_sign: the timestamp must be unix seconds "
                                    "(1 to %d digits)", TS_DIGITS_MAX);
    unsigned char mac[32];
    ee_status st = sign_raw(key_hex, timestamp, body, body_len, mac);
    if (st != EE_OK)
        return st;
    memcpy(out, "v1=", 3);
    ee__hex_encode(mac, sizeof mac, out + 3);
    return EE_OK;
}

ee_status ee__callback_verify(const char key_hex[65], const char *timestamp,
                              const char *signature, const char *body, size_t body_len,
                              int64_t now_ms, int64_t window_ms)
{
    if (!key_ok(key_hex) || (body == NULL && body_len > 0) || window_ms < 0)
        return ee__error(EE_EINVAL, "ee__callback_verify: a NULL body, a negative window or a "
                                    "key that is not 64 hex digits");
    int64_t secs;
    if (timestamp == NULL)
        return ee__error(EE_EAUTH, "callback refused: no X-EE-Timestamp header");
    if (!timestamp_parse(timestamp, &secs))
        return ee__error(EE_EAUTH, "callback refused: X-EE-Timestamp is not unix seconds "
                                   "(1 to %d digits, nothing else)", TS_DIGITS_MAX);
    /* Both ways: a callback from the future is as suspect as an old one.
     * (A clock so far off that the difference overflows is outside too.) */
    int64_t ts_ms = secs * 1000, skew;
    if (__builtin_sub_overflow(ts_ms, now_ms, &skew) || skew > window_ms || skew < -window_ms)
        return ee__error(EE_EAUTH, "callback refused: X-EE-Timestamp is outside the %lld ms "
                                   "window of now (%s)",
                         (long long)window_ms, ts_ms > now_ms ? "ahead of it" : "too old");
    unsigned char got[32], want[32];
    if (signature == NULL)
        return ee__error(EE_EAUTH, "callback refused: no X-EE-Signature header");
    if (!signature_parse(signature, got))
        return ee__error(EE_EAUTH, "callback refused: X-EE-Signature is not \"v1=\" and 64 hex "
                                   "digits");
    ee_status st = sign_raw(key_hex, timestamp, body, body_len, want);
    if (st != EE_OK)
        return st;
    bool same = CRYPTO_memcmp(got, want, sizeof want) == 0;
    OPENSSL_cleanse(want, sizeof want);
    if (!same)
        return ee__error(EE_EAUTH, "callback refused: X-EE-Signature does not match the "
                                   "timestamp and body");
    return EE_OK;
}
