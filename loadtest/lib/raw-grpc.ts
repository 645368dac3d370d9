import type * as grpc from '@grpc/grpc-js';

const identity = (b: Buffer): Buffer => b;

/**
 * A unary method of grpc-js that carries messages as raw bytes (no protobuf on either side): for the echo baseline
 * and for test servers that must see exactly what a client sent.
 */
export function rawUnaryMethod(path: string): grpc.MethodDefinition<Buffer, Buffer> {
  return { path, requestStream: false, responseStream: false, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity };
}
