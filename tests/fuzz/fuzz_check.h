/*
 * CHECK(cond): a fuzz target's invariant; when it breaks, say where and
 * what the library last reported, and abort so libFuzzer keeps the input.
 */
#ifndef EE_FUZZ_CHECK_H
#define EE_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#include "execengine/errors.h"

#define CHECK(cond)                                                                     \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "invariant broken at line %d: %s (%s)\n", __LINE__, #cond,  \
                    ee_error_last_message());                                           \
            abort();                                                                    \
        }                                                                               \
    } while (0)

#endif
