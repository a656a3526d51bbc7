/*
 * The backlog counter when a claim lands between a remove's read and its
 * delete, made to happen every time: the custom backend (forwarding to a
 * memory store) runs a claim on the same store right after the remove's
 * query. The claim gives the item's backlog place back; the remove must
 * not give it back a second time.
 */
#include "../storage/custom_backend.h"
#include "exec/queue.h"

#define T0 1700000000000LL

static ee__queue_item stolen;
static ee_status steal_status = EE_EINVAL;

static void claim_meanwhile(fwd *f)
{
    steal_status = ee__queue_claim(f->inner, "thief", T0 + 10, 60000, &stolen);
}

Test(queue_race, a_claim_between_a_removes_read_and_delete_counts_once)
{
    ee_storage *s = custom_open(2);
    cr_assert_eq(ee__queue_push(s, "ws-a", "exec-1", T0, 0), EE_OK, "%s",
                 ee_error_last_message());
    custom_state->after_query = claim_meanwhile;
    cr_expect_eq(ee__queue_remove(s, "ws-a", "exec-1"), EE_OK, "%s", ee_error_last_message());
    cr_assert_eq(steal_status, EE_OK, "the claim ran between read and delete");
    cr_expect_str_eq(stolen.execution_id, "exec-1");
    uint64_t w = 9, c = 9;
    cr_assert_eq(ee__queue_depth(s, &w, &c), EE_OK);
    cr_expect_eq(w, 0);
    cr_expect_eq(c, 0, "the removed item is gone, claimed or not");
    /* Nothing waits: a bound of 3 admits exactly 3. */
    int ok = 0;
    for (int i = 0; i < 6; i++) {
        char exec[16];
        snprintf(exec, sizeof exec, "next-%d", i);
        ok += ee__queue_push(s, "ws-b", exec, T0 + 20, 3) == EE_OK;
    }
    cr_expect_eq(ok, 3, "%d pushes admitted under a bound of 3", ok);
    ee_storage_free(s);
}
