/* Catalog records through the record layer keep the layout every earlier
 * version stored: integer createdAt/updatedAt/syncedAt as BSON dates and
 * 24-hex category/emailTemplateId as ObjectIds, at any depth, anything else
 * plain; and such documents read back to the same JSON. */
#include <bson/bson.h>
#include <criterion/criterion.h>
#include <string.h>

#include "catalog/catalog_internal.h"

static bson_type_t type_at(const uint8_t *data, size_t len, const char *dotted)
{
    bson_t b;
    bson_iter_t it, found;
    cr_assert(bson_init_static(&b, data, len));
    cr_assert(bson_iter_init(&it, &b));
    return bson_iter_find_descendant(&it, dotted, &found) ? bson_iter_type(&found)
                                                          : BSON_TYPE_EOD;
}

Test(catalog_stored_layout, dates_and_ids_by_name_at_any_depth)
{
    json_t *rec = json_loads(
        "{\"name\": \"w\", \"category\": \"0123456789abcdef01234567\", \"emailTemplateId\": null,"
        " \"createdAt\": 1767225600000, \"updatedAt\": 1767225600001, \"estimatedCost\": 5,"
        " \"tags\": [\"a\"], \"trigger\": {\"runnable\": false},"
        " \"n8n\": {\"syncedAt\": 1767225600002, \"updatedAt\": \"2026-01-01T00:00:00Z\","
        " \"source\": {\"category\": \"Marketing\", \"isActive\": true}}}",
        0, NULL);
    cr_assert_not_null(rec);
    uint8_t *data = NULL;
    size_t len = 0;
    cr_assert_eq(ee__cat_to_bson(rec, &data, &len), EE_OK, "%s", ee_error_last_message());
    cr_expect_eq(type_at(data, len, "category"), BSON_TYPE_OID);
    cr_expect_eq(type_at(data, len, "emailTemplateId"), BSON_TYPE_NULL);
    cr_expect_eq(type_at(data, len, "createdAt"), BSON_TYPE_DATE_TIME);
    cr_expect_eq(type_at(data, len, "updatedAt"), BSON_TYPE_DATE_TIME);
    cr_expect_eq(type_at(data, len, "estimatedCost"), BSON_TYPE_INT64);
    cr_expect_eq(type_at(data, len, "n8n.syncedAt"), BSON_TYPE_DATE_TIME);
    cr_expect_eq(type_at(data, len, "n8n.updatedAt"), BSON_TYPE_UTF8);
    cr_expect_eq(type_at(data, len, "n8n.source.category"), BSON_TYPE_UTF8);
    json_t *back = NULL;
    cr_assert_eq(ee__cat_from_bson(data, len, &back), EE_OK);
    cr_expect(json_equal(rec, back));
    json_decref(back);
    json_decref(rec);
    free(data);
}

Test(catalog_stored_layout, an_earlier_document_with_int32_and_an_id_reads)
{
    bson_oid_t oid;
    bson_oid_init_from_string(&oid, "0123456789abcdef01234567");
    bson_t *b = BCON_NEW("_id", BCON_OID(&oid), "name", BCON_UTF8("c"), "sortOrder",
                         BCON_INT32(3), "createdAt", BCON_DATE_TIME(1767225600000));
    json_t *rec = NULL;
    cr_assert_eq(ee__cat_from_bson(bson_get_data(b), b->len, &rec), EE_OK);
    cr_expect_null(json_object_get(rec, "_id"));
    cr_expect_eq(json_integer_value(json_object_get(rec, "sortOrder")), 3);
    cr_expect_eq(json_integer_value(json_object_get(rec, "createdAt")), 1767225600000);
    json_decref(rec);
    bson_destroy(b);
}
