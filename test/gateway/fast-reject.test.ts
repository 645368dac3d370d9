/**
 * Overload refusals on the front doors' fast paths: while admission control refuses work, REST prediction requests
 * get 429 RESOURCE_EXHAUSTED with the ErrorBody and retry-after, and gRPC prediction calls RESOURCE_EXHAUSTED with
 * the retry pushback, at once; health, metrics and metadata still answer.
 * The overload here is real: SIBYL_MAX_INFLIGHT=1 and one request held in flight by a client that sends its
 * headers and never finishes its body.
 */
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PredictionService } from '../../proto/gen/sibyl/v1/predict_pb.js';
import { GRPCInferenceService } from '../../proto/gen/inference/open_inference_grpc_pb.js';
import { Code } from '../../core/errors.ts';
import { startGateway, postJson, type TestGateway } from '../helpers/gateway.ts';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ SIBYL_PREDICTION_LOG: 'off', SIBYL_MAX_INFLIGHT: '1' });
});
afterAll(() => gw?.stop());

const body = { rows: [{ features: { distance_km: 1, hour_of_day: 2, basket_size: 1, basket_value: 9, is_raining: 0, eta_minutes: 30 } }] };

describe('overload fast path', () => {
  it('refuses predictions with 429 while capacity is taken, serves everything else, and admits again once it frees', async () => {
    const url = new URL(gw.http);
    // Holds the one slot: admitted before its body is read, and the body never completes.
    const held = request({ host: url.hostname, port: url.port, method: 'POST', path: '/v1/models/tabular-mlp:predict', headers: { 'content-type': 'application/json', 'content-length': '1000' } });
    held.on('error', () => {});
    held.write('{"rows":');
    await new Promise((r) => setTimeout(r, 200));
    expect(gw.gateway.admission.stats().inflight).toBe(1);

    const before = gw.gateway.admission.stats().rejected;
    for (const path of ['/v1/models/tabular-mlp:predict', '/v1/models/tabular-mlp/versions/1:predict', '/v2/models/tabular-mlp/infer']) {
      const res = await postJson(`${gw.http}${path}`, body);
      expect(res.status, path).toBe(429);
      // Sibyl's ErrorBody on /v1; the Open Inference Protocol's { error } on /v2.
      expect(res.json).toMatchObject(path.startsWith('/v2') ? { error: expect.stringContaining('capacity'), code: 'RESOURCE_EXHAUSTED' } : { code: 'RESOURCE_EXHAUSTED', message: expect.stringContaining('capacity') });
      expect(res.headers.get('retry-after')).toBe('1');
    }
    expect(gw.gateway.admission.stats().rejected).toBe(before + 3);
    // gRPC: both prediction calls refused on the stream path, before their messages are read (the fast path's
    // message; the entry's would name the requests in flight); metadata still answers.
    const predict = await gw.sibyl.call(PredictionService.method.predict, { model: 'tabular-mlp', rows: [] });
    const infer = await gw.oip.call(GRPCInferenceService.method.modelInfer, { modelName: 'tabular-mlp' });
    for (const r of [predict, infer]) {
      expect(r).toMatchObject({ ok: false, code: Code.RESOURCE_EXHAUSTED, details: 'the gateway is at capacity; retry with backoff' });
      expect(r.trailers?.['grpc-retry-pushback-ms']).toBe('1000');
    }
    expect(gw.gateway.admission.stats().rejected).toBe(before + 5);
    expect((await gw.oip.call(GRPCInferenceService.method.modelReady, { name: 'tabular-mlp' })).ok).toBe(true);
    expect((await fetch(`${gw.http}/healthz`)).status).toBe(200);
    expect((await fetch(`${gw.http}/metrics`)).status).toBe(200);
    expect((await fetch(`${gw.http}/v2/models/tabular-mlp`)).status).toBe(200);

    held.destroy();
    await new Promise((r) => setTimeout(r, 200));
    expect(gw.gateway.admission.stats().inflight).toBe(0);
    expect((await postJson(`${gw.http}/v1/models/tabular-mlp:predict`, body)).status).toBe(200);
  });
});
