/* Who may run a catalog entry: its "access" member - everyone, the
 * organisations on some plans, or a workspace allow-list - validated when an
 * admin sets it, checked on a stored record (get, validate, the page a list
 * or search renders) and on the search snapshot's items (list and search
 * filters, totals). Sync never writes the member, so a re-sync keeps it.
 *
 * Stored form (normalised here: lists deduplicated and sorted, only the
 * list the mode reads):
 *   {"mode": "everyone"} | {"mode": "plans", "plans": [...]}
 *   | {"mode": "workspaces", "workspaces": [...]}
 * A record without the member (stored before it existed) is "everyone"; one
 * with a mode this version does not know is run by nobody (fails closed). */
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog_internal.h"
#include "quota/quota.h"

int ee__cat_access_mode(const char *mode)
{
    if (mode == NULL)
        return EE__CAT_ACCESS_NOBODY;
    if (strcmp(mode, "everyone") == 0)
        return EE__CAT_ACCESS_EVERYONE;
    if (strcmp(mode, "plans") == 0)
        return EE__CAT_ACCESS_PLANS;
    if (strcmp(mode, "workspaces") == 0)
        return EE__CAT_ACCESS_WORKSPACES;
    return EE__CAT_ACCESS_NOBODY;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* /access/<member>: an array of at most `max` ids, as a new sorted array
 * without duplicates. */
static ee_status id_list(const json_t *v, const char *member, size_t max, const char *what,
                         json_t **out)
{
    *out = NULL;
    if (!json_is_array(v))
        return ee__error(EE_EINVAL, "catalog entry: /access/%s must be an array of %s ids",
                         member, what);
    size_t n = json_array_size(v);
    if (n > max)
        return ee__error(EE_ETOOBIG, "catalog entry: /access/%s has %zu %ss; the limit is %zu",
                         member, n, what, max);
    const char **ids = malloc((n ? n : 1) * sizeof *ids);
    if (ids == NULL)
        return ee__error(EE_ENOMEM, "out of memory reading /access/%s", member);
    size_t i;
    const json_t *item;
    json_array_foreach(v, i, item) {
        const char *s = json_string_value(item);
        if (s == NULL || strlen(s) != json_string_length(item) || !ee__id_valid(s)) {
            free(ids);
            return ee__error(EE_EINVAL, "catalog entry: /access/%s/%zu must be a %s id (1 to %d "
                                        "bytes of [A-Za-z0-9_.:@-])",
                             member, i, what, EE_PRINCIPAL_ID_MAX);
        }
        ids[i] = s;
    }
    if (n > 1)
        qsort(ids, n, sizeof *ids, cmp_str);
    json_t *arr = json_array();
    bool bad = arr == NULL;
    for (size_t k = 0; !bad && k < n; k++)
        if (k == 0 || strcmp(ids[k - 1], ids[k]) != 0)
            bad = json_array_append_new(arr, json_string(ids[k])) != 0;
    free(ids);
    if (bad) {
        json_decref(arr);
        return ee__error(EE_ENOMEM, "out of memory reading /access/%s", member);
    }
    *out = arr;
    return EE_OK;
}

ee_status ee__cat_access_parse(const json_t *v, json_t **out)
{
    *out = NULL;
    if (json_is_null(v)) {
        *out = json_pack("{s:s}", "mode", "everyone");
        return *out ? EE_OK : ee__error(EE_ENOMEM, "out of memory");
    }
    if (!json_is_object(v))
        return ee__error(EE_EINVAL, "catalog entry: /access must be an object {\"mode\": "
                                    "\"everyone\" | \"plans\" | \"workspaces\", ...} or null");
    const char *key;
    const json_t *m;
    json_object_foreach((json_t *)v, key, m) {
        if (strcmp(key, "mode") != 0 && strcmp(key, "plans") != 0
            && strcmp(key, "workspaces") != 0) {
            char q[80];
            ee__quote_for_message(key, q, sizeof q);
            return ee__error(EE_EINVAL, "catalog entry: unknown member \"%s\" (at /access/%s)",
                             q, q);
        }
    }
    const json_t *mode_v = json_object_get(v, "mode");
    int mode = json_is_string(mode_v) ? ee__cat_access_mode(json_string_value(mode_v))
                                      : EE__CAT_ACCESS_NOBODY;
    if (mode == EE__CAT_ACCESS_NOBODY)
        return ee__error(EE_EINVAL, "catalog entry: /access/mode must be \"everyone\", "
                                    "\"plans\" or \"workspaces\"");
    const char *wanted = mode == EE__CAT_ACCESS_PLANS        ? "plans"
                         : mode == EE__CAT_ACCESS_WORKSPACES ? "workspaces"
                                                             : NULL;
    static const char *const lists[] = {"plans", "workspaces"};
    for (size_t i = 0; i < 2; i++) {
        bool given = json_object_get(v, lists[i]) != NULL;
        bool want = wanted != NULL && strcmp(wanted, lists[i]) == 0;
        if (given && !want)
            return ee__error(EE_EINVAL, "catalog entry: /access/%s is allowed only with \"mode\": "
                                        "\"%s\"", lists[i], lists[i]);
        if (want && !given)
            return ee__error(EE_EINVAL, "catalog entry: /access/%s is required with \"mode\": "
                                        "\"%s\"", lists[i], lists[i]);
    }
    json_t *rec = json_pack("{s:s}", "mode", json_string_value(mode_v));
    if (rec == NULL)
        return ee__error(EE_ENOMEM, "out of memory");
    if (wanted != NULL) {
        json_t *arr = NULL;
        ee_status st = mode == EE__CAT_ACCESS_PLANS
                           ? id_list(json_object_get(v, "plans"), "plans",
                                     EE_CATALOG_ACCESS_PLANS_MAX, "plan", &arr)
                           : id_list(json_object_get(v, "workspaces"), "workspaces",
                                     EE_CATALOG_ACCESS_WORKSPACES_MAX, "workspace", &arr);
        if (st == EE_OK && json_object_set_new(rec, wanted, arr) != 0)
            st = ee__error(EE_ENOMEM, "out of memory");
        if (st != EE_OK) {
            json_decref(rec);
            return st;
        }
    }
    *out = rec;
    return EE_OK;
}

json_t *ee__cat_access_render(const json_t *rec)
{
    const json_t *a = json_object_get(rec, "access");
    return json_is_object(a) ? json_deep_copy(a) : json_pack("{s:s}", "mode", "everyone");
}

ee_status ee__cat_plan_of(ee_engine *engine, const ee_principal *principal,
                          char plan[EE_PRINCIPAL_ID_MAX + 1])
{
    ee_status st = ee__quota_plan_of(engine, principal, plan);
    if (st == EE_ENOTFOUND) {
        /* the subscription names a plan that is gone: on no plan an entry lists */
        plan[0] = '\0';
        ee_error_clear();
        return EE_OK;
    }
    return st;
}

ee_status ee__cat_access_check(ee_engine *engine, const json_t *rec,
                               const ee_principal *principal, const char *plan, bool *allowed)
{
    *allowed = true;
    if (principal == NULL)
        return EE_OK; /* the library's own or an admin's read */
    const json_t *a = json_object_get(rec, "access");
    if (a == NULL)
        return EE_OK;
    int mode = ee__cat_access_mode(json_string_value(json_object_get(a, "mode")));
    switch (mode) {
    case EE__CAT_ACCESS_EVERYONE:
        return EE_OK;
    case EE__CAT_ACCESS_WORKSPACES: {
        const json_t *list = json_object_get(a, "workspaces");
        *allowed = json_is_array(list) && ee__cat_listed(list, ee_principal_workspace(principal));
        return EE_OK;
    }
    case EE__CAT_ACCESS_PLANS: {
        char mine[EE_PRINCIPAL_ID_MAX + 1];
        if (plan == NULL) {
            ee_status st = ee__cat_plan_of(engine, principal, mine);
            if (st != EE_OK) {
                *allowed = false;
                return st;
            }
            plan = mine;
        }
        const json_t *list = json_object_get(a, "plans");
        *allowed = plan[0] != '\0' && json_is_array(list) && ee__cat_listed(list, plan);
        return EE_OK;
    }
    default:
        *allowed = false;
        return EE_OK;
    }
}

bool ee__cat_item_allows(const ee__cat_item *it, const char *workspace, const char *plan)
{
    const char *who;
    switch (it->access) {
    case EE__CAT_ACCESS_EVERYONE: return true;
    case EE__CAT_ACCESS_WORKSPACES: who = workspace; break;
    case EE__CAT_ACCESS_PLANS: who = plan; break;
    default: return false;
    }
    return who != NULL && who[0] != '\0' && it->n_access_ids > 0
        && bsearch(&who, it->access_ids, it->n_access_ids, sizeof *it->access_ids, cmp_str)
               != NULL;
}
