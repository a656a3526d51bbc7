/* The options of the execution pipeline's standalone pieces (support.h),
 * listed by the exec module's option table (support_internal.h). */
#include "exec/support_internal.h"

const ee__option ee__exec_support_options[] = {EE__EXEC_SUPPORT_OPTIONS};
const size_t ee__exec_support_noptions =
    sizeof ee__exec_support_options / sizeof ee__exec_support_options[0];
