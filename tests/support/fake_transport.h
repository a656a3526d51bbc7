/*
 * Pieces for a test's own transport table (ee_transport_new_custom()):
 * answer a request with a JSON document, and read a request header.
 */
#ifndef EE_TEST_FAKE_TRANSPORT_H
#define EE_TEST_FAKE_TRANSPORT_H

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "execengine/transport.h"

/* Answer `status` with `body` (stolen) as application/json. */
static inline ee_status fake_answer_json(ee_http_response *resp, int status, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (text == NULL)
        return EE_ENOMEM;
    ee_http_response_set_status(resp, status);
    ee_http_response_add_header(resp, "Content-Type", "application/json");
    ee_http_response_append_body(resp, text, strlen(text));
    free(text);
    return EE_OK;
}

/* The value of the request's header `name` (case-insensitive), or NULL. */
static inline const char *fake_request_header(const ee_http_request *req, const char *name)
{
    for (size_t i = 0; i < ee_http_request_header_count(req); i++) {
        const char *n, *v;
        ee_http_request_header_at(req, i, &n, &v);
        if (strcasecmp(n, name) == 0)
            return v;
    }
    return NULL;
}

#endif
