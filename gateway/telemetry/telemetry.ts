/**
 * What the request path reports. One implementation over OpenTelemetry (otel-telemetry.ts: Prometheus `/metrics`,
 * OTLP spans when configured) and a no-op one for unit tests. Calls are cheap and synchronous.
 */
import type { SibylError } from '../../core/errors.ts';
import type { Endpoint } from './endpoint.ts';

export type Stage = 'resolve' | 'enrich' | 'dispatch' | 'respond' | 'shadow' | 'log';

/**
 * The model label of every request for a model the route table does not know (a caller's typo, a model never
 * deployed): one set of series for all of them instead of one per name. Decided by the pipeline's entry.
 */
export const UNKNOWN_MODEL = '_unknown';

/** What telemetry reads of a request's arrival (the pipeline's `Arrival` is one). */
export interface ArrivalInfo {
  /** 'rest' | 'grpc' | 'oip-rest' | 'oip-grpc'. */
  readonly transport: string;
  /** `performance.now()` at arrival. */
  readonly startMs: number;
  /** The door's route or method, as the span names it. */
  readonly endpoint: Endpoint;
  /** The raw request path of an HTTP door (`url.path`). */
  readonly path?: string | undefined;
  /** The caller's W3C `traceparent` and `tracestate`, when sent. */
  readonly traceparent?: string | undefined;
  readonly tracestate?: string | undefined;
}

/** A W3C trace context, as it is passed on: into the prediction log's CloudEvent, to shadows, into error logs. */
export interface TraceContext {
  /** `00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`. */
  readonly traceparent: string;
  /** The `tracestate` list; '' when there is none. */
  readonly tracestate: string;
  /** True when this gateway records a span with this context (the request was sampled here). */
  readonly recorded: boolean;
}

export interface RequestSpan {
  /**
   * The request's trace context: its span's when the request is traced here; otherwise the caller's, passed on as
   * it came (when well-formed); otherwise undefined.
   */
  readonly trace: TraceContext | undefined;
  /** Records a pipeline stage's duration; times are `performance.now()` milliseconds. */
  stage(stage: Stage, startMs: number, endMs: number): void;
  /** The version that serves the request and its traffic-split arm ('' without a split), once resolved. */
  served(version: string, arm: string): void;
  /**
   * Ends the request: `code` is 'OK' or an error code name, `error` the error (its HTTP status and gRPC code go on
   * the span). Counted once: later calls are ignored. Stages may still be recorded after the end (log).
   */
  end(code: string, endMs: number, error?: SibylError): void;
}

/** One shadow execution's span, in a trace of its own that links to the request's. */
export interface ShadowSpan {
  readonly trace: TraceContext;
  /** `code` is 'OK' or an error code name. */
  end(code: string, endMs: number): void;
}

export interface Telemetry {
  /**
   * Starts a request: `label` is the model label of its metrics (the entry decides it: the model's name when the
   * route table knows it, UNKNOWN_MODEL otherwise, '' when the request named none), `model` the name it asked for.
   * The caller's trace context (arrival.traceparent) is continued when it is well-formed; sampling follows the
   * configured sampler.
   */
  startRequest(label: string, arrival: ArrivalInfo, requestId: string, model: string): RequestSpan;
  /**
   * A span for one shadow execution (`startMs` is `performance.now()`), in its own trace linked to the request's
   * span; undefined unless the request is traced here (`request.recorded`).
   */
  startShadow(request: TraceContext | undefined, model: string, version: string, requestId: string, startMs: number): ShadowSpan | undefined;
  /** Counts a feature-store failure (store down or late) for a model. */
  featureStoreFailure(model: string, reason: 'timeout' | 'error'): void;
  /** Counts defaulted features. */
  featuresDefaulted(model: string, count: number): void;
  /** One model execution by a runtime (its kind, runtimes/registry.ts): its result code ('OK' or an error code) and duration. */
  runtimeCall(runtime: string, code: string, seconds: number): void;
  /** Prometheus text exposition (format 0.0.4) of all metrics; rejects after `shutdown`. */
  metricsText(): Promise<{ contentType: string; body: string }>;
  /** Exports the spans waiting in the batch now (best effort: resolves when the collector is away too). */
  flush(): Promise<void>;
  /** Flushes pending spans and stops exporting; idempotent. */
  shutdown(): Promise<void>;
}

const TRACEPARENT = /^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;
const ZERO_TRACE = '00000000000000000000000000000000';
const ZERO_SPAN = '0000000000000000';

/**
 * The caller's trace context as it came, for a request this gateway does not trace: undefined unless `traceparent`
 * is a well-formed version-00 header with non-zero ids. A `tracestate` longer than 512 characters (the W3C limit
 * that propagators keep) is dropped.
 */
export function passedOnContext(traceparent: string | undefined, tracestate: string | undefined): TraceContext | undefined {
  if (traceparent === undefined || traceparent.length !== 55 || !TRACEPARENT.test(traceparent)) return undefined;
  if (traceparent.startsWith(ZERO_TRACE, 3) || traceparent.startsWith(ZERO_SPAN, 36)) return undefined;
  return { traceparent, tracestate: tracestate !== undefined && tracestate.length <= 512 ? tracestate : '', recorded: false };
}

/** The trace id and span id of a context, for log lines (`trace_id`, `span_id`). */
export function traceIds(trace: TraceContext): { trace_id: string; span_id: string } {
  return { trace_id: trace.traceparent.slice(3, 35), span_id: trace.traceparent.slice(36, 52) };
}
