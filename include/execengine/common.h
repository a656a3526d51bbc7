/*
 * execengine/common.h - export macro and C/C++ linkage helpers shared by
 * every public header. Nothing here allocates or has state.
 */
#ifndef EXECENGINE_COMMON_H
#define EXECENGINE_COMMON_H

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32) && defined(EE_BUILDING_LIBRARY)
#  define EE_API __declspec(dllexport)
#elif defined(_WIN32) && !defined(EE_STATIC)
#  define EE_API __declspec(dllimport)
#elif defined(__GNUC__) && defined(EE_BUILDING_LIBRARY)
#  define EE_API __attribute__((visibility("default")))
#else
#  define EE_API
#endif

#ifdef __cplusplus
#  define EE_BEGIN_DECLS extern "C" {
#  define EE_END_DECLS }
#else
#  define EE_BEGIN_DECLS
#  define EE_END_DECLS
#endif

#endif
