#include <criterion/criterion.h>
#include <string.h>

#include <execengine/execengine.h>

Test(principal, holds_validated_ids)
{
    ee_principal *p = NULL;
    cr_assert_eq(ee_principal_new(&p, "ws-1", "user@example.com", "org:acme"), EE_OK);
    cr_expect_str_eq(ee_principal_workspace(p), "ws-1");
    cr_expect_str_eq(ee_principal_user(p), "user@example.com");
    cr_expect_str_eq(ee_principal_org(p), "org:acme");
    ee_principal_free(p);
    cr_assert_eq(ee_principal_new(&p, "ws-2", "u", NULL), EE_OK);
    cr_expect_str_eq(ee_principal_org(p), "ws-2", "a workspace is its own org by default");
    ee_principal_free(p);
    ee_principal_free(NULL);
    cr_expect_str_eq(ee_principal_workspace(NULL), "");
}

Test(principal, rejects_bad_ids)
{
    char long_id[66];
    memset(long_id, 'a', 65);
    long_id[65] = '\0';
    const char *bad[][3] = {
        {NULL, "u", "workspaceId is missing"},
        {"ws", NULL, "userId is missing"},
        {"", "u", "workspaceId"},
        {long_id, "u", "workspaceId"},
        {"ws 1", "u", "workspaceId"},
        {"ws", "u/../x", "userId"},
        {"ws", "u\n", "userId"},
        {"platform", "u", "reserved"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ee_principal *p = (ee_principal *)1;
        cr_expect_eq(ee_principal_new(&p, bad[i][0], bad[i][1], NULL), EE_EINVAL, "case %zu", i);
        cr_expect_null(p);
        cr_expect_not_null(strstr(ee_error_last_message(), bad[i][2]), "case %zu: %s", i,
                           ee_error_last_message());
    }
    ee_principal *p = NULL;
    cr_expect_eq(ee_principal_new(&p, "ws", "u", "bad org"), EE_EINVAL);
    cr_expect_eq(ee_principal_new(NULL, "ws", "u", NULL), EE_EINVAL);
}
