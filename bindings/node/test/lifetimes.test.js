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
const { SECRET } = require('./helpers');

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
function loggedEngine(lines, extra = {}) {
    const cfg = new ee.Config();
    cfg.set('EE_STORAGE_URI', 'memory:');
    cfg.set('EE_COUNTERS_URI', 'memory:');
    cfg.set('API_KEY_ENCRYPTION_SECRET', SECRET);
    for (const [k, v] of Object.entries(extra)) cfg.set(k, v);
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
