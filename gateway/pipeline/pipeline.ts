/**
 * The one entry of every prediction, in the order of ARCHITECTURE.md ("The path of one prediction"): admit, parse,
 * request id and deadline, resolve (version, alias, default or split arm), execute (execution/execute.ts: enrich,
 * compose, run), respond, shadow, log. The four doors (Sibyl REST and gRPC, OIP REST and gRPC) only decode a
 * request into a ParsedRequest and encode the Outcome; every decision is made here once, and every request that
 * reaches the entry is counted here, refused and unparsable ones included (the REST fast path's refusals, made
 * before a request is read, are counted by admission control). Stage timings are recorded here, not in the stages.
 */
import { setMaxListeners } from 'node:events';
import type { OutputRow } from '../../runtimes/contract.ts';
import { SibylError, toSibylError } from '../../core/errors.ts';
import { isRequestId, REQUEST_ID } from '../../core/names.ts';
import { randomUuid } from '../../core/uuid.ts';
import { execute, resolveComposed, type ExecutionDeps } from '../../execution/execute.ts';
import type { ModelVersion } from '../../execution/model-version.ts';
import type { InputRow } from '../../execution/feature-plan.ts';
import type { FeatureStore } from '../../execution/feature-store.ts';
import type { PredictionSink } from '../log/prediction-sink.ts';
import { traceIds, UNKNOWN_MODEL, type ArrivalInfo, type Telemetry, type TraceContext } from '../telemetry/telemetry.ts';
import type { Route, RouteTable, RouteTableRef } from '../routing/route-table.ts';
import type { AdmissionControl, Refusal } from './admission.ts';
import { buildRecord } from './record.ts';
import type { ShadowRunner } from '../shadow/shadow-runner.ts';
import type { StatisticsRecorder } from '../stats/serving-statistics.ts';

export type { InputRow } from '../../execution/feature-plan.ts';
export type { Refusal } from './admission.ts';
/** What the doors' fast paths tell a client `refuseEarly` refused, by reason (defined with the reasons, in admission). */
export { EARLY_REFUSAL_MESSAGES } from './admission.ts';

/** The four doors, as metrics and the prediction log name them. */
export type Transport = 'rest' | 'grpc' | 'oip-rest' | 'oip-grpc';

/**
 * What a door knows of a request before its body is read: its transport, arrival time, route (`endpoint`, made once
 * per route by the door: telemetry/endpoint.ts), the raw path (HTTP), and the caller's `x-request-id`,
 * `traceparent` and `tracestate` headers or metadata, when sent. The span and the metrics are made from this here,
 * in the entry, never in a door.
 */
export interface Arrival extends ArrivalInfo {
  readonly transport: Transport;
  /** The `x-request-id` header or metadata, when sent. */
  readonly requestId?: string | undefined;
  /**
   * True once the caller has gone away (its gRPC call reset, its connection closed), from the door's own state:
   * the execution step then skips the store's read and the model (CANCELLED), so an overloaded gateway spends no
   * CPU on answers nobody waits for (a gRPC client cancels a call when its deadline passes).
   */
  readonly cancelled?: (() => boolean) | undefined;
}

/** A request as a door decoded it. */
export interface ParsedRequest {
  readonly model: string;
  /** Version, alias, or '' for the default (or the split's arm). */
  readonly version: string;
  /** Key for sticky traffic splits; '' when none. */
  readonly routingKey: string;
  /** The request id the body names; it wins over the header's. */
  readonly requestId?: string | undefined;
  /** The client's own deadline, ms (gRPC deadline, `x-request-timeout-ms`); the gateway's default caps it. */
  readonly timeoutMs?: number | undefined;
  /**
   * The request's rows, decoded for the version that will serve them (an Open Inference Protocol request's tensors
   * are read by that version's signature; a composed rule's also by the models it composes, `composed`, resolved in
   * the same table). Throws INVALID_ARGUMENT for rows that do not fit.
   */
  rows(route: Route, composed: readonly ModelVersion[]): readonly InputRow[];
}

export interface RequestContext {
  readonly requestId: string;
  /** Aborted at the request's deadline. */
  readonly signal: AbortSignal;
  /** `performance.now()` at arrival. */
  readonly startMs: number;
  readonly transport: Transport;
  /** The request's trace context, passed on to the prediction log and the shadows (RequestSpan.trace). */
  readonly trace?: TraceContext | undefined;
}

export interface PredictResult {
  readonly outputs: OutputRow;
  readonly defaulted: readonly string[];
}

export interface PredictOutput {
  readonly requestId: string;
  readonly model: string;
  readonly version: string;
  /** Traffic-split arm; '' without a split. */
  readonly arm: string;
  readonly results: readonly PredictResult[];
  /** The route that served, for doors that describe outputs (OIP). */
  readonly route: Route;
}

/** A served model version, the versions a composed rule composes, and every version of its model served. */
export interface Described {
  readonly route: Route;
  readonly composed: readonly ModelVersion[];
  readonly versions: readonly string[];
}

/** A request's end: its id (always set, for the answer's header) and its output or its error. */
export type Outcome =
  | { readonly requestId: string; readonly output: PredictOutput; readonly error?: undefined }
  | { readonly requestId: string; readonly output?: undefined; readonly error: SibylError };

export interface PipelineDeps {
  readonly routes: RouteTableRef;
  readonly store: FeatureStore;
  readonly featurePrefix: string;
  readonly featureTimeoutMs: number;
  readonly sink: PredictionSink;
  readonly telemetry: Telemetry;
  readonly cell: string;
  readonly maxRows: number;
  /** The gateway's default deadline, ms; a client may ask for less. */
  readonly requestTimeoutMs: number;
  /** Refuses requests beyond capacity (RESOURCE_EXHAUSTED); without it every request is admitted. */
  readonly admission?: AdmissionControl;
  /** Runs the models' shadows after the response; without it shadows are not run. */
  readonly shadows?: ShadowRunner;
  /**
   * Records each live execution's features and outputs, its latency, and each failure's code (serving
   * statistics); without it none are kept.
   */
  readonly statistics?: StatisticsRecorder;
  /**
   * Where the causes of INTERNAL errors go (clients only see "internal error"), with the request's `trace_id` and
   * `span_id` when it has a trace context; and the access log's lines (`info`), when it is on.
   */
  readonly logger?: { error(obj: object, msg: string): void; info?(obj: object, msg: string): void };
  /** The fraction of requests written to the access log (`logger.info`, message 'request'), 0..1; default 0 (off). */
  readonly accessLogRatio?: number;
}

export interface Pipeline {
  /**
   * Admits, parses (`parse` runs after admission: a door reads the body there), resolves, executes, and answers.
   * Never rejects: the Outcome carries a SibylError (RESOURCE_EXHAUSTED, INVALID_ARGUMENT, NOT_FOUND, ...).
   */
  predict(arrival: Arrival, parse: () => ParsedRequest | Promise<ParsedRequest>): Promise<Outcome>;
  /** The version serving (model, version | alias | '') now, for metadata and readiness. Throws NOT_FOUND. */
  describe(model: string, version: string): Described;
  /**
   * For a door's fast path before anything of the request is read: why admission refuses new work now ('inflight',
   * 'cpu', 'lag', and with `turnBound` (default true) 'turn'; counted as a refusal), else undefined.
   */
  refuseEarly(turnBound?: boolean): Refusal | undefined;
}

const NONE: readonly ModelVersion[] = Object.freeze([]);

export function newRequestId(): string {
  return randomUuid();
}

export function createPipeline(deps: PipelineDeps): Pipeline {
  const { routes, sink, telemetry, admission } = deps;
  // With the log off, no record is built at all.
  const logging = sink.kind !== 'null';
  const accessLogRatio = deps.logger?.info ? (deps.accessLogRatio ?? 0) : 0;
  const exec: ExecutionDeps = {
    store: deps.store,
    featurePrefix: deps.featurePrefix,
    featureTimeoutMs: deps.featureTimeoutMs,
    onRuntimeCall: (runtime, code, seconds) => telemetry.runtimeCall(runtime, code, seconds),
    onStoreFailure: (model, reason) => telemetry.featureStoreFailure(model, reason),
  };

  async function predict(arrival: Arrival, parse: () => ParsedRequest | Promise<ParsedRequest>): Promise<Outcome> {
    try {
      admission?.admit();
    } catch (err) {
      return refused(arrival, arrival.requestId || newRequestId(), toSibylError(err));
    }
    try {
      return await admitted(arrival, parse);
    } finally {
      admission?.release();
    }
  }

  async function admitted(arrival: Arrival, parse: () => ParsedRequest | Promise<ParsedRequest>): Promise<Outcome> {
    let req: ParsedRequest;
    try {
      req = await parse();
    } catch (err) {
      return refused(arrival, arrival.requestId || newRequestId(), toSibylError(err));
    }
    if (req.requestId && !isRequestId(req.requestId)) {
      return refused(arrival, arrival.requestId || newRequestId(), new SibylError('INVALID_ARGUMENT', `request id ${JSON.stringify(req.requestId.slice(0, 140))}: ${REQUEST_ID.message}`));
    }
    // The one read of the table for this request: the metric label, the route and composed models all come from it.
    const table = routes.current;
    const requestId = req.requestId || arrival.requestId || newRequestId();
    const span = telemetry.startRequest(modelLabel(table, req.model), arrival, requestId, req.model);
    const deadline = deadlineMs(req.timeoutMs);
    const ctx: RequestContext = {
      requestId,
      signal: deadlineSignal(arrival.startMs + deadline, arrival.startMs),
      startMs: arrival.startMs,
      transport: arrival.transport,
      trace: span.trace,
    };
    let route: Route | undefined;
    let arm = '';
    let rows: readonly InputRow[] | undefined;
    try {
      // 1 resolve
      let t0 = performance.now();
      const selection = table.select(req.model, req.version, req.routingKey);
      route = selection.route;
      arm = selection.arm;
      span.served(route.version, arm);
      route.acquire();
      rows = req.rows(route, route.composed.length === 0 ? NONE : resolveComposed(route, table));
      if (rows.length === 0) throw new SibylError('INVALID_ARGUMENT', 'rows: at least one row is required');
      if (rows.length > deps.maxRows) throw new SibylError('INVALID_ARGUMENT', `rows: ${rows.length} rows exceed the limit of ${deps.maxRows}`);
      let t1 = performance.now();
      span.stage('resolve', t0, t1);

      // 2 enrich and 3 dispatch: the one execution step (a composed rule's models resolve in the same table)
      t0 = t1;
      const run = await execute(route, rows, exec, { signal: ctx.signal, cancelled: arrival.cancelled, resolver: table });
      t1 = performance.now();
      span.stage('enrich', t0, run.enrichedAt);
      span.stage('dispatch', run.enrichedAt, t1);
      // Serving statistics: the version's features and outputs, summarized for drift (gateway/stats/).
      let t2 = t1;
      if (deps.statistics) {
        deps.statistics.record(route, run, t1 - ctx.startMs);
        t2 = performance.now();
      }

      // 4 respond (the door encodes what this returns)
      let defaultedCount = 0;
      const results: PredictResult[] = new Array(run.outputs.length);
      for (let i = 0; i < run.outputs.length; i++) {
        const d = run.defaulted[i]!;
        defaultedCount += d.length;
        results[i] = { outputs: run.outputs[i]!, defaulted: d };
      }
      if (defaultedCount) telemetry.featuresDefaulted(route.model, defaultedCount);
      let t3 = performance.now();
      span.stage('respond', t2, t3);

      // 5 shadow: queued now, run after the response is written (bounded, shed under load; traced on their own).
      const shadows = table.shadowsOf(route.model);
      if (shadows.length !== 0 && deps.shadows) {
        deps.shadows.submit({ ctx, live: route, arm, input: rows, liveRows: run.rows, liveResults: results, shadows });
        t3 = performance.now();
      }
      // 6 log: one record for the live execution, on disk before the answer goes (the sink appends the records of
      // requests that finish together in one write, and says when); the sink never waits on the network.
      let end = t3;
      if (logging) {
        const appended = sink.write(buildRecord(deps.cell, ctx, route, arm, rows, run.rows, results, run.modelMs, t1 - ctx.startMs, undefined));
        if (appended) await appended;
        end = performance.now();
        span.stage('log', t3, end);
      }
      span.end('OK', end);
      admission?.finished(end - ctx.startMs, deadline);
      if (accessLogRatio > 0) accessLog(arrival, ctx, req.model, route.version, arm, 'OK', undefined, end);
      return { requestId: ctx.requestId, output: { requestId: ctx.requestId, model: route.model, version: route.version, arm, results, route } };
    } catch (err) {
      const e = toSibylError(err);
      if (e.code === 'INTERNAL') deps.logger?.error({ err: e.cause ?? e, model: req.model, requestId: ctx.requestId, ...(ctx.trace && traceIds(ctx.trace)) }, 'prediction failed');
      const t = performance.now();
      span.end(e.code, t, e);
      admission?.finished(t - ctx.startMs, deadline);
      // The version's failures, for rollout guards: not a malformed request, not a caller that went away.
      if (route && deps.statistics && e.code !== 'INVALID_ARGUMENT' && e.code !== 'CANCELLED') deps.statistics.recordFailure(route, e.code, t - ctx.startMs);
      if (logging && route && rows && e.code !== 'INVALID_ARGUMENT') {
        const appended = sink.write(buildRecord(deps.cell, ctx, route, arm, rows, undefined, undefined, 0, t - ctx.startMs, e));
        if (appended) await appended;
        span.stage('log', t, performance.now());
      }
      if (accessLogRatio > 0) accessLog(arrival, ctx, req.model, route?.version ?? '', arm, e.code, e, t);
      return { requestId: ctx.requestId, error: e };
    } finally {
      route?.release();
    }
  }

  /** A request that ended before it named a model (refused, or not parsable): counted under the model ''. */
  function refused(arrival: Arrival, requestId: string, error: SibylError): Outcome {
    const span = telemetry.startRequest('', arrival, requestId, '');
    const t = performance.now();
    span.end(error.code, t, error);
    if (accessLogRatio > 0) accessLog(arrival, { requestId, trace: span.trace }, '', '', '', error.code, error, t);
    return { requestId, error };
  }

  /** One access-log line for a sampled request (`accessLogRatio`). */
  function accessLog(arrival: Arrival, ctx: { readonly requestId: string; readonly trace?: TraceContext | undefined }, model: string, version: string, arm: string, code: string, error: SibylError | undefined, endMs: number): void {
    if (!(Math.random() < accessLogRatio)) return;
    const http = arrival.endpoint.protocol === 'http';
    deps.logger!.info!(
      {
        requestId: ctx.requestId,
        transport: arrival.transport,
        route: arrival.endpoint.spanName,
        model,
        version,
        arm,
        code,
        ...(http ? { httpStatus: error?.httpStatus ?? 200 } : { grpcStatus: error?.grpcCode ?? 0 }),
        durationMs: Math.round((endMs - arrival.startMs) * 1000) / 1000,
        ...(ctx.trace && traceIds(ctx.trace)),
      },
      'request',
    );
  }

  function deadlineMs(requested: number | undefined): number {
    return requested !== undefined && requested > 0 ? Math.min(requested, deps.requestTimeoutMs) : deps.requestTimeoutMs;
  }

  return {
    predict,
    describe(model, version) {
      const table = routes.current;
      const route = table.resolve(model, version);
      return { route, composed: route.composed.length === 0 ? NONE : resolveComposed(route, table), versions: [...table.model(model)!.versions.keys()] };
    },
    refuseEarly: (turnBound) => admission?.refuseEarly(turnBound),
  };
}

/**
 * The metric label of a request's model: its name when the route table knows the model (served, or deployed and
 * not loaded here), else UNKNOWN_MODEL, so that a caller's unknown names add no series. Two Map lookups at most.
 */
function modelLabel(table: RouteTable, model: string): string {
  return table.model(model) !== undefined || table.unserved(model) !== undefined ? model : UNKNOWN_MODEL;
}

/**
 * Deadline signals are shared by the requests whose deadlines fall in the same 5 ms slot: one timer (and one abort
 * event) per slot instead of one per request, which profiling showed at a few percent of the request path. A
 * deadline may fire up to 5 ms late; within a request's lifetime nothing else changes.
 */
const SLOT_MS = 5;
const slots = new Map<number, AbortSignal>();
/**
 * The reason every deadline signal aborts with: a TimeoutError, as `AbortSignal.timeout`'s, made once (that one builds
 * a DOMException, stack and all, for every signal that fires: ~1% of a gRPC request's CPU in a profile of S4a).
 */
const DEADLINE_PASSED = new DOMException('The operation was aborted due to timeout', 'TimeoutError');

function deadlineSignal(deadlineMs: number, nowMs: number): AbortSignal {
  const slot = Math.ceil(deadlineMs / SLOT_MS);
  let signal = slots.get(slot);
  if (!signal) {
    const controller = new AbortController();
    signal = controller.signal;
    setMaxListeners(0, signal);
    slots.set(slot, signal);
    setTimeout(() => {
      slots.delete(slot);
      controller.abort(DEADLINE_PASSED);
    }, Math.max(1, Math.ceil(slot * SLOT_MS - nowMs))).unref();
  }
  return signal;
}
