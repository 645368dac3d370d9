/** Bundles over the ONNX graphs in test/fixtures/onnx (built by test/fixtures/onnx/build.py). */
import { cp, mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { ModelBundle } from '../../runtimes/contract.ts';
import { parseManifest } from '../../runtimes/manifest.ts';

export const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/onnx');

export function bundle(manifest: object, dir: string): ModelBundle {
  return { manifest: parseManifest(JSON.stringify(manifest)), dir, hash: 'test' };
}

/** A copy of a fixture directory in a fresh temporary directory (for tests that add links or files). */
export async function copyFixture(name: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sibyl-onnx-'));
  await cp(path.join(FIXTURES, name), dir, { recursive: true });
  return dir;
}

const float = (name: string, def = 0) => ({ name, dtype: 'float32', source: 'request', default: def });

/** linear/model.onnx: x float32 [N,3] -> y = a + 2b + 3c + 0.5 ([N,1]), doubled = 2x ([N,3]). */
export function linearManifest(overrides: Record<string, unknown> = {}) {
  return {
    name: 'linear',
    version: '1',
    runtime: 'onnx',
    features: [float('a'), float('b'), float('c', 1)],
    onnx: {
      file: 'model.onnx',
      inputs: [{ name: 'x', dtype: 'float32', features: ['a', 'b', 'c'] }],
      outputs: [{ name: 'y', as: 'score' }, { name: 'doubled', kind: 'vector' }],
      ...overrides,
    },
  };
}

export const linearDir = path.join(FIXTURES, 'linear');

export function linearExpected(a: number, b: number, c: number) {
  return { score: a + 2 * b + 3 * c + 0.5, doubled: [2 * a, 2 * b, 2 * c] };
}

/** mixed/model.onnx: one input of each dtype; see build.py. */
export function mixedManifest(overrides: Record<string, unknown> = {}) {
  return {
    name: 'mixed',
    version: '1',
    runtime: 'onnx',
    features: [
      { name: 'price', dtype: 'float64', source: 'request', default: 0 },
      { name: 'promo', dtype: 'bool', source: 'request', default: false },
      { name: 'count', dtype: 'int64', source: 'request', default: 7 },
      { name: 'rank', dtype: 'int32', source: 'request', default: 0 },
      { name: 'city', dtype: 'string', source: 'request', default: 'none' },
      { name: 'member', dtype: 'bool', source: 'request', default: false },
    ],
    onnx: {
      file: 'model.onnx',
      inputs: [
        { name: 'num', dtype: 'float64', features: ['price', 'promo'] },
        { name: 'cnt', dtype: 'int64', features: ['count'] },
        { name: 'small', dtype: 'int32', features: ['rank'] },
        { name: 'tag', dtype: 'string', features: ['city'] },
        { name: 'flag', dtype: 'bool', features: ['member'] },
      ],
      outputs: [
        { name: 'total' },
        { name: 'cnt2', as: 'count2' },
        { name: 'small1', as: 'rank1' },
        { name: 'tag_out', as: 'city' },
        { name: 'flag_not', as: 'not_member' },
      ],
      ...overrides,
    },
  };
}

export const mixedDir = path.join(FIXTURES, 'mixed');
