'use strict';
// Shared by the test files: an engine on memory: storage and counters, and
// the fakes of tests/support.
// (node --test runs every .js under test/: this one defines no test.)
const path = require('node:path');
const { spawn } = require('node:child_process');
const readline = require('node:readline');
const ee = require('..');

const ROOT = path.join(__dirname, '..', '..', '..');
const SECRET = 'test-encryption-secret-0123456789abcdef0123';

/** An engine on memory: storage and counters, with `extra` options set. */
function memoryEngine(extra = {}) {
    const cfg = new ee.Config();
    cfg.set('EE_STORAGE_URI', 'memory:');
    cfg.set('EE_COUNTERS_URI', 'memory:');
    cfg.set('API_KEY_ENCRYPTION_SECRET', SECRET);
    for (const [k, v] of Object.entries(extra)) cfg.set(k, v);
    const engine = ee.Engine.open(cfg);
    cfg.free();
    return engine;
}

/** A tests/support script that prints "PORT <n>" once it listens:
 * {proc, url, port}. */
async function startScript(script, args = []) {
    const proc = spawn('python3', [path.join(ROOT, 'tests', 'support', script), ...args],
                       { stdio: ['ignore', 'pipe', 'ignore'] });
    const rl = readline.createInterface({ input: proc.stdout });
    const line = await new Promise((resolve, reject) => {
        rl.once('line', resolve);
        proc.once('exit', () => reject(new Error(`${script} exited`)));
    });
    rl.close();
    const m = /^PORT (\d+)/.exec(line);
    if (!m) { proc.kill(); throw new Error(`${script}: ${line}`); }
    return { proc, port: m[1], url: `http://127.0.0.1:${m[1]}` };
}

module.exports = { ROOT, SECRET, memoryEngine, startScript };
