'use strict';
// Tests of the Node binding against the built library (EE_LIBRARY_PATH).
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const ee = require('..');
const { Config, Engine, ExecEngineError, native } = ee;

const SECRET = 'sk-test-Zq8w7e6r5t4y3u2i1o0p';

// Every engine needs an encryption secret (credentials are sealed with it).
const TEST_ENCRYPTION_SECRET = 'test-encryption-secret-0123456789abcdef0123';

function memoryConfig() {
    const cfg = new Config();
    cfg.set('EE_STORAGE_URI', 'memory:');
    cfg.set('EE_COUNTERS_URI', 'memory:');
    cfg.set('API_KEY_ENCRYPTION_SECRET', TEST_ENCRYPTION_SECRET);
    return cfg;
}

function captureError(fnc) {
    try {
        fnc();
    } catch (e) {
        return e;
    }
    assert.fail('expected an exception');
}

test('loaded library has the major this binding expects', () => {
    const [major, minor, patch] = ee.version().split('.').map(Number);
    assert.equal(major, ee.EXPECTED_MAJOR);
    assert.equal(ee.versionNum(), (major << 16) | (minor << 8) | patch);
    assert.equal(ee.LIBRARY_VERSION, ee.version());
});

test('features are what the library says it was built with', () => {
    const f = ee.features();
    assert.deepEqual(f.slice(0, 2), ['sqlite', 'memory']);
    assert.equal(f.join(' '), ee.native.fn.ee_version_features());
});

function loadWithManifest(mutate) {
    const m = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'manifest.json'), 'utf8'));
    mutate(m);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ee-manifest-'));
    try {
        const file = path.join(dir, 'manifest.json');
        fs.writeFileSync(file, JSON.stringify(m));
        return spawnSync(process.execPath, ['-e',
            `try { require(${JSON.stringify(path.join(__dirname, '..'))}); }
             catch (e) { console.log(e.name + ': ' + e.message); process.exit(3); }`],
        { env: { ...process.env, EE_MANIFEST_PATH: file }, encoding: 'utf8', timeout: 60000 });
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

test('a library of another major is refused at load', () => {
    const r = loadWithManifest((m) => { m.library.major = 99; });
    assert.equal(r.status, 3, r.stderr);
    assert.match(r.stdout, /LibraryError: .*needs major version 99/);
});

test('a library lacking a manifest function is refused at load', () => {
    const r = loadWithManifest((m) => {
        m.functions.push({ name: 'ee_no_such_function', returns: 'void', params: [] });
    });
    assert.equal(r.status, 3, r.stderr);
    assert.match(r.stdout, /lacks ee_no_such_function/);
});

test('status codes come from the library', () => {
    assert.equal(ee.Status.EE_OK, 0);
    assert.equal(ee.Status.EE_EINVAL, -3);
    assert.equal(ee.Status.EE_EPERM, -16);
    const codes = Object.values(ee.Status).sort((a, b) => a - b);
    assert.deepEqual(codes, Array.from({ length: codes.length }, (_, i) => codes[0] + i));
    assert.equal(ee.statusName(codes[0] - 1), 'EE_UNKNOWN_STATUS');
    assert.deepEqual(ee.LogLevel, { ERROR: 0, WARN: 1, INFO: 2, DEBUG: 3 });
    for (const f of native.manifest.functions)
        assert.equal(typeof native.fn[f.name], 'function', f.name);
});

test('config set and get', () => {
    const cfg = new Config();
    try {
        assert.equal(cfg.getInt('MAX_CONCURRENT_EXECUTIONS'), 10);
        assert.equal(cfg.isSet('MAX_CONCURRENT_EXECUTIONS'), false);
        cfg.set('MAX_CONCURRENT_EXECUTIONS', '4');
        assert.equal(cfg.getInt('MAX_CONCURRENT_EXECUTIONS'), 4);
        assert.equal(cfg.isSet('MAX_CONCURRENT_EXECUTIONS'), true);
        cfg.setInt('MAX_EXECUTIONS_PER_USER_PER_HOUR', 123);
        assert.equal(cfg.getInt('MAX_EXECUTIONS_PER_USER_PER_HOUR'), 123);
        cfg.setInt('FREE_TIER_MONTHLY_ALLOWANCE', 250000000n);
        assert.equal(cfg.getInt('FREE_TIER_MONTHLY_ALLOWANCE'), 250000000);
        cfg.set('PLATFORM_API_MARKUP_PERCENTAGE', 12.5);
        assert.equal(cfg.getInt('PLATFORM_API_MARKUP_PERCENTAGE'), 1250);
        assert.equal(cfg.getString('N8N_BASE_URL'), 'http://127.0.0.1:5678');
        cfg.set('N8N_BASE_URL', 'https://n8n.example.com');
        assert.equal(cfg.getString('N8N_BASE_URL'), 'https://n8n.example.com');
        assert.equal(cfg.getString('SMTP_HOST'), null);
        cfg.unset('MAX_CONCURRENT_EXECUTIONS');
        assert.equal(cfg.getInt('MAX_CONCURRENT_EXECUTIONS'), 10);
        assert.throws(() => cfg.setInt('MAX_CONCURRENT_EXECUTIONS', 1.5), TypeError);
        assert.throws(() => cfg.set(5, 'x'), TypeError);
    } finally {
        cfg.free();
    }
});

test('a bad value throws EE_EINVAL naming the key', () => {
    const cfg = new Config();
    cfg.set('MAX_CONCURRENT_EXECUTIONS', '4');
    const e = captureError(() => cfg.set('MAX_CONCURRENT_EXECUTIONS', 'lots'));
    assert.ok(e instanceof ExecEngineError);
    assert.equal(e.status, -3);
    assert.equal(e.code, 'EE_EINVAL');
    assert.match(e.message, /MAX_CONCURRENT_EXECUTIONS/);
    // Text that is not a number is not quoted back: it may be a password
    // set in the wrong variable. A number out of range is.
    assert.doesNotMatch(e.message, /lots/);
    const range = captureError(() => cfg.set('MAX_CONCURRENT_EXECUTIONS', '-3'));
    assert.match(range.message, /"-3"/);
    assert.equal(e.httpStatus, 0);
    assert.equal(e.detail, null);
    assert.equal(cfg.getInt('MAX_CONCURRENT_EXECUTIONS'), 4);
    const unknown = captureError(() => cfg.set('NO_SUCH_OPTION', '1'));
    assert.equal(unknown.status, ee.Status.EE_EINVAL);
    assert.match(unknown.message, /NO_SUCH_OPTION/);
    const big = captureError(() => cfg.set('OPENROUTER_APP_NAME', 'x'.repeat(5000)));
    assert.equal(big.code, 'EE_ETOOBIG');
    cfg.free();
});

test('loading the environment names a bad variable', () => {
    const cfg = new Config();
    const saved = process.env.BILLING_CYCLE_DAY;
    try {
        process.env.BILLING_CYCLE_DAY = '12';
        cfg.loadEnv();
        assert.equal(cfg.getInt('BILLING_CYCLE_DAY'), 12);
        cfg.loadEnv({ BILLING_CYCLE_DAY: '20', UNRELATED: 'x' });
        assert.equal(cfg.getInt('BILLING_CYCLE_DAY'), 20);
        const e = captureError(() => cfg.loadEnv({ BILLING_CYCLE_DAY: '31' }));
        assert.equal(e.code, 'EE_EINVAL');
        assert.match(e.message, /BILLING_CYCLE_DAY/);
    } finally {
        if (saved === undefined) delete process.env.BILLING_CYCLE_DAY;
        else process.env.BILLING_CYCLE_DAY = saved;
        cfg.free();
    }
});

test('secrets cannot be read back', () => {
    const cfg = new Config();
    cfg.set('N8N_API_KEY', SECRET);
    const e = captureError(() => cfg.getString('N8N_API_KEY'));
    assert.equal(e.status, -16);
    assert.equal(e.code, 'EE_EPERM');
    assert.match(e.message, /N8N_API_KEY/);
    assert.ok(!e.message.includes(SECRET));
    const s = cfg.summary();
    assert.deepEqual(s.N8N_API_KEY, { set: true, last4: '\u2026' + SECRET.slice(-4) });
    assert.ok(!JSON.stringify(s).includes(SECRET));
    cfg.free();
});

test('summary and options are parsed', () => {
    const cfg = new Config();
    cfg.set('MAX_CONCURRENT_EXECUTIONS', '3');
    cfg.set('FREE_TIER_MONTHLY_ALLOWANCE', '12.5');
    const s = cfg.summary();
    assert.equal(s.MAX_CONCURRENT_EXECUTIONS, 3);
    assert.equal(s.FREE_TIER_MONTHLY_ALLOWANCE.nanoUsd, 12500000000);
    const opts = Config.options();
    assert.ok(Array.isArray(opts));
    assert.deepEqual(new Set(opts.map((o) => o.name)), new Set(Object.keys(s)));
    assert.equal(opts.find((o) => o.name === 'SMTP_PASS').secret, true);
    const copy = cfg.copy();
    copy.set('MAX_CONCURRENT_EXECUTIONS', '5');
    assert.equal(cfg.getInt('MAX_CONCURRENT_EXECUTIONS'), 3);
    copy.free();
    cfg.free();
    cfg.free(); // idempotent
    assert.throws(() => cfg.summary(), /freed Config/);
});

test('engine open, summary and close', () => {
    const cfg = memoryConfig();
    const engine = Engine.open(cfg);
    cfg.free(); // the engine holds its own copy
    const s = engine.summary();
    assert.equal(s.version, ee.version());
    assert.deepEqual(s.storage, { uri: 'memory:', backend: 'memory' });
    assert.equal(s.config.EE_STORAGE_URI, 'memory:');
    engine.close();
    engine.close();
    assert.equal(engine.closed, true);
    assert.throws(() => engine.nowMs(), /closed Engine/);
});

test('a failing open carries its detail and no secret', () => {
    const password = 'pw-Secret-4711';
    const lines = [];
    const cfg = new Config();
    cfg.setLog((l, m, msg) => lines.push(msg), 'debug');
    cfg.set('EE_STORAGE_URI', 'sqlite:///proc/ee-no-such-dir/x.db');
    const io = captureError(() => Engine.open(cfg));
    assert.ok(io instanceof ExecEngineError);
    assert.equal(io.status, -9);
    assert.equal(io.code, 'EE_EIO');
    assert.match(io.message, /\/proc\/ee-no-such-dir/);
    // Nothing listens on port 1 of the loopback: refused at once.
    cfg.set('EE_STORAGE_URI', `postgres://ee:${password}@127.0.0.1:1/db`);
    assert.ok(!JSON.stringify(cfg.summary()).includes(password));
    const net = captureError(() => Engine.open(cfg));
    assert.equal(net.code, 'EE_ENETWORK');
    assert.match(net.message, /127\.0\.0\.1/);
    assert.ok(!net.message.includes(password));
    assert.ok(lines.length > 0);
    assert.deepEqual(lines.filter((m) => m.includes(password)), []);
    cfg.free();
});

test('engine works with `using`-style dispose', () => {
    const cfg = memoryConfig();
    const engine = new Engine(cfg);
    engine[Symbol.dispose]();
    cfg[Symbol.dispose]();
    assert.equal(engine.closed, true);
    assert.equal(cfg.freed, true);
});

test('log callback receives lines without secrets', async () => {
    const lines = [];
    const cfg = memoryConfig();
    cfg.set('N8N_API_KEY', SECRET);
    cfg.set('SMTP_PASS', 'hunter2-smtp-password');
    cfg.setLog((level, module, message) => lines.push({ level, module, message }), 'debug');
    const engine = Engine.open(cfg);
    cfg.free(); // the engine keeps the callback registered
    // an engine holding JS callbacks closes on a worker: its last lines
    // come once the Promise resolves
    await engine.close();
    assert.ok(lines.some((l) => /engine opened/.test(l.message)), JSON.stringify(lines));
    assert.ok(lines.some((l) => /engine closed/.test(l.message)), JSON.stringify(lines));
    for (const l of lines) {
        assert.equal(typeof l.level, 'number');
        assert.equal(typeof l.module, 'string');
        assert.ok(!l.message.includes(SECRET));
        assert.ok(!l.message.includes('hunter2-smtp-password'));
    }
});

test('log level filters lines and null turns logging off', () => {
    const lines = [];
    const cfg = memoryConfig();
    cfg.setLog((...a) => lines.push(a), 'error');
    Engine.open(cfg).close();
    assert.deepEqual(lines, []);
    cfg.setLog((...a) => lines.push(a), ee.LogLevel.INFO);
    cfg.setLog(null);
    Engine.open(cfg).close();
    assert.deepEqual(lines, []);
    assert.throws(() => cfg.setLog(() => {}, 'verbose'), RangeError);
    assert.equal(captureError(() => cfg.setLog(() => {}, 7)).code, 'EE_EINVAL');
    cfg.free();
});

test('injected clock moves ee_engine_now_ms', () => {
    let now = 1700000000000;
    const cfg = memoryConfig();
    cfg.setClock(() => now);
    const engine = Engine.open(cfg);
    assert.equal(engine.nowMs(), 1700000000000);
    now += 1500;
    assert.equal(engine.nowMs(), 1700000001500);
    engine.close();
    cfg.setClock(null);
    const real = Engine.open(cfg);
    assert.ok(Math.abs(Number(real.nowMs()) - Date.now()) < 60000);
    real.close();
    cfg.free();
});

test('summaryAsync runs on a worker and resolves to the parsed summary', async () => {
    const cfg = memoryConfig();
    cfg.setClock(() => 5);
    const engine = Engine.open(cfg);
    const [a, b] = await Promise.all([engine.summaryAsync(), engine.summaryAsync()]);
    assert.equal(a.version, ee.version());
    assert.deepEqual(a, b);
    assert.deepEqual(await cfg.summaryAsync(), cfg.summary());
    // close() while a call is in flight waits for it.
    const pending = engine.summaryAsync();
    engine.close();
    assert.equal((await pending).storage.backend, 'memory');
    assert.equal(engine.closed, true);
    await assert.rejects(engine.summaryAsync(), /closed Engine/);
    cfg.free();
});

test('an async failure carries the detail of its own error document', async () => {
    native.fn.ee_error_clear();
    const err = await native.callDocAsync('ee_config_summary_json', null).then(
        () => assert.fail('expected a rejection'), (e) => e);
    assert.ok(err instanceof ExecEngineError);
    assert.equal(err.status, -3);
    assert.equal(err.code, 'EE_EINVAL');
    assert.equal(err.message, 'ee_config_summary_json: cfg is NULL');
    assert.equal(err.httpStatus, 0);
    // The failure was recorded on koffi's worker thread, not here: the
    // detail could only have come from the document written to *out.
    assert.equal(native.fn.ee_error_last_status(), 0);
    assert.equal(native.fn.ee_error_last_message(), '');
});

// koffi dlclose()s the library when Node exits; a worker thread's
// thread-exit destructors (error detail, search scratch) must still find
// their code (the library is linked with -z nodelete, docs/bindings.md).
function asyncThenExit(calls) {
    const script = `
        const ee = require(${JSON.stringify(path.join(__dirname, '..'))});
        const cfg = new ee.Config();
        cfg.set('EE_STORAGE_URI', 'memory:');
        cfg.set('EE_COUNTERS_URI', 'memory:');
        cfg.set('API_KEY_ENCRYPTION_SECRET', ${JSON.stringify(TEST_ENCRYPTION_SECRET)});
        const engine = ee.Engine.open(cfg);
        cfg.free();
        const h = engine._handle();
        const out = [null];
        if (ee.native.fn.ee_catalog_create(h, JSON.stringify({ n8nWorkflowId: 'w1',
                name: 'Alpha report', inputSchema: { type: 'object', required: ['topic'] } }),
                out) !== 0) process.exit(5);
        const id = JSON.parse(ee.native.takeString(out[0])).id;
        (async () => {
            const seen = [];
            for (const call of ${JSON.stringify(calls)}) {
                if (call === 'fail') {
                    const e = await ee.native.callDocAsync('ee_catalog_validate_input', h, null, id, '{}')
                        .then(() => null, (err) => err);
                    seen.push(e && e.code);
                } else {
                    seen.push((await ee.native.callDocAsync('ee_catalog_search', h, null,
                                                            '{"q": "alpha"}')).total);
                }
            }
            engine.close();
            console.log(JSON.stringify(seen));
        })();`;
    return spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60000 });
}

test('the process exits cleanly after an async failing call', () => {
    const r = asyncThenExit(['fail']);
    assert.equal(r.signal, null, `child killed by ${r.signal}: ${r.stderr}`);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), ['EE_EVALIDATION']);
});

test('the process exits cleanly after an async catalog search', () => {
    const r = asyncThenExit(['search']);
    assert.equal(r.signal, null, `child killed by ${r.signal}: ${r.stderr}`);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), [1]);
});

test('the process exits cleanly after async failures and searches together', () => {
    const r = asyncThenExit(['fail', 'search', 'fail', 'search']);
    assert.equal(r.signal, null, `child killed by ${r.signal}: ${r.stderr}`);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), ['EE_EVALIDATION', 1, 'EE_EVALIDATION', 1]);
});

test('stale thread detail is not borrowed by another status', () => {
    const cfg = new Config();
    assert.throws(() => cfg.set('BILLING_CYCLE_DAY', '99'), ExecEngineError);
    const e = ExecEngineError.last(-9);
    assert.equal(e.code, 'EE_EIO');
    assert.equal(e.message, ee.strerror(-9));
    cfg.free();
});

test('unfreed handles are released by the FinalizationRegistry', () => {
    // In a child with --expose-gc: an engine that is never closed is closed
    // once collected, which its log callback observes.
    const script = `
        const ee = require(${JSON.stringify(path.join(__dirname, '..'))});
        globalThis.lines = [];
        (function () {
            const cfg = new ee.Config();
            cfg.set('EE_STORAGE_URI', 'memory:');
            cfg.set('API_KEY_ENCRYPTION_SECRET', 'test-encryption-secret-0123456789abcdef0123');
            cfg.setLog((l, m, msg) => globalThis.lines.push(msg), 'info');
            ee.Engine.open(cfg);
        })();
        (async () => {
            for (let i = 0; i < 20 && !globalThis.lines.includes('engine closed'); i++) {
                global.gc();
                await new Promise((r) => setTimeout(r, 10));
            }
            console.log(JSON.stringify(globalThis.lines));
        })();`;
    const r = spawnSync(process.execPath, ['--expose-gc', '-e', script],
                        { encoding: 'utf8', timeout: 60000 });
    assert.equal(r.status, 0, r.stderr);
    const lines = JSON.parse(r.stdout);
    assert.ok(lines.some((l) => /engine opened/.test(l)), r.stdout);
    assert.ok(lines.includes('engine closed'), r.stdout);
});
