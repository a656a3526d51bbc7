/*
 * lib/exec/queue.h - the durable execution queue (semi-private: the
 * execution pipeline's workers; C types).
 *
 * Queued executions live in storage (collection "executionQueue"), not
 * only in memory, so a crash loses none and several processes sharing one
 * database share the queue. A worker claims an item with a lease; while it
 * runs the execution it renews the lease; when the execution has ended it
 * deletes the item. An item whose lease ran out (its worker died) can be
 * claimed again: `attempts` > 1 tells the new claimer to recover rather
 * than start.
 *
 * Claiming is one atomic step on every backend: PostgreSQL picks with
 * SELECT ... FOR UPDATE SKIP LOCKED (concurrent claimers never wait for or
 * get the same item), SQLite under its write lock, memory under a mutex,
 * a custom backend by revision-checked replace.
 *
 * Fairness: items are claimed round by round across workspaces (a
 * workspace's n-th waiting item is in round n), oldest first within a
 * round, so one workspace with 1,000 queued runs delays another
 * workspace's single run by at most one item.
 *
 * All calls are thread-safe; times are the engine clock's ms.
 */
#ifndef EE_EXEC_QUEUE_H
#define EE_EXEC_QUEUE_H

#include <stdbool.h>
#include <stdint.h>

#include "execengine/errors.h"
#include "execengine/storage.h"

typedef struct ee__queue_item {
    char id[EE_STORAGE_ID_HEX_LEN + 1];           /* the queue item */
    char execution_id[EE_STORAGE_ID_HEX_LEN + 1];
    char workspace[EE_STORAGE_WORKSPACE_MAX + 1];
    int64_t revision;                             /* for renew/done */
    int attempts;                                 /* claims so far, this one included
                                                     (a released claim does not count) */
    int64_t lease_until_ms;
} ee__queue_item;

/* Queue an execution of `workspace`. backlog_max > 0 bounds the number of
 * items waiting (not claimed) across all workspaces: past it EE_EBUSY
 * "execution backlog full (N waiting)", nothing queued. Returns EE_OK,
 * EE_EBUSY, EE_EEXISTS (already queued), EE_EINVAL, storage statuses. */
ee_status ee__queue_push(ee_storage *storage, const char *workspace, const char *execution_id,
                         int64_t now_ms, uint64_t backlog_max);

/* Claim the next item for `owner` (a text naming this process and
 * worker, at most 128 bytes) until now_ms + lease_ms. Returns EE_OK (*out
 * filled), EE_ENOTFOUND (nothing claimable now), EE_EINVAL, storage
 * statuses. */
ee_status ee__queue_claim(ee_storage *storage, const char *owner, int64_t now_ms,
                          int64_t lease_ms, ee__queue_item *out);

/* Extend a claimed item's lease to now_ms + lease_ms (item->revision and
 * lease_until_ms updated). EE_ECONFLICT or EE_ENOTFOUND: the claim was
 * lost (the lease ran out and another claimed it, or it was removed). */
ee_status ee__queue_renew(ee_storage *storage, ee__queue_item *item, int64_t now_ms,
                          int64_t lease_ms);

/* Give a claimed item back, claimable again from now_ms + delay_ms (a
 * per-user concurrency limit is full: try later). Its round is kept. */
ee_status ee__queue_release(ee_storage *storage, ee__queue_item *item, int64_t now_ms,
                            int64_t delay_ms);

/* The execution has ended: delete its item. EE_OK also when it was gone. */
ee_status ee__queue_done(ee_storage *storage, const ee__queue_item *item);

/* Remove the item of a cancelled execution, whether claimed or not.
 * EE_OK; EE_ENOTFOUND (no item). */
ee_status ee__queue_remove(ee_storage *storage, const char *workspace,
                           const char *execution_id);

/* Whether `execution_id` of `workspace` still has an item (queued, claimed,
 * or ended and not yet accounted). EE_OK; EE_EINVAL, storage statuses. */
ee_status ee__queue_has(ee_storage *storage, const char *workspace, const char *execution_id,
                        bool *queued_out);

/* Items waiting (claimable or delayed) and claimed, all workspaces. */
/* An execution waiting in the queue (not claimed). */
typedef struct ee__queue_ref {
    char execution_id[EE_STORAGE_ID_HEX_LEN + 1];
    char workspace[EE_STORAGE_WORKSPACE_MAX + 1];
} ee__queue_ref;

/* The executions waiting in the queue (state "waiting": never claimed, or
 * given back), at most `max`: *out (free()) and *n_out. Returns EE_OK,
 * EE_EINVAL, EE_ENOMEM, storage statuses. */
ee_status ee__queue_waiting(ee_storage *storage, size_t max, ee__queue_ref **out, size_t *n_out);

ee_status ee__queue_depth(ee_storage *storage, uint64_t *waiting_out, uint64_t *claimed_out);

#endif
