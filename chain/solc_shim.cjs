#!/usr/bin/env node
// Makes npm's solc (the official compiler's emscripten build) look like a native solc binary to
// py-solc-x: answers `--version` and `--standard-json` (input on stdin, output on stdout).
// The stock `solcjs --standard-json` prints a stray line before the JSON, hence this shim.
'use strict';
const path = require('path');

const nodeModules = process.env.LIVEPROOF_NODE_MODULES || path.join(__dirname, '..', 'node_modules');
let solc;
try {
  solc = require(path.join(nodeModules, 'solc'));
} catch (err) {
  process.stderr.write(`npm package solc not found under ${nodeModules}: run \`npm ci\`\n`);
  process.exit(127);
}

const args = process.argv.slice(2);
if (args.includes('--version')) {
  process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${solc.version()}\n`);
} else if (args.includes('--standard-json')) {
  const chunks = [];
  process.stdin.on('data', (c) => chunks.push(c));
  process.stdin.on('end', () => {
    process.stdout.write(solc.compile(Buffer.concat(chunks).toString('utf8')));
  });
} else {
  process.stderr.write('usage: solc_shim.cjs --version | --standard-json < input.json\n');
  process.exit(2);
}
