/* AES-256-GCM envelopes with HKDF-derived, rotatable keys (crypto.h). */
#include "credentials/crypto.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "core/core.h"

#define KEY_LEN 32
#define AAD_LABEL "ee-credential-v1"

typedef struct {
    uint32_t id;
    unsigned char key[KEY_LEN];
} ring_key;

struct ee__keyring {
    size_t n;         /* keys[0] is current */
    ring_key keys[];
};

static ee_status derive_key(const char *secret, ring_key *out)
{
    static const char salt[] = "libexecengine credentials";
    static const char info[] = "aes-256-gcm v1";
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    EVP_KDF_free(kdf);
    if (ctx == NULL)
        return ee__error(EE_ECRYPTO, "HKDF unavailable in OpenSSL");
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret, strlen(secret)),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, sizeof salt - 1),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, sizeof info - 1),
        OSSL_PARAM_construct_end(),
    };
    int ok = EVP_KDF_derive(ctx, out->key, KEY_LEN, params);
    EVP_KDF_CTX_free(ctx);
    if (ok != 1)
        return ee__error(EE_ECRYPTO, "deriving the credential key failed");
    unsigned char mac[32];
    unsigned int mac_len = 0;
    if (HMAC(EVP_sha256(), out->key, KEY_LEN, (const unsigned char *)"key-id", 6, mac, &mac_len) == NULL)
        return ee__error(EE_ECRYPTO, "deriving the key id failed");
    out->id = (uint32_t)mac[0] << 24 | (uint32_t)mac[1] << 16 | (uint32_t)mac[2] << 8 | mac[3];
    return EE_OK;
}

ee_status ee__keyring_new(ee__keyring **out, const char *current, const char *const *old,
                          size_t n_old)
{
    *out = NULL;
    if (current == NULL || strlen(current) < EE__SECRET_MIN)
        return ee__error(EE_EINVAL, "API_KEY_ENCRYPTION_SECRET is %s: it must be at least %d bytes",
                         current == NULL ? "not set" : "too short", EE__SECRET_MIN);
    for (size_t i = 0; i < n_old; i++)
        if (old[i] == NULL || strlen(old[i]) < EE__SECRET_MIN || strcmp(old[i], current) == 0)
            return ee__error(EE_EINVAL, "previous encryption secret %zu is %s", i + 1,
                             old[i] && strcmp(old[i], current) == 0 ? "the current secret"
                                                                  : "missing or too short");
    ee__keyring *kr = calloc(1, sizeof *kr + (n_old + 1) * sizeof(ring_key));
    if (kr == NULL)
        return ee__error(EE_ENOMEM, "out of memory building the keyring");
    kr->n = n_old + 1;
    ee_status st = derive_key(current, &kr->keys[0]);
    for (size_t i = 0; st == EE_OK && i < n_old; i++)
        st = derive_key(old[i], &kr->keys[i + 1]);
    if (st != EE_OK) {
        ee__keyring_free(kr);
        return st;
    }
    *out = kr;
    return EE_OK;
}

void ee__keyring_free(ee__keyring *kr)
{
    if (kr == NULL)
        return;
    OPENSSL_cleanse(kr->keys, kr->n * sizeof(ring_key));
    free(kr);
}

uint32_t ee__keyring_current_id(const ee__keyring *kr)
{
    return kr->keys[0].id;
}

static const ring_key *find_key(const ee__keyring *kr, uint32_t id)
{
    for (size_t i = 0; i < kr->n; i++)
        if (kr->keys[i].id == id)
            return &kr->keys[i];
    return NULL;
}

static void put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static ee_status check_ids(const char *workspace, const char *record)
{
    if (workspace == NULL || record == NULL || workspace[0] == '\0' || record[0] == '\0')
        return ee__error(EE_EINVAL, "a credential needs a workspace id and a record id");
    if (strlen(workspace) > EE__AAD_ID_MAX || strlen(record) > EE__AAD_ID_MAX)
        return ee__error(EE_EINVAL, "workspace or record id longer than %d bytes", EE__AAD_ID_MAX);
    return EE_OK;
}

/* Feed the associated data (label, both ids length-prefixed, header) to ctx. */
static int feed_aad(EVP_CIPHER_CTX *ctx, const char *ws, const char *rec,
                    const unsigned char *header)
{
    unsigned char aad[sizeof AAD_LABEL - 1 + 8 + 2 * EE__AAD_ID_MAX + EE__ENVELOPE_HEADER];
    size_t n = 0, lw = strlen(ws), lr = strlen(rec);
    memcpy(aad, AAD_LABEL, sizeof AAD_LABEL - 1);
    n += sizeof AAD_LABEL - 1;
    put_u32(aad + n, (uint32_t)lw);
    memcpy(aad + n + 4, ws, lw);
    n += 4 + lw;
    put_u32(aad + n, (uint32_t)lr);
    memcpy(aad + n + 4, rec, lr);
    n += 4 + lr;
    memcpy(aad + n, header, EE__ENVELOPE_HEADER);
    n += EE__ENVELOPE_HEADER;
    int outl;
    return EVP_CipherUpdate(ctx, NULL, &outl, aad, (int)n) == 1;
}

static EVP_CIPHER_CTX *cipher_init(const ring_key *k, const unsigned char *nonce, int encrypt)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL)
        return NULL;
    if (EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, encrypt) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, EE__ENVELOPE_NONCE, NULL) != 1 ||
        EVP_CipherInit_ex(ctx, NULL, NULL, k->key, nonce, encrypt) != 1) {
        EVP_CIPHER_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

ee_status ee__seal(const ee__keyring *kr, const char *workspace, const char *record,
                   const uint8_t *pt, size_t pt_len, uint8_t **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    ee_status st = check_ids(workspace, record);
    if (st != EE_OK)
        return st;
    if (pt_len > EE__SEAL_MAX)
        return ee__error(EE_ETOOBIG, "credential of %zu bytes exceeds %d", pt_len, EE__SEAL_MAX);
    size_t total = EE__ENVELOPE_OVERHEAD + pt_len;
    unsigned char *env = malloc(total);
    if (env == NULL)
        return ee__error(EE_ENOMEM, "out of memory sealing a credential");
    const ring_key *k = &kr->keys[0];
    env[0] = EE__ENVELOPE_VERSION;
    put_u32(env + 1, k->id);
    unsigned char *nonce = env + EE__ENVELOPE_HEADER, *ct = nonce + EE__ENVELOPE_NONCE;
    EVP_CIPHER_CTX *ctx = NULL;
    int outl = 0, fin = 0;
    bool ok = RAND_bytes(nonce, EE__ENVELOPE_NONCE) == 1 && (ctx = cipher_init(k, nonce, 1)) &&
              feed_aad(ctx, workspace, record, env) &&
              EVP_EncryptUpdate(ctx, ct, &outl, pt, (int)pt_len) == 1 &&
              EVP_EncryptFinal_ex(ctx, ct + outl, &fin) == 1 &&
              EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, EE__ENVELOPE_TAG, ct + pt_len) == 1;
    EVP_CIPHER_CTX_free(ctx);
    if (!ok) {
        free(env);
        return ee__error(EE_ECRYPTO, "encrypting a credential failed");
    }
    *out = env;
    *out_len = total;
    return EE_OK;
}

ee_status ee__envelope_key_id(const uint8_t *env, size_t env_len, uint32_t *out)
{
    if (env == NULL || env_len < EE__ENVELOPE_OVERHEAD)
        return ee__error(EE_ECORRUPT, "encrypted credential is truncated (%zu bytes)", env_len);
    if (env[0] != EE__ENVELOPE_VERSION)
        return ee__error(EE_ECORRUPT, "encrypted credential has unknown format version %u",
                         (unsigned)env[0]);
    *out = get_u32(env + 1);
    return EE_OK;
}

static ee_status decrypt(const ring_key *k, const char *ws, const char *rec, const uint8_t *env,
                         size_t env_len, uint8_t *pt)
{
    size_t ct_len = env_len - EE__ENVELOPE_OVERHEAD;
    const unsigned char *nonce = env + EE__ENVELOPE_HEADER, *ct = nonce + EE__ENVELOPE_NONCE;
    unsigned char tag[EE__ENVELOPE_TAG];
    memcpy(tag, ct + ct_len, sizeof tag);
    EVP_CIPHER_CTX *ctx = cipher_init(k, nonce, 0);
    int outl = 0, fin = 0;
    bool ok = ctx != NULL && feed_aad(ctx, ws, rec, env) &&
              EVP_DecryptUpdate(ctx, pt, &outl, ct, (int)ct_len) == 1 &&
              EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, sizeof tag, tag) == 1 &&
              EVP_DecryptFinal_ex(ctx, pt + outl, &fin) == 1;
    EVP_CIPHER_CTX_free(ctx);
    if (!ok)
        return ee__error(EE_ECRYPTO, "credential failed authentication: tampered, or sealed for "
                                     "another workspace or record");
    return EE_OK;
}

ee_status ee__open(const ee__keyring *kr, const char *workspace, const char *record,
                   const uint8_t *env, size_t env_len, uint8_t **pt_out, size_t *pt_len)
{
    *pt_out = NULL;
    *pt_len = 0;
    uint32_t id = 0;
    ee_status st = check_ids(workspace, record);
    if (st == EE_OK)
        st = ee__envelope_key_id(env, env_len, &id);
    if (st != EE_OK)
        return st;
    const ring_key *k = find_key(kr, id);
    if (k == NULL)
        return ee__error(EE_ECRYPTO, "credential was sealed with key %08x, which is not configured "
                                     "(set the old secret as a previous secret to read it)", id);
    size_t len = env_len - EE__ENVELOPE_OVERHEAD;
    uint8_t *pt = malloc(len + 1);
    if (pt == NULL)
        return ee__error(EE_ENOMEM, "out of memory opening a credential");
    st = decrypt(k, workspace, record, env, env_len, pt);
    if (st != EE_OK) {
        ee__plaintext_free(pt, len);
        return st;
    }
    pt[len] = '\0';
    *pt_out = pt;
    *pt_len = len;
    return EE_OK;
}

void ee__plaintext_free(uint8_t *pt, size_t len)
{
    if (pt == NULL)
        return;
    OPENSSL_cleanse(pt, len + 1);
    free(pt);
}
