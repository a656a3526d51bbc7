/* ee_principal: validated ids of who acts. */
#include "core.h"

#include <stdlib.h>
#include <string.h>

#include "execengine/principal.h"

struct ee_principal {
    char workspace[EE_PRINCIPAL_ID_MAX + 1];
    char user[EE_PRINCIPAL_ID_MAX + 1];
    char org[EE_PRINCIPAL_ID_MAX + 1];
};

bool ee__id_valid(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > EE_PRINCIPAL_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == ':' || c == '@' || c == '-'))
            return false;
    }
    return true;
}

static ee_status check_id(const char *what, const char *id)
{
    if (ee__id_valid(id))
        return EE_OK;
    if (id == NULL)
        return ee__error(EE_EINVAL, "principal: %s is missing", what);
    char quoted[80];
    ee__quote_for_message(id, quoted, sizeof quoted);
    return ee__error(EE_EINVAL, "principal: %s \"%s\" must be 1 to %d characters of "
                                "[A-Za-z0-9_.:@-]", what, quoted, EE_PRINCIPAL_ID_MAX);
}

ee_status ee_principal_new(ee_principal **out, const char *workspace_id, const char *user_id,
                           const char *org_id)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee_principal_new: out is NULL");
    *out = NULL;
    ee_status st = check_id("workspaceId", workspace_id);
    if (st == EE_OK)
        st = check_id("userId", user_id);
    if (st == EE_OK && org_id != NULL)
        st = check_id("orgId", org_id);
    if (st != EE_OK)
        return st;
    if (strcmp(workspace_id, "platform") == 0)
        return ee__error(EE_EINVAL, "principal: workspace \"platform\" is reserved for "
                                    "platform credentials");
    if (strncmp(workspace_id, "platform:", 9) == 0)
        return ee__error(EE_EINVAL, "principal: workspace ids beginning with \"platform:\" are "
                                    "reserved for the engine's own records");
    ee_principal *p = calloc(1, sizeof *p);
    if (p == NULL)
        return ee__error(EE_ENOMEM, "out of memory creating a principal");
    strcpy(p->workspace, workspace_id);
    strcpy(p->user, user_id);
    strcpy(p->org, org_id ? org_id : workspace_id);
    *out = p;
    return EE_OK;
}

void ee_principal_free(ee_principal *principal)
{
    free(principal);
}

const char *ee_principal_workspace(const ee_principal *p) { return p ? p->workspace : ""; }
const char *ee_principal_user(const ee_principal *p) { return p ? p->user : ""; }
const char *ee_principal_org(const ee_principal *p) { return p ? p->org : ""; }
