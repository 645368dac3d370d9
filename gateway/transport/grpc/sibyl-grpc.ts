/** Sibyl gRPC: `sibyl.v1.PredictionService/Predict`, the binary form of the same messages Sibyl REST speaks. */
import type * as grpc from '@grpc/grpc-js';
import { PredictionService } from '../../../proto/gen/sibyl/v1/predict_pb.js';
import type { Pipeline } from '../../pipeline/pipeline.ts';
import { predictResponseBinary, readPredictRequest, toParsedRequest } from '../sibyl-api.ts';
import { predictMethod, serviceDefinition, type PredictMethod } from './service-definition.ts';

/** Adds the service; returns its prediction method (for the door's own unary path, unary-stream.ts). */
export function addSibylService(server: grpc.Server, pipeline: Pipeline, limits: { maxBodyBytes: number }): PredictMethod {
  const predict = predictMethod(PredictionService, PredictionService.method.predict, limits.maxBodyBytes, pipeline, 'grpc', (req, call) => toParsedRequest(req, call.timeoutMs), {
    read: (bytes, call) => readPredictRequest(bytes, call.timeoutMs),
    write: predictResponseBinary,
  });
  server.addService(serviceDefinition(PredictionService), { predict: predict.handler });
  return predict;
}
