'use strict';
// Packaging: `npm pack` carries manifest.json (a real file), the tarball
// installs into a fresh project (koffi from npm's cache, else the registry)
// and loads; `npm install <dir>` works too; index.d.ts is up to date and
// declares every binding.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const ee = require('..');

const PKG = path.join(__dirname, '..');

function run(cmd, args, cwd) {
    const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: 240000,
        env: { ...process.env, npm_config_update_notifier: 'false' } });
    assert.equal(r.status, 0, `${cmd} ${args.join(' ')}: ${r.stdout}\n${r.stderr}`);
    return r.stdout;
}

function npmInstall(app, spec) {
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
    const base = ['install', '--no-audit', '--no-fund', '--ignore-scripts', spec];
    const offline = spawnSync('npm', [...base, '--offline'], { cwd: app, encoding: 'utf8', timeout: 240000 });
    if (offline.status !== 0) run('npm', base, app);
}

const probe = `const ee = require('execengine');
    const fs = require('fs');
    console.log(JSON.stringify({ version: ee.version(), where: require.resolve('execengine'),
        functions: ee.native.manifest.functions.length,
        render: ee.templates.render('{{a}}', { a: 'ok' }) }));`;

test('npm pack carries manifest.json and the tarball installs and loads', () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ee-node-pack-'));
    try {
        // Packed from a copy laid out like the source tree, so that packing
        // never writes into the tree another test run may be reading.
        const src = path.join(tmp, 'bindings', 'node');
        fs.mkdirSync(src, { recursive: true });
        for (const f of ['index.js', 'index.d.ts', 'package.json', 'README.md', 'lib', 'tools'])
            fs.cpSync(path.join(PKG, f), path.join(src, f), { recursive: true });
        fs.copyFileSync(path.join(PKG, '..', 'manifest.json'), path.join(tmp, 'bindings', 'manifest.json'));
        const out = run('npm', ['pack', '--json', '--pack-destination', tmp], src);
        const info = JSON.parse(out.slice(out.indexOf('[')))[0];
        const files = info.files.map((f) => f.path);
        for (const f of ['index.js', 'index.d.ts', 'lib/mapping.js', 'manifest.json', 'package.json', 'README.md'])
            assert.ok(files.includes(f), `${f} missing from the tarball: ${files.join(', ')}`);
        // postpack left the tree with its single manifest.
        assert.equal(fs.existsSync(path.join(src, 'manifest.json')), false);

        const app = path.join(tmp, 'app');
        fs.mkdirSync(app);
        npmInstall(app, path.join(tmp, info.filename));
        const installed = path.join(app, 'node_modules', 'execengine', 'manifest.json');
        assert.ok(fs.lstatSync(installed).isFile(), 'manifest.json is a regular file');
        const got = JSON.parse(run(process.execPath, ['-e', probe], app).trim());
        assert.equal(got.version, ee.version());
        assert.equal(got.functions, ee.native.manifest.functions.length);
        assert.equal(got.render, 'ok');
        assert.ok(got.where.startsWith(app), got.where);
    } finally {
        fs.rmSync(tmp, { recursive: true, force: true });
    }
});

test('npm install <directory> works', () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ee-node-dir-'));
    try {
        npmInstall(tmp, PKG);
        const got = JSON.parse(run(process.execPath, ['-e', probe], tmp).trim());
        assert.equal(got.version, ee.version());
    } finally {
        fs.rmSync(tmp, { recursive: true, force: true });
    }
});

test('index.d.ts is up to date with the manifest', () => {
    const r = spawnSync(process.execPath, [path.join(PKG, 'tools', 'gen-dts.js'), '--check'],
                        { encoding: 'utf8', timeout: 60000 });
    assert.equal(r.status, 0, r.stderr);
});

test('index.d.ts declares every binding and every error class', () => {
    const dts = fs.readFileSync(path.join(PKG, 'index.d.ts'), 'utf8');
    const missing = [];
    for (const d of ee.bindings) {
        if (d.kind === 'native' || d.kind === 'constructor') continue;
        const method = d.path.split(/[#.]/).pop();
        if (!new RegExp(`\\b${method}\\(`).test(dts)) missing.push(`${d.name} (${d.path})`);
    }
    for (const name of Object.keys(ee.errors))
        if (typeof ee.errors[name] === 'function' && ee.errors[name].prototype instanceof ee.ExecEngineError
            && !dts.includes(`class ${name} `)) missing.push(name);
    assert.deepEqual(missing, []);
});
