/** Server and model metadata of the Open Inference Protocol, shared by its REST and gRPC adapters. */
import type { z } from 'zod';
import { SibylError } from '../../../core/errors.ts';
import type { Described } from '../../pipeline/pipeline.ts';
import type { ModelMetadata as ModelMetadataSchema } from './oip-rest-schemas.ts';
import { signatureOf } from './signature.ts';

export const SERVER_NAME = 'sibyl';
export const SERVER_VERSION = '0.1.0';

export function serverMetadata(): { name: string; version: string; extensions: string[] } {
  return { name: SERVER_NAME, version: SERVER_VERSION, extensions: ['binary_tensor_data'] };
}

/** The metadata's JSON form (oip-rest-schemas.ts); the gRPC adapter builds its message from the same object. */
export type ModelMetadata = z.input<typeof ModelMetadataSchema>;

/** Metadata of the version `described` (pipeline.describe) names. */
export function modelMetadata(described: Described): ModelMetadata {
  const sig = signatureOf(described.route, described.composed);
  return {
    name: described.route.model,
    versions: [...described.versions],
    platform: sig.platform,
    inputs: sig.inputs.map((t) => ({ ...t, shape: [...t.shape] })),
    outputs: sig.outputs.map((t) => ({ ...t, shape: [...t.shape] })),
  };
}

/**
 * The request parameter that carries the key of a sticky traffic split (Sibyl's `routingKey`): a request that names
 * no version goes to the split's arm for this key, as over Sibyl's own API.
 */
export const ROUTING_KEY_PARAMETER = 'sibyl_routing_key';

/** The routing key of a REST request's `parameters` ('' when none). INVALID_ARGUMENT when it is not a string. */
export function routingKeyOf(parameters: unknown): string {
  if (typeof parameters !== 'object' || parameters === null) return '';
  const key = (parameters as Record<string, unknown>)[ROUTING_KEY_PARAMETER];
  if (key === undefined) return '';
  if (typeof key !== 'string') throw new SibylError('INVALID_ARGUMENT', `parameters.${ROUTING_KEY_PARAMETER}: must be a string`);
  return key;
}
