/*
 * The official JSON-Schema-Test-Suite (draft 2020-12) files kept in
 * shared/conformance/json-schema/draft2020-12/: every test of every file
 * must give the expected "valid". (Belongs to the `conformance` label; it
 * lives under tests/unit/ until tests/CMakeLists.txt globs
 * tests/conformance/.)
 *
 * The suite is found through $EE_CONFORMANCE_DIR (the "conformance"
 * directory), else by walking up from this source file to a directory that
 * holds shared/conformance/. Not finding it FAILS the test.
 *
 * Nothing is skipped: ref.json's $id base-URI changes (embedded schema
 * resources, URNs) and $anchor references resolve within the document,
 * and the one remote document these files use, the draft 2020-12
 * meta-schema, is built in. A group that ever needs skipping again must
 * be listed here with its reason and asserted to be refused with
 * EE_ENOTSUPPORTED, never left to validate wrongly.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "schema/schema.h"

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The draft2020-12 directory, or NULL. */
static char *suite_dir(void)
{
    char buf[4200];
    const char *env = getenv("EE_CONFORMANCE_DIR");
    if (env != NULL && env[0] != '\0') {
        snprintf(buf, sizeof buf, "%s/json-schema/draft2020-12", env);
        return is_dir(buf) ? strdup(buf) : NULL;
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", __FILE__);
    for (char *slash; (slash = strrchr(dir, '/')) != NULL;) {
        *slash = '\0';
        snprintf(buf, sizeof buf, "%s/shared/conformance/json-schema/draft2020-12",
                 dir[0] != '\0' ? dir : "");
        if (is_dir(buf))
            return strdup(buf);
    }
    return NULL;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

typedef struct {
    size_t passed, failed, files;
} tally;

/* Validate through the json_t API and the text API; both must agree. */
static void run_case(const char *file, const char *group, const ee_schema *s,
                     const ee_schema *s_text, const json_t *t, tally *n)
{
    const char *desc = json_string_value(json_object_get(t, "description"));
    const json_t *data = json_object_get(t, "data");
    bool want = json_is_true(json_object_get(t, "valid"));
    json_t *report = NULL;
    ee_status st = ee__schema_validate(s, data, &report);
    bool ok = (st == EE_OK || st == EE_EVALIDATION) && (st == EE_OK) == want &&
              json_is_boolean(json_object_get(report, "valid")) &&
              json_is_true(json_object_get(report, "valid")) == want &&
              (json_array_size(json_object_get(report, "errors")) == 0) == want;
    json_decref(report);
    char *text = json_dumps(data, JSON_ENCODE_ANY | JSON_COMPACT);
    char *out = NULL;
    ee_status st2 = ee_schema_validate(s_text, text, &out);
    ok = ok && st2 == st;
    free(text);
    ee_free(out);
    if (ok) {
        n->passed++;
    } else {
        n->failed++;
        cr_log_error("%s / %s / %s: expected %s, got status %s (text API: %s) %s", file, group,
                     desc, want ? "valid" : "invalid", ee_status_name(st), ee_status_name(st2),
                     ee_error_last_message());
    }
}

static void run_group(const char *file, const json_t *g, tally *n)
{
    const char *group = json_string_value(json_object_get(g, "description"));
    const json_t *tests = json_object_get(g, "tests");
    ee_schema *s = NULL, *s_text = NULL;
    ee_status st = ee__schema_compile(&s, json_object_get(g, "schema"));
    char *text = json_dumps(json_object_get(g, "schema"), JSON_ENCODE_ANY | JSON_COMPACT);
    ee_status st2 = ee_schema_compile(&s_text, text);
    free(text);
    if (st != EE_OK || st2 != EE_OK) {
        cr_log_error("%s / %s: schema does not compile: %s", file, group,
                     ee_error_last_message());
        n->failed += json_array_size(tests);
    } else {
        for (size_t i = 0; i < json_array_size(tests); i++)
            run_case(file, group, s, s_text, json_array_get(tests, i), n);
    }
    ee_schema_free(s);
    ee_schema_free(s_text);
}

static void run_file(const char *dir, const char *file, tally *n)
{
    char path[4352];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    json_error_t err;
    json_t *doc = json_load_file(path, JSON_ALLOW_NUL, &err);
    cr_assert_not_null(doc, "cannot read %s: %s", path, err.text);
    cr_assert(json_is_array(doc) && json_array_size(doc) > 0, "%s: not a list of groups", path);
    for (size_t i = 0; i < json_array_size(doc); i++)
        run_group(file, json_array_get(doc, i), n);
    json_decref(doc);
    n->files++;
}

Test(schema_conformance, draft2020_12_every_file, .timeout = 120)
{
    char *dir = suite_dir();
    cr_assert_not_null(dir, "json-schema conformance suite not found: set EE_CONFORMANCE_DIR "
                            "or keep shared/conformance/ beside the source tree");
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "cannot open %s", dir);
    char **names = NULL;
    size_t count = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        size_t len = strlen(e->d_name);
        if (len > 5 && strcmp(e->d_name + len - 5, ".json") == 0) {
            names = realloc(names, (count + 1) * sizeof *names);
            names[count++] = strdup(e->d_name);
        }
    }
    closedir(d);
    cr_assert_gt(count, 30, "only %zu files in %s", count, dir);
    qsort(names, count, sizeof *names, by_name);
    tally n = {0};
    for (size_t i = 0; i < count; i++) {
        run_file(dir, names[i], &n);
        free(names[i]);
    }
    free(names);
    fprintf(stderr,
            "json-schema draft2020-12 conformance: %zu files, %zu cases passed, %zu failed, "
            "none skipped\n",
            n.files, n.passed, n.failed);
    free(dir);
    cr_expect_eq(n.failed, 0, "%zu conformance cases failed (see the log above)", n.failed);
    cr_expect_gt(n.passed, 830);
}
