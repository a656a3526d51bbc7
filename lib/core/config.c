/*
 * ee_config: options named by their environment variables, validated when
 * set, listed from the option set the engine gathers from its modules
 * (lib/engine/options.c). Core names no option.
 */
#include "core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct {
    bool set;   /* set explicitly (not the default) */
    char *text; /* text types: the value (secrets wiped on free) */
    int64_t num;
} opt_value;

struct ee_config {
    const ee__option_set *set;
    opt_value *v; /* one per option of the set */
    ee_clock_fn clock;
    void *clock_payload;
    ee__logger log;
};

static const char *const type_names[] = {
    [EE__OPT_STRING] = "string",
    [EE__OPT_HOST] = "host",
    [EE__OPT_URL] = "url",
    [EE__OPT_EMAIL] = "email",
    [EE__OPT_KEY] = "secret-key",
    [EE__OPT_PASSWORD] = "secret",
    [EE__OPT_INT] = "integer",
    [EE__OPT_MONEY] = "money-usd",
    [EE__OPT_PERCENT] = "percent",
    [EE__OPT_STORAGE_URI] = "storage-uri",
    [EE__OPT_COUNTERS_URI] = "counters-uri",
    [EE__OPT_PATH] = "path",
    [EE__OPT_DB_TYPE] = "database-type",
};

static bool is_secret(ee__opt_type t) { return t == EE__OPT_KEY || t == EE__OPT_PASSWORD; }
static bool is_numeric(ee__opt_type t)
{
    return t == EE__OPT_INT || t == EE__OPT_MONEY || t == EE__OPT_PERCENT;
}

static int option_count(const ee_config *cfg)
{
    return (int)cfg->set->count;
}

static const ee__option *option_at(const ee_config *cfg, int i)
{
    return cfg->set->options[i];
}

static int find_option(const ee_config *cfg, const char *name)
{
    for (int i = 0; i < option_count(cfg); i++)
        if (strcmp(option_at(cfg, i)->name, name) == 0)
            return i;
    return -1;
}

static void value_clear(const ee__option *d, opt_value *v)
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
    const char *rest = has_prefix_ci(s, "http://")    ? s + 7
                       : has_prefix_ci(s, "https://") ? s + 8
                                                      : NULL;
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

/* An address goes into mail headers (From:, To:) and the SMTP envelope as
 * it is, so it must be a plain RFC 5322 addr-spec in ASCII: a dot-atom
 * local part (at most 64 bytes of atext: letters, digits and
 * !#$%&'*+-/=?^_`{|}~, dots between them), '@', and a host name of at
 * least two labels (letters, digits and inner hyphens, 1..63 bytes each).
 * Nothing that ends or adds an address (',', ';', '<', '>', spaces,
 * quotes, comments), no 8-bit bytes (they would need SMTPUTF8), no
 * display name (its encoding is not ours to guess). */
static bool atext(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

static bool addr_spec_ok(const char *s)
{
    const char *at = strchr(s, '@');
    if (at == NULL || at == s || at - s > 64 || strlen(s) > 254)
        return false;
    for (const char *p = s; p < at; p++) {
        if (*p == '.') {
            if (p == s || p + 1 == at || p[1] == '.')
                return false;
        } else if (!atext((unsigned char)*p)) {
            return false;
        }
    }
    size_t labels = 0, len = 0;
    for (const char *p = at + 1;; p++) {
        if (*p == '.' || *p == '\0') {
            if (len == 0 || len > 63 || p[-1] == '-')
                return false;
            labels++;
            len = 0;
            if (*p == '\0')
                break;
            continue;
        }
        unsigned char c = (unsigned char)*p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              (c == '-' && len > 0)))
            return false;
        len++;
    }
    return labels >= 2;
}

static const char *check_email(const char *s)
{
    if (!addr_spec_ok(s))
        return "expected a plain e-mail address such as noreply@example.com (ASCII: "
               "local-part@host.domain, no display name, spaces or <>,;\"()\\)";
    return NULL;
}

bool ee__config_email_ok(const char *s)
{
    return s != NULL && check_email(s) == NULL;
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

/* A secret-key option holds API keys that go into HTTP headers as they
 * are (Authorization, X-N8N-API-KEY), so each key is printable ASCII
 * without spaces (ee__text_token_ok()); 8-bit bytes passed the UTF-8
 * check and reached the header raw. Several keys are comma-separated,
 * read as the platform pool reads them (ee__key_list_next()). */
static const char *check_keys(const char *s)
{
    size_t keys = 0, len;
    for (const char *p = s, *k; (k = ee__key_list_next(&p, &len)) != NULL; keys++)
        if (!ee__text_token_ok(k, len))
            return "expected API keys of printable ASCII without spaces (bytes 0x21 to 0x7E; "
                   "several keys comma-separated)";
    return keys > 0 ? NULL : "expected at least one API key";
}

static const char *check_text(const ee__option *d, const char *s)
{
    switch (d->type) {
    case EE__OPT_KEY: return check_keys(s);
    case EE__OPT_URL: return check_url(s);
    case EE__OPT_HOST: return check_host(s);
    case EE__OPT_EMAIL: return check_email(s);
    case EE__OPT_STORAGE_URI: return check_storage_uri(s);
    case EE__OPT_COUNTERS_URI: return check_counters_uri(s);
    case EE__OPT_DB_TYPE: return check_db_type(s);
    default: return NULL;
    }
}

/* What of a rejected value may be quoted back. A value may be a password
 * put in the wrong variable or a URI with its userinfo, so only what the
 * option's type makes safe is shown: a number that is only digits and
 * signs, a URI's scheme, host and port (ee__uri_skeleton), an email's
 * domain. Anything else, and any value of a secret option, is not quoted. */
static bool safe_view(const ee__option *d, const char *text, char *out, size_t cap)
{
    size_t len = strlen(text);
    switch (d->type) {
    case EE__OPT_INT:
    case EE__OPT_MONEY:
    case EE__OPT_PERCENT:
        if (len == 0 || len > 40 || strspn(text, "0123456789.+- ") != len)
            return false;
        ee__quote_for_message(text, out, cap);
        return true;
    case EE__OPT_URL:
    case EE__OPT_STORAGE_URI:
    case EE__OPT_COUNTERS_URI:
        return ee__uri_skeleton(text, out, cap);
    case EE__OPT_EMAIL: {
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

static ee_status bad_value(const ee__option *d, const char *origin, const char *why,
                           const char *text)
{
    char quoted[80];
    if (is_secret(d->type) || text == NULL || !safe_view(d, text, quoted, sizeof quoted))
        return ee__error(EE_EINVAL, "%s %s: %s", origin, d->name, why);
    return ee__error(EE_EINVAL, "%s %s: %s, got \"%s\"", origin, d->name, why, quoted);
}

static ee_status parse_text(const ee__option *d, const char *origin, const char *text,
                            opt_value *out)
{
    size_t len = strlen(text);
    if (len > EE__OPT_MAX_TEXT)
        return ee__error(EE_ETOOBIG, "%s %s: value is %zu bytes, the limit is %d", origin,
                         d->name, len, EE__OPT_MAX_TEXT);
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

static ee_status check_range(const ee__option *d, const char *origin, int64_t n, const char *text)
{
    if (n >= d->min && n <= d->max)
        return EE_OK;
    char why[128], lo[32], hi[32];
    int scale = d->type == EE__OPT_MONEY ? 9 : d->type == EE__OPT_PERCENT ? 2 : 0;
    ee__decimal_format(d->min, scale, lo);
    ee__decimal_format(d->max, scale, hi);
    snprintf(why, sizeof why, "out of range: expected %s to %s", lo, hi);
    if (text != NULL)
        return bad_value(d, origin, why, text);
    return ee__error(EE_EINVAL, "%s %s: %s, got %lld", origin, d->name, why, (long long)n);
}

static ee_status parse_number(const ee__option *d, const char *origin, const char *text,
                              opt_value *out)
{
    int64_t n;
    ee_status st;
    const char *expect;
    if (d->type == EE__OPT_INT) {
        st = ee__int_parse(text, &n);
        expect = "expected a whole number";
    } else if (d->type == EE__OPT_MONEY) {
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
static ee_status set_from_text(ee_config *cfg, int i, const char *origin, const char *text,
                               bool set)
{
    const ee__option *d = option_at(cfg, i);
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

/* The option's default (computed or written), or NULL when it has none:
 * defaults are valid by construction, so only ENOMEM can fail. */
static ee_status load_default(ee_config *cfg, int i)
{
    const ee__option *d = option_at(cfg, i);
    if (d->default_fn != NULL) {
        cfg->v[i].text = d->default_fn();
        return cfg->v[i].text ? EE_OK : EE_ENOMEM;
    }
    if (d->def == NULL)
        return EE_OK;
    return set_from_text(cfg, i, "default of", d->def, false) != EE_OK ? EE_ENOMEM : EE_OK;
}

static ee_status load_defaults(ee_config *cfg)
{
    for (int i = 0; i < option_count(cfg); i++)
        if (load_default(cfg, i) != EE_OK)
            return EE_ENOMEM;
    return EE_OK;
}

ee_status ee__config_new_over(ee_config **out, const ee__option_set *set)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee_config_new: out is NULL");
    *out = NULL;
    ee_config *cfg = calloc(1, sizeof *cfg);
    if (cfg != NULL) {
        cfg->set = set;
        cfg->v = calloc(set->count ? set->count : 1, sizeof *cfg->v);
    }
    if (cfg == NULL || cfg->v == NULL) {
        free(cfg);
        return ee__error(EE_ENOMEM, "out of memory creating a config");
    }
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
    for (int i = 0; i < option_count(cfg); i++)
        value_clear(option_at(cfg, i), &cfg->v[i]);
    free(cfg->v);
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
    c->v = calloc(cfg->set->count ? cfg->set->count : 1, sizeof *c->v);
    if (c->v == NULL) {
        free(c);
        return ee__error(EE_ENOMEM, "out of memory copying a config");
    }
    memcpy(c->v, cfg->v, cfg->set->count * sizeof *c->v);
    for (int i = 0; i < option_count(cfg); i++) {
        const char *t = cfg->v[i].text;
        c->v[i].text = t == NULL                            ? NULL
                       : is_secret(option_at(cfg, i)->type) ? ee__secret_dup(t)
                                                            : strdup(t);
        if (t != NULL && c->v[i].text == NULL) {
            for (int k = i + 1; k < option_count(cfg); k++)
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
    int i = find_option(cfg, key);
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
    const ee__option *d = option_at(cfg, i);
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
    const ee__option *d = option_at(cfg, i);
    value_clear(d, &cfg->v[i]);
    if (d->default_fn != NULL) {
        cfg->v[i].text = d->default_fn();
        return cfg->v[i].text ? EE_OK : ee__error(EE_ENOMEM, "out of memory");
    }
    if (d->def != NULL)
        return set_from_text(cfg, i, "default of", d->def, false);
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
    for (int i = 0; i < option_count(cfg); i++) {
        ee_status st = load_one(cfg, i, getenv(option_at(cfg, i)->name));
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
        for (int i = 0; i < option_count(cfg); i++) {
            size_t n = strlen(option_at(cfg, i)->name);
            if ((size_t)(eq - *envp) != n || strncmp(*envp, option_at(cfg, i)->name, n) != 0)
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
    if (out == NULL || !is_numeric(option_at(cfg, i)->type))
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
    const ee__option *d = option_at(cfg, i);
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

static json_t *secret_json(const ee__option *d, const char *text)
{
    size_t len = text ? strlen(text) : 0;
    if (d->type == EE__OPT_KEY && len >= 16) {
        /* the last four characters, not bytes: a byte cut would split a
         * UTF-8 sequence and the summary would not be JSON */
        const char *tail = ee__utf8_tail(text, len, 4);
        if (tail != NULL)
            return json_pack("{s:b, s:s+}", "set", 1, "last4", "\xe2\x80\xa6", tail);
    }
    return json_pack("{s:b}", "set", text != NULL);
}

static json_t *value_json(const ee__option *d, const opt_value *v)
{
    switch (d->type) {
    case EE__OPT_INT: return json_integer(v->num);
    case EE__OPT_MONEY: return scaled_json(v->num, 9, "nanoUsd", "usd");
    case EE__OPT_PERCENT: return scaled_json(v->num, 2, "basisPoints", "percent");
    case EE__OPT_KEY:
    case EE__OPT_PASSWORD: return secret_json(d, v->text);
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
    for (int i = 0; doc != NULL && i < option_count(cfg); i++)
        if (json_object_set_new(doc, option_at(cfg, i)->name,
                                value_json(option_at(cfg, i), &cfg->v[i])) != 0) {
            json_decref(doc);
            doc = NULL;
        }
    return doc;
}

static json_t *option_json(const ee__option *d)
{
    json_t *o = json_pack("{s:s, s:s, s:s?, s:b, s:b, s:s}", "name", d->name, "type",
                          type_names[d->type], "default", is_secret(d->type) ? NULL : d->def,
                          "secret", is_secret(d->type), "inEffect", !d->not_in_effect,
                          "description", d->desc);
    if (o != NULL && is_numeric(d->type)) {
        json_object_set_new(o, "min", json_integer(d->min));
        json_object_set_new(o, "max", json_integer(d->max));
    }
    return o;
}

ee_status ee__config_options_json_over(char **out, const ee__option_set *set)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee_config_options_json: out is NULL");
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < set->count; i++)
        if (json_array_append_new(arr, option_json(set->options[i])) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    return ee__json_out(out, arr);
}

/* ---- internal accessors ------------------------------------------------------ */

const char *ee__config_text(const ee_config *cfg, const char *key)
{
    int i = find_option(cfg, key);
    return i < 0 ? NULL : cfg->v[i].text;
}

int64_t ee__config_int(const ee_config *cfg, const char *key)
{
    int i = find_option(cfg, key);
    return i < 0 ? 0 : cfg->v[i].num;
}

bool ee__config_explicit(const ee_config *cfg, const char *key)
{
    int i = find_option(cfg, key);
    return i >= 0 && cfg->v[i].set;
}

ee_status ee__config_derive(ee_config *cfg, const char *key, char *text)
{
    int i = find_option(cfg, key);
    if (i < 0 || is_numeric(option_at(cfg, i)->type)) {
        ee__secret_free(text); /* it may be a secret: wiped either way */
        return ee__error(EE_EINVAL, "cannot derive option %s", key);
    }
    value_clear(option_at(cfg, i), &cfg->v[i]);
    cfg->v[i].text = text;
    return EE_OK;
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
    for (int i = 0; i < option_count(cfg); i++) {
        const char *t = cfg->v[i].text;
        if (t == NULL)
            continue;
        if (is_secret(option_at(cfg, i)->type)) {
            fn(t, payload);
        } else if (ee__uri_password(t, &start, &len)) {
            char *pw = strndup(t + start, len);
            if (pw != NULL)
                fn(pw, payload);
            ee__secret_free(pw);
        }
    }
}
