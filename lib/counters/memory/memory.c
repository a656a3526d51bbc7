/*
 * The memory counters backend: in-process, thread-safe, lock-free on the
 * hot path.
 *
 * Keys. 64 shards, each an open-addressing table of counter pointers that
 * only grows. A lookup loads the shard's current table and probes it with
 * acquire loads: no lock. Inserting a new key takes the shard's mutex; a
 * growing shard publishes a bigger copy and keeps the old table (still valid
 * for readers holding it) until the backend is freed. Counters never move
 * and are never freed before the backend.
 *
 * Values. A counter holds two 64-bit words, `usage` (committed +
 * outstanding: what limits are checked against) and `committed`, each
 * packing an 11-bit window epoch above a 53-bit value. reserve is one CAS on
 * usage (value + n <= limit); commit, release and lease expiry adjust the
 * words with CAS loops that only apply when the epoch still matches, so an
 * operation on a reservation from a window that has since rolled over can
 * never leak into the new window. A rollover (rare) runs under the
 * counter's mutex and stores fresh words with the next epoch.
 *
 * Reservations. Slots in a slab that only grows (chunks are never freed
 * before the backend, so a stale id can always be looked at safely). A
 * slot's `tag` packs a generation and a state; an id is (generation, slot
 * index), and every transition is a CAS on the tag, so a stale or repeated
 * commit/release finds a different tag and answers EE_ENOTFOUND. Free slots
 * form a Treiber stack with a tagged head (ABA-safe). Each counter keeps its
 * slots on a push-only lock-free list; the counter's mutex is taken only to
 * sweep that list (free finished slots, expire leases) - when a reservation
 * might have expired (`next_expiry`, a lower bound of the earliest lease),
 * when the list grows long, and on a refusal (to compute retry_at).
 *
 * Several counters at once (all or none). The counters are taken in address
 * order; each holds a tentative amount, flagged in the counter's `pending`.
 * A reserver that finds no room while `pending` is set waits for the holders
 * to decide instead of refusing: a multi-key request that is rolled back
 * must not make anyone else fail. Holders only wait at counters later in
 * the order, so the waits cannot form a cycle.
 */
#include "counters/counters_internal.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

#define SHARD_COUNT 64
#define EPOCH_SHIFT 53
#define VALUE_MASK ((UINT64_C(1) << EPOCH_SHIFT) - 1)
#define EPOCH_MASK UINT32_C(0x7ff)

#define CHUNK_BITS 12
#define CHUNK_SLOTS (UINT32_C(1) << CHUNK_BITS)
#define MAX_CHUNKS UINT32_C(16384) /* 67 M reservations at once */

#define SWEEP_MIN 64u

enum { S_FREE = 0, S_ACTIVE = 1, S_DONE = 2, S_RENEWING = 3 };

#define RLX memory_order_relaxed
#define ACQ memory_order_acquire
#define REL memory_order_release
#define ACQREL memory_order_acq_rel

typedef struct mcounter mcounter;

typedef struct mslot {
    _Atomic uint64_t tag;  /* generation << 2 | state */
    _Atomic uint32_t next; /* next slot (index + 1) on a counter's list or the free stack */
    _Atomic uint32_t epoch;
    _Atomic(mcounter *) counter;
    _Atomic int64_t n;
    _Atomic int64_t expires;
} mslot;

struct mcounter {
    _Alignas(64) _Atomic uint64_t usage; /* epoch | committed + outstanding */
    _Atomic uint64_t committed;          /* epoch | committed */
    _Atomic int64_t window_end;          /* 0: no window */
    _Atomic int64_t next_expiry;         /* <= every live lease's expiry */
    _Atomic uint32_t resv_head;          /* list of this counter's slots (index + 1) */
    _Atomic uint32_t list_len;
    _Atomic uint32_t sweep_at;
    _Atomic int32_t pending; /* multi-key reservers holding a tentative amount */
    uint32_t epoch;          /* under lock */
    pthread_mutex_t lock;    /* rollover and sweeps only */
    uint64_t hash;
    size_t keylen;
    char key[];
};

typedef struct mtable {
    size_t mask;
    struct mtable *retired; /* the table this one replaced */
    _Atomic(mcounter *) slots[];
} mtable;

typedef struct mshard {
    _Alignas(64) _Atomic(mtable *) table;
    pthread_mutex_t lock;
    size_t used;
} mshard;

typedef struct mem {
    mshard shards[SHARD_COUNT];
    _Alignas(64) _Atomic uint64_t free_head; /* aba tag << 32 | index + 1 */
    _Alignas(64) _Atomic uint32_t nchunks;
    pthread_mutex_t grow_lock;
    _Atomic(mslot *) chunks[MAX_CHUNKS];
} mem;

/* ---- words ------------------------------------------------------------------ */

static inline uint64_t pack(uint32_t epoch, int64_t value)
{
    return ((uint64_t)epoch << EPOCH_SHIFT) | (uint64_t)value;
}
static inline uint32_t word_epoch(uint64_t w)
{
    return (uint32_t)(w >> EPOCH_SHIFT);
}
static inline int64_t word_value(uint64_t w)
{
    return (int64_t)(w & VALUE_MASK);
}

/* value + n <= limit ? add n (any epoch) : fail. */
static bool try_add(_Atomic uint64_t *w, int64_t n, int64_t limit, uint32_t *epoch,
                    int64_t *after)
{
    uint64_t cur = atomic_load_explicit(w, RLX);
    for (;;) {
        int64_t v = word_value(cur);
        if (v > limit - n)
            return false;
        if (atomic_compare_exchange_weak_explicit(w, &cur, cur + (uint64_t)n, ACQREL, RLX)) {
            *epoch = word_epoch(cur);
            *after = v + n;
            return true;
        }
    }
}

/* Add delta (may be negative) if the word is still in `epoch`. */
static bool adjust_if_epoch(_Atomic uint64_t *w, uint32_t epoch, int64_t delta)
{
    uint64_t cur = atomic_load_explicit(w, RLX);
    for (;;) {
        if (word_epoch(cur) != epoch)
            return false;
        uint64_t next = pack(epoch, word_value(cur) + delta);
        if (atomic_compare_exchange_weak_explicit(w, &cur, next, ACQREL, RLX))
            return true;
    }
}

static void lower_expiry(mcounter *c, int64_t exp)
{
    int64_t cur = atomic_load_explicit(&c->next_expiry, RLX);
    while (exp < cur &&
           !atomic_compare_exchange_weak_explicit(&c->next_expiry, &cur, exp, ACQREL, RLX)) {
    }
}

/* A consistent (value, committed) pair of one epoch. */
static void snapshot(mcounter *c, int64_t *value, int64_t *committed)
{
    for (;;) {
        uint64_t u = atomic_load_explicit(&c->usage, ACQ);
        uint64_t k = atomic_load_explicit(&c->committed, ACQ);
        if (word_epoch(u) == word_epoch(k)) {
            *value = word_value(u);
            *committed = word_value(k);
            return;
        }
    }
}

/* ---- key hashing and tables ------------------------------------------------------ */

uint64_t ee__counters_key_hash(const char *key, size_t len)
{
    uint64_t h = UINT64_C(0x9E3779B97F4A7C15) ^ len;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t v;
        memcpy(&v, key + i, 8);
        h = (h ^ v) * UINT64_C(0xff51afd7ed558ccd);
        h ^= h >> 32;
    }
    uint64_t t = 0;
    memcpy(&t, key + i, len - i);
    h = (h ^ t) * UINT64_C(0xc4ceb9fe1a85ec53);
    h ^= h >> 29;
    h *= UINT64_C(0x9E3779B97F4A7C15);
    return h ^ (h >> 32);
}

static mcounter *table_find(mtable *t, const char *key, size_t len, uint64_t h)
{
    if (t == NULL)
        return NULL;
    for (size_t i = h & t->mask;; i = (i + 1) & t->mask) {
        mcounter *c = atomic_load_explicit(&t->slots[i], ACQ);
        if (c == NULL)
            return NULL;
        if (c->hash == h && c->keylen == len && memcmp(c->key, key, len) == 0)
            return c;
    }
}

static mshard *shard_of(mem *m, uint64_t h)
{
    return &m->shards[h >> 58];
}

static mcounter *lookup(mem *m, const char *key, size_t len, uint64_t h)
{
    return table_find(atomic_load_explicit(&shard_of(m, h)->table, ACQ), key, len, h);
}

static mtable *table_new(size_t cap)
{
    mtable *t = calloc(1, sizeof *t + cap * sizeof t->slots[0]);
    if (t != NULL)
        t->mask = cap - 1;
    return t;
}

static void table_put(mtable *t, mcounter *c)
{
    size_t i = c->hash & t->mask;
    while (atomic_load_explicit(&t->slots[i], RLX) != NULL)
        i = (i + 1) & t->mask;
    atomic_store_explicit(&t->slots[i], c, REL);
}

static mcounter *counter_new(const char *key, size_t len, uint64_t h, int64_t window_end)
{
    size_t size = (sizeof(mcounter) + len + 1 + 63) & ~(size_t)63;
    mcounter *c = aligned_alloc(64, size);
    if (c == NULL)
        return NULL;
    memset(c, 0, size);
    atomic_init(&c->usage, 0);
    atomic_init(&c->committed, 0);
    atomic_init(&c->window_end, window_end);
    atomic_init(&c->next_expiry, INT64_MAX);
    atomic_init(&c->resv_head, 0);
    atomic_init(&c->list_len, 0);
    atomic_init(&c->sweep_at, SWEEP_MIN);
    atomic_init(&c->pending, 0);
    pthread_mutex_init(&c->lock, NULL);
    c->hash = h;
    c->keylen = len;
    memcpy(c->key, key, len + 1);
    return c;
}

/* Find the counter or create it with the window `req` asks for. */
static mcounter *get_or_create(mem *m, const ee_counter_req *req, int64_t now)
{
    size_t len = strlen(req->key);
    uint64_t h = ee__counters_key_hash(req->key, len);
    mcounter *c = lookup(m, req->key, len, h);
    if (c != NULL)
        return c;
    mshard *sh = shard_of(m, h);
    pthread_mutex_lock(&sh->lock);
    mtable *t = atomic_load_explicit(&sh->table, RLX);
    c = table_find(t, req->key, len, h);
    if (c == NULL) {
        if (t == NULL || (sh->used + 1) * 2 > t->mask + 1) {
            size_t cap = t == NULL ? 16 : (t->mask + 1) * 2;
            mtable *bigger = table_new(cap);
            if (bigger == NULL)
                goto out;
            for (size_t i = 0; t != NULL && i <= t->mask; i++) {
                mcounter *old = atomic_load_explicit(&t->slots[i], RLX);
                if (old != NULL)
                    table_put(bigger, old);
            }
            bigger->retired = t;
            atomic_store_explicit(&sh->table, bigger, REL);
            t = bigger;
        }
        c = counter_new(req->key, len, h, ee__counters_new_window_end(req, now));
        if (c != NULL) {
            table_put(t, c);
            sh->used++;
        }
    }
out:
    pthread_mutex_unlock(&sh->lock);
    return c;
}

/* ---- reservation slots --------------------------------------------------------- */

static inline mslot *slot_at(mem *m, uint32_t idx)
{
    return atomic_load_explicit(&m->chunks[idx >> CHUNK_BITS], ACQ) + (idx & (CHUNK_SLOTS - 1));
}

static void free_push(mem *m, uint32_t idx)
{
    mslot *s = slot_at(m, idx);
    uint64_t head = atomic_load_explicit(&m->free_head, RLX);
    for (;;) {
        atomic_store_explicit(&s->next, (uint32_t)head, RLX);
        uint64_t next = (((head >> 32) + 1) << 32) | (uint64_t)(idx + 1);
        if (atomic_compare_exchange_weak_explicit(&m->free_head, &head, next, REL, RLX))
            return;
    }
}

static bool free_pop(mem *m, uint32_t *idx)
{
    uint64_t head = atomic_load_explicit(&m->free_head, ACQ);
    for (;;) {
        uint32_t top = (uint32_t)head;
        if (top == 0)
            return false;
        /* The slot may be popped and reused meanwhile: then the tag of the
         * head has moved on and the CAS below fails. */
        uint32_t next = atomic_load_explicit(&slot_at(m, top - 1)->next, RLX);
        uint64_t nh = (((head >> 32) + 1) << 32) | next;
        if (atomic_compare_exchange_weak_explicit(&m->free_head, &head, nh, ACQ, ACQ)) {
            *idx = top - 1;
            return true;
        }
    }
}

static bool slot_alloc(mem *m, uint32_t *idx)
{
    for (;;) {
        if (free_pop(m, idx))
            return true;
        pthread_mutex_lock(&m->grow_lock);
        if ((uint32_t)atomic_load_explicit(&m->free_head, ACQ) != 0) {
            pthread_mutex_unlock(&m->grow_lock);
            continue;
        }
        uint32_t k = atomic_load_explicit(&m->nchunks, RLX);
        mslot *chunk = k < MAX_CHUNKS ? calloc(CHUNK_SLOTS, sizeof *chunk) : NULL;
        if (chunk == NULL) {
            pthread_mutex_unlock(&m->grow_lock);
            return false;
        }
        atomic_store_explicit(&m->chunks[k], chunk, REL);
        atomic_store_explicit(&m->nchunks, k + 1, REL);
        uint32_t base = k << CHUNK_BITS;
        for (uint32_t i = CHUNK_SLOTS - 1; i >= 1; i--)
            free_push(m, base + i);
        pthread_mutex_unlock(&m->grow_lock);
        *idx = base;
        return true;
    }
}

static inline uint64_t tag_gen(uint64_t tag)
{
    return tag >> 2;
}
static inline uint64_t make_tag(uint64_t gen, int state)
{
    return (gen << 2) | (uint64_t)state;
}
static inline uint64_t make_id(uint64_t gen, uint32_t idx)
{
    return ((gen & UINT64_C(0xffffffff)) << 32) | (uint64_t)(idx + 1);
}

/* Finish a slot found on a list: it goes back to the free stack with the
 * next generation (so ids naming the old one no longer match). */
static void slot_free(mem *m, uint32_t idx, mslot *s, uint64_t tag)
{
    atomic_store_explicit(&s->tag, make_tag(tag_gen(tag) + 1, S_FREE), REL);
    free_push(m, idx);
}

/* ---- per-counter list: sweep, rollover -------------------------------------------------- */

/* Under c->lock. Free finished slots, expire leases that ended by `now` or
 * belong to an ended window, and keep the rest. */
static void sweep_locked(mem *m, mcounter *c, int64_t now)
{
    atomic_store_explicit(&c->next_expiry, INT64_MAX, RLX);
    uint32_t head = atomic_exchange_explicit(&c->resv_head, 0, ACQREL);
    uint32_t keep_head = 0, keep_tail = 0, kept = 0, removed = 0;
    int64_t min_exp = INT64_MAX;
    while (head != 0) {
        uint32_t idx = head - 1;
        mslot *s = slot_at(m, idx);
        head = atomic_load_explicit(&s->next, RLX);
        bool dead = false;
        for (;;) {
            uint64_t tag = atomic_load_explicit(&s->tag, ACQ);
            int st = (int)(tag & 3);
            if (st == S_DONE) {
                slot_free(m, idx, s, tag);
                dead = true;
                break;
            }
            int64_t exp = atomic_load_explicit(&s->expires, RLX);
            uint32_t ep = atomic_load_explicit(&s->epoch, RLX);
            if (st == S_ACTIVE && (ep != c->epoch || exp <= now)) {
                if (!atomic_compare_exchange_strong_explicit(&s->tag, &tag,
                                                             make_tag(tag_gen(tag), S_DONE),
                                                             ACQREL, ACQ))
                    continue;
                adjust_if_epoch(&c->usage, ep, -atomic_load_explicit(&s->n, RLX));
                slot_free(m, idx, s, tag);
                dead = true;
                break;
            }
            if (exp < min_exp)
                min_exp = exp;
            break;
        }
        if (dead) {
            removed++;
            continue;
        }
        atomic_store_explicit(&s->next, 0, RLX);
        if (keep_tail == 0)
            keep_head = idx + 1;
        else
            atomic_store_explicit(&slot_at(m, keep_tail - 1)->next, idx + 1, RLX);
        keep_tail = idx + 1;
        kept++;
    }
    if (keep_head != 0) {
        mslot *tail = slot_at(m, keep_tail - 1);
        uint32_t cur = atomic_load_explicit(&c->resv_head, RLX);
        do {
            atomic_store_explicit(&tail->next, cur, RLX);
        } while (!atomic_compare_exchange_weak_explicit(&c->resv_head, &cur, keep_head, REL, RLX));
    }
    atomic_fetch_sub_explicit(&c->list_len, removed, RLX);
    lower_expiry(c, min_exp);
    atomic_store_explicit(&c->sweep_at, kept * 2 > SWEEP_MIN ? kept * 2 : SWEEP_MIN, RLX);
}

static void sweep(mem *m, mcounter *c, int64_t now)
{
    pthread_mutex_lock(&c->lock);
    sweep_locked(m, c, now);
    pthread_mutex_unlock(&c->lock);
}

/* Begin a new window if the counter's ended by `now`. */
static void maybe_rollover(mem *m, mcounter *c, const ee_counter_req *req, int64_t now)
{
    if (!ee__counters_window_over(atomic_load_explicit(&c->window_end, ACQ), now))
        return;
    pthread_mutex_lock(&c->lock);
    if (ee__counters_window_over(atomic_load_explicit(&c->window_end, ACQ), now)) {
        c->epoch = (c->epoch + 1) & EPOCH_MASK;
        /* committed first: a commit of an old reservation then fails its
         * epoch check before any new reservation can exist. */
        atomic_store_explicit(&c->committed, pack(c->epoch, 0), REL);
        atomic_store_explicit(&c->usage, pack(c->epoch, 0), REL);
        atomic_store_explicit(&c->window_end, ee__counters_new_window_end(req, now), REL);
        sweep_locked(m, c, now);
    }
    pthread_mutex_unlock(&c->lock);
}

static void list_push(mem *m, mcounter *c, uint32_t idx, mslot *s, int64_t exp, int64_t now)
{
    uint32_t head = atomic_load_explicit(&c->resv_head, RLX);
    do {
        atomic_store_explicit(&s->next, head, RLX);
    } while (!atomic_compare_exchange_weak_explicit(&c->resv_head, &head, idx + 1, REL, RLX));
    lower_expiry(c, exp);
    uint32_t len = atomic_fetch_add_explicit(&c->list_len, 1, RLX) + 1;
    if (len > atomic_load_explicit(&c->sweep_at, RLX) && pthread_mutex_trylock(&c->lock) == 0) {
        sweep_locked(m, c, now);
        pthread_mutex_unlock(&c->lock);
    }
}

/* ---- answers -------------------------------------------------------------------- */

static void fill(mcounter *c, const ee_counter_req *req, ee_counter_result *res)
{
    snapshot(c, &res->value, &res->committed);
    res->limit = req->limit;
    res->window_end_ms = atomic_load_explicit(&c->window_end, ACQ);
}

/* The refusal answer for `req` on `c`, with retry_at from the live leases. */
static void fill_refused(mem *m, mcounter *c, const ee_counter_req *req, int64_t now,
                         ee_counter_result *res)
{
    pthread_mutex_lock(&c->lock);
    sweep_locked(m, c, now);
    fill(c, req, res);
    res->fits = res->value <= req->limit - req->n;
    size_t cap = 0, count = 0;
    ee__counters_lease *leases = NULL;
    if (!res->fits) {
        /* Under the lock no sweep unlinks slots, so the list is stable. */
        for (uint32_t h = atomic_load_explicit(&c->resv_head, ACQ); h != 0;) {
            mslot *s = slot_at(m, h - 1);
            h = atomic_load_explicit(&s->next, RLX);
            uint64_t tag = atomic_load_explicit(&s->tag, ACQ);
            if ((tag & 3) != S_ACTIVE && (tag & 3) != S_RENEWING)
                continue;
            if (atomic_load_explicit(&s->epoch, RLX) != c->epoch)
                continue;
            if (count == cap) {
                size_t ncap = cap ? cap * 2 : 32;
                ee__counters_lease *grown = realloc(leases, ncap * sizeof *grown);
                if (grown == NULL)
                    break;
                leases = grown;
                cap = ncap;
            }
            leases[count].n = atomic_load_explicit(&s->n, RLX);
            leases[count].expires = atomic_load_explicit(&s->expires, RLX);
            count++;
        }
        res->retry_at_ms = ee__counters_retry_at(res->committed, res->value - res->committed,
                                                 req->n, req->limit, res->window_end_ms, leases,
                                                 count);
    }
    pthread_mutex_unlock(&c->lock);
    free(leases);
}

/* ---- reserve --------------------------------------------------------------------- */

/* Take n on c if it fits, sweeping expired leases and waiting for undecided
 * multi-key holders before giving up. */
static bool take(mem *m, mcounter *c, const ee_counter_req *req, int64_t now, bool multi,
                 uint32_t *epoch, int64_t *after)
{
    for (;;) {
        if (multi)
            atomic_fetch_add_explicit(&c->pending, 1, ACQREL);
        if (try_add(&c->usage, req->n, req->limit, epoch, after))
            return true;
        if (multi)
            atomic_fetch_sub_explicit(&c->pending, 1, ACQREL);
        if (now >= atomic_load_explicit(&c->next_expiry, ACQ)) {
            sweep(m, c, now);
            if (now < atomic_load_explicit(&c->next_expiry, ACQ))
                continue;
        }
        if (atomic_load_explicit(&c->pending, ACQ) > 0) {
            sched_yield();
            continue;
        }
        return false;
    }
}

/* Make the reservation record for an amount already taken. */
static bool record(mem *m, mcounter *c, const ee_counter_req *req, uint32_t epoch,
                   int64_t lease, int64_t now, uint64_t *id)
{
    uint32_t idx;
    if (!slot_alloc(m, &idx))
        return false;
    mslot *s = slot_at(m, idx);
    uint64_t gen = tag_gen(atomic_load_explicit(&s->tag, ACQ));
    int64_t exp = now + lease;
    atomic_store_explicit(&s->counter, c, RLX);
    atomic_store_explicit(&s->n, req->n, RLX);
    atomic_store_explicit(&s->epoch, epoch, RLX);
    atomic_store_explicit(&s->expires, exp, RLX);
    atomic_store_explicit(&s->tag, make_tag(gen, S_ACTIVE), REL);
    list_push(m, c, idx, s, exp, now);
    *id = make_id(gen, idx);
    return true;
}

static ee_status m_reserve_many(void *ctx, const ee_counter_req *reqs, size_t count,
                                int64_t lease, int64_t now, ee_counter_result *res, int *granted)
{
    mem *m = ctx;
    mcounter *cs[EE_COUNTERS_MANY_MAX];
    size_t order[EE_COUNTERS_MANY_MAX];
    uint32_t epochs[EE_COUNTERS_MANY_MAX];
    int64_t after[EE_COUNTERS_MANY_MAX];
    bool multi = count > 1;
    for (size_t i = 0; i < count; i++) {
        if ((cs[i] = get_or_create(m, &reqs[i], now)) == NULL)
            return ee__error(EE_ENOMEM, "out of memory creating counter \"%s\"", reqs[i].key);
        maybe_rollover(m, cs[i], &reqs[i], now);
        order[i] = i;
    }
    /* Address order keeps waits between multi-key holders acyclic. */
    for (size_t i = 1; i < count; i++)
        for (size_t j = i; j > 0 && (uintptr_t)cs[order[j]] < (uintptr_t)cs[order[j - 1]]; j--) {
            size_t t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    size_t held = 0;
    for (; held < count; held++) {
        size_t i = order[held];
        if (!take(m, cs[i], &reqs[i], now, multi, &epochs[i], &after[i]))
            break;
    }
    ee_status st = EE_OK;
    size_t recorded = 0;
    if (held == count) {
        for (; recorded < count; recorded++) {
            size_t i = order[recorded];
            if (!record(m, cs[i], &reqs[i], epochs[i], lease, now, &res[i].resv_id))
                break;
        }
        if (recorded < count)
            st = ee__error(EE_ENOMEM, "out of memory recording a reservation");
    }
    if (held < count || st != EE_OK) {
        /* Roll back: amounts not yet recorded go back; recorded ones are released. */
        for (size_t k = 0; k < held; k++) {
            size_t i = order[k];
            if (k < recorded) {
                mslot *s = slot_at(m, (uint32_t)(res[i].resv_id & 0xffffffffu) - 1);
                uint64_t tag = atomic_load_explicit(&s->tag, ACQ);
                if (atomic_compare_exchange_strong_explicit(
                        &s->tag, &tag, make_tag(tag_gen(tag), S_DONE), ACQREL, ACQ))
                    adjust_if_epoch(&cs[i]->usage, epochs[i], -reqs[i].n);
            } else {
                adjust_if_epoch(&cs[i]->usage, epochs[i], -reqs[i].n);
            }
            res[i].resv_id = 0;
        }
    }
    if (multi)
        for (size_t k = 0; k < held; k++)
            atomic_fetch_sub_explicit(&cs[order[k]]->pending, 1, ACQREL);
    if (st != EE_OK)
        return st;
    if (held == count) {
        for (size_t i = 0; i < count; i++) {
            fill(cs[i], &reqs[i], &res[i]);
            res[i].fits = 1;
        }
        *granted = 1;
        return EE_OK;
    }
    for (size_t i = 0; i < count; i++)
        fill_refused(m, cs[i], &reqs[i], now, &res[i]);
    *granted = 0;
    return EE_OK;
}

/* ---- commit, release, renew ------------------------------------------------------------ */

enum finish_kind { F_COMMIT, F_RELEASE, F_RENEW };

static ee_status not_found(const char *key, uint64_t id, const char *why)
{
    return ee__error(EE_ENOTFOUND, "counter \"%s\": reservation %llu %s", key,
                     (unsigned long long)id, why);
}

static ee_status m_finish(mem *m, const char *key, uint64_t id, enum finish_kind kind,
                          int64_t amount, int64_t lease, int64_t now)
{
    uint32_t idx1 = (uint32_t)id;
    if (idx1 == 0 || idx1 - 1 >= atomic_load_explicit(&m->nchunks, ACQ) * CHUNK_SLOTS)
        return not_found(key, id, "is unknown");
    uint32_t idx = idx1 - 1;
    mslot *s = slot_at(m, idx);
    size_t len = strlen(key);
    for (;;) {
        uint64_t tag = atomic_load_explicit(&s->tag, ACQ);
        if ((tag_gen(tag) & 0xffffffffu) != id >> 32)
            return not_found(key, id, "is unknown or already finished");
        int st = (int)(tag & 3);
        if (st == S_RENEWING) {
            sched_yield();
            continue;
        }
        if (st != S_ACTIVE)
            return not_found(key, id, "is unknown or already finished");
        mcounter *c = atomic_load_explicit(&s->counter, RLX);
        int64_t n = atomic_load_explicit(&s->n, RLX);
        uint32_t ep = atomic_load_explicit(&s->epoch, RLX);
        int64_t exp = atomic_load_explicit(&s->expires, RLX);
        if (atomic_load_explicit(&s->tag, ACQ) != tag)
            continue; /* changed while read: look again */
        if (c->keylen != len || memcmp(c->key, key, len) != 0)
            return not_found(key, id, "belongs to another counter");
        uint64_t done = make_tag(tag_gen(tag), S_DONE);
        bool window_over =
            ee__counters_window_over(atomic_load_explicit(&c->window_end, ACQ), now) ||
            word_epoch(atomic_load_explicit(&c->usage, ACQ)) != ep;
        if (window_over || exp <= now) {
            if (!atomic_compare_exchange_strong_explicit(&s->tag, &tag, done, ACQREL, ACQ))
                continue;
            /* An ended window is reset as a whole at rollover; an expired
             * lease gives its amount back now. */
            if (!window_over)
                adjust_if_epoch(&c->usage, ep, -n);
            return not_found(key, id, window_over ? "belongs to a window that has ended"
                                                  : "expired (its lease ended)");
        }
        if (kind == F_RENEW) {
            uint64_t renewing = make_tag(tag_gen(tag), S_RENEWING);
            if (!atomic_compare_exchange_strong_explicit(&s->tag, &tag, renewing, ACQREL, ACQ))
                continue;
            atomic_store_explicit(&s->expires, now + lease, RLX);
            lower_expiry(c, now + lease);
            atomic_store_explicit(&s->tag, make_tag(tag_gen(tag), S_ACTIVE), REL);
            return EE_OK;
        }
        if (kind == F_COMMIT && amount > n)
            return ee__error(EE_EINVAL, "counter \"%s\": commit amount %lld exceeds the %lld "
                                        "reserved", key, (long long)amount, (long long)n);
        if (!atomic_compare_exchange_strong_explicit(&s->tag, &tag, done, ACQREL, ACQ))
            continue;
        int64_t keep = kind == F_COMMIT ? (amount < 0 ? n : amount) : 0;
        if (keep > 0 && !adjust_if_epoch(&c->committed, ep, keep))
            return not_found(key, id, "belongs to a window that has ended");
        if (n - keep > 0)
            adjust_if_epoch(&c->usage, ep, -(n - keep));
        return EE_OK;
    }
}

static ee_status m_commit(void *ctx, const char *key, uint64_t id, int64_t amount, int64_t now)
{
    return m_finish(ctx, key, id, F_COMMIT, amount, 0, now);
}

static ee_status m_release(void *ctx, const char *key, uint64_t id, int64_t now)
{
    return m_finish(ctx, key, id, F_RELEASE, 0, 0, now);
}

static ee_status m_renew(void *ctx, const char *key, uint64_t id, int64_t lease, int64_t now)
{
    return m_finish(ctx, key, id, F_RENEW, 0, lease, now);
}

static ee_status m_get(void *ctx, const char *key, int64_t now, ee_counter_result *out)
{
    mem *m = ctx;
    size_t len = strlen(key);
    mcounter *c = lookup(m, key, len, ee__counters_key_hash(key, len));
    if (c == NULL)
        return EE_OK;
    int64_t end = atomic_load_explicit(&c->window_end, ACQ);
    if (ee__counters_window_over(end, now))
        return EE_OK;
    if (now >= atomic_load_explicit(&c->next_expiry, ACQ))
        sweep(m, c, now);
    snapshot(c, &out->value, &out->committed);
    out->window_end_ms = end;
    return EE_OK;
}

/* ---- lifetime ------------------------------------------------------------------------ */

static void m_free(void *ctx)
{
    mem *m = ctx;
    if (m == NULL)
        return;
    for (size_t i = 0; i < SHARD_COUNT; i++) {
        mtable *t = atomic_load_explicit(&m->shards[i].table, RLX);
        for (size_t j = 0; t != NULL && j <= t->mask; j++) {
            mcounter *c = atomic_load_explicit(&t->slots[j], RLX);
            if (c != NULL) {
                pthread_mutex_destroy(&c->lock);
                free(c);
            }
        }
        while (t != NULL) {
            mtable *older = t->retired;
            free(t);
            t = older;
        }
        pthread_mutex_destroy(&m->shards[i].lock);
    }
    uint32_t n = atomic_load_explicit(&m->nchunks, RLX);
    for (uint32_t k = 0; k < n; k++)
        free(atomic_load_explicit(&m->chunks[k], RLX));
    pthread_mutex_destroy(&m->grow_lock);
    free(m);
}

static const ee_counters_backend memory_table = {
    .version = EE_COUNTERS_BACKEND_VERSION,
    .flags = EE_COUNTERS_THREAD_SAFE,
    .reserve_many = m_reserve_many,
    .commit = m_commit,
    .release = m_release,
    .renew = m_renew,
    .get = m_get,
    .free = m_free,
};

ee_status ee__counters_memory_create(const ee_counters_backend **table, void **ctx)
{
    mem *m = aligned_alloc(64, (sizeof(mem) + 63) & ~(size_t)63);
    if (m == NULL)
        return ee__error(EE_ENOMEM, "out of memory creating memory counters");
    memset(m, 0, sizeof *m);
    for (size_t i = 0; i < SHARD_COUNT; i++) {
        atomic_init(&m->shards[i].table, NULL);
        pthread_mutex_init(&m->shards[i].lock, NULL);
    }
    atomic_init(&m->free_head, 0);
    atomic_init(&m->nchunks, 0);
    pthread_mutex_init(&m->grow_lock, NULL);
    *table = &memory_table;
    *ctx = m;
    return EE_OK;
}
