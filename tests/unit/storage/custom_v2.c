/* The storage conformance suite against a custom backend table of version
 * 2 forwarding to the memory backend (custom_backend.h). */
#include "custom_backend.h"

#define CONF_SUITE storage_custom_v2

static ee_storage *conf_open(void)
{
    return custom_open(2);
}

static void conf_cleanup(void) {}

#include "conformance.h"

Test(storage_custom_v2, claims_go_through_the_claim_slot)
{
    char id[25];
    put_item("e-1", 1, T0 - 1, id);
    int before = atomic_load(&custom_state->replaces);
    claim_mark m = {.owner = "w", .until = CLAIM_FAR, .fail = EE_OK};
    cr_assert_eq(claim_next(S, T0, &m, NULL, NULL), EE_OK, "%s", ee_error_last_message());
    cr_expect_eq(atomic_load(&custom_state->claims), 1);
    cr_expect_eq(atomic_load(&custom_state->replaces), before);
}
