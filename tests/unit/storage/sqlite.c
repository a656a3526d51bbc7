/* The storage conformance suite against the sqlite backend: a fresh file
 * per test (each Criterion test runs in its own process). */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "execengine/storage.h"

#define CONF_SUITE storage_sqlite

static char conf_dir[64];

static ee_storage *conf_open(void)
{
    char uri[160];
    snprintf(conf_dir, sizeof conf_dir, "/tmp/ee-storage-conf-XXXXXX");
    if (mkdtemp(conf_dir) == NULL)
        return NULL;
    /* A subdirectory that does not exist yet: the backend creates it. */
    snprintf(uri, sizeof uri, "sqlite://%s/sub/dir/store.db", conf_dir);
    ee_storage *s = NULL;
    return ee_storage_open_uri(&s, uri) == EE_OK ? s : NULL;
}

static void conf_cleanup(void)
{
    char cmd[128];
    if (conf_dir[0] == '\0')
        return;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", conf_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", conf_dir);
}

#include "conformance.h"
