/*
 * The charge of an execution (markup, free allowance, customer key) and the
 * month rows it lands in, booked straight through the billing module; a
 * simulated month of thousands of executions; closing and paying months.
 */
#include "billing_test.h"

static ee_engine *engine;
static ee_principal *ws1;

static void open_engine(const char *markup, const char *allowance, const char *cycle_day)
{
    engine = billing_engine(markup, allowance, cycle_day);
    cr_assert_eq(ee_principal_new(&ws1, "ws-1", "u1", "org-1"), EE_OK);
}

static void setup(void)
{
    atomic_store(&test_now, T_2026_03_01 + DAY_MS); /* 2026-03-02 */
    engine = NULL;
    ws1 = NULL;
}

static void teardown(void)
{
    ee_principal_free(ws1);
    ee_engine_close(engine);
}

TestSuite(billing_charges, .init = setup, .fini = teardown, .timeout = 120);

static ee__billing_exec run_of(const char *ws, const char *user, const char *wf, const char *id,
                               int64_t cost, bool platform)
{
    ee__billing_exec x = {.workspace = ws, .user_id = user, .workflow_id = wf,
                          .execution_id = id, .ended_at = atomic_load(&test_now),
                          .cost_nano = cost, .tokens = 10, .exec_ms = 5,
                          .platform_key = platform, .completed = true};
    return x;
}

#define WF_A "aaaaaaaaaaaaaaaaaaaaaaaa"
#define WF_B "bbbbbbbbbbbbbbbbbbbbbbbb"

Test(billing_charges, markup_is_rounded_half_even_once_per_execution)
{
    open_engine("10", "0", NULL);
    /* 5 x 1.1 = 5.5 -> 6 (to even), 15 x 1.1 = 16.5 -> 16 (to even), 1 x 1.1 -> 1 */
    static const int64_t costs[] = {5, 15, 1, 123456789};
    static const int64_t markups[] = {1, 1, 0, 12345679};
    for (size_t i = 0; i < 4; i++) {
        ee__billing_exec x = run_of("ws-1", "u1", WF_A, "e", costs[i], true);
        ee__billing_charge c;
        cr_assert_eq(book(engine, &x, &c), EE_OK, "%s", ee_error_last_message());
        cr_assert_eq(c.markup_nano, markups[i], "cost %lld: markup %lld", (long long)costs[i],
                     (long long)c.markup_nano);
        cr_assert_eq(c.markup_nano, expected_markup(costs[i], 1000));
        cr_assert_eq(c.allowance_used_nano, 0);
        cr_assert_eq(c.charged_nano, costs[i] + markups[i]);
    }
    json_t *m = month_doc(engine, ws1, "2026-03");
    cr_assert_eq(usage_int(m, "totalCharged"), 5 + 1 + 15 + 1 + 1 + 123456789 + 12345679);
    cr_assert_eq(usage_int(m, "totalMarkup"), 1 + 1 + 0 + 12345679);
    json_decref(m);
}

Test(billing_charges, the_allowance_is_crossed_inside_one_execution_part_free_part_charged)
{
    open_engine("20", "0.000001", NULL); /* 1000 nano free */
    /* 500 -> 600 marked up: free; 500 -> 600: 400 free, 200 charged; then all charged */
    static const int64_t free_part[] = {600, 400, 0};
    static const int64_t charged[] = {0, 200, 600};
    for (size_t i = 0; i < 3; i++) {
        ee__billing_exec x = run_of("ws-1", "u1", WF_A, "e", 500, true);
        ee__billing_charge c;
        cr_assert_eq(book(engine, &x, &c), EE_OK, "%s", ee_error_last_message());
        cr_assert_eq(c.cost_nano, 500);
        cr_assert_eq(c.markup_nano, 100);
        cr_assert_eq(c.allowance_used_nano, free_part[i], "run %zu: %lld free", i,
                     (long long)c.allowance_used_nano);
        cr_assert_eq(c.charged_nano, charged[i]);
        cr_assert_str_eq(c.month, "2026-03");
    }
    json_t *m = month_doc(engine, ws1, "2026-03");
    cr_assert_eq(usage_int(m, "allowanceUsed"), 1000);
    cr_assert_eq(usage_int(m, "allowanceRemaining"), 0);
    cr_assert_eq(usage_int(m, "totalCharged"), 800);
    cr_assert_eq(usage_int(m, "totalCost") + usage_int(m, "totalMarkup") -
                     usage_int(m, "allowanceUsed"),
                 usage_int(m, "totalCharged"));
    json_decref(m);
    /* the allowance never refuses: a big run is simply charged */
    ee__billing_exec x = run_of("ws-1", "u1", WF_A, "e", 50 * NANO, true);
    ee__billing_charge c;
    cr_assert_eq(book(engine, &x, &c), EE_OK);
    cr_assert_eq(c.charged_nano, 60 * NANO);
    /* a new month has its allowance again */
    atomic_store(&test_now, T_2026_03_01 + 40 * DAY_MS);
    x = run_of("ws-1", "u1", WF_A, "e", 500, true);
    cr_assert_eq(book(engine, &x, &c), EE_OK);
    cr_assert_str_eq(c.month, "2026-04");
    cr_assert_eq(c.allowance_used_nano, 600);
    cr_assert_eq(c.charged_nano, 0);
}

Test(billing_charges, a_customer_key_run_is_charged_nothing_and_takes_no_allowance)
{
    open_engine("20", "0.000001", NULL);
    ee__billing_exec x = run_of("ws-1", "u1", WF_A, "e", 777777, false);
    ee__billing_charge c;
    cr_assert_eq(book(engine, &x, &c), EE_OK);
    cr_assert_eq(c.cost_nano, 0);
    cr_assert_eq(c.markup_nano, 0);
    cr_assert_eq(c.allowance_used_nano, 0);
    cr_assert_eq(c.charged_nano, 0);
    json_t *m = month_doc(engine, ws1, "2026-03");
    cr_assert_eq(usage_int(m, "totalExecutions"), 1);
    cr_assert_eq(usage_int(m, "customerExecutions"), 1);
    cr_assert_eq(usage_int(m, "allowanceUsed"), 0);
    cr_assert_eq(usage_int(m, "totalTokens"), 10);
    cr_assert_eq(usage_int(m, "totalCharged"), 0);
    json_decref(m);
}

Test(billing_charges, months_start_on_the_billing_cycle_day)
{
    open_engine("20", "0", "5");
    /* 2026-03-02 is before the 5th: still the month that began on 2026-02-05 */
    ee__billing_exec x = run_of("ws-1", "u1", WF_A, "e", 10, true);
    ee__billing_charge c;
    cr_assert_eq(book(engine, &x, &c), EE_OK);
    cr_assert_str_eq(c.month, "2026-02");
    atomic_store(&test_now, T_2026_03_01 + 4 * DAY_MS); /* 2026-03-05T00:00Z */
    x = run_of("ws-1", "u1", WF_A, "e", 10, true);
    cr_assert_eq(book(engine, &x, &c), EE_OK);
    cr_assert_str_eq(c.month, "2026-03");
    json_t *m = month_doc(engine, ws1, "2026-03");
    cr_assert_str_eq(json_string_value(json_object_get(m, "periodStart")),
                     "2026-03-05T00:00:00.000Z");
    cr_assert_str_eq(json_string_value(json_object_get(m, "periodEnd")),
                     "2026-04-05T00:00:00.000Z");
    json_decref(m);
}

static json_t *move(const char *which, const char *month, ee_status want)
{
    char *out = NULL;
    ee_status st = strcmp(which, "close") == 0 ? ee_billing_close_month(engine, ws1, month, &out)
                                               : ee_billing_mark_paid(engine, ws1, month, &out);
    cr_assert_eq(st, want, "%s %s: %s, wanted %s (%s)", which, month, ee_status_name(st),
                 ee_status_name(want), out ? out : ee_error_last_message());
    json_t *doc = st == EE_OK ? json_loads(out, 0, NULL) : NULL;
    ee_free(out);
    return doc;
}

Test(billing_charges, status_moves_pending_billed_paid_only_and_closing_twice_changes_nothing)
{
    open_engine("20", "0", NULL);
    ee__billing_exec x = run_of("ws-1", "u1", WF_A, "e", 1000, true);
    ee__billing_charge c;
    cr_assert_eq(book(engine, &x, &c), EE_OK);
    /* the month has not ended */
    cr_assert_null(move("close", "2026-03", EE_ESTATE));
    /* pending cannot be paid */
    cr_assert_null(move("paid", "2026-03", EE_ESTATE));
    cr_assert_null(move("close", "2026-3", EE_EINVAL));
    atomic_store(&test_now, T_2026_03_01 + 31 * DAY_MS); /* 2026-04-01 */
    json_t *first = move("close", "2026-03", EE_OK);
    cr_assert(json_is_true(json_object_get(first, "changed")));
    json_t *b1 = json_object_get(first, "billing");
    cr_assert_str_eq(json_string_value(json_object_get(b1, "billingStatus")), "billed");
    cr_assert_str_eq(json_string_value(json_object_get(b1, "billedAt")),
                     "2026-04-01T00:00:00.000Z");
    /* again, later: nothing changes, billedAt stays */
    atomic_store(&test_now, T_2026_03_01 + 32 * DAY_MS);
    json_t *second = move("close", "2026-03", EE_OK);
    cr_assert(json_is_false(json_object_get(second, "changed")));
    cr_assert(json_equal(b1, json_object_get(second, "billing")), "the second close changed it");
    /* the export of a closed month is there; a pending one's is not */
    char *out = NULL;
    cr_assert_eq(ee_billing_export(engine, ws1, "2026-04", "json", &out), EE_ENOTFOUND);
    ee_free(out);
    json_t *paid = move("paid", "2026-03", EE_OK);
    cr_assert(json_is_true(json_object_get(paid, "changed")));
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(paid, "billing"),
                                                       "billingStatus")), "paid");
    cr_assert_not_null(json_object_get(json_object_get(paid, "billing"), "paidAt"));
    json_t *again = move("paid", "2026-03", EE_OK);
    cr_assert(json_is_false(json_object_get(again, "changed")));
    /* paid -> billed is no transition */
    cr_assert_null(move("close", "2026-03", EE_ESTATE));
    cr_assert_null(move("paid", "2025-01", EE_ENOTFOUND));
    json_decref(first);
    json_decref(second);
    json_decref(paid);
    json_decref(again);
}

Test(billing_charges, a_late_execution_of_a_closed_month_goes_to_the_next_open_month)
{
    open_engine("20", "0", NULL);
    ee__billing_exec x = run_of("ws-1", "u1", WF_A, "e", 1000, true);
    int64_t march = atomic_load(&test_now);
    ee__billing_charge c;
    cr_assert_eq(book(engine, &x, &c), EE_OK);
    atomic_store(&test_now, T_2026_03_01 + 31 * DAY_MS);
    json_t *d = move("close", "2026-03", EE_OK);
    json_decref(d);
    json_t *before = month_doc(engine, ws1, "2026-03");
    /* recovery books a run that ended in March only now */
    x = run_of("ws-1", "u1", WF_B, "late", 2000, true);
    x.ended_at = march;
    cr_assert_eq(book(engine, &x, &c), EE_OK);
    cr_assert_str_eq(c.month, "2026-04");
    json_t *after = month_doc(engine, ws1, "2026-03");
    cr_assert(json_equal(before, after), "a closed month changed");
    json_t *april = month_doc(engine, ws1, "2026-04");
    cr_assert_eq(usage_int(april, "totalExecutions"), 1);
    cr_assert_eq(usage_int(april, "totalCost"), 2000);
    cr_assert_not_null(workflow_line(april, WF_B));
    json_decref(before);
    json_decref(after);
    json_decref(april);
}

Test(billing_charges, export_is_json_and_rfc4180_csv_whose_lines_sum_to_the_totals)
{
    open_engine("20", "0.000001", NULL);
    /* a field that needs quoting (workflow ids are hex in the pipeline; the
     * writer quotes whatever it is given) */
    const char *wfs[] = {"wf,\"q\"", WF_B};
    for (int i = 0; i < 6; i++) {
        ee__billing_exec x = run_of("ws-1", "u1", wfs[i % 2], "e", 300 + i, i != 3);
        ee__billing_charge c;
        cr_assert_eq(book(engine, &x, &c), EE_OK, "%s", ee_error_last_message());
    }
    char *out = NULL;
    cr_assert_eq(ee_billing_export(engine, ws1, "2026-03", "csv", &out), EE_ESTATE,
                 "a pending month was exported");
    ee_free(out);
    atomic_store(&test_now, T_2026_03_01 + 31 * DAY_MS);
    json_t *d = move("close", "2026-03", EE_OK);
    json_decref(d);
    cr_assert_eq(ee_billing_export(engine, ws1, "2026-03", "xml", &out), EE_EINVAL);
    ee_free(out);
    cr_assert_eq(ee_billing_export(engine, ws1, "2026-03", "csv", &out), EE_OK, "%s", out);
    const char *want_head = "workspaceId,month,billingStatus,workflowId,executions,tokens,"
                            "costNanoUsd,markupNanoUsd,chargedNanoUsd,chargedUsd\r\n";
    cr_assert(strncmp(out, want_head, strlen(want_head)) == 0, "%s", out);
    /* one line per workflow, the one with a comma quoted, its quotes doubled */
    const char *l1 = out + strlen(want_head);
    const char *want1 = "ws-1,2026-03,billed,\"wf,\"\"q\"\"\",3,30,";
    cr_assert(strncmp(l1, want1, strlen(want1)) == 0, "%s", l1);
    int lines = 0;
    int64_t charged = 0;
    for (const char *p = l1; *p != '\0';) {
        const char *end = strstr(p, "\r\n");
        cr_assert_not_null(end, "a line without CRLF: %s", p);
        /* chargedNanoUsd is the 9th field: the 2nd last */
        const char *f = end;
        for (int k = 0; k < 2; k++)
            while (*--f != ',')
                ;
        charged += strtoll(f + 1, NULL, 10);
        lines++;
        p = end + 2;
    }
    cr_assert_eq(lines, 2);
    ee_free(out);
    cr_assert_eq(ee_billing_export(engine, ws1, "2026-03", "json", &out), EE_OK, "%s", out);
    json_t *doc = json_loads(out, 0, NULL);
    ee_free(out);
    cr_assert_str_eq(json_string_value(json_object_get(doc, "currency")), "USD");
    cr_assert_str_eq(json_string_value(json_object_get(doc, "billingStatus")), "billed");
    json_t *totals = json_object_get(doc, "totals");
    cr_assert_eq(json_integer_value(json_object_get(totals, "totalCharged")), charged);
    cr_assert_eq(json_array_size(json_object_get(doc, "lines")), 2);
    cr_assert_eq(json_integer_value(json_object_get(totals, "totalExecutions")), 6);
    json_decref(doc);
}

/* OWASP's CSV injection rule: a text field a spreadsheet would run as a
 * formula gets a leading ' (quoted); plain numbers, negative ones too,
 * stay numbers. */
Test(billing_charges, csv_export_neutralises_formulas_but_keeps_numbers_numbers)
{
    open_engine("0", "0", NULL);
    static const char *const wfs[] = {"=1+2",  "+SUM(A1)", "-2+3", "@cmd", "\tx=1",
                                      "\r=y", "-5",       "+7.25", "ok=1"};
    enum { NWF = sizeof wfs / sizeof wfs[0] };
    for (int i = 0; i < NWF; i++) {
        ee__billing_exec x = run_of("ws-1", "u1", wfs[i], "e", 100, true);
        ee__billing_charge c;
        cr_assert_eq(book(engine, &x, &c), EE_OK, "%s", ee_error_last_message());
    }
    atomic_store(&test_now, T_2026_03_01 + 31 * DAY_MS);
    json_t *d = move("close", "2026-03", EE_OK);
    json_decref(d);
    char *out = NULL;
    cr_assert_eq(ee_billing_export(engine, ws1, "2026-03", "csv", &out), EE_OK, "%s", out);
    static const char *const want[] = {",\"'=1+2\",", ",\"'+SUM(A1)\",", ",\"'-2+3\",",
                                       ",\"'@cmd\",", ",\"'\tx=1\",",    ",\"'\r=y\",",
                                       ",-5,",        ",+7.25,",         ",ok=1,"};
    for (int i = 0; i < NWF; i++)
        cr_expect_not_null(strstr(out, want[i]), "workflow %d: no %s in\n%s", i, want[i], out);
    /* nothing of them unguarded, and the amounts are numbers as before */
    cr_expect_null(strstr(out, ",=1+2"), "%s", out);
    cr_expect_null(strstr(out, ",@cmd"), "%s", out);
    cr_expect_not_null(strstr(out, ",1,10,100,0,100,0.0000001"), "%s", out);
    ee_free(out);
}

/* A simulated month, straight through billing: thousands of executions of
 * four workspaces, platform and customer keys, three workflows, the clock
 * moving over two billing months. */
Test(billing_charges, a_simulated_month_totals_equal_the_sum_of_the_charges_to_the_nano_dollar)
{
    open_engine("17.35", "0.01", "3");
    const char *wss[] = {"ws-a", "ws-b", "ws-c", "ws-d"};
    const char *wfs[] = {WF_A, WF_B, "cccccccccccccccccccccccc"};
    enum { N = 4000, NWS = 4, NM = 3 };
    /* per workspace and month: sums of the charges' parts */
    int64_t sum[NWS][NM][6];
    memset(sum, 0, sizeof sum);
    char names[NM][8] = {"", "", ""};
    srand(1234);
    int64_t start = atomic_load(&test_now);
    for (int i = 0; i < N; i++) {
        atomic_store(&test_now, start + (int64_t)i * (45 * DAY_MS / N));
        int w = rand() % NWS;
        bool platform = rand() % 4 != 0;
        int64_t cost = (int64_t)(rand() % 3000000) + (rand() % 50 == 0 ? 3 * NANO / 100 : 0);
        char uid[8];
        snprintf(uid, sizeof uid, "u%d", rand() % 5);
        ee__billing_exec x = run_of(wss[w], uid, wfs[rand() % 3], "e", cost, platform);
        x.tokens = rand() % 5000;
        ee__billing_charge c;
        cr_assert_eq(book(engine, &x, &c), EE_OK, "%s", ee_error_last_message());
        int m = 0;
        while (m < NM && names[m][0] != '\0' && strcmp(names[m], c.month) != 0)
            m++;
        cr_assert(m < NM, "more months than expected: %s", c.month);
        snprintf(names[m], sizeof names[m], "%s", c.month);
        cr_assert_eq(c.cost_nano + c.markup_nano - c.allowance_used_nano, c.charged_nano);
        if (platform)
            cr_assert_eq(c.markup_nano, expected_markup(cost, 1735));
        else
            cr_assert_eq(c.charged_nano + c.cost_nano + c.allowance_used_nano, 0);
        int64_t parts[6] = {1, c.cost_nano, c.markup_nano, c.allowance_used_nano, c.charged_nano,
                            x.tokens};
        for (int k = 0; k < 6; k++)
            sum[w][m][k] += parts[k];
    }
    static const char *const keys[] = {"totalExecutions", "totalCost", "totalMarkup",
                                       "allowanceUsed", "totalCharged", "totalTokens"};
    int64_t crossed = 0;
    for (int w = 0; w < NWS; w++) {
        ee_principal *p = NULL;
        cr_assert_eq(ee_principal_new(&p, wss[w], "admin", "org"), EE_OK);
        for (int m = 0; m < NM && names[m][0] != '\0'; m++) {
            json_t *doc = month_doc(engine, p, names[m]);
            for (int k = 0; k < 6; k++)
                cr_assert_eq(usage_int(doc, keys[k]), sum[w][m][k], "%s %s %s: %lld, charges sum "
                             "to %lld", wss[w], names[m], keys[k],
                             (long long)usage_int(doc, keys[k]), (long long)sum[w][m][k]);
            assert_breakdown_sums(doc);
            /* the allowance is used up to its end, never past it */
            int64_t marked = sum[w][m][1] + sum[w][m][2];
            int64_t allowance = NANO / 100;
            cr_assert_eq(sum[w][m][3], marked < allowance ? marked : allowance);
            crossed += sum[w][m][3] == allowance;
            json_decref(doc);
        }
        ee_principal_free(p);
    }
    cr_assert(crossed >= NWS, "the allowance was used up in only %lld workspace-months",
              (long long)crossed);

    /* every month ended: close each twice. The first close freezes the
     * totals as they were; the second changes nothing - record, status,
     * breakdown and export byte for byte. */
    atomic_store(&test_now, start + 90 * DAY_MS);
    int closed = 0;
    for (int w = 0; w < NWS; w++) {
        ee_principal *p = NULL;
        cr_assert_eq(ee_principal_new(&p, wss[w], "admin", "org"), EE_OK);
        for (int m = 0; m < NM && names[m][0] != '\0'; m++) {
            json_t *open_doc = month_doc(engine, p, names[m]);
            char *out = NULL;
            cr_assert_eq(ee_billing_close_month(engine, p, names[m], &out), EE_OK, "%s", out);
            json_t *first = json_loads(out, 0, NULL);
            ee_free(out);
            cr_assert(json_is_true(json_object_get(first, "changed")));
            json_t *closed_doc = month_doc(engine, p, names[m]);
            cr_assert_str_eq(json_string_value(json_object_get(closed_doc, "billingStatus")),
                             "billed");
            cr_assert(json_equal(json_object_get(open_doc, "usage"),
                                 json_object_get(closed_doc, "usage")),
                      "%s %s: closing changed the totals", wss[w], names[m]);
            for (int k = 0; k < 6; k++)
                cr_assert_eq(usage_int(closed_doc, keys[k]), sum[w][m][k]);
            char *csv1 = NULL, *csv2 = NULL;
            cr_assert_eq(ee_billing_export(engine, p, names[m], "csv", &csv1), EE_OK, "%s",
                         csv1);
            char *text1 = json_dumps(closed_doc, JSON_SORT_KEYS | JSON_COMPACT);
            /* a day later, again */
            atomic_fetch_add(&test_now, DAY_MS);
            cr_assert_eq(ee_billing_close_month(engine, p, names[m], &out), EE_OK, "%s", out);
            json_t *second = json_loads(out, 0, NULL);
            ee_free(out);
            cr_assert(json_is_false(json_object_get(second, "changed")), "%s %s", wss[w],
                      names[m]);
            cr_assert(json_equal(json_object_get(first, "billing"),
                                 json_object_get(second, "billing")));
            json_t *again = month_doc(engine, p, names[m]);
            char *text2 = json_dumps(again, JSON_SORT_KEYS | JSON_COMPACT);
            cr_assert_str_eq(text2, text1, "%s %s: the second close changed the record",
                             wss[w], names[m]);
            cr_assert_eq(ee_billing_export(engine, p, names[m], "csv", &csv2), EE_OK, "%s",
                         csv2);
            cr_assert_str_eq(csv2, csv1, "%s %s: the export changed", wss[w], names[m]);
            assert_breakdown_sums(again);
            closed++;
            free(text1);
            free(text2);
            ee_free(csv1);
            ee_free(csv2);
            json_decref(open_doc);
            json_decref(closed_doc);
            json_decref(again);
            json_decref(first);
            json_decref(second);
        }
        ee_principal_free(p);
    }
    cr_assert_geq(closed, NWS * 2, "at least two months per workspace were closed");
}

Test(billing_charges, bad_queries_are_refused_naming_the_member)
{
    open_engine(NULL, NULL, NULL);
    char *out = NULL;
    cr_assert_eq(ee_billing_analytics(engine, ws1, "{\"from\": 0, \"to\": 40000000000}", &out),
                 EE_EINVAL, "a range past 366 days");
    cr_assert(strstr(ee_error_last_message(), "366 days") != NULL, "%s", ee_error_last_message());
    ee_free(out);
    /* bounds at the edges of int64: refused by name, not "to - from"
     * overflowing (UBSan) or a date gmtime cannot render */
    static const char *const edges[][2] = {
        {"{\"from\": -1, \"to\": 9223372036854775807}", "\"from\""},
        {"{\"to\": 9223372036854775807}", "\"to\""},
        {"{\"from\": -9223372036854775808, \"to\": 1}", "\"from\""},
        {"{\"from\": 253402300799998, \"to\": 253402300800000}", "\"to\""},
    };
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) {
        cr_assert_eq(ee_billing_analytics(engine, ws1, edges[i][0], &out), EE_EINVAL, "%s",
                     edges[i][0]);
        cr_assert(strstr(ee_error_last_message(), edges[i][1]) != NULL, "%s: %s", edges[i][0],
                  ee_error_last_message());
        ee_free(out);
    }
    /* the last representable day still answers, with ISO dates */
    cr_assert_eq(ee_billing_analytics(engine, ws1,
                                      "{\"from\": 253402214400000, \"to\": 253402300799999}",
                                      &out),
                 EE_OK, "%s", out);
    cr_assert(strstr(out, "\"to\":\"9999-12-31T23:59:59.999Z\"") != NULL, "%s", out);
    ee_free(out);
    cr_assert_eq(ee_billing_analytics(engine, ws1, "{\"granularity\": \"hour\"}", &out),
                 EE_EINVAL);
    cr_assert(strstr(ee_error_last_message(), "granularity") != NULL);
    ee_free(out);
    cr_assert_eq(ee_billing_usage(engine, ws1, "{\"period\": \"2026-13\"}", &out), EE_EINVAL);
    cr_assert(strstr(ee_error_last_message(), "period") != NULL);
    ee_free(out);
    cr_assert_eq(ee_billing_history(engine, ws1, "{\"status\": \"open\"}", &out), EE_EINVAL);
    cr_assert(strstr(ee_error_last_message(), "status") != NULL);
    ee_free(out);
    cr_assert_eq(ee_billing_history(engine, ws1, "{\"nope\": 1}", &out), EE_EINVAL);
    ee_free(out);
    cr_assert_eq(ee_billing_month(engine, NULL, "2026-03", &out), EE_EINVAL);
    cr_assert(out != NULL && strstr(out, "principal") != NULL, "the error document: %s", out);
    ee_free(out);
    /* an empty workspace: zero totals, the whole allowance left, no history */
    cr_assert_eq(ee_billing_current(engine, ws1, &out), EE_OK, "%s", out);
    json_t *m = json_loads(out, 0, NULL);
    ee_free(out);
    cr_assert_str_eq(json_string_value(json_object_get(m, "month")), "2026-03");
    cr_assert_eq(usage_int(m, "totalExecutions"), 0);
    cr_assert_eq(usage_int(m, "allowanceRemaining"), 10 * NANO);
    json_decref(m);
    cr_assert_eq(ee_billing_history(engine, ws1, NULL, &out), EE_OK, "%s", out);
    cr_assert(strstr(out, "\"data\": []") != NULL || strstr(out, "\"data\":[]") != NULL, "%s",
              out);
    ee_free(out);
}

/* A month adds up every run of the workspace: runs each within int64 (the
 * tokens are the providers' word) can take a total past it. The booking is
 * refused and nothing of it is written; the month wrapped to a negative
 * total (signed overflow) before. */
Test(billing_charges, a_run_that_would_overflow_the_month_is_refused_whole)
{
    open_engine("0", "0", NULL);
    ee__billing_exec x = run_of("ws-1", "u1", WF_A, "e1", 7, true);
    x.tokens = INT64_MAX - 5;
    ee__billing_charge c;
    cr_assert_eq(book(engine, &x, &c), EE_OK, "%s", ee_error_last_message());
    x = run_of("ws-1", "u2", WF_B, "e2", 7, true);
    x.tokens = INT64_MAX - 5;
    cr_assert_eq(book(engine, &x, &c), EE_ETOOBIG);
    cr_assert_not_null(strstr(ee_error_last_message(), "e2"), "%s", ee_error_last_message());
    json_t *m = month_doc(engine, ws1, "2026-03");
    cr_expect_eq(usage_int(m, "totalTokens"), INT64_MAX - 5);
    cr_expect_eq(usage_int(m, "totalExecutions"), 1);
    cr_expect_eq(usage_int(m, "totalCost"), 7);
    cr_expect_null(workflow_line(m, WF_B));
    json_decref(m);
    /* one more token past int64 is refused too */
    x = run_of("ws-1", "u1", WF_A, "e3", 7, true);
    x.tokens = 6;
    cr_assert_eq(book(engine, &x, &c), EE_ETOOBIG);
}
