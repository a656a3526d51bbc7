/*
 * Secret redaction for log lines and error messages.
 *
 * Two nets: the exact values of every secret the process's engines hold
 * (registered on open, unregistered on close, counted), and shapes that
 * look like credentials whatever their value (bearer tokens, "sk-" keys,
 * key=value pairs whose name says secret). The first catches secrets that
 * have no recognisable shape; the second catches credentials the library
 * never saw (e.g. echoed back by an upstream error body).
 */
#include "core.h"

#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#define MARK "[REDACTED]"
#define MARK_LEN (sizeof MARK - 1)

typedef struct {
    char *value;
    size_t len;
    unsigned refs;
} secret_entry;

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static secret_entry *registry;
static size_t registry_len, registry_cap;

static secret_entry *find_entry(const char *s, size_t len)
{
    for (size_t i = 0; i < registry_len; i++)
        if (registry[i].len == len && memcmp(registry[i].value, s, len) == 0)
            return &registry[i];
    return NULL;
}

static ee_status append_entry(const char *s, size_t len)
{
    if (registry_len == registry_cap) {
        size_t cap = registry_cap ? registry_cap * 2 : 16;
        secret_entry *grown = realloc(registry, cap * sizeof *grown);
        if (grown == NULL)
            return EE_ENOMEM;
        registry = grown;
        registry_cap = cap;
    }
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return EE_ENOMEM;
    memcpy(copy, s, len);
    copy[len] = '\0';
    registry[registry_len++] = (secret_entry){copy, len, 1};
    return EE_OK;
}

ee_status ee__redact_register(const char *secret, size_t len)
{
    if (secret == NULL || len < EE__REDACT_MIN_LEN)
        return EE_OK;
    ee_status st = EE_OK;
    pthread_mutex_lock(&registry_lock);
    secret_entry *e = find_entry(secret, len);
    if (e != NULL)
        e->refs++;
    else
        st = append_entry(secret, len);
    pthread_mutex_unlock(&registry_lock);
    return st;
}

void ee__redact_unregister(const char *secret, size_t len)
{
    if (secret == NULL || len < EE__REDACT_MIN_LEN)
        return;
    pthread_mutex_lock(&registry_lock);
    secret_entry *e = find_entry(secret, len);
    if (e != NULL && --e->refs == 0) {
        OPENSSL_cleanse(e->value, e->len);
        free(e->value);
        *e = registry[--registry_len];
        if (registry_len == 0) {
            free(registry);
            registry = NULL;
            registry_cap = 0;
        }
    }
    pthread_mutex_unlock(&registry_lock);
}

/* Replace buf[start, start+len) by MARK, truncating at cap-1. Returns the
 * offset just past the mark. */
static size_t replace_span(char *buf, size_t cap, size_t start, size_t len)
{
    size_t total = strlen(buf);
    size_t tail = total - (start + len);
    size_t after = start + MARK_LEN;
    if (after >= cap) {
        memcpy(buf + start, MARK, cap - 1 - start);
        buf[cap - 1] = '\0';
        return cap - 1;
    }
    size_t keep = tail;
    if (after + keep > cap - 1) /* cut the rest at a character, never inside one */
        keep = ee__utf8_cut(buf + start + len, tail, cap - 1 - after);
    memmove(buf + after, buf + start + len, keep);
    memcpy(buf + start, MARK, MARK_LEN);
    buf[after + keep] = '\0';
    return after;
}

static void redact_value(char *buf, size_t cap, const char *v, size_t vlen)
{
    size_t pos = 0;
    for (;;) {
        size_t total = strlen(buf);
        if (pos >= total)
            return;
        char *hit = memmem(buf + pos, total - pos, v, vlen);
        if (hit == NULL)
            return;
        pos = replace_span(buf, cap, (size_t)(hit - buf), vlen);
    }
}

static void redact_registered(char *buf, size_t cap)
{
    pthread_mutex_lock(&registry_lock);
    for (size_t i = 0; i < registry_len; i++)
        redact_value(buf, cap, registry[i].value, registry[i].len);
    pthread_mutex_unlock(&registry_lock);
}

static int is_token_char(int c)
{
    return isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '+' ||
           c == '/' || c == '=';
}

/* Names after which the value up to a delimiter is a secret. Matched
 * case-insensitively; each ends where the value starts. */
static const char *const markers[] = {
    "bearer ",      "basic ",        "x-n8n-api-key: ", "x-n8n-api-key:", "x-n8n-api-key=",
    "api_key=",     "apikey=",       "api-key=",        "password=",      "passwd=",
    "secret=",      "token=",        "\"apikey\":\"",   "\"api_key\":\"", "\"password\":\"",
    "\"secret\":\"", "\"token\":\"", "\"accesstoken\":\"", "\"refreshtoken\":\"",
    "\"access_token\":\"", "\"refresh_token\":\"", "\"client_secret\":\"",
};

/* Whether buf[pos..] starts with marker `m` (length mlen); *start receives
 * where the value begins. A JSON marker ("name":") also matches with
 * blanks around its colon, as pretty-printed JSON has them. */
static bool match_marker(const char *buf, size_t pos, const char *m, size_t mlen, size_t *start)
{
    if (m[0] != '"') {
        if (strncasecmp(buf + pos, m, mlen) != 0)
            return false;
        *start = pos + mlen;
        return true;
    }
    size_t name = mlen - 2; /* up to and including the name's closing quote */
    if (strncasecmp(buf + pos, m, name) != 0)
        return false;
    size_t i = pos + name;
    while (buf[i] == ' ' || buf[i] == '\t')
        i++;
    if (buf[i++] != ':')
        return false;
    while (buf[i] == ' ' || buf[i] == '\t')
        i++;
    if (buf[i++] != '"')
        return false;
    *start = i;
    return true;
}

const char *const *ee__redact_markers(size_t *count)
{
    *count = sizeof markers / sizeof markers[0];
    return markers;
}

static size_t value_end(const char *buf, size_t start)
{
    size_t i = start;
    while (buf[i] != '\0' && buf[i] != '"' && buf[i] != '\'' && buf[i] != ',' &&
           buf[i] != '&' && buf[i] != ';' && !isspace((unsigned char)buf[i]))
        i++;
    return i;
}

static void redact_markers(char *buf, size_t cap)
{
    for (size_t m = 0; m < sizeof markers / sizeof markers[0]; m++) {
        size_t mlen = strlen(markers[m]);
        /* every marker starts with a lowercase letter or a quote: most
         * positions fail on their first character, without a call */
        int first = (unsigned char)markers[m][0];
        char firsts[3] = {(char)first, (char)toupper(first), '\0'};
        size_t pos = 0;
        for (;;) {
            /* to the next position that can start the marker */
            const char *at = strpbrk(buf + pos, firsts);
            if (at == NULL)
                break;
            pos = (size_t)(at - buf);
            size_t start;
            if (!match_marker(buf, pos, markers[m], mlen, &start)) {
                pos++;
                continue;
            }
            size_t end = value_end(buf, start);
            if (end == start || (end - start == MARK_LEN &&
                                 memcmp(buf + start, MARK, MARK_LEN) == 0)) {
                pos = start;
                continue;
            }
            pos = replace_span(buf, cap, start, end - start);
        }
    }
}

/* "sk-..." keys (OpenAI/OpenRouter style) of at least 16 characters. */
static void redact_sk_tokens(char *buf, size_t cap)
{
    size_t pos = 0;
    for (;;) {
        const char *at = strstr(buf + pos, "sk-");
        if (at == NULL)
            break;
        pos = (size_t)(at - buf);
        bool word_start = pos == 0 || !is_token_char((unsigned char)buf[pos - 1]);
        if (!word_start) {
            pos++;
            continue;
        }
        size_t end = pos;
        while (is_token_char((unsigned char)buf[end]))
            end++;
        if (end - pos >= 16)
            pos = replace_span(buf, cap, pos, end - pos);
        else
            pos = end;
    }
}

void ee__redact(char *buf, size_t cap)
{
    if (buf == NULL || cap == 0)
        return;
    redact_registered(buf, cap);
    redact_markers(buf, cap);
    redact_sk_tokens(buf, cap);
}

char *ee__secret_dup(const char *s)
{
    if (s == NULL)
        return NULL;
    size_t n = strlen(s) + 1;
    char *copy = malloc(n);
    if (copy != NULL)
        memcpy(copy, s, n);
    return copy;
}

void ee__secret_free(char *s)
{
    if (s == NULL)
        return;
    OPENSSL_cleanse(s, strlen(s));
    free(s);
}
