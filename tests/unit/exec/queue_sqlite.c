/* The execution queue's suite on a sqlite file; and several processes
 * sharing the file: the backlog bound and the claims hold across them. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "execengine/storage.h"

#define QUEUE_SUITE queue_sqlite

static char dir[64], uri[200];

static ee_storage *queue_open(void)
{
    snprintf(dir, sizeof dir, "/tmp/ee-queue-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return NULL;
    /* synchronous=off: the suite pushes thousands of items; durability is
     * the sqlite file tests' subject, not this one's. */
    snprintf(uri, sizeof uri, "sqlite://%s/queue.db?synchronous=off", dir);
    ee_storage *s = NULL;
    return ee_storage_open_uri(&s, uri) == EE_OK ? s : NULL;
}

static void queue_cleanup(void)
{
    char cmd[128];
    if (dir[0] == '\0')
        return;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

#include "queue_suite.h"

#define PROCS 3

/* Run `fn(i)` in PROCS child processes, each with its own handle on the
 * file; the exit status is what fn returns. */
static void in_processes(int (*fn)(ee_storage *s, int i), int *results)
{
    pid_t kids[PROCS];
    for (int p = 0; p < PROCS; p++) {
        kids[p] = fork();
        cr_assert_geq(kids[p], 0);
        if (kids[p] == 0) {
            ee_storage *s = NULL;
            if (ee_storage_open_uri(&s, uri) != EE_OK)
                _exit(255);
            int r = fn(s, p);
            ee_storage_free(s);
            _exit(r);
        }
    }
    for (int p = 0; p < PROCS; p++) {
        int status = 0;
        cr_assert_eq(waitpid(kids[p], &status, 0), kids[p]);
        cr_assert(WIFEXITED(status), "process %d: status %d", p, status);
        cr_assert_neq(WEXITSTATUS(status), 255, "process %d failed", p);
        results[p] = WEXITSTATUS(status);
    }
}

/* 40 pushes against a bound of 50: how many were accepted. */
static int push_40(ee_storage *s, int i)
{
    int ok = 0;
    for (int k = 0; k < 40; k++) {
        char exec[24];
        snprintf(exec, sizeof exec, "p%d-%d", i, k);
        ee_status st = ee__queue_push(s, "ws-a", exec, QT0 + k, 50);
        if (st == EE_OK)
            ok++;
        else if (st != EE_EBUSY)
            return 255;
    }
    return ok;
}

Test(queue_sqlite, processes_pushing_at_once_never_pass_the_bound)
{
    int got[PROCS];
    in_processes(push_40, got);
    cr_expect_eq(got[0] + got[1] + got[2], 50, "%d + %d + %d accepted with a bound of 50",
                 got[0], got[1], got[2]);
    depth_is(50, 0);
}

/* Claim until nothing is left; each claimed execution id is appended to
 * the pipe. Returns the number claimed. */
static int drain_fd = -1;

static int drain(ee_storage *s, int i)
{
    char owner[16];
    snprintf(owner, sizeof owner, "proc-%d", i);
    int n = 0;
    for (;;) {
        ee__queue_item it;
        ee_status st = ee__queue_claim(s, owner, QT0 + 10000, LEASE, &it);
        if (st == EE_ENOTFOUND)
            return n;
        if (st != EE_OK)
            return 255;
        char line[40];
        int len = snprintf(line, sizeof line, "%s\n", it.execution_id);
        if (write(drain_fd, line, (size_t)len) != len)
            return 255;
        if (ee__queue_done(s, &it) != EE_OK)
            return 255;
        n++;
    }
}

Test(queue_sqlite, processes_drain_the_queue_each_item_once)
{
    for (int i = 0; i < 120; i++) {
        char exec[24], ws[8];
        snprintf(exec, sizeof exec, "e-%d", i);
        snprintf(ws, sizeof ws, "w%d", i % 4);
        push_ok(ws, exec, QT0 + i);
    }
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    drain_fd = fds[1];
    int got[PROCS];
    in_processes(drain, got);
    close(fds[1]);
    int seen[120] = {0};
    FILE *in = fdopen(fds[0], "r");
    char line[40];
    while (fgets(line, sizeof line, in) != NULL) {
        int i = -1;
        cr_assert_eq(sscanf(line, "e-%d", &i), 1);
        cr_assert(i >= 0 && i < 120);
        seen[i]++;
    }
    fclose(in);
    for (int i = 0; i < 120; i++)
        cr_expect_eq(seen[i], 1, "item %d claimed %d times", i, seen[i]);
    cr_expect_eq(got[0] + got[1] + got[2], 120);
    depth_is(0, 0);
}
