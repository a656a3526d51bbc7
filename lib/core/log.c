/* Log delivery: format, redact, hand to the host's callback. */
#include "core.h"

#include <stdio.h>

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

void ee__log(const ee__logger *lg, ee_log_level level, const char *module,
             const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ee__logv(lg, level, module, fmt, ap);
    va_end(ap);
}
