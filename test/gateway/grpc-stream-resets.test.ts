/**
 * An overloaded gateway's gRPC clients cancel calls at their deadline (grpc-go and grpc-java send RST_STREAM), one
 * reset per late call. The door must keep such a client's connection: Node's own limit on stream resets (1,000, then
 * 33 a second) answers them with GOAWAY INTERNAL_ERROR, which fails every call in flight on the connection. A raw
 * HTTP/2 client on 127.0.0.1 sends calls and cancels them while the gateway still works on them, then makes one more
 * call on the same connection; the same against a grpc-js server with Node's defaults shows what the door prevents.
 */
import http2 from 'node:http2';
import { afterEach, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { SibylError } from '../../core/errors.ts';
import { rawUnaryMethod } from '../../loadtest/lib/raw-grpc.ts';
import { createGrpcServer } from '../../gateway/transport/grpc/grpc-server.ts';
import type { Outcome, Pipeline } from '../../gateway/pipeline/pipeline.ts';

const PREDICT = '/sibyl.v1.PredictionService/Predict';
/** More resets than Node's burst allows, sent as fast as the client can. */
const CANCELLED = 2500;

/** Every prediction takes `ms`, then fails NOT_FOUND: the calls are still running when the client cancels them. */
function slowPipeline(ms: number): Pipeline {
  return {
    predict: async (): Promise<Outcome> => {
      await new Promise((r) => setTimeout(r, ms));
      return { error: new SibylError('NOT_FOUND', 'no such model'), requestId: 'r' } as unknown as Outcome;
    },
    describe: () => ({}),
    refuseEarly: () => undefined,
  } as unknown as Pipeline;
}

const servers: grpc.Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.forceShutdown();
});

function bind(server: grpc.Server): Promise<number> {
  servers.push(server);
  return new Promise((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
}

/** An empty PredictRequest, framed. */
const MESSAGE = Buffer.from([0, 0, 0, 0, 0]);
const HEADERS = { ':method': 'POST', ':path': PREDICT, 'content-type': 'application/grpc', te: 'trailers', 'grpc-timeout': '5S' };

/**
 * `CANCELLED` calls sent and each reset right after its message (RST_STREAM CANCEL), then one call answered or not:
 * whether the server sent GOAWAY, and the last call's grpc-status (undefined when the connection failed it).
 */
async function cancelThenCall(port: number): Promise<{ goaway: number | undefined; status: string | undefined }> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  session.on('error', () => {});
  let goaway: number | undefined;
  session.on('goaway', (code: number) => (goaway = code));
  await new Promise<void>((resolve, reject) => session.once('connect', () => resolve()).once('error', reject));
  for (let i = 0; i < CANCELLED; i++) {
    const call = session.request(HEADERS);
    call.on('error', () => {});
    call.end(MESSAGE);
    call.close(http2.constants.NGHTTP2_CANCEL);
  }
  // The resets have left once a ping comes back after them.
  await new Promise<void>((resolve) => session.ping(() => resolve()));
  const status = await new Promise<string | undefined>((resolve) => {
    if (session.closed || session.destroyed) return resolve(undefined);
    const call = session.request(HEADERS);
    let grpcStatus: string | undefined;
    call.on('response', (h) => (grpcStatus ??= h['grpc-status'] as string | undefined));
    call.on('trailers', (t) => (grpcStatus = t['grpc-status'] as string | undefined));
    call.on('error', () => {});
    call.on('close', () => resolve(grpcStatus));
    call.resume();
    call.end(MESSAGE);
  });
  session.destroy();
  return { goaway, status };
}

describe('a client cancelling calls at their deadline (stream resets)', () => {
  it('keeps its connection: the next call on it is answered, and no GOAWAY is sent', async () => {
    const door = createGrpcServer({ pipeline: slowPipeline(1000), health: { live: () => true, ready: () => true }, limits: { maxBodyBytes: 1 << 20 } });
    const port = await bind(door.server);
    const { goaway, status } = await cancelThenCall(port);
    expect(goaway).toBeUndefined();
    expect(status).toBe(String(grpc.status.NOT_FOUND));
  });

  it("where Node's default limit holds (a bare grpc-js server), loses it to GOAWAY INTERNAL_ERROR", async () => {
    const bare = new grpc.Server();
    bare.addService({ predict: rawUnaryMethod(PREDICT) }, { predict: (_call: unknown, cb: grpc.sendUnaryData<Buffer>) => setTimeout(() => cb(null, Buffer.alloc(0)), 1000) });
    const port = await bind(bare);
    const { goaway, status } = await cancelThenCall(port);
    expect(goaway).toBe(http2.constants.NGHTTP2_INTERNAL_ERROR);
    expect(status).toBeUndefined();
  });
});
