// Provision a fresh n8n for the tests (called by harness.sh):
//   node provision.mjs BASE_URL DIR FIXTURES_DIR
// 1. create the owner (REST, no browser) and log in with its cookie;
// 2. create an API key with every scope the instance offers;
// 3. import every FIXTURES_DIR/*.json through the public API: create the
//    credentials its nodes name (dummy secrets), the workflow, its tags, and
//    activate it when the fixture says "active": true;
// 4. write DIR/workflows.json (fixture file -> id, name, active, tags,
//    method, path of its webhook) and DIR/n8n.env (EE_TEST_N8N_URL,
//    EE_TEST_N8N_API_KEY, ..., and per fixture EE_TEST_N8N_WF_<NAME>=<id>,
//    EE_TEST_N8N_HOOK_<NAME>=<production webhook URL>, NAME the file name
//    upper-cased with '-' as '_': EE_TEST_N8N_HOOK_EE_ECHO2).
// Refuses a non-loopback BASE_URL. Exits non-zero on the first failure,
// printing the call that failed and n8n's answer (never the API key).
//
//   N8N_API_KEY=... node provision.mjs --import-only BASE_URL DIR FIXTURES_DIR
// imports into an n8n that already has an owner (scripts/run with
// N8N_BASE_URL/N8N_API_KEY, any http(s) URL): steps 3 and 4 only, and
// DIR/n8n.env without the key and owner lines.
//
// Importing is idempotent: a workflow whose name is already in n8n is
// updated in place (PUT), not created again, and a credential or tag of the
// same name is reused; so a restart or a second run never duplicates.
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, basename } from 'node:path';

const args = process.argv.slice(2);
const importOnly = args[0] === '--import-only';
if (importOnly) args.shift();
const [rawBase, dir, fixtures] = args;
if (!rawBase || !dir || !fixtures) {
  console.error('usage: provision.mjs [--import-only] BASE_URL DIR FIXTURES_DIR');
  process.exit(2);
}
const base = rawBase.replace(/\/+$/, '');
if (importOnly) {
  if (!/^https?:\/\/[^/]+(\/.*)?$/.test(base) || !process.env.N8N_API_KEY) {
    console.error('--import-only needs an http(s) BASE_URL and N8N_API_KEY in the environment');
    process.exit(2);
  }
} else if (!/^http:\/\/127\.0\.0\.1:\d+$/.test(base)) {
  console.error(`refusing non-loopback n8n URL ${base}`);
  process.exit(2);
}

const OWNER = {
  email: 'owner@ee-test.invalid',
  firstName: 'EE',
  lastName: 'Test',
  password: 'EeTest-Owner-Passw0rd',
};
let cookie = '';
let apiKey = '';

async function call(method, path, body, { auth = 'none', ok = [200, 201] } = {}) {
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (auth === 'cookie') headers.cookie = cookie;
  if (auth === 'key') headers['x-n8n-api-key'] = apiKey;
  const res = await fetch(base + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(30000),
  });
  const text = await res.text();
  let json;
  try { json = text ? JSON.parse(text) : null; } catch { json = null; }
  if (!ok.includes(res.status)) {
    const err = new Error(`${method} ${path} -> ${res.status}: ${text.slice(0, 500)}`);
    err.status = res.status;
    throw err;
  }
  return { status: res.status, json, headers: res.headers };
}

async function setupOwner() {
  const r = await call('POST', '/rest/owner/setup', OWNER);
  const set = r.headers.getSetCookie ? r.headers.getSetCookie() : [r.headers.get('set-cookie')];
  const auth = (set || []).map((c) => c && c.split(';')[0]).find((c) => c && c.startsWith('n8n-auth='));
  if (!auth) throw new Error('owner setup returned no n8n-auth cookie');
  cookie = auth;
}

async function createApiKey() {
  const scopes = (await call('GET', '/rest/api-keys/scopes', undefined, { auth: 'cookie' })).json.data;
  const r = await call('POST', '/rest/api-keys',
    { label: 'ee-test', scopes, expiresAt: null }, { auth: 'cookie' });
  apiKey = r.json.data.rawApiKey;
  if (!apiKey) throw new Error('n8n returned no rawApiKey');
}

// Dummy data for a credential type: what the instance's schema requires.
const knownCredentialData = {
  httpHeaderAuth: { name: 'Authorization', value: 'Bearer ee-test-not-a-real-key' },
  openAiApi: { apiKey: 'ee-test-not-a-real-key', header: false },
  openRouterApi: { apiKey: 'ee-test-not-a-real-key' },
};

async function credentialData(type) {
  if (knownCredentialData[type]) return knownCredentialData[type];
  const schema = (await call('GET', `/api/v1/credentials/schema/${type}`, undefined, { auth: 'key' })).json;
  const data = {};
  for (const name of schema.required || []) {
    const t = (schema.properties[name] || {}).type;
    data[name] = t === 'boolean' ? false : t === 'number' ? 0 : 'ee-test-dummy';
  }
  return data;
}

// Credential types this n8n does not know (a community node's, such as
// serperApi): the node keeps its credential reference without an id, which
// n8n stores as it is. The catalog reads the reference to know which
// provider the workflow needs; nothing at run time uses it.
async function knownCredentialType(type) {
  if (knownCredentialData[type]) return true;
  try {
    await call('GET', `/api/v1/credentials/schema/${type}`, undefined, { auth: 'key' });
    return true;
  } catch (e) {
    if (e.status === 404 || e.status === 400) return false;
    throw e;
  }
}

const credentials = new Map(); // name -> id (null: the type is unknown here)
async function ensureCredential(type, name) {
  if (credentials.has(name)) return credentials.get(name);
  if (!(await knownCredentialType(type))) {
    credentials.set(name, null);
    return null;
  }
  const r = await call('POST', '/api/v1/credentials',
    { name, type, data: await credentialData(type) }, { auth: 'key' });
  credentials.set(name, r.json.id);
  return r.json.id;
}

const tags = new Map(); // name -> id
async function ensureTag(name) {
  if (tags.has(name)) return tags.get(name);
  const r = await call('POST', '/api/v1/tags', { name }, { auth: 'key', ok: [200, 201, 409] });
  let id = r.status === 409 ? null : r.json.id;
  if (!id) {
    const all = (await call('GET', '/api/v1/tags?limit=250', undefined, { auth: 'key' })).json.data;
    id = (all.find((t) => t.name === name) || {}).id;
  }
  if (!id) throw new Error(`could not create tag ${name}`);
  tags.set(name, id);
  return id;
}

async function importFixture(file) {
  const fx = JSON.parse(readFileSync(file, 'utf8'));
  for (const node of fx.nodes) {
    for (const [type, ref] of Object.entries(node.credentials || {})) {
      const id = await ensureCredential(type, ref.name);
      if (id) ref.id = id;
    }
  }
  const body = { name: fx.name, nodes: fx.nodes, connections: fx.connections, settings: fx.settings || {} };
  const found = (await call('GET', `/api/v1/workflows?name=${encodeURIComponent(fx.name)}&limit=250`,
    undefined, { auth: 'key' })).json.data.filter((w) => w.name === fx.name && !w.isArchived);
  let wf;
  if (found.length > 0) {
    if (found[0].active) await call('POST', `/api/v1/workflows/${found[0].id}/deactivate`, undefined, { auth: 'key' });
    wf = (await call('PUT', `/api/v1/workflows/${found[0].id}`, body, { auth: 'key' })).json;
  } else {
    wf = (await call('POST', '/api/v1/workflows', body, { auth: 'key' })).json;
  }
  const tagIds = [];
  for (const t of fx.tags || []) tagIds.push({ id: await ensureTag(t) });
  if (tagIds.length) await call('PUT', `/api/v1/workflows/${wf.id}/tags`, tagIds, { auth: 'key' });
  if (fx.active) await call('POST', `/api/v1/workflows/${wf.id}/activate`, undefined, { auth: 'key' });
  const hook = fx.nodes.find((n) => n.type === 'n8n-nodes-base.webhook' && !n.disabled);
  const trigger = hook
    ? { method: hook.parameters.httpMethod || 'GET', path: hook.parameters.path,
        url: `${base}/webhook/${hook.parameters.path}` }
    : {};
  return { id: wf.id, name: fx.name, active: !!fx.active, tags: fx.tags || [], updated: found.length > 0, ...trigger };
}

async function main() {
  if (importOnly) {
    apiKey = process.env.N8N_API_KEY;
  } else {
    await setupOwner();
    await createApiKey();
  }
  const imported = {};
  for (const f of readdirSync(fixtures).filter((f) => f.endsWith('.json')).sort()) {
    imported[basename(f, '.json')] = await importFixture(join(fixtures, f));
    const w = imported[basename(f, '.json')];
    console.log(`${w.updated ? 'updated' : 'imported'} ${f} as ${w.id}${w.path ? ` (${w.method} /webhook/${w.path})` : ''}`);
  }
  writeFileSync(join(dir, 'workflows.json'), JSON.stringify(imported, null, 2) + '\n');
  const env = [`EE_TEST_N8N_URL=${base}`];
  if (!importOnly) env.push(`EE_TEST_N8N_API_KEY=${apiKey}`);
  env.push(`EE_TEST_N8N_WORKFLOWS=${join(dir, 'workflows.json')}`);
  if (!importOnly) env.push(`EE_TEST_N8N_OWNER_EMAIL=${OWNER.email}`, `EE_TEST_N8N_OWNER_PASSWORD=${OWNER.password}`);
  for (const [name, w] of Object.entries(imported)) {
    const key = name.toUpperCase().replace(/[^A-Z0-9]/g, '_');
    env.push(`EE_TEST_N8N_WF_${key}=${w.id}`);
    if (w.url) env.push(`EE_TEST_N8N_HOOK_${key}=${w.url}`);
  }
  writeFileSync(join(dir, 'n8n.env'), env.join('\n') + '\n', { mode: 0o600 });
}

main().catch((e) => {
  console.error(`provision: ${e.message}`);
  process.exit(1);
});
