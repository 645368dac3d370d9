/** Sibyl gRPC: `sibyl.v1.PredictionService/Predict`, the binary form of the same messages Sibyl REST speaks. */
import type * as grpc from '@grpc/grpc-js';
import { PredictRequestSchema, PredictionService } from '../../../proto/gen/sibyl/v1/predict_pb.js';
import type { Pipeline } from '../../pipeline/pipeline.ts';
import type { AdmissionControl } from '../../pipeline/admission.ts';
import { requestContext } from '../context.ts';
import { toPredictInput, toPredictResponse } from '../sibyl-api.ts';
import { serviceDefinition, unary } from './service-definition.ts';

export function addSibylService(server: grpc.Server, pipeline: Pipeline, limits: { maxBodyBytes: number; requestTimeoutMs: number; admission: AdmissionControl }): void {
  server.addService(serviceDefinition(PredictionService), {
    predict: unary(PredictRequestSchema, limits.maxBodyBytes, async (req, call) => {
      const ctx = requestContext('grpc', req.requestId || call.requestId, limits.requestTimeoutMs, call.timeoutMs, undefined, call.traceparent);
      return toPredictResponse(await pipeline.predict(toPredictInput(req), ctx));
    }, limits.admission),
  });
}
