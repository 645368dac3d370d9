/**
 * The gateway's REST API as an OpenAPI 3.1 document, served at `GET /openapi.json` (rest-app.ts) and committed as
 * `schemas/gateway.openapi.json` (`npm run gen:schemas`; test/contracts/schemas.test.ts fails when it is stale).
 *
 * Each operation names the schema its handler runs: Sibyl's predictions are the ProtoJSON of the sibyl.v1 messages
 * that sibyl-rest.ts decodes with `fromJson` and encodes with `toJsonString`; the Open Inference Protocol's bodies
 * are the zod schemas of oip/oip-rest-schemas.ts that oip-rest.ts parses with and types its answers by; health and
 * shadows are rest-schemas.ts. test/contracts/openapi.test.ts checks that every route of the app is listed here and
 * validates real answers against the document.
 */
import { z } from 'zod';
import { openApiDocument, type JsonSchema, type OperationSpec, type ParameterSpec, type ResponseSpec } from '../../core/openapi.ts';
import { ErrorBodySchema, PredictRequestSchema, PredictResponseSchema } from '../../proto/gen/sibyl/v1/predict_pb.js';
import { InferRequest, InferResponse, ModelMetadata, ModelReady, OipError, ServerMetadata } from './oip/oip-rest-schemas.ts';
import { SERVER_VERSION } from './oip/metadata.ts';
import { requestIdHeader, timeoutHeaderName } from './rest-common.ts';
import { Live, Ready, ShadowPairs } from './rest-schemas.ts';

const model: ParameterSpec = { name: 'model', in: 'path', description: "the model's name" };
const version: ParameterSpec = { name: 'version', in: 'path', description: 'a version or an alias' };
const headers: ParameterSpec[] = [
  { name: requestIdHeader, in: 'header', description: 'the request id (a body `requestId` / `id` wins); generated when absent' },
  { name: timeoutHeaderName, in: 'header', description: 'a shorter deadline than the gateway default, milliseconds', schema: z.string().regex(/^[0-9]+(\.[0-9]+)?$/) },
  { name: 'traceparent', in: 'header', description: 'W3C trace context' },
];
const requestIdOut = { [requestIdHeader]: { description: 'the request id' } };
const retryAfter = { 'retry-after': { description: 'seconds to wait before retrying (429 only)' } };

const sibylError: ResponseSpec = { description: 'an error: the HTTP status of its code (core/errors.ts)', headers: { ...requestIdOut, ...retryAfter }, content: { 'application/json': ErrorBodySchema } };
const oipError: ResponseSpec = { description: 'an error: the HTTP status of its code (core/errors.ts)', headers: retryAfter, content: { 'application/json': OipError } };
const json = (description: string, schema: z.ZodType): ResponseSpec => ({ description, content: { 'application/json': schema } });
const binaryBody: JsonSchema = {
  type: 'string',
  contentMediaType: 'application/octet-stream',
  description: 'binary tensor data extension: the JSON header (its length in inference-header-content-length), then the raw tensors',
};

function predict(path: string, operationId: string, parameters: ParameterSpec[]): OperationSpec {
  return {
    method: 'post',
    path,
    operationId,
    tags: ['sibyl'],
    summary: 'Predict with a model (the default version, a split arm, or the version or alias named)',
    description: 'model and version come from the path (a body that names others is refused); `routingKey` keeps a caller in one split arm.',
    parameters: [...parameters, ...headers],
    requestBody: { content: { 'application/json': PredictRequestSchema } },
    responses: { '200': { description: 'one result per row, in order', headers: requestIdOut, content: { 'application/json': PredictResponseSchema } }, default: sibylError },
  };
}

function infer(path: string, operationId: string, parameters: ParameterSpec[]): OperationSpec {
  return {
    method: 'post',
    path,
    operationId,
    tags: ['open-inference-protocol'],
    summary: 'Inference (Open Inference Protocol v2)',
    parameters: [
      ...parameters,
      ...headers,
      { name: 'inference-header-content-length', in: 'header', description: 'binary tensor data extension: the length of the JSON part' },
      { name: 'content-encoding', in: 'header', description: 'gzip or deflate', schema: z.enum(['gzip', 'deflate', 'identity']) },
    ],
    requestBody: { content: { 'application/json': InferRequest, 'application/octet-stream': { raw: binaryBody } } },
    responses: {
      '200': { description: 'the outputs', headers: requestIdOut, content: { 'application/json': InferResponse, 'application/octet-stream': { raw: binaryBody } } },
      default: oipError,
    },
  };
}

const get = (path: string, operationId: string, tag: string, summary: string, responses: Record<string, ResponseSpec>, parameters?: ParameterSpec[]): OperationSpec => ({
  method: 'get',
  path,
  operationId,
  tags: [tag],
  summary,
  ...(parameters ? { parameters } : {}),
  responses,
});

export const GATEWAY_OPERATIONS: readonly OperationSpec[] = [
  predict('/v1/models/{model}:predict', 'predict', [model]),
  predict('/v1/models/{model}/versions/{version}:predict', 'predictVersion', [model, version]),
  get('/v1/shadows', 'shadows', 'sibyl', "This gateway's live-versus-shadow comparison, per (live, shadow) pair", { '200': json('the pairs', ShadowPairs) }),
  get('/healthz', 'live', 'operations', 'Liveness', { '200': json('live', Live), '503': json('not live', Live) }),
  get('/readyz', 'ready', 'operations', 'Readiness: a route table is loaded and the gateway is not draining', { '200': json('ready', Ready), '503': json('not ready', Ready) }),
  get('/metrics', 'metrics', 'operations', 'Prometheus metrics', { '200': { description: 'the text exposition format', content: { 'text/plain': { raw: { type: 'string' } } } } }),
  get('/openapi.json', 'openapi', 'operations', 'This document', { '200': { description: 'OpenAPI 3.1', content: { 'application/json': { raw: { type: 'object' } } } } }),
  get('/v2/health/live', 'oipLive', 'open-inference-protocol', 'Server liveness', { '200': json('live', Live), '503': json('not live', Live) }),
  get('/v2/health/ready', 'oipReady', 'open-inference-protocol', 'Server readiness', { '200': json('ready', Ready), '503': json('not ready', Ready) }),
  get('/v2', 'oipServerMetadata', 'open-inference-protocol', 'Server metadata', { '200': json('name, version, extensions', ServerMetadata) }),
  get('/v2/models/{model}', 'oipModelMetadata', 'open-inference-protocol', "Model metadata (the default version's tensors)", { '200': json('metadata', ModelMetadata), default: oipError }, [model]),
  get('/v2/models/{model}/versions/{version}', 'oipModelVersionMetadata', 'open-inference-protocol', 'Model version metadata', { '200': json('metadata', ModelMetadata), default: oipError }, [model, version]),
  get('/v2/models/{model}/ready', 'oipModelReady', 'open-inference-protocol', 'Model readiness', { '200': json('ready', ModelReady), default: oipError }, [model]),
  get('/v2/models/{model}/versions/{version}/ready', 'oipModelVersionReady', 'open-inference-protocol', 'Model version readiness', { '200': json('ready', ModelReady), default: oipError }, [model, version]),
  infer('/v2/models/{model}/infer', 'oipInfer', [model]),
  infer('/v2/models/{model}/versions/{version}/infer', 'oipInferVersion', [model, version]),
];

export function gatewayOpenApi(): JsonSchema {
  return openApiDocument({
    title: 'Sibyl gateway',
    version: SERVER_VERSION,
    description:
      'Predictions over REST: Sibyl\'s own API (the ProtoJSON of proto/sibyl/v1/predict.proto; the same messages over gRPC as sibyl.v1.PredictionService) and the Open Inference Protocol v2 (KServe, Triton, Seldon clients). Generated from the schemas the handlers use.',
    tags: [
      { name: 'sibyl', description: "Sibyl's own API" },
      { name: 'open-inference-protocol', description: 'Open Inference Protocol v2, REST' },
      { name: 'operations', description: 'health, metrics, this document' },
    ],
    operations: GATEWAY_OPERATIONS,
  });
}
