/** The gRPC front door: Sibyl's PredictionService, the OIP GRPCInferenceService, grpc.health.v1 and reflection. */
import * as grpc from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import { toBinary, type DescFile } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema } from '@bufbuild/protobuf/wkt';
import { file_sibyl_v1_predict } from '../../../proto/gen/sibyl/v1/predict_pb.js';
import { file_inference_open_inference_grpc } from '../../../proto/gen/inference/open_inference_grpc_pb.js';
import { file_grpc_health_v1_health } from '../../../proto/gen/grpc/health/v1/health_pb.js';
import type { Pipeline } from '../../pipeline/pipeline.ts';
import type { OipHealth } from '../oip/oip-rest.ts';
import { addOipService } from './oip-grpc.ts';
import { addSibylService } from './sibyl-grpc.ts';
import { HealthService } from './health-service.ts';
import { answerOnStreams } from './unary-stream.ts';

const SERVICES = ['sibyl.v1.PredictionService', 'inference.GRPCInferenceService'];

export interface GrpcServer {
  readonly server: grpc.Server;
  /** True when the prediction calls are answered on their streams (unary-stream.ts), false when grpc-js runs them. */
  readonly ownUnaryPath: boolean;
  /** Sets every service's health status (SERVING while ready). */
  setServing(serving: boolean): void;
  /**
   * Stops accepting, refuses new calls on open connections (GOAWAY), ends health Watch streams, and resolves when
   * the calls in flight have finished and every connection has closed.
   */
  drain(): Promise<void>;
}

export function createGrpcServer(deps: {
  pipeline: Pipeline;
  health: OipHealth;
  limits: { maxBodyBytes: number };
}): GrpcServer {
  // Our own limit is checked per message (INVALID_ARGUMENT); this is the transport's hard ceiling.
  const maxReceive = Math.max(deps.limits.maxBodyBytes * 4, 4 << 20);
  const server = new grpc.Server({
    'grpc.max_receive_message_length': maxReceive,
    'grpc.keepalive_permit_without_calls': 1,
    // Channelz keeps per-call and per-connection counters, timestamps and closures for a channelz service that the
    // gateway does not serve; grpc-js enables it unless told (gateway/transport/grpc/README.md, "Where the time goes").
    'grpc.enable_channelz': 0,
  });
  const predict = addSibylService(server, deps.pipeline, deps.limits);
  const modelInfer = addOipService(server, deps.pipeline, deps.health, deps.limits);
  // The prediction calls on their streams, past grpc-js's per-call machinery (channelz off is what makes grpc-js
  // use the stream handler this wraps), asking admission's fast path without the turn bound: one read of an HTTP/2
  // connection hands the loop many calls at once.
  const ownUnaryPath = answerOnStreams(server, [predict, modelInfer], maxReceive, () => deps.pipeline.refuseEarly(false));

  const healthService = new HealthService(['', ...SERVICES], 'NOT_SERVING');
  healthService.addToServer(server);

  // Reflection (both protocol versions). The descriptors come from the generated code (exact, with their
  // dependencies); proto-loader's own re-encoding misnames map entries, which breaks grpcurl.
  const files = [...descriptorClosure([file_sibyl_v1_predict, file_inference_open_inference_grpc, file_grpc_health_v1_health])].map((f) =>
    toBinary(FileDescriptorProtoSchema, f.proto),
  );
  const definition = { sibyl: { fileDescriptorProtos: files } } as unknown as ConstructorParameters<typeof ReflectionService>[0];
  new ReflectionService(definition).addToServer(server);

  return {
    server,
    ownUnaryPath,
    setServing(serving) {
      for (const s of ['', ...SERVICES]) healthService.setStatus(s, serving ? 'SERVING' : 'NOT_SERVING');
    },
    drain() {
      const closed = new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
      healthService.close();
      return closed;
    },
  };
}

/** The files and everything they import, dependencies first. */
function descriptorClosure(files: readonly DescFile[], seen = new Set<DescFile>()): Set<DescFile> {
  for (const f of files) {
    if (seen.has(f)) continue;
    descriptorClosure(f.dependencies, seen);
    seen.add(f);
  }
  return seen;
}
