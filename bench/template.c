/*
 * template.render: a typical results e-mail (a header, an {{#each}} over 20
 * result rows with {{#if}}/{{else}}, @index/@last, values that need HTML
 * escaping, a partial for the footer) rendered by lib/notify/handlebars.c,
 * beside handlebars.js rendering the same template and data in the same run:
 * node is spawned once and times its own loop of precompiled renders
 * (tests/support/hbs-reference.js bench), so its start-up and compile cost
 * are not counted. slowdown = ours / handlebars.js (< 1: we are faster).
 * Without node or handlebars (tests/support/hbs-install.sh), a "skipped" line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_util.h"
#include "core/core.h"
#include "notify/handlebars.h"

static const char *const TEMPLATE =
    "<h1>{{workflow.name}} finished</h1>\n"
    "<p>Hello {{user.name}},</p>\n"
    "{{#if results.length}}\n"
    "<p>Your run returned {{results.length}} results:</p>\n"
    "<table>\n"
    "{{#each results}}\n"
    "  <tr class=\"{{#if @first}}first{{/if}}{{#if @last}} last{{/if}}\">\n"
    "    <td>{{@index}}</td><td><a href=\"{{url}}\">{{title}}</a></td>\n"
    "    <td>{{#if score}}{{score}}{{else}}n/a{{/if}}</td>\n"
    "    <td>{{#each tags}}{{this}}{{#unless @last}}, {{/unless}}{{/each}}</td>\n"
    "  </tr>\n"
    "{{/each}}\n"
    "</table>\n"
    "{{else}}\n"
    "<p>Nothing found for {{query}}.</p>\n"
    "{{/if}}\n"
    "<p>Cost: ${{cost.usd}} ({{cost.credits}} credits)</p>\n"
    "{{> footer}}\n";

static const char *const FOOTER = "<hr><small>Sent by {{@root.workflow.name}} to {{user.email}}"
                                  " &middot; <a href=\"{{unsubscribe}}\">unsubscribe</a></small>";

static json_t *make_data(void)
{
    json_t *rows = json_array();
    for (int i = 0; i < 20; i++)
        json_array_append_new(
            rows, json_pack("{s:s+, s:s+, s:f, s:[s,s]}", "title", "Result <b>& \"quoted\" ", i % 2 ? "odd" : "even",
                            "url", "https://example.com/r?id=1&x=", i % 3 ? "a" : "b", "score",
                            i % 4 ? 0.25 * i : 0.0, "tags", "news", "o'reilly"));
    return json_pack("{s:{s:s}, s:{s:s, s:s}, s:o, s:s, s:{s:s, s:i}, s:s}", "workflow", "name",
                     "Daily <news> digest", "user", "name", "Ada O'Brien", "email", "ada@example.com",
                     "results", rows, "query", "x=1&y=2", "cost", "usd", "0.000450000", "credits", 45,
                     "unsubscribe", "https://example.com/u?t=abc&w=1");
}

/* handlebars.js's p50 over `iters` renders, 0 when it cannot run. */
static uint64_t node_p50(const json_t *data, int iters, size_t *node_bytes, char *why,
                         size_t why_cap)
{
    char modules[4096] = "";
    FILE *p = popen(EE_BENCH_SOURCE_DIR "/tests/support/hbs-install.sh 2>/dev/null", "r");
    if (p == NULL || fgets(modules, sizeof modules, p) == NULL) {
        if (p)
            pclose(p);
        snprintf(why, why_cap, "node or npm handlebars unavailable (tests/support/hbs-install.sh)");
        return 0;
    }
    pclose(p);
    modules[strcspn(modules, "\n")] = '\0';
    char input[] = "/tmp/ee-bench-template-XXXXXX";
    int fd = mkstemp(input);
    if (fd < 0) {
        snprintf(why, why_cap, "no temporary file");
        return 0;
    }
    json_t *doc = json_pack("{s:s, s:O}", "template", TEMPLATE, "data", data);
    json_t *partials = json_pack("{s:s}", "footer", FOOTER);
    json_object_set_new(doc, "partials", partials);
    json_dumpfd(doc, fd, 0);
    close(fd);
    json_decref(doc);
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "NODE_PATH='%s' node '%s/tests/support/hbs-reference.js' bench '%s' %d",
             modules, EE_BENCH_SOURCE_DIR, input, iters);
    char line[1024] = "";
    uint64_t p50 = 0;
    if ((p = popen(cmd, "r")) != NULL) {
        if (fgets(line, sizeof line, p) != NULL) {
            json_t *r = json_loads(line, 0, NULL);
            p50 = (uint64_t)json_integer_value(json_object_get(r, "p50"));
            *node_bytes = (size_t)json_integer_value(json_object_get(r, "output_bytes"));
            json_decref(r);
        }
        pclose(p);
    }
    unlink(input);
    if (p50 == 0)
        snprintf(why, why_cap, "handlebars.js did not run");
    return p50;
}

int main(int argc, char **argv)
{
    int iters = bench_quick(argc, argv) ? 2000 : 20000;
    json_t *data = make_data();
    json_t *partials = json_pack("{s:s}", "footer", FOOTER);
    /* the hbs-reference.js bench gets its partial the same way */
    size_t tlen = strlen(TEMPLATE);
    uint64_t *ns = malloc((size_t)iters * sizeof *ns);
    size_t bytes = 0;
    for (int i = 0; i < iters / 10; i++) { /* warm up */
        char *out = NULL;
        size_t len = 0;
        if (ee__template_render(TEMPLATE, tlen, data, partials, &out, &len) != EE_OK) {
            fprintf(stderr, "template.render: %s\n", ee_error_last_message());
            return 1;
        }
        bytes = len;
        free(out);
    }
    for (int i = 0; i < iters; i++) {
        char *out = NULL;
        uint64_t t = bench_now_ns();
        (void)ee__template_render(TEMPLATE, tlen, data, partials, &out, NULL);
        ns[i] = bench_now_ns() - t;
        free(out);
    }
    uint64_t p50 = bench_quantile(ns, (size_t)iters, 0.5), p99 = bench_quantile(ns, (size_t)iters, 0.99);
    char why[256] = "";
    size_t node_bytes = 0;
    uint64_t base = node_p50(data, iters, &node_bytes, why, sizeof why);
    char extra[240];
    /* the same e-mail on both sides (the unit tests compare outputs byte for byte) */
    snprintf(extra, sizeof extra,
             "\"rows\": 20, \"output_bytes\": %zu, \"baseline_output_bytes\": %zu, \"iters\": %d", bytes,
             node_bytes, iters);
    if (base == 0)
        printf("{\"bench\": \"template.render\", \"backend\": \"handlebars\", \"p50\": %llu, "
               "\"skipped\": \"baseline: %s\"}\n",
               (unsigned long long)p50, why);
    else
        bench_report("template.render", "handlebars", extra, p50, p99, "handlebars.js", base);
    free(ns);
    json_decref(data);
    json_decref(partials);
    return 0;
}
