'use strict';
/*
 * A small HTTP server embedding libexecengine through its Node binding:
 *   GET  /api/engines/catalog               the catalog (?q= searches it)
 *   POST /api/engines/execute/{workflowId}  run a workflow and wait: the record
 *   GET  /api/engines/executions/{id}       one execution
 * Engine options come from the environment (EE_STORAGE_URI, N8N_BASE_URL ...;
 * docs/configuration.md). Every request carries `Authorization: Bearer
 * $EE_NODE_SERVER_TOKEN` and acts as the workspace EE_NODE_SERVER_WORKSPACE.
 * Listens on EE_NODE_SERVER_ADDR (default 127.0.0.1:8081); syncs the catalog
 * from n8n at start; SIGTERM/SIGINT close it.
 */
const http = require('node:http');
const crypto = require('node:crypto');
let ee;
try { ee = require('execengine'); } catch (e) { ee = require('../../bindings/node'); }

const token = Buffer.from(process.env.EE_NODE_SERVER_TOKEN || '');
if (token.length < 16) throw new Error('set EE_NODE_SERVER_TOKEN (16 characters or more)');
const principal = new ee.Principal(process.env.EE_NODE_SERVER_WORKSPACE || 'demo', 'demo-user', null);
const [host, port] = (process.env.EE_NODE_SERVER_ADDR || '127.0.0.1:8081').split(':');
const cfg = new ee.Config().loadEnv();
const engine = ee.Engine.open(cfg);
cfg.free();

// As execengine-server (docs/server.md): a credential gap is 422.
const HTTP_STATUS = { EE_ENOTFOUND: 404, EE_EINVAL: 400, EE_EPARSE: 400, EE_EVALIDATION: 400,
    EE_ETOOBIG: 413, EE_EQUOTA: 429, EE_ERATELIMIT: 429, EE_ECONCURRENCY: 429, EE_ESPEND: 402,
    EE_ECREDENTIALS: 422, EE_ESTATE: 409, EE_EUPSTREAM: 502, EE_ENETWORK: 502, EE_ETIMEOUT: 504 };

function send(res, code, body, headers = {}) {
    res.writeHead(code, { 'Content-Type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
}

function authorized(req) {
    const got = Buffer.from((req.headers.authorization || '').replace(/^Bearer /, ''));
    return got.length === token.length && crypto.timingSafeEqual(got, token);
}

async function readJson(req, limit = 65536) {
    let body = '';
    for await (const chunk of req) {
        body += chunk;
        if (body.length > limit) throw Object.assign(new Error('body too large'), { code: 'EE_ETOOBIG' });
    }
    return body || '{}';   // the engine parses (and validates) it
}

async function route(req, res) {
    const url = new URL(req.url, 'http://x');
    let m;
    if (req.method === 'GET' && url.pathname === '/api/engines/catalog') {
        const q = url.searchParams.get('q');
        return send(res, 200, q ? engine.catalog.search(principal, { q }) : engine.catalog.list(principal, {}));
    }
    if (req.method === 'POST' && (m = /^\/api\/engines\/execute\/(\w+)$/.exec(url.pathname)))
        return send(res, 200, await engine.executions.run(principal, m[1], await readJson(req)));
    if (req.method === 'GET' && (m = /^\/api\/engines\/executions\/(\w+)$/.exec(url.pathname)))
        return send(res, 200, engine.executions.get(principal, m[1]));
    return send(res, 404, { error: { status: 'EE_ENOTFOUND', message: 'no such route' } });
}

const server = http.createServer((req, res) => {
    if (!authorized(req)) return send(res, 401, { error: { status: 'EE_EAUTH', message: 'bad token' } });
    route(req, res).catch((e) => {
        if (!(e instanceof ee.ExecEngineError) && e.code !== 'EE_ETOOBIG') {
            console.error(e);
            return send(res, 500, { error: { status: 'EE_ERROR', message: 'internal error' } });
        }
        const headers = e.retryAfter ? { 'Retry-After': String(e.retryAfter) } : {};
        send(res, HTTP_STATUS[e.code] || 500,
             { error: { status: e.code, message: e.message, ...(e.detail || {}) } }, headers);
    });
});

(async () => {
    if (process.env.N8N_BASE_URL) await engine.catalog.sync();
    server.listen(Number(port), host, () => console.log(`listening on http://${host}:${server.address().port}`));
})().catch((e) => { console.error(e.message); process.exit(1); });

for (const sig of ['SIGTERM', 'SIGINT'])
    process.on(sig, () => server.close(() => { engine.close(); principal.close(); }));
