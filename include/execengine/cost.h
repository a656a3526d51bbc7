/*
 * execengine/cost.h - cost estimation before a run, the model price table,
 * actual cost from reported usage, and the charge (markup, free allowance).
 *
 * Money. Every amount is an int64 of nano-USD (1e-9 USD). JSON shows money
 * as {"nanoUsd": 123, "usd": "0.000000123"}. Prices per token are kept
 * exactly as atto-USD (1e-18 USD) per token, so OpenRouter's "0.00000015"
 * is 150000000000 atto-USD, with nothing lost. No floating point touches an
 * amount.
 *
 * The one rounding rule. Every amount is computed exactly (in atto-USD, or
 * as an exact fraction) and rounded ONCE, half to even, to the nano-USD:
 *   cost      = round(sum over calls of tokens x price per token [+ request price])
 *   markedUp  = round(cost x (10000 + markupBp) / 10000)     from the rounded cost
 *   perMonth  = round(exact per-run cost x runs per month)
 * The free allowance is applied to the marked-up amount. A total split into
 * parts (per node, per model) uses the largest-remainder method, so the parts
 * always add up to the total exactly and each is within one nano-USD of its
 * exact share (ee_cost_allocate()). docs/cost.md has the formulas.
 *
 * Unknown prices. A model without a known price never silently costs zero:
 * an estimate or an actual cost that needs it fails with EE_EPRICE, whose
 * message and detail ({"model": "..."}) name the model. A request may allow
 * it explicitly with a fallback price:
 *     "allowUnknownPrice": true,
 *     "fallbackPrice": {"prompt": "0.00001", "completion": "0.00003"}
 * and is then costed at the fallback and flagged "priceUnknown": true.
 *
 * Threads. An ee_cost_table may be shared by any number of threads: every
 * call reads a consistent snapshot of its prices and rules, and a load
 * builds a complete new price table or rule set before swapping it in (a
 * failed load leaves the old one in use, untouched). The functions without a
 * table are pure and thread-safe.
 *
 * Errors. Calls with a `char **out` document write, on failure, the error
 * document of errors.h to *out (free it with ee_free() whatever the status).
 */
#ifndef EXECENGINE_COST_H
#define EXECENGINE_COST_H

#include "common.h"
#include "errors.h"

EE_BEGIN_DECLS

/** Largest price document accepted (an OpenRouter GET /models answer). */
#define EE_COST_PRICES_MAX_BYTES (16u * 1024u * 1024u)
/** Most models in one price document. */
#define EE_COST_PRICES_MAX_MODELS 20000
/** Largest rules document accepted. */
#define EE_COST_RULES_MAX_BYTES (1024u * 1024u)
/** Largest workflow or usage document accepted. */
#define EE_COST_DOC_MAX_BYTES (8u * 1024u * 1024u)
/** Most nodes in a workflow, and most entries in a usage document. */
#define EE_COST_MAX_NODES 10000
/** Longest model id, node type or service name, in bytes. */
#define EE_COST_NAME_MAX 256
/** Largest markup accepted, in basis points (1000000 = 10000 %). */
#define EE_COST_MARKUP_BP_MAX INT64_C(1000000)

/** A price table and estimation rules. Opaque; see "Threads" above. */
typedef struct ee_cost_table ee_cost_table;

/**
 * A new, empty table: no prices, no rules (load both before estimating).
 * *out is owned by the caller (ee_cost_table_free()).
 * Returns EE_OK, EE_EINVAL (out is NULL), EE_ENOMEM.
 */
EE_API ee_status ee_cost_table_new(ee_cost_table **out);

/** Free a table. Accepts NULL. No other call may be using it. */
EE_API void ee_cost_table_free(ee_cost_table *table);

/**
 * Replace the table's prices with those of `json`, an OpenRouter
 * GET /models answer: {"data": [{"id": "openai/gpt-4o-mini",
 * "pricing": {"prompt": "0.00000015", "completion": "0.0000006",
 * "request"?: "0"}}, ...]} (other members are ignored). Prices are decimal
 * strings of USD per token (per request for "request"), parsed exactly to
 * atto-USD; an exponent ("1.5e-7") is accepted, more precision than 1e-18
 * is not. A negative price (OpenRouter's "-1" for variable-priced routers)
 * leaves that model unpriced. All or nothing: on any failure the old prices
 * stay in use. Fetching the document over HTTP is the caller's business
 * (the transport); this only parses. Thread-safe.
 * Returns EE_OK; EE_EINVAL (NULL argument, or a number that cannot be
 * represented as written: negative zero, an underflow); EE_ETOOBIG (more than
 * EE_COST_PRICES_MAX_BYTES, refused on its length, unread; nested past 64
 * levels; or EE_COST_PRICES_MAX_MODELS); EE_EPARSE (not
 * JSON, not that shape, a malformed price or id, a duplicate id);
 * EE_ENOMEM.
 */
EE_API ee_status ee_cost_table_load_prices_json(ee_cost_table *table, const char *json);

/** As ee_cost_table_load_prices_json(), reading the file at `path`
 *  (EE_EIO if it cannot be read). */
EE_API ee_status ee_cost_table_load_prices_file(ee_cost_table *table, const char *path);

/**
 * Replace the table's estimation rules (which node types and services are
 * LLM calls, external APIs, platform-managed or personal; default token
 * budgets; complexity levels) with `json`, in the format of
 * data/cost_rules.json described in docs/cost.md. All or nothing, like the
 * prices. Thread-safe.
 * Returns EE_OK; EE_EINVAL (NULL argument, or a number that cannot be
 * represented as written: negative zero, an underflow); EE_ETOOBIG (more than
 * EE_COST_RULES_MAX_BYTES, refused on its length, unread; nested past 64
 * levels); EE_EPARSE (not JSON, or not a valid rules
 * document: the message names the member); EE_ENOMEM.
 */
EE_API ee_status ee_cost_table_load_rules_json(ee_cost_table *table, const char *json);

/** As ee_cost_table_load_rules_json(), reading the file at `path`
 *  (EE_EIO if it cannot be read). */
EE_API ee_status ee_cost_table_load_rules_file(ee_cost_table *table, const char *path);

/**
 * The price of `model`:
 *   {"model": "...", "prompt": "0.00000015", "completion": "0.0000006",
 *    "request": "0", "promptAttoUsd": 150000000000,
 *    "completionAttoUsd": 600000000000, "requestAttoUsd": 0}
 * Thread-safe. *out is owned by the caller (ee_free()).
 * Returns EE_OK; EE_EINVAL (NULL argument); EE_EPRICE (no known price for
 * that model); EE_ENOMEM.
 */
EE_API ee_status ee_cost_table_price_json(const ee_cost_table *table, const char *model,
                                          char **out);

/**
 * Estimate a workflow before it runs: predictions and dollars
 * (estimatedCost). `workflow_json` is one of
 *   - a workflow as n8n exports it: {"nodes": [{"name", "type",
 *     "parameters"?, "credentials"?, "disabled"?}, ...]} (also accepted
 *     under {"workflow": {...}});
 *   - a list of service names: ["serper", "firecrawl", "openai", "resend"]
 *     or {"nodes": ["serper", ...]} or nodes {"service": "serper"}.
 * `options_json` may be NULL or an object:
 *   {"schedule": "daily" | "weekly" | "hourly" | "monthly" |
 *                "<5-field cron>" | "@daily" ...,
 *    "startMs": <epoch ms: the 30-day month counted starts here; required
 *                for a cron schedule>,
 *    "runsPerMonth": <n, instead of a schedule>,
 *    "allowUnknownPrice": false, "fallbackPrice": {"prompt", "completion"}}
 * The answer:
 *   {"predictions_per_run": 1, "external_api_calls": 3,
 *    "platform_managed_calls": 4, "personal_calls": 0, "complexity": "low",
 *    "steps": 4, "schedule": "daily", "runs_per_month": 30,
 *    "estimated_monthly_cost": 30   (predictions per month, not dollars),
 *    "estimatedCost": {"perRun": money, "perMonth": money | null,
 *                      "priceUnknown": false},
 *    "llmCalls": [{"node", "model", "modelAssumed", "promptTokens",
 *                  "completionTokens", "cost": money, "priceUnknown"}],
 *    "unknownNodeTypes": ["..."]}
 * (without a schedule, the monthly figures are null). The workflow is at
 * most EE_COST_DOC_MAX_BYTES, the options EE_COST_RULES_MAX_BYTES (refused
 * on their length, unread, past that), both at most 64 levels deep; the
 * options take no member but those above (the workflow is n8n's document:
 * its other members are ignored). Thread-safe.
 * *out is owned by the caller (ee_free()); the error document on failure.
 * Returns EE_OK; EE_EINVAL (NULL argument, a bad or unknown option or
 * schedule: the message says which); EE_EPARSE (workflow not JSON or not a
 * workflow); EE_ETOOBIG (a document, its depth or node count over the limits);
 * EE_ESTATE (no rules loaded); EE_EPRICE (an LLM node's model has no known
 * price and the options do not allow a fallback); EE_ENOMEM.
 */
EE_API ee_status ee_cost_estimate(const ee_cost_table *table, const char *workflow_json,
                                  const char *options_json, char **out);

/**
 * Runs of `schedule` in the 30 days [start_ms, start_ms + 30 x 86400000):
 * "hourly" 720, "daily" 30, "weekly" 4, "monthly" 1 (whole intervals in 30
 * days, whatever the start); a 5-field cron expression (minute hour
 * day-of-month month day-of-week, with *, lists, ranges, steps, and names
 * jan..dec, sun..sat; day-of-week 0 and 7 are Sunday; when both day fields
 * are restricted a day matches either, as in Vixie cron) or a macro
 * (@hourly, @daily/@midnight, @weekly, @monthly, @yearly/@annually) is
 * counted exactly, minute by minute, in UTC. Thread-safe.
 * Returns EE_OK; EE_EINVAL (NULL argument, negative start, malformed
 * schedule).
 */
EE_API ee_status ee_cost_schedule_runs(const char *schedule, int64_t start_ms, int64_t *runs_out);

/**
 * The actual cost of a finished run from its reported usage:
 *   {"usage": [{"model": "openai/gpt-4o-mini", "node"?: "Summarise",
 *               "promptTokens": 1200, "completionTokens": 300,
 *               "cost"?: "0.00042" | <number>, "costNano"?: 420000}, ...],
 *    "allowUnknownPrice"?: false, "fallbackPrice"?: {...},
 *    "charge"?: {"platformKey": true, "markupBp": 2000,
 *                "allowanceNano": 10000000000, "allowanceUsedNano": 0}}
 * (OpenRouter's snake_case prompt_tokens / completion_tokens are accepted
 * too). A provider-reported cost wins over tokens x price for its entry;
 * tokens are counted either way. A JSON-number cost is read as the decimal
 * it was written as (at most 15 significant digits, else EE_EPARSE: send a
 * string). The answer:
 *   {"cost": money, "promptTokens", "completionTokens", "totalTokens",
 *    "priceUnknown": false,
 *    "entries": [{"model", "node"?, "promptTokens", "completionTokens",
 *                 "source": "provider" | "price" | "fallback",
 *                 "cost": money, "priceUnknown"}],
 *    "charge"?: <as ee_cost_charge(), plus "entries": [money, ...] the
 *               charged amount split like the cost>}
 * Entry costs are the total split by largest remainder (they add up to it).
 * The document is at most EE_COST_DOC_MAX_BYTES and 64 levels deep; no
 * member but those above, in the document, an entry, "charge" or
 * "fallbackPrice"; a token count that is present is an integer (null is
 * refused, not read as 0). Thread-safe. *out is owned by the caller
 * (ee_free()).
 * Returns EE_OK; EE_EINVAL (NULL argument, negative, null or non-integer
 * tokens, an unknown member, a bad charge or fallback); EE_EPARSE (not JSON, not that shape, a
 * malformed cost); EE_ETOOBIG (over the limits, or an amount past int64);
 * EE_EPRICE (a model with no price and no provider cost, without an allowed
 * fallback); EE_ENOMEM.
 */
EE_API ee_status ee_cost_actual(const ee_cost_table *table, const char *usage_json, char **out);

/**
 * The charge for a run that cost `cost_nano`:
 *   platform key (is_platform_key != 0):
 *     markedUp  = round_half_even(cost x (10000 + markup_bp) / 10000)
 *     free      = min(markedUp, max(0, allowance - allowance_used))
 *     charged   = markedUp - free;  allowance_used_after = allowance_used + free
 *   customer key: nothing is charged and no allowance is consumed.
 * `allowance_used_nano` is what this workspace used of this month's free
 * allowance before the run (0 in a new month). The numbers go to the
 * out-parameters (any may be NULL). Thread-safe, allocation-free.
 * Returns EE_OK; EE_EINVAL (a negative amount, markup over
 * EE_COST_MARKUP_BP_MAX, or a result past int64).
 */
EE_API ee_status ee_cost_charge_calc(int64_t cost_nano, int64_t markup_bp, int64_t allowance_nano,
                                     int64_t allowance_used_nano, int is_platform_key,
                                     int64_t *charged_out, int64_t *allowance_consumed_out,
                                     int64_t *allowance_used_after_out);

/**
 * ee_cost_charge_calc() as a document:
 *   {"keyType": "platform" | "customer", "cost": money, "markupBp": 2000,
 *    "markedUp": money, "allowanceConsumed": money, "charged": money,
 *    "allowanceUsedBefore": money, "allowanceUsedAfter": money,
 *    "allowanceRemaining": money}
 * Thread-safe. *out is owned by the caller (ee_free()).
 * Returns as ee_cost_charge_calc(), plus EE_EINVAL for a NULL out and
 * EE_ENOMEM.
 */
EE_API ee_status ee_cost_charge(int64_t cost_nano, int64_t markup_bp, int64_t allowance_nano,
                                int64_t allowance_used_nano, int is_platform_key, char **out);

/**
 * Split `total` into n parts proportional to `weights` (each >= 0, not all
 * 0 unless total is 0) by the largest-remainder method: every part is the
 * floor of its exact share total x w / sum(w), and the units left over go
 * one each to the parts with the largest remainders (ties: lower index).
 * The parts add up to `total` exactly and each is within 1 of its exact
 * share. A negative total is split as -(split of -total). `parts_out` has
 * room for n values. Thread-safe.
 * Returns EE_OK; EE_EINVAL (NULL pointer with n > 0, n == 0, a negative
 * weight, all weights 0 with a non-zero total, total == INT64_MIN);
 * EE_ENOMEM.
 */
EE_API ee_status ee_cost_allocate(int64_t total, const int64_t *weights, size_t n,
                                  int64_t *parts_out);

EE_END_DECLS

#endif
