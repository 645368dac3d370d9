/** Server and model metadata of the Open Inference Protocol, shared by its REST and gRPC adapters. */
import type { RouteTable } from '../../routing/route-table.ts';
import { signatureOf, type TensorMetadata } from './signature.ts';

export const SERVER_NAME = 'sibyl';
export const SERVER_VERSION = '0.1.0';

export function serverMetadata(): { name: string; version: string; extensions: string[] } {
  return { name: SERVER_NAME, version: SERVER_VERSION, extensions: ['binary_tensor_data'] };
}

export interface ModelMetadata {
  name: string;
  versions: string[];
  platform: string;
  inputs: TensorMetadata[];
  outputs: TensorMetadata[];
}

/** Throws NOT_FOUND for an unknown model or version. `versions` lists every version the gateway serves. */
export function modelMetadata(table: RouteTable, model: string, version: string): ModelMetadata {
  const route = table.resolve(model, version);
  const sig = signatureOf(route);
  return {
    name: model,
    versions: [...table.model(model)!.versions.keys()],
    platform: sig.platform,
    inputs: sig.inputs.map((t) => ({ ...t, shape: [...t.shape] })),
    outputs: sig.outputs.map((t) => ({ ...t, shape: [...t.shape] })),
  };
}
