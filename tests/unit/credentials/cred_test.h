/* Helpers shared by the credentials tests: principals, JSON answers, and a
 * transcript of everything the library said (answers, error messages, log
 * lines) for the canary scans. */
#ifndef EE_TEST_CRED_TEST_H
#define EE_TEST_CRED_TEST_H

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <execengine/credentials.h>
#include <execengine/execengine.h>

#include "engine_fixture.h"

/* ---- transcript ---------------------------------------------------------- */

static char *transcript;
static size_t transcript_len;
static pthread_mutex_t transcript_lock = PTHREAD_MUTEX_INITIALIZER;

static inline void transcript_add(const char *text)
{
    if (text == NULL)
        return;
    pthread_mutex_lock(&transcript_lock);
    size_t n = strlen(text);
    char *grown = realloc(transcript, transcript_len + n + 2);
    if (grown != NULL) {
        transcript = grown;
        memcpy(transcript + transcript_len, text, n);
        transcript_len += n;
        transcript[transcript_len++] = '\n';
        transcript[transcript_len] = '\0';
    }
    pthread_mutex_unlock(&transcript_lock);
}

static inline void transcript_log(ee_log_level level, const char *module, const char *line,
                                  void *payload)
{
    (void)level;
    (void)module;
    (void)payload;
    transcript_add(line);
}

static inline void transcript_reset(void)
{
    free(transcript);
    transcript = NULL;
    transcript_len = 0;
}

/* ---- calls ------------------------------------------------------------------ */

static inline ee_principal *principal(const char *ws, const char *user)
{
    ee_principal *p = NULL;
    cr_assert_eq(ee_principal_new(&p, ws, user, NULL), EE_OK);
    return p;
}

/* Keep a call's answer (and the last error message) in the transcript and
 * return it parsed. Fails the test unless the status is `want`. */
static inline json_t *answer(ee_status st, ee_status want, char **textp)
{
    /* Takes the address: the call in the first argument must have run
     * before *textp is read (argument order is unspecified in C). */
    char *text = *textp;
    *textp = NULL;
    transcript_add(text);
    transcript_add(ee_error_last_message());
    cr_assert_eq(st, want, "status %s, want %s: %s", ee_status_name(st), ee_status_name(want),
                 text ? text : ee_error_last_message());
    json_t *doc = text ? json_loads(text, 0, NULL) : NULL;
    ee_free(text);
    return doc;
}

static inline const char *jstr(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static inline long long jint(const json_t *o, const char *k)
{
    return (long long)json_integer_value(json_object_get(o, k));
}

/* Add a customer key and return its id (static buffer per call site use). */
static inline void add_key(ee_engine *e, const ee_principal *p, const char *name, const char *key,
                           char id[32])
{
    char req[512];
    snprintf(req, sizeof req, "{\"keyName\": \"%s\", \"provider\": \"openrouter\", \"apiKey\": \"%s\"}",
             name, key);
    char *out = NULL;
    json_t *r = answer(ee_cred_key_add(e, p, req, &out), EE_OK, &out);
    snprintf(id, 32, "%s", jstr(r, "id"));
    json_decref(r);
}

/* Route and return the answer. */
static inline json_t *route(ee_engine *e, const ee_principal *p, const char *wf, const char *choice)
{
    char *out = NULL;
    return answer(ee_cred_route(e, p, wf, choice, &out), EE_OK, &out);
}

static inline const json_t *mapping_for(const json_t *r, const char *node)
{
    size_t i;
    const json_t *m;
    json_array_foreach(json_object_get(r, "credentialMappings"), i, m) {
        if (strcmp(jstr(m, "nodeName"), node) == 0)
            return m;
    }
    return NULL;
}

static inline size_t ngaps(const json_t *r)
{
    return json_array_size(json_object_get(r, "gaps"));
}

#endif
