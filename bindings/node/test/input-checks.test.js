'use strict';
// Hostile input at the binding's door: a value that cannot cross into C as
// given is refused naming its argument - never cut at a NUL (koffi hands C
// the string up to it), never a lone surrogate turned into U+FFFD, never an
// integer wrapped to its low bits (2n ** 64n was 0) or a NaN made 0, never a
// number or an object turned into text.
const test = require('node:test');
const assert = require('node:assert/strict');

const ee = require('..');

const { SECRET, memoryEngine } = require('./helpers');


/** fn() throws InvalidArgument whose message names `what`. */
function refused(fn, what) {
    assert.throws(fn, (e) => {
        assert.ok(e instanceof ee.InvalidArgument, `${e && e.constructor.name}: ${e && e.message}`);
        assert.equal(e.code, 'EE_EINVAL');
        assert.ok(e.message.includes(what), e.message);
        return true;
    });
}

test('a NUL in a string argument is refused, not cut', () => {
    refused(() => ee.Principal.create('ws-1\0evil', 'u-1', null), 'workspace_id');
    refused(() => ee.Principal.from({ workspaceId: 'ws-1\0evil', userId: 'u' }), 'workspace_id');
    refused(() => ee.templates.render('Hi {{name}}\0 secret-tail', { name: 'x' }), 'template');
    const engine = memoryEngine();
    try {
        const me = { workspaceId: 'ws-1', userId: 'u-1' };
        refused(() => engine.catalog.get(me, '0123456789abcdef01234567\0zz'), 'id');
        refused(() => engine.catalog.search(me, '{"q": "a"}\0{"q": "b"}'), 'query');
        // the engine is fine after the refusals
        assert.equal(engine.catalog.search(me, { q: 'a' }).total, 0);
    } finally {
        engine.close();
    }
});

test('lone surrogates and non-strings are refused, not coerced', () => {
    refused(() => ee.Principal.create('ws-\udc80', 'u', null), 'workspace_id');
    assert.throws(() => ee.Principal.create(5, 'u', null), TypeError);
    assert.throws(() => ee.Principal.create({}, 'u', null), TypeError);
    assert.equal(ee.Principal.create('ws-2', 'u', null).workspace(), 'ws-2');
});

test('JSON documents: NaN is not JSON (was null), BigInt and functions are type errors', () => {
    const engine = memoryEngine();
    try {
        const me = { workspaceId: 'ws-1', userId: 'u-1' };
        refused(() => engine.catalog.search(me, { q: 'a', limit: NaN }), 'query');
        assert.throws(() => engine.catalog.search(me, { limit: 1n }), /query/);
        assert.throws(() => engine.catalog.search(me, () => 1), TypeError);
    } finally {
        engine.close();
    }
});

test('integers out of range, NaN and fractions are refused, not wrapped', () => {
    const engine = memoryEngine();
    try {
        // each of these used to reach C as before_ms 0: purge by the retention period
        refused(() => engine.audit.purge(2n ** 64n), 'before_ms');
        refused(() => engine.audit.purge(NaN), 'before_ms');
        refused(() => engine.audit.purge(1.5), 'before_ms');
        assert.throws(() => engine.audit.purge('1'), TypeError);
        assert.equal(engine.audit.purge(1), 0);
    } finally {
        engine.close();
    }
});

test('Config: NUL, surrogates, int64 range, loadEnv values', () => {
    const cfg = new ee.Config();
    try {
        refused(() => cfg.set('EE_STORAGE_URI', 'memory:\0sqlite:///elsewhere'), 'EE_STORAGE_URI');
        refused(() => cfg.set('EE_STORAGE_URI\0X', 'memory:'), 'key');
        refused(() => cfg.set('N8N_API_KEY', 'abc\udc80'), 'N8N_API_KEY');
        refused(() => cfg.setInt('MAX_CONCURRENT_EXECUTIONS', 2n ** 64n + 4n), 'MAX_CONCURRENT_EXECUTIONS');
        refused(() => cfg.loadEnv({ EE_STORAGE_URI: 'memory:\0x' }), 'EE_STORAGE_URI');
        refused(() => cfg.loadEnv({ 'EE_STORAGE_URI=memory:': 'x' }), 'environment name');
        assert.throws(() => cfg.loadEnv({ EE_STORAGE_URI: undefined }), TypeError);  // was "undefined"
        assert.equal(cfg.isSet('EE_STORAGE_URI'), false);
        cfg.loadEnv({ EE_STORAGE_URI: 'memory:', MAX_CONCURRENT_EXECUTIONS: 3 });
        assert.equal(cfg.getString('EE_STORAGE_URI'), 'memory:');
        assert.equal(cfg.getInt('MAX_CONCURRENT_EXECUTIONS'), 3);
    } finally {
        cfg.free();
    }
});

test('a log level is an integer in range (koffi made 2 of 2.9 and of 2 ** 32 + 2)', () => {
    const cfg = new ee.Config();
    try {
        refused(() => cfg.setLog(() => {}, 2 ** 32 + 2), 'level');
        refused(() => cfg.setLog(() => {}, 2.9), 'level');
        refused(() => cfg.setLog(() => {}, NaN), 'level');
        cfg.setLog(() => {}, ee.LogLevel.WARN).setLog(() => {}, 'debug');
    } finally {
        cfg.free();
    }
});

test('a refused secret is not echoed', () => {
    const cfg = new ee.Config();
    try {
        assert.throws(() => cfg.set('API_KEY_ENCRYPTION_SECRET', 'canary-\0-0123456789abcdef0123456789'),
                      (e) => !e.message.includes('canary'));
    } finally {
        cfg.free();
    }
});

test('struct calls: strings and int64 fields', async () => {
    const c = ee.Counters.memory();
    try {
        refused(() => c.reserve({ key: 'k\0other', limit: 5 }, 0, 1), 'request.key');
        refused(() => c.reserve({ key: 'k', limit: 2n ** 64n + 5n }, 0, 1), 'request.limit');
        refused(() => c.get('k\0other', 1), 'key');
        assert.equal(c.reserve({ key: 'k', limit: 5 }, 1000, 1).granted, true);
    } finally {
        c.close();
    }
    const engine = memoryEngine();
    try {
        refused(() => engine.gateway.handle({ method: 'GET', path: '/x\0/y' }), 'request.path');
        refused(() => engine.gateway.handle({ method: 'GET', path: '/x', headers: ['Authorization: Bearer a\0b'] }),
                'request.headers[0]');
    } finally {
        engine.close();
    }
});

test('a handle closed while an async call uses it is freed when the call settles', async () => {
    const engine = memoryEngine();
    try {
        const p = ee.Principal.create('ws-1', 'u-1', null);
        const pending = engine.executions.wait(p, '0123456789abcdef01234567', 500)
            .then(() => 'resolved', (e) => e.code);
        p.close();  // freed under the worker before: it read garbage (EE_EINVAL)
        assert.equal(p.closed, true);
        assert.throws(() => p.workspace(), /closed/);
        // reuse the freed memory meanwhile
        for (let i = 0; i < 2000; i++) ee.Principal.create(`zz-${i}`, `uu-${i}`, null).close();
        assert.equal(await pending, 'EE_ENOTFOUND');
        p.close();  // idempotent
    } finally {
        engine.close();
    }
    const cfg = new ee.Config();
    cfg.set('N8N_API_KEY', 'n8n-key-0123456789');
    const summary = cfg.summaryAsync();
    cfg.free();
    assert.equal(cfg.freed, true);
    assert.throws(() => cfg.summary(), /freed/);
    assert.equal((await summary).N8N_API_KEY.set, true);
});

test('a clock returning something else than int64 ms falls back to the system clock', () => {
    const warnings = [];
    const onWarning = (w) => warnings.push(String(w.message));
    process.on('warning', onWarning);
    try {
        for (const bad of [() => 'abc', () => 2n ** 70n, () => NaN, () => undefined]) {
            const cfg = new ee.Config();
            cfg.set('EE_STORAGE_URI', 'memory:');
            cfg.set('API_KEY_ENCRYPTION_SECRET', SECRET);
            cfg.setClock(bad);
            // koffi threw "Unexpected String value" out of Engine.open (the engine leaked)
            const engine = ee.Engine.open(cfg);
            try {
                assert.ok(Math.abs(Number(engine.nowMs()) - Date.now()) < 60000);
            } finally {
                engine.close();
                cfg.free();
            }
        }
    } finally {
        process.off('warning', onWarning);
    }
});
