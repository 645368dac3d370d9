/**
 * Pre-encoded request pools: a scenario's requests are drawn once (seeded), encoded to the wire form of their
 * protocol, and cycled during the run, so that the generator spends no time encoding.
 *
 * Mixes:
 * - `eta-store`: delivery-eta with the 7 request features inline and the restaurant, zone and customer ids drawn
 *   uniformly from the seeded population; the gateway reads the 13 store features.
 * - `eta-inline`: delivery-eta with all 20 features inline (the store values of the drawn ids), no entities: the
 *   request a server without a feature store (MLServer) needs. OIP form: one FP32 tensor `features` [1, 20].
 * - `mlp-tensor`: tabular-mlp, one FP32 tensor `input` [1, 6].
 * - `risk-store`: eta-risk (a binary classifier: a label and two probabilities) with its 5 request features inline
 *   (eta-risk's expected rows) and the restaurant and zone ids drawn as in `eta-store`; the gateway reads 8 store
 *   features.
 */
import { create, toBinary } from '@bufbuild/protobuf';
import { PredictRequestSchema } from '../../proto/gen/sibyl/v1/predict_pb.js';
import { ModelInferRequestSchema } from '../../proto/gen/inference/open_inference_grpc_pb.js';
import { readExpectedRows, readPopulation, type FeatureValues } from './population.ts';
import { seededRng } from './rng.ts';

export type Protocol = 'sibyl-rest' | 'sibyl-grpc' | 'oip-rest' | 'oip-grpc';
export type Mix = 'eta-store' | 'eta-inline' | 'mlp-tensor' | 'risk-store';

export const SIBYL_PREDICT_PATH = '/sibyl.v1.PredictionService/Predict';
export const OIP_INFER_PATH = '/inference.GRPCInferenceService/ModelInfer';

/** One encoded request: an HTTP path (REST) or a gRPC method path, and the body bytes. */
export interface EncodedRequest {
  readonly path: string;
  readonly body: Buffer;
}

export interface RequestPool {
  readonly protocol: Protocol;
  readonly mix: Mix;
  readonly model: string;
  readonly requests: readonly EncodedRequest[];
}

/** The delivery-eta/2 feature order (the ONNX input's columns; MLServer's booster takes the same order). */
export const ETA_REQUEST = ['distance_km', 'hour_of_day', 'day_of_week', 'basket_size', 'basket_value', 'is_raining', 'is_weekend'];
export const ETA_STORE: Readonly<Record<string, readonly string[]>> = {
  restaurant: ['prep_time_avg_7d', 'prep_time_avg_1h', 'orders_last_30m', 'cancel_rate_7d', 'rating_avg_30d', 'kitchen_load'],
  zone: ['active_riders', 'open_orders', 'rider_wait_avg_15m', 'traffic_index', 'avg_speed_kmh'],
  customer: ['distance_to_door_m', 'building_floor'],
};
export const ETA_ORDER = [...ETA_REQUEST, ...ETA_STORE['restaurant']!, ...ETA_STORE['zone']!, ...ETA_STORE['customer']!];
const MLP_ORDER = ['basket_value', 'distance_km', 'hour_of_day', 'is_raining', 'basket_size', 'eta_minutes'];
/** eta-risk's request features; its store features are read by restaurant and zone. */
const RISK_REQUEST = ['distance_km', 'hour_of_day', 'is_raining', 'basket_size', 'promised_minutes'];
const RISK_ENTITIES = ['restaurant', 'zone'];

interface Draw {
  entities: Record<string, string>;
  request: Record<string, number>;
  /** Every feature the model takes, in input order. */
  vector: number[];
}

/** Draws `size` requests of `mix` with `seed` and encodes them for `protocol`. */
export function buildPool(opts: { protocol: Protocol; mix: Mix; seed: number; size?: number; modelsDir?: string; model?: string }): RequestPool {
  const modelsDir = opts.modelsDir ?? 'models';
  const size = opts.size ?? 2048;
  const rng = seededRng(opts.seed);
  const model = opts.model ?? (opts.mix === 'mlp-tensor' ? 'tabular-mlp' : opts.mix === 'risk-store' ? 'eta-risk' : 'delivery-eta');
  const draws: Draw[] = [];
  if (opts.mix === 'risk-store') {
    const pop = readPopulation(modelsDir);
    const rows = readExpectedRows(modelsDir, 'eta-risk', '1');
    for (let i = 0; i < size; i++) {
      const req = rng.pick(rows).request;
      const entities = Object.fromEntries(RISK_ENTITIES.map((entity) => [entity, rng.pick(pop.ids.get(entity)!)]));
      draws.push({ entities, request: Object.fromEntries(RISK_REQUEST.map((n) => [n, req[n]!])), vector: [] });
    }
  } else if (opts.mix === 'mlp-tensor') {
    const rows = readExpectedRows(modelsDir, 'tabular-mlp', '1');
    for (let i = 0; i < size; i++) {
      const r = rng.pick(rows);
      draws.push({ entities: {}, request: { ...r.features }, vector: MLP_ORDER.map((n) => r.features[n]!) });
    }
  } else {
    const pop = readPopulation(modelsDir);
    const rows = readExpectedRows(modelsDir, 'delivery-eta', '2');
    for (let i = 0; i < size; i++) {
      const req = rng.pick(rows).request;
      const entities: Record<string, string> = {};
      const stored: Record<string, number> = {};
      for (const entity of Object.keys(ETA_STORE)) {
        const id = rng.pick(pop.ids.get(entity)!);
        entities[entity] = id;
        Object.assign(stored, pop.features.get(`${entity}:${id}`) as FeatureValues);
      }
      const all: Record<string, number> = { ...req, ...stored };
      draws.push({ entities, request: { ...req }, vector: ETA_ORDER.map((n) => all[n]!) });
    }
  }
  const inputName = opts.mix === 'mlp-tensor' ? 'input' : 'features';
  const requests = draws.map((d) => encode(opts.protocol, opts.mix, model, inputName, d));
  return { protocol: opts.protocol, mix: opts.mix, model, requests };
}

function encode(protocol: Protocol, mix: Mix, model: string, inputName: string, d: Draw): EncodedRequest {
  const store = mix === 'eta-store' || mix === 'risk-store';
  const requestNames = mix === 'risk-store' ? RISK_REQUEST : ETA_REQUEST;
  switch (protocol) {
    case 'sibyl-rest': {
      const features = store ? d.request : Object.fromEntries((mix === 'mlp-tensor' ? MLP_ORDER : ETA_ORDER).map((n, i) => [n, d.vector[i]!]));
      const row = store ? { entities: d.entities, features } : { features };
      return { path: `/v1/models/${model}:predict`, body: Buffer.from(JSON.stringify({ rows: [row] })) };
    }
    case 'sibyl-grpc': {
      const names = store ? requestNames : mix === 'mlp-tensor' ? MLP_ORDER : ETA_ORDER;
      const values = store ? requestNames.map((n) => d.request[n]!) : d.vector;
      const features = Object.fromEntries(names.map((n, i) => [n, { kind: { case: 'numberValue' as const, value: values[i]! } }]));
      const msg = create(PredictRequestSchema, { model, rows: [{ entities: store ? d.entities : {}, features }] });
      return { path: SIBYL_PREDICT_PATH, body: Buffer.from(toBinary(PredictRequestSchema, msg)) };
    }
    case 'oip-rest': {
      const inputs = store
        ? [
            ...Object.entries(d.entities).map(([name, id]) => ({ name, datatype: 'BYTES', shape: [1], data: [id] })),
            ...requestNames.map((n) => ({ name: n, datatype: 'FP32', shape: [1], data: [d.request[n]!] })),
          ]
        : [{ name: inputName, datatype: 'FP32', shape: [1, d.vector.length], data: d.vector }];
      return { path: `/v2/models/${model}/infer`, body: Buffer.from(JSON.stringify({ inputs })) };
    }
    case 'oip-grpc': {
      const utf8 = new TextEncoder();
      const inputs = store
        ? [
            ...Object.entries(d.entities).map(([name, id]) => ({ name, datatype: 'BYTES', shape: [1n], contents: { bytesContents: [utf8.encode(id)] } })),
            ...requestNames.map((n) => ({ name: n, datatype: 'FP32', shape: [1n], contents: { fp32Contents: [d.request[n]!] } })),
          ]
        : [{ name: inputName, datatype: 'FP32', shape: [1n, BigInt(d.vector.length)], contents: { fp32Contents: d.vector } }];
      const msg = create(ModelInferRequestSchema, { modelName: model, inputs });
      return { path: OIP_INFER_PATH, body: Buffer.from(toBinary(ModelInferRequestSchema, msg)) };
    }
  }
}
