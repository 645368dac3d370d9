/**
 * Checks the committed demo models under Node 24 with onnxruntime-node: every bundle's manifest passes
 * parseManifest and has test cases expecting every output (as the upload gate requires) and training statistics for
 * every feature and output, every expected.json row's
 * entity ids exist in models/features.jsonl with the same feature values, the manifest's test cases are
 * expected.json rows, and onnxruntime-node reproduces the training library's outputs within the manifest's
 * tolerance. Prints the max differences; exits 1 on any problem.
 *
 * Usage: node scripts/models/verify.ts [models-dir]
 */
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import ort from 'onnxruntime-node';
import { parse as parseYaml } from 'yaml';
import { outputSpecs, parseManifest, requireTestCases, type Manifest } from '../../runtimes/manifest.ts';

type Num = number | number[];
interface ExpectedRow {
  entities: Record<string, string>;
  request: Record<string, number>;
  features: Record<string, number>;
  expected: Record<string, Num>;
}
interface ExpectedFile {
  model: string;
  version: string;
  rows: ExpectedRow[];
}

const dir = resolve(process.argv[2] ?? 'models');
const problems: string[] = [];

function loadStore(): Map<string, Record<string, number>> {
  const store = new Map<string, Record<string, number>>();
  for (const line of readFileSync(join(dir, 'features.jsonl'), 'utf8').split('\n')) {
    if (!line) continue;
    const rec = JSON.parse(line) as { entity: string; id: string; features: Record<string, number> };
    store.set(`${rec.entity}:${rec.id}`, rec.features);
  }
  return store;
}

function toNumbers(t: ort.Tensor): number[] {
  return Array.from(t.data as ArrayLike<number | bigint>, (v) => Number(v));
}

/** Runs the manifest's ONNX mapping over rows; returns outputs per row keyed by the output's public name. */
async function runRows(m: Manifest, bundleDir: string, rows: Record<string, number>[]): Promise<Record<string, Num>[]> {
  const onnx = m.onnx!;
  const session = await ort.InferenceSession.create(join(bundleDir, onnx.file), { intraOpNumThreads: 1 });
  const feeds: Record<string, ort.Tensor> = {};
  for (const input of onnx.inputs) {
    const data = new Float32Array(rows.length * input.features.length);
    rows.forEach((row, i) => input.features.forEach((f, j) => (data[i * input.features.length + j] = row[f] ?? NaN)));
    feeds[input.name] = new ort.Tensor('float32', data, [rows.length, input.features.length]);
  }
  const results = await session.run(feeds);
  await session.release();
  const out: Record<string, Num>[] = rows.map(() => ({}));
  for (const o of onnx.outputs) {
    const t = results[o.name];
    if (!t) throw new Error(`output ${o.name} missing`);
    const flat = toNumbers(t);
    const width = flat.length / rows.length;
    out.forEach((row, i) => (row[o.as ?? o.name] = o.kind === 'vector' ? flat.slice(i * width, (i + 1) * width) : (flat[i] as number)));
  }
  return out;
}

function maxDiff(a: Num, b: Num): number {
  const xs = Array.isArray(a) ? a : [a];
  const ys = Array.isArray(b) ? b : [b];
  if (xs.length !== ys.length) return Infinity;
  return Math.max(...xs.map((x, i) => Math.abs(x - (ys[i] ?? NaN))));
}

async function verifyBundle(name: string, version: string, store: Map<string, Record<string, number>>): Promise<Manifest> {
  const bundleDir = join(dir, name, version);
  const m = parseManifest(readFileSync(join(bundleDir, 'sibyl.yaml'), 'utf8'));
  const label = `${name}/${version}`;
  if (m.name !== name || m.version !== version) problems.push(`${label}: manifest says ${m.name}/${m.version}`);
  try {
    requireTestCases(m); // what the upload gate asks: npm start publishes these bundles through it
  } catch (err) {
    problems.push(`${label}: ${(err as Error).message}`);
  }
  // Training statistics (drift is measured against them): every feature and output, vectors per element.
  const stats = m.statistics;
  if (!stats) problems.push(`${label}: no training statistics`);
  else {
    for (const f of m.features) if (!stats.features[f.name]) problems.push(`${label}: no training statistics for feature ${f.name}`);
    for (const o of outputSpecs(m)) {
      if (o.kind === 'scalar' ? !stats.outputs[o.name] : !stats.outputs[`${o.name}[0]`]) problems.push(`${label}: no training statistics for output ${o.name}`);
    }
  }
  const exp = JSON.parse(readFileSync(join(bundleDir, 'expected.json'), 'utf8')) as ExpectedFile;

  for (const [i, row] of exp.rows.entries()) {
    for (const f of m.features) {
      const v = row.features[f.name];
      if (v === undefined) problems.push(`${label} row ${i}: feature ${f.name} missing`);
      if (f.source === 'request' && row.request[f.name] !== v) problems.push(`${label} row ${i}: request ${f.name} differs`);
      if (f.source === 'store') {
        const id = row.entities[f.entity!];
        const stored = store.get(`${f.entity}:${id}`)?.[f.key ?? f.name];
        if (stored !== v) problems.push(`${label} row ${i}: ${f.entity} ${id} ${f.name} is ${stored} in features.jsonl, ${v} here`);
      }
    }
  }
  for (const [i, t] of m.tests.entries()) {
    if (JSON.stringify(t.features) !== JSON.stringify(exp.rows[i]?.features)) problems.push(`${label}: test ${t.name} is not expected row ${i}`);
  }

  const got = await runRows(m, bundleDir, exp.rows.map((r) => r.features));
  const tolerance = m.tests[0]?.tolerance ?? 1e-5;
  const worst: Record<string, number> = {};
  exp.rows.forEach((row, i) => {
    for (const [k, want] of Object.entries(row.expected)) {
      const d = maxDiff(want, got[i]?.[k] ?? NaN);
      worst[k] = Math.max(worst[k] ?? 0, d);
      if (!(d <= tolerance)) problems.push(`${label} row ${i}: ${k} differs by ${d} (tolerance ${tolerance})`);
    }
  });
  console.log(`${label}: max |expected - onnxruntime-node| ${JSON.stringify(worst)} over ${exp.rows.length} rows (tolerance ${tolerance})`);
  return m;
}

async function main(): Promise<void> {
  const store = loadStore();
  const deployment = parseYaml(readFileSync(join(dir, 'deployment.yaml'), 'utf8')) as {
    models: Record<string, { default: string; aliases?: Record<string, string> }>;
  };
  for (const name of readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort()) {
    const versions = readdirSync(join(dir, name)).filter((v) => existsSync(join(dir, name, v, 'sibyl.yaml'))).sort();
    const manifests = [];
    for (const v of versions) manifests.push(await verifyBundle(name, v, store));
    const dep = deployment.models[name];
    if (!dep) {
      problems.push(`${name}: not in deployment.yaml`);
      continue;
    }
    const defaults = manifests.filter((m) => m.default).map((m) => m.version);
    if (defaults.length !== 1 || defaults[0] !== dep.default) problems.push(`${name}: default versions ${defaults} vs deployment ${dep.default}`);
    for (const [alias, v] of Object.entries(dep.aliases ?? {})) {
      if (!versions.includes(v)) problems.push(`${name}: alias ${alias} points at missing version ${v}`);
    }
  }
  if (problems.length) {
    for (const p of problems) console.error(`FAIL ${p}`);
    process.exit(1);
  }
  console.log('all bundles verified');
}

await main();
