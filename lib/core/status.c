/* ee_strerror() and ee_status_name(), generated from EE_STATUS_MAP. */
#include "execengine/errors.h"

const char *ee_strerror(int status)
{
    switch (status) {
#define EE__STATUS_MSG(name, num, msg) case num: return msg;
        EE_STATUS_MAP(EE__STATUS_MSG)
#undef EE__STATUS_MSG
    default:
        return "unknown status";
    }
}

const char *ee_status_name(int status)
{
    switch (status) {
#define EE__STATUS_NAME(name, num, msg) case num: return #name;
        EE_STATUS_MAP(EE__STATUS_NAME)
#undef EE__STATUS_NAME
    default:
        return "EE_UNKNOWN_STATUS";
    }
}
