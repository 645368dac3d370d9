/** The first prediction of a freshly loaded version, before it takes traffic. */
import type { FeatureRow, LoadedModel } from '../../runtimes/contract.ts';
import { SibylError } from '../../core/errors.ts';
import type { Manifest } from '../../runtimes/manifest.ts';
import { composedModels } from '../../runtimes/rules/settings.ts';

/**
 * Predicts one row: the manifest's first test case over the features' defaults (the defaults alone when there is
 * no test case), with the test case's outputs of the models a composed rule composes. A composed rule without a
 * test case is not called (only a test case gives its models' outputs). Rejects with the runtime's SibylError, with DEADLINE_EXCEEDED after `timeoutMs` (default 10000),
 * or with INTERNAL when the model does not return exactly one row.
 */
export async function warmUp(loaded: LoadedModel, manifest: Manifest, timeoutMs = 10_000): Promise<void> {
  const first = manifest.tests[0];
  if (!first && composedModels(manifest).length > 0) return;
  const row: FeatureRow = {};
  const test = first?.features ?? {};
  for (const f of manifest.features) row[f.name] = test[f.name] ?? f.default;
  const signal = AbortSignal.timeout(timeoutMs);
  const out = await Promise.race([
    loaded.predict([row], { signal, ...(first?.models ? { models: [first.models] } : {}) }),
    new Promise<never>((_, reject) =>
      signal.addEventListener('abort', () => reject(new SibylError('DEADLINE_EXCEEDED', `warm-up prediction took more than ${timeoutMs} ms`)), { once: true }),
    ),
  ]);
  if (out.length !== 1) throw new SibylError('INTERNAL', `warm-up prediction returned ${out.length} rows for 1`);
}
