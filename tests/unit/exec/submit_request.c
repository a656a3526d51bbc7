/*
 * The members of an execution request (lib/exec/submit.c parse_request())
 * are checked at the door, before anything is looked up or stored.
 */
#include "support_test.h"

#define WF "65a0000000000000000000aa"

static ee_engine *engine;
static ee_principal *alice;

static void setup(void)
{
    engine = st_engine(NULL, NULL);
    alice = st_principal("ws-submit", "org-submit");
}

static void teardown(void)
{
    ee_principal_free(alice);
    ee_engine_close(engine);
}

TestSuite(submit_request, .init = setup, .fini = teardown);

static ee_status submit(const char *request)
{
    char id[EE_EXEC_ID_SIZE];
    return ee_exec_submit(engine, alice, WF, request, NULL, NULL, id);
}

/* email.to is checked as the outbox checks it when the run ends: an
 * address it would refuse then (a list, a display name, 8-bit bytes) was
 * taken here and the e-mail silently dropped after the run. */
Test(submit_request, an_email_to_the_outbox_would_refuse_is_refused_at_the_door)
{
    static const char *const bad[] = {
        "{\"email\": {\"to\": \"a@example.com,b@example.com\"}}",
        "{\"email\": {\"to\": \"a@example.com; b@example.com\"}}",
        "{\"email\": {\"to\": \"Reader<reader@example.com>\"}}",
        "{\"email\": {\"to\": \"(x)reader@example.com\"}}",
        "{\"email\": {\"to\": \"ren\xc3\xa9@example.com\"}}",
        "{\"email\": {\"to\": \"reader@b\"}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ee_status st = submit(bad[i]);
        cr_expect_eq(st, EE_EINVAL, "%s: got %s (%s)", bad[i], ee_status_name(st),
                     ee_error_last_message());
        cr_expect_not_null(strstr(ee_error_last_message(), "email.to"), "%s",
                           ee_error_last_message());
    }
    /* a plain address passes the door: the unknown workflow is next */
    ee_status st = submit("{\"email\": {\"to\": \"reader@example.com\"}}");
    cr_expect_eq(st, EE_ENOTFOUND, "%s (%s)", ee_status_name(st), ee_error_last_message());
}
