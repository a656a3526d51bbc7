#!/usr/bin/env node
// handlebars.js as the reference for lib/notify/handlebars.c (tests only).
//   hbs-reference.js render CASES.json EXPECTED.json   write what handlebars.js renders
//   hbs-reference.js check  CASES.json EXPECTED.json   exit 1 if it differs from the file
//   hbs-reference.js bench  INPUT.json ITERATIONS       time its own render loop
// handlebars is found through NODE_PATH (tests/support/hbs-install.sh prints it).
// A case is {name, template, data, partials?}; an expectation is {output} or
// {error} (handlebars.js threw: the library must fail too). Default compile
// options (no compat mode, not strict).
'use strict';
const fs = require('fs');
const Handlebars = require('handlebars');

function renderCase(c) {
  const hb = Handlebars.create();
  for (const [name, text] of Object.entries(c.partials || {})) hb.registerPartial(name, text);
  try {
    return { output: hb.compile(c.template)(c.data) };
  } catch (e) {
    return { error: String(e.message).split('\n')[0] };
  }
}

function renderAll(casesPath) {
  const cases = JSON.parse(fs.readFileSync(casesPath, 'utf8'));
  const names = new Set();
  const out = {};
  for (const c of cases) {
    if (names.has(c.name)) throw new Error('duplicate case name: ' + c.name);
    names.add(c.name);
    out[c.name] = renderCase(c);
  }
  return { handlebars: Handlebars.VERSION, cases: out };
}

const [cmd, a, b] = process.argv.slice(2);
if (cmd === 'render') {
  fs.writeFileSync(b, JSON.stringify(renderAll(a), null, 1) + '\n');
} else if (cmd === 'check') {
  const now = renderAll(a);
  const saved = JSON.parse(fs.readFileSync(b, 'utf8'));
  let bad = 0;
  for (const name of new Set([...Object.keys(now.cases), ...Object.keys(saved.cases)])) {
    const x = now.cases[name], y = saved.cases[name];
    const same = x && y && ('error' in x) === ('error' in y) && x.output === y.output;
    if (!same) {
      bad++;
      console.log(`DIFFERS ${name}: handlebars ${Handlebars.VERSION} gives ${JSON.stringify(x)}, ` +
                  `committed ${JSON.stringify(y)}`);
    }
  }
  console.log(`${Object.keys(now.cases).length} cases, ${bad} differ (handlebars ${Handlebars.VERSION})`);
  process.exit(bad ? 1 : 0);
} else if (cmd === 'bench') {
  const input = JSON.parse(fs.readFileSync(a, 'utf8'));
  const iters = Number(b);
  for (const [name, text] of Object.entries(input.partials || {})) Handlebars.registerPartial(name, text);
  const tmpl = Handlebars.compile(input.template);
  let bytes = 0;
  for (let i = 0; i < Math.min(iters, 200); i++) bytes += tmpl(input.data).length; // warm up
  const ns = [];
  for (let i = 0; i < iters; i++) {
    const t = process.hrtime.bigint();
    bytes += tmpl(input.data).length;
    ns.push(Number(process.hrtime.bigint() - t));
  }
  ns.sort((x, y) => x - y);
  console.log(JSON.stringify({ p50: ns[Math.floor(ns.length / 2)], p99: ns[Math.floor(ns.length * 0.99)],
                               iters, bytes, output_bytes: Buffer.byteLength(tmpl(input.data)),
                               version: Handlebars.VERSION }));
} else {
  console.error('usage: hbs-reference.js render|check CASES EXPECTED | bench INPUT ITERS');
  process.exit(2);
}
