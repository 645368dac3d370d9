/**
 * A unary gRPC sender on node:http2 alone: the gRPC wire protocol (length-prefixed message, `application/grpc`,
 * `te: trailers`, `grpc-timeout`, the status in the trailers or in a trailers-only answer) with none of grpc-js's
 * per-call machinery (interceptors, resolver and load-balancer calls, call objects, metadata objects, a timer per
 * deadline). It exists so that the generator's own cost per call stays well under the server's: the grpc-js client
 * spends more CPU per call than a bare grpc-js server does (loadtest/grpc-breakdown.ts measures both), and a
 * generator that runs out of core measures itself. Bodies are never decoded (only the status is read).
 *
 * Each connection is one HTTP/2 session; calls go round-robin over them, and a session the server closed is replaced
 * by a new one. A call not answered within the deadline plus a second is cancelled and counted as
 * DEADLINE_EXCEEDED, as grpc-js's client does at the deadline.
 */
import * as http2 from 'node:http2';
import type { Outcome, Sender, SenderOptions } from './clients.ts';
import type { EncodedRequest } from './requests.ts';

/** gRPC status names by code. */
export const GRPC_STATUS_NAMES = ['OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS', 'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED'];
/** The status of a refusal by admission control. */
export const RESOURCE_EXHAUSTED = 8;

/** The framed body (5-byte prefix + message) of each request, made once. */
const framed = new WeakMap<EncodedRequest, Buffer>();
function frame(req: EncodedRequest): Buffer {
  let b = framed.get(req);
  if (!b) {
    b = Buffer.allocUnsafe(5 + req.body.byteLength);
    b.writeUInt8(0, 0);
    b.writeUInt32BE(req.body.byteLength, 1);
    req.body.copy(b, 5);
    framed.set(req, b);
  }
  return b;
}

interface Pending {
  readonly stream: http2.ClientHttp2Stream;
  readonly due: number;
  readonly fail: (code: string) => void;
}

export function h2GrpcSender(opts: SenderOptions): Sender {
  const authority = opts.target;
  const connect = (): http2.ClientHttp2Session => {
    const s = http2.connect(`http://${authority}`, { settings: { enablePush: false, initialWindowSize: 1 << 20 } });
    // A session's failure fails its open calls (their streams' own errors); the next call opens a new session.
    s.on('error', () => {});
    // After the server's GOAWAY no new call may start here: close once the open ones end (the server's graceful
    // shutdown waits for that), and the next call opens a new session.
    s.on('goaway', () => s.close());
    return s;
  };
  const sessions: http2.ClientHttp2Session[] = [];
  for (let i = 0; i < Math.max(1, opts.connections); i++) sessions.push(connect());
  const timeoutHeader = `${Math.max(1, Math.round(opts.deadlineMs))}m`;
  const pending = new Set<Pending>();
  // One sweep for every call's deadline instead of a timer per call.
  const sweep = setInterval(() => {
    const now = performance.now();
    for (const p of pending) if (p.due < now) p.fail('DEADLINE_EXCEEDED');
  }, 100);
  sweep.unref();
  let next = 0;

  return {
    send(req, done) {
      let session = sessions[next]!;
      // A session the server closed (GOAWAY, a reset connection) is replaced, as grpc-js reconnects a channel.
      if (session.closed || session.destroyed) session = sessions[next] = connect();
      next = (next + 1) % sessions.length;
      let ended = false;
      let status: number | undefined;
      const finish = (o: Outcome): void => {
        if (ended) return;
        ended = true;
        pending.delete(entry);
        done(o);
      };
      const fromStatus = (): Outcome =>
        status === 0
          ? { code: 'OK', ok: true, rejected: false }
          : status === undefined
            ? { code: 'NO_STATUS', ok: false, rejected: false }
            : { code: GRPC_STATUS_NAMES[status] ?? String(status), ok: false, rejected: status === RESOURCE_EXHAUSTED };
      let stream: http2.ClientHttp2Stream;
      try {
        stream = session.request({
          ':method': 'POST',
          ':path': req.path,
          'content-type': 'application/grpc',
          te: 'trailers',
          'grpc-timeout': timeoutHeader,
        });
      } catch (err) {
        done({ code: (err as { code?: string }).code ?? 'H2_ERROR', ok: false, rejected: false });
        return;
      }
      const entry: Pending = {
        stream,
        due: performance.now() + opts.deadlineMs + 1000,
        fail: (code) => {
          stream.close(http2.constants.NGHTTP2_CANCEL);
          finish({ code, ok: false, rejected: false });
        },
      };
      pending.add(entry);
      stream.on('response', (headers) => {
        const s = headers['grpc-status'];
        if (s !== undefined) status = Number(s);
      });
      stream.on('trailers', (trailers) => {
        const s = trailers['grpc-status'];
        if (s !== undefined) status = Number(s);
      });
      stream.on('data', () => {});
      stream.on('error', (err: { code?: string }) => finish({ code: err.code ?? 'H2_ERROR', ok: false, rejected: false }));
      stream.on('close', () => finish(fromStatus()));
      stream.end(frame(req));
    },
    async close() {
      clearInterval(sweep);
      await Promise.all(sessions.map((s) => new Promise<void>((r) => s.close(() => r()))));
    },
  };
}
