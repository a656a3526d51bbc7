/* Data files: EE_DATA_DIR, else installed, else embedded (data.h). */
#include "core/data.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

#ifndef EE_DATA_DIR_DEFAULT
#define EE_DATA_DIR_DEFAULT "/usr/local/share/execengine"
#endif

/* Read path; EE_ENOTFOUND when it does not exist. */
static ee_status read_path(const char *path, char **text, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return errno == ENOENT ? EE_ENOTFOUND
                               : ee__error(EE_EIO, "cannot open data file %s", path);
    char *buf = malloc(EE__DATA_MAX_BYTES + 1);
    size_t n = buf ? fread(buf, 1, EE__DATA_MAX_BYTES + 1, f) : 0;
    int bad = ferror(f);
    fclose(f);
    if (buf == NULL)
        return ee__error(EE_ENOMEM, "out of memory reading %s", path);
    if (bad || n > EE__DATA_MAX_BYTES) {
        free(buf);
        return bad ? ee__error(EE_EIO, "cannot read data file %s", path)
                   : ee__error(EE_ETOOBIG, "data file %s exceeds %d bytes", path, EE__DATA_MAX_BYTES);
    }
    buf[n] = '\0';
    *text = buf;
    *len = n;
    return EE_OK;
}

static ee_status from_dir(const char *dir, const char *name, char **text, size_t *len)
{
    char path[4352];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return read_path(path, text, len);
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
