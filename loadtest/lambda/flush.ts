#!/usr/bin/env node
/**
 * What the Lambda function adds to an invocation after its answer so that nothing is left running at the freeze:
 * warm invocations under the Runtime Interface Emulator, one at a time, each scenario in a function of its own.
 * The function logs each invocation's `answerMs` (event in, answer built) and `settleMs` (then: its shadows, the
 * prediction log's flush, a check of the tower), which is what a buffered invocation (API Gateway, ALB, a buffered
 * function URL) adds to the answer; with response streaming the answer leaves before it and the client waits for
 * none of it (the emulator buffers streamed answers, so that is by construction, not measured here).
 *
 *   off          prediction log off, no shadow: the floor
 *   kafka        each record acknowledged by the Kafka broker (acks=all) before the return
 *   kafka+shadow delivery-eta shadowed by its version 1: the shadow runs, then both records are acknowledged
 *   tower check  following a tower with SIBYL_LAMBDA_SYNC_INTERVAL_MS=0: a check at every invocation, beside it
 *
 *   node loadtest/lambda/flush.ts [--invocations 300] [--out loadtest/results]
 * Needs `npm run package:lambda`, scripts/lambda/tools.sh, and Kafka and moto (scripts/services/*.sh).
 */
import { cpSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startFunction, ROOT } from './emulator.ts';
import { summarize, type Summary } from './stats.ts';
import { startTower } from './tower.ts';
import { packageBundles } from '../../lambda/packaging/package-bundles.ts';

const { values } = parseArgs({ options: { invocations: { type: 'string', default: '300' }, out: { type: 'string', default: join(ROOT, 'loadtest/results') } } });
const N = Number(values.invocations);
const FUNCTION_DIR = join(ROOT, '.build/lambda/function');
const BROKERS = process.env.SIBYL_TEST_KAFKA_BROKERS ?? '127.0.0.1:19092';

const EVENT = {
  version: '2.0',
  rawPath: '/v1/models/delivery-eta:predict',
  rawQueryString: '',
  headers: { 'content-type': 'application/json' },
  requestContext: { http: { method: 'POST' }, stage: '$default' },
  body: JSON.stringify({ rows: [{ entities: { restaurant: 'r320', zone: 'z55', customer: 'c187' }, features: { distance_km: 0.67, hour_of_day: 8, day_of_week: 3, basket_size: 4, basket_value: 33.47, is_raining: 0, is_weekend: 0 } }] }),
  isBase64Encoded: false,
};

/** The demo models with delivery-eta shadowed by its version 1, packaged as bundles. */
async function shadowedBundles(): Promise<string> {
  const models = mkdtempSync(join(tmpdir(), 'sibyl-bench-models-'));
  for (const v of ['1', '2']) cpSync(join(ROOT, 'models/delivery-eta', v), join(models, 'delivery-eta', v), { recursive: true });
  writeFileSync(join(models, 'deployment.yaml'), "models:\n  delivery-eta:\n    default: '2'\n    shadows: [{ version: '1' }]\n");
  const dir = join(mkdtempSync(join(tmpdir(), 'sibyl-bench-bundles-')), 'bundles');
  await packageBundles(models, 'local', dir);
  return dir;
}

interface Result {
  readonly answerMs: Summary;
  readonly settleMs: Summary;
  readonly clientMs: Summary;
  readonly unsettled: number;
}

async function scenario(env: Record<string, string>): Promise<Result> {
  const fn = await startFunction(FUNCTION_DIR, 'index.handler', { SIBYL_LOG_LEVEL: 'debug', SIBYL_DATA_DIR: mkdtempSync(join(tmpdir(), 'sibyl-bench-data-')), ...env });
  const client: number[] = [];
  try {
    await fn.invoke(EVENT); // the cold start, not counted
    for (let i = 0; i < N; i++) {
      const t = performance.now();
      const r = (await fn.invoke(EVENT)) as { statusCode: number };
      client.push(performance.now() - t);
      if (r.statusCode !== 200) throw new Error(`invocation answered ${JSON.stringify(r)}`);
    }
    const invocations = fn
      .output()
      .split('\n')
      .filter((l) => l.includes('"msg":"invocation"'))
      .map((l) => (JSON.parse(l) as { invocation: { answerMs: number; settleMs: number; settled: boolean } }).invocation)
      .slice(1);
    return {
      answerMs: summarize(invocations.map((i) => i.answerMs)),
      settleMs: summarize(invocations.map((i) => i.settleMs)),
      clientMs: summarize(client),
      unsettled: invocations.filter((i) => !i.settled).length,
    };
  } finally {
    await fn.stop();
  }
}

const tower = await startTower('flush');
const topic = `sibyl.bench.lambda.${Date.now()}`;
const shadowed = await shadowedBundles();
const scenarios: Record<string, Record<string, string>> = {
  off: { SIBYL_PREDICTION_LOG: 'off' },
  kafka: { KAFKA_BROKERS: BROKERS, SIBYL_KAFKA_TOPIC: topic },
  'kafka+shadow': { KAFKA_BROKERS: BROKERS, SIBYL_KAFKA_TOPIC: topic, SIBYL_BUNDLES_DIR: shadowed },
  'tower check': { ...tower.env, SIBYL_PREDICTION_LOG: 'off', SIBYL_LAMBDA_SYNC_INTERVAL_MS: '0' },
};
const results: Record<string, Result> = {};
const load: number[] = [];
for (const [name, env] of Object.entries(scenarios)) {
  results[name] = await scenario(env);
  load.push(loadavg()[0]!);
  process.stderr.write(`${name} done\n`);
}
await tower.stop();

const f = (n: number) => (n < 10 ? n.toFixed(2) : n.toFixed(1));
const row = (s: Summary) => `${f(s.median)} / ${f(s.p90)} / ${f(s.p99)} / ${f(s.max)}`;
const lines = [
  `# Lambda: what settling adds to an invocation (${N} warm invocations per scenario, ${new Date().toISOString().slice(0, 16)}Z)`,
  '',
  `Runtime Interface Emulator + aws-lambda-ric, one invocation at a time; ms as p50 / p90 / p99 / max. Load average ${f(Math.min(...load))}-${f(Math.max(...load))} (2 shared cores).`,
  '',
  '| scenario | answer (event in, answer built) | settle (added before a buffered return) | client round trip | unsettled |',
  '| --- | --- | --- | --- | --- |',
  ...Object.entries(results).map(([name, r]) => `| ${name} | ${row(r.answerMs)} | ${row(r.settleMs)} | ${row(r.clientMs)} | ${r.unsettled} |`),
];
mkdirSync(values.out!, { recursive: true });
writeFileSync(join(values.out!, 'lambda-flush.json'), JSON.stringify({ invocations: N, loadAverage: load, results }, null, 2) + '\n');
writeFileSync(join(values.out!, 'lambda-flush.md'), lines.join('\n') + '\n');
process.stdout.write(lines.join('\n') + '\n');
