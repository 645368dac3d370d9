/**
 * Shadows and traffic splits through a running gateway (models directory mode, in-memory feature store, records
 * captured in memory; the Kafka join is in test/e2e/shadow-kafka.test.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectedFor } from '../helpers/expected.ts';
import { startGateway, postJson, type TestGateway } from '../helpers/gateway.ts';
import { createMemorySink, type MemorySink } from '../helpers/memory-sink.ts';
import { makeModelsDir } from '../helpers/models-dir.ts';
import type { ShadowPairSnapshot } from '../../gateway/shadow/shadow-stats.ts';

const bundles = ['delivery-eta/1', 'delivery-eta/2', 'eta-risk/1', 'tabular-mlp/1'];
const copies = [
  { from: 'eta-risk/1', version: '2' },
  { from: 'tabular-mlp/1', version: '2' },
];
const plain = {
  'delivery-eta': { default: '2' },
  'eta-risk': { default: '1' },
  'tabular-mlp': { default: '1' },
};
const withShadows = {
  // v1 of the same model, and another model with compatible features.
  'delivery-eta': { default: '2', shadows: [{ version: '1' }, { model: 'eta-risk' }] },
  // An identical copy: every label agrees, every probability matches.
  'eta-risk': { default: '1', shadows: [{ version: '2' }] },
  'tabular-mlp': { default: '1', split: [{ version: '1', weight: 50, arm: 'control' }, { version: '2', weight: 50, arm: 'treatment' }] },
};

const eta = expectedFor('delivery-eta', '2').rows;
const risk = expectedFor('eta-risk', '1').rows;
const mlp = expectedFor('tabular-mlp', '1').rows;
const etaBody = (i: number) => ({ rows: [{ entities: eta[i % eta.length]!.entities, features: eta[i % eta.length]!.request }] });
const riskBody = (i: number) => ({ rows: [{ entities: risk[i % risk.length]!.entities, features: risk[i % risk.length]!.request }] });

let shadowed: TestGateway;
let reference: TestGateway;
let sink: MemorySink;

beforeAll(async () => {
  sink = createMemorySink();
  shadowed = await startGateway({ SIBYL_MODELS_DIR: makeModelsDir({ bundles, copies, deployment: { models: withShadows } }) }, { sink });
  reference = await startGateway({ SIBYL_MODELS_DIR: makeModelsDir({ bundles, copies, deployment: { models: plain } }), SIBYL_PREDICTION_LOG: 'off' });
});
afterAll(async () => {
  await shadowed?.stop();
  await reference?.stop();
});

const strip = (json: any) => ({ ...json, requestId: undefined });

describe('shadows', () => {
  it('never change the live response or its error', async () => {
    for (let i = 0; i < 20; i++) {
      const a = await postJson(`${shadowed.http}/v1/models/delivery-eta:predict`, etaBody(i));
      const b = await postJson(`${reference.http}/v1/models/delivery-eta:predict`, etaBody(i));
      expect(a.status).toBe(200);
      expect(strip(a.json)).toEqual(strip(b.json));
    }
    const bad = { rows: [{ entities: eta[0]!.entities, features: { distance_km: 'far' } }] };
    const a = await postJson(`${shadowed.http}/v1/models/delivery-eta:predict`, bad);
    const b = await postJson(`${reference.http}/v1/models/delivery-eta:predict`, bad);
    expect(a.status).toBe(400);
    expect(a.json).toEqual({ ...b.json, requestId: a.json.requestId });
  });

  it('are logged like live executions: role SHADOW, the live request id, after the live record', async () => {
    await shadowed.gateway.shadows.flush();
    sink.records.length = 0;
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) ids.push((await postJson(`${shadowed.http}/v1/models/delivery-eta:predict`, etaBody(i))).json.requestId);
    await shadowed.gateway.shadows.flush();
    for (const id of ids) {
      const recs = sink.records.filter((r) => r.requestId === id);
      expect(recs.map((r) => [r.role, r.model, r.version])).toEqual([
        ['ROLE_LIVE', 'delivery-eta', '2'],
        ['ROLE_SHADOW', 'delivery-eta', '1'],
        ['ROLE_SHADOW', 'eta-risk', '1'],
      ]);
      const shadowRow = recs[1]!.rows[0]!;
      expect(typeof shadowRow.outputs['eta_minutes']).toBe('number');
      expect(recs[2]!.error).toBeUndefined();
      expect(Object.keys(recs[2]!.rows[0]!.outputs).sort()).toEqual(['is_late', 'probabilities']);
    }
  });

  it('compare with the live outputs: mean absolute difference for scores, agreement for labels', async () => {
    shadowed.gateway.shadowStats.reset();
    const live: number[] = [];
    const v1: number[] = [];
    for (let i = 0; i < eta.length; i++) {
      live.push((await postJson(`${shadowed.http}/v1/models/delivery-eta:predict`, etaBody(i))).json.results[0].outputs.eta_minutes);
      v1.push((await postJson(`${reference.http}/v1/models/delivery-eta/versions/1:predict`, etaBody(i))).json.results[0].outputs.eta_minutes);
    }
    for (let i = 0; i < 30; i++) expect((await postJson(`${shadowed.http}/v1/models/eta-risk:predict`, riskBody(i))).status).toBe(200);
    await shadowed.gateway.shadows.flush();

    const { status, json } = await (async () => {
      const res = await fetch(`${shadowed.http}/v1/shadows`);
      return { status: res.status, json: (await res.json()) as { pairs: ShadowPairSnapshot[] } };
    })();
    expect(status).toBe(200);
    const pair = (m: string, v: string, sm: string, sv: string) =>
      json.pairs.find((p) => p.live.model === m && p.live.version === v && p.shadow.model === sm && p.shadow.version === sv)!;

    const etaPair = pair('delivery-eta', '2', 'delivery-eta', '1');
    expect(etaPair).toMatchObject({ executed: eta.length, shed: 0, errors: {} });
    const diffs = live.map((x, i) => Math.abs(x - v1[i]!));
    const mad = diffs.reduce((a, b) => a + b, 0) / diffs.length;
    const cmp = etaPair.outputs['eta_minutes']!;
    expect(cmp.kind).toBe('number');
    if (cmp.kind !== 'number') return;
    expect(cmp.count).toBe(eta.length);
    expect(cmp.meanAbsDiff).toBeCloseTo(mad, 6);
    expect(cmp.meanAbsDiff).toBeGreaterThan(0);
    // The histogram keeps 2 significant digits.
    expect(Math.abs(cmp.absDiff.max - Math.max(...diffs))).toBeLessThanOrEqual(Math.max(...diffs) * 0.01 + 1e-6);
    expect(etaPair.latencyMs.p50).toBeGreaterThan(0);

    const other = pair('delivery-eta', '2', 'eta-risk', '1');
    expect(other).toMatchObject({ executed: eta.length, errors: {}, outputs: {} });

    const same = pair('eta-risk', '1', 'eta-risk', '2');
    expect(same.executed).toBe(30);
    expect(same.outputs['is_late']).toEqual({ kind: 'label', count: 30, agreement: 1 });
    expect(same.outputs['probabilities']).toMatchObject({ kind: 'number', count: 30, meanAbsDiff: 0 });

    const metrics = await (await fetch(`${shadowed.http}/metrics`)).text();
    expect(metrics).toMatch(/sibyl_shadow_executions_total\{[^}]*model="eta-risk"[^}]*shadow_version="2"[^}]*\} 30/);
    expect(metrics).toMatch(/sibyl_shadow_agreement_ratio\{[^}]*output="is_late"[^}]*\} 1/);
  });
});

describe('traffic split', () => {
  const mlpBody = (key: string) => ({ rows: [{ features: mlp[0]!.request }], routingKey: key });

  it('serves each arm its share, says which arm served, and logs the arm', async () => {
    sink.records.length = 0;
    const n = 600;
    const byArm = new Map<string, number>();
    for (let i = 0; i < n; i++) {
      const { status, json } = await postJson(`${shadowed.http}/v1/models/tabular-mlp:predict`, mlpBody(`customer-${i}`));
      expect(status).toBe(200);
      expect(json.version).toBe(json.arm === 'control' ? '1' : '2');
      byArm.set(json.arm, (byArm.get(json.arm) ?? 0) + 1);
      const rec = sink.records.find((r) => r.requestId === json.requestId)!;
      expect(rec.arm).toBe(json.arm);
    }
    expect([...byArm.keys()].sort()).toEqual(['control', 'treatment']);
    expect(Math.abs(byArm.get('control')! - n / 2)).toBeLessThan(5 * Math.sqrt(n / 4));
  });

  it('keeps a customer in one arm across calls and across gateways', async () => {
    const other = await startGateway({ SIBYL_MODELS_DIR: makeModelsDir({ bundles, copies, deployment: { models: withShadows } }), SIBYL_PREDICTION_LOG: 'off', SIBYL_CELL: 'other' });
    try {
      for (let i = 0; i < 40; i++) {
        const key = `sticky-${i}`;
        const first = (await postJson(`${shadowed.http}/v1/models/tabular-mlp:predict`, mlpBody(key))).json.arm;
        for (let j = 0; j < 3; j++) expect((await postJson(`${shadowed.http}/v1/models/tabular-mlp:predict`, mlpBody(key))).json.arm).toBe(first);
        expect((await postJson(`${other.http}/v1/models/tabular-mlp:predict`, mlpBody(key))).json.arm).toBe(first);
      }
    } finally {
      await other.stop();
    }
  });

  it('does not apply when the request names a version or an alias', async () => {
    for (let i = 0; i < 20; i++) {
      const { json } = await postJson(`${shadowed.http}/v1/models/tabular-mlp/versions/2:predict`, mlpBody(`k${i}`));
      expect([json.version, json.arm ?? '']).toEqual(['2', '']);
    }
  });
});
