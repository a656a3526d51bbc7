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
