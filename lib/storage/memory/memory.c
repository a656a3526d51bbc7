/*
 * The memory backend: per collection a hash table by id and one by unique
 * key, under one read-write lock per store. For tests and ephemeral hosts:
 * nothing survives ee_storage_free(). Queries scan the collection, which is
 * fine at the sizes such hosts keep.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "storage/internal.h"

/* ---- a chained hash map with byte-string keys ----------------------------------- */

typedef struct hnode {
    struct hnode *next;
    uint64_t hash;
    size_t klen;
    void *val;
    unsigned char key[];
} hnode;

typedef struct hmap {
    hnode **b;
    size_t nb, n;
} hmap;

static uint64_t fnv1a(const void *key, size_t len)
{
    const unsigned char *p = key;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    return h ^ (h >> 29);
}

static hnode **hmap_slot(hmap *m, const void *key, size_t klen, uint64_t h)
{
    if (m->nb == 0)
        return NULL;
    hnode **pp = &m->b[h & (m->nb - 1)];
    while (*pp != NULL && ((*pp)->hash != h || (*pp)->klen != klen ||
                           memcmp((*pp)->key, key, klen) != 0))
        pp = &(*pp)->next;
    return pp;
}

static void *hmap_get(hmap *m, const void *key, size_t klen)
{
    hnode **pp = hmap_slot(m, key, klen, fnv1a(key, klen));
    return pp != NULL && *pp != NULL ? (*pp)->val : NULL;
}

static bool hmap_grow(hmap *m)
{
    size_t nb = m->nb ? m->nb * 2 : 64;
    hnode **b = calloc(nb, sizeof *b);
    if (b == NULL)
        return false;
    for (size_t i = 0; i < m->nb; i++)
        for (hnode *n = m->b[i], *next; n != NULL; n = next) {
            next = n->next;
            n->next = b[n->hash & (nb - 1)];
            b[n->hash & (nb - 1)] = n;
        }
    free(m->b);
    m->b = b;
    m->nb = nb;
    return true;
}

/* Insert a key known to be absent. */
static bool hmap_put(hmap *m, const void *key, size_t klen, void *val)
{
    if (m->n >= m->nb && !hmap_grow(m))
        return false;
    hnode *n = malloc(sizeof *n + klen);
    if (n == NULL)
        return false;
    n->hash = fnv1a(key, klen);
    n->klen = klen;
    n->val = val;
    memcpy(n->key, key, klen);
    hnode **head = &m->b[n->hash & (m->nb - 1)];
    n->next = *head;
    *head = n;
    m->n++;
    return true;
}

static void hmap_del(hmap *m, const void *key, size_t klen)
{
    hnode **pp = hmap_slot(m, key, klen, fnv1a(key, klen));
    if (pp == NULL || *pp == NULL)
        return;
    hnode *n = *pp;
    *pp = n->next;
    free(n);
    m->n--;
}

static void hmap_clear(hmap *m)
{
    for (size_t i = 0; i < m->nb; i++)
        for (hnode *n = m->b[i], *next; n != NULL; n = next) {
            next = n->next;
            free(n);
        }
    free(m->b);
    m->b = NULL;
    m->nb = m->n = 0;
}

/* ---- the store ---------------------------------------------------------------- */

typedef struct entry {
    uint8_t id[12];
    char *ws;
    int64_t rev, time;
    char **values;
    uint8_t *data;
    size_t len;
    char *ukey; /* unique-key string, NULL when the key is incomplete */
    size_t ukey_len;
} entry;

typedef struct coll_store {
    hmap by_id, by_key;
} coll_store;

/* What an atomic scope undoes on rollback, newest last. */
enum { U_LINKED, U_UNLINKED, U_DATA };
typedef struct undo {
    int kind;
    coll_store *cs;
    size_t n_fields;
    entry *e;
    uint8_t *data; /* U_DATA: the bytes and revision before an increment */
    size_t len;
    int64_t rev;
} undo;

typedef struct mem {
    pthread_rwlock_t lock;
    size_t n;
    coll_store *colls;
    undo *log;     /* the open scope's (its thread holds the write lock) */
    size_t n_log, cap_log;
} mem;

/* The store whose atomic scope the calling thread is inside: it holds the
 * write lock from begin to end, so its slots take no lock. */
static _Thread_local mem *pinned;

static void lock_read(mem *m)
{
    if (pinned != m)
        pthread_rwlock_rdlock(&m->lock);
}

static void lock_write(mem *m)
{
    if (pinned != m)
        pthread_rwlock_wrlock(&m->lock);
}

static void unlock(mem *m)
{
    if (pinned != m)
        pthread_rwlock_unlock(&m->lock);
}

static coll_store *store_of(mem *m, const ee_storage_collection *coll)
{
    size_t n;
    const ee_storage_collection *const *all = ee__storage_collections(&n);
    for (size_t i = 0; i < n; i++)
        if (all[i] == coll)
            return &m->colls[i];
    return NULL;
}

static void entry_free(entry *e, size_t n_fields)
{
    if (e == NULL)
        return;
    free(e->ws);
    if (e->values != NULL)
        for (size_t i = 0; i < n_fields; i++)
            free(e->values[i]);
    free(e->values);
    free(e->data);
    free(e->ukey);
    free(e);
}

static char *dup_or_null(const char *s, bool *ok)
{
    if (s == NULL)
        return NULL;
    char *d = strdup(s);
    if (d == NULL)
        *ok = false;
    return d;
}

/* "ws\0v1\0v2\0..." over the unique fields, or NULL if one is absent (SQL
 * unique indexes ignore rows with a NULL, and so do we). */
static char *unique_key(const ee_storage_collection *c, const char *ws,
                        const char *const *values, size_t *len_out, bool *ok)
{
    if (c->n_unique == 0)
        return NULL;
    size_t len = strlen(ws) + 1;
    for (size_t i = 0; i < c->n_unique; i++) {
        if (values[c->unique[i]] == NULL)
            return NULL;
        len += strlen(values[c->unique[i]]) + 1;
    }
    char *k = malloc(len), *p = k;
    if (k == NULL) {
        *ok = false;
        return NULL;
    }
    p = stpcpy(p, ws) + 1;
    for (size_t i = 0; i < c->n_unique; i++)
        p = stpcpy(p, values[c->unique[i]]) + 1;
    *len_out = len;
    return k;
}

static entry *entry_new(const ee_storage_collection *c, const ee_storage_record *r)
{
    bool ok = true;
    entry *e = calloc(1, sizeof *e);
    if (e == NULL)
        return NULL;
    memcpy(e->id, r->id, 12);
    e->rev = r->revision;
    e->time = r->time;
    e->ws = dup_or_null(r->workspace, &ok);
    e->values = calloc(c->n_fields ? c->n_fields : 1, sizeof *e->values);
    ok = ok && e->values != NULL;
    for (size_t i = 0; ok && i < c->n_fields; i++)
        e->values[i] = dup_or_null(r->values[i], &ok);
    e->data = malloc(r->len ? r->len : 1);
    ok = ok && e->data != NULL;
    if (ok)
        memcpy(e->data, r->data, r->len);
    e->len = r->len;
    if (ok)
        e->ukey = unique_key(c, r->workspace, r->values, &e->ukey_len, &ok);
    if (!ok) {
        entry_free(e, c->n_fields);
        return NULL;
    }
    return e;
}

static ee_status oom(void)
{
    return ee__error(EE_ENOMEM, "memory storage: out of memory");
}

static ee_status duplicate(const ee_storage_collection *c, bool by_id)
{
    return ee__error(EE_EEXISTS, "%s: a document with the same %s exists", c->name,
                     by_id ? "id" : "unique key");
}

/* Link e into both maps (the caller checked both keys are free). */
static ee_status link_entry(coll_store *cs, entry *e)
{
    if (!hmap_put(&cs->by_id, e->id, 12, e))
        return oom();
    if (e->ukey != NULL && !hmap_put(&cs->by_key, e->ukey, e->ukey_len, e)) {
        hmap_del(&cs->by_id, e->id, 12);
        return oom();
    }
    return EE_OK;
}

static void unlink_entry(coll_store *cs, entry *e)
{
    hmap_del(&cs->by_id, e->id, 12);
    if (e->ukey != NULL)
        hmap_del(&cs->by_key, e->ukey, e->ukey_len);
}

/* ---- the undo log of an atomic scope ------------------------------------------------ */

/* The store of the scope the calling thread is inside, if `cs` is one of
 * its collections (a write to another store is not part of the scope). */
static mem *scope_for(const coll_store *cs)
{
    mem *m = pinned;
    return m != NULL && cs >= m->colls && cs < m->colls + m->n ? m : NULL;
}

/* Room for k more records, taken before the change they record. */
static bool log_reserve(mem *m, size_t k)
{
    if (m == NULL || m->n_log + k <= m->cap_log)
        return true;
    size_t cap = m->cap_log ? m->cap_log * 2 : 16;
    while (cap < m->n_log + k)
        cap *= 2;
    undo *log = realloc(m->log, cap * sizeof *log);
    if (log == NULL)
        return false;
    m->log = log;
    m->cap_log = cap;
    return true;
}

static void log_add(mem *m, undo u)
{
    if (m != NULL)
        m->log[m->n_log++] = u; /* reserved */
}

/* Link a new entry (the caller checked both keys are free), recorded. */
static ee_status tracked_link(coll_store *cs, entry *e, size_t n_fields)
{
    mem *m = scope_for(cs);
    if (!log_reserve(m, 1))
        return oom();
    ee_status st = link_entry(cs, e);
    if (st == EE_OK)
        log_add(m, (undo){.kind = U_LINKED, .cs = cs, .e = e, .n_fields = n_fields});
    return st;
}

/* Unlink `e` and free it - or, inside a scope, keep it for a rollback. */
static ee_status tracked_drop(coll_store *cs, entry *e, size_t n_fields)
{
    mem *m = scope_for(cs);
    if (!log_reserve(m, 1))
        return oom();
    unlink_entry(cs, e);
    if (m != NULL)
        log_add(m, (undo){.kind = U_UNLINKED, .cs = cs, .e = e, .n_fields = n_fields});
    else
        entry_free(e, n_fields);
    return EE_OK;
}

/* End the scope's log: commit frees what it kept, rollback undoes every
 * change, newest first. */
static void log_finish(mem *m, bool commit)
{
    for (size_t i = m->n_log; i-- > 0;) {
        undo *u = &m->log[i];
        if (commit) {
            if (u->kind == U_UNLINKED)
                entry_free(u->e, u->n_fields);
            else if (u->kind == U_DATA)
                free(u->data);
            continue;
        }
        switch (u->kind) {
        case U_LINKED:
            unlink_entry(u->cs, u->e);
            entry_free(u->e, u->n_fields);
            break;
        case U_UNLINKED:
            /* its keys are free again: what took them was undone first */
            if (link_entry(u->cs, u->e) != EE_OK)
                entry_free(u->e, u->n_fields); /* out of memory: the document is lost */
            break;
        default:
            free(u->e->data);
            u->e->data = u->data;
            u->e->len = u->len;
            u->e->rev = u->rev;
            break;
        }
    }
    m->n_log = 0;
}

/* Put the new entry `e` (made from `r`) in place, under the write lock;
 * on an error the store is as it was and `e` is freed by the caller. */
typedef ee_status (*place_fn)(coll_store *cs, const ee_storage_collection *c, entry *e,
                              const ee_storage_record *r, int64_t expected);

/* The frame of a write: the entry is built outside the lock. */
static ee_status mem_write(mem *m, const ee_storage_collection *c, const ee_storage_record *r,
                           place_fn place, int64_t expected)
{
    coll_store *cs = store_of(m, c);
    entry *e = entry_new(c, r);
    if (e == NULL)
        return oom();
    lock_write(m);
    ee_status st = place(cs, c, e, r, expected);
    unlock(m);
    if (st != EE_OK)
        entry_free(e, c->n_fields);
    return st;
}

static ee_status place_new(coll_store *cs, const ee_storage_collection *c, entry *e,
                           const ee_storage_record *r, int64_t expected)
{
    (void)r;
    (void)expected;
    if (hmap_get(&cs->by_id, e->id, 12) != NULL)
        return duplicate(c, true);
    if (e->ukey != NULL && hmap_get(&cs->by_key, e->ukey, e->ukey_len) != NULL)
        return duplicate(c, false);
    return tracked_link(cs, e, c->n_fields);
}

static ee_status mem_insert(void *ctx, const ee_storage_collection *c, const ee_storage_record *r)
{
    return mem_write(ctx, c, r, place_new, 0);
}

/* The entry with this id in this workspace, or NULL. */
static entry *find(coll_store *cs, const char *ws, const uint8_t *id)
{
    entry *e = hmap_get(&cs->by_id, id, 12);
    return e != NULL && strcmp(e->ws, ws) == 0 ? e : NULL;
}

static ee_status mem_get(void *ctx, const ee_storage_collection *c, const char *ws,
                         const uint8_t *id, ee_storage_row_fn fn, void *payload)
{
    mem *m = ctx;
    ee_status st = EE_OK;
    lock_read(m);
    entry *e = find(store_of(m, c), ws, id);
    if (e == NULL) {
        st = ee__storage_not_found(c, id);
    } else {
        ee_storage_row row = {e->id, e->rev, e->time, e->data, e->len};
        (void)fn(&row, payload);
    }
    unlock(m);
    return st;
}

static ee_status place_over(coll_store *cs, const ee_storage_collection *c, entry *e,
                            const ee_storage_record *r, int64_t expected)
{
    ee_status st = EE_OK;
    entry *old = find(cs, r->workspace, r->id);
    entry *holder = e->ukey ? hmap_get(&cs->by_key, e->ukey, e->ukey_len) : NULL;
    if (old == NULL) {
        st = ee__storage_not_found(c, r->id);
    } else if (old->rev != expected) {
        st = ee__error(EE_ECONFLICT, "%s: stale revision %lld (stored %lld)", c->name,
                       (long long)expected, (long long)old->rev);
    } else if (holder != NULL && holder != old) {
        st = duplicate(c, false);
    } else if (!log_reserve(scope_for(cs), 2)) {
        st = oom();
    } else {
        unlink_entry(cs, old);
        st = link_entry(cs, e);
        if (st != EE_OK) {
            (void)link_entry(cs, old); /* put the old one back; its nodes fit again */
        } else if (scope_for(cs) != NULL) {
            log_add(scope_for(cs), (undo){.kind = U_UNLINKED, .cs = cs, .e = old,
                                          .n_fields = c->n_fields});
            log_add(scope_for(cs), (undo){.kind = U_LINKED, .cs = cs, .e = e,
                                          .n_fields = c->n_fields});
        } else {
            entry_free(old, c->n_fields);
        }
    }
    return st;
}

static ee_status mem_replace(void *ctx, const ee_storage_collection *c, int64_t expected,
                             const ee_storage_record *r)
{
    return mem_write(ctx, c, r, place_over, expected);
}

static ee_status mem_remove(void *ctx, const ee_storage_collection *c, const char *ws,
                            const uint8_t *id)
{
    mem *m = ctx;
    coll_store *cs = store_of(m, c);
    ee_status st = EE_OK;
    lock_write(m);
    entry *e = find(cs, ws, id);
    if (e == NULL)
        st = ee__storage_not_found(c, id);
    else
        st = tracked_drop(cs, e, c->n_fields);
    unlock(m);
    return st;
}

static bool matches(const ee_storage_collection *c, const entry *e, const char *ws,
                    const ee_storage_filter *f)
{
    if (ws != NULL && strcmp(e->ws, ws) != 0)
        return false;
    if (e->time < f->time_from || e->time >= f->time_to)
        return false;
    for (size_t i = 0; i < c->n_fields; i++)
        if (f->values[i] != NULL &&
            (e->values[i] == NULL || strcmp(e->values[i], f->values[i]) != 0))
            return false;
    return true;
}

/* Compare in ascending (time, id) or id order. */
static int cmp_key(int order, int64_t ta, const uint8_t *ia, int64_t tb, const uint8_t *ib)
{
    bool by_time = order == EE_STORAGE_ORDER_TIME_ASC || order == EE_STORAGE_ORDER_TIME_DESC;
    if (by_time && ta != tb)
        return ta < tb ? -1 : 1;
    return memcmp(ia, ib, 12);
}

static bool descending(int order)
{
    return order == EE_STORAGE_ORDER_TIME_DESC || order == EE_STORAGE_ORDER_ID_DESC;
}

static _Thread_local int sort_order;

static int cmp_entries(const void *a, const void *b)
{
    const entry *x = *(entry *const *)a, *y = *(entry *const *)b;
    int r = cmp_key(sort_order, x->time, x->id, y->time, y->id);
    return descending(sort_order) ? -r : r;
}

/* Whether e comes strictly after the page's position (no position: yes). */
static bool after_position(int order, const entry *e, const ee_storage_position *after)
{
    if (after == NULL)
        return true;
    int r = cmp_key(order, e->time, e->id, after->time, after->id);
    return descending(order) ? r < 0 : r > 0;
}

/* A filter that names a workspace and fixes every unique field matches at
 * most one entry: the one the key map holds. *probed is false when the
 * filter does not fix the key (the caller scans); *out is that entry if it
 * exists and passes the rest of the filter. Lookups by key - the gateway's
 * run total on every call, counters, idempotency keys - stay O(1) however
 * many documents the collection holds. */
static ee_status unique_probe(const ee_storage_collection *c, coll_store *cs, const char *ws,
                              const ee_storage_filter *f, bool *probed, entry **out)
{
    *probed = false;
    *out = NULL;
    if (ws == NULL || c->n_unique == 0)
        return EE_OK;
    bool ok = true;
    size_t klen = 0;
    char *key = unique_key(c, ws, f->values, &klen, &ok);
    if (key == NULL)
        return ok ? EE_OK : oom();
    *probed = true;
    entry *e = hmap_get(&cs->by_key, key, klen);
    free(key);
    if (e != NULL && matches(c, e, ws, f))
        *out = e;
    return EE_OK;
}

static ee_status mem_query(void *ctx, const ee_storage_collection *c, const char *ws,
                           const ee_storage_filter *f, const ee_storage_position *after,
                           size_t limit, ee_storage_row_fn fn, void *payload)
{
    mem *m = ctx;
    coll_store *cs = store_of(m, c);
    ee_status st = EE_OK;
    lock_read(m);
    bool probed = false;
    entry *one = NULL;
    if ((st = unique_probe(c, cs, ws, f, &probed, &one)) != EE_OK) {
        unlock(m);
        return st;
    }
    entry **hits = malloc((probed ? 1 : cs->by_id.n ? cs->by_id.n : 1) * sizeof *hits);
    size_t n = 0;
    if (hits == NULL) {
        unlock(m);
        return oom();
    }
    if (probed) {
        if (one != NULL && after_position(f->order, one, after))
            hits[n++] = one;
    } else {
        for (size_t b = 0; b < cs->by_id.nb; b++)
            for (hnode *h = cs->by_id.b[b]; h != NULL; h = h->next) {
                entry *e = h->val;
                if (matches(c, e, ws, f) && after_position(f->order, e, after))
                    hits[n++] = e;
            }
    }
    sort_order = f->order;
    qsort(hits, n, sizeof *hits, cmp_entries);
    for (size_t i = 0; i < n && i < limit; i++) {
        ee_storage_row row = {hits[i]->id, hits[i]->rev, hits[i]->time, hits[i]->data,
                              hits[i]->len};
        if (fn(&row, payload) != 0)
            break;
    }
    unlock(m);
    free(hits);
    return st;
}

static ee_status mem_count(void *ctx, const ee_storage_collection *c, const char *ws,
                           const ee_storage_filter *f, uint64_t *out)
{
    mem *m = ctx;
    coll_store *cs = store_of(m, c);
    uint64_t n = 0;
    lock_read(m);
    bool probed = false;
    entry *one = NULL;
    ee_status st = unique_probe(c, cs, ws, f, &probed, &one);
    if (probed)
        n = one != NULL;
    else if (st == EE_OK)
        for (size_t b = 0; b < cs->by_id.nb; b++)
            for (hnode *h = cs->by_id.b[b]; h != NULL; h = h->next)
                n += matches(c, h->val, ws, f);
    unlock(m);
    *out = n;
    return st;
}

static ee_status mem_increment(void *ctx, const ee_storage_collection *c,
                               const ee_storage_record *if_absent, const ee_storage_inc *inc,
                               size_t n_inc, int64_t now_ms, int64_t *totals_out)
{
    mem *m = ctx;
    coll_store *cs = store_of(m, c);
    bool ok = true;
    size_t klen = 0;
    char *key = unique_key(c, if_absent->workspace, if_absent->values, &klen, &ok);
    if (key == NULL)
        return ok ? ee__error(EE_EINVAL, "%s: incomplete unique key", c->name) : oom();
    ee_status st = EE_OK;
    lock_write(m);
    entry *e = hmap_get(&cs->by_key, key, klen);
    if (e == NULL) {
        entry *n = entry_new(c, if_absent);
        if (n == NULL)
            st = oom();
        else if (hmap_get(&cs->by_id, n->id, 12) != NULL)
            st = duplicate(c, true);
        else
            st = tracked_link(cs, n, c->n_fields);
        if (st != EE_OK)
            entry_free(n, c->n_fields);
        else if (totals_out != NULL)
            for (size_t i = 0; i < n_inc; i++)
                totals_out[i] = inc[i].delta;
    } else {
        bson_t out;
        int64_t totals[EE_STORAGE_INC_MAX];
        st = ee__storage_doc_apply_inc(e->data, e->len, inc, n_inc, now_ms, &out, totals);
        uint8_t *data = st == EE_OK ? malloc(out.len) : NULL;
        if (st == EE_OK && data == NULL)
            st = oom();
        mem *sm = scope_for(cs);
        if (st == EE_OK && !log_reserve(sm, 1)) {
            free(data);
            st = oom();
        }
        if (st == EE_OK) {
            memcpy(data, bson_get_data(&out), out.len);
            if (sm != NULL)
                log_add(sm, (undo){.kind = U_DATA, .cs = cs, .e = e, .data = e->data,
                                   .len = e->len, .rev = e->rev});
            else
                free(e->data);
            e->data = data;
            e->len = out.len;
            e->rev++;
            if (totals_out != NULL)
                memcpy(totals_out, totals, n_inc * sizeof *totals);
        }
        bson_destroy(&out);
    }
    unlock(m);
    free(key);
    return st;
}

static ee_status mem_delete_range(void *ctx, const ee_storage_collection *c, const char *ws,
                                  int64_t from, int64_t to, uint64_t *deleted)
{
    mem *m = ctx;
    coll_store *cs = store_of(m, c);
    const char *none[32] = {0};
    ee_storage_filter f = {none, from, to, 0};
    ee_status st = EE_OK;
    lock_write(m);
    for (size_t b = 0; st == EE_OK && b < cs->by_id.nb; b++) {
        hnode *h = cs->by_id.b[b];
        while (h != NULL) {
            hnode *next = h->next; /* h is freed by unlink_entry */
            entry *e = h->val;
            if (matches(c, e, ws, &f)) {
                if ((st = tracked_drop(cs, e, c->n_fields)) != EE_OK)
                    break;
                (*deleted)++;
            }
            h = next;
        }
    }
    unlock(m);
    return st;
}

/* Claim order: (fields[k] ASC, time ASC, id ASC); an absent value last. */
static int claim_cmp(int k, const entry *a, const entry *b)
{
    if (k >= 0 && (a->values[k] != NULL || b->values[k] != NULL)) {
        if (a->values[k] == NULL)
            return 1;
        if (b->values[k] == NULL)
            return -1;
        int r = strcmp(a->values[k], b->values[k]);
        if (r != 0)
            return r;
    }
    return cmp_key(EE_STORAGE_ORDER_TIME_ASC, a->time, a->id, b->time, b->id);
}

/* Under the write lock: nobody else holds a document, so there is nothing
 * to skip. The new entry is built under the lock too (the record exists
 * only once fn has seen the row). */
static ee_status mem_claim(void *ctx, const ee_storage_collection *c, const char *ws,
                           const ee_storage_filter *f, int k, ee_storage_claim_fn fn,
                           void *payload)
{
    mem *m = ctx;
    coll_store *cs = store_of(m, c);
    ee_status st;
    lock_write(m);
    entry *best = NULL;
    for (size_t b = 0; b < cs->by_id.nb; b++)
        for (hnode *h = cs->by_id.b[b]; h != NULL; h = h->next)
            if (matches(c, h->val, ws, f) && (best == NULL || claim_cmp(k, h->val, best) < 0))
                best = h->val;
    if (best == NULL) {
        st = ee__error(EE_ENOTFOUND, "%s: nothing to claim", c->name);
    } else {
        ee_storage_row row = {best->id, best->rev, best->time, best->data, best->len};
        const ee_storage_record *rec = NULL;
        st = fn(&row, &rec, payload);
        entry *e = NULL;
        if (st == EE_OK && (e = entry_new(c, rec)) == NULL)
            st = oom();
        if (st == EE_OK) {
            st = place_over(cs, c, e, rec, best->rev);
            if (st != EE_OK)
                entry_free(e, c->n_fields);
        }
    }
    unlock(m);
    return st;
}

static void mem_destroy(void *ctx)
{
    mem *m = ctx;
    size_t n;
    const ee_storage_collection *const *all = ee__storage_collections(&n);
    for (size_t i = 0; i < m->n; i++) {
        coll_store *cs = &m->colls[i];
        for (size_t b = 0; b < cs->by_id.nb; b++)
            for (hnode *h = cs->by_id.b[b]; h != NULL; h = h->next)
                entry_free(h->val, all[i]->n_fields);
        hmap_clear(&cs->by_id);
        hmap_clear(&cs->by_key);
    }
    free(m->colls);
    free(m->log);
    pthread_rwlock_destroy(&m->lock);
    free(m);
}

/* ---- atomic scopes (internal.h's ee__storage_tx_ops): the write lock from
 * begin to end, every change logged to be undone ----------------------------- */

static ee_status mem_begin(void *ctx, unsigned flags)
{
    (void)flags; /* nothing is ever synced */
    mem *m = ctx;
    if (pinned != NULL)
        return ee__error(EE_EINVAL, "memory storage: a transaction is already open on this "
                                    "thread");
    pthread_rwlock_wrlock(&m->lock);
    pinned = m;
    m->n_log = 0;
    return EE_OK;
}

static ee_status mem_end(void *ctx, bool commit)
{
    mem *m = ctx;
    if (pinned != m)
        return ee__error(EE_EINVAL, "memory storage: no transaction open on this thread");
    log_finish(m, commit);
    pinned = NULL;
    pthread_rwlock_unlock(&m->lock);
    return EE_OK;
}

static const ee__storage_tx_ops memory_tx = {mem_begin, mem_end};

static const ee_storage_backend memory_backend = {
    .version = EE_STORAGE_BACKEND_VERSION,
    .flags = EE_STORAGE_THREAD_SAFE,
    .name = "memory",
    .destroy = mem_destroy,
    .insert = mem_insert,
    .get = mem_get,
    .replace = mem_replace,
    .remove = mem_remove,
    .query = mem_query,
    .count = mem_count,
    .increment = mem_increment,
    .delete_range = mem_delete_range,
    .claim = mem_claim,
};

ee_status ee__storage_memory_open(ee_storage **out)
{
    mem *m = calloc(1, sizeof *m);
    if (m == NULL)
        return oom();
    ee__storage_collections(&m->n);
    m->colls = calloc(m->n, sizeof *m->colls);
    if (m->colls == NULL) {
        free(m);
        return oom();
    }
    pthread_rwlock_init(&m->lock, NULL);
    return ee__storage_wrap_tx(out, &memory_backend, m, &memory_tx);
}

ee_status ee_storage_memory_new(ee_storage **out)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee_storage_memory_new: out is NULL");
    *out = NULL;
    return ee__storage_memory_open(out);
}
