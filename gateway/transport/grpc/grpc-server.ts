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

/**
 * The stream resets one HTTP/2 connection may send before the server closes it (nghttp2's limit against "rapid
 * reset" floods, CVE-2023-44487): a burst of this many, refilled at this many per second. Node's defaults, 1,000 and
 * then 33 a second, close the connection of any client that cancels calls at their deadline (grpc-go and grpc-java
 * send RST_STREAM when a deadline passes) faster than that, as every client does while the gateway is overloaded:
 * GOAWAY with INTERNAL_ERROR, and every call in flight on the connection fails INTERNAL or UNAVAILABLE. Measured with
 * grpc-go clients (loadtest/overload.ts --protocol sibyl-grpc: half a core, 4 connections, 100 ms deadlines): 2-74
 * calls INTERNAL and 1-3 UNAVAILABLE per 4 s step from 1.5x of capacity with Node's limits, none in two ramps with
 * these. A reset stream costs the gateway less than a call (34-74 µs of CPU against 68-102 µs for a call answered,
 * 5,000 of each on one connection, alternated), so a limit at the rate of calls one gateway serves keeps a reset
 * flood no dearer for the gateway than a flood of calls, which admission refuses.
 */
const STREAM_RESET_BURST = 10_000;
const STREAM_RESET_RATE = 10_000;

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
  resetLimits(server, STREAM_RESET_BURST, STREAM_RESET_RATE);
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

/**
 * Sets the HTTP/2 servers' stream-reset limit (Node's `streamResetBurst` and `streamResetRate`, which take effect only
 * together) through the options grpc-js creates its servers with, before a port is bound. grpc-js has no public
 * option for it: the field is its own (`commonServerOptions`, grpc-js 1.14), and without it the limit stays Node's;
 * test/gateway/grpc-stream-resets.test.ts fails then.
 */
function resetLimits(server: grpc.Server, burst: number, rate: number): void {
  const options = (server as unknown as { commonServerOptions?: Record<string, unknown> }).commonServerOptions;
  if (typeof options === 'object' && options !== null) Object.assign(options, { streamResetBurst: burst, streamResetRate: rate });
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
