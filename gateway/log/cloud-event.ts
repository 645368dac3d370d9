/**
 * The prediction record as a CloudEvent in the Kafka protocol binding, binary content mode
 * (https://github.com/cloudevents/spec/blob/main/cloudevents/bindings/kafka-protocol-binding.md):
 * key = request id (live and shadow executions of one request land in the same partition, in order),
 * value = the record in ProtoJSON, attributes in `ce_*` headers. The JSON is also the line format of the
 * file sink and of the Kafka sink's spill log, so every consumer parses one thing. Schema: gateway/log/README.md.
 */
import { toJson, toJsonString } from '@bufbuild/protobuf';
import { TimestampSchema } from '@bufbuild/protobuf/wkt';
import { PredictionRecordSchema } from '../../proto/gen/sibyl/v1/prediction_log_pb.js';
import type { PredictionRecord } from '../../proto/gen/sibyl/v1/prediction_log_pb.js';

export const CLOUD_EVENT_TYPE = 'sibyl.prediction.v1';
export const CLOUD_EVENT_SPEC_VERSION = '1.0';
export const RECORD_CONTENT_TYPE = 'application/json';

/** A Kafka message ready for kafkajs `send` (strings are sent as UTF-8). */
export interface PredictionMessage {
  key: string;
  value: string;
  headers: Record<string, string>;
}

/**
 * The record's ProtoJSON: lowerCamelCase field names, enums by name, 64-bit integers as strings, timestamps as
 * RFC 3339, and every scalar field present even when it holds its default (`"arm": ""`, `"modelLatencyUs": "0"`),
 * so consumers see a fixed set of columns. `error` appears only when set.
 */
export function recordToJson(record: PredictionRecord): string {
  return toJsonString(PredictionRecordSchema, record, { alwaysEmitImplicit: true });
}

/**
 * The CloudEvent message for a record. `fallbackCell` names the source when the record has no cell.
 * `json` may be passed when the caller already serialized the record.
 */
export function predictionMessage(record: PredictionRecord, fallbackCell: string, json?: string): PredictionMessage {
  const time = record.time === undefined ? undefined : (toJson(TimestampSchema, record.time) as string);
  return {
    key: record.requestId,
    value: json ?? recordToJson(record),
    headers: cloudEventHeaders(record.predictionId, record.cell || fallbackCell, time, record.model, record.version),
  };
}

/**
 * The CloudEvent message for a record already in its JSON line form (spill-log replay). Produces the same key
 * and headers as `predictionMessage` for the same record. Throws SyntaxError when `json` is not a JSON object.
 */
export function predictionMessageFromJson(json: string, fallbackCell: string): PredictionMessage {
  const fields: unknown = JSON.parse(json);
  if (typeof fields !== 'object' || fields === null) throw new SyntaxError('prediction record is not a JSON object');
  const f = fields as Record<string, unknown>;
  const str = (v: unknown): string => (typeof v === 'string' ? v : '');
  return {
    key: str(f.requestId),
    value: json,
    headers: cloudEventHeaders(
      str(f.predictionId),
      str(f.cell) || fallbackCell,
      typeof f.time === 'string' ? f.time : undefined,
      str(f.model),
      str(f.version),
    ),
  };
}

/** ce_id is the prediction id: the consumers' dedupe key (delivery is at least once). */
function cloudEventHeaders(
  predictionId: string,
  cell: string,
  time: string | undefined,
  model: string,
  version: string,
): Record<string, string> {
  const headers: Record<string, string> = {
    ce_specversion: CLOUD_EVENT_SPEC_VERSION,
    ce_id: predictionId,
    ce_source: `sibyl/${cell}`,
    ce_type: CLOUD_EVENT_TYPE,
    ce_subject: `${model}/${version}`,
    'content-type': RECORD_CONTENT_TYPE,
  };
  if (time !== undefined) headers.ce_time = time;
  return headers;
}
