/** Telemetry that records nothing: for unit tests and tools that run the pipeline without metrics. */
import type { RequestSpan, Telemetry } from './telemetry.ts';

const noopSpan: RequestSpan = Object.freeze({
  trace: undefined,
  stage() {},
  served() {},
  end() {},
});

export const noopTelemetry: Telemetry = Object.freeze({
  startRequest: () => noopSpan,
  startShadow: () => undefined,
  featureStoreFailure() {},
  featuresDefaulted() {},
  runtimeCall() {},
  metricsText: () => Promise.resolve({ contentType: 'text/plain; version=0.0.4; charset=utf-8', body: '' }),
  flush: () => Promise.resolve(),
  shutdown: () => Promise.resolve(),
});
