'use strict';
// The generated idiomatic layer (lib/mapping.js): every module through it,
// an execution against the fake n8n, errors with their detail, coverage of
// every export, and a 1,000-call loop with the heap and RSS stable.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const ee = require('..');

const ROOT = path.join(__dirname, '..', '..', '..');
const { SECRET, memoryEngine, startScript } = require('./helpers');
const N8N_KEY = 'n8n-key-canary-node-7c1e';
const P = { workspaceId: 'ws-node-1', userId: 'user-1', orgId: 'org-1' };


function resolvePath(engine, p) {
    if (p.includes('#')) {
        const [cls, m] = p.split('#');
        return ee[cls] && ee[cls].prototype[m];
    }
    let node = p.startsWith('engine.') ? engine : ee;
    for (const part of (p.startsWith('engine.') ? p.slice(7) : p).split('.')) {
        if (node === undefined || node === null) return undefined;
        node = node[part];
    }
    return node;
}

/* The only functions without an idiomatic method: their structs hold
 * tables of C function pointers the library calls from its own threads
 * (custom backends, and the engine parts made of them). Every other
 * function over a C struct has a method (#15), the gateway's entry point
 * with its request and sink included (engine.gateway.handle). */
const NATIVE_ONLY = ['ee_counters_new_custom', 'ee_engine_open_parts', 'ee_storage_new_custom',
    'ee_transport_new_custom'];

/** What is wrong with the native-only set of `descriptors`: [] when it is
 * exactly NATIVE_ONLY and every other struct call resolves to a method. */
function nativeOnlyProblems(descriptors, engine) {
    const problems = [];
    const native = descriptors.filter((d) => d.kind === 'native').map((d) => d.name).sort();
    for (const n of native) if (!NATIVE_ONLY.includes(n)) problems.push(`${n}: native-only`);
    for (const n of NATIVE_ONLY) if (!native.includes(n)) problems.push(`${n}: expected native-only`);
    const structCalls = ee.native.manifest.functions
        .filter((f) => f.params.some((p) => p.type.startsWith('ptr:')) && !NATIVE_ONLY.includes(f.name));
    for (const f of structCalls) {
        const d = descriptors.find((x) => x.name === f.name);
        if (!d || d.kind === 'native' || typeof resolvePath(engine, d.path) !== 'function')
            problems.push(`${f.name}: no method`);
    }
    if (structCalls.length !== 14) problems.push(`${structCalls.length} struct calls, expected 14`);
    return problems;
}

test('every exported function has a binding (manifest and abi/exports.txt)', () => {
    const exports = fs.readFileSync(path.join(ROOT, 'abi', 'exports.txt'), 'utf8')
        .split('\n').filter((l) => l.startsWith('ee_')).map((l) => l.split(/\s+/)[0]);
    const byName = new Map(ee.bindings.map((d) => [d.name, d]));
    const engine = memoryEngine();
    try {
        const missing = [];
        for (const name of new Set([...exports, ...ee.native.manifest.functions.map((f) => f.name)])) {
            const d = byName.get(name);
            if (!d) { missing.push(`${name}: no descriptor`); continue; }
            if (d.kind === 'native') {
                // Reachable raw only: the reason must say why and what to use.
                if (!d.reason || typeof ee.native.fn[name] !== 'function')
                    missing.push(`${name}: native-only without a reason`);
                continue;
            }
            if (typeof resolvePath(engine, d.path) !== 'function' && !(d.kind === 'constructor'))
                missing.push(`${name}: ${d.path} is not a function`);
        }
        assert.deepEqual(missing, []);
        // Native-only: exactly the calls whose structs hold C callbacks.
        assert.deepEqual(nativeOnlyProblems(ee.bindings, engine), []);
    } finally {
        engine.close();
    }
});

test('the coverage check fails when a struct call loses its method', () => {
    const mapping = require('../lib/mapping');
    const engine = memoryEngine();
    const saved = mapping.OVERRIDES.ee_counters_get;
    try {
        // Without its override, ee_counters_get falls back to native-only.
        delete mapping.OVERRIDES.ee_counters_get;
        assert.deepEqual(nativeOnlyProblems(mapping.describe(ee.native.manifest), engine),
                         ['ee_counters_get: native-only', 'ee_counters_get: no method']);
        mapping.OVERRIDES.ee_counters_get = saved;
        // With its override but no method behind the path.
        const ds = mapping.describe(ee.native.manifest)
            .map((d) => (d.name === 'ee_storage_count' ? { ...d, path: 'Storage#countRows' } : d));
        assert.deepEqual(nativeOnlyProblems(ds, engine), ['ee_storage_count: no method']);
    } finally {
        mapping.OVERRIDES.ee_counters_get = saved;
        engine.close();
    }
});

test('the coverage check fails for a function without a binding', () => {
    // A manifest with an extra export the mapping cannot place: describe()
    // gives it a descriptor whose path resolves to nothing.
    const mapping = require('../lib/mapping');
    const m = JSON.parse(JSON.stringify(ee.native.manifest));
    m.functions.push({ name: 'ee_frobnicate_widget', header: 'x.h', returns: 'status',
                       params: [{ name: 'engine', type: 'handle:ee_engine' }] });
    const d = mapping.describe(m).find((x) => x.name === 'ee_frobnicate_widget');
    const engine = memoryEngine();
    try {
        assert.equal(typeof resolvePath(engine, d.path), 'undefined');
    } finally {
        engine.close();
    }
});

test('catalog, categories, audit, billing, quota, credentials through the modules', () => {
    const engine = memoryEngine();
    try {
        const cat = engine.catalog.categories.create({ name: 'Node tests' });
        assert.equal(cat.name, 'Node tests');
        assert.equal(engine.catalog.categories.list({}).data.length, 1);
        const entry = engine.catalog.create({ n8nWorkflowId: 'wfNode1', name: 'Summarise',
            inputSchema: { type: 'object', required: ['text'], properties: { text: { type: 'string' } } } });
        assert.match(entry.id, /^[0-9a-f]{24}$/);
        assert.equal(engine.catalog.get(P, entry.id, 0).name, 'Summarise');
        const found = engine.catalog.search(P, { q: 'Summar' });
        assert.deepEqual(found.data.map((e) => e.id), [entry.id]);
        assert.deepEqual(engine.catalog.validateInput(P, entry.id, { text: 'x' }), { text: 'x' });
        // A validation error with JSON pointers.
        const v = assert.throws(() => engine.catalog.validateInput(P, entry.id, { text: 5 }),
            (e) => e instanceof ee.ValidationError && e.code === 'EE_EVALIDATION');
        assert.equal(v, undefined);
        try {
            engine.catalog.validateInput(P, entry.id, { text: 5 });
        } catch (e) {
            assert.ok(e instanceof ee.ExecEngineError);
            assert.equal(e.status, ee.Status.EE_EVALIDATION);
            assert.deepEqual(e.violations.map((x) => x.pointer), ['/text']);
        }
        assert.equal(engine.catalog.update(entry.id, { description: 'd' }).description, 'd');

        assert.equal(typeof engine.audit.stats(), 'object');
        assert.ok(Array.isArray(engine.audit.query(null, {}).data));
        assert.equal(engine.audit.purge(0), 0);

        const bill = engine.billing.current(P);
        assert.equal(typeof bill, 'object');
        assert.equal(typeof engine.billing.history(P, {}), 'object');
        // No closed month yet: NotFound, mapped to its class.
        assert.throws(() => engine.billing.export(P, '2026-01', 'csv'), ee.NotFound);

        assert.equal(engine.quota.usage(P).orgId, P.orgId);
        assert.equal(typeof engine.quota.check(P), 'object');

        const wf = { nodes: [{ name: 'AI', type: '@n8n/n8n-nodes-langchain.lmChatOpenAi',
            parameters: {}, credentials: { openAiApi: { id: '1', name: 'x' } } }], connections: {} };
        const route = engine.credentials.route(P, wf, null);
        assert.equal(route.ready, false);
        assert.deepEqual(route.gaps.map((g) => g.credentialName), ['openAiApi']);
        assert.deepEqual(engine.credentials.keys.list(P), { keys: [] });
    } finally {
        engine.close();
    }
});

test('a quota refusal is a QuotaExceeded with retryAfter', () => {
    const engine = memoryEngine();
    try {
        engine.quota.plans.put({ name: 'tiny', predictionsPerPeriod: 1 });
        engine.quota.subscriptions.put({ orgId: P.orgId, plan: 'tiny' });
        const ok = engine.quota.admit(P, {});
        assert.equal(ok.allowed, true);
        engine.quota.finish(ok.ticket, true, 0);
        assert.throws(() => engine.quota.admit(P, {}), (e) => {
            assert.ok(e instanceof ee.QuotaExceeded);
            assert.equal(e.name, 'QuotaExceeded');
            assert.equal(e.code, 'EE_EQUOTA');
            assert.equal(e.detail.quota, 'predictions');
            assert.ok(e.retryAfterMs > 0);
            assert.equal(e.retryAfter, Math.ceil(e.retryAfterMs / 1000));
            return true;
        });
    } finally {
        engine.close();
    }
});

test('handles: classes with close(), Symbol.dispose, factories and out-params', () => {
    const p = new ee.Principal('ws-a', 'u-a', null);
    assert.deepEqual(p.toJSON(), { workspaceId: 'ws-a', userId: 'u-a', orgId: 'ws-a' });  // org defaults to the workspace
    p.close();
    assert.equal(p.closed, true);
    assert.throws(() => p.workspace(), /closed Principal/);

    const schema = ee.Schema.compile({ type: 'object', properties: { n: { type: 'integer', default: 3 } } });
    assert.deepEqual(schema.applyDefaults({}), { n: 3 });
    assert.throws(() => schema.validate({ n: 'x' }),
        (e) => e instanceof ee.ValidationError && e.violations[0].pointer === '/n');
    schema[Symbol.dispose]();

    const storage = ee.Storage.memory();
    assert.equal(storage.backendName(), 'memory');
    const names = ee.Storage.collections().map((c) => c.name);
    assert.ok(names.includes('workflowCatalog'));
    storage.close();

    const req = ee.HttpRequest.create('POST', 'http://127.0.0.1:1/x');
    req.addHeader('X-A', 'b');
    req.setBody('hello');
    assert.deepEqual(req.headerAt(0), { name: 'X-A', value: 'b' });
    assert.equal(req.body().toString(), 'hello');
    assert.equal(req.method(), 'POST');
    req.close();

    const table = ee.CostTable.create();
    assert.ok(table instanceof ee.CostTable);
    table.close();
    assert.deepEqual(ee.cost.allocate(100, [1, 3]), [25, 75]);
    assert.equal(ee.templates.render('Hi {{name}}', { name: 'Ada' }), 'Hi Ada');
    assert.equal(ee.n8n.mapStatus('success'), 'completed');
});

// ---- an execution against the fake n8n ----------------------------------------
const startFakeN8n = () => startScript('fake_n8n.py');

test('sync, run and wait are Promises; an execution end to end', async () => {
    const n8n = await startFakeN8n();
    const engine = memoryEngine({ N8N_BASE_URL: n8n.url, N8N_API_KEY: N8N_KEY, EXEC_WORKERS: '1' });
    try {
        const syncing = engine.catalog.sync();
        assert.ok(syncing instanceof Promise);
        // The call returned before the sync ended: it runs on a worker, and
        // this thread is free meanwhile (a timer fires before it settles).
        let settled = false;
        syncing.then(() => { settled = true; }, () => { settled = true; });
        const timerFirst = await Promise.race([
            new Promise((resolve) => setImmediate(() => resolve(!settled))), syncing.then(() => false)]);
        assert.equal(timerFirst, true);
        const report = await syncing;
        assert.deepEqual(report.added.map((a) => a.name), ['Hosts echo']);
        const wf = report.added[0].id;

        const run = engine.executions.run(P, wf, { parameters: { text: 'hello node' } });
        assert.ok(run instanceof Promise);
        const rec = await run;
        assert.equal(rec.status, 'completed', JSON.stringify(rec));
        assert.equal(engine.executions.get(P, rec._id)._id, rec._id);
        assert.equal(typeof engine.executions.results(P, rec._id), 'object');
        assert.equal(typeof engine.executions.cost(P, rec._id), 'object');
        assert.ok(engine.executions.list(P, {}).data.some((x) => x._id === rec._id));

        engine.executions.workersStart();
        const id = engine.executions.start(P, wf, { parameters: { text: 'async' } });
        assert.match(id, /^[0-9a-f]{24}$/);
        const done = await engine.executions.wait(P, id, 30000);
        assert.equal(done.status, 'completed');

        // An async failure carries its own error document.
        await assert.rejects(engine.executions.wait(P, 'f'.repeat(24), 10),
                             (e) => e instanceof ee.NotFound && e.code === 'EE_ENOTFOUND');
        const text = JSON.stringify(rec);
        assert.ok(!text.includes(N8N_KEY));
    } finally {
        engine.close();
        n8n.proc.kill();
    }
});

// ---- e-mailed results through a real SMTP server (aiosmtpd) ----------------------
async function startSmtpSink() {
    const dir = fs.mkdtempSync('/tmp/ee-node-smtp-');
    const { proc, port } = await startScript('smtp_sink.py', [dir]);
    const messages = () => fs.readdirSync(dir).filter((f) => f.endsWith('.eml')).sort()
        .map((f) => fs.readFileSync(path.join(dir, f), 'utf8'));
    return { proc, dir, port, messages };
}

// ---- the gateway from the host's own HTTP server ------------------------------
async function fetchJson(url, method = 'GET', body) {
    const r = await fetch(url, { method, body: body === undefined ? undefined : JSON.stringify(body),
                                 headers: { 'Content-Type': 'application/json' } });
    return r.json();
}

test('engine.gateway.handle serves a run\'s gateway calls from the host\'s own server (a Promise)', async () => {
    const CUSTOMER_KEY = 'sk-or-v1-node-canary-4b1f';
    const orr = await startScript('fake_openrouter.py');
    const n8n = await startScript('fake_n8n.py', ['--llm']);
    // data/ with the openrouter provider pointed at the fake
    const data = fs.mkdtempSync('/tmp/ee-node-gw-');
    for (const f of fs.readdirSync(path.join(ROOT, 'data')))
        fs.copyFileSync(path.join(ROOT, 'data', f), path.join(data, f));
    const gw = JSON.parse(fs.readFileSync(path.join(data, 'gateway.json'), 'utf8'));
    for (const p of gw.providers) if (p.provider === 'openrouter') p.baseUrl = orr.url;
    fs.writeFileSync(path.join(data, 'gateway.json'), JSON.stringify(gw));
    const engine = memoryEngine({ N8N_BASE_URL: n8n.url, N8N_API_KEY: N8N_KEY, EE_DATA_DIR: data,
                                  EXEC_WORKERS: '1' });
    try {
        engine.gateway.listen('127.0.0.1:0'); // the URL the fake workflow is given
        const ids = Object.fromEntries((await engine.catalog.sync()).added.map((a) => [a.name, a.id]));
        const key = engine.credentials.keys.add(P, { keyName: 'k', provider: 'openrouter', apiKey: CUSTOMER_KEY });
        await fetchJson(`${n8n.url}/__config`, 'POST', { holdLlm: true });
        engine.executions.workersStart();
        const xid = engine.executions.start(P, ids['LLM summary'], {
            parameters: { text: 'through the host' }, useCustomApiKey: true, apiKeyId: key.id });
        let token = null;
        for (let i = 0; i < 600 && !token; i++) {
            const g = (await fetchJson(`${n8n.url}/__gateways`)).gateways.find((x) => x.executionId === xid);
            if (g) token = g.token;
            else await new Promise((r) => setTimeout(r, 50));
        }
        assert.ok(token, 'the run did not reach its webhook');
        const request = (extra = {}) => ({
            method: 'POST', path: '/openrouter/api/v1/chat/completions', query: null,
            headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
            body: JSON.stringify({ model: 'openai/gpt-4o-mini', usage: { include: true },
                                   messages: [{ role: 'user', content: 'hello host' }], ...extra }),
        });
        // a whole answer, metered: the cost header and the provider's usage
        const pending = engine.gateway.handle(request());
        assert.ok(pending instanceof Promise);
        const a = await pending;
        assert.equal(a.status, 200, a.body.toString());
        assert.ok(a.headers.some((h) => /^x-litellm-response-cost: /i.test(h)), a.headers.join('|'));
        assert.equal(JSON.parse(a.body).usage.total_tokens, 59);
        const sent = (await fetchJson(`${orr.url}/__requests`)).requests
            .filter((r) => r.path.includes('/chat/completions'));
        assert.equal(sent.length, 1);
        assert.equal(sent[0].headers.authorization, `Bearer ${CUSTOMER_KEY}`); // never the token
        // a stream, chunk by chunk through onChunk; the head first
        const order = [];
        const s = await engine.gateway.handle(request({ stream: true }), {
            onHead: (status, headers) => { order.push(['head', status, headers.find((h) => /^content-type/i.test(h))]); },
            onChunk: (b) => { order.push(['chunk', b.toString()]); },
        });
        assert.equal(s.status, 200);
        assert.equal(s.body.length, 0); // given to onChunk, not collected
        assert.equal(order[0][0], 'head');
        assert.match(order[0][2], /text\/event-stream/);
        const text = order.slice(1).map((o) => o[1]).join('');
        assert.match(text, /data: \[DONE\]/);
        // the gateway's own refusals resolve with their status
        const bad = await engine.gateway.handle({ ...request(), headers: ['Authorization: Bearer nope'] });
        assert.equal(bad.status, 401);
        assert.equal(JSON.parse(bad.body).error.status, 'EE_EAUTH');
        // returning false stops the call: Cancelled
        await assert.rejects(engine.gateway.handle(request({ stream: true }), { onHead: () => false }),
                             (e) => e instanceof ee.Cancelled && e.code === 'EE_ECANCELLED');
        assert.throws(() => engine.gateway.handle({ method: 'POST' }), TypeError);
        await fetchJson(`${n8n.url}/__config`, 'POST', { holdLlm: false });
        const rec = await engine.executions.wait(P, xid, 30000);
        assert.equal(rec.status, 'completed', JSON.stringify(rec));
        const cost = engine.executions.cost(P, xid);
        assert.ok(cost.calls.length >= 3, JSON.stringify(cost)); // ours and the workflow's own
        assert.ok(!JSON.stringify([rec, cost, a.headers]).includes(CUSTOMER_KEY));
    } finally {
        // a held run's webhook call would keep engine.close() waiting
        await fetchJson(`${n8n.url}/__config`, 'POST', { holdLlm: false }).catch(() => {});
        engine.close();
        n8n.proc.kill();
        orr.proc.kill();
        fs.rmSync(data, { recursive: true, force: true });
    }
});

test('a streaming callback gets its chunks as Buffers it may keep (copies, NUL kept)', async () => {
    const http = require('node:http');
    const srv = http.createServer((req, res) => {
        const parts = [];
        req.on('data', (d) => parts.push(d));
        req.on('end', () => {
            res.statusCode = 201;
            res.end(Buffer.concat([Buffer.from('echo:\0'), ...parts]));
        });
    });
    await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
    const opts = ee.TransportOptions.create();
    const transport = ee.Transport.curl(opts);
    const req = ee.HttpRequest.create('POST', `http://127.0.0.1:${srv.address().port}/`);
    try {
        req.setBody(Buffer.from('payload'));
        const chunks = [];
        req.setStream((resp, chunk) => { chunks.push([resp.status(), chunk]); });
        const resp = await transport.http(req);
        assert.equal(resp.status(), 201);
        resp.close();
        // The chunks outlive the call: each is the binding's own copy, not
        // a view of the library's buffer (freed when the call ended).
        global.gc?.();
        assert.deepEqual(Buffer.concat(chunks.map((c) => c[1])), Buffer.from('echo:\0payload'));
        assert.deepEqual([...new Set(chunks.map((c) => c[0]))], [201]);
    } finally {
        req.close();
        transport.close();
        opts.close();
        srv.close();
    }
});

test('engine.email: admin templates, a results e-mail delivered by outboxRun (a Promise)', async () => {
    const n8n = await startFakeN8n();
    const smtp = await startSmtpSink();
    const engine = memoryEngine({ N8N_BASE_URL: n8n.url, N8N_API_KEY: N8N_KEY, EXEC_WORKERS: '1',
                                  SMTP_HOST: '127.0.0.1', SMTP_PORT: smtp.port,
                                  PLATFORM_FROM_EMAIL: 'results@example.com', EMAIL_POLL_MS: '0' });
    try {
        const wf = (await engine.catalog.sync()).added[0].id;
        const tpl = { workflowCatalogId: wf, subjectTemplate: '{{workflowName}} said {{results.echo}}',
                      bodyTemplate: '<p>{{results.echo}}</p>', isActive: true };
        assert.throws(() => engine.email.templatePut(P, tpl),
                      (e) => e instanceof ee.PermissionDenied && e.code === 'EE_EPERM');
        assert.equal(engine.email.templatePut(null, tpl).workflowCatalogId, wf);
        assert.equal(engine.email.templateGet(null, wf).subjectTemplate, tpl.subjectTemplate);
        assert.ok(engine.email.templateList(null, {}).data.some((t) => t.workflowCatalogId === wf));

        const rec = await engine.executions.run(P, wf, { parameters: { text: 'node-mail-1' } });
        assert.equal(rec.status, 'completed', JSON.stringify(rec));
        const queued = engine.email.sendExecution(P, rec._id, { to: 'reader@example.com' });
        assert.deepEqual([queued.executionId, queued.status], [rec._id, 'queued']);
        const running = engine.email.outboxRun(10);
        assert.ok(running instanceof Promise);
        assert.equal(Number(await running), 1);
        const got = smtp.messages().filter((t) => t.includes('node-mail-1'));
        assert.equal(got.length, 1);
        assert.ok(got[0].includes('X-Envelope-To: reader@example.com'));
        assert.ok(got[0].includes('Hosts echo said node-mail-1'));
        assert.equal(engine.executions.get(P, rec._id).emailSent, true);
        assert.equal(Number(await engine.email.outboxRun(10)), 0); // nothing sent twice
        assert.equal(engine.email.outboxStats().transport, 'smtp');
        engine.email.templateDelete(null, wf);
        assert.throws(() => engine.email.templateGet(null, wf), (e) => e instanceof ee.NotFound);
    } finally {
        engine.close();
        n8n.proc.kill();
        smtp.proc.kill();
        fs.rmSync(smtp.dir, { recursive: true, force: true });
    }
});

test('a 1,000-call loop leaves the JS heap and the native memory stable', () => {
    // In a child with --expose-gc, so that gc() is real. The native side is
    // measured with glibc's mallinfo2() (bytes in use, every arena): RSS
    // also moves with V8's pages and is only checked loosely.
    const script = `
        const ee = require(${JSON.stringify(path.join(__dirname, '..'))});
        const koffi = require(${JSON.stringify(require.resolve('koffi'))});
        let inuse = () => null;
        try {
            const MI = koffi.struct('mallinfo2_t', { arena: 'size_t', ordblks: 'size_t', smblks: 'size_t',
                hblks: 'size_t', hblkhd: 'size_t', usmblks: 'size_t', fsmblks: 'size_t',
                uordblks: 'size_t', fordblks: 'size_t', keepcost: 'size_t' });
            const mallinfo2 = koffi.load('libc.so.6').func('mallinfo2', MI, []);
            inuse = () => { const m = mallinfo2(); return Number(m.uordblks) + Number(m.hblkhd); };
        } catch (e) { /* not glibc: RSS only */ }
        const cfg = new ee.Config();
        cfg.set('EE_STORAGE_URI', 'memory:'); cfg.set('EE_COUNTERS_URI', 'memory:');
        cfg.set('API_KEY_ENCRYPTION_SECRET', ${JSON.stringify(SECRET)});
        const engine = ee.Engine.open(cfg); cfg.free();
        const p = ${JSON.stringify(P)};
        engine.catalog.create({ n8nWorkflowId: 'leak1', name: 'Leak' });
        const settle = () => new Promise((resolve) => setImmediate(resolve));
        const round = async () => {
            for (let i = 0; i < 1000; i++) {
                engine.catalog.search(p, { q: 'Leak' });
                engine.quota.usage(p);
                try { engine.catalog.get(p, 'nope', 0); } catch (e) { if (e.code !== 'EE_EINVAL') throw e; }
                ee.templates.render('{{a}}', { a: i });
                // Never closed: the FinalizationRegistry frees it.
                ee.Schema.compile({ type: 'object' });
                if (i % 10 === 0) {
                    try { await engine.executions.wait(p, 'f'.repeat(24), 10); }
                    catch (e) { if (e.code !== 'EE_ENOTFOUND') throw e; }
                }
            }
            for (let k = 0; k < 3; k++) { gc(); await settle(); }
        };
        const sample = () => ({ heap: process.memoryUsage().heapUsed, rss: process.memoryUsage().rss,
                                native: inuse() });
        (async () => {
            // Warm-up: allocator arenas (koffi's worker has its own), V8 code.
            for (let k = 0; k < 4; k++) await round();
            const a = sample();
            for (let k = 0; k < 8; k++) await round();
            const b = sample();
            engine.close();
            console.log(JSON.stringify({ heap: b.heap - a.heap, rss: b.rss - a.rss,
                                         native: a.native === null ? null : b.native - a.native }));
        })().catch((e) => { console.error(e); process.exit(1); });`;
    const r = spawnSync(process.execPath, ['--expose-gc', '-e', script],
                        { encoding: 'utf8', timeout: 240000 });
    assert.equal(r.status, 0, r.stderr);
    const { heap, rss, native } = JSON.parse(r.stdout.trim().split('\n').pop());
    if (process.env.EE_NODE_LEAK_VERBOSE) console.log({ heap, rss, native });
    // 8,000 iterations of 5 calls (and 800 async ones) after the warm-up:
    // a leak of 20 bytes a call is 800 KB; a document or a handle, far more.
    assert.ok(heap < 1024 * 1024, `JS heap grew by ${heap} bytes`);
    if (native !== null) assert.ok(native < 512 * 1024, `native memory in use grew by ${native} bytes`);
    assert.ok(rss < 16 * 1024 * 1024, `RSS grew by ${rss} bytes`);
});

test('library lookup: EXECENGINE_LIBRARY, its alias, then pkg-config and the loader', () => {
    const c = ee.native.libraryCandidates;
    assert.deepEqual(c({ EXECENGINE_LIBRARY: '/x/lib.so', EE_LIBRARY_PATH: '/y' }), ['/x/lib.so']);
    assert.deepEqual(c({ EE_LIBRARY_PATH: '/y/lib.so' }), ['/y/lib.so']);
    const plain = c({});
    assert.equal(plain[plain.length - 1], `libexecengine.so.${ee.EXPECTED_MAJOR}`);
});

test('a credential gap is a CredentialGap with its gaps (run and start)', async () => {
    // An n8n whose one workflow needs an OpenAI credential nobody provisioned.
    const http = require('node:http');
    const WF = { id: 'credGapWf00001', name: 'Needs OpenAI', active: true, isArchived: false,
        createdAt: '2026-01-01T00:00:00.000Z', updatedAt: '2026-01-01T00:00:00.000Z',
        versionId: 'v1', tags: [], settings: {},
        nodes: [
            { id: 'n1', name: 'Webhook', type: 'n8n-nodes-base.webhook', typeVersion: 2, position: [0, 0],
              parameters: { httpMethod: 'POST', path: 'ee-cred', responseMode: 'lastNode' }, webhookId: 'ee-cred' },
            { id: 'n2', name: 'AI', type: '@n8n/n8n-nodes-langchain.lmChatOpenAi', typeVersion: 1,
              position: [200, 0], parameters: {}, credentials: { openAiApi: { id: '1', name: 'OpenAI' } } },
        ],
        connections: { Webhook: { main: [[{ node: 'AI', type: 'main', index: 0 }]] } } };
    const srv = http.createServer((req, res) => {
        res.setHeader('Content-Type', 'application/json');
        if (req.url.startsWith('/api/v1/workflows/')) return res.end(JSON.stringify(WF));
        if (req.url.startsWith('/api/v1/workflows'))
            return res.end(JSON.stringify({ data: [WF], nextCursor: null }));
        res.statusCode = 404;
        return res.end('{}');
    });
    await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
    const engine = memoryEngine({ N8N_BASE_URL: `http://127.0.0.1:${srv.address().port}`, N8N_API_KEY: N8N_KEY });
    try {
        const report = await engine.catalog.sync();
        const id = report.added[0].id;
        const isGap = (e) => {
            assert.ok(e instanceof ee.CredentialGap, String(e));
            assert.equal(e.code, 'EE_ECREDENTIALS');
            assert.deepEqual(e.gaps.map((g) => g.credentialName), ['openAiApi']);
            assert.ok(!e.message.includes(N8N_KEY));
            return true;
        };
        await assert.rejects(engine.executions.run(P, id, { parameters: {} }), isGap);  // worker thread
        assert.throws(() => engine.executions.start(P, id, { parameters: {} }), isGap);  // this thread
    } finally {
        engine.close();
        srv.close();
    }
});

test('transport, n8n client, mail, counters and cost table through their classes', async () => {
    const http = require('node:http');
    const seen = [];
    const srv = http.createServer((req, res) => {
        let body = '';
        req.on('data', (d) => { body += d; });
        req.on('end', () => {
            seen.push({ method: req.method, url: req.url, body, key: req.headers['x-n8n-api-key'] });
            res.setHeader('Content-Type', 'application/json');
            if (req.url.startsWith('/api/v1/workflows'))
                return res.end(JSON.stringify({ data: [{ id: 'wfA', name: 'A', active: true, nodes: [] }],
                                                nextCursor: null }));
            res.setHeader('X-Echo', 'yes');
            return res.end(JSON.stringify({ echo: body }));
        });
    });
    await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${srv.address().port}`;
    const opts = ee.TransportOptions.create();
    const transport = ee.Transport.curl(opts);
    try {
        const req = ee.HttpRequest.create('POST', `${base}/echo`);
        req.addHeader('Content-Type', 'application/json');
        req.setBody(Buffer.from('{"n":1}'));
        req.setLimits(2000, 5000, 65536);
        const pending = transport.http(req);                 // a worker thread
        assert.ok(pending instanceof Promise);
        const resp = await pending;
        assert.ok(resp instanceof ee.HttpResponse);
        assert.equal(resp.status(), 200);
        assert.equal(resp.header('X-Echo'), 'yes');
        assert.deepEqual(JSON.parse(resp.body().toString()), { echo: '{"n":1}' });
        resp.close();
        req.close();

        const client = ee.N8n.create(transport, base, N8N_KEY);
        const list = await client.listWorkflows({});
        assert.deepEqual(list.data.map((w) => w.id), ['wfA']);
        assert.equal(seen[seen.length - 1].key, N8N_KEY);
        client.close();

        // close() during an async call on the handle waits for the call.
        const req2 = ee.HttpRequest.create('GET', `${base}/late`);
        const late = transport.http(req2);
        transport.close();
        assert.equal(transport.closed, true);
        assert.throws(() => transport.http(req2), /closed Transport/);
        const lateResp = await late;
        assert.equal(lateResp.status(), 200);
        assert.equal(transport._life.ended, true);   // freed once the call settled
        lateResp.close();
        req2.close();
    } finally {
        transport.close();
        opts.close();
        srv.close();
    }

    const mail = ee.Mail.create('smtp://127.0.0.1:2525', 'ee@example.com');
    mail.addRecipient('a@example.com');
    mail.setMessage('Subject: hi\r\n\r\nbody\r\n');
    mail.setRequireTls(true);
    assert.equal(mail.recipientCount(), 1);
    assert.equal(mail.recipientAt(0), 'a@example.com');
    assert.equal(mail.requireTls(), 1);
    assert.equal(mail.message().toString(), 'Subject: hi\r\n\r\nbody\r\n');
    mail.close();

    // A handle of the wrong class is a TypeError before any C call.
    assert.throws(() => ee.N8n.create(ee.Storage.memory(), 'http://127.0.0.1:1', 'k'),
                  (e) => e instanceof TypeError && /must be a Transport/.test(e.message));
    assert.throws(() => new ee.Storage(), TypeError);  // factories only

    const counters = ee.Counters.memory();
    assert.equal(counters.backendName(), 'memory');
    counters.close();

    const table = ee.CostTable.create();
    table.loadPrices({ data: [{ id: 'test/model', pricing: { prompt: '0.000001', completion: '0.000002' } }] });
    assert.deepEqual(table.price('test/model'), { model: 'test/model', prompt: '0.000001',
        completion: '0.000002', request: '0', promptAttoUsd: 1e12, completionAttoUsd: 2e12, requestAttoUsd: 0 });
    assert.throws(() => table.price('no/such-model'), ee.UnknownPrice);
    table.close();
});

test('library lookup for real: pkg-config libdir when no variable is set; a bad variable is an error', () => {
    const os = require('node:os');
    const lib = ee.native.libraryPath;
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ee-node-pc-'));
    try {
        fs.mkdirSync(path.join(tmp, 'lib'));
        fs.symlinkSync(fs.realpathSync(lib), path.join(tmp, 'lib', `libexecengine.so.${ee.EXPECTED_MAJOR}`));
        fs.writeFileSync(path.join(tmp, 'execengine.pc'),
            `prefix=${tmp}\nlibdir=\${prefix}/lib\nName: execengine\nDescription: x\nVersion: ${ee.version()}\nLibs: -L\${libdir} -lexecengine\n`);
        const env = { ...process.env, PKG_CONFIG_PATH: tmp, PKG_CONFIG_LIBDIR: tmp };
        delete env.EXECENGINE_LIBRARY;
        delete env.EE_LIBRARY_PATH;
        const probe = `console.log(require(${JSON.stringify(path.join(__dirname, '..'))}).native.libraryPath)`;
        const r = spawnSync(process.execPath, ['-e', probe], { env, encoding: 'utf8', timeout: 60000 });
        assert.equal(r.status, 0, r.stderr);
        assert.equal(r.stdout.trim(), path.join(tmp, 'lib', `libexecengine.so.${ee.EXPECTED_MAJOR}`));

        const bad = spawnSync(process.execPath, ['-e', probe], { encoding: 'utf8', timeout: 60000,
            env: { ...env, EXECENGINE_LIBRARY: path.join(tmp, 'nope.so') } });
        assert.notEqual(bad.status, 0);
        assert.match(bad.stderr, /LibraryError: execengine: cannot load libexecengine .*nope\.so/);
    } finally {
        fs.rmSync(tmp, { recursive: true, force: true });
    }
});

test('gateway.listen, errors.* and log.levelName through the layer', async () => {
    const engine = memoryEngine();
    try {
        const url = engine.gateway.listen('127.0.0.1:0');
        assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/gateway$/);
        // A request without a gateway token is refused by the gateway itself.
        const r = await fetch(`${url}/openrouter/api/v1/chat/completions`, { method: 'POST', body: '{}' });
        assert.ok(r.status >= 400 && r.status < 500, String(r.status));
        await r.text();
        assert.throws(() => engine.gateway.listen('127.0.0.1:0'), ee.StateError);
    } finally {
        engine.close();
    }
    // The per-thread detail of the last failing call on this thread.
    assert.throws(() => ee.templates.render('{{#if}}', {}, null), ee.ExecEngineError);
    assert.equal(ee.errors.lastStatus() < 0, true);
    assert.equal(ee.errors.last().error.name, ee.statusName(ee.errors.lastStatus()));
    ee.errors.clear();
    assert.equal(ee.errors.lastStatus(), 0);
    assert.deepEqual(ee.errors.last(), { error: null });
    assert.equal(ee.log.levelName(ee.LogLevel.WARN), 'warn');
});
