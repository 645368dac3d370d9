/** Sibyl's own API messages (proto/sibyl/v1/predict.proto) to and from the pipeline's types. */
import { create, toBinary, toJsonString } from '@bufbuild/protobuf';
import type { Value } from '@bufbuild/protobuf/wkt';
import type { OutputRow, Scalar } from '../../runtimes/contract.ts';
import { SibylError } from '../../core/errors.ts';
import { PredictResponseSchema, type PredictRequest, type PredictResponse, type PredictionResult } from '../../proto/gen/sibyl/v1/predict_pb.js';
import type { InputRow, ParsedRequest, PredictOutput } from '../pipeline/pipeline.ts';
import { cursor, key as readKey, lenPrefixed, str, strField, uint32, varintNonZero, varintSize, writeStr, writeVarint } from './protobuf-wire.ts';
import { isJsonObject } from './rest-common.ts';

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
 * (test/gateway/sibyl-codec.test.ts). The parsed objects are the rows' maps as they are: no copy.
 * Measured in ARCHITECTURE.md ("The doors' messages without protobuf-es on the common path").
 */
export function plainPredictRequest(json: unknown, timeoutMs: number | undefined): ParsedRequest | undefined {
  if (!isJsonObject(json)) return undefined;
  let model = '';
  let version = '';
  let requestId = '';
  let routingKey = '';
  let rows: InputRow[] = [];
  for (const key in json) {
    const v = json[key];
    if (key === 'rows') {
      if (!Array.isArray(v)) return undefined;
      for (let i = 0; i < v.length; i++) if (!plainRow(v[i])) return undefined;
      rows = v as InputRow[];
      continue;
    }
    if (typeof v !== 'string') return undefined;
    if (key === 'model') model = v;
    else if (key === 'version') version = v;
    else if (key === 'requestId') requestId = v;
    else if (key === 'routingKey') routingKey = v;
    else return undefined;
  }
  const all = rows;
  return { model, version, routingKey, requestId, timeoutMs, rows: () => all };
}

function plainRow(row: unknown): boolean {
  if (!isJsonObject(row)) return false;
  for (const key in row) {
    const map = row[key];
    if (!isJsonObject(map) || Object.hasOwn(map, '__proto__')) return false;
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
 * The ProtoJSON of the PredictResponse for `out`, byte for byte what protobuf-es writes (`toJsonString(
 * PredictResponseSchema, toPredictResponse(out))`, the fallback: test/gateway/sibyl-codec.test.ts), built as plain
 * JSON: fields at their zero value left out, outputs as JSON values. An output row of plain finite numbers, strings
 * and booleans is written as it is, without a copy; a number that is not finite, which google.protobuf.Value cannot
 * hold, goes to protobuf-es, which refuses it as before.
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

/**
 * The row as ProtoJSON Values: itself when every value already is one, a copy when some are not (lists, nulls),
 * undefined for a non-finite number; EMPTY when it has no outputs.
 */
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

/*
 * The binary (wire) form of the same two messages, for Sibyl gRPC: read and written directly for the common case,
 * as the JSON form is above (the wire helpers: protobuf-wire.ts). Field numbers from proto/sibyl/v1/predict.proto.
 */

/**
 * PredictRequest's wire form read straight into the entry's types, when it holds only PredictRequest's fields, rows of
 * entities and of features whose values are numbers, strings or booleans, each map entry with one key and one value,
 * strings valid UTF-8 and no `__proto__` key. Anything else gives undefined, and the door decodes the message with
 * protobuf-es (`fromBinary`, then `toParsedRequest`), which gives the same request or the precise error; what this
 * accepts, that path decodes to the same request (test/gateway/sibyl-codec.test.ts, "the wire form").
 */
export function readPredictRequest(b: Buffer, timeoutMs: number | undefined): ParsedRequest | undefined {
  cursor.at = 0;
  const end = b.byteLength;
  let model = '';
  let version = '';
  let requestId = '';
  let routingKey = '';
  const rows: InputRow[] = [];
  while (cursor.at < end) {
    const tag = uint32(b, end);
    const len = (tag & 7) === 2 ? uint32(b, end) : -1;
    if (len < 0) return undefined;
    if (tag >>> 3 === 3) {
      const row = readRow(b, cursor.at + len);
      if (row === undefined) return undefined;
      rows.push(row);
      continue;
    }
    // The model's name and version repeat from request to request, as row keys do.
    const field = tag >>> 3;
    const s = field <= 2 ? readKey(b, len, end) : str(b, len, end);
    if (s === undefined) return undefined;
    switch (field) {
      case 1:
        model = s;
        break;
      case 2:
        version = s;
        break;
      case 4:
        requestId = s;
        break;
      case 5:
        routingKey = s;
        break;
      default:
        return undefined;
    }
  }
  return { model, version, routingKey, requestId, timeoutMs, rows: () => rows };
}

function readRow(b: Buffer, end: number): InputRow | undefined {
  if (end > b.byteLength) return undefined;
  const entities: Record<string, string> = {};
  const features: Record<string, Scalar> = {};
  while (cursor.at < end) {
    const tag = uint32(b, end);
    if (tag !== 0x0a && tag !== 0x12) return undefined;
    const len = uint32(b, end);
    if (len < 0) return undefined;
    const entryEnd = cursor.at + len;
    if (entryEnd > end) return undefined;
    // A map entry: the key (field 1), then the value (field 2), each once.
    if (uint32(b, entryEnd) !== 0x0a) return undefined;
    const keyLen = uint32(b, entryEnd);
    const key = keyLen < 0 ? undefined : readKey(b, keyLen, entryEnd);
    if (key === undefined || key === '__proto__' || uint32(b, entryEnd) !== 0x12) return undefined;
    const valueLen = uint32(b, entryEnd);
    if (valueLen < 0 || cursor.at + valueLen !== entryEnd) return undefined;
    if (tag === 0x0a) {
      const v = str(b, valueLen, entryEnd);
      if (v === undefined) return undefined;
      entities[key] = v;
    } else {
      const v = readScalarValue(b, entryEnd);
      if (v === undefined) return undefined;
      features[key] = v;
    }
  }
  return cursor.at === end ? { entities, features } : undefined;
}

/** A google.protobuf.Value holding one number, string or bool (its last kind on the wire wins, as in protobuf). */
function readScalarValue(b: Buffer, end: number): Scalar | undefined {
  let v: Scalar | undefined;
  while (cursor.at < end) {
    const tag = uint32(b, end);
    if (tag === 0x11) {
      if (cursor.at + 8 > end) return undefined;
      v = b.readDoubleLE(cursor.at);
      cursor.at += 8;
    } else if (tag === 0x1a) {
      const len = uint32(b, end);
      const s = len < 0 ? undefined : str(b, len, end);
      if (s === undefined) return undefined;
      v = s;
    } else if (tag === 0x20) {
      const nz = varintNonZero(b, end);
      if (nz < 0) return undefined;
      v = nz === 1;
    } else {
      return undefined;
    }
  }
  return v;
}

/**
 * PredictResponse's wire form for `out`, byte for byte what protobuf-es writes (`toBinary(PredictResponseSchema,
 * toPredictResponse(out))`, which it uses when an output is not a number, string or boolean:
 * test/gateway/sibyl-codec.test.ts, "the wire form"). Fields in field-number order, zero values left out, map entries
 * key then value.
 */
export function predictResponseBinary(out: PredictOutput): Uint8Array {
  let size = strField(out.requestId) + strField(out.model) + strField(out.version) + strField(out.arm);
  const resultSizes: number[] = new Array(out.results.length);
  for (let i = 0; i < out.results.length; i++) {
    const r = out.results[i]!;
    let n = 0;
    for (const k in r.outputs) {
      const e = entrySize(k, r.outputs[k]);
      if (e < 0) return toBinary(PredictResponseSchema, toPredictResponse(out));
      n += 1 + varintSize(e) + e;
    }
    for (const d of r.defaulted) n += 1 + lenPrefixed(d);
    resultSizes[i] = n;
    size += 1 + varintSize(n) + n;
  }
  const b = Buffer.allocUnsafe(size);
  cursor.at = 0;
  writeStr(b, 0x0a, out.requestId);
  writeStr(b, 0x12, out.model);
  writeStr(b, 0x1a, out.version);
  for (let i = 0; i < out.results.length; i++) {
    const r = out.results[i]!;
    b[cursor.at++] = 0x22;
    writeVarint(b, resultSizes[i]!);
    for (const k in r.outputs) {
      const v = r.outputs[k] as Scalar;
      b[cursor.at++] = 0x0a;
      writeVarint(b, entrySize(k, v));
      writeStr(b, 0x0a, k, true);
      b[cursor.at++] = 0x12;
      if (typeof v === 'number') {
        b[cursor.at++] = 9;
        b[cursor.at++] = 0x11;
        b.writeDoubleLE(v, cursor.at);
        cursor.at += 8;
      } else if (typeof v === 'string') {
        writeVarint(b, 1 + lenPrefixed(v));
        writeStr(b, 0x1a, v, true);
      } else {
        b[cursor.at++] = 2;
        b[cursor.at++] = 0x20;
        b[cursor.at++] = v ? 1 : 0;
      }
    }
    for (const d of r.defaulted) writeStr(b, 0x12, d, true);
  }
  writeStr(b, 0x2a, out.arm);
  return b;
}

/** The bytes of a map entry (key, then a Value of one number, string or bool); -1 for any other value. */
function entrySize(key: string, v: unknown): number {
  const keyField = 1 + lenPrefixed(key);
  switch (typeof v) {
    case 'number':
      return keyField + 2 + 9;
    case 'boolean':
      return keyField + 2 + 2;
    case 'string': {
      const value = 1 + lenPrefixed(v);
      return keyField + 1 + varintSize(value) + value;
    }
    default:
      return -1;
  }
}
