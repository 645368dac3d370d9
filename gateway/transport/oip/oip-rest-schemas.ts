/**
 * The JSON bodies of the Open Inference Protocol over REST (the kserve/open-inference-protocol REST spec), as the
 * handlers in oip-rest.ts read and write them: the infer request is read directly when plain (`plainInferRequest`),
 * else parsed with `InferRequest`; every answer is typed by its schema (`satisfies z.input<...>`), so the compiler
 * holds the handlers to it. The OpenAPI document (../openapi.ts) is generated from these.
 *
 * Tensor elements: a flat array of numbers, strings or booleans is checked here; nested arrays (row-major, as some
 * clients send) are checked element by element after flattening (oip-rest.ts), since a recursive schema cost
 * ~15x the hand check on a 1000x20 tensor (measured: 25 ms against 1.7 ms).
 */
import { z } from 'zod';
import { Code } from '../../../core/errors.ts';
import { isJsonObject } from '../rest-common.ts';

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

/** An infer request as `InferRequest` gives it. */
export type InferRequestData = z.output<typeof InferRequest>;

/**
 * The infer request read without zod when the body is plain, as clients send it: only the fields `InferRequest`
 * names, each of the type it takes, tensor data flat; else undefined, and the door parses the body with
 * `InferRequest`, which gives the same request or the precise error. What this accepts, `InferRequest` parses to the
 * same request (test/gateway/oip-rest-codec.test.ts); the body's objects are returned as they are, no copy. zod's
 * parse costs 2.9 µs for the OIP REST benchmark's request (one FP32 tensor of 20 elements), this 0.03 µs
 * (loadtest/micro/rest-json.bench.ts).
 */
export function plainInferRequest(json: Record<string, unknown>): InferRequestData | undefined {
  for (const key in json) {
    const v = json[key];
    if (key === 'inputs') {
      if (!Array.isArray(v)) return undefined;
      for (let i = 0; i < v.length; i++) if (!plainInput(v[i])) return undefined;
    } else if (key === 'outputs') {
      if (!Array.isArray(v)) return undefined;
      for (let i = 0; i < v.length; i++) if (!plainOutput(v[i])) return undefined;
    } else if (key === 'id') {
      if (typeof v !== 'string') return undefined;
    } else if (key !== 'parameters' || !plainParameters(v)) {
      return undefined;
    }
  }
  return Array.isArray(json['inputs']) ? (json as InferRequestData) : undefined;
}

function plainInput(t: unknown): boolean {
  if (!isJsonObject(t)) return false;
  for (const key in t) {
    const v = t[key];
    if (key === 'data') {
      if (!Array.isArray(v)) return false;
      for (let i = 0; i < v.length; i++) {
        const e = typeof v[i];
        if (e !== 'number' && e !== 'string' && e !== 'boolean') return false;
      }
    } else if (key === 'shape') {
      if (!Array.isArray(v)) return false;
      for (let i = 0; i < v.length; i++) if (!Number.isSafeInteger(v[i]) || v[i] < 0) return false;
    } else if (key === 'name' || key === 'datatype') {
      if (typeof v !== 'string') return false;
    } else if (key !== 'parameters' || !plainParameters(v)) {
      return false;
    }
  }
  return typeof t['name'] === 'string' && t['name'] !== '' && typeof t['datatype'] === 'string' && Array.isArray(t['shape']);
}

function plainOutput(o: unknown): boolean {
  if (!isJsonObject(o)) return false;
  for (const key in o) {
    if (key === 'name') {
      if (typeof o[key] !== 'string') return false;
    } else if (key !== 'parameters' || !plainParameters(o[key])) {
      return false;
    }
  }
  return typeof o['name'] === 'string';
}

/** A parameters map of booleans, finite numbers and strings (zod's record leaves a `__proto__` key out: declined). */
function plainParameters(p: unknown): boolean {
  if (!isJsonObject(p) || Object.hasOwn(p, '__proto__')) return false;
  for (const key in p) {
    const v = p[key];
    const t = typeof v;
    if (t !== 'boolean' && t !== 'string' && !(t === 'number' && Number.isFinite(v))) return false;
  }
  return true;
}

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
