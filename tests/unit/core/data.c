/* Data files: EE_DATA_DIR when set, else installed, else embedded. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "core/data.h"

static ee_config *cfg;
static void setup(void) { cr_assert_eq(ee_config_new(&cfg), EE_OK); }
static void teardown(void) { ee_config_free(cfg); }
TestSuite(data, .init = setup, .fini = teardown);

Test(data, explicit_directory_wins_and_must_hold_the_file)
{
    char dir[] = "/tmp/ee-data-XXXXXX", path[64];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/integrations.json", dir);
    FILE *f = fopen(path, "w");
    fputs("{\"services\": []}", f);
    fclose(f);
    cr_assert_eq(ee_config_set(cfg, "EE_DATA_DIR", dir), EE_OK);
    char *text = NULL;
    size_t len = 0;
    const char *origin = NULL;
    cr_assert_eq(ee__data_read(cfg, "integrations.json", &text, &len, &origin), EE_OK);
    cr_expect_str_eq(text, "{\"services\": []}");
    cr_expect_eq(len, strlen(text));
    cr_expect_str_eq(origin, "EE_DATA_DIR");
    free(text);
    cr_expect_eq(ee__data_read(cfg, "prices.json", &text, &len, NULL), EE_EIO,
                 "an explicit directory without the file is an error, not a fall-back");
    cr_expect_not_null(strstr(ee_error_last_message(), "prices.json"));
    unlink(path);
    rmdir(dir);
}

Test(data, embedded_copies_match_the_source_tree)
{
    /* Unset EE_DATA_DIR: the installed directory (absent in a build tree
     * unless installed to the default prefix), else the embedded copy. */
    static const char *const files[] = {"integrations.json", "prices.json", "cost_rules.json"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char *text = NULL, *src = NULL, path[512];
        size_t len = 0, slen = 0;
        const char *origin = NULL;
        cr_assert_eq(ee__data_read(cfg, files[i], &text, &len, &origin), EE_OK, "%s: %s", files[i],
                     ee_error_last_message());
        snprintf(path, sizeof path, "%s/data/%s", EE_SOURCE_DIR, files[i]);
        FILE *f = fopen(path, "rb");
        cr_assert_not_null(f);
        src = malloc(1 << 20);
        slen = fread(src, 1, 1 << 20, f);
        fclose(f);
        if (strcmp(origin, "embedded") == 0) {
            cr_expect_eq(len, slen, "%s", files[i]);
            cr_expect_eq(memcmp(text, src, slen), 0, "%s differs from data/", files[i]);
        }
        free(src);
        free(text);
    }
}

Test(data, bad_names_and_unknown_files)
{
    char *text = NULL;
    size_t len;
    cr_expect_eq(ee__data_read(cfg, "../etc/passwd", &text, &len, NULL), EE_EINVAL);
    cr_expect_eq(ee__data_read(cfg, "a/b.json", &text, &len, NULL), EE_EINVAL);
    cr_expect_eq(ee__data_read(cfg, "no-such-file.json", &text, &len, NULL), EE_ENOTFOUND);
    cr_expect_null(text);
}
