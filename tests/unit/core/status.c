#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include <execengine/execengine.h>

/* Released numbers are frozen: bindings and stored records depend on them. */
Test(status, numbers_are_frozen)
{
    cr_expect_eq(EE_OK, 0);
    cr_expect_eq(EE_ERROR, -1);
    cr_expect_eq(EE_ENOMEM, -2);
    cr_expect_eq(EE_EINVAL, -3);
    cr_expect_eq(EE_ENOTFOUND, -4);
    cr_expect_eq(EE_ECONFLICT, -6);
    cr_expect_eq(EE_ENOTSUPPORTED, -7);
    cr_expect_eq(EE_ETIMEOUT, -12);
    cr_expect_eq(EE_EQUOTA, -17);
    cr_expect_eq(EE_ERATELIMIT, -18);
    cr_expect_eq(EE_EVALIDATION, -20);
    cr_expect_eq(EE_ECREDENTIALS, -21);
    cr_expect_eq(EE_EUNKNOWN, -29);
}

Test(status, every_code_has_a_name_and_message)
{
    int count = 0;
#define CHECK(name, num, msg)                                                   \
    cr_expect_str_eq(ee_status_name(num), #name);                             \
    cr_expect_str_eq(ee_strerror(num), msg);                                  \
    cr_expect(strlen(msg) > 0);                                               \
    count++;
    EE_STATUS_MAP(CHECK)
#undef CHECK
    cr_expect_eq(count, 30);
}

Test(status, codes_are_unique_and_dense)
{
    /* Every number from 0 down to the last is used exactly once. */
    int seen[64] = {0};
#define MARK(name, num, msg) seen[-(num)]++;
    EE_STATUS_MAP(MARK)
#undef MARK
    for (int i = 0; i <= 29; i++)
        cr_expect_eq(seen[i], 1, "status -%d used %d times", i, seen[i]);
}

Test(status, unknown_codes)
{
    cr_expect_str_eq(ee_strerror(-1000), "unknown status");
    cr_expect_str_eq(ee_status_name(5), "EE_UNKNOWN_STATUS");
}

Test(version, runtime_matches_headers)
{
    cr_expect_str_eq(ee_version(), EE_VERSION_STRING);
    cr_expect_eq(ee_version_num(), EE_VERSION_NUM);
    int maj, min, pat;
    cr_assert_eq(sscanf(ee_version(), "%d.%d.%d", &maj, &min, &pat), 3);
    cr_expect_eq(maj, EE_VERSION_MAJOR);
    cr_expect_eq(min, EE_VERSION_MINOR);
    cr_expect_eq(pat, EE_VERSION_PATCH);
}

Test(log, level_names)
{
    cr_expect_str_eq(ee_log_level_name(EE_LOG_ERROR), "error");
    cr_expect_str_eq(ee_log_level_name(EE_LOG_DEBUG), "debug");
    cr_expect_str_eq(ee_log_level_name(42), "unknown");
}
