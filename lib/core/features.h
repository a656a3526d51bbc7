/*
 * What this build of the library has (CMake options EE_WITH_POSTGRES,
 * EE_WITH_REDIS): the one message for a backend left out, so every URI
 * scheme and constructor of a missing backend answers alike.
 */
#ifndef EE_CORE_FEATURES_H
#define EE_CORE_FEATURES_H

#include "execengine/errors.h"

/* The build system defines both as 0 or 1; a file compiled outside it
 * (a tool, an editor's parser) sees every backend. */
#ifndef EE_WITH_POSTGRES
#define EE_WITH_POSTGRES 1
#endif
#ifndef EE_WITH_REDIS
#define EE_WITH_REDIS 1
#endif

/* EE_ENOTSUPPORTED with "<what>: libexecengine was built without <feature>
 * (<option>=OFF) ...". `what` names the request (a scheme or a
 * constructor), never the URI: it may carry a password. */
ee_status ee__not_built(const char *what, const char *feature, const char *option);

#endif
