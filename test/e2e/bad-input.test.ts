/** Bad input gets INVALID_ARGUMENT / 400 with a precise message, changes nothing, and the gateway keeps serving. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PredictionService } from '../../proto/gen/sibyl/v1/predict_pb.js';
import { GRPCInferenceService } from '../../proto/gen/inference/open_inference_grpc_pb.js';
import { startGateway, postJson, type TestGateway } from '../helpers/gateway.ts';
import { Code } from '../../core/errors.ts';
import { expectedFor } from '../helpers/expected.ts';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ SIBYL_PREDICTION_LOG: 'off', SIBYL_MAX_BODY_BYTES: '65536' });
});
afterAll(() => gw.stop());

const mlp = expectedFor('tabular-mlp', '1').rows[0]!;
const good = { rows: [{ features: mlp.request }] };
const url = () => `${gw.http}/v1/models/tabular-mlp:predict`;

async function stillServes(): Promise<void> {
  const res = await postJson(url(), good);
  expect(res.status).toBe(200);
}

describe('Sibyl REST', () => {
  it.each([
    ['malformed JSON', '{"rows": [', /request body is not valid JSON/],
    ['an empty body', '', /request body is empty/],
    ['a JSON array', '[1,2]', /invalid request: .*sibyl\.v1\.PredictRequest/],
    ['an unknown field', { rowz: [] }, /key "rowz" is unknown/],
    ['an entity id that is a number', { rows: [{ entities: { restaurant: 5 } }] }, /entities.*expected string/],
    ['a feature of the wrong type', { rows: [{ features: { ...mlp.request, distance_km: 'far' } }] }, /rows\[0\]\.features\.distance_km: must be a finite number within ±3\.4028235e\+38 \(float32\), got "far"/],
    ['a feature the model does not have', { rows: [{ features: { distnce_km: 1 } }] }, /rows\[0\]\.features\.distnce_km: the model has no feature "distnce_km"/],
    ['a list where a scalar belongs', { rows: [{ features: { distance_km: [1, 2] } }] }, /rows\[0\]\.features\.distance_km: must be a number, string or boolean/],
    ['no rows', { rows: [] }, /rows: at least one row is required/],
  ])('rejects %s', async (_label, body, message) => {
    const res = await postJson(url(), body);
    expect(res.status).toBe(400);
    expect(res.json.code).toBe('INVALID_ARGUMENT');
    expect(res.json.message).toMatch(message);
    expect(res.headers.get('x-request-id')).toBeTruthy();
    await stillServes();
  });

  it('rejects a missing entity id, naming the entity and the features that need it', async () => {
    const eta = expectedFor('delivery-eta', '2').rows[0]!;
    const res = await postJson(`${gw.http}/v1/models/delivery-eta:predict`, { rows: [{ entities: { zone: 'z1', customer: 'c1' }, features: eta.request }] });
    expect(res.status).toBe(400);
    expect(res.json.message).toMatch(/^rows\[0\]\.entities\.restaurant: an id is required \(the model reads prep_time_avg_7d, /);
  });

  it('rejects a body over the limit before parsing it', async () => {
    const big = JSON.stringify({ rows: [{ features: { pad: 'x'.repeat(70_000) } }] });
    const res = await postJson(url(), big);
    expect(res.status).toBe(413);
    expect(res.json.code).toBe('INVALID_ARGUMENT');
    expect(res.json.message).toMatch(/request body of \d+\+? bytes exceeds the limit of 65536 bytes \(SIBYL_MAX_BODY_BYTES\)/);
    await stillServes();
  });

  it('rejects too many rows', async () => {
    const res = await postJson(url(), { rows: Array.from({ length: 1001 }, () => ({})) });
    expect(res.status).toBe(400);
    expect(res.json.message).toBe('rows: 1001 rows exceed the limit of 1000');
  });

  it('answers 404 with the error body for an unknown path or verb', async () => {
    const res = await postJson(`${gw.http}/v1/models/tabular-mlp:explain`, good);
    expect(res.status).toBe(404);
    expect(res.json.code).toBe('NOT_FOUND');
  });
});

describe('Sibyl gRPC', () => {
  it('rejects a malformed protobuf message with INVALID_ARGUMENT', async () => {
    const res = await gw.sibyl.callRaw(PredictionService.method.predict, new Uint8Array([0x0a, 0xff, 0xff, 0xff, 0x0f]));
    expect(res.ok).toBe(false);
    if (!res.ok) {
      expect(res.code).toBe(Code.INVALID_ARGUMENT);
      expect(res.details).toMatch(/^invalid request: /);
    }
    await stillServes();
  });

  it('rejects a wrongly typed feature with the same message as REST', async () => {
    const res = await gw.sibyl.call(PredictionService.method.predict, {
      model: 'tabular-mlp',
      rows: [{ features: { distance_km: { kind: { case: 'stringValue', value: 'far' } } } }],
    });
    expect(res).toMatchObject({ ok: false, code: Code.INVALID_ARGUMENT, details: 'rows[0].features.distance_km: must be a finite number within ±3.4028235e+38 (float32), got "far"' });
  });
});

describe('OIP', () => {
  const infer = (body: unknown) => postJson(`${gw.http}/v2/models/tabular-mlp/infer`, body);
  const values = Object.values(mlp.request);

  it('serves the packed tensor the metadata advertises', async () => {
    const res = await infer({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 6], data: values }] });
    expect(res.status).toBe(200);
    expect(res.json.outputs[0]).toMatchObject({ name: 'output', datatype: 'FP32', shape: [1] });
  });

  it.each([
    ['a wrong shape', [{ name: 'input', datatype: 'FP32', shape: [1, 5], data: values.slice(0, 5) }], /input "input": shape \[1,5\] does not match \[rows, 6\]/],
    ['a wrong dtype', [{ name: 'input', datatype: 'FP64', shape: [1, 6], data: values }], /input "input": datatype FP64 does not match the model's FP32/],
    ['too few elements', [{ name: 'input', datatype: 'FP32', shape: [2, 6], data: values }], /shape \[2,6\] needs 12 elements, got 6/],
    ['an unknown input', [{ name: 'x', datatype: 'FP32', shape: [1], data: [1] }], /input "x": model tabular-mlp has no such input \(it takes input FP32\[-1,6\]\)/],
    ['string elements in a numeric tensor', [{ name: 'input', datatype: 'FP32', shape: [1, 6], data: ['a', 1, 2, 3, 4, 5] }], /expected numeric elements/],
    ['no inputs', [], /at least one input tensor is required/],
  ])('rejects %s with 400', async (_label, inputs, message) => {
    const res = await infer({ inputs });
    expect(res.status).toBe(400);
    expect(res.json.code).toBe('INVALID_ARGUMENT');
    expect(res.json.error).toMatch(message);
  });

  it('rejects a wrong shape over gRPC with INVALID_ARGUMENT', async () => {
    const res = await gw.oip.call(GRPCInferenceService.method.modelInfer, {
      modelName: 'tabular-mlp',
      inputs: [{ name: 'input', datatype: 'FP32', shape: [1n, 5n], contents: { fp32Contents: values.slice(0, 5) } }],
    });
    expect(res).toMatchObject({ ok: false, code: Code.INVALID_ARGUMENT });
  });

  it('rejects raw contents whose size is not a whole number of elements', async () => {
    const res = await gw.oip.call(GRPCInferenceService.method.modelInfer, {
      modelName: 'tabular-mlp',
      inputs: [{ name: 'input', datatype: 'FP32', shape: [1n, 6n] }],
      rawInputContents: [new Uint8Array(23)],
    });
    expect(res).toMatchObject({ ok: false, code: Code.INVALID_ARGUMENT, details: 'input "input": 23 bytes is not a whole number of FP32 elements' });
  });
});

describe('a request id in the message that no header or trailer can carry', () => {
  const BAD = ['a\u2603b', 'two words', 'line\nbreak', 'x'.repeat(129)];
  const message = /^request id ".*": must be 1-128 visible ASCII characters \(no spaces, no control characters\)$/;
  const values = Object.values(mlp.request);

  it.each(BAD)('REST refuses %j with 400 and the header\'s id, on the direct path and through Hono', async (id) => {
    for (const path of ['/v1/models/tabular-mlp:predict', '/v1/models/tabular-mlp:predict?via=hono']) {
      const res = await postJson(`${gw.http}${path}`, { ...good, requestId: id }, { 'x-request-id': 'header-id' });
      expect(res.status).toBe(400);
      expect(res.json).toMatchObject({ code: 'INVALID_ARGUMENT', requestId: 'header-id' });
      expect(res.json.message).toMatch(message);
      expect(res.headers.get('x-request-id')).toBe('header-id');
    }
    const oip = await postJson(`${gw.http}/v2/models/tabular-mlp/infer`, { id, inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 6], data: values }] });
    expect(oip.status).toBe(400);
    expect(oip.json.error).toMatch(message);
    expect(oip.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    await stillServes();
  });

  it.each(BAD)('gRPC refuses %j with INVALID_ARGUMENT on both services', async (id) => {
    const sibyl = await gw.sibyl.call(PredictionService.method.predict, { model: 'tabular-mlp', requestId: id, rows: [{ features: Object.fromEntries(Object.entries(mlp.request).map(([k, v]) => [k, { kind: { case: 'numberValue' as const, value: v as number } }])) }] });
    expect(sibyl).toMatchObject({ ok: false, code: Code.INVALID_ARGUMENT });
    if (!sibyl.ok) expect(sibyl.details).toMatch(message);
    const oip = await gw.oip.call(GRPCInferenceService.method.modelInfer, { modelName: 'tabular-mlp', id, inputs: [{ name: 'input', datatype: 'FP32', shape: [1n, 6n], contents: { fp32Contents: values } }] });
    expect(oip).toMatchObject({ ok: false, code: Code.INVALID_ARGUMENT });
    await stillServes();
  });

  it('takes any id of visible ASCII up to 128 characters and sends it back', async () => {
    const id = `req-${'~!'.repeat(20)}${'z'.repeat(84)}`;
    expect(id.length).toBe(128);
    const res = await postJson(url(), { ...good, requestId: id });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-request-id')).toBe(id);
  });
});
