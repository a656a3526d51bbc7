/*
 * execengine/principal.h - who acts: the workspace, user and organisation
 * every call is made for.
 *
 * Everything a call reads or writes is scoped to the principal's
 * workspace; another workspace's records answer *not found*. Build a
 * principal once per request (or cache one per user) and pass it to every
 * call: it is validated once, so calls on the hot path do no parsing.
 *
 * Ids are 1 to 64 bytes of [A-Za-z0-9_.:@-]. The workspace id "platform"
 * is reserved for platform-funded credentials, and ids beginning with
 * "platform:" for the engine's own records: neither can act.
 *
 * Threads: immutable once created; may be shared by any number of threads.
 */
#ifndef EXECENGINE_PRINCIPAL_H
#define EXECENGINE_PRINCIPAL_H

#include "common.h"
#include "errors.h"

EE_BEGIN_DECLS

#define EE_PRINCIPAL_ID_MAX 64

typedef struct ee_principal ee_principal;

/**
 * Create a principal. All three ids are copied. `org_id` may be NULL when
 * the workspace is its own organisation (the workspace id is used).
 * *out is owned by the caller (ee_principal_free()), NULL on failure.
 *
 * Returns EE_OK; EE_EINVAL (NULL out, workspace or user; an id empty, too
 * long or with other characters - the message names which -; workspace
 * "platform" or "platform:..."); EE_ENOMEM.
 */
EE_API ee_status ee_principal_new(ee_principal **out, const char *workspace_id,
                                  const char *user_id, const char *org_id);

/** Free a principal. Accepts NULL. */
EE_API void ee_principal_free(ee_principal *principal);

/** The ids, borrowed for the principal's life ("" for NULL). */
EE_API const char *ee_principal_workspace(const ee_principal *principal);
EE_API const char *ee_principal_user(const ee_principal *principal);
EE_API const char *ee_principal_org(const ee_principal *principal);

EE_END_DECLS

#endif
