#!/usr/bin/env node
/**
 * Cold start of the Lambda function: from the runtime's process start to the first answered prediction, under the
 * AWS Lambda Runtime Interface Emulator with Node's runtime interface client (as Lambda's nodejs24.x runtime runs
 * it), split into phases the function logs at its first invocation ("sibyl lambda cold start"):
 *
 *   runtime start   process start to the function's first module line: Node's start, the runtime client
 *   module load     the function's modules: parsed, compiled and evaluated
 *   config          configuration read and checked
 *   parts           feature store and prediction log made (the in-process store seeded from features.jsonl)
 *   state           the cell's desired state (packaged state.json, or the tower's answer)
 *   bundle fetch    bundle zips (from the package, or from S3)
 *   model load      hash checks, unpacking, the ONNX runtime's import, sessions, warm-up
 *   first call      the first invocation until its answer is built
 *   total           process start to the first answer
 *
 * and, measured by this script, `client`: from sending the first event to receiving its answer (includes the
 * emulator starting the process, which Lambda does before the event arrives, and the invocation's flush); `cpu`:
 * the process's CPU time (user + system) to the first answer, which contention on a shared machine inflates less.
 *
 * Variants: `packaged` (the zip's function, bundles packaged), `source` (the same function and bundles run from
 * the TypeScript sources, not bundled: the "before" of the esbuild bundle), `s3` (the zip's function following a
 * control tower, bundles from S3 on moto). Rounds interleave the variants. `npm run package:lambda` and
 * scripts/lambda/tools.sh first; `s3` needs moto (scripts/services/moto.sh).
 *
 *   node loadtest/lambda/cold-start.ts [--runs 9] [--variants packaged,source,s3] [--out loadtest/results]
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startFunction, ROOT } from './emulator.ts';
import { summarize, type Summary } from './stats.ts';
import { startTower } from './tower.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '9' }, variants: { type: 'string', default: 'packaged,source,s3' }, out: { type: 'string', default: join(ROOT, 'loadtest/results') } } });
const runs = Number(values.runs);
const variants = values.variants!.split(',');
const FUNCTION_DIR = join(ROOT, '.build/lambda/function');
if (!existsSync(join(FUNCTION_DIR, 'index.mjs'))) throw new Error('run npm run package:lambda first');

const PHASES = ['runtime start', 'module load', 'config', 'parts', 'state', 'bundle fetch', 'model load', 'first call', 'total', 'client', 'cpu'] as const;
type Phase = (typeof PHASES)[number];

interface ColdStartLog {
  runtimeMs: number;
  moduleMs: number;
  configMs: number;
  init: { stateMs: number; bundlesMs: number; modelsMs: number; partsMs: number; connectMs: number; source: string };
  firstAnswerMs: number;
  toFirstAnswerMs: number;
  cpuMs: number;
}

/** The same function and bundles run from the TypeScript sources (type stripping), without esbuild. */
function sourceTaskDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sibyl-lambda-source-'));
  cpSync(join(FUNCTION_DIR, 'bundles'), join(dir, 'bundles'), { recursive: true });
  cpSync(join(FUNCTION_DIR, 'features.jsonl'), join(dir, 'features.jsonl'));
  writeFileSync(
    join(dir, 'index.mjs'),
    `globalThis.__sibylLoadStart = performance.now();\nconst m = await import(${JSON.stringify(join(ROOT, 'lambda/handler.ts'))});\nexport const handler = m.handler;\n`,
  );
  return dir;
}

const EVENT = {
  version: '2.0',
  rawPath: '/v1/models/delivery-eta:predict',
  rawQueryString: '',
  headers: { 'content-type': 'application/json' },
  requestContext: { http: { method: 'POST' }, stage: '$default' },
  body: JSON.stringify({ rows: [{ entities: { restaurant: 'r320', zone: 'z55', customer: 'c187' }, features: { distance_km: 0.67, hour_of_day: 8, day_of_week: 3, basket_size: 4, basket_value: 33.47, is_raining: 0, is_weekend: 0 } }] }),
  isBase64Encoded: false,
};

async function coldStart(dir: string, env: Record<string, string>): Promise<Record<Phase, number>> {
  const fn = await startFunction(dir, 'index.handler', { SIBYL_PREDICTION_LOG: 'off', SIBYL_LOG_LEVEL: 'info', SIBYL_DATA_DIR: mkdtempSync(join(tmpdir(), 'sibyl-bench-data-')), ...env });
  try {
    const t = performance.now();
    const result = (await fn.invoke(EVENT)) as { statusCode: number };
    const client = performance.now() - t;
    if (result.statusCode !== 200) throw new Error(`first call answered ${JSON.stringify(result)}`);
    const line = fn.output().split('\n').find((l) => l.includes('"sibyl lambda cold start"'));
    if (!line) throw new Error(`no cold start line in\n${fn.output()}`);
    const c = (JSON.parse(line) as { coldStart: ColdStartLog }).coldStart;
    return {
      'runtime start': c.runtimeMs,
      'module load': c.moduleMs,
      config: c.configMs,
      parts: c.init.partsMs,
      state: c.init.stateMs,
      'bundle fetch': c.init.bundlesMs,
      'model load': c.init.modelsMs,
      'first call': c.firstAnswerMs,
      total: c.toFirstAnswerMs,
      client,
      cpu: c.cpuMs,
    };
  } finally {
    await fn.stop();
  }
}

const tower = variants.includes('s3') ? await startTower('bench') : undefined;
const source = variants.includes('source') ? sourceTaskDir() : undefined;
const samples = new Map<string, Record<Phase, number>[]>(variants.map((v) => [v, []]));
const load: number[] = [];
for (let round = 0; round < runs; round++) {
  // Rotate the order each round: this shared machine's speed drifts within minutes.
  const order = variants.map((_, i) => variants[(i + round) % variants.length]!);
  for (const v of order) {
    const dir = v === 'source' ? source! : FUNCTION_DIR;
    const env = v === 's3' ? tower!.env : {};
    samples.get(v)!.push(await coldStart(dir, env));
    load.push(loadavg()[0]!);
  }
  process.stderr.write(`round ${round + 1}/${runs}\n`);
}
await tower?.stop();

const report: Record<string, Record<Phase, Summary>> = {};
for (const [v, s] of samples) report[v] = Object.fromEntries(PHASES.map((p) => [p, summarize(s.map((x) => x[p]))])) as Record<Phase, Summary>;
const loadSummary = summarize(load);
const f = (n: number) => (n < 10 ? n.toFixed(1) : Math.round(n).toString());
const lines = [
  `# Lambda cold start (${runs} runs per variant, ${new Date().toISOString().slice(0, 16)}Z)`,
  '',
  `Runtime Interface Emulator + aws-lambda-ric, Node ${process.versions.node}, ${variants.join(', ')}; ms as min / median / max. Load average during the runs: ${f(loadSummary.min)}-${f(loadSummary.max)} (2 shared cores).`,
  '',
  `| phase | ${variants.join(' | ')} |`,
  `| --- | ${variants.map(() => '---').join(' | ')} |`,
  ...PHASES.map((p) => `| ${p} | ${variants.map((v) => `${f(report[v]![p].min)} / ${f(report[v]![p].median)} / ${f(report[v]![p].max)}`).join(' | ')} |`),
];
mkdirSync(values.out!, { recursive: true });
writeFileSync(join(values.out!, 'lambda-cold-start.json'), JSON.stringify({ runs, node: process.versions.node, loadAverage: loadSummary, samples: Object.fromEntries(samples), summary: report }, null, 2) + '\n');
writeFileSync(join(values.out!, 'lambda-cold-start.md'), lines.join('\n') + '\n');
process.stdout.write(lines.join('\n') + '\n');
