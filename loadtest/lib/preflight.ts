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
    // A store read can miss its few-ms deadline on a busy machine: a sample fails only when 3 tries in a row do.
    let d = '';
    for (let attempt = 1; ; attempt++) {
      try {
        d = pool.protocol.endsWith('grpc') ? await grpcCheck(target, pool, req.path, req.body, opts.expectNoDefaults) : await restCheck(target, pool, req.path, req.body, opts.expectNoDefaults);
        break;
      } catch (err) {
        if (attempt >= 3 || !/defaulted/.test((err as Error).message)) throw err;
      }
    }
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
        const vals = raw ? decodeRaw(out.datatype, raw) : [...(out.contents?.fp32Contents ?? []), ...(out.contents?.fp64Contents ?? [])];
        if (vals.length === 0) throw new Error(`${path}: empty output ${out.name}`);
        if (noDefaults && m.parameters['sibyl_defaulted_features']) throw new Error(`${path}: features defaulted`);
        resolve(`${out.name}=${JSON.stringify(vals)}`);
      } catch (e) {
        reject(e as Error);
      }
    });
  });
}

/** Little-endian raw tensor bytes of a numeric OIP datatype → numbers (enough for a preflight's eyeball check). */
export function decodeRaw(datatype: string, raw: Uint8Array): number[] {
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const out: number[] = [];
  const size = datatype === 'FP64' || datatype === 'INT64' ? 8 : 4;
  for (let off = 0; off + size <= raw.byteLength; off += size) {
    if (datatype === 'FP64') out.push(view.getFloat64(off, true));
    else if (datatype === 'FP32') out.push(view.getFloat32(off, true));
    else if (datatype === 'INT64') out.push(Number(view.getBigInt64(off, true)));
    else out.push(view.getInt32(off, true));
  }
  return out;
}
