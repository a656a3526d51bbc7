/*
 * Arbitrary bytes as n8n answers. The first byte picks the parser; the
 * rest is the body, as if n8n had sent it:
 *   0 workflow list page   1 one workflow       2 one execution (with data)
 *   3 execution list page  4 trigger derivation 5 error answer text
 * Every parser must return a status (never crash, leak or read out of
 * bounds) and whatever it accepts must serialise.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "n8n/n8n_internal.h"

static void check(json_t *doc)
{
    if (doc == NULL)
        return;
    char *text = json_dumps(doc, JSON_COMPACT);
    if (text == NULL)
        abort(); /* an accepted document must serialise */
    free(text);
    json_decref(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t which = data[0] % 6;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    if (which == 5) {
        char msg[EE__N8N_MESSAGE_MAX + 8], hint[EE__N8N_MESSAGE_MAX + 8];
        ee__n8n_error_text(body, len, msg, sizeof msg, hint, sizeof hint);
        if (strlen(msg) >= sizeof msg || strlen(hint) >= sizeof hint)
            abort();
        return 0;
    }
    json_t *doc = NULL, *out = NULL;
    if (ee__n8n_json_parse(body, len, EE__N8N_DEFAULT_MAX_DEPTH, "fuzz", &doc) != EE_OK)
        return 0;
    switch (which) {
    case 0:
    case 3: {
        json_t *items = json_array();
        const char *next = NULL;
        (void)ee__n8n_page_parse(doc, which == 0 ? EE__N8N_WORKFLOWS : EE__N8N_EXECUTIONS, true,
                                 items, &next);
        if (next != NULL && strlen(next) == 0)
            abort();
        check(items);
        break;
    }
    case 1:
        if (ee__n8n_workflow_normalise(doc, &out) == EE_OK && json_object_get(out, "trigger") == NULL)
            abort(); /* a normalised workflow always says how it runs */
        check(out);
        break;
    case 2:
        if (ee__n8n_execution_normalise(doc, true, &out) == EE_OK
            && ee_n8n_map_status(json_string_value(json_object_get(out, "status"))) == NULL
            && strcmp(json_string_value(json_object_get(out, "status")), "pending") != 0
            && strcmp(json_string_value(json_object_get(out, "status")), "completed") != 0
            && strcmp(json_string_value(json_object_get(out, "status")), "failed") != 0
            && strcmp(json_string_value(json_object_get(out, "status")), "running") != 0)
            abort(); /* our status is always one of ours */
        check(out);
        break;
    case 4:
        if (ee__n8n_trigger(doc, &out) == EE_OK && json_object_get(out, "runnable") == NULL)
            abort();
        check(out);
        break;
    }
    json_decref(doc);
    return 0;
}
