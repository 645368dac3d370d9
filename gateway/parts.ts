/**
 * The configured implementation of each role: embedded defaults (in-memory store seeded from a file, prediction
 * log to local files) unless REDIS_URL / KAFKA_BROKERS name the real parts.
 */
import type { Logger } from 'pino';
import type { Config } from './config.ts';
import type { AdmissionStats } from './pipeline/admission.ts';
import type { FeatureStore } from '../execution/feature-store.ts';
import type { PredictionSink } from './log/prediction-sink.ts';
import type { SinkLogger } from './log/kafka-sink-options.ts';
import type { ShadowStats } from './shadow/shadow-stats.ts';
import type { Telemetry } from './telemetry/telemetry.ts';
import { readBuildInfo } from './telemetry/build-info.ts';

// Implementations are imported when configured, so a gateway without Kafka never loads the Kafka client.

export async function createFeatureStore(config: Config, logger: Logger): Promise<FeatureStore> {
  const fs = config.featureStore;
  if (fs.kind === 'redis') {
    logger.info({ url: redact(fs.url) }, 'feature store: redis');
    const { createRedisFeatureStore } = await import('./features/redis-feature-store.ts');
    // Reads carry their own host-side deadline (the feature timeout); the socket timeout bounds everything else.
    // No per-command timer: it cost 15-20% of the CPU per read (loadtest/micro/feature-store.bench.ts).
    let downSince = 0;
    return createRedisFeatureStore({
      url: fs.url,
      commandTimeoutMs: 0,
      // Logged once per transition, with what the gateway does about it.
      onStateChange(state, reason) {
        if (state === 'down') {
          downSince = Date.now();
          logger.warn({ reason }, 'feature store: redis unavailable; predictions are answered with the declared defaults of its features (listed per row in defaultedFeatures) until it is back');
        } else if (downSince > 0) {
          logger.info({ downForS: Number(((Date.now() - downSince) / 1000).toFixed(1)) }, 'feature store: redis back; features are read from it again');
          downSince = 0;
        }
      },
    });
  }
  const { createMemoryFeatureStore, seedFromFile } = await import('./features/memory-feature-store.ts');
  const store = createMemoryFeatureStore();
  const n = await seedFromFile(store, fs.seedFile, fs.prefix);
  logger.info({ file: fs.seedFile, entities: n }, 'feature store: in-process, seeded from file');
  return store;
}

export async function createSink(config: Config, logger: Logger): Promise<PredictionSink> {
  const log = config.predictionLog;
  switch (log.kind) {
    case 'kafka':
      logger.info({ brokers: log.brokers, topic: log.topic }, 'prediction log: kafka');
      if (config.workerIndex === undefined) {
        // A single process owns the cell's whole write-ahead log: it takes over what workers of an earlier run with
        // several left (with several, the supervisor does this before starting them).
        const { adoptOrphanLogs } = await import('./workers/wal-adoption.ts');
        for (const a of adoptOrphanLogs(log.walDir, [log.walDir])) logger.warn(a, 'write-ahead log of a former worker taken over; its unacknowledged records will be sent');
      }
      const { createKafkaSink } = await import('./log/kafka-sink.ts');
      return createKafkaSink({ brokers: [...log.brokers], topic: log.topic, compression: log.compression, cell: config.cell, walDir: log.walDir, logger: sinkLogger(logger) });
    case 'file':
      logger.info({ dir: log.dir }, 'prediction log: local files');
      const { createFileSink } = await import('./log/file-sink.ts');
      return createFileSink({ dir: log.dir, logger: sinkLogger(logger) });
    case 'off': {
      const { createNullSink } = await import('./log/null-sink.ts');
      return createNullSink();
    }
  }
}

/** OpenTelemetry's SDK is imported here, so a gateway given its telemetry (the Lambda function's no-op one) never loads it. */
export async function createTelemetry(config: Config, sink: PredictionSink, shadowStats?: ShadowStats, admissionStats?: () => AdmissionStats): Promise<Telemetry> {
  const { createOtelTelemetry } = await import('./telemetry/otel-telemetry.ts');
  return createOtelTelemetry({
    serviceName: config.otel.serviceName,
    resourceAttributes: config.otel.resourceAttributes,
    cell: config.cell,
    otlpEndpoint: config.otlpEndpoint,
    sampler: config.otel.sampler,
    build: readBuildInfo(),
    sinkStats: () => sink.stats(),
    shadowStats: shadowStats && (() => shadowStats.snapshot()),
    shadowLatency: shadowStats?.latencyFamily,
    admissionStats,
  });
}

/** The sinks report outages, recoveries and losses as (message, error); pino takes the error first. */
function sinkLogger(logger: Logger): SinkLogger {
  return {
    info: (message) => logger.info(message),
    warn: (message, err) => (err === undefined ? logger.warn(message) : logger.warn({ err }, message)),
    error: (message, err) => (err === undefined ? logger.error(message) : logger.error({ err }, message)),
  };
}

function redact(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}
