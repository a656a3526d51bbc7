/* The WAL switch shared by the SQLite backends (sqlite_wal.h). */
#include "core/sqlite_wal.h"
#include "core/core.h"

#include <stdio.h>
#include <time.h>

int ee__sqlite_wal(sqlite3 *db, int64_t budget_ms, char mode_out[16])
{
    mode_out[0] = '\0';
    int64_t since = ee__mono_ms();
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
        if ((rc & 0xff) != SQLITE_BUSY || ee__mono_ms() - since >= budget_ms)
            return rc;
        sqlite3_sleep(5);
    }
}
