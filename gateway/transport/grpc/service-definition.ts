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
      responseSerialize: (msg: unknown) => asBuffer(toBinary(m.output, msg as MessageShape<DescMessage>)),
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
  /** Milliseconds until the client's deadline; undefined without one. */
  readonly timeoutMs: number | undefined;
  readonly requestId: string | undefined;
  /** The caller's W3C trace context, from the `traceparent` and `tracestate` metadata. */
  readonly traceparent: string | undefined;
  readonly tracestate: string | undefined;
  readonly metadata: grpc.Metadata;
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

/**
 * A prediction RPC (`method` of `service`) as a codec over the pipeline's one entry: the entry admits the call,
 * then `parse` decodes the message (so a refused call is never decoded, and one that fails to decode is counted
 * like any request); `encode` builds the answer from the output and the decoded message.
 */
export function predictUnary<M extends DescMethod, O>(
  service: DescService,
  method: M,
  maxBytes: number,
  pipeline: Pipeline,
  transport: Transport,
  parse: (req: MessageShape<M['input']>, ctx: UnaryContext) => ParsedRequest,
  encode: (out: PredictOutput, req: MessageShape<M['input']>) => O,
): grpc.handleUnaryCall<Buffer, O> {
  const endpoint = grpcEndpoint(service.typeName, method.name);
  const input: M['input'] = method.input;
  return function handlePredict(call, callback) {
    const ctx = contextOf(call);
    let req: MessageShape<M['input']> | undefined;
    void pipeline
      .predict(
        { transport, startMs: performance.now(), endpoint, requestId: ctx.requestId, traceparent: ctx.traceparent, tracestate: ctx.tracestate },
        () => parse((req = decode<M['input']>(input, call.request, maxBytes)), ctx),
      )
      .then((outcome) => {
        if (outcome.error) return fail(callback, outcome.error, outcome.requestId);
        let res: O;
        try {
          res = encode(outcome.output, req!);
        } catch (err) {
          return fail(callback, toSibylError(err), outcome.requestId);
        }
        callback(null, res, trailers(outcome.requestId, undefined));
      });
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
  const deadline = call.getDeadline();
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  const timeoutMs = Number.isFinite(at) ? Math.max(1, at - Date.now()) : undefined;
  const rid = call.metadata.get('x-request-id')[0];
  const tp = call.metadata.get('traceparent')[0];
  const ts = tp === undefined ? undefined : call.metadata.get('tracestate')[0];
  return {
    timeoutMs,
    requestId: typeof rid === 'string' ? rid : undefined,
    traceparent: typeof tp === 'string' ? tp : undefined,
    tracestate: typeof ts === 'string' ? ts : undefined,
    metadata: call.metadata,
  };
}

/**
 * A prediction's trailers: its request id (`x-request-id`, as REST's header), and for a refusal the client's retry
 * pushback (`grpc-retry-pushback-ms`, gRFC A6: what gRPC clients with a retry policy wait before trying again; REST
 * says it with `retry-after`, from the same `retryAfterSeconds`).
 */
function trailers(requestId: string, e: SibylError | undefined): grpc.Metadata {
  const md = new Metadata();
  if (requestId) md.set('x-request-id', requestId);
  const retry = e && retryAfterSeconds(e.code);
  if (retry !== undefined) md.set('grpc-retry-pushback-ms', String(retry * 1000));
  return md;
}

function fail(callback: grpc.sendUnaryData<never>, e: SibylError, requestId?: string): void {
  callback(requestId === undefined ? { code: e.grpcCode, details: e.message } : { code: e.grpcCode, details: e.message, metadata: trailers(requestId, e) });
}
