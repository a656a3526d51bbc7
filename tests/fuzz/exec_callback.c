/*
 * libFuzzer: arbitrary bytes as a completion callback's headers and body,
 * and as an output document whose secret-looking members are dropped
 * (lib/exec/support.h). The first byte picks the check; the rest is its
 * input:
 *   0  "<timestamp>\0<signature>\0<body>" checked against a fixed key at a
 *      fixed now, 5-minute window. Invariants: only EE_OK or EE_EAUTH; EE_OK
 *      only when the signature is exactly what ee__callback_sign() makes
 *      of that timestamp and body (any case of the hex), and the body is
 *      then re-signed to check ee__callback_verify() agrees with it.
 *   1  the same input, but the signature part replaced by the real one:
 *      it must verify exactly when the timestamp is plain unix seconds
 *      within the window.
 *   2  the rest as JSON (any value, bounded depth) through
 *      ee__drop_secrets() with the default list. Invariants: a second
 *      pass drops nothing; no member left has a name the list drops
 *      (each checked alone); the count is what left the document.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "exec/support.h"
#include "exec/support_internal.h"
#include "fuzz_check.h"

static const char KEY[65] = "4f1c0b7e2d9a8c6b5e3f1a0d9c8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b";
static const int64_t NOW_MS = 1765000000000;
static const int64_t WINDOW_MS = 300000;

/* Split data at the first two NULs (missing parts are ""). */
static void split3(char *buf, size_t n, char **a, char **b, const char **c, size_t *clen)
{
    *a = buf;
    char *z = memchr(buf, '\0', n);
    *b = z ? z + 1 : buf + n;
    size_t rest = z ? n - (size_t)(*b - buf) : 0;
    char *z2 = z ? memchr(*b, '\0', rest) : NULL;
    *c = z2 ? z2 + 1 : buf + n;
    *clen = z2 ? n - (size_t)(*c - buf) : 0;
}

static bool plain_seconds(const char *ts, int64_t *secs)
{
    size_t n = strlen(ts);
    if (n == 0 || n > 12 || (n > 1 && ts[0] == '0'))
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

static void check_callback(const uint8_t *data, size_t size, bool real_signature)
{
    char *buf = malloc(size + 1);
    if (buf == NULL)
        return;
    memcpy(buf, data, size);
    buf[size] = '\0';
    char *ts, *sig;
    const char *body;
    size_t blen;
    split3(buf, size, &ts, &sig, &body, &blen);
    char good[68];
    ee_status signed_st = ee__callback_sign(KEY, ts, body, blen, good);
    int64_t secs;
    bool plain = plain_seconds(ts, &secs);
    CHECK((signed_st == EE_OK) == plain);
    ee_status st = ee__callback_verify(KEY, ts, real_signature && plain ? good : sig, body, blen,
                                       NOW_MS, WINDOW_MS);
    CHECK(st == EE_OK || st == EE_EAUTH);
    bool in_window = plain && secs * 1000 - NOW_MS <= WINDOW_MS && NOW_MS - secs * 1000 <= WINDOW_MS;
    if (real_signature)
        CHECK((st == EE_OK) == in_window);
    if (st == EE_OK) {
        CHECK(in_window);
        const char *used = real_signature ? good : sig;
        CHECK(strlen(used) == 67 && strncasecmp(used, good, 67) == 0);
    }
    ee_error_clear();
    free(buf);
}

static ee__secret_names *names;

/* Whether the default list drops a member called key[0..len) on its own. */
static bool drops_alone(const char *key, size_t len)
{
    json_t *probe = json_object();
    json_object_setn_new(probe, key, len, json_true());
    size_t k = ee__drop_secrets(names, probe);
    json_decref(probe);
    return k == 1;
}

static size_t members(const json_t *v)
{
    size_t n = 0;
    if (json_is_object(v)) {
        const char *k;
        json_t *e;
        json_object_foreach((json_t *)v, k, e)
            n += 1 + members(e);
    } else if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
            n += members(e);
    }
    return n;
}

static void no_secret_left(const json_t *v)
{
    if (json_is_object(v)) {
        const char *k;
        size_t klen;
        json_t *e;
        json_object_keylen_foreach((json_t *)v, k, klen, e) {
            CHECK(!drops_alone(k, klen));
            no_secret_left(e);
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
            no_secret_left(e);
    }
}

static void check_drop(const uint8_t *data, size_t size)
{
    if (!ee__json_depth_ok((const char *)data, size, 100))
        return;
    json_t *doc = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (doc == NULL)
        return;
    size_t before = members(doc);
    size_t k = ee__drop_secrets(names, doc);
    size_t after = members(doc);
    CHECK(after <= before);
    CHECK(k <= before - after); /* a dropped member may take members with it */
    CHECK(k > 0 || after == before);
    CHECK(ee__drop_secrets(names, doc) == 0);
    no_secret_left(doc);
    json_decref(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (names == NULL)
        CHECK(ee__secret_names_parse(NULL, &names) == EE_OK);
    if (size == 0)
        return 0;
    switch (data[0] % 3) {
    case 0: check_callback(data + 1, size - 1, false); break;
    case 1: check_callback(data + 1, size - 1, true); break;
    default: check_drop(data + 1, size - 1); break;
    }
    return 0;
}
