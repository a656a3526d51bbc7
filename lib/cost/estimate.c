/*
 * The pre-run estimate: seed 2's figures (predictions, external, platform
 * and personal calls, complexity, monthly projection) from a workflow's
 * nodes and the rules, and seed 1's estimatedCost from the price table.
 */
#include "cost_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RUNS_PER_MONTH_MAX INT64_C(1000000000)

typedef struct {
    const char *node; /* borrowed from the workflow document, may be NULL */
    char *model;      /* owned */
    bool model_assumed;
    int64_t prompt_tokens, completion_tokens;
    ee__u128 atto;
    bool unknown;
} llm_call;

typedef struct {
    const ee__cost_rules *rules;
    const ee__cost_prices *prices;
    ee__cost_policy policy;
    int64_t steps, predictions, external, platform, personal;
    llm_call *calls;
    size_t n_calls;
    ee__u128 run_atto;
    bool price_unknown;
    json_t *unknown_types; /* object used as a set */
} estimate;

/* ---- resolving a node ---------------------------------------------------------- */

static int find_alias(const ee__cost_rules *r, const char *name)
{
    char low[EE_COST_NAME_MAX + 1];
    size_t len = strlen(name);
    if (len == 0 || len > EE_COST_NAME_MAX)
        return -1;
    for (size_t i = 0; i <= len; i++)
        low[i] = (char)tolower((unsigned char)name[i]);
    return ee__cost_key_find(r->aliases, r->n_aliases, low);
}

/* A literal string parameter (n8n expressions start with '='), directly or
 * as a resource locator {"__rl": true, "value": "..."}. */
static const char *literal(const json_t *v)
{
    if (json_is_object(v))
        v = json_object_get(v, "value");
    const char *s = json_string_value(v);
    if (s == NULL || s[0] == '\0' || s[0] == '=' || strlen(s) > EE_COST_NAME_MAX)
        return NULL;
    return s;
}

static int64_t token_param(const json_t *params, int64_t dflt)
{
    const json_t *opts = json_object_get(params, "options");
    static const char *const keys[] = {"maxTokens", "max_tokens", "maxTokensToSample"};
    for (int where = 0; where < 2; where++) {
        const json_t *obj = where == 0 ? opts : params;
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
            json_t *v = json_object_get(obj, keys[i]);
            if (json_is_integer(v) && json_integer_value(v) >= 0
                && json_integer_value(v) <= EE__TOKENS_MAX)
                return json_integer_value(v);
        }
    }
    return dflt;
}

/* A model parameter of the wrong type (a number, a boolean, null, an array,
 * a resource locator whose "value" is no string) is a malformed workflow:
 * refused, never taken for "no model" and priced as the default one. */
static ee_status model_type_ok(const json_t *params, const char *node_name)
{
    static const char *const keys[] = {"model", "modelId", "modelName"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const json_t *v = json_object_get(params, keys[i]);
        if (v == NULL || json_is_string(v) ||
            (json_is_object(v) && json_is_string(json_object_get(v, "value"))))
            continue;
        char q[80];
        ee__quote_for_message(node_name != NULL ? node_name : "", q, sizeof q);
        return ee__error(EE_EINVAL, "estimate: node \"%s\": parameters.%s must be a model name "
                         "(a string, or {\"value\": string})", q, keys[i]);
    }
    return EE_OK;
}

/* The price-table id of an LLM node's model. */
static char *model_id(const ee__cost_rules *r, const ee__cost_service *svc, const json_t *params,
                      bool *assumed)
{
    const char *m = NULL;
    static const char *const keys[] = {"model", "modelId", "modelName"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0] && m == NULL; i++)
        m = literal(json_object_get(params, keys[i]));
    *assumed = m == NULL;
    if (m == NULL)
        return strdup(svc && svc->default_model ? svc->default_model : r->default_model);
    int alias = ee__cost_key_find(r->model_aliases, r->n_model_aliases, m);
    if (alias >= 0)
        return strdup(r->model_targets[alias]);
    if (strchr(m, '/') == NULL && svc != NULL && svc->model_prefix != NULL) {
        size_t a = strlen(svc->model_prefix), b = strlen(m);
        char *id = malloc(a + b + 1);
        if (id != NULL) {
            memcpy(id, svc->model_prefix, a);
            memcpy(id + a, m, b + 1);
        }
        return id;
    }
    return strdup(m);
}

static ee_status add_llm_call(estimate *e, const ee__cost_service *svc, const json_t *node,
                              const char *node_name)
{
    const json_t *params = json_object_get(node, "parameters");
    llm_call *c = &e->calls[e->n_calls];
    memset(c, 0, sizeof *c);
    c->node = node_name;
    ee_status tst = model_type_ok(params, node_name);
    if (tst != EE_OK)
        return tst;
    if ((c->model = model_id(e->rules, svc, params, &c->model_assumed)) == NULL)
        return ee__error(EE_ENOMEM, "out of memory estimating a workflow");
    e->n_calls++;
    c->prompt_tokens = e->rules->prompt_tokens;
    c->completion_tokens = token_param(params, e->rules->completion_tokens);
    const ee__cost_price *price;
    ee_status st = ee__cost_price_pick(e->prices, &e->policy, c->model, node_name, &price,
                                       &c->unknown);
    if (st != EE_OK)
        return st;
    (void)ee__cost_call_atto(price, c->prompt_tokens, c->completion_tokens, &c->atto);
    e->price_unknown |= c->unknown;
    /* Each call is < 2^118; stop well before the sum could wrap. */
    if (e->run_atto > EE__U128_SAFE)
        return ee__error(EE_ETOOBIG, "estimate: the workflow's cost exceeds the int64 range");
    e->run_atto += c->atto;
    return EE_OK;
}

/* Credential mode of a node from its "credentials" object, if it has one. */
static bool node_cred_mode(const ee__cost_rules *r, const json_t *creds, ee__cost_mode *mode)
{
    if (!json_is_object(creds) || json_object_size(creds) == 0)
        return false;
    bool personal = false, platform = false;
    const char *type;
    json_t *v;
    json_object_foreach((json_t *)creds, type, v) {
        int m = ee__cost_key_find(r->creds, r->n_creds, type);
        ee__cost_mode cm = m < 0 ? r->unknown_credential : (ee__cost_mode)m;
        personal |= cm == EE__MODE_PERSONAL;
        platform |= cm == EE__MODE_PLATFORM;
    }
    *mode = personal ? EE__MODE_PERSONAL : platform ? EE__MODE_PLATFORM : EE__MODE_NONE;
    return true;
}

static ee_status note_unknown(estimate *e, const char *what)
{
    if (json_object_size(e->unknown_types) >= 1000)
        return EE_OK; /* enough to show; the counts stay exact */
    return json_object_set_new(e->unknown_types, what, json_true()) == 0
               ? EE_OK : ee__error(EE_ENOMEM, "out of memory estimating a workflow");
}

static ee_status add_node(estimate *e, const json_t *node, size_t i)
{
    const ee__cost_rules *r = e->rules;
    int svc_idx = -1, prim = -1;
    ee__cost_mode mode = EE__MODE_NONE;
    const char *node_name = NULL, *label = NULL;
    bool has_creds = false;
    ee_status st;
    if (json_is_string(node)) {
        label = json_string_value(node);
        svc_idx = find_alias(r, label);
    } else if (json_is_object(node)) {
        if (json_is_true(json_object_get(node, "disabled")))
            return EE_OK; /* n8n skips disabled nodes */
        node_name = json_string_value(json_object_get(node, "name"));
        const char *type = json_string_value(json_object_get(node, "type"));
        const char *service = json_string_value(json_object_get(node, "service"));
        if (type != NULL) {
            label = type;
            svc_idx = ee__cost_key_find(r->node_types, r->n_node_types, type);
        } else {
            label = service ? service : node_name;
            svc_idx = label ? find_alias(r, label) : -1;
        }
        has_creds = node_cred_mode(r, json_object_get(node, "credentials"), &mode);
        json_t *p = json_object_get(node, "primitive");
        if (p != NULL) {
            for (size_t k = 0; k < r->n_prims && prim < 0; k++)
                if (json_is_string(p) && strcmp(json_string_value(p), r->prims[k].name) == 0)
                    prim = (int)k;
            if (prim < 0)
                return ee__error(EE_EINVAL, "estimate: nodes[%zu].primitive names no primitive "
                                 "of the rules", i);
        }
    } else {
        return ee__error(EE_EPARSE, "estimate: nodes[%zu] is neither a service name nor a node "
                         "object", i);
    }
    if (label == NULL)
        return ee__error(EE_EPARSE, "estimate: nodes[%zu] has no \"type\", \"service\" or "
                         "\"name\"", i);
    const ee__cost_service *svc = svc_idx >= 0 ? &r->services[svc_idx] : NULL;
    if (svc == NULL && (st = note_unknown(e, label)) != EE_OK)
        return st;
    if (prim < 0)
        prim = svc ? svc->primitive : has_creds ? r->unknown_with_creds : r->unknown_without_creds;
    if (!has_creds && svc != NULL)
        mode = svc->mode;
    const ee__cost_primitive *pr = &r->prims[prim];
    e->steps += pr->step;
    e->predictions += pr->predictions;
    e->external += pr->external;
    e->platform += mode == EE__MODE_PLATFORM;
    e->personal += mode == EE__MODE_PERSONAL;
    if (pr->llm)
        return add_llm_call(e, svc, json_is_object(node) ? node : NULL, node_name ? node_name : label);
    return EE_OK;
}

static int complexity(const estimate *e)
{
    const ee__cost_rules *r = e->rules;
    for (size_t i = 0; i < r->n_levels; i++) {
        const ee__cost_level_rule *l = &r->levels[i];
        if ((l->min_steps < 0 || e->steps >= l->min_steps)
            && (l->min_predictions < 0 || e->predictions >= l->min_predictions)
            && (l->min_external < 0 || e->external >= l->min_external)
            && (l->min_personal < 0 || e->personal >= l->min_personal)
            && (l->min_platform < 0 || e->platform >= l->min_platform))
            return l->level;
    }
    return r->default_level;
}

/* ---- options --------------------------------------------------------------------- */

typedef struct {
    const char *schedule; /* borrowed from the options document */
    int64_t runs;         /* -1: no projection */
} projection;

static ee_status read_options(const json_t *opts, ee__cost_policy *pol, projection *pr)
{
    pr->schedule = NULL;
    pr->runs = -1;
    if (opts != NULL && !json_is_object(opts))
        return ee__error(EE_EINVAL, "estimate: options must be a JSON object");
    static const char *const members[] = {"allowUnknownPrice", "fallbackPrice", "schedule",
                                          "startMs", "runsPerMonth", NULL};
    ee_status st = opts != NULL ? ee__json_check_members(opts, members, "estimate options", "")
                                : EE_OK;
    if (st != EE_OK)
        return st;
    st = ee__cost_policy_read(opts, pol);
    if (st != EE_OK)
        return st;
    json_t *sched = json_object_get(opts, "schedule"), *start = json_object_get(opts, "startMs"),
           *runs = json_object_get(opts, "runsPerMonth");
    if (sched != NULL && !json_is_null(sched) && !json_is_string(sched))
        return ee__error(EE_EINVAL, "estimate: \"schedule\" must be a string");
    if (start != NULL && (!json_is_integer(start) || json_integer_value(start) < 0))
        return ee__error(EE_EINVAL, "estimate: \"startMs\" must be a non-negative integer");
    if (runs != NULL && !json_is_null(runs)) {
        if (json_is_string(sched))
            return ee__error(EE_EINVAL, "estimate: give \"schedule\" or \"runsPerMonth\", "
                             "not both");
        if (!json_is_integer(runs) || json_integer_value(runs) < 0
            || json_integer_value(runs) > RUNS_PER_MONTH_MAX)
            return ee__error(EE_EINVAL, "estimate: \"runsPerMonth\" must be an integer in "
                             "0..%lld", (long long)RUNS_PER_MONTH_MAX);
        pr->runs = json_integer_value(runs);
        return EE_OK;
    }
    if (!json_is_string(sched))
        return EE_OK;
    pr->schedule = json_string_value(sched);
    if (start == NULL && !ee__cost_schedule_is_interval(pr->schedule))
        return ee__error(EE_EINVAL, "estimate: a cron schedule needs \"startMs\", the start of "
                         "the 30 days counted");
    return ee_cost_schedule_runs(pr->schedule, start ? json_integer_value(start) : 0, &pr->runs);
}

/* ---- the answer ------------------------------------------------------------------ */

static json_t *answer(const estimate *e, const projection *pr, int64_t run_nano,
                      const int64_t *month_nano, const int64_t *parts)
{
    json_t *calls = json_array(), *unknown = json_array();
    for (size_t i = 0; calls && i < e->n_calls; i++) {
        const llm_call *c = &e->calls[i];
        json_t *o = json_pack("{s:s?, s:s, s:b, s:I, s:I, s:o, s:b}", "node", c->node, "model",
                              c->model, "modelAssumed", c->model_assumed, "promptTokens",
                              (json_int_t)c->prompt_tokens, "completionTokens",
                              (json_int_t)c->completion_tokens, "cost",
                              ee__cost_money(parts[i]), "priceUnknown", c->unknown);
        if (o == NULL || json_array_append_new(calls, o) != 0) {
            json_decref(calls);
            calls = NULL;
        }
    }
    const char *key;
    json_t *v;
    json_object_foreach(e->unknown_types, key, v) {
        if (unknown != NULL && json_array_append_new(unknown, json_string(key)) != 0) {
            json_decref(unknown);
            unknown = NULL;
        }
    }
    json_t *monthly = pr->runs >= 0 ? json_integer(pr->runs * e->predictions) : json_null();
    json_t *runs = pr->runs >= 0 ? json_integer(pr->runs) : json_null();
    json_t *per_month = month_nano ? ee__cost_money(*month_nano) : json_null();
    json_t *cost = json_pack("{s:o, s:o, s:b}", "perRun", ee__cost_money(run_nano), "perMonth",
                             per_month, "priceUnknown", e->price_unknown);
    return json_pack("{s:I, s:I, s:I, s:I, s:s, s:I, s:s?, s:o, s:o, s:o, s:o, s:o}",
                     "predictions_per_run", (json_int_t)e->predictions,
                     "external_api_calls", (json_int_t)e->external,
                     "platform_managed_calls", (json_int_t)e->platform,
                     "personal_calls", (json_int_t)e->personal,
                     "complexity", ee__cost_level_names[complexity(e)],
                     "steps", (json_int_t)e->steps,
                     "schedule", pr->schedule,
                     "runs_per_month", runs,
                     "estimated_monthly_cost", monthly,
                     "estimatedCost", cost,
                     "llmCalls", calls,
                     "unknownNodeTypes", unknown);
}

static const json_t *node_list(const json_t *doc)
{
    if (json_is_array(doc))
        return doc;
    const json_t *wf = json_object_get(doc, "workflow");
    const json_t *nodes = json_object_get(doc, "nodes");
    if (nodes == NULL && json_is_object(wf))
        nodes = json_object_get(wf, "nodes");
    return json_is_array(nodes) ? nodes : NULL;
}

/* The figures of a workflow: the node loop, the cost per run and, with a
 * projection, per month (both rounded once). */
static ee_status estimate_totals(estimate *e, const json_t *wf, const projection *pr,
                                 int64_t *run_nano, int64_t *month_nano)
{
    const json_t *nodes = node_list(wf);
    if (nodes == NULL)
        return ee__error(EE_EPARSE, "estimate: expected a workflow {\"nodes\": [...]} or a list "
                         "of service names");
    size_t n = json_array_size(nodes);
    if (n > EE_COST_MAX_NODES)
        return ee__error(EE_ETOOBIG, "estimate: %zu nodes, more than %d", n, EE_COST_MAX_NODES);
    if (n && (e->calls = calloc(n, sizeof *e->calls)) == NULL)
        return ee__error(EE_ENOMEM, "out of memory estimating a workflow");
    ee_status st;
    for (size_t i = 0; i < n; i++)
        if ((st = add_node(e, json_array_get(nodes, i), i)) != EE_OK)
            return st;
    if (!ee__cost_atto_to_nano(e->run_atto, run_nano))
        return ee__error(EE_ETOOBIG, "estimate: the cost per run exceeds the int64 range");
    if (pr->runs >= 0) {
        /* run_atto <= 2^124 + 2^118 and runs <= 10^9 < 2^30 would wrap: check. */
        if (pr->runs > 0 && e->run_atto > ((ee__u128)-1) / (ee__u128)pr->runs)
            return ee__error(EE_ETOOBIG, "estimate: the monthly cost exceeds the int64 range");
        if (!ee__cost_atto_to_nano(e->run_atto * (ee__u128)pr->runs, month_nano))
            return ee__error(EE_ETOOBIG, "estimate: the monthly cost exceeds the int64 range");
    }
    return EE_OK;
}

static ee_status run_estimate(estimate *e, const json_t *wf, const projection *pr, char **out)
{
    int64_t run_nano = 0, month_nano = 0;
    ee_status st = estimate_totals(e, wf, pr, &run_nano, &month_nano);
    if (st != EE_OK)
        return st;
    int64_t small[16], *parts = e->n_calls <= 16 ? small : malloc(e->n_calls * sizeof *parts);
    if (parts == NULL)
        return ee__error(EE_ENOMEM, "out of memory estimating a workflow");
    ee__u128 atto_small[16];
    ee__u128 *atto = e->n_calls <= 16 ? atto_small : malloc(e->n_calls * sizeof *atto);
    st = atto ? EE_OK : ee__error(EE_ENOMEM, "out of memory estimating a workflow");
    for (size_t i = 0; st == EE_OK && i < e->n_calls; i++)
        atto[i] = e->calls[i].atto;
    if (st == EE_OK)
        st = ee__cost_split(parts, run_nano, atto, e->n_calls);
    if (st == EE_OK)
        st = ee__json_out(out, answer(e, pr, run_nano, pr->runs >= 0 ? &month_nano : NULL, parts));
    if (parts != small)
        free(parts);
    if (atto != atto_small)
        free(atto);
    return st;
}

/* Take the table's snapshot for an estimate: EE_ESTATE without rules. */
static ee_status estimate_begin(const ee_cost_table *table, ee__cost_snapshot *snap, estimate *e)
{
    ee__cost_snapshot_take(table, snap);
    e->rules = snap->rules;
    e->prices = snap->prices;
    if (e->rules == NULL)
        return ee__error(EE_ESTATE, "estimate: no cost rules loaded "
                         "(ee_cost_table_load_rules_file with data/cost_rules.json)");
    if ((e->unknown_types = json_object()) == NULL)
        return ee__error(EE_ENOMEM, "out of memory estimating a workflow");
    return EE_OK;
}

static void estimate_end(ee__cost_snapshot *snap, estimate *e)
{
    for (size_t i = 0; i < e->n_calls; i++)
        free(e->calls[i].model);
    free(e->calls);
    json_decref(e->unknown_types);
    ee__cost_snapshot_drop(snap);
}

ee_status ee_cost_estimate(const ee_cost_table *table, const char *workflow_json,
                           const char *options_json, char **out)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee_cost_estimate: out is NULL");
    *out = NULL;
    if (table == NULL || workflow_json == NULL)
        return ee__error_out(out, ee__error(EE_EINVAL, "ee_cost_estimate: NULL argument"));
    json_t *opts = NULL, *wf = NULL;
    ee_status st = EE_OK;
    if (options_json != NULL) {
        st = ee__cost_json_parse(options_json, EE_COST_RULES_MAX_BYTES, "estimate options",
                                 &opts);
        if (st == EE_EPARSE) {
            /* options are arguments: EE_EINVAL, with the parser's message */
            char msg[EE__ERROR_MSG_MAX];
            snprintf(msg, sizeof msg, "%s", ee_error_last_message());
            st = ee__error(EE_EINVAL, "%s", msg);
        }
        if (st != EE_OK)
            return ee__error_out(out, st);
    }
    estimate e = {0};
    projection pr;
    if ((st = read_options(opts, &e.policy, &pr)) != EE_OK
        /* n8n's document: its numbers are n8n's, taken as they are */
        || (st = ee__json_parse(workflow_json, EE_COST_DOC_MAX_BYTES, EE__COST_MAX_DEPTH, 0,
                                "workflow", &wf))
               != EE_OK) {
        json_decref(opts);
        return ee__error_out(out, st);
    }
    ee__cost_snapshot snap;
    st = estimate_begin(table, &snap, &e);
    if (st == EE_OK)
        st = run_estimate(&e, wf, &pr, out);
    estimate_end(&snap, &e);
    /* The schedule text lives in opts, read by answer(): free it last. */
    json_decref(wf);
    json_decref(opts);
    /* ee__json_out() already wrote the error document if it failed. */
    return st == EE_OK || *out != NULL ? st : ee__error_out(out, st);
}

/* ---- typed, for the execution pipeline (cost.h) ------------------------------------ */

ee_status ee__cost_estimate_compute(const ee_cost_table *table, const char *workflow_json,
                                    int64_t runs_per_month, ee__cost_estimate *out)
{
    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (table == NULL || workflow_json == NULL || out == NULL)
        return ee__error(EE_EINVAL, "ee__cost_estimate_compute: NULL argument");
    if (runs_per_month < -1 || runs_per_month > RUNS_PER_MONTH_MAX)
        return ee__error(EE_EINVAL, "estimate: runs per month must be -1 (none) or in 0..%lld",
                         (long long)RUNS_PER_MONTH_MAX);
    json_t *wf = NULL;
    ee_status st = ee__json_parse(workflow_json, EE_COST_DOC_MAX_BYTES, EE__COST_MAX_DEPTH, 0,
                                  "workflow", &wf);
    if (st != EE_OK)
        return st;
    estimate e = {0}; /* the policy allows no fallback price: an unknown one is EE_EPRICE */
    projection pr = {NULL, runs_per_month};
    ee__cost_snapshot snap;
    int64_t run_nano = 0, month_nano = 0;
    st = estimate_begin(table, &snap, &e);
    if (st == EE_OK)
        st = estimate_totals(&e, wf, &pr, &run_nano, &month_nano);
    if (st == EE_OK) {
        out->per_run_nano = run_nano;
        out->runs_per_month = runs_per_month;
        out->per_month_nano = runs_per_month >= 0 ? month_nano : 0;
        out->price_unknown = e.price_unknown;
        out->predictions_per_run = e.predictions;
        out->external_calls = e.external;
        out->platform_calls = e.platform;
        out->personal_calls = e.personal;
        out->steps = e.steps;
        out->complexity = complexity(&e);
        out->n_llm_calls = e.n_calls;
        out->n_unknown_node_types = json_object_size(e.unknown_types);
    }
    estimate_end(&snap, &e);
    json_decref(wf);
    if (st != EE_OK)
        memset(out, 0, sizeof *out);
    return st;
}
