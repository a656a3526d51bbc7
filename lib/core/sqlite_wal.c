/* The WAL switch shared by the SQLite backends (sqlite_wal.h). */
#include "core/sqlite_wal.h"

#include <stdio.h>
#include <time.h>

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int ee__sqlite_wal(sqlite3 *db, int64_t budget_ms, char mode_out[16])
{
    mode_out[0] = '\0';
    int64_t since = mono_ms();
    for (;;) {
        sqlite3_stmt *wal = NULL;
        int rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &wal, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_step(wal);
        if (rc == SQLITE_ROW) {
            const unsigned char *mode = sqlite3_column_text(wal, 0);
            snprintf(mode_out, 16, "%s", mode != NULL ? (const char *)mode : "");
            rc = SQLITE_OK;
        }
        sqlite3_finalize(wal);
        if ((rc & 0xff) != SQLITE_BUSY || mono_ms() - since >= budget_ms)
            return rc;
        sqlite3_sleep(5);
    }
}
