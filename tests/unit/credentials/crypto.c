#include <criterion/criterion.h>
#include <string.h>

#include "core/core.h"
#include "credentials/crypto.h"

#define SECRET_A "secret-A-0123456789abcdef0123456789abcdef"
#define SECRET_B "secret-B-fedcba9876543210fedcba9876543210"
#define SECRET_C "secret-C-00000000000000000000000000000000"

static ee__keyring *ring(const char *current, const char *old)
{
    ee__keyring *kr = NULL;
    const char *olds[] = {old};
    cr_assert_eq(ee__keyring_new(&kr, current, olds, old ? 1 : 0), EE_OK, "%s",
                 ee_error_last_message());
    return kr;
}

static void seal(const ee__keyring *kr, const char *ws, const char *rec, const char *pt,
                 uint8_t **env, size_t *len)
{
    cr_assert_eq(ee__seal(kr, ws, rec, (const uint8_t *)pt, strlen(pt), env, len), EE_OK, "%s",
                 ee_error_last_message());
}

Test(crypto, round_trip)
{
    ee__keyring *kr = ring(SECRET_A, NULL);
    const char *key = "sk-or-v1-customer-key-0000000000001234";
    uint8_t *env;
    size_t len;
    seal(kr, "ws-1", "rec-1", key, &env, &len);
    cr_expect_eq(len, strlen(key) + EE__ENVELOPE_OVERHEAD);
    cr_expect_null(memmem(env, len, key, strlen(key)), "plaintext visible in the envelope");
    uint8_t *pt;
    size_t pt_len;
    cr_assert_eq(ee__open(kr, "ws-1", "rec-1", env, len, &pt, &pt_len), EE_OK);
    cr_expect_eq(pt_len, strlen(key));
    cr_expect_str_eq((char *)pt, key);
    ee__plaintext_free(pt, pt_len);

    /* Two seals of the same text differ (fresh nonce). */
    uint8_t *env2;
    size_t len2;
    seal(kr, "ws-1", "rec-1", key, &env2, &len2);
    cr_expect_neq(memcmp(env, env2, len), 0);
    ee_free(env);
    ee_free(env2);

    /* The empty credential is a credential too. */
    seal(kr, "ws-1", "rec-2", "", &env, &len);
    cr_assert_eq(ee__open(kr, "ws-1", "rec-2", env, len, &pt, &pt_len), EE_OK);
    cr_expect_eq(pt_len, 0);
    ee__plaintext_free(pt, pt_len);
    ee_free(env);
    ee__keyring_free(kr);
}

Test(crypto, every_single_bit_flip_is_detected)
{
    ee__keyring *kr = ring(SECRET_A, NULL);
    uint8_t *env;
    size_t len;
    seal(kr, "ws", "rec", "token-value", &env, &len);
    /* Header, nonce, ciphertext and tag: every bit of every byte. */
    for (size_t i = 0; i < len; i++)
        for (int b = 0; b < 8; b++) {
            env[i] ^= (uint8_t)(1u << b);
            uint8_t *pt = NULL;
            size_t pt_len;
            ee_status st = ee__open(kr, "ws", "rec", env, len, &pt, &pt_len);
            cr_expect_neq(st, EE_OK, "flip of byte %zu bit %d went unnoticed", i, b);
            cr_expect(st == EE_ECRYPTO || (i == 0 && st == EE_ECORRUPT), "byte %zu: %s", i,
                      ee_status_name(st));
            cr_expect_null(pt);
            env[i] ^= (uint8_t)(1u << b);
        }
    ee_free(env);
    ee__keyring_free(kr);
}

Test(crypto, bound_to_workspace_and_record)
{
    ee__keyring *kr = ring(SECRET_A, NULL);
    uint8_t *env, *pt;
    size_t len, pt_len;
    seal(kr, "ws-1", "rec-1", "gmail-refresh-token", &env, &len);
    cr_expect_eq(ee__open(kr, "ws-2", "rec-1", env, len, &pt, &pt_len), EE_ECRYPTO);
    cr_expect_eq(ee__open(kr, "ws-1", "rec-2", env, len, &pt, &pt_len), EE_ECRYPTO);
    /* Length prefixes keep ("ab","c") and ("a","bc") apart. */
    uint8_t *env2;
    size_t len2;
    seal(kr, "ab", "c", "x", &env2, &len2);
    cr_expect_eq(ee__open(kr, "a", "bc", env2, len2, &pt, &pt_len), EE_ECRYPTO);
    cr_expect_null(strstr(ee_error_last_message(), "gmail-refresh-token"));
    ee_free(env);
    ee_free(env2);
    ee__keyring_free(kr);
}

Test(crypto, malformed_envelopes)
{
    ee__keyring *kr = ring(SECRET_A, NULL);
    uint8_t *pt;
    size_t pt_len;
    uint8_t shorty[EE__ENVELOPE_OVERHEAD - 1] = {1};
    cr_expect_eq(ee__open(kr, "w", "r", shorty, sizeof shorty, &pt, &pt_len), EE_ECORRUPT);
    cr_expect_eq(ee__open(kr, "w", "r", NULL, 0, &pt, &pt_len), EE_ECORRUPT);
    uint8_t *env;
    size_t len;
    seal(kr, "w", "r", "v", &env, &len);
    env[0] = 2;
    cr_expect_eq(ee__open(kr, "w", "r", env, len, &pt, &pt_len), EE_ECORRUPT);
    cr_expect_not_null(strstr(ee_error_last_message(), "format version 2"));
    cr_expect_eq(ee__open(kr, "", "r", env, len, &pt, &pt_len), EE_EINVAL);
    ee_free(env);
    char big_id[EE__AAD_ID_MAX + 2];
    memset(big_id, 'w', sizeof big_id - 1);
    big_id[sizeof big_id - 1] = '\0';
    cr_expect_eq(ee__seal(kr, big_id, "r", (const uint8_t *)"v", 1, &env, &len), EE_EINVAL);
    static uint8_t huge[EE__SEAL_MAX + 1];
    cr_expect_eq(ee__seal(kr, "w", "r", huge, sizeof huge, &env, &len), EE_ETOOBIG);
    ee__keyring_free(kr);
}

Test(crypto, secrets_must_be_long_and_distinct)
{
    ee__keyring *kr = NULL;
    cr_expect_eq(ee__keyring_new(&kr, NULL, NULL, 0), EE_EINVAL);
    cr_expect_not_null(strstr(ee_error_last_message(), "API_KEY_ENCRYPTION_SECRET is not set"));
    cr_expect_eq(ee__keyring_new(&kr, "short-secret", NULL, 0), EE_EINVAL);
    cr_expect_null(strstr(ee_error_last_message(), "short-secret"));
    const char *same[] = {SECRET_A};
    cr_expect_eq(ee__keyring_new(&kr, SECRET_A, same, 1), EE_EINVAL);
    cr_expect_null(kr);
}

Test(crypto, rotation_keeps_old_envelopes_readable)
{
    ee__keyring *old_ring = ring(SECRET_A, NULL);
    uint8_t *env, *pt;
    size_t len, pt_len;
    seal(old_ring, "ws", "rec", "old-credential", &env, &len);
    uint32_t id;
    cr_assert_eq(ee__envelope_key_id(env, len, &id), EE_OK);
    cr_expect_eq(id, ee__keyring_current_id(old_ring));

    /* New secret only: the old envelope names a key we no longer have. */
    ee__keyring *new_only = ring(SECRET_B, NULL);
    cr_expect_neq(ee__keyring_current_id(new_only), id);
    cr_expect_eq(ee__open(new_only, "ws", "rec", env, len, &pt, &pt_len), EE_ECRYPTO);
    cr_expect_not_null(strstr(ee_error_last_message(), "not configured"));

    /* New secret with the old as previous: reads it, re-seals under the new. */
    ee__keyring *rotating = ring(SECRET_B, SECRET_A);
    cr_assert_eq(ee__open(rotating, "ws", "rec", env, len, &pt, &pt_len), EE_OK);
    uint8_t *resealed;
    size_t relen;
    cr_assert_eq(ee__seal(rotating, "ws", "rec", pt, pt_len, &resealed, &relen), EE_OK);
    ee__plaintext_free(pt, pt_len);
    cr_assert_eq(ee__envelope_key_id(resealed, relen, &id), EE_OK);
    cr_expect_eq(id, ee__keyring_current_id(new_only), "re-sealed under the current key");
    cr_assert_eq(ee__open(new_only, "ws", "rec", resealed, relen, &pt, &pt_len), EE_OK);
    cr_expect_str_eq((char *)pt, "old-credential");
    ee__plaintext_free(pt, pt_len);

    /* Key ids are deterministic per secret, distinct between secrets. */
    ee__keyring *c = ring(SECRET_C, NULL), *a2 = ring(SECRET_A, NULL);
    cr_expect_eq(ee__keyring_current_id(a2), ee__keyring_current_id(old_ring));
    cr_expect_neq(ee__keyring_current_id(c), ee__keyring_current_id(old_ring));
    ee_free(env);
    ee_free(resealed);
    ee__keyring_free(old_ring);
    ee__keyring_free(new_only);
    ee__keyring_free(rotating);
    ee__keyring_free(c);
    ee__keyring_free(a2);
}
