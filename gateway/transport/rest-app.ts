/** The REST front door: one Hono app with Sibyl REST, OIP REST, health and metrics. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Hono } from 'hono';
import type { z } from 'zod';
import type { Pipeline } from '../pipeline/pipeline.ts';
import type { Telemetry } from '../telemetry/telemetry.ts';
import { mountOipRest, type OipHealth } from './oip/oip-rest.ts';
import { errorAnswer, errorResponse, toResponse, type RestLimits } from './rest-common.ts';
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

/** The REST door: the Hono app (every route), and the prediction routes' direct path for Node's HTTP server. */
export interface RestApp {
  readonly app: Hono;
  /**
   * Serves a request on a prediction route in the common case without Hono (same handler, same answer: see
   * sibyl-rest.ts) and returns true; false leaves it to `app`. Put ahead of Hono's listener by the HTTP server.
   */
  readonly serveDirect: (req: IncomingMessage, res: ServerResponse) => boolean;
}

export function createRestApp(deps: RestAppDeps): RestApp {
  const app = new Hono();
  const unhandled = (err: unknown) => {
    deps.logger.error({ err }, 'unhandled error in a REST handler');
    return errorAnswer(err, '');
  };
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
  const sibylDirect = mountSibylRest(app, deps.pipeline, deps.limits, unhandled);
  const oipDirect = mountOipRest(app, deps.pipeline, deps.health, deps.limits, unhandled);
  const serveDirect = (req: IncomingMessage, res: ServerResponse) => sibylDirect(req, res) || oipDirect(req, res);
  app.notFound((c) => errorResponse(new SibylError('NOT_FOUND', `no route for ${c.req.method} ${c.req.path}`), c.req.header('x-request-id') ?? ''));
  app.onError((err) => toResponse(unhandled(err)));
  return { app, serveDirect };
}
