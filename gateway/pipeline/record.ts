/**
 * Builds the prediction-log record of one model execution in its ProtoJSON form (gateway/log/prediction-record.ts).
 * The record holds the same row objects the response used (never mutated after the response); the sink serializes
 * it later, off the request path. `trace` (default: the request's, `ctx.trace`) becomes the record's `traceparent`
 * and `tracestate`, and so the CloudEvent's.
 */
import { randomUuid } from '../../core/uuid.ts';
import type { FeatureRow } from '../../runtimes/contract.ts';
import type { SibylError } from '../../core/errors.ts';
import type { TraceContext } from '../telemetry/telemetry.ts';
import { micros, recordTime, type LoggedRole, type LoggedRow, type PredictionRecord } from '../log/prediction-record.ts';
import type { InputRow } from '../../execution/feature-plan.ts';
import type { PredictResult, RequestContext } from './pipeline.ts';
import type { Route } from '../routing/route-table.ts';

const NO_VALUES: Readonly<Record<string, never>> = Object.freeze({});
const NONE: readonly string[] = Object.freeze([]);

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
  role: LoggedRole = 'ROLE_LIVE',
  trace: TraceContext | undefined = ctx.trace,
): PredictionRecord {
  const rows: LoggedRow[] = new Array(input.length);
  for (let i = 0; i < input.length; i++) {
    // Key order is the ProtoJSON field order.
    rows[i] = {
      entities: input[i]!.entities,
      features: features ? features[i]! : NO_VALUES,
      outputs: results ? results[i]!.outputs : NO_VALUES,
      defaultedFeatures: results ? results[i]!.defaulted : NONE,
    };
  }
  // Key order is the ProtoJSON field order; the optional fields are added in it, only when set.
  const record: { -readonly [K in keyof PredictionRecord]: PredictionRecord[K] } = {
    predictionId: randomUuid(),
    requestId: ctx.requestId,
    time: recordTime(Date.now()),
    cell,
    model: route.model,
    version: route.version,
    role,
    arm,
    rows,
    modelLatencyUs: micros(modelMs),
    totalLatencyUs: micros(totalMs),
  };
  if (error) record.error = { code: error.code, message: error.message };
  if (trace !== undefined) {
    record.traceparent = trace.traceparent;
    if (trace.tracestate !== '') record.tracestate = trace.tracestate;
  }
  return record;
}
