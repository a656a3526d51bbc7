/*
 * BSON helpers shared by the wrapper and the built-in backends: checking a
 * document, extracting its indexed values, rewriting it for an increment
 * and building the document an upsert creates. libbson stays inside lib/.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

void ee__storage_id_hex(const uint8_t id[12], char out[25])
{
    ee__hex_encode(id, 12, out);
}

ee_status ee__storage_not_found(const ee_storage_collection *c, const uint8_t *id)
{
    char hex[25];
    ee__storage_id_hex(id, hex);
    return ee__error(EE_ENOTFOUND, "%s: no document %s", c->name, hex);
}

/* Deepest nesting of sub-documents and arrays a stored document may have. */
#define MAX_DEPTH 64

/* One pass over every element, sub-documents included. bson_iter_next()
 * checks each element's framing against the buffer; we add UTF-8 of keys
 * and strings, the framing of every sub-document, and a depth bound. This
 * replaces bson_validate(), which costs several times more per document
 * and does not check a sub-document's terminator. */
static bool walk(bson_iter_t *it, int depth)
{
    if (depth > MAX_DEPTH)
        return false;
    while (bson_iter_next(it)) {
        const char *key = bson_iter_key(it);
        if (!ee__utf8_valid(key, bson_iter_key_len(it)))
            return false;
        switch (bson_iter_type(it)) {
        case BSON_TYPE_DOCUMENT:
        case BSON_TYPE_ARRAY: {
            bson_iter_t child;
            if (!bson_iter_recurse(it, &child) || !walk(&child, depth + 1))
                return false;
            break;
        }
        case BSON_TYPE_UTF8: {
            uint32_t n = 0;
            const char *v = bson_iter_utf8(it, &n);
            if (v == NULL || !ee__utf8_valid(v, n))
                return false;
            break;
        }
        default:
            break;
        }
    }
    return it->err_off == 0;
}

ee_status ee__storage_doc_check(const uint8_t *data, size_t len, ee_status fail_status,
                                const char *what)
{
    bson_t b;
    bson_iter_t it;
    if (data == NULL || len < 5)
        return ee__error(fail_status, "%s is not a BSON document: %zu bytes", what, len);
    if (!bson_init_static(&b, data, len))
        return ee__error(fail_status,
                         "%s is not a BSON document: its length header does not match its %zu "
                         "bytes or it lacks the terminator", what, len);
    if (!bson_iter_init(&it, &b) || !walk(&it, 0))
        return ee__error(fail_status,
                         "%s is not valid BSON: a malformed element, invalid UTF-8, or nesting "
                         "deeper than %d (near byte %u)", what, MAX_DEPTH, (unsigned)it.err_off);
    return EE_OK;
}

bool ee__storage_doc_framed(const uint8_t *data, size_t len)
{
    bson_t b;
    return data != NULL && len >= 5 && bson_init_static(&b, data, len);
}

/* Text form of an indexed value, or NULL for types that are not indexed. */
static ee_status value_text(const bson_iter_t *it, const char *field, char *buf,
                            const char **out)
{
    *out = NULL;
    switch (bson_iter_type(it)) {
    case BSON_TYPE_UTF8: {
        uint32_t n = 0;
        const char *s = bson_iter_utf8(it, &n);
        if (n > EE_STORAGE_VALUE_MAX)
            return ee__error(EE_ETOOBIG, "indexed field '%s' is %u bytes, longer than %d", field,
                             n, EE_STORAGE_VALUE_MAX);
        if (memchr(s, '\0', n) != NULL)
            return ee__error(EE_EINVAL, "indexed field '%s' contains a NUL character", field);
        memcpy(buf, s, n);
        buf[n] = '\0';
        break;
    }
    case BSON_TYPE_OID:
        ee__storage_id_hex(bson_iter_oid(it)->bytes, buf);
        break;
    case BSON_TYPE_BOOL:
        strcpy(buf, bson_iter_bool(it) ? "true" : "false");
        break;
    case BSON_TYPE_INT32:
        snprintf(buf, EE_STORAGE_VALUE_MAX + 1, "%" PRId32, bson_iter_int32(it));
        break;
    case BSON_TYPE_INT64:
        snprintf(buf, EE_STORAGE_VALUE_MAX + 1, "%" PRId64, bson_iter_int64(it));
        break;
    default:
        return EE_OK;
    }
    *out = buf;
    return EE_OK;
}

static bool time_value(const bson_iter_t *it, int64_t *out)
{
    switch (bson_iter_type(it)) {
    case BSON_TYPE_DATE_TIME: *out = bson_iter_date_time(it); return true;
    case BSON_TYPE_INT64: *out = bson_iter_int64(it); return true;
    case BSON_TYPE_INT32: *out = bson_iter_int32(it); return true;
    default: return false;
    }
}

ee_status ee__storage_doc_extract(const ee_storage_collection *coll, const uint8_t *data,
                                  size_t len, ee__storage_extract *out)
{
    bson_t b;
    bson_iter_t it;
    size_t nf = coll->n_fields < 32 ? coll->n_fields : 32;
    bool dotted = false;
    out->has_time = false;
    out->time = 0;
    if (len < 5 || !bson_init_static(&b, data, len) || !bson_iter_init(&it, &b))
        return ee__error(EE_ECORRUPT, "%s: document is not BSON", coll->name);
    for (size_t i = 0; i < nf; i++) {
        out->values[i] = NULL;
        dotted |= strchr(coll->fields[i], '.') != NULL;
    }
    /* One pass over the top level: the declared fields are top-level ones. */
    while (bson_iter_next(&it)) {
        const char *key = bson_iter_key(&it);
        if (!out->has_time && strcmp(key, coll->time_field) == 0) {
            out->has_time = time_value(&it, &out->time);
            continue;
        }
        for (size_t i = 0; i < nf; i++)
            if (out->values[i] == NULL && strcmp(key, coll->fields[i]) == 0) {
                ee_status st = value_text(&it, coll->fields[i],
                                          out->buf + i * (EE_STORAGE_VALUE_MAX + 1),
                                          &out->values[i]);
                if (st != EE_OK)
                    return st;
                break;
            }
    }
    for (size_t i = 0; dotted && i < nf; i++) /* a future dotted field */
        if (strchr(coll->fields[i], '.') != NULL && bson_iter_init(&it, &b) &&
            bson_iter_find_descendant(&it, coll->fields[i], &it)) {
            ee_status st = value_text(&it, coll->fields[i],
                                      out->buf + i * (EE_STORAGE_VALUE_MAX + 1), &out->values[i]);
            if (st != EE_OK)
                return st;
        }
    return EE_OK;
}

/* ---- increments ------------------------------------------------------------ */

typedef struct inc_state {
    const ee_storage_inc *inc;
    size_t n;
    bool done[EE_STORAGE_INC_MAX];
    int64_t *totals;
} inc_state;

static bool under(const char *field, const char *prefix, size_t plen)
{
    return strncmp(field, prefix, plen) == 0 && field[plen] != '\0';
}

/* Append, under `prefix` (empty or ending in '.'), every increment not yet
 * applied: missing fields start at their delta, missing parents are
 * created as sub-documents. */
static bool append_missing(bson_t *dst, const char *prefix, size_t plen, inc_state *st)
{
    for (size_t i = 0; i < st->n; i++) {
        if (st->done[i] || !under(st->inc[i].field, prefix, plen))
            continue;
        const char *rest = st->inc[i].field + plen;
        const char *dot = strchr(rest, '.');
        if (dot == NULL) {
            if (!BSON_APPEND_INT64(dst, rest, st->inc[i].delta))
                return false;
            st->done[i] = true;
            if (st->totals != NULL)
                st->totals[i] = st->inc[i].delta;
            continue;
        }
        char sub[2 * EE_STORAGE_FIELD_MAX + 2];
        size_t clen = (size_t)(dot - rest);
        if (plen + clen + 1 >= sizeof sub)
            return false;
        memcpy(sub, st->inc[i].field, plen + clen + 1); /* prefix + component + '.' */
        sub[plen + clen + 1] = '\0';
        bson_t child;
        if (!bson_append_document_begin(dst, rest, (int)clen, &child))
            return false;
        bool ok = append_missing(&child, sub, plen + clen + 1, st);
        if (!bson_append_document_end(dst, &child) || !ok)
            return false;
    }
    return true;
}

static ee_status rewrite(bson_iter_t *it, bson_t *dst, const char *prefix, size_t plen,
                         inc_state *st, bool top)
{
    char path[2 * EE_STORAGE_FIELD_MAX + 2];
    while (bson_iter_next(it)) {
        const char *key = bson_iter_key(it);
        size_t klen = strlen(key);
        if (top && strcmp(key, "updatedAt") == 0)
            continue; /* re-appended at the end with the new time */
        if (plen + klen + 1 >= sizeof path) {
            if (!bson_append_iter(dst, NULL, 0, it))
                return ee__error(EE_ECORRUPT, "increment: the stored document cannot be rewritten");
            continue;
        }
        memcpy(path, prefix, plen);
        memcpy(path + plen, key, klen + 1);
        bool matched = false, parent = false;
        for (size_t i = 0; i < st->n; i++) {
            if (strcmp(st->inc[i].field, path) == 0) {
                int64_t cur, sum;
                if (BSON_ITER_HOLDS_INT64(it))
                    cur = bson_iter_int64(it);
                else if (BSON_ITER_HOLDS_INT32(it))
                    cur = bson_iter_int32(it);
                else
                    return ee__error(EE_EINVAL,
                                     "increment: stored field '%s' is not an integer", path);
                if (__builtin_add_overflow(cur, st->inc[i].delta, &sum))
                    return ee__error(EE_EINVAL, "increment: field '%s' would overflow int64",
                                     path);
                if (!bson_append_int64(dst, key, (int)klen, sum))
                    return ee__error(EE_ECORRUPT, "increment: the stored document cannot be rewritten");
                st->done[i] = true;
                if (st->totals != NULL)
                    st->totals[i] = sum;
                matched = true;
                break;
            }
            if (strncmp(st->inc[i].field, path, plen + klen) == 0 &&
                st->inc[i].field[plen + klen] == '.')
                parent = true;
        }
        if (matched)
            continue;
        if (parent) {
            if (!BSON_ITER_HOLDS_DOCUMENT(it))
                return ee__error(EE_EINVAL,
                                 "increment: stored field '%s' is not a sub-document", path);
            bson_iter_t child_it;
            bson_t child;
            if (!bson_iter_recurse(it, &child_it))
                return ee__error(EE_ECORRUPT, "increment: sub-document '%s' is malformed", path);
            if (!bson_append_document_begin(dst, key, (int)klen, &child))
                return ee__error(EE_ECORRUPT, "increment: the stored document cannot be rewritten");
            path[plen + klen] = '.';
            path[plen + klen + 1] = '\0';
            ee_status s = rewrite(&child_it, &child, path, plen + klen + 1, st, false);
            if (!bson_append_document_end(dst, &child) && s == EE_OK)
                s = ee__error(EE_ECORRUPT, "increment: the stored document cannot be rewritten");
            if (s != EE_OK)
                return s;
            continue;
        }
        if (!bson_append_iter(dst, NULL, 0, it))
            return ee__error(EE_ECORRUPT, "increment: the stored document cannot be rewritten");
    }
    if (!append_missing(dst, prefix, plen, st))
        return ee__error(EE_ECORRUPT, "increment: the stored document cannot be rewritten");
    return EE_OK;
}

ee_status ee__storage_doc_apply_inc(const uint8_t *data, size_t len, const ee_storage_inc *inc,
                                    size_t n_inc, int64_t now_ms, bson_t *out,
                                    int64_t *totals_out)
{
    bson_t src;
    bson_iter_t it;
    bson_init(out);
    /* Stored bytes are checked again: they may have been written by another
     * program or damaged on disk. */
    if (ee__storage_doc_check(data, len, EE_ECORRUPT, "increment: the stored document") !=
            EE_OK ||
        !bson_init_static(&src, data, len) || !bson_iter_init(&it, &src))
        return EE_ECORRUPT;
    inc_state st = {.inc = inc, .n = n_inc, .totals = totals_out};
    ee_status s = rewrite(&it, out, "", 0, &st, true);
    if (s == EE_OK && !BSON_APPEND_DATE_TIME(out, "updatedAt", now_ms))
        s = ee__error(EE_ECORRUPT, "increment: the stored document cannot be rewritten");
    if (s == EE_OK && out->len > EE_STORAGE_DOC_MAX)
        s = ee__error(EE_ETOOBIG, "increment: the document would exceed %d bytes",
                      EE_STORAGE_DOC_MAX);
    return s;
}

ee_status ee__storage_doc_upsert(const ee_storage_collection *coll, const uint8_t id[12],
                                 const char *workspace, const ee_storage_eq *key, size_t n_key,
                                 const ee_storage_inc *inc, size_t n_inc, int64_t now_ms,
                                 bson_t *out)
{
    bson_oid_t oid;
    memcpy(oid.bytes, id, 12);
    bson_init(out);
    bool ok = BSON_APPEND_OID(out, "_id", &oid);
    if (ok && (coll->flags & EE_STORAGE_COLL_PER_WORKSPACE))
        ok = BSON_APPEND_UTF8(out, "workspaceId", workspace);
    for (size_t i = 0; ok && i < n_key; i++)
        ok = BSON_APPEND_UTF8(out, key[i].field, key[i].value);
    inc_state st = {.inc = inc, .n = n_inc, .totals = NULL};
    ok = ok && append_missing(out, "", 0, &st);
    ok = ok && BSON_APPEND_DATE_TIME(out, coll->time_field, now_ms);
    if (ok && strcmp(coll->time_field, "updatedAt") != 0)
        ok = BSON_APPEND_DATE_TIME(out, "updatedAt", now_ms);
    if (!ok)
        return ee__error(EE_ENOMEM, "increment: cannot build the new document");
    return EE_OK;
}
