/*
 * The rendered-entry cache of list and search pages (catalog_api.c): a
 * write in another engine on the same SQLite file is seen by the next page
 * (the stored revision decides), and a page's own changes (the customer
 * view without "access", search scores) never reach the cached rendering.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine_fixture.h"
#include "execengine/catalog.h"

#define CATALOG_TEST_NAME "render-cache"
#define CATALOG_TEST_CLOCK NULL
#define CATALOG_SUITE_MEMORY render_cache_memory
#define CATALOG_SUITE_SQLITE render_cache_sqlite
#include "catalog_test.h"

/* The page's entry `id` (a new reference), or NULL. */
static json_t *page_entry(ee_engine *e, const ee_principal *p, bool search, const char *q,
                          const char *id)
{
    json_t *doc = search ? CALL(EE_OK, ee_catalog_search(e, p, q, &out_))
                         : CALL(EE_OK, ee_catalog_list(e, p, q, &out_));
    json_t *found = NULL, *it;
    size_t i;
    json_array_foreach(json_object_get(doc, "data"), i, it) {
        if (strcmp(str(it, "id"), id) == 0)
            found = json_incref(it);
    }
    json_decref(doc);
    return found;
}

Test(render_cache_sqlite, a_write_in_another_engine_is_seen_by_the_next_page)
{
    ee_engine *a = open_engine("sqlite");
    char uri[300];
    snprintf(uri, sizeof uri, "sqlite://%s", db_path);
    ee_engine *b = ee_test_engine_open(uri, NULL, NULL);
    ee_principal *p = NULL;
    cr_assert_eq(ee_principal_new(&p, "ws-1", "user-1", "org-1"), EE_OK);
    char *id = entry(a, "{\"n8nWorkflowId\": \"e\", \"name\": \"Echo\", \"description\": "
                        "\"first\", \"isActive\": true}");
    /* twice: the second page comes from the cache */
    for (int i = 0; i < 2; i++) {
        json_t *it = page_entry(a, p, false, NULL, id);
        cr_assert_not_null(it);
        cr_expect_str_eq(str(it, "description"), "first");
        json_decref(it);
    }
    json_decref(CALL(EE_OK, ee_catalog_update(b, id, "{\"description\": \"second\"}", &out_)));
    json_t *it = page_entry(a, p, false, NULL, id);
    cr_assert_not_null(it);
    cr_expect_str_eq(str(it, "description"), "second", "the other engine's write is seen");
    json_decref(it);
    it = page_entry(a, NULL, false, NULL, id);
    cr_assert_not_null(it);
    cr_expect_str_eq(str(it, "description"), "second");
    json_decref(it);
    /* deactivated elsewhere: gone from the customer's page, inactive in the admin's */
    json_decref(CALL(EE_OK, ee_catalog_update(b, id, "{\"isActive\": false}", &out_)));
    cr_expect_null(page_entry(a, p, false, NULL, id));
    it = page_entry(a, NULL, false, "{\"includeInactive\": true}", id);
    cr_assert_not_null(it);
    cr_expect(json_is_false(json_object_get(it, "isActive")));
    json_decref(it);
    ee_principal_free(p);
    free(id);
    ee_engine_close(b);
    close_engine(a);
}

BOTH(a_page_never_changes_the_cached_rendering)
{
    ee_principal *p = NULL;
    cr_assert_eq(ee_principal_new(&p, "ws-1", "user-1", "org-1"), EE_OK);
    char *id = entry(e, "{\"n8nWorkflowId\": \"f\", \"name\": \"Foxtrot\", \"isActive\": true}");
    /* the customer's view drops "access"; the admin's, after it, still has it */
    json_t *it = page_entry(e, p, false, NULL, id);
    cr_assert_not_null(it);
    cr_expect_null(json_object_get(it, "access"));
    json_decref(it);
    it = page_entry(e, NULL, false, NULL, id);
    cr_assert_not_null(it);
    cr_expect_not_null(json_object_get(it, "access"), "the admin's page has access");
    json_decref(it);
    /* a search adds its score to its page only */
    it = page_entry(e, p, true, "{\"q\": \"foxtrot\"}", id);
    cr_assert_not_null(it);
    cr_expect(json_is_integer(json_object_get(it, "score")));
    json_decref(it);
    it = page_entry(e, p, false, NULL, id);
    cr_assert_not_null(it);
    cr_expect_null(json_object_get(it, "score"), "a list has no score");
    cr_expect_null(json_object_get(it, "access"));
    json_decref(it);
    ee_principal_free(p);
    free(id);
}
