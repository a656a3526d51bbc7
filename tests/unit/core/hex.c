/*
 * Hex digits (lib/core/text.c): ee__hex_decode undoes ee__hex_encode,
 * takes either case and refuses anything else; ee__hex_digit is the one
 * digit rule the storage ids, the callback signatures and the schema's
 * percent escapes share.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "core/core.h"

Test(hex, decode_undoes_encode)
{
    uint8_t in[256], back[256];
    for (int i = 0; i < 256; i++)
        in[i] = (uint8_t)(255 - i);
    char text[513];
    ee__hex_encode(in, sizeof in, text);
    memset(back, 0, sizeof back);
    cr_assert(ee__hex_decode(text, sizeof back, back));
    cr_expect_eq(memcmp(in, back, sizeof in), 0);
}

Test(hex, decode_takes_either_case)
{
    uint8_t out[4];
    cr_assert(ee__hex_decode("DeadBEEF", 4, out));
    cr_expect_eq(out[0], 0xde);
    cr_expect_eq(out[1], 0xad);
    cr_expect_eq(out[2], 0xbe);
    cr_expect_eq(out[3], 0xef);
}

Test(hex, decode_refuses_a_non_digit_anywhere)
{
    static const char *const bad[] = {"g0000000", "0000000g", "00 00000", "0000-000",
                                      "000000\x80" "0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t out[4];
        cr_expect_not(ee__hex_decode(bad[i], 4, out), "%s", bad[i]);
    }
    uint8_t none[1] = {0x5a};
    cr_expect(ee__hex_decode("", 0, none), "nothing to decode");
    cr_expect_eq(none[0], 0x5a);
}

Test(hex, one_digit)
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        cr_expect_eq(ee__hex_digit(digits[i]), i);
        if (i >= 10)
            cr_expect_eq(ee__hex_digit((char)(digits[i] - 'a' + 'A')), i);
    }
    static const char other[] = "gG/:@`xX -";
    for (size_t i = 0; i < sizeof other - 1; i++)
        cr_expect_eq(ee__hex_digit(other[i]), -1, "'%c'", other[i]);
    cr_expect_eq(ee__hex_digit('\0'), -1);
    cr_expect_eq(ee__hex_digit((char)0xc3), -1);
}
