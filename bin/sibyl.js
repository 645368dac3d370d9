#!/usr/bin/env node
// The `sibyl` command of an installed package (package.json "bin"). Node refuses to strip the types of .ts files
// under node_modules, so an installed package runs the JavaScript that `npm pack` compiled into dist/
// (tsconfig.pack.json); a checkout (npm link, or this file run by hand) runs cli/sibyl.ts itself. In a checkout,
// ./sibyl at the repository's root does the same with the repository's own Node 24.
import { existsSync } from 'node:fs';

const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  process.stderr.write(`sibyl: needs Node 24 or later, this is ${process.version}. From a checkout, run ./sibyl (it uses the repository's Node 24).\n`);
  process.exit(1);
}
const compiled = new URL('../dist/cli/sibyl.js', import.meta.url);
const source = new URL('../cli/sibyl.ts', import.meta.url);
await import(existsSync(source) && !import.meta.url.includes('/node_modules/') ? source.href : compiled.href);
