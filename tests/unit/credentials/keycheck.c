/* The key-check record: an engine whose secrets cannot open what storage
 * holds refuses to open (EE_ECRYPTO), and no write re-seals a credential it
 * could not open. SQLite files, so several engines share one store. */
#include "cred_test.h"

#include <sys/wait.h>
#include <unistd.h>

#include "credentials/cred_internal.h"
#include "engine/engine.h"

#define SECRET_A "keycheck-secret-A-0123456789abcdef-canary-AAAA"
#define SECRET_B "keycheck-secret-B-0123456789abcdef-canary-BBBB"
#define SERPER "serper-keycheck-1111111,serper-keycheck-2222222"
#define FIRECRAWL "fc-keycheck-33333333"
#define RESEND "re_keycheck_44444444"

static char uri[160];

static void new_store(void)
{
    char dir[] = "/tmp/ee-cred-keycheck-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    snprintf(uri, sizeof uri, "sqlite://%s/k.db", dir);
}

static ee_config *config_with(const char *current, const char *previous)
{
    ee_config *cfg = ee_test_config_new(uri, NULL, NULL);
    ee_test_config_set(cfg, "API_KEY_ENCRYPTION_SECRET", current);
    if (previous != NULL)
        ee_test_config_set(cfg, "API_KEY_ENCRYPTION_PREVIOUS_SECRETS", previous);
    ee_test_config_set(cfg, "PLATFORM_SERPER_KEY", SERPER);
    ee_test_config_set(cfg, "PLATFORM_FIRECRAWL_KEY", FIRECRAWL);
    ee_test_config_set(cfg, "PLATFORM_RESEND_KEY", RESEND);
    cr_assert_eq(ee_config_set_log(cfg, transcript_log, EE_LOG_DEBUG, NULL), EE_OK);
    return cfg;
}

static ee_engine *open_with(const char *current, const char *previous)
{
    return ee_test_engine_open_config(config_with(current, previous));
}

/* Opening must fail with EE_ECRYPTO and a message that names the record
 * and says what to do, without either secret. */
static void expect_refused(const char *current, const char *previous)
{
    ee_config *cfg = config_with(current, previous);
    ee_engine *e = NULL;
    ee_status st = ee_engine_open(&e, cfg);
    ee_config_free(cfg);
    const char *msg = ee_error_last_message();
    transcript_add(msg);
    cr_assert_eq(st, EE_ECRYPTO, "open: %s, want EE_ECRYPTO (%s)", ee_status_name(st), msg);
    cr_assert_null(e);
    cr_expect(strstr(msg, "API_KEY_ENCRYPTION_SECRET") != NULL, "%s", msg);
    cr_expect(strstr(msg, SECRET_A) == NULL && strstr(msg, SECRET_B) == NULL);
}

static json_t *provision(ee_engine *e, ee_status want)
{
    char *out = NULL;
    return answer(ee_cred_platform_provision(e, &out), want, &out);
}

/* The key ids of every sealed platform credential (not the record). */
static void platform_key_ids(ee_engine *e, uint32_t *ids, size_t cap, size_t *n)
{
    json_t *list = NULL;
    cr_assert_eq(ee__cred_list_ids(e, EE__CRED_COLL, EE__PLATFORM_WS, &list), EE_OK);
    *n = 0;
    size_t i;
    const json_t *id;
    json_array_foreach(list, i, id) {
        ee__cdoc d;
        cr_assert_eq(ee__cdoc_get(e, EE__CRED_COLL, EE__PLATFORM_WS, json_string_value(id), &d),
                     EE_OK);
        if (d.sealed != NULL && !ee__cred_is_keycheck(d.meta) && *n < cap)
            cr_assert_eq(ee__envelope_key_id(d.sealed, d.sealed_len, &ids[(*n)++]), EE_OK);
        ee__cdoc_clear(&d);
    }
    json_decref(list);
}

static void expect_no_canary(void)
{
    if (transcript == NULL)
        return;
    const char *canaries[] = {SECRET_A, SECRET_B, "serper-keycheck-1111111",
                              "serper-keycheck-2222222", FIRECRAWL, RESEND};
    for (size_t i = 0; i < sizeof canaries / sizeof canaries[0]; i++)
        cr_expect(strstr(transcript, canaries[i]) == NULL, "a secret leaked: %s", canaries[i]);
}

/* The scenario: a process with the wrong secret used to provision
 * over the pool (4 "updated") and lock the right processes out. */
Test(keycheck, wrong_secret_refuses_to_open_and_the_pool_stays_readable)
{
    new_store();
    ee_engine *a = open_with(SECRET_A, NULL);
    json_t *r = provision(a, EE_OK);
    cr_assert_eq(jint(r, "created"), 4, "%s", json_dumps(r, 0));
    json_decref(r);
    uint32_t before[16], after[16];
    size_t n_before, n_after;
    platform_key_ids(a, before, 16, &n_before);
    ee_engine_close(a);

    expect_refused(SECRET_B, NULL);

    a = open_with(SECRET_A, NULL);
    platform_key_ids(a, after, 16, &n_after);
    cr_assert_eq(n_after, n_before);
    cr_expect_arr_eq(after, before, n_before * sizeof before[0], "nothing was re-sealed");
    r = provision(a, EE_OK);
    cr_expect_eq(jint(r, "unchanged"), 4, "%s", json_dumps(r, 0));
    cr_expect_eq(jint(r, "updated"), 0);
    json_decref(r);
    ee_engine_close(a);
    expect_no_canary();
}

/* A store written before the record existed: the first open checks the
 * sealed platform credentials instead. */
Test(keycheck, store_without_record_is_checked_against_its_credentials)
{
    new_store();
    ee_engine *a = open_with(SECRET_A, NULL);
    json_t *r = provision(a, EE_OK);
    json_decref(r);
    cr_assert_eq(ee_storage_delete(ee__engine_storage(a), EE__CRED_COLL, EE__PLATFORM_WS,
                                   EE__KEYCHECK_ID), EE_OK);
    ee_engine_close(a);

    expect_refused(SECRET_B, NULL);

    /* The right secret opens and writes the record; the wrong one is then
     * refused by the record itself. */
    a = open_with(SECRET_A, NULL);
    ee__cdoc d;
    cr_assert_eq(ee__cdoc_get(a, EE__CRED_COLL, EE__PLATFORM_WS, EE__KEYCHECK_ID, &d), EE_OK);
    ee__cdoc_clear(&d);
    ee_engine_close(a);
    expect_refused(SECRET_B, NULL);
    expect_no_canary();
}

Test(keycheck, rotation_moves_the_record_to_the_new_secret)
{
    new_store();
    ee_engine *a = open_with(SECRET_A, NULL);
    json_t *r = provision(a, EE_OK);
    json_decref(r);
    ee_engine_close(a);

    /* New secret current, old one previous: opens (and reads everything). */
    ee_engine *b = open_with(SECRET_B, SECRET_A);
    /* Before rotation the new secret alone cannot open the store. */
    expect_refused(SECRET_B, NULL);
    char *out = NULL;
    r = answer(ee_cred_rotate(b, &out), EE_OK, &out);
    cr_expect_eq(jint(r, "rotated"), 4, "the record is not counted: %s", json_dumps(r, 0));
    json_decref(r);
    ee_engine_close(b);

    /* After: the new secret alone opens, the old one alone is refused. */
    b = open_with(SECRET_B, NULL);
    r = provision(b, EE_OK);
    cr_expect_eq(jint(r, "unchanged"), 4, "%s", json_dumps(r, 0));
    json_decref(r);
    ee_engine_close(b);
    expect_refused(SECRET_A, NULL);
    ee_engine_close(open_with(SECRET_A, SECRET_B)); /* the reverse rotation's set-up opens */
    expect_no_canary();
}

/* Two processes open an empty store at once: with different secrets
 * exactly one opens; with the same secret both do. */
static int open_in_child(const char *secret, int go_fd)
{
    char c;
    if (read(go_fd, &c, 1) != 1)
        return 3;
    ee_config *cfg = NULL;
    if (ee_config_new(&cfg) != EE_OK)
        return 3;
    ee_config_set(cfg, "API_KEY_ENCRYPTION_SECRET", secret);
    ee_config_set(cfg, "EE_DATA_DIR", EE_TEST_DATA_DIR);
    ee_config_set(cfg, "EE_STORAGE_URI", uri);
    ee_engine *e = NULL;
    ee_status st = ee_engine_open(&e, cfg);
    ee_config_free(cfg);
    ee_engine_close(e);
    if (st != EE_OK && st != EE_ECRYPTO) /* say why, for the parent's failure */
        fprintf(stderr, "open in a racing child: %s: %s\n", ee_status_name(st),
                ee_error_last_message());
    return st == EE_OK ? 0 : st == EE_ECRYPTO ? 1 : 2;
}

static void race(const char *s1, const char *s2, int *codes)
{
    new_store();
    int go[2];
    cr_assert_eq(pipe(go), 0);
    const char *secrets[2] = {s1, s2};
    pid_t kids[2];
    for (int i = 0; i < 2; i++) {
        kids[i] = fork();
        cr_assert_neq(kids[i], -1);
        if (kids[i] == 0) {
            close(go[1]);
            _exit(open_in_child(secrets[i], go[0]));
        }
    }
    close(go[0]);
    cr_assert_eq(write(go[1], "xx", 2), 2); /* both start at once */
    close(go[1]);
    for (int i = 0; i < 2; i++) {
        int status = 0;
        cr_assert_eq(waitpid(kids[i], &status, 0), kids[i]);
        cr_assert(WIFEXITED(status));
        codes[i] = WEXITSTATUS(status);
    }
}

Test(keycheck, first_open_race_keeps_one_record)
{
    for (int round = 0; round < 6; round++) {
        int codes[2];
        race(SECRET_A, SECRET_B, codes);
        cr_expect(codes[0] <= 1 && codes[1] <= 1, "round %d: an open failed otherwise (%d, %d)",
                  round, codes[0], codes[1]);
        cr_expect_eq(codes[0] + codes[1], 1, "round %d: exactly one opens (%d, %d)", round,
                     codes[0], codes[1]);
        /* Whoever won, the other secret is refused from now on. */
        bool a_won = codes[0] == 0;
        expect_refused(a_won ? SECRET_B : SECRET_A, NULL);
        ee_engine_close(open_with(a_won ? SECRET_A : SECRET_B, NULL));

        race(SECRET_A, SECRET_A, codes);
        cr_expect_eq(codes[0], 0, "round %d: same secret opens", round);
        cr_expect_eq(codes[1], 0, "round %d: same secret opens", round);
    }
}

/* The second line: a credential that does not open (here: tampered) is
 * never re-sealed by provisioning, a key update or a personal update. */
static void tamper(ee_engine *e, const char *coll, const char *ws, const char *id)
{
    ee__cdoc d;
    cr_assert_eq(ee__cdoc_get(e, coll, ws, id, &d), EE_OK);
    d.sealed[d.sealed_len - 1] ^= 0x01; /* the GCM tag */
    cr_assert_eq(ee__cdoc_replace(e, coll, ws, &d), EE_OK);
    ee__cdoc_clear(&d);
}

static void expect_sealed(ee_engine *e, const char *coll, const char *ws, const char *id,
                          ee_status want)
{
    ee__cdoc d;
    cr_assert_eq(ee__cdoc_get(e, coll, ws, id, &d), EE_OK);
    uint8_t *pt = NULL;
    size_t len = 0;
    cr_expect_eq(ee__cdoc_open(ee__cred_state_of(e), ws, &d, &pt, &len), want,
                 "%s %s still holds the envelope it held", coll, id);
    ee__plaintext_free(pt, len);
    ee__cdoc_clear(&d);
}

Test(keycheck, writes_refuse_to_reseal_what_does_not_open)
{
    new_store();
    ee_engine *e = open_with(SECRET_A, NULL);
    json_t *r = provision(e, EE_OK);
    char victim[32];
    snprintf(victim, sizeof victim, "%s",
             jstr(json_array_get(json_object_get(r, "credentials"), 0), "id"));
    json_decref(r);
    tamper(e, EE__CRED_COLL, EE__PLATFORM_WS, victim);
    r = provision(e, EE_ECRYPTO);
    json_decref(r);
    expect_sealed(e, EE__CRED_COLL, EE__PLATFORM_WS, victim, EE_ECRYPTO);

    ee_principal *p = principal("ws-k", "u1");
    char key_id[32];
    add_key(e, p, "k", "sk-or-v1-keycheck-customer-000001", key_id);
    tamper(e, EE__KEYS_COLL, "ws-k", key_id);
    char *out = NULL;
    r = answer(ee_cred_key_update(e, p, key_id, "{\"apiKey\": \"sk-or-v1-keycheck-new-0000002\"}",
                                  &out), EE_ECRYPTO, &out);
    json_decref(r);
    expect_sealed(e, EE__KEYS_COLL, "ws-k", key_id, EE_ECRYPTO);

    r = answer(ee_cred_personal_put(e, p, "{\"credentialName\": \"notionApi\", \"type\": \"apiKey\","
                                          " \"apiKey\": \"secret_keycheck_notion\"}", &out),
               EE_OK, &out);
    char pid[32];
    snprintf(pid, sizeof pid, "%s", jstr(r, "id"));
    json_decref(r);
    tamper(e, EE__CRED_COLL, "ws-k", pid);
    char req[256];
    snprintf(req, sizeof req, "{\"id\": \"%s\", \"credentialName\": \"notionApi\", \"type\": "
                              "\"apiKey\", \"apiKey\": \"secret_keycheck_notion_2\"}", pid);
    r = answer(ee_cred_personal_put(e, p, req, &out), EE_ECRYPTO, &out);
    json_decref(r);
    expect_sealed(e, EE__CRED_COLL, "ws-k", pid, EE_ECRYPTO);
    ee_principal_free(p);
    ee_engine_close(e);
    expect_no_canary();
}
