/*
 * lib/notify/mustache.h - the email template renderer: mustache
 * (interpolation, sections, inverted sections, comments, set delimiters,
 * partials) over JSON data, as the official mustache spec defines it.
 *
 * Escaping: {{name}} escapes & " < > for HTML; {{{name}}} and {{&name}} do
 * not. Values: strings as they are, numbers in their shortest exact form,
 * true/false as words, null and missing names as nothing, objects and
 * arrays as nothing. Falsy for sections: missing, null, false, an empty
 * array, an empty string.
 *
 * Bounded: templates (and each partial) up to EE__MUSTACHE_MAX_TEMPLATE
 * bytes, output up to EE__MUSTACHE_MAX_OUTPUT, sections and partials
 * nested up to EE__MUSTACHE_MAX_DEPTH (so a partial that includes itself
 * ends), and work up to EE__MUSTACHE_MAX_WORK units per render: one per
 * node visited, one per context-stack level a name lookup inspects, one per
 * EE__MUSTACHE_BYTES_PER_UNIT bytes of partial text parsed. Output alone
 * cannot bound a render: sections over lists whose bodies print nothing
 * multiply work without writing a byte. Pure and thread-safe.
 */
#ifndef EE_NOTIFY_MUSTACHE_H
#define EE_NOTIFY_MUSTACHE_H

#include <jansson.h>

#include "execengine/errors.h"

#define EE__MUSTACHE_MAX_TEMPLATE (1024 * 1024)
#define EE__MUSTACHE_MAX_OUTPUT (16 * 1024 * 1024)
#define EE__MUSTACHE_MAX_DEPTH 64
#define EE__MUSTACHE_MAX_DELIM 16
/* About a hundred milliseconds of rendering (bench "template.worst"). */
#define EE__MUSTACHE_MAX_WORK 4000000u
#define EE__MUSTACHE_BYTES_PER_UNIT 1u

/* Render `tmpl` against `data` (any JSON value). `partials` (may be NULL)
 * maps partial names to template strings. *out (malloc'ed, ee_free()) gets
 * the text. Returns EE_OK; EE_EPARSE (unclosed or mismatched section,
 * unclosed tag, bad delimiters: the message gives the byte offset);
 * EE_ETOOBIG (a size, depth or work limit); EE_EINVAL (NULL template or out);
 * EE_ENOMEM. */
ee_status ee__mustache_render(const char *tmpl, const json_t *data, const json_t *partials,
                              char **out);

#endif
