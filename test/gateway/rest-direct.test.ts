/**
 * Sibyl REST's direct path (sibyl-rest.ts `serveDirect`, ahead of Hono in the HTTP server): a POST to a plain
 * predict path is served without Hono, anything else is left to Hono, and either way a request gets the same
 * answer (status, headers, body) and tells the pipeline's entry the same arrival (endpoint, path, headers).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Hono } from 'hono';
import { getRequestListener } from '@hono/node-server';
import { SibylError, toSibylError } from '../../core/errors.ts';
import { mountSibylRest } from '../../gateway/transport/sibyl-rest.ts';
import { errorAnswer, toResponse } from '../../gateway/transport/rest-common.ts';
import type { Arrival, Outcome, ParsedRequest, Pipeline } from '../../gateway/pipeline/pipeline.ts';
import type { Route } from '../../gateway/routing/route-table.ts';

const ROUTE = undefined as unknown as Route;

/** The entry, reduced to what a door relies on: it records each arrival, calls `parse`, and answers from the rows. */
function recordingPipeline(arrivals: object[]): Pipeline {
  return {
    async predict(arrival: Arrival, parse: () => ParsedRequest | Promise<ParsedRequest>): Promise<Outcome> {
      const { cancelled: _, startMs: __, ...seen } = arrival;
      arrivals.push(seen);
      const requestId = arrival.requestId ?? 'generated-id';
      try {
        const p = await parse();
        if (p.model === 'boom') throw new Error('a bug in the entry');
        const rows = p.rows(ROUTE, []);
        return { requestId, output: { requestId, model: p.model, version: p.version || '1', arm: '', route: ROUTE, results: rows.map((r) => ({ outputs: { features: Object.keys(r.features).length, timeout: p.timeoutMs ?? -1 }, defaulted: [] })) } };
      } catch (err) {
        if (!(err instanceof SibylError)) throw err;
        return { requestId, error: toSibylError(err) };
      }
    },
  } as unknown as Pipeline;
}

interface Door {
  readonly url: string;
  readonly arrivals: object[];
  served: { direct: number; hono: number };
  readonly server: Server;
}

async function door(direct: boolean): Promise<Door> {
  const arrivals: object[] = [];
  const app = new Hono();
  const onError = (err: unknown) => errorAnswer(err, '');
  const serveDirect = mountSibylRest(app, recordingPipeline(arrivals), { maxBodyBytes: 1000 }, onError);
  app.onError((err) => toResponse(onError(err)));
  const hono = getRequestListener(app.fetch);
  const d = { arrivals, served: { direct: 0, hono: 0 } } as Door;
  const server = createServer((req, res) => {
    if (direct && serveDirect(req, res)) d.served.direct++;
    else {
      d.served.hono++;
      void hono(req, res);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return Object.assign(d, { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
}

async function ask(d: Door, method: string, path: string, body?: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${d.url}${path}`, { method, body, headers: { 'x-request-id': 'req-1', ...headers } });
  const h = Object.fromEntries([...res.headers].filter(([k]) => k !== 'date' && k !== 'keep-alive' && k !== 'connection'));
  return { status: res.status, headers: h, body: await res.text() };
}

const ROW = JSON.stringify({ rows: [{ entities: { zone: 'z-1' }, features: { a: 1, b: 'x' } }] });

describe('Sibyl REST: the direct path answers as Hono does', () => {
  let direct: Door;
  let hono: Door;
  beforeAll(async () => {
    [direct, hono] = await Promise.all([door(true), door(false)]);
  });
  afterAll(() => {
    direct?.server.close();
    hono?.server.close();
  });

  it.each([
    ['a prediction', 'POST', '/v1/models/delivery-eta:predict', ROW, {}, 'direct'],
    ['a version', 'POST', '/v1/models/delivery-eta/versions/2:predict', ROW, {}, 'direct'],
    ['a client deadline', 'POST', '/v1/models/m:predict', ROW, { 'x-request-timeout-ms': '250', traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' }, 'direct'],
    ['a bad deadline', 'POST', '/v1/models/m:predict', ROW, { 'x-request-timeout-ms': 'soon' }, 'direct'],
    ['another verb', 'POST', '/v1/models/m:explain', ROW, {}, 'direct'],
    ['no verb', 'POST', '/v1/models/m', ROW, {}, 'direct'],
    ['a body that is not JSON', 'POST', '/v1/models/m:predict', '{"rows":', {}, 'direct'],
    ['a body naming another model', 'POST', '/v1/models/m:predict', JSON.stringify({ model: 'other', rows: [] }), {}, 'direct'],
    ['a body over the limit', 'POST', '/v1/models/m:predict', JSON.stringify({ rows: [], pad: 'x'.repeat(2000) }), {}, 'direct'],
    ['a proto field name (protobuf-es)', 'POST', '/v1/models/m:predict', JSON.stringify({ request_id: 'r', rows: [] }), {}, 'direct'],
    ['no request id header', 'POST', '/v1/models/m:predict', ROW, { 'x-request-id': '' }, 'direct'],
    ['an unexpected failure', 'POST', '/v1/models/boom:predict', ROW, {}, 'direct'],
    ['a query string', 'POST', '/v1/models/m:predict?debug=1', ROW, {}, 'hono'],
    ['a percent-escape', 'POST', '/v1/models/m%3Apredict', ROW, {}, 'hono'],
    ['an escaped model name', 'POST', '/v1/models/caf%C3%A9:predict', ROW, {}, 'hono'],
    ['a trailing slash', 'POST', '/v1/models/m:predict/', ROW, {}, 'hono'],
    ['another method', 'GET', '/v1/models/m:predict', undefined, {}, 'hono'],
    ['another route', 'POST', '/v2/models/m/infer', ROW, {}, 'hono'],
  ] as [string, string, string, string | undefined, Record<string, string>, 'direct' | 'hono'][])('%s', async (_, method, path, body, headers, via) => {
    const before = { ...direct.served };
    const [a, b] = [await ask(direct, method, path, body, headers), await ask(hono, method, path, body, headers)];
    expect(a).toEqual(b);
    expect(direct.served[via]).toBe(before[via] + 1);
    expect(direct.arrivals).toEqual(hono.arrivals);
  });

  it('counts each request once and answers every one', () => {
    expect(direct.served.direct).toBe(12);
    expect(direct.served.hono).toBe(6);
    expect(hono.served.hono).toBe(18);
  });
});
