/*
 * The execution queue on the PostgreSQL the `servers` fixture started:
 * three processes (three hosts) drain 300 queued executions at once -
 * every item is claimed exactly once, none is lost - and push against one
 * backlog bound without passing it. Each test has its own schema.
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "exec/queue.h"
#include "execengine/storage.h"
#include "pg_schema.h"
#include "test_servers.h"

#define T0 1700000000000LL
#define PROCS 3
#define ITEMS 300

static char schema[64];
static char store_uri[700];

static void setup(void)
{
    ee_test_pg_schema("ee_q", schema, sizeof schema, store_uri, sizeof store_uri);
}

static void teardown(void)
{
    ee_test_pg_drop_schema(schema);
}

TestSuite(queue_postgres, .init = setup, .fini = teardown, .timeout = 300);

static ee_storage *open_store(void)
{
    ee_storage *s = NULL;
    ee_status st = ee_storage_open_uri(&s, store_uri);
    cr_assert_eq(st, EE_OK, "%s", ee_error_last_message());
    return s;
}

/* Run fn in PROCS forked processes, each with its own connection pool. */
static void in_processes(int (*fn)(ee_storage *s, int i, int fd), int fd, int *results)
{
    pid_t kids[PROCS];
    for (int p = 0; p < PROCS; p++) {
        kids[p] = fork();
        cr_assert_geq(kids[p], 0);
        if (kids[p] == 0) {
            ee_storage *s = NULL;
            if (ee_storage_open_uri(&s, store_uri) != EE_OK)
                _exit(255);
            int r = fn(s, p, fd);
            ee_storage_free(s);
            _exit(r);
        }
    }
    for (int p = 0; p < PROCS; p++) {
        int status = 0;
        cr_assert_eq(waitpid(kids[p], &status, 0), kids[p]);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) != 255, "process %d: status %d", p,
                  status);
        results[p] = WEXITSTATUS(status);
    }
}

/* Claim (and finish) until the queue is empty, writing each execution id
 * to fd. Exit status: 0, or 255 on a failure. */
static int drain(ee_storage *s, int i, int fd)
{
    char owner[16];
    snprintf(owner, sizeof owner, "host-%d", i);
    for (;;) {
        ee__queue_item it;
        ee_status st = ee__queue_claim(s, owner, T0 + 10 * ITEMS, 60000, &it);
        if (st == EE_ENOTFOUND) {
            /* Rows another host held were skipped, not waited for: make
             * sure the queue is really empty before leaving. */
            uint64_t w = 0, c = 0;
            if (ee__queue_depth(s, &w, &c) != EE_OK)
                return 255;
            if (w == 0)
                return 0;
            continue;
        }
        if (st != EE_OK) {
            fprintf(stderr, "claim: %s %s\n", ee_status_name(st), ee_error_last_message());
            return 255;
        }
        char line[40];
        int n = snprintf(line, sizeof line, "%s\n", it.execution_id);
        if (write(fd, line, (size_t)n) != n || ee__queue_done(s, &it) != EE_OK)
            return 255;
    }
}

Test(queue_postgres, three_hosts_drain_300_items_each_exactly_once)
{
    ee_storage *s = open_store();
    for (int i = 0; i < ITEMS; i++) {
        char exec[24], ws[8];
        snprintf(exec, sizeof exec, "e-%d", i);
        snprintf(ws, sizeof ws, "w%d", i % 5);
        cr_assert_eq(ee__queue_push(s, ws, exec, T0 + i, 0), EE_OK, "%s",
                     ee_error_last_message());
    }
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    int res[PROCS];
    in_processes(drain, fds[1], res);
    close(fds[1]);
    int seen[ITEMS] = {0}, total = 0;
    FILE *in = fdopen(fds[0], "r");
    char line[40];
    while (fgets(line, sizeof line, in) != NULL) {
        int i = -1;
        cr_assert_eq(sscanf(line, "e-%d", &i), 1, "%s", line);
        cr_assert(i >= 0 && i < ITEMS);
        seen[i]++;
        total++;
    }
    fclose(in);
    for (int i = 0; i < ITEMS; i++)
        cr_expect_eq(seen[i], 1, "item %d claimed %d times", i, seen[i]);
    cr_expect_eq(total, ITEMS);
    uint64_t w = 1, c = 1;
    cr_assert_eq(ee__queue_depth(s, &w, &c), EE_OK);
    cr_expect_eq(w, 0);
    cr_expect_eq(c, 0);
    ee_storage_free(s);
}

/* 40 pushes against a bound of 50; exit status: how many were accepted. */
static int push_40(ee_storage *s, int i, int fd)
{
    (void)fd;
    int ok = 0;
    for (int k = 0; k < 40; k++) {
        char exec[24];
        snprintf(exec, sizeof exec, "h%d-%d", i, k);
        ee_status st = ee__queue_push(s, "ws-a", exec, T0 + k, 50);
        if (st == EE_OK)
            ok++;
        else if (st != EE_EBUSY)
            return 255;
    }
    return ok;
}

Test(queue_postgres, three_hosts_pushing_never_pass_the_bound)
{
    ee_storage *s = open_store();
    int res[PROCS];
    in_processes(push_40, -1, res);
    cr_expect_eq(res[0] + res[1] + res[2], 50, "%d + %d + %d accepted with a bound of 50",
                 res[0], res[1], res[2]);
    uint64_t w = 0, c = 0;
    cr_assert_eq(ee__queue_depth(s, &w, &c), EE_OK);
    cr_expect_eq(w, 50);
    ee_storage_free(s);
}
