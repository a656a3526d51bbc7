/*
 * ee-run-workflow: run one catalog workflow through libexecengine, end to
 * end, with the public API only - what scripts/run shows.
 *
 *   ee-run-workflow --n8n-workflow ID [--params JSON] [--estimate USD]
 *
 * Configuration comes from the environment (N8N_BASE_URL, N8N_API_KEY,
 * PLATFORM_*, EE_STORAGE_URI, EE_DATA_DIR, API_KEY_ENCRYPTION_SECRET ...).
 * Steps, each printed as it happens:
 *   1. open the engine;
 *   2. provision the platform credentials from PLATFORM_* (the demo runs on
 *      platform credentials);
 *   3. sync the catalog from n8n;
 *   4. find the entry synced from n8n workflow ID (scripts/run passes the
 *      "LLM summary" fixture's) and, as an admin would, give it an estimated cost
 *      (--estimate, default 0.01 USD) so the run has a budget;
 *   5. start the gateway listener on loopback (ee_gateway_listen);
 *   6. run it as the demo workspace (ee_exec_run) with the parameters
 *      (--params, default a text to summarise);
 *   7. print the result, its cost (ee_exec_cost: each metered call) and
 *      the predictions quota left (ee_quota_check).
 * Exit status 0 when the run completed. Log lines of the library go to
 * stderr (warnings and errors only).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <execengine/execengine.h>

#define DEMO_WORKSPACE "demo-workspace"
#define DEMO_USER "demo-user"
#define DEMO_ORG "demo-org"

static void log_to_stderr(ee_log_level level, const char *module, const char *message,
                          void *payload)
{
    (void)payload;
    fprintf(stderr, "    [%s] %s: %s\n", ee_log_level_name(level), module, message);
}

static int fail(const char *what, ee_status st, const char *detail)
{
    fprintf(stderr, "ee-run-workflow: %s: %s (%s): %s\n", what, ee_status_name(st),
            ee_strerror(st), ee_error_last_message());
    if (detail != NULL)
        fprintf(stderr, "%s\n", detail);
    return 1;
}

/* The value of "key": in a flat spot of a JSON text, copied into buf
 * (strings without escapes only, or a number/true/false/null). Enough for
 * printing; the example keeps to the public API and no JSON library. */
static const char *json_field(const char *json, const char *key, char *buf, size_t cap)
{
    char pat[96];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = json ? strstr(json, pat) : NULL;
    if (p == NULL) {
        snprintf(pat, sizeof pat, "\"%s\": ", key);
        p = json ? strstr(json, pat) : NULL;
        if (p == NULL)
            return NULL;
    }
    p += strlen(pat);
    while (*p == ' ')
        p++;
    size_t n = 0;
    if (*p == '"') {
        p++;
        while (p[n] && p[n] != '"')
            n++;
    } else {
        while (p[n] && p[n] != ',' && p[n] != '}' && p[n] != ']')
            n++;
    }
    if (n >= cap)
        n = cap - 1;
    memcpy(buf, p, n);
    buf[n] = '\0';
    return buf;
}

/* How many objects the array member "key" of a JSON text holds (-1: none). */
static int count_items(const char *json, const char *key)
{
    char pat[96];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = json ? strstr(json, pat) : NULL;
    if (p == NULL)
        return -1;
    p += strlen(pat);
    while (*p == ' ')
        p++;
    if (*p != '[')
        return -1;
    int depth = 0, n = 0, in_string = 0;
    for (; *p; p++) {
        if (in_string) {
            if (*p == '\\' && p[1] != '\0')
                p++;
            else if (*p == '"')
                in_string = 0;
            continue;
        }
        if (*p == '"')
            in_string = 1;
        else if (*p == '[' || *p == '{') {
            if (*p == '{' && depth == 1)
                n++;
            depth++;
        } else if ((*p == ']' || *p == '}') && --depth == 0)
            break;
    }
    return n;
}

/* The catalog id of the entry synced from n8n workflow `n8n_id` (id_out: 25). */
static ee_status find_entry(ee_engine *engine, const char *n8n_id, char id_out[25])
{
    char query[256], *page = NULL;
    if (strlen(n8n_id) > 128 || strpbrk(n8n_id, "\"\\") != NULL)
        return EE_EINVAL;
    snprintf(query, sizeof query, "{\"n8nWorkflowId\": \"%s\"}", n8n_id);
    ee_status st = ee_catalog_list(engine, NULL, query, &page);
    if (st != EE_OK)
        return st;
    char id[32];
    /* {"data": [{"id": ...}], ...}: the first "id" is the item's */
    if (json_field(page, "id", id, sizeof id) != NULL && strlen(id) == 24) {
        memcpy(id_out, id, 25);
        st = EE_OK;
    } else {
        st = EE_ENOTFOUND;
    }
    ee_free(page);
    return st;
}

int main(int argc, char **argv)
{
    const char *n8n_id = NULL;
    const char *params = "{\"text\": \"libexecengine runs catalog workflows through n8n. "
                         "Provider calls go through a metering gateway that injects the routed "
                         "key, so no workflow ever holds a secret, and every call is priced.\"}";
    const char *estimate = "0.01";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--n8n-workflow") == 0 && i + 1 < argc)
            n8n_id = argv[++i];
        else if (strcmp(argv[i], "--params") == 0 && i + 1 < argc)
            params = argv[++i];
        else if (strcmp(argv[i], "--estimate") == 0 && i + 1 < argc)
            estimate = argv[++i];
        else {
            n8n_id = NULL;
            break;
        }
    }
    if (n8n_id == NULL) {
        fprintf(stderr, "usage: ee-run-workflow --n8n-workflow ID [--params JSON] "
                        "[--estimate USD]\n");
        return 2;
    }

    printf("libexecengine %s\n", ee_version());
    printf("[1/7] opening the engine (configuration from the environment)\n");
    ee_config *cfg = NULL;
    ee_status st = ee_config_new(&cfg);
    if (st == EE_OK)
        st = ee_config_load_env(cfg);
    if (st == EE_OK)
        st = ee_config_set_log(cfg, log_to_stderr, EE_LOG_WARN, NULL);
    if (st != EE_OK) {
        ee_config_free(cfg);
        return fail("configuration", st, NULL);
    }
    ee_engine *engine = NULL;
    st = ee_engine_open(&engine, cfg);
    ee_config_free(cfg);
    if (st != EE_OK)
        return fail("opening the engine", st, NULL);

    int rc = 1;
    char *out = NULL;
    ee_principal *who = NULL;
    char buf[256], buf2[256];

    printf("[2/7] provisioning platform credentials from PLATFORM_*\n");
    if ((st = ee_cred_platform_provision(engine, &out)) != EE_OK) {
        rc = fail("provisioning platform credentials", st, out);
        goto done;
    }
    printf("      created %s, updated %s, unchanged %s\n",
           json_field(out, "created", buf, sizeof buf) ? buf : "?",
           json_field(out, "updated", buf2, sizeof buf2) ? buf2 : "?",
           json_field(out, "unchanged", buf2, sizeof buf2) ? buf2 : "?");
    ee_free(out);
    out = NULL;

    printf("[3/7] syncing the catalog from n8n\n");
    if ((st = ee_catalog_sync(engine, &out)) != EE_OK) {
        rc = fail("syncing the catalog", st, out);
        goto done;
    }
    printf("      added %d, updated %d, deactivated %d, not runnable %d, errors %d\n",
           count_items(out, "added"), count_items(out, "updated"),
           count_items(out, "deactivated"), count_items(out, "notRunnable"),
           count_items(out, "errors"));
    ee_free(out);
    out = NULL;

    printf("[4/7] finding the catalog entry of n8n workflow %s\n", n8n_id);
    char id[25];
    if ((st = find_entry(engine, n8n_id, id)) != EE_OK) {
        rc = fail("finding the workflow in the catalog", st, NULL);
        goto done;
    }
    char patch[128];
    snprintf(patch, sizeof patch, "{\"estimatedCost\": \"%s\"}", estimate);
    if ((st = ee_catalog_update(engine, id, patch, &out)) != EE_OK) {
        rc = fail("setting the estimated cost", st, out);
        goto done;
    }
    printf("      catalog entry %s (\"%s\"), estimated cost %s USD\n", id,
           json_field(out, "name", buf, sizeof buf) ? buf : "?", estimate);
    ee_free(out);
    out = NULL;

    printf("[5/7] starting the credential gateway on loopback\n");
    char *gateway = NULL;
    if ((st = ee_gateway_listen(engine, "127.0.0.1:0", &gateway)) != EE_OK) {
        rc = fail("starting the gateway", st, NULL);
        goto done;
    }
    printf("      workflows call providers through %s\n", gateway);
    ee_free(gateway);

    printf("[6/7] running it as workspace \"%s\" on platform credentials\n", DEMO_WORKSPACE);
    if ((st = ee_principal_new(&who, DEMO_WORKSPACE, DEMO_USER, DEMO_ORG)) != EE_OK) {
        rc = fail("creating the principal", st, NULL);
        goto done;
    }
    size_t req_cap = strlen(params) + 64;
    char *request = malloc(req_cap);
    if (request == NULL) {
        rc = fail("allocating the request", EE_ENOMEM, NULL);
        goto done;
    }
    snprintf(request, req_cap, "{\"parameters\": %s}", params);
    st = ee_exec_run(engine, who, id, request, &out);
    free(request);
    if (out == NULL) {
        rc = fail("running the workflow", st, NULL);
        goto done;
    }
    char exec_id[32] = "";
    json_field(out, "_id", exec_id, sizeof exec_id);
    printf("      execution %s: %s\n", exec_id,
           json_field(out, "status", buf, sizeof buf) ? buf : "?");
    if (st != EE_OK) {
        printf("      error: %s\n", json_field(out, "errorMessage", buf, sizeof buf) ? buf : out);
        rc = fail("the run did not complete", st, NULL);
        ee_free(out);
        out = NULL;
        goto done;
    }
    ee_free(out);
    out = NULL;

    printf("[7/7] result, cost and quota\n");
    if (ee_exec_results(engine, who, exec_id, &out) == EE_OK)
        printf("      result: %s\n", out);
    ee_free(out);
    out = NULL;
    if (ee_exec_cost(engine, who, exec_id, &out) == EE_OK)
        printf("      cost: %s\n", out);
    ee_free(out);
    out = NULL;
    if ((st = ee_quota_check(engine, who, &out)) == EE_OK)
        printf("      predictions: used %s, remaining %s (-1: unlimited)\n",
               json_field(out, "usage", buf, sizeof buf) ? buf : "?",
               json_field(out, "remaining", buf2, sizeof buf2) ? buf2 : "?");
    ee_free(out);
    out = NULL;
    rc = 0;

done:
    ee_free(out);
    ee_principal_free(who);
    ee_engine_close(engine);
    return rc;
}
