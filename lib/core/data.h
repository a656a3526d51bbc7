/*
 * lib/core/data.h - the editable data files (integrations.json,
 * prices.json, cost_rules.json, categories.json, plans.json ...).
 *
 * The library embeds the copies of data/ it was built with, so it works
 * wherever it is installed. An administrator edits them without
 * recompiling: ee__data_read() takes a file from the directory
 * EE_DATA_DIR names when that option is set (then the file must be there),
 * else from the installed share/execengine when the file exists there,
 * else the embedded copy.
 */
#ifndef EE_CORE_DATA_H
#define EE_CORE_DATA_H

#include <stddef.h>

#include "execengine/config.h"

/* Largest data file read. */
#define EE__DATA_MAX_BYTES (4 * 1024 * 1024)

typedef struct {
    const char *name;
    const unsigned char *data; /* NUL-terminated */
    size_t len;
} ee__embedded_file;

extern const ee__embedded_file ee__embedded_data[];
extern const size_t ee__embedded_data_count;

/* Read data file `name` ("integrations.json") for `cfg` as described
 * above. *text (malloc'ed, NUL-terminated; free()) and *len receive it;
 * *origin (may be NULL) gets "EE_DATA_DIR", "installed" or "embedded".
 * Returns EE_OK; EE_EINVAL (a name with '/' or ".."); EE_EIO (EE_DATA_DIR
 * is set and the file cannot be read there); EE_ETOOBIG; EE_ENOTFOUND (no
 * such file anywhere); EE_ENOMEM. */
ee_status ee__data_read(const ee_config *cfg, const char *name, char **text, size_t *len,
                        const char **origin);

#endif
