/**
 * What the request path reports. One implementation over OpenTelemetry (otel-telemetry.ts: Prometheus `/metrics`,
 * OTLP spans when configured) and a no-op one for unit tests. Calls are cheap and synchronous.
 */
export type Stage = 'resolve' | 'enrich' | 'dispatch' | 'respond' | 'shadow' | 'log';

export interface RequestSpan {
  /** Records a pipeline stage's duration; times are `performance.now()` milliseconds. */
  stage(stage: Stage, startMs: number, endMs: number): void;
  /**
   * Ends the request: `code` is 'OK' or an error code name. Counted once: later calls are ignored. Stages may
   * still be recorded after the end (shadow, log).
   */
  end(code: string, endMs: number): void;
}

export interface Telemetry {
  /**
   * Starts a request span; `transport` is 'rest' | 'grpc' | 'oip-rest' | 'oip-grpc'; `startMs` is
   * `performance.now()` at arrival. `traceparent` is the caller's W3C trace context header, when it sent one
   * (ignored when tracing is off or the value is malformed).
   */
  startRequest(model: string, transport: string, startMs: number, traceparent?: string): RequestSpan;
  /** Counts a feature-store failure (store down or late) for a model. */
  featureStoreFailure(model: string, reason: 'timeout' | 'error'): void;
  /** Counts defaulted features. */
  featuresDefaulted(model: string, count: number): void;
  /** One model execution by a runtime (its kind, runtimes/registry.ts): its result code ('OK' or an error code) and duration. */
  runtimeCall(runtime: string, code: string, seconds: number): void;
  /** Prometheus text exposition (format 0.0.4) of all metrics; rejects after `shutdown`. */
  metricsText(): Promise<{ contentType: string; body: string }>;
  /** Flushes pending spans and stops exporting; idempotent. */
  shutdown(): Promise<void>;
}
