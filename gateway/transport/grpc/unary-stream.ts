/**
 * The prediction RPCs answered on the HTTP/2 stream itself. grpc-js still accepts every connection and stream, and
 * serves everything else (health, reflection, the OIP's other methods, compressed messages); for a prediction call
 * with an uncompressed message, the door reads the one length-prefixed message from the stream, runs the method's
 * one `call` (service-definition.ts, the same function grpc-js runs) and writes the headers, the message and the
 * trailers itself. Admission's fast path is asked first, when the call's headers arrive: a call it refuses is
 * answered RESOURCE_EXHAUSTED before its message is read, as REST's is. grpc-js's per-call machinery (the call
 * object and its interceptor chain, Metadata objects, a deadline timer, a message decoder and a read queue) cost
 * ~25 µs of CPU per call here, about what the rest of a bare echo's server costs (gateway/transport/grpc/README.md,
 * "The prediction calls' own path").
 *
 * The wire format is the one grpc-js writes: response headers `content-type: application/grpc+proto`,
 * `grpc-encoding: identity`, `grpc-accept-encoding`; trailers `grpc-status`, `grpc-message` (encodeURI) and the
 * prediction's trailers; an error before any message as a trailers-only response. The codes of protocol faults are
 * grpc-js's (RESOURCE_EXHAUSTED for a message over the transport's ceiling, UNIMPLEMENTED for no message or a second
 * one, INTERNAL for a bad `grpc-timeout` or framing).
 *
 * The hook is grpc-js's stream handler (`Server#_streamHandler`, what its HTTP/2 servers call for each stream, read
 * when a port is bound or a connection injector is made, and used while channelz is off, as the door sets it). It
 * is not public API: `answerOnStreams` returns false when the installed grpc-js has none, and the door then serves
 * every call through grpc-js as before; test/gateway/grpc-unary-stream.test.ts fails when that happens.
 */
import type * as http2 from 'node:http2';
import type * as grpc from '@grpc/grpc-js';
import { Code, SibylError } from '../../../core/errors.ts';
import { EARLY_REFUSAL_MESSAGES, type Refusal } from '../../pipeline/pipeline.ts';
import { predictionTrailers, type PredictMethod, type UnaryContext, type UnaryReply } from './service-definition.ts';

type StreamHandler = (extraInterceptors: unknown, stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void;
interface Hookable {
  _streamHandler?: StreamHandler;
  onStreamOpened?: (stream: http2.ServerHttp2Stream) => void;
}

/** What every answer's headers say (a trailers-only answer adds its status to these, as grpc-js's does). */
const BASE_HEADERS = { ':status': 200, 'content-type': 'application/grpc+proto' } as const;
/** An answer with a message: also its encoding and the encodings accepted. */
const RESPONSE_HEADERS = { ...BASE_HEADERS, 'grpc-accept-encoding': 'identity,deflate,gzip', 'grpc-encoding': 'identity' } as const;

/** grpc-timeout's units in milliseconds (the gRPC over HTTP/2 spec). */
const TIMEOUT_UNITS: Readonly<Record<string, number>> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };
const TIMEOUT = /^(\d{1,8})\s*([HMSmun])$/;
/** A refusal's trailers: the retry pushback (no request id: none was read). */
const REFUSAL_TRAILERS = predictionTrailers(undefined, new SibylError('RESOURCE_EXHAUSTED', 'refused'));

/**
 * Answers `methods` on their streams from now on (call before binding a port or making a connection injector).
 * `maxReceiveBytes` is the transport's ceiling for one message (the server's `grpc.max_receive_message_length`).
 * `refuseEarly` is admission's fast path (the door passes `Pipeline.refuseEarly(false)`, without the turn bound):
 * asked when a call's headers arrive, and a call it refuses is answered RESOURCE_EXHAUSTED with the retry pushback
 * before its message is read, as REST's fast path answers 429 (gateway/transport/fast-reject.ts).
 * Returns false, changing nothing, when this grpc-js has no stream handler to wrap.
 */
export function answerOnStreams(
  server: grpc.Server,
  methods: readonly PredictMethod[],
  maxReceiveBytes: number,
  refuseEarly: () => Refusal | undefined = () => undefined,
): boolean {
  const hookable = server as unknown as Hookable;
  const inner = hookable._streamHandler;
  if (typeof inner !== 'function') return false;
  const opened = hookable.onStreamOpened;
  const byPath = new Map(methods.map((m) => [m.path, m]));
  hookable._streamHandler = function streamHandler(this: grpc.Server, extraInterceptors, stream, headers) {
    const method = byPath.get(headers[':path'] as string);
    if (method === undefined || !plainCall(headers)) return inner.call(this, extraInterceptors, stream, headers);
    if (typeof opened === 'function') opened.call(this, stream);
    const why = refuseEarly();
    if (why !== undefined) return refuse(stream, why);
    serve(method, stream, headers, maxReceiveBytes);
  };
  return true;
}

/** A POST with a gRPC content type and no compression: what this path serves (grpc-js answers the rest). */
function plainCall(headers: http2.IncomingHttpHeaders): boolean {
  const type = headers['content-type'];
  const encoding = headers['grpc-encoding'];
  return headers[':method'] === 'POST' && typeof type === 'string' && type.startsWith('application/grpc') && (encoding === undefined || encoding === 'identity');
}

/** A call refused before its message is read: the status, then what the client still sends is discarded. */
function refuse(stream: http2.ServerHttp2Stream, why: Refusal): void {
  stream.once('error', ignore);
  status(stream, Code.RESOURCE_EXHAUSTED, EARLY_REFUSAL_MESSAGES[why], REFUSAL_TRAILERS);
  stream.resume();
}

function serve(method: PredictMethod, stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, max: number): void {
  const startMs = performance.now();
  // An error is followed by 'close'; there is nothing left to send on the stream (as grpc-js).
  stream.once('error', ignore);
  let timeoutMs: number | undefined;
  const timeout = first(headers['grpc-timeout']);
  if (timeout !== undefined) {
    const m = TIMEOUT.exec(timeout);
    if (m === null) return status(stream, Code.INTERNAL, `Invalid grpc-timeout value "${timeout}"`);
    timeoutMs = Math.max(1, Number(m[1]) * TIMEOUT_UNITS[m[2]!]!);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  let refused = false;
  let end = -1;
  const fault = (code: number, message: string): void => {
    refused = true;
    chunks.length = 0;
    status(stream, code, message);
  };
  stream.on('data', (chunk: Buffer) => {
    if (refused) return;
    chunks.push(chunk);
    size += chunk.length;
    if (end < 0 && size >= 5) {
      // The message's length, once its prefix is in: over the ceiling, it is refused before it is read.
      const length = (chunks.length === 1 ? chunk : Buffer.concat(chunks, size)).readUInt32BE(1);
      if (length > max) return fault(Code.RESOURCE_EXHAUSTED, `Received message larger than max (${length} vs. ${max})`);
      end = 5 + length;
    }
    if (end >= 0 && size > end) fault(Code.UNIMPLEMENTED, `Received a second request message for unary method ${method.path}`);
  });
  stream.on('end', () => {
    if (refused) return;
    if (size === 0) return status(stream, Code.UNIMPLEMENTED, `Received no request message for unary method ${method.path}`);
    const frame = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
    if (end < 0 || size < end) return status(stream, Code.INTERNAL, 'truncated message frame');
    if (frame[0] !== 0) return status(stream, Code.INTERNAL, 'compressed message without a grpc-encoding');
    const tp = first(headers.traceparent);
    const ctx: UnaryContext = {
      startMs,
      timeoutMs,
      requestId: first(headers['x-request-id']),
      traceparent: tp,
      tracestate: tp === undefined ? undefined : first(headers.tracestate),
      // Reset by the client (RST_STREAM: a cancel, its deadline) or gone with its connection; asked only before the answer.
      cancelled: () => stream.closed || stream.destroyed,
    };
    void method.call(frame.subarray(5, end), ctx).then((reply) => answer(stream, reply));
  });
}

function answer(stream: http2.ServerHttp2Stream, reply: UnaryReply): void {
  // The client cancelled (or the connection went): nothing to answer.
  if (stream.destroyed || stream.closed) return;
  if (reply.error) return status(stream, reply.error.grpcCode, reply.error.message, predictionTrailers(reply.requestId, reply.error));
  const body = reply.body;
  const message = Buffer.allocUnsafe(5 + body.byteLength);
  message[0] = 0;
  message.writeUInt32BE(body.byteLength, 1);
  message.set(body, 5);
  const trailers = { 'grpc-status': '0', 'grpc-message': 'OK', ...predictionTrailers(reply.requestId, undefined) };
  try {
    stream.respond({ ...RESPONSE_HEADERS }, { waitForTrailers: true });
    stream.once('wantTrailers', () => stream.sendTrailers(trailers));
    stream.end(message);
  } catch {
    // The stream closed between the check and the write.
  }
}

/** A status with no message: a trailers-only response, as grpc-js sends it. */
function status(stream: http2.ServerHttp2Stream, code: number, message: string, extra?: Record<string, string>): void {
  if (stream.destroyed || stream.closed || stream.headersSent) return;
  try {
    stream.respond({ ...BASE_HEADERS, 'grpc-status': String(code), 'grpc-message': encodeURI(message), ...extra }, { endStream: true });
  } catch {
    // The stream closed between the check and the write.
  }
}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function ignore(): void {}
