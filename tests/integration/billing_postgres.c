/*
 * Billing on the real PostgreSQL of the test fixture: three engines (two
 * threads each) account the same 200 ended executions of one workspace at
 * once - each is booked once, the free allowance is used exactly, the month
 * totals equal the records' charges (tests/unit/billing/billing_race.h) -
 * and the month is closed, closed again (nothing changes) and exported.
 */
/* engine_fixture.h wants the source tree; br_open() sets the data dir itself */
#define EE_SOURCE_DIR ""
#include "../unit/billing/billing_race.h"

#include <libpq-fe.h>

#include "pg_schema.h"

static char schema[96];

static void setup(void)
{
    char uri[700];
    ee_test_pg_schema("billing", schema, sizeof schema, uri, sizeof uri);
    br_open(uri);
}

static void teardown(void)
{
    br_close();
    ee_test_pg_drop_schema(schema);
}

TestSuite(billing_postgres, .init = setup, .fini = teardown, .timeout = 300);

Test(billing_postgres, concurrent_engines_book_each_run_once_then_the_month_closes_once)
{
    br_run();
    ee_principal *p = NULL;
    cr_assert_eq(ee_principal_new(&p, "ws-race", "admin", "org-race"), EE_OK);
    atomic_store(&test_now, T_2026_03_01 + 31 * DAY_MS);
    char *out = NULL;
    cr_assert_eq(ee_billing_close_month(engines[0], p, "2026-03", &out), EE_OK, "%s", out);
    json_t *first = json_loads(out, 0, NULL);
    ee_free(out);
    cr_assert(json_is_true(json_object_get(first, "changed")));
    cr_assert_eq(ee_billing_close_month(engines[1], p, "2026-03", &out), EE_OK, "%s", out);
    json_t *second = json_loads(out, 0, NULL);
    ee_free(out);
    cr_assert(json_is_false(json_object_get(second, "changed")));
    cr_assert(json_equal(json_object_get(first, "billing"), json_object_get(second, "billing")));
    cr_assert_eq(ee_billing_export(engines[2], p, "2026-03", "json", &out), EE_OK, "%s", out);
    json_t *exp = json_loads(out, 0, NULL);
    ee_free(out);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(exp, "totals"),
                                                    "totalExecutions")), NREC);
    json_decref(exp);
    json_decref(first);
    json_decref(second);
    ee_principal_free(p);
}
