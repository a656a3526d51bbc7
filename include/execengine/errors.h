/*
 * execengine/errors.h - status codes, per-thread error detail, ee_free().
 *
 * Every fallible call returns an ee_status: EE_OK (0) on success, a negative
 * code on failure. A code's number never changes once released; bindings
 * treat it as a plain int. New codes are only ever appended.
 *
 * Detail. A failing call also records, for the calling thread only, a
 * message (what was wrong, with which input, never a secret), the HTTP
 * status an upstream answered with (0 if none) and, where the failure has
 * structure, a JSON detail (validation violations, credential gaps, quota
 * figures). The detail stays until the next failing call on the same thread
 * or ee_error_clear(); a successful call does not clear it, so read it only
 * after a call that returned non-zero.
 *
 * Calls run on another thread (a binding's worker, e.g. koffi's .async):
 * every call that returns a document through a `char **out` parameter also
 * writes, on failure, an error document to *out:
 *     {"error": {"code": -20, "name": "EE_EVALIDATION", "message": "...",
 *                "httpStatus": 0, "detail": {...}}}
 * so the detail travels with the call's own output to whichever thread reads
 * it. The caller frees *out with ee_free() whatever the status (it may be
 * NULL, e.g. on EE_ENOMEM).
 */
#ifndef EXECENGINE_ERRORS_H
#define EXECENGINE_ERRORS_H

#include "common.h"

/*
 * XX(name, number, message). The single list from which the enum,
 * ee_strerror() and ee_status_name() are generated.
 */
#define EE_STATUS_MAP(XX)                                                      \
    XX(EE_OK, 0, "success")                                                    \
    XX(EE_ERROR, -1, "unspecified error")                                      \
    XX(EE_ENOMEM, -2, "out of memory")                                         \
    XX(EE_EINVAL, -3, "invalid argument or value")                             \
    XX(EE_ENOTFOUND, -4, "not found")                                          \
    XX(EE_EEXISTS, -5, "already exists")                                       \
    XX(EE_ECONFLICT, -6, "stale revision: the record changed since it was read") \
    XX(EE_ENOTSUPPORTED, -7, "operation not supported by this backend")       \
    XX(EE_EVERSION, -8, "version not supported")                               \
    XX(EE_EIO, -9, "storage or I/O failure")                                   \
    XX(EE_ECORRUPT, -10, "corrupted or malformed stored data")                 \
    XX(EE_EBUSY, -11, "resource busy")                                         \
    XX(EE_ETIMEOUT, -12, "timed out")                                          \
    XX(EE_ENETWORK, -13, "network failure: server unreachable")               \
    XX(EE_EUPSTREAM, -14, "upstream service answered with an error")           \
    XX(EE_EAUTH, -15, "authentication failed")                                 \
    XX(EE_EPERM, -16, "not permitted")                                         \
    XX(EE_EQUOTA, -17, "quota exceeded")                                       \
    XX(EE_ERATELIMIT, -18, "rate limit exceeded")                              \
    XX(EE_ECONCURRENCY, -19, "concurrency limit reached")                      \
    XX(EE_EVALIDATION, -20, "input failed validation")                         \
    XX(EE_ECREDENTIALS, -21, "required credentials are missing")               \
    XX(EE_ECRYPTO, -22, "encryption or decryption failed")                     \
    XX(EE_ETOOBIG, -23, "input exceeds a size limit")                          \
    XX(EE_EPARSE, -24, "malformed input: could not be parsed")                 \
    XX(EE_ESTATE, -25, "operation not allowed in the current state")           \
    XX(EE_ECANCELLED, -26, "cancelled")                                        \
    XX(EE_EPRICE, -27, "no known price for a model")                           \
    XX(EE_ESPEND, -28, "spending cap reached")                                 \
    XX(EE_EUNKNOWN, -29, "outcome unknown: the check could not be completed")

EE_BEGIN_DECLS

typedef enum ee_status {
#define EE__STATUS_ENUM(name, num, msg) name = num,
    EE_STATUS_MAP(EE__STATUS_ENUM)
#undef EE__STATUS_ENUM
} ee_status;

/**
 * A static English description of a status ("quota exceeded").
 * Never NULL: an unknown code gives "unknown status". Thread-safe.
 */
EE_API const char *ee_strerror(int status);

/**
 * The status's enumerator name as a static string ("EE_EQUOTA"), or
 * "EE_UNKNOWN_STATUS" for a code this library does not know. Thread-safe.
 */
EE_API const char *ee_status_name(int status);

/**
 * The status of the last failing call on this thread, EE_OK if none (or
 * after ee_error_clear()). Thread-safe: each thread has its own.
 */
EE_API int ee_error_last_status(void);

/**
 * The message of the last failing call on this thread, or "" if none.
 * Borrowed: valid on this thread until its next failing call or
 * ee_error_clear(). Never NULL. Never contains a secret.
 */
EE_API const char *ee_error_last_message(void);

/**
 * The HTTP status an upstream service answered the last failing call on
 * this thread with (401, 500 ...), or 0 if none was involved.
 */
EE_API int ee_error_last_http_status(void);

/**
 * The last error on this thread as the JSON error document described at
 * the top of this header. *out is owned by the caller (ee_free()).
 *
 * Returns EE_OK (with {"error": null} if there was none), EE_EINVAL if out
 * is NULL, EE_ENOMEM.
 */
EE_API ee_status ee_error_last_json(char **out);

/** Forget this thread's last error. Thread-safe. */
EE_API void ee_error_clear(void);

/**
 * Free anything the library returned through an out-parameter as plain
 * memory (strings, JSON documents). Accepts NULL. Thread-safe.
 */
EE_API void ee_free(void *ptr);

EE_END_DECLS

#endif
