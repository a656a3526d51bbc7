/* Data files: EE_DATA_DIR, else installed, else embedded (data.h). */
#include "core/data.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

#ifndef EE_DATA_DIR_DEFAULT
#define EE_DATA_DIR_DEFAULT "/usr/local/share/execengine"
#endif

static ee_status from_dir(const char *dir, const char *name, char **text, size_t *len)
{
    char path[4352];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return ee__read_file(path, EE__DATA_MAX_BYTES, text, len);
}

static ee_status embedded(const char *name, char **text, size_t *len)
{
    for (size_t i = 0; i < ee__embedded_data_count; i++) {
        if (strcmp(ee__embedded_data[i].name, name) != 0)
            continue;
        char *copy = malloc(ee__embedded_data[i].len + 1);
        if (copy == NULL)
            return ee__error(EE_ENOMEM, "out of memory reading %s", name);
        memcpy(copy, ee__embedded_data[i].data, ee__embedded_data[i].len + 1);
        *text = copy;
        *len = ee__embedded_data[i].len;
        return EE_OK;
    }
    return ee__error(EE_ENOTFOUND, "no data file %s in this library", name);
}

ee_status ee__data_read(const ee_config *cfg, const char *name, char **text, size_t *len,
                        const char **origin)
{
    *text = NULL;
    *len = 0;
    if (name == NULL || strchr(name, '/') != NULL || strstr(name, "..") != NULL)
        return ee__error(EE_EINVAL, "bad data file name");
    int set = 0;
    (void)ee_config_is_set(cfg, "EE_DATA_DIR", &set);
    const char *dir = ee__config_text(cfg, "EE_DATA_DIR");
    if (set) {
        if (origin)
            *origin = "EE_DATA_DIR";
        ee_status st = from_dir(dir, name, text, len);
        return st == EE_ENOTFOUND
                   ? ee__error(EE_EIO, "data file %s not found in EE_DATA_DIR (%s)", name, dir)
                   : st;
    }
    ee_status st = from_dir(dir ? dir : EE_DATA_DIR_DEFAULT, name, text, len);
    if (st != EE_ENOTFOUND) {
        if (origin)
            *origin = "installed";
        return st;
    }
    if (origin)
        *origin = "embedded";
    return embedded(name, text, len);
}
