/**
 * grpc-js service definitions from protobuf-es descriptors (protobuf-es generates no transport). Requests arrive
 * as raw bytes and are decoded by `unary`, so that a malformed message is INVALID_ARGUMENT, not grpc-js's INTERNAL.
 */
import type * as grpc from '@grpc/grpc-js';
import { fromBinary, toBinary, type DescMessage, type DescService, type MessageShape } from '@bufbuild/protobuf';
import { SibylError, toSibylError } from '../../../core/errors.ts';
import type { AdmissionControl } from '../../pipeline/admission.ts';

export function serviceDefinition(service: DescService): grpc.ServiceDefinition {
  const def: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const m of service.methods) {
    def[m.localName] = {
      path: `/${service.typeName}/${m.name}`,
      requestStream: false,
      responseStream: false,
      requestSerialize: (msg: unknown) => Buffer.from(toBinary(m.input, msg as MessageShape<DescMessage>)),
      requestDeserialize: (buf: Buffer) => buf,
      responseSerialize: (msg: unknown) => Buffer.from(toBinary(m.output, msg as MessageShape<DescMessage>)),
      responseDeserialize: (buf: Buffer) => fromBinary(m.output, buf),
    };
  }
  return def;
}

export interface UnaryContext {
  /** Milliseconds until the client's deadline; undefined without one. */
  readonly timeoutMs: number | undefined;
  readonly requestId: string | undefined;
  /** The caller's W3C trace context, from the `traceparent` metadata. */
  readonly traceparent: string | undefined;
  readonly metadata: grpc.Metadata;
}

/**
 * Wraps a handler of decoded messages as a grpc-js unary handler. Errors become gRPC statuses with the code of
 * their SibylError and its message; causes stay in the logs.
 */
export function unary<I extends DescMessage, O>(
  input: I,
  maxBytes: number,
  handler: (req: MessageShape<I>, ctx: UnaryContext) => Promise<O>,
  admission?: AdmissionControl,
): grpc.handleUnaryCall<Buffer, O> {
  return function handleUnary(call, callback) {
    const bytes = call.request;
    let req: MessageShape<I>;
    try {
      admission?.admit();
    } catch (err) {
      callback({ code: (err as SibylError).grpcCode, details: (err as SibylError).message });
      return;
    }
    try {
      if (bytes.byteLength > maxBytes) throw new SibylError('INVALID_ARGUMENT', `request message of ${bytes.byteLength} bytes exceeds the limit of ${maxBytes} bytes`);
      try {
        req = fromBinary(input, bytes);
      } catch (err) {
        throw new SibylError('INVALID_ARGUMENT', `invalid request: ${(err as Error).message}`);
      }
    } catch (err) {
      admission?.release();
      fail(toSibylError(err));
      return;
    }
    const deadline = call.getDeadline();
    const at = deadline instanceof Date ? deadline.getTime() : deadline;
    const timeoutMs = Number.isFinite(at) ? Math.max(1, at - Date.now()) : undefined;
    const rid = call.metadata.get('x-request-id')[0];
    const tp = call.metadata.get('traceparent')[0];
    const ctx = { timeoutMs, requestId: typeof rid === 'string' ? rid : undefined, traceparent: typeof tp === 'string' ? tp : undefined, metadata: call.metadata };
    handler(req, ctx).then(
      (res) => {
        admission?.release();
        callback(null, res);
      },
      (err: unknown) => {
        admission?.release();
        fail(toSibylError(err));
      },
    );

    function fail(e: SibylError): void {
      callback({ code: e.grpcCode, details: e.message });
    }
  };
}
