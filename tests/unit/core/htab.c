/*
 * The intrusive string-keyed hash table (core/htab.h): finds what was put
 * in across its growth, removes exactly one key, and hands every node back
 * when cleared.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/htab.h"

typedef struct item {
    char id[24];
    int value;
    ee__hnode node;
} item;

static int cleared;

static void sum_values(ee__hnode *n, void *arg)
{
    *(long *)arg += EE__HTAB_ENTRY(n, item, node)->value;
}

static void count_free(ee__hnode *n)
{
    item *it = EE__HTAB_ENTRY(n, item, node);
    cr_assert_eq(it->value, atoi(it->id + 2), "%s holds %d", it->id, it->value);
    cleared++;
    free(it);
}

Test(htab, finds_each_key_across_growth_removes_one_and_clears_all)
{
    enum { N = 5000 };
    ee__htab t = EE__HTAB_INIT;
    cr_assert_null(ee__htab_find(&t, "id0"), "an empty table finds nothing");
    cr_assert_null(ee__htab_remove(&t, "id0"));
    for (int i = 0; i < N; i++) {
        item *it = calloc(1, sizeof *it);
        cr_assert_not_null(it);
        snprintf(it->id, sizeof it->id, "id%d", i);
        it->value = i;
        it->node.key = it->id;
        cr_assert(ee__htab_insert(&t, &it->node));
    }
    cr_assert_eq(t.n, N);
    cr_assert_geq(t.cap, N, "grown with its entries: %zu buckets", t.cap);
    char key[24];
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "id%d", i);
        item *it = EE__HTAB_ENTRY(ee__htab_find(&t, key), item, node);
        cr_assert_not_null(it, "%s", key);
        cr_assert_eq(it->value, i);
    }
    cr_assert_null(ee__htab_find(&t, "id5000"));
    cr_assert_null(ee__htab_find(&t, "id"), "a prefix is not a key");
    item *gone = EE__HTAB_ENTRY(ee__htab_remove(&t, "id1234"), item, node);
    cr_assert_not_null(gone);
    cr_assert_eq(gone->value, 1234);
    free(gone);
    cr_assert_null(ee__htab_find(&t, "id1234"));
    cr_assert_null(ee__htab_remove(&t, "id1234"), "removed once");
    cr_assert_not_null(ee__htab_find(&t, "id1235"), "its neighbours stay");
    cr_assert_eq(t.n, N - 1);
    long sum = 0;
    ee__htab_each(&t, sum_values, &sum);
    cr_assert_eq(sum, (long)N * (N - 1) / 2 - 1234, "each node once: %ld", sum);
    cleared = 0;
    ee__htab_clear(&t, count_free);
    cr_assert_eq(cleared, N - 1);
    cr_assert_eq(t.n, 0);
    cr_assert_null(t.b);
    cr_assert_null(ee__htab_find(&t, "id1"), "cleared");
}
