/**
 * The JSON bodies of the Open Inference Protocol over REST (the kserve/open-inference-protocol REST spec), as the
 * handlers in oip-rest.ts read and write them: the infer request is parsed with `InferRequest`; every answer is
 * typed by its schema (`satisfies z.input<...>`), so the compiler holds the handlers to it. The OpenAPI document
 * (../openapi.ts) is generated from these.
 *
 * Tensor elements: a flat array of numbers, strings or booleans is checked here; nested arrays (row-major, as some
 * clients send) are checked element by element after flattening (oip-rest.ts), since a recursive schema cost
 * ~15x the hand check on a 1000x20 tensor (measured: 25 ms against 1.7 ms).
 */
import { z } from 'zod';
import { Code } from '../../../core/errors.ts';

const Parameters = z.record(z.string(), z.union([z.boolean(), z.number(), z.string()])).meta({ id: 'oip.Parameters' });

/**
 * A JSON number. Not z.number(): that refuses the infinities JSON.parse makes of 1e999, which the tensor decoder
 * refuses later with the element's dtype and range in the message.
 */
const JsonNumber = z.custom<number>((v) => typeof v === 'number').meta({ type: 'number' });
const Element = z.union([JsonNumber, z.string(), z.boolean()]);

/** Elements are checked by type here, and against the input's datatype when the rows are built (tensors.ts). */
const FlatData = z.union([z.array(Element), z.array(z.array(z.unknown()))], {
  error: 'must be an array of numbers, strings or booleans (flat, or nested row-major)',
});

export const InferInputTensor = z
  .object({
    name: z.string({ error: 'must be a non-empty string' }).min(1, { error: 'must be a non-empty string' }),
    datatype: z.string({ error: 'must be a string such as "FP32"' }),
    shape: z.array(z.number().int().nonnegative(), { error: 'must be an array of non-negative integers' }),
    parameters: Parameters.optional(),
    /** Absent when the elements are in the binary part (`parameters.binary_data_size`). */
    data: FlatData.optional(),
  })
  .meta({ id: 'oip.InferInputTensor' });

export const RequestedOutput = z
  .object({ name: z.string({ error: 'must be a string' }), parameters: Parameters.optional() })
  .meta({ id: 'oip.RequestedOutput', description: 'An output to return; `parameters.binary_data: true` asks for it in the binary part.' });

export const InferRequest = z
  .object({
    id: z.string({ error: 'must be a string' }).optional(),
    parameters: Parameters.optional(),
    inputs: z.array(InferInputTensor, { error: 'must be an array of tensors' }),
    outputs: z.array(RequestedOutput, { error: 'must be an array' }).optional(),
  })
  .meta({
    id: 'oip.InferRequest',
    description:
      'Parameters Sibyl reads: sibyl_routing_key (string, a sticky split arm), binary_data_output (boolean). A model with store features takes its entity ids as BYTES inputs.',
  });

const OutputTensor = z
  .object({
    name: z.string(),
    datatype: z.string(),
    shape: z.array(z.number().int().nonnegative()),
    parameters: Parameters.optional(),
    data: z.array(z.union([z.number(), z.string(), z.boolean()])).optional(),
  })
  .meta({ id: 'oip.InferOutputTensor' });

export const InferResponse = z
  .object({
    model_name: z.string(),
    model_version: z.string().optional(),
    id: z.string().optional(),
    parameters: Parameters.optional(),
    outputs: z.array(OutputTensor),
  })
  .meta({ id: 'oip.InferResponse', description: 'parameters.sibyl_defaulted_features lists features that fell back to their defaults.' });

export const ServerMetadata = z.object({ name: z.string(), version: z.string(), extensions: z.array(z.string()) }).meta({ id: 'oip.ServerMetadata' });

const TensorMetadata = z
  .object({ name: z.string(), datatype: z.string(), shape: z.array(z.number().int().min(-1)) })
  .meta({ id: 'oip.TensorMetadata', description: 'A dimension of -1 is variable (the rows).' });

export const ModelMetadata = z
  .object({ name: z.string(), versions: z.array(z.string()).optional(), platform: z.string(), inputs: z.array(TensorMetadata), outputs: z.array(TensorMetadata) })
  .meta({ id: 'oip.ModelMetadata' });

export const ModelReady = z.object({ name: z.string(), ready: z.boolean() }).meta({ id: 'oip.ModelReady' });

export const Live = z.object({ live: z.boolean() }).meta({ id: 'Live' });
export const Ready = z.object({ ready: z.boolean() }).meta({ id: 'Ready' });

export const OipError = z
  .object({ error: z.string(), code: z.enum(Object.keys(Code) as [keyof typeof Code, ...(keyof typeof Code)[]]) })
  .meta({ id: 'oip.Error', description: 'With the HTTP status of the code (core/errors.ts).' });
