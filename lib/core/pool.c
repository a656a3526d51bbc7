/* Connection pool shared by the SQL backends (pool.h). */
#include "core/pool.h"

#include <stdlib.h>

#include "core/core.h"

ee_status ee__pool_init(ee__pool *p, const ee__pool_ops *ops, void *owner, size_t max,
                        size_t idle_cap)
{
    *p = (ee__pool){.owner = owner, .max = max, .idle_cap = idle_cap};
    p->idle = calloc(idle_cap ? idle_cap : 1, sizeof *p->idle);
    if (p->idle == NULL)
        return ee__error(EE_ENOMEM, "out of memory creating a connection pool");
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->ops = ops;
    return EE_OK;
}

void ee__pool_destroy(ee__pool *p)
{
    if (p->ops == NULL)
        return;
    for (size_t i = 0; i < p->nidle; i++)
        p->ops->close(p->owner, p->idle[i]);
    free(p->idle);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    p->ops = NULL;
}

ee_status ee__pool_take(ee__pool *p, void **conn)
{
    pthread_mutex_lock(&p->mu);
    while (p->nidle == 0 && p->max != 0 && p->total >= p->max)
        pthread_cond_wait(&p->cv, &p->mu);
    if (p->nidle > 0) {
        *conn = p->idle[--p->nidle];
        pthread_mutex_unlock(&p->mu);
        return EE_OK;
    }
    p->total++;
    pthread_mutex_unlock(&p->mu);
    ee_status st = p->ops->open(p->owner, conn);
    if (st != EE_OK) {
        pthread_mutex_lock(&p->mu);
        p->total--;
        pthread_cond_signal(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    return st;
}

void ee__pool_give(ee__pool *p, void *conn)
{
    if (conn == NULL)
        return;
    bool reuse = p->ops->reuse == NULL || p->ops->reuse(p->owner, conn);
    pthread_mutex_lock(&p->mu);
    if (reuse && p->nidle < p->idle_cap) {
        p->idle[p->nidle++] = conn;
        conn = NULL;
    } else {
        p->total--;
    }
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    if (conn != NULL)
        p->ops->close(p->owner, conn);
}
