/*
 * first-run.c - the C part of docs/tutorial.md: run one catalog workflow
 * through n8n with libexecengine, as a customer would.
 *
 *   ee-first-run [WORDS]      (default WORDS: "echo")
 *
 * Configuration comes from the environment (N8N_BASE_URL, N8N_API_KEY,
 * API_KEY_ENCRYPTION_SECRET, EE_STORAGE_URI ...). The program syncs the
 * catalog from n8n, finds the first workflow matching WORDS, runs it with
 * {"a": 2, "b": 3} as workspace "tutorial-ws", and prints the execution's
 * status, its output and what it cost. Exit status 0 when the run
 * completed, 1 otherwise (the reason on stderr).
 *
 * JSON documents cross the API as text; this example reads the few fields
 * it needs with jansson, the JSON library the engine itself uses.
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include <execengine/execengine.h>

static int fail(const char *what, ee_status st)
{
    fprintf(stderr, "first-run: %s: %s: %s\n", what, ee_status_name(st), ee_error_last_message());
    return 1;
}

/* The string member `key` of the JSON object text `doc`, copied to buf. */
static const char *field(const char *doc, const char *key, char *buf, size_t cap)
{
    json_t *j = json_loads(doc, 0, NULL);
    const char *v = json_string_value(json_object_get(j, key));
    snprintf(buf, cap, "%s", v != NULL ? v : "");
    json_decref(j);
    return buf;
}

int main(int argc, char **argv)
{
    const char *words = argc > 1 ? argv[1] : "echo";

    /* 1. Configuration from the environment, then the engine. */
    ee_config *cfg = NULL;
    ee_status st = ee_config_new(&cfg);
    if (st == EE_OK)
        st = ee_config_load_env(cfg);
    if (st != EE_OK) {
        ee_config_free(cfg);
        return fail("configuration", st);
    }
    ee_engine *engine = NULL;
    st = ee_engine_open(&engine, cfg);
    ee_config_free(cfg); /* the engine keeps its own copy */
    if (st != EE_OK)
        return fail("opening the engine", st);

    int rc = 1;
    char *out = NULL;
    ee_principal *who = NULL;
    json_t *page = NULL;

    /* 2. The catalog: every active n8n workflow becomes an entry. */
    if ((st = ee_catalog_sync(engine, &out)) != EE_OK) {
        rc = fail("syncing the catalog", st);
        goto done;
    }
    ee_free(out);
    out = NULL;

    /* 3. Who runs it: a workspace, a user, an organisation. */
    if ((st = ee_principal_new(&who, "tutorial-ws", "tutorial-user", "tutorial-org")) != EE_OK) {
        rc = fail("creating the principal", st);
        goto done;
    }

    /* 4. Find the workflow, as a customer browsing the catalog would. */
    json_t *query = json_pack("{s:s, s:i}", "q", words, "limit", 1);
    char *query_text = json_dumps(query, JSON_COMPACT);
    json_decref(query);
    st = query_text != NULL ? ee_catalog_search(engine, who, query_text, &out) : EE_ENOMEM;
    free(query_text);
    if (st != EE_OK) {
        rc = fail("searching the catalog", st);
        goto done;
    }
    page = json_loads(out, 0, NULL);
    ee_free(out);
    out = NULL;
    json_t *entry = json_array_get(json_object_get(page, "data"), 0);
    const char *workflow_id = json_string_value(json_object_get(entry, "id"));
    if (workflow_id == NULL) {
        fprintf(stderr, "first-run: no workflow matches \"%s\"\n", words);
        goto done;
    }
    printf("workflow %s: %s\n", workflow_id, json_string_value(json_object_get(entry, "name")));

    /* 5. Run it and wait: the engine admits it (quota, rate, budget), routes
     * its credentials, triggers n8n and records the outcome. */
    st = ee_exec_run(engine, who, workflow_id, "{\"parameters\": {\"a\": 2, \"b\": 3}}", &out);
    if (out == NULL) {
        rc = fail("running the workflow", st);
        goto done;
    }
    char id[64], status[32];
    field(out, "_id", id, sizeof id);
    printf("execution %s: %s\n", id, field(out, "status", status, sizeof status));
    if (st != EE_OK) {
        rc = fail("the run did not complete", st);
        goto done;
    }
    ee_free(out);
    out = NULL;

    /* 6. Its results and its cost (0 here: no provider was called). */
    if ((st = ee_exec_results(engine, who, id, &out)) != EE_OK) {
        rc = fail("reading the results", st);
        goto done;
    }
    printf("results: %s\n", out);
    ee_free(out);
    out = NULL;
    if ((st = ee_exec_cost(engine, who, id, &out)) != EE_OK) {
        rc = fail("reading the cost", st);
        goto done;
    }
    printf("cost: %s\n", out);
    rc = 0;

done:
    ee_free(out);
    json_decref(page);
    ee_principal_free(who);
    ee_engine_close(engine);
    return rc;
}
