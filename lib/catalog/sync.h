/*
 * lib/catalog/sync.h - sync of the catalog from n8n (sync.c): what one
 * workflow contributes to its catalog entry. (The sync itself is public:
 * ee_catalog_sync(), with the engine's client; tests give the engine a
 * fake one through ee_engine_open_parts().)
 */
#ifndef EE_CATALOG_SYNC_H
#define EE_CATALOG_SYNC_H

#include <jansson.h>

#include "catalog/categorize.h"
#include "credentials/credentials.h"
#include "execengine/engine.h"
#include "execengine/n8n.h"

/*
 * Everything sync derives from one normalised n8n workflow (see n8n.h):
 *   {"source": {"name", "description", "tags", "categoryName",
 *               "isActive", "requiresApiKey", "apiKeyProvider"},
 *    "credentialTypes": [...], "services": [...], "nodeTypes": [...],
 *    "trigger": {...}, "active": bool, "archived": bool,
 *    "versionId": str|null, "updatedAt": str|null}
 * Texts are cut to the catalog's limits. `integrations` may be NULL (no
 * node-type mapping). New reference in *out. Returns EE_OK, EE_ENOMEM.
 */
ee_status ee__catalog_derive(const json_t *workflow, const ee__integrations *integrations,
                             const ee__cat_rules *rules, json_t **out);

#endif
