/* The public text API of execengine/notify.h over the renderer of
 * handlebars.h: the JSON texts go through core's one bounded parse first. */
#include "execengine/notify.h"

#include <string.h>

#include "core/core.h"
#include "notify/handlebars.h"

ee_status ee_template_render_len(const char *template_text, const char *data_json,
                                 const char *partials_json, char **out, size_t *out_len)
{
    if (out != NULL)
        *out = NULL;
    if (out_len != NULL)
        *out_len = 0;
    if (template_text == NULL || out == NULL)
        return ee__error(EE_EINVAL, "ee_template_render: template_text and out must not be NULL");
    /* a 100 MB template is refused without being read to its end */
    size_t tlen = strnlen(template_text, (size_t)EE_TEMPLATE_MAX_TEMPLATE + 1);
    if (tlen > EE_TEMPLATE_MAX_TEMPLATE)
        return ee__error(EE_ETOOBIG, "ee_template_render: the template exceeds %d bytes",
                         EE_TEMPLATE_MAX_TEMPLATE);
    /* its text is copied to the output as it is: invalid UTF-8 in, invalid
     * UTF-8 out (the data and the partials are checked by their parse) */
    if (!ee__utf8_valid(template_text, tlen))
        return ee__error(EE_EPARSE, "ee_template_render: the template is not valid UTF-8");
    json_t *data = NULL, *partials = NULL;
    ee_status st = EE_OK;
    if (data_json != NULL)
        st = ee__json_parse(data_json, EE_TEMPLATE_MAX_DATA, EE_TEMPLATE_MAX_DEPTH,
                            JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL,
                            "ee_template_render data", &data);
    if (st == EE_OK && partials_json != NULL) {
        st = ee__json_parse(partials_json, EE_TEMPLATE_MAX_DATA, EE_TEMPLATE_MAX_DEPTH,
                            JSON_ALLOW_NUL, "ee_template_render partials", &partials);
        const char *name;
        json_t *text;
        if (st == EE_OK && !json_is_object(partials))
            st = ee__error(EE_EINVAL, "ee_template_render: partials must be a JSON object");
        if (st == EE_OK) {
            json_object_foreach(partials, name, text) {
                if (!json_is_string(text)) {
                    /* quoted, not "%.64s": a cut at a byte count may split a
                     * character, and the name's control characters would
                     * reach the message */
                    char q[68];
                    ee__quote_for_message(name, q, sizeof q);
                    st = ee__error(EE_EINVAL, "ee_template_render: partial \"%s\" is not a string",
                                   q);
                    break;
                }
            }
        }
    }
    if (st == EE_OK)
        st = ee__template_render(template_text, tlen, data, partials, out, out_len);
    json_decref(data);
    json_decref(partials);
    return st;
}

ee_status ee_template_render(const char *template_text, const char *data_json,
                             const char *partials_json, char **out)
{
    return ee_template_render_len(template_text, data_json, partials_json, out, NULL);
}
