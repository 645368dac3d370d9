/**
 * Assembles a gateway from its configuration: feature store, prediction-log sink, telemetry, runtimes, the route
 * table, the pipeline, and the REST and gRPC front doors. `start` listens; `stop` drains in-flight requests,
 * flushes the prediction log and frees everything (once).
 */
import { serve, type ServerType } from '@hono/node-server';
import * as grpc from '@grpc/grpc-js';
import type { Hono } from 'hono';
import { pino, type Logger } from 'pino';
import type { Config } from './config.ts';
import type { FeatureStore } from './features/feature-store.ts';
import type { PredictionSink } from './log/prediction-sink.ts';
import type { Telemetry } from './telemetry/telemetry.ts';
import { createRuntimes, type Runtimes } from '../runtimes/index.ts';
import { readLocalModels } from './bundle/local-bundles.ts';
import { loadRouteTable } from './routing/load-routes.ts';
import { RouteTableRef } from './routing/route-table.ts';
import { createPipeline, type Pipeline } from './pipeline/pipeline.ts';
import { AdmissionControl } from './pipeline/admission.ts';
import { createRestApp } from './transport/rest-app.ts';
import { createGrpcServer, type GrpcServer } from './transport/grpc/grpc-server.ts';
import { createFeatureStore, createSink, createTelemetry } from './parts.ts';
import { ShadowRunner } from './shadow/shadow-runner.ts';
import { ShadowStats } from './shadow/shadow-stats.ts';

export interface GatewayParts {
  readonly store?: FeatureStore;
  readonly sink?: PredictionSink;
  readonly telemetry?: Telemetry;
  readonly logger?: Logger;
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
  /** Listens on the configured ports (0 picks free ones); resolves with the bound ports. */
  start(): Promise<{ httpPort: number; grpcPort: number }>;
  /** Stops accepting, drains in-flight requests (up to drainTimeoutMs), flushes the log, frees models. Idempotent. */
  stop(): Promise<void>;
}

export async function createGateway(config: Config, parts: GatewayParts = {}): Promise<Gateway> {
  const logger = parts.logger ?? pino({ level: config.logLevel, base: { cell: config.cell } });
  const store = parts.store ?? (await createFeatureStore(config, logger));
  const sink = parts.sink ?? (await createSink(config, logger));
  const shadowStats = new ShadowStats();
  const telemetry = parts.telemetry ?? createTelemetry(config, sink, () => shadowStats.snapshot());
  const runtimes: Runtimes = createRuntimes();
  const local = await readLocalModels(config.modelsDir);
  const table = await loadRouteTable(local.bundles, local.deployment, runtimes, logger);
  const routes = new RouteTableRef(table);
  const admission = new AdmissionControl(config.admission);
  const shadows = new ShadowRunner({
    store,
    featurePrefix: config.featureStore.prefix,
    featureTimeoutMs: config.featureStore.timeoutMs,
    sink,
    cell: config.cell,
    stats: shadowStats,
    ...config.shadows,
    // Shadows give way first: shed while live traffic is past half of what admission control allows.
    busy: () => {
      const a = admission.stats();
      return a.inflight * 2 > config.admission.maxInflight || a.lagMs * 2 > config.admission.maxLagMs;
    },
    logger,
  });
  const pipeline = createPipeline({
    shadows,
    routes,
    store,
    featurePrefix: config.featureStore.prefix,
    featureTimeoutMs: config.featureStore.timeoutMs,
    sink,
    telemetry,
    cell: config.cell,
    maxRows: config.maxRows,
    logger,
  });

  let draining = false;
  const health = { live: () => true, ready: () => !draining && [...routes.current.models()].length > 0 };
  admission.start();
  const limits = { maxBodyBytes: config.maxBodyBytes, requestTimeoutMs: config.requestTimeoutMs, admission };
  const app = createRestApp({ pipeline, routes, health, telemetry, limits, logger, shadowStats });
  const grpcServer: GrpcServer = createGrpcServer({ pipeline, routes, health, limits });
  let http: ServerType | undefined;
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
    async start() {
      const httpPort = await new Promise<number>((resolve, reject) => {
        const s = serve({ fetch: app.fetch, port: config.httpPort, hostname: config.host }, (info) => resolve(info.port));
        s.once('error', reject);
        http = s;
      });
      const grpcPort = await new Promise<number>((resolve, reject) =>
        grpcServer.server.bindAsync(`${config.host}:${config.grpcPort}`, grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
      );
      grpcServer.setServing(true);
      logger.info({ httpPort, grpcPort, models: [...routes.current.models()].map((m) => m.name) }, 'sibyl gateway serving');
      return { httpPort, grpcPort };
    },
    stop() {
      stopping ??= (async () => {
        draining = true;
        admission.stop();
        grpcServer.setServing(false);
        const drained = Promise.all([
          new Promise<void>((resolve) => (http ? http.close(() => resolve()) : resolve())),
          new Promise<void>((resolve) => grpcServer.server.tryShutdown(() => resolve())),
        ]);
        const timer = new Promise<'timeout'>((resolve) => setTimeout(resolve, config.drainTimeoutMs, 'timeout').unref());
        if ((await Promise.race([drained, timer])) === 'timeout') {
          logger.warn({ drainTimeoutMs: config.drainTimeoutMs }, 'drain timed out; closing remaining connections');
          grpcServer.server.forceShutdown();
          (http as { closeAllConnections?: () => void } | undefined)?.closeAllConnections?.();
        }
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
