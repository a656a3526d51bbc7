/*
 * Grants shared through the database: an engine (as another process would)
 * opened on the same SQLite file serves a token another engine granted,
 * meters into the same running total and sees the other's revocation; the
 * budget holds across both. A file migrated from schema version 2 gains
 * the gateway's tables. And the canary scan: the platform key, the
 * customer key and the token never reach the stored file, a log line or an
 * answer to the caller.
 */
#include <sqlite3.h>

#include "gw_test.h"
#include "sqlite_sync_count.h"

#define EXEC_A "aaaaaaaaaaaaaaaaaaaaaaaa"
#define EXEC_B "bbbbbbbbbbbbbbbbbbbbbbbb"

static char dir[64], path[128], uri[160];
static ee_transport *t;

static void setup(void)
{
    cr_assert_eq(sqlite_sync_count_install(), SQLITE_OK);
    gw_log_len = 0;
    snprintf(dir, sizeof dir, "/tmp/ee-gw-shared-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/engine.db", dir);
    snprintf(uri, sizeof uri, "sqlite://%s", path);
    t = up_transport();
}

static void teardown(void)
{
    ee_transport_free(t);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(gateway_shared, .init = setup, .fini = teardown, .timeout = 60);

static const char *const LLM_SEARCH[] = {"openrouter", "serper"};

Test(gateway_shared, another_engine_on_the_file_serves_meters_and_sees_the_revoke)
{
    ee_engine *e1 = gw_engine(uri, t, 0);
    ee_engine *e2 = gw_engine(uri, t, 0);
    ee_principal *p = gw_principal("ws-shared", "u1");
    char tok[EE__GATEWAY_TOKEN_SIZE];
    /* budget: the second call passes it */
    gw_grant(e1, p, EXEC_A, LLM_SEARCH, 2, NULL, 200000, gw_now + 60000, tok);
    up_reset(UP_OPENROUTER_JSON);
    gw_answer a = gw_call(e2, OPENROUTER_PATH, tok);
    cr_expect_eq(a.status, 200, "%s", a.body ? a.body : "");
    cr_expect_not_null(strstr(up.headers, "Authorization: Bearer " C_OPENROUTER "\n"));
    gw_answer_free(&a);
    a = gw_call(e1, OPENROUTER_PATH, tok);
    cr_expect_eq(a.status, 200);
    gw_answer_free(&a);
    /* both metered into one total; the budget is spent for both engines */
    ee__gateway_usage u;
    cr_assert_eq(ee__gateway_usage_of(e1, "ws-shared", EXEC_A, &u), EE_OK);
    cr_expect_eq(u.calls, 2);
    cr_expect_eq(u.cost_nano, 2 * UP_COST_NANO);
    a = gw_call(e2, OPENROUTER_PATH, tok);
    gw_expect_error(&a, 402, "EE_ESPEND");
    gw_answer_free(&a);
    cr_assert_eq(ee__gateway_usage_of(e1, "ws-shared", EXEC_A, &u), EE_OK);
    cr_expect(u.budget_refused);

    /* a revocation by one engine holds in the other, whose cache has the grant */
    char tok2[EE__GATEWAY_TOKEN_SIZE];
    gw_grant(e1, p, EXEC_B, LLM_SEARCH, 2, NULL, -1, gw_now + 60000, tok2);
    up_reset(UP_SEARCH);
    a = gw_call(e2, "/serper/search", tok2);
    cr_expect_eq(a.status, 200);
    gw_answer_free(&a);
    cr_assert_eq(ee__gateway_revoke(e1, "ws-shared", EXEC_B), EE_OK);
    a = gw_call(e2, "/serper/search", tok2);
    gw_expect_error(&a, 401, "EE_EAUTH");
    gw_answer_free(&a);
    ee_principal_free(p);
    ee_engine_close(e2);
    ee_engine_close(e1);
}

/* A metered call commits (another engine on the file sees it at once) but
 * asks for no fsync of its own on the default synchronous=FULL: the next
 * synced commit - the run's final write - carries it to the disk. */
Test(gateway_shared, a_metered_call_is_committed_at_once_and_synced_by_the_next_synced_commit)
{
    ee_engine *e1 = gw_engine(uri, t, 0);
    ee_engine *e2 = gw_engine(uri, t, 0);
    ee_principal *p = gw_principal("ws-shared", "u1");
    char tok[EE__GATEWAY_TOKEN_SIZE];
    gw_grant(e1, p, EXEC_A, LLM_SEARCH, 2, NULL, -1, gw_now + 60000, tok);
    up_reset(UP_OPENROUTER_JSON);
    long before = sqlite_syncs_wal;
    for (int i = 0; i < 3; i++) {
        gw_answer a = gw_call(e2, OPENROUTER_PATH, tok);
        cr_expect_eq(a.status, 200, "%s", a.body ? a.body : "");
        gw_answer_free(&a);
    }
    cr_expect_eq(sqlite_syncs_wal - before, 0, "a metered call syncs nothing of its own");
    ee__gateway_usage u;
    cr_assert_eq(ee__gateway_usage_of(e1, "ws-shared", EXEC_A, &u), EE_OK);
    cr_expect_eq(u.calls, 3, "committed: the other engine reads all three");
    cr_expect_eq(u.cost_nano, 3 * UP_COST_NANO);
    /* a synced commit (the revocation, as the run's release would) syncs the log */
    before = sqlite_syncs_wal;
    cr_assert_eq(ee__gateway_revoke(e1, "ws-shared", EXEC_A), EE_OK);
    cr_expect_gt(sqlite_syncs_wal - before, 0);
    ee_principal_free(p);
    ee_engine_close(e2);
    ee_engine_close(e1);
}

static void expect_clean(const char *what, const char *buf, size_t n, const char *const *bad,
                         size_t nbad)
{
    for (size_t i = 0; i < nbad; i++)
        cr_expect_null(memmem(buf, n, bad[i], strlen(bad[i])), "%s holds secret %zu", what, i);
}

static void expect_file_clean(const char *file, const char *const *bad, size_t nbad)
{
    FILE *f = fopen(file, "rb");
    if (f == NULL)
        return;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    expect_clean(file, buf, (size_t)n, bad, nbad);
    free(buf);
}

Test(gateway_shared, no_key_or_token_in_storage_logs_or_answers)
{
    ee_engine *e = gw_engine(uri, t, 0);
    ee_principal *p = gw_principal("ws-canary", "u1");
    char id[32], tok[EE__GATEWAY_TOKEN_SIZE], tok2[EE__GATEWAY_TOKEN_SIZE];
    gw_customer_key(e, p, id);
    gw_grant(e, p, EXEC_A, LLM_SEARCH, 2, id, 100, gw_now + 60000, tok);
    gw_grant(e, p, EXEC_B, LLM_SEARCH, 2, NULL, -1, gw_now + 60000, tok2);
    char answers[1 << 15];
    size_t alen = 0;
    const up_mode modes[] = {UP_OPENROUTER_JSON, UP_OPENROUTER_SSE, UP_SEARCH, UP_429,
                             UP_TIMEOUT, UP_RESET};
    for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
        const char *paths[] = {OPENROUTER_PATH, "/serper/search", "/nope/x"};
        for (size_t k = 0; k < 3; k++) {
            const char *toks[] = {tok, tok2};
            for (size_t j = 0; j < 2; j++) {
                up_reset(modes[m]);
                gw_answer a = gw_call(e, paths[k], toks[j]);
                alen += (size_t)snprintf(answers + alen, sizeof answers - alen, "%d %s %s\n",
                                         a.status, a.headers, a.body ? a.body : "");
                gw_answer_free(&a);
            }
        }
    }
    cr_assert_lt(alen, sizeof answers - 1);
    cr_assert_eq(ee__gateway_revoke(e, "ws-canary", EXEC_A), EE_OK);
    gw_answer a = gw_call(e, OPENROUTER_PATH, tok);
    gw_expect_error(&a, 401, "EE_EAUTH");
    gw_answer_free(&a);
    ee_principal_free(p);
    ee_engine_close(e);

    const char *const bad[] = {C_OPENROUTER, C_SERPER, C_CUSTOMER, tok, tok2};
    expect_clean("the answers", answers, alen, bad, 5);
    expect_clean("the log", gw_log, gw_log_len, bad, 5);
    char f[200];
    expect_file_clean(path, bad, 5);
    snprintf(f, sizeof f, "%s-wal", path);
    expect_file_clean(f, bad, 5);
    /* the keys did reach the upstream (the scan is not vacuous) */
    cr_expect(strstr(answers, "200 ") != NULL);
}

Test(gateway_shared, a_version_2_file_gains_the_gateway_tables)
{
    ee_storage *s = NULL;
    cr_assert_eq(ee_storage_open_uri(&s, uri), EE_OK);
    ee_storage_free(s);
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, "DROP TABLE \"ee_gatewayGrants\"; DROP TABLE "
                                  "\"ee_gatewayCalls\"; PRAGMA user_version = 2;",
                              NULL, NULL, NULL),
                 SQLITE_OK, "%s", sqlite3_errmsg(db));
    sqlite3_close(db);
    /* an engine on it grants and meters */
    ee_engine *e = gw_engine(uri, t, 0);
    ee_principal *p = gw_principal("ws-v2", "u1");
    char tok[EE__GATEWAY_TOKEN_SIZE];
    gw_grant(e, p, EXEC_A, LLM_SEARCH, 2, NULL, -1, gw_now + 60000, tok);
    up_reset(UP_SEARCH);
    gw_answer a = gw_call(e, "/serper/search", tok);
    cr_expect_eq(a.status, 200);
    gw_answer_free(&a);
    ee_principal_free(p);
    ee_engine_close(e);
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *q = NULL;
    cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &q, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_step(q), SQLITE_ROW);
    cr_expect_eq(sqlite3_column_int(q, 0), 4);
    sqlite3_finalize(q);
    sqlite3_close(db);
}
