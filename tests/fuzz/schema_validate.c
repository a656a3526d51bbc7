/*
 * libFuzzer: arbitrary bytes as a JSON Schema and an instance. The input is
 * split at its first NUL byte: the bytes before are the schema text, the
 * bytes after the instance text (the instance is "null" when there is no
 * NUL). A schema that compiles is used to validate the instance and to
 * apply its defaults, whose result is validated again. Any crash, leak,
 * sanitizer report, hang or broken invariant (abort) is a finding.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/schema.h"

#include "fuzz_check.h"

static char *text_of(const uint8_t *p, size_t n)
{
    char *t = malloc(n + 1);
    CHECK(t != NULL);
    memcpy(t, p, n);
    t[n] = '\0';
    return t;
}

static void check_validate(const ee_schema *s, const char *instance)
{
    char *out = NULL;
    ee_status st = ee_schema_validate(s, instance, &out);
    CHECK(st == EE_OK || st == EE_EVALIDATION || st == EE_EPARSE || st == EE_ETOOBIG);
    CHECK(out != NULL);
    if (st == EE_OK)
        CHECK(strncmp(out, "{\"valid\":true,\"errors\":[]", 25) == 0);
    else
        CHECK(strstr(out, ee_status_name(st)) != NULL);
    ee_free(out);
    /* Deterministic: the same answer again. */
    CHECK(ee_schema_validate(s, instance, NULL) == st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t slen = nul != NULL ? (size_t)(nul - data) : size;
    char *schema = text_of(data, slen);
    char *instance = nul != NULL ? text_of(nul + 1, size - slen - 1) : text_of((const uint8_t *)"null", 4);
    ee_schema *s = NULL;
    ee_status st = ee_schema_compile(&s, schema);
    CHECK(st == EE_OK || st == EE_EINVAL || st == EE_ENOTSUPPORTED || st == EE_EPARSE ||
          st == EE_ETOOBIG);
    CHECK((st == EE_OK) == (s != NULL));
    if (s != NULL) {
        check_validate(s, instance);
        char *filled = NULL;
        ee_status dst = ee_schema_apply_defaults(s, instance, &filled);
        CHECK(dst == EE_OK || dst == EE_EPARSE || dst == EE_ETOOBIG);
        CHECK(filled != NULL);
        if (dst == EE_OK)
            check_validate(s, filled);
        ee_free(filled);
        ee_schema_free(s);
    }
    free(schema);
    free(instance);
    return 0;
}
