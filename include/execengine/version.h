/*
 * execengine/version.h - compile-time and run-time version of libexecengine.
 *
 * The macros describe the headers a program was compiled against;
 * ee_version() describes the library it runs against. Bindings compare the
 * two majors at load time.
 */
#ifndef EXECENGINE_VERSION_H
#define EXECENGINE_VERSION_H

#include "common.h"

#define EE_VERSION_MAJOR 0
#define EE_VERSION_MINOR 1
#define EE_VERSION_PATCH 0
/** "MAJOR.MINOR.PATCH" of the headers. */
#define EE_VERSION_STRING "0.1.0"
/** One comparable number: 0xMMmmpp. */
#define EE_VERSION_NUM ((EE_VERSION_MAJOR << 16) | (EE_VERSION_MINOR << 8) | EE_VERSION_PATCH)

EE_BEGIN_DECLS

/**
 * The library's version as "MAJOR.MINOR.PATCH".
 *
 * Returns a static string owned by the library, valid for the life of the
 * process; never NULL. Thread-safe.
 */
EE_API const char *ee_version(void);

/**
 * The library's version as EE_VERSION_NUM would spell it (0xMMmmpp).
 * Thread-safe.
 */
EE_API int ee_version_num(void);

/**
 * What this build of the library has, as words separated by one space, in
 * this order: "sqlite memory" always, then "postgres" (PostgreSQL storage
 * and counters, libpq), "redis" (Redis counters, hiredis), "idn" (the
 * idn-hostname and idn-email formats, libidn2), "curl" (the HTTP and mail
 * transport) when the build has them. A backend left out (CMake options
 * EE_WITH_POSTGRES, EE_WITH_REDIS) answers EE_ENOTSUPPORTED, with a message
 * saying so, to its URI scheme and its constructor. The same words are in
 * pkg-config's `features` variable and CMake's execengine_FEATURES.
 *
 * Returns a static string owned by the library, valid for the life of the
 * process; never NULL. Thread-safe.
 */
EE_API const char *ee_version_features(void);

EE_END_DECLS

#endif
