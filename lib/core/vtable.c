/* The one rule for versioned tables a host implements (storage, counters,
 * transport backends): see ee__vtable_adopt() in core.h. */
#include "core.h"

#include <string.h>

ee_status ee__vtable_adopt(void *dst, size_t dst_size, const void *src, unsigned version,
                           const size_t *sizes_by_version, size_t nversions, const char *what)
{
    if (version == 0 || version > nversions)
        return ee__error(EE_EVERSION,
                         "%s version %u is not supported (this library knows 1 to %zu)", what,
                         version, nversions);
    size_t n = sizes_by_version[version - 1];
    if (n > dst_size)
        n = dst_size;
    memcpy(dst, src, n);
    memset((char *)dst + n, 0, dst_size - n);
    return EE_OK;
}
