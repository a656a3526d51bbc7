/*
 * lib/gateway/gateway_internal.h - what the gateway module's files share
 * (never included outside lib/gateway/).
 *
 *   module.c     options, per-engine state, gateway.json, ee__gateway_url()
 *   grant.c      grants (stored hashed), the in-process cache, revoke,
 *                usage and the metered calls (gatewayGrants, gatewayCalls)
 *   meter.c      reading tokens and cost out of an upstream answer
 *   handle.c     ee_gateway_handle(): check, forward, meter
 *   listen.c     ee_gateway_listen(): the libmicrohttpd listener
 */
#ifndef EE_GATEWAY_GATEWAY_INTERNAL_H
#define EE_GATEWAY_GATEWAY_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/core.h"
#include "execengine/gateway.h"
#include "execengine/storage.h"
#include "gateway/gateway.h"

#define G_GRANTS "gatewayGrants"
#define G_CALLS "gatewayCalls"
/* The callId of an execution's running total in gatewayCalls. */
#define G_TOTAL_ID "total"

/* Bounds of gateway.json's strings. */
#define G_PROVIDER_MAX 32
#define G_MAX_PROVIDERS 64
#define G_MAX_CREDS 8

/* Upper bounds (ms) of the upstream latency buckets; the last is +Inf. */
#define G_LAT_BUCKETS 10
/* HTTP status classes counted: 1xx-2xx, 3xx, 4xx, 5xx, and no answer. */
enum { G_CLASS_2XX, G_CLASS_3XX, G_CLASS_4XX, G_CLASS_5XX, G_CLASS_NONE, G_CLASS_COUNT };

/* One provider's counts (ee_gateway_stats()), per process since the engine
 * opened: relaxed atomics, no lock. */
typedef struct g_pstats {
    _Atomic uint64_t calls;              /* forwarded upstream, answered or not */
    _Atomic uint64_t by_class[G_CLASS_COUNT];
    _Atomic uint64_t refused_budget;     /* answered 402 by the gateway itself */
    _Atomic uint64_t cost_nano, platform_cost_nano;
    _Atomic uint64_t prompt_tokens, completion_tokens, total_tokens;
    _Atomic uint64_t lat_sum_us;
    _Atomic uint64_t lat_bucket[G_LAT_BUCKETS + 1]; /* not cumulative */
} g_pstats;

typedef struct {
    char name[G_PROVIDER_MAX];        /* "openrouter" */
    char *base_url;                   /* without a trailing '/' */
    char *creds[G_MAX_CREDS];         /* credential types, in preference order */
    size_t n_creds;
    char *inject_header;              /* header name, or NULL with inject_query */
    char *inject_format;              /* "Bearer %s" */
    char *inject_query;               /* query parameter name, or NULL */
    bool meter_openrouter;            /* tokens and cost from `usage` */
    int64_t per_call_nano;
    g_pstats *stats;                  /* into g_state.pstats */
} g_provider;

/* One grant as a gateway serves it: the stored (immutable) part and, once
 * a call needed it, the run's credentials re-routed in this process. */
typedef struct g_grant {
    uint8_t hash[32];                 /* SHA-256 of the token */
    char execution_id[EE_STORAGE_ID_HEX_LEN + 1];
    char workspace[EE_STORAGE_WORKSPACE_MAX + 1];
    char user[EE_STORAGE_WORKSPACE_MAX + 1];
    char org[EE_STORAGE_WORKSPACE_MAX + 1];
    int64_t budget_nano;
    int64_t expires_at_ms;
    /* the routed credential types (node name = type), and the choice */
    char **cred_types;
    size_t n_cred_types;
    bool use_customer_key;
    char api_key_id[EE__CRED_ID_MAX];
    /* filled lazily under g_state.lock; NULL until then */
    ee__cred_route *route;
    int refs;                         /* under g_state.lock */
} g_grant;

#define G_CACHE_SLOTS 1024
/* Calls waiting for the metering writer; past it the listener's thread
 * writes its call itself (the writer has fallen behind). */
#define G_WRITER_QUEUE_MAX 256

struct g_listener;

typedef struct g_state {
    ee_engine *engine;
    g_provider *providers;
    size_t n_providers;
    g_pstats *pstats;                 /* one per provider (stats.c) */
    int64_t opened_at;                /* engine time at open: the counts run from it */
    int64_t body_max;
    int64_t timeout_ms;
    char *url;                        /* EXEC_GATEWAY_URL or the listener's; NULL: none */
    /* EXEC_GATEWAY_URL is set: workflows reach the gateway through the
     * host or a proxy, perhaps another process's listener */
    bool url_configured;
    pthread_mutex_t lock;             /* the cache, refs, routes, url, listener */
    g_grant *cache[G_CACHE_SLOTS];    /* by the hash's first bytes; one per slot */
    struct g_listener *listener;
    char *callback_url;               /* the listener's callback route; NULL: not listening */
    /* the callback route's handler (ee__gateway_set_callback()); NULL: none */
    ee__gateway_callback_fn callback_fn;
    int64_t callback_body_max;
    /* calls answered whose metering write is still to come (the listener's:
     * ee__gateway_handle_deferred()), under `lock`; `settled` is signalled
     * as each is written */
    struct g_pending *pending;
    pthread_cond_t settled;
    /* The metering writer (handle.c): the pending writes whose answers have
     * gone out, in order, written on its thread - started at the first, so
     * the listener's thread is free for the connection's next call - under
     * `lock`; `ready_cond` wakes it; `writer_stop` (gateway close) makes it
     * write what is left and end. */
    struct g_pending *ready, **ready_tail;
    size_t n_ready;                   /* at most G_WRITER_QUEUE_MAX */
    pthread_cond_t ready_cond;
    pthread_t writer;
    bool writer_started, writer_stop;
} g_state;

g_state *ee__gateway_state(ee_engine *engine);

/* The provider named `name` (exact), or NULL. */
const g_provider *ee__gateway_provider(const g_state *st, const char *name, size_t len);

/* ---- grants (grant.c) -------------------------------------------------------- */

/* The grant whose token is `token` (len bytes), with a reference
 * (ee__gateway_grant_release()). EE_OK; EE_EAUTH (malformed, unknown);
 * storage statuses. Expiry and revocation are checked by the caller. */
ee_status ee__gateway_grant_find(g_state *st, const char *token, size_t len, g_grant **out);
void ee__gateway_grant_release(g_state *st, g_grant *g);

/* The grant's route in this process (routed on first use). Lives as long as
 * the grant's reference. */
ee_status ee__gateway_grant_route(g_state *st, g_grant *g, const ee__cred_route **out);

/* The execution's running total: cost so far and whether it was revoked.
 * The cost includes this process's calls answered but not yet written. */
ee_status ee__gateway_total(g_state *st, const g_grant *g, int64_t *cost_nano, bool *revoked);

/* Store one call and add it to the execution's total (refused: a 402). */
ee_status ee__gateway_record(g_state *st, const g_grant *g, const ee__gateway_call *call,
                             bool refused);

void ee__gateway_cache_clear(g_state *st);

/* ---- metering after the answer (handle.c) ------------------------------------ */

/* A forwarded call already answered, its metering write still to do. */
typedef struct g_pending g_pending;

/* ee_gateway_handle(), except that a forwarded call answered whole leaves
 * its metering write in *pending (NULL when there is none: a refusal, a
 * stream - metered as it ends - or an error) for the caller to do with
 * ee__gateway_pending_commit() once the answer is on its way. Until then
 * ee__gateway_settle() waits for it. */
ee_status ee__gateway_handle_deferred(ee_engine *engine, const ee_gateway_request *request,
                                      const ee_gateway_sink *sink, g_pending **pending);

/* The token's checks of ee_gateway_handle() alone (missing, malformed,
 * unknown, revoked, past its deadline; the storage failing), for a request
 * whose body has not been read: true when the sink has been given the very
 * refusal ee_gateway_handle() would give. An early refusal only - a request
 * that passes is handled in full afterwards, every check again. */
bool ee__gateway_check_head(ee_engine *engine, const ee_gateway_request *request,
                            const ee_gateway_sink *sink);

/* Hand p, whose answer has gone out, to the metering writer, which stores
 * the call and adds it to the run's total (as ee__gateway_record()), then
 * frees p; stored here and now when the writer cannot start or has
 * stopped. NULL does nothing. */
void ee__gateway_pending_commit(g_state *st, g_pending *p);

/* Stop the metering writer after it wrote every call handed to it (gateway
 * close, after the listener's threads have ended). */
void ee__gateway_writer_stop(g_state *st);

/* What the execution's calls still awaiting their write cost, nano-USD. */
int64_t ee__gateway_pending_cost(g_state *st, const char *execution_id);

/* Wait, at most timeout_ms, until no call of the execution awaits its
 * metering write in this process. Whether none does. */
bool ee__gateway_settle(g_state *st, const char *execution_id, int64_t timeout_ms);

/* ---- metering (meter.c) ---------------------------------------------------------- */

typedef struct {
    bool found;                       /* a usage object was read */
    int64_t prompt_tokens, completion_tokens, total_tokens;
    int64_t cost_nano;
    bool has_cost;
    char model[128];
} g_usage;

/* Usage from an OpenRouter answer's body: a JSON document, or an SSE
 * stream whose last "data:" message carrying "usage" counts. */
void ee__gateway_usage_parse(const char *body, size_t len, bool sse, g_usage *out);

/* Whether a request body is a JSON object whose member "stream" is true
 * (an OpenAI-style request for an SSE answer). */
bool ee__gateway_wants_stream(const char *body, size_t len);

/* A JSON number's text ("0.00012", "1.5e-5") as nano-units, rounded half up.
 * Returns false when it is not a non-negative number or overflows. */
bool ee__gateway_nano_parse(const char *text, size_t len, int64_t *out);

/* ---- counts (stats.c) -------------------------------------------------------------- */

/* A call forwarded to `p`: its answer's HTTP status (0: none came), its
 * metering (NULL: none) and the time upstream took (us). */
void ee__gateway_count_call(const g_provider *p, int http_status, const ee__gateway_call *call,
                            int64_t upstream_us);
/* A call the gateway refused for the run's spent budget. */
void ee__gateway_count_refused(const g_provider *p);
/* Monotonic microseconds (latency only). */
int64_t ee__gateway_mono_us(void);

/* ---- listener (listen.c) ---------------------------------------------------------- */

void ee__gateway_listener_stop(g_state *st);

#endif
