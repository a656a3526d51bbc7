/*
 * Document ids (core/core.h, ee__oid_new): unique across threads, in
 * MongoDB's layout (the seconds first, one random part per process, a
 * counter), and a forked child draws its own random part - so a parent
 * and its child never hand out the same id.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"

enum { THREADS = 4, PER_THREAD = 50000 };

static uint8_t ids[THREADS * PER_THREAD][12];

static void *make_ids(void *arg)
{
    size_t t = (size_t)(uintptr_t)arg;
    for (size_t i = 0; i < PER_THREAD; i++)
        ee__oid_new(ids[t * PER_THREAD + i]);
    return NULL;
}

static int cmp_id(const void *a, const void *b)
{
    return memcmp(a, b, 12);
}

static uint32_t counter_of(const uint8_t *id)
{
    return (uint32_t)id[9] << 16 | (uint32_t)id[10] << 8 | id[11];
}

Test(oid, ids_from_four_threads_are_unique_and_laid_out_as_objectids)
{
    uint32_t before = (uint32_t)time(NULL);
    pthread_t th[THREADS];
    for (size_t t = 0; t < THREADS; t++)
        cr_assert_eq(pthread_create(&th[t], NULL, make_ids, (void *)(uintptr_t)t), 0);
    for (size_t t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    uint32_t after = (uint32_t)time(NULL);
    size_t n = THREADS * PER_THREAD;
    for (size_t i = 0; i < n; i++) {
        uint32_t secs = (uint32_t)ids[i][0] << 24 | (uint32_t)ids[i][1] << 16 |
                        (uint32_t)ids[i][2] << 8 | ids[i][3];
        cr_assert(secs >= before && secs <= after, "id %zu holds %u s, not in [%u, %u]", i, secs,
                  before, after);
        cr_assert_eq(memcmp(ids[i] + 4, ids[0] + 4, 5), 0, "one random part per process");
    }
    /* one thread's ids count up by one (modulo 2^24; others may interleave) */
    for (size_t i = 1; i < PER_THREAD; i++)
        cr_assert_neq(counter_of(ids[i]), counter_of(ids[i - 1]));
    qsort(ids, n, 12, cmp_id);
    for (size_t i = 1; i < n; i++)
        cr_assert_neq(memcmp(ids[i], ids[i - 1], 12), 0, "ids %zu and %zu are equal", i - 1, i);
    /* 200,000 consecutive counter values: each taken exactly once */
    uint32_t *cs = malloc(n * sizeof *cs);
    for (size_t i = 0; i < n; i++)
        cs[i] = counter_of(ids[i]);
    uint32_t lo = cs[0];
    for (size_t i = 0; i < n; i++)
        cs[i] = (cs[i] - lo) & 0xffffff; /* distance from one of them, with wrap */
    size_t distinct = 0;
    uint8_t *seen = calloc(1u << 24, 1);
    for (size_t i = 0; i < n; i++)
        if (!seen[cs[i]]++)
            distinct++;
    cr_assert_eq(distinct, n, "%zu of %zu counter values distinct", distinct, n);
    free(seen);
    free(cs);
}

Test(oid, a_forked_child_draws_its_own_random_part)
{
    uint8_t parent[12], child[12], parent_after[12];
    ee__oid_new(parent);
    int fd[2];
    cr_assert_eq(pipe(fd), 0);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        uint8_t id[12];
        ee__oid_new(id);
        ssize_t w = write(fd[1], id, sizeof id);
        _exit(w == (ssize_t)sizeof id ? 0 : 1);
    }
    close(fd[1]);
    cr_assert_eq(read(fd[0], child, sizeof child), (ssize_t)sizeof child);
    close(fd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ee__oid_new(parent_after);
    cr_assert_neq(memcmp(child + 4, parent + 4, 5), 0,
                  "the child's random part is its own (equal by chance: 1 in 2^40)");
    cr_assert_eq(memcmp(parent_after + 4, parent + 4, 5), 0, "the parent keeps its own");
}
