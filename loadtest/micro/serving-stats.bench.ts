/**
 * CPU per row of the serving statistics on the request path (gateway/stats/serving-statistics.ts `record`), with
 * the delivery-eta version 2 manifest (20 float features, 1 output) and the 50 rows of its expected.json as the
 * enriched features: one-row executions (the common request) and 16-row ones; a tenth of the one-row executions
 * with two store features defaulted. Also the cost of a snapshot (what each report to the tower computes) and the
 * report's size. Rounds interleave; the first is warm-up.
 *
 * Run: node loadtest/micro/serving-stats.bench.ts [rows=200000] [rounds=5]
 */
import { readFileSync } from 'node:fs';
import { toJsonString } from '@bufbuild/protobuf';
import { VersionStatisticsSchema } from '../../proto/gen/sibyl/v1/statistics_pb.js';
import type { Execution } from '../../execution/execute.ts';
import { ModelVersion } from '../../execution/model-version.ts';
import type { LoadedModel } from '../../runtimes/contract.ts';
import { parseManifest } from '../../runtimes/manifest.ts';
import { ServingStatistics } from '../../gateway/stats/serving-statistics.ts';

const N = Number(process.argv[2] ?? 200_000);
const ROUNDS = Number(process.argv[3] ?? 5);
const dir = new URL('../../models/delivery-eta/2/', import.meta.url);
const manifest = parseManifest(readFileSync(new URL('sibyl.yaml', dir), 'utf8'));
const expected = JSON.parse(readFileSync(new URL('expected.json', dir), 'utf8')) as { rows: { features: Record<string, number>; expected: { eta_minutes: number } }[] };
const loaded: LoadedModel = { predict: () => Promise.resolve([]), dispose: () => Promise.resolve() } as unknown as LoadedModel;
const version = new ModelVersion(manifest, loaded);

function execution(rows: number, offset: number, defaulted: boolean): Execution {
  const pick = (i: number) => expected.rows[(offset + i) % expected.rows.length]!;
  return {
    rows: Array.from({ length: rows }, (_, i) => ({ ...pick(i).features })),
    outputs: Array.from({ length: rows }, (_, i) => ({ eta_minutes: pick(i).expected.eta_minutes })),
    defaulted: Array.from({ length: rows }, () => (defaulted ? ['kitchen_load', 'traffic_index'] : [])),
    enrichedAt: 0,
    modelMs: 0,
    storeFailure: defaulted ? 'timeout' : undefined,
  };
}
const single = Array.from({ length: 500 }, (_, i) => execution(1, i, i % 10 === 0));
const batches = Array.from({ length: 50 }, (_, i) => execution(16, i, false));

const cases: Record<string, (stats: ServingStatistics) => number> = {
  '1-row executions (10% with 2 defaults)': (stats) => {
    for (let i = 0; i < N; i++) stats.record(version, single[i % single.length]!, 1.5);
    return N;
  },
  '16-row executions': (stats) => {
    const n = Math.floor(N / 16);
    for (let i = 0; i < n; i++) stats.record(version, batches[i % batches.length]!, 1.5);
    return n * 16;
  },
};

for (let r = 0; r < ROUNDS; r++) {
  for (const [name, fn] of Object.entries(cases)) {
    const stats = new ServingStatistics();
    const c0 = process.cpuUsage();
    const rows = fn(stats);
    const c = process.cpuUsage(c0);
    if (r > 0) console.log(`round ${r} ${name}: ${((c.user + c.system) / rows).toFixed(3)} µs/row`);
    if (r === ROUNDS - 1 && name.startsWith('1-row')) {
      // 16 windows of traffic, as a gateway that has run a while holds them.
      for (let w = 0; w < 15; w++) {
        stats.rotate();
        for (let i = 0; i < 2000; i++) stats.record(version, single[i % single.length]!, 1.5);
      }
      for (let k = 0; k < 3; k++) {
        const s0 = process.cpuUsage();
        const snap = stats.snapshot();
        const s = process.cpuUsage(s0);
        console.log(`snapshot of 16 windows: ${((s.user + s.system) / 1000).toFixed(2)} ms CPU, ${toJsonString(VersionStatisticsSchema, snap[0]!).length} bytes of ProtoJSON per version`);
      }
    }
  }
}
