/** The REST front door: one Hono app with Sibyl REST, OIP REST, health and metrics. */
import { Hono } from 'hono';
import type { z } from 'zod';
import type { Pipeline } from '../pipeline/pipeline.ts';
import type { Telemetry } from '../telemetry/telemetry.ts';
import { mountOipRest, type OipHealth } from './oip/oip-rest.ts';
import { errorResponse, type RestLimits } from './rest-common.ts';
import { mountSibylRest } from './sibyl-rest.ts';
import { SibylError } from '../../core/errors.ts';
import type { ShadowPairSnapshot } from '../shadow/shadow-stats.ts';
import { gatewayOpenApi } from './openapi.ts';
import type { Live, Ready, ShadowPairs } from './rest-schemas.ts';

export interface RestAppDeps {
  readonly pipeline: Pipeline;
  readonly health: OipHealth;
  readonly telemetry: Telemetry;
  readonly limits: RestLimits;
  readonly logger: { error(obj: object, msg: string): void };
  /** The live-versus-shadow comparison, served at GET /v1/shadows. */
  readonly shadowStats?: { snapshot(): ShadowPairSnapshot[] };
}

export function createRestApp(deps: RestAppDeps): Hono {
  const app = new Hono();
  app.get('/healthz', (c) => c.json({ live: deps.health.live() } satisfies z.input<typeof Live>, deps.health.live() ? 200 : 503));
  app.get('/readyz', (c) => c.json({ ready: deps.health.ready() } satisfies z.input<typeof Ready>, deps.health.ready() ? 200 : 503));
  app.get('/metrics', async () => {
    const m = await deps.telemetry.metricsText();
    return new Response(m.body, { headers: { 'content-type': m.contentType } });
  });
  app.get('/v1/shadows', (c) => c.json({ pairs: deps.shadowStats?.snapshot() ?? [] } satisfies z.input<typeof ShadowPairs>));
  // Built on the first request (zod's JSON Schema generation takes a few milliseconds), then the same string.
  let openApi: string | undefined;
  app.get('/openapi.json', () => new Response((openApi ??= JSON.stringify(gatewayOpenApi())), { headers: { 'content-type': 'application/json' } }));
  mountSibylRest(app, deps.pipeline, deps.limits);
  mountOipRest(app, deps.pipeline, deps.health, deps.limits);
  app.notFound((c) => errorResponse(new SibylError('NOT_FOUND', `no route for ${c.req.method} ${c.req.path}`), c.req.header('x-request-id') ?? ''));
  app.onError((err) => {
    deps.logger.error({ err }, 'unhandled error in a REST handler');
    return errorResponse(err, '');
  });
  return app;
}
