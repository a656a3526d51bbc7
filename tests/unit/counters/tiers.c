/*
 * The counters' private tier stays in lib/counters/: no other module of the
 * library includes counters/counters_internal.h or names what it declares
 * for the counters' own files (the unchecked call of a backend's reserve
 * and the pieces it is made of). Other modules use counters/counters.h.
 */
#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const private_names[] = {
    "counters/counters_internal.h", "ee__counters_direct",      "ee__counters_reserve_fn",
    "ee__counters_reserve_leased",  "ee__counters_check_prepared", "ee__counters_lock_order",
    "ee__counters_resolve",         "ee__counters_ext",         NULL};

static char found[4096];
static int files;

static int visit(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb, (void)ftw;
    size_t n = strlen(path);
    if (type != FTW_F || n < 2 || (strcmp(path + n - 2, ".c") != 0 &&
                                   strcmp(path + n - 2, ".h") != 0))
        return 0;
    if (strstr(path, "/lib/counters/") != NULL)
        return 0;
    files++;
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    char *text = calloc(1, 1 << 20);
    cr_assert_not_null(text);
    size_t len = fread(text, 1, (1 << 20) - 1, f);
    fclose(f);
    text[len] = '\0';
    for (int i = 0; private_names[i] != NULL; i++)
        if (strstr(text, private_names[i]) != NULL) {
            size_t used = strlen(found);
            snprintf(found + used, sizeof found - used, "\n  %s names %s", path,
                     private_names[i]);
        }
    free(text);
    return 0;
}

Test(tiers, no_module_but_counters_reaches_the_counters_private_header)
{
    cr_assert_eq(nftw(EE_SOURCE_DIR "/lib", visit, 16, FTW_PHYS), 0);
    cr_assert(files > 50, "only %d files under lib/ outside lib/counters/", files);
    cr_expect_eq(found[0], '\0', "outside lib/counters/:%s", found);
}
