/**
 * One pipeline, four front doors: the same request gives the same outputs, and the same error code, over Sibyl REST,
 * Sibyl gRPC, OIP REST and OIP gRPC.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { status } from '@grpc/grpc-js';
import { PredictionService } from '../../proto/gen/sibyl/v1/predict_pb.js';
import { GRPCInferenceService } from '../../proto/gen/inference/open_inference_grpc_pb.js';
import { startGateway, postJson, type TestGateway } from '../helpers/gateway.ts';
import { expectedFor, type ExpectedRow } from '../helpers/expected.ts';
import { Code } from '../../core/errors.ts';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ SIBYL_PREDICTION_LOG: 'off' });
});
afterAll(() => gw.stop());

const eta = expectedFor('delivery-eta', '2');
const rows = eta.rows.slice(0, 5);
const requestFeatures = Object.keys(rows[0]!.request);
const entities = Object.keys(rows[0]!.entities);

type Outcome = { outputs: number[][] } | { code: string };

async function viaSibylRest(model: string, version: string, rs: ExpectedRow[]): Promise<Outcome> {
  const path = version ? `/v1/models/${model}/versions/${version}:predict` : `/v1/models/${model}:predict`;
  const res = await postJson(gw.http + path, { rows: rs.map((r) => ({ entities: r.entities, features: r.request })) });
  if (res.status !== 200) return { code: res.json.code };
  return { outputs: res.json.results.map((r: any) => [r.outputs.eta_minutes]) };
}

async function viaSibylGrpc(model: string, version: string, rs: ExpectedRow[]): Promise<Outcome> {
  const res = await gw.sibyl.call(PredictionService.method.predict, {
    model,
    version,
    rows: rs.map((r) => ({
      entities: r.entities,
      features: Object.fromEntries(Object.entries(r.request).map(([k, v]) => [k, { kind: { case: 'numberValue' as const, value: v } }])),
    })),
  });
  if (!res.ok) return { code: codeName(res.code) };
  return { outputs: res.value.results.map((r) => [r.outputs['eta_minutes']!.kind.value as number]) };
}

function oipInputs(rs: ExpectedRow[]) {
  return [
    ...entities.map((e) => ({ name: e, datatype: 'BYTES', shape: [rs.length], data: rs.map((r) => r.entities[e]!) })),
    ...requestFeatures.map((f) => ({ name: f, datatype: 'FP32', shape: [rs.length, 1], data: rs.map((r) => r.request[f]!) })),
  ];
}

async function viaOipRest(model: string, version: string, rs: ExpectedRow[]): Promise<Outcome> {
  const path = version ? `/v2/models/${model}/versions/${version}/infer` : `/v2/models/${model}/infer`;
  const res = await postJson(gw.http + path, { inputs: oipInputs(rs) });
  if (res.status !== 200) return { code: res.json.code };
  const out = res.json.outputs.find((o: any) => o.name === 'eta_minutes');
  return { outputs: out.data.map((v: number) => [v]) };
}

async function viaOipGrpc(model: string, version: string, rs: ExpectedRow[]): Promise<Outcome> {
  const res = await gw.oip.call(GRPCInferenceService.method.modelInfer, {
    modelName: model,
    modelVersion: version,
    inputs: oipInputs(rs).map((t) => ({
      name: t.name,
      datatype: t.datatype,
      shape: t.shape.map(BigInt),
      contents: t.datatype === 'BYTES' ? { bytesContents: (t.data as string[]).map((s) => new TextEncoder().encode(s)) } : { fp32Contents: t.data as number[] },
    })),
  });
  if (!res.ok) return { code: codeName(res.code) };
  const i = res.value.outputs.findIndex((o) => o.name === 'eta_minutes');
  const raw = res.value.rawOutputContents[i]!;
  const f32 = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  return { outputs: [...f32].map((v) => [v]) };
}

function codeName(n: number): string {
  return Object.entries(Code).find(([, v]) => v === n)?.[0] ?? `code ${n}`;
}

const transports = { sibylRest: viaSibylRest, sibylGrpc: viaSibylGrpc, oipRest: viaOipRest, oipGrpc: viaOipGrpc };

async function allFour(model: string, version: string, rs: ExpectedRow[]): Promise<Record<string, Outcome>> {
  const entries = await Promise.all(Object.entries(transports).map(async ([k, f]) => [k, await f(model, version, rs)] as const));
  return Object.fromEntries(entries);
}

describe('parity across transports', () => {
  it('gives the same outputs for the same request', async () => {
    const out = await allFour('delivery-eta', '2', rows);
    const ref = out['sibylRest'] as { outputs: number[][] };
    expect(ref.outputs).toHaveLength(rows.length);
    // REST JSON carries the float32 result as a double; gRPC raw tensors carry the float32 itself.
    for (const k of Object.keys(transports)) {
      const o = out[k] as { outputs: number[][] };
      expect(o.outputs, k).toHaveLength(rows.length);
      o.outputs.forEach((r, i) => expect(Math.fround(r[0]!), `${k} row ${i}`).toBe(Math.fround(ref.outputs[i]![0]!)));
    }
  });

  it.each([
    ['unknown model', 'no-such-model', '', 'NOT_FOUND'],
    ['unknown version', 'delivery-eta', '99', 'NOT_FOUND'],
  ])('gives the same error code for %s', async (_label, model, version, code) => {
    const out = await allFour(model, version, rows);
    for (const k of Object.keys(transports)) expect(out[k], k).toEqual({ code });
  });

  it('gives INVALID_ARGUMENT on every transport for a missing entity id', async () => {
    const broken = rows.map((r) => ({ ...r, entities: { ...r.entities, restaurant: '' } }));
    const out = await allFour('delivery-eta', '2', broken);
    for (const k of Object.keys(transports)) expect(out[k], k).toEqual({ code: 'INVALID_ARGUMENT' });
  });

  it('maps gRPC status numbers to the same code names the REST bodies carry', () => {
    expect(status.NOT_FOUND).toBe(Code.NOT_FOUND);
    expect(status.INVALID_ARGUMENT).toBe(Code.INVALID_ARGUMENT);
    expect(status.RESOURCE_EXHAUSTED).toBe(Code.RESOURCE_EXHAUSTED);
  });
});
