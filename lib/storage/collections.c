/*
 * The one place the collections are declared: name, scope, indexed fields,
 * composite indexes and unique key. Every backend builds its tables and
 * indexes from this table, and docs/storage.md documents it; a change here
 * needs EE__STORAGE_SCHEMA_VERSION bumped and a migration in the SQL
 * backends.
 *
 * The indexes follow the queries of the two seeds: executions by
 * workspace + user + createdAt and by status, usage by user + workflow +
 * period, billing by workspace + month, credentials by workspace (the
 * platform pool is workspace "platform") + credentialName, audit by
 * workspace + user/action + time. Every index is implicitly prefixed by the
 * workspace and suffixed by (time, id), which serves "newest first" pages.
 */
#include <string.h>

#include "internal.h"

#define FIELDS(...) ((const char *const[]){__VA_ARGS__})
#define IDX(...) ((const int[]){__VA_ARGS__, -1})
#define INDEXES(...) ((const int *const[]){__VA_ARGS__})
#define UNIQUE(...) ((const int[]){__VA_ARGS__})

/* Field positions are written by hand below; the comments name them. */

static const ee_storage_collection workflow_catalog = {
    "workflowCatalog", 0, "createdAt",
    3, FIELDS("n8nWorkflowId", "category", "isActive"),   /* 0 1 2 */
    2, INDEXES(IDX(1, 2), IDX(2)),
    1, UNIQUE(0)};

static const ee_storage_collection workflow_categories = {
    "workflowCategories", 0, "createdAt",
    2, FIELDS("name", "isActive"),                        /* 0 1 */
    1, INDEXES(IDX(1)),
    1, UNIQUE(0)};

static const ee_storage_collection workflow_executions = {
    "workflowExecutions", EE_STORAGE_COLL_PER_WORKSPACE, "createdAt",
    5, FIELDS("userId", "workflowCatalogId", "status", "n8nExecutionId", "idempotencyKey"),
    5, INDEXES(IDX(0), IDX(2), IDX(0, 2), IDX(1), IDX(3)),
    1, UNIQUE(4)};

static const ee_storage_collection execution_email_templates = {
    "executionEmailTemplates", 0, "createdAt",
    2, FIELDS("workflowCatalogId", "isActive"),           /* 0 1 */
    1, INDEXES(IDX(0, 1)),
    0, NULL};

static const ee_storage_collection user_workflow_usage = {
    "userWorkflowUsage", EE_STORAGE_COLL_PER_WORKSPACE, "createdAt",
    3, FIELDS("userId", "workflowCatalogId", "period"),  /* 0 1 2 */
    2, INDEXES(IDX(0, 2), IDX(2)),
    3, UNIQUE(0, 1, 2)};

static const ee_storage_collection customer_api_keys = {
    "customerApiKeys", EE_STORAGE_COLL_PER_WORKSPACE, "createdAt",
    3, FIELDS("userId", "provider", "isActive"),          /* 0 1 2 */
    1, INDEXES(IDX(0, 1, 2)),
    0, NULL};

static const ee_storage_collection platform_usage_billing = {
    "platformUsageBilling", EE_STORAGE_COLL_PER_WORKSPACE, "createdAt",
    3, FIELDS("month", "userId", "billingStatus"),        /* 0 1 2 */
    2, INDEXES(IDX(0), IDX(2)),
    2, UNIQUE(0, 1)};

static const ee_storage_collection credentials = {
    "credentials", EE_STORAGE_COLL_PER_WORKSPACE, "createdAt",
    2, FIELDS("credentialName", "userId"),                /* 0 1 */
    2, INDEXES(IDX(0), IDX(1)),
    0, NULL};

static const ee_storage_collection audit_log = {
    "auditLog", EE_STORAGE_COLL_PER_WORKSPACE, "createdAt",
    3, FIELDS("userId", "action", "resourceId"),          /* 0 1 2 */
    3, INDEXES(IDX(0), IDX(1), IDX(2)),
    0, NULL};

static const ee_storage_collection plans = {
    "plans", 0, "createdAt",
    2, FIELDS("name", "isActive"),                        /* 0 1 */
    1, INDEXES(IDX(1)),
    1, UNIQUE(0)};

static const ee_storage_collection subscriptions = {
    "subscriptions", EE_STORAGE_COLL_PER_WORKSPACE, "createdAt",
    3, FIELDS("orgId", "planId", "status"),               /* 0 1 2 */
    2, INDEXES(IDX(0), IDX(2)),
    1, UNIQUE(0)};                                        /* schema version 2 */

/* The durable execution queue (lib/exec/queue.c), global so that workers
 * claim across workspaces. The time field is when the item may next be
 * claimed (queued: the enqueue time; claimed: its lease's end; released:
 * now + delay), `round` the fairness round as zero-padded decimal text, so
 * that a claim is one walk of index (round, claimableAt, id) from its
 * start. `state` (waiting | claimed) serves the depth counts. Schema
 * version 3. */
static const ee_storage_collection execution_queue = {
    "executionQueue", 0, "claimableAt",
    4, FIELDS("executionId", "workspaceId", "state", "round"), /* 0 1 2 3 */
    3, INDEXES(IDX(3), IDX(2), IDX(1, 2)),
    1, UNIQUE(0)};

/* The queue's counters, kept with ee_storage_increment(): "backlog"
 * (items waiting, bounding pushes exactly) and "round:<workspace>" (the
 * last round given to a workspace). Schema version 3. */
static const ee_storage_collection execution_queue_counters = {
    "executionQueueCounters", 0, "createdAt",
    1, FIELDS("name"),                                    /* 0 */
    0, NULL,
    1, UNIQUE(0)};

/* The credential gateway (lib/gateway/, schema version 3). A grant is found
 * by its token's SHA-256 from any workspace (the token is all a request
 * carries), so the collection is global and the doc names its workspace.
 * gatewayCalls holds each metered call (callId: its own id) and one running
 * total per execution (callId "total"), incremented atomically. */
static const ee_storage_collection gateway_grants = {
    "gatewayGrants", 0, "createdAt",
    2, FIELDS("tokenHash", "executionId"),                /* 0 1 */
    1, INDEXES(IDX(1)),
    1, UNIQUE(0)};

/* No index of its own on executionId: the unique key (workspace,
 * executionId, callId) starts with it and serves the run's queries, and
 * every index is one more page written on each metered call. (Files made
 * before keep their old ee_gatewayCalls_i0, unused.) */
static const ee_storage_collection gateway_calls = {
    "gatewayCalls", EE_STORAGE_COLL_PER_WORKSPACE, "createdAt",
    2, FIELDS("executionId", "callId"),                   /* 0 1 */
    0, NULL,
    2, UNIQUE(0, 1)};

/* The e-mail outbox (lib/notify/email_outbox.c, schema version 4), global so
 * that senders claim across workspaces. The time field is when the message
 * may next be claimed (queued: its next attempt; sending: its lease's end;
 * sent or failed: when it ended); `active` ("1" while queued or sending)
 * is the claim's index, `status` the counts'. */
static const ee_storage_collection email_outbox = {
    "emailOutbox", 0, "claimableAt",
    4, FIELDS("active", "status", "executionId", "workspaceId"), /* 0 1 2 3 */
    3, INDEXES(IDX(0), IDX(1), IDX(3, 2)),
    0, NULL};

static const ee_storage_collection *const all[] = {
    &workflow_catalog, &workflow_categories, &workflow_executions,
    &execution_email_templates, &user_workflow_usage, &customer_api_keys,
    &platform_usage_billing, &credentials, &audit_log, &plans, &subscriptions,
    &execution_queue, &execution_queue_counters,
    &gateway_grants, &gateway_calls, &email_outbox,
};

const ee_storage_collection *const *ee__storage_collections(size_t *count)
{
    *count = sizeof all / sizeof all[0];
    return all;
}

const ee_storage_collection *ee__storage_collection_find(const char *name)
{
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (strcmp(all[i]->name, name) == 0)
            return all[i];
    return NULL;
}

int ee__storage_field_index(const ee_storage_collection *coll, const char *field)
{
    for (size_t i = 0; i < coll->n_fields; i++)
        if (strcmp(coll->fields[i], field) == 0)
            return (int)i;
    return -1;
}

ee_status ee_storage_collection_list(const ee_storage_collection *const **list_out,
                                     size_t *count_out)
{
    if (list_out == NULL || count_out == NULL)
        return ee__error(EE_EINVAL, "ee_storage_collection_list: NULL argument");
    *list_out = ee__storage_collections(count_out);
    return EE_OK;
}
