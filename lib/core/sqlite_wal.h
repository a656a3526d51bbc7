/*
 * lib/core/sqlite_wal.h - switching an SQLite connection to the WAL
 * journal, for the two SQLite backends (storage and the counters' SQL
 * backend): one retry rule for both.
 */
#ifndef EE_CORE_SQLITE_WAL_H
#define EE_CORE_SQLITE_WAL_H

#include <sqlite3.h>
#include <stdint.h>

/* "PRAGMA journal_mode = WAL" on `db`. Processes opening a new file at
 * once all switch it to WAL, and SQLite may answer one of them SQLITE_BUSY
 * at once, without calling the busy handler (its deadlock avoidance): the
 * switch is tried again every 5 ms for as long as `budget_ms` (measured on
 * the monotonic clock) allows. Returns SQLITE_OK when SQLite answered a
 * journal mode, copied to mode_out (NUL-terminated, cut to its size), else
 * the SQLite result code of the last try (the caller words the error).
 * Not every file can be WAL (":memory:" answers "memory"): the caller
 * checks mode_out. */
int ee__sqlite_wal(sqlite3 *db, int64_t budget_ms, char mode_out[16]);

#endif
