/* Log delivery: format, redact, hand to the host's callback. */
#include "core.h"

#include <stdio.h>
#include <string.h>

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
