/*
 * ee_config: options named by their environment variables, validated when
 * set, listed from one table (config_options.h).
 */
#include "core.h"
#include "config_options.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

typedef enum {
    OPT_STRING,
    OPT_HOST,
    OPT_URL,
    OPT_EMAIL,
    OPT_KEY,      /* secret; a summary may show its last four characters */
    OPT_PASSWORD, /* secret; a summary shows only whether it is set */
    OPT_INT,
    OPT_MONEY,    /* USD text, nano-USD value */
    OPT_PERCENT,  /* percent text, basis-point value */
    OPT_STORAGE_URI,
    OPT_COUNTERS_URI,
    OPT_PATH,     /* a filesystem path */
    OPT_DB_TYPE   /* DATABASE_TYPE: sqlite or postgres */
} opt_type;

typedef struct {
    const char *name;
    opt_type type;
    const char *def;
    int64_t min, max;
    const char *desc;
} opt_def;

static const opt_def options[] = {
#define EE__OPT_DEF(n, t, d, lo, hi, desc) {#n, t, d, lo, hi, desc},
    EE__CONFIG_OPTIONS(EE__OPT_DEF)
#undef EE__OPT_DEF
};

enum { OPT_COUNT = sizeof options / sizeof options[0] };

typedef struct {
    bool set;   /* set explicitly (not the default) */
    char *text; /* text types: the value (secrets wiped on free) */
    int64_t num;
} opt_value;

struct ee_config {
    opt_value v[OPT_COUNT];
    ee_clock_fn clock;
    void *clock_payload;
    ee__logger log;
};

static const char *const type_names[] = {
    [OPT_STRING] = "string",   [OPT_HOST] = "host",       [OPT_URL] = "url",
    [OPT_EMAIL] = "email",     [OPT_KEY] = "secret-key",  [OPT_PASSWORD] = "secret",
    [OPT_INT] = "integer",     [OPT_MONEY] = "money-usd", [OPT_PERCENT] = "percent",
    [OPT_STORAGE_URI] = "storage-uri", [OPT_COUNTERS_URI] = "counters-uri", [OPT_PATH] = "path",
    [OPT_DB_TYPE] = "database-type",
};

static const char *const not_yet_in_effect[] = {
#define EE__OPT_NAME(n) #n,
    EE__CONFIG_NOT_YET_IN_EFFECT(EE__OPT_NAME)
#undef EE__OPT_NAME
};

static bool in_effect(const char *name)
{
    for (size_t i = 0; i < sizeof not_yet_in_effect / sizeof not_yet_in_effect[0]; i++)
        if (strcmp(not_yet_in_effect[i], name) == 0)
            return false;
    return true;
}

static bool is_secret(opt_type t) { return t == OPT_KEY || t == OPT_PASSWORD; }
static bool is_numeric(opt_type t) { return t == OPT_INT || t == OPT_MONEY || t == OPT_PERCENT; }

static int find_option(const char *name)
{
    for (int i = 0; i < OPT_COUNT; i++)
        if (strcmp(options[i].name, name) == 0)
            return i;
    return -1;
}

static void value_clear(const opt_def *d, opt_value *v)
{
    if (is_secret(d->type))
        ee__secret_free(v->text);
    else
        free(v->text);
    *v = (opt_value){0};
}

/* ---- validation --------------------------------------------------------- */

static bool has_prefix_ci(const char *s, const char *prefix)
{
    return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

static bool has_control(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

static const char *check_url(const char *s)
{
    const char *rest = has_prefix_ci(s, "http://") ? s + 7 : has_prefix_ci(s, "https://") ? s + 8 : NULL;
    if (rest == NULL)
        return "expected an http:// or https:// URL";
    if (*rest == '\0' || *rest == '/' || strchr(s, ' ') != NULL)
        return "expected a URL with a host and no spaces";
    return NULL;
}

static const char *check_host(const char *s)
{
    for (const char *p = s; *p; p++)
        if (!(((*p | 0x20) >= 'a' && (*p | 0x20) <= 'z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '-' || *p == ':' || *p == '[' || *p == ']'))
            return "expected a host name or IP address";
    return NULL;
}

static const char *check_email(const char *s)
{
    const char *at = strchr(s, '@');
    if (at == NULL || at == s || at[1] == '\0' || strchr(at + 1, '@') != NULL ||
        strchr(s, ' ') != NULL || strchr(at + 1, '.') == NULL)
        return "expected an email address such as noreply@example.com";
    return NULL;
}

static const char *check_storage_uri(const char *s)
{
    if (strcmp(s, "memory:") == 0)
        return NULL;
    if ((has_prefix_ci(s, "sqlite://") && s[9] != '\0') ||
        (has_prefix_ci(s, "postgres://") && s[11] != '\0') ||
        (has_prefix_ci(s, "postgresql://") && s[13] != '\0'))
        return NULL;
    return "unknown storage URI: expected sqlite:///path/file.db, postgres://... or memory:";
}

static const char *check_counters_uri(const char *s)
{
    if (strcmp(s, "memory:") == 0 || strcmp(s, "storage:") == 0)
        return NULL;
    if (has_prefix_ci(s, "redis://") && s[8] != '\0')
        return NULL;
    return "unknown counters URI: expected memory:, storage: or redis://host:port/db";
}

static const char *check_db_type(const char *s)
{
    if (strcasecmp(s, "sqlite") == 0 || strcasecmp(s, "postgres") == 0)
        return NULL;
    if (strcasecmp(s, "mysql") == 0 || strcasecmp(s, "mariadb") == 0)
        return "MySQL and MariaDB are not supported: the supported database types are sqlite "
               "and postgres";
    return "expected a database type: sqlite or postgres";
}

static const char *check_text(const opt_def *d, const char *s)
{
    switch (d->type) {
    case OPT_URL: return check_url(s);
    case OPT_HOST: return check_host(s);
    case OPT_EMAIL: return check_email(s);
    case OPT_STORAGE_URI: return check_storage_uri(s);
    case OPT_COUNTERS_URI: return check_counters_uri(s);
    case OPT_DB_TYPE: return check_db_type(s);
    default: return NULL;
    }
}

/* What of a rejected value may be quoted back. A value may be a password
 * put in the wrong variable or a URI with its userinfo, so only what the
 * option's type makes safe is shown: a number that is only digits and
 * signs, a URI's scheme, host and port (ee__uri_skeleton), an email's
 * domain. Anything else, and any value of a secret option, is not quoted. */
static bool safe_view(const opt_def *d, const char *text, char *out, size_t cap)
{
    size_t len = strlen(text);
    switch (d->type) {
    case OPT_INT:
    case OPT_MONEY:
    case OPT_PERCENT:
        if (len == 0 || len > 40 || strspn(text, "0123456789.+- ") != len)
            return false;
        ee__quote_for_message(text, out, cap);
        return true;
    case OPT_URL:
    case OPT_STORAGE_URI:
    case OPT_COUNTERS_URI:
        return ee__uri_skeleton(text, out, cap);
    case OPT_EMAIL: {
        const char *at = strrchr(text, '@');
        if (at == NULL || at[1] == '\0' || strlen(at) > 64 ||
            strspn(at + 1, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") !=
                strlen(at + 1))
            return false;
        char buf[80];
        snprintf(buf, sizeof buf, "...%s", at);
        ee__quote_for_message(buf, out, cap);
        return true;
    }
    default:
        return false;
    }
}

static ee_status bad_value(const opt_def *d, const char *origin, const char *why, const char *text)
{
    char quoted[80];
    if (is_secret(d->type) || text == NULL || !safe_view(d, text, quoted, sizeof quoted))
        return ee__error(EE_EINVAL, "%s %s: %s", origin, d->name, why);
    return ee__error(EE_EINVAL, "%s %s: %s, got \"%s\"", origin, d->name, why, quoted);
}

static ee_status parse_text(const opt_def *d, const char *origin, const char *text, opt_value *out)
{
    size_t len = strlen(text);
    if (len > EE__MAX_TEXT)
        return ee__error(EE_ETOOBIG, "%s %s: value is %zu bytes, the limit is %d", origin,
                         d->name, len, EE__MAX_TEXT);
    char why[96];
    if ((int64_t)len < d->min || (int64_t)len > d->max) {
        snprintf(why, sizeof why, "must be %lld to %lld bytes long", (long long)d->min,
                 (long long)d->max);
        return bad_value(d, origin, why, text);
    }
    if (has_control(text) || !ee__utf8_valid(text, len))
        return bad_value(d, origin, "must be UTF-8 text without control characters", NULL);
    const char *problem = check_text(d, text);
    if (problem != NULL)
        return bad_value(d, origin, problem, text);
    out->text = is_secret(d->type) ? ee__secret_dup(text) : strdup(text);
    if (out->text == NULL)
        return ee__error(EE_ENOMEM, "out of memory setting %s", d->name);
    return EE_OK;
}

static ee_status check_range(const opt_def *d, const char *origin, int64_t n, const char *text)
{
    if (n >= d->min && n <= d->max)
        return EE_OK;
    char why[128], lo[32], hi[32];
    int scale = d->type == OPT_MONEY ? 9 : d->type == OPT_PERCENT ? 2 : 0;
    ee__decimal_format(d->min, scale, lo);
    ee__decimal_format(d->max, scale, hi);
    snprintf(why, sizeof why, "out of range: expected %s to %s", lo, hi);
    if (text != NULL)
        return bad_value(d, origin, why, text);
    return ee__error(EE_EINVAL, "%s %s: %s, got %lld", origin, d->name, why, (long long)n);
}

static ee_status parse_number(const opt_def *d, const char *origin, const char *text, opt_value *out)
{
    int64_t n;
    ee_status st;
    const char *expect;
    if (d->type == OPT_INT) {
        st = ee__int_parse(text, &n);
        expect = "expected a whole number";
    } else if (d->type == OPT_MONEY) {
        st = ee__decimal_parse(text, 9, &n);
        expect = "expected a non-negative amount of US dollars with at most 9 decimals";
    } else {
        st = ee__decimal_parse(text, 2, &n);
        expect = "expected a non-negative percentage with at most 2 decimals";
    }
    if (st != EE_OK)
        return bad_value(d, origin, expect, text);
    if ((st = check_range(d, origin, n, text)) != EE_OK)
        return st;
    out->num = n;
    return EE_OK;
}

/* Parse `text` for option `i` and, on success, replace its value. */
static ee_status set_from_text(ee_config *cfg, int i, const char *origin, const char *text, bool set)
{
    const opt_def *d = &options[i];
    opt_value nv = {.set = set};
    ee_status st = is_numeric(d->type) ? parse_number(d, origin, text, &nv)
                                       : parse_text(d, origin, text, &nv);
    if (st != EE_OK)
        return st;
    value_clear(d, &cfg->v[i]);
    cfg->v[i] = nv;
    return EE_OK;
}

/* ---- lifecycle ----------------------------------------------------------- */

static char *default_storage_uri(void)
{
    const char *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
    char buf[EE__MAX_URL];
    if (xdg != NULL && xdg[0] == '/')
        snprintf(buf, sizeof buf, "sqlite://%s/execengine/execengine.db", xdg);
    else if (home != NULL && home[0] == '/')
        snprintf(buf, sizeof buf, "sqlite://%s/.local/share/execengine/execengine.db", home);
    else
        snprintf(buf, sizeof buf, "sqlite://execengine.db");
    return strdup(buf);
}

static ee_status load_defaults(ee_config *cfg)
{
    for (int i = 0; i < OPT_COUNT; i++) {
        if (options[i].def == NULL)
            continue;
        if (set_from_text(cfg, i, "default of", options[i].def, false) != EE_OK)
            return EE_ENOMEM; /* defaults are valid by construction */
    }
    int s = find_option("EE_STORAGE_URI");
    cfg->v[s].text = default_storage_uri();
    return cfg->v[s].text ? EE_OK : EE_ENOMEM;
}

ee_status ee_config_new(ee_config **out)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee_config_new: out is NULL");
    *out = NULL;
    ee_config *cfg = calloc(1, sizeof *cfg);
    if (cfg == NULL)
        return ee__error(EE_ENOMEM, "out of memory creating a config");
    cfg->clock = ee__clock_system_ms;
    if (load_defaults(cfg) != EE_OK) {
        ee_config_free(cfg);
        return ee__error(EE_ENOMEM, "out of memory creating a config");
    }
    *out = cfg;
    return EE_OK;
}

void ee_config_free(ee_config *cfg)
{
    if (cfg == NULL)
        return;
    for (int i = 0; i < OPT_COUNT; i++)
        value_clear(&options[i], &cfg->v[i]);
    free(cfg);
}

ee_status ee_config_copy(ee_config **out, const ee_config *cfg)
{
    if (out != NULL)
        *out = NULL;
    if (out == NULL || cfg == NULL)
        return ee__error(EE_EINVAL, "ee_config_copy: NULL argument");
    ee_config *c = calloc(1, sizeof *c);
    if (c == NULL)
        return ee__error(EE_ENOMEM, "out of memory copying a config");
    *c = *cfg;
    for (int i = 0; i < OPT_COUNT; i++) {
        const char *t = cfg->v[i].text;
        c->v[i].text = t == NULL ? NULL : is_secret(options[i].type) ? ee__secret_dup(t) : strdup(t);
        if (t != NULL && c->v[i].text == NULL) {
            for (int k = i + 1; k < OPT_COUNT; k++)
                c->v[k].text = NULL;
            ee_config_free(c);
            return ee__error(EE_ENOMEM, "out of memory copying a config");
        }
    }
    *out = c;
    return EE_OK;
}

/* ---- setters and getters -------------------------------------------------- */

static int lookup(const ee_config *cfg, const char *key, const char *fn)
{
    if (cfg == NULL || key == NULL) {
        ee__error(EE_EINVAL, "%s: NULL argument", fn);
        return -1;
    }
    int i = find_option(key);
    if (i < 0) {
        char quoted[80];
        ee__quote_for_message(key, quoted, sizeof quoted);
        ee__error(EE_EINVAL, "%s: unknown option \"%s\" (ee_config_options_json() lists them)",
                  fn, quoted);
    }
    return i;
}

ee_status ee_config_set(ee_config *cfg, const char *key, const char *value)
{
    int i = lookup(cfg, key, "ee_config_set");
    if (i < 0)
        return EE_EINVAL;
    if (value == NULL)
        return ee__error(EE_EINVAL, "option %s: value is NULL (use ee_config_unset)", key);
    return set_from_text(cfg, i, "option", value, true);
}

ee_status ee_config_set_int64(ee_config *cfg, const char *key, int64_t value)
{
    int i = lookup(cfg, key, "ee_config_set_int64");
    if (i < 0)
        return EE_EINVAL;
    const opt_def *d = &options[i];
    if (!is_numeric(d->type))
        return ee__error(EE_EINVAL, "option %s: is a %s, not a number", key, type_names[d->type]);
    ee_status st = check_range(d, "option", value, NULL);
    if (st != EE_OK)
        return st;
    cfg->v[i].num = value;
    cfg->v[i].set = true;
    return EE_OK;
}

ee_status ee_config_unset(ee_config *cfg, const char *key)
{
    int i = lookup(cfg, key, "ee_config_unset");
    if (i < 0)
        return EE_EINVAL;
    value_clear(&options[i], &cfg->v[i]);
    if (strcmp(key, "EE_STORAGE_URI") == 0) {
        cfg->v[i].text = default_storage_uri();
        return cfg->v[i].text ? EE_OK : ee__error(EE_ENOMEM, "out of memory");
    }
    if (options[i].def != NULL)
        return set_from_text(cfg, i, "default of", options[i].def, false);
    return EE_OK;
}

static ee_status load_one(ee_config *cfg, int i, const char *value)
{
    if (value == NULL || value[0] == '\0')
        return EE_OK;
    return set_from_text(cfg, i, "environment variable", value, true);
}

ee_status ee_config_load_env(ee_config *cfg)
{
    if (cfg == NULL)
        return ee__error(EE_EINVAL, "ee_config_load_env: cfg is NULL");
    for (int i = 0; i < OPT_COUNT; i++) {
        ee_status st = load_one(cfg, i, getenv(options[i].name));
        if (st != EE_OK)
            return st;
    }
    return EE_OK;
}

ee_status ee_config_load_envp(ee_config *cfg, const char *const *envp)
{
    if (cfg == NULL || envp == NULL)
        return ee__error(EE_EINVAL, "ee_config_load_envp: NULL argument");
    for (; *envp != NULL; envp++) {
        const char *eq = strchr(*envp, '=');
        if (eq == NULL)
            continue;
        for (int i = 0; i < OPT_COUNT; i++) {
            size_t n = strlen(options[i].name);
            if ((size_t)(eq - *envp) != n || strncmp(*envp, options[i].name, n) != 0)
                continue;
            ee_status st = load_one(cfg, i, eq + 1);
            if (st != EE_OK)
                return st;
        }
    }
    return EE_OK;
}

ee_status ee_config_get_int64(const ee_config *cfg, const char *key, int64_t *out)
{
    int i = lookup(cfg, key, "ee_config_get_int64");
    if (i < 0)
        return EE_EINVAL;
    if (out == NULL || !is_numeric(options[i].type))
        return ee__error(EE_EINVAL, "option %s: %s", key,
                         out == NULL ? "out is NULL" : "is not a number");
    *out = cfg->v[i].num;
    return EE_OK;
}

ee_status ee_config_get_string(const ee_config *cfg, const char *key, char **out)
{
    int i = lookup(cfg, key, "ee_config_get_string");
    if (i < 0)
        return EE_EINVAL;
    const opt_def *d = &options[i];
    if (out == NULL || is_numeric(d->type))
        return ee__error(EE_EINVAL, "option %s: %s", key,
                         out == NULL ? "out is NULL" : "is a number (ee_config_get_int64)");
    *out = NULL;
    if (is_secret(d->type))
        return ee__error(EE_EPERM, "option %s is a secret and cannot be read back", key);
    if (cfg->v[i].text == NULL)
        return EE_OK;
    *out = ee__uri_masked(cfg->v[i].text);
    return *out ? EE_OK : ee__error(EE_ENOMEM, "out of memory reading %s", key);
}

ee_status ee_config_is_set(const ee_config *cfg, const char *key, int *out)
{
    int i = lookup(cfg, key, "ee_config_is_set");
    if (i < 0)
        return EE_EINVAL;
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee_config_is_set: out is NULL");
    *out = cfg->v[i].set ? 1 : 0;
    return EE_OK;
}

ee_status ee_config_set_clock(ee_config *cfg, ee_clock_fn fn, void *payload)
{
    if (cfg == NULL)
        return ee__error(EE_EINVAL, "ee_config_set_clock: cfg is NULL");
    cfg->clock = fn ? fn : ee__clock_system_ms;
    cfg->clock_payload = fn ? payload : NULL;
    return EE_OK;
}

ee_status ee_config_set_log(ee_config *cfg, ee_log_fn fn, ee_log_level min_level, void *payload)
{
    if (cfg == NULL)
        return ee__error(EE_EINVAL, "ee_config_set_log: cfg is NULL");
    if ((int)min_level < EE_LOG_ERROR || (int)min_level > EE_LOG_DEBUG)
        return ee__error(EE_EINVAL, "ee_config_set_log: log level %d out of range", (int)min_level);
    cfg->log = (ee__logger){fn, min_level, payload};
    return EE_OK;
}

/* ---- JSON views -------------------------------------------------------------- */

static json_t *scaled_json(int64_t n, int scale, const char *int_key, const char *text_key)
{
    char buf[32];
    ee__decimal_format(n, scale, buf);
    return json_pack("{s:I, s:s}", int_key, (json_int_t)n, text_key, buf);
}

static json_t *secret_json(const opt_def *d, const char *text)
{
    size_t len = text ? strlen(text) : 0;
    if (d->type == OPT_KEY && len >= 16) {
        /* the last four characters, not bytes: a byte cut would split a
         * UTF-8 sequence and the summary would not be JSON */
        const char *tail = ee__utf8_tail(text, len, 4);
        if (tail != NULL)
            return json_pack("{s:b, s:s+}", "set", 1, "last4", "\xe2\x80\xa6", tail);
    }
    return json_pack("{s:b}", "set", text != NULL);
}

static json_t *value_json(const opt_def *d, const opt_value *v)
{
    switch (d->type) {
    case OPT_INT: return json_integer(v->num);
    case OPT_MONEY: return scaled_json(v->num, 9, "nanoUsd", "usd");
    case OPT_PERCENT: return scaled_json(v->num, 2, "basisPoints", "percent");
    case OPT_KEY:
    case OPT_PASSWORD: return secret_json(d, v->text);
    default: break;
    }
    if (v->text == NULL)
        return json_null();
    char *masked = ee__uri_masked(v->text);
    json_t *j = masked ? json_string(masked) : NULL;
    free(masked);
    return j;
}

ee_status ee_config_summary_json(const ee_config *cfg, char **out)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee_config_summary_json: out is NULL");
    if (cfg == NULL)
        return ee__error_out(out, ee__error(EE_EINVAL, "ee_config_summary_json: cfg is NULL"));
    return ee__json_out(out, ee__config_summary(cfg));
}

json_t *ee__config_summary(const ee_config *cfg)
{
    json_t *doc = json_object();
    for (int i = 0; doc != NULL && i < OPT_COUNT; i++)
        if (json_object_set_new(doc, options[i].name, value_json(&options[i], &cfg->v[i])) != 0) {
            json_decref(doc);
            doc = NULL;
        }
    return doc;
}

static json_t *option_json(const opt_def *d)
{
    json_t *o = json_pack("{s:s, s:s, s:s?, s:b, s:b, s:s}", "name", d->name, "type",
                          type_names[d->type], "default", is_secret(d->type) ? NULL : d->def,
                          "secret", is_secret(d->type), "inEffect", in_effect(d->name),
                          "description", d->desc);
    if (o != NULL && is_numeric(d->type)) {
        json_object_set_new(o, "min", json_integer(d->min));
        json_object_set_new(o, "max", json_integer(d->max));
    }
    return o;
}

ee_status ee_config_options_json(char **out)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee_config_options_json: out is NULL");
    json_t *arr = json_array();
    for (int i = 0; arr != NULL && i < OPT_COUNT; i++)
        if (json_array_append_new(arr, option_json(&options[i])) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    return ee__json_out(out, arr);
}

/* ---- resolving names the seeds use ----------------------------------------------- */

static const char *const database_vars[] = {
    "DATABASE_TYPE", "DATABASE_PATH", "DATABASE_HOST",    "DATABASE_PORT",
    "DATABASE_NAME", "DATABASE_USER", "DATABASE_PASSWORD",
};

static const opt_value *value_of(const ee_config *cfg, const char *name)
{
    return &cfg->v[find_option(name)];
}

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
    const char *host = value_of(cfg, "DATABASE_HOST")->text;
    const char *name = value_of(cfg, "DATABASE_NAME")->text;
    const char *user = value_of(cfg, "DATABASE_USER")->text;
    const char *pass = value_of(cfg, "DATABASE_PASSWORD")->text;
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
                 (long long)value_of(cfg, "DATABASE_PORT")->num);
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
        if (value_of(cfg, database_vars[i])->set)
            first = database_vars[i];
    if (first == NULL)
        return EE_OK;
    int u = find_option("EE_STORAGE_URI");
    if (cfg->v[u].set)
        return ee__error(EE_EINVAL, "EE_STORAGE_URI and %s are both set: give the storage either "
                                    "as EE_STORAGE_URI or with the DATABASE_* variables, not both",
                         first);
    const char *type = value_of(cfg, "DATABASE_TYPE")->text;
    bool pg = strcasecmp(type, "postgres") == 0;
    /* A variable the chosen type does not use is refused, not ignored. */
    for (size_t i = 1; i < sizeof database_vars / sizeof database_vars[0]; i++) {
        bool for_sqlite = i == 1;
        if (value_of(cfg, database_vars[i])->set && for_sqlite == pg)
            return ee__error(EE_EINVAL, "%s applies to DATABASE_TYPE=%s, but DATABASE_TYPE is %s%s",
                             database_vars[i], for_sqlite ? "sqlite" : "postgres",
                             pg ? "postgres" : "sqlite",
                             value_of(cfg, "DATABASE_TYPE")->set ? "" : " (its default)");
    }
    const char *dir = value_of(cfg, "DATABASE_PATH")->text;
    if (!pg && dir == NULL)
        return EE_OK; /* the default storage file stays */
    if (!pg && strchr(dir, '?') != NULL)
        return ee__error(EE_EINVAL, "DATABASE_PATH must not contain '?'");
    char *uri = pg ? postgres_uri(cfg) : sqlite_uri(dir);
    if (uri == NULL)
        return ee__error(EE_ENOMEM, "out of memory building the storage URI");
    /* Not marked as set: it is derived, and the config may be resolved again. */
    value_clear(&options[u], &cfg->v[u]);
    cfg->v[u].text = uri;
    return EE_OK;
}

/* FLOWISE_SECRETKEY_OVERWRITE is the encryption secret's other name. */
static ee_status resolve_secret_alias(ee_config *cfg)
{
    int a = find_option("API_KEY_ENCRYPTION_SECRET");
    const char *alias = value_of(cfg, "FLOWISE_SECRETKEY_OVERWRITE")->text;
    if (alias == NULL)
        return EE_OK;
    const char *secret = cfg->v[a].text;
    if (secret != NULL) {
        if (strlen(secret) != strlen(alias) || CRYPTO_memcmp(secret, alias, strlen(alias)) != 0)
            return ee__error(EE_EINVAL, "API_KEY_ENCRYPTION_SECRET and FLOWISE_SECRETKEY_OVERWRITE "
                                        "are both set, to different values: set only one of them");
        return EE_OK;
    }
    cfg->v[a].text = ee__secret_dup(alias);
    return cfg->v[a].text ? EE_OK : ee__error(EE_ENOMEM, "out of memory");
}

ee_status ee__config_resolve(ee_config *cfg)
{
    ee_status st = resolve_secret_alias(cfg);
    return st != EE_OK ? st : resolve_storage(cfg);
}

/* ---- internal accessors ------------------------------------------------------ */

const char *ee__config_text(const ee_config *cfg, const char *key)
{
    int i = find_option(key);
    return i < 0 ? NULL : cfg->v[i].text;
}

int64_t ee__config_int(const ee_config *cfg, const char *key)
{
    int i = find_option(key);
    return i < 0 ? 0 : cfg->v[i].num;
}

void ee__config_clock(const ee_config *cfg, ee_clock_fn *fn, void **payload)
{
    *fn = cfg->clock;
    *payload = cfg->clock_payload;
}

void ee__config_logger(const ee_config *cfg, ee__logger *out)
{
    *out = cfg->log;
}

void ee__config_each_secret(const ee_config *cfg, void (*fn)(const char *, void *), void *payload)
{
    size_t start, len;
    for (int i = 0; i < OPT_COUNT; i++) {
        const char *t = cfg->v[i].text;
        if (t == NULL)
            continue;
        if (is_secret(options[i].type)) {
            fn(t, payload);
        } else if (ee__uri_password(t, &start, &len)) {
            char *pw = strndup(t + start, len);
            if (pw != NULL)
                fn(pw, payload);
            ee__secret_free(pw);
        }
    }
}
