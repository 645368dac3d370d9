/** Sibyl gRPC: `sibyl.v1.PredictionService/Predict`, the binary form of the same messages Sibyl REST speaks. */
import type * as grpc from '@grpc/grpc-js';
import { PredictionService } from '../../../proto/gen/sibyl/v1/predict_pb.js';
import type { Pipeline } from '../../pipeline/pipeline.ts';
import { toParsedRequest, toPredictResponse } from '../sibyl-api.ts';
import { predictUnary, serviceDefinition } from './service-definition.ts';

export function addSibylService(server: grpc.Server, pipeline: Pipeline, limits: { maxBodyBytes: number }): void {
  server.addService(serviceDefinition(PredictionService), {
    predict: predictUnary(PredictionService, PredictionService.method.predict, limits.maxBodyBytes, pipeline, 'grpc', (req, call) => toParsedRequest(req, call.timeoutMs), toPredictResponse),
  });
}
