/**
 * Builds the web console into console/dist (served by control-tower/console.ts): one esbuild bundle of
 * src/main.tsx (Preact, CodeMirror and the rest from node_modules; nothing fetched at run time), its CSS, and
 * index.html. Run by `npm start`, `npm test` and `npm run build:console`; takes about a second.
 *
 * `node console/build.ts [--watch]`
 */
import { copyFile, mkdir, rm } from 'node:fs/promises';
import { build, context, type BuildOptions } from 'esbuild';

const here = new URL('.', import.meta.url).pathname;
const out = `${here}dist`;

const options: BuildOptions = {
  entryPoints: { app: `${here}src/main.tsx` },
  outdir: out,
  bundle: true,
  format: 'esm',
  target: 'es2022',
  platform: 'browser',
  minify: true,
  sourcemap: 'linked',
  jsx: 'automatic',
  jsxImportSource: 'preact',
  legalComments: 'linked',
  logLevel: 'warning',
  define: { 'process.env.NODE_ENV': '"production"' },
};

await rm(out, { recursive: true, force: true });
await mkdir(out, { recursive: true });
await copyFile(`${here}index.html`, `${out}/index.html`);
if (process.argv.includes('--watch')) {
  await (await context(options)).watch();
} else {
  await build(options);
}
