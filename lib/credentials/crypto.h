/*
 * lib/credentials/crypto.h - authenticated encryption of credentials at rest.
 *
 * Envelope (binary, stored as-is in BSON or base64 in text):
 *
 *   offset  size  field
 *   0       1     format version (1)
 *   1       4     key id, big-endian: identifies which configured secret
 *                 sealed it (see below), so keys can rotate
 *   5       12    nonce, fresh from the CSPRNG for every seal
 *   17      n     AES-256-GCM ciphertext
 *   17+n    16    GCM tag
 *
 * Associated data = "ee-credential-v1" || u32 len || workspace id || u32 len
 * || record id || bytes 0..4 of the envelope. A ciphertext moved to another
 * workspace or record, or with its header edited, fails to open.
 *
 * Keys: key = HKDF-SHA256(ikm = secret, salt = "libexecengine credentials",
 * info = "aes-256-gcm v1"); key id = first 4 bytes of
 * HMAC-SHA256(key, "key-id"), which names a secret without revealing it.
 * A keyring holds the current secret's key (used to seal) and any previous
 * ones (used only to open), so a rotation can re-seal record by record.
 */
#ifndef EE_CREDENTIALS_CRYPTO_H
#define EE_CREDENTIALS_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "execengine/errors.h"

#define EE__ENVELOPE_VERSION 1
#define EE__ENVELOPE_HEADER 5
#define EE__ENVELOPE_NONCE 12
#define EE__ENVELOPE_TAG 16
#define EE__ENVELOPE_OVERHEAD (EE__ENVELOPE_HEADER + EE__ENVELOPE_NONCE + EE__ENVELOPE_TAG)
/* Longest plaintext sealed (an OAuth token set is well under this). */
#define EE__SEAL_MAX (64 * 1024)
/* Shortest secret accepted: 256 bits of text. */
#define EE__SECRET_MIN 32
/* Longest workspace or record id bound as associated data. */
#define EE__AAD_ID_MAX 256

typedef struct ee__keyring ee__keyring;

/* Build a keyring from the current secret and `n_old` previous secrets
 * (may be 0). Secrets are not kept, only the derived keys, which are wiped
 * on free. Returns EE_OK; EE_EINVAL (a secret missing or shorter than
 * EE__SECRET_MIN, a previous secret equal to the current one); EE_ECRYPTO
 * (OpenSSL failure); EE_ENOMEM. */
ee_status ee__keyring_new(ee__keyring **out, const char *current,
                          const char *const *old, size_t n_old);
void ee__keyring_free(ee__keyring *kr);

/* The current key's id. */
uint32_t ee__keyring_current_id(const ee__keyring *kr);

/* Seal `pt` for (workspace, record). *out (malloc'ed, ee_free) receives the
 * envelope. Returns EE_OK; EE_EINVAL (NULL/empty ids, ids too long);
 * EE_ETOOBIG (pt over EE__SEAL_MAX); EE_ECRYPTO; EE_ENOMEM. */
ee_status ee__seal(const ee__keyring *kr, const char *workspace, const char *record,
                   const uint8_t *pt, size_t pt_len, uint8_t **out, size_t *out_len);

/* Open an envelope sealed for (workspace, record). *pt_out receives the
 * plaintext plus a terminating NUL (not counted in *pt_len); the caller
 * must release it with ee__plaintext_free(), which wipes it.
 * Returns EE_OK; EE_EINVAL (NULL/empty ids); EE_ECORRUPT (too short,
 * unknown format version); EE_ECRYPTO (sealed with a key that is not
 * configured, or authentication failed: tampered, or another
 * workspace/record); EE_ENOMEM. */
ee_status ee__open(const ee__keyring *kr, const char *workspace, const char *record,
                   const uint8_t *env, size_t env_len, uint8_t **pt_out, size_t *pt_len);

void ee__plaintext_free(uint8_t *pt, size_t len);

/* The key id an envelope names (EE_ECORRUPT if malformed). */
ee_status ee__envelope_key_id(const uint8_t *env, size_t env_len, uint32_t *out);

#endif
