'use strict';
/*
 * How each exported C function of bindings/manifest.json becomes a method of
 * the idiomatic layer: a pure function of the manifest (no library needed),
 * used at load time by index.js and by tools/gen-dts.js for index.d.ts.
 *
 * The rule (docs/bindings.md, "Node"), applied in this order:
 *   1. OVERRIDES names the few functions whose derived name reads badly or
 *      that index.js implements by hand (among them the calls over C data
 *      structs: counters requests/results, the quota ticket, storage
 *      queries and increments, which index.js declares with koffi.struct),
 *      and a handle's free function is its class's close(); any other
 *      function with a struct parameter has no method: it stays
 *      ee.native.fn.<name>, with the reason from NATIVE_REASON.
 *   2. First parameter `handle_out:ee_x` -> a static factory on class X
 *      (ee_storage_sqlite_new -> Storage.sqlite(path)); "new" alone -> create.
 *   3. First parameter `handle:ee_engine` -> engine.<module>.<method>, the
 *      module from the name's prefix (SUBMODULES, longest first, then the first
 *      word through MODULES): ee_cred_key_add -> engine.credentials.keys.add.
 *   4. First parameter another `handle:ee_x` -> method of class X, the name
 *      without the handle's stem (ee_http_request_add_header -> addHeader).
 *   5. Otherwise -> ee.<module>.<method> (ee_cost_schedule_runs ->
 *      ee.cost.scheduleRuns).
 * Method names are camelCase, with a trailing "_json" dropped.
 *
 * Parameters: a JSON parameter takes an object (stringified) or a string; a
 * principal takes a Principal or a plain {workspaceId, userId, orgId}; other
 * handles take their class; int flags named in BOOL_PARAMS take booleans;
 * bytes (or a str) followed by its length take a Buffer or a string (the
 * length is filled in); an int64_array followed by its count takes an array;
 * callback payloads are not JS parameters.
 * Results: out-parameters become the return value (one: itself; several: an
 * object keyed by their names without "_out"); a char ** document is parsed
 * from JSON (TEXT_OUT: kept as text) and ee_free()d; a new handle is wrapped
 * in its class. Calls in ASYNC run on a koffi worker and return a Promise.
 */

const MODULES = { cred: 'credentials', exec: 'executions', template: 'templates', error: 'errors' };
const SUBMODULES = {
    catalog_category: 'catalog.categories',
    cred_key: 'credentials.keys',
    cred_platform: 'credentials.platform',
    cred_personal: 'credentials.personal',
    quota_plan: 'quota.plans',
    quota_subscription: 'quota.subscriptions',
    quota_storage: 'quota.storage',
};

/* Explicit paths. "X#m": method m of class X; "X.m": static; "engine.a.b":
 * on an Engine; "a.b": on the module's exports. handwritten: index.js
 * implements it (the generator leaves it alone). */
const OVERRIDES = {
    ee_exec_submit: { path: 'engine.executions.start' },
    ee_config_new: { path: 'Config', handwritten: true },
    ee_config_free: { path: 'Config#free', handwritten: true },
    ee_config_copy: { path: 'Config#copy', handwritten: true },
    ee_config_set: { path: 'Config#set', handwritten: true },
    ee_config_set_int64: { path: 'Config#setInt', handwritten: true },
    ee_config_unset: { path: 'Config#unset', handwritten: true },
    ee_config_load_env: { path: 'Config#loadEnv', handwritten: true },
    ee_config_load_envp: { path: 'Config#loadEnv', handwritten: true },
    ee_config_get_int64: { path: 'Config#getInt', handwritten: true },
    ee_config_get_string: { path: 'Config#getString', handwritten: true },
    ee_config_is_set: { path: 'Config#isSet', handwritten: true },
    ee_config_options_json: { path: 'Config.options', handwritten: true },
    ee_config_summary_json: { path: 'Config#summary', handwritten: true },
    ee_config_set_clock: { path: 'Config#setClock', handwritten: true },
    ee_config_set_log: { path: 'Config#setLog', handwritten: true },
    ee_engine_open: { path: 'Engine.open', handwritten: true },
    ee_engine_close: { path: 'Engine#close', handwritten: true },
    ee_engine_now_ms: { path: 'Engine#nowMs', handwritten: true },
    ee_engine_summary_json: { path: 'Engine#summary', handwritten: true },
    ee_quota_set_alert_callback: { path: 'engine.quota.onAlert', handwritten: true },
    ee_storage_collection_list: { path: 'Storage.collections', handwritten: true },
    ee_strerror: { path: 'strerror', handwritten: true },
    ee_status_name: { path: 'statusName', handwritten: true },
    ee_error_last_status: { path: 'errors.lastStatus' },
    ee_error_last_message: { path: 'errors.lastMessage' },
    ee_error_last_http_status: { path: 'errors.lastHttpStatus' },
    ee_error_last_json: { path: 'errors.last' },
    ee_error_clear: { path: 'errors.clear' },
    ee_free: { path: 'native.free', handwritten: true },
    ee_log_level_name: { path: 'log.levelName' },
    ee_version: { path: 'version', handwritten: true },
    ee_version_num: { path: 'versionNum', handwritten: true },
    ee_version_features: { path: 'features', handwritten: true },
    ee_principal_new: { path: 'Principal.create' },
    ee_storage_id_new: { path: 'storage.newId' },
    // Calls over C data structs (index.js, "C structs"): plain objects in,
    // plain objects out; the struct layouts are checked against C's.
    ee_counters_reserve: { path: 'Counters#reserve', handwritten: true },
    ee_counters_reserve_many: { path: 'Counters#reserveMany', handwritten: true },
    ee_counters_reserve_many_leased: { path: 'Counters#reserveManyLeased', handwritten: true },
    ee_counters_get: { path: 'Counters#get', handwritten: true },
    ee_quota_admit_fast: { path: 'engine.quota.admitFast', handwritten: true },
    ee_gateway_handle: { path: 'engine.gateway.handle', handwritten: true },
    // engine.quota.finish is ee_quota_finish_json (a ticket as JSON).
    ee_quota_finish: { path: 'engine.quota.finishTicket', handwritten: true },
    ee_quota_renew: { path: 'engine.quota.renew', handwritten: true },
    ee_quota_ticket_refusal: { path: 'QuotaTicket#refusal', handwritten: true },
    ee_quota_ticket_json: { path: 'QuotaTicket#toJson', handwritten: true },
    ee_quota_ticket_from_json: { path: 'QuotaTicket.fromJson', handwritten: true },
    ee_storage_query: { path: 'Storage#query', handwritten: true },
    ee_storage_count: { path: 'Storage#count', handwritten: true },
    ee_storage_increment: { path: 'Storage#increment', handwritten: true },
};

/* The functions that stay native-only, and why: their structs carry C
 * function pointers the library calls (from its own threads, or with C
 * request and sink objects), which a JS object cannot be. Each stays
 * callable as native.fn.<name>. */
const NATIVE_REASON = {
    ee_counters_new_custom: 'a custom counters backend table (struct ee_counters_backend) whose '
        + 'slots the library calls from its own threads: C hosts only; use Counters.memory/sqlite/'
        + 'postgres/redis/openUri',
    ee_storage_new_custom: 'a custom storage backend table (struct ee_storage_backend) whose slots '
        + 'the library calls from its own threads: C hosts only; use Storage.memory/sqlite/postgres/openUri',
    ee_transport_new_custom: 'a custom transport table (struct ee_transport_backend) whose slots '
        + 'the library calls from its own threads: C hosts only; use Transport.curl',
    ee_engine_open_parts: 'an engine assembled from C parts (struct ee_engine_parts, custom '
        + 'backends included): C hosts only; use Engine.open with a Config',
};

/* int parameters that are yes/no flags: a boolean is accepted. */
const BOOL_PARAMS = new Set(['active', 'success', 'include_data', 'is_platform_key', 'safe',
    'require']);

/* char ** results that are not JSON. */
const TEXT_OUT = new Set(['ee_template_render', 'ee_template_render_len', 'ee_billing_export',
    'ee_gateway_listen', 'ee_config_get_string']);

/* Calls that wait (an execution, a sync, the network): a Promise each. */
const ASYNC = new Set(['ee_exec_run', 'ee_exec_wait', 'ee_exec_cancel', 'ee_catalog_sync',
    'ee_cred_key_validate', 'ee_cred_platform_provision', 'ee_email_outbox_run',
    'ee_n8n_list_workflows', 'ee_n8n_get_workflow', 'ee_n8n_trigger_webhook',
    'ee_n8n_get_execution', 'ee_n8n_list_executions', 'ee_transport_http', 'ee_transport_mail']);

/* Constructors whose new handle borrows one of their handle parameters (the
 * header: "borrowed and must outlive"; a subject keeps its engine's state):
 * the new handle is closed with that one, which is freed after it. */
const BORROWS = { ee_n8n_new: 'transport', ee_quota_subject_new: 'engine' };

/* Sizes of char_buf outputs (the header's array bound). */
const CHAR_BUF = { ee_exec_submit: 25, ee_storage_insert: 25, ee_storage_id_new: 25 };

/* Callbacks a generated method does not take from JS (always NULL). Here:
 * the done callback of ee_exec_submit, which a worker would run on the main
 * thread (use executions.wait instead). */
const NULL_CALLBACK = new Set(['ee_exec_submit']);

function camel(s) {
    return s.replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase());
}

function className(handle) {
    const stem = handle.replace(/^ee_/, '');
    return stem.split('_').map((w) => (w === 'n8n' ? 'N8n' : w[0].toUpperCase() + w.slice(1))).join('');
}

function methodName(rest) {
    const r = rest.replace(/_json$/, '');
    return camel(r);
}

function modulePath(stem) {
    const keys = Object.keys(SUBMODULES).sort((a, b) => b.length - a.length);
    for (const k of keys)
        if (stem === k || stem.startsWith(k + '_'))
            return { module: SUBMODULES[k], rest: stem.slice(k.length + 1) };
    const i = stem.indexOf('_');
    const first = i < 0 ? stem : stem.slice(0, i);
    return { module: MODULES[first] || first, rest: i < 0 ? '' : stem.slice(i + 1) };
}

/* JS parameter and result roles of one function. */
function shape(f) {
    const ps = f.params;
    const args = [];
    const outs = [];
    let unsupported = null;
    for (let i = 0; i < ps.length; i++) {
        const p = ps[i];
        const t = p.type;
        const next = ps[i + 1];
        if (t.startsWith('ptr:')) {
            unsupported = `takes struct ${t.slice(4)}`;
        } else if (t === 'ptr') {
            args.push({ c: i, role: 'null', name: p.name });
        } else if (t.startsWith('callback:')) {
            args.push({ c: i, role: NULL_CALLBACK.has(f.name) ? 'null' : 'callback',
                        name: p.name, callback: t.slice(9) });
        } else if ((t === 'bytes' || t === 'str') && next && next.type === 'size'
                   && /(^|_)len$/.test(next.name)) {
            args.push({ c: i, role: 'bytes', name: p.name, len: i + 1, ctype: t });
            i++;
        } else if (/_array$/.test(t) && next && next.type === 'size') {
            args.push({ c: i, role: 'array', name: p.name, len: i + 1, elem: t.replace(/_array$/, '') });
            i++;
        } else if (t === 'str') {
            args.push({ c: i, role: p.json ? 'json' : 'str', name: p.name });
        } else if (t.startsWith('handle:')) {
            const h = t.slice(7);
            args.push({ c: i, role: h === 'ee_principal' ? 'principal' : 'handle', name: p.name, handle: h });
        } else if (['int', 'uint', 'int32', 'uint32', 'size', 'double'].includes(t)) {
            args.push({ c: i, role: BOOL_PARAMS.has(p.name) ? 'bool' : 'number', name: p.name, ctype: t });
        } else if (t === 'int64' || t === 'uint64') {
            args.push({ c: i, role: 'int64', name: p.name, ctype: t });
        } else if (t === 'char_buf') {
            if (!CHAR_BUF[f.name]) unsupported = `char buffer ${p.name} of unknown size`;
            outs.push({ c: i, role: 'charbuf', name: p.name, size: CHAR_BUF[f.name] });
        } else if (t === 'str_out') {
            outs.push({ c: i, role: TEXT_OUT.has(f.name) ? 'text' : 'doc', name: p.name });
        } else if (t === 'borrowed_str_out') {
            outs.push({ c: i, role: 'borrowedText', name: p.name });
        } else if ((t === 'bytes_out' || t === 'ptr_out') && next && next.type === 'size_out') {
            outs.push({ c: i, role: t === 'bytes_out' ? 'ownedBytes' : 'borrowedBytes', name: p.name, len: i + 1 });
            i++;
        } else if (t === 'int64_out' && f.name === 'ee_cost_allocate') {
            outs.push({ c: i, role: 'int64Array', name: p.name, count: 'weights' });
        } else if (['int_out', 'int64_out', 'uint64_out', 'size_out'].includes(t)) {
            outs.push({ c: i, role: 'scalar', name: p.name, type: t });
        } else if (t.startsWith('handle_out:')) {
            outs.push({ c: i, role: 'handle', name: p.name, handle: t.slice(11) });
        } else {
            unsupported = `parameter type ${t}`;
        }
    }
    return { args, outs, unsupported };
}

function outKey(name) {
    if (name === 'out') return 'value';
    return camel(name.replace(/^out_/, '').replace(/_out$/, ''));
}

/*
 * One descriptor per manifest function:
 *   { name, path, kind: 'engine'|'method'|'static'|'module'|'native',
 *     owner, method, handle?, args, outs, async, handwritten, reason? }
 * path is what the coverage test resolves (see OVERRIDES for its forms).
 */
function describe(manifest) {
    const out = [];
    for (const f of manifest.functions) {
        const s = shape(f);
        const d = { name: f.name, returns: f.returns, args: s.args, outs: s.outs,
                    async: ASYNC.has(f.name), handwritten: false };
        if (BORROWS[f.name]) d.borrows = BORROWS[f.name];
        let ov = OVERRIDES[f.name];
        // A handle's free function is its class's close() (which also
        // unregisters the finalizer): never a second, raw free.
        const freed = Object.entries(manifest.handles).find(([, v]) => v.free === f.name);
        if (!ov && freed) ov = { path: `${className(freed[0])}#close`, handwritten: true };
        const first = f.params[0] ? f.params[0].type : '';
        const stem = f.name.replace(/^ee_/, '');
        if (ov) {
            d.path = ov.path;
            d.handwritten = !!ov.handwritten;
        } else if (s.unsupported) {
            d.path = `native.fn.${f.name}`;
            d.kind = 'native';
            d.reason = `${s.unsupported}: ${NATIVE_REASON[f.name] || 'C hosts only'}`;
            out.push(d);
            continue;
        } else if (first.startsWith('handle_out:')) {
            const h = first.slice(11);
            const hs = h.replace(/^ee_/, '');
            let rest = stem.startsWith(hs + '_') ? stem.slice(hs.length + 1) : stem;
            rest = rest.replace(/_new$/, '').replace(/^new$/, 'create');
            d.path = `${className(h)}.${methodName(rest)}`;
        } else if (first === 'handle:ee_engine') {
            const { module, rest } = modulePath(stem);
            d.path = `engine.${module}.${methodName(rest)}`;
        } else if (first.startsWith('handle:')) {
            const h = first.slice(7);
            const hs = h.replace(/^ee_/, '');
            let rest;
            if (stem.startsWith(hs + '_')) rest = stem.slice(hs.length + 1);
            else rest = stem.slice(stem.indexOf('_') + 1);
            d.path = `${className(h)}#${methodName(rest)}`;
        } else {
            const { module, rest } = modulePath(stem);
            d.path = `${module}.${methodName(rest)}`;
        }
        // kind/owner/method from the path
        if (d.path.includes('#')) {
            const [owner, method] = d.path.split('#');
            Object.assign(d, { kind: 'method', owner, method });
        } else if (d.path.startsWith('engine.')) {
            const parts = d.path.split('.');
            Object.assign(d, { kind: 'engine', owner: parts.slice(1, -1).join('.'), method: parts[parts.length - 1] });
        } else if (/^[A-Z]/.test(d.path)) {
            const [owner, method] = d.path.split('.');
            Object.assign(d, { kind: method ? 'static' : 'constructor', owner, method: method || null });
        } else {
            const parts = d.path.split('.');
            Object.assign(d, { kind: 'module', owner: parts.slice(0, -1).join('.'), method: parts[parts.length - 1] });
        }
        if (d.kind === 'method' || d.kind === 'engine')
            d.self = 0;  // the first C parameter is the object itself
        if (s.unsupported && !d.handwritten) {
            d.kind = 'native';
            d.reason = s.unsupported;
        }
        out.push(d);
    }
    return out;
}

module.exports = { describe, className, outKey, camel, MODULES, SUBMODULES, OVERRIDES, ASYNC, TEXT_OUT,
    NATIVE_REASON, BORROWS };
