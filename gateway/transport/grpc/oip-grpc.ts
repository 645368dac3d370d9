/**
 * The Open Inference Protocol v2 over gRPC (`inference.GRPCInferenceService`). Outputs always travel in
 * `raw_output_contents` (Triton's client reads only those); inputs may use typed contents or raw contents.
 * ModelInfer's messages are read and written directly for the common case (oip/oip-wire.ts); protobuf-es decodes
 * the rest (`parseInfer`).
 */
import type * as grpc from '@grpc/grpc-js';
import { create } from '@bufbuild/protobuf';
import {
  GRPCInferenceService,
  ModelMetadataRequestSchema,
  ModelMetadataResponseSchema,
  ModelReadyRequestSchema,
  ModelReadyResponseSchema,
  ServerLiveRequestSchema,
  ServerLiveResponseSchema,
  ServerMetadataRequestSchema,
  ServerMetadataResponseSchema,
  ServerReadyRequestSchema,
  ServerReadyResponseSchema,
  type InferParameter,
  type InferTensorContents,
  type ModelInferRequest,
  type ModelInferRequest_InferInputTensor,
} from '../../../proto/gen/inference/open_inference_grpc_pb.js';
import { SibylError } from '../../../core/errors.ts';
import type { ParsedRequest, Pipeline, PredictOutput } from '../../pipeline/pipeline.ts';
import { modelMetadata, ROUTING_KEY_PARAMETER, serverMetadata } from '../oip/metadata.ts';
import type { OipHealth } from '../oip/oip-rest.ts';
import { signatureOf } from '../oip/signature.ts';
import { inferResponseBinary, readInferRequest, type InferRequest } from '../oip/oip-wire.ts';
import { decodeRaw, rowsFromTensors, type DecodedTensor } from '../oip/tensors.ts';
import { predictMethod, serviceDefinition, unary, type PredictMethod, type UnaryContext } from './service-definition.ts';

/** Adds the service; returns its prediction method, ModelInfer (for the door's own unary path, unary-stream.ts). */
export function addOipService(server: grpc.Server, pipeline: Pipeline, health: OipHealth, limits: { maxBodyBytes: number }): PredictMethod {
  const max = limits.maxBodyBytes;
  const modelInfer = predictMethod<typeof GRPCInferenceService.method.modelInfer, InferRequest>(GRPCInferenceService, GRPCInferenceService.method.modelInfer, max, pipeline, 'oip-grpc', parseInfer, {
    read: (bytes, call) => readInferRequest(bytes, call.timeoutMs),
    write: inferResponseBinary,
  });
  server.addService(serviceDefinition(GRPCInferenceService), {
    serverLive: unary(ServerLiveRequestSchema, max, async () => create(ServerLiveResponseSchema, { live: health.live() })),
    serverReady: unary(ServerReadyRequestSchema, max, async () => create(ServerReadyResponseSchema, { ready: health.ready() })),
    serverMetadata: unary(ServerMetadataRequestSchema, max, async () => create(ServerMetadataResponseSchema, serverMetadata())),
    modelReady: unary(ModelReadyRequestSchema, max, async (req) => {
      pipeline.describe(req.name, req.version);
      return create(ModelReadyResponseSchema, { ready: true });
    }),
    modelMetadata: unary(ModelMetadataRequestSchema, max, async (req) => {
      const md = modelMetadata(pipeline.describe(req.name, req.version));
      return create(ModelMetadataResponseSchema, {
        ...md,
        inputs: md.inputs.map((t) => ({ ...t, shape: t.shape.map(BigInt) })),
        outputs: md.outputs.map((t) => ({ ...t, shape: t.shape.map(BigInt) })),
      });
    }),
    modelInfer: modelInfer.handler,
  });
  return modelInfer;
}

/** A ModelInferRequest protobuf-es decoded, for the entry (what `readInferRequest` declines comes here). */
export function parseInfer(req: ModelInferRequest, call: UnaryContext): InferRequest {
  if (req.rawInputContents.length > 0 && req.rawInputContents.length !== req.inputs.length) {
    throw new SibylError('INVALID_ARGUMENT', `raw_input_contents: ${req.rawInputContents.length} entries for ${req.inputs.length} inputs`);
  }
  const tensors = req.inputs.map((t, i) => decodeInput(t, req.rawInputContents[i]));
  return {
    model: req.modelName,
    version: req.modelVersion,
    routingKey: routingKeyParameter(req.parameters[ROUTING_KEY_PARAMETER]),
    requestId: req.id,
    timeoutMs: call.timeoutMs,
    outputs: req.outputs.map((o) => o.name),
    rows: (route, composed) => rowsFromTensors(req.modelName, signatureOf(route, composed), tensors),
  };
}

function routingKeyParameter(p: InferParameter | undefined): string {
  if (!p) return '';
  if (p.parameterChoice.case !== 'stringParam') throw new SibylError('INVALID_ARGUMENT', `parameters.${ROUTING_KEY_PARAMETER}: must be a string_param`);
  return p.parameterChoice.value;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function decodeInput(t: ModelInferRequest_InferInputTensor, raw: Uint8Array | undefined): DecodedTensor {
  const shape = t.shape.map(Number);
  const c = t.contents;
  if (raw) {
    if (c && hasElements(c)) throw new SibylError('INVALID_ARGUMENT', `input "${t.name}": both contents and raw_input_contents are set; send one`);
    return { name: t.name, datatype: t.datatype, shape, data: decodeRaw(t.name, t.datatype, raw) };
  }
  if (!c) throw new SibylError('INVALID_ARGUMENT', `input "${t.name}": no contents and no raw_input_contents`);
  let data: ArrayLike<number | string | boolean | bigint>;
  switch (t.datatype) {
    case 'FP32': data = c.fp32Contents; break;
    case 'FP64': data = c.fp64Contents; break;
    case 'INT8': case 'INT16': case 'INT32': data = c.intContents; break;
    case 'INT64': data = c.int64Contents; break;
    case 'UINT8': case 'UINT16': case 'UINT32': data = c.uintContents; break;
    case 'UINT64': data = c.uint64Contents; break;
    case 'BOOL': data = c.boolContents; break;
    case 'BYTES':
      data = c.bytesContents.map((b) => {
        try {
          return utf8.decode(b);
        } catch {
          throw new SibylError('INVALID_ARGUMENT', `input "${t.name}": BYTES element is not UTF-8`);
        }
      });
      break;
    default:
      throw new SibylError('INVALID_ARGUMENT', `input "${t.name}": datatype ${t.datatype} is not supported`);
  }
  return { name: t.name, datatype: t.datatype, shape, data };
}

/** True when any of the typed contents holds an element. */
function hasElements(c: InferTensorContents): boolean {
  return (
    c.boolContents.length + c.intContents.length + c.int64Contents.length + c.uintContents.length + c.uint64Contents.length + c.fp32Contents.length + c.fp64Contents.length + c.bytesContents.length >
    0
  );
}
