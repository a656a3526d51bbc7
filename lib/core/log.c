/* Log delivery: format, redact, hand to the host's callback. */
#include "core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the hold (core.h) ---------------------------------------------------- */

typedef struct held_line {
    struct held_line *next;
    ee_log_fn fn;                                 /* a log line, or */
    void (*call)(const char *text, void *payload); /* a call (ee__hold_call()) */
    void *payload;
    ee_log_level level;
    char module[32];
    char text[]; /* formatted, redacted */
} held_line;

static _Thread_local struct {
    unsigned depth;
    held_line *head, **tail;
    size_t n;
    size_t dropped; /* past EE__HOLD_LINES_MAX or out of memory */
    ee_log_fn drop_fn; /* the logger of the last dropped line */
    void *drop_payload;
} hold;

void ee__hold_begin(void)
{
    if (hold.depth++ == 0) {
        hold.head = NULL;
        hold.tail = &hold.head;
        hold.n = hold.dropped = 0;
    }
}

bool ee__hold_active(void)
{
    return hold.depth > 0;
}

void ee__hold_end(void)
{
    if (hold.depth == 0 || --hold.depth > 0)
        return;
    held_line *l = hold.head;
    size_t dropped = hold.dropped;
    ee_log_fn drop_fn = hold.drop_fn;
    void *drop_payload = hold.drop_payload;
    hold.head = NULL;
    hold.tail = &hold.head;
    hold.n = hold.dropped = 0;
    /* A callback may itself call the library (and hold again): the queue
     * is this function's now. */
    while (l != NULL) {
        held_line *next = l->next;
        if (l->call != NULL)
            l->call(l->text, l->payload);
        else
            l->fn(l->level, l->module, l->text, l->payload);
        free(l);
        l = next;
    }
    if (dropped > 0 && drop_fn != NULL) {
        char line[96];
        snprintf(line, sizeof line, "%zu log line(s) dropped while a lock was held", dropped);
        drop_fn(EE_LOG_WARN, "core", line, drop_payload);
    }
}

static void hold_append(held_line *l)
{
    l->next = NULL;
    *hold.tail = l;
    hold.tail = &l->next;
}

/* Queue a formatted line, or count it as dropped (past the bound, or out
 * of memory). */
static void hold_queue(const ee__logger *lg, ee_log_level level, const char *module,
                       const char *text)
{
    size_t len = strlen(text);
    held_line *l = hold.n < EE__HOLD_LINES_MAX ? malloc(sizeof *l + len + 1) : NULL;
    if (l == NULL) {
        hold.dropped++;
        hold.drop_fn = lg->fn;
        hold.drop_payload = lg->payload;
        return;
    }
    l->call = NULL;
    l->fn = lg->fn;
    l->payload = lg->payload;
    l->level = level;
    snprintf(l->module, sizeof l->module, "%s", module != NULL ? module : "");
    memcpy(l->text, text, len + 1);
    hold_append(l);
    hold.n++;
}

void ee__hold_call(void (*fn)(const char *text, void *payload), void *payload, const char *text)
{
    if (fn == NULL || text == NULL)
        return;
    if (hold.depth == 0) {
        fn(text, payload);
        return;
    }
    size_t len = strlen(text);
    held_line *l = malloc(sizeof *l + len + 1); /* not bounded: not for logging */
    if (l == NULL) {
        fn(text, payload); /* out of memory: under the lock rather than lost */
        return;
    }
    l->fn = NULL;
    l->call = fn;
    l->payload = payload;
    l->level = EE_LOG_INFO;
    l->module[0] = '\0';
    memcpy(l->text, text, len + 1);
    hold_append(l);
}

/* ---- delivery ------------------------------------------------------------------ */

const char *ee_log_level_name(int level)
{
    switch (level) {
    case EE_LOG_ERROR: return "error";
    case EE_LOG_WARN: return "warn";
    case EE_LOG_INFO: return "info";
    case EE_LOG_DEBUG: return "debug";
    default: return "unknown";
    }
}

void ee__logv(const ee__logger *lg, ee_log_level level, const char *module,
              const char *fmt, va_list ap)
{
    if (lg == NULL || lg->fn == NULL || level > lg->min_level)
        return;
    char line[EE__LOG_LINE_MAX];
    vsnprintf(line, sizeof line, fmt, ap);
    ee__redact(line, sizeof line);
    ee__utf8_sanitize(line);
    if (hold.depth > 0)
        hold_queue(lg, level, module, line);
    else
        lg->fn(level, module, line, lg->payload);
}

void ee__log_foreign(const ee__logger *lg, const char *module, const char *text)
{
    if (lg == NULL || lg->fn == NULL || text == NULL)
        return;
    static const struct {
        const char *word;
        ee_log_level level;
    } severities[] = {
        {"PANIC", EE_LOG_ERROR}, {"FATAL", EE_LOG_ERROR}, {"ERROR", EE_LOG_ERROR},
        {"WARNING", EE_LOG_WARN}, {"NOTICE", EE_LOG_DEBUG}, {"INFO", EE_LOG_DEBUG},
        {"LOG", EE_LOG_DEBUG},    {"DEBUG", EE_LOG_DEBUG},
    };
    ee_log_level level = EE_LOG_WARN;
    for (size_t i = 0; i < sizeof severities / sizeof severities[0]; i++)
        if (strncmp(text, severities[i].word, strlen(severities[i].word)) == 0) {
            level = severities[i].level;
            break;
        }
    char line[EE__LOG_LINE_MAX];
    size_t n = 0;
    for (const char *p = text; *p != '\0' && n + 3 < sizeof line; p++) {
        if (*p == '\n') {
            if (p[1] != '\0') { /* DETAIL / HINT lines follow */
                line[n++] = ';';
                line[n++] = ' ';
            }
        } else if (*p != '\r') {
            line[n++] = *p;
        }
    }
    line[n] = '\0';
    ee__log(lg, level, module, "%s", line);
}

void ee__log(const ee__logger *lg, ee_log_level level, const char *module,
             const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ee__logv(lg, level, module, fmt, ap);
    va_end(ap);
}
