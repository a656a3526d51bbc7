#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"

Test(errors, starts_clear)
{
    cr_expect_eq(ee_error_last_status(), EE_OK);
    cr_expect_str_eq(ee_error_last_message(), "");
    cr_expect_eq(ee_error_last_http_status(), 0);
    char *doc = NULL;
    cr_assert_eq(ee_error_last_json(&doc), EE_OK);
    cr_expect_str_eq(doc, "{\"error\":null}");
    ee_free(doc);
}

Test(errors, records_status_message_http_and_detail)
{
    json_t *detail = json_pack("{s:[{s:s,s:s}]}", "violations", "pointer", "/topic", "message",
                               "is required");
    cr_assert_eq(ee__error_full(EE_EVALIDATION, 422, detail, "bad input for %s", "wf-1"),
                 EE_EVALIDATION);
    cr_expect_eq(ee_error_last_status(), EE_EVALIDATION);
    cr_expect_str_eq(ee_error_last_message(), "bad input for wf-1");
    cr_expect_eq(ee_error_last_http_status(), 422);

    char *text = NULL;
    cr_assert_eq(ee_error_last_json(&text), EE_OK);
    json_t *doc = json_loads(text, 0, NULL);
    ee_free(text);
    cr_assert_not_null(doc);
    json_t *err = json_object_get(doc, "error");
    cr_expect_eq(json_integer_value(json_object_get(err, "code")), EE_EVALIDATION);
    cr_expect_str_eq(json_string_value(json_object_get(err, "name")), "EE_EVALIDATION");
    cr_expect_str_eq(json_string_value(json_object_get(err, "message")), "bad input for wf-1");
    cr_expect_eq(json_integer_value(json_object_get(err, "httpStatus")), 422);
    json_t *v = json_array_get(json_object_get(json_object_get(err, "detail"), "violations"), 0);
    cr_expect_str_eq(json_string_value(json_object_get(v, "pointer")), "/topic");
    json_decref(doc);

    ee_error_clear();
    cr_expect_eq(ee_error_last_status(), EE_OK);
    cr_expect_str_eq(ee_error_last_message(), "");
}

Test(errors, success_does_not_clear)
{
    ee__error(EE_ENOTFOUND, "workflow %d not found", 7);
    ee_config *cfg = NULL;
    cr_assert_eq(ee_config_new(&cfg), EE_OK);
    ee_config_free(cfg);
    cr_expect_eq(ee_error_last_status(), EE_ENOTFOUND);
    cr_expect_str_eq(ee_error_last_message(), "workflow 7 not found");
}

Test(errors, long_messages_are_truncated_not_overflowed)
{
    char big[5000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ee__error(EE_EINVAL, "%s", big);
    cr_expect_eq(strlen(ee_error_last_message()), EE__ERROR_MSG_MAX - 1);
}

Test(errors, invalid_utf8_in_message_is_sanitised_for_json)
{
    ee__error(EE_EINVAL, "name \xff\xfe%s", "ok");
    cr_expect_str_eq(ee_error_last_message(), "name ??ok");
    char *text = NULL;
    cr_assert_eq(ee_error_last_json(&text), EE_OK);
    cr_expect_not_null(strstr(text, "name ??ok"));
    ee_free(text);
}

Test(errors, error_out_fills_document)
{
    char *out = (char *)1;
    cr_assert_eq(ee__error_out(&out, ee__error(EE_EQUOTA, "quota used up")), EE_EQUOTA);
    cr_assert_not_null(out);
    cr_expect_not_null(strstr(out, "\"name\":\"EE_EQUOTA\""));
    cr_expect_not_null(strstr(out, "quota used up"));
    ee_free(out);
    cr_expect_eq(ee_error_last_json(NULL), EE_EINVAL);
}

/* ---- per-thread ------------------------------------------------------------ */

#define THREADS 8
#define ROUNDS 2000

typedef struct {
    int id;
    pthread_barrier_t *barrier;
    int mismatches;
} worker_arg;

static void *worker(void *p)
{
    worker_arg *a = p;
    pthread_barrier_wait(a->barrier);
    for (int r = 0; r < ROUNDS; r++) {
        ee_status st = a->id % 2 ? EE_ENOTFOUND : EE_EQUOTA;
        /* Each thread's detail owns a JSON object: freed at thread exit. */
        ee__error_full(st, 400 + a->id, json_pack("{s:i}", "round", r), "thread %d round %d",
                       a->id, r);
        char want[64];
        snprintf(want, sizeof want, "thread %d round %d", a->id, r);
        if (ee_error_last_status() != st || strcmp(ee_error_last_message(), want) != 0 ||
            ee_error_last_http_status() != 400 + a->id)
            a->mismatches++;
    }
    return NULL;
}

Test(errors, detail_is_per_thread)
{
    ee__error(EE_EIO, "main thread error");
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, THREADS);
    pthread_t tid[THREADS];
    worker_arg args[THREADS];
    for (int i = 0; i < THREADS; i++) {
        args[i] = (worker_arg){i, &barrier, 0};
        cr_assert_eq(pthread_create(&tid[i], NULL, worker, &args[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(tid[i], NULL);
        cr_expect_eq(args[i].mismatches, 0, "thread %d saw another thread's error", i);
    }
    pthread_barrier_destroy(&barrier);
    cr_expect_eq(ee_error_last_status(), EE_EIO);
    cr_expect_str_eq(ee_error_last_message(), "main thread error");
    cr_expect_eq(ee_error_last_http_status(), 0);
}
