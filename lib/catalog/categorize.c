/* Categorisation rules (data/categories.json): parsed and checked once per
 * sync, then matched against each workflow. */
#include "catalog/categorize.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/core.h"
#include "execengine/catalog.h"

struct ee__cat_rules {
    json_t *categories; /* normalised copies */
    json_t *rules;      /* borrowed from doc */
    const char *fallback;
    json_t *doc;
};

static const char *const rule_lists[] = {"tagsAny", "nodeTypesAny", "integrationCategoriesAny",
                                         "namePatterns"};

/* "categories file: rules[2].tagsAny must be ..." */
static ee_status shape(const char *list, size_t i, const char *field, const char *what)
{
    return ee__error(EE_EINVAL, "categories file: %s[%zu]%s%s %s", list, i, field[0] ? "." : "",
                     field, what);
}

static bool declared(const json_t *cats, const char *name)
{
    size_t i;
    const json_t *c;
    json_array_foreach(cats, i, c) {
        if (strcmp(json_string_value(json_object_get(c, "name")), name) == 0)
            return true;
    }
    return false;
}

static bool short_text(const json_t *v, size_t max)
{
    return json_is_string(v) && json_string_length(v) > 0 && json_string_length(v) <= max
        && strlen(json_string_value(v)) == json_string_length(v);
}

static ee_status parse_category(const json_t *c, size_t i, json_t *into)
{
    if (!json_is_object(c))
        return shape("categories", i, "", "must be an object");
    const json_t *name = json_object_get(c, "name");
    if (!short_text(name, EE_CATALOG_CATEGORY_NAME_MAX))
        return shape("categories", i, "name", "must be a non-empty string of at most 100 bytes");
    if (declared(into, json_string_value(name)))
        return shape("categories", i, "name", "is declared twice");
    const json_t *desc = json_object_get(c, "description"), *icon = json_object_get(c, "icon");
    const json_t *order = json_object_get(c, "sortOrder"), *active = json_object_get(c, "isActive");
    if (desc != NULL && (!json_is_string(desc)
                         || json_string_length(desc) > EE_CATALOG_CATEGORY_DESCRIPTION_MAX))
        return shape("categories", i, "description", "must be a string of at most 1000 bytes");
    if (icon != NULL && (!json_is_string(icon) || json_string_length(icon) > EE_CATALOG_CATEGORY_ICON_MAX))
        return shape("categories", i, "icon", "must be a string of at most 100 bytes");
    if (order != NULL && (!json_is_integer(order) || json_integer_value(order) < INT32_MIN
                          || json_integer_value(order) > INT32_MAX))
        return shape("categories", i, "sortOrder", "must be a 32-bit integer");
    if (active != NULL && !json_is_boolean(active))
        return shape("categories", i, "isActive", "must be true or false");
    json_t *norm = json_pack("{s:O, s:s, s:s, s:I, s:b}", "name", name, "description",
                             desc ? json_string_value(desc) : "", "icon",
                             icon ? json_string_value(icon) : "", "sortOrder",
                             order ? json_integer_value(order) : (json_int_t)(i * 10),
                             "isActive", active ? json_is_true(active) : 1);
    if (norm == NULL || json_array_append_new(into, norm) != 0)
        return ee__error(EE_ENOMEM, "out of memory");
    return EE_OK;
}

static ee_status parse_rule(const json_t *r, size_t i, const json_t *cats)
{
    if (!json_is_object(r))
        return shape("rules", i, "", "must be an object");
    const char *cat = json_string_value(json_object_get(r, "category"));
    if (cat == NULL)
        return shape("rules", i, "category", "must be a category name");
    if (!declared(cats, cat))
        return shape("rules", i, "category", "names a category not declared in \"categories\"");
    size_t lists = 0;
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)r, key, v) {
        if (strcmp(key, "category") == 0 || strcmp(key, "description") == 0)
            continue;
        bool known = false;
        for (size_t k = 0; k < sizeof rule_lists / sizeof rule_lists[0]; k++)
            known = known || strcmp(rule_lists[k], key) == 0;
        if (!known)
            return shape("rules", i, key, "is not a known rule list");
        if (!json_is_array(v))
            return shape("rules", i, key, "must be an array of strings");
        size_t k;
        const json_t *s;
        json_array_foreach(v, k, s) {
            if (!short_text(s, 200))
                return shape("rules", i, key, "must hold non-empty strings of at most 200 bytes");
        }
        lists++;
    }
    if (lists == 0)
        return shape("rules", i, "", "has no condition");
    return EE_OK;
}

ee_status ee__cat_rules_parse(const char *text, size_t len, ee__cat_rules **out)
{
    *out = NULL;
    if (len > EE__CAT_RULES_MAX_BYTES)
        return ee__error(EE_ETOOBIG, "categories file of %zu bytes exceeds %d", len,
                         EE__CAT_RULES_MAX_BYTES);
    json_error_t jerr;
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL)
        return ee__error(EE_EPARSE, "categories file is not JSON: %s at line %d", jerr.text,
                         jerr.line);
    ee__cat_rules *r = calloc(1, sizeof *r);
    if (r == NULL) {
        json_decref(doc);
        return ee__error(EE_ENOMEM, "out of memory");
    }
    r->doc = doc;
    r->categories = json_array();
    ee_status st = r->categories ? EE_OK : ee__error(EE_ENOMEM, "out of memory");
    const json_t *cats = json_object_get(doc, "categories");
    r->rules = json_object_get(doc, "rules");
    r->fallback = json_string_value(json_object_get(doc, "default"));
    if (st == EE_OK && (!json_is_array(cats) || json_array_size(cats) == 0))
        st = ee__error(EE_EINVAL, "categories file: \"categories\" must be a non-empty array");
    if (st == EE_OK && r->rules != NULL && !json_is_array(r->rules))
        st = ee__error(EE_EINVAL, "categories file: \"rules\" must be an array");
    size_t i;
    const json_t *v;
    json_array_foreach(cats, i, v) {
        if (st == EE_OK)
            st = parse_category(v, i, r->categories);
    }
    if (st == EE_OK && (r->fallback == NULL || !declared(r->categories, r->fallback)))
        st = ee__error(EE_EINVAL, "categories file: \"default\" must name a declared category");
    json_array_foreach(r->rules, i, v) {
        if (st == EE_OK)
            st = parse_rule(v, i, r->categories);
    }
    if (st != EE_OK) {
        ee__cat_rules_free(r);
        return st;
    }
    *out = r;
    return EE_OK;
}

ee_status ee__cat_rules_load_file(const char *path, ee__cat_rules **out)
{
    *out = NULL;
    char *buf = NULL;
    size_t len = 0;
    ee_status st = ee__read_file(path, EE__CAT_RULES_MAX_BYTES, &buf, &len);
    if (st == EE_ENOTFOUND)
        st = ee__error(EE_EIO, "cannot open the categories file %s", path);
    if (st == EE_OK && (st = ee__cat_rules_parse(buf, len, out)) != EE_OK) {
        char why[EE__ERROR_MSG_MAX];
        snprintf(why, sizeof why, "%s", ee_error_last_message());
        st = ee__error(st, "%s: %s", path, why);
    }
    free(buf);
    return st;
}

void ee__cat_rules_free(ee__cat_rules *rules)
{
    if (rules == NULL)
        return;
    json_decref(rules->categories);
    json_decref(rules->doc);
    free(rules);
}

const json_t *ee__cat_rules_categories(const ee__cat_rules *rules)
{
    return rules->categories;
}

/* ---- matching ------------------------------------------------------------------- */

static bool contains_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (const char *p = hay; *p; p++)
        if (strncasecmp(p, needle, n) == 0)
            return true;
    return false;
}

static bool type_matches(const char *pattern, const char *type)
{
    size_t n = strlen(pattern);
    if (n > 0 && pattern[n - 1] == '*')
        return strncmp(pattern, type, n - 1) == 0;
    return strcmp(pattern, type) == 0;
}

/* Whether any value of `have` matches any pattern of `want`. */
static bool any(const json_t *want, const json_t *have, int how)
{
    size_t i, k;
    const json_t *w, *h;
    json_array_foreach(want, i, w) {
        const char *ws = json_string_value(w);
        json_array_foreach(have, k, h) {
            const char *hs = json_string_value(h);
            if (hs == NULL)
                continue;
            if ((how == 0 && strcasecmp(ws, hs) == 0) || (how == 1 && type_matches(ws, hs))
                || (how == 2 && strcmp(ws, hs) == 0))
                return true;
        }
    }
    return false;
}

const char *ee__cat_rules_match(const ee__cat_rules *rules, const char *name, const json_t *tags,
                                const json_t *node_types, const json_t *integration_categories)
{
    size_t i;
    const json_t *r;
    json_array_foreach(rules->rules, i, r) {
        bool hit = any(json_object_get(r, "tagsAny"), tags, 0)
                || any(json_object_get(r, "nodeTypesAny"), node_types, 1)
                || any(json_object_get(r, "integrationCategoriesAny"), integration_categories, 2);
        size_t k;
        const json_t *p;
        json_array_foreach(json_object_get(r, "namePatterns"), k, p) {
            hit = hit || (name != NULL && contains_ci(name, json_string_value(p)));
        }
        if (hit)
            return json_string_value(json_object_get(r, "category"));
    }
    return rules->fallback;
}
