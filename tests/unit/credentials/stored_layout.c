/* Stored credential documents through the record layer: a document in the
 * layout every earlier version wrote (ObjectId _id, int64 timestamps,
 * metadata, one top-level binary: the sealed secret) reads as before, and
 * one whose mapped field has another type is refused with its JSON pointer. */
#include <bson/bson.h>
#include <criterion/criterion.h>
#include <string.h>

#include "credentials/cred_internal.h"

#define ID "0123456789abcdef01234567"

static const uint8_t SEALED[5] = {9, 8, 7, 6, 5};
static const uint8_t NESTED[2] = {1, 2};

Test(cred_stored_layout, a_document_in_the_earlier_layout_reads_as_before)
{
    bson_oid_t oid;
    bson_oid_init_from_string(&oid, ID);
    bson_t *b = BCON_NEW("_id", BCON_OID(&oid), "kind", BCON_UTF8("personal"), "userId",
                         BCON_UTF8("u1"), "createdAt", BCON_INT64(1767225600000),
                         "scopes", "[", BCON_UTF8("a"), BCON_UTF8("b"), "]", "extra", "{",
                         "n", BCON_INT32(3), "skipped", BCON_BIN(BSON_SUBTYPE_BINARY, NESTED, 2),
                         "}", "token", BCON_BIN(BSON_SUBTYPE_BINARY, SEALED, 5));
    ee__cdoc d;
    cr_assert_eq(ee__cdoc_from_bson(bson_get_data(b), b->len, &d), EE_OK, "%s",
                 ee_error_last_message());
    cr_expect_str_eq(d.id, ID);
    cr_expect_str_eq(json_string_value(json_object_get(d.meta, "_id")), ID);
    cr_expect_str_eq(json_string_value(json_object_get(d.meta, "kind")), "personal");
    cr_expect_eq(json_integer_value(json_object_get(d.meta, "createdAt")), 1767225600000);
    cr_expect_eq(json_array_size(json_object_get(d.meta, "scopes")), 2);
    cr_expect_eq(json_integer_value(json_object_get(json_object_get(d.meta, "extra"), "n")), 3);
    cr_expect_null(json_object_get(json_object_get(d.meta, "extra"), "skipped"));
    cr_expect_null(json_object_get(d.meta, "token"));
    cr_expect_str_eq(d.sealed_field, "token");
    cr_assert_eq(d.sealed_len, sizeof SEALED);
    cr_expect_eq(memcmp(d.sealed, SEALED, sizeof SEALED), 0);
    ee__cdoc_clear(&d);
    bson_destroy(b);
}

Test(cred_stored_layout, a_mapped_field_of_another_type_is_refused_with_its_pointer)
{
    bson_oid_t oid;
    bson_oid_init_from_string(&oid, ID);
    bson_t *b = BCON_NEW("_id", BCON_OID(&oid), "kind", BCON_UTF8("personal"), "createdAt",
                         BCON_UTF8("yesterday"));
    ee__cdoc d;
    cr_expect_eq(ee__cdoc_from_bson(bson_get_data(b), b->len, &d), EE_ECORRUPT);
    cr_expect_not_null(strstr(ee_error_last_message(), "/createdAt"), "%s",
                       ee_error_last_message());
    cr_expect_null(d.meta);
    bson_destroy(b);
}
