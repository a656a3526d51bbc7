/*
 * lib/core/config_options.h - every configuration option, once.
 *
 * XX(name, type, default, min, max, description)
 *   name     the option's key and its environment variable
 *   type     an opt_type from config.c
 *   default  text form of the default, or NULL for none
 *   min/max  numeric range (for text types: min/max length in bytes)
 */
#ifndef EE_CORE_CONFIG_OPTIONS_H
#define EE_CORE_CONFIG_OPTIONS_H

#define EE__MAX_TEXT 4096
#define EE__MAX_URL 2048

#ifndef EE_DATA_DIR_DEFAULT
#define EE_DATA_DIR_DEFAULT "/usr/local/share/execengine"
/* Options that are parsed, listed and checked but have no effect yet: the
 * execution, notification and billing work gives them their effect. The
 * options listing shows them with "inEffect": false. */
#define EE__CONFIG_NOT_YET_IN_EFFECT(X)                                                            \
    X(N8N_WEBHOOK_URL) X(SMTP_HOST) X(SMTP_PORT) X(SMTP_USER) X(SMTP_PASS)                        \
    X(RESULT_RETENTION_DAYS) X(PLATFORM_API_MARKUP_PERCENTAGE) X(FREE_TIER_MONTHLY_ALLOWANCE)

#endif

#define EE__CONFIG_OPTIONS(XX)                                                                    \
    XX(N8N_BASE_URL, OPT_URL, "http://127.0.0.1:5678", 1, EE__MAX_URL,                            \
       "Base URL of the n8n instance (its REST API and webhooks live below it)")                  \
    XX(N8N_API_KEY, OPT_KEY, NULL, 1, EE__MAX_TEXT, "n8n public API key (X-N8N-API-KEY)")         \
    XX(N8N_WEBHOOK_URL, OPT_URL, NULL, 1, EE__MAX_URL,                                             \
       "URL at which the host receives n8n's execution status webhooks")                          \
    XX(OPENROUTER_API_URL, OPT_URL, "https://openrouter.ai/api/v1", 1, EE__MAX_URL,                \
       "OpenRouter API base URL (key validation, model prices)")                                   \
    XX(OPENROUTER_APP_NAME, OPT_STRING, "libexecengine", 1, 256,                                   \
       "Application name sent to OpenRouter (X-Title)")                                            \
    XX(OPENROUTER_APP_URL, OPT_URL, NULL, 1, EE__MAX_URL,                                          \
       "Application URL sent to OpenRouter (HTTP-Referer)")                                        \
    XX(PLATFORM_OPENROUTER_API_KEY, OPT_KEY, NULL, 1, EE__MAX_TEXT,                                \
       "Platform-funded OpenRouter key (seed 1 name)")                                             \
    XX(PLATFORM_OPENROUTER_KEY, OPT_KEY, NULL, 1, EE__MAX_TEXT,                                    \
       "Platform-funded OpenRouter key (seed 2 name; either may be used)")                        \
    XX(PLATFORM_SERPER_KEY, OPT_KEY, NULL, 1, EE__MAX_TEXT, "Platform Serper API key")            \
    XX(PLATFORM_FIRECRAWL_KEY, OPT_KEY, NULL, 1, EE__MAX_TEXT, "Platform FireCrawl API key")      \
    XX(PLATFORM_RESEND_KEY, OPT_KEY, NULL, 1, EE__MAX_TEXT, "Platform Resend API key")            \
    XX(PLATFORM_FROM_EMAIL, OPT_EMAIL, NULL, 3, 254, "Sender address for platform email")         \
    XX(PLATFORM_BRAVE_KEY, OPT_KEY, NULL, 1, EE__MAX_TEXT, "Platform Brave Search API key")       \
    XX(PLATFORM_TAVILY_KEY, OPT_KEY, NULL, 1, EE__MAX_TEXT, "Platform Tavily API key")            \
    XX(PLATFORM_YOUTUBE_KEY, OPT_KEY, NULL, 1, EE__MAX_TEXT, "Platform YouTube Data API key")     \
    XX(API_KEY_ENCRYPTION_SECRET, OPT_PASSWORD, NULL, 32, EE__MAX_TEXT,                            \
       "Secret from which credential encryption keys are derived (at least 32 bytes)")            \
    XX(FLOWISE_SECRETKEY_OVERWRITE, OPT_PASSWORD, NULL, 32, EE__MAX_TEXT,                          \
       "Another name for API_KEY_ENCRYPTION_SECRET (seed 2 name); if both are set they must be "  \
       "equal")                                                                                    \
    XX(API_KEY_ENCRYPTION_PREVIOUS_SECRETS, OPT_PASSWORD, NULL, 32, EE__MAX_TEXT,                  \
       "Previous encryption secrets, comma-separated (each at least 32 bytes), still read "       \
       "during a key rotation")                                                                    \
    XX(SMTP_HOST, OPT_HOST, NULL, 1, 253, "SMTP server for emailing results")                     \
    XX(SMTP_PORT, OPT_INT, "587", 1, 65535, "SMTP server port")                                   \
    XX(SMTP_USER, OPT_STRING, NULL, 1, 256, "SMTP user name")                                     \
    XX(SMTP_PASS, OPT_PASSWORD, NULL, 1, 1024, "SMTP password")                                    \
    XX(MAX_EXECUTIONS_PER_USER_PER_HOUR, OPT_INT, "50", 0, 1000000000,                             \
       "Default per-user limit of executions in any 60-minute window")                            \
    XX(MAX_CONCURRENT_EXECUTIONS, OPT_INT, "10", 1, 1000000,                                       \
       "Default cap of executions running at once per workspace")                                 \
    XX(RESULT_RETENTION_DAYS, OPT_INT, "90", 0, 36500,                                             \
       "Days execution results are kept (0 keeps them forever)")                                  \
    XX(SCHEMA_FORMAT_ASSERT, OPT_INT, "1", 0, 1,                                                   \
       "1: input schemas' \"format\" (email, date-time, uri ...) is checked; 0: annotation only")  \
    XX(PLATFORM_API_MARKUP_PERCENTAGE, OPT_PERCENT, "20", 0, 100000,                               \
       "Markup on platform-key usage, percent (up to 2 decimals; range in basis points)")         \
    XX(FREE_TIER_MONTHLY_ALLOWANCE, OPT_MONEY, "10", 0, INT64_C(1000000000000000),                 \
       "Free platform usage per workspace per month, USD (up to 9 decimals)")                     \
    XX(BILLING_CYCLE_DAY, OPT_INT, "1", 1, 28, "Day of the month billing periods start")          \
    XX(EE_STORAGE_URI, OPT_STORAGE_URI, NULL, 1, EE__MAX_URL,                                      \
       "Storage: sqlite:///path/file.db, postgres://..., memory: (default: sqlite file under "     \
       "$XDG_DATA_HOME/execengine, else ~/.local/share/execengine)")                               \
    XX(DATABASE_TYPE, OPT_DB_TYPE, "sqlite", 1, 16,                                                \
       "Storage when EE_STORAGE_URI is not set (seed 2 name): sqlite or postgres")                \
    XX(DATABASE_PATH, OPT_PATH, NULL, 1, 1024,                                                     \
       "Directory of the SQLite file database.sqlite (DATABASE_TYPE=sqlite; default: the "        \
       "default storage file)")                                                                    \
    XX(DATABASE_HOST, OPT_HOST, NULL, 1, 253, "PostgreSQL host (DATABASE_TYPE=postgres; "          \
       "default: localhost)")                                                                      \
    XX(DATABASE_PORT, OPT_INT, "5432", 1, 65535, "PostgreSQL port (DATABASE_TYPE=postgres)")       \
    XX(DATABASE_NAME, OPT_STRING, NULL, 1, 63,                                                     \
       "PostgreSQL database name (DATABASE_TYPE=postgres)")                                        \
    XX(DATABASE_USER, OPT_STRING, NULL, 1, 256, "PostgreSQL user (DATABASE_TYPE=postgres)")        \
    XX(DATABASE_PASSWORD, OPT_PASSWORD, NULL, 1, 1024,                                             \
       "PostgreSQL password (DATABASE_TYPE=postgres)")                                             \
    XX(EE_COUNTERS_URI, OPT_COUNTERS_URI, NULL, 1, EE__MAX_URL,                                    \
       "Counters: storage: (the storage database), redis://host:port/db, memory: (one process "    \
       "only: locks the storage); default: storage: when the storage is a file or PostgreSQL, "    \
       "else memory:")                                                                             \
    XX(EE_DATA_DIR, OPT_PATH, EE_DATA_DIR_DEFAULT, 1, EE__MAX_URL,                                  \
       "Directory of the editable data files (integrations.json, prices.json, cost_rules.json, "   \
       "categories.json, plans.json); unset: the installed share/execengine when it has the "     \
       "file, else the copy built into the library")

/* Options that are parsed, listed and checked but have no effect yet: the
 * execution, notification and billing work gives them their effect. The
 * options listing shows them with "inEffect": false. */
#define EE__CONFIG_NOT_YET_IN_EFFECT(X)                                                            \
    X(N8N_WEBHOOK_URL) X(SMTP_HOST) X(SMTP_PORT) X(SMTP_USER) X(SMTP_PASS)                        \
    X(RESULT_RETENTION_DAYS) X(PLATFORM_API_MARKUP_PERCENTAGE) X(FREE_TIER_MONTHLY_ALLOWANCE)

#endif
