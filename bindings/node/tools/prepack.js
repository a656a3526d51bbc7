#!/usr/bin/env node
'use strict';
/*
 * npm pack / npm publish: the package must carry the API description it is
 * generated from. In the source tree it is ../manifest.json (one file for
 * every binding); "copy" (prepack) puts a real copy - not a link - next to
 * index.js, "clean" (postpack) removes it again so that the tree keeps one
 * manifest. index.js reads ./manifest.json first, then ../manifest.json.
 */
const fs = require('fs');
const path = require('path');

const here = path.join(__dirname, '..');
const copy = path.join(here, 'manifest.json');
const source = path.join(here, '..', 'manifest.json');

const cmd = process.argv[2];
if (cmd === 'copy') {
    if (!fs.existsSync(source)) {
        // Packing an unpacked package again: its copy is already there.
        if (fs.existsSync(copy)) process.exit(0);
        console.error(`prepack: ${source} not found`);
        process.exit(1);
    }
    // Written aside and renamed: a reader never sees half a file.
    const tmp = `${copy}.${process.pid}.tmp`;
    fs.copyFileSync(source, tmp);
    fs.renameSync(tmp, copy);
} else if (cmd === 'clean') {
    if (fs.existsSync(source)) fs.rmSync(copy, { force: true });
} else {
    console.error('usage: prepack.js copy|clean');
    process.exit(2);
}
