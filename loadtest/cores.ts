#!/usr/bin/env node
/**
 * One worker at Q cores against two workers at 2Q (loadtest/lib/cores.ts), alone; the suite runs the same.
 *
 *   node loadtest/cores.ts [--cores 0.35] [--rounds 3] [--duration 10] [--warmup 3] [--per-worker 48] [--pin-two 1] [--variant K=V,...]   (root, cgroup v1)
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { envOfPairs } from './lib/bench-gateway.ts';
import { coresTarget, measureCores } from './lib/cores.ts';

const { values } = parseArgs({
  options: {
    cores: { type: 'string', default: '0.35' },
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '3' },
    'per-worker': { type: 'string', default: '48' },
    'pin-two': { type: 'string' },
    /** K=V[,K=V]: a third arm, two workers with these variables (e.g. SIBYL_ONNX_TREES=onnxruntime). */
    variant: { type: 'string' },
  },
});
const outDir = join('loadtest', 'results', `${new Date().toISOString().replace(/[:.]/g, '-')}-cores`);
mkdirSync(outDir, { recursive: true });
const t0 = Date.now();
const result = await measureCores({
  cores: Number(values.cores),
  rounds: Number(values.rounds),
  durationS: Number(values.duration),
  warmupS: Number(values.warmup),
  concurrencyPerWorker: Number(values['per-worker']),
  ...(values['pin-two'] ? { pinTwo: values['pin-two'] } : {}),
  ...(values.variant ? { variant: { label: values.variant, env: envOfPairs(values.variant.split(',')) } } : {}),
  outDir,
  log: (m) => process.stderr.write(`[cores ${Math.round((Date.now() - t0) / 1000)}s] ${m}\n`),
});
const target = coresTarget(result);
writeFileSync(join(outDir, 'cores.json'), `${JSON.stringify({ result, target }, null, 2)}\n`);
process.stdout.write(`${JSON.stringify({ ...target, runs: result.runs.length, ...(result.variant ? { variant: result.variant } : {}) })}\n`);
