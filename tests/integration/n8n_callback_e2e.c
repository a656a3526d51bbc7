/*
 * A run completed by its signed callback, end to end against the real n8n
 * (the ctest fixture `n8n`, provisioned with tests/fixtures/n8n/): the
 * engine's embedded gateway listener is up, EXEC_CALLBACK_URL is unset and
 * the host has no route of its own, so the run is given the listener's
 * callback route as ee.callbackUrl. The ee-callback fixture answers early,
 * then signs and POSTs the callback there; the listener applies it and the
 * run completes with the fixture's output. n8n's own record of the
 * "Send callback" node shows the listener's answer ({"applied": true}).
 * A missing n8n fails the test.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "n8n_engine.h"
#include "test_servers.h"
#include "execengine/catalog.h"
#include "execengine/config.h"
#include "execengine/engine.h"
#include "execengine/errors.h"
#include "execengine/exec.h"
#include "execengine/gateway.h"
#include "execengine/n8n.h"
#include "execengine/principal.h"
#include "execengine/transport.h"

#define FIXTURE_NAME "ee-test callback (answers early, reports by signed callback)"

static char url[256], key[2048], data_dir[1024];
static ee_engine *engine;
static ee_principal *alice;
static char *listener;

static void find_data_dir(void)
{
    snprintf(data_dir, sizeof data_dir, "%s", __FILE__);
    for (int up = 0; up < 3; up++) {
        char *slash = strrchr(data_dir, '/');
        cr_assert_not_null(slash, "cannot locate the source tree from %s", __FILE__);
        *slash = '\0';
    }
    strncat(data_dir, "/data", sizeof data_dir - strlen(data_dir) - 1);
}

static void set(ee_config *cfg, const char *k, const char *v)
{
    cr_assert_eq(ee_config_set(cfg, k, v), EE_OK, "%s: %s", k, ee_error_last_message());
}

static void setup(void)
{
    ee_test_n8n_value("EE_TEST_N8N_URL", url, sizeof url);
    ee_test_n8n_value("EE_TEST_N8N_API_KEY", key, sizeof key);
    find_data_dir();
    ee_config *cfg;
    cr_assert_eq(ee_config_new(&cfg), EE_OK);
    set(cfg, "API_KEY_ENCRYPTION_SECRET", "test-secret-0123456789abcdef0123456789");
    set(cfg, "EE_STORAGE_URI", "memory:");
    set(cfg, "EE_DATA_DIR", data_dir);
    set(cfg, "N8N_BASE_URL", url);
    set(cfg, "N8N_API_KEY", key);
    set(cfg, "EXEC_WORKERS", "2");
    set(cfg, "EXEC_POLL_MS", "100");
    /* no EXEC_CALLBACK_URL: the listener's route is the default */
    ee_status st = ee_engine_open(&engine, cfg);
    ee_config_free(cfg);
    cr_assert_eq(st, EE_OK, "%s", ee_error_last_message());
    cr_assert_eq(ee_gateway_listen(engine, "127.0.0.1:0", &listener), EE_OK, "%s",
                 ee_error_last_message());
    char *out = NULL;
    st = ee_catalog_sync(engine, &out);
    cr_assert_eq(st, EE_OK, "sync: %s", out);
    ee_free(out);
    cr_assert_eq(ee_principal_new(&alice, "ws-n8n-callback", "u1", "org-n8n-callback"), EE_OK);
}

static void teardown(void)
{
    ee_principal_free(alice);
    ee_engine_close(engine);
    ee_free(listener);
    listener = NULL;
}

TestSuite(n8n_callback_e2e, .init = setup, .fini = teardown, .timeout = 300);

/* n8n's record of execution `n8n_id` once it has finished (n8n ends it
 * after the listener answered its callback): bounded re-reads. */
static json_t *n8n_execution_finished(const char *n8n_id)
{
    ee_transport *t = NULL;
    ee_n8n *client = NULL;
    cr_assert_eq(ee_transport_curl_new(&t, NULL), EE_OK);
    cr_assert_eq(ee_n8n_new(&client, t, url, key), EE_OK, "%s", ee_error_last_message());
    json_t *ex = NULL;
    for (int i = 0; i < 600; i++) {
        char *out = NULL;
        ee_status st = ee_n8n_get_execution(client, n8n_id, 1, &out);
        cr_assert_eq(st, EE_OK, "%s", out);
        ex = json_loads(out, 0, NULL);
        ee_free(out);
        cr_assert_not_null(ex);
        const char *status = json_string_value(json_object_get(ex, "status"));
        if (status != NULL && strcmp(status, "running") != 0 && strcmp(status, "waiting") != 0 &&
            strcmp(status, "pending") != 0)
            break;
        json_decref(ex);
        ex = NULL;
        usleep(100000);
    }
    ee_n8n_free(client);
    ee_transport_free(t);
    cr_assert_not_null(ex, "n8n's execution %s never finished", n8n_id);
    return ex;
}

Test(n8n_callback_e2e, the_listener_takes_the_fixtures_signed_callback_and_the_run_completes)
{
    char wf[25], id[EE_EXEC_ID_SIZE], *out = NULL;
    ee_test_n8n_entry_named(engine, FIXTURE_NAME, wf);
    ee_status st = ee_exec_submit(engine, alice, wf,
                                  "{\"parameters\": {\"text\": \"signed by n8n\", \"seconds\": 1}}",
                                  NULL, NULL, id);
    cr_assert_eq(st, EE_OK, "%s", ee_error_last_message());
    st = ee_exec_wait(engine, alice, id, 240000, &out);
    cr_assert_eq(st, EE_OK, "%s", out);
    json_t *rec = json_loads(out, 0, NULL);
    cr_assert_not_null(rec, "%s", out);
    cr_assert_str_eq(json_string_value(json_object_get(rec, "status")), "completed", "%s", out);
    json_t *output = json_object_get(rec, "outputData");
    cr_assert_str_eq(json_string_value(json_object_get(output, "upper")), "SIGNED BY N8N", "%s",
                     out);
    cr_assert_str_eq(json_string_value(json_object_get(output, "via")), "callback", "%s", out);
    /* neither the callback key nor the gateway token is stored */
    cr_assert_null(strstr(out, "callbackKey"), "%s", out);
    cr_assert_null(strstr(out, "eeg_"), "%s", out);
    const char *n8n_id = json_string_value(json_object_get(rec, "n8nExecutionId"));
    cr_assert_not_null(n8n_id, "%s", out);
    char n8n_id_copy[64];
    snprintf(n8n_id_copy, sizeof n8n_id_copy, "%s", n8n_id);
    json_decref(rec);
    ee_free(out);

    /* n8n sent its callback to the listener, which applied it: the
     * "Send callback" node's output is the listener's answer (an n8n HTTP
     * Request node fails on a 4xx, so a refused callback would have failed
     * the workflow, and the run with it) */
    json_t *ex = n8n_execution_finished(n8n_id_copy);
    json_t *runs = json_object_get(
        json_object_get(json_object_get(json_object_get(ex, "data"), "resultData"), "runData"),
        "Send callback");
    char *dump = json_dumps(ex, JSON_COMPACT);
    cr_assert(json_is_array(runs), "n8n's execution has no \"Send callback\" run: %.2000s", dump);
    json_t *answer = json_object_get(
        json_array_get(json_array_get(
                           json_object_get(json_object_get(json_array_get(runs, 0), "data"),
                                           "main"),
                           0),
                       0),
        "json");
    cr_assert(json_is_true(json_object_get(answer, "applied")),
              "the listener applied the callback: %.2000s", dump);
    cr_assert_str_eq(json_string_value(json_object_get(answer, "executionId")), id);
    free(dump);
    json_decref(ex);
}
