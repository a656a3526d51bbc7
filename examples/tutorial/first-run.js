// The Node part of docs/tutorial.md: run one catalog workflow through n8n.
//
//   node examples/tutorial/first-run.js [WORDS]      (default WORDS: "echo")
//
// Configuration comes from the environment (N8N_BASE_URL, N8N_API_KEY,
// API_KEY_ENCRYPTION_SECRET, EE_STORAGE_URI ...); the library from
// EXECENGINE_LIBRARY, the install prefix or the loader (docs/bindings.md).
// Prints the same lines as the C program (examples/tutorial/first-run.c).
'use strict';
const ee = require('execengine'); // npm install ./bindings/node (docs/bindings.md)

async function main(words) {
    // 1. configuration from the environment, then the engine
    const cfg = new ee.Config().loadEnv();
    const engine = ee.Engine.open(cfg);
    cfg.free(); // the engine keeps its own copy
    const who = { workspaceId: 'tutorial-ws', userId: 'tutorial-user', orgId: 'tutorial-org' };
    try {
        // 2. the catalog: every active n8n workflow becomes an entry (a Promise: it waits on n8n)
        await engine.catalog.sync();
        // 3-4. find the workflow as a customer browsing the catalog would
        const { data } = engine.catalog.search(who, { q: words, limit: 1 });
        if (data.length === 0) {
            console.error(`first-run: no workflow matches "${words}"`);
            return 1;
        }
        const entry = data[0];
        console.log(`workflow ${entry.id}: ${entry.name}`);
        // 5. run it and wait; a refusal rejects with its own error class
        let record;
        try {
            record = await engine.executions.run(who, entry.id, { parameters: { a: 2, b: 3 } });
        } catch (e) {
            if (e instanceof ee.QuotaExceeded) console.error(`first-run: over quota, retry in ${e.retryAfter} s`);
            else if (e instanceof ee.CredentialGap) console.error(`first-run: credentials missing: ${JSON.stringify(e.gaps)}`);
            else console.error(`first-run: the run failed: ${e.code}: ${e.message}`);
            return 1;
        }
        console.log(`execution ${record._id}: ${record.status}`);
        // 6. its results and its cost (0 here: no provider was called)
        console.log(`results: ${JSON.stringify(engine.executions.results(who, record._id))}`);
        console.log(`cost: ${JSON.stringify(engine.executions.cost(who, record._id))}`);
        return 0;
    } finally {
        engine.close();
    }
}

main(process.argv[2] || 'echo').then((rc) => { process.exitCode = rc; },
    (e) => { console.error(`first-run: ${e.stack || e}`); process.exitCode = 1; });
