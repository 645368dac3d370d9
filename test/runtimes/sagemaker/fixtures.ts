/** Manifests and bundles for the sagemaker runtime's tests (the endpoint is the fake one or moto). */
import os from 'node:os';
import type { ModelBundle } from '../../../runtimes/contract.ts';
import { validateManifest } from '../../../runtimes/manifest.ts';

const float = (name: string, def = 0) => ({ name, dtype: 'float32', source: 'request', default: def });

/** Features a, b, c (c defaults to 1); outputs score (float) and label (int). */
export function scoreManifest(sagemaker: Record<string, unknown> = {}, overrides: Record<string, unknown> = {}) {
  return {
    name: 'scorer',
    version: '1',
    runtime: 'sagemaker',
    features: [float('a'), float('b'), float('c', 1)],
    outputs: [
      { name: 'score', kind: 'scalar', dtype: 'float64' },
      { name: 'label', kind: 'scalar', dtype: 'int32' },
    ],
    sagemaker: { endpoint: 'scorer-prod', region: 'eu-west-1', contentType: 'application/json', ...sagemaker },
    ...overrides,
  };
}

export function bundle(manifest: object): ModelBundle {
  return { manifest: validateManifest(manifest), dir: os.tmpdir(), hash: 'test' };
}

export const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };
