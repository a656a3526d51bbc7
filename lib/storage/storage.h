/*
 * lib/storage/storage.h - the storage module's semi-private interface: what
 * other modules of the library (the engine) use beyond the public
 * execengine/storage.h. Never installed.
 */
#ifndef EE_STORAGE_STORAGE_H
#define EE_STORAGE_STORAGE_H

#include "core/core.h"
#include "execengine/storage.h"

/* ee_storage_open_uri() with the engine's logger (it must outlive the
 * handle), which receives the diagnostics of the libraries it uses (libpq
 * notices). `lg` may be NULL. */
ee_status ee__storage_open_uri_logged(ee_storage **out, const char *uri, const ee__logger *lg);

#endif
