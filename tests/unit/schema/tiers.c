/*
 * The validator's private header stays in lib/schema/: other modules (the
 * catalog) call the semi-private schema/schema.h, never
 * schema/schema_internal.h.
 */
#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char found[4096];
static int files;

static int visit(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb, (void)ftw;
    size_t n = strlen(path);
    if (type != FTW_F || n < 2 || (strcmp(path + n - 2, ".c") != 0 &&
                                   strcmp(path + n - 2, ".h") != 0))
        return 0;
    if (strstr(path, "/lib/schema/") != NULL)
        return 0;
    files++;
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    char *text = calloc(1, 1 << 20);
    cr_assert_not_null(text);
    size_t len = fread(text, 1, (1 << 20) - 1, f);
    fclose(f);
    text[len] = '\0';
    if (strstr(text, "schema/schema_internal.h") != NULL) {
        size_t used = strlen(found);
        snprintf(found + used, sizeof found - used, "\n  %s", path);
    }
    free(text);
    return 0;
}

Test(tiers, no_module_but_schema_includes_the_validators_private_header)
{
    cr_assert_eq(nftw(EE_SOURCE_DIR "/lib", visit, 16, FTW_PHYS), 0);
    cr_assert(files > 50, "only %d files under lib/ outside lib/schema/", files);
    cr_expect_eq(found[0], '\0', "outside lib/schema/:%s", found);
}
