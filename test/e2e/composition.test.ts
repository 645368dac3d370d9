/**
 * Composed rules through a running gateway: a weighted blend of two versions, and a threshold with a business
 * override over two other models. The rule gets the composed models' outputs for the same request; each model reads
 * the features it declares (request values, else the store).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectedFor } from '../helpers/expected.ts';
import { postJson, startGateway, type TestGateway } from '../helpers/gateway.ts';
import { makeModelsDir } from '../helpers/models-dir.ts';
import { BLEND, GUARD, writeRule } from '../helpers/rule-dirs.ts';

let gw: TestGateway;
beforeAll(async () => {
  const dir = makeModelsDir({
    bundles: ['delivery-eta/1', 'delivery-eta/2', 'eta-risk/1'],
    deployment: { models: { 'delivery-eta': { default: '2' }, 'eta-risk': { default: '1' } } },
  });
  writeRule(dir, BLEND.manifest, BLEND.source);
  writeRule(dir, GUARD.manifest, GUARD.source);
  gw = await startGateway({ SIBYL_MODELS_DIR: dir, SIBYL_PREDICTION_LOG: 'off' });
}, 60_000);
afterAll(() => gw?.stop());

const rows = expectedFor('delivery-eta', '2').rows;
const risk = expectedFor('eta-risk', '1').rows;

describe('composed rules', () => {
  it('blend two versions of a model on the same request (features from the request and the store)', async () => {
    for (const r of rows.slice(0, 5)) {
      const body = { rows: [{ entities: r.entities, features: r.request }] };
      const v1 = (await postJson(`${gw.http}/v1/models/delivery-eta/versions/1:predict`, body)).json.results[0].outputs.eta_minutes;
      const v2 = (await postJson(`${gw.http}/v1/models/delivery-eta/versions/2:predict`, body)).json.results[0].outputs.eta_minutes;
      const blend = await postJson(`${gw.http}/v1/models/eta-blend:predict`, body);
      expect(blend.status).toBe(200);
      expect(blend.json.results[0].outputs.eta_minutes).toBeCloseTo(0.3 * v1 + 0.7 * v2, 9);
    }
  });

  it('pad a delivery estimate when the risk model says late, and apply the business override, in batches', async () => {
    const batch = risk.slice(0, 6).map((r, i) => {
      const eta = rows[i]!;
      return { entities: { ...eta.entities, ...r.entities }, features: { ...eta.request, ...r.request, vip: i % 2 === 0 } };
    });
    const guard = await postJson(`${gw.http}/v1/models/late-guard:predict`, { rows: batch });
    expect(guard.status).toBe(200);
    for (let i = 0; i < batch.length; i++) {
      const one = { rows: [{ entities: batch[i]!.entities, features: Object.fromEntries(Object.entries(batch[i]!.features).filter(([k]) => k !== 'vip')) }] };
      const etaFeatures = { rows: [{ entities: rows[i]!.entities, features: rows[i]!.request }] };
      const eta = (await postJson(`${gw.http}/v1/models/delivery-eta:predict`, etaFeatures)).json.results[0].outputs.eta_minutes;
      const late = (await postJson(`${gw.http}/v1/models/eta-risk:predict`, { rows: [{ entities: risk[i]!.entities, features: risk[i]!.request }] })).json.results[0].outputs.is_late;
      let want = eta + (late === 1 ? 10 : 0);
      if (i % 2 === 0 && want > 30) want = 30;
      expect(guard.json.results[i].outputs, JSON.stringify(one)).toEqual({ eta_minutes: expect.closeTo(want, 9), padded: late === 1 });
    }
  });

  it('refuses a feature that neither the rule nor its models have, naming it', async () => {
    const res = await postJson(`${gw.http}/v1/models/eta-blend:predict`, { rows: [{ features: { no_such_feature: 1 } }] });
    expect(res).toMatchObject({ status: 400, json: { code: 'INVALID_ARGUMENT', message: expect.stringContaining('no_such_feature') } });
  });
});
