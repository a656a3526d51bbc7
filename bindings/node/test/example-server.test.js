'use strict';
// examples/node-server: started against the fake n8n, driven over HTTP.
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const readline = require('node:readline');
const { spawn } = require('node:child_process');

const ROOT = path.join(__dirname, '..', '..', '..');
const TOKEN = 'node-example-token-canary-4f2a';
const N8N_KEY = 'n8n-key-canary-node-ex-91b3';

function firstLine(proc, re) {
    const rl = readline.createInterface({ input: proc.stdout });
    return new Promise((resolve, reject) => {
        rl.on('line', (line) => {
            const m = re.exec(line);
            if (m) { rl.close(); resolve(m); }
        });
        proc.once('exit', (code) => reject(new Error(`exited (${code}) before printing ${re}`)));
    });
}

test('the example server lists the catalog, runs a workflow and shows the execution', async () => {
    // --llm: a second workflow needing an OpenRouter key, which this engine lacks
    const n8n = spawn('python3', [path.join(ROOT, 'tests', 'support', 'fake_n8n.py'), '--llm'],
                      { stdio: ['ignore', 'pipe', 'ignore'] });
    let server;
    try {
        const n8nUrl = `http://127.0.0.1:${(await firstLine(n8n, /^PORT (\d+)/))[1]}`;
        let stderr = '';
        server = spawn(process.execPath, [path.join(ROOT, 'examples', 'node-server', 'server.js')], {
            stdio: ['ignore', 'pipe', 'pipe'],
            env: { ...process.env, EE_STORAGE_URI: 'memory:', EE_COUNTERS_URI: 'memory:',
                   API_KEY_ENCRYPTION_SECRET: 'x'.repeat(48), N8N_BASE_URL: n8nUrl,
                   N8N_API_KEY: N8N_KEY, EE_NODE_SERVER_TOKEN: TOKEN,
                   EE_NODE_SERVER_ADDR: '127.0.0.1:0', EE_NODE_SERVER_WORKSPACE: 'ws-example' },
        });
        server.stderr.on('data', (d) => { stderr += d; });
        const base = (await firstLine(server, /^listening on (http:\/\/\S+)/))[1];
        const call = async (p, init = {}) => {
            const r = await fetch(base + p, { ...init,
                headers: { Authorization: `Bearer ${TOKEN}`, ...(init.headers || {}) } });
            const text = await r.text();
            assert.ok(!text.includes(TOKEN) && !text.includes(N8N_KEY), 'a secret in an answer');
            return { status: r.status, body: JSON.parse(text) };
        };

        const cat = await call('/api/engines/catalog');
        assert.equal(cat.status, 200);
        const wf = cat.body.data.find((e) => e.name === 'Hosts echo');
        assert.ok(wf, JSON.stringify(cat.body));

        const run = await call(`/api/engines/execute/${wf.id}`, { method: 'POST',
            body: JSON.stringify({ parameters: { text: 'from node' } }) });
        assert.equal(run.status, 200, JSON.stringify(run.body));
        assert.equal(run.body.status, 'completed');

        const got = await call(`/api/engines/executions/${run.body._id}`);
        assert.equal(got.status, 200);
        assert.equal(got.body._id, run.body._id);

        const missing = await call(`/api/engines/executions/${'f'.repeat(24)}`);
        assert.equal(missing.status, 404);
        assert.equal(missing.body.error.status, 'EE_ENOTFOUND');
        // a credential gap: 422 with the gaps, as execengine-server answers
        const llm = cat.body.data.find((e) => e.name === 'LLM summary');
        assert.ok(llm, JSON.stringify(cat.body));
        const gap = await call(`/api/engines/execute/${llm.id}`, { method: 'POST',
            body: JSON.stringify({ parameters: { text: 'x' } }) });
        assert.equal(gap.status, 422, JSON.stringify(gap.body));
        assert.equal(gap.body.error.status, 'EE_ECREDENTIALS');
        assert.deepEqual(gap.body.error.gaps.map((g) => g.credentialName), ['openRouterApi']);
        const anon = await fetch(`${base}/api/engines/catalog`);
        assert.equal(anon.status, 401);
        await anon.text();

        const exited = new Promise((resolve) => server.once('exit', (code) => resolve(code)));
        server.kill('SIGTERM');
        assert.equal(await exited, 0, stderr);
        server = null;
    } finally {
        if (server) server.kill('SIGKILL');
        n8n.kill();
    }
});
