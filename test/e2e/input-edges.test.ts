/**
 * Input edges, over every door they apply to: a float32 value beyond float32's range is refused like an infinite
 * one, and the message says what was sent; OIP refuses an input given twice and a gRPC input with both typed and
 * raw contents; an oversized body is 413 naming SIBYL_MAX_BODY_BYTES; a predict path asked with GET is 405.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PredictionService } from '../../proto/gen/sibyl/v1/predict_pb.js';
import { GRPCInferenceService } from '../../proto/gen/inference/open_inference_grpc_pb.js';
import { Code } from '../../core/errors.ts';
import { expectedFor } from '../helpers/expected.ts';
import { postJson, startGateway, type TestGateway } from '../helpers/gateway.ts';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ SIBYL_PREDICTION_LOG: 'off', SIBYL_MAX_BODY_BYTES: '65536' });
});
afterAll(() => gw.stop());

const mlp = expectedFor('tabular-mlp', '1').rows[0]!;
const names = Object.keys(mlp.request);
const asValue = (v: number) => ({ kind: { case: 'numberValue' as const, value: v } });

async function stillServes(): Promise<void> {
  expect((await postJson(`${gw.http}/v1/models/tabular-mlp:predict`, { rows: [{ features: mlp.request }] })).status).toBe(200);
}

describe('a float32 feature beyond float32', () => {
  it.each([
    ['1e39', '1e39', '1e+39'],
    ['1e999', '1e999', 'Infinity'],
    ['-1e39', '-1e39', '-1e+39'],
  ])('%s is refused over Sibyl REST and OIP REST, naming the value sent', async (_label, literal, shown) => {
    const body = `{"rows": [{"features": {"distance_km": ${literal}}}]}`;
    const sibyl = await postJson(`${gw.http}/v1/models/tabular-mlp:predict`, body);
    expect(sibyl.status).toBe(400);
    expect(sibyl.json.message).toBe(`rows[0].features.distance_km: must be a finite number within ±3.4028235e+38 (float32), got ${shown}`);

    const oip = await postJson(`${gw.http}/v2/models/tabular-mlp/infer`, `{"inputs": [{"name": "distance_km", "datatype": "FP32", "shape": [1], "data": [${literal}]}]}`);
    expect(oip.status).toBe(400);
    expect(oip.json).toEqual({ code: 'INVALID_ARGUMENT', error: `rows[0].features.distance_km: must be a finite number within ±3.4028235e+38 (float32), got ${shown}` });
    await stillServes();
  });

  it('is refused over Sibyl gRPC (a double) and OIP gRPC (a float32 can only hold Infinity there)', async () => {
    const sibyl = await gw.sibyl.call(PredictionService.method.predict, { model: 'tabular-mlp', rows: [{ features: { ...Object.fromEntries(names.map((n) => [n, asValue(mlp.request[n]!)])), distance_km: asValue(1e39) } }] });
    expect(sibyl).toMatchObject({ ok: false, code: Code.INVALID_ARGUMENT, details: expect.stringContaining('got 1e+39') });
    const oip = await gw.oip.call(GRPCInferenceService.method.modelInfer, {
      modelName: 'tabular-mlp',
      inputs: [{ name: 'distance_km', datatype: 'FP32', shape: [1n], contents: { fp32Contents: [Infinity] } }],
    });
    expect(oip).toMatchObject({ ok: false, code: Code.INVALID_ARGUMENT, details: expect.stringContaining('got Infinity') });
  });

  it('accepts the largest float32', async () => {
    const res = await postJson(`${gw.http}/v1/models/tabular-mlp:predict`, { rows: [{ features: { ...mlp.request, distance_km: 3.4028234663852886e38 } }] });
    expect(res.status).toBe(200);
  });
});

describe('OIP inputs', () => {
  const tensor = (name: string, v: number) => ({ name, datatype: 'FP32', shape: [1], data: [v] });

  it('refuses an input given twice over REST and gRPC', async () => {
    const rest = await postJson(`${gw.http}/v2/models/tabular-mlp/infer`, { inputs: [tensor('distance_km', 1), tensor('distance_km', 2)] });
    expect(rest).toMatchObject({ status: 400, json: { code: 'INVALID_ARGUMENT', error: 'input "distance_km": given twice; each input may appear once' } });
    const grpc = await gw.oip.call(GRPCInferenceService.method.modelInfer, {
      modelName: 'tabular-mlp',
      inputs: [1, 2].map((v) => ({ name: 'distance_km', datatype: 'FP32', shape: [1n], contents: { fp32Contents: [v] } })),
    });
    expect(grpc).toMatchObject({ ok: false, code: Code.INVALID_ARGUMENT, details: 'input "distance_km": given twice; each input may appear once' });
  });

  it('refuses a gRPC input with both typed contents and raw contents', async () => {
    const raw = new Uint8Array(new Float32Array([1]).buffer);
    const res = await gw.oip.call(GRPCInferenceService.method.modelInfer, {
      modelName: 'tabular-mlp',
      inputs: [{ name: 'distance_km', datatype: 'FP32', shape: [1n], contents: { fp32Contents: [2] } }],
      rawInputContents: [raw],
    });
    expect(res).toMatchObject({ ok: false, code: Code.INVALID_ARGUMENT, details: 'input "distance_km": both contents and raw_input_contents are set; send one' });
    await stillServes();
  });
});

describe('an oversized body', () => {
  const pad = 'x'.repeat(70_000);

  it('is 413 naming SIBYL_MAX_BODY_BYTES over Sibyl REST and OIP REST', async () => {
    const sibyl = await postJson(`${gw.http}/v1/models/tabular-mlp:predict`, JSON.stringify({ rows: [{ features: { pad } }] }));
    expect(sibyl.status).toBe(413);
    expect(sibyl.json).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/exceeds the limit of 65536 bytes \(SIBYL_MAX_BODY_BYTES\)$/) });
    const oip = await postJson(`${gw.http}/v2/models/tabular-mlp/infer`, JSON.stringify({ inputs: [], pad }));
    expect(oip.status).toBe(413);
    expect(oip.json).toMatchObject({ code: 'INVALID_ARGUMENT', error: expect.stringMatching(/exceeds the limit of 65536 bytes \(SIBYL_MAX_BODY_BYTES\)$/) });
  });

  it('is INVALID_ARGUMENT naming SIBYL_MAX_BODY_BYTES over both gRPC services', async () => {
    const sibyl = await gw.sibyl.call(PredictionService.method.predict, { model: 'tabular-mlp', requestId: pad });
    expect(sibyl).toMatchObject({ ok: false, code: Code.INVALID_ARGUMENT, details: expect.stringContaining('(SIBYL_MAX_BODY_BYTES)') });
    const oip = await gw.oip.call(GRPCInferenceService.method.modelInfer, { modelName: 'tabular-mlp', id: pad });
    expect(oip).toMatchObject({ ok: false, code: Code.INVALID_ARGUMENT, details: expect.stringContaining('(SIBYL_MAX_BODY_BYTES)') });
  });
});

describe('a predict path asked with another method', () => {
  it.each([
    ['GET', '/v1/models/tabular-mlp:predict', 'message'],
    ['GET', '/v1/models/tabular-mlp/versions/1:predict', 'message'],
    ['DELETE', '/v1/models/tabular-mlp:predict', 'message'],
    ['GET', '/v2/models/tabular-mlp/infer', 'error'],
    ['GET', '/v2/models/tabular-mlp/versions/1/infer', 'error'],
  ])('%s %s is 405 with Allow: POST', async (method, path, field) => {
    const res = await fetch(gw.http + path, { method });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('POST');
    const body = (await res.json()) as Record<string, string>;
    expect(body['code']).toBe('UNIMPLEMENTED');
    expect(body[field]).toMatch(/POST requests$/);
  });

  it('a path that is not a predict path stays 404', async () => {
    const res = await fetch(`${gw.http}/v1/models/tabular-mlp:explain`);
    expect(res.status).toBe(404);
  });
});
