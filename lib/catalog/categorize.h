/*
 * lib/catalog/categorize.h - automatic categorisation of synced workflows
 * from the rules of data/categories.json (an admin edits the file; every
 * sync reads it again):
 *
 *   {"version": 1,
 *    "categories": [{"name", "description"?, "icon"?, "sortOrder"?,
 *                    "isActive"?}, ...],
 *    "default": "<category name>",
 *    "rules": [{"category": "<name>", "tagsAny"?: [...],
 *               "nodeTypesAny"?: ["n8n-nodes-base.gmail", "@n8n/n8n-nodes-langchain.*"],
 *               "integrationCategoriesAny"?: ["ai", ...],
 *               "namePatterns"?: ["report", ...]}, ...]}
 *
 * Rules are tried in order; the first that matches names the category. A
 * rule matches when ANY of its lists matches: a workflow tag equal to one
 * of tagsAny (case-insensitive); a node type equal to one of nodeTypesAny
 * (a trailing '*' matches any suffix); the integration-catalog category of
 * one of the services its nodes use in integrationCategoriesAny; the
 * workflow's name containing one of namePatterns (case-insensitive). No
 * rule matching gives "default". Every category a rule or the default
 * names must be declared in "categories".
 * Immutable once parsed: safe to share between threads.
 */
#ifndef EE_CATALOG_CATEGORIZE_H
#define EE_CATALOG_CATEGORIZE_H

#include <stddef.h>

#include <jansson.h>

#include "execengine/errors.h"

#define EE__CAT_RULES_MAX_BYTES (1024 * 1024)

typedef struct ee__cat_rules ee__cat_rules;

/* Parse rules from JSON text. Returns EE_OK; EE_ETOOBIG; EE_EPARSE (not
 * JSON); EE_EINVAL (wrong shape: the message names the field, e.g.
 * "rules[2].tagsAny"); EE_ENOMEM. */
ee_status ee__cat_rules_parse(const char *text, size_t len, ee__cat_rules **out);

/* Read and parse a file: EE_EIO when it cannot be read, else as parse
 * (messages name the path). */
ee_status ee__cat_rules_load_file(const char *path, ee__cat_rules **out);

void ee__cat_rules_free(ee__cat_rules *rules);

/* The declared categories (borrowed array of objects, each with every
 * field filled: name, description, icon, sortOrder, isActive). */
const json_t *ee__cat_rules_categories(const ee__cat_rules *rules);

/* The category name for a workflow (borrowed from the rules). `tags`,
 * `node_types` and `integration_categories` are arrays of strings (NULL is
 * an empty list); `name` may be NULL. */
const char *ee__cat_rules_match(const ee__cat_rules *rules, const char *name, const json_t *tags,
                                const json_t *node_types, const json_t *integration_categories);

#endif
