/**
 * The path of one prediction, in the order of DESIGN.md section 1: resolve, enrich, dispatch, respond, log.
 * REST and gRPC adapters build a PredictInput and a RequestContext, call `predict`, and serialize its result or
 * its SibylError. Stage timings are recorded here, not in the stages.
 */
import { randomUUID } from 'node:crypto';
import type { OutputRow } from '../../runtimes/contract.ts';
import { SibylError, toSibylError } from '../../core/errors.ts';
import type { FeatureStore } from '../features/feature-store.ts';
import type { PredictionSink } from '../log/prediction-sink.ts';
import type { Telemetry } from '../telemetry/telemetry.ts';
import type { Route, RouteTableRef } from '../routing/route-table.ts';
import { enrich, type InputRow } from './feature-plan.ts';
import { buildRecord } from './record.ts';
import { composedOutputs, resolveComposed, ruleRows } from './compose.ts';
import type { ShadowRunner } from '../shadow/shadow-runner.ts';

export type { InputRow } from './feature-plan.ts';

export interface PredictInput {
  readonly model: string;
  /** Version, alias, or '' for the default. */
  readonly version: string;
  readonly rows: readonly InputRow[];
  /** Key for sticky traffic splits; '' when none. */
  readonly routingKey: string;
}

export interface RequestContext {
  readonly requestId: string;
  /** Aborted at the request's deadline or when the client goes away. */
  readonly signal: AbortSignal;
  /** `performance.now()` at arrival. */
  readonly startMs: number;
  /** 'rest' | 'grpc' | 'oip-rest' | 'oip-grpc'. */
  readonly transport: string;
  /** The caller's W3C `traceparent`, when it sent one. */
  readonly traceparent?: string | undefined;
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
  /** The route that served, for adapters that describe outputs (OIP). */
  readonly route: Route;
}

export interface PipelineDeps {
  readonly routes: RouteTableRef;
  readonly store: FeatureStore;
  readonly featurePrefix: string;
  readonly featureTimeoutMs: number;
  readonly sink: PredictionSink;
  readonly telemetry: Telemetry;
  readonly cell: string;
  readonly maxRows: number;
  /** Runs the models' shadows after the response; without it shadows are not run. */
  readonly shadows?: ShadowRunner;
  /** Where the causes of INTERNAL errors go (clients only see "internal error"). */
  readonly logger?: { error(obj: object, msg: string): void };
}

export interface Pipeline {
  /** Resolves with the outputs, or rejects with a SibylError (NOT_FOUND, INVALID_ARGUMENT, ...). */
  predict(input: PredictInput, ctx: RequestContext): Promise<PredictOutput>;
}

export function newRequestId(): string {
  return randomUUID();
}

export function createPipeline(deps: PipelineDeps): Pipeline {
  const { routes, store, sink, telemetry } = deps;
  // With the log off, no record is built at all.
  const logging = sink.kind !== 'null';

  return {
    async predict(input, ctx) {
      const span = telemetry.startRequest(input.model, ctx.transport, ctx.startMs, ctx.traceparent);
      let route: Route | undefined;
      let arm = '';
      /** performance.now() when the runtime call started; 0 outside it. */
      let dispatchedAt = 0;
      try {
        // 1 resolve
        let t0 = performance.now();
        if (input.rows.length === 0) throw new SibylError('INVALID_ARGUMENT', 'rows: at least one row is required');
        if (input.rows.length > deps.maxRows) throw new SibylError('INVALID_ARGUMENT', `rows: ${input.rows.length} rows exceed the limit of ${deps.maxRows}`);
        const table = routes.current;
        const selection = table.select(input.model, input.version, input.routingKey);
        route = selection.route;
        arm = selection.arm;
        route.acquire();
        let t1 = performance.now();
        span.stage('resolve', t0, t1);

        // 2 enrich (a composed rule takes its own part of the request; its models take theirs at dispatch)
        t0 = t1;
        const parts = route.composed.length ? resolveComposed(table, route) : undefined;
        const enriched = await enrich(route.plan, parts ? ruleRows(route, parts, input.rows) : input.rows, store, deps.featurePrefix, deps.featureTimeoutMs);
        if (enriched.storeFailure) telemetry.featureStoreFailure(route.model, enriched.storeFailure);
        t1 = performance.now();
        span.stage('enrich', t0, t1);

        // 3 dispatch
        if (ctx.signal.aborted) throw abortError(ctx.signal);
        t0 = t1;
        const models = parts ? await composedOutputs(table, parts, input.rows, enriched.rows, enriched.defaulted, deps, ctx.signal) : undefined;
        dispatchedAt = performance.now();
        const outputs = await route.loaded.predict(enriched.rows, models ? { signal: ctx.signal, models } : { signal: ctx.signal });
        t1 = performance.now();
        span.stage('dispatch', t0, t1);
        const modelMs = t1 - t0;
        telemetry.runtimeCall(route.manifest.runtime, 'OK', (t1 - dispatchedAt) / 1000);
        dispatchedAt = 0;

        // 4 respond (the adapter serializes what this returns)
        let defaultedCount = 0;
        const results: PredictResult[] = new Array(outputs.length);
        for (let i = 0; i < outputs.length; i++) {
          const d = enriched.defaulted[i]!;
          defaultedCount += d.length;
          results[i] = { outputs: outputs[i]!, defaulted: d };
        }
        if (defaultedCount) telemetry.featuresDefaulted(route.model, defaultedCount);

        // 5 shadow: queued now, run after the response is written (bounded, shed under load).
        const shadows = table.shadowsOf(route.model);
        if (shadows.length !== 0 && deps.shadows) {
          deps.shadows.submit({ ctx, live: route, arm, input: input.rows, liveRows: enriched.rows, liveResults: results, shadows });
        }
        // 6 log: one record for the live execution; the sink never blocks.
        if (logging) sink.write(buildRecord(deps.cell, ctx, route, arm, input.rows, enriched.rows, results, modelMs, t1 - ctx.startMs, undefined));
        span.end('OK', performance.now());
        return { requestId: ctx.requestId, model: route.model, version: route.version, arm, results, route };
      } catch (err) {
        const e = toSibylError(err);
        if (dispatchedAt !== 0 && route) telemetry.runtimeCall(route.manifest.runtime, e.code, (performance.now() - dispatchedAt) / 1000);
        if (e.code === 'INTERNAL') deps.logger?.error({ err: e.cause ?? e, model: input.model, requestId: ctx.requestId }, 'prediction failed');
        span.end(e.code, performance.now());
        if (logging && route && e.code !== 'INVALID_ARGUMENT') {
          sink.write(buildRecord(deps.cell, ctx, route, arm, input.rows, undefined, undefined, 0, performance.now() - ctx.startMs, e));
        }
        throw e;
      } finally {
        route?.release();
      }
    },
  };
}

function abortError(signal: AbortSignal): SibylError {
  const reason: unknown = signal.reason;
  if (reason instanceof SibylError) return reason;
  return (reason as Error | undefined)?.name === 'TimeoutError'
    ? new SibylError('DEADLINE_EXCEEDED', 'the request deadline passed')
    : new SibylError('CANCELLED', 'the request was cancelled');
}
