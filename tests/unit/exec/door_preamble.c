/*
 * The common preamble of the door's calls on one execution (get, results,
 * cost, cancel: lib/exec/exec_api.c, submit.c): NULL arguments are refused
 * naming the call, a malformed or unknown id is not found, and nothing
 * else is looked at before that.
 */
#include "support_test.h"

#define UNKNOWN "65a0000000000000000000aa"

typedef ee_status (*door_fn)(ee_engine *, const ee_principal *, const char *, char **);

static ee_status cancel_door(ee_engine *e, const ee_principal *p, const char *id, char **out)
{
    *out = NULL;
    return ee_exec_cancel(e, p, id);
}

static const struct {
    const char *name;
    door_fn fn;
} doors[] = {
    {"ee_exec_get", ee_exec_get},
    {"ee_exec_results", ee_exec_results},
    {"ee_exec_cost", ee_exec_cost},
    {"ee_exec_cancel", cancel_door},
};

static ee_engine *engine;
static ee_principal *alice;

static void setup(void)
{
    engine = st_engine(NULL, NULL);
    alice = st_principal("ws-door", "org-door");
}

static void teardown(void)
{
    ee_principal_free(alice);
    ee_engine_close(engine);
}

TestSuite(door_preamble, .init = setup, .fini = teardown);

static void expect_refused(size_t i, ee_engine *e, const ee_principal *p, const char *id)
{
    char *out = NULL;
    ee_status st = doors[i].fn(e, p, id, &out);
    cr_expect_eq(st, EE_EINVAL, "%s: %s", doors[i].name, ee_status_name(st));
    char want[128];
    snprintf(want, sizeof want, "%s: engine, principal and execution_id must not be NULL",
             doors[i].name);
    cr_expect_str_eq(ee_error_last_message(), want);
    ee_free(out);
}

Test(door_preamble, null_arguments_are_refused_naming_the_call)
{
    for (size_t i = 0; i < sizeof doors / sizeof doors[0]; i++) {
        expect_refused(i, NULL, alice, UNKNOWN);
        expect_refused(i, engine, NULL, UNKNOWN);
        expect_refused(i, engine, alice, NULL);
    }
}

Test(door_preamble, an_unknown_or_impossible_id_is_not_found)
{
    /* also ids a principal id could be but an execution's cannot: before,
     * storage refused them (400 EE_EINVAL "document id must be 24 hex", 413
     * EE_ETOOBIG past 24) instead of the documented not found */
    static const char *const ids[] = {UNKNOWN, "", "no such id!", "..", "abc",
                                      "65A0000000000000000000AA", UNKNOWN "000000"};
    for (size_t i = 0; i < sizeof doors / sizeof doors[0]; i++)
        for (size_t k = 0; k < sizeof ids / sizeof ids[0]; k++) {
            char *out = NULL;
            ee_status st = doors[i].fn(engine, alice, ids[k], &out);
            cr_expect_eq(st, EE_ENOTFOUND, "%s(%s): %s", doors[i].name, ids[k],
                         ee_status_name(st));
            cr_expect_not_null(strstr(ee_error_last_message(), "no execution"), "%s: %s",
                               doors[i].name, ee_error_last_message());
            ee_free(out);
        }
}
