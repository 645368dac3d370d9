/**
 * A peer's preflight: before any load, the peer must answer the benchmark's own delivery-eta rows (20 features
 * inline, the first `rows` requests of the suite's seeded pool) with the outputs Sibyl gives for the same rows,
 * within float tolerance. Sibyl's outputs come from its one execution step (execution/execute.ts) on
 * models/delivery-eta/2 loaded as a gateway loads it (replay/candidate.ts), so a peer that parsed the request
 * differently (feature order, dtype, a dropped row) or ran another model fails here instead of being measured.
 */
import * as grpc from '@grpc/grpc-js';
import { fromBinary } from '@bufbuild/protobuf';
import { ModelInferResponseSchema } from '../../proto/gen/inference/open_inference_grpc_pb.js';
import { execute } from '../../execution/execute.ts';
import { inlineOnly } from '../../execution/feature-store.ts';
import { loadCandidate } from '../../replay/candidate.ts';
import { zipDirectory } from '../../runtimes/bundle/zip-dir.ts';
import { decodeRaw } from '../lib/preflight.ts';
import { buildPool, ETA_ORDER, type EncodedRequest } from '../lib/requests.ts';

/** Rows checked per peer and protocol. */
export const AGREEMENT_ROWS = 16;
/** Allowed difference: relative to the value (at least 1). The peers' ONNX runs match Sibyl's to float32 rounding;
 * MLServer's LightGBM booster sums in float64 and differs by up to ~1e-4 minutes on ~30 (models/delivery-eta/2/expected.json). */
export const RELATIVE_TOLERANCE = 1e-5;

export type OipProtocol = 'oip-rest' | 'oip-grpc';

let reference: Promise<number[]> | undefined;

/** Sibyl's `eta_minutes` for the first AGREEMENT_ROWS rows of the eta-inline pool (seed 42), computed once. */
export function sibylOutputs(): Promise<number[]> {
  reference ??= (async () => {
    const candidate = await loadCandidate(await zipDirectory('models/delivery-eta/2'));
    try {
      const rows = poolVectors().map((v) => ({ entities: {}, features: Object.fromEntries(ETA_ORDER.map((n, i) => [n, v[i]!])) }));
      const r = await execute(candidate.version, rows, { store: inlineOnly, featurePrefix: '', featureTimeoutMs: 0 }, { signal: AbortSignal.timeout(30_000) });
      return r.outputs.map((o) => Number(o['eta_minutes']));
    } finally {
      await candidate.close();
    }
  })();
  return reference;
}

/** The rows' feature vectors, in the model's input order (from the OIP REST bodies the load sends). */
function poolVectors(): number[][] {
  return buildPool({ protocol: 'oip-rest', mix: 'eta-inline', seed: 42, size: AGREEMENT_ROWS }).requests.map((r) => (JSON.parse(r.body.toString()) as { inputs: { data: number[] }[] }).inputs[0]!.data);
}

/**
 * Sends the rows to `target` one request at a time and compares each answer with Sibyl's. Throws with the first
 * disagreement; resolves with a one-line summary (rows checked, largest difference).
 */
export async function checkAgreement(target: string, protocol: OipProtocol): Promise<string> {
  const want = await sibylOutputs();
  const pool = buildPool({ protocol, mix: 'eta-inline', seed: 42, size: AGREEMENT_ROWS });
  let worst = 0;
  for (let i = 0; i < pool.requests.length; i++) {
    const got = protocol === 'oip-rest' ? await restOutputs(target, pool.requests[i]!) : await grpcOutputs(target, pool.requests[i]!);
    const w = want[i]!;
    if (got.length !== 1) throw new Error(`row ${i}: ${got.length} outputs for one row (${JSON.stringify(got)})`);
    const diff = Math.abs(got[0]! - w);
    if (!(diff <= RELATIVE_TOLERANCE * Math.max(1, Math.abs(w)))) throw new Error(`row ${i}: eta_minutes ${got[0]} but Sibyl answers ${w} (|Δ| ${diff.toExponential(2)})`);
    worst = Math.max(worst, diff);
  }
  return `${pool.requests.length} rows agree with Sibyl's outputs (max |Δ| ${worst.toExponential(2)} minutes)`;
}

/**
 * The first output's values of an OIP REST answer. BentoML's batchable API answers a list (one element per input
 * tensor): a one-element list is unwrapped.
 */
async function restOutputs(base: string, req: EncodedRequest): Promise<number[]> {
  const res = await fetch(base + req.path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: new Uint8Array(req.body) });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`POST ${req.path}: HTTP ${res.status}: ${text.slice(0, 300)}`);
  let json = JSON.parse(text) as unknown;
  if (Array.isArray(json) && json.length === 1) json = json[0];
  const data = (json as { outputs?: { data?: unknown }[] }).outputs?.[0]?.data;
  if (!Array.isArray(data)) throw new Error(`POST ${req.path}: no outputs[0].data in ${text.slice(0, 300)}`);
  return data.flat(Infinity).map(Number);
}

function grpcOutputs(address: string, req: EncodedRequest): Promise<number[]> {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  return new Promise<number[]>((resolve, reject) => {
    client.makeUnaryRequest(req.path, (b: Buffer) => b, (b: Buffer) => b, req.body, new grpc.Metadata(), { deadline: Date.now() + 10_000 }, (err, value) => {
      client.close();
      if (err) return reject(new Error(`${req.path}: ${grpc.status[err.code ?? 2]}: ${err.details}`));
      const m = fromBinary(ModelInferResponseSchema, value!);
      const out = m.outputs[0];
      if (!out) return reject(new Error(`${req.path}: no outputs`));
      const raw = m.rawOutputContents[0];
      resolve(raw ? decodeRaw(out.datatype, raw) : [...(out.contents?.fp32Contents ?? []), ...(out.contents?.fp64Contents ?? [])]);
    });
  });
}
