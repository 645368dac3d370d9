/**
 * One entry under four doors: the decisions a request's answer depends on (the split's arm, a composed rule's
 * models, shadows) are made once, so Sibyl REST, Sibyl gRPC, OIP REST and OIP gRPC give the same version, arm and
 * outputs for the same request.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PredictionService } from '../../proto/gen/sibyl/v1/predict_pb.js';
import { GRPCInferenceService } from '../../proto/gen/inference/open_inference_grpc_pb.js';
import type { ShadowPairSnapshot } from '../../gateway/shadow/shadow-stats.ts';
import { expectedFor, type ExpectedRow } from '../helpers/expected.ts';
import { postJson, startGateway, type TestGateway } from '../helpers/gateway.ts';
import { makeModelsDir } from '../helpers/models-dir.ts';
import { BLEND, writeRule } from '../helpers/rule-dirs.ts';

const eta = expectedFor('delivery-eta', '2').rows.slice(0, 4);

/** A gateway over delivery-eta 1 and 2 with `split` and the composed rule eta-blend as delivery-eta's shadow. */
async function gatewayWith(split: object[]): Promise<TestGateway> {
  const dir = makeModelsDir({
    bundles: ['delivery-eta/1', 'delivery-eta/2', 'eta-risk/1'],
    deployment: {
      models: {
        'delivery-eta': { default: '1', split, shadows: [{ model: 'eta-blend' }] },
        'eta-risk': { default: '1' },
        'eta-blend': { default: '1' },
      },
    },
  });
  writeRule(dir, BLEND.manifest, BLEND.source);
  return startGateway({ SIBYL_MODELS_DIR: dir, SIBYL_PREDICTION_LOG: 'off' });
}

interface Answer {
  readonly version: string;
  readonly eta: number;
  /** The arm over Sibyl's API; OIP does not carry it. */
  readonly arm?: string;
}

type Door = (gw: TestGateway, model: string, r: ExpectedRow, routingKey: string) => Promise<Answer>;

const sibylRest: Door = async (gw, model, r, routingKey) => {
  const res = await postJson(`${gw.http}/v1/models/${model}:predict`, { routingKey, rows: [{ entities: r.entities, features: r.request }] });
  expect(res.status, JSON.stringify(res.json)).toBe(200);
  return { version: res.json.version, arm: res.json.arm, eta: res.json.results[0].outputs.eta_minutes };
};

const sibylGrpc: Door = async (gw, model, r, routingKey) => {
  const res = await gw.sibyl.call(PredictionService.method.predict, {
    model,
    routingKey,
    rows: [{ entities: r.entities, features: Object.fromEntries(Object.entries(r.request).map(([k, v]) => [k, { kind: { case: 'numberValue' as const, value: v } }])) }],
  });
  if (!res.ok) throw new Error(`gRPC ${res.code}: ${res.details}`);
  return { version: res.value.version, arm: res.value.arm, eta: res.value.results[0]!.outputs['eta_minutes']!.kind.value as number };
};

function oipInputs(r: ExpectedRow) {
  return [
    ...Object.entries(r.entities).map(([name, id]) => ({ name, datatype: 'BYTES', shape: [1], data: [id] })),
    ...Object.entries(r.request).map(([name, v]) => ({ name, datatype: 'FP32', shape: [1, 1], data: [v] })),
  ];
}

const oipRest: Door = async (gw, model, r, routingKey) => {
  const res = await postJson(`${gw.http}/v2/models/${model}/infer`, { inputs: oipInputs(r), ...(routingKey ? { parameters: { sibyl_routing_key: routingKey } } : {}) });
  expect(res.status, JSON.stringify(res.json)).toBe(200);
  return { version: res.json.model_version, eta: res.json.outputs.find((o: { name: string }) => o.name === 'eta_minutes').data[0] };
};

const oipGrpc: Door = async (gw, model, r, routingKey) => {
  const res = await gw.oip.call(GRPCInferenceService.method.modelInfer, {
    modelName: model,
    inputs: oipInputs(r).map((t) => ({
      name: t.name,
      datatype: t.datatype,
      shape: t.shape.map(BigInt),
      contents: t.datatype === 'BYTES' ? { bytesContents: (t.data as string[]).map((s) => new TextEncoder().encode(s)) } : { fp32Contents: t.data as number[] },
    })),
    parameters: routingKey ? { sibyl_routing_key: { parameterChoice: { case: 'stringParam', value: routingKey } } } : {},
  });
  if (!res.ok) throw new Error(`gRPC ${res.code}: ${res.details}`);
  const i = res.value.outputs.findIndex((o) => o.name === 'eta_minutes');
  const raw = res.value.rawOutputContents[i]!;
  const datatype = res.value.outputs[i]!.datatype;
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  return { version: res.value.modelVersion, eta: datatype === 'FP64' ? view.getFloat64(0, true) : view.getFloat32(0, true) };
};

const doors = { sibylRest, sibylGrpc, oipRest, oipGrpc };

async function viaAll(gw: TestGateway, model: string, r: ExpectedRow, routingKey = ''): Promise<Record<string, Answer>> {
  const out: Record<string, Answer> = {};
  for (const [name, door] of Object.entries(doors)) out[name] = await door(gw, model, r, routingKey);
  return out;
}

describe('a split of 0/100', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await gatewayWith([
      { version: '1', weight: 0, arm: 'old' },
      { version: '2', weight: 100, arm: 'new' },
    ]);
  }, 60_000);
  afterAll(() => gw?.stop());

  it('sends a request that names no version to version 2 on every door', async () => {
    for (const r of eta) {
      const out = await viaAll(gw, 'delivery-eta', r);
      for (const [door, a] of Object.entries(out)) {
        expect(a.version, door).toBe('2');
        expect(a.eta, door).toBeCloseTo(r.expected['eta_minutes'] as number, 4);
      }
      expect(out['sibylRest']!.arm).toBe('new');
      expect(out['sibylGrpc']!.arm).toBe('new');
    }
  });
});

describe('a split of 50/50 with routing keys', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await gatewayWith([
      { version: '1', weight: 50, arm: 'a' },
      { version: '2', weight: 50, arm: 'b' },
    ]);
  }, 60_000);
  afterAll(() => gw?.stop());

  it('puts the same key in the same arm and version on every door, and uses both arms', async () => {
    const seen = new Set<string>();
    for (let k = 0; k < 12; k++) {
      const key = `customer-${k}`;
      const out = await viaAll(gw, 'delivery-eta', eta[k % eta.length]!, key);
      const version = out['sibylRest']!.version;
      for (const [door, a] of Object.entries(out)) expect(a.version, `${door} key ${key}`).toBe(version);
      expect(out['sibylGrpc']!.arm).toBe(out['sibylRest']!.arm);
      seen.add(version);
    }
    expect([...seen].sort()).toEqual(['1', '2']);
  });

  it('refuses a routing key of the wrong type over OIP REST, precisely', async () => {
    const res = await postJson(`${gw.http}/v2/models/delivery-eta/infer`, { inputs: oipInputs(eta[0]!), parameters: { sibyl_routing_key: 7 } });
    expect(res).toMatchObject({ status: 400, json: { code: 'INVALID_ARGUMENT', error: 'parameters.sibyl_routing_key: must be a string' } });
  });
});

describe('a composed rule', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await gatewayWith([{ version: '2', weight: 1, arm: 'main' }]);
  }, 60_000);
  afterAll(() => gw?.stop());

  it('answers the same blend on every door, its models reading the request features and the store', async () => {
    for (const r of eta) {
      const v1 = (await postJson(`${gw.http}/v1/models/delivery-eta/versions/1:predict`, { rows: [{ entities: r.entities, features: r.request }] })).json.results[0].outputs.eta_minutes;
      const v2 = (await postJson(`${gw.http}/v1/models/delivery-eta/versions/2:predict`, { rows: [{ entities: r.entities, features: r.request }] })).json.results[0].outputs.eta_minutes;
      const out = await viaAll(gw, 'eta-blend', r);
      for (const [door, a] of Object.entries(out)) {
        expect(a.version, door).toBe('1');
        expect(a.eta, door).toBeCloseTo(0.3 * v1 + 0.7 * v2, 4);
      }
    }
  });

  it('advertises its models\' inputs in its OIP metadata', async () => {
    const res = await fetch(`${gw.http}/v2/models/eta-blend`);
    const names = ((await res.json()) as { inputs: { name: string }[] }).inputs.map((i) => i.name);
    expect(names).toEqual(expect.arrayContaining([...Object.keys(eta[0]!.entities), ...Object.keys(eta[0]!.request)]));
  });

  it('runs as a shadow with its models\' outputs, not as a failing call', async () => {
    const before = await shadowPair(gw);
    for (const r of eta) expect((await sibylRest(gw, 'delivery-eta', r, '')).version).toBe('2');
    await gw.gateway.shadows.flush();
    const after = await shadowPair(gw);
    expect(after.executed - (before?.executed ?? 0), JSON.stringify(after)).toBe(eta.length);
    expect(after.shed).toBe(0);
    expect(after.errors).toEqual({});
    // Compared with the live answers: every shadow execution gave an eta_minutes.
    const compared = after.outputs['eta_minutes']!;
    expect(compared.count - (before?.outputs['eta_minutes']?.count ?? 0)).toBe(eta.length);
  });
});

async function shadowPair(gw: TestGateway): Promise<ShadowPairSnapshot> {
  const { pairs } = (await (await fetch(`${gw.http}/v1/shadows`)).json()) as { pairs: ShadowPairSnapshot[] };
  return pairs.find((p) => p.live.model === 'delivery-eta' && p.live.version === '2' && p.shadow.model === 'eta-blend')!;
}
