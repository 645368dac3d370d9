/**
 * The prediction calls' own unary path (gateway/transport/grpc/unary-stream.ts): plain calls are answered on the
 * HTTP/2 stream by the method's one `call`, compressed ones by grpc-js running the same method, and everything else
 * by grpc-js; what a client sees is grpc-js's wire format either way. Protocol faults get grpc-js's codes. Real
 * grpc-js clients and a raw HTTP/2 client against a real server on 127.0.0.1.
 */
import http2 from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { SibylError } from '../../core/errors.ts';
import { rawUnaryMethod } from '../../loadtest/lib/raw-grpc.ts';
import { createGrpcServer } from '../../gateway/transport/grpc/grpc-server.ts';
import { answerOnStreams } from '../../gateway/transport/grpc/unary-stream.ts';
import type { PredictMethod, UnaryContext, UnaryReply } from '../../gateway/transport/grpc/service-definition.ts';
import type { Outcome, Pipeline, Refusal } from '../../gateway/pipeline/pipeline.ts';

const PATH = '/test.Echo/Predict';
const MAX = 64 * 1024;

/** A method that echoes the message (or fails when it reads "fail"), recording which path ran it. */
function echoMethod() {
  const seen = { stream: [] as UnaryContext[], grpcJs: 0 };
  const reply = async (bytes: Buffer, ctx: UnaryContext): Promise<UnaryReply> => {
    if (bytes.toString() === 'slow') await new Promise((r) => setTimeout(r, 150));
    return bytes.toString() === 'fail'
      ? { error: new SibylError('RESOURCE_EXHAUSTED', 'over capacity: 100% busy'), requestId: ctx.requestId ?? 'generated' }
      : { body: Buffer.concat([Buffer.from('echo:'), bytes]), requestId: ctx.requestId ?? 'generated' };
  };
  const method: PredictMethod = {
    path: PATH,
    call(bytes, ctx) {
      seen.stream.push(ctx);
      return reply(bytes, ctx);
    },
    handler(call, callback) {
      seen.grpcJs++;
      void reply(call.request, { startMs: 0, timeoutMs: undefined, requestId: undefined, traceparent: undefined, tracestate: undefined }).then((r) =>
        r.error ? callback({ code: r.error.grpcCode, details: r.error.message }) : callback(null, r.body),
      );
    },
  };
  return { method, seen };
}

const definition: grpc.ServiceDefinition = { predict: rawUnaryMethod(PATH) };

let server: grpc.Server;
let port: number;
let echo: ReturnType<typeof echoMethod>;
let installed: boolean;
let refusing: Refusal | undefined;

beforeAll(async () => {
  echo = echoMethod();
  server = new grpc.Server({ 'grpc.enable_channelz': 0, 'grpc.max_receive_message_length': MAX });
  server.addService(definition, { predict: echo.method.handler });
  installed = answerOnStreams(server, [echo.method], MAX, () => refusing);
  port = await new Promise((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
});
afterAll(() => server.forceShutdown());

function client(options: grpc.ChannelOptions = {}) {
  const Client = grpc.makeGenericClientConstructor(definition, 'Echo');
  return new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), options) as unknown as {
    predict(req: Buffer, md: grpc.Metadata, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, res?: Buffer) => void): grpc.ClientUnaryCall;
    close(): void;
  };
}

function callWith(c: ReturnType<typeof client>, body: string, md = new grpc.Metadata(), opts: grpc.CallOptions = {}) {
  return new Promise<{ err: grpc.ServiceError | null; res?: Buffer; trailers?: grpc.Metadata }>((resolve) => {
    let trailers: grpc.Metadata | undefined;
    const call = c.predict(Buffer.from(body), md, opts, (err, res) => setImmediate(() => resolve({ err, res, trailers })));
    call.on('status', (s: grpc.StatusObject) => (trailers = s.metadata));
  });
}

/** One request on a raw HTTP/2 stream: the response's headers, data and trailers (or its trailers-only headers). */
function raw(headers: http2.OutgoingHttpHeaders, body: Buffer) {
  return new Promise<{ headers: http2.IncomingHttpHeaders; data: Buffer; trailers: http2.IncomingHttpHeaders | undefined }>((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', reject);
    const req = session.request({ ':method': 'POST', ':path': PATH, 'content-type': 'application/grpc', te: 'trailers', ...headers });
    let response: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders | undefined;
    const data: Buffer[] = [];
    req.on('response', (h) => (response = h));
    req.on('trailers', (t) => (trailers = t));
    req.on('data', (c: Buffer) => data.push(c));
    req.on('close', () => {
      session.close();
      resolve({ headers: response, data: Buffer.concat(data), trailers });
    });
    req.on('error', reject);
    req.end(body);
  });
}

function framed(text: string, flag = 0): Buffer {
  const b = Buffer.from(text);
  const head = Buffer.alloc(5);
  head[0] = flag;
  head.writeUInt32BE(b.length, 1);
  return Buffer.concat([head, b]);
}

describe('the prediction calls answered on their streams', () => {
  it('is installed on this grpc-js, and the door uses it', () => {
    expect(installed).toBe(true);
    const stub = { predict: async () => ({}) as Outcome, describe: () => ({}), refuseEarly: () => undefined } as unknown as Pipeline;
    expect(createGrpcServer({ pipeline: stub, health: { live: () => true, ready: () => true }, limits: { maxBodyBytes: 1 << 20 } }).ownUnaryPath).toBe(true);
  });

  it("answers a plain call on the stream with the call's context, and a gzip one through grpc-js, alike", async () => {
    const plain = client();
    const md = new grpc.Metadata();
    md.set('x-request-id', 'order-4711');
    md.set('traceparent', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
    md.set('tracestate', 'vendor=1');
    const before = { stream: echo.seen.stream.length, grpcJs: echo.seen.grpcJs };
    const a = await callWith(plain, 'hello', md, { deadline: Date.now() + 5000 });
    expect(a.err).toBeNull();
    expect(a.res?.toString()).toBe('echo:hello');
    expect(a.trailers?.get('x-request-id')).toEqual(['order-4711']);
    expect(echo.seen.stream.length).toBe(before.stream + 1);
    const ctx = echo.seen.stream.at(-1)!;
    expect(ctx.requestId).toBe('order-4711');
    expect(ctx.traceparent).toBe('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
    expect(ctx.tracestate).toBe('vendor=1');
    expect(ctx.timeoutMs).toBeGreaterThan(4000);
    expect(ctx.timeoutMs).toBeLessThanOrEqual(5000);

    const gzip = client({ 'grpc.default_compression_algorithm': 2 });
    const b = await callWith(gzip, 'hello');
    expect(b.err).toBeNull();
    expect(b.res?.toString()).toBe('echo:hello');
    expect(echo.seen.grpcJs).toBe(before.grpcJs + 1);
    expect(echo.seen.stream.length).toBe(before.stream + 1);
    plain.close();
    gzip.close();
  });

  it("sends grpc-js's wire format: headers, one message, trailers; an error as trailers-only with the prediction's trailers", async () => {
    const ok = await raw({ 'x-request-id': 'r-1' }, framed('abc'));
    expect(ok.headers[':status']).toBe(200);
    expect(ok.headers['content-type']).toBe('application/grpc+proto');
    expect(ok.headers['grpc-encoding']).toBe('identity');
    expect(ok.data).toEqual(framed('echo:abc'));
    expect(ok.trailers?.['grpc-status']).toBe('0');
    expect(ok.trailers?.['x-request-id']).toBe('r-1');

    const refused = await raw({ 'x-request-id': 'r-2' }, framed('fail'));
    expect(refused.data.length).toBe(0);
    expect(refused.trailers).toBeUndefined();
    expect(refused.headers['grpc-status']).toBe(String(grpc.status.RESOURCE_EXHAUSTED));
    expect(decodeURI(refused.headers['grpc-message'] as string)).toBe('over capacity: 100% busy');
    expect(refused.headers['x-request-id']).toBe('r-2');
    expect(refused.headers['grpc-retry-pushback-ms']).toBe('1000');
  });

  it('reads a message that arrives in many HTTP/2 frames', async () => {
    const text = 'x'.repeat(MAX - 10);
    const r = await raw({}, framed(text));
    expect(r.trailers?.['grpc-status']).toBe('0');
    expect(r.data).toEqual(framed(`echo:${text}`));
  });

  it("refuses protocol faults with grpc-js's codes and never runs the method", async () => {
    const before = echo.seen.stream.length;
    const status = async (headers: http2.OutgoingHttpHeaders, body: Buffer) => {
      const r = await raw(headers, body);
      return Number(r.headers['grpc-status'] ?? r.trailers?.['grpc-status']);
    };
    expect(await status({}, Buffer.alloc(0))).toBe(grpc.status.UNIMPLEMENTED);
    expect(await status({}, Buffer.concat([framed('a'), framed('b')]))).toBe(grpc.status.UNIMPLEMENTED);
    expect(await status({}, framed('abcdef').subarray(0, 8))).toBe(grpc.status.INTERNAL);
    expect(await status({}, framed('abc').subarray(0, 3))).toBe(grpc.status.INTERNAL);
    expect(await status({}, framed('abc', 1))).toBe(grpc.status.INTERNAL);
    expect(await status({ 'grpc-timeout': 'soon' }, framed('abc'))).toBe(grpc.status.INTERNAL);
    const big = Buffer.alloc(5 + MAX + 1);
    big.writeUInt32BE(MAX + 1, 1);
    expect(await status({}, big)).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(echo.seen.stream.length).toBe(before);
  });

  it('drops the answer of a call the client gave up on, and serves the next one', async () => {
    const c = client();
    const gaveUp = await callWith(c, 'slow', new grpc.Metadata(), { deadline: Date.now() + 30 });
    expect(gaveUp.err?.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    await new Promise((r) => setTimeout(r, 200));
    const next = await callWith(c, 'after');
    expect(next.err).toBeNull();
    expect(next.res?.toString()).toBe('echo:after');
    c.close();
  });

  it("refuses a call on admission's fast path before reading it, with the retry pushback; other paths still answer", async () => {
    const before = { stream: echo.seen.stream.length, grpcJs: echo.seen.grpcJs };
    refusing = 'cpu';
    try {
      const c = client();
      const r = await callWith(c, 'x'.repeat(1000));
      expect(r.err?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      expect(r.err?.details).toBe('the gateway is at its CPU capacity; retry with backoff');
      expect(r.err?.metadata.get('grpc-retry-pushback-ms')).toEqual(['1000']);
      const unknown = await raw({ ':path': '/test.Echo/Missing' }, framed('x'));
      expect(Number(unknown.headers['grpc-status'] ?? unknown.trailers?.['grpc-status'])).toBe(grpc.status.UNIMPLEMENTED);
      c.close();
    } finally {
      refusing = undefined;
    }
    expect(echo.seen.stream.length).toBe(before.stream);
    expect(echo.seen.grpcJs).toBe(before.grpcJs);
    const c = client();
    expect((await callWith(c, 'again')).res?.toString()).toBe('echo:again');
    c.close();
  });

  it('reads grpc-timeout in every unit', async () => {
    for (const [header, ms] of [['150m', 150], ['2S', 2000], ['1M', 60_000], ['1H', 3_600_000], ['250000u', 250], ['5n', 1]] as const) {
      await raw({ 'grpc-timeout': header }, framed('t'));
      expect(echo.seen.stream.at(-1)!.timeoutMs).toBe(ms);
    }
  });

  it('leaves other paths and non-gRPC requests to grpc-js', async () => {
    const other = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
      const session = http2.connect(`http://127.0.0.1:${port}`);
      const req = session.request({ ':method': 'POST', ':path': '/test.Echo/Missing', 'content-type': 'application/grpc', te: 'trailers' });
      req.on('response', (h) => {
        session.close();
        resolve(h);
      });
      req.on('error', reject);
      req.end(framed('x'));
    });
    expect(Number(other['grpc-status'])).toBe(grpc.status.UNIMPLEMENTED);
    const json = await raw({ 'content-type': 'application/json' }, Buffer.from('{}'));
    expect(json.headers[':status']).toBe(415);
  });
});
