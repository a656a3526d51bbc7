/*
 * The lock that makes memory counters over a database storage one
 * process's alone. Memory counters forget everything a second process
 * counts, so the engine that opens them holds a lock tied to the storage
 * for as long as they live, and a second one is refused (EE_EBUSY):
 *
 *   sqlite file  an exclusive flock() on "<database file>.counters-lock",
 *                beside the database: held by the open file description,
 *                so a second engine in the same process is refused too;
 *                the kernel drops it when the process ends, however it
 *                ends. Good for processes on one host (the only ones that
 *                can share a SQLite file safely anyway); a network file
 *                system without flock() support is not. storage: counters
 *                opened by URI hold a shared flock() on the same file, so
 *                memory counters and storage counters never count one file
 *                at once (either side is refused).
 *   postgres     pg_try_advisory_lock(EE__COUNTERS_PG_LOCK) on a connection
 *                kept open for that alone: session-level, dropped by the
 *                server when the connection closes (or the host dies and
 *                TCP gives up). Advisory locks are per database, so the
 *                lock is the database's, whichever host asks.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "core/core.h"
#include "core/features.h"
#include "counters/counters_internal.h"

#if EE_WITH_POSTGRES
#include <libpq-fe.h>
#endif

/* "eeCTRMEM": the advisory lock key of memory counters on a database. */
#define EE__COUNTERS_PG_LOCK INT64_C(0x65654354524d454d)

struct ee__counters_lock {
    int fd;       /* sqlite: the lock file, else -1 */
#if EE_WITH_POSTGRES
    PGconn *conn; /* postgres: the connection holding the advisory lock */
#endif
};

static ee_status busy(const char *where, bool shared)
{
    if (shared)
        return ee__error(EE_EBUSY,
                         "another process or engine uses counters \"memory:\" on this storage "
                         "(%s), which are its alone; set EE_COUNTERS_URI to \"storage:\" (the "
                         "default) or redis://host:port/db in every process that shares it",
                         where);
    return ee__error(EE_EBUSY,
                     "counters \"memory:\" are this process's alone, and another process or "
                     "engine already counts on this storage (%s); to share the storage, set "
                     "EE_COUNTERS_URI to \"storage:\" (the default) or redis://host:port/db in "
                     "every process",
                     where);
}

static ee_status lock_file(const char *db_path, bool shared, ee__counters_lock *l)
{
    size_t n = strlen(db_path);
    char *path = malloc(n + sizeof ".counters-lock");
    if (path == NULL)
        return ee__error(EE_ENOMEM, "out of memory locking the counters");
    memcpy(path, db_path, n);
    memcpy(path + n, ".counters-lock", sizeof ".counters-lock");
    char q[160];
    ee__quote_for_message(path, q, sizeof q);
    l->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    free(path);
    if (l->fd < 0)
        return ee__error(EE_EIO, "cannot open the counters lock file \"%s\": %s", q,
                         strerror(errno));
    int rc;
    while ((rc = flock(l->fd, (shared ? LOCK_SH : LOCK_EX) | LOCK_NB)) != 0 && errno == EINTR)
        ;
    if (rc == 0)
        return EE_OK;
    int err = errno;
    close(l->fd);
    l->fd = -1;
    if (err == EWOULDBLOCK) {
        char where[200];
        snprintf(where, sizeof where, "lock file \"%s\"", q);
        return busy(where, shared);
    }
    return ee__error(EE_EIO, "cannot lock the counters lock file \"%s\": %s", q, strerror(err));
}

#if EE_WITH_POSTGRES
static void quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static ee_status lock_postgres(const char *conninfo, ee__counters_lock *l)
{
    l->conn = PQconnectdb(conninfo);
    if (l->conn == NULL)
        return ee__error(EE_ENOMEM, "out of memory locking the counters");
    if (PQstatus(l->conn) != CONNECTION_OK) {
        /* libpq's message may quote the conninfo: keep only its first line,
         * which the redaction layer cleans of registered secrets. */
        char msg[200];
        snprintf(msg, sizeof msg, "%s", PQerrorMessage(l->conn));
        msg[strcspn(msg, "\r\n")] = '\0';
        ee_status st = strstr(msg, "password") != NULL || strstr(msg, "authentication") != NULL
                           ? EE_EAUTH
                           : EE_ENETWORK;
        return ee__error(st, "postgres counters lock: cannot connect: %s", msg);
    }
    PQsetNoticeProcessor(l->conn, quiet, NULL);
    char sql[80];
    snprintf(sql, sizeof sql, "SELECT pg_try_advisory_lock(%lld)", (long long)EE__COUNTERS_PG_LOCK);
    PGresult *r = PQexec(l->conn, sql);
    ee_status st = EE_OK;
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        char msg[200];
        snprintf(msg, sizeof msg, "%s", PQresultErrorMessage(r));
        msg[strcspn(msg, "\r\n")] = '\0';
        st = ee__error(EE_EIO, "postgres counters lock: %s", msg);
    } else if (strcmp(PQgetvalue(r, 0, 0), "t") != 0) {
        st = busy("PostgreSQL advisory lock 0x65654354524d454d of this database", false);
    }
    PQclear(r);
    return st;
}
#else
static ee_status lock_postgres(const char *conninfo, ee__counters_lock *l)
{
    (void)conninfo;
    (void)l;
    return ee__not_built("counters over a postgres:// storage", "PostgreSQL",
                         "EE_WITH_POSTGRES");
}
#endif

ee_status ee__counters_lock_take(const char *kind, const char *target, bool shared,
                                 ee__counters_lock **out)
{
    *out = NULL;
    ee__counters_lock *l = calloc(1, sizeof *l);
    if (l == NULL)
        return ee__error(EE_ENOMEM, "out of memory locking the counters");
    l->fd = -1;
    ee_status st = strcmp(kind, "sqlite") == 0 ? lock_file(target, shared, l)
                                                : lock_postgres(target, l);
    if (st != EE_OK) {
        ee__counters_lock_free(l);
        return st;
    }
    *out = l;
    return EE_OK;
}

void ee__counters_lock_free(ee__counters_lock *l)
{
    if (l == NULL)
        return;
    if (l->fd >= 0)
        close(l->fd); /* drops the flock */
#if EE_WITH_POSTGRES
    if (l->conn != NULL)
        PQfinish(l->conn); /* the server drops the session's advisory lock */
#endif
    free(l);
}
