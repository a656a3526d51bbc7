/*
 * What the schema unit tests share: compiling a schema that must compile,
 * and one that must be refused with a status and words in its message.
 */
#ifndef EE_TEST_SCHEMA_TEST_H
#define EE_TEST_SCHEMA_TEST_H

#include <criterion/criterion.h>
#include <string.h>

#include "schema/schema.h"

static inline ee_schema *compile_ok(const char *text)
{
    ee_schema *s = NULL;
    ee_status st = ee_schema_compile(&s, text);
    cr_assert_eq(st, EE_OK, "compile %s: %s", text, ee_error_last_message());
    cr_assert_not_null(s);
    return s;
}

static inline void expect_compile_fails(const char *text, ee_status want, const char *in_message)
{
    ee_schema *s = (ee_schema *)0x1;
    ee_status st = ee_schema_compile(&s, text);
    cr_expect_eq(st, want, "compile %s: got %s (%s)", text, ee_status_name(st),
                 ee_error_last_message());
    cr_expect_null(s);
    cr_expect(strstr(ee_error_last_message(), in_message) != NULL,
              "message \"%s\" lacks \"%s\"", ee_error_last_message(), in_message);
}

#endif
