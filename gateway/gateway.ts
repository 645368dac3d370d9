/**
 * Assembles a gateway from its configuration: feature store, prediction-log sink, telemetry, runtimes, the route
 * table, the pipeline, and the REST app (`app`, which `app.fetch` serves in process: the Lambda entry does). `start`
 * imports the listeners (HTTP with REST's fast path, gRPC) and listens; a gateway never started loads neither, so
 * the Lambda function does not load gRPC. `stop` drains in-flight requests, flushes the prediction log and frees
 * everything (once).
 */
import type { ServerType } from '@hono/node-server';
import type { RequestListener, Server as HttpServer, ServerOptions } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Hono } from 'hono';
import { hostname } from 'node:os';
import { pino, type Logger } from 'pino';
import type { Config } from './config.ts';
import type { FeatureStore } from '../execution/feature-store.ts';
import type { PredictionSink } from './log/prediction-sink.ts';
import type { Telemetry } from './telemetry/telemetry.ts';
import { createRuntimes, type Runtimes } from '../runtimes/index.ts';
import { RouteTableRef } from './routing/route-table.ts';
import { createPipeline, type Pipeline } from './pipeline/pipeline.ts';
import { AdmissionControl } from './pipeline/admission.ts';
import { createRestApp } from './transport/rest-app.ts';
import type { GrpcServer } from './transport/grpc/grpc-server.ts';
import { createFeatureStore, createSink, createTelemetry } from './parts.ts';
import { tuneGarbageCollector } from './gc-tuning.ts';
import { ShadowRunner } from './shadow/shadow-runner.ts';
import { ShadowStats } from './shadow/shadow-stats.ts';
import { ServingStatistics } from './stats/serving-statistics.ts';
import { createCellFollower, type CellFollower, type CellFollowerOptions } from './sync/cell-follower.ts';
import { openModelsDirSource, type ModelsDirSource } from './sync/models-dir-source.ts';
import { PendingRouteTable } from './sync/pending-route-table.ts';
import { createTowerClient } from './sync/tower-client.ts';
import { withPodMetrics, type PodLink } from './workers/pod-link.ts';

/** The HTTP listener's accept queue (Node's default is 511). */
const LISTEN_BACKLOG = 4096;

export interface GatewayParts {
  readonly store?: FeatureStore;
  readonly sink?: PredictionSink;
  readonly telemetry?: Telemetry;
  readonly logger?: Logger;
  /** The runtimes models load with (default: createRuntimes()); closed by `stop`. */
  readonly runtimes?: Runtimes;
  /** Overrides for the cell follower: retry delays (source, download, load), warm-up bound, a desired-state source (e.g. an in-process tower). */
  readonly sync?: Partial<Pick<CellFollowerOptions, 'backoff' | 'loadRetry' | 'warmUpTimeoutMs' | 'source' | 'reportIntervalMs'>>;
  /** The serving statistics (default: 1-minute windows, the last 15 kept). */
  readonly statistics?: ServingStatistics;
  /**
   * In a worker of a gateway with several (gateway/workers/): the pod's readiness, which readiness endpoints and
   * gRPC health then report (this worker's own and the pod's), and the pod's metrics, which /metrics then serves.
   */
  readonly pod?: PodLink;
}

export interface Gateway {
  readonly config: Config;
  readonly app: Hono;
  readonly pipeline: Pipeline;
  readonly routes: RouteTableRef;
  readonly store: FeatureStore;
  readonly sink: PredictionSink;
  readonly telemetry: Telemetry;
  readonly logger: Logger;
  readonly admission: AdmissionControl;
  readonly shadows: ShadowRunner;
  readonly shadowStats: ShadowStats;
  /** Per model version, its features and outputs over the recent window, reported to the tower. */
  readonly statistics: ServingStatistics;
  /** Follows the cell's desired state (the control tower's, or the models directory's) and swaps the route table. */
  readonly follower: CellFollower;
  /**
   * Without a tower: reads the models directory again (SIGHUP); resolves true when its state changed, and the
   * follower then loads, warms and swaps in what changed. Rejects, changing nothing, when the directory is invalid.
   * Following a tower: resolves false.
   */
  reloadModels(): Promise<boolean>;
  /** Listens on the configured ports (0 picks free ones); resolves with the bound ports. */
  start(): Promise<{ httpPort: number; grpcPort: number }>;
  /**
   * Drains (transport/drain.ts): not ready at once, accepting for drainGraceMs, then answers what is in flight with
   * `Connection: close`, closes idle connections and gRPC health Watch streams, closes everything left at
   * drainTimeoutMs. Then flushes shadows and the prediction log and frees models. Idempotent.
   */
  stop(): Promise<void>;
}

export async function createGateway(config: Config, parts: GatewayParts = {}): Promise<Gateway> {
  tuneGarbageCollector();
  // pino's own base fields (pid, hostname) and the cell on every line.
  const worker = config.workerIndex === undefined ? {} : { worker: config.workerIndex };
  const logger = parts.logger ?? pino({ level: config.logLevel, base: { pid: process.pid, hostname: hostname(), cell: config.cell, ...worker } });
  const store = parts.store ?? (await createFeatureStore(config, logger));
  const sink = parts.sink ?? (await createSink(config, logger));
  const shadowStats = new ShadowStats();
  const statistics = parts.statistics ?? new ServingStatistics();
  statistics.start();
  // Read at scrape time only, after `admission` below exists.
  const telemetry = parts.telemetry ?? (await createTelemetry(config, sink, shadowStats, () => admission.stats()));
  const runtimes: Runtimes = parts.runtimes ?? createRuntimes();
  // The cell's desired state provides the routes, loaded, warmed and swapped in the same way from either source.
  // From the tower: served from the local cache at once when there is one; until a table is loaded, predictions
  // answer UNAVAILABLE and /readyz 503. From the models directory: loaded before createGateway resolves.
  let modelsDir: ModelsDirSource | undefined;
  const source = parts.sync?.source ?? (config.tower ? createTowerClient(config.tower) : (modelsDir = await openModelsDirSource(config.modelsDir, config.cell)));
  const routes = new RouteTableRef(new PendingRouteTable());
  const follower: CellFollower = createCellFollower({
    cell: config.cell,
    ...config.sync,
    runtimes,
    routes,
    logger,
    shadowStats: () => shadowStats.snapshot(),
    statistics: () => statistics.snapshot(),
    ...parts.sync,
    source,
  });
  await follower.start();
  const admission = new AdmissionControl(config.admission);
  const shadows = new ShadowRunner({
    store,
    featurePrefix: config.featureStore.prefix,
    featureTimeoutMs: config.featureStore.timeoutMs,
    sink,
    cell: config.cell,
    stats: shadowStats,
    routes,
    onRuntimeCall: (runtime, code, seconds) => telemetry.runtimeCall(runtime, code, seconds),
    traces: telemetry,
    ...config.shadows,
    // Shadows give way first (admission.ts, `admitBackground`): their CPU comes out of the live requests' headroom.
    busy: () => !admission.admitBackground(),
    logger,
  });
  const pipeline = createPipeline({
    admission,
    requestTimeoutMs: config.requestTimeoutMs,
    shadows,
    statistics,
    routes,
    store,
    featurePrefix: config.featureStore.prefix,
    featureTimeoutMs: config.featureStore.timeoutMs,
    sink,
    telemetry,
    cell: config.cell,
    maxRows: config.maxRows,
    logger,
    accessLogRatio: config.accessLogRatio,
  });

  let draining = false;
  const pod = parts.pod;
  const health = {
    live: () => true,
    ready: () => !draining && follower.isReady && (pod?.podReady() ?? true),
  };
  admission.start();
  const limits = { maxBodyBytes: config.maxBodyBytes };
  const { app, serveDirect } = createRestApp({ pipeline, health, telemetry: pod ? withPodMetrics(telemetry, pod) : telemetry, limits, logger, shadowStats });
  // Made by `start`: a gateway served in process (the Lambda function) never loads the listeners.
  let grpcServer: GrpcServer | undefined;
  let http: ServerType | undefined;
  /** On a shared port: closes the gRPC listener alone (its door's drain would also send GOAWAY). */
  let stopAcceptingGrpc: (() => void) | undefined;
  let stopping: Promise<void> | undefined;

  return {
    config,
    app,
    pipeline,
    routes,
    store,
    sink,
    telemetry,
    logger,
    admission,
    shadows,
    shadowStats,
    statistics,
    follower,
    reloadModels: async () => (modelsDir ? modelsDir.reload() : false),
    async start() {
      const [{ createAdaptorServer }, { createServer: createHttpServer }, { withFastReject }, grpc, { createGrpcServer }] = await Promise.all([
        import('@hono/node-server'),
        import('node:http'),
        import('./transport/fast-reject.ts'),
        import('@grpc/grpc-js'),
        import('./transport/grpc/grpc-server.ts'),
      ]);
      let grpcDoor = createGrpcServer({ pipeline, health, limits });
      // Several workers share both ports (SO_REUSEPORT: the kernel spreads connections over them).
      const reusePort = config.workers > 1;
      const httpPort = await new Promise<number>((resolve, reject) => {
        const createServer = ((options: ServerOptions, listener: RequestListener) =>
          withKeepAlive(
            createHttpServer(
              options,
              // Refusals first (fast-reject.ts), then the prediction routes' direct path, then Hono.
              withFastReject((req, res) => {
                if (!serveDirect(req, res)) listener(req, res);
              }, pipeline),
            ),
            config.keepAliveTimeoutMs,
          )) as typeof createHttpServer;
        const s = createAdaptorServer({ fetch: app.fetch, hostname: config.host, createServer });
        s.once('error', reject);
        // A deep accept queue: a burst of new connections while the loop is saturated waits there instead of
        // having its SYNs dropped (the client then retries after a second). The kernel caps it at somaxconn.
        s.listen({ port: config.httpPort, host: config.host, backlog: LISTEN_BACKLOG, reusePort }, () => resolve((s.address() as AddressInfo).port));
        http = s;
      });
      let grpcPort: number;
      if (reusePort) {
        const { listenSharedPort } = await import('./workers/shared-port.ts');
        let stopAccepting: () => void;
        ({ door: grpcDoor, port: grpcPort, stopAccepting } = await listenSharedPort(grpcDoor, grpc.ServerCredentials.createInsecure(), { host: config.host, port: config.grpcPort, backlog: LISTEN_BACKLOG }));
        stopAcceptingGrpc = stopAccepting;
      } else {
        grpcPort = await new Promise<number>((resolve, reject) =>
          grpcDoor.server.bindAsync(`${config.host}:${config.grpcPort}`, grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
        );
      }
      grpcServer = grpcDoor;
      grpcDoor.setServing(pod?.podReady() ?? true);
      pod?.onPodReady((ready) => draining || grpcServer?.setServing(ready));
      logger.info({ httpPort, grpcPort, models: [...routes.current.models()].map((m) => m.name) }, 'sibyl gateway serving');
      return { httpPort, grpcPort };
    },
    stop() {
      stopping ??= (async () => {
        // Not ready at once: /readyz, /v2/health/ready 503 and gRPC health NOT_SERVING (Watch streams are told).
        draining = true;
        grpcServer?.setServing(false);
        const following = follower.stop();
        if (grpcServer) {
          const { drainFrontDoors } = await import('./transport/drain.ts');
          // With several workers, clients are moved away only once every worker has stopped accepting.
          const stoppedAccepting = pod
            ? async () => {
                stopAcceptingGrpc?.();
                await pod.stoppedAccepting();
              }
            : undefined;
          await drainFrontDoors({ http: http as HttpServer | undefined, grpc: grpcServer, graceMs: config.drainGraceMs, timeoutMs: config.drainTimeoutMs, logger, stoppedAccepting });
        }
        await following;
        admission.stop();
        statistics.stop();
        await shadows.close();
        await sink.shutdown();
        await Promise.all(routes.current.routes().map((r) => r.retire()));
        await runtimes.close();
        await store.close();
        await telemetry.shutdown();
        logger.info('sibyl gateway stopped');
      })();
      return stopping;
    },
  };
}

/**
 * Idle keep-alive connections stay open `keepAliveTimeoutMs`. Node's default, 5 s, is shorter than load balancers'
 * idle timeouts: a balancer then reuses a connection the gateway is closing, and that request fails with
 * ECONNRESET (0.05-0.13% of requests on reused connections, measured). The headers timeout is a second longer, so
 * that a request that starts at the end of the idle period is not cut off; the whole-request timeout at least that.
 */
function withKeepAlive(server: HttpServer, keepAliveTimeoutMs: number): HttpServer {
  server.keepAliveTimeout = keepAliveTimeoutMs;
  server.headersTimeout = keepAliveTimeoutMs + 1000;
  server.requestTimeout = Math.max(server.requestTimeout, server.headersTimeout);
  return server;
}
