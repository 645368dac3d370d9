/**
 * The prediction-log record as the request path builds it: a plain object already in the ProtoJSON form of
 * `sibyl.v1.PredictionRecord` (proto/sibyl/v1/prediction_log.proto), so that the sink serializes it with one
 * `JSON.stringify`. The .proto stays the schema; test/log/prediction-record.test.ts checks that this JSON is the
 * canonical ProtoJSON protobuf-es writes for the same record. Building the protobuf-es message and converting it
 * with the schema-driven `toJsonString` cost 13-22 µs of CPU per S1 record, build and CloudEvent included; this
 * form costs 6-8 (loadtest/micro/record-json.bench.ts).
 *
 * ProtoJSON rules the shape follows: lowerCamelCase field names in field-number order (as protobuf-es writes
 * them), enums by name, 64-bit integers as decimal strings, the Timestamp as RFC 3339 UTC with 0, 3, 6 or 9
 * fractional digits, every scalar present even at its default (the sinks' `alwaysEmitImplicit`); `error` and the
 * optional `traceparent` and `tracestate` only when set. Feature and output values are google.protobuf.Value:
 * numbers, strings, booleans and lists as themselves; a non-finite number, which Value cannot hold, is written as
 * null.
 */
export type LoggedValue = number | string | boolean | null | readonly LoggedValue[];

export interface LoggedRow {
  readonly entities: Readonly<Record<string, string>>;
  readonly features: Readonly<Record<string, LoggedValue>>;
  readonly outputs: Readonly<Record<string, LoggedValue>>;
  readonly defaultedFeatures: readonly string[];
}

export type LoggedRole = 'ROLE_LIVE' | 'ROLE_SHADOW';

export interface PredictionRecord {
  readonly predictionId: string;
  readonly requestId: string;
  /** RFC 3339, UTC (`recordTime`). */
  readonly time: string;
  readonly cell: string;
  readonly model: string;
  readonly version: string;
  readonly role: LoggedRole;
  readonly arm: string;
  readonly rows: readonly LoggedRow[];
  /** uint64 as a decimal string. */
  readonly modelLatencyUs: string;
  readonly totalLatencyUs: string;
  readonly error?: { readonly code: string; readonly message: string };
  /** The W3C trace context of the execution, when it has one; `tracestate` only when not empty. */
  readonly traceparent?: string;
  readonly tracestate?: string;
}

/** The record's ProtoJSON (the file sink's line, the CloudEvent's `data`). */
export function recordToJson(record: PredictionRecord): string {
  return JSON.stringify(record);
}

let cachedSecond = NaN;
let cachedPrefix = '';

/**
 * A Unix time in milliseconds (the fraction dropped) as the ProtoJSON Timestamp: no fraction when the milliseconds
 * are 0, else three digits. The date and time of day are formatted once per second and reused: `toISOString` cost
 * ~2.6 µs of a record's CPU in a profile of S1.
 */
export function recordTime(ms: number): string {
  const whole = Math.floor(ms);
  const second = Math.floor(whole / 1000);
  if (second !== cachedSecond) {
    cachedSecond = second;
    cachedPrefix = new Date(second * 1000).toISOString().slice(0, -5);
  }
  const frac = whole - second * 1000;
  return frac === 0 ? `${cachedPrefix}Z` : `${cachedPrefix}.${frac < 10 ? '00' : frac < 100 ? '0' : ''}${frac}Z`;
}

/** Microseconds from milliseconds, as the uint64 decimal string. */
export function micros(ms: number): string {
  return String(Math.max(0, Math.round(ms * 1000)));
}
