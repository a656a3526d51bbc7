/* The record layer (record.h): field maps for JSON <-> BSON, the bounded
 * parse of request text, and the one read-modify-write retry policy. */
#include "record.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core.h"

/* ---- JSON pointers ------------------------------------------------------- */

/* The pointer of the field being converted, built as the walk descends; a
 * pointer too long for the buffer ends in "..." (messages only). */
typedef struct ptr {
    char buf[256];
    size_t len;
} ptr;

static size_t ptr_push(ptr *p, const char *key)
{
    size_t mark = p->len;
    if (p->len + 2 >= sizeof p->buf)
        return mark;
    p->buf[p->len++] = '/';
    for (const char *k = key; *k != '\0'; k++) {
        const char *esc = *k == '~' ? "~0" : *k == '/' ? "~1" : NULL;
        size_t n = esc != NULL ? 2 : 1;
        if (p->len + n + 4 >= sizeof p->buf) {
            memcpy(p->buf + p->len, "...", 3);
            p->len += 3;
            break;
        }
        if (esc != NULL)
            memcpy(p->buf + p->len, esc, 2);
        else
            p->buf[p->len] = *k;
        p->len += n;
    }
    p->buf[p->len] = '\0';
    return mark;
}

static void ptr_pop(ptr *p, size_t mark)
{
    p->len = mark;
    p->buf[mark] = '\0';
}

static const char *ptr_str(const ptr *p)
{
    return p->len == 0 ? "/" : p->buf;
}

/* ---- maps ----------------------------------------------------------------- */

static const ee__rec_field *field_of(const ee__record_map *map, const char *name)
{
    if (map == NULL)
        return NULL;
    for (size_t i = 0; i < map->n_fields; i++)
        if (strcmp(map->fields[i].name, name) == 0)
            return &map->fields[i];
    return NULL;
}

const char *ee__record_what(const ee__record_map *map)
{
    return map != NULL && map->what != NULL ? map->what : "record";
}

static bool hex_id(const char *s, size_t len)
{
    if (s == NULL || len != EE__RECORD_ID_HEX_LEN)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static const char *kind_text(ee__rec_kind k)
{
    switch (k) {
    case EE__REC_STRING: return "must be a string";
    case EE__REC_ID: return "must be an id of 24 lowercase hex characters";
    case EE__REC_INT64: return "must be an integer";
    case EE__REC_MONEY: return "must be a non-negative integer (nano-USD)";
    case EE__REC_DOUBLE: return "must be a number";
    case EE__REC_BOOL: return "must be true or false";
    case EE__REC_DATE: return "must be an integer (ms since the epoch)";
    case EE__REC_DOC: return "must be an object";
    case EE__REC_ARRAY: return "must be an array";
    case EE__REC_OPAQUE: break;
    }
    return "has an unexpected type";
}

/* ---- JSON -> BSON ---------------------------------------------------------- */

typedef struct enc {
    const ee__record_map *top; /* for the messages */
    ptr p;
} enc;

static ee_status enc_value(enc *e, bson_t *b, const char *key, const ee__rec_field *f,
                           const ee__record_map *scope, const json_t *v, int depth);

static ee_status enc_fail(enc *e, ee_status st, const char *why)
{
    return ee__error(st, "%s: %s %s", ee__record_what(e->top), ptr_str(&e->p), why);
}

/* The members of object `v` through `map` (the map of that object). */
static ee_status enc_members(enc *e, bson_t *b, const ee__record_map *map, const json_t *v,
                             const char *const *skip, int depth)
{
    const char *k;
    const json_t *x;
    json_object_foreach((json_t *)v, k, x) {
        bool skipped = false;
        for (size_t i = 0; skip != NULL && skip[i] != NULL && !skipped; i++)
            skipped = strcmp(skip[i], k) == 0;
        if (skipped)
            continue;
        size_t mark = ptr_push(&e->p, k);
        ee_status st = enc_value(e, b, k, field_of(map, k), map, x, depth);
        if (st != EE_OK)
            return st;
        ptr_pop(&e->p, mark);
    }
    for (size_t i = 0; map != NULL && i < map->n_fields; i++) {
        const ee__rec_field *f = &map->fields[i];
        if ((f->flags & EE__REC_REQUIRED) && json_object_get(v, f->name) == NULL) {
            size_t mark = ptr_push(&e->p, f->name);
            ee_status st = enc_fail(e, EE_EINVAL, "is required");
            ptr_pop(&e->p, mark);
            return st;
        }
    }
    return EE_OK;
}

static ee_status enc_elements(enc *e, bson_t *b, const ee__rec_field *elem,
                              const ee__record_map *scope, const json_t *v, int depth)
{
    size_t i;
    const json_t *x;
    json_array_foreach(v, i, x) {
        char buf[16];
        const char *k;
        bson_uint32_to_string((uint32_t)i, &k, buf, sizeof buf);
        size_t mark = ptr_push(&e->p, k);
        ee_status st = enc_value(e, b, k, elem, scope, x, depth);
        if (st != EE_OK)
            return st;
        ptr_pop(&e->p, mark);
    }
    return EE_OK;
}

static ee_status enc_oom(enc *e)
{
    return ee__error(EE_ETOOBIG, "%s: %s could not be encoded (too big)", ee__record_what(e->top),
                     ptr_str(&e->p));
}

/* A nested document (`map` its map) or array (`elem` its elements, `scope`
 * what unmapped members nested deeper use) under `key`. */
static ee_status enc_container(enc *e, bson_t *b, const char *key, const json_t *v,
                               const ee__record_map *map, const ee__rec_field *elem,
                               const ee__record_map *scope, int depth)
{
    bson_t child;
    bool array = json_is_array(v);
    int klen = (int)strlen(key);
    if (!(array ? bson_append_array_begin(b, key, klen, &child)
                : bson_append_document_begin(b, key, klen, &child)))
        return enc_oom(e);
    ee_status st = array ? enc_elements(e, &child, elem, scope, v, depth + 1)
                         : enc_members(e, &child, map, v, NULL, depth + 1);
    bool ok = array ? bson_append_array_end(b, &child) : bson_append_document_end(b, &child);
    return st != EE_OK ? st : ok ? EE_OK : enc_oom(e);
}

/* The plain mapping; nested documents keep `scope` when it is inherited. */
static ee_status enc_plain(enc *e, bson_t *b, const char *key, const ee__record_map *scope,
                           const json_t *v, int depth)
{
    int klen = (int)strlen(key);
    const ee__record_map *inner = scope != NULL && scope->inherit ? scope : NULL;
    bool ok;
    switch (json_typeof(v)) {
    case JSON_STRING:
        ok = bson_append_utf8(b, key, klen, json_string_value(v), (int)json_string_length(v));
        break;
    case JSON_INTEGER: ok = bson_append_int64(b, key, klen, json_integer_value(v)); break;
    case JSON_REAL: ok = bson_append_double(b, key, klen, json_real_value(v)); break;
    case JSON_TRUE: ok = bson_append_bool(b, key, klen, true); break;
    case JSON_FALSE: ok = bson_append_bool(b, key, klen, false); break;
    case JSON_NULL: ok = bson_append_null(b, key, klen); break;
    case JSON_OBJECT:
    case JSON_ARRAY: return enc_container(e, b, key, v, inner, NULL, inner, depth);
    default: ok = false;
    }
    return ok ? EE_OK : enc_oom(e);
}

static ee_status enc_value(enc *e, bson_t *b, const char *key, const ee__rec_field *f,
                           const ee__record_map *scope, const json_t *v, int depth)
{
    if (depth > EE__RECORD_DEPTH_MAX)
        return enc_fail(e, EE_ETOOBIG, "is nested too deeply");
    if (f == NULL || f->kind == EE__REC_OPAQUE)
        return enc_plain(e, b, key, scope, v, depth);
    if (json_is_null(v) && (f->flags & (EE__REC_NULLABLE | EE__REC_LENIENT)))
        return bson_append_null(b, key, -1) ? EE_OK : enc_oom(e);
    int klen = (int)strlen(key);
    bool fits = false, ok = false;
    switch (f->kind) {
    case EE__REC_STRING:
        if ((fits = json_is_string(v))) {
            if (f->max_bytes != 0 && json_string_length(v) > f->max_bytes) {
                char why[64];
                snprintf(why, sizeof why, "is longer than %zu bytes", f->max_bytes);
                return enc_fail(e, EE_ETOOBIG, why);
            }
            ok = bson_append_utf8(b, key, klen, json_string_value(v), (int)json_string_length(v));
        }
        break;
    case EE__REC_ID:
        if ((fits = json_is_string(v) && hex_id(json_string_value(v), json_string_length(v)))) {
            bson_oid_t oid;
            bson_oid_init_from_string(&oid, json_string_value(v));
            ok = bson_append_oid(b, key, klen, &oid);
        }
        break;
    case EE__REC_INT64:
    case EE__REC_MONEY:
    case EE__REC_DATE: {
        json_int_t n = json_integer_value(v);
        fits = json_is_integer(v) && (f->kind != EE__REC_MONEY || n >= 0);
        if (fits)
            ok = f->kind == EE__REC_DATE ? bson_append_date_time(b, key, klen, n)
                                         : bson_append_int64(b, key, klen, n);
        break;
    }
    case EE__REC_DOUBLE:
    case EE__REC_BOOL:
        fits = f->kind == EE__REC_BOOL ? json_is_boolean(v) : json_is_number(v);
        if (fits)
            ok = f->kind == EE__REC_BOOL ? bson_append_bool(b, key, klen, json_is_true(v))
                                         : bson_append_double(b, key, klen, json_number_value(v));
        break;
    case EE__REC_DOC:
        if (json_is_object(v))
            return enc_container(e, b, key, v, f->map, NULL, NULL, depth);
        break;
    case EE__REC_ARRAY:
        if (json_is_array(v)) {
            if (f->max_bytes != 0 && json_array_size(v) > f->max_bytes) {
                char why[64];
                snprintf(why, sizeof why, "has more than %zu elements", f->max_bytes);
                return enc_fail(e, EE_ETOOBIG, why);
            }
            return enc_container(e, b, key, v, NULL, f->elem, NULL, depth);
        }
        break;
    case EE__REC_OPAQUE: break;
    }
    if (!fits)
        return (f->flags & EE__REC_LENIENT) ? enc_plain(e, b, key, scope, v, depth)
                                            : enc_fail(e, EE_EINVAL, kind_text(f->kind));
    return ok ? EE_OK : enc_oom(e);
}

ee_status ee__record_append(bson_t *b, const ee__record_map *map, const json_t *rec,
                            const char *const *skip)
{
    enc e = {.top = map};
    if (!json_is_object(rec))
        return ee__error(EE_EINVAL, "%s: must be a JSON object", ee__record_what(map));
    return enc_members(&e, b, map, rec, skip, 0);
}

/* The size this thread's last documents took (ee__record_encode). */
#define EE__RECORD_ENC_HINT_MAX (64 * 1024)
static _Thread_local size_t enc_hint;

ee_status ee__record_encode(const ee__record_map *map, const json_t *rec, uint8_t **data,
                            size_t *len)
{
    *data = NULL;
    *len = 0;
    /* Sized from what this thread encoded lately: a document grown from
     * libbson's 120 inline bytes by doubling took four or five reallocs. */
    size_t cap = 256;
    while (cap < enc_hint && cap < EE__RECORD_ENC_HINT_MAX)
        cap *= 2;
    bson_t *b = bson_sized_new(cap);
    if (b == NULL)
        return ee__error(EE_ENOMEM, "out of memory encoding a %s", ee__record_what(map));
    ee_status st = ee__record_append(b, map, rec, NULL);
    if (st == EE_OK) {
        *data = malloc(b->len);
        if (*data == NULL)
            st = ee__error(EE_ENOMEM, "out of memory encoding a %s", ee__record_what(map));
        else {
            memcpy(*data, bson_get_data(b), b->len);
            *len = b->len;
            /* follows larger documents at once, smaller ones slowly */
            enc_hint = b->len >= enc_hint ? b->len : enc_hint - (enc_hint - b->len) / 8;
        }
    }
    bson_destroy(b);
    return st;
}

/* ---- BSON -> JSON ----------------------------------------------------------- */

typedef struct dec {
    const ee__record_map *top;
    ptr p;
} dec;

static ee_status dec_fail(dec *d, const char *why)
{
    return ee__error(EE_ECORRUPT, "stored %s: %s %s", ee__record_what(d->top), ptr_str(&d->p), why);
}

static ee_status dec_value(dec *d, bson_iter_t *it, const ee__rec_field *f,
                           const ee__record_map *scope, int depth, json_t **out);

static ee_status dec_container(dec *d, bson_iter_t *it, bool array, const ee__record_map *map,
                               const ee__rec_field *elem, bool keep_id, int depth, json_t **out)
{
    *out = array ? json_array() : json_object();
    if (*out == NULL)
        return ee__error(EE_ENOMEM, "out of memory reading a %s", ee__record_what(d->top));
    while (bson_iter_next(it)) {
        const char *k = bson_iter_key(it);
        size_t klen = bson_iter_key_len(it);
        bool own_id = !array && !keep_id && depth == 0 && strcmp(k, "_id") == 0;
        if (BSON_ITER_HOLDS_BINARY(it) || own_id)
            continue;
        const ee__rec_field *f = array ? elem : field_of(map, k);
        if (f != NULL && (f->flags & EE__REC_SECRET))
            continue;
        size_t mark = ptr_push(&d->p, k);
        json_t *v = NULL;
        ee_status st = dec_value(d, it, f, map, depth, &v);
        if (st == EE_OK && !array && !ee__utf8_valid(k, klen)) {
            json_decref(v);
            st = dec_fail(d, "has a name that is not valid UTF-8");
        }
        /* the name and the strings are checked here: jansson need not */
        if (st == EE_OK && (array ? json_array_append_new(*out, v)
                                  : json_object_setn_new_nocheck(*out, k, klen, v)) != 0)
            st = ee__error(EE_ENOMEM, "out of memory reading a %s", ee__record_what(d->top));
        if (st != EE_OK) {
            json_decref(*out);
            *out = NULL;
            return st;
        }
        ptr_pop(&d->p, mark);
    }
    /* the iterator checks each element's bounds as it goes; it stops
     * early, err_off set, at the first one that does not fit */
    if (it->err_off != 0) {
        json_decref(*out);
        *out = NULL;
        return dec_fail(d, "is not valid BSON");
    }
    for (size_t i = 0; !array && map != NULL && i < map->n_fields; i++) {
        const ee__rec_field *f = &map->fields[i];
        if ((f->flags & EE__REC_REQUIRED) && json_object_get(*out, f->name) == NULL) {
            size_t mark = ptr_push(&d->p, f->name);
            ee_status st = dec_fail(d, "is missing");
            ptr_pop(&d->p, mark);
            json_decref(*out);
            *out = NULL;
            return st;
        }
    }
    return EE_OK;
}

/* Whether the BSON type `t` is what field `f` stores. */
static bool bson_fits(const ee__rec_field *f, bson_type_t t)
{
    switch (f->kind) {
    case EE__REC_STRING: return t == BSON_TYPE_UTF8;
    case EE__REC_ID: return t == BSON_TYPE_OID;
    case EE__REC_INT64:
    case EE__REC_MONEY: return t == BSON_TYPE_INT64 || t == BSON_TYPE_INT32;
    case EE__REC_DOUBLE:
        return t == BSON_TYPE_DOUBLE || t == BSON_TYPE_INT64 || t == BSON_TYPE_INT32;
    case EE__REC_BOOL: return t == BSON_TYPE_BOOL;
    case EE__REC_DATE: return t == BSON_TYPE_DATE_TIME;
    case EE__REC_DOC: return t == BSON_TYPE_DOCUMENT;
    case EE__REC_ARRAY: return t == BSON_TYPE_ARRAY;
    case EE__REC_OPAQUE: return true;
    }
    return false;
}

static ee_status dec_value(dec *d, bson_iter_t *it, const ee__rec_field *f,
                           const ee__record_map *scope, int depth, json_t **out)
{
    *out = NULL;
    bson_type_t t = bson_iter_type(it);
    if (f != NULL && f->kind != EE__REC_OPAQUE && !bson_fits(f, t)
        && !(t == BSON_TYPE_NULL && (f->flags & (EE__REC_NULLABLE | EE__REC_LENIENT)))
        && !(f->flags & EE__REC_LENIENT))
        return dec_fail(d, "has an unexpected BSON type");
    bool typed = f != NULL && f->kind != EE__REC_OPAQUE && bson_fits(f, t);
    const ee__record_map *inner = scope != NULL && scope->inherit ? scope : NULL;
    switch (t) {
    case BSON_TYPE_UTF8: {
        uint32_t n;
        const char *s = bson_iter_utf8(it, &n);
        if (!ee__utf8_valid(s, n))
            return dec_fail(d, "is not valid UTF-8");
        *out = json_stringn_nocheck(s, n);
        break;
    }
    case BSON_TYPE_INT32: *out = json_integer(bson_iter_int32(it)); break;
    case BSON_TYPE_INT64: *out = json_integer(bson_iter_int64(it)); break;
    case BSON_TYPE_DOUBLE: *out = json_real(bson_iter_double(it)); break;
    case BSON_TYPE_BOOL: *out = json_boolean(bson_iter_bool(it)); break;
    case BSON_TYPE_NULL: *out = json_null(); break;
    case BSON_TYPE_DATE_TIME: *out = json_integer(bson_iter_date_time(it)); break;
    case BSON_TYPE_OID: {
        char hex[25];
        bson_oid_to_string(bson_iter_oid(it), hex);
        *out = json_string(hex);
        break;
    }
    case BSON_TYPE_DOCUMENT:
    case BSON_TYPE_ARRAY: {
        bson_iter_t child;
        if (depth >= EE__RECORD_DEPTH_MAX)
            return dec_fail(d, "is nested too deeply");
        if (!bson_iter_recurse(it, &child))
            return dec_fail(d, "is not valid BSON");
        bool array = t == BSON_TYPE_ARRAY;
        const ee__record_map *map = typed && !array ? f->map : inner;
        const ee__rec_field *elem = typed && array ? f->elem : NULL;
        return dec_container(d, &child, array, map, elem, true, depth + 1, out);
    }
    default: return dec_fail(d, "has an unexpected BSON type");
    }
    return *out != NULL ? EE_OK : ee__error(EE_ENOMEM, "out of memory reading a %s",
                                            ee__record_what(d->top));
}

ee_status ee__record_decode(const ee__record_map *map, const uint8_t *data, size_t len,
                            bool keep_id, json_t **out)
{
    *out = NULL;
    bson_t b;
    bson_iter_t it;
    /* No bson_validate() walk first: dec_container() meets every element
     * anyway, and the iterator refuses one that does not fit (err_off),
     * jansson one whose text is not UTF-8 - a third of a decode's cost
     * saved on every read of a record. */
    if (!bson_init_static(&b, data, len) || !bson_iter_init(&it, &b))
        return ee__error(EE_ECORRUPT, "a stored %s is not valid BSON", ee__record_what(map));
    dec d = {.top = map};
    return dec_container(&d, &it, false, map, NULL, keep_id, 0, out);
}

/* ---- request text ------------------------------------------------------------- */

ee_status ee__record_parse(const char *text, size_t max_bytes, size_t max_depth, size_t flags,
                           const char *what, json_t **out)
{
    ee_status st = ee__json_parse(text, max_bytes, max_depth, flags, what, out);
    if (st == EE_OK && !json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        st = ee__error(EE_EINVAL, "%s: must be a JSON object", what);
    }
    return st;
}

/* ---- the retry policy ------------------------------------------------------------ */

/* Before attempt i (from 0): nothing for the first, then a random wait of
 * up to 2^i ms, at most EE__RECORD_BACKOFF_CAP_MS. */
static void backoff(int i)
{
    if (i == 0)
        return;
    static _Thread_local unsigned seed;
    if (seed == 0)
        seed = (unsigned)(uintptr_t)&seed ^ (unsigned)getpid() ^ (unsigned)time(NULL);
    long cap_ms = i < 16 ? 1L << i : EE__RECORD_BACKOFF_CAP_MS;
    if (cap_ms > EE__RECORD_BACKOFF_CAP_MS)
        cap_ms = EE__RECORD_BACKOFF_CAP_MS;
    long ns = (long)(rand_r(&seed) % (unsigned)(cap_ms * 1000)) * 1000L;
    struct timespec ts = {ns / 1000000000L, ns % 1000000000L};
    nanosleep(&ts, NULL);
}

ee_status ee__record_retry(ee__record_attempt_fn fn, void *payload, const char *what)
{
    for (int i = 0; i < EE__RECORD_ATTEMPTS; i++) {
        backoff(i);
        bool final = false;
        ee_status st = fn(i, &final, payload);
        if (final || (st != EE_ECONFLICT && st != EE_EEXISTS))
            return st;
    }
    return ee__error(EE_ECONFLICT, "%s changed concurrently %d times: try again", what,
                     EE__RECORD_ATTEMPTS);
}
