/* docs/configuration.md lists every option the library knows. */
#include <criterion/criterion.h>
#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

Test(config_doc, every_option_has_a_row)
{
    const char *doc = read_file(EE_SOURCE_DIR "/docs/configuration.md");
    char *text = NULL;
    cr_assert_eq(ee_config_options_json(&text), EE_OK);
    json_t *arr = json_loads(text, 0, NULL);
    ee_free(text);
    size_t i;
    json_t *o;
    int rows = 0;
    json_array_foreach(arr, i, o) {
        char row[128];
        snprintf(row, sizeof row, "| `%s` |", json_string_value(json_object_get(o, "name")));
        cr_expect_not_null(strstr(doc, row), "docs/configuration.md has no row for %s", row);
        rows++;
    }
    cr_expect_gt(rows, 20);
    json_decref(arr);
}

/* Options the listing marks "inEffect": false are named in the page's
 * "Options not yet in effect" section. */
Test(config_doc, options_not_yet_in_effect_are_documented)
{
    const char *doc = read_file(EE_SOURCE_DIR "/docs/configuration.md");
    const char *section = strstr(doc, "## Options not yet in effect");
    cr_assert_not_null(section, "docs/configuration.md has no \"Options not yet in effect\"");
    char *text = NULL;
    cr_assert_eq(ee_config_options_json(&text), EE_OK);
    json_t *arr = json_loads(text, 0, NULL);
    ee_free(text);
    size_t i;
    json_t *o;
    json_array_foreach(arr, i, o) {
        if (json_is_true(json_object_get(o, "inEffect")))
            continue;
        char name[128];
        snprintf(name, sizeof name, "`%s`", json_string_value(json_object_get(o, "name")));
        cr_expect_not_null(strstr(section, name), "%s is not in effect but not documented so", name);
    }
    json_decref(arr);
}

/* The documentation describes the product on its own terms: no option
 * description, page, README or public header refers to documents outside
 * the repository ("seed 2's name", "the seed's ...", "source documents").
 * "seeds" as a verb ("Sync seeds these fields") is fine. */
static const char *const outside_refs[] = {
    "seed 0", "seed 1", "seed 2", "seed 3", "seed 4", "seed's", "seeds'", "source document",
};

static void expect_no_outside_ref(const char *what, const char *text)
{
    size_t n = strlen(text);
    char *low = malloc(n + 1);
    cr_assert_not_null(low);
    for (size_t i = 0; i <= n; i++)
        low[i] = (char)tolower((unsigned char)text[i]);
    for (size_t k = 0; k < sizeof outside_refs / sizeof *outside_refs; k++)
        cr_expect_null(strstr(low, outside_refs[k]), "%s says \"%s\"", what, outside_refs[k]);
    free(low);
}

static char *read_whole(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    cr_assert_eq(fseek(f, 0, SEEK_END), 0);
    long len = ftell(f);
    cr_assert_geq(len, 0);
    rewind(f);
    char *buf = malloc((size_t)len + 1);
    cr_assert_not_null(buf);
    size_t got = fread(buf, 1, (size_t)len, f);
    fclose(f);
    buf[got] = '\0';
    return buf;
}

static int check_dir(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "cannot open %s", dir);
    int files = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name), sl = strlen(suffix);
        if (len <= sl || strcmp(e->d_name + len - sl, suffix) != 0)
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        char *text = read_whole(path);
        expect_no_outside_ref(path, text);
        free(text);
        files++;
    }
    closedir(d);
    return files;
}

Test(config_doc, option_descriptions_name_no_outside_document)
{
    char *text = NULL;
    cr_assert_eq(ee_config_options_json(&text), EE_OK);
    json_t *arr = json_loads(text, 0, NULL);
    ee_free(text);
    cr_assert_not_null(arr);
    size_t i;
    json_t *o;
    json_array_foreach(arr, i, o) {
        const char *desc = json_string_value(json_object_get(o, "description"));
        cr_assert_not_null(desc);
        expect_no_outside_ref(json_string_value(json_object_get(o, "name")), desc);
    }
    json_decref(arr);
}

Test(config_doc, docs_and_headers_name_no_outside_document)
{
    cr_expect_gt(check_dir(EE_SOURCE_DIR "/docs", ".md"), 10);
    cr_expect_gt(check_dir(EE_SOURCE_DIR "/include/execengine", ".h"), 10);
    char *readme = read_whole(EE_SOURCE_DIR "/README.md");
    expect_no_outside_ref("README.md", readme);
    free(readme);
}
