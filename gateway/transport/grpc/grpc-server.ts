/** The gRPC front door: Sibyl's PredictionService, the OIP GRPCInferenceService, grpc.health.v1 and reflection. */
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation } from 'grpc-health-check';
import { fileURLToPath } from 'node:url';
import type { Pipeline } from '../../pipeline/pipeline.ts';
import type { AdmissionControl } from '../../pipeline/admission.ts';
import type { RouteTableRef } from '../../routing/route-table.ts';
import type { OipHealth } from '../oip/oip-rest.ts';
import { addOipService } from './oip-grpc.ts';
import { addSibylService } from './sibyl-grpc.ts';

const PROTO_ROOT = fileURLToPath(new URL('../../../proto', import.meta.url));
const SERVICES = ['sibyl.v1.PredictionService', 'inference.GRPCInferenceService'];

export interface GrpcServer {
  readonly server: grpc.Server;
  /** Sets every service's health status (SERVING while ready). */
  setServing(serving: boolean): void;
}

export function createGrpcServer(deps: {
  pipeline: Pipeline;
  routes: RouteTableRef;
  health: OipHealth;
  limits: { maxBodyBytes: number; requestTimeoutMs: number; admission: AdmissionControl };
}): GrpcServer {
  const server = new grpc.Server({
    // Our own limit is checked per message (INVALID_ARGUMENT); this is the transport's hard ceiling.
    'grpc.max_receive_message_length': Math.max(deps.limits.maxBodyBytes * 4, 4 << 20),
    'grpc.keepalive_permit_without_calls': 1,
  });
  addSibylService(server, deps.pipeline, deps.limits);
  addOipService(server, deps.pipeline, deps.routes, deps.health, deps.limits);

  const health = new HealthImplementation(Object.fromEntries(['', ...SERVICES].map((s) => [s, 'NOT_SERVING' as const])));
  health.addToServer(server);

  // Reflection (both protocol versions) from the same .proto files the code is generated from.
  const definition = loadSync(['sibyl/v1/predict.proto', 'inference/open_inference_grpc.proto'], { includeDirs: [PROTO_ROOT] });
  new ReflectionService(definition).addToServer(server);

  return {
    server,
    setServing(serving) {
      for (const s of ['', ...SERVICES]) health.setStatus(s, serving ? 'SERVING' : 'NOT_SERVING');
    },
  };
}
