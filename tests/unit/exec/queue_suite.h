/*
 * The execution queue's suite (lib/exec/queue.h), written once. A test file
 * defines
 *     #define QUEUE_SUITE <name>
 *     static ee_storage *queue_open(void);   a fresh, empty store
 *     static void queue_cleanup(void);       remove what queue_open made
 * and includes this header (queue_memory.c, queue_sqlite.c,
 * queue_custom.c).
 */
#ifndef EE_TEST_EXEC_QUEUE_SUITE_H
#define EE_TEST_EXEC_QUEUE_SUITE_H

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec/queue.h"
#include "execengine/storage.h"

static ee_storage *Q;

static void queue_setup(void)
{
    Q = queue_open();
    cr_assert_not_null(Q, "queue_open failed: %s", ee_error_last_message());
}

static void queue_teardown(void)
{
    ee_storage_free(Q);
    Q = NULL;
    queue_cleanup();
}

TestSuite(QUEUE_SUITE, .init = queue_setup, .fini = queue_teardown, .timeout = 120);

#define QT0 1700000000000LL
#define LEASE 30000

static void push_ok(const char *ws, const char *exec, int64_t now)
{
    ee_status st = ee__queue_push(Q, ws, exec, now, 0);
    cr_assert_eq(st, EE_OK, "push %s/%s: %s %s", ws, exec, ee_status_name(st),
                 ee_error_last_message());
}

static ee__queue_item claim_ok(const char *owner, int64_t now, int64_t lease)
{
    ee__queue_item it;
    memset(&it, 0x5a, sizeof it);
    ee_status st = ee__queue_claim(Q, owner, now, lease, &it);
    cr_assert_eq(st, EE_OK, "claim: %s %s", ee_status_name(st), ee_error_last_message());
    return it;
}

static void depth_is(uint64_t waiting, uint64_t claimed)
{
    uint64_t w = 99, c = 99;
    cr_assert_eq(ee__queue_depth(Q, &w, &c), EE_OK, "%s", ee_error_last_message());
    cr_expect_eq(w, waiting, "waiting %llu, want %llu", (unsigned long long)w,
                 (unsigned long long)waiting);
    cr_expect_eq(c, claimed, "claimed %llu, want %llu", (unsigned long long)c,
                 (unsigned long long)claimed);
}

/* ---- push and claim ------------------------------------------------------------ */

Test(QUEUE_SUITE, claim_takes_the_oldest_and_fills_the_item)
{
    push_ok("ws-a", "exec-1", QT0);
    push_ok("ws-a", "exec-2", QT0 + 1);
    push_ok("ws-b", "exec-3", QT0 + 2);
    depth_is(3, 0);
    ee__queue_item it = claim_ok("host-1/worker-0", QT0 + 10, LEASE);
    cr_expect_str_eq(it.execution_id, "exec-1");
    cr_expect_str_eq(it.workspace, "ws-a");
    cr_expect_eq(strlen(it.id), EE_STORAGE_ID_HEX_LEN);
    cr_expect_eq(it.attempts, 1);
    cr_expect_eq(it.lease_until_ms, QT0 + 10 + LEASE);
    cr_expect_geq(it.revision, 2);
    depth_is(2, 1);
    /* Round 1 of ws-b (exec-3) comes before round 2 of ws-a (exec-2). */
    it = claim_ok("host-1/worker-1", QT0 + 10, LEASE);
    cr_expect_str_eq(it.execution_id, "exec-3");
    it = claim_ok("host-1/worker-1", QT0 + 10, LEASE);
    cr_expect_str_eq(it.execution_id, "exec-2");
    ee__queue_item none;
    cr_expect_eq(ee__queue_claim(Q, "w", QT0 + 10, LEASE, &none), EE_ENOTFOUND);
    depth_is(0, 3);
}

Test(QUEUE_SUITE, items_are_claimable_from_their_push_time)
{
    push_ok("ws-a", "exec-1", QT0 + 100);
    ee__queue_item it;
    cr_expect_eq(ee__queue_claim(Q, "w", QT0 + 99, LEASE, &it), EE_ENOTFOUND);
    it = claim_ok("w", QT0 + 100, LEASE);
    cr_expect_str_eq(it.execution_id, "exec-1");
}

Test(QUEUE_SUITE, input_is_checked)
{
    push_ok("ws-a", "exec-1", QT0);
    cr_expect_eq(ee__queue_push(Q, "ws-a", "exec-1", QT0, 0), EE_EEXISTS);
    cr_expect_eq(ee__queue_push(Q, "ws-b", "exec-1", QT0, 0), EE_EEXISTS,
                 "an execution is queued once, whatever the workspace");
    cr_expect_eq(ee__queue_push(Q, NULL, "exec-2", QT0, 0), EE_EINVAL);
    cr_expect_eq(ee__queue_push(Q, "", "exec-2", QT0, 0), EE_EINVAL);
    cr_expect_eq(ee__queue_push(Q, "ws a", "exec-2", QT0, 0), EE_EINVAL);
    cr_expect_eq(ee__queue_push(Q, "ws-a", "0123456789abcdef012345678", QT0, 0), EE_EINVAL);
    cr_expect_eq(ee__queue_push(Q, "ws-a", NULL, QT0, 0), EE_EINVAL);
    cr_expect_eq(ee__queue_push(NULL, "ws-a", "exec-2", QT0, 0), EE_EINVAL);
    char owner[200];
    memset(owner, 'o', sizeof owner - 1);
    owner[sizeof owner - 1] = '\0';
    ee__queue_item it;
    cr_expect_eq(ee__queue_claim(Q, owner, QT0, LEASE, &it), EE_EINVAL);
    cr_expect_eq(ee__queue_claim(Q, "", QT0, LEASE, &it), EE_EINVAL);
    cr_expect_eq(ee__queue_claim(Q, "w", QT0, 0, &it), EE_EINVAL);
    cr_expect_eq(ee__queue_claim(Q, "w", QT0, LEASE, NULL), EE_EINVAL);
    depth_is(1, 0);
}

/* ---- backlog -------------------------------------------------------------------- */

Test(QUEUE_SUITE, backlog_bound_is_exact)
{
    for (int i = 0; i < 5; i++) {
        char exec[16];
        snprintf(exec, sizeof exec, "exec-%d", i);
        cr_assert_eq(ee__queue_push(Q, "ws-a", exec, QT0 + i, 5), EE_OK, "%s",
                     ee_error_last_message());
    }
    cr_expect_eq(ee__queue_push(Q, "ws-b", "exec-x", QT0 + 9, 5), EE_EBUSY);
    cr_expect_str_eq(ee_error_last_message(), "execution backlog full (5 waiting)");
    depth_is(5, 0);
    /* A claimed item is not waiting: there is room for one more. */
    ee__queue_item it = claim_ok("w", QT0 + 10, LEASE);
    cr_expect_eq(ee__queue_push(Q, "ws-b", "exec-x", QT0 + 10, 5), EE_OK, "%s",
                 ee_error_last_message());
    cr_expect_eq(ee__queue_push(Q, "ws-b", "exec-y", QT0 + 10, 5), EE_EBUSY);
    /* A released item was admitted: it goes back even past the bound, and
     * holds its place. */
    cr_expect_eq(ee__queue_release(Q, &it, QT0 + 11, 0), EE_OK, "%s", ee_error_last_message());
    depth_is(6, 0);
    cr_expect_eq(ee__queue_push(Q, "ws-b", "exec-y", QT0 + 12, 6), EE_EBUSY);
    /* Removing and finishing items gives their places back. */
    cr_expect_eq(ee__queue_remove(Q, "ws-a", "exec-1"), EE_OK, "%s", ee_error_last_message());
    cr_expect_eq(ee__queue_push(Q, "ws-b", "exec-y", QT0 + 12, 6), EE_OK);
    it = claim_ok("w", QT0 + 20, LEASE);
    cr_expect_eq(ee__queue_done(Q, &it), EE_OK);
    depth_is(5, 0);
    cr_expect_eq(ee__queue_push(Q, "ws-b", "exec-z", QT0 + 21, 6), EE_OK);
    cr_expect_eq(ee__queue_push(Q, "ws-b", "exec-w", QT0 + 21, 6), EE_EBUSY);
    /* A refused or duplicate push takes no place. */
    cr_expect_eq(ee__queue_push(Q, "ws-b", "exec-z", QT0 + 21, 7), EE_EEXISTS);
    cr_expect_eq(ee__queue_push(Q, "ws-b", "exec-w", QT0 + 21, 7), EE_OK);
    depth_is(7, 0);
}

#define PUSHERS 6
#define PER_PUSHER 20
#define BOUND 50

typedef struct pusher {
    int id, ok, busy;
    ee_status failure;
} pusher;

static void *push_work(void *arg)
{
    pusher *p = arg;
    for (int i = 0; i < PER_PUSHER; i++) {
        char exec[24];
        snprintf(exec, sizeof exec, "t%d-%d", p->id, i);
        ee_status st = ee__queue_push(Q, "ws-a", exec, QT0 + i, BOUND);
        if (st == EE_OK)
            p->ok++;
        else if (st == EE_EBUSY)
            p->busy++;
        else
            p->failure = st;
    }
    return NULL;
}

Test(QUEUE_SUITE, concurrent_pushes_never_pass_the_bound)
{
    pthread_t t[PUSHERS];
    pusher p[PUSHERS];
    for (int i = 0; i < PUSHERS; i++) {
        p[i] = (pusher){.id = i, .failure = EE_OK};
        cr_assert_eq(pthread_create(&t[i], NULL, push_work, &p[i]), 0);
    }
    int ok = 0;
    for (int i = 0; i < PUSHERS; i++) {
        pthread_join(t[i], NULL);
        cr_expect_eq(p[i].failure, EE_OK, "pusher %d: %s", i, ee_status_name(p[i].failure));
        ok += p[i].ok;
    }
    cr_expect_eq(ok, BOUND, "%d pushes were accepted with a bound of %d", ok, BOUND);
    depth_is(BOUND, 0);
}

/* ---- fairness -------------------------------------------------------------------- */

static void push_many(const char *ws, int n, int64_t t0)
{
    for (int i = 0; i < n; i++) {
        char exec[24];
        snprintf(exec, sizeof exec, "%s-%d", ws, i);
        push_ok(ws, exec, t0 + i);
    }
}

Test(QUEUE_SUITE, a_single_run_waits_behind_at_most_one_item)
{
    push_many("A", 1000, QT0);
    push_ok("B", "B-0", QT0 + 2000);
    ee__queue_item first = claim_ok("w", QT0 + 3000, LEASE);
    ee__queue_item second = claim_ok("w", QT0 + 3000, LEASE);
    cr_expect_str_eq(first.execution_id, "A-0");
    cr_expect_str_eq(second.execution_id, "B-0", "B's item comes second");
    /* then A in its order */
    ee__queue_item third = claim_ok("w", QT0 + 3000, LEASE);
    cr_expect_str_eq(third.execution_id, "A-1");
}

Test(QUEUE_SUITE, claims_interleave_by_rounds)
{
    push_many("A", 1000, QT0);
    push_many("B", 10, QT0 + 2000);
    push_ok("C", "C-0", QT0 + 3000);
    /* round 1: A B C; rounds 2..10: A B; then A alone. */
    char want[64][16];
    int n = 0;
    snprintf(want[n++], 16, "A-0");
    snprintf(want[n++], 16, "B-0");
    snprintf(want[n++], 16, "C-0");
    for (int r = 1; r < 10; r++) {
        snprintf(want[n++], 16, "A-%d", r);
        snprintf(want[n++], 16, "B-%d", r);
    }
    for (int r = 10; r < 15; r++)
        snprintf(want[n++], 16, "A-%d", r);
    for (int i = 0; i < n; i++) {
        ee__queue_item it = claim_ok("w", QT0 + 5000, LEASE);
        cr_expect_str_eq(it.execution_id, want[i], "claim %d", i);
    }
    /* A workspace arriving now starts at the round being served. */
    push_ok("D", "D-0", QT0 + 6000);
    push_ok("D", "D-1", QT0 + 6001);
    ee__queue_item it = claim_ok("w", QT0 + 7000, LEASE);
    cr_expect_str_eq(it.execution_id, "A-15");
    it = claim_ok("w", QT0 + 7000, LEASE);
    cr_expect_str_eq(it.execution_id, "D-0", "D's first item is in the current round");
    it = claim_ok("w", QT0 + 7000, LEASE);
    cr_expect_str_eq(it.execution_id, "A-16");
    it = claim_ok("w", QT0 + 7000, LEASE);
    cr_expect_str_eq(it.execution_id, "D-1");
}

/* ---- leases ---------------------------------------------------------------------- */

Test(QUEUE_SUITE, a_lease_that_ran_out_is_claimed_again)
{
    push_ok("ws-a", "exec-1", QT0);
    ee__queue_item old = claim_ok("dead-worker", QT0, 100);
    ee__queue_item none;
    cr_expect_eq(ee__queue_claim(Q, "w2", QT0 + 99, 100, &none), EE_ENOTFOUND);
    ee__queue_item again = claim_ok("w2", QT0 + 100, 100);
    cr_expect_str_eq(again.execution_id, "exec-1");
    cr_expect_str_eq(again.id, old.id);
    cr_expect_eq(again.attempts, 2, "the new claimer sees it must recover");
    depth_is(0, 1);
    /* The first worker lost its claim. */
    ee__queue_item stale = old;
    ee_status st = ee__queue_renew(Q, &stale, QT0 + 101, 100);
    cr_expect(st == EE_ECONFLICT || st == EE_ENOTFOUND, "renew: %s", ee_status_name(st));
    stale = old;
    st = ee__queue_release(Q, &stale, QT0 + 101, 0);
    cr_expect(st == EE_ECONFLICT || st == EE_ENOTFOUND, "release: %s", ee_status_name(st));
    cr_expect_eq(ee__queue_renew(Q, &again, QT0 + 150, 100), EE_OK, "%s",
                 ee_error_last_message());
    cr_expect_eq(again.lease_until_ms, QT0 + 250);
    cr_expect_eq(ee__queue_done(Q, &again), EE_OK);
    depth_is(0, 0);
    /* Renewing a removed item. */
    st = ee__queue_renew(Q, &again, QT0 + 160, 100);
    cr_expect_eq(st, EE_ENOTFOUND);
    cr_expect_eq(ee__queue_done(Q, &again), EE_OK, "done is idempotent");
}

Test(QUEUE_SUITE, renew_extends_the_lease)
{
    push_ok("ws-a", "exec-1", QT0);
    ee__queue_item it = claim_ok("w", QT0, 100);
    int64_t rev = it.revision;
    cr_assert_eq(ee__queue_renew(Q, &it, QT0 + 90, 100), EE_OK, "%s", ee_error_last_message());
    cr_expect_eq(it.lease_until_ms, QT0 + 190);
    cr_expect_gt(it.revision, rev);
    ee__queue_item other;
    cr_expect_eq(ee__queue_claim(Q, "w2", QT0 + 150, 100, &other), EE_ENOTFOUND);
    other = claim_ok("w2", QT0 + 190, 100);
    cr_expect_eq(other.attempts, 2);
}

Test(QUEUE_SUITE, renew_and_release_check_their_arguments_and_the_claim)
{
    push_ok("ws-a", "exec-1", QT0);
    ee__queue_item it = claim_ok("w", QT0, 100);
    ee__queue_item copy = it;
    cr_expect_eq(ee__queue_renew(NULL, &copy, QT0 + 1, 100), EE_EINVAL);
    cr_expect_eq(ee__queue_release(NULL, &copy, QT0 + 1, 0), EE_EINVAL);
    cr_expect_eq(ee__queue_renew(Q, &copy, QT0 + 1, 0), EE_EINVAL, "a lease must be positive");
    cr_expect_eq(ee__queue_renew(Q, &copy, QT0 + 1, -5), EE_EINVAL);
    cr_expect_eq(ee__queue_release(Q, &copy, QT0 + 1, -1), EE_EINVAL,
                 "a delay must not be negative");
    cr_expect_eq(copy.revision, it.revision, "a refused call changes nothing");
    cr_expect_eq(copy.lease_until_ms, it.lease_until_ms);
    depth_is(0, 1);
    /* Released (a zero delay is allowed): the item is waiting, so neither
     * call finds a claim to work on with the new revision. */
    cr_assert_eq(ee__queue_release(Q, &it, QT0 + 2, 0), EE_OK, "%s", ee_error_last_message());
    cr_expect_eq(it.lease_until_ms, 0);
    depth_is(1, 0);
    ee__queue_item waiting = it;
    cr_expect_eq(ee__queue_renew(Q, &waiting, QT0 + 3, 100), EE_ECONFLICT);
    cr_expect_not_null(strstr(ee_error_last_message(), "is not claimed"), "%s",
                       ee_error_last_message());
    cr_expect_eq(ee__queue_release(Q, &waiting, QT0 + 3, 0), EE_ECONFLICT);
    cr_expect_not_null(strstr(ee_error_last_message(), "is not claimed"), "%s",
                       ee_error_last_message());
    depth_is(1, 0);
}

Test(QUEUE_SUITE, release_with_delay_keeps_the_round)
{
    push_many("A", 3, QT0);       /* rounds 1 2 3 */
    push_ok("B", "B-0", QT0 + 10); /* round 1 */
    ee__queue_item a0 = claim_ok("w", QT0 + 20, LEASE);
    cr_assert_str_eq(a0.execution_id, "A-0");
    cr_assert_eq(ee__queue_release(Q, &a0, QT0 + 20, 1000), EE_OK, "%s",
                 ee_error_last_message());
    depth_is(4, 0);
    ee__queue_item it = claim_ok("w", QT0 + 21, LEASE);
    cr_expect_str_eq(it.execution_id, "B-0", "A-0 is delayed");
    it = claim_ok("w", QT0 + 21, LEASE);
    cr_expect_str_eq(it.execution_id, "A-1");
    ee__queue_item none;
    cr_expect_eq(ee__queue_claim(Q, "w", QT0 + 1019, LEASE, &none), EE_OK);
    cr_expect_str_eq(none.execution_id, "A-2");
    push_ok("A", "A-3", QT0 + 1019); /* round 4 */
    it = claim_ok("w", QT0 + 1020, LEASE);
    cr_expect_str_eq(it.execution_id, "A-0", "round 1 still comes before round 4");
    cr_expect_eq(it.attempts, 1, "a released claim is not an attempt");
}

Test(QUEUE_SUITE, remove_takes_a_cancelled_execution_out)
{
    push_ok("ws-a", "exec-1", QT0);
    push_ok("ws-a", "exec-2", QT0 + 1);
    cr_expect_eq(ee__queue_remove(Q, "ws-b", "exec-1"), EE_ENOTFOUND,
                 "another workspace's execution");
    cr_expect_eq(ee__queue_remove(Q, "ws-a", "exec-1"), EE_OK, "%s", ee_error_last_message());
    cr_expect_eq(ee__queue_remove(Q, "ws-a", "exec-1"), EE_ENOTFOUND);
    depth_is(1, 0);
    ee__queue_item it = claim_ok("w", QT0 + 5, LEASE);
    cr_expect_str_eq(it.execution_id, "exec-2");
    cr_expect_eq(ee__queue_remove(Q, "ws-a", "exec-2"), EE_OK, "a claimed one too");
    depth_is(0, 0);
    cr_expect_eq(ee__queue_renew(Q, &it, QT0 + 6, LEASE), EE_ENOTFOUND);
    /* The execution may be queued again. */
    push_ok("ws-a", "exec-1", QT0 + 7);
    depth_is(1, 0);
}

/* ---- the backlog counter stays exact under races ------------------------------------ */

#define RACE_ITEMS 200

static void *race_claimer(void *arg)
{
    int *claimed = arg;
    for (;;) {
        ee__queue_item it;
        ee_status st = ee__queue_claim(Q, "racer", QT0 + 10 * RACE_ITEMS, LEASE, &it);
        if (st == EE_ENOTFOUND)
            return NULL;
        if (st == EE_OK) {
            (*claimed)++;
            (void)ee__queue_done(Q, &it); /* also EE_OK when the remover was first */
        }
    }
}

static void *race_remover(void *arg)
{
    int *removed = arg;
    for (int i = RACE_ITEMS - 1; i >= 0; i--) {
        char exec[24];
        snprintf(exec, sizeof exec, "r-%d", i);
        if (ee__queue_remove(Q, "ws-a", exec) == EE_OK)
            (*removed)++;
    }
    return NULL;
}

Test(QUEUE_SUITE, removes_racing_claims_keep_the_backlog_exact)
{
    for (int i = 0; i < RACE_ITEMS; i++) {
        char exec[24];
        snprintf(exec, sizeof exec, "r-%d", i);
        push_ok("ws-a", exec, QT0 + i);
    }
    int claimed = 0, removed = 0;
    pthread_t a, b;
    cr_assert_eq(pthread_create(&a, NULL, race_claimer, &claimed), 0);
    cr_assert_eq(pthread_create(&b, NULL, race_remover, &removed), 0);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    /* Each item was claimed, or removed while waiting (or both: claimed,
     * then removed - a cancel of a running execution). */
    cr_expect_geq(claimed + removed, RACE_ITEMS, "%d claimed + %d removed", claimed, removed);
    depth_is(0, 0);
    /* Nothing waits: a bound of 5 admits exactly 5 (a counter left low
     * would admit more, one left high fewer). */
    int ok = 0;
    for (int i = 0; i < 10; i++) {
        char exec[24];
        snprintf(exec, sizeof exec, "after-%d", i);
        ok += ee__queue_push(Q, "ws-b", exec, QT0, 5) == EE_OK;
    }
    cr_expect_eq(ok, 5);
}

#endif
