/**
 * What the README promises a grpcurl user: server reflection (no proto files needed), the Sibyl and OIP services,
 * and grpc.health.v1. Runs the real grpcurl (scripts/tools.sh builds it from the Go module proxy).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync } from 'node:fs';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';

const GRPCURL = new URL('../../.tools/bin/grpcurl', import.meta.url).pathname;
const run = promisify(execFile);
let gw: TestGateway;

beforeAll(async () => {
  if (!existsSync(GRPCURL)) throw new Error('grpcurl is missing: run bash scripts/tools.sh');
  gw = await startGateway({ SIBYL_PREDICTION_LOG: 'off' });
});
afterAll(() => gw.stop());

const grpcurl = async (...args: string[]) => (await run(GRPCURL, ['-plaintext', ...args])).stdout;

describe('grpcurl against the gateway', () => {
  it('lists the services through reflection', async () => {
    const out = await grpcurl(gw.grpcAddress, 'list');
    expect(out.split('\n').filter(Boolean).sort()).toEqual(['grpc.health.v1.Health', 'inference.GRPCInferenceService', 'sibyl.v1.PredictionService']);
  });

  it('calls Predict with JSON, as in the README', async () => {
    const body = {
      model: 'delivery-eta',
      rows: [{ entities: { restaurant: 'r320', zone: 'z55', customer: 'c187' }, features: { distance_km: 0.67, hour_of_day: 8, day_of_week: 3, basket_size: 4, basket_value: 33.47, is_raining: 0, is_weekend: 0 } }],
    };
    const out = JSON.parse(await grpcurl('-d', JSON.stringify(body), gw.grpcAddress, 'sibyl.v1.PredictionService/Predict'));
    expect(out).toMatchObject({ model: 'delivery-eta', version: '2' });
    expect(out.results[0].outputs.eta_minutes).toBeCloseTo(30.8148, 3);
  });

  it('calls ModelInfer and gets the output as raw little-endian float32', async () => {
    const body = { model_name: 'tabular-mlp', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 6], contents: { fp32_contents: [33.47, 0.67, 8, 0, 4, 68.2] } }] };
    const out = JSON.parse(await grpcurl('-d', JSON.stringify(body), gw.grpcAddress, 'inference.GRPCInferenceService/ModelInfer'));
    expect(out.outputs).toEqual([{ name: 'output', datatype: 'FP32', shape: ['1'] }]);
    const value = Buffer.from(out.rawOutputContents[0], 'base64').readFloatLE(0);
    expect(value).toBeCloseTo(4.6484, 3);
  });

  it('answers the standard health check', async () => {
    expect(JSON.parse(await grpcurl(gw.grpcAddress, 'grpc.health.v1.Health/Check'))).toEqual({ status: 'SERVING' });
    expect(JSON.parse(await grpcurl('-d', '{"service": "sibyl.v1.PredictionService"}', gw.grpcAddress, 'grpc.health.v1.Health/Check'))).toEqual({ status: 'SERVING' });
  });
});
