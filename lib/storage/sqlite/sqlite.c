/*
 * The sqlite backend (the default): one file shared by the threads of a
 * process through a small pool of connections (one per thread at a time,
 * each with its own prepared-statement cache) and by several processes on
 * the same host through SQLite's own locking.
 *
 * Settings, per connection: journal_mode=WAL (readers never block the
 * writer, and a killed process leaves a file that recovers on the next
 * open), busy_timeout (writers of other threads and processes wait rather
 * than fail), foreign_keys=ON, synchronous=FULL by default: each commit
 * fsyncs the WAL, so a write that returned EE_OK survives a process kill
 * *and* a power loss; synchronous=normal (URI option) keeps the
 * process-kill guarantee only, for hosts that prefer throughput.
 *
 * Single-statement writes run in autocommit; read-modify-write operations
 * (increment) take the write lock up front with BEGIN IMMEDIATE so two
 * writers never both read the old value.
 *
 * Checkpoints (copying the WAL's pages back into the database file, with
 * their fsyncs) run on a thread of the storage's own, not in the commit
 * that happens to pass SQLite's threshold: a commit's caller waits for
 * its own WAL write and fsync only. The connections' automatic checkpoint
 * is off; each commit reports the WAL's size (wal_hook) and past
 * CKPT_PAGES wakes the thread, which runs a PASSIVE checkpoint (it never
 * blocks readers or writers), then a RESTART once it has caught up, so
 * that the log is reused. Should writers never pause long enough for
 * that, or the thread be gone (a child after fork()), a commit past
 * CKPT_HARD_PAGES checkpoints itself, as SQLite would: the WAL stays
 * bounded either way.
 *
 * One table per collection: id BLOB (12 bytes) unique, ws, rev, t (the
 * time field), one TEXT column per indexed field, doc BLOB (the BSON).
 * PRAGMA user_version holds the schema version.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/pool.h"
#include "core/sqlite_wal.h"
#include "storage/internal.h"

#define POOL_MAX 8
/* WAL pages (4 KiB) past which the checkpoint thread is woken - again
 * each time as many more were written since its last pass, so that each
 * pass (two fsyncs) copies at least that many, as SQLite's automatic
 * checkpoint does in the committing thread - and past which a commit
 * checkpoints itself. The log is reused from its start once a checkpoint
 * caught up with it (the thread's RESTART); writers that never pause leave
 * no such moment, and the commit that passes CKPT_HARD_PAGES checkpoints
 * after the thread's pass: by then the thread has copied nearly
 * everything, so that costs the commit little more than an fsync. */
#define CKPT_PAGES 1000
#define CKPT_HARD_PAGES 4000
/* The longest wait between two passes while writers keep the log busy. */
#define CKPT_RETRY_MAX_MS 500
#define DYN_CACHE 48
#define SQL_MAX 2048
/* Masked UPDATE statements kept per collection and connection. */
#define UPD_CACHE 8
/* The most indexed fields a collection may declare: a replace's column
 * mask has a bit for each and bit 0 for the time column (checked at open). */
#define UPD_FIELDS_MAX 30

enum { K_INSERT, K_GET, K_UPDATE, K_REMOVE, K_BYKEY, K_SETDOC, K_FIELDS, K_COUNT };

typedef struct dyn_stmt {
    char *sql;
    sqlite3_stmt *st;
} dyn_stmt;

/* An UPDATE that sets the document, its revision and the columns of
 * `mask` (key: mask + 1, 0 = empty). */
typedef struct upd_stmt {
    uint64_t key;
    sqlite3_stmt *st;
} upd_stmt;

typedef struct conn {
    sqlite3 *db;
    bool relaxed; /* synchronous=NORMAL for a deferred scope; set back when given back */
    sqlite3_stmt **fixed; /* [collection][K_*] */
    upd_stmt *upd;        /* [collection][UPD_CACHE] */
    unsigned *upd_next;   /* [collection]: the next slot to reuse */
    dyn_stmt dyn[DYN_CACHE];
    int n_dyn, next_evict;
} conn;

typedef struct lite {
    char *path;
    int synchronous, busy_ms;
    size_t n_colls;
    const ee_storage_collection *const *colls;
    char **fixed_sql; /* [collection][K_*] */
    ee__pool pool;
    /* the checkpoint thread (file databases only) */
    pthread_mutex_t ckpt_lock; /* the flags below */
    pthread_cond_t ckpt_cond;
    pthread_mutex_t ckpt_run;  /* held by a checkpoint of this process's */
    pthread_t ckpt_thread;
    bool ckpt_running, ckpt_wanted, ckpt_stop;
    _Atomic int ckpt_mark; /* the log's pages the last pass had copied; 0 once reused */
    pid_t ckpt_pid; /* the process the thread runs in (not a fork()ed child) */
    sqlite3 *ckpt_db;
} lite;

/* ---- errors ------------------------------------------------------------------ */

static ee_status map_rc(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK: case SQLITE_DONE: case SQLITE_ROW: return EE_OK;
    case SQLITE_BUSY: case SQLITE_LOCKED: return EE_EBUSY;
    case SQLITE_NOMEM: return EE_ENOMEM;
    case SQLITE_CORRUPT: case SQLITE_NOTADB: return EE_ECORRUPT;
    case SQLITE_CONSTRAINT: return EE_EEXISTS;
    case SQLITE_TOOBIG: return EE_ETOOBIG;
    default: return EE_EIO;
    }
}

static ee_status db_error(sqlite3 *db, int rc, const char *what)
{
    return ee__error(map_rc(rc), "sqlite: %s: %s", what,
                     db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

/* ---- SQL text ------------------------------------------------------------------ */

static void table_name(const ee_storage_collection *c, char *out, size_t cap)
{
    snprintf(out, cap, "\"ee_%s\"", c->name);
}

/* Append printf-style to a bounded buffer; the SQL we build is far below
 * SQL_MAX, so truncation would be a bug in the collection table. */
static void cat(char *buf, const char *fmt, ...) EE__PRINTF(2, 3);
static void cat(char *buf, const char *fmt, ...)
{
    size_t n = strlen(buf);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + n, SQL_MAX - n, fmt, ap);
    va_end(ap);
}

static void columns(const ee_storage_collection *c, char *buf, const char *suffix)
{
    char col[EE_STORAGE_FIELD_MAX + 4];
    for (size_t i = 0; i < c->n_fields; i++) {
        ee__storage_column_name(c->fields[i], col, sizeof col);
        cat(buf, ", %s%s", col, suffix);
    }
}

static char *fixed_sql(const ee_storage_collection *c, int kind)
{
    char t[80], buf[SQL_MAX] = "", col[EE_STORAGE_FIELD_MAX + 4];
    table_name(c, t, sizeof t);
    switch (kind) {
    case K_INSERT:
        cat(buf, "INSERT INTO %s (id, ws, rev, t", t);
        columns(c, buf, "");
        cat(buf, ", doc) VALUES (?, ?, ?, ?");
        for (size_t i = 0; i < c->n_fields; i++)
            cat(buf, ", ?");
        cat(buf, ", ?)");
        break;
    case K_GET:
        cat(buf, "SELECT rev, t, doc FROM %s WHERE id = ?1 AND ws = ?2", t);
        break;
    case K_UPDATE:
        /* ?1 id ?2 ws ?3 new rev ?4 t, fields, doc, expected rev last */
        cat(buf, "UPDATE %s SET rev = ?3, t = ?4", t);
        for (size_t i = 0; i < c->n_fields; i++) {
            ee__storage_column_name(c->fields[i], col, sizeof col);
            cat(buf, ", %s = ?%zu", col, i + 5);
        }
        cat(buf, ", doc = ?%zu WHERE id = ?1 AND ws = ?2 AND rev = ?%zu", c->n_fields + 5,
            c->n_fields + 6);
        break;
    case K_REMOVE:
        cat(buf, "DELETE FROM %s WHERE id = ?1 AND ws = ?2", t);
        break;
    case K_BYKEY:
        cat(buf, "SELECT id, doc FROM %s WHERE ws = ?1", t);
        for (size_t u = 0; u < c->n_unique; u++) {
            ee__storage_column_name(c->fields[c->unique[u]], col, sizeof col);
            cat(buf, " AND %s = ?%zu", col, u + 2);
        }
        break;
    case K_SETDOC:
        cat(buf, "UPDATE %s SET doc = ?2, rev = rev + 1 WHERE id = ?1", t);
        break;
    case K_FIELDS:
        cat(buf, "SELECT rev, t");
        columns(c, buf, "");
        cat(buf, " FROM %s WHERE id = ?1 AND ws = ?2", t);
        break;
    }
    return strdup(buf);
}

/* The UPDATE of a replace that changes the columns of `mask` (bit 0: t;
 * bit i + 1: field i): ?1 id ?2 ws ?3 new rev ?4 doc ?5 expected rev, then
 * the changed columns in order. Naming only those matters: SQLite rewrites
 * every index holding a column the SET names, changed or not, and each
 * index is a page more in the log on every write. */
static char *masked_update_sql(const ee_storage_collection *c, uint32_t mask)
{
    char t[80], buf[SQL_MAX] = "", col[EE_STORAGE_FIELD_MAX + 4];
    table_name(c, t, sizeof t);
    cat(buf, "UPDATE %s SET rev = ?3, doc = ?4", t);
    int p = 6;
    if (mask & 1u)
        cat(buf, ", t = ?%d", p++);
    for (size_t i = 0; i < c->n_fields; i++) {
        if (!(mask & (1u << (i + 1))))
            continue;
        ee__storage_column_name(c->fields[i], col, sizeof col);
        cat(buf, ", %s = ?%d", col, p++);
    }
    cat(buf, " WHERE id = ?1 AND ws = ?2 AND rev = ?5");
    return strdup(buf);
}

/* ---- connections --------------------------------------------------------------- */

static ee_status exec(sqlite3 *db, const char *sql, const char *what)
{
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? EE_OK : db_error(db, rc, what);
}

static void conn_close(lite *l, conn *c)
{
    if (c == NULL)
        return;
    if (c->fixed != NULL)
        for (size_t i = 0; i < l->n_colls * K_COUNT; i++)
            sqlite3_finalize(c->fixed[i]);
    if (c->upd != NULL)
        for (size_t i = 0; i < l->n_colls * UPD_CACHE; i++)
            sqlite3_finalize(c->upd[i].st);
    free(c->upd);
    free(c->upd_next);
    for (int i = 0; i < c->n_dyn; i++) {
        sqlite3_finalize(c->dyn[i].st);
        free(c->dyn[i].sql);
    }
    free(c->fixed);
    sqlite3_close_v2(c->db);
    free(c);
}

/* PRAGMA synchronous values, by lite.synchronous (0, 1, 2). */
static const char *const sync_names[] = {"OFF", "NORMAL", "FULL"};

/* ---- checkpoints ------------------------------------------------------------------ */

/* Held by a checkpoint thread while it is inside SQLite, and by fork()
 * (pthread_atfork) while it copies the process: a child must not start
 * with SQLite's process-wide mutexes (the unix VFS's file list) copied in
 * the middle of a checkpoint thread's call, or its first open waits for
 * ever. The storage's own threads are the library's to keep out of the
 * way; a host's threads inside SQLite at fork() are its own concern. */
static pthread_mutex_t ckpt_fork_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t ckpt_fork_once = PTHREAD_ONCE_INIT;

static void ckpt_fork_prepare(void)
{
    pthread_mutex_lock(&ckpt_fork_lock);
}

static void ckpt_fork_done(void)
{
    pthread_mutex_unlock(&ckpt_fork_lock);
}

static void ckpt_fork_register(void)
{
    (void)pthread_atfork(ckpt_fork_prepare, ckpt_fork_done, ckpt_fork_done);
}

/* After each commit of a connection, with the WAL's size in pages. */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
    lite *l = arg;
    if (l->ckpt_pid != getpid()) {
        /* a fork()ed child: the thread (and the state of its locks) is the
         * parent's - the commit checkpoints, as SQLite's automatic
         * checkpoint would */
        if (pages >= CKPT_PAGES)
            (void)sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    } else if (pages >= CKPT_HARD_PAGES) {
        /* writers that never pause: the commit checkpoints, after the
         * thread's pass of the moment (which would make it BUSY); the
         * writer's next transaction, beginning after a checkpoint that
         * caught up, reuses the log */
        pthread_mutex_lock(&l->ckpt_run);
        (void)sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        pthread_mutex_unlock(&l->ckpt_run);
    } else if (pages >= CKPT_PAGES && pages - atomic_load(&l->ckpt_mark) >= CKPT_PAGES) {
        pthread_mutex_lock(&l->ckpt_lock);
        if (!l->ckpt_wanted) {
            l->ckpt_wanted = true;
            pthread_cond_signal(&l->ckpt_cond);
        }
        pthread_mutex_unlock(&l->ckpt_lock);
    }
    return SQLITE_OK;
}

/* The thread's own connection, or none (the next wake-up tries again;
 * meanwhile CKPT_HARD_PAGES bounds the log). */
static void ckpt_connect(lite *l)
{
    char pragma[64];
    snprintf(pragma, sizeof pragma, "PRAGMA synchronous = %s", sync_names[l->synchronous]);
    /* no busy handler: the thread never waits for a lock, it tries again
     * at the next wake-up */
    if (sqlite3_open_v2(l->path, &l->ckpt_db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK ||
        sqlite3_exec(l->ckpt_db, pragma, NULL, NULL, NULL) != SQLITE_OK) {
        sqlite3_close_v2(l->ckpt_db);
        l->ckpt_db = NULL;
    }
}

/* One PASSIVE pass - as much as no reader still needs, never waiting (a
 * busy checkpoint of another process is fine: it does the same work) - and,
 * if it caught up with the log, a RESTART: that has nothing left to copy or
 * sync, takes the write lock for an instant (or gives up at once, BUSY, if
 * a writer or a reader of the log is there) and has the next writer reuse
 * the log from its start. Without it the log would only be reused by a
 * writer that happens to begin after a checkpoint caught up, which busy
 * writers rarely do. True once the log is reused. */
static bool ckpt_pass(lite *l)
{
    pthread_mutex_lock(&ckpt_fork_lock);
    if (l->ckpt_db == NULL)
        ckpt_connect(l); /* opened once the file is in WAL mode */
    if (l->ckpt_db == NULL) {
        pthread_mutex_unlock(&ckpt_fork_lock);
        return false;
    }
    int log = 0, done = 0;
    pthread_mutex_lock(&l->ckpt_run);
    int rc = sqlite3_wal_checkpoint_v2(l->ckpt_db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
    bool reused = rc == SQLITE_OK && log <= 0; /* empty, or not a log at all */
    if (rc == SQLITE_OK && log > 0) {
        atomic_store(&l->ckpt_mark, done);
        reused = done >= log && sqlite3_wal_checkpoint_v2(l->ckpt_db, NULL,
                                                          SQLITE_CHECKPOINT_RESTART, NULL,
                                                          NULL) == SQLITE_OK;
        if (reused)
            atomic_store(&l->ckpt_mark, 0);
    }
    pthread_mutex_unlock(&l->ckpt_run);
    pthread_mutex_unlock(&ckpt_fork_lock);
    return reused;
}

/* Woken by a commit past a mark, the thread passes until the log is
 * reused: at once, then - writers were there - again after 50 ms, 100 ms,
 * ... at most every CKPT_RETRY_MAX_MS, or sooner when a commit passes a
 * mark again; each pass copies what came since (one with nothing to copy
 * costs no fsync). */
static void *ckpt_main(void *arg)
{
    lite *l = arg;
    pthread_mutex_lock(&l->ckpt_lock);
    for (;;) {
        while (!l->ckpt_wanted && !l->ckpt_stop)
            pthread_cond_wait(&l->ckpt_cond, &l->ckpt_lock);
        int64_t delay = 50;
        while (!l->ckpt_stop) {
            l->ckpt_wanted = false;
            pthread_mutex_unlock(&l->ckpt_lock);
            bool reused = ckpt_pass(l);
            pthread_mutex_lock(&l->ckpt_lock);
            if (reused || l->ckpt_stop)
                break;
            struct timespec ts;
            ee__deadline_after_ms(delay, &ts);
            while (!l->ckpt_stop && !l->ckpt_wanted &&
                   pthread_cond_timedwait(&l->ckpt_cond, &l->ckpt_lock, &ts) != ETIMEDOUT)
                ;
            delay = delay * 2 < CKPT_RETRY_MAX_MS ? delay * 2 : CKPT_RETRY_MAX_MS;
        }
        if (l->ckpt_stop)
            break;
    }
    pthread_mutex_unlock(&l->ckpt_lock);
    return NULL;
}

/* The thread; without it (an error) the connections keep SQLite's
 * automatic checkpoint. */
static void ckpt_start(lite *l)
{
    if (pthread_once(&ckpt_fork_once, ckpt_fork_register) != 0 ||
        pthread_create(&l->ckpt_thread, NULL, ckpt_main, l) != 0)
        return;
    l->ckpt_running = true;
    l->ckpt_pid = getpid();
}

static void ckpt_stop(lite *l)
{
    if (!l->ckpt_running || l->ckpt_pid != getpid())
        return; /* a child after fork(): the thread is the parent's */
    pthread_mutex_lock(&l->ckpt_lock);
    l->ckpt_stop = true;
    pthread_cond_signal(&l->ckpt_cond);
    pthread_mutex_unlock(&l->ckpt_lock);
    pthread_join(l->ckpt_thread, NULL);
    sqlite3_close_v2(l->ckpt_db);
    l->ckpt_db = NULL;
    l->ckpt_running = false;
}

static ee_status conn_open(lite *l, conn **out)
{
    conn *c = calloc(1, sizeof *c);
    if (c == NULL)
        return ee__error(EE_ENOMEM, "sqlite: out of memory");
    c->fixed = calloc(l->n_colls * K_COUNT, sizeof *c->fixed);
    c->upd = calloc(l->n_colls * UPD_CACHE, sizeof *c->upd);
    c->upd_next = calloc(l->n_colls, sizeof *c->upd_next);
    if (c->fixed == NULL || c->upd == NULL || c->upd_next == NULL) {
        free(c->fixed);
        free(c->upd);
        free(c->upd_next);
        free(c);
        return ee__error(EE_ENOMEM, "sqlite: out of memory");
    }
    /* NOMUTEX: a connection is used by one thread at a time (the pool). */
    int rc = sqlite3_open_v2(l->path, &c->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             NULL);
    ee_status st = EE_OK;
    if (rc != SQLITE_OK) {
        st = ee__error(rc == SQLITE_CANTOPEN ? EE_EIO : map_rc(rc),
                       "sqlite: cannot open the database file: %s",
                       c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
    } else {
        sqlite3_extended_result_codes(c->db, 1);
        sqlite3_busy_timeout(c->db, l->busy_ms);
        char pragmas[256];
        snprintf(pragmas, sizeof pragmas,
                 "PRAGMA foreign_keys = ON; PRAGMA synchronous = %s;",
                 sync_names[l->synchronous]);
        char mode[16];
        rc = ee__sqlite_wal(c->db, l->busy_ms, mode);
        if (rc != SQLITE_OK) {
            st = db_error(c->db, rc, "cannot switch to WAL");
        } else if (strcmp(l->path, ":memory:") != 0 && strcmp(mode, "wal") != 0) {
            st = ee__error(EE_EIO, "sqlite: the file refuses WAL mode (journal_mode is %s)",
                           mode);
        }
        if (st == EE_OK)
            st = exec(c->db, pragmas, "cannot apply the connection settings");
        if (st == EE_OK && l->ckpt_running) {
            sqlite3_wal_autocheckpoint(c->db, 0); /* replaces any earlier hook */
            sqlite3_wal_hook(c->db, wal_hook, l);
        }
    }
    if (st != EE_OK) {
        conn_close(l, c);
        return st;
    }
    *out = c;
    return EE_OK;
}

/* ---- the pool (core/pool.h) ----------------------------------------------------- */

static ee_status pool_open(void *owner, void **out)
{
    conn *c = NULL;
    ee_status st = conn_open(owner, &c);
    *out = c;
    return st;
}

static void pool_close(void *owner, void *c)
{
    conn_close(owner, c);
}

/* A connection left inside a transaction by an error is rolled back
 * before anyone else gets it. */
static bool pool_reuse(void *owner, void *vc)
{
    (void)owner;
    conn *c = vc;
    if (!sqlite3_get_autocommit(c->db))
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    if (c->relaxed) {
        /* back to FULL, or the connection is closed: never a relaxed one
         * serving a write that must be synced */
        if (sqlite3_exec(c->db, "PRAGMA synchronous = FULL", NULL, NULL, NULL) != SQLITE_OK)
            return false;
        c->relaxed = false;
    }
    return true;
}

static const ee__pool_ops lite_pool_ops = {pool_open, pool_close, pool_reuse};

/* The connection of the atomic scope (ee__storage_atomic()) the calling
 * thread is inside: every slot it calls on `l` uses it, inside its
 * transaction. */
static _Thread_local struct {
    lite *l;
    conn *c;
} pin;

static bool pinned(const lite *l)
{
    return pin.l == l;
}

static ee_status acquire(lite *l, conn **out)
{
    if (pinned(l)) {
        *out = pin.c;
        /* An I/O error, a full disk may have rolled the whole transaction
         * back: a write now would commit on its own. */
        if (sqlite3_get_autocommit(pin.c->db))
            return ee__error(EE_EIO, "sqlite: the transaction of this step was rolled back by "
                                     "an earlier error");
        return EE_OK;
    }
    void *c = NULL;
    ee_status st = ee__pool_take(&l->pool, &c);
    *out = c;
    return st;
}

static void release(lite *l, conn *c)
{
    if (pinned(l) && c == pin.c)
        return; /* the scope's: given back by its end */
    ee__pool_give(&l->pool, c);
}

/* BEGIN IMMEDIATE of a read-modify-write slot, unless the scope's
 * transaction (which holds the write lock already) is open. */
static ee_status begin_rmw(lite *l, conn *cn)
{
    return pinned(l) ? EE_OK : exec(cn->db, "BEGIN IMMEDIATE", "cannot take the write lock");
}

static ee_status commit_rmw(lite *l, conn *cn, const char *what)
{
    return pinned(l) ? EE_OK : exec(cn->db, "COMMIT", what);
}

static size_t coll_index(const lite *l, const ee_storage_collection *c)
{
    for (size_t i = 0; i < l->n_colls; i++)
        if (l->colls[i] == c)
            return i;
    return 0; /* unreachable: the wrapper only passes declared collections */
}

/* A reset, unbound statement for one of the fixed operations. */
static ee_status fixed(lite *l, conn *c, const ee_storage_collection *coll, int kind,
                       sqlite3_stmt **out)
{
    size_t slot = coll_index(l, coll) * K_COUNT + (size_t)kind;
    if (c->fixed[slot] == NULL) {
        int rc = sqlite3_prepare_v3(c->db, l->fixed_sql[slot], -1, SQLITE_PREPARE_PERSISTENT,
                                    &c->fixed[slot], NULL);
        if (rc != SQLITE_OK)
            return db_error(c->db, rc, "cannot prepare a statement");
    }
    *out = c->fixed[slot];
    return EE_OK;
}

/* A reset, unbound masked UPDATE (masked_update_sql()), from the
 * connection's cache for the collection. */
static ee_status masked(lite *l, conn *c, const ee_storage_collection *coll, uint32_t mask,
                        sqlite3_stmt **out)
{
    size_t ci = coll_index(l, coll);
    upd_stmt *slots = &c->upd[ci * UPD_CACHE];
    uint64_t key = (uint64_t)mask + 1;
    for (int i = 0; i < UPD_CACHE; i++)
        if (slots[i].key == key) {
            *out = slots[i].st;
            return EE_OK;
        }
    char *sql = masked_update_sql(coll, mask);
    if (sql == NULL)
        return ee__error(EE_ENOMEM, "sqlite: out of memory");
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
    free(sql);
    if (rc != SQLITE_OK)
        return db_error(c->db, rc, "cannot prepare a statement");
    upd_stmt *slot = &slots[c->upd_next[ci]++ % UPD_CACHE];
    sqlite3_finalize(slot->st);
    slot->key = key;
    slot->st = st;
    *out = st;
    return EE_OK;
}

/* A statement for SQL built at run time, from a small per-connection cache. */
static ee_status dynamic(conn *c, const char *sql, sqlite3_stmt **out)
{
    for (int i = 0; i < c->n_dyn; i++)
        if (strcmp(c->dyn[i].sql, sql) == 0) {
            *out = c->dyn[i].st;
            return EE_OK;
        }
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
    if (rc != SQLITE_OK)
        return db_error(c->db, rc, "cannot prepare a query");
    char *copy = strdup(sql);
    if (copy == NULL) {
        sqlite3_finalize(st);
        return ee__error(EE_ENOMEM, "sqlite: out of memory");
    }
    int slot = c->n_dyn < DYN_CACHE ? c->n_dyn++ : c->next_evict++ % DYN_CACHE;
    if (slot < c->n_dyn && c->dyn[slot].st != NULL && c->dyn[slot].sql != NULL) {
        sqlite3_finalize(c->dyn[slot].st);
        free(c->dyn[slot].sql);
    }
    c->dyn[slot].sql = copy;
    c->dyn[slot].st = st;
    *out = st;
    return EE_OK;
}

static void done(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* ---- schema and migrations --------------------------------------------------------- */

/* Every collection's table and indexes; `ine` adds IF NOT EXISTS (the
 * version 3 step, which adds the tables of newer collections). */
static ee_status create_schema(lite *l, sqlite3 *db, bool ine)
{
    const char *x = ine ? "IF NOT EXISTS " : "";
    char buf[SQL_MAX], t[80], col[EE_STORAGE_FIELD_MAX + 4];
    for (size_t i = 0; i < l->n_colls; i++) {
        const ee_storage_collection *c = l->colls[i];
        table_name(c, t, sizeof t);
        buf[0] = '\0';
        cat(buf, "CREATE TABLE %s%s (id BLOB NOT NULL UNIQUE, ws TEXT NOT NULL, rev INTEGER "
                 "NOT NULL, t INTEGER NOT NULL", x, t);
        columns(c, buf, " TEXT");
        cat(buf, ", doc BLOB NOT NULL);");
        cat(buf, "CREATE INDEX %s\"ee_%s_t\" ON %s (ws, t, id);", x, c->name, t);
        for (size_t k = 0; k < c->n_indexes; k++) {
            cat(buf, "CREATE INDEX %s\"ee_%s_i%zu\" ON %s (ws", x, c->name, k, t);
            for (const int *f = c->indexes[k]; *f >= 0; f++) {
                ee__storage_column_name(c->fields[*f], col, sizeof col);
                cat(buf, ", %s", col);
            }
            cat(buf, ", t, id);");
        }
        if (c->n_unique > 0) {
            cat(buf, "CREATE UNIQUE INDEX %s\"ee_%s_u\" ON %s (ws", x, c->name, t);
            for (size_t u = 0; u < c->n_unique; u++) {
                ee__storage_column_name(c->fields[c->unique[u]], col, sizeof col);
                cat(buf, ", %s", col);
            }
            cat(buf, ");");
        }
        ee_status st = exec(db, buf, "cannot create the tables");
        if (st != EE_OK)
            return st;
    }
    return EE_OK;
}

/* Bring the file to EE__STORAGE_SCHEMA_VERSION under the write lock, so
 * several processes opening a new file at once create it exactly once. */
static ee_status migrate(lite *l, sqlite3 *db)
{
    ee_status st = exec(db, "BEGIN IMMEDIATE", "cannot lock the database to migrate it");
    if (st != EE_OK)
        return st;
    sqlite3_stmt *q = NULL;
    int version = -1;
    int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &q, NULL);
    if (rc == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW)
        version = sqlite3_column_int(q, 0);
    else
        st = db_error(db, rc == SQLITE_OK ? sqlite3_errcode(db) : rc, "cannot read the schema "
                                                                      "version");
    sqlite3_finalize(q);
    if (st == EE_OK && version > EE__STORAGE_SCHEMA_VERSION)
        st = ee__error(EE_EVERSION,
                       "sqlite: the database has schema version %d, newer than the %d this "
                       "library knows: upgrade libexecengine", version,
                       EE__STORAGE_SCHEMA_VERSION);
    /* Each step takes the file from version v to v + 1. */
    if (st == EE_OK && version < 1)
        st = create_schema(l, db, false);
    if (st == EE_OK && version < 2)
        st = exec(db, EE__STORAGE_V2_DEDUPE "; " EE__STORAGE_V2_INDEX ";",
                  "cannot migrate to schema version 2");
    /* 3: the queue's and the gateway's collections; 4: the e-mail outbox */
    if (st == EE_OK && version >= 1 && version < 4)
        st = create_schema(l, db, true);
    if (st == EE_OK && version < EE__STORAGE_SCHEMA_VERSION) {
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA user_version = %d", EE__STORAGE_SCHEMA_VERSION);
        st = exec(db, sql, "cannot record the schema version");
    }
    if (st == EE_OK)
        st = exec(db, "COMMIT", "cannot commit the migration");
    if (st != EE_OK)
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return st;
}

/* mkdir -p of the file's directory. */
static ee_status make_parent(const char *path)
{
    char *dir = strdup(path);
    if (dir == NULL)
        return ee__error(EE_ENOMEM, "sqlite: out of memory");
    char *slash = strrchr(dir, '/');
    ee_status st = EE_OK;
    if (slash != NULL && slash != dir) {
        *slash = '\0';
        for (char *p = dir + 1; st == EE_OK; p++) {
            if (*p != '/' && *p != '\0')
                continue;
            char keep = *p;
            *p = '\0';
            if (mkdir(dir, 0700) != 0 && errno != EEXIST)
                st = ee__error(EE_EIO, "sqlite: cannot create the directory %s: %s", dir,
                               strerror(errno));
            *p = keep;
            if (keep == '\0')
                break;
        }
    }
    free(dir);
    return st;
}

/* ---- operations ------------------------------------------------------------------- */

static void bind_record(sqlite3_stmt *st, const ee_storage_collection *c,
                        const ee_storage_record *r, int first_field)
{
    for (size_t i = 0; i < c->n_fields; i++) {
        if (r->values[i] != NULL)
            sqlite3_bind_text(st, first_field + (int)i, r->values[i], -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, first_field + (int)i);
    }
}

static ee_status insert_row(lite *l, conn *cn, const ee_storage_collection *c,
                            const ee_storage_record *r)
{
    sqlite3_stmt *st;
    ee_status s = fixed(l, cn, c, K_INSERT, &st);
    if (s != EE_OK)
        return s;
    sqlite3_bind_blob(st, 1, r->id, 12, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, r->workspace, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, r->revision);
    sqlite3_bind_int64(st, 4, r->time);
    bind_record(st, c, r, 5);
    sqlite3_bind_blob(st, 5 + (int)c->n_fields, r->data, (int)r->len, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE)
        s = (rc & 0xff) == SQLITE_CONSTRAINT
                ? ee__error(EE_EEXISTS, "%s: a document with the same id or unique key exists",
                            c->name)
                : db_error(cn->db, rc, "insert failed");
    done(st);
    return s;
}

static ee_status lite_insert(void *ctx, const ee_storage_collection *c,
                             const ee_storage_record *r)
{
    lite *l = ctx;
    conn *cn;
    ee_status s = acquire(l, &cn);
    if (s != EE_OK)
        return s;
    s = insert_row(l, cn, c, r);
    release(l, cn);
    return s;
}

static ee_status lite_get(void *ctx, const ee_storage_collection *c, const char *ws,
                          const uint8_t *id, ee_storage_row_fn fn, void *payload)
{
    lite *l = ctx;
    conn *cn;
    sqlite3_stmt *st;
    ee_status s = acquire(l, &cn);
    if (s != EE_OK)
        return s;
    if ((s = fixed(l, cn, c, K_GET, &st)) == EE_OK) {
        sqlite3_bind_blob(st, 1, id, 12, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, ws, -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            ee_storage_row row = {id, sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
                                  sqlite3_column_blob(st, 2),
                                  (size_t)sqlite3_column_bytes(st, 2)};
            (void)fn(&row, payload);
        } else if (rc == SQLITE_DONE) {
            s = ee__storage_not_found(c, id);
        } else {
            s = db_error(cn->db, rc, "get failed");
        }
        done(st);
    }
    release(l, cn);
    return s;
}

/* Whether the stored column (a TEXT or NULL) differs from `v`. */
static bool column_differs(sqlite3_stmt *st, int col, const char *v)
{
    const unsigned char *old = sqlite3_column_text(st, col);
    if (old == NULL || v == NULL)
        return (old == NULL) != (v == NULL);
    return strcmp((const char *)old, v) != 0;
}

/* The stored row's revision and the columns `r` changes (masked_update_sql()'s
 * mask). EE_ENOTFOUND when there is no such document. */
static ee_status changed_columns(lite *l, conn *cn, const ee_storage_collection *c,
                                 const ee_storage_record *r, int64_t *rev, uint32_t *mask)
{
    sqlite3_stmt *st;
    ee_status s = fixed(l, cn, c, K_FIELDS, &st);
    if (s != EE_OK)
        return s;
    sqlite3_bind_blob(st, 1, r->id, 12, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, r->workspace, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *rev = sqlite3_column_int64(st, 0);
        *mask = sqlite3_column_int64(st, 1) != r->time ? 1u : 0u;
        for (size_t i = 0; i < c->n_fields; i++)
            if (column_differs(st, 2 + (int)i, r->values[i]))
                *mask |= 1u << (i + 1);
    } else {
        s = rc == SQLITE_DONE ? ee__storage_not_found(c, r->id)
                              : db_error(cn->db, rc, "replace failed");
    }
    done(st);
    return s;
}

/* The UPDATE of a replace, bound: only the columns whose values changed. */
static ee_status update_stmt(lite *l, conn *cn, const ee_storage_collection *c,
                             const ee_storage_record *r, int64_t expected, sqlite3_stmt **out)
{
    int64_t rev = 0;
    uint32_t mask = 0;
    ee_status s = changed_columns(l, cn, c, r, &rev, &mask);
    if (s != EE_OK)
        return s;
    if (rev != expected)
        return ee__error(EE_ECONFLICT, "%s: stale revision %lld (stored %lld)", c->name,
                         (long long)expected, (long long)rev);
    sqlite3_stmt *st = NULL;
    if ((s = masked(l, cn, c, mask, &st)) != EE_OK)
        return s;
    sqlite3_bind_blob(st, 1, r->id, 12, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, r->workspace, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, r->revision);
    sqlite3_bind_blob(st, 4, r->data, (int)r->len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, expected);
    int p = 6;
    if (mask & 1u)
        sqlite3_bind_int64(st, p++, r->time);
    for (size_t i = 0; i < c->n_fields; i++) {
        if (!(mask & (1u << (i + 1))))
            continue;
        if (r->values[i] != NULL)
            sqlite3_bind_text(st, p++, r->values[i], -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, p++);
    }
    *out = st;
    return EE_OK;
}

static ee_status write_begin(lite *l, conn **out);
static ee_status write_end(lite *l, conn *cn, ee_status s, const char *what);

/* The read of the stored columns and the write happen under the write lock
 * (the scope's, or a transaction of their own), so the columns compared are
 * the row's when it is written: a row deleted and inserted again with the
 * same id and revision between the two could otherwise keep columns of the
 * other document. */
static ee_status lite_replace(void *ctx, const ee_storage_collection *c, int64_t expected,
                              const ee_storage_record *r)
{
    lite *l = ctx;
    conn *cn;
    sqlite3_stmt *st = NULL;
    ee_status s = write_begin(l, &cn);
    if (s != EE_OK)
        return s;
    if ((s = update_stmt(l, cn, c, r, expected, &st)) == EE_OK) {
        int rc = sqlite3_step(st);
        if (rc != SQLITE_DONE)
            s = (rc & 0xff) == SQLITE_CONSTRAINT
                    ? ee__error(EE_EEXISTS, "%s: another document has the same unique key",
                                c->name)
                    : db_error(cn->db, rc, "replace failed");
        else if (sqlite3_changes(cn->db) != 1)
            s = ee__error(EE_EIO, "sqlite: %s: the replaced row changed under the write lock",
                          c->name);
        done(st);
    }
    return write_end(l, cn, s, "cannot commit the replace");
}

static ee_status lite_remove(void *ctx, const ee_storage_collection *c, const char *ws,
                             const uint8_t *id)
{
    lite *l = ctx;
    conn *cn;
    sqlite3_stmt *st;
    ee_status s = acquire(l, &cn);
    if (s != EE_OK)
        return s;
    if ((s = fixed(l, cn, c, K_REMOVE, &st)) == EE_OK) {
        sqlite3_bind_blob(st, 1, id, 12, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, ws, -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        if (rc != SQLITE_DONE)
            s = db_error(cn->db, rc, "delete failed");
        else if (sqlite3_changes(cn->db) == 0)
            s = ee__storage_not_found(c, id);
        done(st);
    }
    release(l, cn);
    return s;
}

/* WHERE clause of a filter; binds are numbered from 1 in the order
 * bind_filter() follows. */
static void where(const ee_storage_collection *c, const char *ws, const ee_storage_filter *f,
                  char *buf)
{
    char col[EE_STORAGE_FIELD_MAX + 4];
    cat(buf, " WHERE t >= ? AND t < ?");
    if (ws != NULL)
        cat(buf, " AND ws = ?");
    for (size_t i = 0; i < c->n_fields; i++)
        if (f->values[i] != NULL) {
            ee__storage_column_name(c->fields[i], col, sizeof col);
            cat(buf, " AND %s = ?", col);
        }
}

static int bind_filter(sqlite3_stmt *st, const ee_storage_collection *c, const char *ws,
                       const ee_storage_filter *f)
{
    int k = 1;
    sqlite3_bind_int64(st, k++, f->time_from);
    sqlite3_bind_int64(st, k++, f->time_to);
    if (ws != NULL)
        sqlite3_bind_text(st, k++, ws, -1, SQLITE_STATIC);
    for (size_t i = 0; i < c->n_fields; i++)
        if (f->values[i] != NULL)
            sqlite3_bind_text(st, k++, f->values[i], -1, SQLITE_STATIC);
    return k;
}

static ee_status lite_query(void *ctx, const ee_storage_collection *c, const char *ws,
                            const ee_storage_filter *f, const ee_storage_position *after,
                            size_t limit, ee_storage_row_fn fn, void *payload)
{
    lite *l = ctx;
    char sql[SQL_MAX] = "", t[80];
    bool by_time, desc;
    const char *order = ee__storage_order_sql(f->order, &by_time, &desc);
    table_name(c, t, sizeof t);
    cat(sql, "SELECT id, rev, t, doc FROM %s", t);
    where(c, ws, f, sql);
    if (after != NULL)
        cat(sql, by_time ? " AND (t, id) %s (?, ?)" : " AND id %s ?", desc ? "<" : ">");
    cat(sql, " ORDER BY %s LIMIT ?", order);
    conn *cn;
    sqlite3_stmt *st;
    ee_status s = acquire(l, &cn);
    if (s != EE_OK)
        return s;
    if ((s = dynamic(cn, sql, &st)) == EE_OK) {
        int k = bind_filter(st, c, ws, f);
        if (after != NULL && by_time)
            sqlite3_bind_int64(st, k++, after->time);
        if (after != NULL)
            sqlite3_bind_blob(st, k++, after->id, 12, SQLITE_STATIC);
        sqlite3_bind_int64(st, k, (sqlite3_int64)limit);
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            uint8_t id[12] = {0};
            const void *idb = sqlite3_column_blob(st, 0);
            if (idb != NULL && sqlite3_column_bytes(st, 0) == 12)
                memcpy(id, idb, 12);
            ee_storage_row row = {id, sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2),
                                  sqlite3_column_blob(st, 3),
                                  (size_t)sqlite3_column_bytes(st, 3)};
            if (fn(&row, payload) != 0)
                break;
        }
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
            s = db_error(cn->db, rc, "query failed");
        done(st);
    }
    release(l, cn);
    return s;
}

static ee_status lite_count(void *ctx, const ee_storage_collection *c, const char *ws,
                            const ee_storage_filter *f, uint64_t *out)
{
    lite *l = ctx;
    char sql[SQL_MAX] = "", t[80];
    table_name(c, t, sizeof t);
    cat(sql, "SELECT count(*) FROM %s", t);
    where(c, ws, f, sql);
    conn *cn;
    sqlite3_stmt *st;
    ee_status s = acquire(l, &cn);
    if (s != EE_OK)
        return s;
    if ((s = dynamic(cn, sql, &st)) == EE_OK) {
        bind_filter(st, c, ws, f);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
            *out = (uint64_t)sqlite3_column_int64(st, 0);
        else
            s = db_error(cn->db, rc, "count failed");
        done(st);
    }
    release(l, cn);
    return s;
}

static ee_status increment_locked(lite *l, conn *cn, const ee_storage_collection *c,
                                  const ee_storage_record *r, const ee_storage_inc *inc,
                                  size_t n_inc, int64_t now_ms, int64_t *totals_out)
{
    sqlite3_stmt *st;
    ee_status s = fixed(l, cn, c, K_BYKEY, &st);
    if (s != EE_OK)
        return s;
    sqlite3_bind_text(st, 1, r->workspace, -1, SQLITE_STATIC);
    for (size_t u = 0; u < c->n_unique; u++)
        sqlite3_bind_text(st, 2 + (int)u, r->values[c->unique[u]], -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        done(st);
        s = insert_row(l, cn, c, r);
        if (s == EE_OK && totals_out != NULL)
            for (size_t i = 0; i < n_inc; i++)
                totals_out[i] = inc[i].delta;
        return s;
    }
    if (rc != SQLITE_ROW) {
        s = db_error(cn->db, rc, "increment failed");
        done(st);
        return s;
    }
    uint8_t id[12] = {0};
    if (sqlite3_column_bytes(st, 0) == 12)
        memcpy(id, sqlite3_column_blob(st, 0), 12);
    bson_t out;
    int64_t totals[EE_STORAGE_INC_MAX];
    s = ee__storage_doc_apply_inc(sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1),
                                  inc, n_inc, now_ms, &out, totals);
    done(st);
    if (s == EE_OK && (s = fixed(l, cn, c, K_SETDOC, &st)) == EE_OK) {
        sqlite3_bind_blob(st, 1, id, 12, SQLITE_STATIC);
        sqlite3_bind_blob(st, 2, bson_get_data(&out), (int)out.len, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc != SQLITE_DONE)
            s = db_error(cn->db, rc, "increment failed");
        done(st);
    }
    bson_destroy(&out);
    if (s == EE_OK && totals_out != NULL)
        memcpy(totals_out, totals, n_inc * sizeof *totals);
    return s;
}

/* A connection holding the write lock (BEGIN IMMEDIATE): no other writer,
 * thread or process, is inside until write_end(). */
static ee_status write_begin(lite *l, conn **out)
{
    ee_status s = acquire(l, out);
    if (s != EE_OK)
        return s;
    s = begin_rmw(l, *out); /* inside an atomic scope: already in its transaction */
    if (s != EE_OK)
        release(l, *out);
    return s;
}

/* Commit when `s` (what the work under the lock returned) is EE_OK, give
 * the connection back (release() rolls back what is left open) and return
 * the first failure; `what` words a failed commit. */
static ee_status write_end(lite *l, conn *cn, ee_status s, const char *what)
{
    if (s == EE_OK)
        s = commit_rmw(l, cn, what);
    release(l, cn); /* rolls back if still in the transaction */
    return s;
}

static ee_status lite_increment(void *ctx, const ee_storage_collection *c,
                                const ee_storage_record *r, const ee_storage_inc *inc,
                                size_t n_inc, int64_t now_ms, int64_t *totals_out)
{
    lite *l = ctx;
    conn *cn;
    ee_status s = write_begin(l, &cn);
    if (s != EE_OK)
        return s;
    s = increment_locked(l, cn, c, r, inc, n_inc, now_ms, totals_out);
    return write_end(l, cn, s, "cannot commit the increment");
}

static ee_status lite_delete_range(void *ctx, const ee_storage_collection *c, const char *ws,
                                   int64_t from, int64_t to, uint64_t *deleted)
{
    lite *l = ctx;
    char sql[SQL_MAX] = "", t[80];
    table_name(c, t, sizeof t);
    cat(sql, "DELETE FROM %s WHERE t >= ?1 AND t < ?2%s", t, ws != NULL ? " AND ws = ?3" : "");
    conn *cn;
    sqlite3_stmt *st;
    ee_status s = acquire(l, &cn);
    if (s != EE_OK)
        return s;
    if ((s = dynamic(cn, sql, &st)) == EE_OK) {
        sqlite3_bind_int64(st, 1, from);
        sqlite3_bind_int64(st, 2, to);
        if (ws != NULL)
            sqlite3_bind_text(st, 3, ws, -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
            *deleted = (uint64_t)sqlite3_changes64(cn->db);
        else
            s = db_error(cn->db, rc, "delete by time range failed");
        done(st);
    }
    release(l, cn);
    return s;
}

/* Under the write lock (BEGIN IMMEDIATE): no other writer, thread or
 * process, is inside, so the first matching row is free to take. */
static ee_status claim_locked(lite *l, conn *cn, const ee_storage_collection *c, const char *ws,
                              const ee_storage_filter *f, int k, ee_storage_claim_fn fn,
                              void *payload)
{
    char sql[SQL_MAX] = "", t[80], col[EE_STORAGE_FIELD_MAX + 4];
    table_name(c, t, sizeof t);
    cat(sql, "SELECT id, rev, t, doc FROM %s", t);
    where(c, ws, f, sql);
    if (k >= 0) {
        ee__storage_column_name(c->fields[k], col, sizeof col);
        cat(sql, " ORDER BY %s ASC, t ASC, id ASC LIMIT 1", col);
    } else {
        cat(sql, " ORDER BY t ASC, id ASC LIMIT 1");
    }
    sqlite3_stmt *st;
    ee_status s = dynamic(cn, sql, &st);
    if (s != EE_OK)
        return s;
    bind_filter(st, c, ws, f);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        done(st);
        return ee__error(EE_ENOTFOUND, "%s: nothing to claim", c->name);
    }
    if (rc != SQLITE_ROW) {
        s = db_error(cn->db, rc, "claim failed");
        done(st);
        return s;
    }
    uint8_t id[12] = {0};
    if (sqlite3_column_bytes(st, 0) == 12)
        memcpy(id, sqlite3_column_blob(st, 0), 12);
    int64_t rev = sqlite3_column_int64(st, 1);
    ee_storage_row row = {id, rev, sqlite3_column_int64(st, 2), sqlite3_column_blob(st, 3),
                          (size_t)sqlite3_column_bytes(st, 3)};
    const ee_storage_record *r = NULL;
    s = fn(&row, &r, payload);
    done(st);
    if (s != EE_OK)
        return s;
    if ((s = fixed(l, cn, c, K_UPDATE, &st)) != EE_OK)
        return s;
    sqlite3_bind_blob(st, 1, r->id, 12, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, r->workspace, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, r->revision);
    sqlite3_bind_int64(st, 4, r->time);
    bind_record(st, c, r, 5);
    sqlite3_bind_blob(st, 5 + (int)c->n_fields, r->data, (int)r->len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6 + (int)c->n_fields, rev);
    rc = sqlite3_step(st);
    if (rc != SQLITE_DONE)
        s = (rc & 0xff) == SQLITE_CONSTRAINT
                ? ee__error(EE_EEXISTS, "%s: another document has the same unique key", c->name)
                : db_error(cn->db, rc, "claim failed");
    else if (sqlite3_changes(cn->db) != 1)
        s = ee__error(EE_EIO, "sqlite: %s: the claimed row changed under the write lock",
                      c->name);
    done(st);
    return s;
}

static ee_status lite_claim(void *ctx, const ee_storage_collection *c, const char *ws,
                            const ee_storage_filter *f, int k, ee_storage_claim_fn fn,
                            void *payload)
{
    lite *l = ctx;
    conn *cn;
    ee_status s = write_begin(l, &cn);
    if (s != EE_OK)
        return s;
    s = claim_locked(l, cn, c, ws, f, k, fn, payload);
    return write_end(l, cn, s, "cannot commit the claim");
}

static void lite_destroy(void *ctx)
{
    lite *l = ctx;
    if (l == NULL)
        return;
    ckpt_stop(l);
    ee__pool_destroy(&l->pool);
    if (l->fixed_sql != NULL)
        for (size_t i = 0; i < l->n_colls * K_COUNT; i++)
            free(l->fixed_sql[i]);
    free(l->fixed_sql);
    free(l->path);
    pthread_cond_destroy(&l->ckpt_cond);
    pthread_mutex_destroy(&l->ckpt_lock);
    pthread_mutex_destroy(&l->ckpt_run);
    free(l);
}

/* ---- atomic scopes (internal.h's ee__storage_tx_ops) -------------------------- */

static ee_status lite_begin(void *ctx, unsigned flags)
{
    lite *l = ctx;
    if (pin.l != NULL)
        return ee__error(EE_EINVAL, "sqlite: a transaction is already open on this thread");
    conn *cn;
    ee_status s = acquire(l, &cn);
    if (s != EE_OK)
        return s;
    /* a deferred scope commits without the fsync (set back in pool_reuse;
     * if this fails the scope is simply synced) */
    if ((flags & EE__STORAGE_DEFERRED) && l->synchronous == 2 &&
        sqlite3_exec(cn->db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL) == SQLITE_OK)
        cn->relaxed = true;
    if ((s = exec(cn->db, "BEGIN IMMEDIATE", "cannot take the write lock")) != EE_OK) {
        release(l, cn);
        return s;
    }
    pin.l = l;
    pin.c = cn;
    return EE_OK;
}

static ee_status lite_end(void *ctx, bool commit)
{
    lite *l = ctx;
    conn *cn = pin.c;
    if (!pinned(l) || cn == NULL)
        return ee__error(EE_EINVAL, "sqlite: no transaction open on this thread");
    pin.l = NULL;
    pin.c = NULL;
    ee_status s = EE_OK;
    if (sqlite3_get_autocommit(cn->db))
        s = commit ? ee__error(EE_EIO, "sqlite: the transaction of this step was rolled back "
                                       "by an earlier error")
                   : EE_OK;
    else if (commit)
        s = exec(cn->db, "COMMIT", "cannot commit");
    release(l, cn); /* rolls back if still in the transaction */
    return s;
}

static const ee__storage_tx_ops sqlite_tx = {lite_begin, lite_end};

static const ee_storage_backend sqlite_backend = {
    .version = EE_STORAGE_BACKEND_VERSION,
    .flags = EE_STORAGE_THREAD_SAFE | EE_STORAGE_TRANSACTIONAL,
    .name = "sqlite",
    .destroy = lite_destroy,
    .insert = lite_insert,
    .get = lite_get,
    .replace = lite_replace,
    .remove = lite_remove,
    .query = lite_query,
    .count = lite_count,
    .increment = lite_increment,
    .delete_range = lite_delete_range,
    .claim = lite_claim,
};

ee_status ee__storage_sqlite_open(ee_storage **out, const ee__sqlite_options *o)
{
    if (strlen(o->path) >= PATH_MAX)
        return ee__error(EE_ETOOBIG, "sqlite: the file path is longer than %d bytes", PATH_MAX);
    lite *l = calloc(1, sizeof *l);
    if (l == NULL)
        return ee__error(EE_ENOMEM, "sqlite: out of memory");
    pthread_mutex_init(&l->ckpt_lock, NULL);
    pthread_cond_init(&l->ckpt_cond, NULL);
    pthread_mutex_init(&l->ckpt_run, NULL);
    l->path = strdup(o->path);
    l->synchronous = o->synchronous;
    l->busy_ms = o->busy_timeout_ms;
    /* Each connection to ":memory:" is its own database: keep one. */
    size_t max = strcmp(o->path, ":memory:") == 0 ? 1 : POOL_MAX;
    l->colls = ee__storage_collections(&l->n_colls);
    l->fixed_sql = calloc(l->n_colls * K_COUNT, sizeof *l->fixed_sql);
    ee_status st = EE_OK;
    if (l->path == NULL || l->fixed_sql == NULL)
        st = ee__error(EE_ENOMEM, "sqlite: out of memory");
    for (size_t i = 0; st == EE_OK && i < l->n_colls; i++)
        if (l->colls[i]->n_fields > UPD_FIELDS_MAX)
            st = ee__error(EE_EINVAL, "sqlite: collection %s declares more than %d fields",
                           l->colls[i]->name, UPD_FIELDS_MAX);
    for (size_t i = 0; st == EE_OK && i < l->n_colls; i++)
        for (int k = 0; st == EE_OK && k < K_COUNT; k++)
            if ((l->fixed_sql[i * K_COUNT + (size_t)k] = fixed_sql(l->colls[i], k)) == NULL)
                st = ee__error(EE_ENOMEM, "sqlite: out of memory");
    if (st == EE_OK)
        st = ee__pool_init(&l->pool, &lite_pool_ops, l, max, max);
    if (st == EE_OK && strcmp(o->path, ":memory:") != 0)
        st = make_parent(o->path);
    /* before the first connection: every one hands its checkpoints over */
    if (st == EE_OK && strcmp(o->path, ":memory:") != 0)
        ckpt_start(l);
    conn *first = NULL;
    if (st == EE_OK)
        st = acquire(l, &first);
    if (st == EE_OK) {
        st = migrate(l, first->db);
        release(l, first);
    }
    if (st != EE_OK) {
        lite_destroy(l);
        return st;
    }
    return ee__storage_wrap_tx(out, &sqlite_backend, l, &sqlite_tx);
}
