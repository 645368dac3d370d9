/**
 * The control tower assembled from its configuration: metadata store (PGlite or PostgreSQL, migrated at start),
 * cells from the configuration, artifact store (local directory or S3), upload validator, the admin token, the
 * REST API and the rollout driver. `start` listens and starts driving rollouts; `stop` closes everything once.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { serve, type ServerType } from '@hono/node-server';
import type { Hono } from 'hono';
import { pino, type Logger } from 'pino';
import { createTowerApp, type ValidationGateOptions } from './api/index.ts';
import { createConsoleHandler, isConsolePath } from './console.ts';
import { createReplays } from './replay/replays.ts';
import { createRolloutDriver, type RolloutDriver } from './rollout/driver.ts';
import type { TowerEnv } from './api/http.ts';
import type { TowerConfig } from './config.ts';
import { createLocalArtifactStore, createMetadataStore, createS3ArtifactStore, openSql, type ArtifactStore, type MetadataStore, type Sql } from './store/index.ts';
import { createUploadValidator, type UploadValidator } from './validation/index.ts';

export interface ControlTowerParts {
  readonly logger?: Logger;
  readonly validator?: UploadValidator;
  readonly artifacts?: ArtifactStore;
  /** Uploads validated at once and waiting (default 2 and 8). */
  readonly validations?: ValidationGateOptions;
  /** The built web console (default console/dist of the repository; console.ts). */
  readonly consoleDir?: string;
}

export interface ControlTower {
  readonly config: TowerConfig;
  readonly app: Hono<TowerEnv>;
  readonly store: MetadataStore;
  readonly artifacts: ArtifactStore;
  readonly validator: UploadValidator;
  /** Moves unfinished rollouts on (started by `start`; one tower replica at a time holds its lease). */
  readonly rollouts: RolloutDriver;
  /** The admin bearer token: SIBYL_ADMIN_TOKEN, or the development token made at this start. */
  readonly adminToken: string;
  /** True when `adminToken` was generated (no SIBYL_ADMIN_TOKEN). */
  readonly devToken: boolean;
  readonly logger: Logger;
  /** Listens on the configured port (0 picks a free one); resolves with the bound port. */
  start(): Promise<{ port: number }>;
  /** Stops listening, kills running validations, closes the stores. Idempotent. */
  stop(): Promise<void>;
}

export async function createControlTower(config: TowerConfig, parts: ControlTowerParts = {}): Promise<ControlTower> {
  // pino's own base fields (pid, hostname) and the service on every line.
  const logger = parts.logger ?? pino({ level: config.logLevel, base: { pid: process.pid, hostname: hostname(), service: 'control-tower' } });
  const sql: Sql = await openSql(config.database.kind === 'postgres' ? { databaseUrl: config.database.url } : { dataDir: config.database.dataDir });
  const store = await createMetadataStore(sql);
  await store.ensureCells(config.cells);
  const s3 = !parts.artifacts && config.bundles.kind === 's3' ? createS3ArtifactStore({ bucket: config.bundles.bucket, region: config.bundles.region, endpoint: config.bundles.endpoint }) : undefined;
  const artifacts = parts.artifacts ?? s3 ?? createLocalArtifactStore((config.bundles as { dir: string }).dir);
  const validator = parts.validator ?? createUploadValidator({ workDir: config.workDir, timeoutMs: config.validationTimeoutMs, timeoutSetting: 'SIBYL_VALIDATION_TIMEOUT_MS' });
  const { token: adminToken, generated } = await ensureAdminToken(store, config.adminToken);
  const replays = createReplays({ store, artifacts, ...config.replay });
  const app = createTowerApp({ store, artifacts, validator, maxUploadBytes: config.maxUploadBytes, maxWaitMs: config.maxWaitMs, drift: config.drift, replays, logger, ...(parts.validations ? { validations: parts.validations } : {}) });
  const serveConsole = createConsoleHandler(parts.consoleDir);
  // The console's few paths first (console.ts), everything else is the API.
  const fetch = (req: Request) => (isConsolePath(new URL(req.url).pathname) ? serveConsole(req) : app.fetch(req));
  const rollouts = createRolloutDriver({
    store,
    holder: `${hostname()}/${process.pid}/${randomBytes(6).toString('hex')}`,
    tickMs: config.rollouts.tickMs,
    leaseMs: config.rollouts.leaseMs,
    logger,
  });
  let server: ServerType | undefined;
  let stopping: Promise<void> | undefined;

  return {
    config,
    app,
    store,
    artifacts,
    validator,
    rollouts,
    adminToken,
    devToken: generated,
    logger,
    async start() {
      const port = await new Promise<number>((resolve, reject) => {
        const s = serve({ fetch, port: config.port, hostname: config.host }, (info) => resolve(info.port));
        s.once('error', reject);
        server = s;
      });
      logger.info({ port, cells: config.cells, database: config.database.kind, bundles: config.bundles.kind }, 'control tower serving');
      rollouts.start();
      return { port };
    },
    stop() {
      stopping ??= (async () => {
        await rollouts.stop();
        if (server) {
          (server as { closeAllConnections?: () => void }).closeAllConnections?.();
          await new Promise<void>((resolve) => server!.close(() => resolve()));
        }
        await validator.close();
        await replays.close();
        await store.close();
        await sql.close();
        s3?.close();
      })();
      return stopping;
    },
  };
}

/**
 * The admin token: SIBYL_ADMIN_TOKEN registered as token "admin" when it is not yet; without it, a fresh random
 * development token "dev-admin" for this start (the previous one is revoked).
 */
async function ensureAdminToken(store: MetadataStore, configured: string | undefined): Promise<{ token: string; generated: boolean }> {
  const name = configured ? 'admin' : 'dev-admin';
  if (configured && (await store.authenticate(configured))) return { token: configured, generated: false };
  const token = configured ?? `sibyl-dev-${randomBytes(24).toString('base64url')}`;
  await store.revokeToken(name, 'config').catch(() => undefined);
  await store.createToken({ name, role: 'admin', actor: 'config', token });
  return { token, generated: !configured };
}
