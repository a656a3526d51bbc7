/*
 * lib/cost/cost_internal.h - the cost module's private interface: exact
 * amounts, the price table and rules as loaded, schedules.
 */
#ifndef EE_COST_INTERNAL_H
#define EE_COST_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/core.h"
#include "cost/cost.h"
#include "execengine/cost.h"

/* 128-bit unsigned arithmetic for exact products (gcc and clang). */
__extension__ typedef unsigned __int128 ee__u128;

#define EE__ATTO_PER_NANO INT64_C(1000000000)
#define EE__BP_ONE INT64_C(10000)
/* Largest token count per entry or budget (2^53 - 1, exact in JSON). */
#define EE__TOKENS_MAX INT64_C(9007199254740991)
/* Exact sums are kept below 2^124 so a few more products cannot wrap. */
#define EE__U128_SAFE (((ee__u128)1) << 124)
/* Deepest JSON nesting accepted in any cost document. */
#define EE__COST_MAX_DEPTH 64

/* ---- amounts (amount.c) --------------------------------------------------- */

/* x / d rounded half to even (d > 0). */
ee__u128 ee__cost_div_round(ee__u128 x, ee__u128 d);

/* An exact atto-USD amount rounded half-even to nano-USD; false if the
 * result does not fit int64. */
bool ee__cost_atto_to_nano(ee__u128 atto, int64_t *nano);

/* Parse a decimal USD text ("0.00000015", "1.5e-7", "-1") exactly into
 * atto-USD. *negative tells a leading '-' (the value is then the
 * magnitude). EE_EINVAL (no message) if malformed, finer than 1e-18 or
 * past int64. */
ee_status ee__cost_parse_atto(const char *text, int64_t *atto, bool *negative);

/* A JSON value holding an amount of USD (a string, an integer, or a real
 * read back as the decimal it was written as) into atto-USD. EE_EINVAL (no
 * message) if it is none of these or malformed. */
ee_status ee__cost_json_atto(const json_t *v, int64_t *atto, bool *negative);

/* {"nanoUsd": n, "usd": "..."} (NULL on ENOMEM). */
json_t *ee__cost_money(int64_t nano);

/* Atto-USD as a decimal string of USD with up to 18 fractional digits,
 * trailing zeros trimmed ("0.00000015"). buf needs 48 bytes. */
void ee__cost_atto_format(int64_t atto, char buf[48]);


/* The charge document of ee_cost_charge() for a computed charge. */
json_t *ee__cost_charge_doc(const ee__cost_charge_input *in, const ee__cost_charge *c);

/* Split `total` nano-USD over parts whose exact costs are `atto` (largest
 * remainder, weighted by the exact atto costs when their sum fits int64,
 * else by each part's cost in nano-USD). */
ee_status ee__cost_split(int64_t *parts, int64_t total, const ee__u128 *atto, size_t n);

/* ---- prices and rules (table.c, prices.c, rules.c) ------------------------ */

typedef struct ee__cost_price {
    char *id;
    int64_t prompt_atto;     /* per prompt token */
    int64_t completion_atto; /* per completion token */
    int64_t request_atto;    /* per request */
} ee__cost_price;

typedef struct ee__cost_prices {
    atomic_long refs;
    size_t n;
    ee__cost_price *v; /* sorted by id */
} ee__cost_prices;

typedef enum { EE__MODE_NONE = 0, EE__MODE_PLATFORM, EE__MODE_PERSONAL } ee__cost_mode;

typedef struct ee__cost_primitive {
    char *name;
    int64_t predictions; /* predictions per node */
    bool external;       /* counts as an external API call */
    bool llm;            /* is an LLM call (priced by tokens) */
    bool step;           /* counts as a step of the workflow */
} ee__cost_primitive;

typedef struct ee__cost_service {
    char *name;
    int primitive; /* index */
    ee__cost_mode mode;
    char *model_prefix;  /* for model names without a vendor, e.g. "openai/" */
    char *default_model; /* may be NULL: the rules' default */
} ee__cost_service;

typedef struct ee__cost_key {
    char *key;
    int value; /* service index, or ee__cost_mode for credentials */
} ee__cost_key;

typedef struct ee__cost_level_rule {
    int level; /* 0 low, 1 medium, 2 high */
    int64_t min_steps, min_predictions, min_external, min_personal, min_platform; /* -1: none */
} ee__cost_level_rule;

typedef struct ee__cost_rules {
    atomic_long refs;
    ee__cost_primitive *prims;
    size_t n_prims;
    ee__cost_service *services;
    size_t n_services;
    ee__cost_key *node_types; /* sorted */
    size_t n_node_types;
    ee__cost_key *aliases; /* sorted, lower-case */
    size_t n_aliases;
    ee__cost_key *creds; /* sorted */
    size_t n_creds;
    ee__cost_key *model_aliases; /* sorted; value indexes model_targets */
    size_t n_model_aliases;
    char **model_targets;
    ee__cost_mode unknown_credential;
    int unknown_with_creds;    /* primitive index */
    int unknown_without_creds; /* primitive index */
    char *default_model;
    int64_t prompt_tokens, completion_tokens;
    ee__cost_level_rule *levels;
    size_t n_levels;
    int default_level;
} ee__cost_rules;

/* A consistent view of a table: both references are held. */
typedef struct ee__cost_snapshot {
    ee__cost_prices *prices; /* never NULL (maybe empty) */
    ee__cost_rules *rules;   /* NULL if none loaded */
} ee__cost_snapshot;

void ee__cost_snapshot_take(const ee_cost_table *t, ee__cost_snapshot *s);
void ee__cost_snapshot_drop(ee__cost_snapshot *s);

ee_status ee__cost_prices_parse(const char *json, ee__cost_prices **out);
void ee__cost_prices_unref(ee__cost_prices *p);
const ee__cost_price *ee__cost_price_find(const ee__cost_prices *p, const char *id);

ee_status ee__cost_rules_parse(const char *json, ee__cost_rules **out);
void ee__cost_rules_unref(ee__cost_rules *r);
/* Lookups in a sorted key table: the value, or -1. */
int ee__cost_key_find(const ee__cost_key *keys, size_t n, const char *key);

extern const char *const ee__cost_level_names[3];

/* Read a whole file of at most `max` bytes (NUL-terminated, free()).
 * EE_EIO / EE_ETOOBIG / EE_ENOMEM with a message. */
ee_status ee__cost_read_file(const char *path, size_t max, char **out);

/* Parse JSON text of at most `max` bytes, nested at most
 * EE__COST_MAX_DEPTH deep. EE_ETOOBIG / EE_EPARSE with a message naming
 * `what`. */
ee_status ee__cost_json_parse(const char *text, size_t max, const char *what, json_t **out);

/* Whether `schedule` is a named interval (hourly, daily, weekly, monthly),
 * whose count does not depend on the start (schedule.c). */
bool ee__cost_schedule_is_interval(const char *schedule);

/* ---- unknown-price policy (policy.c) --------------------------------------- */

typedef struct ee__cost_policy {
    bool allow_unknown;
    ee__cost_price fallback; /* id unused */
} ee__cost_policy;

/* Read "allowUnknownPrice" and "fallbackPrice" from a request object
 * (may be NULL). EE_EINVAL with a message. */
ee_status ee__cost_policy_read(const json_t *req, ee__cost_policy *out);

/* The price to use for `model`: the table's, the fallback (*unknown set)
 * or EE_EPRICE naming the model (and the node, if any). */
ee_status ee__cost_price_pick(const ee__cost_prices *prices, const ee__cost_policy *pol,
                              const char *model, const char *node,
                              const ee__cost_price **price, bool *unknown);

/* Exact atto cost of one call; false if past the safe range. */
bool ee__cost_call_atto(const ee__cost_price *p, int64_t prompt_tokens, int64_t completion_tokens,
                        ee__u128 *atto);

#endif
