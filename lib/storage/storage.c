/*
 * The ee_storage handle: validates every input before a backend sees it,
 * versions and copies backend tables, serialises backends that are not
 * thread-safe, and owns the page cursors so that no backend parses one.
 */
#include <ctype.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "storage.h"

struct ee_storage {
    ee_storage_backend be;  /* our copy, zero past the declared version */
    void *ctx;
    bool serialise;         /* backend is not thread-safe: one call at a time */
    bool builtin;           /* its slots set their own messages */
    pthread_mutex_t mu;
    const ee__storage_tx_ops *tx; /* a built-in backend's transactions, or NULL */
};

/* Size of the table each known version defines: a newer library adds a
 * line here when it appends slots. */
static const size_t backend_sizes[] = {
    offsetof(ee_storage_backend, delete_range) + sizeof(void (*)(void)), /* 1 */
    offsetof(ee_storage_backend, claim) + sizeof(void (*)(void)),        /* 2: claim */
};

/* `backend` has been adopted (ee__vtable_adopt): zero past its version. */
static ee_status wrap(ee_storage **out, const ee_storage_backend *backend, void *ctx,
                      bool builtin)
{
    ee_storage *s = calloc(1, sizeof *s);
    if (s == NULL) {
        if (backend->destroy != NULL)
            backend->destroy(ctx);
        return ee__error(EE_ENOMEM, "out of memory opening storage");
    }
    s->be = *backend;
    s->ctx = ctx;
    s->builtin = builtin;
    s->serialise = (backend->flags & EE_STORAGE_THREAD_SAFE) == 0;
    if (s->be.name == NULL)
        s->be.name = "custom";
    pthread_mutex_init(&s->mu, NULL);
    *out = s;
    return EE_OK;
}

static ee_status adopt_and_wrap(ee_storage **out, const ee_storage_backend *backend, void *ctx,
                                bool builtin)
{
    ee_storage_backend be;
    ee_status st = EE__VTABLE_ADOPT(&be, backend, backend_sizes, "storage backend table");
    return st != EE_OK ? st : wrap(out, &be, ctx, builtin);
}

ee_status ee__storage_wrap(ee_storage **out, const ee_storage_backend *backend, void *ctx)
{
    return adopt_and_wrap(out, backend, ctx, true);
}

ee_status ee__storage_wrap_tx(ee_storage **out, const ee_storage_backend *backend, void *ctx,
                              const ee__storage_tx_ops *tx)
{
    ee_status st = adopt_and_wrap(out, backend, ctx, true);
    if (st == EE_OK)
        (*out)->tx = tx;
    return st;
}

const ee__storage_tx_ops *ee__storage_tx(const ee_storage *s, void **ctx_out)
{
    *ctx_out = s->ctx;
    return s->tx;
}

ee_status ee_storage_new_custom(ee_storage **out, const ee_storage_backend *backend, void *ctx)
{
    if (out == NULL || backend == NULL)
        return ee__error(EE_EINVAL, "ee_storage_new_custom: NULL argument");
    *out = NULL;
    return adopt_and_wrap(out, backend, ctx, false);
}

void ee_storage_free(ee_storage *s)
{
    if (s == NULL)
        return;
    if (s->be.destroy != NULL)
        s->be.destroy(s->ctx);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

const char *ee_storage_backend_name(const ee_storage *s)
{
    return s == NULL ? "" : s->be.name;
}

const ee_storage_backend *ee__storage_backend(const ee_storage *s, void **ctx_out)
{
    *ctx_out = s->ctx;
    return &s->be;
}

ee_status ee_storage_id_new(char *out)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee_storage_id_new: NULL argument");
    uint8_t oid[12];
    ee__oid_new(oid);
    ee__storage_id_hex(oid, out);
    return EE_OK;
}

/* ---- calling a backend ------------------------------------------------------ */

static void enter(ee_storage *s)
{
    if (s->serialise)
        pthread_mutex_lock(&s->mu);
}

/* A custom backend may fail without a message: give one that names the
 * backend and the operation. */
static ee_status leave(ee_storage *s, ee_status st, const char *op)
{
    if (s->serialise)
        pthread_mutex_unlock(&s->mu);
    if (st != EE_OK && !s->builtin && ee_error_last_status() != (int)st)
        ee__error(st, "storage backend '%s' failed in %s: %s", s->be.name, op, ee_strerror(st));
    return st;
}

static ee_status missing_slot(const ee_storage *s, const char *op)
{
    return ee__error(EE_ENOTSUPPORTED, "storage backend '%s' does not implement %s", s->be.name,
                     op);
}

/* ---- input checks ------------------------------------------------------------ */

static ee_status check_collection(const char *name, const ee_storage_collection **out)
{
    if (name == NULL)
        return ee__error(EE_EINVAL, "collection name is NULL");
    *out = ee__storage_collection_find(name);
    if (*out == NULL) {
        char q[72];
        ee__quote_for_message(name, q, sizeof q);
        return ee__error(EE_ENOTSUPPORTED,
                         "unknown collection '%s': see docs/storage.md for the collections", q);
    }
    return EE_OK;
}

static bool workspace_char(char c)
{
    return isalnum((unsigned char)c) || c == '-' || c == '_' || c == '.' || c == ':' || c == '@';
}

/* Per-workspace collections need a workspace id; global ones take NULL or
 * "". *ws_out is what backends see ("" for global collections). */
static ee_status check_workspace(const ee_storage_collection *c, const char *ws,
                                 const char **ws_out)
{
    if (!(c->flags & EE_STORAGE_COLL_PER_WORKSPACE)) {
        if (ws != NULL && ws[0] != '\0')
            return ee__error(EE_EINVAL, "collection '%s' is global: workspace must be NULL",
                             c->name);
        *ws_out = "";
        return EE_OK;
    }
    if (ws == NULL || ws[0] == '\0')
        return ee__error(EE_EINVAL, "collection '%s' is per-workspace: a workspace is required",
                         c->name);
    size_t n = strnlen(ws, EE_STORAGE_WORKSPACE_MAX + 1);
    if (n > EE_STORAGE_WORKSPACE_MAX)
        return ee__error(EE_ETOOBIG, "workspace id is longer than %d bytes",
                         EE_STORAGE_WORKSPACE_MAX);
    for (size_t i = 0; i < n; i++)
        if (!workspace_char(ws[i])) {
            char q[72];
            ee__quote_for_message(ws, q, sizeof q);
            return ee__error(EE_EINVAL,
                             "workspace id '%s' has a character outside [A-Za-z0-9._:@-]", q);
        }
    *ws_out = ws;
    return EE_OK;
}

static ee_status check_id(const char *id, uint8_t out[12])
{
    if (id == NULL)
        return ee__error(EE_EINVAL, "document id is NULL");
    size_t n = strnlen(id, EE_STORAGE_ID_HEX_LEN + 1);
    if (n > EE_STORAGE_ID_HEX_LEN)
        return ee__error(EE_ETOOBIG, "document id is longer than %d hex characters",
                         EE_STORAGE_ID_HEX_LEN);
    if (n < EE_STORAGE_ID_HEX_LEN)
        return ee__error(EE_EINVAL, "document id must be %d hex characters, got %zu",
                         EE_STORAGE_ID_HEX_LEN, n);
    if (!ee__hex_decode(id, 12, out)) {
        char q[32];
        ee__quote_for_message(id, q, sizeof q);
        return ee__error(EE_EINVAL, "document id '%s' is not hexadecimal", q);
    }
    return EE_OK;
}

/* The collection, workspace and id naming one document, checked. */
static ee_status check_doc(const char *collection, const char *workspace, const char *id,
                           const ee_storage_collection **c, const char **ws, uint8_t oid[12])
{
    ee_status st = check_collection(collection, c);
    if (st == EE_OK)
        st = check_workspace(*c, workspace, ws);
    if (st == EE_OK)
        st = check_id(id, oid);
    return st;
}

/* A document ready for a backend: validated, with an _id, its values
 * extracted. `owned` holds a rebuilt copy when _id had to be prepended. */
typedef struct prepared {
    bson_t owned;
    bool has_owned;
    uint8_t id[12];
    ee__storage_extract ex;
    ee_storage_record rec;
} prepared;

static void prepared_done(prepared *p)
{
    if (p->has_owned)
        bson_destroy(&p->owned);
}

static ee_status prepare(const ee_storage_collection *c, const char *ws, const uint8_t *data,
                         size_t len, const uint8_t *want_id, prepared *p)
{
    p->has_owned = false;
    if (data == NULL)
        return ee__error(EE_EINVAL, "document is NULL");
    if (len > EE_STORAGE_DOC_MAX)
        return ee__error(EE_ETOOBIG, "document is %zu bytes, more than the limit of %d", len,
                         EE_STORAGE_DOC_MAX);
    ee_status st = ee__storage_doc_check(data, len, EE_EPARSE, "document");
    if (st != EE_OK)
        return st;
    bson_t b;
    bson_iter_t it;
    bson_init_static(&b, data, len);
    if (bson_iter_init_find(&it, &b, "_id")) {
        if (!BSON_ITER_HOLDS_OID(&it))
            return ee__error(EE_EINVAL, "%s: _id must be an ObjectId", c->name);
        memcpy(p->id, bson_iter_oid(&it)->bytes, 12);
        if (want_id != NULL && memcmp(p->id, want_id, 12) != 0)
            return ee__error(EE_EINVAL, "%s: the document's _id differs from the id replaced",
                             c->name);
    } else {
        bson_oid_t oid;
        if (want_id != NULL)
            memcpy(oid.bytes, want_id, 12);
        else
            ee__oid_new(oid.bytes);
        memcpy(p->id, oid.bytes, 12);
        bson_init(&p->owned);
        p->has_owned = true;
        if (!BSON_APPEND_OID(&p->owned, "_id", &oid) || !bson_concat(&p->owned, &b))
            return ee__error(EE_ETOOBIG, "%s: document too large to add an _id", c->name);
        data = bson_get_data(&p->owned);
        len = p->owned.len;
        if (len > EE_STORAGE_DOC_MAX)
            return ee__error(EE_ETOOBIG, "document is %zu bytes with its _id, more than %d", len,
                             EE_STORAGE_DOC_MAX);
    }
    if ((c->flags & EE_STORAGE_COLL_PER_WORKSPACE) &&
        bson_iter_init_find(&it, &b, "workspaceId")) {
        char hex[25];
        const char *have = NULL;
        if (BSON_ITER_HOLDS_UTF8(&it))
            have = bson_iter_utf8(&it, NULL);
        else if (BSON_ITER_HOLDS_OID(&it)) {
            ee__storage_id_hex(bson_iter_oid(&it)->bytes, hex);
            have = hex;
        }
        if (have == NULL || strcmp(have, ws) != 0)
            return ee__error(EE_EINVAL,
                             "%s: the document's workspaceId differs from the workspace of the "
                             "call", c->name);
    }
    st = ee__storage_doc_extract(c, data, len, &p->ex);
    if (st != EE_OK)
        return st;
    if (!p->ex.has_time)
        return ee__error(EE_EINVAL, "%s: the document needs '%s' as a date or integer ms",
                         c->name, c->time_field);
    p->rec.id = p->id;
    p->rec.workspace = ws;
    p->rec.revision = 1;
    p->rec.time = p->ex.time;
    p->rec.values = p->ex.values;
    p->rec.data = data;
    p->rec.len = len;
    return EE_OK;
}

/* ---- documents --------------------------------------------------------------- */

ee_status ee_storage_insert(ee_storage *s, const char *collection, const char *workspace,
                            const uint8_t *data, size_t len, char *id_out)
{
    const ee_storage_collection *c;
    const char *ws;
    ee_status st;
    if (s == NULL)
        return ee__error(EE_EINVAL, "storage handle is NULL");
    if ((st = check_collection(collection, &c)) != EE_OK ||
        (st = check_workspace(c, workspace, &ws)) != EE_OK)
        return st;
    prepared p;
    st = prepare(c, ws, data, len, NULL, &p);
    if (st == EE_OK) {
        if (s->be.insert == NULL) {
            st = missing_slot(s, "insert");
        } else {
            enter(s);
            st = leave(s, s->be.insert(s->ctx, c, &p.rec), "insert");
        }
    }
    if (st == EE_OK && id_out != NULL)
        ee__storage_id_hex(p.id, id_out);
    prepared_done(&p);
    return st;
}

typedef struct get_state {
    uint8_t *data;
    size_t len;
    int64_t revision;
    bool seen;
} get_state;

static int copy_row(const ee_storage_row *row, void *payload)
{
    get_state *g = payload;
    if (g->seen)
        return 1;
    g->seen = true;
    g->revision = row->revision;
    g->len = row->len;
    g->data = malloc(row->len ? row->len : 1);
    if (g->data != NULL && row->len > 0)
        memcpy(g->data, row->data, row->len);
    return g->data == NULL;
}

ee_status ee_storage_get(ee_storage *s, const char *collection, const char *workspace,
                         const char *id, uint8_t **data_out, size_t *len_out,
                         int64_t *revision_out)
{
    const ee_storage_collection *c;
    const char *ws;
    uint8_t oid[12];
    ee_status st;
    if (s == NULL || data_out == NULL || len_out == NULL)
        return ee__error(EE_EINVAL, "ee_storage_get: NULL argument");
    *data_out = NULL;
    *len_out = 0;
    if ((st = check_doc(collection, workspace, id, &c, &ws, oid)) != EE_OK)
        return st;
    if (s->be.get == NULL)
        return missing_slot(s, "get");
    get_state g = {0};
    enter(s);
    st = leave(s, s->be.get(s->ctx, c, ws, oid, copy_row, &g), "get");
    if (st == EE_OK && !g.seen)
        st = ee__error(EE_ENOTFOUND, "%s: no document %.24s", c->name, id);
    if (st == EE_OK && g.data == NULL)
        st = ee__error(EE_ENOMEM, "out of memory reading a document");
    if (st == EE_OK && !ee__storage_doc_framed(g.data, g.len))
        st = ee__error(EE_ECORRUPT, "%s: stored document %.24s is not a BSON document", c->name,
                       id);
    if (st != EE_OK) {
        free(g.data);
        return st;
    }
    *data_out = g.data;
    *len_out = g.len;
    if (revision_out != NULL)
        *revision_out = g.revision;
    return EE_OK;
}

ee_status ee_storage_replace(ee_storage *s, const char *collection, const char *workspace,
                             const char *id, int64_t expected_revision, const uint8_t *data,
                             size_t len, int64_t *revision_out)
{
    const ee_storage_collection *c;
    const char *ws;
    uint8_t oid[12];
    ee_status st;
    if (s == NULL)
        return ee__error(EE_EINVAL, "storage handle is NULL");
    if ((st = check_doc(collection, workspace, id, &c, &ws, oid)) != EE_OK)
        return st;
    if (expected_revision < 1 || expected_revision == INT64_MAX)
        return ee__error(EE_EINVAL, "expected revision %" PRId64 " is out of range",
                         expected_revision);
    prepared p;
    st = prepare(c, ws, data, len, oid, &p);
    if (st == EE_OK) {
        p.rec.revision = expected_revision + 1;
        if (s->be.replace == NULL) {
            st = missing_slot(s, "replace");
        } else {
            enter(s);
            st = leave(s, s->be.replace(s->ctx, c, expected_revision, &p.rec), "replace");
        }
    }
    if (st == EE_OK && revision_out != NULL)
        *revision_out = expected_revision + 1;
    prepared_done(&p);
    return st;
}

ee_status ee_storage_delete(ee_storage *s, const char *collection, const char *workspace,
                            const char *id)
{
    const ee_storage_collection *c;
    const char *ws;
    uint8_t oid[12];
    ee_status st;
    if (s == NULL)
        return ee__error(EE_EINVAL, "storage handle is NULL");
    if ((st = check_doc(collection, workspace, id, &c, &ws, oid)) != EE_OK)
        return st;
    if (s->be.remove == NULL)
        return missing_slot(s, "delete");
    enter(s);
    return leave(s, s->be.remove(s->ctx, c, ws, oid), "delete");
}

/* ---- queries and cursors ------------------------------------------------------ */

#define CURSOR_BYTES 30 /* version, order, time(8), id(12), fingerprint(8) */

typedef struct filter_buf {
    const char *values[32];
    ee_storage_filter f;
    size_t limit;
    uint8_t fingerprint[8];
} filter_buf;

static ee_status check_text(const char *what, const char *text, size_t max)
{
    if (text == NULL)
        return ee__error(EE_EINVAL, "%s is NULL", what);
    size_t n = strnlen(text, max + 1);
    if (n > max)
        return ee__error(EE_ETOOBIG, "%s is longer than %zu bytes", what, max);
    return EE_OK;
}

/* Hash of everything that defines a query's result set, so a cursor of
 * another query (or another workspace) is refused. */
static void fingerprint(const ee_storage_collection *c, const char *ws, const filter_buf *fb,
                        uint8_t out[8])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char dig[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    memset(out, 0, 8);
    if (md == NULL)
        return;
    char num[64];
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    EVP_DigestUpdate(md, c->name, strlen(c->name) + 1);
    EVP_DigestUpdate(md, ws, strlen(ws) + 1);
    int n = snprintf(num, sizeof num, "%d|%" PRId64 "|%" PRId64, fb->f.order, fb->f.time_from,
                     fb->f.time_to);
    EVP_DigestUpdate(md, num, (size_t)n + 1);
    for (size_t i = 0; i < c->n_fields; i++) {
        const char *v = fb->values[i];
        EVP_DigestUpdate(md, v != NULL ? "=" : "*", 1);
        if (v != NULL)
            EVP_DigestUpdate(md, v, strlen(v) + 1);
    }
    if (EVP_DigestFinal_ex(md, dig, &dlen) == 1 && dlen >= 8)
        memcpy(out, dig, 8);
    EVP_MD_CTX_free(md);
}

static ee_status build_filter(const ee_storage_collection *c, const char *ws,
                              const ee_storage_query_spec *q, bool for_count, filter_buf *fb)
{
    memset(fb, 0, sizeof *fb);
    fb->f.values = fb->values;
    fb->f.time_from = INT64_MIN;
    fb->f.time_to = INT64_MAX;
    fb->f.order = EE_STORAGE_ORDER_TIME_DESC;
    fb->limit = EE_STORAGE_LIMIT_DEFAULT;
    if (q == NULL)
        return EE_OK;
    if (q->version == 0 || q->version > EE_STORAGE_QUERY_VERSION)
        return ee__error(EE_EVERSION, "query version %u is not supported (1 to %d)", q->version,
                         EE_STORAGE_QUERY_VERSION);
    if (q->n_eq > EE_STORAGE_EQ_MAX)
        return ee__error(EE_ETOOBIG, "a query has at most %d conditions, got %zu",
                         EE_STORAGE_EQ_MAX, q->n_eq);
    if (q->n_eq > 0 && q->eq == NULL)
        return ee__error(EE_EINVAL, "query has %zu conditions but eq is NULL", q->n_eq);
    for (size_t i = 0; i < q->n_eq; i++) {
        ee_status st;
        if ((st = check_text("query field", q->eq[i].field, EE_STORAGE_FIELD_MAX)) != EE_OK ||
            (st = check_text("query value", q->eq[i].value, EE_STORAGE_VALUE_MAX)) != EE_OK)
            return st;
        int k = ee__storage_field_index(c, q->eq[i].field);
        if (k < 0) {
            char fq[72];
            ee__quote_for_message(q->eq[i].field, fq, sizeof fq);
            return ee__error(EE_EINVAL, "%s: field '%s' is not indexed, it cannot be queried",
                             c->name, fq);
        }
        if (fb->values[k] != NULL && strcmp(fb->values[k], q->eq[i].value) != 0)
            return ee__error(EE_EINVAL, "%s: field '%s' is given two different values", c->name,
                             q->eq[i].field);
        fb->values[k] = q->eq[i].value;
    }
    if (q->flags & ~(EE_STORAGE_QUERY_FROM | EE_STORAGE_QUERY_TO))
        return ee__error(EE_EINVAL, "query flags 0x%x has unknown bits", q->flags);
    if (q->flags & EE_STORAGE_QUERY_FROM)
        fb->f.time_from = q->time_from;
    if (q->flags & EE_STORAGE_QUERY_TO)
        fb->f.time_to = q->time_to;
    if (for_count)
        return EE_OK;
    if (q->order < EE_STORAGE_ORDER_TIME_DESC || q->order > EE_STORAGE_ORDER_ID_DESC)
        return ee__error(EE_EINVAL, "query order %d is not one of EE_STORAGE_ORDER_*", q->order);
    fb->f.order = q->order;
    if (q->limit > EE_STORAGE_LIMIT_MAX)
        return ee__error(EE_ETOOBIG, "query limit %zu is more than %d", q->limit,
                         EE_STORAGE_LIMIT_MAX);
    if (q->limit > 0)
        fb->limit = q->limit;
    fingerprint(c, ws, fb, fb->fingerprint);
    return EE_OK;
}

static void put_be64(uint8_t *p, int64_t v)
{
    uint64_t u = (uint64_t)v;
    for (int i = 7; i >= 0; i--, u >>= 8)
        p[i] = (uint8_t)u;
}

static int64_t get_be64(const uint8_t *p)
{
    uint64_t u = 0;
    for (int i = 0; i < 8; i++)
        u = u << 8 | p[i];
    return (int64_t)u;
}

static char *cursor_encode(const filter_buf *fb, int64_t time, const uint8_t id[12])
{
    uint8_t raw[CURSOR_BYTES];
    raw[0] = 1;
    raw[1] = (uint8_t)fb->f.order;
    put_be64(raw + 2, time);
    memcpy(raw + 10, id, 12);
    memcpy(raw + 22, fb->fingerprint, 8);
    char *out = malloc(2 * CURSOR_BYTES + 1);
    if (out == NULL)
        return NULL;
    ee__hex_encode(raw, CURSOR_BYTES, out);
    return out;
}

static ee_status cursor_decode(const char *cursor, const filter_buf *fb,
                               ee_storage_position *pos)
{
    size_t n = strnlen(cursor, EE_STORAGE_CURSOR_MAX + 1);
    if (n > EE_STORAGE_CURSOR_MAX)
        return ee__error(EE_ETOOBIG, "cursor is longer than %d bytes", EE_STORAGE_CURSOR_MAX);
    if (n != 2 * CURSOR_BYTES)
        return ee__error(EE_EINVAL, "malformed cursor: wrong length %zu", n);
    uint8_t raw[CURSOR_BYTES];
    if (!ee__hex_decode(cursor, CURSOR_BYTES, raw))
        return ee__error(EE_EINVAL, "malformed cursor: not hexadecimal");
    if (raw[0] != 1)
        return ee__error(EE_EINVAL, "malformed cursor: unknown version %u", raw[0]);
    if (raw[1] != (uint8_t)fb->f.order || memcmp(raw + 22, fb->fingerprint, 8) != 0)
        return ee__error(EE_EINVAL, "cursor belongs to another query (collection, workspace, "
                                    "conditions or order differ)");
    pos->time = get_be64(raw + 2);
    memcpy(pos->id, raw + 10, 12);
    return EE_OK;
}

typedef struct page_state {
    const ee_storage_collection *c;
    size_t limit, seen;
    ee_storage_row_fn fn;
    void *payload;
    bool more, cancelled;
    ee_status error;
    int64_t last_time;
    uint8_t last_id[12];
} page_state;

static int page_row(const ee_storage_row *row, void *payload)
{
    page_state *p = payload;
    if (p->seen == p->limit) {
        p->more = true; /* the extra row asked for: there is a next page */
        return 1;
    }
    if (!ee__storage_doc_framed(row->data, row->len)) {
        char hex[25];
        ee__storage_id_hex(row->id, hex);
        p->error = ee__error(EE_ECORRUPT, "%s: stored document %s is not valid BSON",
                             p->c->name, hex);
        return 1;
    }
    p->seen++;
    p->last_time = row->time;
    memcpy(p->last_id, row->id, 12);
    if (p->fn(row, p->payload) != 0) {
        p->cancelled = true;
        return 1;
    }
    return 0;
}

ee_status ee_storage_query(ee_storage *s, const char *collection, const char *workspace,
                           const ee_storage_query_spec *query, ee_storage_row_fn fn, void *payload,
                           char **next_cursor_out)
{
    const ee_storage_collection *c;
    const char *ws;
    ee_status st;
    if (next_cursor_out != NULL)
        *next_cursor_out = NULL;
    if (s == NULL || fn == NULL)
        return ee__error(EE_EINVAL, "ee_storage_query: NULL argument");
    if ((st = check_collection(collection, &c)) != EE_OK ||
        (st = check_workspace(c, workspace, &ws)) != EE_OK)
        return st;
    filter_buf fb;
    if ((st = build_filter(c, ws, query, false, &fb)) != EE_OK)
        return st;
    ee_storage_position after, *afterp = NULL;
    if (query != NULL && query->cursor != NULL) {
        if ((st = cursor_decode(query->cursor, &fb, &after)) != EE_OK)
            return st;
        afterp = &after;
    }
    if (s->be.query == NULL)
        return missing_slot(s, "query");
    page_state p = {.c = c, .limit = fb.limit, .fn = fn, .payload = payload, .error = EE_OK};
    enter(s);
    st = leave(s, s->be.query(s->ctx, c, ws, &fb.f, afterp, fb.limit + 1, page_row, &p),
               "query");
    if (st == EE_OK && p.error != EE_OK)
        st = p.error;
    if (st == EE_OK && p.cancelled)
        st = ee__error(EE_ECANCELLED, "%s: the row callback stopped the query", c->name);
    if (st != EE_OK)
        return st;
    if (p.more && next_cursor_out != NULL) {
        *next_cursor_out = cursor_encode(&fb, p.last_time, p.last_id);
        if (*next_cursor_out == NULL)
            return ee__error(EE_ENOMEM, "out of memory building a cursor");
    }
    return EE_OK;
}

ee_status ee_storage_count(ee_storage *s, const char *collection, const char *workspace,
                           const ee_storage_query_spec *query, uint64_t *count_out)
{
    const ee_storage_collection *c;
    const char *ws;
    ee_status st;
    if (s == NULL || count_out == NULL)
        return ee__error(EE_EINVAL, "ee_storage_count: NULL argument");
    *count_out = 0;
    if ((st = check_collection(collection, &c)) != EE_OK ||
        (st = check_workspace(c, workspace, &ws)) != EE_OK)
        return st;
    filter_buf fb;
    if ((st = build_filter(c, ws, query, true, &fb)) != EE_OK)
        return st;
    if (s->be.count == NULL)
        return missing_slot(s, "count");
    enter(s);
    return leave(s, s->be.count(s->ctx, c, ws, &fb.f, count_out), "count");
}

/* ---- increments and retention ------------------------------------------------- */

static bool path_prefix(const char *a, const char *b)
{
    size_t n = strlen(a);
    return strncmp(a, b, n) == 0 && b[n] == '.';
}

static ee_status check_inc(const ee_storage_collection *c, const ee_storage_inc *inc,
                           size_t n_inc)
{
    if (n_inc == 0 || inc == NULL)
        return ee__error(EE_EINVAL, "%s: an increment needs at least one field", c->name);
    if (n_inc > EE_STORAGE_INC_MAX)
        return ee__error(EE_ETOOBIG, "an increment has at most %d fields, got %zu",
                         EE_STORAGE_INC_MAX, n_inc);
    for (size_t i = 0; i < n_inc; i++) {
        const char *f = inc[i].field;
        ee_status st = check_text("increment field", f, EE_STORAGE_FIELD_MAX);
        if (st != EE_OK)
            return st;
        size_t n = strlen(f);
        if (n == 0 || f[0] == '.' || f[n - 1] == '.' || strstr(f, "..") != NULL ||
            f[0] == '$')
            return ee__error(EE_EINVAL, "increment field '%s' is not a valid path", f);
        const char *top_end = strchr(f, '.');
        size_t top = top_end ? (size_t)(top_end - f) : n;
        if ((top == 3 && strncmp(f, "_id", 3) == 0) ||
            (top == 11 && strncmp(f, "workspaceId", 11) == 0) ||
            (top == 9 && strncmp(f, "updatedAt", 9) == 0) ||
            (strlen(c->time_field) == top && strncmp(f, c->time_field, top) == 0))
            return ee__error(EE_EINVAL, "increment field '%s' is reserved", f);
        for (size_t k = 0; k < c->n_fields; k++)
            if (strcmp(c->fields[k], f) == 0 || path_prefix(f, c->fields[k]) ||
                path_prefix(c->fields[k], f))
                return ee__error(EE_EINVAL, "increment field '%s' is indexed: it cannot be "
                                            "incremented", f);
        for (size_t k = 0; k < i; k++)
            if (strcmp(inc[k].field, f) == 0 || path_prefix(inc[k].field, f) ||
                path_prefix(f, inc[k].field))
                return ee__error(EE_EINVAL, "increment fields '%s' and '%s' overlap",
                                 inc[k].field, f);
    }
    return EE_OK;
}

ee_status ee_storage_increment(ee_storage *s, const char *collection, const char *workspace,
                               const ee_storage_eq *key, size_t n_key, const ee_storage_inc *inc,
                               size_t n_inc, int64_t now_ms, int64_t *totals_out)
{
    const ee_storage_collection *c;
    const char *ws;
    ee_status st;
    if (s == NULL)
        return ee__error(EE_EINVAL, "storage handle is NULL");
    if ((st = check_collection(collection, &c)) != EE_OK ||
        (st = check_workspace(c, workspace, &ws)) != EE_OK)
        return st;
    if (c->n_unique == 0)
        return ee__error(EE_ENOTSUPPORTED, "%s has no unique key: it cannot be incremented",
                         c->name);
    if (key == NULL || n_key != c->n_unique)
        return ee__error(EE_EINVAL, "%s: the key must name the %zu fields of the unique key",
                         c->name, c->n_unique);
    const char *values[32] = {0};
    for (size_t i = 0; i < n_key; i++) {
        if ((st = check_text("key field", key[i].field, EE_STORAGE_FIELD_MAX)) != EE_OK ||
            (st = check_text("key value", key[i].value, EE_STORAGE_VALUE_MAX)) != EE_OK)
            return st;
        int k = ee__storage_field_index(c, key[i].field);
        bool in_unique = false;
        for (size_t u = 0; u < c->n_unique; u++)
            in_unique |= (k >= 0 && c->unique[u] == k);
        if (!in_unique || values[k] != NULL)
            return ee__error(EE_EINVAL, "%s: key field '%s' is not (once) part of the unique key",
                             c->name, key[i].field);
        values[k] = key[i].value;
    }
    if ((st = check_inc(c, inc, n_inc)) != EE_OK)
        return st;
    if (s->be.increment == NULL)
        return missing_slot(s, "increment");
    bson_oid_t oid;
    ee__oid_new(oid.bytes);
    bson_t doc;
    if ((st = ee__storage_doc_upsert(c, oid.bytes, ws, key, n_key, inc, n_inc, now_ms, &doc)) !=
        EE_OK) {
        bson_destroy(&doc);
        return st;
    }
    ee_storage_record rec = {.id = oid.bytes, .workspace = ws, .revision = 1, .time = now_ms,
                             .values = values, .data = bson_get_data(&doc), .len = doc.len};
    enter(s);
    st = leave(s, s->be.increment(s->ctx, c, &rec, inc, n_inc, now_ms, totals_out), "increment");
    bson_destroy(&doc);
    return st;
}

ee_status ee_storage_delete_range(ee_storage *s, const char *collection, const char *workspace,
                                  int64_t time_from, int64_t time_to, uint64_t *deleted_out)
{
    const ee_storage_collection *c;
    const char *ws = NULL;
    ee_status st;
    uint64_t dummy;
    if (s == NULL)
        return ee__error(EE_EINVAL, "storage handle is NULL");
    if ((st = check_collection(collection, &c)) != EE_OK)
        return st;
    if (workspace != NULL || !(c->flags & EE_STORAGE_COLL_PER_WORKSPACE))
        if ((st = check_workspace(c, workspace, &ws)) != EE_OK)
            return st;
    if (time_from > time_to)
        return ee__error(EE_EINVAL, "time range is reversed: %" PRId64 " > %" PRId64, time_from,
                         time_to);
    if (s->be.delete_range == NULL)
        return missing_slot(s, "delete_range");
    if (deleted_out == NULL)
        deleted_out = &dummy;
    *deleted_out = 0;
    enter(s);
    return leave(s, s->be.delete_range(s->ctx, c, ws, time_from, time_to, deleted_out),
                 "delete_range");
}

/* ---- claims --------------------------------------------------------------------- */

/* One claim: the caller's builder and the replacement it made last. */
typedef struct claim_state {
    const ee_storage_collection *c;
    const char *ws;
    ee__storage_claim_build_fn build;
    void *payload;
    bson_t doc;
    bool has_doc;
    prepared p;
    bool has_p;
    uint8_t id[12];
    int64_t revision;
} claim_state;

static void claim_reset(claim_state *cs)
{
    if (cs->has_p)
        prepared_done(&cs->p);
    if (cs->has_doc)
        bson_destroy(&cs->doc);
    cs->has_p = cs->has_doc = false;
}

/* The ee_storage_claim_fn every backend calls: the caller's document,
 * validated and extracted like any write. */
static ee_status claim_build(const ee_storage_row *row, const ee_storage_record **rec_out,
                             void *payload)
{
    claim_state *cs = payload;
    claim_reset(cs);
    if (!ee__storage_doc_framed(row->data, row->len)) {
        char hex[25];
        ee__storage_id_hex(row->id, hex);
        return ee__error(EE_ECORRUPT, "%s: stored document %s is not valid BSON", cs->c->name,
                         hex);
    }
    bson_init(&cs->doc);
    cs->has_doc = true;
    ee_status st = cs->build(row, &cs->doc, cs->payload);
    if (st != EE_OK)
        return st;
    cs->has_p = true;
    st = prepare(cs->c, cs->ws, bson_get_data(&cs->doc), cs->doc.len, row->id, &cs->p);
    if (st != EE_OK)
        return st;
    if (row->revision < 1 || row->revision == INT64_MAX)
        return ee__error(EE_ECORRUPT, "%s: stored revision %" PRId64 " is out of range",
                         cs->c->name, row->revision);
    cs->p.rec.revision = row->revision + 1;
    memcpy(cs->id, row->id, 12);
    cs->revision = row->revision + 1;
    *rec_out = &cs->p.rec;
    return EE_OK;
}

/* ---- the claim of a backend without the slot: query, then replace with a
 * revision check; a candidate another claimer took (EE_ECONFLICT) or
 * deleted (EE_ENOTFOUND) gives way to the next one. */

#define CLAIM_CANDIDATES 8
#define CLAIM_PAGE 256
#define CLAIM_ROUNDS 32

typedef struct candidate {
    uint8_t id[12];
    int64_t revision, time;
    char *value; /* the order field's, NULL when absent */
    uint8_t *data;
    size_t len;
} candidate;

typedef struct scan_state {
    const ee_storage_collection *c;
    int order_field;
    candidate best[CLAIM_CANDIDATES];
    size_t n;
    size_t rows;
    int64_t last_time;
    uint8_t last_id[12];
    ee_status error;
} scan_state;

/* (value, time, id) ascending; an absent value sorts last. */
static int candidate_cmp(const char *va, int64_t ta, const uint8_t *ia, const char *vb,
                         int64_t tb, const uint8_t *ib)
{
    if (va != NULL || vb != NULL) {
        if (va == NULL)
            return 1;
        if (vb == NULL)
            return -1;
        int r = strcmp(va, vb);
        if (r != 0)
            return r;
    }
    if (ta != tb)
        return ta < tb ? -1 : 1;
    return memcmp(ia, ib, 12);
}

static void candidate_free(candidate *k)
{
    free(k->value);
    free(k->data);
    memset(k, 0, sizeof *k);
}

static int scan_row(const ee_storage_row *row, void *payload)
{
    scan_state *sc = payload;
    sc->rows++;
    sc->last_time = row->time;
    memcpy(sc->last_id, row->id, 12);
    if (!ee__storage_doc_framed(row->data, row->len))
        return 0; /* a claim of it would fail: leave it to the queries that report it */
    const char *value = NULL;
    ee__storage_extract *ex = NULL;
    if (sc->order_field >= 0) {
        ex = malloc(sizeof *ex);
        if (ex == NULL) {
            sc->error = ee__error(EE_ENOMEM, "out of memory claiming a document");
            return 1;
        }
        if (ee__storage_doc_extract(sc->c, row->data, row->len, ex) == EE_OK)
            value = ex->values[sc->order_field];
    }
    size_t at = sc->n;
    while (at > 0 && candidate_cmp(value, row->time, row->id, sc->best[at - 1].value,
                                   sc->best[at - 1].time, sc->best[at - 1].id) < 0)
        at--;
    if (at < CLAIM_CANDIDATES) {
        candidate k = {.revision = row->revision, .time = row->time, .len = row->len};
        memcpy(k.id, row->id, 12);
        k.data = malloc(row->len ? row->len : 1);
        k.value = value != NULL ? strdup(value) : NULL;
        if (k.data == NULL || (value != NULL && k.value == NULL)) {
            candidate_free(&k);
            free(ex);
            sc->error = ee__error(EE_ENOMEM, "out of memory claiming a document");
            return 1;
        }
        memcpy(k.data, row->data, row->len);
        if (sc->n == CLAIM_CANDIDATES)
            candidate_free(&sc->best[--sc->n]);
        memmove(&sc->best[at + 1], &sc->best[at], (sc->n - at) * sizeof *sc->best);
        sc->best[at] = k;
        sc->n++;
    }
    free(ex);
    return 0;
}

static ee_status claim_fallback(ee_storage *s, const ee_storage_collection *c, const char *ws,
                                ee_storage_filter *f, int order_field, claim_state *cs)
{
    if (s->be.query == NULL)
        return missing_slot(s, "query (needed to claim)");
    if (s->be.replace == NULL)
        return missing_slot(s, "replace (needed to claim)");
    f->order = EE_STORAGE_ORDER_TIME_ASC;
    for (int round = 0; round < CLAIM_ROUNDS; round++) {
        scan_state sc = {.c = c, .order_field = order_field, .error = EE_OK};
        ee_status st = EE_OK;
        ee_storage_position after, *afterp = NULL;
        /* The whole matching set is read: the first in the claim order may
         * be anywhere in time. */
        for (;;) {
            size_t before = sc.rows;
            enter(s);
            st = leave(s, s->be.query(s->ctx, c, ws, f, afterp, CLAIM_PAGE, scan_row, &sc),
                       "query");
            if (st == EE_OK)
                st = sc.error;
            if (st != EE_OK || sc.rows - before < CLAIM_PAGE)
                break;
            after.time = sc.last_time;
            memcpy(after.id, sc.last_id, 12);
            afterp = &after;
        }
        if (st == EE_OK && sc.n == 0)
            st = ee__error(EE_ENOTFOUND, "%s: nothing to claim", c->name);
        bool taken = false;
        for (size_t i = 0; st == EE_OK && i < sc.n; i++) {
            candidate *k = &sc.best[i];
            ee_storage_row row = {k->id, k->revision, k->time, k->data, k->len};
            const ee_storage_record *rec = NULL;
            if ((st = claim_build(&row, &rec, cs)) != EE_OK)
                break;
            enter(s);
            st = leave(s, s->be.replace(s->ctx, c, k->revision, rec), "replace");
            if (st == EE_OK) {
                taken = true;
                break;
            }
            if (st == EE_ECONFLICT || st == EE_ENOTFOUND)
                st = EE_OK; /* another claimer was first: the next one */
        }
        for (size_t i = 0; i < sc.n; i++)
            candidate_free(&sc.best[i]);
        if (st != EE_OK || taken)
            return st;
    }
    return ee__error(EE_EBUSY, "%s: every candidate was claimed by others %d times over; retry",
                     c->name, CLAIM_ROUNDS);
}

ee_status ee__storage_claim(ee_storage *s, const char *collection, const char *workspace,
                            const ee_storage_query_spec *query, const char *order_field,
                            ee__storage_claim_build_fn build, void *payload, char *id_out,
                            int64_t *revision_out)
{
    const ee_storage_collection *c;
    const char *ws;
    ee_status st;
    if (s == NULL || build == NULL)
        return ee__error(EE_EINVAL, "ee__storage_claim: NULL argument");
    if ((st = check_collection(collection, &c)) != EE_OK ||
        (st = check_workspace(c, workspace, &ws)) != EE_OK)
        return st;
    int k = -1;
    if (order_field != NULL && (k = ee__storage_field_index(c, order_field)) < 0)
        return ee__error(EE_EINVAL, "%s: field '%s' is not indexed, it cannot order a claim",
                         c->name, order_field);
    filter_buf fb;
    if ((st = build_filter(c, ws, query, true, &fb)) != EE_OK)
        return st;
    claim_state cs = {.c = c, .ws = ws, .build = build, .payload = payload};
    if (s->be.claim != NULL) {
        enter(s);
        st = leave(s, s->be.claim(s->ctx, c, ws, &fb.f, k, claim_build, &cs), "claim");
    } else {
        st = claim_fallback(s, c, ws, &fb.f, k, &cs);
    }
    claim_reset(&cs);
    if (st == EE_OK && id_out != NULL)
        ee__storage_id_hex(cs.id, id_out);
    if (st == EE_OK && revision_out != NULL)
        *revision_out = cs.revision;
    return st;
}

/* ---- SQL helpers shared by sqlite and postgres ---------------------------------- */

void ee__storage_column_name(const char *field, char *out, size_t cap)
{
    size_t j = 0;
    if (cap < 3)
        return;
    out[j++] = 'f';
    out[j++] = '_';
    for (size_t i = 0; field[i] != '\0' && j + 1 < cap; i++)
        out[j++] = isalnum((unsigned char)field[i]) ? field[i] : '_';
    out[j] = '\0';
}

const char *ee__storage_order_sql(int order, bool *by_time, bool *desc)
{
    switch (order) {
    case EE_STORAGE_ORDER_TIME_ASC: *by_time = true; *desc = false; return "t ASC, id ASC";
    case EE_STORAGE_ORDER_ID_ASC: *by_time = false; *desc = false; return "id ASC";
    case EE_STORAGE_ORDER_ID_DESC: *by_time = false; *desc = true; return "id DESC";
    default: *by_time = true; *desc = true; return "t DESC, id DESC";
    }
}
