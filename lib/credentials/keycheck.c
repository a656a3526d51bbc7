/* The key-check record: one sealed document in the platform workspace that
 * proves, when an engine opens, that its secrets can open what storage
 * holds. Without it an engine given the wrong API_KEY_ENCRYPTION_SECRET
 * opened fine and its first write (platform provisioning) re-sealed the
 * pool under its own key, locking every correctly configured process out.
 *
 * - First open on a storage without the record: every sealed document of
 *   the platform pool must open (a store written before the record existed
 *   is checked once), then the record is inserted under a fixed id. Two
 *   processes opening at once both try; storage keeps exactly one (the id
 *   is unique) and the loser re-reads it and checks it like any later open.
 * - Every later open: the record must open with the current secret or one
 *   of API_KEY_ENCRYPTION_PREVIOUS_SECRETS, else the engine refuses to open
 *   with EE_ECRYPTO.
 * - Rotation re-seals the record under the current secret once every other
 *   stored secret is re-sealed (ee__cred_keycheck_reseal()), so an engine
 *   configured with the new secret alone opens only when nothing still
 *   needs the old one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "core/record.h"
#include "credentials/cred_internal.h"

#define SEALED_FIELD "check"
#define CHECK_TEXT "libexecengine key check v1"

static bool is_check_text(const uint8_t *pt, size_t len)
{
    return len == sizeof CHECK_TEXT - 1 && CRYPTO_memcmp(pt, CHECK_TEXT, len) == 0;
}

bool ee__cred_is_keycheck(const json_t *meta)
{
    const char *kind = json_string_value(json_object_get(meta, "kind"));
    return kind != NULL && strcmp(kind, EE__KEYCHECK_KIND) == 0;
}

static ee_status refuse(ee__cred_state *s, const ee__cdoc *d, const char *what)
{
    uint32_t sealed_with = 0;
    (void)ee__envelope_key_id(d->sealed, d->sealed_len, &sealed_with);
    return ee__error(EE_ECRYPTO,
                     "%s: storage's key-check record was sealed with key %08x and this engine's "
                     "API_KEY_ENCRYPTION_SECRET (key %08x) and API_KEY_ENCRYPTION_PREVIOUS_SECRETS "
                     "cannot open it: the engine was given another secret than the one the stored "
                     "credentials were sealed with; configure that secret (or add it to "
                     "API_KEY_ENCRYPTION_PREVIOUS_SECRETS) - see docs/credentials.md",
                     what, sealed_with, ee__keyring_current_id(s->ring));
}

/* The stored record opens with our keyring and holds the check text. */
static ee_status verify(ee__cred_state *s, const ee__cdoc *d)
{
    uint8_t *pt = NULL;
    size_t len = 0;
    ee_status st = ee__cdoc_open(s, EE__PLATFORM_WS, d, &pt, &len);
    if (st == EE_OK && !is_check_text(pt, len))
        st = ee__error(EE_ECORRUPT, "storage's key-check record holds unexpected content");
    ee__plaintext_free(pt, len);
    if (st == EE_ECRYPTO)
        return refuse(s, d, "cannot open the engine");
    return st;
}

typedef struct existing_ctx {
    size_t failed;
    uint32_t sealed_with;
} existing_ctx;

static ee_status check_existing_doc(ee__cred_state *s, ee__cdoc *d, void *payload)
{
    existing_ctx *ec = payload;
    if (d->sealed == NULL || ee__cred_is_keycheck(d->meta))
        return EE_OK;
    uint8_t *pt = NULL;
    size_t len = 0;
    ee_status o = ee__cdoc_open(s, EE__PLATFORM_WS, d, &pt, &len);
    ee__plaintext_free(pt, len);
    if (o == EE_ECRYPTO) {
        if (ec->failed++ == 0)
            (void)ee__envelope_key_id(d->sealed, d->sealed_len, &ec->sealed_with);
        return EE_OK;
    }
    return o;
}

/* A store written before the record existed: every sealed platform
 * credential must open before we vouch for the secret. */
static ee_status check_existing(ee__cred_state *s)
{
    existing_ctx ec = {0, 0};
    ee_status st = ee__cred_each_platform_doc(s, check_existing_doc, &ec);
    if (st == EE_OK && ec.failed > 0)
        st = ee__error(EE_ECRYPTO,
                       "cannot open the engine: %zu stored platform credentials (the first sealed "
                       "with key %08x) do not open with this engine's API_KEY_ENCRYPTION_SECRET "
                       "(key %08x) or API_KEY_ENCRYPTION_PREVIOUS_SECRETS: configure the secret "
                       "they were sealed with - see docs/credentials.md",
                       ec.failed, ec.sealed_with, ee__keyring_current_id(s->ring));
    return st;
}

static ee_status create(ee__cred_state *s)
{
    ee__cdoc d = {0};
    snprintf(d.id, sizeof d.id, "%s", EE__KEYCHECK_ID);
    d.meta = json_pack("{s:s, s:s, s:s, s:s, s:I}", "workspaceId", EE__PLATFORM_WS, "kind",
                       EE__KEYCHECK_KIND, "credentialName", EE__KEYCHECK_KIND, "userId",
                       EE__PLATFORM_WS, "createdAt", (json_int_t)ee_engine_now_ms(s->engine));
    ee_status st = d.meta ? ee__cdoc_seal(s, EE__PLATFORM_WS, &d, SEALED_FIELD, CHECK_TEXT,
                                          sizeof CHECK_TEXT - 1)
                          : ee__error(EE_ENOMEM, "out of memory writing the key-check record");
    if (st == EE_OK)
        st = ee__cdoc_insert(s->engine, EE__CRED_COLL, EE__PLATFORM_WS, &d);
    ee__cdoc_clear(&d);
    return st;
}

/* One attempt at opening: check the record, or write it when there is
 * none; EE_EEXISTS (another process wrote it first) reads theirs again. */
static ee_status keycheck_attempt(int attempt, bool *final, void *payload)
{
    (void)attempt;
    ee__cred_state *s = payload;
    ee__cdoc d;
    ee_status st = ee__cdoc_get(s->engine, EE__CRED_COLL, EE__PLATFORM_WS, EE__KEYCHECK_ID, &d);
    *final = true;
    if (st == EE_OK) {
        st = verify(s, &d);
        ee__cdoc_clear(&d);
        return st;
    }
    if (st != EE_ENOTFOUND)
        return st;
    st = check_existing(s);
    if (st == EE_OK)
        st = create(s);
    if (st == EE_OK)
        ee__log(ee__engine_logger(s->engine), EE_LOG_INFO, "credentials",
                "key-check record written (key %08x)", ee__keyring_current_id(s->ring));
    *final = st != EE_EEXISTS;
    return st;
}

ee_status ee__cred_keycheck(ee__cred_state *s)
{
    return ee__record_retry(keycheck_attempt, s, "the key-check record (retry opening)");
}

static ee_status reseal_attempt(int attempt, bool *final, void *payload)
{
    (void)attempt;
    ee__cred_state *s = payload;
    uint32_t current = ee__keyring_current_id(s->ring);
    ee__cdoc d;
    ee_status st = ee__cdoc_get(s->engine, EE__CRED_COLL, EE__PLATFORM_WS, EE__KEYCHECK_ID, &d);
    if (st == EE_ENOTFOUND) {
        st = create(s);
        *final = st != EE_EEXISTS;
        return st;
    }
    *final = true;
    if (st != EE_OK)
        return st;
    uint32_t key_id = 0;
    st = ee__envelope_key_id(d.sealed, d.sealed_len, &key_id);
    if (st == EE_OK && key_id != current) {
        /* Re-sealed only once it opened: never vouch for what we could
         * not read. */
        st = verify(s, &d);
        if (st == EE_ECRYPTO)
            st = refuse(s, &d, "rotation");
        if (st == EE_OK)
            st = ee__cdoc_seal(s, EE__PLATFORM_WS, &d, SEALED_FIELD, CHECK_TEXT,
                               sizeof CHECK_TEXT - 1);
        if (st == EE_OK)
            st = ee__cdoc_replace(s->engine, EE__CRED_COLL, EE__PLATFORM_WS, &d);
    }
    ee__cdoc_clear(&d);
    *final = st != EE_ECONFLICT;
    return st;
}

ee_status ee__cred_keycheck_reseal(ee__cred_state *s)
{
    return ee__record_retry(reseal_attempt, s, "rotation: the key-check record (run the "
                                               "rotation again)");
}
