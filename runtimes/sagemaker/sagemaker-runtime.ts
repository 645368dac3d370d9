/**
 * The sagemaker runtime: a model version is a SageMaker real-time endpoint called with InvokeEndpoint.
 *
 * `load` validates the manifest's `sagemaker:` section (settings.ts), builds the request encoder and response
 * decoder, and makes one SDK client with keep-alive connections (endpoint-client.ts). It does not call the endpoint:
 * a model loads while its endpoint is down and answers UNAVAILABLE until it is up.
 *
 * `predict` encodes the rows once, then makes up to `maxAttempts` attempts. Each attempt is bounded by the request's
 * signal (its deadline) and by `timeoutMs`; the SDK's call is aborted, its socket destroyed, when either passes.
 * Throttling and unavailability (aws-errors.ts) are retried after a full-jitter backoff (random in
 * [0, min(capMs, baseMs * 2^(attempt-1))]) that is itself cut short by the request's signal; ModelError, validation
 * errors, timeouts and anything else are not. Every attempt asks the endpoint's circuit breaker first
 * (circuit-breaker.ts; one per region + endpoint + variant, shared by all versions calling it); an open breaker
 * answers UNAVAILABLE at once without calling.
 *
 * Rejections are SibylErrors: INVALID_ARGUMENT (a row does not fit the features, or the body is too big),
 * DEADLINE_EXCEEDED / CANCELLED, RESOURCE_EXHAUSTED (still throttled after the last attempt), UNAVAILABLE,
 * FAILED_PRECONDITION (SageMaker's ValidationError, or a disposed model), INTERNAL (ModelError, a response that
 * does not fit the declared outputs). The AWS error is the `cause`.
 */
import { InvokeEndpointCommand, type SageMakerRuntimeClient, type SageMakerRuntimeClientConfig } from '@aws-sdk/client-sagemaker-runtime';
import type { FeatureRow, LoadedModel, ModelBundle, OutputRow, PredictContext, Runtime } from '../contract.ts';
import { SibylError } from '../../core/errors.ts';
import { classifyAttemptError, requestAbortError } from './aws-errors.ts';
import { CircuitBreaker, type BreakerState, type CircuitBreakerOptions } from './circuit-breaker.ts';
import { createEndpointClient } from './endpoint-client.ts';
import { createRequestEncoder } from './request-encoder.ts';
import { createResponseDecoder } from './response-decoder.ts';
import { parseSageMakerSettings, type SageMakerSettings } from './settings.ts';

export interface SageMakerRuntimeOptions {
  /** Overrides every model's regional endpoint URL (see options-from-env.ts for where it comes from). */
  readonly endpointUrl?: string | undefined;
  /** Default: the SDK's credential chain. */
  readonly credentials?: SageMakerRuntimeClientConfig['credentials'];
  /** Connections per loaded model (default 64). */
  readonly maxSockets?: number | undefined;
  /** Milliseconds to open a connection (default 2000). */
  readonly connectTimeoutMs?: number | undefined;
  /** Circuit breaker thresholds for every endpoint (defaults: 5 consecutive failures, open 5000 ms). */
  readonly breaker?: Omit<CircuitBreakerOptions, 'now'> | undefined;
  /** Retry backoff in ms: full jitter up to min(capMs, baseMs * 2^(attempt-1)) (defaults 50 and 1000). */
  readonly backoff?: { readonly baseMs?: number; readonly capMs?: number } | undefined;
  /** Random numbers in [0, 1) for the jitter (default Math.random). */
  readonly random?: (() => number) | undefined;
}

/** Counters of one loaded model; the gateway may export them as metrics. Only ever increase. */
export interface SageMakerCounters {
  /** predict calls that reached the endpoint stage (rows encoded). */
  calls: number;
  /** InvokeEndpoint attempts sent. */
  attempts: number;
  /** Attempts that were retries. */
  retries: number;
  /** Attempts answered with throttling. */
  throttled: number;
  /** Attempts refused by the open circuit breaker without calling. */
  breakerRejected: number;
  /** Failed calls (of those counted in `calls`) by code. */
  failures: Record<string, number>;
}

export interface SageMakerLoadedModel extends LoadedModel {
  readonly settings: SageMakerSettings;
  readonly counters: Readonly<SageMakerCounters>;
  /** The state of this endpoint's circuit breaker now. */
  breakerState(): BreakerState;
}

export interface SageMakerRuntime extends Runtime {
  readonly kind: 'sagemaker';
  load(bundle: ModelBundle): Promise<SageMakerLoadedModel>;
  /** Nothing runtime-wide to stop (each model's client goes with its `dispose`); present for symmetry. */
  close(): Promise<void>;
}

interface SharedBreaker {
  readonly breaker: CircuitBreaker;
  refs: number;
}

export function createSageMakerRuntime(opts: SageMakerRuntimeOptions = {}): SageMakerRuntime {
  const breakers = new Map<string, SharedBreaker>();
  const baseMs = opts.backoff?.baseMs ?? 50;
  const capMs = opts.backoff?.capMs ?? 1000;
  const random = opts.random ?? Math.random;

  function acquireBreaker(key: string): SharedBreaker {
    let shared = breakers.get(key);
    if (!shared) breakers.set(key, (shared = { breaker: new CircuitBreaker(opts.breaker), refs: 0 }));
    shared.refs++;
    return shared;
  }
  function releaseBreaker(key: string): void {
    const shared = breakers.get(key);
    if (shared && --shared.refs === 0) breakers.delete(key);
  }

  async function load(bundle: ModelBundle): Promise<SageMakerLoadedModel> {
    const settings = parseSageMakerSettings(bundle.manifest);
    const encode = createRequestEncoder(settings, bundle.manifest);
    const decode = createResponseDecoder(settings);
    const client = createEndpointClient({
      region: settings.region,
      endpointUrl: opts.endpointUrl,
      credentials: opts.credentials,
      maxSockets: opts.maxSockets,
      connectTimeoutMs: opts.connectTimeoutMs,
    });
    const key = `${settings.region}/${settings.endpoint}/${settings.variant ?? ''}`;
    const { breaker } = acquireBreaker(key);
    const counters: SageMakerCounters = { calls: 0, attempts: 0, retries: 0, throttled: 0, breakerRejected: 0, failures: {} };
    let disposed = false;
    let inflight = 0;
    let drained: (() => void) | undefined;

    async function predict(rows: readonly FeatureRow[], ctx: PredictContext): Promise<OutputRow[]> {
      if (disposed) throw new SibylError('FAILED_PRECONDITION', 'model version is unloaded');
      const { signal } = ctx;
      if (signal.aborted) throw requestAbortError(signal);
      if (rows.length === 0) return [];
      const body = encode(rows);
      counters.calls++;
      inflight++;
      try {
        const out = await invoke(client, settings, breaker, counters, body, signal, baseMs, capMs, random);
        return decode(out.body, out.contentType, rows.length);
      } catch (err) {
        const code = err instanceof SibylError ? err.code : 'INTERNAL';
        counters.failures[code] = (counters.failures[code] ?? 0) + 1;
        throw err;
      } finally {
        if (--inflight === 0 && drained) drained();
      }
    }

    async function dispose(): Promise<void> {
      if (disposed) return;
      disposed = true;
      if (inflight > 0) await new Promise<void>((resolve) => (drained = resolve));
      releaseBreaker(key);
      client.destroy();
    }

    return { predict, dispose, settings, counters, breakerState: () => breaker.state };
  }

  return { kind: 'sagemaker', load, close: async () => {} };
}

async function invoke(
  client: SageMakerRuntimeClient,
  s: SageMakerSettings,
  breaker: CircuitBreaker,
  counters: SageMakerCounters,
  body: Buffer,
  signal: AbortSignal,
  baseMs: number,
  capMs: number,
  random: () => number,
): Promise<{ body: Uint8Array; contentType: string | undefined }> {
  const command = new InvokeEndpointCommand({
    EndpointName: s.endpoint,
    Body: body,
    ContentType: s.contentType,
    Accept: s.accept,
    ...(s.variant ? { TargetVariant: s.variant } : {}),
    ...(s.customAttributes ? { CustomAttributes: s.customAttributes } : {}),
  });
  for (let attempt = 1; ; attempt++) {
    const permit = breaker.tryAcquire();
    if (!permit) {
      counters.breakerRejected++;
      throw new SibylError('UNAVAILABLE', `SageMaker endpoint "${s.endpoint}" is failing; calls to it are paused (circuit open)`);
    }
    counters.attempts++;
    if (attempt > 1) counters.retries++;
    const timer = AbortSignal.timeout(s.timeoutMs);
    try {
      const out = await client.send(command, { abortSignal: AbortSignal.any([signal, timer]) });
      permit.success();
      return { body: out.Body ?? new Uint8Array(), contentType: out.ContentType };
    } catch (err) {
      const failure = classifyAttemptError(err, signal, timer.aborted, s.endpoint, s.timeoutMs);
      if (failure.countsAsFailure) permit.failure();
      else permit.release();
      if (failure.kind === 'throttled') counters.throttled++;
      if (!failure.retry || attempt >= s.maxAttempts) throw failure.error;
      await backoff(random() * Math.min(capMs, baseMs * 2 ** (attempt - 1)), signal);
    }
  }
}

/** Waits `ms`; rejects with DEADLINE_EXCEEDED / CANCELLED as soon as the request's signal aborts. */
function backoff(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(requestAbortError(signal));
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(requestAbortError(signal));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
