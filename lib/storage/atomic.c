/*
 * ee__storage_atomic() (storage.h): the writes of one step of the library's
 * own modules in one transaction of the backend (internal.h's
 * ee__storage_tx_ops), or - a custom backend - one call after another.
 */
#include <stdio.h>

#include "internal.h"
#include "storage.h"

/* The handle whose scope the calling thread is inside. */
static _Thread_local ee_storage *scope_of;

bool ee__storage_atomic_native(const ee_storage *s)
{
    void *ctx;
    return s != NULL && ee__storage_tx(s, &ctx) != NULL;
}

/* Roll back keeping fn's error as the thread's last one. */
static void roll_back(const ee__storage_tx_ops *tx, void *ctx, ee_status why)
{
    char msg[EE__ERROR_MSG_MAX];
    snprintf(msg, sizeof msg, "%s", ee_error_last_message());
    int had = ee_error_last_status();
    (void)tx->end(ctx, false);
    if (had == (int)why && why != EE_OK)
        ee__error(why, "%s", msg);
}

static ee_status atomic_scope(ee_storage *s, ee__storage_atomic_fn fn, void *payload,
                              unsigned flags)
{
    if (s == NULL || fn == NULL)
        return ee__error(EE_EINVAL, "ee__storage_atomic: NULL argument");
    if (scope_of == s)
        return fn(s, payload); /* nested: part of the outer scope */
    if (scope_of != NULL)
        return ee__error(EE_EINVAL, "storage: an atomic scope of another handle is open on this "
                                    "thread");
    void *ctx;
    const ee__storage_tx_ops *tx = ee__storage_tx(s, &ctx);
    if (tx == NULL)
        return fn(s, payload); /* a custom backend: each call atomic on its own */
    /* no log callback while the write lock is held (core.h, the hold) */
    ee__hold_begin();
    ee_status st = tx->begin(ctx, flags);
    if (st != EE_OK) {
        ee__hold_end();
        return st;
    }
    scope_of = s;
    st = fn(s, payload);
    scope_of = NULL;
    if (st != EE_OK)
        roll_back(tx, ctx, st);
    else
        st = tx->end(ctx, true);
    ee__hold_end();
    return st;
}

ee_status ee__storage_atomic(ee_storage *s, ee__storage_atomic_fn fn, void *payload)
{
    return atomic_scope(s, fn, payload, 0);
}

ee_status ee__storage_atomic_deferred(ee_storage *s, ee__storage_atomic_fn fn, void *payload)
{
    return atomic_scope(s, fn, payload, EE__STORAGE_DEFERRED);
}
