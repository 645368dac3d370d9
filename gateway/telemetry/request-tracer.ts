/**
 * Request tracing over OTLP/HTTP (JSON): one SERVER span `predict` per request and one child span per pipeline
 * stage, named after the stage ('resolve', 'enrich', ...). Exists only when an OTLP endpoint is configured; without
 * one no tracer is built and requests create no span objects.
 *
 * Sampling is decided before the SDK is called, so an unsampled request costs what a metrics-only one does: a
 * caller's W3C `traceparent` decides (sampled flag; the request span becomes the caller's child), otherwise
 * `sampleRatio` does.
 *
 * Spans are batched (BatchSpanProcessor defaults: queue 2048, batch 512, every 5 s) and dropped, not queued without
 * bound, when the collector is slow or away (one export gives up after 2 s); `shutdown` flushes what it can.
 */
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Context, type Span, type Tracer } from '@opentelemetry/api';
import { hrTime, parseTraceParent } from '@opentelemetry/core';
import type { Resource } from '@opentelemetry/resources';
import { AlwaysOnSampler, BatchSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';

export interface RequestTracer {
  /**
   * Starts the request span, or returns undefined when the request is not sampled. `startMs` is
   * `performance.now()` milliseconds; a malformed `traceparent` is ignored.
   */
  start(attributes: Readonly<Record<string, string>>, startMs: number, traceparent: string | undefined): TracedSpan | undefined;
  shutdown(): Promise<void>;
}

export interface TracedSpan {
  stage(name: string, startMs: number, endMs: number): void;
  end(code: string, endMs: number): void;
}

/** Bound on one batch export, retries included (the exporter's default is 10 s). */
const EXPORT_TIMEOUT_MS = 2000;

/**
 * `endpoint` is the collector's base URL (`http://host:4318`, `/v1/traces` is appended) or the full traces URL
 * (ending in `/v1/traces`). `sampleRatio` (0..1, default 1) is the fraction of requests without a caller's trace
 * context that are traced.
 */
export function createRequestTracer(opts: { endpoint: string; resource: Resource; sampleRatio?: number }): RequestTracer {
  const url = /\/v1\/traces\/?$/.test(opts.endpoint) ? opts.endpoint : `${opts.endpoint.replace(/\/+$/, '')}/v1/traces`;
  const ratio = opts.sampleRatio ?? 1;
  const provider = new TracerProvider({
    resource: opts.resource,
    sampler: new AlwaysOnSampler(),
    spanProcessors: [new BatchSpanProcessor({ exporter: new OTLPTraceExporter({ url, timeoutMillis: EXPORT_TIMEOUT_MS }) })],
  });
  const tracer = provider.getTracer('sibyl-gateway');
  let shutdown: Promise<void> | undefined;

  return {
    start(attributes, startMs, traceparent) {
      let parent: Context = ROOT_CONTEXT;
      const sc = traceparent === undefined ? null : parseTraceParent(traceparent);
      if (sc !== null) {
        if ((sc.traceFlags & 1) === 0) return undefined;
        parent = trace.setSpanContext(ROOT_CONTEXT, { ...sc, isRemote: true });
      } else if (ratio < 1 && !(Math.random() < ratio)) {
        return undefined;
      }
      const span = tracer.startSpan('predict', { kind: SpanKind.SERVER, startTime: hrTime(startMs), attributes }, parent);
      return new RequestSpanImpl(tracer, span);
    },
    shutdown() {
      // Best effort: spans that cannot reach the collector are dropped, shutdown still resolves.
      shutdown ??= provider.shutdown().catch(() => undefined);
      return shutdown;
    },
  };
}

// Times go to the SDK as HrTime: it reads a plain number as performance time only when it is not in the future.
class RequestSpanImpl implements TracedSpan {
  readonly #tracer: Tracer;
  readonly #span: Span;
  /** Context carrying the request span, the parent of the stage spans. */
  readonly #ctx: Context;

  constructor(tracer: Tracer, span: Span) {
    this.#tracer = tracer;
    this.#span = span;
    this.#ctx = trace.setSpan(ROOT_CONTEXT, span);
  }

  stage(name: string, startMs: number, endMs: number): void {
    this.#tracer.startSpan(name, { startTime: hrTime(startMs) }, this.#ctx).end(hrTime(endMs));
  }

  end(code: string, endMs: number): void {
    this.#span.setAttribute('sibyl.code', code);
    if (code !== 'OK') this.#span.setStatus({ code: SpanStatusCode.ERROR, message: code });
    this.#span.end(hrTime(endMs));
  }
}
