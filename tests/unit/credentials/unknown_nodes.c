/* ee_cred_route through the public API: a node type the integration
 * catalog does not know makes the workflow not ready, even with no gap. */
#include "cred_test.h"

Test(unknown_nodes, make_the_route_not_ready)
{
    ee_engine *e = ee_test_engine_open(NULL, NULL, NULL);
    ee_principal *p = principal("ws-unknown", "user-1");

    json_t *r = route(e, p, "{\"nodes\": [{\"name\": \"Hook\", \"type\": \"n8n-nodes-base.webhook\"},"
                            " {\"name\": \"Set\", \"type\": \"n8n-nodes-base.set\"}]}", NULL);
    cr_expect(json_is_true(json_object_get(r, "ready")), "free nodes only must be ready");
    cr_expect_eq(json_array_size(json_object_get(r, "unknownNodes")), 0);
    json_decref(r);

    r = route(e, p, "{\"nodes\": [{\"name\": \"Hook\", \"type\": \"n8n-nodes-base.webhook\"},"
                    " {\"name\": \"Odd\", \"type\": \"n8n-nodes-acme.mysteryApi\"}]}", NULL);
    cr_expect_eq(ngaps(r), 0);
    cr_expect(json_is_false(json_object_get(r, "ready")), "an unknown node type must not be ready");
    const json_t *unknown = json_object_get(r, "unknownNodes");
    cr_assert_eq(json_array_size(unknown), 1);
    cr_expect_str_eq(json_string_value(json_array_get(unknown, 0)), "n8n-nodes-acme.mysteryApi");
    json_decref(r);

    ee_principal_free(p);
    ee_engine_close(e);
}
