import type { RunResult, RunSpec } from '../generate.ts';
import { run } from './processes.ts';

/**
 * The services the benchmark tools run a gateway against, and that gateway's environment: one place for the suite,
 * the overload ramp, the A/B, the long-task and the by-thread tools.
 */
export const BENCH_REDIS_URL = process.env['SIBYL_BENCH_REDIS_URL'] ?? 'redis://127.0.0.1:6399';
export const BENCH_KAFKA_BROKERS = process.env['SIBYL_BENCH_KAFKA_BROKERS'] ?? '127.0.0.1:19092';
/** Where the tools pin what they measure: servers on core 1; the generator, Redis and Kafka on core 0. */
export const BENCH_SERVER_CORE = '1';
export const BENCH_LOAD_CORE = '0';
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

/** Variables from `K=V` flags (the bench tools' `--env`); throws on a pair without a name. */
export function envOfPairs(pairs: readonly string[]): Record<string, string> {
  return Object.fromEntries(
    pairs.map((p) => {
      const i = p.indexOf('=');
      if (i <= 0) throw new Error(`--env ${p}: expected K=V`);
      return [p.slice(0, i), p.slice(i + 1)];
    }),
  );
}

/** Runs the load generator (loadtest/generate.ts) on the load core and returns its result. */
export async function generateOnLoadCore(spec: RunSpec): Promise<RunResult> {
  const out = await run('node', ['loadtest/generate.ts', '--spec', JSON.stringify(spec)], { cores: BENCH_LOAD_CORE });
  return JSON.parse(out.trim().split('\n').pop()!) as RunResult;
}
