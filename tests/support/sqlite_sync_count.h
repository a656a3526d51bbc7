/*
 * Counting the fsyncs SQLite asks for: a VFS shim registered as the
 * process's default that forwards everything to the real default VFS and
 * counts xSync calls on write-ahead logs (sqlite_syncs_wal) and on other
 * files (sqlite_syncs_other), and the bytes written to write-ahead logs
 * (sqlite_wal_bytes: each frame is a 24-byte header and a page), and the
 * wall time spent in xSync (sqlite_sync_ns). Install it before the engine opens its
 * database (connections opened earlier keep the VFS they had).
 * Header-only for the tests.
 */
#ifndef EE_TEST_SQLITE_SYNC_COUNT_H
#define EE_TEST_SQLITE_SYNC_COUNT_H

#include <sqlite3.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

static _Atomic long sqlite_syncs_wal, sqlite_syncs_other, sqlite_wal_bytes, sqlite_sync_ns;
/* the syncs of files other than logs (a checkpoint's) made by the calling thread */
static _Thread_local long sqlite_syncs_other_here;
static sqlite3_vfs *sc_real;

typedef struct sc_file {
    sqlite3_file base;
    sqlite3_file *real; /* just after this struct */
    int wal;
} sc_file;

#define SC_REAL(f) (((sc_file *)(f))->real)

static int sc_close(sqlite3_file *f)
{
    return SC_REAL(f)->pMethods != NULL ? SC_REAL(f)->pMethods->xClose(SC_REAL(f)) : SQLITE_OK;
}
static int sc_read(sqlite3_file *f, void *b, int n, sqlite3_int64 o)
{
    return SC_REAL(f)->pMethods->xRead(SC_REAL(f), b, n, o);
}
static int sc_write(sqlite3_file *f, const void *b, int n, sqlite3_int64 o)
{
    if (((sc_file *)f)->wal)
        atomic_fetch_add(&sqlite_wal_bytes, n);
    return SC_REAL(f)->pMethods->xWrite(SC_REAL(f), b, n, o);
}
static int sc_truncate(sqlite3_file *f, sqlite3_int64 n)
{
    return SC_REAL(f)->pMethods->xTruncate(SC_REAL(f), n);
}
static int sc_sync(sqlite3_file *f, int flags)
{
    if (((sc_file *)f)->wal)
        atomic_fetch_add(&sqlite_syncs_wal, 1);
    else {
        atomic_fetch_add(&sqlite_syncs_other, 1);
        sqlite_syncs_other_here++;
    }
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    int rc = SC_REAL(f)->pMethods->xSync(SC_REAL(f), flags);
    clock_gettime(CLOCK_MONOTONIC, &b);
    atomic_fetch_add(&sqlite_sync_ns,
                     (long)((b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec)));
    return rc;
}
static int sc_size(sqlite3_file *f, sqlite3_int64 *n)
{
    return SC_REAL(f)->pMethods->xFileSize(SC_REAL(f), n);
}
static int sc_lock(sqlite3_file *f, int l)
{
    return SC_REAL(f)->pMethods->xLock(SC_REAL(f), l);
}
static int sc_unlock(sqlite3_file *f, int l)
{
    return SC_REAL(f)->pMethods->xUnlock(SC_REAL(f), l);
}
static int sc_reserved(sqlite3_file *f, int *r)
{
    return SC_REAL(f)->pMethods->xCheckReservedLock(SC_REAL(f), r);
}
static int sc_fctl(sqlite3_file *f, int op, void *a)
{
    return SC_REAL(f)->pMethods->xFileControl(SC_REAL(f), op, a);
}
static int sc_sector(sqlite3_file *f)
{
    return SC_REAL(f)->pMethods->xSectorSize(SC_REAL(f));
}
static int sc_devchar(sqlite3_file *f)
{
    return SC_REAL(f)->pMethods->xDeviceCharacteristics(SC_REAL(f));
}
static int sc_shm_map(sqlite3_file *f, int pg, int sz, int ext, void volatile **pp)
{
    return SC_REAL(f)->pMethods->xShmMap(SC_REAL(f), pg, sz, ext, pp);
}
static int sc_shm_lock(sqlite3_file *f, int o, int n, int fl)
{
    return SC_REAL(f)->pMethods->xShmLock(SC_REAL(f), o, n, fl);
}
static void sc_shm_barrier(sqlite3_file *f)
{
    SC_REAL(f)->pMethods->xShmBarrier(SC_REAL(f));
}
static int sc_shm_unmap(sqlite3_file *f, int del)
{
    return SC_REAL(f)->pMethods->xShmUnmap(SC_REAL(f), del);
}
static int sc_fetch(sqlite3_file *f, sqlite3_int64 o, int n, void **pp)
{
    return SC_REAL(f)->pMethods->xFetch(SC_REAL(f), o, n, pp);
}
static int sc_unfetch(sqlite3_file *f, sqlite3_int64 o, void *p)
{
    return SC_REAL(f)->pMethods->xUnfetch(SC_REAL(f), o, p);
}

static const sqlite3_io_methods sc_io = {
    3,          sc_close,     sc_read,      sc_write,       sc_truncate,  sc_sync,
    sc_size,    sc_lock,      sc_unlock,    sc_reserved,    sc_fctl,      sc_sector,
    sc_devchar, sc_shm_map,   sc_shm_lock,  sc_shm_barrier, sc_shm_unmap, sc_fetch,
    sc_unfetch};

static int sc_open(sqlite3_vfs *v, const char *name, sqlite3_file *f, int flags, int *out_flags)
{
    (void)v;
    sc_file *w = (sc_file *)f;
    w->real = (sqlite3_file *)(w + 1);
    w->wal = (flags & SQLITE_OPEN_WAL) != 0;
    int rc = sc_real->xOpen(sc_real, name, w->real, flags, out_flags);
    /* a failed open: no xClose (the real VFS cleaned up after itself) */
    w->base.pMethods = rc == SQLITE_OK ? &sc_io : NULL;
    return rc;
}

static int sc_delete(sqlite3_vfs *v, const char *n, int s)
{
    (void)v;
    return sc_real->xDelete(sc_real, n, s);
}
static int sc_access(sqlite3_vfs *v, const char *n, int fl, int *r)
{
    (void)v;
    return sc_real->xAccess(sc_real, n, fl, r);
}
static int sc_full(sqlite3_vfs *v, const char *n, int sz, char *out)
{
    (void)v;
    return sc_real->xFullPathname(sc_real, n, sz, out);
}
static void *sc_dlopen(sqlite3_vfs *v, const char *n)
{
    (void)v;
    return sc_real->xDlOpen(sc_real, n);
}
static void sc_dlerror(sqlite3_vfs *v, int n, char *m)
{
    (void)v;
    sc_real->xDlError(sc_real, n, m);
}
static void (*sc_dlsym(sqlite3_vfs *v, void *h, const char *s))(void)
{
    (void)v;
    return sc_real->xDlSym(sc_real, h, s);
}
static void sc_dlclose(sqlite3_vfs *v, void *h)
{
    (void)v;
    sc_real->xDlClose(sc_real, h);
}
static int sc_random(sqlite3_vfs *v, int n, char *o)
{
    (void)v;
    return sc_real->xRandomness(sc_real, n, o);
}
static int sc_sleep(sqlite3_vfs *v, int us)
{
    (void)v;
    return sc_real->xSleep(sc_real, us);
}
static int sc_time(sqlite3_vfs *v, double *t)
{
    (void)v;
    return sc_real->xCurrentTime(sc_real, t);
}
static int sc_lasterr(sqlite3_vfs *v, int n, char *m)
{
    (void)v;
    return sc_real->xGetLastError ? sc_real->xGetLastError(sc_real, n, m) : 0;
}
static int sc_time64(sqlite3_vfs *v, sqlite3_int64 *t)
{
    (void)v;
    return sc_real->xCurrentTimeInt64(sc_real, t);
}

static sqlite3_vfs sc_vfs;

/* Install the counting VFS as the default (once). Returns SQLITE_OK. */
static int sqlite_sync_count_install(void)
{
    if (sc_real != NULL)
        return SQLITE_OK;
    sqlite3_initialize();
    sc_real = sqlite3_vfs_find(NULL);
    if (sc_real == NULL)
        return SQLITE_ERROR;
    sc_vfs = (sqlite3_vfs){
        .iVersion = 2, .szOsFile = (int)sizeof(sc_file) + sc_real->szOsFile,
        .mxPathname = sc_real->mxPathname, .zName = "ee-sync-count", .xOpen = sc_open,
        .xDelete = sc_delete, .xAccess = sc_access, .xFullPathname = sc_full,
        .xDlOpen = sc_dlopen, .xDlError = sc_dlerror, .xDlSym = sc_dlsym,
        .xDlClose = sc_dlclose, .xRandomness = sc_random, .xSleep = sc_sleep,
        .xCurrentTime = sc_time, .xGetLastError = sc_lasterr,
        .xCurrentTimeInt64 = sc_time64};
    return sqlite3_vfs_register(&sc_vfs, 1);
}

#endif
