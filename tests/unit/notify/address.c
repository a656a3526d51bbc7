/*
 * The one address rule of the e-mail path (ee__email_address_ok(), over
 * the config's e-mail check): every recipient goes into the To: header and
 * the SMTP envelope as it is, so it must be a plain ASCII addr-spec. 8-bit
 * bytes passed before (they would need SMTPUTF8, and a header carries them
 * only encoded).
 */
#include <criterion/criterion.h>

#include "notify/notify.h"

Test(email_address, plain_addresses_pass)
{
    cr_expect(ee__email_address_ok("reader@example.com"));
    cr_expect(ee__email_address_ok("first.last+tag@mail.example.org"));
}

Test(email_address, eight_bit_bytes_and_header_specials_are_refused)
{
    static const char *const bad[] = {
        "ren\xc3\xa9@example.com", "reader@ex\xc3\xa4mple.com", "reader@example.com\xff",
        "\xe2\x80\xae" "reader@example.com", "a,b@example.com", "a@example.com, b@example.com",
        "Reader <reader@example.com>", "reader@example.com;x@example.com", "\"r\"@example.com",
        "reader@example", "", NULL,
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_expect(!ee__email_address_ok(bad[i]), "taken: %s", bad[i] ? bad[i] : "(null)");
}
