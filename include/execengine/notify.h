/*
 * execengine/notify.h - e-mail templates: render a Handlebars template
 * (handlebars.js 4.x compatible) over JSON data, so hosts can preview the
 * subject and body of a results e-mail exactly as it will be sent.
 *
 * docs/templates.md lists the syntax and helpers supported (if, else,
 * else if, unless, each with @index/@key/@first/@last, with, lookup, ../
 * paths, {{{raw}}} and {{&raw}}, ~ whitespace control, comments, partials
 * with a context and hash parameters), what handlebars.js does that this
 * does not, and where Handlebars differs from mustache.
 *
 * {{value}} escapes & < > " ' ` = as handlebars.js does (&amp; &lt; &gt;
 * &quot; &#x27; &#x60; &#x3D;). Values are data: text in a value that looks
 * like a template ("{{x}}") is printed, never parsed.
 *
 * Limits (EE_ETOOBIG past them, with a message naming the limit): the
 * template and each partial up to EE_TEMPLATE_MAX_TEMPLATE bytes, the data
 * and partials JSON up to EE_TEMPLATE_MAX_DATA bytes and
 * EE_TEMPLATE_MAX_DEPTH levels, blocks and partials nested up to
 * EE_TEMPLATE_MAX_DEPTH, output up to EE_TEMPLATE_MAX_OUTPUT bytes, and a
 * work budget per render (nodes visited, names looked up, list items,
 * partial bytes parsed) so that no template runs unbounded.
 */
#ifndef EXECENGINE_NOTIFY_H
#define EXECENGINE_NOTIFY_H

#include <stddef.h>

#include "common.h"
#include "errors.h"

EE_BEGIN_DECLS

#define EE_TEMPLATE_MAX_TEMPLATE (1024 * 1024)
#define EE_TEMPLATE_MAX_DATA (16 * 1024 * 1024)
#define EE_TEMPLATE_MAX_OUTPUT (16 * 1024 * 1024)
#define EE_TEMPLATE_MAX_DEPTH 64

/**
 * Render the Handlebars template `template_text` (UTF-8, NUL-terminated)
 * against `data_json` (the JSON text of any value; NULL renders with no
 * data) with the partials of `partials_json` (NULL, or the JSON text of an
 * object mapping each partial's name to its template text).
 *
 * *out is the rendered text, owned by the caller (ee_free()). It is
 * NUL-terminated, but a value holding a NUL byte ("\u0000" in the data) is
 * rendered whole, so the text may hold NUL: use ee_template_render_len()
 * to get its length. On failure *out is NULL and ee_error_last_message()
 * says what was wrong and where (byte offset in the template).
 *
 * Returns:
 *   EE_OK;
 *   EE_EINVAL     template_text or out NULL, partials_json not an object
 *                 of strings;
 *   EE_EPARSE     data_json or partials_json not JSON or not UTF-8; the
 *                 template (or a partial it uses) malformed or using
 *                 syntax this renderer does not support (set delimiters,
 *                 raw blocks, partial blocks, inline partials, block
 *                 parameters); a helper called with the wrong arguments
 *                 ({{#if}} with none);
 *   EE_ENOTFOUND  a partial the template uses is not in partials_json, or
 *                 a helper it calls does not exist ({{format date}}):
 *                 handlebars.js throws for both; a partial or helper in a
 *                 branch not taken is not looked up;
 *   EE_ETOOBIG    a limit above;
 *   EE_ENOMEM.
 * Thread-safe: pure, it shares no state between calls.
 */
EE_API ee_status ee_template_render(const char *template_text, const char *data_json,
                                    const char *partials_json, char **out);

/**
 * As ee_template_render(), also giving the length of *out in *out_len
 * (may be NULL; 0 on failure), which counts NUL bytes that values put in
 * the text.
 */
EE_API ee_status ee_template_render_len(const char *template_text, const char *data_json,
                                        const char *partials_json, char **out, size_t *out_len);

EE_END_DECLS

#endif
