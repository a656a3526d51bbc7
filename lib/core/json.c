/* JSON output helpers shared by every module. */
#include "core.h"

ee_status ee__json_out(char **out, json_t *doc)
{
    if (doc == NULL)
        return ee__error_out(out, ee__error(EE_ENOMEM, "out of memory building a JSON document"));
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (text == NULL)
        return ee__error_out(out, ee__error(EE_ENOMEM, "out of memory serialising a JSON document"));
    *out = text;
    return EE_OK;
}

bool ee__json_depth_ok(const char *text, size_t len, size_t max_depth)
{
    size_t depth = 0;
    bool in_str = false;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else if (c == '{' || c == '[') {
            if (++depth > max_depth)
                return false;
        } else if ((c == '}' || c == ']') && depth > 0) {
            depth--;
        }
    }
    return true;
}
