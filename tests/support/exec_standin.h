/*
 * TEMPORARY stand-in, for the exec tests only, until the branches that
 * implements lib/gateway/gateway.h (i13-gateway) is merged (its storage
 * migration conflicts with i13-queue's: the lead merges them): the smallest
 * versions of its declarations, so the pipeline's tests link - no grant is
 * stored, nothing is metered. Include it in exactly one file per test executable; it is
 * removed when those branches are merged into i13-exec.
 */
#ifndef EE_TEST_EXEC_STANDIN_H
#define EE_TEST_EXEC_STANDIN_H

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/hmac.h>
#include <openssl/crypto.h>

#include "gateway/gateway.h"

/* ---- gateway ----------------------------------------------------------------------------- */

ee_status ee__gateway_grant(ee_engine *eng_, const ee__gateway_grant_spec *spec,
                            char token_out[EE__GATEWAY_TOKEN_SIZE])
{
    (void)eng_;
    snprintf(token_out, EE__GATEWAY_TOKEN_SIZE, "eeg_standin%.24s", spec->execution_id);
    return EE_OK;
}

ee_status ee__gateway_revoke(ee_engine *eng_, const char *workspace, const char *execution_id)
{
    (void)eng_, (void)workspace, (void)execution_id;
    return EE_OK;
}

ee_status ee__gateway_usage_of(ee_engine *eng_, const char *workspace,
                               const char *execution_id, ee__gateway_usage *out)
{
    (void)eng_, (void)workspace, (void)execution_id;
    memset(out, 0, sizeof *out);
    return EE_OK;
}

ee_status ee__gateway_calls(ee_engine *eng_, const char *workspace, const char *execution_id,
                            ee__gateway_call_fn fn, void *payload)
{
    (void)eng_, (void)workspace, (void)execution_id, (void)fn, (void)payload;
    return EE_OK;
}

const char *ee__gateway_url(ee_engine *eng_)
{
    (void)eng_;
    return "http://127.0.0.1:1/gw";
}

#endif
