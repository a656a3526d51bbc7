/* libFuzzer: arbitrary bytes as a mustache template (first part) and its
 * JSON data (after the first NUL), rendered with a self-including partial
 * available. No crash, leak or sanitizer report; limits end every run. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "notify/mustache.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *tmpl = malloc(size + 1);
    if (tmpl == NULL)
        return 0;
    memcpy(tmpl, data, size);
    tmpl[size] = '\0';
    size_t tlen = strlen(tmpl);
    json_t *ctx = tlen + 1 < size ? json_loadb(tmpl + tlen + 1, size - tlen - 1, JSON_DECODE_ANY, NULL)
                                  : NULL;
    json_t *partials = json_pack("{s:s, s:s}", "p", "{{#a}}{{>p}}{{/a}}", "q", tmpl);
    char *out = NULL;
    if (ee__mustache_render(tmpl, ctx, partials, &out) == EE_OK)
        free(out);
    json_decref(partials);
    json_decref(ctx);
    free(tmpl);
    ee_error_clear();
    return 0;
}
