/* Whole-file reads with a size bound (core.h). */
#include "core.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

ee_status ee__read_file(const char *path, size_t max, char **text, size_t *len)
{
    *text = NULL;
    *len = 0;
    char q[200];
    ee__quote_for_message(path, q, sizeof q);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return ee__error(errno == ENOENT ? EE_ENOTFOUND : EE_EIO, "cannot open %s: %s", q,
                         strerror(errno));
    char *buf = malloc(max + 2);
    size_t n = buf ? fread(buf, 1, max + 1, f) : 0;
    int err = ferror(f);
    fclose(f);
    ee_status st = buf == NULL ? ee__error(EE_ENOMEM, "out of memory reading %s", q)
                 : err         ? ee__error(EE_EIO, "cannot read %s", q)
                 : n > max     ? ee__error(EE_ETOOBIG, "%s is larger than %zu bytes", q, max)
                               : EE_OK;
    if (st != EE_OK) {
        free(buf);
        return st;
    }
    buf[n] = '\0';
    *text = buf;
    *len = n;
    return EE_OK;
}
