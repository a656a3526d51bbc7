/*
 * libFuzzer: arbitrary bytes as n8n's answers to a catalog sync, and as
 * the catalog's category documents (memory engine, no workers, its n8n
 * client over a transport that answers with the input). The first byte
 * picks:
 *   0  a sync: the rest, split at NUL bytes, is n8n's workflow listing
 *      (first part; a further page is empty) and then, one per request in
 *      order, the workflows n8n gives for GET /workflows/<id> (a workflow
 *      asked for again gets the same part; none left: 404). A part whose
 *      first byte is below 0x20 has that byte pick the HTTP status
 *      instead of 200. The sync runs, then again with the same answers;
 *      every entry it reports reads back, the catalog lists and searches,
 *      and up to three runnable entries are submitted (then cancelled).
 *   1  ee_catalog_category_create(); one accepted reads back, lists and
 *      takes a patch
 *   2  ee_catalog_category_update() patch of a standing category
 *   3  ee_catalog_category_list() query
 *   4  a category id for ee_catalog_category_get() (both views)
 * Invariants: documented statuses only (never EE_ENOMEM, EE_ECORRUPT or
 * EE_EIO for outside input); answers are JSON, a failure's the error
 * document of its status; a second sync of the same answers changes
 * nothing ("changed": false, nothing added, updated or deactivated); what
 * a sync stored reads, lists, searches and routes (no EE_ECORRUPT). The
 * engine is opened again every FZ_RESET inputs (entries and categories
 * accumulate).
 */
#include "fuzz_engine.h"

#define FZ_RESET 1000
#define MAX_PARTS 32

static ee_engine *engine;
static ee_transport *transport;
static ee_n8n *n8n;
static ee_principal *user;
static char cat_id[32];
static unsigned inputs;

/* ---- n8n ------------------------------------------------------------------------- */

typedef struct {
    const uint8_t *p;
    size_t len;
} part;

static struct {
    part parts[MAX_PARTS];
    size_t n, next;       /* parts; the next one to give */
    char ids[MAX_PARTS][160];
    size_t given[MAX_PARTS];
    size_t n_ids;
} answers;

static ee_status give(ee_http_response *resp, part pt)
{
    static const int statuses[] = {200, 200, 201, 204, 400, 401, 403, 404, 429, 500, 502, 503,
                                   301, 100, 599, 200};
    int status = 200;
    if (pt.len > 0 && pt.p[0] < 0x20) {
        status = statuses[pt.p[0] % (sizeof statuses / sizeof statuses[0])];
        pt.p++;
        pt.len--;
    }
    CHECK(ee_http_response_set_status(resp, status) == EE_OK);
    CHECK(ee_http_response_add_header(resp, "Content-Type", "application/json") == EE_OK);
    return ee_http_response_append_body(resp, pt.p, pt.len);
}

static ee_status n8n_http(void *ctx, const ee_http_request *req, ee_http_response *resp)
{
    (void)ctx;
    const char *url = ee_http_request_url(req);
    static const char list[] = "http://fz.n8n/api/v1/workflows?", one[] = "http://fz.n8n/api/v1/workflows/";
    if (strncmp(url, list, sizeof list - 1) == 0) {
        if (strstr(url, "cursor=") != NULL) { /* a further page: the end */
            static const char end[] = "{\"data\": [], \"nextCursor\": null}";
            part pt = {(const uint8_t *)end, sizeof end - 1};
            return give(resp, pt);
        }
        return give(resp, answers.n > 0 ? answers.parts[0] : (part){NULL, 0});
    }
    if (strncmp(url, one, sizeof one - 1) == 0) {
        const char *id = url + sizeof one - 1;
        for (size_t i = 0; i < answers.n_ids; i++)
            if (strcmp(answers.ids[i], id) == 0)
                return give(resp, answers.parts[answers.given[i]]);
        if (answers.next < answers.n && answers.n_ids < MAX_PARTS &&
            strlen(id) < sizeof answers.ids[0]) {
            snprintf(answers.ids[answers.n_ids], sizeof answers.ids[0], "%s", id);
            answers.given[answers.n_ids++] = answers.next;
            return give(resp, answers.parts[answers.next++]);
        }
    }
    static const char none[] = "{\"message\": \"Not Found\"}";
    CHECK(ee_http_response_set_status(resp, 404) == EE_OK);
    return ee_http_response_append_body(resp, none, sizeof none - 1);
}

static const ee_transport_backend n8n_backend = {EE_TRANSPORT_BACKEND_VERSION,
                                                 EE_TRANSPORT_THREAD_SAFE, n8n_http, NULL, NULL};

/* ---- the engine --------------------------------------------------------------------- */

static void open_engine(void)
{
    if (engine != NULL) {
        ee_principal_free(user);
        ee_engine_close(engine);
        ee_n8n_free(n8n);
        ee_transport_free(transport);
    }
    transport = fz_custom_transport(&n8n_backend, NULL, 0);
    CHECK(ee_n8n_new(&n8n, transport, "http://fz.n8n", "fz-n8n-key") == EE_OK);
    ee_config *cfg = fz_config();
    CHECK(ee_config_set(cfg, "EXEC_WORKERS", "0") == EE_OK);
    CHECK(ee_config_set(cfg, "PLATFORM_OPENROUTER_KEY", "sk-or-v1-fz-sync-platform-0001") ==
          EE_OK);
    CHECK(ee_config_set(cfg, "PLATFORM_SERPER_KEY", "fz-sync-serper-0002") == EE_OK);
    CHECK(ee_config_set(cfg, "OPENROUTER_API_URL", "http://fz.openrouter/api/v1") == EE_OK);
    ee_engine_parts parts = {.version = EE_ENGINE_PARTS_VERSION, .transport = transport,
                             .n8n = n8n};
    CHECK(ee_engine_open_parts(&engine, cfg, &parts) == EE_OK);
    ee_config_free(cfg);
    char *out = NULL;
    CHECK(ee_cred_platform_provision(engine, &out) == EE_OK);
    ee_free(out);
    CHECK(ee_quota_subscription_put(engine, "{\"orgId\": \"org-fz\", \"plan\": \"enterprise\"}",
                                    &out) == EE_OK);
    ee_free(out);
    CHECK(ee_principal_new(&user, "ws-fz", "u-fz", "org-fz") == EE_OK);
    CHECK(ee_catalog_category_create(engine, "{\"name\": \"Standing\", \"sortOrder\": 3}", &out) ==
          EE_OK);
    json_t *doc = json_loads(out, 0, NULL);
    snprintf(cat_id, sizeof cat_id, "%s", json_string_value(json_object_get(doc, "id")));
    json_decref(doc);
    ee_free(out);
    ee_error_clear();
}

/* ---- a sync --------------------------------------------------------------------------- */

static json_t *sync_once(void)
{
    answers.next = 1; /* part 0 is the listing */
    answers.n_ids = 0;
    char *out = NULL;
    ee_status st = ee_catalog_sync(engine, &out);
    /* the listing's failures are the n8n client's */
    CHECK_STATUS(st, EE_OK, EE_EPARSE, EE_EUPSTREAM, EE_ETOOBIG, EE_EINVAL, EE_ENOTFOUND,
                 EE_EAUTH, EE_EPERM, EE_ERATELIMIT, EE_EUNKNOWN);
    json_t *doc = fz_answer(st, out);
    if (st != EE_OK) {
        json_decref(doc);
        return NULL;
    }
    static const char *const lists[] = {"added", "updated", "deactivated", "notRunnable",
                                        "errors", "categoriesCreated"};
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++)
        CHECK(json_is_array(json_object_get(doc, lists[i])));
    CHECK(json_is_integer(json_object_get(doc, "unchanged")));
    CHECK(json_is_boolean(json_object_get(doc, "changed")));
    return doc;
}

static bool listed(const json_t *arr, const char *id)
{
    size_t i;
    const json_t *it;
    json_array_foreach(arr, i, it) {
        const char *v = json_string_value(json_object_get(it, "id"));
        if (v != NULL && strcmp(v, id) == 0)
            return true;
    }
    return false;
}

static void use_entries(const json_t *report)
{
    static const char *const lists[] = {"added", "updated", "deactivated"};
    int submitted = 0;
    for (size_t l = 0; l < 3; l++) {
        size_t i;
        const json_t *it;
        json_array_foreach(json_object_get(report, lists[l]), i, it) {
            const char *id = json_string_value(json_object_get(it, "id"));
            CHECK(id != NULL);
            char *out = NULL;
            ee_status st = ee_catalog_get(engine, NULL, id, EE_CATALOG_INCLUDE_INACTIVE, &out);
            if (st != EE_OK)
                fprintf(stderr, "get %s: %s\n", id, out);
            CHECK(st == EE_OK);
            json_decref(fz_answer(st, out));
            if (l == 2 || listed(json_object_get(report, "notRunnable"), id) || submitted >= 3)
                continue;
            /* what sync derived (trigger, credential types) drives a run */
            char xid[EE_EXEC_ID_SIZE];
            submitted++;
            st = ee_exec_submit(engine, user, id, "{}", NULL, NULL, xid);
            CHECK_STATUS(st, EE_OK, EE_ECREDENTIALS, EE_ENOTFOUND, EE_ESTATE);
            if (st == EE_OK)
                CHECK(ee_exec_cancel(engine, user, xid) == EE_OK);
        }
    }
    char *out = NULL;
    ee_status st = ee_catalog_list(engine, NULL, "{\"includeInactive\": true, \"limit\": 100}",
                                   &out);
    CHECK(st == EE_OK);
    json_decref(fz_answer(st, out));
    st = ee_catalog_search(engine, user, "{\"q\": \"report email\"}", &out);
    CHECK(st == EE_OK);
    json_decref(fz_answer(st, out));
    st = ee_catalog_category_list(engine, "{\"includeInactive\": true}", &out);
    CHECK(st == EE_OK);
    json_decref(fz_answer(st, out));
}

static void sync(const uint8_t *data, size_t size)
{
    answers.n = 0;
    const uint8_t *p = data, *end = data + size;
    while (answers.n < MAX_PARTS) {
        const uint8_t *nul = memchr(p, 0, (size_t)(end - p));
        size_t n = nul != NULL ? (size_t)(nul - p) : (size_t)(end - p);
        answers.parts[answers.n++] = (part){p, n};
        if (nul == NULL)
            break;
        p = nul + 1;
    }
    json_t *first = sync_once();
    if (first == NULL)
        return;
    use_entries(first);
    json_t *again = sync_once();
    CHECK(again != NULL); /* the same answers read the same */
    CHECK(json_is_false(json_object_get(again, "changed")));
    CHECK(json_array_size(json_object_get(again, "added")) == 0);
    CHECK(json_array_size(json_object_get(again, "updated")) == 0);
    CHECK(json_array_size(json_object_get(again, "deactivated")) == 0);
    json_decref(again);
    json_decref(first);
}

/* ---- categories -------------------------------------------------------------------------- */

static void category_create(const char *text)
{
    char *out = NULL;
    ee_status st = ee_catalog_category_create(engine, text, &out);
    CHECK_STATUS(st, EE_OK, EE_EINVAL, EE_EPARSE, EE_ETOOBIG, EE_EEXISTS);
    json_t *doc = fz_answer(st, out);
    if (st == EE_OK) {
        const char *id = json_string_value(json_object_get(doc, "id"));
        CHECK(id != NULL);
        st = ee_catalog_category_get(engine, id, EE_CATALOG_INCLUDE_INACTIVE, &out);
        CHECK(st == EE_OK);
        json_decref(fz_answer(st, out));
        st = ee_catalog_category_list(engine, "{\"includeInactive\": true}", &out);
        CHECK(st == EE_OK);
        json_t *all = fz_answer(st, out);
        CHECK(listed(json_object_get(all, "data"), id));
        json_decref(all);
        st = ee_catalog_category_update(engine, id, "{\"sortOrder\": 7, \"isActive\": false}",
                                        &out);
        CHECK(st == EE_OK);
        json_decref(fz_answer(st, out));
    }
    json_decref(doc);
}

static void category_update(const char *text)
{
    char *out = NULL;
    ee_status st = ee_catalog_category_update(engine, cat_id, text, &out);
    CHECK_STATUS(st, EE_OK, EE_EINVAL, EE_EPARSE, EE_ETOOBIG, EE_EEXISTS, EE_ECONFLICT);
    json_decref(fz_answer(st, out));
}

static void category_list(const char *text)
{
    char *out = NULL;
    ee_status st = ee_catalog_category_list(engine, text, &out);
    CHECK_STATUS(st, EE_OK, EE_EINVAL, EE_EPARSE, EE_ETOOBIG);
    json_decref(fz_answer(st, out));
}

static void category_get(const char *text)
{
    const char *id = strcmp(text, "CATID") == 0 ? cat_id : text;
    for (unsigned flags = 0; flags < 2; flags++) {
        char *out = NULL;
        ee_status st = ee_catalog_category_get(engine, id,
                                               flags ? EE_CATALOG_INCLUDE_INACTIVE : 0, &out);
        CHECK_STATUS(st, EE_OK, EE_EINVAL, EE_ENOTFOUND);
        json_decref(fz_answer(st, out));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (engine == NULL || ++inputs % FZ_RESET == 0)
        open_engine();
    char *text = fz_text(data + 1, size - 1);
    switch (data[0] % 5) {
    case 0: sync(data + 1, size - 1); break;
    case 1: category_create(text); break;
    case 2: category_update(text); break;
    case 3: category_list(text); break;
    default: category_get(text); break;
    }
    free(text);
    ee_error_clear();
    return 0;
}
