/*
 * The hold (core.h): while a thread holds a lock other threads' calls wait
 * for, log lines are queued and delivered after it, and the engine's clock
 * answers the reading taken before the lock (engine/engine.h).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "engine/engine.h"
#include "engine_fixture.h"

static char got[128][96];
static int ngot;

static void record(ee_log_level level, const char *module, const char *msg, void *payload)
{
    (void)payload;
    if (ngot < 128)
        snprintf(got[ngot++], sizeof got[0], "%s/%s/%s", ee_log_level_name(level), module, msg);
}

static const ee__logger logger = {record, EE_LOG_DEBUG, NULL};

Test(hold, lines_logged_inside_wait_for_the_outermost_end_in_order)
{
    ngot = 0;
    ee__log(&logger, EE_LOG_INFO, "m", "before");
    cr_assert_eq(ngot, 1);
    ee__hold_begin();
    cr_assert(ee__hold_active());
    ee__log(&logger, EE_LOG_WARN, "exec", "one %d", 1);
    ee__hold_begin(); /* nested */
    ee__log(&logger, EE_LOG_ERROR, "storage", "two");
    ee__hold_end();
    cr_assert(ee__hold_active());
    cr_assert_eq(ngot, 1, "a line went out under the hold");
    ee__log(&logger, EE_LOG_DEBUG, "exec", "three");
    ee__hold_end();
    cr_assert_not(ee__hold_active());
    cr_assert_eq(ngot, 4);
    cr_assert_str_eq(got[1], "warn/exec/one 1");
    cr_assert_str_eq(got[2], "error/storage/two");
    cr_assert_str_eq(got[3], "debug/exec/three");
    ee__hold_end(); /* unbalanced: ignored */
    cr_assert_not(ee__hold_active());
}

Test(hold, lines_past_the_bound_are_counted_not_kept)
{
    ngot = 0;
    ee__hold_begin();
    for (int i = 0; i < EE__HOLD_LINES_MAX + 6; i++)
        ee__log(&logger, EE_LOG_INFO, "m", "line %d", i);
    ee__hold_end();
    cr_assert_eq(ngot, EE__HOLD_LINES_MAX + 1);
    cr_assert_str_eq(got[EE__HOLD_LINES_MAX - 1], "info/m/line 63");
    cr_assert_str_eq(got[EE__HOLD_LINES_MAX],
                     "warn/core/6 log line(s) dropped while a lock was held");
}

Test(hold, a_held_line_is_redacted_when_logged)
{
    ngot = 0;
    ee__hold_begin();
    ee__log(&logger, EE_LOG_INFO, "m", "Authorization: Bearer sk-or-v1-canary0123456789abcdef");
    ee__hold_end();
    cr_assert_eq(ngot, 1);
    cr_assert_null(strstr(got[0], "canary0123456789"), "%s", got[0]);
}

static int clock_calls;
static int64_t counting_clock(void *payload)
{
    (void)payload;
    return 1000 + 10 * (int64_t)clock_calls++;
}

Test(hold, the_engine_clock_is_read_once_before_the_hold)
{
    ee_engine *e = ee_test_engine_open(NULL, counting_clock, NULL);
    int64_t a = ee_engine_now_ms(e);
    int64_t b = ee_engine_now_ms(e);
    cr_assert_gt(b, a, "outside a hold every reading calls the clock");
    int calls = clock_calls;
    ee__engine_hold h, inner;
    ee__engine_hold_begin(e, &h);
    cr_assert_eq(clock_calls, calls + 1);
    int64_t held = ee_engine_now_ms(e);
    ee__engine_hold_begin(e, &inner); /* nested: no new reading */
    cr_assert_eq(ee_engine_now_ms(e), held);
    ee__engine_hold_end(&inner);
    cr_assert_eq(ee_engine_now_ms(e), held);
    cr_assert_eq(clock_calls, calls + 1, "the clock was called under the hold");
    ee__engine_hold_end(&h);
    cr_assert_gt(ee_engine_now_ms(e), held);
    cr_assert_eq(clock_calls, calls + 2);
    ee_engine_close(e);
}

static void alert_call(const char *text, void *payload)
{
    (void)payload;
    if (ngot < 128)
        snprintf(got[ngot++], sizeof got[0], "call/%s", text);
}

Test(hold, a_held_call_waits_with_the_lines_in_order)
{
    ngot = 0;
    ee__hold_call(alert_call, NULL, "now");
    cr_assert_eq(ngot, 1, "outside a hold the call is made at once");
    ee__hold_begin();
    ee__log(&logger, EE_LOG_INFO, "m", "first");
    char text[16] = "alert";
    ee__hold_call(alert_call, NULL, text);
    text[0] = 'X'; /* copied when queued */
    ee__log(&logger, EE_LOG_INFO, "m", "last");
    cr_assert_eq(ngot, 1);
    ee__hold_end();
    cr_assert_eq(ngot, 4);
    cr_assert_str_eq(got[1], "info/m/first");
    cr_assert_str_eq(got[2], "call/alert");
    cr_assert_str_eq(got[3], "info/m/last");
}
