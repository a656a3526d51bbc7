'use strict';
// Object lifetimes: no library object is freed while a call is inside C
// with it (an async call on a koffi worker, a synchronous call whose
// callback closes it, a handle that borrows it), callbacks live as long as
// C may call them, and the process ends cleanly with engines left open.
// The bugs these tests catch were use-after-frees (ASan: heap-use-after-
// free with the library built with -DEE_SANITIZE=address), hangs and
// crashes at exit.
const test = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');

const ee = require('..');
const { SECRET, memoryEngine, startScript } = require('./helpers');

/** A local HTTP server answering `handler(req, res)`; resolves to {srv, base}. */
async function httpServer(handler) {
    const srv = http.createServer(handler);
    await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
    return { srv, base: `http://127.0.0.1:${srv.address().port}` };
}

test('a handle given to a callback is valid for that call only', async () => {
    const { srv, base } = await httpServer((req, res) => res.end('hello'));
    const transport = ee.Transport.curl(null);
    const req = ee.HttpRequest.create('GET', `${base}/`);
    try {
        let kept = null;
        const during = [];
        req.setStream((resp) => {
            kept = resp;
            during.push(resp.status());
        });
        const resp = await transport.http(req);
        assert.equal(resp.status(), 200);
        assert.deepEqual(during, [200]);
        resp.close();
        // The stream callback's response was the library's, borrowed for
        // the callback; it was read after the call returned (freed by then).
        assert.equal(kept.closed, true);
        assert.throws(() => kept.status(), /closed HttpResponse/);
        kept.close();  // a no-op: the library frees it, not the binding
    } finally {
        req.close();
        transport.close();
        srv.close();
    }
});

const P = { workspaceId: 'ws-life', userId: 'u-1', orgId: 'org-1' };

/** An engine on memory: storage and counters whose log lines go to `lines`. */
function loggedEngine(lines) {
    const cfg = new ee.Config();
    cfg.set('EE_STORAGE_URI', 'memory:');
    cfg.set('EE_COUNTERS_URI', 'memory:');
    cfg.set('API_KEY_ENCRYPTION_SECRET', SECRET);
    cfg.setLog((l, m, msg) => lines.push(msg), 'info');
    const engine = ee.Engine.open(cfg);
    cfg.free();
    return engine;
}

test('an async call koffi refuses (its queue is full) leaves nothing pinned', async () => {
    // koffi queues at most 256 async calls (max_async_calls) and throws on
    // the next ones; the engine they were on was pinned forever, so its
    // close() never came (nor its temporary principal's).
    const linesA = [];
    const linesB = [];
    const a = loggedEngine(linesA);
    const b = loggedEngine(linesB);
    const calls = [];
    for (let i = 0; i < 300; i++) calls.push(a.executions.wait(P, 'f'.repeat(24), 10));
    const gw = b.gateway.handle({ method: 'GET', path: '/openrouter/api/v1/models' })
        .then(() => null, (e) => e);
    const results = await Promise.allSettled(calls);
    const refused = results.filter((r) => r.status === 'rejected'
                                   && /Too many asynchronous calls/.test(r.reason.message));
    assert.ok(refused.length >= 40, `${refused.length} refused`);
    assert.match(String(await gw), /Too many asynchronous calls/);
    await a.close();
    await b.close();
    assert.ok(linesA.includes('engine closed'), JSON.stringify(linesA.slice(-3)));
    assert.ok(linesB.includes('engine closed'), JSON.stringify(linesB.slice(-3)));
});

test('a handle is closed with the one it borrows: an N8n client with its Transport', async () => {
    const { srv, base } = await httpServer((req, res) => setTimeout(() => {
        res.setHeader('Content-Type', 'application/json');
        res.end(JSON.stringify({ data: [{ id: 'wfA', name: 'A', active: true, nodes: [] }], nextCursor: null }));
    }, 200));
    const transport = ee.Transport.curl(null);
    const busy = ee.N8n.create(transport, base, 'k');
    const idle = ee.N8n.create(transport, base, 'k');
    try {
        const inFlight = busy.listWorkflows({});
        // ee_n8n_new: "transport is borrowed and must outlive the client".
        // It was freed here at once, under the call in flight and under
        // the idle client's next call (ASan: heap-use-after-free in
        // ee_transport_http).
        transport.close();
        assert.equal(transport.closed, true);
        assert.equal(idle.closed, true);
        assert.throws(() => idle.listWorkflows({}), /closed N8n/);
        assert.equal(busy.closed, true);
        assert.equal(transport._life.ended, false);  // the call in flight still uses it
        assert.deepEqual((await inFlight).data.map((w) => w.id), ['wfA']);
        assert.equal(busy._life.ended, true);
        assert.equal(transport._life.ended, true);   // after the client that borrowed it
    } finally {
        busy.close();
        idle.close();
        transport.close();
        srv.close();
    }
});

test('a handle is closed with the one it borrows: a QuotaSubject with its Engine', () => {
    const engine = memoryEngine();
    const other = memoryEngine();
    try {
        const subject = ee.QuotaSubject.create(engine, P);
        engine.quota.finishTicket(engine.quota.admitFast(subject), true);
        engine.close();
        // The subject keeps the engine's quota state and counters: used
        // with another engine afterwards, it read freed memory.
        assert.equal(subject.closed, true);
        assert.throws(() => other.quota.admitFast(subject), /closed QuotaSubject/);
    } finally {
        other.close();
    }
});

test('a callback that closes the engine a synchronous call is on: freed when the call returns', async () => {
    // The clock and log callbacks run inside the engine's calls (here on
    // this thread, in quota.admit): close() there freed the engine under
    // the call (ASan: heap-use-after-free in ee__quota_org_load).
    const order = [];
    const cfg = new ee.Config();
    cfg.set('EE_STORAGE_URI', 'memory:');
    cfg.set('EE_COUNTERS_URI', 'memory:');
    cfg.set('API_KEY_ENCRYPTION_SECRET', SECRET);
    cfg.setLog((l, m, msg) => { if (msg === 'engine closed') order.push(msg); }, 'info');
    let engine = null;
    let armed = false;
    cfg.setClock(() => {
        if (armed) {
            armed = false;
            engine.close();
            order.push('close() returned');
        }
        return Date.now();
    });
    engine = ee.Engine.open(cfg);
    cfg.free();
    armed = true;
    const answer = engine.quota.admit(P, { estimatedCostNanoUsd: 0 });
    order.push('admit returned');
    assert.equal(answer.allowed, true);
    assert.equal(engine.closed, true);
    assert.throws(() => engine.nowMs(), /closed Engine/);
    await engine.close();
    // not closed inside close(), under the call, but once the call returned
    assert.deepEqual(order.filter((x) => x !== 'admit returned'), ['close() returned', 'engine closed']);
});

test('a log callback that frees the config during Engine.open: the open completes', async () => {
    // The config's callbacks were unregistered under the open, which went
    // on calling them ("Cannot use non-registered callback beyond FFI
    // call"), and the engine it had opened was lost.
    const lines = [];
    const cfg = new ee.Config();
    cfg.set('EE_STORAGE_URI', 'memory:');
    cfg.set('EE_COUNTERS_URI', 'memory:');
    cfg.set('API_KEY_ENCRYPTION_SECRET', SECRET);
    cfg.setLog((l, m, msg) => {
        lines.push(msg);
        cfg.free();
    }, 'info');
    const engine = ee.Engine.open(cfg);
    assert.equal(cfg.freed, true);
    assert.equal(typeof engine.summary().version, 'string');
    await engine.close();
    assert.ok(lines.some((l) => /engine opened/.test(l)), JSON.stringify(lines));
    assert.ok(lines.includes('engine closed'), JSON.stringify(lines));
});

// ---- the engine's own threads and the JS callbacks they call -----------------
const ENGINE_PATH = JSON.stringify(require('node:path').join(__dirname, '..'));

/** node -e `body` in a child with an engine `engine` (memory:, the fake n8n
 * at process.argv[1], `extra` options) and the principal P; {status,
 * signal, stdout, stderr}. */
function child(body, n8nUrl, extra = {}, timeout = 30000) {
    const script = `
        const ee = require(${ENGINE_PATH});
        const cfg = new ee.Config();
        for (const [k, v] of Object.entries(${JSON.stringify({
            EE_STORAGE_URI: 'memory:', EE_COUNTERS_URI: 'memory:', API_KEY_ENCRYPTION_SECRET: SECRET,
            N8N_API_KEY: 'n8n-life-key', ...extra })})) cfg.set(k, v);
        cfg.set('N8N_BASE_URL', process.argv[1]);
        const P = ${JSON.stringify(P)};
        ${body}`;
    return require('node:child_process').spawnSync(process.execPath, ['-e', script, n8nUrl],
                                                   { encoding: 'utf8', timeout });
}

test('close() while the engine\'s workers call its JS clock does not deadlock', async () => {
    // ee_engine_close() joins the engine's worker threads; a worker calling
    // the JS clock waits for this thread to run it (koffi queues the call
    // to the event loop) - this thread, blocked in the join: a close on it
    // never returned. It now runs on a koffi worker while the loop goes on.
    const n8n = await startScript('fake_n8n.py');
    try {
        for (let i = 0; i < 3; i++) {
            const r = child(`
                cfg.setClock(() => Date.now());
                const engine = ee.Engine.open(cfg);
                cfg.free();
                (async () => {
                    const wf = (await engine.catalog.sync()).added[0].id;
                    for (let i = 0; i < 5; i++) engine.executions.start(P, wf, { parameters: { text: 'x' } });
                    await new Promise((r) => setTimeout(r, 50));
                    await engine.close();
                    console.log('closed');
                })();`, n8n.url, { EXEC_WORKERS: '2' }, 20000);
            assert.equal(r.signal, null, `child killed by ${r.signal} (a hang): ${r.stderr}`);
            assert.equal(r.status, 0, r.stderr);
            assert.equal(r.stdout.trim(), 'closed');
        }
    } finally {
        n8n.proc.kill();
    }
});

test('a JS clock and log callback with running workers: synchronous calls never hang', async () => {
    // A worker read the clock (and could log) inside a storage transaction;
    // koffi queued the call to this thread, which sat in a synchronous
    // start()/list() waiting for that transaction: hung within seconds,
    // memory: and sqlite:. The library now reads the clock before the
    // transaction and delivers its log lines after it.
    const n8n = await startScript('fake_n8n.py');
    const dir = require('node:fs').mkdtempSync(require('node:path').join(require('node:os').tmpdir(), 'ee-node-'));
    try {
        for (const storage of ['memory:', `sqlite://${dir}/db.sqlite`]) {
            const r = child(`
                cfg.setClock(() => Date.now());
                cfg.setLog(() => {}, 'debug');
                const engine = ee.Engine.open(cfg);
                cfg.free();
                (async () => {
                    const wf = (await engine.catalog.sync()).added[0].id;
                    const end = Date.now() + 2000;
                    let n = 0, ok = 0;
                    while (Date.now() < end) {
                        const Q = { ...P, workspaceId: 'ws-' + (n % 50), userId: 'u-' + n };
                        try { engine.executions.start(Q, wf, { parameters: { text: 'x' } }); ok++; }
                        catch (e) { if (!['EE_ECONCURRENCY', 'EE_EQUOTA'].includes(e.code)) throw e; }
                        engine.executions.list(Q, {});
                        if (++n % 10 === 0) await new Promise((r) => setImmediate(r));
                    }
                    await engine.close();
                    console.log(ok > 0 ? 'done' : 'nothing started');
                })();`, n8n.url, { EXEC_WORKERS: '4', EE_STORAGE_URI: storage }, 30000);
            assert.equal(r.signal, null, `${storage}: child killed by ${r.signal} (a hang): ${r.stderr}`);
            assert.equal(r.status, 0, r.stderr);
            assert.equal(r.stdout.trim(), 'done', storage);
        }
    } finally {
        n8n.proc.kill();
        require('node:fs').rmSync(dir, { recursive: true, force: true });
    }
});

// ---- the process's end with engines left open ---------------------------------
/** Runs `child(body)` `times` times; the failures, as text. */
function exits(times, body, n8nUrl, extra) {
    const bad = [];
    for (let i = 0; i < times; i++) {
        const r = child(body, n8nUrl, extra);
        if (r.signal !== null || r.status !== 0 || r.stdout.trim() !== 'end')
            bad.push(`run ${i}: status ${r.status}, signal ${r.signal}, stdout ${JSON.stringify(r.stdout)}, `
                     + `stderr ${r.stderr.slice(-300)}`);
    }
    return bad;
}

test('the event loop ends cleanly with an engine left open whose workers call JS', async () => {
    // Node runs no finalizer at exit: the engine's workers went on calling
    // the JS clock into the torn-down Node (SIGABRT in
    // napi_call_threadsafe_function, 5 runs of 6). At the loop's end the
    // binding now closes the engines left open.
    const n8n = await startScript('fake_n8n.py');
    try {
        const bad = exits(5, `
            cfg.setClock(() => Date.now());
            const engine = ee.Engine.open(cfg);
            (async () => {
                const wf = (await engine.catalog.sync()).added[0].id;
                for (let i = 0; i < 8; i++) engine.executions.start(P, wf, { parameters: { text: 'x' } });
                console.log('end');
            })();`, n8n.url, { EXEC_WORKERS: '4' });
        assert.deepEqual(bad, []);
    } finally {
        n8n.proc.kill();
    }
});

test('process.exit() with an engine left open whose workers are busy exits cleanly', async () => {
    // exit() cleans up OpenSSL (atexit) while the workers still hashed with
    // it: SIGSEGV in CRYPTO_THREAD_read_lock, half of the runs. The 'exit'
    // hook now closes the engine (it has no JS callback) first.
    const n8n = await startScript('fake_n8n.py');
    try {
        const bad = exits(8, `
            const engine = ee.Engine.open(cfg);
            (async () => {
                const wf = (await engine.catalog.sync()).added[0].id;
                for (let w = 0; w < 6; w++)
                    for (let i = 0; i < 8; i++)
                        engine.executions.start({ ...P, workspaceId: 'ws-' + w }, wf, { parameters: { text: 'x' } });
                console.log('end');
                setTimeout(() => process.exit(0), 10);
            })();`, n8n.url, { EXEC_WORKERS: '8' });
        assert.deepEqual(bad, []);
    } finally {
        n8n.proc.kill();
    }
});

test('process.exit() during an async wait: the engine is not freed under the wait', async () => {
    // process.exit() waits for the async calls in flight (libuv joins its
    // threads); the exit hook must leave their engine alone - closing it
    // would wake the wait, which would return from freed memory (the
    // Python binding's bug at interpreter exit).
    const n8n = await startScript('fake_n8n.py');
    try {
        const bad = exits(2, `
            const engine = ee.Engine.open(cfg);
            (async () => {
                const wf = (await engine.catalog.sync()).added[0].id;
                const id = engine.executions.start(P, wf, { parameters: { text: 'x' } });
                engine.executions.wait(P, id, 1500).then(() => console.log('wait ended'),
                                                       (e) => console.log('wait failed:', e.code));
                await new Promise((r) => setTimeout(r, 200));
                console.log('end');
                process.exit(0);
            })();`, n8n.url, { EXEC_WORKERS: '0' });
        assert.deepEqual(bad, []);
    } finally {
        n8n.proc.kill();
    }
});
