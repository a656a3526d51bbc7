/* The renderer beyond the reference cases: limits, errors, escaping,
 * numbers, NUL bytes, template injection. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "notify/handlebars.h"

static ee_status render_raw(const char *tmpl, const json_t *data, const json_t *partials, char **out)
{
    return ee__template_render(tmpl, tmpl != NULL ? strlen(tmpl) : 0, data, partials, out, NULL);
}

static char *render(const char *tmpl, const char *data_json, const char *partials_json)
{
    json_t *data = json_loads(data_json, JSON_DECODE_ANY, NULL);
    json_t *partials = partials_json ? json_loads(partials_json, 0, NULL) : NULL;
    char *out = NULL;
    ee_status st = render_raw(tmpl, data, partials, &out);
    json_decref(data);
    json_decref(partials);
    cr_assert_eq(st, EE_OK, "%s: %s", tmpl, ee_error_last_message());
    return out;
}

Test(template, an_email_body)
{
    char *out = render("Hello {{user.name}},\n{{#results}}- {{title}} ({{score}})\n{{/results}}"
                       "{{^results}}Nothing today.\n{{/results}}Cost: ${{cost.usd}}\n",
                       "{\"user\": {\"name\": \"Ada <ada@example.com>\"},"
                       " \"results\": [{\"title\": \"A & B\", \"score\": 0.5}, {\"title\": \"C\", \"score\": 3}],"
                       " \"cost\": {\"usd\": \"0.000450000\"}}",
                       NULL);
    cr_expect_str_eq(out, "Hello Ada &lt;ada@example.com&gt;,\n- A &amp; B (0.5)\n- C (3)\n"
                          "Cost: $0.000450000\n");
    ee_free(out);
}

Test(template, values_and_falsy_sections)
{
    /* as handlebars.js prints them */
    char *out = render("[{{a}}|{{b}}|{{c}}|{{d}}|{{e}}|{{f}}|{{g}}]", "{\"a\": true, \"b\": false,"
                       " \"c\": null, \"d\": 1.25, \"e\": {\"x\": 1}, \"f\": [1, null, 2],"
                       " \"g\": 1e-7}", NULL);
    cr_expect_str_eq(out, "[true|false||1.25|[object Object]|1,,2|1e-7]");
    ee_free(out);
    /* #if: "" is falsy; a plain {{#s}} over "" renders with it (handlebars.js) */
    out = render("{{#if s}}yes{{else}}no{{/if}}|{{#s}}[{{.}}]{{/s}}{{^s}}inverse{{/s}}", "{\"s\": \"\"}",
                 NULL);
    cr_expect_str_eq(out, "no|[]");
    ee_free(out);
}

Test(template, malformed_templates)
{
    const char *bad[][2] = {{"{{#a}}never closed", "never closed"},
                            {"{{/a}}", "matches no open block"},
                            {"{{#a}}{{/b}}", "is closed by {{/b}}"},
                            {"{{unclosed", "never closed"},
                            {"{{!-- unclosed", "never closed"},
                            {"{{=<% =}}", "two delimiters"},
                            {"{{{{raw}}}} x", "raw block is never closed"},
                            {"{{{{raw}}}} x {{{{/rat}}}}", "closed by another name"},
                            {"{{#> layout}}x{{else}}y{{/layout}}", "takes none"},
                            {"{{#*inline \"a\"}}x{{else}}y{{/inline}}", "decorator block"},
                            {"{{* foo}}", "decorators other than"},
                            {"{{#*foo}}x{{/foo}}", "decorators other than"},
                            {"{{> a b c}}", "one context"},
                            {"{{#each l as |x}}{{x}}{{/each}}", "malformed block parameters"},
                            {"{{#if}}x{{/if}}", "exactly one argument"},
                            {"{{#if a}}{{else}}{{else}}{{/if}}", "second {{else}}"},
                            {"{{else}}", "outside a block"},
                            {"{{a b=1 c}}", "positional argument after"},
                            {"{{a.this}}", "invalid path"},
                            {"{{\"open}}", "unclosed string"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *out = (char *)1;
        cr_expect_eq(render_raw(bad[i][0], NULL, NULL, &out), EE_EPARSE, "%s", bad[i][0]);
        cr_expect_null(out);
        cr_expect_not_null(strstr(ee_error_last_message(), bad[i][1]), "%s: %s", bad[i][0],
                           ee_error_last_message());
    }
    cr_expect_eq(render_raw(NULL, NULL, NULL, NULL), EE_EINVAL);
}

Test(template, limits)
{
    /* Sections nested past the limit. */
    char deep[8 * (EE__TEMPLATE_MAX_DEPTH + 2) * 2 + 1] = "";
    for (int i = 0; i <= EE__TEMPLATE_MAX_DEPTH; i++)
        strcat(deep, "{{#a}}");
    for (int i = 0; i <= EE__TEMPLATE_MAX_DEPTH; i++)
        strcat(deep, "{{/a}}");
    char *out = NULL;
    cr_expect_eq(render_raw(deep, NULL, NULL, &out), EE_ETOOBIG);

    /* A partial that includes itself unconditionally ends at the depth limit. */
    json_t *partials = json_pack("{s:s}", "loop", "x{{>loop}}");
    cr_expect_eq(render_raw("{{>loop}}", NULL, partials, &out), EE_ETOOBIG);
    json_decref(partials);

    /* Output growth is capped: 4096 items of a 8 KiB string = 32 MiB. */
    json_t *items = json_array();
    for (int i = 0; i < 4096; i++)
        json_array_append_new(items, json_integer(i));
    char *big = malloc(8193);
    memset(big, 'x', 8192);
    big[8192] = '\0';
    json_t *data = json_pack("{s:o, s:s}", "items", items, "big", big);
    free(big);
    cr_expect_eq(render_raw("{{#each items}}{{../big}}{{/each}}", data, NULL, &out), EE_ETOOBIG);
    cr_expect_null(out);
    json_decref(data);

    char *huge = malloc(EE__TEMPLATE_MAX_TEMPLATE + 2);
    memset(huge, 'a', EE__TEMPLATE_MAX_TEMPLATE + 1);
    huge[EE__TEMPLATE_MAX_TEMPLATE + 1] = '\0';
    cr_expect_eq(render_raw(huge, NULL, NULL, &out), EE_ETOOBIG);
    free(huge);
}

/* Blocks nested n deep over two-item lists with empty bodies: 2^n body
 * renders and no output, so only the work bound stops it. */
static char *nested_sections(int n)
{
    char *t = malloc((size_t)n * 30 + 1), *p = t;
    for (int i = 0; i < n; i++)
        p += sprintf(p, "{{#each @root.a}}");
    for (int i = 0; i < n; i++)
        p += sprintf(p, "{{/each}}");
    return t;
}

Test(template, work_is_bounded_without_output, .timeout = 60)
{
    json_t *data = json_loads("{\"a\": [1, 2]}", 0, NULL);
    char *out = NULL;
    /* 2^28 section bodies: more than the work budget. */
    char *t = nested_sections(28);
    cr_expect_eq(render_raw(t, data, NULL, &out), EE_ETOOBIG);
    cr_expect_null(out);
    cr_expect(strstr(ee_error_last_message(), "units of work") != NULL, "%s",
              ee_error_last_message());
    free(t);
    /* 63 levels, a 1638-byte template. */
    t = nested_sections(63);
    cr_expect_eq(strlen(t), 1638);
    cr_expect_eq(render_raw(t, data, NULL, &out), EE_ETOOBIG);
    free(t);
    /* 2^16 bodies are well within it. */
    t = nested_sections(16);
    cr_expect_eq(render_raw(t, data, NULL, &out), EE_OK, "%s", ee_error_last_message());
    cr_expect_str_eq(out, "");
    ee_free(out);
    free(t);
    json_decref(data);
}

/* A partial is parsed at each use: its bytes count as work, so a large
 * partial that prints nothing cannot be repeated without bound. */
Test(template, partial_parsing_is_work, .timeout = 60)
{
    size_t len = 512 * 1024;
    char *big = malloc(len + 1);
    memcpy(big, "{{!", 3);
    memset(big + 3, 'x', len - 5);
    memcpy(big + len - 2, "}}", 3);
    json_t *partials = json_pack("{s:s}", "p", big);
    free(big);
    json_t *items = json_array();
    for (int i = 0; i < 1000; i++)
        json_array_append_new(items, json_integer(i));
    json_t *data = json_pack("{s:o}", "a", items);
    char *out = NULL;
    cr_expect_eq(render_raw("{{#each a}}{{>p}}{{/each}}", data, partials, &out), EE_ETOOBIG);
    cr_expect_null(out);
    /* used a few times, it renders */
    json_array_clear(items);
    json_array_append_new(items, json_integer(1));
    cr_expect_eq(render_raw("{{#each a}}{{>p}}{{/each}}", data, partials, &out), EE_OK, "%s",
                 ee_error_last_message());
    cr_expect_str_eq(out, "");
    ee_free(out);
    json_decref(data);
    json_decref(partials);
}

/* A legitimate large render is not cut: 20,000 rows of 5 cells. */
Test(template, large_legitimate_render)
{
    json_t *rows = json_array();
    for (int i = 0; i < 20000; i++)
        json_array_append_new(rows, json_pack("{s:i, s:s, s:f, s:b, s:s}", "id", i, "name",
                                              "row", "score", 0.5, "ok", 1, "note", "n"));
    json_t *data = json_pack("{s:o, s:s}", "rows", rows, "title", "T");
    char *out = NULL;
    cr_expect_eq(render_raw("{{title}}\n{{#rows}}{{id}},{{name}},{{score}},{{ok}},"
                            "{{note}},{{../title}}\n{{/rows}}",
                            data, NULL, &out),
                 EE_OK, "%s", ee_error_last_message());
    cr_expect_not_null(out);
    ee_free(out);
    json_decref(data);
}

/* A value holding NUL bytes is rendered whole: the output has a length. */
Test(template, nul_in_values_is_not_truncated)
{
    json_t *data = json_loads("{\"v\": \"a\\u0000<b\", \"l\": [\"\\u0000\"]}", JSON_ALLOW_NUL, NULL);
    cr_assert_not_null(data);
    const char *t = "[{{v}}|{{{v}}}|{{#each l}}{{this}}{{/each}}]";
    char *out = NULL;
    size_t len = 0;
    cr_assert_eq(ee__template_render(t, strlen(t), data, NULL, &out, &len), EE_OK, "%s",
                 ee_error_last_message());
    static const char want[] = "[a\0&lt;b|a\0<b|\0]";
    cr_expect_eq(len, sizeof want - 1);
    cr_expect(memcmp(out, want, sizeof want - 1) == 0);
    cr_expect_eq(out[len], '\0', "still NUL-terminated");
    ee_free(out);
    json_decref(data);
}

/* Parameter values are data: {{ in a value is never parsed, HTML in it is
 * escaped, CR/LF stay as they are (escaped output does not add markup). */
Test(template, values_are_never_parsed_as_templates)
{
    const char *canary = "CANARY-ee-7f3a";
    char data[512];
    snprintf(data, sizeof data,
             "{\"p\": \"{{secret}}{{> x}}{{#each l}}y{{/each}}<img src=x onerror=alert(1)>\\r\\nBcc: a@b\","
             " \"secret\": \"%s\", \"l\": [1]}", canary);
    char *out = render("Subject: {{p}}\n{{{p}}}", data, "{\"x\": \"PARTIAL\"}");
    cr_expect_null(strstr(out, canary), "a value was rendered as a template: %s", out);
    cr_expect_null(strstr(out, "PARTIAL"));
    cr_expect_str_eq(out, "Subject: {{secret}}{{&gt; x}}{{#each l}}y{{/each}}&lt;img src&#x3D;x "
                          "onerror&#x3D;alert(1)&gt;\r\nBcc: a@b\n"
                          "{{secret}}{{> x}}{{#each l}}y{{/each}}<img src=x onerror=alert(1)>\r\nBcc: a@b");
    ee_free(out);
    /* the same through a partial's context and a hash parameter */
    out = render("{{> x v=p}}", data, "{\"x\": \"{{v}}\"}");
    cr_expect_null(strstr(out, canary));
    ee_free(out);
}

Test(template, missing_partials_and_helpers_are_not_found)
{
    char *out = (char *)1;
    cr_expect_eq(render_raw("a{{> nope}}b", NULL, NULL, &out), EE_ENOTFOUND);
    cr_expect_null(out);
    cr_expect(strstr(ee_error_last_message(), "nope") != NULL, "%s", ee_error_last_message());
    json_t *p = json_pack("{s:s}", "other", "x");
    cr_expect_eq(render_raw("{{> nope}}", NULL, p, &out), EE_ENOTFOUND);
    json_decref(p);
    cr_expect_eq(render_raw("{{format when}}", NULL, NULL, &out), EE_ENOTFOUND);
    cr_expect(strstr(ee_error_last_message(), "format") != NULL, "%s", ee_error_last_message());
    /* in a branch not taken, nothing is looked up (as handlebars.js) */
    cr_expect_eq(render_raw("{{#if f}}{{> nope}}{{/if}}", NULL, NULL, &out), EE_OK);
    cr_expect_str_eq(out, "");
    ee_free(out);
}

/* Partial blocks and inline partials recurse only as far as the depth limit
 * and repeat only as far as the work budget: EE_ETOOBIG, never a stack
 * overflow nor an unbounded render. */
Test(template, partial_blocks_and_inline_partials_are_bounded, .timeout = 60)
{
    char *out = NULL;
    /* a partial whose partial block calls it again, forever */
    json_t *p = json_pack("{s:s}", "p", "{{#> p}}{{> @partial-block}}{{/p}}");
    cr_expect_eq(render_raw("{{#> p}}x{{/p}}", NULL, p, &out), EE_ETOOBIG);
    cr_expect_null(out);
    json_decref(p);
    /* the block standing in for a missing partial that it names again */
    p = json_pack("{s:s}", "q", "{{#> missing}}{{> q}}{{/missing}}");
    cr_expect_eq(render_raw("{{> q}}", NULL, p, &out), EE_ETOOBIG);
    json_decref(p);
    /* an inline partial including itself */
    cr_expect_eq(render_raw("{{#*inline \"r\"}}r{{> r}}{{/inline}}{{> r}}", NULL, NULL, &out),
                 EE_ETOOBIG);
    /* @partial-block twice per level, 25 levels: 2^25 renders of "x" */
    p = json_pack("{s:s}", "two", "{{> @partial-block}}{{> @partial-block}}");
    char *t = malloc(25 * 24 + 8), *w = t;
    for (int i = 0; i < 25; i++)
        w += sprintf(w, "{{#> two}}");
    w += sprintf(w, "x");
    for (int i = 0; i < 25; i++)
        w += sprintf(w, "{{/two}}");
    ee_status st = render_raw(t, NULL, p, &out);
    cr_expect_eq(st, EE_ETOOBIG);
    cr_expect_not_null(strstr(ee_error_last_message(), "units of work"), "%s",
                       ee_error_last_message());
    free(t);
    json_decref(p);
    /* inline partials calling the next one twice, 40 deep: 2^40 calls that
     * print nothing */
    t = malloc(40 * 64 + 64);
    w = t;
    for (int i = 0; i < 40; i++)
        w += sprintf(w, "{{#*inline \"i%d\"}}{{> i%d}}{{> i%d}}{{/inline}}", i, i + 1, i + 1);
    w += sprintf(w, "{{#*inline \"i40\"}}{{/inline}}{{> i0}}");
    cr_expect_eq(render_raw(t, NULL, NULL, &out), EE_ETOOBIG);
    free(t);
    /* a partial block's body is rendered at each use, and counted */
    p = json_pack("{s:s}", "many", "{{#each @root.l}}{{> @partial-block}}{{/each}}");
    json_t *data = json_pack("{s:[i,i,i,i,i,i,i,i]}", "l", 1, 2, 3, 4, 5, 6, 7, 8);
    t = malloc(12 * 24 + 8);
    w = t;
    for (int i = 0; i < 12; i++)
        w += sprintf(w, "{{#> many}}");
    for (int i = 0; i < 12; i++)
        w += sprintf(w, "{{/many}}");
    cr_expect_eq(render_raw(t, data, p, &out), EE_ETOOBIG); /* 8^12 */
    free(t);
    json_decref(p);
    json_decref(data);
}

/* Raw blocks nest in the lexer (a count, not the stack): deep nesting is
 * text, and the template size is the only bound. */
Test(template, raw_blocks_nest_without_recursion)
{
    size_t n = 20000;
    char *t = malloc(n * 24 + 64), *w = t;
    w += sprintf(w, "{{{{raw}}}}");
    for (size_t i = 0; i < n; i++)
        w += sprintf(w, "{{{{raw}}}}");
    for (size_t i = 0; i < n; i++)
        w += sprintf(w, "{{{{/raw}}}}");
    w += sprintf(w, "{{{{/raw}}}}");
    json_t *data = json_pack("{s:b}", "raw", 1);
    char *out = NULL;
    size_t len = 0;
    cr_assert_eq(ee__template_render(t, strlen(t), data, NULL, &out, &len), EE_OK, "%s",
                 ee_error_last_message());
    cr_expect_eq(len, strlen(t) - strlen("{{{{raw}}}}{{{{/raw}}}}"));
    ee_free(out);
    json_decref(data);
    free(t);
}

/* {{else if}} chains nest like blocks: up to the depth limit. */
Test(template, else_chains_are_bounded_by_depth)
{
    char *t = malloc(200 * 24 + 64), *w = t;
    w += sprintf(w, "{{#if a}}");
    for (int i = 0; i < 200; i++)
        w += sprintf(w, "{{else if b}}%d", i);
    w += sprintf(w, "{{/if}}");
    char *out = NULL;
    cr_expect_eq(render_raw(t, NULL, NULL, &out), EE_ETOOBIG);
    free(t);
    json_t *data = json_pack("{s:b}", "b", 1);
    cr_expect_eq(render_raw("{{#if a}}{{else if a}}{{else if b}}B{{else}}C{{/if}}", data, NULL, &out),
                 EE_OK);
    cr_expect_str_eq(out, "B");
    ee_free(out);
    json_decref(data);
}

/* Only {{#*inline}} among the decorators: another fails where handlebars.js
 * would run it, with a message saying so. */
Test(template, other_decorators_are_refused)
{
    char *out = NULL;
    cr_expect_eq(render_raw("{{#if a}}{{*log}}{{/if}}", NULL, NULL, &out), EE_EPARSE);
    cr_expect_not_null(strstr(ee_error_last_message(), "decorators other than {{#*inline}}"));
    cr_expect_eq(render_raw("{{#*dec}}x{{/dec}}", NULL, NULL, &out), EE_EPARSE);
    /* in a block never reached, nothing runs it */
    cr_expect_eq(render_raw("{{#if a}}{{#if b}}{{*dec}}{{/if}}{{/if}}ok", NULL, NULL, &out), EE_OK);
    cr_expect_str_eq(out, "ok");
    ee_free(out);
}

/* A missing partial behind {{#> }} is its block; without a block, or for
 * @partial-block outside one, EE_ENOTFOUND. */
Test(template, partial_block_failover_and_missing)
{
    char *out = render("{{#> nope}}fallback {{x}}{{/nope}}", "{\"x\": 1}", NULL);
    cr_expect_str_eq(out, "fallback 1");
    ee_free(out);
    cr_expect_eq(render_raw("{{> @partial-block}}", NULL, NULL, &out), EE_ENOTFOUND);
    cr_expect_eq(render_raw("{{#if 1}}{{#*inline \"p\"}}x{{/inline}}{{/if}}{{> p}}", NULL, NULL, &out),
                 EE_ENOTFOUND);
}
