/**
 * The services the benchmark tools run a gateway against, and that gateway's environment: one place for the suite,
 * the overload ramp, the A/B, the long-task and the by-thread tools.
 */
export const BENCH_REDIS_URL = process.env['SIBYL_BENCH_REDIS_URL'] ?? 'redis://127.0.0.1:6399';
export const BENCH_KAFKA_BROKERS = process.env['SIBYL_BENCH_KAFKA_BROKERS'] ?? '127.0.0.1:19092';
/** The key prefix of the seeded feature population (lib/seed.ts). */
export const BENCH_PREFIX = 'bench';

/** A gateway on 127.0.0.1 at these ports, its store and log on the benchmark's services, warnings only. */
export function benchGatewayEnv(o: { http: number; grpc: number; dataDir: string; log: boolean }): Record<string, string> {
  return {
    SIBYL_HOST: '127.0.0.1',
    SIBYL_HTTP_PORT: String(o.http),
    SIBYL_GRPC_PORT: String(o.grpc),
    REDIS_URL: BENCH_REDIS_URL,
    SIBYL_FEATURE_PREFIX: BENCH_PREFIX,
    KAFKA_BROKERS: BENCH_KAFKA_BROKERS,
    SIBYL_KAFKA_TOPIC: 'sibyl.bench.predictions',
    SIBYL_PREDICTION_LOG: o.log ? 'on' : 'off',
    SIBYL_DATA_DIR: o.dataDir,
    SIBYL_LOG_LEVEL: 'warn',
  };
}
