/*
 * Stored plans and subscriptions through the record layer: documents
 * written by earlier versions (through Extended JSON, so int32 wherever a
 * value fits) still load, new ones are written with the plan map's types,
 * and a stored document that does not fit the map is reported with the
 * JSON pointer of the bad field.
 */
#include <bson/bson.h>

#include "quota/quota_internal.h"
#include "quota_test.h"
#include "engine/engine.h"

/* Store `json` as the previous versions did: json_dumps -> bson_new_from_json. */
static void store_old(ee_engine *e, const char *coll, const char *ws, const char *json)
{
    bson_error_t berr;
    bson_t *b = bson_new_from_json((const uint8_t *)json, -1, &berr);
    cr_assert_not_null(b, "%s", berr.message);
    cr_assert_eq(ee_storage_insert(ee__engine_storage(e), coll, ws, bson_get_data(b), b->len,
                                   NULL),
                 EE_OK, "%s", ee_error_last_message());
    bson_destroy(b);
}

Test(stored_layout, plans_and_subscriptions_written_by_earlier_versions_load)
{
    ee_engine *e = qt_engine();
    store_old(e, "plans", NULL,
              "{\"name\": \"old\", \"predictionsPerPeriod\": 100, \"storageBytes\": 5000000000, "
              "\"period\": \"calendarMonth\", \"failedRunsConsume\": true, "
              "\"multipliers\": {\"rate\": \"1.5\"}, \"isActive\": true, "
              "\"createdAt\": 1704067200000}");
    store_old(e, "subscriptions", "org-old",
              "{\"orgId\": \"org-old\", \"planId\": \"old\", \"status\": \"active\", "
              "\"periodStart\": 1704067200000, \"multipliers\": {\"spend\": \"2\"}, "
              "\"createdAt\": 1704067200000, \"updatedAt\": 1704067200000}");
    char *out = NULL;
    cr_assert_eq(ee_quota_plan_get(e, "old", &out), EE_OK, "%s", out);
    cr_expect_eq(qt_json_int(out, "predictionsPerPeriod", NULL), 100);
    cr_expect_eq(qt_json_int(out, "storageBytes", NULL), 5000000000LL);
    cr_expect_not_null(strstr(out, "\"source\":\"storage\""), "%s", out);
    cr_expect_not_null(strstr(out, "\"rate\":\"1.5000\""), "%s", out);
    cr_expect_not_null(strstr(out, "\"period\":\"calendarMonth\""), "%s", out);
    ee_free(out);
    cr_assert_eq(ee_quota_plan_list(e, &out), EE_OK, "%s", out);
    cr_expect_not_null(strstr(out, "\"name\":\"old\""), "%s", out);
    ee_free(out);
    cr_assert_eq(ee_quota_subscription_get(e, "org-old", &out), EE_OK, "%s", out);
    cr_expect_not_null(strstr(out, "\"plan\":\"old\""), "%s", out);
    cr_expect_eq(qt_json_int(out, "periodStart", NULL), 1704067200000LL);
    cr_expect_eq(qt_json_int(out, "limits", "predictionsPerPeriod"), 100);
    ee_free(out);
    ee_engine_close(e);
}

static int first_row(const ee_storage_row *row, void *payload)
{
    bson_t **b = payload;
    *b = bson_new_from_data(row->data, row->len);
    return 1;
}

static bson_type_t type_of(const bson_t *b, const char *dotted)
{
    bson_iter_t it, found;
    cr_assert(bson_iter_init(&it, b));
    return bson_iter_find_descendant(&it, dotted, &found) ? bson_iter_type(&found)
                                                          : BSON_TYPE_EOD;
}

Test(stored_layout, a_plan_is_written_with_the_maps_types)
{
    ee_engine *e = qt_engine();
    qt_plan(e, "{\"name\": \"new\", \"predictionsPerPeriod\": 100, \"multipliers\": "
               "{\"storage\": \"2\"}}");
    qt_subscribe(e, "org-new", "new", QT_T0, NULL);
    bson_t *b = NULL;
    ee_storage_query_spec q = {.version = EE_STORAGE_QUERY_VERSION, .limit = 1};
    cr_assert_eq(ee_storage_query(ee__engine_storage(e), "plans", NULL, &q, first_row, &b, NULL),
                 EE_ECANCELLED);
    cr_assert_not_null(b);
    cr_expect_eq(type_of(b, "name"), BSON_TYPE_UTF8);
    cr_expect_eq(type_of(b, "predictionsPerPeriod"), BSON_TYPE_INT64);
    cr_expect_eq(type_of(b, "createdAt"), BSON_TYPE_INT64); /* ms, as before: not a date */
    cr_expect_eq(type_of(b, "multipliers.storage"), BSON_TYPE_UTF8);
    cr_expect_eq(type_of(b, "failedRunsConsume"), BSON_TYPE_BOOL);
    bson_destroy(b);
    b = NULL;
    cr_assert_eq(ee_storage_query(ee__engine_storage(e), "subscriptions", "org-new", &q,
                                  first_row, &b, NULL),
                 EE_ECANCELLED);
    cr_assert_not_null(b);
    cr_expect_eq(type_of(b, "orgId"), BSON_TYPE_UTF8);
    cr_expect_eq(type_of(b, "periodStart"), BSON_TYPE_INT64);
    cr_expect_eq(type_of(b, "multipliers"), BSON_TYPE_DOCUMENT);
    bson_destroy(b);
    ee_engine_close(e);
}

Test(stored_layout, a_stored_plan_that_does_not_fit_names_the_field)
{
    ee_engine *e = qt_engine();
    store_old(e, "plans", NULL,
              "{\"name\": \"bad\", \"predictionsPerPeriod\": \"lots\", "
              "\"createdAt\": 1704067200000}");
    char *out = NULL;
    cr_expect_eq(ee_quota_plan_get(e, "bad", &out), EE_ECORRUPT);
    cr_expect_not_null(strstr(ee_error_last_message(), "/predictionsPerPeriod"), "%s",
                       ee_error_last_message());
    ee_free(out);
    ee_engine_close(e);
}
