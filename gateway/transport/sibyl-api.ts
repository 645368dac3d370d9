/** Sibyl's own API messages (proto/sibyl/v1/predict.proto) to and from the pipeline's types. */
import { create } from '@bufbuild/protobuf';
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
