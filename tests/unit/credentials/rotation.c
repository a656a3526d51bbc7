/* Key rotation under a crash: a child process rotating a SQLite store is
 * killed (SIGKILL) midway; a rerun finishes, and afterwards every stored
 * secret opens with the new secret alone. */
#include "cred_test.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "credentials/cred_internal.h"

#define OLD_SECRET "old-rotation-secret-0123456789abcdef-0001"
#define NEW_SECRET "new-rotation-secret-0123456789abcdef-0002"
#define KILL_AFTER 5

static char uri[160];

static ee_engine *open_with(const char *current, const char *previous)
{
    ee_config *cfg = ee_test_config_new(uri, NULL, NULL);
    ee_test_config_set(cfg, "API_KEY_ENCRYPTION_SECRET", current);
    if (previous != NULL)
        ee_test_config_set(cfg, "API_KEY_ENCRYPTION_PREVIOUS_SECRETS", previous);
    ee_test_config_set(cfg, "PLATFORM_SERPER_KEY", "serper-rot-1111111,serper-rot-2222222");
    ee_test_config_set(cfg, "PLATFORM_FIRECRAWL_KEY", "fc-rot-33333333");
    return ee_test_engine_open_config(cfg);
}

/* Secrets stored: 2 serper keys (serperApi only: SerpApi is another
 * vendor) + 1 firecrawl = 3 platform; 2 personal and 2 customer keys in
 * each of 2 workspaces = 8. */
#define PLATFORM_TOTAL 3
#define TOTAL 11

static void populate(void)
{
    ee_engine *e = open_with(OLD_SECRET, NULL);
    char *out = NULL;
    json_t *r = answer(ee_cred_platform_provision(e, &out), EE_OK, &out);
    cr_assert_eq(jint(r, "created"), PLATFORM_TOTAL);
    json_decref(r);
    const char *wss[] = {"ws-a", "ws-b"};
    for (size_t i = 0; i < 2; i++) {
        ee_principal *p = principal(wss[i], "u1");
        char id[32];
        add_key(e, p, "k1", "sk-or-v1-rotation-key-one-000001", id);
        add_key(e, p, "k2", "sk-or-v1-rotation-key-two-000002", id);
        r = answer(ee_cred_personal_put(e, p, "{\"credentialName\": \"notionApi\", \"type\": \"apiKey\","
                                              " \"apiKey\": \"secret_rotation_notion\"}", &out), EE_OK, &out);
        json_decref(r);
        r = answer(ee_cred_personal_put(e, p, "{\"credentialName\": \"slackOAuth2Api\", \"type\": \"oauth2\","
                                              " \"accessToken\": \"xoxp-rotation-access\"}", &out), EE_OK, &out);
        json_decref(r);
        ee_principal_free(p);
    }
    ee_engine_close(e);
}

static int hook_fd = -1;

static int crash_hook(void *payload, uint64_t rotated)
{
    (void)payload;
    if (rotated == KILL_AFTER) {
        cr_assert_eq(write(hook_fd, "x", 1), 1);
        for (;;)
            pause(); /* the parent kills us here, between two documents */
    }
    return 0;
}

static json_t *rotate(ee_engine *e, ee_status want)
{
    char *out = NULL;
    return answer(ee_cred_rotate(e, &out), want, &out);
}

/* Open every sealed document with the engine's keyring; count successes. */
static int open_all(ee_engine *e)
{
    ee__cred_state *s = ee__cred_state_of(e);
    const char *wss[] = {"platform", "ws-a", "ws-b"};
    const char *colls[] = {EE__CRED_COLL, EE__KEYS_COLL};
    int opened = 0;
    for (size_t w = 0; w < 3; w++)
        for (size_t c = 0; c < 2; c++) {
            json_t *ids = NULL;
            cr_assert_eq(ee__cred_list_ids(e, colls[c], wss[w], &ids), EE_OK);
            size_t i;
            const json_t *id;
            json_array_foreach(ids, i, id) {
                ee__cdoc d;
                cr_assert_eq(ee__cdoc_get(e, colls[c], wss[w], json_string_value(id), &d), EE_OK);
                if (d.sealed != NULL && !ee__cred_is_keycheck(d.meta)) {
                    uint8_t *pt;
                    size_t len;
                    ee_status st = ee__cdoc_open(s, wss[w], &d, &pt, &len);
                    cr_expect_eq(st, EE_OK, "%s %s does not open: %s", colls[c],
                                 json_string_value(id), ee_error_last_message());
                    opened += st == EE_OK;
                    ee__plaintext_free(pt, len);
                }
                ee__cdoc_clear(&d);
            }
            json_decref(ids);
        }
    return opened;
}

Test(rotation, killed_midway_then_rerun_finishes)
{
    char dir[] = "/tmp/ee-cred-rotate-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    snprintf(uri, sizeof uri, "sqlite://%s/rot.db", dir);
    populate();

    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t child = fork();
    cr_assert_neq(child, -1);
    if (child == 0) {
        close(fds[0]);
        hook_fd = fds[1];
        ee_engine *e = open_with(NEW_SECRET, OLD_SECRET);
        ee__cred_set_rotate_hook(e, crash_hook, NULL);
        char *out = NULL;
        ee_cred_rotate(e, &out);
        _exit(3); /* not reached: the hook waits to be killed */
    }
    close(fds[1]);
    char c = 0;
    cr_assert_eq(read(fds[0], &c, 1), 1, "the child never reached the crash point");
    close(fds[0]);
    cr_assert_eq(kill(child, SIGKILL), 0);
    int status = 0;
    cr_assert_eq(waitpid(child, &status, 0), child);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "the child was killed mid-run");

    /* Half-done: the key-check record is re-sealed only by a complete
     * run, so an engine with the new secret alone still refuses to open
     * (what is left needs the old one). */
    ee_config *cfg = ee_test_config_new(uri, NULL, NULL);
    ee_test_config_set(cfg, "API_KEY_ENCRYPTION_SECRET", NEW_SECRET);
    ee_engine *e = NULL;
    cr_expect_eq(ee_engine_open(&e, cfg), EE_ECRYPTO, "%s", ee_error_last_message());
    cr_assert_null(e);
    ee_config_free(cfg);
    json_t *r;

    /* The rerun with both secrets finishes the job. */
    e = open_with(NEW_SECRET, OLD_SECRET);
    r = rotate(e, EE_OK);
    cr_expect_eq(jint(r, "rotated"), TOTAL - KILL_AFTER, "%s", json_dumps(r, 0));
    cr_expect_eq(jint(r, "current"), KILL_AFTER);
    cr_expect_eq(jint(r, "failed"), 0);
    cr_expect_eq(jint(r, "workspaces"), 3);
    cr_expect(json_is_true(json_object_get(r, "complete")));
    json_decref(r);
    r = rotate(e, EE_OK);
    cr_expect_eq(jint(r, "rotated"), 0, "a third run has nothing to do");
    json_decref(r);
    ee_engine_close(e);

    /* Every secret opens with the new secret alone, and routes. */
    e = open_with(NEW_SECRET, NULL);
    cr_expect_eq(open_all(e), TOTAL);
    r = rotate(e, EE_OK);
    cr_expect_eq(jint(r, "current"), TOTAL);
    json_decref(r);
    ee_principal *p = principal("ws-b", "u1");
    json_t *wf = json_loads("{\"nodeNames\": [\"serper\", \"firecrawl\", \"notion\"]}", 0, NULL);
    ee__cred_resolved *res = NULL;
    cr_assert_eq(ee__cred_resolve(e, p, wf, NULL, &res), EE_OK, "%s", ee_error_last_message());
    cr_assert_eq(res->n, 3);
    cr_expect_str_eq(res->items[1].secret, "fc-rot-33333333");
    cr_expect_str_eq(res->items[2].secret, "{\"apiKey\":\"secret_rotation_notion\"}");
    ee__cred_resolved_free(res);
    json_decref(wf);
    ee_principal_free(p);
    ee_engine_close(e);
}

Test(rotation, nothing_to_do_with_one_secret)
{
    snprintf(uri, sizeof uri, "memory:");
    ee_engine *e = open_with(NEW_SECRET, NULL);
    char *out = NULL;
    json_t *r = answer(ee_cred_platform_provision(e, &out), EE_OK, &out);
    json_decref(r);
    r = rotate(e, EE_OK);
    cr_expect_eq(jint(r, "rotated"), 0);
    cr_expect_eq(jint(r, "current"), PLATFORM_TOTAL);
    json_decref(r);
    ee_engine_close(e);
}
