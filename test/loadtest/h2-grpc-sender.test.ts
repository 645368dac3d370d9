/**
 * The load generator's gRPC client on node:http2 (loadtest/lib/h2-grpc-sender.ts) against a real grpc-js server:
 * it must count what grpc-js's own client would (OK, a status in the trailers, a trailers-only refusal, an unknown
 * method), deliver the request's exact bytes with a deadline the server sees, and keep going when the server closes
 * its connections.
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawUnaryMethod as method } from '../../loadtest/lib/raw-grpc.ts';
import type { Outcome } from '../../loadtest/lib/clients.ts';
import { createSender } from '../../loadtest/lib/clients.ts';


let server: grpc.Server;
let port: number;
/** What the echo method received: the bytes and the deadline's distance, ms. */
const received: { body: string; deadlineMs: number }[] = [];

beforeAll(async () => {
  server = new grpc.Server();
  server.addService(
    { echo: method('/t.T/Echo'), refuse: method('/t.T/Refuse'), fail: method('/t.T/Fail') },
    {
      echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
        const d = call.getDeadline();
        received.push({ body: call.request.toString(), deadlineMs: (d instanceof Date ? d.getTime() : d) - Date.now() });
        cb(null, call.request);
      },
      // A refusal before any message: grpc-js answers trailers-only (the status in the response headers).
      refuse: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb({ code: grpc.status.RESOURCE_EXHAUSTED, details: 'busy' }),
      fail: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb({ code: grpc.status.INVALID_ARGUMENT, details: 'bad' }),
    },
  );
  port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
});

afterAll(() => new Promise<void>((resolve) => server.tryShutdown(() => resolve())));

function send(sender: ReturnType<typeof createSender>, path: string, body: string): Promise<Outcome> {
  return new Promise((resolve) => sender.send({ path, body: Buffer.from(body) }, resolve));
}

describe('the h2 gRPC sender', () => {
  it('sends the exact message with its deadline and reads OK, statuses in trailers and trailers-only refusals', async () => {
    const sender = createSender({ target: `127.0.0.1:${port}`, grpc: true, connections: 2, deadlineMs: 800, grpcClient: 'h2' });
    try {
      received.length = 0;
      const oks = await Promise.all(Array.from({ length: 20 }, (_, i) => send(sender, '/t.T/Echo', `message ${i}`)));
      expect(oks.every((o) => o.code === 'OK' && o.ok && !o.rejected)).toBe(true);
      expect(received.map((r) => r.body).sort()).toEqual(Array.from({ length: 20 }, (_, i) => `message ${i}`).sort());
      for (const r of received) expect(r.deadlineMs).toBeGreaterThan(600), expect(r.deadlineMs).toBeLessThanOrEqual(800);

      expect(await send(sender, '/t.T/Refuse', 'x')).toEqual({ code: 'RESOURCE_EXHAUSTED', ok: false, rejected: true });
      expect(await send(sender, '/t.T/Fail', 'x')).toEqual({ code: 'INVALID_ARGUMENT', ok: false, rejected: false });
      expect(await send(sender, '/t.T/Nope', 'x')).toEqual({ code: 'UNIMPLEMENTED', ok: false, rejected: false });
    } finally {
      await sender.close();
    }
  });

  it('counts the same outcomes as the grpc-js client for the same calls', async () => {
    const h2 = createSender({ target: `127.0.0.1:${port}`, grpc: true, connections: 1, deadlineMs: 800, grpcClient: 'h2' });
    const js = createSender({ target: `127.0.0.1:${port}`, grpc: true, connections: 1, deadlineMs: 800, grpcClient: 'grpc-js' });
    try {
      for (const path of ['/t.T/Echo', '/t.T/Refuse', '/t.T/Fail', '/t.T/Nope']) expect(await send(h2, path, 'x')).toEqual(await send(js, path, 'x'));
    } finally {
      await h2.close();
      await js.close();
    }
  });

  it('opens a new connection when the server closed the old one (GOAWAY)', async () => {
    const echo = { echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, call.request) };
    const first = new grpc.Server();
    first.addService({ echo: method('/t.T/Echo') }, echo);
    const p = await new Promise<number>((resolve, reject) => first.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, n) => (err ? reject(err) : resolve(n))));
    const sender = createSender({ target: `127.0.0.1:${p}`, grpc: true, connections: 1, deadlineMs: 800, grpcClient: 'h2' });
    const second = new grpc.Server();
    try {
      expect((await send(sender, '/t.T/Echo', 'a')).code).toBe('OK');
      // A graceful shutdown: GOAWAY, then the connection closes; a new server on the same port.
      await new Promise<void>((resolve) => first.tryShutdown(() => resolve()));
      second.addService({ echo: method('/t.T/Echo') }, echo);
      await new Promise<number>((resolve, reject) => second.bindAsync(`127.0.0.1:${p}`, grpc.ServerCredentials.createInsecure(), (err, n) => (err ? reject(err) : resolve(n))));
      expect((await send(sender, '/t.T/Echo', 'b')).code).toBe('OK');
    } finally {
      await sender.close();
      second.forceShutdown();
    }
  }, 10_000);
});
