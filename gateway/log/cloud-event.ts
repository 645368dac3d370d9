/**
 * The prediction record as a CloudEvent in the Kafka protocol binding, structured content mode
 * (https://github.com/cloudevents/spec/blob/main/cloudevents/bindings/kafka-protocol-binding.md):
 * key = request id (live and shadow executions of one request land in the same partition, in order), one header
 * `content-type: application/cloudevents+json; charset=UTF-8`, value = the event as JSON with the record's
 * ProtoJSON as its `data`. Structured rather than binary mode because Kafka clients pay per header: seven `ce_*`
 * headers cost ~3 µs of CPU per record more than one with @platformatic/kafka, 6-11 µs with kafkajs
 * (loadtest/micro/kafka-encode.bench.ts).
 * The event names its data's schema (`dataschema`) and carries the record's trace context as the CloudEvents
 * distributed-tracing extension (`traceparent`, `tracestate`,
 * https://github.com/cloudevents/spec/blob/main/cloudevents/extensions/distributed-tracing.md), when it has one.
 * The record's JSON alone is the line format of the file sink; the Kafka sink's write-ahead log holds the message
 * itself (wal-line.ts).
 * Schema: gateway/log/README.md.
 */
import { recordToJson, type PredictionRecord } from './prediction-record.ts';

export const CLOUD_EVENT_TYPE = 'sibyl.prediction.v1';
export const CLOUD_EVENT_SPEC_VERSION = '1.0';
export const CLOUD_EVENT_CONTENT_TYPE = 'application/cloudevents+json; charset=UTF-8';
export const RECORD_CONTENT_TYPE = 'application/json';
/** The event's `dataschema`: the protobuf message its data is the ProtoJSON of (proto/sibyl/v1/prediction_log.proto). */
export const RECORD_DATA_SCHEMA = 'urn:sibyl:proto:sibyl.v1.PredictionRecord';

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
  dataschema: string;
  /** The distributed-tracing extension: present when the record has a trace context. */
  traceparent?: string;
  tracestate?: string;
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
  return { key: record.requestId, value: `${recordEventHead(record, fallbackCell)}${json ?? recordToJson(record)}${EVENT_TAIL}`, headers: HEADERS };
}

/**
 * The record's event up to its data: the value is this, the record's JSON, then EVENT_TAIL. For a writer that
 * copies the parts where they go (wal-line.ts `walLineOf`) instead of joining them into one string first.
 */
export function recordEventHead(record: PredictionRecord, fallbackCell: string): string {
  return eventHead(record.predictionId, record.cell || fallbackCell, record.time || undefined, record.model, record.version, record.traceparent, record.tracestate);
}

/** What closes an event after its data. */
export const EVENT_TAIL = '}';

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
    value: `${eventHead(
      str(f.predictionId),
      str(f.cell) || fallbackCell,
      typeof f.time === 'string' ? f.time : undefined,
      str(f.model),
      str(f.version),
      typeof f.traceparent === 'string' ? f.traceparent : undefined,
      typeof f.tracestate === 'string' ? f.tracestate : undefined,
    )}${json}${EVENT_TAIL}`,
    headers: HEADERS,
  };
}

/** Parses a message value back into the event (for consumers and tests). Throws SyntaxError on bad JSON. */
export function parsePredictionEvent(value: string): PredictionEvent {
  return JSON.parse(value) as PredictionEvent;
}

/**
 * The event JSON up to its data (`"data":` included), the record's JSON and EVENT_TAIL follow; `id` is the prediction
 * id, the consumers' dedupe key.
 */
function eventHead(
  predictionId: string,
  cell: string,
  time: string | undefined,
  model: string,
  version: string,
  traceparent: string | undefined,
  tracestate: string | undefined,
): string {
  const q = JSON.stringify;
  const t = time === undefined ? '' : `"time":${q(time)},`;
  const tp = traceparent === undefined ? '' : `"traceparent":${q(traceparent)},${tracestate === undefined ? '' : `"tracestate":${q(tracestate)},`}`;
  return `{"specversion":"${CLOUD_EVENT_SPEC_VERSION}","id":${q(predictionId)},${sourceAndSubject(cell, model, version)}${t}${HEAD_END}${tp}"data":`;
}

const HEAD_END = `"datacontenttype":"${RECORD_CONTENT_TYPE}","dataschema":"${RECORD_DATA_SCHEMA}",`;

/**
 * `"source":...,"type":...,"subject":...,` for a cell and model version, made once per distinct pair of source and
 * subject: a process logs a handful of them, and quoting them for every record made the head cost 0.35 µs against
 * 0.16 now (in a loop).
 */
function sourceAndSubject(cell: string, model: string, version: string): string {
  if (lastJson !== undefined && lastCell === cell && lastModel === model && lastVersion === version) return lastJson;
  const subject = `${model}/${version}`;
  let bySubject = parts.get(cell);
  if (bySubject === undefined) parts.set(cell, (bySubject = new Map()));
  let json = bySubject.get(subject);
  if (json === undefined) {
    json = `"source":${JSON.stringify(`sibyl/${cell}`)},"type":"${CLOUD_EVENT_TYPE}","subject":${JSON.stringify(subject)},`;
    // Bounded: model versions come and go in a long-lived process.
    if (bySubject.size >= MAX_SUBJECTS) bySubject.clear();
    bySubject.set(subject, json);
  }
  lastCell = cell;
  lastModel = model;
  lastVersion = version;
  lastJson = json;
  return json;
}

const MAX_SUBJECTS = 1024;
/** Cell, then subject: the part of the head they make. */
const parts = new Map<string, Map<string, string>>();
/** The last triple asked for, checked before the maps: the records of a stretch of traffic are mostly one version's. */
let lastCell = '';
let lastModel = '';
let lastVersion = '';
let lastJson: string | undefined;
