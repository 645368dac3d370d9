/**
 * The gateway's configuration, read once from the environment at startup, validated (every problem reported at
 * once), and frozen. Nothing else reads `process.env`.
 */
import { availableParallelism, hostname } from 'node:os';
import { z } from 'zod';
import { CELL, nameSchema } from '../core/names.ts';
import { cpuQuotaCores } from './pipeline/cpu-quota.ts';
import { KAFKA_COMPRESSIONS, type KafkaCompression } from './log/kafka-sink-options.ts';
import { SAMPLER_NAMES, type SamplerConfig, type SamplerName } from './telemetry/sampler.ts';

const port = z.coerce.number().int().min(0).max(65535);
const positiveMs = z.coerce.number().positive();
const flag = z.enum(['on', 'off', 'true', 'false', '1', '0']).transform((v) => v === 'on' || v === 'true' || v === '1');
const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.trim()));
const fraction = z.coerce.number().min(0).max(1);
/** Most request-path processes per gateway. */
const MAX_WORKERS = 64;
/** SIBYL_WORKERS: `auto` or a whole number of processes. */
const workers = z.union([z.literal('auto'), z.coerce.number().int().min(1).max(MAX_WORKERS)]);

/** The samplers of the OpenTelemetry SDK configuration that need a remote service or vendor code: refused. */
const REMOTE_SAMPLERS = ['jaeger_remote', 'parentbased_jaeger_remote', 'xray'];

/** OTEL_TRACES_SAMPLER: a sampler name of the SDK configuration (case-insensitive); empty means the default. */
const samplerName = optionalString.transform((v, ctx): SamplerName | undefined => {
  if (v === undefined) return undefined;
  const name = v.toLowerCase();
  if ((SAMPLER_NAMES as readonly string[]).includes(name)) return name as SamplerName;
  const why = REMOTE_SAMPLERS.includes(name) ? 'is not supported' : 'is not a sampler';
  ctx.addIssue({ code: 'custom', message: `${why}: use one of ${SAMPLER_NAMES.join(', ')}` });
  return z.NEVER;
});

/**
 * OTEL_RESOURCE_ATTRIBUTES: `key=value` pairs separated by commas, values percent-encoded (the W3C Baggage
 * format the OpenTelemetry SDK configuration names); surrounding spaces are dropped. Any malformed pair is a
 * configuration error, like every other variable (the SDKs would discard the whole value).
 */
const resourceAttributes = optionalString.transform((v, ctx): Record<string, string> => {
  const out: Record<string, string> = {};
  if (v === undefined) return out;
  for (const pair of v.split(',')) {
    if (pair.trim() === '') continue;
    const eq = pair.indexOf('=');
    const key = eq < 0 ? '' : pair.slice(0, eq).trim();
    if (eq < 0 || key === '') {
      ctx.addIssue({ code: 'custom', message: `"${pair.trim()}" is not a key=value pair` });
      return z.NEVER;
    }
    try {
      out[key] = decodeURIComponent(pair.slice(eq + 1).trim());
    } catch {
      ctx.addIssue({ code: 'custom', message: `the value of "${key}" is not valid percent-encoding` });
      return z.NEVER;
    }
  }
  return out;
});

const Env = z.object({
  SIBYL_HOST: z.string().default('0.0.0.0'),
  SIBYL_HTTP_PORT: port.default(8080),
  SIBYL_GRPC_PORT: port.default(8081),
  SIBYL_CELL: nameSchema(CELL).default('local'),
  SIBYL_MODELS_DIR: z.string().default('models'),
  SIBYL_FEATURES_FILE: z.string().default('models/features.jsonl'),
  REDIS_URL: optionalString,
  SIBYL_FEATURE_PREFIX: z.string().min(1).default('sibyl'),
  SIBYL_FEATURE_TIMEOUT_MS: positiveMs.default(5),
  KAFKA_BROKERS: optionalString,
  SIBYL_KAFKA_TOPIC: z.string().min(1).default('sibyl.predictions'),
  SIBYL_KAFKA_COMPRESSION: z.enum(KAFKA_COMPRESSIONS).default('none'),
  SIBYL_PREDICTION_LOG: flag.default(true),
  SIBYL_DATA_DIR: z.string().default('.data'),
  SIBYL_REQUEST_TIMEOUT_MS: positiveMs.default(1000),
  SIBYL_MAX_BODY_BYTES: z.coerce.number().int().positive().default(1 << 20),
  SIBYL_MAX_ROWS: z.coerce.number().int().positive().default(1000),
  SIBYL_DRAIN_TIMEOUT_MS: positiveMs.default(10_000),
  SIBYL_DRAIN_GRACE_MS: z.coerce.number().nonnegative().default(0),
  SIBYL_KEEP_ALIVE_TIMEOUT_MS: z.coerce.number().int().positive().max(600_000).default(65_000),
  // Half of it while the process is CPU-saturated (admission.ts, SATURATED_INFLIGHT_SHARE).
  SIBYL_MAX_INFLIGHT: z.coerce.number().int().positive().default(512),
  SIBYL_MAX_LAG_MS: positiveMs.default(30),
  SIBYL_ADMISSION_QUEUE_MS: z.coerce.number().int().nonnegative().default(0),
  SIBYL_ADMISSION_TARGET_UTILIZATION: z.coerce.number().min(0.5).max(1).default(0.9),
  SIBYL_ADMISSION_MAX_TURN_MS: z.coerce.number().nonnegative().default(5),
  SIBYL_ADMISSION_LATE_SHARE: z.coerce.number().min(0).max(1).default(0.5),
  SIBYL_LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  OTEL_EXPORTER_OTLP_ENDPOINT: optionalString,
  OTEL_SERVICE_NAME: optionalString,
  OTEL_RESOURCE_ATTRIBUTES: resourceAttributes,
  OTEL_TRACES_SAMPLER: samplerName,
  OTEL_TRACES_SAMPLER_ARG: z.preprocess((v) => (typeof v === 'string' && v.trim() === '' ? undefined : v), fraction.optional()),
  SIBYL_ACCESS_LOG_RATIO: fraction.default(0),
  SIBYL_SHADOW_CONCURRENCY: z.coerce.number().int().positive().default(64),
  SIBYL_SHADOW_BATCH_MS: z.coerce.number().nonnegative().default(2),
  SIBYL_SHADOW_QUEUE: z.coerce.number().int().nonnegative().default(1000),
  SIBYL_SHADOW_TIMEOUT_MS: positiveMs.default(250),
  SIBYL_CONTROL_TOWER_URL: optionalString.pipe(z.url({ protocol: /^https?$/ }).optional()),
  SIBYL_TOWER_TOKEN: optionalString,
  SIBYL_REPLICA: optionalString,
  SIBYL_CACHE_DIR: optionalString,
  SIBYL_SYNC_WAIT_MS: positiveMs.default(30_000),
  SIBYL_REPORT_INTERVAL_MS: z.coerce.number().int().nonnegative().default(10_000),
  SIBYL_WORKERS: z.preprocess((v) => (typeof v === 'string' ? v.trim().toLowerCase() || undefined : v), workers.default(1)),
  // Set by the supervisor (gateway/workers/supervisor.ts) in each worker it starts; not a setting.
  SIBYL_WORKER_INDEX: z.coerce.number().int().min(0).max(MAX_WORKERS - 1).optional(),
})
  .refine((e) => e.SIBYL_DRAIN_GRACE_MS < e.SIBYL_DRAIN_TIMEOUT_MS, { path: ['SIBYL_DRAIN_GRACE_MS'], message: 'must be less than SIBYL_DRAIN_TIMEOUT_MS' });

/** What `auto` workers are counted from (tests give their own). */
export interface HostCpus {
  /** The CPU quota of the process's cgroup in cores, undefined without one (gateway/pipeline/cpu-quota.ts). */
  cpuQuotaCores(): number | undefined;
  /** The CPUs the process may run on (`os.availableParallelism`). */
  availableParallelism(): number;
}

const HOST: HostCpus = { cpuQuotaCores: () => cpuQuotaCores(), availableParallelism };

export interface Config {
  readonly host: string;
  readonly httpPort: number;
  readonly grpcPort: number;
  /** The cell this gateway serves (logged with every prediction). */
  readonly cell: string;
  /**
   * Without a tower: the directory of model bundles (`<name>/<version>/sibyl.yaml` directories) and
   * `deployment.yaml`, followed as the cell's desired state (gateway/sync/models-dir-source.ts).
   */
  readonly modelsDir: string;
  readonly featureStore:
    | { readonly kind: 'redis'; readonly url: string; readonly prefix: string; readonly timeoutMs: number }
    | { readonly kind: 'memory'; readonly seedFile: string; readonly prefix: string; readonly timeoutMs: number };
  readonly predictionLog:
    | { readonly kind: 'kafka'; readonly brokers: readonly string[]; readonly topic: string; readonly compression: KafkaCompression; readonly walDir: string }
    | { readonly kind: 'file'; readonly dir: string }
    | { readonly kind: 'off' };
  /** Default deadline of a request, milliseconds (a client may ask for less). */
  readonly requestTimeoutMs: number;
  /** Largest request body accepted, bytes. */
  readonly maxBodyBytes: number;
  /** Most rows in one request. */
  readonly maxRows: number;
  /**
   * Admission control (pipeline/admission.ts): most predictions in flight, the event-loop lag (ms) above which new
   * ones are refused, the burst (ms of the paced rate) admitted at once while the process is CPU-saturated (0: no
   * CPU pacing), and the utilization of its CPU it is held at then (0.5-1, default 0.9); the turn bound (ms a loop
   * turn may be busy before the predictions it reads are refused, 0: off); in a worker under a CPU quota,
   * `cpuCores`, its part of the quota (admission's default is the whole quota).
   */
  readonly admission: { readonly maxInflight: number; readonly maxLagMs: number; readonly queueMs: number; readonly targetUtilization: number; readonly maxTurnMs: number; readonly lateShare: number; readonly cpuCores?: number };
  /** How long a drain (SIGTERM) may take before the connections still open are closed, from its start, ms. */
  readonly drainTimeoutMs: number;
  /** How long a drain keeps accepting while readiness already fails, so that load balancers see it, ms. */
  readonly drainGraceMs: number;
  /**
   * How long an idle HTTP keep-alive connection stays open, ms (SIBYL_KEEP_ALIVE_TIMEOUT_MS, default 65 000):
   * longer than the idle timeout of the load balancer in front (60 s on common ones), so that the balancer closes
   * idle connections first and never sends a request on one the gateway is closing.
   */
  readonly keepAliveTimeoutMs: number;
  readonly logLevel: string;
  /** OTLP/HTTP endpoint for traces; tracing is off when unset. */
  readonly otlpEndpoint: string | undefined;
  /**
   * The OpenTelemetry resource and trace sampling, from the SDK's standard variables: `serviceName`
   * (OTEL_SERVICE_NAME, default `sibyl-gateway`, and it wins over a `service.name` in OTEL_RESOURCE_ATTRIBUTES),
   * `resourceAttributes` (OTEL_RESOURCE_ATTRIBUTES), `sampler` (OTEL_TRACES_SAMPLER, default
   * parentbased_always_on; OTEL_TRACES_SAMPLER_ARG, 0..1, is the ratio of the traceidratio samplers, default 1).
   */
  readonly otel: {
    readonly serviceName: string;
    readonly resourceAttributes: Readonly<Record<string, string>>;
    readonly sampler: SamplerConfig;
  };
  /** The fraction of requests written to the access log (SIBYL_ACCESS_LOG_RATIO), 0..1; 0 is off. */
  readonly accessLogRatio: number;
  /** Shadow executions: started in batches of up to `concurrency` every `batchMs`, `maxQueue` waiting, each within `timeoutMs`. */
  readonly shadows: { readonly concurrency: number; readonly batchMs: number; readonly maxQueue: number; readonly timeoutMs: number };
  /** The control tower whose desired state for the cell this gateway follows; unset: `modelsDir` is followed. */
  readonly tower: { readonly url: string; readonly token: string | undefined } | undefined;
  /**
   * Following the desired state (gateway/sync), from the tower or the models directory: `replica` (this gateway in
   * reports) defaults to host name and process id, `cacheDir` (bundles, and the tower's last state) to
   * `${dataDir}/cache/${cell}`, `waitMs` (the long-poll) to 30000, `reportIntervalMs` (how often the replica
   * reports to the tower besides after each change, so that its shadow comparison stays current; 0: only after
   * changes) to 10000.
   */
  readonly sync: { readonly replica: string; readonly cacheDir: string; readonly waitMs: number; readonly reportIntervalMs: number };
  /**
   * Request-path processes of this gateway (SIBYL_WORKERS, default 1): `auto` is the CPU quota of the process's
   * cgroup rounded up (one event loop uses at most one core, so a quota of 1.5 cores takes two), or every CPU the
   * process may run on when there is no quota; at most 64. With more than one, `gateway/main.ts` runs a supervisor
   * that starts that many workers, each listening on both ports with SO_REUSEPORT (ARCHITECTURE.md, "Workers").
   */
  readonly workers: number;
  /**
   * In a worker of a gateway with several (set by the supervisor): its index, 0 to workers - 1; undefined in a
   * single-process gateway and in the supervisor. A worker has a write-ahead log and a bundle cache of its own
   * (`<walDir>/<index>`, `<cacheDir>/<index>`), reports to the tower as `<replica>-w<index>`, and measures its CPU
   * share against its part of the quota.
   */
  readonly workerIndex: number | undefined;
}

export class ConfigError extends Error {
  readonly problems: readonly string[];
  constructor(problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** Reads the configuration from an environment; throws ConfigError naming every invalid variable. */
export function loadConfig(env: Readonly<Record<string, string | undefined>>, host: HostCpus = HOST): Config {
  const parsed = Env.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message} (got ${JSON.stringify(env[String(i.path[0])])})`));
  }
  const e = parsed.data;
  const quota = e.SIBYL_WORKERS === 'auto' || e.SIBYL_WORKER_INDEX !== undefined ? host.cpuQuotaCores() : undefined;
  const workerCount = e.SIBYL_WORKERS === 'auto' ? Math.min(MAX_WORKERS, Math.max(1, quota === undefined ? host.availableParallelism() : Math.ceil(quota - 1e-9))) : e.SIBYL_WORKERS;
  const workerIndex = e.SIBYL_WORKER_INDEX;
  const problems: string[] = [];
  if (workerCount > 1 && (e.SIBYL_HTTP_PORT === 0 || e.SIBYL_GRPC_PORT === 0)) {
    problems.push(`SIBYL_WORKERS: ${workerCount} workers need fixed ports: SIBYL_HTTP_PORT and SIBYL_GRPC_PORT must not be 0 (each worker would bind a port of its own) (got ${JSON.stringify(env['SIBYL_WORKERS'])})`);
  }
  if (workerIndex !== undefined && workerIndex >= workerCount) {
    problems.push(`SIBYL_WORKER_INDEX: must be less than the number of workers, ${workerCount} (got ${JSON.stringify(env['SIBYL_WORKER_INDEX'])})`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  /** A worker's own directory under a directory the whole gateway shares. */
  const own = (dir: string) => (workerIndex === undefined ? dir : `${dir}/${workerIndex}`);
  const dataDir = e.SIBYL_DATA_DIR;
  const featureStore = e.REDIS_URL
    ? ({ kind: 'redis', url: e.REDIS_URL, prefix: e.SIBYL_FEATURE_PREFIX, timeoutMs: e.SIBYL_FEATURE_TIMEOUT_MS } as const)
    : ({ kind: 'memory', seedFile: e.SIBYL_FEATURES_FILE, prefix: e.SIBYL_FEATURE_PREFIX, timeoutMs: e.SIBYL_FEATURE_TIMEOUT_MS } as const);
  const predictionLog = !e.SIBYL_PREDICTION_LOG
    ? ({ kind: 'off' } as const)
    : e.KAFKA_BROKERS
      ? ({
          kind: 'kafka',
          brokers: e.KAFKA_BROKERS.split(',').map((b) => b.trim()).filter(Boolean),
          topic: e.SIBYL_KAFKA_TOPIC,
          compression: e.SIBYL_KAFKA_COMPRESSION,
          walDir: own(`${dataDir}/wal/${e.SIBYL_CELL}`),
        } as const)
      : ({ kind: 'file', dir: `${dataDir}/predictions/${e.SIBYL_CELL}` } as const);
  return deepFreeze({
    host: e.SIBYL_HOST,
    httpPort: e.SIBYL_HTTP_PORT,
    grpcPort: e.SIBYL_GRPC_PORT,
    cell: e.SIBYL_CELL,
    modelsDir: e.SIBYL_MODELS_DIR,
    featureStore,
    predictionLog,
    requestTimeoutMs: e.SIBYL_REQUEST_TIMEOUT_MS,
    maxBodyBytes: e.SIBYL_MAX_BODY_BYTES,
    maxRows: e.SIBYL_MAX_ROWS,
    admission: {
      maxInflight: e.SIBYL_MAX_INFLIGHT,
      maxLagMs: e.SIBYL_MAX_LAG_MS,
      queueMs: e.SIBYL_ADMISSION_QUEUE_MS,
      targetUtilization: e.SIBYL_ADMISSION_TARGET_UTILIZATION,
      maxTurnMs: e.SIBYL_ADMISSION_MAX_TURN_MS,
      lateShare: e.SIBYL_ADMISSION_LATE_SHARE,
      // A worker shares the quota with the others: it is saturated at its part of it.
      ...(workerIndex !== undefined && quota !== undefined ? { cpuCores: quota / workerCount } : {}),
    },
    drainTimeoutMs: e.SIBYL_DRAIN_TIMEOUT_MS,
    drainGraceMs: e.SIBYL_DRAIN_GRACE_MS,
    keepAliveTimeoutMs: e.SIBYL_KEEP_ALIVE_TIMEOUT_MS,
    logLevel: e.SIBYL_LOG_LEVEL,
    otlpEndpoint: e.OTEL_EXPORTER_OTLP_ENDPOINT,
    otel: {
      serviceName: e.OTEL_SERVICE_NAME ?? e.OTEL_RESOURCE_ATTRIBUTES['service.name'] ?? 'sibyl-gateway',
      resourceAttributes: e.OTEL_RESOURCE_ATTRIBUTES,
      sampler: { name: e.OTEL_TRACES_SAMPLER ?? 'parentbased_always_on', ratio: e.OTEL_TRACES_SAMPLER_ARG ?? 1 },
    },
    accessLogRatio: e.SIBYL_ACCESS_LOG_RATIO,
    shadows: { concurrency: e.SIBYL_SHADOW_CONCURRENCY, batchMs: e.SIBYL_SHADOW_BATCH_MS, maxQueue: e.SIBYL_SHADOW_QUEUE, timeoutMs: e.SIBYL_SHADOW_TIMEOUT_MS },
    tower: e.SIBYL_CONTROL_TOWER_URL ? { url: e.SIBYL_CONTROL_TOWER_URL, token: e.SIBYL_TOWER_TOKEN } : undefined,
    sync: {
      // A worker's name stays the same when the supervisor restarts it (the supervisor's pid, the worker's index).
      replica: workerIndex === undefined ? (e.SIBYL_REPLICA ?? `${hostname()}-${process.pid}`) : `${e.SIBYL_REPLICA ?? `${hostname()}-${process.ppid}`}-w${workerIndex}`,
      cacheDir: own(e.SIBYL_CACHE_DIR ?? `${dataDir}/cache/${e.SIBYL_CELL}`),
      waitMs: e.SIBYL_SYNC_WAIT_MS,
      reportIntervalMs: e.SIBYL_REPORT_INTERVAL_MS,
    },
    workers: workerCount,
    workerIndex,
  });
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
