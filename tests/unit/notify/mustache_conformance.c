/*
 * The official mustache spec (../shared/conformance/mustache/): every test
 * of every file must render exactly as expected. The files are found
 * through $EE_CONFORMANCE_DIR, else by walking up from this source file to
 * a directory holding shared/conformance/; not finding them FAILS.
 * The spec's optional lambdas are not among the files (JSON data cannot
 * hold functions), so nothing is skipped.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/core.h"
#include "notify/mustache.h"

static const char *const spec_files[] = {"comments.json",     "delimiters.json", "interpolation.json",
                                         "inverted.json",     "partials.json",   "sections.json"};

static bool is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool spec_dir(char *buf, size_t cap)
{
    const char *env = getenv("EE_CONFORMANCE_DIR");
    if (env != NULL && env[0] != '\0') {
        snprintf(buf, cap, "%s/mustache", env);
        return is_dir(buf);
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", __FILE__);
    for (char *slash; (slash = strrchr(dir, '/')) != NULL;) {
        *slash = '\0';
        snprintf(buf, cap, "%s/shared/conformance/mustache", dir);
        if (is_dir(buf))
            return true;
    }
    return false;
}

Test(mustache_conformance, every_spec_test_passes)
{
    char dir[4200];
    cr_assert(spec_dir(dir, sizeof dir), "mustache spec not found: set EE_CONFORMANCE_DIR");
    int passed = 0, failed = 0;
    for (size_t f = 0; f < sizeof spec_files / sizeof spec_files[0]; f++) {
        char path[4300];
        snprintf(path, sizeof path, "%s/%s", dir, spec_files[f]);
        json_error_t err;
        json_t *doc = json_load_file(path, 0, &err);
        cr_assert_not_null(doc, "%s: %s", path, err.text);
        size_t i;
        json_t *t;
        json_array_foreach(json_object_get(doc, "tests"), i, t) {
            const char *name = json_string_value(json_object_get(t, "name"));
            char *out = NULL;
            ee_status st = ee__mustache_render(json_string_value(json_object_get(t, "template")),
                                               json_object_get(t, "data"),
                                               json_object_get(t, "partials"), &out);
            const char *want = json_string_value(json_object_get(t, "expected"));
            bool ok = st == EE_OK && out != NULL && strcmp(out, want) == 0;
            cr_expect(ok, "%s / %s: %s\n  expected [%s]\n  got      [%s]", spec_files[f], name,
                      ee_status_name(st), want, out ? out : ee_error_last_message());
            ok ? passed++ : failed++;
            ee_free(out);
        }
        json_decref(doc);
    }
    printf("mustache spec: %d passed, %d failed, 0 skipped\n", passed, failed);
    cr_expect_eq(passed, 136, "the six spec files hold 136 tests");
}
