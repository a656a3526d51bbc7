/*
 * lib/core/pool.h - a pool of connections for the SQL backends (sqlite and
 * postgres storage, the counters' SQL backend): at most `max` open at once
 * (0: no cap; takers wait for one to come back), at most `idle_cap` kept
 * idle (others are closed when given back). Connections are opened outside
 * the lock. Thread-safe.
 */
#ifndef EE_CORE_POOL_H
#define EE_CORE_POOL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "execengine/errors.h"

typedef struct {
    ee_status (*open)(void *owner, void **conn);
    void (*close)(void *owner, void *conn);
    /* Called on each connection given back: undo what a failed call left
     * behind (an open transaction) and say whether it can serve again.
     * NULL: always reusable. */
    bool (*reuse)(void *owner, void *conn);
} ee__pool_ops;

typedef struct {
    const ee__pool_ops *ops; /* NULL until ee__pool_init() succeeds */
    void *owner;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    void **idle;
    size_t nidle, idle_cap;
    size_t total, max;
} ee__pool;

/* Returns EE_OK or EE_ENOMEM (the pool is then left uninitialised). */
ee_status ee__pool_init(ee__pool *p, const ee__pool_ops *ops, void *owner, size_t max,
                        size_t idle_cap);
/* Close the idle connections and free the pool's memory. Every taken
 * connection must have been given back. Accepts an uninitialised pool. */
void ee__pool_destroy(ee__pool *p);
/* An idle connection, or a new one; waits while `max` are out. Returns
 * EE_OK or the open hook's status. */
ee_status ee__pool_take(ee__pool *p, void **conn);
/* Give a taken connection back (NULL is ignored). */
void ee__pool_give(ee__pool *p, void *conn);

#endif
