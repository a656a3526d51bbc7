/*
 * The one address rule of the e-mail path (ee__email_address_ok(), over
 * the config's e-mail check): every recipient goes into the To: header and
 * the SMTP envelope as it is, so it must be a plain ASCII addr-spec. 8-bit
 * bytes passed before (they would need SMTPUTF8, and a header carries them
 * only encoded). And the per-user e-mail limit's key, built from ids.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "engine_fixture.h"
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

/* The per-user limit is keyed by workspace and user. Ids reach it from
 * stored records too (a userId may be 256 bytes there): two users whose
 * ids share their first ~190 bytes were cut by snprintf() to one counter
 * key and shared one limit. Ids that are not principal ids are refused. */
Test(email_address, over_long_ids_do_not_share_one_limit)
{
    ee_config *cfg = ee_test_config_new(NULL, NULL, NULL);
    ee_test_config_set(cfg, "EMAIL_MAX_PER_USER_PER_HOUR", "1");
    ee_engine *e = ee_test_engine_open_config(cfg);
    char u1[260], u2[260];
    memset(u1, 'u', 250);
    u1[250] = '\0';
    memcpy(u2, u1, sizeof u1);
    u1[249] = '1';
    u2[249] = '2';
    uint64_t r1 = 0, r2 = 0;
    ee_status s1 = ee__email_reserve(e, "ws-mail", u1, &r1);
    ee_status s2 = ee__email_reserve(e, "ws-mail", u2, &r2);
    /* before: EE_OK then EE_ERATELIMIT - the second user limited by the first */
    cr_expect_eq(s1, EE_EINVAL, "%s", ee_status_name(s1));
    cr_expect_eq(s2, EE_EINVAL, "%s", ee_status_name(s2));
    ee__email_reserve_end(e, "ws-mail", u1, r1, false);
    ee__email_reserve_end(e, "ws-mail", u2, r2, false);
    cr_expect_eq(ee__email_reserve(e, "ws/a", "b", &r1), EE_EINVAL, "a '/' in an id");
    /* principal-sized ids each have their own limit */
    char w[65], a[65], b[65];
    memset(w, 'w', 64);
    memset(a, 'a', 64);
    memcpy(b, a, 64);
    w[64] = a[64] = b[64] = '\0';
    b[63] = 'b';
    cr_assert_eq(ee__email_reserve(e, w, a, &r1), EE_OK, "%s", ee_error_last_message());
    cr_assert_eq(ee__email_reserve(e, w, b, &r2), EE_OK, "%s", ee_error_last_message());
    uint64_t r3 = 0;
    cr_expect_eq(ee__email_reserve(e, w, a, &r3), EE_ERATELIMIT, "the limit still holds");
    ee__email_reserve_end(e, w, a, r1, true);
    ee__email_reserve_end(e, w, b, r2, true);
    ee_engine_close(e);
}
