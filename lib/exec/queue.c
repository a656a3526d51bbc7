/*
 * The durable execution queue (queue.h) over storage: items in the global
 * collection "executionQueue", two kinds of counters in
 * "executionQueueCounters".
 *
 * An item:
 *   executionId, workspaceId   what is queued (executionId is unique)
 *   state                      "waiting", "claimed" (or, for a moment,
 *                              "removing": see delete_item())
 *   round                      the fairness round, zero-padded decimal text
 *                              (indexed values compare as text)
 *   claimableAt                the time field: when the item may next be
 *                              claimed - queued: the enqueue time; claimed:
 *                              the lease's end; released: now + delay
 *   enqueuedAt, attempts, owner, leaseUntil
 * so a claim is one walk of the (round, claimableAt, id) index from its
 * start: the first item due, lowest round first, oldest first within it.
 *
 * Rounds. A workspace's items get consecutive rounds starting at the
 * round being served: round = max(base, last + 1), where `last` is the
 * workspace's last round (counter "round:<workspace>") and `base` the
 * round of the item a claim would take now. So a workspace's n-th waiting
 * item is in round base + n - 1: a workspace with 1,000 waiting items
 * delays another's first item by at most one item per round.
 *
 * Backlog. Counter "backlog" holds the number of waiting items; it is
 * reserved (+1, atomic) before an item is stored and returned (-1) when the
 * item leaves the waiting state, so any number of processes pushing at
 * once never pass backlog_max: each increment sees its own total, and a
 * total past the bound is undone and refused. Every step that could be
 * interrupted between the counter and the item is ordered so that a crash
 * leaves the counter too high (more conservative), never too low.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "exec/queue.h"
#include "storage/storage.h"

#define ITEMS "executionQueue"
#define COUNTERS "executionQueueCounters"
#define OWNER_MAX 128
#define ROUND_DIGITS 12

/* Status of the builder that only looks at the first item (never
 * returned to a caller). */
#define PEEKED ((ee_status)1)

/* ---- input checks ------------------------------------------------------------- */

static bool workspace_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_' || c == '.' || c == ':' || c == '@';
}

static ee_status check_workspace(const char *ws)
{
    if (ws == NULL || ws[0] == '\0')
        return ee__error(EE_EINVAL, "queue: a workspace is required");
    size_t n = strnlen(ws, EE_STORAGE_WORKSPACE_MAX + 1);
    if (n > EE_STORAGE_WORKSPACE_MAX)
        return ee__error(EE_EINVAL, "queue: workspace id is longer than %d bytes",
                         EE_STORAGE_WORKSPACE_MAX);
    for (size_t i = 0; i < n; i++)
        if (!workspace_char(ws[i]))
            return ee__error(EE_EINVAL,
                             "queue: workspace id has a character outside [A-Za-z0-9._:@-]");
    return EE_OK;
}

static ee_status check_execution(const char *id)
{
    if (id == NULL || id[0] == '\0')
        return ee__error(EE_EINVAL, "queue: an execution id is required");
    size_t n = strnlen(id, EE_STORAGE_ID_HEX_LEN + 1);
    if (n > EE_STORAGE_ID_HEX_LEN)
        return ee__error(EE_EINVAL, "queue: execution id is longer than %d characters",
                         EE_STORAGE_ID_HEX_LEN);
    for (size_t i = 0; i < n; i++)
        if (!workspace_char(id[i]))
            return ee__error(EE_EINVAL, "queue: execution id has a character outside "
                                        "[A-Za-z0-9._:@-]");
    return EE_OK;
}

static ee_status check_item(const ee__queue_item *item)
{
    if (item == NULL)
        return ee__error(EE_EINVAL, "queue: item is NULL");
    if (strnlen(item->id, sizeof item->id) != EE_STORAGE_ID_HEX_LEN || item->revision < 1)
        return ee__error(EE_EINVAL, "queue: the item was not filled by a claim");
    return EE_OK;
}

/* ---- counters ------------------------------------------------------------------- */

/* Add `delta` to counter `name`'s `field`; *total_out (may be NULL) the
 * value after. */
static ee_status counter_add(ee_storage *s, const char *name, const char *field, int64_t delta,
                             int64_t now_ms, int64_t *total_out)
{
    ee_storage_eq key = {"name", name};
    ee_storage_inc inc = {field, delta};
    int64_t total = 0;
    ee_status st = ee_storage_increment(s, COUNTERS, NULL, &key, 1, &inc, 1, now_ms, &total);
    if (st == EE_OK && total_out != NULL)
        *total_out = total;
    return st;
}

/* Give back the reservation of a waiting item. Best effort after the
 * item's own change succeeded: a failure leaves the counter too high. */
static void backlog_return(ee_storage *s, int64_t now_ms)
{
    int had = ee_error_last_status();
    char msg[EE__ERROR_MSG_MAX];
    snprintf(msg, sizeof msg, "%s", ee_error_last_message());
    if (counter_add(s, "backlog", "waiting", -1, now_ms, NULL) != EE_OK && had != EE_OK)
        ee__error((ee_status)had, "%s", msg); /* the caller's error stays the last one */
}

/* ---- documents ------------------------------------------------------------------- */

typedef struct item_doc {
    char execution_id[EE_STORAGE_ID_HEX_LEN + 1];
    char workspace[EE_STORAGE_WORKSPACE_MAX + 1];
    char round[ROUND_DIGITS + 8];
    char owner[OWNER_MAX + 1];
    bool waiting;
    int attempts;
    int64_t enqueued_at;
} item_doc;

static ee_status read_item(const uint8_t *data, size_t len, item_doc *out)
{
    memset(out, 0, sizeof *out);
    bson_t b;
    bson_iter_t it;
    if (!bson_init_static(&b, data, len) || !bson_iter_init(&it, &b))
        return ee__error(EE_ECORRUPT, "queue: a stored item is not a BSON document");
    bool have_exec = false, have_ws = false;
    while (bson_iter_next(&it)) {
        const char *k = bson_iter_key(&it);
        if (BSON_ITER_HOLDS_UTF8(&it)) {
            const char *v = bson_iter_utf8(&it, NULL);
            if (strcmp(k, "executionId") == 0)
                have_exec = snprintf(out->execution_id, sizeof out->execution_id, "%s", v) <
                            (int)sizeof out->execution_id;
            else if (strcmp(k, "workspaceId") == 0)
                have_ws = snprintf(out->workspace, sizeof out->workspace, "%s", v) <
                          (int)sizeof out->workspace;
            else if (strcmp(k, "round") == 0)
                snprintf(out->round, sizeof out->round, "%s", v);
            else if (strcmp(k, "state") == 0)
                out->waiting = strcmp(v, "waiting") == 0;
            else if (strcmp(k, "owner") == 0)
                snprintf(out->owner, sizeof out->owner, "%s", v);
        } else if (strcmp(k, "attempts") == 0 && BSON_ITER_HOLDS_INT32(&it)) {
            out->attempts = bson_iter_int32(&it);
        } else if (strcmp(k, "enqueuedAt") == 0 && BSON_ITER_HOLDS_DATE_TIME(&it)) {
            out->enqueued_at = bson_iter_date_time(&it);
        }
    }
    if (!have_exec || !have_ws || out->round[0] == '\0')
        return ee__error(EE_ECORRUPT, "queue: a stored item lacks its execution, workspace or "
                                      "round");
    return EE_OK;
}

static bool write_item(bson_t *out, const item_doc *d, const char *state, int64_t claimable_at,
                       const char *owner, int64_t lease_until)
{
    return BSON_APPEND_UTF8(out, "executionId", d->execution_id) &&
           BSON_APPEND_UTF8(out, "workspaceId", d->workspace) &&
           BSON_APPEND_UTF8(out, "state", state) && BSON_APPEND_UTF8(out, "round", d->round) &&
           BSON_APPEND_DATE_TIME(out, "claimableAt", claimable_at) &&
           BSON_APPEND_DATE_TIME(out, "enqueuedAt", d->enqueued_at) &&
           BSON_APPEND_INT32(out, "attempts", d->attempts) &&
           BSON_APPEND_UTF8(out, "owner", owner) &&
           BSON_APPEND_INT64(out, "leaseUntil", lease_until);
}

/* The claim filter: every item due at now_ms. */
static ee_storage_query_spec due(int64_t now_ms)
{
    ee_storage_query_spec q = {.version = EE_STORAGE_QUERY_VERSION,
                               .flags = EE_STORAGE_QUERY_TO,
                               .time_to = now_ms == INT64_MAX ? INT64_MAX : now_ms + 1};
    return q;
}

/* ---- push -------------------------------------------------------------------------- */

static ee_status peek_build(const ee_storage_row *row, bson_t *out, void *payload)
{
    (void)out;
    item_doc d;
    if (read_item(row->data, row->len, &d) == EE_OK)
        *(int64_t *)payload = strtoll(d.round, NULL, 10);
    return PEEKED;
}

/* The round a claim would serve now (0 when nothing is due). */
static ee_status base_round(ee_storage *s, int64_t now_ms, int64_t *out)
{
    ee_storage_query_spec q = due(now_ms);
    *out = 0;
    ee_status st = ee__storage_claim(s, ITEMS, NULL, &q, "round", peek_build, out, NULL, NULL);
    if (st == PEEKED || st == EE_ENOTFOUND) {
        ee_error_clear();
        return EE_OK;
    }
    return st;
}

typedef struct last_ctx {
    int64_t last;
} last_ctx;

static int last_row(const ee_storage_row *row, void *payload)
{
    bson_t b;
    bson_iter_t it;
    if (bson_init_static(&b, row->data, row->len) && bson_iter_init_find(&it, &b, "last") &&
        BSON_ITER_HOLDS_INT64(&it))
        ((last_ctx *)payload)->last = bson_iter_int64(&it);
    return 1;
}

/* The round of `ws`'s next item: max(base, last + 1), kept in the
 * workspace's counter. The counter is read (no write), then raised by the
 * difference: two pushes of one workspace at once each add at least 1, so
 * their rounds differ. */
static ee_status next_round(ee_storage *s, const char *ws, int64_t now_ms, int64_t *round_out)
{
    char name[EE_STORAGE_WORKSPACE_MAX + 8];
    snprintf(name, sizeof name, "round:%s", ws);
    int64_t base;
    ee_status st = base_round(s, now_ms, &base);
    ee_storage_eq eq = {"name", name};
    ee_storage_query_spec q = {.version = EE_STORAGE_QUERY_VERSION, .eq = &eq, .n_eq = 1,
                               .limit = 1};
    last_ctx lc = {0};
    if (st == EE_OK)
        st = ee_storage_query(s, COUNTERS, NULL, &q, last_row, &lc, NULL);
    if (st == EE_ECANCELLED)
        st = EE_OK; /* last_row stops after the one row */
    if (st != EE_OK)
        return st;
    int64_t last = lc.last;
    int64_t want = last + 1 > base ? last + 1 : base;
    return counter_add(s, name, "last", want - last, now_ms, round_out);
}

ee_status ee__queue_push(ee_storage *storage, const char *workspace, const char *execution_id,
                         int64_t now_ms, uint64_t backlog_max)
{
    ee_status st;
    if (storage == NULL)
        return ee__error(EE_EINVAL, "queue: storage is NULL");
    if ((st = check_workspace(workspace)) != EE_OK ||
        (st = check_execution(execution_id)) != EE_OK)
        return st;
    if (backlog_max > (uint64_t)INT64_MAX)
        backlog_max = 0;
    /* Reserve the place first: the bound holds whatever other processes do. */
    int64_t waiting = 0;
    if ((st = counter_add(storage, "backlog", "waiting", 1, now_ms, &waiting)) != EE_OK)
        return st;
    if (backlog_max > 0 && waiting > (int64_t)backlog_max) {
        backlog_return(storage, now_ms);
        return ee__error(EE_EBUSY, "execution backlog full (%" PRId64 " waiting)", waiting - 1);
    }
    int64_t round = 0;
    st = next_round(storage, workspace, now_ms, &round);
    bson_t doc = BSON_INITIALIZER;
    if (st == EE_OK) {
        item_doc d = {.waiting = true, .attempts = 0, .enqueued_at = now_ms};
        snprintf(d.execution_id, sizeof d.execution_id, "%s", execution_id);
        snprintf(d.workspace, sizeof d.workspace, "%s", workspace);
        snprintf(d.round, sizeof d.round, "%0*" PRId64, ROUND_DIGITS, round);
        if (!write_item(&doc, &d, "waiting", now_ms, "", 0))
            st = ee__error(EE_ENOMEM, "queue: out of memory building an item");
    }
    if (st == EE_OK) {
        st = ee_storage_insert(storage, ITEMS, NULL, bson_get_data(&doc), doc.len, NULL);
        if (st == EE_EEXISTS)
            st = ee__error(EE_EEXISTS, "queue: execution %s is already queued", execution_id);
    }
    bson_destroy(&doc);
    if (st != EE_OK)
        backlog_return(storage, now_ms);
    return st;
}

/* ---- claim ------------------------------------------------------------------------- */

typedef struct claim_ctx {
    const char *owner;
    int64_t now, lease_until;
    item_doc d;
    bool was_waiting;
} claim_ctx;

static ee_status claim_build(const ee_storage_row *row, bson_t *out, void *payload)
{
    claim_ctx *c = payload;
    ee_status st = read_item(row->data, row->len, &c->d);
    if (st != EE_OK)
        return st;
    c->was_waiting = c->d.waiting;
    if (c->d.attempts < INT32_MAX)
        c->d.attempts++;
    if (!write_item(out, &c->d, "claimed", c->lease_until, c->owner, c->lease_until))
        return ee__error(EE_ENOMEM, "queue: out of memory claiming an item");
    return EE_OK;
}

static int64_t add_ms(int64_t now_ms, int64_t ms)
{
    return ms > 0 && now_ms > INT64_MAX - ms ? INT64_MAX : now_ms + ms;
}

ee_status ee__queue_claim(ee_storage *storage, const char *owner, int64_t now_ms,
                          int64_t lease_ms, ee__queue_item *out)
{
    if (storage == NULL || owner == NULL || out == NULL)
        return ee__error(EE_EINVAL, "queue: NULL argument to claim");
    size_t n = strnlen(owner, OWNER_MAX + 1);
    if (n == 0 || n > OWNER_MAX)
        return ee__error(EE_EINVAL, "queue: the owner must be 1 to %d bytes", OWNER_MAX);
    if (lease_ms <= 0)
        return ee__error(EE_EINVAL, "queue: the lease must be positive, not %" PRId64 " ms",
                         lease_ms);
    claim_ctx c = {.owner = owner, .now = now_ms, .lease_until = add_ms(now_ms, lease_ms)};
    ee_storage_query_spec q = due(now_ms);
    char id[EE_STORAGE_ID_HEX_LEN + 1];
    int64_t rev = 0;
    ee_status st = ee__storage_claim(storage, ITEMS, NULL, &q, "round", claim_build, &c, id,
                                     &rev);
    if (st == EE_ENOTFOUND)
        return ee__error(EE_ENOTFOUND, "queue: nothing to claim");
    if (st != EE_OK)
        return st;
    /* An item whose earlier lease ran out was not waiting: its place in the
     * backlog was given back by its first claim. */
    if (c.was_waiting)
        backlog_return(storage, now_ms);
    memset(out, 0, sizeof *out);
    memcpy(out->id, id, sizeof out->id);
    snprintf(out->execution_id, sizeof out->execution_id, "%s", c.d.execution_id);
    snprintf(out->workspace, sizeof out->workspace, "%s", c.d.workspace);
    out->revision = rev;
    out->attempts = c.d.attempts;
    out->lease_until_ms = c.lease_until;
    return EE_OK;
}

/* ---- renew, release ------------------------------------------------------------------ */

/* Read the item if the caller still holds it: its revision is the claim's. */
static ee_status read_held(ee_storage *s, const ee__queue_item *item, item_doc *d)
{
    uint8_t *data = NULL;
    size_t len = 0;
    int64_t rev = 0;
    ee_status st = ee_storage_get(s, ITEMS, NULL, item->id, &data, &len, &rev);
    if (st == EE_ENOTFOUND)
        return ee__error(EE_ENOTFOUND, "queue: item of execution %s is gone",
                         item->execution_id);
    if (st != EE_OK)
        return st;
    if (rev != item->revision)
        st = ee__error(EE_ECONFLICT, "queue: the claim of execution %s was lost (revision %"
                       PRId64 ", held %" PRId64 ")", item->execution_id, rev, item->revision);
    else
        st = read_item(data, len, d);
    ee_free(data);
    return st;
}

static ee_status write_held(ee_storage *s, ee__queue_item *item, const item_doc *d,
                            const char *state, int64_t claimable_at, const char *owner,
                            int64_t lease_until)
{
    bson_t doc = BSON_INITIALIZER;
    ee_status st = EE_OK;
    if (!write_item(&doc, d, state, claimable_at, owner, lease_until))
        st = ee__error(EE_ENOMEM, "queue: out of memory writing an item");
    int64_t rev = 0;
    if (st == EE_OK)
        st = ee_storage_replace(s, ITEMS, NULL, item->id, item->revision, bson_get_data(&doc),
                                doc.len, &rev);
    bson_destroy(&doc);
    if (st == EE_ECONFLICT)
        st = ee__error(EE_ECONFLICT, "queue: the claim of execution %s was lost",
                       item->execution_id);
    if (st == EE_OK)
        item->revision = rev;
    return st;
}

/* Renew (the lease runs `ms` more from now) or release (back to waiting,
 * claimable `ms` from now) the claim `item` holds: the same checks and the
 * same revision-checked read and write, two different items after. */
static ee_status rehold(ee_storage *storage, ee__queue_item *item, int64_t now_ms, int64_t ms,
                        bool release)
{
    ee_status st;
    if (storage == NULL)
        return ee__error(EE_EINVAL, "queue: storage is NULL");
    if ((st = check_item(item)) != EE_OK)
        return st;
    if (!release && ms <= 0)
        return ee__error(EE_EINVAL, "queue: the lease must be positive, not %" PRId64 " ms",
                         ms);
    if (release && ms < 0)
        return ee__error(EE_EINVAL, "queue: the delay must not be negative");
    item_doc d;
    if ((st = read_held(storage, item, &d)) != EE_OK)
        return st;
    if (d.waiting)
        return ee__error(EE_ECONFLICT, "queue: execution %s is not claimed",
                         item->execution_id);
    if (!release) {
        int64_t until = add_ms(now_ms, ms);
        st = write_held(storage, item, &d, "claimed", until, d.owner, until);
        if (st == EE_OK)
            item->lease_until_ms = until;
        return st;
    }
    /* Back in the backlog: counted before it is waiting (a crash in
     * between leaves the counter high, never low). It is not refused: it
     * was admitted when pushed. */
    if ((st = counter_add(storage, "backlog", "waiting", 1, now_ms, NULL)) != EE_OK)
        return st;
    /* The released claim never ran the execution: it is not an attempt,
     * so the next claimer starts rather than recovers. */
    if (d.attempts > 0)
        d.attempts--;
    st = write_held(storage, item, &d, "waiting", add_ms(now_ms, ms), "", 0);
    if (st != EE_OK)
        backlog_return(storage, now_ms);
    else
        item->lease_until_ms = 0;
    return st;
}

ee_status ee__queue_renew(ee_storage *storage, ee__queue_item *item, int64_t now_ms,
                          int64_t lease_ms)
{
    return rehold(storage, item, now_ms, lease_ms, false);
}

ee_status ee__queue_release(ee_storage *storage, ee__queue_item *item, int64_t now_ms,
                            int64_t delay_ms)
{
    return rehold(storage, item, now_ms, delay_ms, true);
}

/* ---- done, remove, depth ------------------------------------------------------------- */

/* Delete the item `id`, read at revision `rev` as `d`. A waiting item
 * gives its place in the backlog back, exactly once: it is first taken out
 * of the claimable set by a revision-checked replace (state "removing",
 * never due), so a claimer that took it meanwhile (and gave the place back
 * itself) makes the replace fail and the item is read again. A claimed
 * item holds no place; if a release made it waiting after it was read,
 * the counter stays one too high (never too low). */
static ee_status delete_item(ee_storage *s, const char *id, int64_t rev, item_doc *d)
{
    for (int attempt = 0; d->waiting && attempt < 16; attempt++) {
        bson_t doc = BSON_INITIALIZER;
        ee_status st = write_item(&doc, d, "removing", INT64_MAX, "", 0)
                           ? ee_storage_replace(s, ITEMS, NULL, id, rev, bson_get_data(&doc),
                                                doc.len, NULL)
                           : ee__error(EE_ENOMEM, "queue: out of memory removing an item");
        bson_destroy(&doc);
        if (st == EE_OK) {
            st = ee_storage_delete(s, ITEMS, NULL, id);
            if (st == EE_OK || st == EE_ENOTFOUND)
                backlog_return(s, d->enqueued_at); /* no clock here: the counter's updatedAt */
            return st == EE_ENOTFOUND ? EE_OK : st;
        }
        if (st != EE_ECONFLICT)
            return st;
        uint8_t *data = NULL;
        size_t len = 0;
        if ((st = ee_storage_get(s, ITEMS, NULL, id, &data, &len, &rev)) != EE_OK)
            return st;
        st = read_item(data, len, d);
        ee_free(data);
        if (st != EE_OK)
            return st;
    }
    if (d->waiting)
        return ee__error(EE_EBUSY, "queue: item of execution %s kept changing; retry",
                         d->execution_id);
    return ee_storage_delete(s, ITEMS, NULL, id);
}

ee_status ee__queue_done(ee_storage *storage, const ee__queue_item *item)
{
    ee_status st;
    if (storage == NULL)
        return ee__error(EE_EINVAL, "queue: storage is NULL");
    if ((st = check_item(item)) != EE_OK)
        return st;
    uint8_t *data = NULL;
    size_t len = 0;
    int64_t rev = 0;
    st = ee_storage_get(storage, ITEMS, NULL, item->id, &data, &len, &rev);
    if (st == EE_ENOTFOUND) {
        ee_error_clear();
        return EE_OK;
    }
    if (st != EE_OK)
        return st;
    item_doc d;
    st = read_item(data, len, &d);
    ee_free(data);
    if (st == EE_OK)
        st = delete_item(storage, item->id, rev, &d);
    if (st == EE_ENOTFOUND) {
        ee_error_clear();
        st = EE_OK;
    }
    return st;
}

typedef struct find_ctx {
    char id[EE_STORAGE_ID_HEX_LEN + 1];
    int64_t revision;
    item_doc d;
    ee_status st;
    bool found;
} find_ctx;

static int find_row(const ee_storage_row *row, void *payload)
{
    find_ctx *f = payload;
    f->st = read_item(row->data, row->len, &f->d);
    ee__hex_encode(row->id, EE_STORAGE_ID_SIZE, f->id);
    f->revision = row->revision;
    f->found = f->st == EE_OK;
    return 1;
}

/* The item of `execution_id` in `workspace`: f->found tells. */
static ee_status find_item(ee_storage *storage, const char *workspace, const char *execution_id,
                           find_ctx *f)
{
    ee_status st;
    if (storage == NULL)
        return ee__error(EE_EINVAL, "queue: storage is NULL");
    if ((st = check_workspace(workspace)) != EE_OK ||
        (st = check_execution(execution_id)) != EE_OK)
        return st;
    ee_storage_eq eq = {"executionId", execution_id};
    ee_storage_query_spec q = {.version = EE_STORAGE_QUERY_VERSION, .eq = &eq, .n_eq = 1,
                               .limit = 1};
    *f = (find_ctx){.st = EE_OK};
    st = ee_storage_query(storage, ITEMS, NULL, &q, find_row, f, NULL);
    if (st == EE_ECANCELLED)
        st = f->st;
    /* Another workspace's execution is not found from this one. */
    if (st == EE_OK && f->found && strcmp(f->d.workspace, workspace) != 0)
        f->found = false;
    return st;
}

ee_status ee__queue_has(ee_storage *storage, const char *workspace, const char *execution_id,
                        bool *queued_out)
{
    if (queued_out == NULL)
        return ee__error(EE_EINVAL, "queue: NULL argument to has");
    *queued_out = false;
    find_ctx f;
    ee_status st = find_item(storage, workspace, execution_id, &f);
    if (st == EE_OK)
        *queued_out = f.found;
    return st;
}

ee_status ee__queue_remove(ee_storage *storage, const char *workspace, const char *execution_id)
{
    find_ctx f;
    ee_status st = find_item(storage, workspace, execution_id, &f);
    if (st != EE_OK)
        return st;
    if (!f.found)
        return ee__error(EE_ENOTFOUND, "queue: execution %s is not queued", execution_id);
    st = delete_item(storage, f.id, f.revision, &f.d);
    if (st == EE_ENOTFOUND)
        st = ee__error(EE_ENOTFOUND, "queue: execution %s is not queued", execution_id);
    return st;
}

typedef struct waiting_ctx {
    ee__queue_ref *refs;
    size_t n, max;
    ee_status st;
} waiting_ctx;

static int waiting_row(const ee_storage_row *row, void *payload)
{
    waiting_ctx *w = payload;
    item_doc d;
    if (read_item(row->data, row->len, &d) != EE_OK) {
        ee_error_clear(); /* a damaged item is the claimers' to report */
        return 0;
    }
    if (!d.waiting)
        return 0;
    ee__queue_ref *r = &w->refs[w->n++];
    memcpy(r->execution_id, d.execution_id, sizeof r->execution_id);
    memcpy(r->workspace, d.workspace, sizeof r->workspace);
    if (w->n < w->max)
        return 0;
    w->st = EE_ECANCELLED; /* enough: the walk stops, not an error */
    return 1;
}

ee_status ee__queue_waiting(ee_storage *storage, size_t max, ee__queue_ref **out, size_t *n_out)
{
    if (out != NULL)
        *out = NULL;
    if (n_out != NULL)
        *n_out = 0;
    if (storage == NULL || out == NULL || n_out == NULL || max == 0)
        return ee__error(EE_EINVAL, "queue: bad argument to waiting");
    waiting_ctx w = {.refs = calloc(max, sizeof *w.refs), .max = max};
    if (w.refs == NULL)
        return ee__error(EE_ENOMEM, "queue: out of memory listing %zu waiting items", max);
    ee_storage_eq eq = {"state", "waiting"};
    ee_storage_query_spec q = {.version = EE_STORAGE_QUERY_VERSION, .eq = &eq, .n_eq = 1,
                               .limit = EE_STORAGE_LIMIT_MAX};
    ee_status st = ee__storage_query_all(storage, ITEMS, NULL, &q, waiting_row, &w, &w.st);
    if (st == EE_ECANCELLED && w.st == EE_ECANCELLED) { /* waiting_row stopped at max */
        ee_error_clear();
        st = EE_OK;
    }
    if (st != EE_OK) {
        free(w.refs);
        return st;
    }
    *out = w.refs;
    *n_out = w.n;
    return EE_OK;
}

ee_status ee__queue_depth(ee_storage *storage, uint64_t *waiting_out, uint64_t *claimed_out)
{
    if (storage == NULL || waiting_out == NULL || claimed_out == NULL)
        return ee__error(EE_EINVAL, "queue: NULL argument to depth");
    ee_storage_eq eq = {"state", "waiting"};
    ee_storage_query_spec q = {.version = EE_STORAGE_QUERY_VERSION, .eq = &eq, .n_eq = 1};
    ee_status st = ee_storage_count(storage, ITEMS, NULL, &q, waiting_out);
    if (st != EE_OK)
        return st;
    eq.value = "claimed";
    return ee_storage_count(storage, ITEMS, NULL, &q, claimed_out);
}
