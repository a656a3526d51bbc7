'use strict';
// Shared by the test files: an engine on memory: storage and counters.
// (node --test runs every .js under test/: this one defines no test.)
const ee = require('..');

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

module.exports = { SECRET, memoryEngine };
