/**
 * The prediction record as a CloudEvent in the Kafka protocol binding, structured content mode
 * (https://github.com/cloudevents/spec/blob/main/cloudevents/bindings/kafka-protocol-binding.md):
 * key = request id (live and shadow executions of one request land in the same partition, in order), one header
 * `content-type: application/cloudevents+json; charset=UTF-8`, value = the event as JSON with the record's
 * ProtoJSON as its `data`. Structured rather than binary mode because Kafka clients pay per header: seven `ce_*`
 * headers cost ~3 µs of CPU per record more than one with @platformatic/kafka, 6-11 µs with kafkajs
 * (loadtest/micro/kafka-encode.bench.ts).
 * The record's JSON alone is the line format of the file sink; the Kafka sink's write-ahead log holds the message
 * itself (wal-line.ts).
 * Schema: gateway/log/README.md.
 */
import { recordToJson, type PredictionRecord } from './prediction-record.ts';

export const CLOUD_EVENT_TYPE = 'sibyl.prediction.v1';
export const CLOUD_EVENT_SPEC_VERSION = '1.0';
export const CLOUD_EVENT_CONTENT_TYPE = 'application/cloudevents+json; charset=UTF-8';
export const RECORD_CONTENT_TYPE = 'application/json';

/** A Kafka message ready to send (kafka-producer.ts sends strings as UTF-8). Do not mutate `headers`: it is shared. */
export interface PredictionMessage {
  key: string;
  value: string;
  headers: Readonly<Record<string, string>>;
}

/** The attributes of the event; `data` is the PredictionRecord's ProtoJSON. */
export interface PredictionEvent {
  specversion: string;
  id: string;
  source: string;
  type: string;
  subject: string;
  time?: string;
  datacontenttype: string;
  data: Record<string, unknown>;
}

/** The one header of every prediction message (shared: do not mutate). */
export const PREDICTION_HEADERS: Readonly<Record<string, string>> = Object.freeze({ 'content-type': CLOUD_EVENT_CONTENT_TYPE });
const HEADERS = PREDICTION_HEADERS;

/**
 * The CloudEvent message for a record. `fallbackCell` names the source when the record has no cell.
 * `json` may be passed when the caller already serialized the record.
 */
export function predictionMessage(record: PredictionRecord, fallbackCell: string, json?: string): PredictionMessage {
  return {
    key: record.requestId,
    value: eventJson(record.predictionId, record.cell || fallbackCell, record.time || undefined, record.model, record.version, json ?? recordToJson(record)),
    headers: HEADERS,
  };
}

/**
 * The CloudEvent message for a record already in its JSON line form (e.g. a file sink line). Produces the same key
 * and value as `predictionMessage` for the same record. Throws SyntaxError when `json` is not a JSON object.
 */
export function predictionMessageFromJson(json: string, fallbackCell: string): PredictionMessage {
  const fields: unknown = JSON.parse(json);
  if (typeof fields !== 'object' || fields === null) throw new SyntaxError('prediction record is not a JSON object');
  const f = fields as Record<string, unknown>;
  const str = (v: unknown): string => (typeof v === 'string' ? v : '');
  return {
    key: str(f.requestId),
    value: eventJson(
      str(f.predictionId),
      str(f.cell) || fallbackCell,
      typeof f.time === 'string' ? f.time : undefined,
      str(f.model),
      str(f.version),
      json,
    ),
    headers: HEADERS,
  };
}

/** Parses a message value back into the event (for consumers and tests). Throws SyntaxError on bad JSON. */
export function parsePredictionEvent(value: string): PredictionEvent {
  return JSON.parse(value) as PredictionEvent;
}

/** The event JSON around already-serialized record JSON; `id` is the prediction id, the consumers' dedupe key. */
function eventJson(predictionId: string, cell: string, time: string | undefined, model: string, version: string, data: string): string {
  const q = JSON.stringify;
  const t = time === undefined ? '' : `"time":${q(time)},`;
  return (
    `{"specversion":"${CLOUD_EVENT_SPEC_VERSION}","id":${q(predictionId)},"source":${q(`sibyl/${cell}`)},` +
    `"type":"${CLOUD_EVENT_TYPE}","subject":${q(`${model}/${version}`)},${t}"datacontenttype":"${RECORD_CONTENT_TYPE}",` +
    `"data":${data}}`
  );
}
