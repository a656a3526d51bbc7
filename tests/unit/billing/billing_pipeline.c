/*
 * Billing through the real pipeline: hundreds of executions run by
 * ee_exec_run() over the exec tests' fake n8n, whose "llm" workflow calls
 * the engine's gateway (as its OpenRouter node would) against an upstream
 * reporting a cost per call; three workspaces, platform and customer keys,
 * the engine's clock moved over two billing months. Each execution's
 * charge is on its record; the month records' totals are the sums of those
 * charges to the nano-dollar; accounting a run again changes nothing.
 */
#include "../exec/exec_gateway.h"

#include <stdatomic.h>

#include <execengine/billing.h>
#include <execengine/credentials.h>
#include <execengine/gateway.h>

#include "exec/exec_internal.h"
#include "temp_dir.h"

#define C_PLATFORM "sk-or-v1-CANARY-billing-platform-7a1c"
#define C_CUSTOMER "sk-or-v1-CANARY-billing-customer-93fe"
#define DAY_MS INT64_C(86400000)
#define T_2026_03_02 INT64_C(1772409600000)

static ee_engine *engine;
static ee_transport *transport;
static ee_n8n *client;
static atomic_int calls;
static _Atomic int64_t now_ms = T_2026_03_02;
static char dir[64];

static int64_t clock_fn(void *payload)
{
    (void)payload;
    return atomic_load(&now_ms);
}

/* The workflow's OpenRouter node: one call through the gateway, which passes. */
static void spend(const char *token)
{
    cr_assert_eq(gw_call(engine, token), 200);
}

static ee_status http(void *ctx, const ee_http_request *req, ee_http_response *resp)
{
    if (gw_is_upstream(req)) {
        /* 333333333..1666666665 atto: a cost that rounds differently each call */
        int k = atomic_fetch_add(&calls, 1);
        char answer[512];
        snprintf(answer, sizeof answer,
                 "{\"id\": \"gen-%d\", \"model\": \"openai/gpt-4o-mini\", \"choices\": [], "
                 "\"usage\": {\"prompt_tokens\": %d, \"completion_tokens\": 7, "
                 "\"total_tokens\": %d, \"cost\": 0.000%d33333333%d}}",
                 k, 10 + k % 3, 17 + k % 3, 3 * (k % 5 + 1), k % 10);
        return gw_upstream_answer(resp, answer);
    }
    gw_llm_webhook(req, spend);
    return fake_http(ctx, req, resp);
}

static void setup(void)
{
    (void)fake_engine_config;
    (void)fake_hits;
    fake_setup();
    ee_test_temp_dir("/tmp/ee-billing-XXXXXX", dir, sizeof dir);
    atomic_store(&now_ms, T_2026_03_02);
    gw_client_new(&transport, &client, http);
    char uri[128];
    snprintf(uri, sizeof uri, "sqlite://%s/billing.db", dir);
    ee_config *cfg = ee_test_config_new(uri, clock_fn, NULL);
    ee_test_config_set(cfg, "EXEC_WORKERS", "1");
    ee_test_config_set(cfg, "PLATFORM_OPENROUTER_KEY", C_PLATFORM);
    ee_test_config_set(cfg, "MAX_EXECUTIONS_PER_USER_PER_HOUR", "1000000");
    ee_test_config_set(cfg, "FREE_TIER_MONTHLY_ALLOWANCE", "0.02");
    ee_test_config_set(cfg, "PLATFORM_API_MARKUP_PERCENTAGE", "20");
    engine = gw_engine_open(cfg, transport, client);
}

static void teardown(void)
{
    ee_engine_close(engine);
    ee_n8n_free(client);
    ee_transport_free(transport);
    fake_teardown();
    ee_test_temp_dir_remove(dir);
}

TestSuite(billing_pipeline, .init = setup, .fini = teardown, .timeout = 300);

enum { NWS = 3, NM = 2, N = 300 };
static const char *const wss[NWS] = {"ws-p0", "ws-p1", "ws-p2"};

typedef struct {
    char month[8];
    int64_t parts[6]; /* executions, cost, markup, allowanceUsed, charged, tokens */
} msum;

/* Walk every execution of `p`'s workspace and add its charge to sums. */
static int sum_charges(const ee_principal *p, msum sums[NM], int *crossed)
{
    char *out = NULL, q[512];
    int seen = 0;
    char cursor[256] = "";
    for (;;) {
        if (cursor[0] != '\0')
            snprintf(q, sizeof q, "{\"limit\": 100, \"cursor\": \"%s\"}", cursor);
        else
            snprintf(q, sizeof q, "{\"limit\": 100}");
        cr_assert_eq(ee_exec_list(engine, p, q, &out), EE_OK, "%s", out);
        json_t *doc = parse_doc(out);
        ee_free(out);
        json_t *data = json_object_get(doc, "data");
        for (size_t i = 0; i < json_array_size(data); i++) {
            const json_t *r = json_array_get(data, i);
            const json_t *c = json_object_get(r, "charge");
            const json_t *key = json_object_get(r, "apiKeyUsed");
            cr_assert_str_eq(sget(r, "status"), "completed");
            cr_assert(json_is_object(c), "execution %s has no charge", sget(r, "_id"));
            int64_t v[6] = {1, json_integer_value(json_object_get(c, "cost")),
                            json_integer_value(json_object_get(c, "markup")),
                            json_integer_value(json_object_get(c, "allowanceUsed")),
                            json_integer_value(json_object_get(c, "charged")),
                            json_integer_value(json_object_get(key, "tokensUsed"))};
            cr_assert_eq(v[1] + v[2] - v[3], v[4], "cost + markup - allowance != charged");
            if (strcmp(sget(key, "type"), "customer") == 0) {
                cr_assert_eq(v[1] + v[2] + v[3] + v[4], 0, "a customer-key run was charged");
            } else {
                int64_t cost = json_integer_value(json_object_get(key, "cost"));
                cr_assert(cost >= 0);
                cr_assert_eq(v[1], cost);
                /* 20%: cost x 1.2 rounded half-even */
                int64_t x10 = cost * 12, q10 = x10 / 10, r10 = x10 % 10;
                int64_t marked = q10 + (r10 > 5 || (r10 == 5 && (q10 & 1)));
                cr_assert_eq(v[2], marked - cost);
                *crossed += v[3] > 0 && v[4] > 0; /* part free, part charged */
            }
            int m = 0;
            const char *month = sget(c, "month");
            while (m < NM && sums[m].month[0] != '\0' && strcmp(sums[m].month, month) != 0)
                m++;
            cr_assert(m < NM, "unexpected month %s", month);
            snprintf(sums[m].month, sizeof sums[m].month, "%s", month);
            for (int k = 0; k < 6; k++)
                sums[m].parts[k] += v[k];
            seen++;
        }
        const char *next = sget(doc, "nextCursor");
        snprintf(cursor, sizeof cursor, "%s", next != NULL ? next : "");
        json_decref(doc);
        if (next == NULL)
            break;
    }
    return seen;
}

static json_t *month_of(const ee_principal *p, const char *month)
{
    char *out = NULL;
    cr_assert_eq(ee_billing_month(engine, p, month, &out), EE_OK, "%s", out);
    json_t *doc = parse_doc(out);
    ee_free(out);
    return doc;
}

static int64_t u(const json_t *m, const char *k)
{
    return json_integer_value(json_object_get(json_object_get(m, "usage"), k));
}

Test(billing_pipeline, a_simulated_month_of_runs_bills_exactly_the_sum_of_their_charges)
{
    ee_principal *ps[NWS][2];
    for (int w = 0; w < NWS; w++)
        for (int k = 0; k < 2; k++) {
            char user[8];
            snprintf(user, sizeof user, "u%d", k);
            cr_assert_eq(ee_principal_new(&ps[w][k], wss[w], user, wss[w]), EE_OK);
        }
    char *out = NULL;
    cr_assert_eq(ee_cred_key_add(engine, ps[0][0],
                                 "{\"keyName\": \"mine\", \"provider\": \"openrouter\", "
                                 "\"apiKey\": \"" C_CUSTOMER "\"}",
                                 &out),
                 EE_OK, "%s", out);
    json_t *key = parse_doc(out);
    ee_free(out);
    char key_req[256];
    snprintf(key_req, sizeof key_req,
             "{\"parameters\": {\"text\": \"c\"}, \"useCustomApiKey\": true, \"apiKeyId\": \"%s\"}",
             sget(key, "id"));
    json_decref(key);
    char llm[25], echo[25];
    entry_id(engine, "wfL", llm);
    entry_id(engine, "wf0", echo);
    for (int i = 0; i < N; i++) {
        atomic_store(&now_ms, T_2026_03_02 + (int64_t)i * (50 * DAY_MS / N));
        int w = i % NWS, k = (i / NWS) % 2;
        bool customer = w == 0 && k == 0 && i % 4 == 0;
        const char *wf = i % 5 == 4 ? echo : llm;
        const char *req = customer && wf == llm ? key_req : "{\"parameters\": {\"text\": \"t\"}}";
        cr_assert_eq(ee_exec_run(engine, ps[w][k], wf, req, &out), EE_OK, "run %d: %s", i,
                     out ? out : ee_error_last_message());
        cr_assert(strstr(out, "CANARY") == NULL, "a key leaked: %s", out);
        ee_free(out);
    }
    int crossed = 0, total = 0;
    for (int w = 0; w < NWS; w++) {
        msum sums[NM];
        memset(sums, 0, sizeof sums);
        total += sum_charges(ps[w][0], sums, &crossed);
        /* each user x workflow's months, summed, against its all-time row */
        struct { char key[96], last[40]; int64_t ex, ch, tk; } pair[8];
        size_t n_pair = 0;
        static const char *const keys[] = {"totalExecutions", "totalCost", "totalMarkup",
                                           "allowanceUsed", "totalCharged", "totalTokens"};
        for (int m = 0; m < NM; m++) {
            cr_assert(sums[m].month[0] != '\0', "%s ran in one month only", wss[w]);
            json_t *doc = month_of(ps[w][0], sums[m].month);
            for (int k = 0; k < 6; k++)
                cr_assert_eq(u(doc, keys[k]), sums[m].parts[k], "%s %s %s: %lld != %lld",
                             wss[w], sums[m].month, keys[k], (long long)u(doc, keys[k]),
                             (long long)sums[m].parts[k]);
            /* the per-workflow breakdown sums to the totals */
            const json_t *arr = json_object_get(json_object_get(doc, "usage"), "byWorkflow");
            cr_assert_eq(json_array_size(arr), 2);
            int64_t ex = 0, ch = 0, tk = 0;
            for (size_t i = 0; i < 2; i++) {
                ex += json_integer_value(json_object_get(json_array_get(arr, i), "executions"));
                ch += json_integer_value(json_object_get(json_array_get(arr, i), "charged"));
                tk += json_integer_value(json_object_get(json_array_get(arr, i), "tokens"));
            }
            cr_assert_eq(ex, u(doc, "totalExecutions"));
            cr_assert_eq(ch, u(doc, "totalCharged"));
            cr_assert_eq(tk, u(doc, "totalTokens"));
            /* the usage rows of the month sum to it too */
            char uq[160];
            snprintf(uq, sizeof uq, "{\"period\": \"%.7s\", \"limit\": 100}", sums[m].month);
            cr_assert_eq(ee_billing_usage(engine, ps[w][0], uq, &out), EE_OK, "%s", out);
            json_t *usage = parse_doc(out);
            ee_free(out);
            json_t *rows = json_object_get(usage, "data");
            cr_assert_eq(json_array_size(rows), 4, "2 users x 2 workflows");
            int64_t uex = 0, uch = 0;
            for (size_t i = 0; i < json_array_size(rows); i++) {
                uex += json_integer_value(json_object_get(json_array_get(rows, i),
                                                          "totalExecutions"));
                uch += json_integer_value(json_object_get(json_array_get(rows, i),
                                                          "totalCharged"));
                cr_assert_not_null(json_object_get(json_array_get(rows, i), "lastExecutedAt"));
                const json_t *row = json_array_get(rows, i);
                char pk[96];
                snprintf(pk, sizeof pk, "%s|%s",
                         json_string_value(json_object_get(row, "userId")),
                         json_string_value(json_object_get(row, "workflowCatalogId")));
                size_t k = 0;
                while (k < n_pair && strcmp(pair[k].key, pk) != 0)
                    k++;
                if (k == n_pair) {
                    cr_assert(n_pair < 8);
                    memset(&pair[n_pair], 0, sizeof pair[n_pair]);
                    snprintf(pair[n_pair++].key, sizeof pair[0].key, "%s", pk);
                }
                pair[k].ex += json_integer_value(json_object_get(row, "totalExecutions"));
                pair[k].ch += json_integer_value(json_object_get(row, "totalCharged"));
                pair[k].tk += json_integer_value(json_object_get(row, "totalTokens"));
                /* ISO-8601 UTC texts of one shape: they order as times */
                const char *last = json_string_value(json_object_get(row, "lastExecutedAt"));
                if (last != NULL && strcmp(last, pair[k].last) > 0)
                    snprintf(pair[k].last, sizeof pair[k].last, "%s", last);
            }
            cr_assert_eq(uex, u(doc, "totalExecutions"));
            cr_assert_eq(uch, u(doc, "totalCharged"));
            json_decref(usage);
            json_decref(doc);
        }
        /* period "all": one row per user x workflow, the sum of its months */
        cr_assert_eq(ee_billing_usage(engine, ps[w][0], "{\"period\": \"all\", \"limit\": 100}",
                                      &out), EE_OK, "%s", out);
        json_t *all = parse_doc(out);
        ee_free(out);
        cr_assert_str_eq(json_string_value(json_object_get(all, "period")), "all");
        json_t *rows = json_object_get(all, "data");
        cr_assert_eq(json_array_size(rows), n_pair, "%zu all-time rows, %zu pairs",
                     json_array_size(rows), n_pair);
        for (size_t i = 0; i < json_array_size(rows); i++) {
            const json_t *row = json_array_get(rows, i);
            char pk[96];
            snprintf(pk, sizeof pk, "%s|%s", json_string_value(json_object_get(row, "userId")),
                     json_string_value(json_object_get(row, "workflowCatalogId")));
            size_t k = 0;
            while (k < n_pair && strcmp(pair[k].key, pk) != 0)
                k++;
            cr_assert(k < n_pair, "an all-time row for %s, which ran in no month", pk);
            cr_assert_eq(json_integer_value(json_object_get(row, "totalExecutions")), pair[k].ex);
            cr_assert_eq(json_integer_value(json_object_get(row, "totalCharged")), pair[k].ch);
            cr_assert_eq(json_integer_value(json_object_get(row, "totalTokens")), pair[k].tk);
            cr_assert_str_eq(json_string_value(json_object_get(row, "lastExecutedAt")),
                             pair[k].last);
        }
        json_decref(all);
    }
    cr_assert_eq(total, N);
    cr_assert(crossed >= 1, "no run crossed the allowance (part free, part charged)");
    /* analytics see the same runs */
    char q[128];
    snprintf(q, sizeof q, "{\"from\": %lld, \"to\": %lld, \"granularity\": \"week\"}",
             (long long)T_2026_03_02 - DAY_MS, (long long)atomic_load(&now_ms) + 1);
    cr_assert_eq(ee_billing_analytics(engine, ps[1][0], q, &out), EE_OK, "%s", out);
    json_t *an = parse_doc(out);
    ee_free(out);
    cr_assert_eq(json_integer_value(json_object_get(an, "totalExecutions")), N / NWS);
    cr_assert_eq(json_integer_value(json_object_get(an, "uniqueUsers")), 2);
    cr_assert_str_eq(sget(an, "successRate"), "1.0000");
    int64_t buckets = 0;
    json_t *ex = json_object_get(an, "executions");
    for (size_t i = 0; i < json_array_size(ex); i++)
        buckets += json_integer_value(json_object_get(json_array_get(ex, i), "count"));
    cr_assert_eq(buckets, N / NWS);
    /* four runs in five are of the llm workflow */
    const json_t *top = json_array_get(json_object_get(an, "topWorkflows"), 0);
    cr_assert_not_null(top);
    cr_assert_str_eq(sget(top, "workflowId"), llm);
    json_decref(an);
    for (int w = 0; w < NWS; w++)
        for (int k = 0; k < 2; k++)
            ee_principal_free(ps[w][k]);
}

Test(billing_pipeline, accounting_a_run_again_changes_nothing)
{
    ee_principal *p = NULL;
    cr_assert_eq(ee_principal_new(&p, "ws-replay", "u1", "org-replay"), EE_OK);
    char llm[25], *out = NULL, id[32];
    entry_id(engine, "wfL", llm);
    cr_assert_eq(ee_exec_run(engine, p, llm, "{\"parameters\": {\"text\": \"t\"}}", &out), EE_OK,
                 "%s", out);
    json_t *rec = parse_doc(out);
    ee_free(out);
    snprintf(id, sizeof id, "%s", sget(rec, "_id"));
    const char *month = sget(json_object_get(rec, "charge"), "month");
    cr_assert_not_null(month, "the run's answer has no charge");
    char m[8];
    snprintf(m, sizeof m, "%s", month);
    cr_assert(json_integer_value(json_object_get(json_object_get(rec, "charge"), "cost")) > 0);
    json_t *before = month_of(p, m);
    cr_assert_eq(ee_billing_usage(engine, p, NULL, &out), EE_OK, "%s", out);
    json_t *usage_before = parse_doc(out);
    ee_free(out);
    /* recovery (or a second worker) accounts the ended run again, twice */
    x_rec r;
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(ee__exec_load(engine, "ws-replay", id, &r), EE_OK);
        ee__exec_account(ee__exec_state(engine), &r);
        ee__exec_rec_clear(&r);
    }
    json_t *after = month_of(p, m);
    cr_assert(json_equal(before, after), "the month changed on a replay");
    cr_assert_eq(u(after, "totalExecutions"), 1);
    cr_assert_eq(ee_billing_usage(engine, p, NULL, &out), EE_OK, "%s", out);
    json_t *usage_after = parse_doc(out);
    ee_free(out);
    cr_assert(json_equal(usage_before, usage_after), "the usage changed on a replay");
    /* the charge is in the cost breakdown too */
    cr_assert_eq(ee_exec_cost(engine, p, id, &out), EE_OK, "%s", out);
    json_t *cost = parse_doc(out);
    ee_free(out);
    cr_assert(json_equal(json_object_get(cost, "charge"), json_object_get(rec, "charge")),
              "ee_exec_cost's charge differs from the record's");
    json_decref(cost);
    json_decref(before);
    json_decref(after);
    json_decref(usage_before);
    json_decref(usage_after);
    json_decref(rec);
    ee_principal_free(p);
}
