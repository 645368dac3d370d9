/**
 * Shadow executions: after a live response has been sent, each of the model's shadows runs on the same enriched
 * features, is compared with the live outputs (shadow-stats.ts) and is logged like a live execution (role SHADOW,
 * the same request id and arm). Nothing a shadow does reaches the caller.
 *
 * Bounded like a batch processor: at most `concurrency` shadow executions run at once and at most `maxQueue` wait;
 * work beyond that is shed and counted, and so is work submitted while the gateway is busy (`busy()` true), so that
 * shadows give way before live requests suffer. Each execution has a deadline (`timeoutMs`).
 *
 * Shadows start in batches. Work waits up to `batchMs` after the first of it was queued (or until `concurrency`
 * executions are waiting), then everything that may run starts in one callback, under one deadline timer. Executions
 * started together reach their runtime in the same turn, so an ONNX shadow's rows of many requests share one
 * coalesced run (runtimes/onnx/onnx-runtime.ts): for a small model the run's fixed cost is most of it (measured in
 * ARCHITECTURE.md, "The other callers of `execute()`"). No caller awaits a shadow, so the wait costs nobody time.
 *
 * A shadow runs through the one execution step (execution/execute.ts) like the live version: the live row's values
 * are reused for every feature the shadow declares under the same name, except the ones the live path defaulted;
 * what is left (store features only the shadow needs, or that the live path could not read) is fetched on the
 * shadow's path, never the live one. A composed shadow's models run on the same request.
 *
 * When the live request was traced, each shadow execution gets a span of its own in a new trace, linked to the
 * request's span (`traces`); its log record carries that span's trace context, else the request's.
 */
import { SibylError, toSibylError } from '../../core/errors.ts';
import type { FeatureRow, OutputRow } from '../../runtimes/contract.ts';
import { execute, type ExecutionDeps } from '../../execution/execute.ts';
import type { FeatureStore } from '../../execution/feature-store.ts';
import type { VersionResolver } from '../../execution/model-version.ts';
import type { PredictionSink } from '../log/prediction-sink.ts';
import type { InputRow } from '../../execution/feature-plan.ts';
import { buildRecord } from '../pipeline/record.ts';
import type { PredictResult, RequestContext } from '../pipeline/pipeline.ts';
import type { Route } from '../routing/route-table.ts';
import { traceIds, type Telemetry } from '../telemetry/telemetry.ts';
import type { ShadowStats } from './shadow-stats.ts';

export interface ShadowRunnerOptions {
  readonly store: FeatureStore;
  readonly featurePrefix: string;
  readonly featureTimeoutMs: number;
  /** The prediction log; records are skipped when its kind is 'null'. */
  readonly sink: PredictionSink;
  readonly cell: string;
  readonly stats: ShadowStats;
  /** Shadow executions running at once (default 64). */
  readonly concurrency?: number;
  /** Longest wait of queued work before its batch starts, milliseconds (default 2; 0: the next check phase). */
  readonly batchMs?: number;
  /** Shadow executions waiting (default 1000); more are shed. */
  readonly maxQueue?: number;
  /** Deadline of one shadow execution, enrichment included, milliseconds (default 250). */
  readonly timeoutMs?: number;
  /** Asked once per job submitted: true sheds the job's shadows (live traffic needs the process's CPU). */
  readonly busy?: () => boolean;
  readonly logger?: { warn(obj: object, msg: string): void };
  /** Told of every runtime call a shadow makes, as the live path's are (runtime kind, 'OK' or the code, seconds). */
  readonly onRuntimeCall?: (runtime: string, code: string, seconds: number) => void;
  /** The table being served: where a composed shadow's models resolve (without it, a composed shadow fails). */
  readonly routes?: { readonly current: VersionResolver };
  /** Spans for shadow executions of traced requests (Telemetry.startShadow). */
  readonly traces?: Pick<Telemetry, 'startShadow'>;
}

/** What the pipeline hands over after a live execution. The runner keeps the objects; do not change them. */
export interface ShadowJob {
  readonly ctx: RequestContext;
  readonly live: Route;
  readonly arm: string;
  readonly input: readonly InputRow[];
  readonly liveRows: readonly FeatureRow[];
  readonly liveResults: readonly PredictResult[];
  readonly shadows: readonly Route[];
}

interface Task {
  readonly job: ShadowJob;
  readonly shadow: Route;
}

export interface ShadowRunnerStats {
  readonly queued: number;
  readonly running: number;
  readonly executed: number;
  readonly shed: number;
}

export class ShadowRunner {
  readonly #o: Required<Omit<ShadowRunnerOptions, 'logger' | 'busy' | 'routes' | 'onRuntimeCall' | 'traces'>> & Pick<ShadowRunnerOptions, 'logger' | 'busy' | 'routes' | 'traces'>;
  readonly #exec: ExecutionDeps;
  readonly #logging: boolean;
  #queue: Task[] = [];
  #head = 0;
  #running = 0;
  #executed = 0;
  #shed = 0;
  #scheduled = false;
  /** The batch window's timer, while one is open. */
  #window: NodeJS.Timeout | undefined;
  #closed = false;
  #idle: (() => void)[] = [];

  constructor(options: ShadowRunnerOptions) {
    this.#o = { concurrency: 64, batchMs: 2, maxQueue: 1000, timeoutMs: 250, ...options };
    this.#logging = options.sink.kind !== 'null';
    this.#exec = {
      store: options.store,
      featurePrefix: options.featurePrefix,
      featureTimeoutMs: Math.min(this.#o.featureTimeoutMs, this.#o.timeoutMs),
      ...(options.onRuntimeCall ? { onRuntimeCall: options.onRuntimeCall } : {}),
    };
  }

  /**
   * Queues the job's shadow executions (or sheds them); returns at once. Call after the live response is built:
   * the executions start on a later turn of the event loop, after the response has been written.
   */
  submit(job: ShadowJob): void {
    const busy = this.#closed || this.#o.busy?.() === true;
    for (const shadow of job.shadows) {
      if (shadow === job.live) continue;
      if (busy || this.#queue.length - this.#head >= this.#o.maxQueue) {
        this.#shed++;
        this.#pairOf(job.live, shadow).recordShed();
        continue;
      }
      shadow.acquire();
      this.#queue.push({ job, shadow });
    }
    this.#schedule();
  }

  stats(): ShadowRunnerStats {
    return { queued: this.#queue.length - this.#head, running: this.#running, executed: this.#executed, shed: this.#shed };
  }

  /** Starts queued work without waiting for its batch window; resolves when nothing is queued or running. */
  flush(): Promise<void> {
    if (this.#running === 0 && this.#queue.length === this.#head) return Promise.resolve();
    if (this.#window !== undefined) this.#drainNow();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Sheds what is submitted from now on and waits for queued and running executions (they are bounded). */
  async close(): Promise<void> {
    this.#closed = true;
    await this.flush();
  }

  #schedule(): void {
    const queued = this.#queue.length - this.#head;
    const room = this.#o.concurrency - this.#running;
    if (queued === 0 || room <= 0) return;
    // After the pending I/O of this turn, which includes writing the live response: at once (the check phase) when a
    // full batch waits, else once the batch window that the first queued execution opened has passed.
    const full = this.#o.batchMs === 0 || queued >= room;
    if (this.#window !== undefined) {
      if (!full) return;
      clearTimeout(this.#window);
      this.#window = undefined;
    } else if (this.#scheduled) return;
    this.#scheduled = true;
    if (full) setImmediate(this.#drainNow);
    else this.#window = setTimeout(this.#drainNow, this.#o.batchMs);
  }

  readonly #drainNow = (): void => {
    this.#scheduled = false;
    if (this.#window !== undefined) clearTimeout(this.#window);
    this.#window = undefined;
    this.#drain();
  };

  /** Starts every queued execution there is room for, in this callback, under one deadline. */
  #drain(): void {
    if (this.#running >= this.#o.concurrency || this.#head === this.#queue.length) return;
    const signal = AbortSignal.timeout(this.#o.timeoutMs);
    while (this.#running < this.#o.concurrency && this.#head < this.#queue.length) {
      const task = this.#queue[this.#head]!;
      this.#queue[this.#head++] = undefined as unknown as Task;
      this.#running++;
      void this.#run(task, signal).finally(() => {
        this.#running--;
        task.shadow.release();
        if (this.#head < this.#queue.length) this.#schedule();
        else if (this.#running === 0) for (const w of this.#idle.splice(0)) w();
      });
    }
    if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
  }

  async #run({ job, shadow }: Task, signal: AbortSignal): Promise<void> {
    const pair = this.#pairOf(job.live, shadow);
    const start = performance.now();
    const span = this.#o.traces?.startShadow(job.ctx.trace, shadow.model, shadow.version, job.ctx.requestId, start);
    const trace = span?.trace ?? job.ctx.trace;
    let rows: FeatureRow[] | undefined;
    let results: PredictResult[] | undefined;
    let error: SibylError | undefined;
    let modelMs = 0;
    try {
      // The one execution step, on the live request, reusing the live path's reads (not its defaults); a composed
      // shadow's models resolve in the table being served now.
      const run = await execute(shadow, job.input, this.#exec, {
        signal,
        resolver: this.#o.routes?.current,
        known: { rows: job.liveRows, defaulted: job.liveResults.map((r) => r.defaulted) },
      });
      rows = run.rows;
      modelMs = run.modelMs;
      results = run.outputs.map((o, i) => ({ outputs: o, defaulted: run.defaulted[i]! }));
      pair.recordSuccess(performance.now() - start, liveOutputs(job.liveResults), run.outputs);
    } catch (err) {
      error = signal.aborted && !(err instanceof SibylError && err.code === 'INVALID_ARGUMENT') ? new SibylError('DEADLINE_EXCEEDED', 'the shadow deadline passed') : toSibylError(err);
      pair.recordError(performance.now() - start, error.code);
      if (error.code === 'INTERNAL') {
        this.#o.logger?.warn({ err: error.cause ?? error, model: shadow.model, version: shadow.version, requestId: job.ctx.requestId, ...(trace && traceIds(trace)) }, 'shadow failed');
      }
    } finally {
      this.#executed++;
    }
    const end = performance.now();
    span?.end(error ? error.code : 'OK', end);
    if (this.#logging) {
      // No one is answered after a shadow: its record is appended with the next ones, without waiting.
      void this.#o.sink.write(buildRecord(this.#o.cell, job.ctx, shadow, job.arm, job.input, rows, results, modelMs, end - start, error, 'ROLE_SHADOW', trace));
    }
  }

  #pairOf(live: Route, shadow: Route) {
    return this.#o.stats.pair(
      { model: live.model, version: live.version, outputs: live.outputs },
      { model: shadow.model, version: shadow.version, outputs: shadow.outputs },
    );
  }
}

function liveOutputs(results: readonly PredictResult[]): OutputRow[] {
  return results.map((r) => r.outputs);
}
