/* The one rule for versioned backend tables (ee__vtable_adopt, core.h), and
 * that the three custom-table constructors follow it with one message. */
#include <criterion/criterion.h>
#include <stddef.h>
#include <string.h>

#include "core/core.h"
#include "execengine/counters.h"
#include "execengine/storage.h"
#include "execengine/transport.h"

typedef struct {
    unsigned version;
    int a; /* version 1 */
    int b; /* version 2 */
    int c; /* version 3 (not known to this "library") */
} table3;

static const size_t sizes[] = {offsetof(table3, b), offsetof(table3, c)};

Test(vtable, copies_the_declared_part_and_zeroes_the_rest)
{
    table3 src = {1, 11, 22, 33}, dst;
    memset(&dst, 0x5a, sizeof dst);
    cr_assert_eq(ee__vtable_adopt(&dst, sizeof dst, &src, src.version, sizes, 2, "test table"),
                 EE_OK);
    cr_expect_eq(dst.version, 1u);
    cr_expect_eq(dst.a, 11);
    cr_expect_eq(dst.b, 0, "a slot past version 1 must be zero, was %d", dst.b);
    cr_expect_eq(dst.c, 0);
    src.version = 2;
    memset(&dst, 0x5a, sizeof dst);
    cr_assert_eq(ee__vtable_adopt(&dst, sizeof dst, &src, src.version, sizes, 2, "test table"),
                 EE_OK);
    cr_expect_eq(dst.b, 22);
    cr_expect_eq(dst.c, 0, "a slot this library does not know must be zero");
}

Test(vtable, refuses_zero_and_newer_without_touching_dst)
{
    table3 src = {0, 11, 22, 33}, dst = {7, 7, 7, 7};
    cr_expect_eq(ee__vtable_adopt(&dst, sizeof dst, &src, 0, sizes, 2, "test table"), EE_EVERSION);
    cr_expect_str_eq(ee_error_last_message(),
                     "test table version 0 is not supported (this library knows 1 to 2)");
    cr_expect_eq(ee__vtable_adopt(&dst, sizeof dst, &src, 3, sizes, 2, "test table"), EE_EVERSION);
    cr_expect_str_eq(ee_error_last_message(),
                     "test table version 3 is not supported (this library knows 1 to 2)");
    cr_expect_eq(dst.a, 7);
}

static void ignore_free(void *ctx) { (void)ctx; }

Test(vtable, every_custom_constructor_says_the_same)
{
    ee_storage_backend sb = {.version = EE_STORAGE_BACKEND_VERSION + 1};
    ee_storage *s = NULL;
    cr_expect_eq(ee_storage_new_custom(&s, &sb, NULL), EE_EVERSION);
    char want[160];
    snprintf(want, sizeof want,
             "storage backend table version %d is not supported (this library knows 1 to %d)",
             EE_STORAGE_BACKEND_VERSION + 1, EE_STORAGE_BACKEND_VERSION);
    cr_expect_str_eq(ee_error_last_message(), want);

    ee_counters_backend cb = {.version = 0};
    ee_counters *c = NULL;
    cr_expect_eq(ee_counters_new_custom(&c, &cb, NULL), EE_EVERSION);
    snprintf(want, sizeof want,
             "counters backend table version 0 is not supported (this library knows 1 to %d)",
             EE_COUNTERS_BACKEND_VERSION);
    cr_expect_str_eq(ee_error_last_message(), want);

    ee_transport_backend tb = {.version = EE_TRANSPORT_BACKEND_VERSION + 1, .free = ignore_free};
    ee_transport *t = NULL;
    cr_expect_eq(ee_transport_new_custom(&t, &tb, NULL, NULL), EE_EVERSION);
    snprintf(want, sizeof want,
             "transport backend table version %d is not supported (this library knows 1 to %d)",
             EE_TRANSPORT_BACKEND_VERSION + 1, EE_TRANSPORT_BACKEND_VERSION);
    cr_expect_str_eq(ee_error_last_message(), want);
    cr_expect_null(s);
    cr_expect_null(c);
    cr_expect_null(t);
}
