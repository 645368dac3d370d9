#!/usr/bin/env node
/**
 * `npm run package:lambda [-- --models DIR | --no-models] [--out DIR]`: the Lambda function as a deployment zip for
 * the managed `nodejs24.x` runtime on x86_64 (handler `index.handler`, or `index.streaming` for a function URL in
 * RESPONSE_STREAM mode). Writes `{out}/function/` (default .build/lambda) and `{out}/sibyl-lambda.zip`:
 *
 *   index.mjs                 sets the cold-start mark, then imports handler.mjs (lambda/handler.ts)
 *   handler.mjs, *-HASH.mjs   esbuild's ESM bundle of the function, split: code behind a dynamic import (the ONNX
 *                             and rules runtimes, Kafka, Redis, S3, the tower client) loads only when used
 *   onnx-worker.mjs           the ONNX worker thread (big batches), sandbox-process.mjs the rules sandbox process,
 *                             kafka-producer-worker.mjs the prediction log's Kafka client thread
 *   node_modules/             what cannot be bundled: onnxruntime-node (its Linux x64 binaries only),
 *                             onnxruntime-common, isolated-vm (its Linux x64 glibc prebuild for Node 24 only),
 *                             node-gyp-build, acorn (resolved by path for the sandbox), @platformatic/wasm-utils
 *                             (reads its .wasm beside itself) and @platformatic/dynamic-buffer
 *   bundles/, features.jsonl  the models directory as packaged bundles (packaged-source.ts) and the feature seed
 *
 * Fails when the zip is over Lambda's 50 MB direct-upload limit or the unpacked function over 250 MB.
 */
import { build, type Plugin } from 'esbuild';
import { cp, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ZipFile } from 'yazl';
import { packageBundles } from './package-bundles.ts';

/** Lambda's limits for a .zip deployment package (AWS Lambda quotas). */
export const ZIP_LIMIT_BYTES = 50 * 1024 * 1024;
export const UNZIPPED_LIMIT_BYTES = 250 * 1024 * 1024;

const ROOT = resolve(import.meta.dirname, '../..');

export interface PackageOptions {
  /** Models directory to package as bundles; undefined for a function that follows a tower. */
  readonly models: string | undefined;
  readonly out: string;
  readonly cell?: string;
}

export interface PackageResult {
  readonly zip: string;
  readonly dir: string;
  readonly zipBytes: number;
  readonly unzippedBytes: number;
  readonly files: number;
  readonly models: string[];
}

/**
 * The worker thread and the sandbox process are files the runtimes start by path, beside the module that starts
 * them; in the package they are bundles of their own (onnx-worker.mjs, sandbox-process.mjs) beside the chunks. A
 * runtime that names its file with the current module's extension (`onnx-worker${ext}`) finds them as is; one that
 * names the `.ts` file is pointed at the `.mjs` one. The build fails if neither form is found.
 */
const ENTRY_FILES: readonly { readonly file: string; readonly literal: string; readonly stem: string }[] = [
  { file: 'runtimes/onnx/worker-pool.ts', literal: "'./onnx-worker.ts'", stem: 'onnx-worker${' },
  { file: 'runtimes/rules/process-sandbox.ts', literal: "'sandbox-process.ts'", stem: 'sandbox-process${' },
  { file: 'runtimes/rules/containment.ts', literal: "'sandbox-process.ts'", stem: 'sandbox-process${' },
  { file: 'gateway/log/kafka-producer-thread.ts', literal: "'./kafka-producer-worker.ts'", stem: 'kafka-producer-worker${' },
];

function entryFilePaths(): Plugin {
  return {
    name: 'entry-file-paths',
    setup(b) {
      for (const e of ENTRY_FILES) {
        const path = join(ROOT, e.file);
        b.onLoad({ filter: new RegExp(`${e.file.replace(/[/.]/g, '\\$&')}$`) }, async (args) => {
          if (args.path !== path) return undefined;
          const text = await readFile(path, 'utf8');
          if (text.includes(e.literal)) return { contents: text.split(e.literal).join(e.literal.replace('.ts', '.mjs')), loader: 'ts' };
          if (text.includes(e.stem)) return undefined;
          throw new Error(`${e.file} names neither ${e.literal} nor \`${e.stem}...\`: update ENTRY_FILES in lambda/packaging/package.ts`);
        });
      }
    },
  };
}

/** Native packages copied as files: only what Linux x64 with glibc and Node 24 loads. */
const NATIVE: readonly { readonly pkg: string; readonly keep: (rel: string) => boolean }[] = [
  { pkg: 'onnxruntime-node', keep: (f) => f === 'package.json' || f === 'LICENSE' || /^dist\/[^/]+\.js$/.test(f) || /^bin\/napi-v6\/linux\/x64\//.test(f) },
  { pkg: 'onnxruntime-common', keep: (f) => f === 'package.json' || /^dist\/(cjs|esm)\/.*\.js$/.test(f) || f.endsWith('/package.json') },
  { pkg: 'isolated-vm', keep: (f) => ['package.json', 'isolated-vm.js', 'LICENSE'].includes(f) || /^prebuilds\/linux-x64\/isolated-vm\.abi137\.glibc\.node$/.test(f) },
  { pkg: 'node-gyp-build', keep: (f) => f === 'package.json' || f === 'LICENSE' || /^[^/]+\.js$/.test(f) },
  { pkg: 'acorn', keep: (f) => f === 'package.json' || f === 'LICENSE' || /^dist\/acorn\.(m?js)$/.test(f) },
  // Reads its WebAssembly module from a path beside its own file (the Kafka client's CRC-32C and murmur2).
  { pkg: '@platformatic/wasm-utils', keep: (f) => f === 'package.json' || f === 'LICENSE' || /^dist\/[^/]+\.(js|wasm)$/.test(f) },
  { pkg: '@platformatic/dynamic-buffer', keep: (f) => f === 'package.json' || f === 'LICENSE' || /^dist\/[^/]+\.js$/.test(f) },
];

async function walk(dir: string, base = dir): Promise<string[]> {
  const out: string[] = [];
  for (const e of (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walk(p, base)));
    else if (e.isFile()) out.push(relative(base, p));
  }
  return out;
}

export async function packageLambda(opts: PackageOptions): Promise<PackageResult> {
  const out = resolve(opts.out);
  const dir = join(out, 'function');
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });

  await build({
    entryPoints: {
      handler: join(ROOT, 'lambda/handler.ts'),
      'onnx-worker': join(ROOT, 'runtimes/onnx/onnx-worker.ts'),
      'sandbox-process': join(ROOT, 'runtimes/rules/sandbox-process.ts'),
      'kafka-producer-worker': join(ROOT, 'gateway/log/kafka-producer-worker.ts'),
    },
    outdir: dir,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node24',
    outExtension: { '.js': '.mjs' },
    chunkNames: '[name]-[hash]',
    // Identifiers keep their names: stack traces in the function's logs stay readable.
    minifyWhitespace: true,
    minifySyntax: true,
    legalComments: 'none',
    external: NATIVE.map((n) => n.pkg),
    // CommonJS dependencies call require(); in an ES module it has to be made.
    banner: { js: "import { createRequire as __sibylCreateRequire } from 'node:module'; const require = __sibylCreateRequire(import.meta.url);" },
    plugins: [entryFilePaths()],
    logLevel: 'warning',
  });
  await writeFile(
    join(dir, 'index.mjs'),
    "globalThis.__sibylLoadStart = performance.now();\nconst m = await import('./handler.mjs');\nexport const handler = m.handler;\nexport const streaming = m.streaming;\n",
  );

  for (const n of NATIVE) {
    const from = join(ROOT, 'node_modules', n.pkg);
    for (const f of await walk(from)) {
      if (!n.keep(f)) continue;
      await mkdir(dirname(join(dir, 'node_modules', n.pkg, f)), { recursive: true });
      await cp(join(from, f), join(dir, 'node_modules', n.pkg, f));
    }
  }

  let models: string[] = [];
  if (opts.models) {
    models = await packageBundles(opts.models, opts.cell ?? 'local', join(dir, 'bundles'));
    const features = join(opts.models, 'features.jsonl');
    if (existsSync(features)) await cp(features, join(dir, 'features.jsonl'));
  }

  const files = await walk(dir);
  let unzippedBytes = 0;
  const zip = new ZipFile();
  for (const f of files) {
    const bytes = await readFile(join(dir, f));
    unzippedBytes += bytes.byteLength;
    zip.addBuffer(bytes, f, { mtime: new Date(Date.UTC(2000, 0, 1)), mode: 0o100644, compress: true });
  }
  zip.end();
  const chunks: Buffer[] = [];
  for await (const c of zip.outputStream as AsyncIterable<Buffer>) chunks.push(c);
  const zipPath = join(out, 'sibyl-lambda.zip');
  await writeFile(zipPath, Buffer.concat(chunks));
  const zipBytes = (await stat(zipPath)).size;
  if (zipBytes > ZIP_LIMIT_BYTES) throw new Error(`${zipPath} is ${zipBytes} bytes, over Lambda's ${ZIP_LIMIT_BYTES}-byte limit for a zip`);
  if (unzippedBytes > UNZIPPED_LIMIT_BYTES) throw new Error(`the function is ${unzippedBytes} bytes unpacked, over Lambda's ${UNZIPPED_LIMIT_BYTES}-byte limit`);
  return { zip: zipPath, dir, zipBytes, unzippedBytes, files: files.length, models };
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { models: { type: 'string' }, 'no-models': { type: 'boolean' }, out: { type: 'string' }, cell: { type: 'string' } } });
  const started = performance.now();
  const r = await packageLambda({
    models: values['no-models'] ? undefined : resolve(values.models ?? join(ROOT, 'models')),
    out: values.out ?? join(ROOT, '.build/lambda'),
    ...(values.cell ? { cell: values.cell } : {}),
  });
  const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MB`;
  process.stdout.write(
    `${relative(process.cwd(), r.zip)}: ${mb(r.zipBytes)} zipped (limit 50 MB), ${mb(r.unzippedBytes)} unpacked (limit 250 MB), ${r.files} files; ` +
      `models: ${r.models.join(', ') || 'none (follows a tower)'}; ${Math.round(performance.now() - started)} ms\n`,
  );
}
