'use strict';
// The calls over C structs (#15): the koffi struct layouts equal the C
// compiler's, and counters, the quota ticket fast path and storage queries
// work through plain JS objects against real backends.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const koffi = require('koffi');

const ee = require('..');

const ROOT = path.join(__dirname, '..', '..', '..');
const { SECRET, memoryEngine } = require('./helpers');
const P = { workspaceId: 'ws-structs', userId: 'user-s', orgId: 'org-s' };


function findCompiler() {
    for (const cc of [process.env.CC, 'cc', 'gcc', 'clang'].filter(Boolean)) {
        const r = spawnSync(cc, ['--version'], { encoding: 'utf8' });
        if (r.status === 0) return cc;
    }
    return null;
}

test('struct layouts: koffi sizes, alignments, offsets and member sizes equal C\'s', (t) => {
    const cc = findCompiler();
    if (!cc) {
        t.skip('no C compiler');
        return;
    }
    // One line per struct and per member, from koffi's view of each struct;
    // a member koffi has and the header lacks does not compile.
    const structs = ee.native.structs;
    assert.deepEqual(Object.keys(structs).sort(), ['ee_counter_req', 'ee_counter_result', 'ee_gateway_request',
        'ee_gateway_sink', 'ee_quota_ticket', 'ee_storage_eq', 'ee_storage_inc', 'ee_storage_query_spec',
        'ee_storage_row']);
    const lines = [];
    const expected = [];
    for (const [name, type] of Object.entries(structs)) {
        const info = koffi.type(type);
        lines.push(`printf("%s %zu %zu\\n", "${name}", sizeof(${name}), _Alignof(${name}));`);
        expected.push(`${name} ${koffi.sizeof(type)} ${koffi.alignof(type)}`);
        for (const [m, mem] of Object.entries(info.members)) {
            const prim = mem.type.primitive;
            const integer = /^U?Int\d+$/.test(prim);
            // Signedness too, for integers: (T)-1 < 0.
            const sign = integer ? `(int)((__typeof__(((${name} *)0)->${m}))-1 < 0)` : '2';
            lines.push(`printf("%s.%s %zu %zu %d\\n", "${name}", "${m}", offsetof(${name}, ${m}), `
                       + `sizeof(((${name} *)0)->${m}), ${sign});`);
            expected.push(`${name}.${m} ${koffi.offsetof(type, m)} ${mem.type.size} `
                          + `${integer ? (prim.startsWith('U') ? 0 : 1) : 2}`);
        }
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ee-structs-'));
    try {
        const src = path.join(dir, 'layout.c');
        fs.writeFileSync(src, `#include <stddef.h>
#include <stdio.h>
#include <execengine/counters.h>
#include <execengine/quota.h>
#include <execengine/storage.h>
#include <execengine/gateway.h>
int main(void) {
${lines.map((l) => '    ' + l).join('\n')}
    return 0;
}
`);
        const exe = path.join(dir, 'layout');
        const c = spawnSync(cc, ['-std=gnu11', '-I', path.join(ROOT, 'include'), src, '-o', exe], { encoding: 'utf8' });
        assert.equal(c.status, 0, c.stderr);
        const r = spawnSync(exe, [], { encoding: 'utf8' });
        assert.equal(r.status, 0, r.stderr);
        assert.deepEqual(r.stdout.trim().split('\n'), expected);
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
});

test('counters: reserve / get round trip, a refusal with its retry time, commit', () => {
    const c = ee.Counters.memory();
    try {
        const now = 1000;
        const req = { key: 'jobs', n: 2, limit: 3, windowMs: 500 };
        const a = c.reserve(req, 10000, now);
        assert.equal(a.granted, true);
        assert.equal(a.fits, true);
        assert.notEqual(a.resvId, 0);
        assert.equal(a.value, 2);
        assert.equal(a.limit, 3);
        assert.equal(a.windowEndMs, now + 500);
        // 2 more do not fit under 3: refused, nothing reserved, retry at the window end.
        const b = c.reserve(req, 10000, now + 1);
        assert.deepEqual(b, { granted: false, resvId: 0, value: 2, committed: 0, limit: 3,
                              windowEndMs: now + 500, retryAtMs: now + 500, fits: false });
        c.commit('jobs', a.resvId, 2, now + 2);
        assert.deepEqual(c.get('jobs', now + 3), { resvId: 0, value: 2, committed: 2, limit: 0,
                                                   windowEndMs: now + 500, retryAtMs: 0, fits: false });
        // At the retry time a new window has begun: granted.
        const d = c.reserve(req, 10000, b.retryAtMs);
        assert.equal(d.granted, true);
        assert.equal(d.value, 2);
        assert.equal(d.windowEndMs, b.retryAtMs + 500);
        // Bad input is a TypeError before any call; a bad value the library's error.
        assert.throws(() => c.reserve({ n: 1, limit: 1 }, 10, now), TypeError);
        assert.throws(() => c.reserve(req, 10), TypeError);
        assert.throws(() => c.reserve({ key: 'x', n: 0, limit: 1 }, 10, now), ee.InvalidArgument);
    } finally {
        c.close();
    }
});

test('counters: reserveMany is all or none; reserveManyLeased leases per counter', () => {
    const c = ee.Counters.memory();
    try {
        const now = 5000;
        c.reserve({ key: 'full', n: 1, limit: 1 }, 60000, now);
        // 'free' has room, 'full' does not: nothing is granted, 'free' keeps 0.
        const r = c.reserveMany([{ key: 'free', limit: 5 }, { key: 'full', limit: 1 }], 60000, now);
        assert.equal(r.granted, false);
        assert.deepEqual(r.results.map((x) => [x.fits, x.resvId]), [[true, 0], [false, 0]]);
        assert.equal(c.get('free', now).value, 0);
        // Both fit: both reserved.
        const ok = c.reserveMany([{ key: 'free', limit: 5 }, { key: 'other', n: 3, limit: 5 }], 60000, now);
        assert.equal(ok.granted, true);
        assert.ok(ok.results.every((x) => x.fits && x.resvId !== 0));
        assert.deepEqual(ok.results.map((x) => x.value), [1, 3]);
        // A lease per counter: the 10 ms one is gone after 10 ms, the other stays.
        const l = c.reserveManyLeased([{ key: 'short', limit: 1 }, { key: 'long', limit: 1 }], [10, 60000], now);
        assert.equal(l.granted, true);
        assert.equal(c.get('short', now + 20).value, 0);
        assert.equal(c.get('long', now + 20).value, 1);
        assert.throws(() => c.reserveManyLeased([{ key: 'a', limit: 1 }], [], now), TypeError);
        assert.throws(() => c.reserveMany([{ key: 'a', limit: 1 }, { key: 'a', limit: 1 }], 10, now),
                      ee.InvalidArgument);
    } finally {
        c.close();
    }
});

test('quota: admitFast + finishTicket on a memory: engine; a refusal throws with the ticket', () => {
    const engine = memoryEngine();
    try {
        engine.quota.plans.put({ name: 'one', predictionsPerPeriod: 1 });
        engine.quota.subscriptions.put({ orgId: P.orgId, plan: 'one' });
        const subject = ee.QuotaSubject.create(engine, P);
        const t = engine.quota.admitFast(subject, 0);
        assert.ok(t instanceof ee.QuotaTicket);
        assert.equal(t.buffer.length, ee.QuotaTicket.SIZE);
        assert.equal(t.admitted, true);
        assert.equal(t.refusal(), null);
        assert.equal(engine.quota.usage(P).concurrency.usage, 1);
        engine.quota.renew(t);
        // The one prediction is reserved: the next admission (a plain
        // principal this time) is refused and consumes nothing.
        const err = assert.throws(() => engine.quota.admitFast(P), ee.QuotaExceeded);
        assert.equal(err, undefined);
        try {
            engine.quota.admitFast(P);
        } catch (e) {
            assert.equal(e.code, 'EE_EQUOTA');
            assert.equal(e.detail.quota, 'predictions');
            assert.equal(e.detail.limit, 1);
            assert.ok(e.retryAfterMs > 0);
            assert.ok(e.ticket instanceof ee.QuotaTicket);
            assert.equal(e.ticket.admitted, false);
            assert.deepEqual(e.ticket.refusal(), { status: ee.Status.EE_EQUOTA, code: 'EE_EQUOTA',
                quota: 'predictions', usage: 1, limit: 1, resetsAt: e.detail.resetsAt,
                retryAfterMs: e.retryAfterMs });
            assert.throws(() => engine.quota.finishTicket(e.ticket, true, 0), ee.InvalidArgument);
        }
        assert.equal(engine.quota.usage(P).concurrency.usage, 1);
        engine.quota.finishTicket(t, true, 0);
        const u = engine.quota.usage(P);
        assert.equal(u.predictions.usage, 1);  // committed
        assert.equal(u.concurrency.usage, 0);  // slot released
        assert.throws(() => engine.quota.finishTicket(t, true, 0), ee.StateError);
        assert.throws(() => engine.quota.finishTicket({}, true, 0), TypeError);
        subject.close();
    } finally {
        engine.close();
    }
});

test('quota ticket: toJson / fromJson round trip; the rebuilt ticket finishes the run', () => {
    const engine = memoryEngine();
    try {
        const t = engine.quota.admitFast(P, 5000);
        const doc = t.toJson();
        assert.equal(doc.v, 1);
        assert.equal(doc.orgId, P.orgId);
        assert.equal(doc.estimatedCostNano, 5000);
        assert.deepEqual(doc.reservations.map((r) => r.quota).slice(0, 1), ['predictions']);
        assert.equal(JSON.stringify(t), JSON.stringify(doc));  // toJSON
        const fromObject = ee.QuotaTicket.fromJson(doc);
        const fromText = ee.QuotaTicket.fromJson(JSON.stringify(doc));
        assert.deepEqual(fromObject.toJson(), doc);
        assert.deepEqual(fromText.toJson(), doc);
        // Copying the bytes is a ticket too.
        assert.deepEqual(new ee.QuotaTicket(fromText.buffer).toJson(), doc);
        assert.equal(engine.quota.usage(P).concurrency.usage, 1);
        engine.quota.finishTicket(fromObject, false, 1000);
        assert.equal(engine.quota.usage(P).concurrency.usage, 0);
        assert.throws(() => ee.QuotaTicket.fromJson('{"v": 2}'), ee.ParseError);
        assert.throws(() => new ee.QuotaTicket().toJson(), ee.InvalidArgument);
        assert.throws(() => new ee.QuotaTicket().refusal(), ee.InvalidArgument);
        assert.throws(() => new ee.QuotaTicket(Buffer.alloc(3)), TypeError);
    } finally {
        engine.close();
    }
});

test('storage: increment upserts, count, query with eq + limit + cursor paging', () => {
    const s = ee.Storage.memory();
    try {
        const coll = 'userWorkflowUsage';
        const ws = 'ws-q';
        for (let i = 0; i < 5; i++) {
            const totals = s.increment(coll, ws, { userId: 'u1', workflowCatalogId: `wf${i}`, period: '2025-10' },
                                       { executionsCount: 1, tokensUsed: 100 * i }, 1000 + i);
            assert.deepEqual(totals, { executionsCount: 1, tokensUsed: 100 * i });
        }
        s.increment(coll, ws, { userId: 'u2', workflowCatalogId: 'wf0', period: '2025-10' }, { executionsCount: 1 }, 2000);
        // An existing document: the deltas add up.
        assert.deepEqual(s.increment(coll, ws, { userId: 'u1', workflowCatalogId: 'wf4', period: '2025-10' },
                                     { executionsCount: 2, tokensUsed: 1 }, 3000),
                         { executionsCount: 3, tokensUsed: 401 });

        assert.equal(s.count(coll, ws), 6);
        assert.equal(s.count(coll, ws, { eq: { userId: 'u1' } }), 5);
        assert.equal(s.count(coll, ws, { eq: { userId: 'u1' }, timeFrom: 1002 }), 3);
        assert.equal(s.count(coll, ws, { eq: { userId: 'u1' }, timeFrom: 1001, timeTo: 1003 }), 2);
        assert.equal(s.count(coll, 'other-ws', { eq: { userId: 'u1' } }), 0);

        // Pages of 2, oldest first: 2 + 2 + 1, the last without a cursor.
        const pages = [];
        let cursor = null;
        do {
            const page = s.query(coll, ws, { eq: { userId: 'u1' }, order: 'timeAsc', limit: 2, cursor });
            pages.push(page.rows);
            cursor = page.nextCursor;
        } while (cursor);
        assert.deepEqual(pages.map((p) => p.length), [2, 2, 1]);
        const rows = pages.flat();
        assert.deepEqual(rows.map((r) => r.time), [1000, 1001, 1002, 1003, 1004]);
        assert.equal(new Set(rows.map((r) => r.id)).size, 5);
        for (const r of rows) {
            assert.match(r.id, /^[0-9a-f]{24}$/);
            assert.ok(Buffer.isBuffer(r.data));
            assert.equal(r.data.readInt32LE(0), r.data.length);  // a whole BSON document
            assert.ok(r.data.includes('tokensUsed'));
        }
        assert.equal(rows[4].revision, 2);  // wf4 was incremented twice
        // The ids are the documents' ids.
        assert.ok(s.get(coll, ws, rows[0].id).data.equals(rows[0].data));
        // Newest first by default.
        assert.deepEqual(s.query(coll, ws, { eq: { userId: 'u1' }, limit: 1 }).rows.map((r) => r.time), [1004]);

        assert.throws(() => s.query(coll, ws, { eq: { notIndexed: 'x' } }), ee.InvalidArgument);
        assert.throws(() => s.query(coll, ws, { order: 'sideways' }), RangeError);
        assert.throws(() => s.increment(coll, ws, { userId: 'u1' }, { executionsCount: 1 }, 1), ee.InvalidArgument);
        // The row callback is registered per call and released: more calls
        // than koffi has callback slots (8192) all succeed.
        for (let i = 0; i < 8300; i++) s.query(coll, ws, { eq: { userId: 'u2' }, limit: 1 });
    } finally {
        s.close();
    }
});
