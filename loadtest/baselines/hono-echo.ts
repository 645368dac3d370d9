#!/usr/bin/env node
/**
 * The REST transport's ceiling: a bare Hono app on @hono/node-server that parses the JSON body and answers it back,
 * on the same paths Sibyl serves (`POST /v1/models/{spec}`, `POST /v2/models/{model}/infer`), so the same request
 * pool drives both. Prints `{"port": n}` on stdout once listening.
 *
 *   node loadtest/baselines/hono-echo.ts [port]      (0 or none: a free port; always 127.0.0.1)
 */
import { serve } from '@hono/node-server';
import { Hono } from 'hono';

const app = new Hono();
const echo = async (c: { req: { json(): Promise<unknown> }; json(v: unknown): Response }): Promise<Response> => c.json(await c.req.json());
app.post('/v1/models/:spec', (c) => echo(c));
app.post('/v2/models/:model/infer', (c) => echo(c));

const server = serve({ fetch: app.fetch, port: Number(process.argv[2] ?? 0), hostname: '127.0.0.1' }, (info) => {
  process.stdout.write(`${JSON.stringify({ port: info.port })}\n`);
});
for (const s of ['SIGTERM', 'SIGINT'] as const) process.on(s, () => server.close(() => process.exit(0)));
