/**
 * What a gRPC client learns besides the status, as REST's clients learn it from headers: every prediction's answer
 * carries its request id (`x-request-id`, the caller's when it sent one) in the trailers, and a refusal carries the
 * retry pushback (`grpc-retry-pushback-ms`, REST's `retry-after`), on Sibyl's service and on the Open Inference
 * Protocol's alike.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PredictionService } from '../../proto/gen/sibyl/v1/predict_pb.js';
import { GRPCInferenceService } from '../../proto/gen/inference/open_inference_grpc_pb.js';
import { Code, SibylError } from '../../core/errors.ts';
import { expectedFor } from '../helpers/expected.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ SIBYL_PREDICTION_LOG: 'off' });
});
afterAll(() => gw.stop());

const row = expectedFor('delivery-eta', '1').rows[0]!;
const sibylRequest = {
  model: 'delivery-eta',
  rows: [{ entities: row.entities, features: Object.fromEntries(Object.entries(row.request).map(([k, v]) => [k, { kind: { case: 'numberValue' as const, value: v } }])) }],
};
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('gRPC trailers', () => {
  it("carry the caller's request id on an answer, and a generated one when it sent none", async () => {
    const named = await gw.sibyl.call(PredictionService.method.predict, sibylRequest, { metadata: { 'x-request-id': 'order-4711' } });
    expect(named.ok).toBe(true);
    expect(named.trailers?.['x-request-id']).toBe('order-4711');
    if (named.ok) expect(named.value.requestId).toBe('order-4711');
    const unnamed = await gw.sibyl.call(PredictionService.method.predict, sibylRequest);
    expect(unnamed.ok).toBe(true);
    expect(unnamed.trailers?.['x-request-id']).toMatch(UUID);
    if (unnamed.ok) expect(unnamed.trailers?.['x-request-id']).toBe(unnamed.value.requestId);
    expect(unnamed.trailers?.['grpc-retry-pushback-ms']).toBeUndefined();
  });

  it('carry the request id on a failure, with no retry pushback for a request that will never pass', async () => {
    const res = await gw.sibyl.call(PredictionService.method.predict, { model: 'no-such-model', rows: [{}] }, { metadata: { 'x-request-id': 'bad-1' } });
    expect(res).toMatchObject({ ok: false, code: Code.NOT_FOUND });
    expect(res.trailers?.['x-request-id']).toBe('bad-1');
    expect(res.trailers?.['grpc-retry-pushback-ms']).toBeUndefined();
  });

  it('carry the retry pushback on a refusal (RESOURCE_EXHAUSTED), on both gRPC services', async () => {
    const admission = gw.gateway.admission;
    const admit = admission.admit.bind(admission);
    // Admission refuses the next calls, as it does under overload.
    admission.admit = () => {
      throw new SibylError('RESOURCE_EXHAUSTED', 'the gateway is overloaded; retry with backoff');
    };
    try {
      const sibyl = await gw.sibyl.call(PredictionService.method.predict, sibylRequest, { metadata: { 'x-request-id': 'busy-1' } });
      expect(sibyl).toMatchObject({ ok: false, code: Code.RESOURCE_EXHAUSTED });
      expect(sibyl.trailers).toMatchObject({ 'x-request-id': 'busy-1', 'grpc-retry-pushback-ms': '1000' });
      const oip = await gw.oip.call(GRPCInferenceService.method.modelInfer, {
        modelName: 'delivery-eta',
        inputs: Object.entries(row.request).map(([name, v]) => ({ name, datatype: 'FP32', shape: [1n], contents: { fp32Contents: [v] } })),
      });
      expect(oip).toMatchObject({ ok: false, code: Code.RESOURCE_EXHAUSTED });
      expect(oip.trailers?.['grpc-retry-pushback-ms']).toBe('1000');
      expect(oip.trailers?.['x-request-id']).toMatch(UUID);
    } finally {
      admission.admit = admit;
    }
  });
});
