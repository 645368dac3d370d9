/**
 * OIP REST details that Triton's HTTP client depends on beyond plain requests: compressed request bodies
 * (`request_compression_algorithm`) and the `{"error": ...}` body on every failure under /v2, including paths that
 * are not routes (the client raises "an exception occurred in the client while decoding the response: 'error'"
 * on any other body).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deflateSync, gzipSync, brotliCompressSync } from 'node:zlib';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { close, expectedFor } from '../helpers/expected.ts';

const MAX_BODY = 64 * 1024;
let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ SIBYL_PREDICTION_LOG: 'off', SIBYL_MAX_BODY_BYTES: String(MAX_BODY) });
});
afterAll(() => gw.stop());

const rows = expectedFor('tabular-mlp', '1').rows.slice(0, 4);
const COLUMNS = ['basket_value', 'distance_km', 'hour_of_day', 'is_raining', 'basket_size', 'eta_minutes'];

/** A tabular-mlp request with its input in the binary part, as tritonclient.http builds it. */
function binaryRequest(): { body: Buffer; headerLength: number } {
  const values = new Float32Array(rows.flatMap((r) => COLUMNS.map((c) => r.request[c]!)));
  const raw = Buffer.from(values.buffer);
  const json = Buffer.from(
    JSON.stringify({
      inputs: [{ name: 'input', datatype: 'FP32', shape: [rows.length, 6], parameters: { binary_data_size: raw.byteLength } }],
      outputs: [{ name: 'output', parameters: { binary_data: false } }],
    }),
  );
  return { body: Buffer.concat([json, raw]), headerLength: json.byteLength };
}

async function infer(body: Uint8Array, headers: Record<string, string>) {
  const res = await fetch(`${gw.http}/v2/models/tabular-mlp/infer`, { method: 'POST', body, headers: { 'content-type': 'application/octet-stream', ...headers } });
  return { status: res.status, json: (await res.json()) as any };
}

describe('compressed infer bodies', () => {
  it.each([
    ['gzip', gzipSync],
    ['deflate', deflateSync],
  ] as const)('decodes Content-Encoding: %s (JSON header and binary tensor) and answers as uncompressed', async (encoding, compress) => {
    const { body, headerLength } = binaryRequest();
    const res = await infer(compress(body), { 'content-encoding': encoding, 'inference-header-content-length': String(headerLength) });
    expect(res.status, JSON.stringify(res.json)).toBe(200);
    const out = res.json.outputs[0];
    expect(out).toMatchObject({ name: 'output', datatype: 'FP32', shape: [rows.length] });
    rows.forEach((r, i) => expect(close(out.data[i], r.expected['output'] as number)).toBe(true));
  });

  it('refuses an encoding it does not decode, naming the ones it does', async () => {
    const { body, headerLength } = binaryRequest();
    const res = await infer(brotliCompressSync(body), { 'content-encoding': 'br', 'inference-header-content-length': String(headerLength) });
    expect(res.status).toBe(400);
    expect(res.json).toEqual({ code: 'INVALID_ARGUMENT', error: 'content-encoding "br" is not supported (use gzip, deflate or none)' });
  });

  it('refuses a corrupt gzip body', async () => {
    const res = await infer(Buffer.from('not gzip at all'), { 'content-encoding': 'gzip' });
    expect(res.status).toBe(400);
    expect(res.json).toEqual({ code: 'INVALID_ARGUMENT', error: 'request body is not valid gzip data' });
  });

  it('stops a small body that inflates past the body limit', async () => {
    const bomb = gzipSync(Buffer.alloc(MAX_BODY * 16, 0x20));
    expect(bomb.byteLength).toBeLessThan(MAX_BODY);
    const res = await infer(bomb, { 'content-encoding': 'gzip' });
    expect(res.status).toBe(413);
    expect(res.json).toEqual({ code: 'INVALID_ARGUMENT', error: `request body exceeds the limit of ${MAX_BODY} bytes (SIBYL_MAX_BODY_BYTES) once decompressed (gzip)` });
  });
});

describe('paths under /v2 that are not routes', () => {
  it.each([
    ['GET', '/v2/models/tabular-mlp/config'],
    ['GET', '/v2/models/tabular-mlp/stats'],
    ['POST', '/v2/repository/index'],
    ['POST', '/v2/models/tabular-mlp/explain'],
  ])('%s %s is NOT_FOUND with an OIP error body', async (method, path) => {
    const res = await fetch(`${gw.http}${path}`, { method });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ code: 'NOT_FOUND', error: `no route for ${method} ${path}` });
  });

  it('leaves the Sibyl API its own error body', async () => {
    const res = await fetch(`${gw.http}/v1/nothing-here`);
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ code: 'NOT_FOUND', message: 'no route for GET /v1/nothing-here' });
  });
});
