/** Telemetry that records nothing: for unit tests and tools that run the pipeline without metrics. */
import type { RequestSpan, Telemetry } from './telemetry.ts';

const noopSpan: RequestSpan = Object.freeze({
  stage() {},
  end() {},
});

export const noopTelemetry: Telemetry = Object.freeze({
  startRequest: () => noopSpan,
  featureStoreFailure() {},
  featuresDefaulted() {},
  runtimeCall() {},
  metricsText: () => Promise.resolve({ contentType: 'text/plain; version=0.0.4; charset=utf-8', body: '' }),
  shutdown: () => Promise.resolve(),
});
