// Provision a fresh n8n for the tests (called by harness.sh):
//   node provision.mjs BASE_URL DIR FIXTURES_DIR
// 1. create the owner (REST, no browser) and log in with its cookie;
// 2. create an API key with every scope the instance offers;
// 3. import every FIXTURES_DIR/*.json through the public API: create the
//    credentials its nodes name (dummy secrets), the workflow, its tags, and
//    activate it when the fixture says "active": true;
// 4. write DIR/workflows.json (fixture file -> id, name, active, tags) and
//    DIR/n8n.env (EE_TEST_N8N_URL, EE_TEST_N8N_API_KEY, ...).
// Refuses a non-loopback BASE_URL. Exits non-zero on the first failure,
// printing the call that failed and n8n's answer (never the API key).
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, basename } from 'node:path';

const [base, dir, fixtures] = process.argv.slice(2);
if (!base || !dir || !fixtures) {
  console.error('usage: provision.mjs BASE_URL DIR FIXTURES_DIR');
  process.exit(2);
}
if (!/^http:\/\/127\.0\.0\.1:\d+$/.test(base)) {
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

const credentials = new Map(); // name -> id
async function ensureCredential(type, name) {
  if (credentials.has(name)) return credentials.get(name);
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
      ref.id = await ensureCredential(type, ref.name);
    }
  }
  const body = { name: fx.name, nodes: fx.nodes, connections: fx.connections, settings: fx.settings || {} };
  const wf = (await call('POST', '/api/v1/workflows', body, { auth: 'key' })).json;
  const tagIds = [];
  for (const t of fx.tags || []) tagIds.push({ id: await ensureTag(t) });
  if (tagIds.length) await call('PUT', `/api/v1/workflows/${wf.id}/tags`, tagIds, { auth: 'key' });
  if (fx.active) await call('POST', `/api/v1/workflows/${wf.id}/activate`, undefined, { auth: 'key' });
  return { id: wf.id, name: fx.name, active: !!fx.active, tags: fx.tags || [] };
}

async function main() {
  await setupOwner();
  await createApiKey();
  const imported = {};
  for (const f of readdirSync(fixtures).filter((f) => f.endsWith('.json')).sort()) {
    imported[basename(f, '.json')] = await importFixture(join(fixtures, f));
    console.log(`imported ${f} as ${imported[basename(f, '.json')].id}`);
  }
  writeFileSync(join(dir, 'workflows.json'), JSON.stringify(imported, null, 2) + '\n');
  const env = [
    `EE_TEST_N8N_URL=${base}`,
    `EE_TEST_N8N_API_KEY=${apiKey}`,
    `EE_TEST_N8N_WORKFLOWS=${join(dir, 'workflows.json')}`,
    `EE_TEST_N8N_OWNER_EMAIL=${OWNER.email}`,
    `EE_TEST_N8N_OWNER_PASSWORD=${OWNER.password}`,
  ];
  writeFileSync(join(dir, 'n8n.env'), env.join('\n') + '\n', { mode: 0o600 });
}

main().catch((e) => {
  console.error(`provision: ${e.message}`);
  process.exit(1);
});
