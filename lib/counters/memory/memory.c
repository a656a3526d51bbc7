/*
 * The memory counters backend: in-process and thread-safe.
 *
 * Keys. 64 shards, each an open-addressing table of counter pointers that
 * only grows. A lookup loads the shard's current table and probes it with
 * acquire loads: no lock. Inserting a new key takes the shard's mutex; a
 * growing shard publishes a bigger copy and keeps the old table (still valid
 * for readers holding it) until the backend is freed. Counters never move
 * and are never freed before the backend, so a counter's address is a
 * handle (ee__counters_resolve) that skips the key work on the hot path.
 *
 * A counter is guarded by its own spinlock; every critical section is a
 * few dozen instructions (no allocation but the rare growth of its arrays,
 * no system call), so waiting spins briefly and then yields. A reservation
 * is a record in the counter's own array; its id is (generation, index), so
 * a stale or repeated commit finds another generation or a finished state
 * and answers EE_ENOTFOUND. The live records' leases are kept in expiry
 * order: a FIFO while they arrive in that order (the usual case: one lease
 * length per counter), else a min-heap; expiring is taking the earliest,
 * never a sweep of the whole counter, and reads no record but those it
 * gives back.
 *
 * Several counters at once (all or none): their locks are taken in address
 * order (no deadlock; a caller reusing one request set has that order
 * worked out once, m_lock_order), every counter is checked, and only then
 * is anything changed. Nothing tentative is ever visible, so a refused
 * multi-counter request cannot make anyone else fail. The check also says
 * whether each reservation is the usual one (a free record, its lease at
 * the FIFO's tail); then taking it is a short straight path (take_fast).
 */
#include "counters/counters_internal.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

#define SHARD_COUNT 64
#define SPINS_BEFORE_YIELD 128
#define RECS_MAX (UINT32_C(1) << 30) /* live + finished records of one counter */
#define NOT_BEGUN INT64_C(-1)        /* window_end of a counter no reserve has begun */

/* Rare paths are kept out of line, so the usual reserve stays one tight
 * stretch of code. */
#if defined(__GNUC__)
#  define COLD __attribute__((noinline, cold))
#  define UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#  define COLD
#  define UNLIKELY(x) (x)
#endif

#define RLX memory_order_relaxed
#define ACQ memory_order_acquire
#define REL memory_order_release

/* A record's state. A finished record keeps its generation until it is
 * reused, so the answer to a late commit can say what happened. */
enum { R_FREE = 0, R_LIVE = 1, R_ENDED = 2, R_EXPIRED = 3 };

typedef struct mrec {
    int64_t expires;
    int64_t n;
    uint32_t gen;   /* bumped when the record is taken */
    uint32_t pos;   /* live: its lease's heap index, or FIFO sequence number; free: next
                       free record + 1 */
    uint32_t state; /* R_* */
    uint32_t pad_;
} mrec;

/* A lease: a record's expiry, where sorting and expiring read it. A FIFO
 * lease whose record was finished or given another expiry is marked dead
 * (rec = DEAD) and dropped when it reaches the head or on compaction. */
typedef struct mlease {
    int64_t expires;
    uint32_t rec;
    uint32_t pad_;
} mlease;

#define DEAD UINT32_MAX

typedef struct mcounter {
    _Alignas(64) _Atomic uint32_t lock;
    uint32_t nrecs, cap;  /* records in use of the arrays, their capacity */
    uint32_t free_head;   /* free record + 1, 0: none */
    int64_t value;        /* committed + outstanding */
    int64_t committed;
    int64_t window_end;   /* 0: no window; NOT_BEGUN: no reservation yet */
    mrec *recs;
    /* The live records' leases: a FIFO while they arrive in expiry order
     * (one lease length per counter, time moving forward: the usual case),
     * else a min-heap (`cap` entries, so switching never allocates). */
    bool in_heap;
    /* FIFO leases have sequence numbers fifo_head .. fifo_tail - 1 (they
     * run on and wrap); the one numbered q is at fifo[q & fifo_mask]. */
    uint32_t fifo_head, fifo_tail, fifo_cap; /* fifo_cap: 0 or a power of two */
    uint32_t fifo_mask;                      /* fifo_cap - 1 once there is a FIFO */
    int64_t fifo_last;    /* expiry of the newest lease in the FIFO */
    mlease *fifo;
    uint32_t heap_n;
    mlease *heap;
    uint64_t hash;
    size_t keylen;
    char key[];
} mcounter;

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
} mem;

/* ---- the counter's lock ------------------------------------------------------------- */

static COLD void c_lock_wait(mcounter *c)
{
    do {
        for (int spins = 0; atomic_load_explicit(&c->lock, RLX) != 0; spins++) {
            if (spins >= SPINS_BEFORE_YIELD) {
                sched_yield(); /* the holder may be preempted: let it run */
                spins = 0;
            }
        }
    } while (atomic_exchange_explicit(&c->lock, 1, ACQ) != 0);
}

static inline void c_lock(mcounter *c)
{
    if (UNLIKELY(atomic_exchange_explicit(&c->lock, 1, ACQ) != 0))
        c_lock_wait(c);
}

static void c_unlock(mcounter *c)
{
    atomic_store_explicit(&c->lock, 0, REL);
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

static mcounter *lookup(mem *m, const char *key)
{
    size_t len = strlen(key);
    uint64_t h = ee__counters_key_hash(key, len);
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

static mcounter *counter_new(const char *key, size_t len, uint64_t h)
{
    size_t size = (sizeof(mcounter) + len + 1 + 63) & ~(size_t)63;
    mcounter *c = aligned_alloc(64, size);
    if (c == NULL)
        return NULL;
    memset(c, 0, size);
    atomic_init(&c->lock, 0);
    c->window_end = NOT_BEGUN;
    c->hash = h;
    c->keylen = len;
    memcpy(c->key, key, len + 1);
    return c;
}

/* Make room for one more counter in the shard's table (under its lock). */
static mtable *shard_room(mshard *sh)
{
    mtable *t = atomic_load_explicit(&sh->table, RLX);
    if (t != NULL && (sh->used + 1) * 2 <= t->mask + 1)
        return t;
    mtable *bigger = table_new(t == NULL ? 16 : (t->mask + 1) * 2);
    if (bigger == NULL)
        return NULL;
    for (size_t i = 0; t != NULL && i <= t->mask; i++) {
        mcounter *old = atomic_load_explicit(&t->slots[i], RLX);
        if (old != NULL)
            table_put(bigger, old);
    }
    bigger->retired = t;
    atomic_store_explicit(&sh->table, bigger, REL);
    return bigger;
}

/* Find the counter or create it (no window begun). NULL on ENOMEM. */
static mcounter *get_or_create(mem *m, const char *key)
{
    size_t len = strlen(key);
    uint64_t h = ee__counters_key_hash(key, len);
    mshard *sh = shard_of(m, h);
    mcounter *c = table_find(atomic_load_explicit(&sh->table, ACQ), key, len, h);
    if (c != NULL)
        return c;
    pthread_mutex_lock(&sh->lock);
    c = table_find(atomic_load_explicit(&sh->table, RLX), key, len, h);
    if (c == NULL) {
        mtable *t = shard_room(sh);
        if (t != NULL && (c = counter_new(key, len, h)) != NULL) {
            table_put(t, c);
            sh->used++;
        }
    }
    pthread_mutex_unlock(&sh->lock);
    return c;
}

/* ---- the lease heap (under the counter's lock) ---------------------------------------- */

static void heap_set(mcounter *c, uint32_t i, mlease e)
{
    c->heap[i] = e;
    c->recs[e.rec].pos = i;
}

static void heap_up(mcounter *c, uint32_t i)
{
    mlease e = c->heap[i];
    while (i > 0 && c->heap[(i - 1) / 2].expires > e.expires) {
        heap_set(c, i, c->heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    heap_set(c, i, e);
}

static void heap_down(mcounter *c, uint32_t i)
{
    mlease e = c->heap[i];
    for (;;) {
        uint32_t l = 2 * i + 1, m = i;
        int64_t best = e.expires;
        if (l < c->heap_n && c->heap[l].expires < best)
            m = l, best = c->heap[l].expires;
        if (l + 1 < c->heap_n && c->heap[l + 1].expires < best)
            m = l + 1;
        if (m == i)
            break;
        heap_set(c, i, c->heap[m]);
        i = m;
    }
    heap_set(c, i, e);
}

static void heap_remove(mcounter *c, uint32_t pos)
{
    mlease last = c->heap[--c->heap_n];
    if (pos == c->heap_n)
        return;
    heap_set(c, pos, last);
    heap_up(c, pos);
    heap_down(c, c->recs[last.rec].pos);
}

/* ---- the lease FIFO (under the counter's lock) -----------------------------------------
 *
 * A live record keeps its FIFO lease's sequence number in `pos`, so
 * finishing it marks that lease dead without a search. The head lease is
 * never dead (dead heads are dropped at once), so expiring reads the FIFO
 * alone. */

static uint32_t fifo_len(const mcounter *c)
{
    return c->fifo_tail - c->fifo_head;
}

static mlease *fifo_seq(const mcounter *c, uint32_t q)
{
    return &c->fifo[q & c->fifo_mask];
}

/* The live records: each has one lease that is not dead. */
static uint32_t live_count(const mcounter *c)
{
    if (c->in_heap)
        return c->heap_n;
    uint32_t n = 0;
    for (uint32_t q = c->fifo_head; q != c->fifo_tail; q++)
        n += fifo_seq(c, q)->rec != DEAD;
    return n;
}

static void fifo_pop_dead(mcounter *c)
{
    while (c->fifo_head != c->fifo_tail && fifo_seq(c, c->fifo_head)->rec == DEAD)
        c->fifo_head++;
}

/* Mark live record idx's FIFO lease dead. */
static void fifo_kill(mcounter *c, uint32_t idx)
{
    uint32_t q = c->recs[idx].pos;
    if (q - c->fifo_head < fifo_len(c) && fifo_seq(c, q)->rec == idx) {
        fifo_seq(c, q)->rec = DEAD;
        if (q == c->fifo_head)
            fifo_pop_dead(c);
    }
}

/* Drop the dead leases, keeping the order (and the records' sequence
 * numbers right). */
static void fifo_compact(mcounter *c)
{
    uint32_t to = c->fifo_head;
    for (uint32_t q = c->fifo_head; q != c->fifo_tail; q++) {
        mlease l = *fifo_seq(c, q);
        if (l.rec == DEAD)
            continue;
        c->recs[l.rec].pos = to;
        *fifo_seq(c, to++) = l;
    }
    c->fifo_tail = to;
}

/* The FIFO's leases, in order, become the heap: a sorted array is a heap. */
static void to_heap(mcounter *c)
{
    c->heap_n = 0;
    for (uint32_t q = c->fifo_head; q != c->fifo_tail; q++) {
        mlease l = *fifo_seq(c, q);
        if (l.rec != DEAD)
            heap_set(c, c->heap_n++, l);
    }
    c->fifo_tail = c->fifo_head;
    c->in_heap = true;
}

/* Room in the FIFO for one more lease (of a live record that has none
 * yet): made by dropping dead ones or growing; when it cannot grow the
 * counter moves to the heap, which has room for every record. */
static void fifo_room(mcounter *c)
{
    if (c->in_heap || fifo_len(c) < c->fifo_cap)
        return;
    uint32_t live = live_count(c) + 1; /* with the record the lease is for */
    if (fifo_len(c) > 2 * live + 8) {
        fifo_compact(c);
        return;
    }
    uint32_t cap = c->fifo_cap ? c->fifo_cap * 2 : 8;
    mlease *grown = cap > c->fifo_cap ? malloc(cap * sizeof *grown) : NULL;
    if (grown == NULL) {
        to_heap(c);
        return;
    }
    for (uint32_t q = c->fifo_head; q != c->fifo_tail; q++)
        grown[q & (cap - 1)] = *fifo_seq(c, q); /* sequence numbers stay */
    free(c->fifo);
    c->fifo = grown;
    c->fifo_cap = cap;
    c->fifo_mask = cap - 1;
}

/* Track record idx's lease (its expires set, live, no lease yet). The
 * usual reserve appends its lease in take_fast() instead. */
static void lease_add(mcounter *c, uint32_t idx)
{
    mrec *r = &c->recs[idx];
    fifo_room(c);
    if (!c->in_heap && fifo_len(c) > 0 && r->expires < c->fifo_last)
        to_heap(c); /* out of order */
    if (c->in_heap) {
        c->heap[c->heap_n] = (mlease){r->expires, idx, 0};
        r->pos = c->heap_n++;
        heap_up(c, r->pos);
        return;
    }
    *fifo_seq(c, c->fifo_tail) = (mlease){r->expires, idx, 0};
    r->pos = c->fifo_tail++;
    c->fifo_last = r->expires;
}

/* The earliest live lease, or NULL. */
static const mlease *lease_first(const mcounter *c)
{
    if (c->in_heap)
        return c->heap_n > 0 ? &c->heap[0] : NULL;
    return c->fifo_head != c->fifo_tail ? fifo_seq(c, c->fifo_head) : NULL;
}

/* Once nothing is live, the counter starts again with an empty FIFO. (A
 * FIFO's head lease is never dead: an empty FIFO or heap is nothing live.) */
static void leases_reset_if_idle(mcounter *c)
{
    if (lease_first(c) != NULL)
        return;
    c->in_heap = false;
    c->heap_n = 0;
    c->fifo_tail = c->fifo_head;
}

/* ---- records (under the counter's lock) ------------------------------------------------ */

/* Room for one more record (its lease makes its own room, never failing);
 * false on ENOMEM (nothing changed). */
static bool recs_grow(mcounter *c)
{
    if (c->cap >= RECS_MAX)
        return false;
    uint32_t cap = c->cap ? c->cap * 2 : 8;
    mrec *recs = realloc(c->recs, cap * sizeof *recs);
    if (recs == NULL)
        return false;
    c->recs = recs;
    mlease *heap = realloc(c->heap, cap * sizeof *heap);
    if (heap == NULL)
        return false; /* the bigger record array stays: harmless */
    c->heap = heap;
    c->cap = cap;
    return true;
}

static inline bool recs_room(mcounter *c)
{
    return c->free_head != 0 || c->nrecs < c->cap || recs_grow(c);
}

/* Take a record (recs_room() said yes) live with n and expiry; its id. */
static uint64_t rec_take(mcounter *c, int64_t n, int64_t expires)
{
    uint32_t idx;
    if (c->free_head != 0) {
        idx = c->free_head - 1;
        c->free_head = c->recs[idx].pos;
    } else {
        idx = c->nrecs++;
        c->recs[idx].gen = 0;
    }
    mrec *r = &c->recs[idx];
    r->gen++;
    r->n = n;
    r->expires = expires;
    r->state = R_LIVE;
    lease_add(c, idx);
    return ((uint64_t)r->gen << 32) | (uint64_t)(idx + 1);
}

/* The usual reserve: a free record to take and the lease's place at the
 * FIFO's tail. Then take_fast() does what
 * rec_take() would. */
static inline bool can_take_fast(const mcounter *c, int64_t expires)
{
    uint32_t head = c->fifo_head, tail = c->fifo_tail;
    return c->free_head != 0 && !c->in_heap && tail - head < c->fifo_cap &&
           (tail == head || expires >= c->fifo_last);
}

static inline uint64_t take_fast(mcounter *c, int64_t n, int64_t expires)
{
    /* The counter's fields are read before any record is written: for the
     * compiler a record's fields might alias them and be read again. */
    uint32_t idx = c->free_head - 1, tail = c->fifo_tail;
    mlease *l = &c->fifo[tail & c->fifo_mask];
    mrec *r = &c->recs[idx];
    c->free_head = r->pos;
    c->fifo_tail = tail + 1;
    c->fifo_last = expires;
    uint32_t gen = r->gen + 1;
    r->gen = gen;
    r->n = n;
    r->expires = expires;
    r->state = R_LIVE;
    r->pos = tail;
    l->expires = expires;
    l->rec = idx;
    return ((uint64_t)gen << 32) | (uint64_t)(idx + 1);
}

/* Finish a live record: onto the free list as `state` (its FIFO lease
 * is marked dead, a heap lease removed). The caller then calls
 * leases_reset_if_idle(). */
static void rec_finish(mcounter *c, uint32_t idx, uint32_t state)
{
    mrec *r = &c->recs[idx];
    if (c->in_heap)
        heap_remove(c, r->pos);
    else
        fifo_kill(c, idx);
    r->state = state;
    r->pos = c->free_head;
    c->free_head = idx + 1;
}

/* Give record idx a new expiry. */
static void rec_renew(mcounter *c, uint32_t idx, int64_t expires)
{
    mrec *r = &c->recs[idx];
    if (expires == r->expires)
        return; /* its lease stays as it is (a FIFO never holds two current leases) */
    if (!c->in_heap && expires < c->fifo_last)
        to_heap(c);
    r->expires = expires;
    if (!c->in_heap) {
        fifo_kill(c, idx); /* the old lease; the new one goes at the tail */
        lease_add(c, idx);
        return;
    }
    c->heap[r->pos].expires = expires;
    heap_up(c, r->pos);
    heap_down(c, r->pos);
}

/* Give back every reservation whose lease ended by now. */
static COLD void expire_slow(mcounter *c, int64_t now)
{
    const mlease *l;
    while ((l = lease_first(c)) != NULL && l->expires <= now) {
        uint32_t idx = l->rec;
        c->value -= c->recs[idx].n;
        rec_finish(c, idx, R_EXPIRED);
    }
    leases_reset_if_idle(c);
}

/* The FIFO's head lease ended: its record is given back and finished as
 * R_EXPIRED (rec_finish() without the search: it is the head), and the
 * head moves on; the new head. The lease passed is not marked dead:
 * nothing reads a FIFO outside fifo_head .. fifo_tail - 1. */
static inline uint32_t expire_head(mcounter *c, uint32_t head, uint32_t mask)
{
    uint32_t idx = c->fifo[head & mask].rec;
    mrec *r = &c->recs[idx];
    c->value -= r->n;
    r->state = R_EXPIRED;
    r->pos = c->free_head;
    c->free_head = idx + 1;
    c->fifo_head = head + 1;
    return head + 1;
}

/* expire_slow() for a FIFO: dead leases at the head dropped and ended
 * ones expired, until the head is a live lease ending after now; the new
 * head. A FIFO that empties is the idle state already (what
 * leases_reset_if_idle() would make). */
static uint32_t expire_fifo(mcounter *c, int64_t now)
{
    uint32_t mask = c->fifo_mask, head = c->fifo_head, tail = c->fifo_tail;
    while (head != tail) {
        const mlease *l = &c->fifo[head & mask];
        if (l->rec == DEAD)
            c->fifo_head = ++head;
        else if (l->expires <= now)
            head = expire_head(c, head, mask);
        else
            break;
    }
    return head;
}

static inline void expire(mcounter *c, int64_t now)
{
    if (!c->in_heap) {
        uint32_t head = c->fifo_head;
        if (head != c->fifo_tail && fifo_seq(c, head)->expires <= now)
            (void)expire_fifo(c, now);
    } else if (c->heap_n > 0 && c->heap[0].expires <= now) {
        expire_slow(c, now);
    }
}

/* Begin a new window for `req` if the counter's ended (or none began):
 * everything of the old one is gone. */
static COLD void rollover(mcounter *c, const ee_counter_req *req, int64_t now)
{
    const mlease *l;
    while ((l = lease_first(c)) != NULL)
        rec_finish(c, l->rec, R_ENDED);
    leases_reset_if_idle(c);
    c->value = 0;
    c->committed = 0;
    c->window_end = ee__counters_new_window_end(req, now);
}

/* Bring the counter to now: a new window if its ended, expired leases
 * given back. Doing it twice changes nothing the second time. */
static inline void settle(mcounter *c, const ee_counter_req *req, int64_t now)
{
    if (UNLIKELY(ee__counters_window_over(c->window_end, now)))
        rollover(c, req, now);
    expire(c, now);
}

/* ---- answers (under the counter's lock) --------------------------------------------------- */

static void fill(const mcounter *c, const ee_counter_req *req, ee_counter_result *res)
{
    *res = (ee_counter_result){.value = c->value,
                               .committed = c->committed,
                               .limit = req->limit,
                               .window_end_ms = c->window_end,
                               .fits = c->value <= req->limit - req->n};
}

static void fill_retry(const mcounter *c, const ee_counter_req *req, ee_counter_result *res)
{
    ee__counters_lease local[64], *leases = local;
    size_t count = live_count(c);
    if (count > sizeof local / sizeof local[0] &&
        (leases = malloc(count * sizeof *leases)) == NULL) {
        leases = local; /* without the list the answer falls back to the window's end */
        count = 0;
    }
    size_t n = 0, all = c->in_heap ? c->heap_n : fifo_len(c);
    for (size_t i = 0; i < all && n < count; i++) {
        const mlease *l = c->in_heap ? &c->heap[i] : fifo_seq(c, c->fifo_head + (uint32_t)i);
        if (l->rec != DEAD)
            leases[n++] = (ee__counters_lease){c->recs[l->rec].n, l->expires};
    }
    count = n;
    res->retry_at_ms = ee__counters_retry_at(c->committed, c->value - c->committed, req->n,
                                             req->limit, c->window_end, leases, count);
    if (leases != local)
        free(leases);
}

/* ---- reserve --------------------------------------------------------------------- */

/* The answer for a granted request. */
static inline void fill_granted(const mcounter *c, const ee_counter_req *req, uint64_t id,
                                ee_counter_result *res)
{
    *res = (ee_counter_result){.resv_id = id,
                               .value = c->value,
                               .committed = c->committed,
                               .limit = req->limit,
                               .window_end_ms = c->window_end,
                               .fits = 1};
}

/* decide() when some request does not fit or cannot take_fast(): the
 * refusal answers, or growing the record arrays first (ENOMEM when that
 * fails), or the general rec_take(). The counters are settled already. */
static COLD ee_status decide_slow(void *const *cs, const ee_counter_req *reqs,
                                  const int64_t *leases, size_t count, int64_t now,
                                  ee_counter_result *res, int *granted)
{
    bool all = true, room = true;
    for (size_t i = 0; i < count; i++) {
        mcounter *c = cs[i];
        all &= c->value <= reqs[i].limit - reqs[i].n;
        room &= recs_room(c);
    }
    if (!all) {
        for (size_t i = 0; i < count; i++) {
            fill(cs[i], &reqs[i], &res[i]);
            if (!res[i].fits)
                fill_retry(cs[i], &reqs[i], &res[i]);
        }
        *granted = 0;
        return EE_OK;
    }
    if (!room) {
        for (size_t i = 0; i < count; i++)
            fill(cs[i], &reqs[i], &res[i]);
        return ee__error(EE_ENOMEM, "out of memory recording a reservation");
    }
    for (size_t i = 0; i < count; i++) {
        mcounter *c = cs[i];
        uint64_t id = rec_take(c, reqs[i].n, now + leases[i]);
        c->value += reqs[i].n;
        fill_granted(c, &reqs[i], id, &res[i]);
    }
    *granted = 1;
    return EE_OK;
}

/* settle_check() for a counter whose window ended (or none began) or whose
 * leases are a heap. */
static COLD bool settle_check_slow(mcounter *c, const ee_counter_req *req, int64_t now,
                                   int64_t expires)
{
    settle(c, req, now);
    return c->value <= req->limit - req->n && can_take_fast(c, expires);
}

/* Settle the counter; whether req fits and can_take_fast() with a lease
 * ending at `expires`. Written out for the usual case: the window runs and
 * the leases are a FIFO. */
static inline bool settle_check(mcounter *c, const ee_counter_req *req, int64_t now,
                                int64_t expires)
{
    if (UNLIKELY(ee__counters_window_over(c->window_end, now) || c->in_heap))
        return settle_check_slow(c, req, now, expires);
    uint32_t head = c->fifo_head, tail = c->fifo_tail, mask = c->fifo_mask;
    const mlease *fifo = c->fifo;
    if (head != tail && fifo[head & mask].expires <= now) {
        /* one lease ended (a rate counter's usual case); more, or a dead
         * lease behind it, out of line */
        head = expire_head(c, head, mask);
        if (head != tail && (fifo[head & mask].rec == DEAD || fifo[head & mask].expires <= now))
            (void)expire_fifo(c, now);
    }
    return c->value <= req->limit - req->n && can_take_fast(c, expires);
}

/* Under every counter's lock: check all, then change all or nothing. The
 * first request that does not fit or cannot take_fast() hands over to
 * decide_slow(), the rest settled first. */
static ee_status decide(void *const *cs, const ee_counter_req *reqs, const int64_t *leases,
                        size_t count, int64_t now, ee_counter_result *res, int *granted)
{
    for (size_t i = 0; i < count; i++) {
        if (UNLIKELY(!settle_check(cs[i], &reqs[i], now, now + leases[i]))) {
            for (size_t j = i + 1; j < count; j++)
                settle(cs[j], &reqs[j], now);
            return decide_slow(cs, reqs, leases, count, now, res, granted);
        }
    }
    for (size_t i = 0; i < count; i++) {
        mcounter *c = cs[i];
        int64_t n = reqs[i].n;
        uint64_t id = take_fast(c, n, now + leases[i]);
        c->value += n;
        fill_granted(c, &reqs[i], id, &res[i]);
    }
    *granted = 1;
    return EE_OK;
}

/* The order in which m_reserve_leased() takes the locks of the counters
 * `handles` name (every one set): by address, so that no two reserves can
 * wait for each other. */
static void m_lock_order(void *const *handles, size_t count, uint8_t *order)
{
    for (size_t i = 0; i < count; i++) {
        size_t j = i;
        for (; j > 0 && (uintptr_t)handles[order[j - 1]] > (uintptr_t)handles[i]; j--)
            order[j] = order[j - 1];
        order[j] = (uint8_t)i;
    }
}

/* A call without a lock order (the wrapper's): the requests' counters, by
 * key where there is no handle, and their lock order. */
static ee_status counters_of(mem *m, const ee_counter_req *reqs, void *const *handles,
                             size_t count, void **cs, uint8_t *order)
{
    for (size_t i = 0; i < count; i++) {
        cs[i] = handles != NULL && handles[i] != NULL ? handles[i]
                                                      : get_or_create(m, reqs[i].key);
        if (cs[i] == NULL)
            return ee__error(EE_ENOMEM, "out of memory creating counter \"%s\"", reqs[i].key);
    }
    m_lock_order(cs, count, order);
    return EE_OK;
}

static ee_status m_reserve_leased(void *ctx, const ee_counter_req *reqs, void *const *handles,
                                  const uint8_t *order, const int64_t *leases, size_t count,
                                  int64_t now, ee_counter_result *res, int *granted)
{
    void *cs[EE_COUNTERS_MANY_MAX];
    uint8_t sorted[EE_COUNTERS_MANY_MAX];
    if (order == NULL) {
        ee_status st = counters_of(ctx, reqs, handles, count, cs, sorted);
        if (st != EE_OK)
            return st;
        handles = cs;
        order = sorted;
    }
    /* The wrapper checked (or ee__counters_check_prepared() did) that the
     * counters are distinct. */
    for (size_t k = 0; k < count; k++)
        c_lock(handles[order[k]]);
    ee_status st = decide(handles, reqs, leases, count, now, res, granted);
    for (size_t k = count; k > 0; k--)
        c_unlock(handles[order[k - 1]]);
    return st;
}

static ee_status m_resolve(void *ctx, const char *key, void **handle)
{
    *handle = get_or_create(ctx, key);
    return *handle != NULL ? EE_OK
                           : ee__error(EE_ENOMEM, "out of memory creating counter \"%s\"", key);
}

/* ---- commit, release, renew ------------------------------------------------------------ */

enum finish_kind { F_COMMIT, F_RELEASE, F_RENEW };

/* Under the lock: the live record `id` names, or an EE_ENOTFOUND answer. */
static ee_status find_live(mcounter *c, const char *key, uint64_t id, int64_t now,
                           uint32_t *out)
{
    uint32_t idx1 = (uint32_t)id;
    if (idx1 == 0 || idx1 > c->nrecs || c->recs[idx1 - 1].gen != (uint32_t)(id >> 32))
        return ee__counters_finish_answer(key, id, 0, EE__FINISH_UNKNOWN);
    uint32_t idx = idx1 - 1;
    mrec *r = &c->recs[idx];
    if (r->state == R_LIVE && ee__counters_window_over(c->window_end, now)) {
        /* The window ended and was not rolled over yet: it is reset as a
         * whole then, so nothing is given back now. */
        rec_finish(c, idx, R_ENDED);
    } else if (r->state == R_LIVE && r->expires <= now) {
        c->value -= r->n;
        rec_finish(c, idx, R_EXPIRED);
    }
    leases_reset_if_idle(c);
    *out = idx;
    return ee__counters_finish_answer(key, id, 0,
                                      r->state == R_LIVE      ? EE__FINISH_DONE
                                      : r->state == R_ENDED   ? EE__FINISH_WINDOW_ENDED
                                      : r->state == R_EXPIRED ? EE__FINISH_EXPIRED
                                                              : EE__FINISH_UNKNOWN);
}

static ee_status finish_locked(mcounter *c, const char *key, uint64_t id, enum finish_kind kind,
                               int64_t amount, int64_t lease, int64_t now)
{
    uint32_t idx = 0;
    ee_status st = find_live(c, key, id, now, &idx);
    if (st != EE_OK)
        return st;
    mrec *r = &c->recs[idx];
    if (kind == F_RENEW) {
        rec_renew(c, idx, now + lease);
        return EE_OK;
    }
    if (kind == F_COMMIT && amount > r->n)
        return ee__error(EE_EINVAL, "counter \"%s\": commit amount %lld exceeds the %lld "
                                    "reserved", key, (long long)amount, (long long)r->n);
    int64_t keep = kind == F_COMMIT ? (amount < 0 ? r->n : amount) : 0;
    c->committed += keep;
    c->value -= r->n - keep;
    rec_finish(c, idx, R_FREE);
    leases_reset_if_idle(c);
    return EE_OK;
}

static ee_status m_finish(mem *m, const char *key, uint64_t id, enum finish_kind kind,
                          int64_t amount, int64_t lease, int64_t now)
{
    mcounter *c = lookup(m, key);
    if (c == NULL)
        return ee__counters_not_found(key, id, "is unknown");
    c_lock(c);
    ee_status st = finish_locked(c, key, id, kind, amount, lease, now);
    c_unlock(c);
    return st;
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
    mcounter *c = lookup(ctx, key);
    if (c == NULL)
        return EE_OK;
    c_lock(c);
    if (!ee__counters_window_over(c->window_end, now)) {
        expire(c, now);
        out->value = c->value;
        out->committed = c->committed;
        out->window_end_ms = c->window_end;
    }
    c_unlock(c);
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
                free(c->recs);
                free(c->heap);
                free(c->fifo);
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
    free(m);
}

static const ee_counters_backend memory_table = {
    .version = EE_COUNTERS_BACKEND_VERSION,
    .flags = EE_COUNTERS_THREAD_SAFE,
    .reserve_many = NULL, /* the library calls ee__counters_memory_ext.reserve_leased */
    .commit = m_commit,
    .release = m_release,
    .renew = m_renew,
    .get = m_get,
    .free = m_free,
};

const ee__counters_ext ee__counters_memory_ext = {
    .resolve = m_resolve,
    .lock_order = m_lock_order,
    .reserve_leased = m_reserve_leased,
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
    *table = &memory_table;
    *ctx = m;
    return EE_OK;
}
