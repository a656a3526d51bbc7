/*
 * Per-thread error detail (libgit2's git_error_last model). The message
 * lives in a fixed thread-local buffer so recording an error never
 * allocates; the optional JSON detail is heap-allocated and freed when the
 * thread exits, through a pthread key destructor.
 */
#include "core.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int status;
    int http_status;
    char message[EE__ERROR_MSG_MAX];
    json_t *detail;
} error_state;

static _Thread_local error_state tls_error;
static pthread_key_t exit_key;
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;

static void on_thread_exit(void *unused)
{
    (void)unused;
    json_decref(tls_error.detail);
    tls_error.detail = NULL;
}

static void make_exit_key(void)
{
    (void)pthread_key_create(&exit_key, on_thread_exit);
}

/* Make sure this thread's detail is released when the thread ends. */
static void arm_thread_exit(void)
{
    (void)pthread_once(&exit_once, make_exit_key);
    if (pthread_getspecific(exit_key) == NULL)
        (void)pthread_setspecific(exit_key, &tls_error);
}

static void set_error(ee_status status, int http_status, json_t *detail,
                      const char *fmt, va_list ap) EE__PRINTF(4, 0);

static void set_error(ee_status status, int http_status, json_t *detail,
                      const char *fmt, va_list ap)
{
    error_state *e = &tls_error;
    e->status = status;
    e->http_status = http_status;
    if (fmt != NULL)
        vsnprintf(e->message, sizeof e->message, fmt, ap);
    else
        snprintf(e->message, sizeof e->message, "%s", ee_strerror(status));
    ee__redact(e->message, sizeof e->message);
    ee__utf8_sanitize(e->message);
    json_decref(e->detail);
    e->detail = detail;
    if (detail != NULL)
        arm_thread_exit();
}

ee_status ee__error(ee_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_error(status, 0, NULL, fmt, ap);
    va_end(ap);
    return status;
}

ee_status ee__error_full(ee_status status, int http_status, json_t *detail,
                         const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_error(status, http_status, detail, fmt, ap);
    va_end(ap);
    return status;
}

int ee_error_last_status(void)
{
    return tls_error.status;
}

const char *ee_error_last_message(void)
{
    return tls_error.message;
}

int ee_error_last_http_status(void)
{
    return tls_error.http_status;
}

void ee_error_clear(void)
{
    json_decref(tls_error.detail);
    memset(&tls_error, 0, sizeof tls_error);
}

void ee__error_save(ee__error_saved *saved)
{
    saved->status = tls_error.status;
    saved->http_status = tls_error.http_status;
    memcpy(saved->message, tls_error.message, sizeof saved->message);
    saved->detail = json_incref(tls_error.detail);
}

void ee__error_restore(ee__error_saved *saved)
{
    json_decref(tls_error.detail);
    tls_error.status = saved->status;
    tls_error.http_status = saved->http_status;
    memcpy(tls_error.message, saved->message, sizeof tls_error.message);
    tls_error.detail = saved->detail;
    saved->detail = NULL;
    if (tls_error.detail != NULL)
        arm_thread_exit();
}

static json_t *error_document(void)
{
    const error_state *e = &tls_error;
    if (e->status == EE_OK)
        return json_pack("{s:n}", "error");
    return json_pack("{s:{s:i, s:s, s:s, s:i, s:O?}}", "error",
                     "code", e->status,
                     "name", ee_status_name(e->status),
                     "message", e->message,
                     "httpStatus", e->http_status,
                     "detail", e->detail);
}

ee_status ee_error_last_json(char **out)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee_error_last_json: out is NULL");
    *out = NULL;
    json_t *doc = error_document();
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (text == NULL)
        return EE_ENOMEM; /* keep the error being reported intact */
    *out = text;
    return EE_OK;
}

ee_status ee__error_out(char **out, ee_status status)
{
    if (out == NULL)
        return status;
    *out = NULL;
    (void)ee_error_last_json(out);
    return status;
}
