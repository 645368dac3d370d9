/**
 * The gateway as a Lambda function: the same assembly as the server (gateway/gateway.ts: route table, cell
 * follower, pipeline, shadows, prediction log, the REST app), nothing listening. Each invocation is one HTTP
 * request: the event becomes a WHATWG Request (http-event.ts), the gateway's REST app answers it through the one
 * entry and execution step (`app.fetch` -> `pipeline.predict`), and the Response goes back in the event source's
 * form. gRPC is not offered: Lambda's event sources speak HTTP/1.1 payloads.
 *
 * Init (createLambdaFunction): the feature store and the prediction log connect while the cell follower takes the
 * desired state (packaged bundles, the models directory, or the control tower, whose bundles may come from its S3
 * bucket), checks each bundle's hash, loads and warms every version and swaps the table in; init waits for the
 * table and for the Kafka and Redis connections (bounded by `initTimeoutMs`), so the first invocation runs no load.
 *
 * Nothing is lost at freeze: Lambda freezes the process once the invocation returns, so the work Sibyl does after
 * answering happens before the return. The answer is built first; then the invocation waits for its shadows (they
 * run after the answer, as on the server), for the prediction log to hold every record (Kafka: acknowledged by
 * the broker; while Kafka is away: in the write-ahead log in /tmp, replayed by a later invocation of the same
 * environment), and for a check of the tower started with it (polled-source.ts), all bounded by `flushTimeoutMs`
 * and the invocation's remaining time. What is still pending at the bound is logged with the sink's counters and
 * continues at the next thaw. lambda/README.md has the measured cost.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { createGateway, type Gateway, type GatewayParts } from '../gateway/gateway.ts';
import { createFeatureStore, createSink } from '../gateway/parts.ts';
import { noopTelemetry } from '../gateway/telemetry/noop-telemetry.ts';
import { createTowerClient } from '../gateway/sync/tower-client.ts';
import { openModelsDirSource } from '../gateway/sync/models-dir-source.ts';
import type { DesiredStateSource } from '../gateway/sync/desired-state-source.ts';
import type { FeatureStore } from '../execution/feature-store.ts';
import { errorResponse, timeoutHeaderName } from '../gateway/transport/rest-common.ts';
import { SibylError } from '../core/errors.ts';
import { requestOfEvent, resultOfResponse, type HttpEventRequest, type HttpResult } from './http-event.ts';
import type { LambdaConfig } from './lambda-config.ts';
import { openPackagedSource, PACKAGED_STATE } from './packaged-source.ts';
import { pollOnDemand, type PolledSource } from './polled-source.ts';

/** What Lambda passes beside the event (the part the function reads). */
export interface InvocationContext {
  getRemainingTimeInMillis?(): number;
}

/** Init, split into phases, milliseconds. `connect` overlaps the others (it runs beside them). */
export interface InitTimings {
  /** Where the desired state came from. */
  readonly source: 'packaged' | 'models-dir' | 'tower' | 'tower+s3';
  /** The cell's desired state: reading state.json, the models directory, or the tower's answer. */
  readonly stateMs: number;
  /** Bundle zips: read from the package, or downloaded (tower, S3). */
  readonly bundlesMs: number;
  /** The rest of the follower's work until the table is swapped in: hash checks, unpacking, runtime import, load, warm-up. */
  readonly modelsMs: number;
  /** Making the feature store and the prediction log (the in-process store is seeded from its file here). */
  readonly partsMs: number;
  /** Feature store and prediction log ready (beside the above). */
  readonly connectMs: number;
  /** From the start of createLambdaFunction to ready. */
  readonly totalMs: number;
}

/** The last invocation, milliseconds: until its answer was built, and what it then waited for. */
export interface InvocationTimings {
  readonly answerMs: number;
  readonly settleMs: number;
  /** false when `flushTimeoutMs` (or the remaining time) ran out first. */
  readonly settled: boolean;
}

export interface LambdaFunction {
  readonly gateway: Gateway;
  readonly init: InitTimings;
  /** The last invocation's timings (undefined before the first). */
  readonly last: InvocationTimings | undefined;
  /**
   * Handles one event; never rejects (a failure is an HTTP error answer). Resolves after the work that follows the
   * answer has settled (bounded). `onAnswer`, when given, receives the answer first, before that work (response
   * streaming sends it then); its failure is logged.
   */
  invoke(event: unknown, context?: InvocationContext, onAnswer?: (result: HttpResult) => Promise<void>): Promise<HttpResult>;
  /** Stops the gateway (SIGTERM from Lambda, tests). */
  close(): Promise<void>;
}

/** Room left at the end of an invocation for returning its result, ms. */
const RETURN_MARGIN_MS = 100;

export async function createLambdaFunction(config: LambdaConfig, parts: GatewayParts = {}): Promise<LambdaFunction> {
  const started = performance.now();
  const g = config.gateway;
  const logger: Logger = parts.logger ?? pino({ level: g.logLevel, base: { cell: g.cell } });
  const timing = { stateMs: 0, bundlesMs: 0 };
  const { source, polled, kind } = await openSource(config, timing);

  const tParts = performance.now();
  const store = parts.store ?? (await createFeatureStore(g, logger));
  const sink = parts.sink ?? (await createSink(g, logger));
  const partsMs = performance.now() - tParts;
  const connecting = connect(store, sink, config.initTimeoutMs, logger);

  const fetchedBefore = timing.stateMs + timing.bundlesMs;
  const tGateway = performance.now();
  const gateway = await createGateway(g, { telemetry: noopTelemetry, ...parts, logger, store, sink, sync: { ...parts.sync, source } });
  const ready = await within(gateway.follower.ready, config.initTimeoutMs);
  if (!ready) logger.error({ timeoutMs: config.initTimeoutMs }, 'no route table at the end of init: predictions answer UNAVAILABLE until the desired state is loaded');
  const loadedAt = performance.now();
  const connectMs = await connecting;
  const totalMs = performance.now() - started;
  // State and bundles were timed in the source; the rest of the follower's time is loading.
  const modelsMs = Math.max(0, loadedAt - tGateway - (timing.stateMs + timing.bundlesMs - fetchedBefore));
  const init: InitTimings = { source: kind, stateMs: timing.stateMs, bundlesMs: timing.bundlesMs, modelsMs, partsMs, connectMs, totalMs };
  logger.info({ init: round(init), models: [...gateway.routes.current.models()].map((m) => m.name) }, 'sibyl lambda function ready');

  let last: InvocationTimings | undefined;

  async function settle(check: Promise<void> | undefined, context: InvocationContext | undefined): Promise<boolean> {
    const remaining = context?.getRemainingTimeInMillis?.() ?? Infinity;
    const budget = Math.max(0, Math.min(config.flushTimeoutMs, remaining - RETURN_MARGIN_MS));
    // Shadows first: each writes its own record, which the sink's flush then covers.
    const work = Promise.all([gateway.shadows.flush().then(() => gateway.sink.flush()), check]);
    const settled = await within(work, budget);
    if (!settled) {
      logger.warn(
        { budgetMs: Math.round(budget), shadows: gateway.shadows.stats(), sink: gateway.sink.stats() },
        'invocation returns with work pending: it continues at the next thaw (records not acknowledged are in the write-ahead log in /tmp)',
      );
    }
    return settled;
  }

  return {
    gateway,
    init,
    get last() {
      return last;
    },

    async invoke(event, context, onAnswer) {
      const t0 = performance.now();
      await reconnectAfterThaw(store, g.featureStore.prefix);
      // A due check of the tower runs beside the request: the request reads the table it finds at its start.
      const check = polled?.checkIfDue(t0);
      let http: HttpEventRequest | undefined;
      let result: HttpResult;
      try {
        http = requestOfEvent(event);
        limitDeadline(http.request, context, g.requestTimeoutMs);
        result = await resultOfResponse(await gateway.app.fetch(http.request), http.kind);
      } catch (err) {
        // An event that is not an HTTP request (or a failure outside the app) gets the server's error body.
        if (!(err instanceof SibylError)) logger.error({ err }, 'invocation failed outside the gateway');
        result = await resultOfResponse(errorResponse(err, ''), http?.kind ?? 'http-api-v2');
      }
      if (onAnswer) await onAnswer(result).catch((err: unknown) => logger.warn({ err }, 'the answer could not be streamed'));
      const t1 = performance.now();
      const settled = await settle(check, context);
      last = { answerMs: t1 - t0, settleMs: performance.now() - t1, settled };
      logger.debug({ invocation: round(last), checked: check !== undefined }, 'invocation');
      return result;
    },

    close: () => gateway.stop(),
  };
}

async function openSource(config: LambdaConfig, timing: { stateMs: number; bundlesMs: number }): Promise<{ source: DesiredStateSource; polled?: PolledSource; kind: InitTimings['source'] }> {
  const g = config.gateway;
  if (g.tower) {
    let inner: DesiredStateSource = createTowerClient(g.tower);
    let kind: InitTimings['source'] = 'tower';
    if (config.bundleBucket) {
      const { createS3ArtifactStore } = await import('../control-tower/store/s3-artifact-store.ts');
      const bucket = createS3ArtifactStore({ bucket: config.bundleBucket.bucket, region: config.bundleBucket.region, ...(config.bundleBucket.endpoint ? { endpoint: config.bundleBucket.endpoint } : {}) });
      const tower = inner;
      inner = {
        remote: true,
        cellState: (cell, after, waitMs, signal) => tower.cellState(cell, after, waitMs, signal),
        report: (report, signal) => tower.report(report, signal),
        async bundle(sha256) {
          const bytes = await bucket.get(sha256);
          if (!bytes) throw new SibylError('NOT_FOUND', `bundle ${sha256} is not in s3://${config.bundleBucket!.bucket}`);
          return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        },
      };
      kind = 'tower+s3';
    }
    const polled = pollOnDemand(timed(inner, timing), config.syncIntervalMs);
    return { source: polled, polled, kind };
  }
  const t = performance.now();
  if (existsSync(join(config.bundlesDir, PACKAGED_STATE))) {
    const source = await openPackagedSource(config.bundlesDir, g.cell);
    timing.stateMs += performance.now() - t;
    return { source: timed(source, timing), kind: 'packaged' };
  }
  // The models directory is read (and each bundle zipped) when opened: that is its state and its bundles.
  const source = await openModelsDirSource(g.modelsDir, g.cell);
  timing.stateMs += performance.now() - t;
  return { source: timed(source, timing), kind: 'models-dir' };
}

/** Adds the time spent in the source's state and bundle calls to `timing` (init's phases). */
function timed(source: DesiredStateSource, timing: { stateMs: number; bundlesMs: number }): DesiredStateSource {
  return {
    remote: source.remote,
    async cellState(cell, after, waitMs, signal) {
      const t = performance.now();
      try {
        return await source.cellState(cell, after, waitMs, signal);
      } finally {
        if (waitMs <= 0) timing.stateMs += performance.now() - t;
      }
    },
    async bundle(sha256, signal) {
      const t = performance.now();
      try {
        return await source.bundle(sha256, signal);
      } finally {
        timing.bundlesMs += performance.now() - t;
      }
    },
    report: (report, signal) => source.report(report, signal),
  };
}

/**
 * Waits, bounded, until the prediction log and the feature store are connected, so the first invocation does not
 * pay for it; resolves with the time taken. Neither failing stops init: both report and recover on their own.
 */
async function connect(store: object, sink: object, timeoutMs: number, logger: Logger): Promise<number> {
  const t = performance.now();
  const waits: Promise<unknown>[] = [];
  const redis = store as { kind?: string; ready?: (timeoutMs: number) => Promise<void> };
  if (redis.kind === 'redis' && typeof redis.ready === 'function') {
    waits.push(redis.ready(timeoutMs).catch((err: unknown) => logger.warn({ err: (err as Error).message }, 'feature store not connected at init')));
  }
  const kafka = sink as { kind?: string; mode?: string };
  if (kafka.kind === 'kafka' && 'mode' in kafka) {
    waits.push(
      (async () => {
        const until = performance.now() + timeoutMs;
        while (kafka.mode === 'starting' && performance.now() < until) await new Promise((r) => setTimeout(r, 2));
        if (kafka.mode !== 'direct') logger.warn({ mode: kafka.mode }, 'prediction log: Kafka not connected at init');
      })(),
    );
  }
  await Promise.all(waits);
  return performance.now() - t;
}

/** Longest an invocation waits for the feature store to reconnect after a thaw, ms. */
const RECONNECT_WAIT_MS = 250;

/**
 * Connections can die while the environment is frozen (the server or a NAT closes them meanwhile). On thaw, one
 * event-loop turn lets the I/O that arrived during the freeze be seen; a feature store that then reports itself
 * unhealthy (its connection failed) is probed with a read of one absent key until a round trip succeeds, at most
 * RECONNECT_WAIT_MS, so the request reads its features instead of answering with their defaults. Measured: 50-110 ms
 * once after such a thaw (the store's connection waits 50 ms before its first reconnect), one event-loop turn
 * (microseconds) otherwise. The Kafka producer reconnects by itself within the invocation's flush.
 */
async function reconnectAfterThaw(store: FeatureStore, prefix: string): Promise<void> {
  await new Promise<void>((resolve) => setImmediate(resolve));
  if (store.healthy) return;
  const redis = store as { ready?: (timeoutMs: number) => Promise<void> };
  const until = performance.now() + RECONNECT_WAIT_MS;
  for (;;) {
    await redis.ready?.(Math.max(1, until - performance.now())).catch(() => undefined);
    try {
      await store.read([{ key: `${prefix}:sibyl-lambda:reconnect-probe`, fields: ['probe'] }], Math.max(1, until - performance.now()));
      return;
    } catch {
      if (performance.now() >= until) return;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }
}

/**
 * Keeps a request inside the invocation: when less time remains than the request deadline, the deadline header
 * (the same one clients use) is lowered to fit. A client's own header that is already shorter, or invalid (the
 * door answers 400 for it as on the server), is left alone.
 */
function limitDeadline(request: Request, context: InvocationContext | undefined, requestTimeoutMs: number): void {
  const remaining = context?.getRemainingTimeInMillis?.();
  if (remaining === undefined) return;
  const room = Math.max(1, Math.floor(remaining - RETURN_MARGIN_MS * 2));
  if (room >= requestTimeoutMs) return;
  const asked = request.headers.get(timeoutHeaderName);
  if (asked !== null) {
    const n = Number(asked);
    if (!Number.isFinite(n) || n <= 0 || n <= room) return;
  }
  request.headers.set(timeoutHeaderName, String(room));
}

/** Resolves true when `work` settles within `ms`, false otherwise (work continues). */
async function within(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([work.then(() => true as const, () => true as const), bound]);
  } finally {
    clearTimeout(timer);
  }
}

function round<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, typeof v === 'number' ? Math.round(v * 10) / 10 : v])) as T;
}
