/**
 * CPU per prediction-log record, from the pipeline's values to the Kafka message value: building the record
 * (gateway/pipeline/record.ts) and serializing it as the CloudEvent (gateway/log/cloud-event.ts). One S1-sized
 * record: 3 entities, 20 features, 1 output. Rounds interleave, so that the numbers compare within one run.
 *
 * Run: node loadtest/micro/record-json.bench.ts [records=50000] [rounds=5]
 */
import { buildRecord } from '../../gateway/pipeline/record.ts';
import { predictionMessage } from '../../gateway/log/cloud-event.ts';
import { recordToJson } from '../../gateway/log/prediction-record.ts';
import type { Route } from '../../gateway/routing/route-table.ts';
import type { RequestContext } from '../../gateway/pipeline/pipeline.ts';

const N = Number(process.argv[2] ?? 50_000);
const ROUNDS = Number(process.argv[3] ?? 5);
const route = { model: 'delivery-eta', version: '2' } as Route;
const inputs = Array.from({ length: 64 }, (_, i) => ({
  entities: { restaurant: `r${i}`, zone: `z${i % 7}`, customer: `c${i * 13}` },
  features: {},
}));
const features = Array.from({ length: 64 }, (_, i) => Object.fromEntries(Array.from({ length: 20 }, (_, f) => [`feature_${f}`, ((i * (f + 7)) % 997) / 10])));
const results = Array.from({ length: 64 }, (_, i) => ({ outputs: { eta_minutes: 20 + (i % 30) / 3 }, defaulted: [] as string[] }));
const signal = new AbortController().signal;
const contexts: RequestContext[] = Array.from({ length: 64 }, (_, i) => ({ requestId: `req-${i}`, signal, startMs: 0, transport: 'rest' }));

function build(i: number) {
  const k = i & 63;
  return buildRecord('cell-a', contexts[k]!, route, '', [inputs[k]!] as never, [features[k]!], [results[k]!], 0.21, 0.9, undefined);
}

const cases: Record<string, () => number> = {
  'build record': () => {
    let n = 0;
    for (let i = 0; i < N; i++) n += build(i).rows.length;
    return n;
  },
  'build + record JSON': () => {
    let n = 0;
    for (let i = 0; i < N; i++) n += recordToJson(build(i)).length;
    return n;
  },
  'build + CloudEvent message': () => {
    let n = 0;
    for (let i = 0; i < N; i++) n += predictionMessage(build(i), 'cell-a').value.length;
    return n;
  },
};

for (let r = 0; r < ROUNDS; r++) {
  for (const [name, fn] of Object.entries(cases)) {
    const c0 = process.cpuUsage();
    const bytes = fn();
    const c = process.cpuUsage(c0);
    if (r > 0) console.log(`round ${r} ${name}: ${(((c.user + c.system) / N)).toFixed(2)} µs/record (${Math.round(bytes / N)} B)`);
  }
}
