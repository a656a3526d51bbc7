/* mustache's Set Delimiter tag ({{=<% %>=}}), an extension to Handlebars
 * (docs/templates.md, "Set delimiters"): handlebars.js refuses the tag with
 * a parse error, so every case here is a deliberate difference from it (the
 * reference cases, tests/data/handlebars/cases.json, hold none). The
 * mustache spec's delimiters.json runs in mustache_conformance.c; here are
 * the malformed tags and the rules for Handlebars syntax under changed
 * delimiters. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "notify/handlebars.h"

static ee_status render_raw(const char *tmpl, const json_t *data, const json_t *partials, char **out)
{
    return ee__template_render(tmpl, tmpl != NULL ? strlen(tmpl) : 0, data, partials, out, NULL);
}

static void expect_render(const char *tmpl, const char *data_json, const char *partials_json,
                          const char *want)
{
    json_t *data = json_loads(data_json, JSON_DECODE_ANY, NULL);
    json_t *partials = partials_json ? json_loads(partials_json, 0, NULL) : NULL;
    char *out = NULL;
    ee_status st = render_raw(tmpl, data, partials, &out);
    json_decref(data);
    json_decref(partials);
    cr_assert_eq(st, EE_OK, "%s: %s", tmpl, ee_error_last_message());
    cr_expect_str_eq(out, want, "%s", tmpl);
    ee_free(out);
}

static void expect_error(const char *tmpl, const char *message)
{
    char *out = (char *)1;
    cr_expect_eq(render_raw(tmpl, NULL, NULL, &out), EE_EPARSE, "%s", tmpl);
    cr_expect_null(out, "%s", tmpl);
    cr_expect_not_null(strstr(ee_error_last_message(), message), "%s: %s (wanted %s)", tmpl,
                       ee_error_last_message(), message);
}

/* handlebars.js: "Parse error on line 1" for this template; the extension
 * renders it as mustache does (was the reference case err.set_delimiters). */
Test(delimiters, handlebars_js_refuses_what_we_render)
{
    expect_render("{{=<% %>=}}", "{}", NULL, "");
    expect_render("{{=<% %>=}}(<%x%>)", "{\"x\": \"Hey!\"}", NULL, "(Hey!)");
}

Test(delimiters, malformed_tags_are_parse_errors_with_the_offset)
{
    expect_error("ab{{=<% =}}", "two delimiters, {{=open close=}} (tag at byte 2)");
    expect_error("{{= =}}", "two delimiters, {{=open close=}} (tag at byte 0)");
    expect_error("{{==}}", "two delimiters");
    expect_error("{{=<% %> x=}}", "more than two delimiters");
    expect_error("{{=<%= %>=}}", "may not contain '='");
    expect_error("{{=<% =%>=}}", "may not contain '='");
    expect_error("x {{=<% %>}} y", "set-delimiter tag is never closed (expected '=' and the close "
                                   "delimiter) (tag at byte 2)");
    expect_error("{{=<% %>=}}<%=[ ]=}}", "never closed (expected '=' and the close delimiter) "
                                          "(tag at byte 11)");
    expect_error("{{=<% %>=}}ab<%x", "tag at byte 13 is never closed");
    expect_error("{{=<% %>=}}ab<%#a%>x", "never closed");
    expect_error("{{=<% %>=}}<%#a%>x<%/b%>", "closed by");
}

Test(delimiters, handlebars_only_forms_are_refused_under_changed_ones)
{
    expect_error("{{=<% %>=}}<%{x}%>", "for unescaped output");
    expect_error("{{=<% %>=}}<%~x%>", "whitespace control (~)");
    expect_error("{{=<% %>=}}<%x~%>", "whitespace control (~)");
    expect_error("{{=<% %>=}}<%#if a%>x<%else%>y<%/if%>", "{{else}} and {{^}}");
    expect_error("{{=<% %>=}}<%#if a%>x<% else if b %>y<%/if%>", "{{else}} and {{^}}");
    expect_error("{{=<% %>=}}<%#a%>x<%^%>y<%/a%>", "{{else}} and {{^}}");
    expect_error("{{=<% %>=}}<%#> layout%>x<%/layout%>", "partial blocks");
    expect_error("{{=<% %>=}}<%#*inline \"a\"%>x<%/inline%>", "decorators");
    expect_error("{{=<% %>=}}<%* x%>", "decorators");
}

Test(delimiters, mustache_tags_and_helpers_work_under_changed_ones)
{
    const char *data = "{\"x\": \"<b>\", \"a\": true, \"l\": [\"p\", \"q\"], \"o\": {\"k\": 1}}";
    expect_render("{{=<% %>=}}<%x%>|<%&x%>|<% x %>|<%! a comment %>", data, NULL,
                  "&lt;b&gt;|<b>|&lt;b&gt;|");
    expect_render("{{=<% %>=}}<%#l%>[<%.%>]<%/l%><%^missing%>none<%/missing%>", data, NULL,
                  "[p][q]none");
    expect_render("{{=<% %>=}}<%#if a%>yes<%/if%><%#unless a%>no<%/unless%>", data, NULL, "yes");
    expect_render("{{=<% %>=}}<%#each l%><%@index%>=<%this%> <%/each%>", data, NULL, "0=p 1=q ");
    expect_render("{{=<% %>=}}<%#each l as |v i|%><%i%><%v%><%/each%>", data, NULL, "0p1q");
    expect_render("{{=<% %>=}}<%#with o%><%k%><%/with%> <%lookup o \"k\"%> <%o.k%>", data, NULL,
                  "1 1 1");
    expect_render("{{=[[ ]]=}}[[lookup (lookup . \"o\") \"k\"]]", data, NULL, "1");
    /* an ID runs up to the close delimiter, even one made of ID characters */
    expect_render("{{=$$ $$=}}$$x$$ $$o.k$$", data, NULL, "&lt;b&gt; 1");
    expect_render("{{=| |=}}|x| |#a|y|/a|", data, NULL, "&lt;b&gt; y");
}

Test(delimiters, default_syntax_is_text_under_changed_ones)
{
    const char *data = "{\"x\": \"v\"}";
    expect_render("{{=<% %>=}}{{x}} {{{x}}} {{{{raw}}}}{{/raw}} {{!c}} \\<%x%>", data, NULL,
                  "{{x}} {{{x}}} {{{{raw}}}}{{/raw}} {{!c}} \\v");
    /* back to {{ }}: all of Handlebars again */
    expect_render("{{=<% %>=}}<%={{ }}=%>{{{x}}} {{~ x}} \\{{x}}", data, NULL, "vv {{x}}");
    /* new delimiters may start with {{ */
    expect_render("{{={{[ ]}}=}}{{[x]}} {{x}}", data, NULL, "v {{x}}");
}

Test(delimiters, scope_is_the_rest_of_the_template_text)
{
    const char *data = "{\"x\": \"v\", \"l\": [1]}";
    /* a change inside a section lasts past its end: it is lexical */
    expect_render("{{#l}}{{=<% %>=}}<%/l%><%x%>{{x}}", data, NULL, "v{{x}}");
    /* partials start with {{ }}; theirs does not leak back */
    expect_render("{{=<% %>=}}<%> p%>|<%x%>{{x}}", data, "{\"p\": \"{{x}}{{=[ ]=}}[x]{{x}}\"}",
                  "vv{{x}}|v{{x}}");
    /* a {{= in a tag's text, or escaped, is not a set-delimiter tag */
    expect_render("\\{{=<% %>=}}{{x}}", data, NULL, "{{=<% %>=}}v");
    char *out = (char *)1;
    cr_expect_eq(render_raw("{{x {{=<% %>=}}", NULL, NULL, &out), EE_EPARSE);
    cr_expect_eq(render_raw("{{~=<% %>=}}", NULL, NULL, &out), EE_EPARSE);
}

Test(delimiters, standalone_like_a_comment)
{
    expect_render("a\n  {{=<% %>=}}  \nb <%x%>\n  <%={{ }}=%>\n{{x}}", "{\"x\": 1}", NULL,
                  "a\nb 1\n1");
}

Test(delimiters, bounds_hold)
{
    /* many changes and long delimiters: linear, no limit of their own */
    size_t n = 20000;
    char *t = malloc(n * 12 + 1);
    cr_assert_not_null(t);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(t + k, i % 2 ? "<%={{ }}=%>" : "{{=<% %>=}}", 11);
        k += 11;
    }
    t[k] = '\0';
    char *out = NULL;
    cr_expect_eq(render_raw(t, NULL, NULL, &out), EE_OK, "%s", ee_error_last_message());
    cr_expect_str_eq(out, "");
    ee_free(out);
    free(t);
}
