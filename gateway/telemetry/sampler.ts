/**
 * The trace samplers of the OpenTelemetry SDK configuration (`OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG`,
 * https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/#general-sdk-configuration),
 * decided before the SDK is called so that a request that is not sampled creates no span at all. The decisions are
 * the SDK's own: `traceidratio` keeps a trace when the XOR of its trace id's four 32-bit words is below
 * ratio x 2^32 (TraceIdRatioBasedSampler), so every service using the SDK keeps the same traces; a new trace's id
 * is random, so for a request without a parent a random draw decides, which is the same in distribution.
 */
export const SAMPLER_NAMES = [
  'always_on',
  'always_off',
  'traceidratio',
  'parentbased_always_on',
  'parentbased_always_off',
  'parentbased_traceidratio',
] as const;
export type SamplerName = (typeof SAMPLER_NAMES)[number];

export interface SamplerConfig {
  readonly name: SamplerName;
  /** For the `traceidratio` samplers: the fraction of traces kept, 0..1. */
  readonly ratio: number;
}

/** The SDK's default: follow the caller's sampled flag, trace every request that comes without one. */
export const DEFAULT_SAMPLER: SamplerConfig = Object.freeze({ name: 'parentbased_always_on', ratio: 1 });

/** The caller's context as the sampler reads it. */
export interface ParentContext {
  readonly traceId: string;
  /** The W3C `sampled` flag. */
  readonly sampled: boolean;
}

/** Decides whether a request is traced, from its parent context (undefined when it came without a valid one). */
export type SampleDecision = (parent: ParentContext | undefined) => boolean;

export function createSampler(config: SamplerConfig): SampleDecision {
  const ratio = Math.min(1, Math.max(0, Number.isNaN(config.ratio) ? 0 : config.ratio));
  const upperBound = ratio === 1 ? 4294967296 : Math.floor(ratio * 4294967295);
  const byRatio = (parent: ParentContext | undefined): boolean =>
    parent === undefined ? ratio === 1 || Math.random() < ratio : traceIdWord(parent.traceId) < upperBound;
  switch (config.name) {
    case 'always_on':
      return () => true;
    case 'always_off':
      return () => false;
    case 'traceidratio':
      return byRatio;
    case 'parentbased_always_on':
      return (parent) => (parent === undefined ? true : parent.sampled);
    case 'parentbased_always_off':
      return (parent) => (parent === undefined ? false : parent.sampled);
    case 'parentbased_traceidratio':
      return (parent) => (parent === undefined ? byRatio(undefined) : parent.sampled);
  }
}

/** XOR of the trace id's four 32-bit words (32 lower-case hex digits), as the SDK's ratio sampler computes it. */
export function traceIdWord(traceId: string): number {
  let acc = 0;
  for (let i = 0; i < 32; i += 8) acc = (acc ^ Number.parseInt(traceId.slice(i, i + 8), 16)) >>> 0;
  return acc;
}
