/*
 * lib/notify/handlebars.h - the e-mail template renderer: Handlebars
 * (handlebars.js 4.x is the reference) over JSON data. docs/templates.md
 * lists the syntax, the helpers and where it differs from mustache.
 *
 * Supported: {{path}} (escapes & < > " ' ` = as handlebars.js does),
 * {{{path}}} and {{&path}} (not escaped), paths with . or /, this, ../,
 * [literal] segments, @index @key @first @last @root and @../x data, .length
 * of arrays and strings; the helpers if (includeZero=), unless, each
 * (arrays and objects, in JavaScript's key order), with, lookup, log;
 * {{else}}, {{^}} and {{else helper ...}} chains; {{^name}} inverse blocks;
 * blocks over plain values (handlebars' blockHelperMissing); block
 * parameters; subexpressions (lookup a b); string, number,
 * true/false/null/undefined literals; comments {{! }} and {{!-- --}} (the
 * latter may hold }}); whitespace control {{~ ~}}; standalone lines; \{{
 * escapes; raw blocks {{{{name}}}} ... {{{{/name}}}}; partials {{> name}},
 * {{> name ctx}}, {{> name key=value}}, {{> (lookup . "p")}} with output
 * indentation; partial blocks {{#> name}} ... {{/name}} with
 * {{> @partial-block}}; inline partials {{#*inline "name"}}. The template is
 * lexed by handlebars.js's lexer rules, parsed by its grammar and put
 * through its whitespace-control pass.
 * Not supported (EE_EPARSE): set delimiters, decorators other than inline.
 *
 * Values: strings as they are (NUL bytes included: the output has a
 * length), numbers as JavaScript prints its doubles, true/false, null and
 * missing as nothing, arrays joined with "," and objects as "[object Object]" -
 * what handlebars.js prints.
 *
 * Bounded: templates (and each partial) up to EE__TEMPLATE_MAX_TEMPLATE
 * bytes, output up to EE__TEMPLATE_MAX_OUTPUT, blocks and partials nested up
 * to EE__TEMPLATE_MAX_DEPTH (a partial, partial block or inline partial that
 * includes itself ends), and work up to EE__TEMPLATE_MAX_WORK units per
 * render: one per node visited, per path segment or context level looked
 * up, per iteration, per array item printed, per partial block or inline
 * partial called, and per EE__TEMPLATE_BYTES_PER_UNIT bytes of partial text
 * parsed (a partial is parsed at each use). Pure and thread-safe.
 */
#ifndef EE_NOTIFY_HANDLEBARS_H
#define EE_NOTIFY_HANDLEBARS_H

#include <jansson.h>
#include <stddef.h>

#include "execengine/errors.h"
#include "execengine/notify.h"

#define EE__TEMPLATE_MAX_TEMPLATE EE_TEMPLATE_MAX_TEMPLATE
#define EE__TEMPLATE_MAX_OUTPUT EE_TEMPLATE_MAX_OUTPUT
#define EE__TEMPLATE_MAX_DEPTH EE_TEMPLATE_MAX_DEPTH
/* About a hundred milliseconds of rendering (bench "template.worst"). */
#define EE__TEMPLATE_MAX_WORK 4000000u
#define EE__TEMPLATE_BYTES_PER_UNIT 1u

/* Render the template `tmpl` (`tlen` bytes) against `data` (any JSON value,
 * NULL is undefined). `partials` (may be NULL) maps partial names to
 * template strings. *out (malloc'ed, ee_free(); NUL-terminated, but values
 * may hold NUL) gets the text and *out_len (may be NULL) its length.
 * Returns EE_OK; EE_EPARSE (malformed template or partial, unsupported
 * syntax, a helper called with the wrong arguments: the message gives the
 * byte offset); EE_ENOTFOUND (a partial or helper that does not exist);
 * EE_ETOOBIG (a size, depth or work limit); EE_EINVAL (NULL template or
 * out); EE_ENOMEM. */
ee_status ee__template_render(const char *tmpl, size_t tlen, const json_t *data,
                              const json_t *partials, char **out, size_t *out_len);

#endif
