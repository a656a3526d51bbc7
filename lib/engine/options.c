/*
 * The engine's own options - its storage, counters, data directory and n8n
 * client, and the SMTP options the notify module reads (lib/notify/email.c)
 * - and the rule that
 * turns the seeds' DATABASE_* variables into EE_STORAGE_URI.
 */
#include "engine/engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#ifndef EE_DATA_DIR_DEFAULT
#define EE_DATA_DIR_DEFAULT "/usr/local/share/execengine"
#endif

/* The default storage: a SQLite file under the user's data directory. */
static char *default_storage_uri(void)
{
    const char *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
    char buf[EE__OPT_MAX_URL];
    if (xdg != NULL && xdg[0] == '/')
        snprintf(buf, sizeof buf, "sqlite://%s/execengine/execengine.db", xdg);
    else if (home != NULL && home[0] == '/')
        snprintf(buf, sizeof buf, "sqlite://%s/.local/share/execengine/execengine.db", home);
    else
        snprintf(buf, sizeof buf, "sqlite://execengine.db");
    return strdup(buf);
}

static const ee__option engine_options[] = {
    EE__OPTION("N8N_BASE_URL", EE__OPT_URL, "http://127.0.0.1:5678", 1, EE__OPT_MAX_URL,
               "Base URL of the n8n instance (its REST API and webhooks live below it)"),
    EE__OPTION("N8N_API_KEY", EE__OPT_KEY, NULL, 1, EE__OPT_MAX_TEXT,
               "n8n public API key (X-N8N-API-KEY)"),
    EE__OPTION_X("N8N_WEBHOOK_URL", EE__OPT_URL, NULL, 1, EE__OPT_MAX_URL,
                 "URL at which the host receives n8n's execution status webhooks",
                 .not_in_effect = true),
    EE__OPTION("SMTP_HOST", EE__OPT_HOST, NULL, 1, 253,
               "SMTP server for e-mailing results (when set, e-mail goes by SMTP: docs/email.md)"),
    EE__OPTION("SMTP_PORT", EE__OPT_INT, "587", 1, 65535,
               "SMTP server port (465: TLS from the start; others: STARTTLS when offered)"),
    EE__OPTION("SMTP_USER", EE__OPT_STRING, NULL, 1, 256, "SMTP user name"),
    EE__OPTION("SMTP_PASS", EE__OPT_PASSWORD, NULL, 1, 1024, "SMTP password"),
    EE__OPTION("SMTP_REQUIRE_TLS", EE__OPT_INT, NULL, 0, 1,
               "1: an SMTP message is sent only over TLS (STARTTLS must be offered and "
               "succeed); 0: STARTTLS when offered, else in clear (a trusted local relay); "
               "unset: 1 when SMTP_USER is set, else 0"),
    EE__OPTION("RESULT_RETENTION_DAYS", EE__OPT_INT, "90", 0, 36500,
               "Days execution results are kept (0 keeps them forever)"),
    EE__OPTION_X(
        "EE_STORAGE_URI", EE__OPT_STORAGE_URI, NULL, 1, EE__OPT_MAX_URL,
        "Storage: sqlite:///path/file.db, postgres://..., memory: (default: sqlite file under "
        "$XDG_DATA_HOME/execengine, else ~/.local/share/execengine)",
        .default_fn = default_storage_uri),
    EE__OPTION("DATABASE_TYPE", EE__OPT_DB_TYPE, "sqlite", 1, 16,
               "Storage when EE_STORAGE_URI is not set: sqlite or postgres"),
    EE__OPTION("DATABASE_PATH", EE__OPT_PATH, NULL, 1, 1024,
               "Directory of the SQLite file database.sqlite (DATABASE_TYPE=sqlite; default: the "
               "default storage file)"),
    EE__OPTION("DATABASE_HOST", EE__OPT_HOST, NULL, 1, 253,
               "PostgreSQL host (DATABASE_TYPE=postgres; default: localhost)"),
    EE__OPTION("DATABASE_PORT", EE__OPT_INT, "5432", 1, 65535,
               "PostgreSQL port (DATABASE_TYPE=postgres)"),
    EE__OPTION("DATABASE_NAME", EE__OPT_STRING, NULL, 1, 63,
               "PostgreSQL database name (DATABASE_TYPE=postgres)"),
    EE__OPTION("DATABASE_USER", EE__OPT_STRING, NULL, 1, 256,
               "PostgreSQL user (DATABASE_TYPE=postgres)"),
    EE__OPTION("DATABASE_PASSWORD", EE__OPT_PASSWORD, NULL, 1, 1024,
               "PostgreSQL password (DATABASE_TYPE=postgres)"),
    EE__OPTION(
        "EE_COUNTERS_URI", EE__OPT_COUNTERS_URI, NULL, 1, EE__OPT_MAX_URL,
        "Counters: storage: (the storage database), redis://host:port/db, memory: (one process "
        "only: locks the storage); default: storage: when the storage is a file or PostgreSQL, "
        "else memory:"),
    EE__OPTION(
        "EE_DATA_DIR", EE__OPT_PATH, EE_DATA_DIR_DEFAULT, 1, EE__OPT_MAX_URL,
        "Directory of the editable data files (integrations.json, prices.json, cost_rules.json, "
        "categories.json, plans.json); unset: the installed share/execengine when it has the "
        "file, else the copy built into the library"),
};

static const char *const database_vars[] = {
    "DATABASE_TYPE", "DATABASE_PATH", "DATABASE_HOST",    "DATABASE_PORT",
    "DATABASE_NAME", "DATABASE_USER", "DATABASE_PASSWORD",
};


static bool unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_' || c == '~';
}

/* Append s, percent-encoded but for RFC 3986's unreserved characters. */
static char *put_encoded(char *p, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (unreserved(c)) {
            *p++ = (char)c;
        } else {
            *p++ = '%';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 15];
        }
    }
    return p;
}

static size_t len_or_0(const char *s) { return s ? strlen(s) : 0; }

/* postgres://[user[:password]@]host:port[/name], user, password and name
 * percent-encoded (libpq decodes them). */
static char *postgres_uri(const ee_config *cfg)
{
    const char *host = ee__config_text(cfg, "DATABASE_HOST");
    const char *name = ee__config_text(cfg, "DATABASE_NAME");
    const char *user = ee__config_text(cfg, "DATABASE_USER");
    const char *pass = ee__config_text(cfg, "DATABASE_PASSWORD");
    if (host == NULL)
        host = "localhost";
    size_t cap = 32 + strlen(host) + 3 * (len_or_0(name) + len_or_0(user) + len_or_0(pass));
    char *uri = malloc(cap), *p = uri;
    if (uri == NULL)
        return NULL;
    p += sprintf(p, "postgres://");
    if (user != NULL || pass != NULL) {
        p = put_encoded(p, user ? user : "");
        if (pass != NULL) {
            *p++ = ':';
            p = put_encoded(p, pass);
        }
        *p++ = '@';
    }
    bool v6 = strchr(host, ':') != NULL && host[0] != '[';
    p += sprintf(p, "%s%s%s:%lld", v6 ? "[" : "", host, v6 ? "]" : "",
                 (long long)ee__config_int(cfg, "DATABASE_PORT"));
    if (name != NULL) {
        *p++ = '/';
        p = put_encoded(p, name);
    }
    *p = '\0';
    return uri;
}

/* sqlite://<DATABASE_PATH>/database.sqlite: DATABASE_PATH is a directory,
 * as in Flowise. */
static char *sqlite_uri(const char *dir)
{
    size_t n = strlen(dir);
    while (n > 0 && dir[n - 1] == '/')
        n--;
    char *uri = malloc(n + 32);
    if (uri != NULL)
        sprintf(uri, "sqlite://%.*s/database.sqlite", (int)n, dir);
    return uri;
}

static ee_status resolve_storage(ee_config *cfg)
{
    const char *first = NULL;
    for (size_t i = 0; first == NULL && i < sizeof database_vars / sizeof database_vars[0]; i++)
        if (ee__config_explicit(cfg, database_vars[i]))
            first = database_vars[i];
    if (first == NULL)
        return EE_OK;
    if (ee__config_explicit(cfg, "EE_STORAGE_URI"))
        return ee__error(EE_EINVAL, "EE_STORAGE_URI and %s are both set: give the storage either "
                                    "as EE_STORAGE_URI or with the DATABASE_* variables, not both",
                         first);
    const char *type = ee__config_text(cfg, "DATABASE_TYPE");
    bool pg = strcasecmp(type, "postgres") == 0;
    /* A variable the chosen type does not use is refused, not ignored. */
    for (size_t i = 1; i < sizeof database_vars / sizeof database_vars[0]; i++) {
        bool for_sqlite = i == 1;
        if (ee__config_explicit(cfg, database_vars[i]) && for_sqlite == pg)
            return ee__error(EE_EINVAL, "%s applies to DATABASE_TYPE=%s, but DATABASE_TYPE is %s%s",
                             database_vars[i], for_sqlite ? "sqlite" : "postgres",
                             pg ? "postgres" : "sqlite",
                             ee__config_explicit(cfg, "DATABASE_TYPE") ? "" : " (its default)");
    }
    const char *dir = ee__config_text(cfg, "DATABASE_PATH");
    if (!pg && dir == NULL)
        return EE_OK; /* the default storage file stays */
    if (!pg && strchr(dir, '?') != NULL)
        return ee__error(EE_EINVAL, "DATABASE_PATH must not contain '?'");
    char *uri = pg ? postgres_uri(cfg) : sqlite_uri(dir);
    if (uri == NULL)
        return ee__error(EE_ENOMEM, "out of memory building the storage URI");
    /* Not marked as set: it is derived, and the config may be resolved again. */
    return ee__config_derive(cfg, "EE_STORAGE_URI", uri);
}

const ee__module ee__engine_own_module = {
    "engine", engine_options, sizeof engine_options / sizeof engine_options[0], resolve_storage,
    NULL, NULL,
};
