/**
 * `sibyl rules ...`: authoring rule models.
 *
 * - `sibyl rules new NAME [--dir PARENT]`: scaffolds PARENT/NAME/ with a sibyl.yaml (features, outputs, rules
 *   settings, test cases) and a rule.js; refuses an existing directory.
 * - `sibyl rules test DIR`: loads the rule in the same sandbox the gateway uses (its own sandbox process) and runs
 *   the manifest's test cases with execution/test-cases.ts; prints a diff per failing case; exit status 1 when any
 *   fails.
 * - `sibyl rules run DIR --features JSON [--entities JSON] [--redis URL] [--prefix sibyl]`: evaluates one row and
 *   prints `{ outputs, defaulted }` as JSON. With `--redis`, store features come from that Redis (the gateway's
 *   feature store client and enrichment); without it, features not given take their defaults.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, Option } from 'commander';
import { createRedisFeatureStore } from '../gateway/features/redis-feature-store.ts';
import { execute } from '../execution/execute.ts';
import { inlineOnly } from '../execution/feature-store.ts';
import type { FeatureRow, ModelBundle, Scalar } from '../runtimes/contract.ts';
import { MANIFEST_FILES, parseManifest, type Manifest } from '../runtimes/manifest.ts';
import { MANIFEST_SCHEMA_FILE } from '../runtimes/manifest-json-schema.ts';
import { rulesDescriptor } from '../runtimes/rules/descriptor.ts';
import { createRulesRuntime } from '../runtimes/rules/rules-runtime.ts';
import { ModelVersion } from '../execution/model-version.ts';
import { formatFailures, runTestCases } from '../execution/test-cases.ts';

export function rulesCommand(): Command {
  const rules = new Command('rules').description('author and try rule models (JavaScript run in the gateway sandbox)');
  rules
    .command('new')
    .description('scaffold a rule bundle directory')
    .argument('<name>', 'model name (a-z, 0-9, ".", "_", "-")')
    .option('--dir <parent>', 'directory to create it in', '.')
    .action(async function newAction(name: string, opts: { dir: string }) {
      const dir = await scaffoldRule(name, opts.dir);
      process.stdout.write(`created ${dir}: edit rule.js and sibyl.yaml, then run: sibyl rules test ${dir}\n`);
    });
  rules
    .command('test')
    .description("run the manifest's test cases against the rule, in the gateway's sandbox")
    .argument('<dir>', 'rule bundle directory')
    .action(async function testAction(dir: string) {
      const { passed, total, report } = await testRule(dir);
      process.stdout.write(report ? `${report}\n` : '');
      process.stdout.write(`${passed} of ${total} test cases passed\n`);
      if (passed !== total) process.exitCode = 1;
    });
  rules
    .command('run')
    .description('evaluate the rule on one input and print its outputs')
    .argument('<dir>', 'rule bundle directory')
    .requiredOption('--features <json>', 'request features, e.g. \'{"distance_km": 2.5}\'')
    .option('--entities <json>', 'entity ids for store features, e.g. \'{"restaurant": "r42"}\'', '{}')
    .addOption(new Option('--redis <url>', 'read store features from this Redis'))
    .option('--prefix <prefix>', 'feature store key prefix', 'sibyl')
    .action(async function runAction(dir: string, opts: RunOptions) {
      process.stdout.write(`${JSON.stringify(await runRule(dir, opts), null, 2)}\n`);
    });
  return rules;
}

interface RunOptions {
  readonly features: string;
  readonly entities: string;
  readonly redis?: string;
  readonly prefix: string;
}

export async function readBundleDir(dir: string): Promise<ModelBundle> {
  const file = MANIFEST_FILES.find((f) => existsSync(path.join(dir, f)));
  if (!file) throw new Error(`${dir}: no manifest (${MANIFEST_FILES.join(', ')})`);
  const manifest = parseManifest(await readFile(path.join(dir, file), 'utf8'), file);
  if (manifest.runtime !== rulesDescriptor.kind) throw new Error(`${dir}: runtime is ${manifest.runtime}, not ${rulesDescriptor.kind}`);
  return { manifest, dir: path.resolve(dir), hash: 'local' };
}

async function withModel<T>(dir: string, use: (bundle: ModelBundle, model: Awaited<ReturnType<ReturnType<typeof createRulesRuntime>['load']>>) => Promise<T>): Promise<T> {
  const bundle = await readBundleDir(dir);
  const model = await createRulesRuntime().load(bundle);
  try {
    return await use(bundle, model);
  } finally {
    await model.dispose();
  }
}

/** Runs the manifest's test cases; `report` holds one readable block per failing case. */
export function testRule(dir: string): Promise<{ passed: number; total: number; report: string }> {
  return withModel(dir, async (bundle, model) => {
    const failures = await runTestCases(new ModelVersion(bundle.manifest, model));
    const total = bundle.manifest.tests.length;
    return { passed: total - failures.length, total, report: formatFailures(failures) };
  });
}

/**
 * Evaluates one row through the gateway's execution step: request features, store features from Redis when given,
 * defaults for the rest.
 */
export async function runRule(dir: string, opts: RunOptions): Promise<{ outputs: Record<string, unknown>; defaulted: string[] }> {
  const features = parseObject('--features', opts.features) as Record<string, Scalar>;
  const entities = parseObject('--entities', opts.entities) as Record<string, string>;
  return withModel(dir, async (bundle, model) => {
    const version = new ModelVersion(bundle.manifest, model);
    const signal = AbortSignal.timeout(10_000);
    if (!opts.redis) {
      const { row, defaulted } = withDefaults(bundle.manifest, features);
      const run = await execute(version, [{ entities: {}, features: row }], { store: inlineOnly, featurePrefix: opts.prefix, featureTimeoutMs: 0 }, { signal });
      return { outputs: run.outputs[0]!, defaulted };
    }
    const url = opts.redis;
    const store = createRedisFeatureStore({ url });
    try {
      await store.ready(5000).catch(() => {
        throw new Error(`cannot reach Redis at ${url.replace(/\/\/[^@/]*@/, '//***@')}`);
      });
      let failure: string | undefined;
      const deps = { store, featurePrefix: opts.prefix, featureTimeoutMs: 2000, onStoreFailure: (_: string, reason: string) => (failure = reason) };
      const run = await execute(version, [{ entities, features }], deps, { signal });
      if (failure) throw new Error(`the feature store failed (${failure})`);
      return { outputs: run.outputs[0]!, defaulted: run.defaulted[0]! };
    } finally {
      await store.close();
    }
  });
}

function withDefaults(manifest: Manifest, features: Record<string, Scalar>): { row: FeatureRow; defaulted: string[] } {
  const declared = new Set(manifest.features.map((f) => f.name));
  const unknown = Object.keys(features).filter((k) => !declared.has(k));
  if (unknown.length) throw new Error(`--features: the manifest declares no feature ${unknown.map((k) => `"${k}"`).join(', ')}`);
  const row: FeatureRow = {};
  const defaulted: string[] = [];
  for (const f of manifest.features) {
    if (features[f.name] !== undefined) row[f.name] = features[f.name]!;
    else {
      row[f.name] = f.default;
      defaulted.push(f.name);
    }
  }
  return { row, defaulted };
}

function parseObject(flag: string, text: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new Error(`${flag}: not valid JSON`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error(`${flag}: must be a JSON object`);
  return v as Record<string, unknown>;
}

/** This Sibyl's copy of the manifest's JSON Schema (in the repository, or in the installed package). */
const SCHEMA_PATH = fileURLToPath(new URL(`../${MANIFEST_SCHEMA_FILE}`, import.meta.url));

/**
 * Writes PARENT/NAME/{sibyl.yaml, rule.js}; refuses a bad name or an existing directory. Returns the directory.
 * The manifest's first line points editors (yaml-language-server) at the JSON Schema, by a path relative to it.
 */
export async function scaffoldRule(name: string, parent: string): Promise<string> {
  const dir = path.join(parent, name);
  const schema = path.relative(path.resolve(dir), SCHEMA_PATH).split(path.sep).join('/');
  const manifest = `# yaml-language-server: $schema=${schema}\n${SCAFFOLD_MANIFEST(name)}`;
  parseManifest(manifest); // a bad name fails here, before anything is written
  if (existsSync(dir)) throw new Error(`${dir} already exists`);
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'sibyl.yaml'), manifest);
  await writeFile(path.join(dir, 'rule.js'), SCAFFOLD_RULE);
  return dir;
}

const SCAFFOLD_MANIFEST = (name: string): string => `name: ${name}
version: "1"
runtime: rules
description: A rule model. predict() in rule.js gets one row of features and returns the outputs below.
owner: ""
features:
  - { name: distance_km, dtype: float64, source: request, default: 0 }
  - { name: basket_value, dtype: float64, source: request, default: 0 }
outputs:
  - { name: score, kind: scalar, dtype: float64 }
  - { name: decision, kind: scalar, dtype: string }
rules:
  file: rule.js
  timeoutMs: 50   # per call, at most 1000
  memoryMb: 32    # 8 to 256
tests:
  - name: near and big basket
    features: { distance_km: 1, basket_value: 40 }
    expected: { score: 0.9, decision: accept }
  - name: far away
    features: { distance_km: 12, basket_value: 40 }
    expected: { score: 0.2, decision: review }
`;

const SCAFFOLD_RULE = `// A Sibyl rule: plain JavaScript, run in a sandbox with no Node APIs, network or timers.
// predict(features, ctx) gets one row (every feature the manifest declares) and returns every declared output
// (or a promise of them). ctx.model and ctx.version name this model; ctx.models is reserved for the outputs of
// other models. Throwing fails only this call.
export function predict(features, ctx) {
  const score = features.distance_km > 10 ? 0.2 : 0.9;
  return { score, decision: score >= 0.5 ? 'accept' : 'review' };
}
`;
