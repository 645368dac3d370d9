/** Sibyl's own API messages (proto/sibyl/v1/predict.proto) to and from the pipeline's types. */
import { create, toJsonString } from '@bufbuild/protobuf';
import type { Value } from '@bufbuild/protobuf/wkt';
import type { OutputRow, Scalar } from '../../runtimes/contract.ts';
import { SibylError } from '../../core/errors.ts';
import { PredictResponseSchema, type PredictRequest, type PredictResponse, type PredictionResult } from '../../proto/gen/sibyl/v1/predict_pb.js';
import type { InputRow, ParsedRequest, PredictOutput } from '../pipeline/pipeline.ts';

/** A decoded PredictRequest for the pipeline's entry; `timeoutMs` is the client's own deadline when it sent one. */
export function toParsedRequest(req: PredictRequest, timeoutMs: number | undefined): ParsedRequest {
  const rows: InputRow[] = new Array(req.rows.length);
  for (let i = 0; i < req.rows.length; i++) {
    const r = req.rows[i]!;
    const features: Record<string, Scalar> = {};
    for (const name in r.features) features[name] = scalarOf(r.features[name]!, i, name);
    rows[i] = { entities: r.entities, features };
  }
  return { model: req.model, version: req.version, routingKey: req.routingKey, requestId: req.requestId, timeoutMs, rows: () => rows };
}

/**
 * The ProtoJSON of a PredictRequest (JSON.parse's result) read straight into the entry's types, when it has the shape
 * clients send: an object of the fields' JSON names only (`model`, `version`, `requestId`, `routingKey` as strings,
 * `rows`), each row an object of `entities` (strings) and `features` (numbers, strings, booleans). Anything else
 * (a proto field name such as `request_id`, a null, an unknown key, a nested value, a `__proto__` key) gives
 * undefined, and the door decodes it with protobuf-es (`fromJson`, then `toParsedRequest`), which gives the same
 * request or the precise error. What this accepts, that path decodes to the same request
 * (test/gateway/transport/sibyl-rest-json.test.ts). The parsed objects are the rows' maps as they are: no copy.
 * Measured in ARCHITECTURE.md ("REST's JSON").
 */
export function plainPredictRequest(json: unknown, timeoutMs: number | undefined): ParsedRequest | undefined {
  if (!isObject(json)) return undefined;
  let model = '';
  let version = '';
  let requestId = '';
  let routingKey = '';
  let rows: InputRow[] = [];
  for (const key in json) {
    const v = json[key];
    switch (key) {
      case 'rows':
        if (!Array.isArray(v)) return undefined;
        for (let i = 0; i < v.length; i++) if (!plainRow(v[i])) return undefined;
        rows = v as InputRow[];
        break;
      case 'model':
        if (typeof v !== 'string') return undefined;
        model = v;
        break;
      case 'version':
        if (typeof v !== 'string') return undefined;
        version = v;
        break;
      case 'requestId':
        if (typeof v !== 'string') return undefined;
        requestId = v;
        break;
      case 'routingKey':
        if (typeof v !== 'string') return undefined;
        routingKey = v;
        break;
      default:
        return undefined;
    }
  }
  const all = rows;
  return { model, version, routingKey, requestId, timeoutMs, rows: () => all };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function plainRow(row: unknown): boolean {
  if (!isObject(row)) return false;
  for (const key in row) {
    const map = row[key];
    if (!isObject(map) || Object.hasOwn(map, '__proto__')) return false;
    if (key === 'entities') {
      for (const k in map) if (typeof map[k] !== 'string') return false;
    } else if (key === 'features') {
      for (const k in map) {
        const t = typeof map[k];
        if (t !== 'number' && t !== 'string' && t !== 'boolean') return false;
      }
    } else {
      return false;
    }
  }
  // protobuf-es gives a row without a map an empty one (harmless to the fallback if a later row sends the request
  // there).
  if (row.entities === undefined) row.entities = {};
  if (row.features === undefined) row.features = {};
  return true;
}

/**
 * The ProtoJSON of the PredictResponse for `out`, byte for byte what protobuf-es writes
 * (`toJsonString(PredictResponseSchema, toPredictResponse(out))`, the fallback: test/gateway/transport/
 * sibyl-rest-json.test.ts), built as plain JSON: fields at their zero value left out, outputs as JSON values. An
 * output row of plain finite numbers, strings and booleans is written as it is, without a copy; a number that is not
 * finite, which google.protobuf.Value cannot hold, goes to protobuf-es, which refuses it as before.
 */
export function predictResponseJson(out: PredictOutput): string {
  const results: unknown[] = new Array(out.results.length);
  for (let i = 0; i < out.results.length; i++) {
    const r = out.results[i]!;
    const outputs = plainOutputs(r.outputs);
    if (outputs === undefined) return toJsonString(PredictResponseSchema, toPredictResponse(out));
    const result: { outputs?: unknown; defaultedFeatures?: readonly string[] } = {};
    if (outputs !== EMPTY) result.outputs = outputs;
    if (r.defaulted.length > 0) result.defaultedFeatures = r.defaulted;
    results[i] = result;
  }
  const res: { requestId?: string; model?: string; version?: string; results?: unknown[]; arm?: string } = {};
  if (out.requestId) res.requestId = out.requestId;
  if (out.model) res.model = out.model;
  if (out.version) res.version = out.version;
  if (results.length > 0) res.results = results;
  if (out.arm) res.arm = out.arm;
  return JSON.stringify(res);
}

const EMPTY = {};

/** The row as ProtoJSON Values: itself when every value is already one, a copy when some are not, undefined for a non-finite number; EMPTY when it has no outputs. */
function plainOutputs(row: OutputRow): object | undefined {
  let any = false;
  for (const k in row) {
    any = true;
    const v = row[k];
    const t = typeof v;
    if (t === 'string' || t === 'boolean' || (t === 'number' && Number.isFinite(v))) continue;
    return copyValues(row);
  }
  return any ? row : EMPTY;
}

function copyValues(row: OutputRow): object | undefined {
  const out: Record<string, unknown> = {};
  for (const k in row) {
    const v = jsonValue(row[k]);
    if (v === NOT_JSON) return undefined;
    out[k] = v;
  }
  return out;
}

const NOT_JSON = Symbol('not JSON');

/** What toValue's Value is as ProtoJSON: numbers, strings, booleans, lists; anything else null. */
function jsonValue(v: unknown): unknown {
  switch (typeof v) {
    case 'number':
      return Number.isFinite(v) ? v : NOT_JSON;
    case 'string':
    case 'boolean':
      return v;
    default:
      if (Array.isArray(v)) {
        const list: unknown[] = new Array(v.length);
        for (let i = 0; i < v.length; i++) {
          const x = jsonValue(v[i]);
          if (x === NOT_JSON) return NOT_JSON;
          list[i] = x;
        }
        return list;
      }
      return null;
  }
}

function scalarOf(v: Value, row: number, name: string): Scalar {
  const k = v.kind;
  if (k.case === 'numberValue' || k.case === 'stringValue' || k.case === 'boolValue') return k.value;
  throw new SibylError('INVALID_ARGUMENT', `rows[${row}].features.${name}: must be a number, string or boolean, got ${k.case ?? 'nothing'}`);
}

export function toPredictResponse(out: PredictOutput): PredictResponse {
  const results: PredictionResult[] = new Array(out.results.length);
  for (let i = 0; i < out.results.length; i++) {
    const r = out.results[i]!;
    results[i] = { $typeName: 'sibyl.v1.PredictionResult', outputs: toValues(r.outputs), defaultedFeatures: r.defaulted as string[] };
  }
  return create(PredictResponseSchema, { requestId: out.requestId, model: out.model, version: out.version, arm: out.arm, results });
}

/** Plain values as google.protobuf.Value messages (the shape protobuf-es uses), without going through JSON. */
export function toValues(row: OutputRow): Record<string, Value> {
  const out: Record<string, Value> = {};
  for (const k in row) out[k] = toValue(row[k]!);
  return out;
}

function toValue(v: unknown): Value {
  switch (typeof v) {
    case 'number':
      return { $typeName: 'google.protobuf.Value', kind: { case: 'numberValue', value: v } };
    case 'string':
      return { $typeName: 'google.protobuf.Value', kind: { case: 'stringValue', value: v } };
    case 'boolean':
      return { $typeName: 'google.protobuf.Value', kind: { case: 'boolValue', value: v } };
    default:
      if (Array.isArray(v)) {
        return { $typeName: 'google.protobuf.Value', kind: { case: 'listValue', value: { $typeName: 'google.protobuf.ListValue', values: v.map(toValue) } } };
      }
      return { $typeName: 'google.protobuf.Value', kind: { case: 'nullValue', value: 0 } };
  }
}
