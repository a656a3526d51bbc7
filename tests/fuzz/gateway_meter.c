/*
 * libFuzzer: arbitrary bytes as what the credential gateway reads from
 * outside without a JSON parser (lib/gateway/meter.c): an upstream
 * provider's answer, metered for tokens, cost and model (a JSON document,
 * or an SSE stream), a workflow's request body asked whether it wants a
 * stream, and a cost's number text. The first byte picks the check; the
 * rest is its input:
 *   0, 1  the answer as a document (0) or an SSE stream (1). Invariants:
 *         counts and cost are never negative; a usage never found leaves
 *         everything zero; the model is NUL-terminated, valid UTF-8 and
 *         holds no control character (it is stored, listed in cost
 *         breakdowns and counted by name).
 *   2     the request body: ee__gateway_wants_stream() terminates, and
 *         says true only for a body holding "stream" and "true".
 *   3     the number text: a value read is non-negative; digits alone
 *         ("123") read as that many nano-units times 10^9.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "fuzz_check.h"
#include "gateway/gateway_internal.h"

static void check_usage(const g_usage *u)
{
    CHECK(u->prompt_tokens >= 0 && u->completion_tokens >= 0 && u->total_tokens >= 0);
    CHECK(!u->has_cost || u->cost_nano >= 0);
    if (!u->found)
        CHECK(u->prompt_tokens == 0 && u->completion_tokens == 0 && u->total_tokens == 0 &&
              !u->has_cost);
    size_t n = strnlen(u->model, sizeof u->model);
    CHECK(n < sizeof u->model);
    CHECK(ee__utf8_valid(u->model, n));
    for (size_t i = 0; i < n; i++)
        CHECK((unsigned char)u->model[i] >= 0x20 && u->model[i] != 0x7F);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 1 << 20)
        return 0;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    switch (data[0] % 4) {
    case 0:
    case 1: {
        g_usage u;
        ee__gateway_usage_parse(text, len, data[0] % 4 == 1, &u);
        check_usage(&u);
        break;
    }
    case 2:
        if (ee__gateway_wants_stream(text, len)) {
            CHECK(memmem(text, len, "stream", 6) != NULL);
            CHECK(memmem(text, len, "true", 4) != NULL);
        }
        break;
    default: {
        int64_t v = -1;
        if (ee__gateway_nano_parse(text, len, &v))
            CHECK(v >= 0);
        bool digits = len > 0 && len <= 9;
        for (size_t i = 0; digits && i < len; i++)
            digits = text[i] >= '0' && text[i] <= '9';
        if (digits) {
            char buf[16];
            memcpy(buf, text, len);
            buf[len] = '\0';
            CHECK(ee__gateway_nano_parse(text, len, &v));
            CHECK(v == strtoll(buf, NULL, 10) * 1000000000);
        }
        break;
    }
    }
    ee_error_clear();
    return 0;
}
