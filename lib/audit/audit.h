/*
 * lib/audit/audit.h - the audit log's semi-private side: the action names
 * and the one append every module calls where its action commits.
 *
 * Adding an action (billing, e-mail ...): one line in EE__AUDIT_ACTIONS
 * below - its enumerator, its stable dotted name, the kind of its target -
 * one row in docs/audit.md, and the call at the commit point. A name never
 * changes once released (hosts filter on it); the enumerators are internal
 * and may be reordered.
 */
#ifndef EE_AUDIT_AUDIT_H
#define EE_AUDIT_AUDIT_H

#include <jansson.h>

#include "core/core.h"
#include "execengine/audit.h"
#include "execengine/engine.h"

/* X(enumerator suffix, "dotted.name", "target kind") */
#define EE__AUDIT_ACTIONS(X)                                                                     \
    X(KEY_ADDED, "credentials.key.added", "customerApiKey")                                      \
    X(KEY_UPDATED, "credentials.key.updated", "customerApiKey")                                  \
    X(KEY_DELETED, "credentials.key.deleted", "customerApiKey")                                  \
    X(KEY_VALIDATED, "credentials.key.validated", "customerApiKey")                              \
    X(PERSONAL_PUT, "credentials.personal.put", "personalCredential")                            \
    X(PERSONAL_DELETED, "credentials.personal.deleted", "personalCredential")                    \
    X(PLATFORM_PROVISIONED, "credentials.platform.provisioned", "platformPool")                  \
    X(PLATFORM_SWITCHED, "credentials.platform.switched", "platformCredential")                  \
    X(SECRET_ROTATED, "credentials.secret.rotated", "encryptionSecret")                          \
    X(EXEC_REQUESTED, "execution.requested", "execution")                                        \
    X(EXEC_REFUSED, "execution.refused", "workflow")                                             \
    X(EXEC_STARTED, "execution.started", "execution")                                            \
    X(EXEC_FINISHED, "execution.finished", "execution")                                          \
    X(EXEC_CANCELLED, "execution.cancelled", "execution")                                        \
    X(EXEC_PURGED, "execution.purged", "executions")                                             \
    X(GATEWAY_BUDGET_REFUSED, "gateway.budget.refused", "execution")                             \
    X(CATALOG_ENTRY_CREATED, "catalog.entry.created", "workflow")                                \
    X(CATALOG_ENTRY_UPDATED, "catalog.entry.updated", "workflow")                                \
    X(CATALOG_CATEGORY_CREATED, "catalog.category.created", "category")                          \
    X(CATALOG_CATEGORY_UPDATED, "catalog.category.updated", "category")                          \
    X(CATALOG_SYNCED, "catalog.synced", "catalog")                                               \
    X(QUOTA_PLAN_PUT, "quota.plan.put", "plan")                                                  \
    X(QUOTA_PLAN_DELETED, "quota.plan.deleted", "plan")                                          \
    X(QUOTA_SUBSCRIPTION_PUT, "quota.subscription.put", "subscription")                          \
    X(QUOTA_THRESHOLD, "quota.threshold", "organisation")                                       \
    X(BILLING_MONTH_BILLED, "billing.month.billed", "billingMonth")                              \
    X(BILLING_MONTH_PAID, "billing.month.paid", "billingMonth")                                  \
    X(EMAIL_SENT, "email.sent", "emailMessage")                                                  \
    X(EMAIL_FAILED, "email.failed", "emailMessage")                                              \
    X(EMAIL_TEMPLATE_PUT, "email.template.put", "emailTemplate")                                 \
    X(EMAIL_TEMPLATE_DELETED, "email.template.deleted", "emailTemplate")                         \
    X(AUDIT_PURGED, "audit.purged", "auditLog")

typedef enum ee__audit_action {
#define EE__AUDIT_ENUM(e, name, kind) EE__AUDIT_##e,
    EE__AUDIT_ACTIONS(EE__AUDIT_ENUM)
#undef EE__AUDIT_ENUM
        EE__AUDIT_ACTION_COUNT
} ee__audit_action;

typedef enum ee__audit_outcome {
    EE__AUDIT_OK,      /* the action happened */
    EE__AUDIT_REFUSED, /* a rule refused it (budget, quota, state) */
    EE__AUDIT_FAILED,  /* it was attempted and failed (upstream, storage) */
} ee__audit_outcome;

/* The workspace of actions that belong to none (catalog, platform pool,
 * rotation), as the platform credentials' own. */
#define EE__AUDIT_PLATFORM "platform"
/* Actors that are not a user. */
#define EE__AUDIT_ACTOR_ENGINE "engine" /* the engine on its own (workers, recovery, alerts) */
#define EE__AUDIT_ACTOR_SYSTEM "system" /* the host, through a call without a principal */

/* One entry. Everything is borrowed for the call. */
typedef struct ee__audit_entry {
    ee__audit_action action;
    const char *workspace; /* NULL: EE__AUDIT_PLATFORM */
    const char *org;       /* may be NULL */
    const char *actor;     /* a userId, or EE__AUDIT_ACTOR_*; NULL: "system" */
    const char *target_id; /* may be NULL; at most EE_STORAGE_VALUE_MAX bytes are kept */
    ee__audit_outcome outcome;
    ee_status status; /* its name is stored ("EE_OK") */
    const json_t *detail; /* may be NULL; never a secret; bounded (EE_AUDIT_DETAIL_MAX) */
} ee__audit_entry;

/* Append one entry at the engine's clock. Never fails the caller: an entry
 * that cannot be written is logged (error) and counted in ee_audit_stats()
 * "failed". Keeps the caller's last-error detail as it was. Safe from any
 * thread; a NULL engine, or one whose audit module is not open, does
 * nothing. */
void ee__audit_append(ee_engine *engine, const ee__audit_entry *entry);

/* The stable name of an action ("" for an out-of-range value). */
const char *ee__audit_action_name(ee__audit_action action);

/* The stored collection (lib/storage/collections.c). */
#define EE__AUDIT_COLL "auditLog"

#endif
