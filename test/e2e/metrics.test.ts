/** /metrics: requests and errors per model, transport and code, and latency histograms per pipeline stage. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, postJson, type TestGateway } from '../helpers/gateway.ts';
import { PredictionService } from '../../proto/gen/sibyl/v1/predict_pb.js';
import { GRPCInferenceService } from '../../proto/gen/inference/open_inference_grpc_pb.js';
import { expectedFor } from '../helpers/expected.ts';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ SIBYL_PREDICTION_LOG: 'off' });
});
afterAll(() => gw.stop());

function sample(text: string, name: string, labels: Record<string, string>): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

describe('metrics', () => {
  it('counts requests per model and code, and records stage latencies', async () => {
    const r = expectedFor('tabular-mlp', '1').rows[0]!;
    for (let i = 0; i < 3; i++) expect((await postJson(`${gw.http}/v1/models/tabular-mlp:predict`, { rows: [{ features: r.request }] })).status).toBe(200);
    expect((await postJson(`${gw.http}/v1/models/tabular-mlp:predict`, { rows: [{ features: { distance_km: 'x' } }] })).status).toBe(400);
    const res = await fetch(`${gw.http}/metrics`);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await res.text();
    expect(sample(text, 'sibyl_requests_total', { model: 'tabular-mlp', transport: 'rest', code: 'OK' })).toBe(3);
    expect(sample(text, 'sibyl_requests_total', { model: 'tabular-mlp', transport: 'rest', code: 'INVALID_ARGUMENT' })).toBe(1);
    // The bad request was resolved, then refused while enriching.
    expect(sample(text, 'sibyl_stage_duration_seconds_count', { model: 'tabular-mlp', stage: 'resolve' })).toBe(4);
    for (const stage of ['enrich', 'dispatch']) {
      expect(sample(text, 'sibyl_stage_duration_seconds_count', { model: 'tabular-mlp', stage }), stage).toBe(3);
    }
    expect(sample(text, 'sibyl_request_duration_seconds_count', { model: 'tabular-mlp', transport: 'rest' })).toBe(4);
    // Per runtime: the three executions (the refused request never reached the model).
    expect(sample(text, 'sibyl_runtime_calls_total', { runtime: 'onnx', code: 'OK' })).toBe(3);
    expect(sample(text, 'sibyl_runtime_call_duration_seconds_count', { runtime: 'onnx' })).toBe(3);
  });

  it('counts requests that never named a model (unparsable bodies and messages) on every door, under model ""', async () => {
    const before = await (await fetch(`${gw.http}/metrics`)).text();
    const count = (text: string, transport: string) => sample(text, 'sibyl_requests_total', { model: '', transport, code: 'INVALID_ARGUMENT' });
    expect((await postJson(`${gw.http}/v1/models/tabular-mlp:predict`, '{"rows": [')).status).toBe(400);
    expect((await postJson(`${gw.http}/v2/models/tabular-mlp/infer`, 'not json')).status).toBe(400);
    expect((await gw.sibyl.callRaw(PredictionService.method.predict, new Uint8Array([0xff, 0xff, 0xff]))).ok).toBe(false);
    expect((await gw.oip.callRaw(GRPCInferenceService.method.modelInfer, new Uint8Array([0xff, 0xff, 0xff]))).ok).toBe(false);
    const after = await (await fetch(`${gw.http}/metrics`)).text();
    for (const transport of ['rest', 'oip-rest', 'grpc', 'oip-grpc']) expect(count(after, transport) - count(before, transport), transport).toBe(1);
  });
});
