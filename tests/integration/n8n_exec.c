/*
 * Executions against a real n8n (the ctest fixture `n8n`:
 * tests/support/n8n/harness.sh, provisioned with tests/fixtures/n8n/): the
 * echo workflow run end to end through the engine's queue and workers, and
 * a workflow n8n has no webhook for. A missing n8n fails the test.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "n8n_engine.h"
#include "execengine/catalog.h"
#include "execengine/config.h"
#include "execengine/engine.h"
#include "execengine/errors.h"
#include "execengine/exec.h"
#include "execengine/principal.h"
#include "execengine/quota.h"

static char url[256], key[2048];
static ee_engine *engine;
static ee_principal *alice;

static void setup(void)
{
    const char *const more[] = {"EXEC_WORKERS", "2", "EXEC_POLL_MS", "100", NULL};
    engine = ee_test_n8n_engine(more, url, sizeof url, key, sizeof key);
    char *out = NULL;
    ee_status st = ee_catalog_sync(engine, &out);
    cr_assert_eq(st, EE_OK, "sync: %s", out);
    ee_free(out);
    cr_assert_eq(ee_principal_new(&alice, "ws-n8n-exec", "u1", "org-n8n-exec"), EE_OK);
}

static void teardown(void)
{
    ee_principal_free(alice);
    ee_engine_close(engine);
}

TestSuite(n8n_exec, .init = setup, .fini = teardown, .timeout = 180);

Test(n8n_exec, the_echo_workflow_runs_end_to_end)
{
    char wf[25], *out = NULL;
    ee_test_n8n_entry_named(engine, "ee-test echo", wf);
    ee_status st = ee_exec_run(engine, alice, wf, "{\"parameters\": {\"a\": 2, \"b\": 3}}", &out);
    cr_assert_eq(st, EE_OK, "%s", out);
    json_t *rec = json_loads(out, 0, NULL);
    cr_assert_not_null(rec, "%s", out);
    cr_assert_str_eq(json_string_value(json_object_get(rec, "status")), "completed");
    json_t *output = json_object_get(rec, "outputData");
    cr_assert_eq(json_integer_value(json_object_get(output, "total")), 5, "%s", out);
    const char *n8n_id = json_string_value(json_object_get(rec, "n8nExecutionId"));
    cr_assert_not_null(n8n_id, "n8n's execution id is kept: %s", out);
    /* the workflow echoed its whole body: the gateway token was dropped */
    cr_assert_null(strstr(out, "eeg_"), "the gateway token is not stored: %s", out);
    json_t *echo_ee = json_object_get(json_object_get(output, "echo"), "ee");
    cr_assert_str_eq(json_string_value(json_object_get(echo_ee, "executionId")),
                     json_string_value(json_object_get(rec, "_id")));
    json_decref(rec);
    ee_free(out);
}
