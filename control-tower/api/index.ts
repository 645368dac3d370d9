/**
 * The control tower's REST API (one Hono app): every route needs a bearer token; reads need the viewer role,
 * changes publisher, tokens admin. Errors are `{ code, message }` with the HTTP status of the code.
 * An upload larger than `maxUploadBytes` is INVALID_ARGUMENT (400), decided from Content-Length when it is sent
 * and otherwise while the body is read (reading stops at the limit); the limit is a property of the request, so a
 * client that retries the same body will fail the same way, which is why it is not RESOURCE_EXHAUSTED.
 */
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { SibylError } from '../../core/errors.ts';
import type { ArtifactStore, MetadataStore } from '../store/index.ts';
import type { UploadValidator } from './upload-validator.ts';
import { mountAdminApi } from './admin-api.ts';
import { mountCellsApi } from './cells-api.ts';
import { authenticate, errorJson, reply, type TowerEnv } from './http.ts';
import { mountModelsApi } from './models-api.ts';
import { mountStatisticsApi } from './statistics-api.ts';
import { mountReplaysApi } from './replays-api.ts';
import { mountRolloutsApi } from './rollouts-api.ts';
import { rolloutMetrics } from '../rollout/metrics.ts';
import { mountValidationsApi } from './validations-api.ts';
import type { Replays } from '../replay/replays.ts';
import type { DriftSettings } from '../../stats/view.ts';
import { towerOpenApi } from './openapi.ts';
import { Live } from './schemas.ts';
import { limitValidations, type ValidationGateOptions } from './validation-gate.ts';

export { publishBundle, type UploadRequest, type UploadResult } from './upload.ts';
export type { UploadValidator, ValidatedBundle } from './upload-validator.ts';
export { limitValidations, type ValidationGateOptions } from './validation-gate.ts';

export interface TowerApiDeps {
  readonly store: MetadataStore;
  readonly artifacts: ArtifactStore;
  readonly validator: UploadValidator;
  readonly maxUploadBytes: number;
  readonly maxWaitMs: number;
  /** Largest body of every other call (JSON: reports, changes), bytes; default 4 MiB. INVALID_ARGUMENT beyond. */
  readonly maxJsonBytes?: number;
  /** Uploads validated at once and waiting (default 2 and 8); beyond, RESOURCE_EXHAUSTED. */
  readonly validations?: ValidationGateOptions;
  readonly logger?: { error(obj: object, msg: string): void };
  /** Drift scoring of the gateways' serving statistics (default: PSI threshold 0.2, at least 100 values). */
  readonly drift?: DriftSettings;
  /** Replays of logged traffic run by the tower (without: the replay calls are not served). */
  readonly replays?: Replays;
}

export function createTowerApp(deps: TowerApiDeps): Hono<TowerEnv> {
  const app = new Hono<TowerEnv>();
  const validator = limitValidations(deps.validator, deps.validations);
  const maxJsonBytes = deps.maxJsonBytes ?? 4 * 1024 * 1024;
  const uploadLimit = bodyLimit({
    maxSize: deps.maxUploadBytes,
    onError: () => {
      throw new SibylError('INVALID_ARGUMENT', `the upload exceeds the limit of ${deps.maxUploadBytes} bytes (SIBYL_MAX_UPLOAD_BYTES)`);
    },
  });
  const jsonLimit = bodyLimit({
    maxSize: maxJsonBytes,
    onError: () => {
      throw new SibylError('INVALID_ARGUMENT', `the body exceeds the limit of ${maxJsonBytes} bytes`);
    },
  });
  app.get('/healthz', (c) => reply(c, Live, { live: true }));
  // Built on the first request (zod's JSON Schema generation takes some milliseconds), then the same string.
  let openApi: string | undefined;
  app.get('/openapi.json', () => new Response((openApi ??= JSON.stringify(towerOpenApi())), { headers: { 'content-type': 'application/json' } }));
  app.use('/v1/*', authenticate(deps.store));
  app.use('/v1/*', function limitBody(c, next) {
    const bundle = c.req.method === 'POST' && (c.req.path === '/v1/models' || c.req.path === '/v1/validations');
    return bundle ? uploadLimit(c, next) : jsonLimit(c, next);
  });
  mountModelsApi(app, { ...deps, validator });
  mountValidationsApi(app, { store: deps.store, validator, maxUploadBytes: deps.maxUploadBytes });
  mountCellsApi(app, deps);
  if (deps.replays) mountReplaysApi(app, deps.replays);
  mountRolloutsApi(app, deps.store);
  mountStatisticsApi(app, {
    store: deps.store,
    drift: deps.drift ?? { threshold: 0.2, minValues: 100 },
    ...(deps.logger ? { logger: deps.logger as { warn?(obj: object, msg: string): void } } : {}),
    // Unfinished rollouts and the last 20 finished ones.
    moreMetrics: async () => {
      const recent = await deps.store.listRollouts({ limit: 20 });
      const active = await deps.store.listRollouts({ active: true, limit: 1000 });
      const ids = new Set(recent.map((r) => r.id));
      return rolloutMetrics([...recent, ...active.filter((r) => !ids.has(r.id))]);
    },
  });
  mountAdminApi(app, deps.store);
  app.notFound((c) => errorJson(new SibylError('NOT_FOUND', `no route for ${c.req.method} ${c.req.path}`)));
  app.onError((err) => errorJson(err, deps.logger));
  return app;
}
