/** A request names a version, an alias, or nothing (the default); unknown ones are NOT_FOUND naming what was asked. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PredictionService } from '../../proto/gen/sibyl/v1/predict_pb.js';
import { GRPCInferenceService } from '../../proto/gen/inference/open_inference_grpc_pb.js';
import { startGateway, postJson, type TestGateway } from '../helpers/gateway.ts';
import { close, expectedFor } from '../helpers/expected.ts';
import { Code } from '../../core/errors.ts';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ SIBYL_PREDICTION_LOG: 'off' });
});
afterAll(() => gw.stop());

const v1 = expectedFor('delivery-eta', '1').rows[0]!;
const v2 = expectedFor('delivery-eta', '2').rows[0]!;
const body = { rows: [{ entities: v1.entities, features: v1.request }] };

// models/deployment.yaml: default 2, stable -> 1, canary -> 2.
describe.each([
  ['', '2'],
  ['1', '1'],
  ['2', '2'],
  ['stable', '1'],
  ['canary', '2'],
])('version "%s"', (asked, served) => {
  const want = (served === '1' ? v1 : v2).expected['eta_minutes'] as number;

  it(`is served by version ${served} over Sibyl REST`, async () => {
    const path = asked ? `/v1/models/delivery-eta/versions/${asked}:predict` : '/v1/models/delivery-eta:predict';
    const res = await postJson(gw.http + path, body);
    expect(res.status).toBe(200);
    expect(res.json.version).toBe(served);
    expect(close(res.json.results[0].outputs.eta_minutes, want)).toBe(true);
  });

  it(`is served by version ${served} over Sibyl gRPC`, async () => {
    const res = await gw.sibyl.call(PredictionService.method.predict, {
      model: 'delivery-eta',
      version: asked,
      rows: [{ entities: v1.entities, features: Object.fromEntries(Object.entries(v1.request).map(([k, v]) => [k, { kind: { case: 'numberValue' as const, value: v } }])) }],
    });
    expect(res.ok).toBe(true);
    if (res.ok) expect(res.value.version).toBe(served);
  });

  it(`is served by version ${served} over OIP REST and gRPC`, async () => {
    const inputs = [
      ...Object.entries(v1.entities).map(([k, v]) => ({ name: k, datatype: 'BYTES', shape: [1], data: [v] })),
      ...Object.entries(v1.request).map(([k, v]) => ({ name: k, datatype: 'FP32', shape: [1], data: [v] })),
    ];
    const path = asked ? `/v2/models/delivery-eta/versions/${asked}/infer` : '/v2/models/delivery-eta/infer';
    const rest = await postJson(gw.http + path, { inputs });
    expect(rest.status).toBe(200);
    expect(rest.json.model_version).toBe(served);
    const grpc = await gw.oip.call(GRPCInferenceService.method.modelInfer, {
      modelName: 'delivery-eta',
      modelVersion: asked,
      inputs: inputs.map((t) => ({
        name: t.name,
        datatype: t.datatype,
        shape: [1n],
        contents: t.datatype === 'BYTES' ? { bytesContents: [new TextEncoder().encode(String(t.data[0]))] } : { fp32Contents: [t.data[0] as number] },
      })),
    });
    expect(grpc.ok).toBe(true);
    if (grpc.ok) expect(grpc.value.modelVersion).toBe(served);
  });
});

describe('unknown names', () => {
  it('NOT_FOUND over REST names the model', async () => {
    const res = await postJson(`${gw.http}/v1/models/nope:predict`, body);
    expect(res.status).toBe(404);
    expect(res.json).toMatchObject({ code: 'NOT_FOUND', message: 'model "nope" not found' });
  });
  it('NOT_FOUND over REST names the version', async () => {
    const res = await postJson(`${gw.http}/v1/models/delivery-eta/versions/7:predict`, body);
    expect(res.status).toBe(404);
    expect(res.json.message).toBe('model "delivery-eta" has no version or alias "7"');
  });
  it('NOT_FOUND over gRPC names the version', async () => {
    const res = await gw.sibyl.call(PredictionService.method.predict, { model: 'delivery-eta', version: 'beta', rows: [{}] });
    expect(res).toMatchObject({ ok: false, code: Code.NOT_FOUND, details: 'model "delivery-eta" has no version or alias "beta"' });
  });
  it('OIP metadata and readiness answer 404 for an unknown model, and describe a known one', async () => {
    expect((await fetch(`${gw.http}/v2/models/nope`)).status).toBe(404);
    expect((await fetch(`${gw.http}/v2/models/nope/ready`)).status).toBe(404);
    const md = (await (await fetch(`${gw.http}/v2/models/tabular-mlp`)).json()) as { inputs: unknown };
    expect(md).toMatchObject({ name: 'tabular-mlp', versions: ['1'], platform: 'onnxruntime_onnx' });
    expect(md.inputs).toEqual([{ name: 'input', datatype: 'FP32', shape: [-1, 6] }]);
    const ready = await gw.oip.call(GRPCInferenceService.method.modelReady, { name: 'nope' });
    expect(ready).toMatchObject({ ok: false, code: Code.NOT_FOUND });
  });
});
