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
