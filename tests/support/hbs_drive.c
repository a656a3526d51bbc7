/* The C side of tests/support/hbs-diff.js: reads JSON lines
 * {"t": template, "d": data JSON text or null, "p": partials JSON text or
 * null} on stdin, renders each with ee_template_render_len() and writes one
 * JSON line per case: {"o": output} or {"e": status name, "m": message}. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "execengine/execengine.h"

int main(void)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, stdin)) > 0) {
        json_t *c = json_loadb(line, (size_t)n, JSON_ALLOW_NUL, NULL);
        const char *t = json_string_value(json_object_get(c, "t"));
        const char *d = json_string_value(json_object_get(c, "d"));
        const char *p = json_string_value(json_object_get(c, "p"));
        char *out = NULL;
        size_t len = 0;
        json_t *r;
        if (t == NULL) {
            r = json_pack("{s:s}", "e", "BAD_INPUT_LINE");
        } else {
            ee_status st = ee_template_render_len(t, d, p, &out, &len);
            const char *msg = ee_error_last_message();
            r = st == EE_OK ? json_pack("{s:s%}", "o", out, len)
                            : json_pack("{s:s,s:s}", "e", ee_status_name(st), "m", msg ? msg : "");
        }
        char *s = json_dumps(r, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_ENCODE_ANY);
        puts(s != NULL ? s : "{\"e\":\"ENCODE\"}");
        fflush(stdout);
        free(s);
        json_decref(r);
        json_decref(c);
        ee_free(out);
    }
    free(line);
    return 0;
}
