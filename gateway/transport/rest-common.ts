/** What every REST route shares: body limits, JSON parsing, the error body, request-id and timeout headers. */
import { toJsonString, create } from '@bufbuild/protobuf';
import type { Context } from 'hono';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ErrorBodySchema } from '../../proto/gen/sibyl/v1/predict_pb.js';
import { retryAfterSeconds, SibylError, toSibylError } from '../../core/errors.ts';
import type { Arrival } from '../pipeline/pipeline.ts';
import type { Endpoint } from '../telemetry/endpoint.ts';

export const requestIdHeader = 'x-request-id';
/** Header a client uses to shorten its deadline, in milliseconds. */
export const timeoutHeaderName = 'x-request-timeout-ms';

export interface RestLimits {
  /** Largest request body, bytes; larger is INVALID_ARGUMENT. */
  readonly maxBodyBytes: number;
}

/**
 * What a REST handler reads of a request. Under @hono/node-server it reads Node's IncomingMessage directly: headers
 * from the parsed object and the body from the socket stream, without building a WHATWG Request and its body stream
 * (profiling showed those at several percent of the request path). Elsewhere (in-process `app.request`) it reads the
 * Request.
 */
export interface HttpIn {
  header(name: string): string | undefined;
  /** Reads a body of at most `limit` bytes; INVALID_ARGUMENT when larger (checked before and while reading). */
  body(limit: number): Promise<Uint8Array>;
  /** True once the client has gone away (closed its connection) before its answer: the entry's `Arrival.cancelled`. */
  cancelled(): boolean;
}

export function httpIn(c: Context): HttpIn {
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  if (incoming && typeof incoming.on === 'function') return incomingIn(incoming);
  const req = c.req.raw;
  return { header: (name) => req.headers.get(name) ?? undefined, body: (limit) => readBody(req, limit), cancelled: () => req.signal.aborted };
}

/** Node's IncomingMessage as a REST handler reads it. */
export function incomingIn(incoming: IncomingMessage): HttpIn {
  return {
    header: (name) => {
      const v = incoming.headers[name];
      return Array.isArray(v) ? v[0] : v;
    },
    body: (limit) => readIncoming(incoming, limit),
    cancelled: () => incoming.socket.destroyed,
  };
}

function readIncoming(incoming: IncomingMessage, limit: number): Promise<Uint8Array> {
  const declared = Number(incoming.headers['content-length'] ?? NaN);
  if (declared > limit) return Promise.reject(tooLarge(declared, limit));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.byteLength;
      if (size > limit) {
        incoming.off('data', onData);
        incoming.resume();
        reject(tooLarge(size, limit));
        return;
      }
      chunks.push(chunk);
    };
    incoming.on('data', onData);
    incoming.once('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)));
    incoming.once('error', reject);
  });
}

export function timeoutHeader(http: HttpIn): number | undefined {
  const v = http.header(timeoutHeaderName);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new SibylError('INVALID_ARGUMENT', `${timeoutHeaderName}: must be a positive number of milliseconds, got "${v}"`);
  return n;
}

/** Reads a body of at most `limit` bytes. Throws INVALID_ARGUMENT when larger (checked before and while reading). */
export async function readBody(req: Request, limit: number): Promise<Uint8Array> {
  const declared = Number(req.headers.get('content-length') ?? NaN);
  if (declared > limit) throw tooLarge(declared, limit);
  if (!req.body) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of req.body as unknown as AsyncIterable<Uint8Array>) {
    size += chunk.byteLength;
    if (size > limit) throw tooLarge(size, limit);
    chunks.push(chunk);
  }
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(size);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.byteLength;
  }
  return out;
}

function tooLarge(size: number, limit: number): SibylError {
  return SibylError.because('BODY_TOO_LARGE', `request body of ${size}${size > limit ? '+' : ''} bytes exceeds the limit of ${limit} bytes (SIBYL_MAX_BODY_BYTES)`);
}

const decoder = new TextDecoder('utf-8', { fatal: true });

export async function readJsonBody(http: HttpIn, limit: number): Promise<unknown> {
  return parseJson(await http.body(limit));
}

/** A JSON object (not null, not an array), as the REST doors take bodies and their parts. */
export function isJsonObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function parseJson(bytes: Uint8Array): unknown {
  if (bytes.byteLength === 0) throw new SibylError('INVALID_ARGUMENT', 'request body is empty: a JSON object is required');
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch {
    throw new SibylError('INVALID_ARGUMENT', 'request body is not valid UTF-8');
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new SibylError('INVALID_ARGUMENT', `request body is not valid JSON: ${(err as Error).message}`);
  }
}

/**
 * A REST answer before it is a WHATWG Response (for Hono) or written to Node's ServerResponse (a door's direct
 * path, `writeAnswer`): the same status, headers and body either way.
 */
export interface RestAnswer {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string | Uint8Array;
}

/** Sibyl REST's error answer: the ErrorBody. */
export function errorAnswer(err: unknown, requestId: string): RestAnswer {
  const e = toSibylError(err);
  return errorAnswerOf(e, toJsonString(ErrorBodySchema, create(ErrorBodySchema, { code: e.code, message: e.message, requestId })), requestId);
}

/**
 * An error answer in a door's own body format: the HTTP status of the error's code, and the headers every REST
 * error carries (the request id unless undefined, `retry-after` for a code a client should retry later, `allow`
 * for a wrong method).
 */
export function errorAnswerOf(e: SibylError, body: string, requestId: string | undefined): RestAnswer {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (requestId !== undefined) headers[requestIdHeader] = requestId;
  const retry = retryAfterSeconds(e.code);
  if (retry !== undefined) headers['retry-after'] = String(retry);
  if (e.reason === 'METHOD_NOT_ALLOWED') headers['allow'] = 'POST';
  return { status: e.httpStatus, headers, body };
}

export function errorResponse(err: unknown, requestId: string): Response {
  return toResponse(errorAnswer(err, requestId));
}

export function toResponse(a: RestAnswer): Response {
  return new Response(a.body as ConstructorParameters<typeof Response>[0], { status: a.status, headers: a.headers });
}

/**
 * A door's direct path: writes the answer once it is ready (`onError`'s for a handler that failed). Should writing
 * it fail, `onError`'s answer for that error goes instead while nothing is sent yet, else the connection is reset:
 * never an unhandled rejection.
 */
export function answerDirect(res: ServerResponse, answer: Promise<RestAnswer>, onError: (err: unknown) => RestAnswer): void {
  answer
    .catch(onError)
    .then((a) => writeAnswer(res, a))
    .catch((err: unknown) => {
      const a = onError(err);
      if (res.headersSent) res.destroy();
      else writeAnswer(res, a);
    })
    .catch(() => res.destroy());
}

/** Writes the answer as @hono/node-server writes the same Response: its status and headers, a Content-Length, the body. */
export function writeAnswer(res: ServerResponse, a: RestAnswer): void {
  a.headers['Content-Length'] = String(typeof a.body === 'string' ? Buffer.byteLength(a.body) : a.body.byteLength);
  res.writeHead(a.status, a.headers);
  res.end(a.body);
}

/** What a REST door tells the entry of a request before its body is read: when, where, and the trace headers. */
export function httpArrival(transport: 'rest' | 'oip-rest', req: HttpIn, endpoint: Endpoint, path: string): Arrival {
  return {
    transport,
    startMs: performance.now(),
    endpoint,
    path,
    requestId: req.header(requestIdHeader),
    traceparent: req.header('traceparent'),
    tracestate: req.header('tracestate'),
    cancelled: req.cancelled,
  };
}
