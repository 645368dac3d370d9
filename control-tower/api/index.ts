/**
 * The control tower's REST API (one Hono app): every route needs a bearer token; reads need the viewer role,
 * changes publisher, tokens admin. Errors are `{ code, message }` with the HTTP status of the code.
 * An upload larger than `maxUploadBytes` is INVALID_ARGUMENT (400), decided from Content-Length when it is sent
 * and otherwise while the body is read (reading stops at the limit); the limit is a property of the request, so a
 * client that retries the same body will fail the same way, which is why it is not RESOURCE_EXHAUSTED.
 */
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { SibylError } from '../../runtimes/errors.ts';
import type { ArtifactStore, MetadataStore } from '../store/index.ts';
import type { UploadValidator } from './upload-validator.ts';
import { mountAdminApi } from './admin-api.ts';
import { mountCellsApi } from './cells-api.ts';
import { authenticate, errorJson, type TowerEnv } from './http.ts';
import { mountModelsApi } from './models-api.ts';

export { publishBundle, type UploadRequest, type UploadResult } from './upload.ts';
export type { UploadValidator, ValidatedBundle } from './upload-validator.ts';

export interface TowerApiDeps {
  readonly store: MetadataStore;
  readonly artifacts: ArtifactStore;
  readonly validator: UploadValidator;
  readonly maxUploadBytes: number;
  readonly maxWaitMs: number;
  readonly logger?: { error(obj: object, msg: string): void };
}

export function createTowerApp(deps: TowerApiDeps): Hono<TowerEnv> {
  const app = new Hono<TowerEnv>();
  app.get('/healthz', (c) => c.json({ live: true }));
  app.use('/v1/*', authenticate(deps.store));
  app.post(
    '/v1/models',
    bodyLimit({
      maxSize: deps.maxUploadBytes,
      onError: () => {
        throw new SibylError('INVALID_ARGUMENT', `the upload exceeds the limit of ${deps.maxUploadBytes} bytes (SIBYL_MAX_UPLOAD_BYTES)`);
      },
    }),
  );
  mountModelsApi(app, deps);
  mountCellsApi(app, deps);
  mountAdminApi(app, deps.store);
  app.notFound((c) => errorJson(new SibylError('NOT_FOUND', `no route for ${c.req.method} ${c.req.path}`)));
  app.onError((err) => errorJson(err, deps.logger));
  return app;
}
