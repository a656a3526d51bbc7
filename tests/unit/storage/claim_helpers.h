/*
 * Claims for the storage tests (ee__storage_claim): queue-like documents
 * of "executionQueue", a builder that marks a document claimed, and the
 * drain of a shared store by several processes (sqlite file, postgres).
 */
#ifndef EE_TEST_STORAGE_CLAIM_HELPERS_H
#define EE_TEST_STORAGE_CLAIM_HELPERS_H

#include <bson/bson.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "execengine/storage.h"
#include "storage/storage.h"

/* Not every includer uses every helper. */
#define CLAIM_HELPER static __attribute__((unused))

#define CLAIM_FAR 4000000000000LL /* a claimableAt past every test's "now" */

/* An item of execution `exec` in round `round`, claimable from t. */
CLAIM_HELPER bson_t *claim_item(const char *exec, const char *ws, int round, int64_t t)
{
    char r[16];
    snprintf(r, sizeof r, "%010d", round);
    bson_t *d = bson_new();
    BSON_APPEND_UTF8(d, "executionId", exec);
    BSON_APPEND_UTF8(d, "workspaceId", ws);
    BSON_APPEND_UTF8(d, "state", "waiting");
    BSON_APPEND_UTF8(d, "round", r);
    BSON_APPEND_DATE_TIME(d, "claimableAt", t);
    BSON_APPEND_INT32(d, "attempts", 0);
    return d;
}

typedef struct claim_mark {
    const char *owner;
    int64_t until;
    int calls;
    ee_status fail; /* returned instead of building, when not EE_OK */
    char exec[64];  /* executionId of the document claimed */
} claim_mark;

/* Copy the document with state "claimed", claimableAt = until, owner and
 * attempts + 1. */
CLAIM_HELPER ee_status claim_mark_build(const ee_storage_row *row, bson_t *out, void *payload)
{
    claim_mark *m = payload;
    m->calls++;
    if (m->fail != EE_OK)
        return m->fail;
    bson_t b;
    bson_iter_t it;
    if (!bson_init_static(&b, row->data, row->len) || !bson_iter_init(&it, &b))
        return EE_ECORRUPT;
    while (bson_iter_next(&it)) {
        const char *k = bson_iter_key(&it);
        if (strcmp(k, "state") == 0)
            BSON_APPEND_UTF8(out, "state", "claimed");
        else if (strcmp(k, "claimableAt") == 0)
            BSON_APPEND_DATE_TIME(out, "claimableAt", m->until);
        else if (strcmp(k, "attempts") == 0)
            BSON_APPEND_INT32(out, "attempts", bson_iter_int32(&it) + 1);
        else if (strcmp(k, "owner") != 0)
            bson_append_iter(out, NULL, 0, &it);
        if (strcmp(k, "executionId") == 0)
            snprintf(m->exec, sizeof m->exec, "%s", bson_iter_utf8(&it, NULL));
    }
    BSON_APPEND_UTF8(out, "owner", m->owner);
    return EE_OK;
}

/* Claim the first claimable item at `now` in round order. */
CLAIM_HELPER ee_status claim_next(ee_storage *s, int64_t now, claim_mark *m, char id[25],
                            int64_t *rev)
{
    ee_storage_query_spec q = {.version = EE_STORAGE_QUERY_VERSION,
                               .flags = EE_STORAGE_QUERY_TO, .time_to = now + 1};
    return ee__storage_claim(s, "executionQueue", NULL, &q, "round", claim_mark_build, m, id,
                             rev);
}

/* Seed `items` items (rounds and times mixed), fork `procs` processes that
 * each open `uri` and claim until nothing is left, and check that every
 * item was claimed exactly once. */
CLAIM_HELPER void claim_drain_processes(ee_storage *seed, const char *uri, int procs, int items)
{
    const int64_t now = 1700000000000LL;
    for (int i = 0; i < items; i++) {
        char exec[32];
        snprintf(exec, sizeof exec, "exec-%04d", i);
        bson_t *d = claim_item(exec, "ws-a", i % 7, now - items + i);
        ee_status st = ee_storage_insert(seed, "executionQueue", NULL, bson_get_data(d),
                                         d->len, NULL);
        bson_destroy(d);
        cr_assert_eq(st, EE_OK, "%s", ee_error_last_message());
    }
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t kids[16];
    cr_assert_leq(procs, 16);
    for (int p = 0; p < procs; p++) {
        kids[p] = fork();
        cr_assert_geq(kids[p], 0);
        if (kids[p] == 0) {
            close(fds[0]);
            ee_storage *s = NULL;
            if (ee_storage_open_uri(&s, uri) != EE_OK)
                _exit(2);
            char owner[16];
            snprintf(owner, sizeof owner, "p%d", p);
            for (;;) {
                claim_mark m = {.owner = owner, .until = CLAIM_FAR, .fail = EE_OK};
                char id[25];
                ee_status st = claim_next(s, now, &m, id, NULL);
                if (st == EE_ENOTFOUND)
                    break;
                if (st == EE_EBUSY)
                    continue;
                if (st != EE_OK) {
                    fprintf(stderr, "claim: %s %s\n", ee_status_name(st),
                            ee_error_last_message());
                    _exit(3);
                }
                char line[40];
                int n = snprintf(line, sizeof line, "%s\n", m.exec);
                if (write(fds[1], line, (size_t)n) != n)
                    _exit(4);
            }
            ee_storage_free(s);
            _exit(0);
        }
    }
    close(fds[1]);
    int *seen = calloc((size_t)items, sizeof *seen);
    FILE *in = fdopen(fds[0], "r");
    char line[40];
    int total = 0;
    while (fgets(line, sizeof line, in) != NULL) {
        int i = -1;
        cr_assert_eq(sscanf(line, "exec-%d", &i), 1, "%s", line);
        cr_assert(i >= 0 && i < items);
        seen[i]++;
        total++;
    }
    fclose(in);
    for (int p = 0; p < procs; p++) {
        int status = 0;
        cr_assert_eq(waitpid(kids[p], &status, 0), kids[p]);
        cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "process %d: status %d", p,
                  status);
    }
    for (int i = 0; i < items; i++)
        cr_expect_eq(seen[i], 1, "item %d claimed %d times", i, seen[i]);
    cr_expect_eq(total, items);
    free(seen);
}

#endif
