/*
 * lib/core/core.h - the core module's internal interface, shared by every
 * module of the library (never installed). Functions here are ee__-prefixed
 * and hidden from the shared object's exports.
 */
#ifndef EE_CORE_CORE_H
#define EE_CORE_CORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "execengine/config.h"
#include "execengine/errors.h"

#if defined(__GNUC__)
#  define EE__PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#  define EE__PRINTF(fmt, args)
#endif

/* Longest error message kept per thread, including the terminator. */
#define EE__ERROR_MSG_MAX 1024
/* Longest log line handed to the callback, including the terminator. */
#define EE__LOG_LINE_MAX 2048

/* ---- errors (error.c) ------------------------------------------------ */

/* Record `status` and a printf-style message as this thread's last error
 * (the message is redacted) and return `status`, so callers can write
 * `return ee__error(EE_EINVAL, "...")`. */
ee_status ee__error(ee_status status, const char *fmt, ...) EE__PRINTF(2, 3);

/* As ee__error(), also keeping an upstream HTTP status and a JSON detail
 * (stolen: the reference passes to the error, even on failure; may be NULL). */
ee_status ee__error_full(ee_status status, int http_status, json_t *detail,
                         const char *fmt, ...) EE__PRINTF(4, 5);

/* This thread's last error, set aside and put back: for work done on the
 * side of a call (an audit entry written after its action) whose own
 * failure must not replace the error the call reports. Restore takes the
 * saved detail back (the saved copy is then empty). */
typedef struct ee__error_saved {
    int status;
    int http_status;
    char message[EE__ERROR_MSG_MAX];
    json_t *detail;
} ee__error_saved;
void ee__error_save(ee__error_saved *saved);
void ee__error_restore(ee__error_saved *saved);

/* Fill *out with this thread's last error as an error document (errors.h)
 * and return `status`. For calls with a `char **out` document parameter. */
ee_status ee__error_out(char **out, ee_status status);

/* ---- redaction (redact.c) -------------------------------------------- */

/* Shortest secret the registry accepts: shorter ones would redact noise. */
#define EE__REDACT_MIN_LEN 4

/* Register a secret value, process-wide, so every log line and error
 * message is scrubbed of it. Registrations are counted: each register is
 * paired with one unregister. Returns EE_OK or EE_ENOMEM; values shorter
 * than EE__REDACT_MIN_LEN are ignored. Thread-safe. */
ee_status ee__redact_register(const char *secret, size_t len);
void ee__redact_unregister(const char *secret, size_t len);

/* Scrub `buf` (NUL-terminated, capacity `cap`) in place: registered
 * secrets and token-shaped substrings become "[REDACTED]". The result is
 * truncated to cap-1 bytes if it would grow past it. Thread-safe. */
void ee__redact(char *buf, size_t cap);
/* The names the redactor knows (lower case, each ends where a value
 * starts; JSON ones also match with spaces around the colon), for tests
 * that must cover every one. */
const char *const *ee__redact_markers(size_t *count);

/* ---- secrets in memory ------------------------------------------------- */

/* Duplicate a secret (NULL on ENOMEM); free it with ee__secret_free(),
 * which wipes it first. Both accept NULL. */
char *ee__secret_dup(const char *s);
void ee__secret_free(char *s);

/* ---- logging (log.c) ------------------------------------------------- */

typedef struct ee__logger {
    ee_log_fn fn;
    ee_log_level min_level;
    void *payload;
} ee__logger;

/* Format, redact and deliver a line if the logger wants this level. */
void ee__logv(const ee__logger *lg, ee_log_level level, const char *module,
              const char *fmt, va_list ap) EE__PRINTF(4, 0);
void ee__log(const ee__logger *lg, ee_log_level level, const char *module,
             const char *fmt, ...) EE__PRINTF(4, 5);
/* A diagnostic a linked library would otherwise print (a libpq notice:
 * "WARNING:  terminating connection ...\n"): its severity word picks the
 * level, its lines are joined into one, and it is redacted and delivered
 * like any line. `lg` may be NULL (the handle was opened outside an
 * engine): the text is dropped, never printed. */
void ee__log_foreign(const ee__logger *lg, const char *module, const char *text);

/* ---- host callbacks held back (log.c) -------------------------------- */

/* While a thread holds a lock that another thread's public call may wait
 * for (a storage write transaction, a module's build lock), it must call
 * no host callback: a host that runs its callbacks on one thread (Node
 * runs them on its event loop, and the thread calling back waits for it)
 * deadlocks when that thread is the one waiting for the lock. Between
 * ee__hold_begin() and the matching ee__hold_end() on a thread, log lines
 * are formatted and redacted at once but queued (at most
 * EE__HOLD_LINES_MAX; more are counted and reported as one line), and
 * delivered by the outermost ee__hold_end(), after the lock is let go. The
 * engine's clock is read before (lib/engine/engine.h, ee__engine_hold_*).
 * Nestable; per thread. */
#define EE__HOLD_LINES_MAX 64
void ee__hold_begin(void);
void ee__hold_end(void);
/* Whether the calling thread is inside a hold. */
bool ee__hold_active(void);
/* fn(text, payload) now, or - inside a hold - with the held log lines, in
 * order, at its end (text is copied). For the host's other callbacks (a
 * quota alert); not counted against EE__HOLD_LINES_MAX. */
void ee__hold_call(void (*fn)(const char *text, void *payload), void *payload,
                   const char *text);

/* ---- money and decimals (money.c) ------------------------------------ */

/* Parse a non-negative decimal ("10", "0.25") into an integer scaled by
 * 10^scale (scale 9 = nano-units, 2 = basis points of a percent). Rejects
 * signs, exponents, spaces, more than `scale` fractional digits, and
 * overflow. Returns EE_OK or EE_EINVAL (no message set). */
ee_status ee__decimal_parse(const char *text, int scale, int64_t *out);

/* Format `value` scaled by 10^scale as a decimal with exactly `scale`
 * fractional digits ("10.000000000"). buf needs 32 bytes. */
void ee__decimal_format(int64_t value, int scale, char buf[32]);

/* Parse a whole decimal integer with optional leading '-'. EE_EINVAL on
 * anything else, including overflow. */
ee_status ee__int_parse(const char *text, int64_t *out);

/* ---- JSON helpers (json.c) ------------------------------------------- */

/* `v` as compact JSON text (malloc'ed, NUL-terminated; *len, if given, its
 * length), written as json_dumps(JSON_COMPACT | JSON_ENCODE_ANY) writes it -
 * members in their order, the same escapes - except reals: the shortest
 * decimal that reads back as the same double (0.000123, where jansson
 * writes 0.00012300000000000001). NULL when out of memory or when a string
 * is not UTF-8 (json_dumps refuses those too). */
char *ee__json_text(const json_t *v, size_t *len);

/* Serialise `doc` compactly into *out (owned by the caller, ee_free()),
 * then release `doc` (stolen, may be NULL which yields ENOMEM: the typical
 * cause of a NULL document is a failed allocation while building it). */
ee_status ee__json_out(char **out, json_t *doc);

/* The members every paged query shares: "limit" (an integer 1..max, `def`
 * when absent) and "cursor" (a string, NULL when absent; borrowed from q).
 * EE_EINVAL with a message naming `what` and the member. */
ee_status ee__json_page_args(const json_t *q, const char *what, size_t def, size_t max,
                             size_t *limit_out, const char **cursor_out);

/* A page's answer: if `status` is EE_OK, {"data": data, "nextCursor":
 * next} into *out, else the error document (as ee__error_out). Always
 * releases data (stolen, may be NULL on failure) and next (ee_free). */
ee_status ee__json_page_out(char **out, ee_status status, json_t *data, char *next);

/* Whether JSON text nests at most `max_depth` levels of objects and arrays
 * (strings and escapes skipped). One linear pass, to run before jansson,
 * which recurses once per level, ever sees untrusted text. */
bool ee__json_depth_ok(const char *text, size_t len, size_t max_depth);

/* The one bounded parse of JSON text a caller hands the library. Looks at
 * no more than `max_bytes` + 1 bytes before refusing (a 100 MB document is
 * refused without being read), then checks UTF-8 and nesting
 * (`max_depth`) before jansson sees the text; duplicate members are
 * refused. `flags` are extra jansson decoding flags (JSON_DECODE_ANY ...).
 * `what` names the document in messages ("ee_quota_admit request").
 * Returns EE_OK with *out (new reference); EE_EINVAL (text NULL);
 * EE_ETOOBIG ("exceeds the size limit of N bytes", or too deep);
 * EE_EPARSE (not UTF-8, not JSON). */
ee_status ee__json_parse(const char *text, size_t max_bytes, size_t max_depth, size_t flags,
                         const char *what, json_t **out);

/* ee__json_parse() flag (not jansson's): refuse, with EE_EINVAL naming the
 * byte offset, numbers a double or int64 cannot hold as written - a
 * non-zero value that underflows to 0 or to a subnormal (1e-400 would
 * silently be 0) - and negative zero (-0, -0.0). For documents whose
 * numbers are limits, prices, multipliers and counts. */
#define EE__JSON_EXACT_NUMBERS ((size_t)0x40000000)

/* Refuse members of the object `obj` that are not in `allowed` (a
 * NULL-terminated list): EE_EINVAL with a message naming the first unknown
 * member and its JSON pointer (`pointer` is the object's own pointer, ""
 * for the document). Used on every request document a caller sends, so a
 * misspelt member is an error, never silently ignored. */
ee_status ee__json_check_members(const json_t *obj, const char *const *allowed, const char *what,
                                 const char *pointer);

/* ---- files (file.c) --------------------------------------------------- */

/* Read the whole file at `path`, at most `max` bytes, into *text
 * (malloc'ed, NUL-terminated, free()) and *len. Returns EE_OK;
 * EE_ENOTFOUND (no such file); EE_EIO (cannot open or read it);
 * EE_ETOOBIG (larger than max); EE_ENOMEM. Messages name the path. */
ee_status ee__read_file(const char *path, size_t max, char **text, size_t *len);

/* ---- growable arrays (misc.c) ---------------------------------------- */

/* Grow the array `ptr` of *cap elements of `elem_size` bytes: to twice
 * *cap, or `first_cap` when *cap is 0. Returns the moved array with *cap
 * updated, or NULL (nothing changed: `ptr` still holds what it held) when
 * memory runs out. */
void *ee__grow(void *ptr, size_t *cap, size_t elem_size, size_t first_cap);

/* ---- document ids (oid.c) --------------------------------------------- */

/* A new 12-byte ObjectId (MongoDB's layout: seconds, a random part per
 * process - a forked child gets its own - and a counter), without a system
 * call. Thread-safe. */
void ee__oid_new(uint8_t out[12]);

/* ---- clock (clock.c) ------------------------------------------------- */

int64_t ee__clock_system_ms(void *payload);

/* Monotonic milliseconds: waits, paces and budgets (not the engine's
 * clock, which a host or a test may hold still). */
int64_t ee__mono_ms(void);

/* The CLOCK_REALTIME instant ms milliseconds from now, as
 * pthread_cond_timedwait() takes it. */
void ee__deadline_after_ms(int64_t ms, struct timespec *out);

/* ISO 8601 UTC text with milliseconds ("2026-03-02T00:00:00.000Z") of ms
 * since the epoch (the answers' dates). */
void ee__time_iso(int64_t ms, char out[32]);

/* ---- versioned tables (vtable.c) ------------------------------------- */

/* The rule every versioned table a host hands the library follows (storage,
 * counters and transport backends): the first field is the version, later
 * versions only append slots. Refuses version 0 and versions past
 * `nversions` with EE_EVERSION (the message names `what`, "storage backend
 * table"); otherwise copies the first sizes_by_version[version - 1] bytes of
 * `src` into `dst` (dst_size bytes) and zeroes the rest, so the slots a
 * later version adds are NULL. Nothing is allocated: a refused table's
 * context stays its caller's. */
ee_status ee__vtable_adopt(void *dst, size_t dst_size, const void *src, unsigned version,
                           const size_t *sizes_by_version, size_t nversions, const char *what);
/* ee__vtable_adopt() of the table `src` into `*dst` (same type), its sizes
 * by version the array `sizes`. */
#define EE__VTABLE_ADOPT(dst, src, sizes, what)                                                 \
    ee__vtable_adopt((dst), sizeof *(dst), (src), (src)->version, (sizes),                       \
                     sizeof(sizes) / sizeof((sizes)[0]), (what))

/* ---- config internals (config.c) ------------------------------------- */

/* Core knows no option by name: each module lists its own options in an
 * ee__option table, the engine (lib/engine/) gathers them in one
 * ee__option_set and hands it to ee__config_new_over(). */
typedef enum {
    EE__OPT_STRING,
    EE__OPT_HOST,
    EE__OPT_URL,
    EE__OPT_EMAIL,
    EE__OPT_KEY,      /* secret; a summary may show its last four characters */
    EE__OPT_PASSWORD, /* secret; a summary shows only whether it is set */
    EE__OPT_INT,
    EE__OPT_MONEY,    /* USD text, nano-USD value */
    EE__OPT_PERCENT,  /* percent text, basis-point value */
    EE__OPT_STORAGE_URI,
    EE__OPT_COUNTERS_URI,
    EE__OPT_PATH,     /* a filesystem path */
    EE__OPT_DB_TYPE   /* sqlite or postgres */
} ee__opt_type;

/* Longest value any option takes, and the usual bound of a URL option. */
#define EE__OPT_MAX_TEXT 4096
#define EE__OPT_MAX_URL 2048

/* One option: its key (also its environment variable), type, default (text
 * form, NULL for none), numeric range (text types: length in bytes) and
 * description. `not_in_effect`: parsed, listed and checked but without
 * effect yet (listed with "inEffect": false). `default_fn`, when not NULL,
 * computes the default instead of `def` (malloc'ed; NULL on ENOMEM). */
typedef struct ee__option {
    const char *name;
    ee__opt_type type;
    const char *def;
    int64_t min, max;
    const char *desc;
    bool not_in_effect;
    char *(*default_fn)(void);
} ee__option;

/* An ee__option table entry; EE__OPTION_X adds one designated field
 * (.not_in_effect = true, .default_fn = fn). */
#define EE__OPTION(name_, type_, def_, min_, max_, desc_)                                         \
    {.name = (name_), .type = (type_), .def = (def_), .min = (min_), .max = (max_), .desc = (desc_)}
#define EE__OPTION_X(name_, type_, def_, min_, max_, desc_, extra_)                               \
    {.name = (name_), .type = (type_), .def = (def_), .min = (min_), .max = (max_),               \
     .desc = (desc_), extra_}

/* Every option a config holds, in listing order. Lives forever. */
typedef struct ee__option_set {
    const ee__option *const *options;
    size_t count;
} ee__option_set;

/* ee_config_new() and ee_config_options_json() over a given set of
 * options (lib/engine/ passes the registry's). */
ee_status ee__config_new_over(ee_config **out, const ee__option_set *set);
ee_status ee__config_options_json_over(char **out, const ee__option_set *set);

/* Borrow an option's effective text value (set or default); NULL if it has
 * none or the key is unknown. Secrets are returned too: internal use only,
 * never log or copy them anywhere but into ee__secret_dup(). The pointer
 * lives until the option is changed or the config freed. */
const char *ee__config_text(const ee_config *cfg, const char *key);

/* An integer-valued option's effective value (0 for an unknown key). */
int64_t ee__config_int(const ee_config *cfg, const char *key);

/* Whether `s` passes the e-mail option type's check, a plain RFC 5322
 * addr-spec in ASCII (dot-atom local part of at most 64 bytes, '@', a
 * host name of two or more labels; no display name, space, 8-bit byte or
 * header special): the one address rule of the engine, for the From: and
 * To: headers and the SMTP envelope alike. */
bool ee__config_email_ok(const char *s);

/* Whether the option was set explicitly (not its default, not derived). */
bool ee__config_explicit(const ee_config *cfg, const char *key);

/* Replace a text option's value by `text` (stolen, even on failure; wiped
 * on free if the option is a secret), not marked as set: a value derived
 * from other options by a resolve hook. EE_EINVAL for an unknown key. */
ee_status ee__config_derive(ee_config *cfg, const char *key, char *text);

/* The config's values as ee_config_summary_json() shows them (new
 * reference; NULL on ENOMEM). */
json_t *ee__config_summary(const ee_config *cfg);

/* The config's clock and logger. */
void ee__config_clock(const ee_config *cfg, ee_clock_fn *fn, void **payload);
void ee__config_logger(const ee_config *cfg, ee__logger *out);

/* Call fn for every secret option that holds a value. */
void ee__config_each_secret(const ee_config *cfg,
                            void (*fn)(const char *value, void *payload), void *payload);

/* ---- text and URIs (text.c) ------------------------------------------ */

/* Whether s[0..len) is well-formed UTF-8 (no overlongs, no surrogates). */
bool ee__utf8_valid(const char *s, size_t len);
/* Whether s[0..len) is a token that goes into an HTTP header as it is (an
 * API key, a bearer token): 1 or more bytes of printable ASCII without
 * spaces, 0x21..0x7E. No NUL, control character, space or 8-bit byte. */
bool ee__text_token_ok(const char *s, size_t len);
/* The next key of a comma-separated key list at *cursor (an option such
 * as PLATFORM_SERPER_KEY): spaces and tabs around each are trimmed and
 * empty ones skipped. Returns its first byte and *len its length, or NULL
 * at the list's end; advances *cursor (NULL once the list is read). */
const char *ee__key_list_next(const char **cursor, size_t *len);
/* Whether s[0..len) is a name a person gives (a key's or a credential's
 * name): 1..max bytes of well-formed UTF-8 without NUL or control
 * characters, C0 (U+0000..U+001F), DEL or C1 (U+0080..U+009F). The
 * catalog's rule for names (lib/catalog/catalog_doc.c), plus C1. */
bool ee__text_name_ok(const char *s, size_t len, size_t max);
/* The control character at p in valid UTF-8 (p[1] readable when p[0] is
 * not NUL): 1 for C0 (NUL included) or DEL, 2 for C1 (U+0080..U+009F, bytes
 * C2 80..C2 9F), 0 for anything else. */
static inline size_t ee__text_control_at(const unsigned char *p)
{
    if (p[0] < 0x20 || p[0] == 0x7f)
        return 1;
    return p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f ? 2 : 0;
}
/* n bytes as 2n lowercase hex digits and a terminator into out (2n + 1). */
void ee__hex_encode(const uint8_t *in, size_t n, char *out);
/* The value of one hex digit (either case), or -1. */
int ee__hex_digit(char c);
/* 2n hex digits (either case) of `hex` into n bytes of out; false (out
 * then partly written) when one of them is not a hex digit. The caller
 * checks the length. */
bool ee__hex_decode(const char *hex, size_t n, uint8_t *out);

/* Locate the password of a URI's userinfo ("scheme://user:PASS@host...").
 * Returns false when there is none. */
bool ee__uri_password(const char *uri, size_t *start, size_t *len);

/* A copy of `uri` with its userinfo password replaced by "***" (ee_free()),
 * or NULL on ENOMEM. */
char *ee__uri_masked(const char *uri);

/* A growable NUL-terminated text: start zeroed ({0}), append, read p/len,
 * free(p). After an allocation failure `oom` is set and appends do
 * nothing, so a builder checks once at its end. */
typedef struct ee__text {
    char *p;
    size_t len, cap;
    bool oom;
} ee__text;
void ee__text_add(ee__text *t, const void *data, size_t n);
void ee__text_puts(ee__text *t, const char *s);

/* Copy `in` into out[cap] for quoting in a message: control characters
 * become '?', and anything past cap-4 bytes is cut and marked "...". */
void ee__quote_for_message(const char *in, char *out, size_t cap);

/* The parts of a URI that are safe to quote in a message, into out[cap]:
 * its scheme, "://", its host and port, "***@" in place of any userinfo
 * (up to the last '@') and "..." for the rest; "***" in place of an
 * authority that is not a plain host[:port] (a "user:password" with no
 * host). Returns false, writing nothing, when `uri` does not start with
 * "scheme://": then it may be anything, and nothing of it may be quoted. */
bool ee__uri_skeleton(const char *uri, char *out, size_t cap);

/* The longest prefix of s[0..len) of at most `max` bytes that ends on a
 * UTF-8 character boundary (never splits a sequence): where to cut text. */
size_t ee__utf8_cut(const char *s, size_t len, size_t max);

/* The last `chars` characters of s[0..len) (a key's "last four"), or NULL
 * when they are not valid UTF-8: never a byte cut inside a character. */
const char *ee__utf8_tail(const char *s, size_t len, size_t chars);

/* Drop an incomplete UTF-8 sequence at the end of `s` (what snprintf()
 * leaves when it cuts a character in two). Use after every snprintf() whose
 * arguments may be caller text and whose result may be cut. */
void ee__utf8_trim(char *s);

/* Copy `in` into out[cap] (cap >= 1), cut at a character boundary if it
 * does not fit. Returns whether it was cut. */
bool ee__utf8_copy(char *out, size_t cap, const char *in);

/* Replace every byte that does not start a well-formed UTF-8 sequence by
 * '?', in place, so the text is safe to put in JSON. */
void ee__utf8_sanitize(char *s);

/* ---- ids (principal.c) ------------------------------------------------- */

/* Whether `id` is 1..EE_PRINCIPAL_ID_MAX bytes of [A-Za-z0-9_.:@-]. */
bool ee__id_valid(const char *id);

#endif
