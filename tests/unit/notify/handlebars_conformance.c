/*
 * handlebars.js as the reference: every case of tests/data/handlebars/
 * cases.json renders exactly as handlebars.js rendered it (committed in
 * expected.json by tests/support/hbs-reference.js, and re-checked against
 * handlebars.js by the ctest handlebars.reference), byte for byte - NUL
 * bytes in values included. A case handlebars.js refused must fail here
 * too; a missing partial with EE_ENOTFOUND.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "notify/handlebars.h"

static json_t *load(const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/data/handlebars/%s", EE_SOURCE_DIR, name);
    json_error_t err;
    json_t *doc = json_load_file(path, JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &err);
    cr_assert_not_null(doc, "%s: %s", path, err.text);
    return doc;
}

Test(handlebars_conformance, every_case_renders_as_handlebars_js)
{
    json_t *cases = load("cases.json"), *expected = load("expected.json");
    json_t *want_all = json_object_get(expected, "cases");
    int passed = 0, failed = 0, errors = 0;
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c) {
        const char *name = json_string_value(json_object_get(c, "name"));
        const json_t *tmpl = json_object_get(c, "template");
        const json_t *want = json_object_get(want_all, name);
        cr_assert_not_null(want, "%s: no expectation (re-run hbs-reference.js render)", name);
        char *out = NULL;
        size_t len = 0;
        ee_status st = ee__template_render(json_string_value(tmpl), json_string_length(tmpl),
                                           json_object_get(c, "data"),
                                           json_object_get(c, "partials"), &out, &len);
        bool ok;
        if (json_object_get(want, "error") != NULL) {
            errors++;
            ok = st != EE_OK && out == NULL;
            if (strncmp(name, "partial.missing", 15) == 0)
                ok = ok && st == EE_ENOTFOUND;
            cr_expect(ok, "%s: handlebars.js refused it (%s), we gave %s [%s]", name,
                      json_string_value(json_object_get(want, "error")), ee_status_name(st),
                      out ? out : "");
        } else {
            const json_t *w = json_object_get(want, "output");
            ok = st == EE_OK && len == json_string_length(w) &&
                 memcmp(out, json_string_value(w), len) == 0;
            cr_expect(ok, "%s: %s\n  template [%s]\n  expected [%s]\n  got      [%s]", name,
                      ee_status_name(st), json_string_value(tmpl), json_string_value(w),
                      out ? out : ee_error_last_message());
        }
        ok ? passed++ : failed++;
        ee_free(out);
    }
    printf("handlebars.js cases: %d passed, %d failed (%d expected errors)\n", passed, failed,
           errors);
    cr_expect_geq(passed + failed, 150, "at least 150 cases");
    json_decref(cases);
    json_decref(expected);
}
