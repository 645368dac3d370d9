/**
 * Checks, before load, that a target answers the scenario's requests correctly: status 200/OK, an output per row,
 * and for the store mix on Sibyl, no defaulted features (the store features really came from Redis). Throws with
 * what was wrong; resolves with a one-line description of the first answer.
 */
import * as grpc from '@grpc/grpc-js';
import { fromBinary } from '@bufbuild/protobuf';
import { PredictResponseSchema } from '../../proto/gen/sibyl/v1/predict_pb.js';
import { ModelInferResponseSchema } from '../../proto/gen/inference/open_inference_grpc_pb.js';
import type { RequestPool } from './requests.ts';

export async function preflight(target: string, pool: RequestPool, opts: { expectNoDefaults: boolean; samples?: number }): Promise<string> {
  const n = Math.min(opts.samples ?? 5, pool.requests.length);
  let first = '';
  for (let i = 0; i < n; i++) {
    const req = pool.requests[i]!;
    const d = pool.protocol.endsWith('grpc') ? await grpcCheck(target, pool, req.path, req.body, opts.expectNoDefaults) : await restCheck(target, pool, req.path, req.body, opts.expectNoDefaults);
    if (i === 0) first = d;
  }
  return first;
}

async function restCheck(base: string, pool: RequestPool, path: string, body: Buffer, noDefaults: boolean): Promise<string> {
  const res = await fetch(base + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: new Uint8Array(body) });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${pool.protocol} ${path}: HTTP ${res.status}: ${text.slice(0, 300)}`);
  const json = JSON.parse(text) as Record<string, any>;
  if (pool.protocol === 'sibyl-rest') {
    const r = json['results']?.[0];
    if (!r?.outputs || Object.keys(r.outputs).length === 0) throw new Error(`${path}: no outputs in ${text.slice(0, 300)}`);
    const defaulted: string[] = r.defaultedFeatures ?? [];
    if (noDefaults && defaulted.length > 0) throw new Error(`${path}: features defaulted (store not seeded?): ${defaulted.join(', ')}`);
    return `${JSON.stringify(r.outputs)}; defaulted: ${defaulted.length}`;
  }
  const out = json['outputs']?.[0];
  if (!out || !Array.isArray(out.data) || out.data.length === 0) throw new Error(`${path}: no output data in ${text.slice(0, 300)}`);
  const defaulted = json['parameters']?.['sibyl_defaulted_features'];
  if (noDefaults && defaulted) throw new Error(`${path}: features defaulted: ${defaulted}`);
  return `${out.name}=${JSON.stringify(out.data)}`;
}

function grpcCheck(address: string, pool: RequestPool, path: string, body: Buffer, noDefaults: boolean): Promise<string> {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  return new Promise<string>((resolve, reject) => {
    client.makeUnaryRequest(path, (b: Buffer) => b, (b: Buffer) => b, body, new grpc.Metadata(), { deadline: Date.now() + 10_000 }, (err, value) => {
      client.close();
      if (err) return reject(new Error(`${pool.protocol} ${path}: ${grpc.status[err.code ?? 2]}: ${err.details}`));
      try {
        if (pool.protocol === 'sibyl-grpc') {
          const r = fromBinary(PredictResponseSchema, value!).results[0];
          if (!r || Object.keys(r.outputs).length === 0) throw new Error(`${path}: no outputs`);
          if (noDefaults && r.defaultedFeatures.length > 0) throw new Error(`${path}: features defaulted: ${r.defaultedFeatures.join(', ')}`);
          const o = Object.entries(r.outputs).map(([k, v]) => `${k}=${String(v.kind.value)}`);
          return resolve(`${o.join(' ')}; defaulted: ${r.defaultedFeatures.length}`);
        }
        const m = fromBinary(ModelInferResponseSchema, value!);
        const out = m.outputs[0];
        if (!out) throw new Error(`${path}: no outputs`);
        const raw = m.rawOutputContents[0];
        const vals = raw ? [...new Float32Array(raw.slice().buffer, 0, Math.floor(raw.byteLength / 4))] : [...(out.contents?.fp32Contents ?? []), ...(out.contents?.fp64Contents ?? [])];
        if (vals.length === 0) throw new Error(`${path}: empty output ${out.name}`);
        if (noDefaults && m.parameters['sibyl_defaulted_features']) throw new Error(`${path}: features defaulted`);
        resolve(`${out.name}=${JSON.stringify(vals)}`);
      } catch (e) {
        reject(e as Error);
      }
    });
  });
}
