/*
 * execengine: the operator's command-line tool for libexecengine
 * (docs/cli.md). Git-style subcommands over the public API only
 * (<execengine/execengine.h>) and jansson for the JSON it reads and builds.
 *
 *   execengine [GLOBAL OPTIONS] COMMAND [ARGS] [OPTIONS]
 *
 * Configuration comes from the environment exactly as the library reads it
 * (ee_config_load_env()), plus --db / --data-dir. Output: tables for people
 * by default, --json for scripts (the library's JSON as it answered, or a
 * document built with jansson). Errors go to stderr as "execengine: ...",
 * never with a secret: the library's messages hold none and the tool prints
 * no configuration value itself (config check shows the library's masked
 * summary). Exit codes: one table, exit_of() below.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include <execengine/execengine.h>

/* ---- exit codes ---------------------------------------------------------- */

enum {
    EXIT_OK = 0,
    EXIT_FAIL = 1,        /* the operation failed (anything not below) */
    EXIT_USAGE = 2,       /* bad command line */
    EXIT_NOTFOUND = 3,    /* no such workflow, execution, month ... */
    EXIT_REFUSED = 4,     /* refused by quota, rate, spend cap, concurrency, backlog */
    EXIT_CONFIG = 5,      /* the environment is invalid or the engine cannot open with it */
    EXIT_INPUT = 6,       /* the library rejected an input (validation, parse, size) */
    EXIT_CREDENTIALS = 7, /* the run needs credentials nobody provided */
    EXIT_INTERRUPTED = 130 /* SIGINT while waiting for a run (the run is cancelled) */
};

/* The one map from a library status to the tool's exit code. */
static const struct {
    ee_status status;
    int code;
} EXIT_MAP[] = {
    {EE_OK, EXIT_OK},
    {EE_ENOTFOUND, EXIT_NOTFOUND},
    {EE_EQUOTA, EXIT_REFUSED},
    {EE_ERATELIMIT, EXIT_REFUSED},
    {EE_ESPEND, EXIT_REFUSED},
    {EE_ECONCURRENCY, EXIT_REFUSED},
    {EE_EBUSY, EXIT_REFUSED},
    {EE_EINVAL, EXIT_INPUT},
    {EE_EPARSE, EXIT_INPUT},
    {EE_EVALIDATION, EXIT_INPUT},
    {EE_ETOOBIG, EXIT_INPUT},
    {EE_ECREDENTIALS, EXIT_CREDENTIALS},
};

static int exit_of(ee_status st)
{
    for (size_t i = 0; i < sizeof EXIT_MAP / sizeof EXIT_MAP[0]; i++)
        if (EXIT_MAP[i].status == st)
            return EXIT_MAP[i].code;
    return EXIT_FAIL;
}

static const char EXIT_HELP[] =
    "Exit codes:\n"
    "  0  success\n"
    "  1  the operation failed (n8n or storage error, a run that failed or timed out, ...)\n"
    "  2  usage error (unknown command or option, missing argument, unreadable input file)\n"
    "  3  not found (workflow, execution, billing month)\n"
    "  4  refused by a limit: quota, hourly rate, spend cap, concurrency, full backlog\n"
    "  5  configuration error: the environment is invalid or the engine cannot open with it\n"
    "  6  input rejected by the library (validation, malformed JSON, too big)\n"
    "  7  the run needs credentials that are missing\n"
    "  130 interrupted while waiting (the run was cancelled)\n";

/* ---- limits ----------------------------------------------------------------- */

#define INPUT_FILE_MAX (1024L * 1024L)        /* --input @file: the request limit */
#define IMPORT_FILE_MAX (16L * 1024L * 1024L) /* catalog import FILE */
#define CELL_MAX 40                           /* widest table cell, characters */
#define PAIR_MAX 400                          /* longest "label: value" value */
#define MAX_ARGS 16                           /* positional arguments */
#define MAX_OPTS 32                           /* options given */

/* ---- command line ------------------------------------------------------------ */

typedef struct cli cli;

typedef struct command {
    const char *name;   /* "catalog list" */
    const char *args;   /* usage after the name */
    const char *summary;
    const char *help;   /* options and details */
    const char *const *opts; /* "name" (flag) or "name=" (takes a value) */
    int min_pos, max_pos;
    int (*fn)(cli *c);
} command;

struct cli {
    const command *cmd;
    const char *pos[MAX_ARGS];
    int npos;
    const char *opt_name[MAX_OPTS]; /* into argv: the name's text after "--" */
    size_t opt_len[MAX_OPTS];       /* the name's length (it may go on with "=value") */
    const char *opt_val[MAX_OPTS];
    int nopt;
    int json;
    int verbose;
    ee_engine *engine;
    ee_principal *principal;
    /* serve: arguments after "--" passed through */
    char **rest;
    int nrest;
};

/* Options every command takes. */
static const char *const GLOBAL_OPTS[] = {"json", "db=", "data-dir=", "workspace=", "user=",
                                          "org=", "role=", "verbose", "help", NULL};

static const char GLOBAL_HELP[] =
    "Global options (before or after the command):\n"
    "  --json            machine-readable output (JSON) instead of tables\n"
    "  --db PATH|URI     storage: a SQLite file path or a storage URI (sets EE_STORAGE_URI)\n"
    "  --data-dir DIR    the editable data files (sets EE_DATA_DIR)\n"
    "  --workspace W     the workspace to act for (or EE_CLI_WORKSPACE)\n"
    "  --user U          the user to act as (or EE_CLI_USER; default \"operator\")\n"
    "  --org O           the organisation (or EE_CLI_ORG; default: the workspace)\n"
    "  --role R          admin or user (or EE_CLI_ROLE): admin reads the catalog and the\n"
    "                    audit log as the platform even when a workspace is set\n"
    "  --verbose         the library's informational log lines on stderr\n"
    "  --help            help on the command\n";

static void die_oom(void)
{
    fputs("execengine: out of memory\n", stderr);
    exit(EXIT_FAIL);
}

static void errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void errorf(const char *fmt, ...)
{
    va_list ap;
    fputs("execengine: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static int usage_error(const cli *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int usage_error(const cli *c, const char *fmt, ...)
{
    va_list ap;
    fputs("execengine: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (c != NULL && c->cmd != NULL)
        fprintf(stderr, "usage: execengine %s %s\n(execengine %s --help for more)\n",
                c->cmd->name, c->cmd->args, c->cmd->name);
    else
        fputs("(execengine --help lists the commands)\n", stderr);
    return EXIT_USAGE;
}

/* A library call failed: "execengine: <what>: <message> (EE_X)"; the error
 * document (--json) goes to stdout for scripts. Returns the exit code. */
static int fail(const cli *c, const char *what, ee_status st, const char *doc)
{
    const char *msg = ee_error_last_message();
    if (ee_error_last_status() != (int)st || msg[0] == '\0')
        msg = ee_strerror(st);
    errorf("%s: %s (%s)", what, msg, ee_status_name(st));
    if (c->json && doc != NULL && doc[0] == '{')
        printf("%s\n", doc);
    return exit_of(st);
}

static const char *opt(const cli *c, const char *name)
{
    size_t len = strlen(name);
    for (int i = c->nopt - 1; i >= 0; i--)
        if (c->opt_len[i] == len && strncmp(c->opt_name[i], name, len) == 0)
            return c->opt_val[i] != NULL ? c->opt_val[i] : "";
    return NULL;
}

static int has_opt(const cli *c, const char *name) { return opt(c, name) != NULL; }

/* A non-negative integer option into *out (absent: unchanged). */
static int opt_int(const cli *c, const char *name, long long min, long long max, long long *out)
{
    const char *v = opt(c, name);
    if (v == NULL)
        return 0;
    char *end = NULL;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || n < min || n > max)
        return usage_error(c, "--%s: expected an integer from %lld to %lld", name, min, max);
    *out = n;
    return 0;
}

/* ---- time ----------------------------------------------------------------- */

/* "YYYY-MM-DD[THH:MM[:SS]][Z]" (UTC) or milliseconds since the epoch. */
static int parse_time_ms(const char *s, int64_t *out)
{
    char *end = NULL;
    if (s[0] != '\0' && strspn(s, "0123456789") == strlen(s)) {
        errno = 0;
        long long n = strtoll(s, &end, 10);
        if (errno != 0 || strlen(s) > 15)
            return -1;
        *out = n;
        return 0;
    }
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int y, mo, d, h = 0, mi = 0, sec = 0, n = 0;
    if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10)
        return -1;
    const char *p = s + n;
    if (*p == 'T' || *p == ' ') {
        int m = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &h, &mi, &m) != 2 || m != 5)
            return -1;
        p += 1 + m;
        if (*p == ':') {
            if (sscanf(p + 1, "%2d%n", &sec, &m) != 1 || m != 2)
                return -1;
            p += 1 + m;
        }
    }
    if (*p == 'Z')
        p++;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (*p != '\0' || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 ||
        sec > 60 || y < 1970)
        return -1;
    /* timegm() would read 2026-02-31 as 2026-03-03: a date that does not
     * exist is refused, not moved */
    if (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
        return -1;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return -1;
    *out = (int64_t)t * 1000;
    return 0;
}

static void format_ms(int64_t ms, char *buf, size_t cap)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, cap, "%lld", (long long)ms);
}

/* ---- JSON helpers ------------------------------------------------------------ */

static json_t *parse_doc(const char *text)
{
    json_error_t err;
    return text != NULL ? json_loads(text, JSON_REJECT_DUPLICATES, &err) : NULL;
}

/* The caller's copy of a value as table text: strings as they are, numbers,
 * booleans, "-" for null or absent, other JSON compact. */
static char *text_of(const json_t *v)
{
    char buf[64];
    const char *s;
    switch (v != NULL ? json_typeof(v) : JSON_NULL) {
    case JSON_STRING:
        s = json_string_value(v);
        break;
    case JSON_INTEGER:
        snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
        s = buf;
        break;
    case JSON_REAL:
        snprintf(buf, sizeof buf, "%g", json_real_value(v));
        s = buf;
        break;
    case JSON_TRUE:
        s = "yes";
        break;
    case JSON_FALSE:
        s = "no";
        break;
    case JSON_NULL:
        s = "-";
        break;
    default: {
        /* money: {"nanoUsd", "usd"} reads as its USD text */
        const json_t *usd = json_is_object(v) ? json_object_get(v, "usd") : NULL;
        if (json_is_string(usd) && json_object_get(v, "nanoUsd") != NULL)
            return text_of(usd);
        char *dump = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        if (dump == NULL)
            die_oom();
        return dump;
    }
    }
    char *copy = strdup(s);
    if (copy == NULL)
        die_oom();
    return copy;
}

/* Member at a dotted path ("apiKeyUsed.costUsd"), or NULL. */
static const json_t *at(const json_t *obj, const char *path)
{
    char key[64];
    while (obj != NULL && *path) {
        size_t n = strcspn(path, ".");
        if (n >= sizeof key)
            return NULL;
        memcpy(key, path, n);
        key[n] = '\0';
        obj = json_is_object(obj) ? json_object_get(obj, key) : NULL;
        path += n + (path[n] == '.');
    }
    return obj;
}

static char *field(const json_t *obj, const char *path) { return text_of(at(obj, path)); }

/* A string member's text, or `fallback` when it is absent or not a string. */
static const char *str_or(const json_t *v, const char *fallback)
{
    const char *s = json_string_value(v);
    return s != NULL ? s : fallback;
}

/* A date member rendered: ms since the epoch as ISO text, text as is. */
static char *date_field(const json_t *obj, const char *path)
{
    const json_t *v = at(obj, path);
    if (json_is_integer(v)) {
        char buf[40];
        format_ms((int64_t)json_integer_value(v), buf, sizeof buf);
        char *s = strdup(buf);
        if (s == NULL)
            die_oom();
        return s;
    }
    return text_of(v);
}

/* Print a document as it is (--json): the library's text or a jansson tree. */
static void print_text(const char *text) { printf("%s\n", text != NULL ? text : "null"); }

static void print_json(json_t *doc)
{
    char *s = json_dumps(doc, JSON_COMPACT | JSON_ENCODE_ANY);
    if (s == NULL)
        die_oom();
    printf("%s\n", s);
    free(s);
}

static char *dump_query(json_t *q)
{
    char *s = json_dumps(q, JSON_COMPACT);
    if (s == NULL)
        die_oom();
    return s;
}

/* A list query's paging and filters from the options: "limit" from --limit
 * (1..limit_max) and each member from its option (`pairs`: option, member,
 * ..., NULL). Returns 0, or the exit code of the usage error it printed. */
static int query_opts(cli *c, json_t *q, long long limit_max, const char *const *pairs)
{
    long long limit = 0;
    int rc = opt_int(c, "limit", 1, limit_max, &limit);
    if (rc != 0)
        return rc;
    if (limit > 0)
        json_object_set_new(q, "limit", json_integer(limit));
    for (size_t i = 0; pairs[i] != NULL; i += 2)
        if (opt(c, pairs[i]) != NULL)
            json_object_set_new(q, pairs[i + 1], json_string(opt(c, pairs[i])));
    return 0;
}

/* ---- tables --------------------------------------------------------------- */

typedef struct table {
    size_t ncols, nrows, cap;
    const char *const *heads;
    char **cells; /* nrows x ncols, owned */
} table;

/* Characters of UTF-8 text (continuation bytes do not count). */
static size_t width_of(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            w++;
    return w;
}

/* A cell made printable and short: control characters (terminal escapes,
 * line breaks; also the C1 controls U+0080-U+009F) become spaces or '?',
 * and text past `max` characters is cut with "...". Frees `s`, returns a
 * new string. */
static char *cell_max(char *s, size_t max)
{
    if (s == NULL)
        die_oom();
    size_t len = strlen(s), chars = 0, i = 0;
    char *out = malloc(len + 4);
    if (out == NULL)
        die_oom();
    size_t o = 0;
    while (i < len) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch & 0xC0) != 0x80) {
            if (chars == max - 3 && width_of(s + i) > 3) {
                memcpy(out + o, "...", 3);
                o += 3;
                break;
            }
            chars++;
        }
        if (ch == 0xC2 && (unsigned char)s[i + 1] >= 0x80 && (unsigned char)s[i + 1] <= 0x9F) {
            out[o++] = '?';
            i += 2;
            continue;
        }
        if (ch < 0x20 || ch == 0x7F)
            out[o++] = (ch == '\n' || ch == '\t' || ch == '\r') ? ' ' : '?';
        else
            out[o++] = (char)ch;
        i++;
    }
    out[o] = '\0';
    free(s);
    return out;
}

static char *cell(char *s) { return cell_max(s, CELL_MAX); }

static void table_init(table *t, const char *const *heads)
{
    memset(t, 0, sizeof *t);
    t->heads = heads;
    while (heads[t->ncols] != NULL)
        t->ncols++;
}

/* Add a row of ncols strings the table takes over (NULL: "-"). */
static void table_row(table *t, ...)
{
    if (t->nrows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        char **cells = realloc(t->cells, cap * t->ncols * sizeof *cells);
        if (cells == NULL)
            die_oom();
        t->cells = cells;
        t->cap = cap;
    }
    va_list ap;
    va_start(ap, t);
    for (size_t i = 0; i < t->ncols; i++) {
        char *s = va_arg(ap, char *);
        if (s == NULL && (s = strdup("-")) == NULL)
            die_oom();
        t->cells[t->nrows * t->ncols + i] = cell(s);
    }
    va_end(ap);
    t->nrows++;
}

static void table_print(table *t)
{
    size_t w[16] = {0};
    for (size_t i = 0; i < t->ncols && i < 16; i++) {
        w[i] = width_of(t->heads[i]);
        for (size_t r = 0; r < t->nrows; r++) {
            size_t cw = width_of(t->cells[r * t->ncols + i]);
            if (cw > w[i])
                w[i] = cw;
        }
    }
    for (size_t r = 0; r <= t->nrows; r++) {
        for (size_t i = 0; i < t->ncols; i++) {
            const char *s = r == 0 ? t->heads[i] : t->cells[(r - 1) * t->ncols + i];
            if (i + 1 == t->ncols)
                printf("%s", s);
            else
                printf("%s%*s  ", s, (int)(w[i] - width_of(s)), "");
        }
        putchar('\n');
    }
}

static void table_free(table *t)
{
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    t->cells = NULL;
    t->nrows = t->cap = 0;
}

/* Print the table (unless empty and `skip_empty`) and free it. */
static void table_done(table *t, int skip_empty)
{
    if (t->nrows > 0 || !skip_empty)
        table_print(t);
    table_free(t);
}

/* "key: value" lines for one record (people's view of a single object). */
static void print_pairs(const json_t *obj, const char *const *spec)
{
    /* spec: label, path, label, path, ..., NULL */
    size_t lw = 0;
    for (size_t i = 0; spec[i] != NULL; i += 2)
        if (strlen(spec[i]) > lw)
            lw = strlen(spec[i]);
    for (size_t i = 0; spec[i] != NULL; i += 2) {
        const json_t *v = at(obj, spec[i + 1]);
        if (v == NULL)
            continue;
        int date = strstr(spec[i + 1], "At") != NULL && json_is_integer(v);
        char *s = cell_max(date ? date_field(obj, spec[i + 1]) : text_of(v), PAIR_MAX);
        printf("%s:%*s %s\n", spec[i], (int)(lw - strlen(spec[i])), "", s);
        free(s);
    }
}

/* ---- files ---------------------------------------------------------------- */

/* Read a file of at most `max` bytes; NULL with a usage message otherwise. */
static char *read_file(const cli *c, const char *path, long max)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        usage_error(c, "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc((size_t)max + 1);
    if (buf == NULL)
        die_oom();
    size_t n = fread(buf, 1, (size_t)max + 1, f);
    int bad = ferror(f), err = errno;
    fclose(f);
    if (bad) {
        free(buf);
        usage_error(c, "cannot read %s: %s", path, strerror(err));
        return NULL;
    }
    if (n > (size_t)max) {
        free(buf);
        usage_error(c, "%s is larger than %ld bytes", path, max);
        return NULL;
    }
    buf[n] = '\0';
    if (strlen(buf) != n) {
        free(buf);
        usage_error(c, "%s holds a NUL byte", path);
        return NULL;
    }
    return buf;
}

/* ---- engine and principal ------------------------------------------------ */

static void log_line(ee_log_level level, const char *module, const char *message, void *payload)
{
    (void)payload;
    fprintf(stderr, "execengine: [%s] %s: %s\n", ee_log_level_name(level), module, message);
}

/* --db as a storage URI: "scheme://..." as given, a path as sqlite://<abs>. */
static char *storage_uri(const char *db)
{
    char *uri = NULL;
    if (strstr(db, "://") != NULL || strcmp(db, "memory:") == 0) {
        uri = strdup(db);
    } else if (db[0] == '/') {
        if (asprintf(&uri, "sqlite://%s", db) < 0)
            uri = NULL;
    } else {
        char cwd[PATH_MAX];
        if (getcwd(cwd, sizeof cwd) == NULL)
            return NULL;
        if (asprintf(&uri, "sqlite://%s/%s", cwd, db) < 0)
            uri = NULL;
    }
    return uri;
}

/* The configuration: environment, then --db / --data-dir. */
static int load_config(cli *c, ee_config **out)
{
    ee_config *cfg = NULL;
    ee_status st = ee_config_new(&cfg);
    if (st == EE_OK)
        st = ee_config_load_env(cfg);
    if (st == EE_OK && opt(c, "db") != NULL) {
        char *uri = storage_uri(opt(c, "db"));
        if (uri == NULL)
            die_oom();
        st = ee_config_set(cfg, "EE_STORAGE_URI", uri);
        free(uri);
    }
    if (st == EE_OK && opt(c, "data-dir") != NULL)
        st = ee_config_set(cfg, "EE_DATA_DIR", opt(c, "data-dir"));
    if (st == EE_OK)
        st = ee_config_set_log(cfg, log_line, c->verbose ? EE_LOG_INFO : EE_LOG_WARN, NULL);
    if (st != EE_OK) {
        errorf("configuration: %s (%s)", ee_error_last_message(), ee_status_name(st));
        ee_config_free(cfg);
        return EXIT_CONFIG;
    }
    *out = cfg;
    return 0;
}

/* Open the engine. workers -1: EXEC_WORKERS as configured; 0 without
 * `force`: none unless the environment sets EXEC_WORKERS (the process only
 * queues and reads); with `force`: exactly `workers` (run --workers N). */
static int open_engine_workers(cli *c, long long workers, int force)
{
    ee_config *cfg = NULL;
    int rc = load_config(c, &cfg);
    if (rc != 0)
        return rc;
    int set = 0;
    ee_status st = EE_OK;
    if (workers >= 0 && force)
        st = ee_config_set_int64(cfg, "EXEC_WORKERS", workers);
    else if (workers == 0 && ee_config_is_set(cfg, "EXEC_WORKERS", &set) == EE_OK && !set)
        st = ee_config_set(cfg, "EXEC_WORKERS", "0");
    if (st != EE_OK) {
        errorf("configuration: %s (%s)", ee_error_last_message(), ee_status_name(st));
        ee_config_free(cfg);
        return EXIT_CONFIG;
    }
    st = ee_engine_open(&c->engine, cfg);
    ee_config_free(cfg);
    if (st != EE_OK) {
        errorf("cannot open the engine: %s (%s)", ee_error_last_message(), ee_status_name(st));
        return EXIT_CONFIG;
    }
    return 0;
}

static const char *setting(const cli *c, const char *option, const char *env)
{
    const char *v = opt(c, option);
    if (v == NULL || v[0] == '\0')
        v = getenv(env);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

/* 1 when the command reads as the platform/admin (no workspace, or role admin). */
static int admin_view(const cli *c)
{
    const char *role = setting(c, "role", "EE_CLI_ROLE");
    if (role != NULL && strcmp(role, "admin") == 0)
        return 1;
    return setting(c, "workspace", "EE_CLI_WORKSPACE") == NULL;
}

static int check_role(const cli *c)
{
    const char *role = setting(c, "role", "EE_CLI_ROLE");
    if (role != NULL && strcmp(role, "admin") != 0 && strcmp(role, "user") != 0)
        return usage_error(c, "--role: expected admin or user");
    return 0;
}

/* The principal from --workspace/--user/--org or EE_CLI_*; required: a
 * missing workspace is a usage error. */
static int make_principal(cli *c, int required)
{
    const char *ws = setting(c, "workspace", "EE_CLI_WORKSPACE");
    if (ws == NULL) {
        if (!required)
            return 0;
        return usage_error(c, "%s acts for a workspace: give --workspace or set "
                              "EE_CLI_WORKSPACE", c->cmd->name);
    }
    const char *user = setting(c, "user", "EE_CLI_USER");
    const char *org = setting(c, "org", "EE_CLI_ORG");
    ee_status st = ee_principal_new(&c->principal, ws, user != NULL ? user : "operator", org);
    if (st != EE_OK)
        return usage_error(c, "%s", ee_error_last_message());
    return 0;
}

static int open_engine(cli *c, int workers)
{
    return open_engine_workers(c, workers ? -1 : 0, 0);
}

/* ---- commands: version, config check ----------------------------------------- */

static int cmd_version(cli *c)
{
    if (c->json) {
        json_t *doc = json_pack("{s:s, s:i, s:s}", "version", ee_version(), "versionNum",
                                ee_version_num(), "features", ee_version_features());
        if (doc == NULL)
            die_oom();
        print_json(doc);
        json_decref(doc);
    } else {
        printf("execengine %s (features: %s)\n", ee_version(), ee_version_features());
    }
    return 0;
}

static int cmd_config_check(cli *c)
{
    ee_config *cfg = NULL;
    int rc = load_config(c, &cfg);
    if (rc != 0)
        return rc;
    char *summary = NULL, *options = NULL, *engine_summary = NULL;
    ee_status st = ee_config_summary_json(cfg, &summary);
    if (st == EE_OK)
        st = ee_config_options_json(&options);
    if (st != EE_OK) {
        rc = fail(c, "config check", st, summary);
        goto done;
    }
    if (!has_opt(c, "no-open")) {
        ee_engine *engine = NULL;
        st = ee_engine_open(&engine, cfg);
        if (st != EE_OK) {
            errorf("cannot open the engine: %s (%s)", ee_error_last_message(),
                   ee_status_name(st));
            rc = EXIT_CONFIG;
            goto done;
        }
        st = ee_engine_summary_json(engine, &engine_summary);
        ee_engine_close(engine);
        if (st != EE_OK) {
            rc = fail(c, "config check", st, engine_summary);
            goto done;
        }
    }
    json_t *sum = parse_doc(summary), *opts = parse_doc(options);
    json_t *eng = engine_summary != NULL ? parse_doc(engine_summary) : json_null();
    if (sum == NULL || opts == NULL || eng == NULL) {
        json_decref(sum);
        json_decref(opts);
        json_decref(eng);
        errorf("config check: the library answered malformed JSON");
        rc = EXIT_FAIL;
        goto done;
    }
    if (c->json) {
        json_t *doc = json_pack("{s:b, s:O, s:O}", "ok", 1, "config", sum, "engine", eng);
        if (doc == NULL)
            die_oom();
        print_json(doc);
        json_decref(doc);
    } else {
        static const char *const heads[] = {"OPTION", "VALUE", "SET", NULL};
        table t;
        table_init(&t, heads);
        size_t i;
        json_t *o;
        json_array_foreach(opts, i, o) {
            const char *name = json_string_value(json_object_get(o, "name"));
            if (name == NULL)
                continue;
            int set = 0;
            (void)ee_config_is_set(cfg, name, &set);
            if (!set && !c->verbose)
                continue; /* defaults only with --verbose */
            char *n = strdup(name);
            char *v = text_of(json_object_get(sum, name));
            char *s = strdup(set ? "set" : "default");
            if (n == NULL || s == NULL)
                die_oom();
            table_row(&t, n, v, s);
        }
        table_done(&t, 1);
        if (json_is_object(eng))
            printf("storage: %s (%s)\n",
                   str_or(at(eng, "storage.uri"), "-"),
                   str_or(at(eng, "storage.backend"), "-"));
        printf("configuration OK%s\n", json_is_object(eng) ? "; the engine opens" : "");
    }
    json_decref(sum);
    json_decref(opts);
    json_decref(eng);
done:
    ee_free(summary);
    ee_free(options);
    ee_free(engine_summary);
    ee_config_free(cfg);
    return rc;
}

/* ---- commands: catalog ------------------------------------------------------ */

static int cmd_sync(cli *c)
{
    char *out = NULL;
    ee_status st = ee_catalog_sync(c->engine, &out);
    if (st != EE_OK) {
        int rc = fail(c, "sync", st, out);
        ee_free(out);
        return rc;
    }
    json_t *doc = parse_doc(out);
    size_t nerr = json_array_size(json_object_get(doc, "errors"));
    if (c->json) {
        print_text(out);
    } else if (doc != NULL) {
        static const char *const heads[] = {"CHANGE", "ID", "N8N ID", "NAME", "DETAIL", NULL};
        static const char *const kinds[] = {"added", "updated", "deactivated", "notRunnable",
                                            "errors", NULL};
        table t;
        table_init(&t, heads);
        for (size_t k = 0; kinds[k] != NULL; k++) {
            size_t i;
            json_t *e;
            json_array_foreach(json_object_get(doc, kinds[k]), i, e) {
                const char *detail = strcmp(kinds[k], "updated") == 0 ? "fields"
                                     : strcmp(kinds[k], "notRunnable") == 0 ? "reason"
                                     : strcmp(kinds[k], "errors") == 0 ? "message" : "";
                char *kind = strdup(kinds[k]);
                if (kind == NULL)
                    die_oom();
                table_row(&t, kind, field(e, "id"), field(e, "n8nWorkflowId"), field(e, "name"),
                          detail[0] ? field(e, detail) : NULL);
            }
        }
        table_done(&t, 1);
        printf("added %zu, updated %zu, deactivated %zu, not runnable %zu, unchanged %lld, "
               "errors %zu\n",
               json_array_size(json_object_get(doc, "added")),
               json_array_size(json_object_get(doc, "updated")),
               json_array_size(json_object_get(doc, "deactivated")),
               json_array_size(json_object_get(doc, "notRunnable")),
               (long long)json_integer_value(json_object_get(doc, "unchanged")), nerr);
    }
    json_decref(doc);
    ee_free(out);
    if (nerr > 0) {
        errorf("sync: %zu workflow(s) could not be read (left as they were)", nerr);
        return EXIT_FAIL;
    }
    return 0;
}

static int is_hex24(const char *s)
{
    return strlen(s) == 24 && strspn(s, "0123456789abcdefABCDEF") == 24;
}

/* The categories as {"<id>": "<name>"} (NULL when they cannot be read: the
 * table then shows ids). */
static json_t *category_names(cli *c)
{
    char *out = NULL;
    if (ee_catalog_category_list(c->engine, "{\"includeInactive\": true}", &out) != EE_OK) {
        ee_free(out);
        return NULL;
    }
    json_t *doc = parse_doc(out), *names = json_object();
    ee_free(out);
    size_t i;
    json_t *cat;
    json_array_foreach(json_object_get(doc, "data"), i, cat) {
        const char *id = json_string_value(json_object_get(cat, "id"));
        json_t *name = json_object_get(cat, "name");
        if (id != NULL && json_is_string(name))
            json_object_set(names, id, name);
    }
    json_decref(doc);
    return names;
}

/* --category NAME|ID into a category id (names looked up case-insensitively). */
static int category_id(cli *c, const char *given, char **id_out)
{
    if (is_hex24(given)) {
        *id_out = strdup(given);
        if (*id_out == NULL)
            die_oom();
        return 0;
    }
    char *out = NULL;
    ee_status st = ee_catalog_category_list(c->engine, "{\"includeInactive\": true}", &out);
    if (st != EE_OK) {
        int rc = fail(c, "catalog: reading the categories", st, out);
        ee_free(out);
        return rc;
    }
    json_t *doc = parse_doc(out);
    ee_free(out);
    size_t i;
    json_t *cat;
    *id_out = NULL;
    json_array_foreach(json_object_get(doc, "data"), i, cat) {
        const char *name = json_string_value(json_object_get(cat, "name"));
        const char *id = json_string_value(json_object_get(cat, "id"));
        if (name != NULL && id != NULL && strcasecmp(name, given) == 0) {
            if ((*id_out = strdup(id)) == NULL)
                die_oom();
            break;
        }
    }
    json_decref(doc);
    if (*id_out == NULL) {
        errorf("catalog: no category named \"%s\"", given);
        return EXIT_NOTFOUND;
    }
    return 0;
}

static int catalog_page(cli *c, int search)
{
    int rc = check_role(c);
    if (rc != 0)
        return rc;
    int admin = admin_view(c);
    if (!admin && (rc = make_principal(c, 1)) != 0)
        return rc;
    json_t *q = json_object();
    if (q == NULL)
        die_oom();
    if (search)
        json_object_set_new(q, "q", json_string(c->pos[0]));
    static const char *const paging[] = {"cursor", "cursor", NULL};
    if ((rc = query_opts(c, q, 100, paging)) != 0)
        goto done;
    if (has_opt(c, "all")) {
        if (!admin) {
            rc = usage_error(c, "--all (inactive entries) is the admin's view: drop --workspace "
                                "or give --role admin");
            goto done;
        }
        json_object_set_new(q, "includeInactive", json_true());
    }
    if (opt(c, "category") != NULL) {
        char *id = NULL;
        if ((rc = category_id(c, opt(c, "category"), &id)) != 0)
            goto done;
        json_object_set_new(q, "category", json_string(id));
        free(id);
    }
    char *query = dump_query(q), *out = NULL;
    const ee_principal *who = admin ? NULL : c->principal;
    ee_status st = search ? ee_catalog_search(c->engine, who, query, &out)
                          : ee_catalog_list(c->engine, who, query, &out);
    free(query);
    if (st != EE_OK) {
        rc = fail(c, search ? "catalog search" : "catalog list", st, out);
        ee_free(out);
        goto done;
    }
    if (c->json) {
        print_text(out);
    } else {
        json_t *doc = parse_doc(out), *cats = category_names(c);
        static const char *const heads[] = {"ID", "NAME", "CATEGORY", "ACTIVE", "RUNNABLE",
                                            "LLM KEY", "EST. USD", NULL};
        table t;
        table_init(&t, heads);
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(doc, "data"), i, e) {
            const char *cat = json_string_value(json_object_get(e, "category"));
            const json_t *cname = cat != NULL ? json_object_get(cats, cat) : NULL;
            table_row(&t, field(e, "id"), field(e, "name"),
                      cname != NULL ? text_of(cname) : field(e, "category"),
                      field(e, "isActive"), field(e, "runnable"), field(e, "requiresApiKey"),
                      field(e, "estimatedCost.usd"));
        }
        table_done(&t, 0);
        const char *next = json_string_value(json_object_get(doc, "nextCursor"));
        printf("%zu shown of %lld%s%s\n", json_array_size(json_object_get(doc, "data")),
               (long long)json_integer_value(json_object_get(doc, "total")),
               next ? "; next page: --cursor " : "", next ? next : "");
        json_decref(cats);
        json_decref(doc);
    }
    ee_free(out);
done:
    json_decref(q);
    return rc;
}

static int cmd_catalog_list(cli *c) { return catalog_page(c, 0); }
static int cmd_catalog_search(cli *c) { return catalog_page(c, 1); }

/* catalog import FILE: an entry object or an array of them (ee_catalog_create). */
static int cmd_catalog_import(cli *c)
{
    char *text = read_file(c, c->pos[0], IMPORT_FILE_MAX);
    if (text == NULL)
        return EXIT_USAGE;
    json_error_t err;
    json_t *doc = json_loads(text, JSON_REJECT_DUPLICATES, &err);
    free(text);
    if (doc == NULL || (!json_is_object(doc) && !json_is_array(doc))) {
        json_decref(doc);
        errorf("catalog import: %s: not a JSON object or array (line %d)", c->pos[0],
               err.line);
        return EXIT_INPUT;
    }
    if (json_is_object(doc)) {
        json_t *arr = json_array();
        if (arr == NULL || json_array_append_new(arr, doc) != 0)
            die_oom();
        doc = arr;
    }
    int rc = 0;
    json_t *created = json_array();
    static const char *const heads[] = {"ID", "N8N ID", "NAME", NULL};
    table t;
    table_init(&t, heads);
    size_t i;
    json_t *e;
    json_array_foreach(doc, i, e) {
        char *entry = json_dumps(e, JSON_COMPACT | JSON_ENCODE_ANY), *out = NULL;
        if (entry == NULL)
            die_oom();
        ee_status st = ee_catalog_create(c->engine, entry, &out);
        free(entry);
        if (st != EE_OK) {
            char what[64];
            snprintf(what, sizeof what, "catalog import: entry %zu", i);
            rc = fail(c, what, st, out);
            ee_free(out);
            break;
        }
        json_t *got = parse_doc(out);
        ee_free(out);
        if (got == NULL)
            die_oom();
        table_row(&t, field(got, "id"), field(got, "n8nWorkflowId"), field(got, "name"));
        json_array_append_new(created, got);
    }
    if (c->json && rc == 0)
        print_json(created);
    if (!c->json)
        table_done(&t, 1);
    else
        table_free(&t);
    if (rc != 0)
        errorf("catalog import: %zu of %zu entries imported before the failure",
               json_array_size(created), json_array_size(doc));
    json_decref(created);
    json_decref(doc);
    return rc;
}

/* ---- commands: executions ------------------------------------------------------- */

static volatile sig_atomic_t g_interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    g_interrupted = 1;
}

/* A workflow argument: a catalog id, else an n8n workflow id. */
static int resolve_workflow(cli *c, const char *given, char id_out[32])
{
    if (is_hex24(given)) {
        snprintf(id_out, 32, "%s", given);
        return 0;
    }
    json_t *q = json_pack("{s:s}", "n8nWorkflowId", given);
    if (q == NULL)
        return usage_error(c, "WORKFLOW must be a catalog id or an n8n workflow id");
    char *query = dump_query(q), *out = NULL;
    json_decref(q);
    ee_status st = ee_catalog_list(c->engine, c->principal, query, &out);
    free(query);
    if (st != EE_OK) {
        int rc = fail(c, "run: finding the workflow", st, out);
        ee_free(out);
        return rc;
    }
    json_t *doc = parse_doc(out);
    ee_free(out);
    const char *id = json_string_value(at(json_array_get(json_object_get(doc, "data"), 0), "id"));
    int rc = 0;
    if (id == NULL) {
        errorf("run: no workflow %s in the catalog of workspace %s", given,
               ee_principal_workspace(c->principal));
        rc = EXIT_NOTFOUND;
    } else {
        snprintf(id_out, 32, "%s", id);
    }
    json_decref(doc);
    return rc;
}

static const char *const RECORD_PAIRS[] = {
    "execution", "_id", "workflow", "workflowName", "workflow id", "workflowCatalogId",
    "workspace", "workspaceId", "user", "userId", "status", "status",
    "error", "errorMessage", "created", "createdAt", "started", "startedAt",
    "completed", "completedAt", "time (ms)", "executionTimeMs", "key", "apiKeyUsed.type",
    "cost (USD)", "apiKeyUsed.costUsd", "charged (USD)", "charge.chargedUsd",
    "e-mail sent", "emailSent", NULL};

static void print_record(const char *text)
{
    json_t *rec = parse_doc(text);
    if (rec == NULL) {
        print_text(text);
        return;
    }
    print_pairs(rec, RECORD_PAIRS);
    const json_t *output = json_object_get(rec, "outputData");
    if (output != NULL && !json_is_null(output)) {
        char *s = json_dumps(output, JSON_INDENT(2) | JSON_ENCODE_ANY);
        if (s == NULL)
            die_oom();
        printf("output:\n%s\n", s);
        free(s);
    } else if (json_object_get(rec, "outputRef") != NULL) {
        printf("output: in the result store (execengine show %s --results)\n",
               str_or(json_object_get(rec, "_id"), "ID"));
    }
    json_decref(rec);
}

static int cmd_run(cli *c)
{
    int rc = make_principal(c, 1);
    if (rc != 0)
        return rc;
    int wait = !has_opt(c, "no-wait");
    json_t *req = json_object();
    if (req == NULL)
        die_oom();
    const char *input = opt(c, "input");
    if (input != NULL) {
        char *text = NULL;
        if (input[0] == '@') {
            if ((text = read_file(c, input + 1, INPUT_FILE_MAX)) == NULL) {
                json_decref(req);
                return EXIT_USAGE;
            }
        } else if (strlen(input) > INPUT_FILE_MAX) {
            json_decref(req);
            return usage_error(c, "--input: longer than %ld bytes", INPUT_FILE_MAX);
        }
        json_error_t err;
        json_t *params = json_loads(text != NULL ? text : input, JSON_REJECT_DUPLICATES, &err);
        free(text);
        if (!json_is_object(params)) {
            json_decref(params);
            json_decref(req);
            return usage_error(c, "--input: expected a JSON object (%s)",
                               params == NULL ? err.text : "another JSON value");
        }
        json_object_set_new(req, "parameters", params);
    }
    if (opt(c, "email") != NULL)
        json_object_set_new(req, "email", json_pack("{s:s}", "to", opt(c, "email")));
    if (opt(c, "idempotency-key") != NULL)
        json_object_set_new(req, "idempotencyKey", json_string(opt(c, "idempotency-key")));
    if (opt(c, "api-key") != NULL) {
        json_object_set_new(req, "useCustomApiKey", json_true());
        json_object_set_new(req, "apiKeyId", json_string(opt(c, "api-key")));
    }
    long long timeout = 0;
    if ((rc = opt_int(c, "timeout", 1, 86400, &timeout)) != 0) {
        json_decref(req);
        return rc;
    }
    if (timeout > 0)
        json_object_set_new(req, "timeoutMs", json_integer(timeout * 1000));
    char *request = dump_query(req);
    json_decref(req);

    long long workers = wait ? -1 : 0;
    if (opt(c, "workers") != NULL && !wait) {
        rc = usage_error(c, "--workers: only when waiting (--no-wait runs none)");
        goto done;
    }
    if ((rc = opt_int(c, "workers", 0, 10000, &workers)) != 0)
        goto done;
    if ((rc = open_engine_workers(c, workers, opt(c, "workers") != NULL)) != 0)
        goto done;
    char wf[32];
    if ((rc = resolve_workflow(c, c->pos[0], wf)) != 0)
        goto done;
    if (wait) {
        /* Workflows reach the gateway and post callbacks through the
         * engine's loopback listener (unless EXEC_GATEWAY_URL names one). */
        ee_status gst = ee_gateway_listen(c->engine, "127.0.0.1:0", NULL);
        if (gst != EE_OK && gst != EE_ENOTSUPPORTED)
            errorf("warning: the gateway listener did not start: %s", ee_error_last_message());
    }
    /* Ctrl-C from now on cancels the run (installed before the submit, so
     * that no interrupt can end the process between the two). */
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    if (wait)
        sigaction(SIGINT, &sa, &old);
    char id[EE_EXEC_ID_SIZE];
    ee_status st = ee_exec_submit(c->engine, c->principal, wf, request, NULL, NULL, id);
    if (st != EE_OK) {
        if (wait)
            sigaction(SIGINT, &old, NULL);
        char *doc = NULL;
        (void)ee_error_last_json(&doc);
        rc = fail(c, "run", st, doc);
        ee_free(doc);
        goto done;
    }
    if (!wait) {
        if (c->json) {
            json_t *doc = json_pack("{s:s, s:s}", "executionId", id, "status", "pending");
            print_json(doc);
            json_decref(doc);
        } else {
            printf("%s\n", id);
        }
        goto done;
    }
    int tty = isatty(STDERR_FILENO);
    static const char spin[] = "|/-\\";
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char *out = NULL;
    unsigned tick = 0;
    for (;;) {
        ee_free(out);
        out = NULL;
        st = ee_exec_wait(c->engine, c->principal, id, 250, &out);
        if (st != EE_ETIMEOUT)
            break;
        /* EE_ETIMEOUT: still pending or running (the record's status), unless
         * the run itself timed out (then it has ended). */
        json_t *rec = parse_doc(out);
        const char *status = json_string_value(json_object_get(rec, "status"));
        int ended = status != NULL && strcmp(status, "pending") != 0 &&
                    strcmp(status, "running") != 0;
        if (tty && !ended) {
            clock_gettime(CLOCK_MONOTONIC, &now);
            double secs = (double)(now.tv_sec - t0.tv_sec) + (now.tv_nsec - t0.tv_nsec) / 1e9;
            fprintf(stderr, "\r%c %s %-8s %6.1fs", spin[tick++ % 4], id,
                    status != NULL ? status : "?", secs);
            fflush(stderr);
        }
        json_decref(rec);
        if (ended)
            break;
        if (g_interrupted) {
            if (tty)
                fputs("\r\033[K", stderr);
            ee_status cst = ee_exec_cancel(c->engine, c->principal, id);
            errorf("interrupted: execution %s %s", id,
                   cst == EE_OK ? "cancelled" : "could not be cancelled (it may have ended)");
            sigaction(SIGINT, &old, NULL);
            ee_free(out);
            rc = EXIT_INTERRUPTED;
            goto done;
        }
    }
    sigaction(SIGINT, &old, NULL);
    if (tty)
        fputs("\r\033[K", stderr);
    if (c->json)
        print_text(out);
    else if (out != NULL && st != EE_ENOTFOUND && st != EE_EINVAL)
        print_record(out);
    if (st != EE_OK) {
        json_t *rec = parse_doc(out);
        const char *why = str_or(json_object_get(rec, "errorMessage"), NULL);
        if (why == NULL)
            why = ee_error_last_status() == (int)st ? ee_error_last_message() : ee_strerror(st);
        char *safe = cell_max(strdup(why), PAIR_MAX);
        errorf("run: execution %s did not complete: %s (%s)", id, safe, ee_status_name(st));
        free(safe);
        json_decref(rec);
        rc = exit_of(st);
    }
    ee_free(out);
done:
    free(request);
    return rc;
}

static int cmd_show(cli *c)
{
    int rc = make_principal(c, 1);
    if (rc != 0)
        return rc;
    if ((rc = open_engine(c, 0)) != 0)
        return rc;
    char *out = NULL;
    int results = has_opt(c, "results"), cost = has_opt(c, "cost");
    if (results && cost)
        return usage_error(c, "--results and --cost: give one");
    ee_status st = results ? ee_exec_results(c->engine, c->principal, c->pos[0], &out)
                   : cost  ? ee_exec_cost(c->engine, c->principal, c->pos[0], &out)
                           : ee_exec_get(c->engine, c->principal, c->pos[0], &out);
    if (st != EE_OK) {
        rc = fail(c, "show", st, out);
    } else if (c->json) {
        print_text(out);
    } else if (results) {
        json_t *doc = parse_doc(out);
        static const char *const pairs[] = {"execution", "executionId", "status", "status",
                                            "completed", "completedAt", "time (ms)",
                                            "executionTimeMs", NULL};
        print_pairs(doc, pairs);
        char *s = json_dumps(json_object_get(doc, "outputData"), JSON_INDENT(2) | JSON_ENCODE_ANY);
        printf("output:\n%s\n", s != NULL ? s : "null");
        free(s);
        json_decref(doc);
    } else if (cost) {
        json_t *doc = parse_doc(out);
        static const char *const heads[] = {"PROVIDER", "MODEL", "TOKENS", "USD", "STATUS",
                                            "AT", NULL};
        table t;
        table_init(&t, heads);
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(doc, "calls"), i, e) {
            table_row(&t, field(e, "provider"), field(e, "model"), field(e, "totalTokens"),
                      field(e, "costUsd"), field(e, "status"), date_field(e, "at"));
        }
        table_done(&t, 1);
        static const char *const pairs[] = {"calls", "totals.calls", "tokens", "totals.tokens",
                                            "cost (USD)", "totals.costUsd", "charged (USD)",
                                            "charge.chargedUsd", NULL};
        print_pairs(doc, pairs);
        json_decref(doc);
    } else {
        print_record(out);
    }
    ee_free(out);
    return rc;
}

static int cmd_executions_list(cli *c)
{
    int rc = make_principal(c, 1);
    if (rc != 0)
        return rc;
    json_t *q = json_object();
    static const char *const filters[] = {"workflow", "workflowId", "status", "status",
                                          "by-user", "userId", "cursor", "cursor", NULL};
    if ((rc = query_opts(c, q, 100, filters)) != 0) {
        json_decref(q);
        return rc;
    }
    char *query = dump_query(q), *out = NULL;
    json_decref(q);
    if ((rc = open_engine(c, 0)) != 0) {
        free(query);
        return rc;
    }
    ee_status st = ee_exec_list(c->engine, c->principal, query, &out);
    free(query);
    if (st != EE_OK) {
        rc = fail(c, "executions list", st, out);
    } else if (c->json) {
        print_text(out);
    } else {
        json_t *doc = parse_doc(out);
        static const char *const heads[] = {"ID", "WORKFLOW", "STATUS", "USER", "CREATED",
                                            "TIME MS", "COST USD", NULL};
        table t;
        table_init(&t, heads);
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(doc, "data"), i, e) {
            table_row(&t, field(e, "_id"), field(e, "workflowName"), field(e, "status"),
                      field(e, "userId"), date_field(e, "createdAt"),
                      field(e, "executionTimeMs"), field(e, "apiKeyUsed.costUsd"));
        }
        table_done(&t, 0);
        const char *next = json_string_value(json_object_get(doc, "nextCursor"));
        if (next != NULL)
            printf("next page: --cursor %s\n", next);
        json_decref(doc);
    }
    ee_free(out);
    return rc;
}

/* ---- commands: usage, quota --------------------------------------------------- */

static int cmd_usage(cli *c)
{
    int rc = make_principal(c, 1);
    if (rc == 0)
        rc = open_engine(c, 0);
    if (rc != 0)
        return rc;
    char *out = NULL;
    ee_status st = ee_quota_usage(c->engine, c->principal, &out);
    if (st != EE_OK) {
        rc = fail(c, "usage", st, out);
    } else if (c->json) {
        print_text(out);
    } else {
        json_t *doc = parse_doc(out);
        static const char *const heads[] = {"QUOTA", "USAGE", "LIMIT", "RESETS", NULL};
        static const char *const quotas[] = {"predictions", "storage", "spend", "rate",
                                             "concurrency", NULL};
        table t;
        table_init(&t, heads);
        for (size_t i = 0; quotas[i] != NULL; i++) {
            const json_t *qd = json_object_get(doc, quotas[i]);
            if (qd == NULL)
                continue;
            char *name = strdup(quotas[i]);
            if (name == NULL)
                die_oom();
            const json_t *lim = json_object_get(qd, "limit");
            char *limit = json_is_integer(lim) && json_integer_value(lim) == -1
                              ? strdup("unlimited")
                              : text_of(lim);
            table_row(&t, name, field(qd, "usage"), limit,
                      json_object_get(qd, "resetsAt") ? date_field(qd, "resetsAt") : NULL);
        }
        printf("organisation %s, plan %s\n",
               str_or(json_object_get(doc, "orgId"), "-"),
               str_or(json_object_get(doc, "plan"), "-"));
        table_done(&t, 0);
        json_decref(doc);
    }
    ee_free(out);
    return rc;
}

static int cmd_quota(cli *c)
{
    int rc = make_principal(c, 1);
    if (rc == 0)
        rc = open_engine(c, 0);
    if (rc != 0)
        return rc;
    char *out = NULL;
    ee_status st = ee_quota_check(c->engine, c->principal, &out);
    if (st != EE_OK) {
        rc = fail(c, "quota", st, out);
    } else if (c->json) {
        print_text(out);
    } else {
        json_t *doc = parse_doc(out);
        static const char *const pairs[] = {"allowed", "allowed", "used", "usage", "limit",
                                            "limit", "remaining", "remaining", "resets",
                                            "resetsAt", "note", "error", NULL};
        print_pairs(doc, pairs);
        json_decref(doc);
    }
    ee_free(out);
    return rc;
}

/* ---- commands: credentials, maintenance ------------------------------------------ */

static int cmd_provision(cli *c)
{
    char *out = NULL;
    int rc = 0;
    ee_status st = ee_cred_platform_provision(c->engine, &out);
    if (st != EE_OK) {
        rc = fail(c, "provision", st, out);
    } else if (c->json) {
        print_text(out);
    } else {
        json_t *doc = parse_doc(out);
        static const char *const heads[] = {"ID", "CREDENTIAL", "SOURCE", "SLOT", "STATUS", NULL};
        table t;
        table_init(&t, heads);
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(doc, "credentials"), i, e) {
            table_row(&t, field(e, "id"), field(e, "credentialName"), field(e, "source"),
                      field(e, "slot"), field(e, "status"));
        }
        table_done(&t, 1);
        printf("created %lld, updated %lld, unchanged %lld, removed %lld\n",
               (long long)json_integer_value(json_object_get(doc, "created")),
               (long long)json_integer_value(json_object_get(doc, "updated")),
               (long long)json_integer_value(json_object_get(doc, "unchanged")),
               (long long)json_integer_value(json_object_get(doc, "removed")));
        json_decref(doc);
    }
    ee_free(out);
    return rc;
}

static int cmd_rotate_secret(cli *c)
{
    char *out = NULL;
    int rc = 0;
    ee_status st = ee_cred_rotate(c->engine, &out);
    json_t *doc = st == EE_OK || st == EE_ECRYPTO ? parse_doc(out) : NULL;
    if (doc != NULL && json_object_get(doc, "error") == NULL) {
        if (c->json) {
            print_text(out);
        } else {
            printf("workspaces %lld, scanned %lld, rotated %lld, already current %lld, "
                   "failed %lld\n",
                   (long long)json_integer_value(json_object_get(doc, "workspaces")),
                   (long long)json_integer_value(json_object_get(doc, "scanned")),
                   (long long)json_integer_value(json_object_get(doc, "rotated")),
                   (long long)json_integer_value(json_object_get(doc, "current")),
                   (long long)json_integer_value(json_object_get(doc, "failed")));
            if (st == EE_OK && json_integer_value(json_object_get(doc, "rotated")) == 0)
                printf("everything is sealed with the current secret: "
                       "API_KEY_ENCRYPTION_PREVIOUS_SECRETS may be dropped\n");
        }
    }
    if (st != EE_OK)
        rc = fail(c, "rotate-secret", st,
                  doc == NULL || json_object_get(doc, "error") != NULL ? out : NULL);
    json_decref(doc);
    ee_free(out);
    return rc;
}

static int cmd_purge(cli *c)
{
    int results = has_opt(c, "results"), audit = has_opt(c, "audit");
    int64_t before = 0;
    if (opt(c, "audit-before") != NULL) {
        if (parse_time_ms(opt(c, "audit-before"), &before) != 0)
            return usage_error(c, "--audit-before: expected YYYY-MM-DD[THH:MM[:SS]Z] or ms");
        audit = 1;
    }
    if (!results && !audit)
        results = audit = 1;
    int rc = open_engine(c, 0);
    if (rc != 0)
        return rc;
    uint64_t nres = 0, naudit = 0;
    ee_status st;
    if (results && (st = ee_exec_purge(c->engine, &nres)) != EE_OK)
        return fail(c, "purge: execution results", st, NULL);
    if (audit && (st = ee_audit_purge(c->engine, before, &naudit)) != EE_OK)
        return fail(c, "purge: audit log", st, NULL);
    if (c->json) {
        json_t *doc = json_object();
        if (results)
            json_object_set_new(doc, "results", json_integer((json_int_t)nres));
        if (audit)
            json_object_set_new(doc, "audit", json_integer((json_int_t)naudit));
        print_json(doc);
        json_decref(doc);
    } else {
        if (results)
            printf("execution results deleted: %llu\n", (unsigned long long)nres);
        if (audit)
            printf("audit entries deleted: %llu\n", (unsigned long long)naudit);
    }
    return 0;
}

/* ---- commands: billing, audit --------------------------------------------------- */

static int check_month(const cli *c, const char *m)
{
    if (strlen(m) != 7 || m[4] != '-' || strspn(m, "0123456789-") != 7)
        return usage_error(c, "MONTH: expected YYYY-MM, got \"%s\"", m);
    return 0;
}

static int cmd_billing_close(cli *c)
{
    int rc = check_month(c, c->pos[0]);
    if (rc == 0)
        rc = make_principal(c, 1);
    if (rc == 0)
        rc = open_engine(c, 0);
    if (rc != 0)
        return rc;
    char *out = NULL;
    ee_status st = ee_billing_close_month(c->engine, c->principal, c->pos[0], &out);
    if (st != EE_OK) {
        rc = fail(c, "billing close-month", st, out);
    } else if (c->json) {
        print_text(out);
    } else {
        json_t *doc = parse_doc(out);
        printf("%s: %s (%s); charged %s USD\n", c->pos[0],
               str_or(at(doc, "billing.billingStatus"), "?"),
               json_is_true(json_object_get(doc, "changed")) ? "closed now" : "already closed",
               str_or(at(doc, "billing.usage.totalChargedUsd"), "0"));
        json_decref(doc);
    }
    ee_free(out);
    return rc;
}

static int cmd_billing_export(cli *c)
{
    int rc = check_month(c, c->pos[0]);
    if (rc == 0)
        rc = make_principal(c, 1);
    if (rc == 0)
        rc = open_engine(c, 0);
    if (rc != 0)
        return rc;
    int csv = has_opt(c, "csv");
    if (csv && c->json)
        return usage_error(c, "--csv and --json: give one");
    char *out = NULL;
    ee_status st =
        ee_billing_export(c->engine, c->principal, c->pos[0], csv ? "csv" : "json", &out);
    if (st != EE_OK)
        rc = fail(c, "billing export", st, out);
    else if (csv)
        fputs(out, stdout); /* RFC 4180 as the library wrote it */
    else
        print_text(out);
    ee_free(out);
    return rc;
}

static int cmd_billing_history(cli *c)
{
    int rc = make_principal(c, 1);
    if (rc != 0)
        return rc;
    json_t *q = json_object();
    static const char *const filters[] = {"status", "status", "cursor", "cursor", NULL};
    if ((rc = query_opts(c, q, 100, filters)) != 0) {
        json_decref(q);
        return rc;
    }
    char *query = dump_query(q), *out = NULL;
    json_decref(q);
    if ((rc = open_engine(c, 0)) != 0) {
        free(query);
        return rc;
    }
    ee_status st = ee_billing_history(c->engine, c->principal, query, &out);
    free(query);
    if (st != EE_OK) {
        rc = fail(c, "billing history", st, out);
    } else if (c->json) {
        print_text(out);
    } else {
        json_t *doc = parse_doc(out);
        static const char *const heads[] = {"MONTH", "STATUS", "EXECUTIONS", "TOKENS",
                                            "CHARGED USD", "BILLED AT", NULL};
        table t;
        table_init(&t, heads);
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(doc, "data"), i, e) {
            table_row(&t, field(e, "month"), field(e, "billingStatus"),
                      field(e, "usage.totalExecutions"), field(e, "usage.totalTokens"),
                      field(e, "usage.totalChargedUsd"), field(e, "billedAt"));
        }
        table_done(&t, 0);
        json_decref(doc);
    }
    ee_free(out);
    return rc;
}

static int cmd_audit(cli *c)
{
    int rc = check_role(c);
    if (rc != 0)
        return rc;
    int platform = admin_view(c);
    if (!platform && (rc = make_principal(c, 1)) != 0)
        return rc;
    json_t *q = json_object();
    static const char *const times[] = {"from", "to", NULL};
    for (size_t i = 0; times[i] != NULL; i++) {
        if (opt(c, times[i]) == NULL)
            continue;
        int64_t ms;
        if (parse_time_ms(opt(c, times[i]), &ms) != 0) {
            json_decref(q);
            return usage_error(c, "--%s: expected YYYY-MM-DD[THH:MM[:SS]Z] or ms", times[i]);
        }
        json_object_set_new(q, times[i], json_integer(ms));
    }
    static const char *const filters[] = {"action", "action", "cursor", "cursor", NULL};
    if ((rc = query_opts(c, q, EE_AUDIT_LIMIT_MAX, filters)) != 0) {
        json_decref(q);
        return rc;
    }
    char *query = dump_query(q), *out = NULL;
    json_decref(q);
    if ((rc = open_engine(c, 0)) != 0) {
        free(query);
        return rc;
    }
    ee_status st = ee_audit_query(c->engine, platform ? NULL : c->principal, query, &out);
    free(query);
    if (st != EE_OK) {
        rc = fail(c, "audit", st, out);
    } else if (c->json) {
        print_text(out);
    } else {
        json_t *doc = parse_doc(out);
        static const char *const heads[] = {"TIME", "ACTION", "ACTOR", "TARGET", "OUTCOME",
                                            "STATUS", NULL};
        table t;
        table_init(&t, heads);
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(doc, "data"), i, e) {
            char *target = NULL;
            if (asprintf(&target, "%s %s",
                         str_or(at(e, "target.kind"), "-"),
                         str_or(at(e, "target.id"), "")) < 0)
                die_oom();
            table_row(&t, date_field(e, "time"), field(e, "action"), field(e, "actor"), target,
                      field(e, "outcome"), field(e, "status"));
        }
        table_done(&t, 0);
        const char *next = json_string_value(json_object_get(doc, "nextCursor"));
        if (next != NULL)
            printf("next page: --cursor %s\n", next);
        json_decref(doc);
    }
    ee_free(out);
    return rc;
}

/* ---- serve ---------------------------------------------------------------------- */

static int cmd_serve(cli *c)
{
    /* The same environment, with the tool's overrides as variables. */
    if (opt(c, "db") != NULL) {
        char *uri = storage_uri(opt(c, "db"));
        if (uri == NULL || setenv("EE_STORAGE_URI", uri, 1) != 0)
            die_oom();
        free(uri);
    }
    if (opt(c, "data-dir") != NULL && setenv("EE_DATA_DIR", opt(c, "data-dir"), 1) != 0)
        die_oom();
    if (opt(c, "addr") != NULL && setenv("EE_SERVER_ADDR", opt(c, "addr"), 1) != 0)
        die_oom();
    if (opt(c, "tokens") != NULL && setenv("EE_SERVER_TOKENS", opt(c, "tokens"), 1) != 0)
        die_oom();
    char **argv = calloc((size_t)c->nrest + 2, sizeof *argv);
    if (argv == NULL)
        die_oom();
    argv[0] = (char *)"execengine-server";
    for (int i = 0; i < c->nrest; i++)
        argv[i + 1] = c->rest[i];
    /* Next to this binary first (an install's bindir, the build tree). */
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash != NULL && (size_t)(slash - self) + sizeof "/execengine-server" <= sizeof self) {
            strcpy(slash, "/execengine-server");
            if (access(self, X_OK) == 0) {
                fflush(NULL);
                execv(self, argv);
                errorf("serve: cannot run %s: %s", self, strerror(errno));
                free(argv);
                return EXIT_FAIL;
            }
        }
    }
    fflush(NULL);
    execvp("execengine-server", argv);
    errorf("serve: execengine-server is neither next to this program nor on PATH (%s)",
           strerror(errno));
    free(argv);
    return EXIT_FAIL;
}

/* ---- the command table --------------------------------------------------------- */

static const char *const NO_OPTS[] = {NULL};
static const char *const CATALOG_OPTS[] = {"category=", "limit=", "cursor=", "all", NULL};
static const char *const RUN_OPTS[] = {"input=", "email=", "no-wait", "idempotency-key=",
                                       "timeout=", "api-key=", "workers=", NULL};
static const char *const SHOW_OPTS[] = {"results", "cost", NULL};
static const char *const EXEC_LIST_OPTS[] = {"workflow=", "status=", "by-user=", "limit=",
                                             "cursor=", NULL};
static const char *const PURGE_OPTS[] = {"results", "audit", "audit-before=", NULL};
static const char *const EXPORT_OPTS[] = {"csv", NULL};
static const char *const HISTORY_OPTS[] = {"status=", "limit=", "cursor=", NULL};
static const char *const AUDIT_OPTS[] = {"from=", "to=", "action=", "limit=", "cursor=", NULL};
static const char *const CONFIG_OPTS[] = {"no-open", NULL};
static const char *const SERVE_OPTS[] = {"addr=", "tokens=", NULL};

static int cmd_help(cli *c);

/* Commands marked "+engine" in their fn open the engine first: see run_command. */
static const command COMMANDS[] = {
    {"sync", "", "sync the catalog from n8n (N8N_BASE_URL, N8N_API_KEY)",
     "Lists every n8n workflow, upserts its catalog entry and deactivates the entries of\n"
     "workflows that disappeared. Exits 1 when some workflow could not be read.\n",
     NO_OPTS, 0, 0, cmd_sync},
    {"catalog list", "[--category C] [--all] [--limit N] [--cursor X]",
     "list the catalog",
     "Without a workspace (or with --role admin): every entry, as the platform sees it;\n"
     "with --workspace: the entries that workspace may run.\n"
     "  --category C   a category id or name\n"
     "  --all          inactive entries too (admin view only)\n"
     "  --limit N      entries per page (1-100)\n"
     "  --cursor X     the next page (printed under the table)\n",
     CATALOG_OPTS, 0, 0, cmd_catalog_list},
    {"catalog search", "QUERY [--category C] [--all] [--limit N] [--cursor X]",
     "search the catalog by words (name, tags, description)",
     "Every word matches as a prefix; results are ranked. Options as catalog list.\n",
     CATALOG_OPTS, 1, 1, cmd_catalog_search},
    {"catalog import", "FILE", "create catalog entries from a JSON file",
     "FILE holds one entry object or an array of them, as ee_catalog_create() takes them\n"
     "({\"n8nWorkflowId\", \"name\", ...}; at most 16 MiB). Stops at the first refusal.\n",
     NO_OPTS, 1, 1, cmd_catalog_import},
    {"run", "WORKFLOW [--input JSON|@FILE] [--email TO] [--no-wait] [--timeout S]",
     "run a workflow and wait for it",
     "WORKFLOW is a catalog id (24 hex) or an n8n workflow id. Needs a workspace.\n"
     "  --input JSON|@FILE    the parameters, a JSON object (a file: at most 1 MiB)\n"
     "  --email TO            e-mail the result when the run ends\n"
     "  --idempotency-key K   a repeated key returns the first execution\n"
     "  --api-key ID          run on the workspace's own LLM key ID\n"
     "  --timeout S           the run's timeout in seconds\n"
     "  --no-wait             queue the run and print its id; a process running workers\n"
     "                        on the same storage runs it\n"
     "  --workers N           execution workers of this process while it waits (default\n"
     "                        EXEC_WORKERS); 0: another process on the same storage runs it\n"
     "Waits with a progress line on stderr when stderr is a terminal, then prints the\n"
     "execution. Ctrl-C cancels the run. Exits 4 on a quota/rate/spend refusal, 1 when\n"
     "the run failed or timed out.\n",
     RUN_OPTS, 1, 1, cmd_run},
    {"show", "EXECUTION_ID [--results | --cost]", "show an execution",
     "  --results   the execution's output (also when kept in the result store)\n"
     "  --cost      its metered calls and charge\n",
     SHOW_OPTS, 1, 1, cmd_show},
    {"executions list", "[--workflow ID] [--status S] [--by-user U] [--limit N] [--cursor X]",
     "list the workspace's executions, newest first", "", EXEC_LIST_OPTS, 0, 0,
     cmd_executions_list},
    {"usage", "", "the organisation's usage of each quota",
     "Predictions, storage, spend, hourly rate and concurrency, with their limits.\n",
     NO_OPTS, 0, 0, cmd_usage},
    {"quota", "", "whether one more run fits the predictions quota", "", NO_OPTS, 0, 0,
     cmd_quota},
    {"provision", "", "provision platform credentials from PLATFORM_*",
     "Idempotent: each PLATFORM_* key becomes a credential of the platform pool.\n",
     NO_OPTS, 0, 0, cmd_provision},
    {"rotate-secret", "", "re-encrypt stored secrets under the current secret",
     "Set the new secret as API_KEY_ENCRYPTION_SECRET and the old one in\n"
     "API_KEY_ENCRYPTION_PREVIOUS_SECRETS, then run this. Safe to run again after an\n"
     "interruption. When it reports rotated 0 and failed 0, drop the previous secret.\n"
     "Exits 1 when some secret could not be opened (counted as failed).\n"
     "Secrets are never read from the command line.\n",
     NO_OPTS, 0, 0, cmd_rotate_secret},
    {"purge", "[--results] [--audit] [--audit-before DATE]", "delete old results and audit entries",
     "Deletes execution results older than RESULT_RETENTION_DAYS and audit entries older\n"
     "than AUDIT_RETENTION_DAYS (both by default).\n"
     "  --results            only execution results\n"
     "  --audit              only audit entries\n"
     "  --audit-before DATE  audit entries before DATE instead (YYYY-MM-DD[THH:MM[:SS]Z] or ms)\n",
     PURGE_OPTS, 0, 0, cmd_purge},
    {"billing close-month", "YYYY-MM", "close an ended billing month (pending -> billed)",
     "Closing a month again changes nothing (exit 0). Needs a workspace.\n", NO_OPTS, 1, 1,
     cmd_billing_close},
    {"billing export", "YYYY-MM [--csv]", "export a closed month for a payment system",
     "JSON by default, RFC 4180 CSV with --csv.\n", EXPORT_OPTS, 1, 1, cmd_billing_export},
    {"billing history", "[--status S] [--limit N] [--cursor X]",
     "the workspace's billing months, newest first", "", HISTORY_OPTS, 0, 0,
     cmd_billing_history},
    {"audit", "[--from DATE] [--to DATE] [--action PREFIX] [--limit N] [--cursor X]",
     "read the audit log, newest first",
     "Without a workspace (or with --role admin): the platform's entries (catalog,\n"
     "platform pool, rotation, plans); with --workspace: that workspace's.\n"
     "DATE is YYYY-MM-DD[THH:MM[:SS]Z] (UTC) or ms since the epoch; --to is exclusive.\n",
     AUDIT_OPTS, 0, 0, cmd_audit},
    {"serve", "[--addr IP:PORT] [--tokens FILE] [-- SERVER ARGS]", "run execengine-server",
     "Runs execengine-server (next to this program, else on PATH) with the same\n"
     "environment; --addr sets EE_SERVER_ADDR, --tokens EE_SERVER_TOKENS, --db and\n"
     "--data-dir as for every command. See docs/server.md.\n",
     SERVE_OPTS, 0, 0, cmd_serve},
    {"version", "", "print the version and the library's features", "", NO_OPTS, 0, 0,
     cmd_version},
    {"config check", "[--no-open]", "validate the configuration in the environment",
     "Loads every option from the environment (as the library does), opens the engine\n"
     "(storage, data files, the encryption secret) unless --no-open, and prints the options\n"
     "that are set (all of them with --verbose); secrets only masked.\n",
     CONFIG_OPTS, 0, 0, cmd_config_check},
    {"help", "[COMMAND]", "help on a command", "", NO_OPTS, 0, 2, cmd_help},
};
#define NCOMMANDS (sizeof COMMANDS / sizeof COMMANDS[0])

/* Commands that open the engine before they run (others open it themselves,
 * after checking their arguments, or need none). */
static int opens_engine_first(const command *cmd)
{
    return cmd->fn == cmd_sync || cmd->fn == cmd_provision || cmd->fn == cmd_rotate_secret ||
           cmd->fn == cmd_catalog_list || cmd->fn == cmd_catalog_search ||
           cmd->fn == cmd_catalog_import;
}

static void print_overview(FILE *f)
{
    fprintf(f, "usage: execengine [GLOBAL OPTIONS] COMMAND [ARGS] [OPTIONS]\n\n"
               "Operate a libexecengine installation; configuration comes from the environment\n"
               "(docs/configuration.md).\n\nCommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %-20s %s\n", COMMANDS[i].name, COMMANDS[i].summary);
    fprintf(f, "\n%s\n%s\nexecengine COMMAND --help: help on one command.\n", GLOBAL_HELP,
            EXIT_HELP);
}

static void print_command_help(const command *cmd)
{
    printf("usage: execengine %s %s\n\n%s.\n", cmd->name, cmd->args, cmd->summary);
    if (cmd->help[0] != '\0')
        printf("\n%s", cmd->help);
    printf("\n%s\n%s", GLOBAL_HELP, EXIT_HELP);
}

/* Print the commands starting with `group ` to f (for "execengine catalog
 * --help"; f NULL: print nothing). Returns whether there are any. */
static int print_group(FILE *f, const char *group)
{
    size_t n = strlen(group), found = 0;
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strncmp(COMMANDS[i].name, group, n) == 0 && COMMANDS[i].name[n] == ' ') {
            if (f == NULL) /* only asking whether the group exists */
                return 1;
            if (found++ == 0)
                fprintf(f, "execengine %s commands:\n", group);
            fprintf(f, "  execengine %s %s\n      %s\n", COMMANDS[i].name, COMMANDS[i].args,
                    COMMANDS[i].summary);
        }
    if (found)
        fprintf(f, "\n%s\n%s", GLOBAL_HELP, EXIT_HELP);
    return found > 0;
}

static const command *find_command(int argc, char **argv, int *used)
{
    if (argc >= 2) {
        char two[64];
        snprintf(two, sizeof two, "%s %s", argv[0], argv[1]);
        for (size_t i = 0; i < NCOMMANDS; i++)
            if (strcmp(COMMANDS[i].name, two) == 0) {
                *used = 2;
                return &COMMANDS[i];
            }
    }
    for (size_t i = 0; argc >= 1 && i < NCOMMANDS; i++)
        if (strcmp(COMMANDS[i].name, argv[0]) == 0) {
            *used = 1;
            return &COMMANDS[i];
        }
    return NULL;
}

static int cmd_help(cli *c)
{
    if (c->npos == 0) {
        print_overview(stdout);
        return 0;
    }
    int used = 0;
    const command *cmd = find_command(c->npos, (char **)c->pos, &used);
    if (cmd != NULL && used == c->npos) {
        print_command_help(cmd);
        return 0;
    }
    if (c->npos == 1 && print_group(stdout, c->pos[0]))
        return 0;
    return usage_error(NULL, "no command \"%s%s%s\"", c->pos[0], c->npos > 1 ? " " : "",
                       c->npos > 1 ? c->pos[1] : "");
}

/* Whether s is well-formed UTF-8 (no overlong form, surrogate or code point
 * above U+10FFFF): what jansson accepts in a JSON string. */
static int is_utf8(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p != 0) {
        unsigned c = *p, n;
        uint32_t cp;
        if (c < 0x80) {
            p++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF)
            n = 1, cp = c & 0x1F;
        else if (c >= 0xE0 && c <= 0xEF)
            n = 2, cp = c & 0x0F;
        else if (c >= 0xF0 && c <= 0xF4)
            n = 3, cp = c & 0x07;
        else
            return 0;
        for (unsigned i = 1; i <= n; i++) {
            if ((p[i] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i] & 0x3F);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        p += n + 1;
    }
    return 1;
}

/* A word of the command line quoted in a message: control characters
 * (a terminal escape, a line break, the C1 controls U+0080-U+009F) and
 * the bytes of text that is not UTF-8 become '?', and past 60 bytes it is
 * cut, at a character's start, with "..." (at most 66 bytes and a NUL). */
static const char *shown(const char *s, size_t len, char buf[72])
{
    int utf8 = is_utf8(s);
    size_t o = 0;
    for (size_t i = 0; i < len && s[i] != '\0';) {
        unsigned char ch = (unsigned char)s[i];
        if (o >= 60 && (!utf8 || (ch & 0xC0) != 0x80)) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        if (ch == 0xC2 && utf8 && (unsigned char)s[i + 1] >= 0x80 &&
            (unsigned char)s[i + 1] <= 0x9F) {
            buf[o++] = '?';
            i += 2;
            continue;
        }
        buf[o++] = ch < 0x20 || ch == 0x7F || (ch >= 0x80 && !utf8) ? '?' : (char)ch;
        i++;
    }
    buf[o] = '\0';
    return buf;
}

/* Options whose value is a file path or an address, never put in a JSON
 * document: any bytes the file system takes. Every other value becomes a
 * JSON string (a filter, a key, an e-mail address), where text that is not
 * UTF-8 made json_string() return NULL and the member silently absent - a
 * list "filtered" by --status $'\xff' listed everything. */
static const char *const RAW_OPTS[] = {"db=", "data-dir=", "tokens=", "input=", "addr=", NULL};

/* Which option spec `name` matches in `specs`: 1 flag, 2 takes a value, 0 none. */
static int spec_of(const char *const *specs, const char *name, size_t len)
{
    for (size_t i = 0; specs[i] != NULL; i++) {
        size_t sl = strlen(specs[i]);
        int value = specs[i][sl - 1] == '=';
        if (value)
            sl--;
        if (sl == len && strncmp(specs[i], name, len) == 0)
            return value ? 2 : 1;
    }
    return 0;
}

/* Parse options and positional arguments of argv[from..argc). With
 * allow_any (the global options before the command) it stops at the first
 * word and sets *next to its index (argc: none). Returns 0 or EXIT_USAGE. */
static int parse_args(cli *c, int argc, char **argv, int from, int allow_any, int *next)
{
    *next = argc;
    for (int i = from; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            if (c->cmd != NULL && c->cmd->fn == cmd_serve) {
                c->rest = argv + i + 1;
                c->nrest = argc - i - 1;
                return 0;
            }
            for (i++; i < argc; i++) {
                if (c->npos == MAX_ARGS)
                    return usage_error(c, "too many arguments");
                c->pos[c->npos++] = argv[i];
            }
            break;
        }
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            if (allow_any) {
                *next = i; /* the command word */
                return 0;
            }
            if (c->npos == MAX_ARGS)
                return usage_error(c, "too many arguments");
            c->pos[c->npos++] = a;
            continue;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        int kind = spec_of(GLOBAL_OPTS, name, len);
        if (kind == 0 && c->cmd != NULL)
            kind = spec_of(c->cmd->opts, name, len);
        if (kind == 0) {
            char q[72];
            return usage_error(c, "unknown option --%s", shown(name, len, q));
        }
        const char *value = NULL;
        if (kind == 2) {
            if (eq != NULL)
                value = eq + 1;
            else if (i + 1 < argc)
                value = argv[++i];
            else
                return usage_error(c, "--%.*s needs a value", (int)len, name);
        } else if (eq != NULL) {
            return usage_error(c, "--%.*s takes no value", (int)len, name);
        }
        /* An empty value is not a left-out option: --workspace "$W" with W
         * unset would act for EE_CLI_WORKSPACE's workspace instead. */
        if (kind == 2 && value[0] == '\0')
            return usage_error(c, "--%.*s: empty value", (int)len, name);
        if (kind == 2 && !spec_of(RAW_OPTS, name, len) && !is_utf8(value))
            return usage_error(c, "--%.*s: the value is not UTF-8 text", (int)len, name);
        if (c->nopt == MAX_OPTS)
            return usage_error(c, "too many options");
        c->opt_name[c->nopt] = name;
        c->opt_len[c->nopt] = len;
        c->opt_val[c->nopt++] = value;
    }
    return 0;
}

int main(int argc, char **argv)
{
    cli c;
    memset(&c, 0, sizeof c);
    /* Global options before the command. */
    int first = argc, next = argc;
    if (parse_args(&c, argc, argv, 1, 1, &first) != 0)
        return EXIT_USAGE;
    if (first >= argc) {
        if (has_opt(&c, "help") || argc == 1) {
            print_overview(argc == 1 ? stderr : stdout);
            return argc == 1 ? EXIT_USAGE : 0;
        }
        return usage_error(NULL, "no command given");
    }
    int used = 0;
    c.cmd = find_command(argc - first, argv + first, &used);
    if (c.cmd == NULL) {
        if (first + 1 < argc && strcmp(argv[first + 1], "--help") == 0 &&
            print_group(stdout, argv[first]))
            return 0;
        int group = print_group(NULL, argv[first]);
        char q[72];
        if (group && first + 1 >= argc)
            errorf("\"%s\" needs a subcommand", argv[first]);
        else if (group)
            errorf("unknown command \"%s %s\"", argv[first],
                   shown(argv[first + 1], strlen(argv[first + 1]), q));
        else
            errorf("unknown command \"%s\"", shown(argv[first], strlen(argv[first]), q));
        if (!group || !print_group(stderr, argv[first]))
            fputs("(execengine --help lists the commands)\n", stderr);
        return EXIT_USAGE;
    }
    int rc = parse_args(&c, argc, argv, first + used, 0, &next);
    if (rc != 0)
        return rc;
    if (has_opt(&c, "help")) {
        print_command_help(c.cmd);
        return 0;
    }
    c.json = has_opt(&c, "json");
    c.verbose = has_opt(&c, "verbose");
    if (c.npos < c.cmd->min_pos)
        return usage_error(&c, "missing argument");
    if (c.npos > c.cmd->max_pos)
        /* Not echoed: what lands here is often a value given to a command
         * that takes none - "rotate-secret <new secret>" - and stderr goes
         * to logs. */
        return usage_error(&c, "unexpected argument (argument %d; %s takes at most %d)",
                           c.cmd->max_pos + 1, c.cmd->name, c.cmd->max_pos);
    /* Positional arguments are ids, queries and months (JSON strings or
     * library arguments), except catalog import's FILE. */
    if (c.cmd->fn != cmd_catalog_import)
        for (int i = 0; i < c.npos; i++)
            if (!is_utf8(c.pos[i]))
                return usage_error(&c, "argument %d is not UTF-8 text", i + 1);
    if (opens_engine_first(c.cmd) && (rc = open_engine(&c, 0)) != 0)
        goto done;
    rc = c.cmd->fn(&c);
done:
    ee_principal_free(c.principal);
    ee_engine_close(c.engine);
    fflush(stdout);
    return rc;
}
