/**
 * Builds the prediction-log record of one model execution (proto/sibyl/v1/prediction_log.proto). The record holds
 * the same objects the response used; the sink serializes it later, off the request path.
 */
import { create } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import type { Value } from '@bufbuild/protobuf/wkt';
import { randomUUID } from 'node:crypto';
import type { FeatureRow, OutputRow } from '../../runtimes/contract.ts';
import type { SibylError } from '../../runtimes/errors.ts';
import { PredictionRecordSchema, Role, type LoggedRow, type PredictionRecord } from '../../proto/gen/sibyl/v1/prediction_log_pb.js';
import type { InputRow } from './feature-plan.ts';
import type { PredictResult, RequestContext } from './pipeline.ts';
import type { Route } from '../routing/route-table.ts';

export function buildRecord(
  cell: string,
  ctx: RequestContext,
  route: Route,
  arm: string,
  input: readonly InputRow[],
  features: readonly FeatureRow[] | undefined,
  results: readonly PredictResult[] | undefined,
  modelMs: number,
  totalMs: number,
  error: SibylError | undefined,
  role: Role = Role.LIVE,
): PredictionRecord {
  const rows: LoggedRow[] = new Array(input.length);
  for (let i = 0; i < input.length; i++) {
    rows[i] = {
      $typeName: 'sibyl.v1.LoggedRow',
      entities: input[i]!.entities as Record<string, string>,
      features: features ? toValues(features[i]!) : {},
      outputs: results ? toValues(results[i]!.outputs) : {},
      defaultedFeatures: results ? (results[i]!.defaulted as string[]) : [],
    };
  }
  return create(PredictionRecordSchema, {
    predictionId: randomUUID(),
    requestId: ctx.requestId,
    time: timestampFromMs(Date.now()),
    cell,
    model: route.model,
    version: route.version,
    role,
    arm,
    rows,
    modelLatencyUs: BigInt(Math.round(modelMs * 1000)),
    totalLatencyUs: BigInt(Math.round(totalMs * 1000)),
    error: error ? { code: error.code, message: error.message } : undefined,
  });
}

/** Plain values as google.protobuf.Value messages (the shape protobuf-es uses), without going through JSON. */
export function toValues(row: FeatureRow | OutputRow): Record<string, Value> {
  const out: Record<string, Value> = {};
  for (const k in row) out[k] = toValue(row[k]!);
  return out;
}

export function toValue(v: unknown): Value {
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
