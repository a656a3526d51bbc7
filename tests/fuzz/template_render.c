/* libFuzzer: arbitrary bytes as a Handlebars template (first part) and its
 * JSON data (after the first NUL), rendered with partials available: one
 * that includes itself, one that is the template again, one taking a hash,
 * a layout calling its partial block and an inline partial, one partial
 * block calling itself. No crash, leak or sanitizer report; limits end
 * every run. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "notify/handlebars.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *tmpl = malloc(size + 1);
    if (tmpl == NULL)
        return 0;
    memcpy(tmpl, data, size);
    tmpl[size] = '\0';
    size_t tlen = strlen(tmpl);
    json_t *ctx = tlen + 1 < size ? json_loadb(tmpl + tlen + 1, size - tlen - 1,
                                               JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL)
                                  : NULL;
    json_t *partials = json_pack("{s:s, s:s, s:s, s:s, s:s}", "p", "{{#each a}}{{> p}}{{/each}}",
                                 "q", tmpl, "h", "{{~#if x}}{{x}}{{else}}{{../y}}{{/if~}}", "l",
                                 "<{{> content}}|{{#if @partial-block}}{{> @partial-block}}{{/if}}>",
                                 "b", "{{#> b}}{{> @partial-block}}{{/b}}");
    char *out = NULL;
    size_t len = 0;
    if (ee__template_render(tmpl, tlen, ctx, partials, &out, &len) == EE_OK)
        free(out);
    json_decref(partials);
    json_decref(ctx);
    free(tmpl);
    ee_error_clear();
    return 0;
}
