/** Rule bundles written to fresh temporary directories for the rules runtime's tests. */
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { ModelBundle } from '../../../runtimes/contract.ts';
import { parseManifest } from '../../../runtimes/manifest.ts';

export async function ruleBundle(source: string, manifest: Record<string, unknown> = {}, file = 'rule.js'): Promise<ModelBundle> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sibyl-rule-'));
  await writeFile(path.join(dir, file), source);
  const m = {
    name: 'rule',
    version: '1',
    runtime: 'rules',
    features: [
      { name: 'a', dtype: 'float64', source: 'request', default: 0 },
      { name: 'b', dtype: 'float64', source: 'request', default: 0 },
    ],
    outputs: [{ name: 'score', dtype: 'float64' }],
    rules: { file },
    ...manifest,
  };
  return { manifest: parseManifest(JSON.stringify(m)), dir, hash: 'test' };
}

/** score = a + 2b; label = "high" above 10; parts = [a, b]. */
export const BLEND_SOURCE = `
export function predict(f, ctx) {
  const score = f.a + 2 * f.b;
  return { score, label: score > 10 ? 'high' : 'low', parts: [f.a, f.b] };
}`;

export const BLEND_OUTPUTS = [
  { name: 'score', dtype: 'float64' },
  { name: 'label', dtype: 'string' },
  { name: 'parts', kind: 'vector', dtype: 'float64' },
];

export function blendExpected(a: number, b: number) {
  const score = a + 2 * b;
  return { score, label: score > 10 ? 'high' : 'low', parts: [a, b] };
}

export const ctx = (): { signal: AbortSignal } => ({ signal: new AbortController().signal });
