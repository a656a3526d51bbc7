/*
 * execengine/execengine.h - the umbrella header: include this one.
 *
 *     #include <execengine/execengine.h>
 *
 * Link with `pkg-config --cflags --libs execengine`, or in CMake with
 * find_package(execengine) and the target execengine::execengine.
 */
#ifndef EXECENGINE_H
#define EXECENGINE_H

#include "common.h"
#include "version.h"
#include "errors.h"
#include "log.h"
#include "config.h"
#include "engine.h"
#include "principal.h"
#include "storage.h"
#include "counters.h"
#include "transport.h"
#include "n8n.h"
#include "cost.h"
#include "schema.h"
#include "credentials.h"
#include "catalog.h"
#include "quota.h"
#include "exec.h"
#include "gateway.h"
#include "notify.h"
#include "audit.h"
#include "billing.h"

#endif
