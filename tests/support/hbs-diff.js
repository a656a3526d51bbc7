#!/usr/bin/env node
// Differential test of lib/notify/handlebars.c against handlebars.js (tests only).
//   hbs-diff.js DRIVER COUNT SEED [--minimise N] [--keep FILE]
// makes COUNT random templates, partials and data (seeded: the same SEED makes
// the same cases) from a grammar of the syntax docs/templates.md supports,
// renders each with handlebars.js and with DRIVER (tests/support/hbs_drive.c:
// JSON lines in, JSON lines out, through ee_template_render_len()), and
// compares the output, or that both failed. Each divergence is printed as a
// JSON line {t, d, p, js, c}; with --minimise the first N are shrunk first
// (characters of the template and of each partial removed while it still
// diverges). --keep FILE writes every case. Exit 1 when any case diverges.
// handlebars is found through NODE_PATH (tests/support/hbs-install.sh prints it).
'use strict';
const fs = require('fs');
const { spawnSync } = require('child_process');
const Handlebars = require('handlebars');
for (const k of ['log', 'info', 'warn', 'error', 'debug']) console[k] = () => {}; // {{log}}
const args = process.argv.slice(2);
const opt = (name) => { const i = args.indexOf(name); return i < 0 ? undefined : args.splice(i, 2)[1]; };
const minimise = Number(opt('--minimise') || 0), keep = opt('--keep');
const [driver, countArg, seedArg] = args;
if (!driver) {
  process.stderr.write('usage: hbs-diff.js DRIVER COUNT SEED [--minimise N] [--keep FILE]\n');
  process.exit(2);
}
let seed = Number(seedArg || 1) >>> 0;
function rnd() { // mulberry32
  seed = (seed + 0x6D2B79F5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const ri = n => Math.floor(rnd() * n);
const pick = a => a[ri(a.length)];
const chance = p => rnd() < p;

// ---- the grammar ----------------------------------------------------------
const KEYS = ['a', 'b', 'c', 'x', 'l', 'o', 's', 'n', '0', '1', '2', '10', '01', '-1', 'a b', 'raw', 'p', 'item', 'length', '4294967294', '4294967295'];
const STRS = ['é✓😀x', 'ab', '', 'v', 'A&B', '<i>', '"q"', "it's", '`=`', 'line\nnext', ' sp ', '0', 'false', '{{x}}', 'p', 'é✓'];
const NUMS = ['0', '1', '-1', '1.5', '3.0', '100', '1e21', '1e20', '9007199254740993', '123456789012345678901234', '1e-7', '0.1', '-0', '0.000001', '2e-7', '1.7976931348623157e308', '5e-324', '12345678901234567', '-9007199254740993', '18446744073709551615', '4.35', '1E3'];
function genData(d) {
  const r = ri(d > 2 ? 6 : 9);
  if (r === 0) return JSON.stringify(pick(STRS));
  if (r === 1) return pick(NUMS);
  if (r === 2) return pick(['true', 'false', 'null']);
  if (r === 3 || r === 6) { const n = ri(4); const a = []; for (let i = 0; i < n; i++) a.push(genData(d + 1)); return '[' + a.join(',') + ']'; }
  if (r === 4) return JSON.stringify(pick(STRS));
  const n = ri(5); const seen = new Set(); const m = [];
  for (let i = 0; i < n; i++) { const k = pick(KEYS); if (seen.has(k)) continue; seen.add(k); m.push(JSON.stringify(k) + ':' + genData(d + 1)); }
  return '{' + m.join(',') + '}';
}
function topData() {
  const m = []; const seen = new Set();
  const n = 3 + ri(6);
  for (let i = 0; i < n; i++) { const k = pick(KEYS); if (seen.has(k)) continue; seen.add(k); m.push(JSON.stringify(k) + ':' + genData(0)); }
  return '{' + m.join(',') + '}';
}

const TEXT = ['\u00a0', ' \u00a0\n', '\u2028', '\ufeff ', '', ' ', '\n', 'x', '  \n', '\n  ', '\t', '\r\n', '<b>', '\\{{a}}', '\\\\{{a}}', '{', '}', 'y z', ' \n ', '\n\n', '=', '\\'];
const SEG = ['[]', '0', 'a', 'b', 'c', 'x', 'l', 'o', 's', 'n', 'item', '[0]', '[1]', '[a b]', 'length', '0', '1', '10', 'raw', '[10]', 'p'];
function path() {
  const r = ri(20);
  if (r === 0) return pick(['this', '.', 'this.a', './a', 'this/a', 'this.[0]']);
  if (r === 1) return pick(['../', '../../']) + pick(SEG);
  if (r === 2) return '@root' + (chance(0.7) ? '.' + pick(SEG) : '');
  if (r === 3) return pick(['@index', '@key', '@first', '@last', '@../index', '@../key', '@foo', '@index.length']);
  if (r === 4) return pick(['item', 'i', 'k', 'item.a', 'v']);
  let p = pick(SEG); const n = ri(3);
  for (let i = 0; i < n; i++) p += pick(['.', '.', '/']) + pick(SEG);
  return p;
}
function literal() { return pick(['"str"', "'s q'", '1', '0', '-2', '1.5', 'true', 'false', 'null', 'undefined', '"a b"', '"0"', '""']); }
function arg(d) {
  const r = ri(10);
  if (r < 6) return path();
  if (r < 8) return literal();
  return '(' + subcall(d + 1) + ')';
}
function subcall(d) {
  const r = ri(6);
  if (r < 4 || d > 2) return 'lookup ' + arg(d + 1) + ' ' + pick([arg(d + 1), '"a"', '0', '"length"', '@index', '@key']);
  if (r === 4) return pick(['log', 'if', 'each']) + ' ' + arg(d + 1);
  return path() + (chance(0.5) ? ' ' + arg(d + 1) : '');
}
const ws = () => pick(['', '', '', ' ', '  ']);
const tl = () => chance(0.15) ? '~' : '';
function mustache(d) {
  const r = ri(14);
  let inner;
  if (r < 7) inner = path();
  else if (r < 9) inner = subcall(d);
  else if (r < 10) inner = literal();
  else if (r < 11) inner = 'log ' + arg(d);
  else if (r < 12) inner = path() + ' ' + pick(['k=1', 'a', 'x=y']);
  else inner = pick(['else', 'this', '.', 'undefined', '[a b]', 'length']);
  const f = ri(6);
  if (f === 0) return '{{' + tl() + '{' + ws() + inner + ws() + '}' + tl() + '}}';
  if (f === 1) return '{{' + tl() + '&' + ws() + inner + ws() + tl() + '}}';
  return '{{' + tl() + ws() + inner + ws() + tl() + '}}';
}
function standaloneWrap(s) {
  if (!chance(0.35)) return s;
  return pick(['\n', '\n  ', '\r\n', '\n\t']) + s + pick(['\n', '  \n', '\r\n', '']);
}
function blockParams() { return chance(0.25) ? ' as |' + pick(['item', 'item i', 'v k', 'item i extra', 'a']) + '|' : ''; }
function block(d) {
  const r = ri(12);
  let name, args = '';
  if (r < 3) { name = 'if'; args = ' ' + arg(d) + (chance(0.1) ? ' includeZero=true' : ''); }
  else if (r < 4) { name = 'unless'; args = ' ' + arg(d); }
  else if (r < 7) { name = 'each'; args = ' ' + pick(['l', 'o', 'this', 'a', 's', 'n', 'l.[0]', '../l', '@root.o', arg(d)]) + blockParams(); }
  else if (r < 9) { name = 'with'; args = ' ' + pick(['o', 'a', 'l', arg(d)]) + blockParams(); }
  else { name = pick(['a', 'b', 'l', 'o', 's', 'n', 'x', '0', 'raw']); if (chance(0.2)) args = blockParams(); }
  const inv = chance(0.15) && name !== 'if' ? '^' : '#';
  let s = standaloneWrap('{{' + tl() + inv + ws() + name + args + tl() + '}}') + seq(d + 1);
  if (chance(0.4)) {
    const er = ri(5);
    let etag;
    if (er < 2) etag = '{{' + tl() + 'else' + tl() + '}}';
    else if (er < 3) etag = '{{' + tl() + '^' + tl() + '}}';
    else etag = '{{' + tl() + 'else ' + pick(['if ', 'unless ', 'with ', 'each ']) + arg(d) + tl() + '}}';
    s += standaloneWrap(etag) + seq(d + 1);
  }
  s += standaloneWrap('{{' + tl() + '/' + name + tl() + '}}');
  return s;
}
function partialName() { return pick(['p', 'q', 'p', 'missing', '"p"', '(lookup . "p")', 'r']); }
function partial(d) {
  const r = ri(10);
  const ctx = chance(0.3) ? ' ' + pick(['o', 'l', 'a', 'this', '../o', 'l.[0]']) : '';
  const hash = chance(0.3) ? ' ' + pick(['a=1', 'x="h"', 'a=b c=l', 'k=o']) : '';
  if (r < 5) return standaloneWrap('{{' + tl() + '>' + ws() + partialName() + ctx + hash + tl() + '}}');
  if (r < 8) return standaloneWrap('{{' + tl() + '#>' + ws() + pick(['p', 'q', 'missing', 'layout', 'r']) + ctx + hash + tl() + '}}') + seq(d + 1) + standaloneWrap('{{' + tl() + '/' + 'PNAME' + tl() + '}}');
  if (r < 9) return standaloneWrap('{{' + tl() + '#*inline "' + pick(['p', 'q', 'layout', 'r', 'loc']) + '"' + tl() + '}}') + seq(d + 1) + standaloneWrap('{{' + tl() + '/inline' + tl() + '}}');
  return standaloneWrap('{{> @partial-block' + (chance(0.2) ? ' o' : '') + '}}');
}
function raw() {
  const name = pick(['raw', 'raw', 'a', 'if x', 'each l', 'nope x', 'o']);
  const head = name.split(' ')[0];
  const body = pick(['', ' {{x}} ', '{{#if}}', '\n{{a}}\n', ' {{{{raw}}}} in {{{{/raw}}}} ', '{{/raw}}', 'x']);
  return standaloneWrap('{{{{' + name + '}}}}') + body + standaloneWrap('{{{{/' + head + '}}}}');
}
function comment() { return standaloneWrap(pick(['{{! c }}', '{{!-- c }} --}}', '{{~! c ~}}', '{{!-- x --~}}', '{{!}}', '{{!--}}'])); }
function idiom(d) {
  return pick([
    () => '{{#each ' + pick(['o', 'this', 'l', 'a', '@root', 'o.o']) + '}}' + pick(['{{@key}}', '{{@index}}', '{{@key}}={{this}}', '{{#if @first}}F{{/if}}{{#if @last}}L{{/if}}', '{{@../key}}', '[{{.}}]']) + '{{/each}}',
    () => '{{#> layout' + pick(['', ' o', ' x=1', ' a']) + '}}' + pick(['{{#*inline "content"}}C{{a}}{{/inline}}', 'B{{a}}', '{{> @partial-block}}', '']) + '{{/layout}}',
    () => '{{#*inline "' + pick(['p', 'q', 'content']) + '"}}' + seq(d + 1) + '{{/inline}}' + pick(['{{> p}}', '{{> q}}', '{{> layout}}', '{{#> p}}x{{/p}}']),
    () => '{{#if @partial-block}}{{> @partial-block}}{{else}}none{{/if}}',
    () => '{{' + pick(['s', 'a', 'o.s', 'l.[0]']) + '.' + pick(['length', '[0]', '[1]', '0']) + '}}',
    () => '{{{{' + pick(['raw', 'if x', 'each l', 'with o', 'a', 'lookup o "a"']) + '}}}}' + pick([' {{a}} ', '{{{{x}}}}{{{{/x}}}}', '\n{{b}}\n']) + '{{{{/' + 'HEAD' + '}}}}',
    () => '{{#each l as |a b c|}}{{a}}{{b}}{{c}}{{/each}}',
    () => '{{> p ' + pick(['s', 'l', 'n', 'o', '"str"', '1']) + ' k=1}}',
    () => standaloneWrap('{{#> ' + pick(['p', 'q', 'missing']) + '}}') + seq(d + 1) + standaloneWrap('{{/' + 'PN' + '}}'),
    () => '{{lookup ' + pick(['l', 'o', 's', 'this']) + ' ' + pick(['1.0', '0', '-0', '"0"', '"length"', 'true', 'null', 'l', '@index']) + '}}',
  ])();
}
function element(d) {
  if (chance(0.12)) return idiom(d).replace(/\{\{\{\{([a-z]+)([^}]*)\}\}\}\}([\s\S]*?)\{\{\{\{\/HEAD\}\}\}\}/, (m, h, r, b) => '{{{{' + h + r + '}}}}' + b + '{{{{/' + h + '}}}}').replace(/\{\{#> (p|q|missing)\}\}([\s\S]*)\{\{\/PN\}\}/, (m, n, b) => '{{#> ' + n + '}}' + b + '{{/' + n + '}}');
  const r = ri(d > 3 ? 8 : 20);
  if (r < 3) return pick(TEXT);
  if (r < 7) return mustache(d);
  if (r < 8) return comment();
  if (r < 13) return block(d);
  if (r < 16) return partial(d);
  if (r < 17) return raw();
  if (r < 18) return chance(0.5) ? '{{' + pick(['else', '^', '/x', '#', '>', '{x}', '*dec', '=', '{{x']) + '}}' : pick(['{{', '}}', '{{x', '{{{x}}', '{{{{', '[a', '{{"a}}', '{{#if}}']);
  return pick(TEXT) + mustache(d);
}
function seq(d) {
  const n = ri(d > 3 ? 2 : 4) + (d === 0 ? 1 : 0);
  let s = '';
  for (let i = 0; i < n; i++) s += element(d);
  return s;
}
function fixClose(t) {
  // give partial blocks a matching close tag for their own name (most of the time)
  return t.replace(/\{\{(~?)#>(\s*)([a-z]+)([^}]*)\}\}([\s\S]*?)\{\{(~?)\/PNAME(~?)\}\}/g,
    (m, a, w, n, rest, body, b, c) => '{{' + a + '#>' + w + n + rest + '}}' + body + '{{' + b + '/' + (chance(0.9) ? n : 'zz') + c + '}}').replace(/PNAME/g, 'p');
}
function genCase() {
  const t = fixClose(seq(0));
  const partials = {};
  if (chance(0.8)) partials.p = fixClose(chance(0.3) ? pick(['{{> @partial-block}}', '[{{> @partial-block}}]', '{{a}}{{> @partial-block}}{{b}}']) : seq(2));
  if (chance(0.4)) partials.q = fixClose(seq(3));
  if (chance(0.3)) partials.layout = pick(['<{{> @partial-block}}>', '{{#> p}}{{> @partial-block}}{{/p}}', '{{> content}}', 'L{{x}}']);
  return { t, d: topData(), p: JSON.stringify(partials) };
}

// ---- rendering both ways ----------------------------------------------------
function renderJs(c) {
  const hb = Handlebars.create();
  for (const [n, x] of Object.entries(JSON.parse(c.p))) hb.registerPartial(n, x);
  try {
    return { o: hb.compile(c.t)(JSON.parse(c.d)) };
  } catch (e) {
    return { e: String(e.message).split('\n')[0] };
  }
}
let driverFailed = false;
function renderC(list) {
  const r = spawnSync(driver, [], { input: list.map(c => JSON.stringify(c)).join('\n') + '\n', maxBuffer: 1 << 30 });
  if (r.stderr && r.stderr.length) process.stderr.write(r.stderr); // sanitizer reports
  if (r.status !== 0) driverFailed = true;
  const lines = r.stdout.toString().split('\n');
  return list.map((c, i) => {
    try { return JSON.parse(lines[i]); } catch (e) { return { e: 'driver died: ' + (r.signal || r.status) }; }
  });
}
function differs(c, cr, js = renderJs(c)) { return ('e' in js) ? !('e' in cr) : cr.o !== js.o; }
function anyDiffer(list) { const rs = renderC(list); return list.map((c, i) => differs(c, rs[i])); }

// Remove runs of characters (halving the run length) while the case diverges.
function shrinkText(c, get, set) {
  let s = get(c);
  for (let n = Math.max(1, s.length >> 1); n >= 1; n >>= 1) {
    for (let changed = true; changed;) {
      changed = false;
      const cands = [...new Set(Array.from({ length: Math.max(0, s.length - n + 1) }, (_, i) => s.slice(0, i) + s.slice(i + n)))];
      for (let k = 0; k < cands.length && !changed; k += 200) {
        const chunk = cands.slice(k, k + 200).map(x => set(c, x));
        const hit = anyDiffer(chunk).indexOf(true);
        if (hit >= 0) { c = chunk[hit]; s = get(c); changed = true; }
      }
    }
  }
  return c;
}
function shrink(c) {
  const T = [x => x.t, (x, v) => Object.assign({}, x, { t: v })];
  c = shrinkText(c, ...T);
  for (const name of Object.keys(JSON.parse(c.p))) {
    const without = JSON.parse(c.p);
    delete without[name];
    const c2 = Object.assign({}, c, { p: JSON.stringify(without) });
    if (anyDiffer([c2])[0]) { c = c2; continue; }
    c = shrinkText(c, x => JSON.parse(x.p)[name],
      (x, v) => Object.assign({}, x, { p: JSON.stringify(Object.assign(JSON.parse(x.p), { [name]: v })) }));
  }
  return shrinkText(c, ...T);
}

const count = Number(countArg || 1000);
const cases = [];
for (let i = 0; i < count; i++) cases.push(genCase());
if (keep) fs.writeFileSync(keep, cases.map(c => JSON.stringify(c)).join('\n') + '\n');
const results = renderC(cases);
let bad = 0;
for (let i = 0; i < count; i++) {
  let c = cases[i];
  if (!differs(c, results[i])) continue;
  if (bad++ < minimise) c = shrink(c);
  const js = renderJs(c), cr = renderC([c])[0];
  process.stdout.write(JSON.stringify({ t: c.t, d: c.d, p: c.p, js, c: cr }) + '\n');
}
process.stdout.write(`${count} cases, ${count - bad} passed, ${bad} failed (seed ${seedArg || 1})\n`);
if (driverFailed) process.stdout.write('the driver exited with an error (see its report above)\n');
process.exit(bad || driverFailed ? 1 : 0);
