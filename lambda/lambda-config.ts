/**
 * The Lambda function's configuration: the gateway's own (gateway/config.ts, the same variables and checks) read
 * with defaults that suit a Lambda environment, and the function's few settings. Read once at init, every problem
 * reported at once, frozen.
 *
 * Defaults that differ from the server's, and why:
 * - `SIBYL_DATA_DIR=/tmp/sibyl`: /tmp is the only writable directory (bundle cache, the Kafka sink's write-ahead log).
 * - `SIBYL_FEATURES_FILE=$LAMBDA_TASK_ROOT/features.jsonl`: the in-process store's seed, packaged with the function.
 * - `SIBYL_MAX_LAG_MS=60000`, `SIBYL_ADMISSION_QUEUE_MS=0`, `SIBYL_ADMISSION_MAX_TURN_MS=0`, `SIBYL_ADMISSION_LATE_SHARE=0`: admission control off. Lambda sends an environment one
 *   request at a time, and the freeze between invocations reads as event-loop lag, which would refuse requests and
 *   shed shadows after every thaw. Capacity is Lambda's concurrency.
 * - `SIBYL_REPLICA`: the function name and the environment's log stream, so the tower tells environments apart.
 */
import { z } from 'zod';
import { ConfigError, loadConfig, type Config } from '../gateway/config.ts';

const positiveMs = z.coerce.number().positive();

const LambdaEnv = z.object({
  SIBYL_LAMBDA_SYNC_INTERVAL_MS: z.coerce.number().nonnegative().default(10_000),
  SIBYL_LAMBDA_FLUSH_TIMEOUT_MS: positiveMs.default(3000),
  SIBYL_LAMBDA_INIT_TIMEOUT_MS: positiveMs.default(8000),
  SIBYL_BUNDLES_DIR: z.string().optional(),
  SIBYL_S3_BUCKET: z.string().optional().transform((v) => (v?.trim() ? v.trim() : undefined)),
  AWS_REGION: z.string().default('us-east-1'),
  AWS_ENDPOINT_URL: z.string().optional().transform((v) => (v?.trim() ? v.trim() : undefined)),
});

export interface LambdaConfig {
  /** The gateway's configuration (ports and drain settings are not used: nothing listens). */
  readonly gateway: Config;
  /**
   * How often, at most, an invocation checks the tower for a new revision, ms (`SIBYL_LAMBDA_SYNC_INTERVAL_MS`,
   * default 10000). The check starts with an invocation, beside its request, and is awaited before it returns.
   */
  readonly syncIntervalMs: number;
  /**
   * Bound on what an invocation waits for after its answer, ms (`SIBYL_LAMBDA_FLUSH_TIMEOUT_MS`, default 3000): its
   * shadows, its prediction records' acknowledgement by Kafka, and a check of the tower. Never more than the
   * invocation's remaining time less 100 ms.
   */
  readonly flushTimeoutMs: number;
  /** How long init waits for the first route table and the Kafka connection, ms (`SIBYL_LAMBDA_INIT_TIMEOUT_MS`, default 8000; Lambda's init phase has 10 s). */
  readonly initTimeoutMs: number;
  /**
   * Packaged bundles (`SIBYL_BUNDLES_DIR`, default `$LAMBDA_TASK_ROOT/bundles`): used when there is no tower and the
   * directory holds a state.json; otherwise `SIBYL_MODELS_DIR` is read as by the server.
   */
  readonly bundlesDir: string;
  /**
   * With a tower: fetch bundle zips straight from the tower's S3 bucket (`SIBYL_S3_BUCKET`, the tower's own
   * variable, with `AWS_REGION` and `AWS_ENDPOINT_URL`) instead of through the tower. The hash is checked the same.
   */
  readonly bundleBucket: { readonly bucket: string; readonly region: string; readonly endpoint: string | undefined } | undefined;
}

/**
 * Reads the configuration; `taskRoot` is where the package is unpacked (`LAMBDA_TASK_ROOT`). Throws ConfigError
 * naming every invalid variable, the gateway's and the function's together.
 */
export function loadLambdaConfig(env: Readonly<Record<string, string | undefined>>, taskRoot: string): LambdaConfig {
  const problems: string[] = [];
  const stream = env.AWS_LAMBDA_LOG_STREAM_NAME;
  const defaults: Record<string, string | undefined> = {
    SIBYL_DATA_DIR: '/tmp/sibyl',
    SIBYL_FEATURES_FILE: `${taskRoot}/features.jsonl`,
    SIBYL_MAX_LAG_MS: '60000',
    SIBYL_ADMISSION_QUEUE_MS: '0',
    SIBYL_ADMISSION_MAX_TURN_MS: '0',
    SIBYL_ADMISSION_LATE_SHARE: '0',
    SIBYL_REPLICA: stream ? `${env.AWS_LAMBDA_FUNCTION_NAME ?? 'lambda'}/${stream}` : undefined,
  };
  const merged = { ...env };
  for (const [k, v] of Object.entries(defaults)) if (v !== undefined && (merged[k] === undefined || merged[k] === '')) merged[k] = v;
  let gateway: Config | undefined;
  try {
    gateway = loadConfig(merged);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems.push(...err.problems);
  }
  const parsed = LambdaEnv.safeParse(env);
  if (!parsed.success) problems.push(...parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message} (got ${JSON.stringify(env[String(i.path[0])])})`));
  if (problems.length > 0 || !gateway || !parsed.success) throw new ConfigError(problems);
  const e = parsed.data;
  return Object.freeze({
    gateway,
    syncIntervalMs: e.SIBYL_LAMBDA_SYNC_INTERVAL_MS,
    flushTimeoutMs: e.SIBYL_LAMBDA_FLUSH_TIMEOUT_MS,
    initTimeoutMs: e.SIBYL_LAMBDA_INIT_TIMEOUT_MS,
    bundlesDir: e.SIBYL_BUNDLES_DIR ?? `${taskRoot}/bundles`,
    bundleBucket: e.SIBYL_S3_BUCKET ? Object.freeze({ bucket: e.SIBYL_S3_BUCKET, region: e.AWS_REGION, endpoint: e.AWS_ENDPOINT_URL }) : undefined,
  });
}
