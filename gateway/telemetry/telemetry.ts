/**
 * What the request path reports. One implementation over OpenTelemetry (otel-telemetry.ts: Prometheus `/metrics`,
 * OTLP spans when configured) and a no-op one for unit tests. Calls are cheap and synchronous.
 */
export type Stage = 'resolve' | 'enrich' | 'dispatch' | 'respond' | 'shadow' | 'log';

export interface RequestSpan {
  /** Records a pipeline stage's duration; times are `performance.now()` milliseconds. */
  stage(stage: Stage, startMs: number, endMs: number): void;
  /** Ends the request: `code` is 'OK' or an error code name. */
  end(code: string, endMs: number): void;
}

export interface Telemetry {
  /** Starts a request span; `transport` is 'rest' | 'grpc' | 'oip-rest' | 'oip-grpc'. */
  startRequest(model: string, transport: string, startMs: number): RequestSpan;
  /** Counts a feature-store failure (store down or late) for a model. */
  featureStoreFailure(model: string, reason: 'timeout' | 'error'): void;
  /** Counts defaulted features. */
  featuresDefaulted(model: string, count: number): void;
  /** Prometheus text exposition of all metrics. */
  metricsText(): Promise<{ contentType: string; body: string }>;
  shutdown(): Promise<void>;
}
