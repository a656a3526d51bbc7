/* docs/configuration.md lists every option the library knows. */
#include <criterion/criterion.h>
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
