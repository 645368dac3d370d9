/**
 * grpc-js service definitions from protobuf-es descriptors (protobuf-es generates no transport). Requests arrive
 * as raw bytes and are decoded by `unary`, so that a malformed message is INVALID_ARGUMENT, not grpc-js's INTERNAL.
 */
import type * as grpc from '@grpc/grpc-js';
import { Metadata } from '@grpc/grpc-js';
import { fromBinary, toBinary, type DescMessage, type DescMethod, type DescService, type MessageShape } from '@bufbuild/protobuf';
import { retryAfterSeconds, SibylError, toSibylError } from '../../../core/errors.ts';
import type { ParsedRequest, Pipeline, PredictOutput, Transport } from '../../pipeline/pipeline.ts';
import { grpcEndpoint } from '../../telemetry/endpoint.ts';

export function serviceDefinition(service: DescService): grpc.ServiceDefinition {
  const def: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const m of service.methods) {
    def[m.localName] = {
      path: `/${service.typeName}/${m.name}`,
      requestStream: false,
      responseStream: false,
      requestSerialize: (msg: unknown) => Buffer.from(toBinary(m.input, msg as MessageShape<DescMessage>)),
      requestDeserialize: (buf: Buffer) => buf,
      // A prediction method's handler hands over the reply already encoded (PredictMethod); others a message.
      responseSerialize: (msg: unknown) => asBuffer(msg instanceof Uint8Array ? msg : toBinary(m.output, msg as MessageShape<DescMessage>)),
      responseDeserialize: (buf: Buffer) => fromBinary(m.output, buf),
    };
  }
  return def;
}

/** The encoded bytes as a Buffer over the same memory (toBinary returns a fresh array; grpc-js copies it into its frame). */
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export interface UnaryContext {
  /** When the call arrived (performance.now()). */
  readonly startMs: number;
  /** Milliseconds until the client's deadline; undefined without one. */
  readonly timeoutMs: number | undefined;
  readonly requestId: string | undefined;
  /** The caller's W3C trace context, from the `traceparent` and `tracestate` metadata. */
  readonly traceparent: string | undefined;
  readonly tracestate: string | undefined;
  /** True once the client has cancelled the call (at its deadline, grpc-go and grpc-java do) or its connection closed. */
  readonly cancelled?: () => boolean;
}

/**
 * Wraps a handler of decoded messages as a grpc-js unary handler (metadata, readiness, health). Errors become gRPC
 * statuses with the code of their SibylError and its message; causes stay in the logs.
 */
export function unary<I extends DescMessage, O>(
  input: I,
  maxBytes: number,
  handler: (req: MessageShape<I>, ctx: UnaryContext) => Promise<O>,
): grpc.handleUnaryCall<Buffer, O> {
  return function handleUnary(call, callback) {
    let result: Promise<O>;
    try {
      result = handler(decode(input, call.request, maxBytes), contextOf(call));
    } catch (err) {
      result = Promise.reject(err);
    }
    result.then(
      (res) => callback(null, res),
      (err: unknown) => fail(callback, toSibylError(err)),
    );
  };
}

/** What a unary call answers: the encoded reply message, or the error; with the request id for its trailers. */
export type UnaryReply =
  | { readonly body: Uint8Array; readonly requestId: string; readonly error?: undefined }
  | { readonly error: SibylError; readonly requestId?: string };

/**
 * A prediction RPC: its path, and one `call` from the message's bytes and the call's context to the encoded reply.
 * grpc-js runs it (`handler`), and so does the door's own unary path on the HTTP/2 stream (unary-stream.ts); both
 * go through this one function.
 */
export interface PredictMethod {
  readonly path: string;
  /** The message's bytes (never a copy the caller changes later) to the reply; never rejects. */
  call(bytes: Buffer, ctx: UnaryContext): Promise<UnaryReply>;
  /** The same call as a grpc-js handler (the method's response serializer takes the reply's bytes as they are). */
  readonly handler: grpc.handleUnaryCall<Buffer, Uint8Array>;
}

/**
 * A door's own reading and writing of its messages: `read` gives the entry's request for the common case, or
 * undefined to have the message decoded by protobuf-es and the door's `parse`; `write` gives the answer's bytes for
 * the request, whichever way it was read.
 */
export interface WireCodec<R extends ParsedRequest> {
  read(bytes: Buffer, ctx: UnaryContext): R | undefined;
  write(out: PredictOutput, req: R): Uint8Array;
}

/**
 * A prediction RPC (`method` of `service`) as a codec over the pipeline's one entry: the entry admits the call,
 * then the message is read (`wire.read`, else decoded by protobuf-es and `parse`d: so a refused call is never
 * decoded, and one that fails to decode is counted like any request); `wire.write` writes the answer.
 */
export function predictMethod<M extends DescMethod, R extends ParsedRequest>(
  service: DescService,
  method: M,
  maxBytes: number,
  pipeline: Pipeline,
  transport: Transport,
  parse: (req: MessageShape<M['input']>, ctx: UnaryContext) => R,
  wire: WireCodec<R>,
): PredictMethod {
  const endpoint = grpcEndpoint(service.typeName, method.name);
  const input: M['input'] = method.input;
  const call = async (bytes: Buffer, ctx: UnaryContext): Promise<UnaryReply> => {
    let req: R | undefined;
    const outcome = await pipeline.predict(
      { transport, startMs: ctx.startMs, endpoint, requestId: ctx.requestId, traceparent: ctx.traceparent, tracestate: ctx.tracestate, cancelled: ctx.cancelled },
      () => (req = (bytes.byteLength <= maxBytes && wire.read(bytes, ctx)) || parse(decode<M['input']>(input, bytes, maxBytes), ctx)),
    );
    if (outcome.error) return { error: outcome.error, requestId: outcome.requestId };
    try {
      return { body: wire.write(outcome.output, req!), requestId: outcome.requestId };
    } catch (err) {
      return { error: toSibylError(err), requestId: outcome.requestId };
    }
  };
  return {
    path: `/${service.typeName}/${method.name}`,
    call,
    handler(unaryCall, callback) {
      void call(unaryCall.request, contextOf(unaryCall)).then((reply) => {
        if (reply.error) fail(callback, reply.error, reply.requestId);
        else callback(null, reply.body, trailers(reply.requestId, undefined));
      });
    },
  };
}

function decode<I extends DescMessage>(input: I, bytes: Buffer, maxBytes: number): MessageShape<I> {
  if (bytes.byteLength > maxBytes) throw new SibylError('INVALID_ARGUMENT', `request message of ${bytes.byteLength} bytes exceeds the limit of ${maxBytes} bytes (SIBYL_MAX_BODY_BYTES)`);
  try {
    return fromBinary(input, bytes);
  } catch (err) {
    throw new SibylError('INVALID_ARGUMENT', `invalid request: ${(err as Error).message}`);
  }
}

function contextOf(call: grpc.ServerUnaryCall<Buffer, unknown>): UnaryContext {
  const startMs = performance.now();
  const deadline = call.getDeadline();
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  const timeoutMs = Number.isFinite(at) ? Math.max(1, at - Date.now()) : undefined;
  const rid = call.metadata.get('x-request-id')[0];
  const tp = call.metadata.get('traceparent')[0];
  const ts = tp === undefined ? undefined : call.metadata.get('tracestate')[0];
  return {
    startMs,
    timeoutMs,
    requestId: typeof rid === 'string' ? rid : undefined,
    traceparent: typeof tp === 'string' ? tp : undefined,
    tracestate: typeof ts === 'string' ? ts : undefined,
    cancelled: () => call.cancelled,
  };
}

/**
 * A prediction's trailers: its request id (`x-request-id`, as REST's header), and for a refusal the client's retry
 * pushback (`grpc-retry-pushback-ms`, gRFC A6: what gRPC clients with a retry policy wait before trying again; REST
 * says it with `retry-after`, from the same `retryAfterSeconds`). Both unary paths send these.
 */
export function predictionTrailers(requestId: string | undefined, e: SibylError | undefined): Record<string, string> {
  const t: Record<string, string> = {};
  if (requestId) t['x-request-id'] = requestId;
  const retry = e && retryAfterSeconds(e.code);
  if (retry !== undefined) t['grpc-retry-pushback-ms'] = String(retry * 1000);
  return t;
}

function trailers(requestId: string, e: SibylError | undefined): grpc.Metadata {
  const md = new Metadata();
  for (const [k, v] of Object.entries(predictionTrailers(requestId, e))) md.set(k, v);
  return md;
}

function fail(callback: grpc.sendUnaryData<never>, e: SibylError, requestId?: string): void {
  callback(requestId === undefined ? { code: e.grpcCode, details: e.message } : { code: e.grpcCode, details: e.message, metadata: trailers(requestId, e) });
}
