/**
 * The control tower's configuration, read once from the environment, validated (every problem at once), frozen.
 *
 * | variable | default | meaning |
 * | SIBYL_TOWER_HOST / SIBYL_TOWER_PORT | 0.0.0.0 / 8090 | where the API listens |
 * | DATABASE_URL | unset: PGlite in `${SIBYL_DATA_DIR}/control-tower/db` | PostgreSQL for metadata |
 * | SIBYL_S3_BUCKET (+ AWS_REGION, AWS_ENDPOINT_URL) | unset: `${SIBYL_DATA_DIR}/control-tower/bundles` | bundle store |
 * | SIBYL_CELLS | local | comma-separated cells this control tower manages |
 * | SIBYL_ADMIN_TOKEN | unset: a development token printed at start | the admin bearer token |
 * | SIBYL_MAX_UPLOAD_BYTES | 268435456 | largest bundle upload |
 * | SIBYL_MAX_WAIT_MS | 60000 | longest long-poll a gateway may ask for |
 * | SIBYL_VALIDATION_TIMEOUT_MS | 60000 | deadline of one upload's validation |
 * | SIBYL_DRIFT_THRESHOLD | 0.2 | PSI above which a feature or output counts as drifted (a manifest's own wins) |
 * | SIBYL_DRIFT_MIN_VALUES | 100 | fewest serving values a drift score is computed from |
 * | KAFKA_BROKERS | unset | the brokers of the prediction log, for replays started here (unset: replays refused) |
 * | SIBYL_KAFKA_TOPIC | sibyl.predictions | the prediction-log topic replays read |
 * | SIBYL_REPLAY_TIMEOUT_MS | 600000 | deadline of one replay process |
 * | SIBYL_ROLLOUT_TICK_MS | 1000 | how often the rollout driver looks at unfinished rollouts |
 * | SIBYL_ROLLOUT_LEASE_MS | 15000 | how long a tower replica's lease on driving rollouts lasts unrenewed |
 */
import { join } from 'node:path';
import { z } from 'zod';
import { CELL, nameSchema } from '../core/names.ts';

const Env = z.object({
  SIBYL_TOWER_HOST: z.string().default('0.0.0.0'),
  SIBYL_TOWER_PORT: z.coerce.number().int().min(0).max(65535).default(8090),
  SIBYL_DATA_DIR: z.string().default('.data'),
  DATABASE_URL: z.string().optional().transform((v) => (v === '' ? undefined : v)),
  SIBYL_S3_BUCKET: z.string().optional().transform((v) => (v === '' ? undefined : v)),
  AWS_REGION: z.string().default('us-east-1'),
  AWS_ENDPOINT_URL: z.string().optional().transform((v) => (v === '' ? undefined : v)),
  SIBYL_CELLS: z
    .string()
    .default('local')
    .transform((v) => v.split(',').map((c) => c.trim()).filter(Boolean))
    .pipe(z.array(nameSchema(CELL)).min(1, 'name at least one cell')),
  SIBYL_ADMIN_TOKEN: z.string().min(16, 'must be at least 16 characters').optional().or(z.literal('').transform(() => undefined)),
  SIBYL_MAX_UPLOAD_BYTES: z.coerce.number().int().positive().default(256 * 1024 * 1024),
  SIBYL_MAX_WAIT_MS: z.coerce.number().int().positive().default(60_000),
  SIBYL_VALIDATION_TIMEOUT_MS: z.coerce.number().int().positive().default(60_000),
  SIBYL_LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  SIBYL_DRIFT_THRESHOLD: z.coerce.number().positive().default(0.2),
  SIBYL_DRIFT_MIN_VALUES: z.coerce.number().int().positive().default(100),
  KAFKA_BROKERS: z
    .string()
    .optional()
    .transform((v) => (v ?? '').split(',').map((b) => b.trim()).filter(Boolean)),
  SIBYL_KAFKA_TOPIC: z.string().min(1).default('sibyl.predictions'),
  SIBYL_REPLAY_TIMEOUT_MS: z.coerce.number().int().positive().default(600_000),
  SIBYL_ROLLOUT_TICK_MS: z.coerce.number().int().positive().default(1000),
  SIBYL_ROLLOUT_LEASE_MS: z.coerce.number().int().positive().default(15_000),
});

export interface TowerConfig {
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  readonly database: { readonly kind: 'postgres'; readonly url: string } | { readonly kind: 'pglite'; readonly dataDir: string };
  readonly bundles: { readonly kind: 's3'; readonly bucket: string; readonly region: string; readonly endpoint?: string | undefined } | { readonly kind: 'local'; readonly dir: string };
  readonly cells: readonly string[];
  readonly adminToken: string | undefined;
  readonly maxUploadBytes: number;
  readonly maxWaitMs: number;
  readonly validationTimeoutMs: number;
  /** Where uploads are unpacked while validated. */
  readonly workDir: string;
  readonly logLevel: string;
  /** Drift scoring of serving statistics (stats/view.ts). */
  readonly drift: { readonly threshold: number; readonly minValues: number };
  /** The prediction log replays read (empty brokers: replays are refused), and a replay's deadline. */
  readonly replay: { readonly brokers: readonly string[]; readonly topic: string; readonly timeoutMs: number; readonly workDir: string };
  /** The rollout driver: how often it looks at unfinished rollouts, and how long its lease lasts unrenewed, ms. */
  readonly rollouts: { readonly tickMs: number; readonly leaseMs: number };
}

export class TowerConfigError extends Error {
  constructor(problems: string[]) {
    super(`invalid control-tower configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'TowerConfigError';
  }
}

/**
 * Reads the configuration from `env` (process.env at the edge). Throws TowerConfigError listing every problem at
 * once; the result and its nested objects are frozen.
 */
export function loadTowerConfig(env: Readonly<Record<string, string | undefined>>): TowerConfig {
  const parsed = Env.safeParse(env);
  if (!parsed.success) throw new TowerConfigError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
  const e = parsed.data;
  const base = join(e.SIBYL_DATA_DIR, 'control-tower');
  return Object.freeze({
    host: e.SIBYL_TOWER_HOST,
    port: e.SIBYL_TOWER_PORT,
    dataDir: e.SIBYL_DATA_DIR,
    database: Object.freeze(e.DATABASE_URL ? { kind: 'postgres', url: e.DATABASE_URL } : { kind: 'pglite', dataDir: join(base, 'db') }),
    bundles: Object.freeze(e.SIBYL_S3_BUCKET ? { kind: 's3', bucket: e.SIBYL_S3_BUCKET, region: e.AWS_REGION, endpoint: e.AWS_ENDPOINT_URL } : { kind: 'local', dir: join(base, 'bundles') }),
    cells: Object.freeze([...e.SIBYL_CELLS]),
    adminToken: e.SIBYL_ADMIN_TOKEN,
    maxUploadBytes: e.SIBYL_MAX_UPLOAD_BYTES,
    maxWaitMs: e.SIBYL_MAX_WAIT_MS,
    validationTimeoutMs: e.SIBYL_VALIDATION_TIMEOUT_MS,
    workDir: join(base, 'validation'),
    logLevel: e.SIBYL_LOG_LEVEL,
    drift: Object.freeze({ threshold: e.SIBYL_DRIFT_THRESHOLD, minValues: e.SIBYL_DRIFT_MIN_VALUES }),
    replay: Object.freeze({ brokers: Object.freeze([...e.KAFKA_BROKERS]), topic: e.SIBYL_KAFKA_TOPIC, timeoutMs: e.SIBYL_REPLAY_TIMEOUT_MS, workDir: join(base, 'replays') }),
    rollouts: Object.freeze({ tickMs: e.SIBYL_ROLLOUT_TICK_MS, leaseMs: e.SIBYL_ROLLOUT_LEASE_MS }),
  } satisfies TowerConfig) as TowerConfig;
}
