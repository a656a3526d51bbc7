/*
 * execengine/audit.h - the audit log: one append-only entry per action the
 * engine commits (docs/audit.md lists the actions and their names).
 *
 * The engine writes the entries itself, where each action commits (a key
 * added, an execution finished, a plan changed ...); a host only reads them
 * and schedules their retention. An entry, as this door renders it:
 *   {"id": "<24 hex>", "time": ms since the epoch (the engine's clock),
 *    "action": "credentials.key.added" (a stable dotted name),
 *    "actor": "<userId>" | "system" | "engine",
 *    "workspaceId": "...", "orgId"?: "...",
 *    "target": {"kind": "customerApiKey", "id": "..."},
 *    "outcome": "ok" | "refused" | "failed", "status": "EE_OK" | "EE_ESPEND" ...,
 *    "detail": {...} (small, at most EE_AUDIT_DETAIL_MAX bytes, never a secret)}
 * Actions that belong to no workspace (the catalog, the platform pool, key
 * rotation, plans) are the platform's, kept in workspace "platform":
 * ee_audit_query() with a NULL principal reads them (the admin's view, as
 * ee_catalog_get()'s NULL principal).
 *
 * Threads: every call may be made from any number of threads at once.
 */
#ifndef EXECENGINE_AUDIT_H
#define EXECENGINE_AUDIT_H

#include "common.h"
#include "engine.h"
#include "errors.h"
#include "principal.h"

EE_BEGIN_DECLS

/** Bytes of an entry's detail object as compact JSON; a larger detail is
 * replaced by {"truncated": true, "bytes": n}. */
#define EE_AUDIT_DETAIL_MAX 1024

/** Entries per page of ee_audit_query(): default and largest. */
#define EE_AUDIT_LIMIT_DEFAULT 50
#define EE_AUDIT_LIMIT_MAX 500

/**
 * The principal's workspace's audit entries (principal NULL: the
 * platform's own), newest first. `query_json`
 * (may be NULL):
 *   {"from": ms (inclusive), "to": ms (exclusive),
 *    "action": "credentials.key." (a prefix of the action name; a whole
 *              name matches that action only),
 *    "limit": 1..EE_AUDIT_LIMIT_MAX (default EE_AUDIT_LIMIT_DEFAULT),
 *    "cursor": "..." (the nextCursor of the previous page of the same query)}
 * *out (the caller's, ee_free()): {"data": [entry, ...], "nextCursor": "..." | null}.
 * With an action filter a page may hold fewer than `limit` entries and
 * still have a nextCursor (one call examines at most 20 x limit entries,
 * so its work is bounded): follow nextCursor until it is null. Pages
 * followed to the end give every entry that existed when the walk started
 * exactly once, whatever is appended meanwhile (new entries are newer than
 * the first page).
 * Returns EE_OK; EE_EINVAL (NULL engine or out, a bad member -
 * named - or a cursor of another query); EE_EPARSE; EE_ETOOBIG; EE_ENOMEM;
 * EE_ECORRUPT (a stored entry does not decode); storage statuses.
 */
EE_API ee_status ee_audit_query(ee_engine *engine, const ee_principal *principal,
                                const char *query_json, char **out);

/**
 * Retention: delete the entries of every workspace older than `before_ms`
 * (ms since the epoch, exclusive). `before_ms` 0 means "now minus
 * AUDIT_RETENTION_DAYS days" by the engine's clock; with that option at 0
 * (keep forever) nothing is deleted. The host schedules it.
 * *deleted_out (may be NULL) gets the count. Each call then appends one
 * entry, "audit.purged", with the count (docs/audit.md).
 * Returns EE_OK; EE_EINVAL (NULL engine, negative before_ms); storage statuses.
 */
EE_API ee_status ee_audit_purge(ee_engine *engine, int64_t before_ms, uint64_t *deleted_out);

/**
 * This engine's audit counters since it opened:
 *   {"appended": n, "failed": n, "truncatedDetails": n}
 * An entry that cannot be written (storage down) never fails the action it
 * records - that action has already committed - but is logged as an error
 * and counted in "failed" (docs/audit.md says why). *out is the caller's
 * (ee_free()). Returns EE_OK, EE_EINVAL (NULL argument), EE_ENOMEM.
 */
EE_API ee_status ee_audit_stats(ee_engine *engine, char **out);

EE_END_DECLS

#endif
