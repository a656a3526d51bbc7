/*
 * TEMPORARY stand-in, for the exec tests only, until the branches that
 * implement lib/exec/queue.h (i13-queue) and lib/gateway/gateway.h
 * (i13-gateway) are merged: the
 * smallest in-memory versions of their declarations, so the pipeline's
 * tests link. Include it in exactly one file per test executable; it is
 * removed when those branches are merged into i13-exec.
 */
#ifndef EE_TEST_EXEC_STANDIN_H
#define EE_TEST_EXEC_STANDIN_H

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/hmac.h>
#include <openssl/crypto.h>

#include "exec/queue.h"
#include "exec/support.h"
#include "gateway/gateway.h"

/* ---- queue ---------------------------------------------------------------------------- */

typedef struct sq_item {
    ee__queue_item it;
    bool claimed;
    int64_t avail_at;
    int64_t seq;
} sq_item;

static pthread_mutex_t sq_lock = PTHREAD_MUTEX_INITIALIZER;
static sq_item sq_items[4096];
static size_t sq_n;
static int64_t sq_seq;

ee_status ee__queue_push(ee_storage *storage, const char *workspace, const char *execution_id,
                         int64_t now_ms, uint64_t backlog_max)
{
    (void)storage;
    pthread_mutex_lock(&sq_lock);
    uint64_t waiting = 0;
    for (size_t i = 0; i < sq_n; i++)
        waiting += !sq_items[i].claimed;
    if ((backlog_max > 0 && waiting >= backlog_max) || sq_n >= 4096) {
        pthread_mutex_unlock(&sq_lock);
        return EE_EBUSY;
    }
    sq_item *q = &sq_items[sq_n++];
    memset(q, 0, sizeof *q);
    snprintf(q->it.id, sizeof q->it.id, "%024llx", (unsigned long long)++sq_seq);
    snprintf(q->it.execution_id, sizeof q->it.execution_id, "%s", execution_id);
    snprintf(q->it.workspace, sizeof q->it.workspace, "%s", workspace);
    q->it.revision = 1;
    q->avail_at = now_ms;
    q->seq = sq_seq;
    pthread_mutex_unlock(&sq_lock);
    return EE_OK;
}

ee_status ee__queue_claim(ee_storage *storage, const char *owner, int64_t now_ms, int64_t lease_ms,
                          ee__queue_item *out)
{
    (void)storage;
    (void)owner;
    pthread_mutex_lock(&sq_lock);
    for (size_t i = 0; i < sq_n; i++) {
        sq_item *q = &sq_items[i];
        bool free_ = !q->claimed ? q->avail_at <= now_ms : q->it.lease_until_ms <= now_ms;
        if (!free_)
            continue;
        q->claimed = true;
        q->it.attempts++;
        q->it.revision++;
        q->it.lease_until_ms = now_ms + lease_ms;
        *out = q->it;
        pthread_mutex_unlock(&sq_lock);
        return EE_OK;
    }
    pthread_mutex_unlock(&sq_lock);
    return EE_ENOTFOUND;
}

static sq_item *sq_find(const char *id)
{
    for (size_t i = 0; i < sq_n; i++)
        if (strcmp(sq_items[i].it.id, id) == 0)
            return &sq_items[i];
    return NULL;
}

ee_status ee__queue_renew(ee_storage *storage, ee__queue_item *item, int64_t now_ms,
                          int64_t lease_ms)
{
    (void)storage;
    pthread_mutex_lock(&sq_lock);
    sq_item *q = sq_find(item->id);
    ee_status st = q == NULL ? EE_ENOTFOUND : q->it.revision != item->revision ? EE_ECONFLICT
                                                                              : EE_OK;
    if (st == EE_OK) {
        q->it.revision++;
        q->it.lease_until_ms = now_ms + lease_ms;
        *item = q->it;
    }
    pthread_mutex_unlock(&sq_lock);
    return st;
}

ee_status ee__queue_release(ee_storage *storage, ee__queue_item *item, int64_t now_ms,
                            int64_t delay_ms)
{
    (void)storage;
    pthread_mutex_lock(&sq_lock);
    sq_item *q = sq_find(item->id);
    if (q != NULL) {
        q->claimed = false;
        q->avail_at = now_ms + delay_ms;
        q->it.revision++;
    }
    pthread_mutex_unlock(&sq_lock);
    return q != NULL ? EE_OK : EE_ENOTFOUND;
}

static void sq_drop(size_t i)
{
    sq_items[i] = sq_items[--sq_n];
}

ee_status ee__queue_done(ee_storage *storage, const ee__queue_item *item)
{
    (void)storage;
    pthread_mutex_lock(&sq_lock);
    for (size_t i = 0; i < sq_n; i++)
        if (strcmp(sq_items[i].it.id, item->id) == 0) {
            sq_drop(i);
            break;
        }
    pthread_mutex_unlock(&sq_lock);
    return EE_OK;
}

ee_status ee__queue_remove(ee_storage *storage, const char *workspace, const char *execution_id)
{
    (void)storage;
    pthread_mutex_lock(&sq_lock);
    ee_status st = EE_ENOTFOUND;
    for (size_t i = 0; i < sq_n; i++)
        if (strcmp(sq_items[i].it.execution_id, execution_id) == 0 &&
            strcmp(sq_items[i].it.workspace, workspace) == 0) {
            sq_drop(i);
            st = EE_OK;
            break;
        }
    pthread_mutex_unlock(&sq_lock);
    return st;
}

ee_status ee__queue_depth(ee_storage *storage, uint64_t *waiting_out, uint64_t *claimed_out)
{
    (void)storage;
    pthread_mutex_lock(&sq_lock);
    uint64_t w = 0, c = 0;
    for (size_t i = 0; i < sq_n; i++)
        sq_items[i].claimed ? c++ : w++;
    pthread_mutex_unlock(&sq_lock);
    *waiting_out = w;
    *claimed_out = c;
    return EE_OK;
}

/* ---- gateway ----------------------------------------------------------------------------- */

ee_status ee__gateway_grant(ee_engine *engine, const ee__gateway_grant_spec *spec,
                            char token_out[EE__GATEWAY_TOKEN_SIZE])
{
    (void)engine;
    snprintf(token_out, EE__GATEWAY_TOKEN_SIZE, "eeg_standin%.24s", spec->execution_id);
    return EE_OK;
}

ee_status ee__gateway_revoke(ee_engine *engine, const char *workspace, const char *execution_id)
{
    (void)engine, (void)workspace, (void)execution_id;
    return EE_OK;
}

ee_status ee__gateway_usage_of(ee_engine *engine, const char *workspace,
                               const char *execution_id, ee__gateway_usage *out)
{
    (void)engine, (void)workspace, (void)execution_id;
    memset(out, 0, sizeof *out);
    return EE_OK;
}

ee_status ee__gateway_calls(ee_engine *engine, const char *workspace, const char *execution_id,
                            ee__gateway_call_fn fn, void *payload)
{
    (void)engine, (void)workspace, (void)execution_id, (void)fn, (void)payload;
    return EE_OK;
}

const char *ee__gateway_url(ee_engine *engine)
{
    (void)engine;
    return "http://127.0.0.1:1/gw";
}

#endif
