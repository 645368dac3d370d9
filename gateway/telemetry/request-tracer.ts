/**
 * Request tracing over OTLP/HTTP (JSON), by the OpenTelemetry semantic conventions for HTTP and gRPC servers: one
 * SERVER span per request, named after the door's route template or gRPC method (`POST /v1/models/{model}:predict`,
 * `sibyl.v1.PredictionService/Predict`; endpoint.ts) with `http.request.method`, `http.route`, `url.path`,
 * `url.scheme`, `http.response.status_code` or `rpc.system`, `rpc.service`, `rpc.method`, `rpc.grpc.status_code`,
 * plus `sibyl.request_id`, `sibyl.model`, `sibyl.version`, `sibyl.arm`, `sibyl.transport` and `sibyl.code`; one
 * child span per pipeline stage, named after the stage ('resolve', 'enrich', 'dispatch', 'respond', 'log'). Each
 * shadow execution gets an INTERNAL span `shadow` in a trace of its own, linked to the request's span.
 *
 * The span status follows the conventions: ERROR (with `error.type`) for HTTP 5xx, and for the gRPC codes a server
 * counts as its own failure (UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS); a
 * caller's mistake (4xx, INVALID_ARGUMENT, NOT_FOUND, ...) leaves it unset.
 *
 * Exists only when an OTLP endpoint is configured; without one no tracer is built and requests create no span
 * objects. Sampling is decided before the SDK is called (sampler.ts), so an unsampled request costs what a
 * metrics-only one does. A caller's W3C `traceparent` makes the request span its child, and its `tracestate` is
 * kept on the span and passed on with the span's context.
 *
 * Spans are batched (BatchSpanProcessor defaults: queue 2048, batch 512, every 5 s) and dropped, not queued without
 * bound, when the collector is slow or away (one export gives up after 2 s); `shutdown` flushes what it can.
 */
import { isSpanContextValid, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Context, type Span, type SpanContext, type Tracer } from '@opentelemetry/api';
import { hrTime, parseTraceParent, TraceState } from '@opentelemetry/core';
import type { Resource } from '@opentelemetry/resources';
import { AlwaysOnSampler, BatchSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import type { SibylError } from '../../core/errors.ts';
import { createSampler, DEFAULT_SAMPLER, type SamplerConfig } from './sampler.ts';
import type { ArrivalInfo, ShadowSpan, TraceContext } from './telemetry.ts';

export interface RequestTracer {
  /** Starts the request span, or returns undefined when the request is not sampled. A malformed `traceparent` is ignored. */
  start(arrival: ArrivalInfo, requestId: string, model: string): TracedSpan | undefined;
  /** Starts a shadow execution's span in a new trace, linked to `request` (a context this tracer recorded). */
  startShadow(request: TraceContext, model: string, version: string, requestId: string, startMs: number): ShadowSpan;
  /** Exports the batched spans now; resolves even when the collector cannot be reached. */
  flush(): Promise<void>;
  shutdown(): Promise<void>;
}

export interface TracedSpan {
  readonly trace: TraceContext;
  stage(name: string, startMs: number, endMs: number): void;
  served(version: string, arm: string): void;
  end(code: string, endMs: number, error: SibylError | undefined): void;
}

/** Bound on one batch export, retries included (the exporter's default is 10 s). */
const EXPORT_TIMEOUT_MS = 2000;

/** gRPC codes the semantic conventions count as a server's own failure (span status ERROR). */
const GRPC_SERVER_ERRORS: ReadonlySet<number> = new Set([2, 4, 12, 13, 14, 15]);

/**
 * `endpoint` is the collector's base URL (`http://host:4318`, `/v1/traces` is appended) or the full traces URL
 * (ending in `/v1/traces`). `sampler` defaults to parentbased_always_on, the SDK's default.
 */
export function createRequestTracer(opts: { endpoint: string; resource: Resource; sampler?: SamplerConfig }): RequestTracer {
  const url = /\/v1\/traces\/?$/.test(opts.endpoint) ? opts.endpoint : `${opts.endpoint.replace(/\/+$/, '')}/v1/traces`;
  const sample = createSampler(opts.sampler ?? DEFAULT_SAMPLER);
  const provider = new TracerProvider({
    resource: opts.resource,
    sampler: new AlwaysOnSampler(),
    spanProcessors: [new BatchSpanProcessor({ exporter: new OTLPTraceExporter({ url, timeoutMillis: EXPORT_TIMEOUT_MS }) })],
  });
  const tracer = provider.getTracer('sibyl-gateway');
  let shutdown: Promise<void> | undefined;

  return {
    start(arrival, requestId, model) {
      let parent: Context = ROOT_CONTEXT;
      const sc = arrival.traceparent === undefined ? null : parseTraceParent(arrival.traceparent);
      if (sc !== null && isSpanContextValid(sc)) {
        if (!sample({ traceId: sc.traceId, sampled: (sc.traceFlags & 1) === 1 })) return undefined;
        if (arrival.tracestate !== undefined && arrival.tracestate !== '') sc.traceState = new TraceState(arrival.tracestate);
        parent = trace.setSpanContext(ROOT_CONTEXT, { ...sc, isRemote: true });
      } else if (!sample(undefined)) {
        return undefined;
      }
      const e = arrival.endpoint;
      const attributes: Record<string, string> = { ...e.attributes, 'sibyl.transport': arrival.transport, 'sibyl.request_id': requestId, 'sibyl.model': model };
      if (arrival.path !== undefined) attributes['url.path'] = arrival.path;
      const span = tracer.startSpan(e.spanName, { kind: SpanKind.SERVER, startTime: hrTime(arrival.startMs), attributes }, parent);
      return new RequestSpanImpl(tracer, span, e.protocol === 'http');
    },
    startShadow(request, model, version, requestId, startMs) {
      const linked = parseTraceParent(request.traceparent);
      const span = tracer.startSpan(
        'shadow',
        {
          kind: SpanKind.INTERNAL,
          startTime: hrTime(startMs),
          root: true,
          links: linked === null ? [] : [{ context: linked }],
          attributes: { 'sibyl.model': model, 'sibyl.version': version, 'sibyl.request_id': requestId, 'sibyl.role': 'shadow' },
        },
        ROOT_CONTEXT,
      );
      return new ShadowSpanImpl(span);
    },
    flush() {
      return provider.forceFlush().catch(() => undefined);
    },
    shutdown() {
      // Best effort: spans that cannot reach the collector are dropped, shutdown still resolves.
      shutdown ??= provider.shutdown().catch(() => undefined);
      return shutdown;
    },
  };
}

function contextOf(sc: SpanContext): TraceContext {
  return { traceparent: `00-${sc.traceId}-${sc.spanId}-01`, tracestate: sc.traceState?.serialize() ?? '', recorded: true };
}

// Times go to the SDK as HrTime: it reads a plain number as performance time only when it is not in the future.
class RequestSpanImpl implements TracedSpan {
  readonly trace: TraceContext;
  readonly #tracer: Tracer;
  readonly #span: Span;
  readonly #http: boolean;
  /** Context carrying the request span, the parent of the stage spans. */
  readonly #ctx: Context;

  constructor(tracer: Tracer, span: Span, http: boolean) {
    this.#tracer = tracer;
    this.#span = span;
    this.#http = http;
    this.#ctx = trace.setSpan(ROOT_CONTEXT, span);
    this.trace = contextOf(span.spanContext());
  }

  stage(name: string, startMs: number, endMs: number): void {
    this.#tracer.startSpan(name, { startTime: hrTime(startMs) }, this.#ctx).end(hrTime(endMs));
  }

  served(version: string, arm: string): void {
    this.#span.setAttribute('sibyl.version', version);
    this.#span.setAttribute('sibyl.arm', arm);
  }

  end(code: string, endMs: number, error: SibylError | undefined): void {
    const span = this.#span;
    span.setAttribute('sibyl.code', code);
    if (this.#http) {
      const status = error === undefined ? 200 : error.httpStatus;
      span.setAttribute('http.response.status_code', status);
      if (status >= 500) {
        span.setAttribute('error.type', String(status));
        span.setStatus({ code: SpanStatusCode.ERROR, message: code });
      }
    } else {
      const status = error === undefined ? 0 : error.grpcCode;
      span.setAttribute('rpc.grpc.status_code', status);
      if (GRPC_SERVER_ERRORS.has(status)) {
        span.setAttribute('error.type', code);
        span.setStatus({ code: SpanStatusCode.ERROR, message: code });
      }
    }
    span.end(hrTime(endMs));
  }
}

class ShadowSpanImpl implements ShadowSpan {
  readonly trace: TraceContext;
  readonly #span: Span;

  constructor(span: Span) {
    this.#span = span;
    this.trace = contextOf(span.spanContext());
  }

  end(code: string, endMs: number): void {
    this.#span.setAttribute('sibyl.code', code);
    if (code !== 'OK') {
      this.#span.setAttribute('error.type', code);
      this.#span.setStatus({ code: SpanStatusCode.ERROR, message: code });
    }
    this.#span.end(hrTime(endMs));
  }
}
