/**
 * Serving statistics end to end: a real control tower (PGlite) and two gateway replicas of one cell following it
 * over HTTP, reporting every 100 ms. Generated request streams go through the gateways' REST door; the figures
 * the gateways and the tower compute are checked against the streams' true figures:
 * - count, defaulted counts, min and max exactly; mean and variance to 1e-9 (relative);
 * - every quantile within the sketch's stated error: the value at rank floor(q (n - 1)) of the sorted stream, within
 *   1% (relative), for q from 0.01 to 0.99;
 * - the tower merges the two replicas into the figures of the union of their streams;
 * - drift: a stream drawn from the training histograms scores every feature under the threshold; the same stream
 *   with two features shifted scores those two over it and the others under.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readFileSync } from 'node:fs';
import { postJson, startGateway, type TestGateway } from '../helpers/gateway.ts';
import { bundleEntries, makeZip } from '../runtimes/bundle/zips.ts';
import { startTestTower, type TestTower } from '../control-tower/api/tower.ts';
import { parseManifest, type Manifest } from '../../runtimes/manifest.ts';
import type { ValueView, CellVersionStatistics } from '../../stats/view.ts';
import type { ValueSummary } from '../../proto/gen/sibyl/v1/statistics_pb.js';
import { quantileOf, sketchFromMessage, RELATIVE_ACCURACY } from '../../stats/sketch.ts';
import { mergeVersionStatistics } from '../../stats/summary.ts';

let t: TestTower;
let towerUrl: string;
const replicas: TestGateway[] = [];
const ROOT = new URL('../../', import.meta.url).pathname;
const execFileAsync = promisify(execFile);
const MODELS = join(ROOT, 'models');
const manifestOf = (model: string, version: string): Manifest => parseManifest(readFileSync(join(MODELS, model, version, 'sibyl.yaml'), 'utf8'));

beforeAll(async () => {
  t = await startTestTower({ SIBYL_CELLS: 'local' });
  const { port } = await t.tower.start();
  towerUrl = `http://127.0.0.1:${port}`;
  const upload = async (model: string, version: string) => {
    const zip = await makeZip(bundleEntries(model, version));
    const res = await fetch(`${towerUrl}/v1/models?cells=local`, { method: 'POST', body: zip, headers: { authorization: `Bearer ${t.tower.adminToken}`, 'content-type': 'application/zip' } });
    expect(res.status).toBe(201);
  };
  await upload('tabular-mlp', '1');
  await upload('delivery-eta', '1');
  await upload('delivery-eta', '2');
  for (const name of ['replica-a', 'replica-b']) {
    replicas.push(
      await startGateway(
        {
          SIBYL_CELL: 'local',
          SIBYL_REPLICA: name,
          SIBYL_CONTROL_TOWER_URL: towerUrl,
          SIBYL_TOWER_TOKEN: t.tower.adminToken,
          SIBYL_CACHE_DIR: mkdtempSync(join(tmpdir(), `sibyl-cache-${name}-`)),
          SIBYL_SYNC_WAIT_MS: '1000',
          SIBYL_PREDICTION_LOG: 'off',
        },
        { sync: { reportIntervalMs: 100 } },
      ),
    );
  }
  for (const gw of replicas) await gw.gateway.follower.ready;
}, 90_000);
afterAll(async () => {
  for (const gw of replicas) await gw.stop();
  await t?.stop();
});

/** A seeded generator (mulberry32), so a failure can be replayed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/** Draws a value from a training histogram: a bin by its count, then uniformly within it (min and max close the ends). */
function drawFrom(stats: NonNullable<Manifest['statistics']>['features'][string], random: () => number): number {
  const { edges, counts } = stats.histogram!;
  const total = counts.reduce((a, b) => a + b, 0);
  let r = random() * total;
  let i = 0;
  while (i < counts.length - 1 && r >= counts[i]!) r -= counts[i++]!;
  const lo = i === 0 ? stats.min! : edges[i - 1]!;
  const hi = i === edges.length ? stats.max! : edges[i]!;
  return Math.round((lo + (hi - lo) * random()) * 1e4) / 1e4;
}

async function send(gw: TestGateway, path: string, rows: readonly Record<string, number>[]): Promise<number[]> {
  const outputs: number[] = [];
  for (let i = 0; i < rows.length; i += 100) {
    const res = await postJson(`${gw.http}${path}`, { rows: rows.slice(i, i + 100).map((features) => ({ features })) });
    expect(res.status).toBe(200);
    for (const r of res.json.results as { outputs: Record<string, number> }[]) outputs.push(Object.values(r.outputs)[0]!);
  }
  return outputs;
}

/** The tower's statistics of a version, once it has merged `rows` rows. */
async function towerStatistics(model: string, version: string, rows: number): Promise<CellVersionStatistics> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const res = await t.call('GET', `/v1/models/${model}/versions/${version}/statistics`);
    expect(res.status).toBe(200);
    const s = (res.json.statistics as CellVersionStatistics[]).find((x) => x.cell === 'local');
    if (s && s.rows === rows) return s;
    if (Date.now() > deadline) throw new Error(`the tower merged ${s?.rows ?? 0} rows of ${model}/${version}, not ${rows}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Checks a summary's figures against the values it should summarize. */
function expectFigures(
  got: { values: number; mean?: number | undefined; variance?: number | undefined; min?: number | undefined; max?: number | undefined },
  quantile: (q: number) => number,
  values: readonly number[],
  qs: readonly number[] = Array.from({ length: 99 }, (_, i) => (i + 1) / 100),
): void {
  const sorted = [...values].sort((a, b) => a - b);
  const n = sorted.length;
  const mean = sorted.reduce((a, b) => a + b, 0) / n;
  const variance = sorted.reduce((a, b) => a + (b - mean) ** 2, 0) / n;
  expect(got.values).toBe(n);
  expect(got.min).toBe(sorted[0]);
  expect(got.max).toBe(sorted[n - 1]);
  expect(Math.abs(got.mean! - mean)).toBeLessThanOrEqual(1e-9 * Math.max(1, Math.abs(mean)));
  expect(Math.abs(got.variance! - variance)).toBeLessThanOrEqual(1e-9 * Math.max(1, variance));
  for (const q of qs) {
    const want = sorted[Math.floor(q * (n - 1))]!;
    expect(Math.abs(quantile(q) - want), `quantile ${q.toFixed(2)}`).toBeLessThanOrEqual(RELATIVE_ACCURACY * Math.abs(want) + 1e-12);
  }
}

describe('serving statistics', () => {
  const mlp = manifestOf('tabular-mlp', '1');
  const random = rng(19);
  // Two streams, one per replica; a tenth of the rows leave basket_size out (it gets its default: 'missing').
  const streams = [0, 1].map((k) =>
    Array.from({ length: 1500 + 300 * k }, (_, i) => {
      const row: Record<string, number> = {};
      for (const f of mlp.features) if (!(f.name === 'basket_size' && i % 10 === 3)) row[f.name] = drawFrom(mlp.statistics!.features[f.name]!, random);
      return row;
    }),
  );
  const outputs: number[][] = [];

  it('each replica summarizes its own stream: exact counts, min, max, mean and variance, quantiles within 1%', async () => {
    for (let k = 0; k < 2; k++) outputs.push(await send(replicas[k]!, '/v1/models/tabular-mlp/versions/1:predict', streams[k]!));
    for (let k = 0; k < 2; k++) {
      const snap = replicas[k]!.gateway.statistics.snapshot().find((s) => s.model === 'tabular-mlp')!;
      expect(Number(snap.rows)).toBe(streams[k]!.length);
      for (const f of mlp.features) {
        const v = snap.features[f.name]!;
        const values = streams[k]!.flatMap((r) => (r[f.name] === undefined ? [] : [r[f.name]!]));
        expect(Number(v.count)).toBe(streams[k]!.length);
        expect(Number(v.defaulted.missing ?? 0n)).toBe(streams[k]!.length - values.length);
        expectSummary(v, values);
      }
      expectSummary(snap.outputs.output!, outputs[k]!);
    }
  });

  it('the tower merges the two replicas into the figures of both streams together', async () => {
    const total = streams[0]!.length + streams[1]!.length;
    const s = await towerStatistics('tabular-mlp', '1', total);
    expect(s.replicas).toEqual(['replica-a', 'replica-b']);
    for (const f of mlp.features) {
      const values = [...streams[0]!, ...streams[1]!].flatMap((r) => (r[f.name] === undefined ? [] : [r[f.name]!]));
      const v = s.features[f.name]!;
      expect(v.count).toBe(total);
      expect(v.defaulted.missing ?? 0).toBe(total - values.length);
      expectView(v, values);
    }
    expectView(s.outputs.output!, [...outputs[0]!, ...outputs[1]!]);
    // Every quantile of the merge (the tower's merge, of the replicas' snapshots) within 1% of the union's.
    const merged = mergeVersionStatistics(replicas.map((gw) => gw.gateway.statistics.snapshot().find((x) => x.model === 'tabular-mlp')!));
    for (const f of mlp.features) expectSummary(merged.features[f.name]!, [...streams[0]!, ...streams[1]!].flatMap((r) => (r[f.name] === undefined ? [] : [r[f.name]!])));
  });

  it('drift: a stream like the training data stays under the threshold, two shifted features go over it', async () => {
    const eta = manifestOf('delivery-eta', '1');
    const shifted = new Set(['distance_km', 'basket_value']);
    const r2 = rng(7);
    const base = Array.from({ length: 2000 }, () => Object.fromEntries(eta.features.map((f) => [f.name, drawFrom(eta.statistics!.features[f.name]!, r2)])));
    // The same rows: to version 1 as drawn, to version 2 with distance doubled plus 2 km and baskets 60% dearer.
    const moved = base.map((row) => ({ ...row, distance_km: row.distance_km! * 2 + 2, basket_value: row.basket_value! * 1.6 }));
    await send(replicas[0]!, '/v1/models/delivery-eta/versions/1:predict', base.slice(0, 1000));
    await send(replicas[1]!, '/v1/models/delivery-eta/versions/1:predict', base.slice(1000));
    await send(replicas[1]!, '/v1/models/delivery-eta/versions/2:predict', moved);

    const same = await towerStatistics('delivery-eta', '1', 2000);
    expect(same.threshold).toBe(0.2);
    expect(same.drifted).toEqual([]);
    for (const f of eta.features) expect(same.features[f.name]!.drift!.psi, f.name).toBeLessThan(0.05);

    const shift = await towerStatistics('delivery-eta', '2', 2000);
    expect(shift.drifted.filter((d) => d.startsWith('features.')).sort()).toEqual(['features.basket_value', 'features.distance_km']);
    for (const f of eta.features) {
      const psi = shift.features[f.name]!.drift!.psi;
      if (shifted.has(f.name)) expect(psi, f.name).toBeGreaterThan(0.2);
      else expect(psi, f.name).toBeLessThan(0.05);
    }

    // The same through `sibyl stats`.
    // Asynchronously: the tower answers from this process.
    const text = (await execFileAsync(process.execPath, [join(ROOT, 'cli/sibyl.ts'), 'stats', 'delivery-eta', '2', '--tower', towerUrl, '--token', t.tower.adminToken], { timeout: 60_000 })).stdout;
    expect(text).toMatch(/^delivery-eta version 2 in cell local: 2000 rows from 1 replica\(s\)/);
    expect(text).toMatch(/DRIFTED: features\.basket_value, features\.distance_km/);
    expect(text).toMatch(/^feature +distance_km +2000 +0 .* DRIFTED$/m);
    expect(text).toMatch(/^feature +traffic_index +2000 +0 .*\d$/m);

    // The same figures over Prometheus.
    const metrics = await (await fetch(`${towerUrl}/metrics`)).text();
    expect(metrics).toMatch(/sibyl_drifted\{cell="local",model="delivery-eta",version="2",kind="feature",name="distance_km"\} 1/);
    expect(metrics).toMatch(/sibyl_drifted\{cell="local",model="delivery-eta",version="1",kind="feature",name="distance_km"\} 0/);
    expect(metrics).toMatch(/sibyl_serving_rows\{cell="local",model="delivery-eta",version="2"\} 2000/);
  });
});

function expectSummary(v: ValueSummary, values: readonly number[]): void {
  const sketch = sketchFromMessage(v.sketch!);
  expectFigures({ values: Number(v.values), mean: v.mean, variance: v.variance, min: v.min, max: v.max }, (q) => quantileOf(sketch, q), values);
}

/** The tower's view: its figures exactly, and the seven quantiles it shows within 1%. */
function expectView(v: ValueView, values: readonly number[]): void {
  const shown: Record<string, number> = { 0.01: v.quantiles!.p1, 0.05: v.quantiles!.p5, 0.25: v.quantiles!.p25, 0.5: v.quantiles!.p50, 0.75: v.quantiles!.p75, 0.95: v.quantiles!.p95, 0.99: v.quantiles!.p99 };
  expectFigures(v, (q) => shown[String(q)]!, values, Object.keys(shown).map(Number));
}
