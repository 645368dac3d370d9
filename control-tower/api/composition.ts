/**
 * Upload check for composed models (the runtimes registry says which runtimes compose, and where a manifest lists
 * the models): every model a manifest names exists, and no chain of compositions leads back to its own model.
 * Edges come from every stored version's manifest (a later default switch may put any of them in play), plus the
 * manifest being uploaded.
 */
import { SibylError } from '../../core/errors.ts';
import { composedModelsOf, compositionFieldOf } from '../../runtimes/index.ts';
import type { Manifest } from '../../runtimes/manifest.ts';
import type { MetadataStore } from '../store/index.ts';

export async function checkComposition(store: MetadataStore, manifest: Manifest): Promise<void> {
  const direct = composedModelsOf(manifest);
  if (direct.length === 0) return;
  const field = compositionFieldOf(manifest);
  const edges = new Map<string, Set<string>>();
  for (const { name } of await store.listModels()) {
    const targets = new Set<string>();
    for (const v of (await store.getModel(name)).versions) {
      try {
        for (const c of composedModelsOf(v.manifest as Manifest)) targets.add(c.model);
      } catch {
        // A stored manifest always parsed at its upload; nothing to follow if it no longer does.
      }
    }
    edges.set(name, targets);
  }
  direct.forEach((c, i) => {
    if (c.model !== manifest.name && !edges.has(c.model)) {
      throw new SibylError('INVALID_ARGUMENT', `${field}.${i}.model: model "${c.model}" does not exist; upload it before the model that composes it`);
    }
  });
  edges.set(manifest.name, new Set(direct.map((c) => c.model)));
  const path = cycleFrom(manifest.name, edges);
  if (path) throw new SibylError('INVALID_ARGUMENT', `${field}: the composition has a cycle: ${path.join(' → ')}`);
}

/** A path start → … → start through `edges`, or undefined. */
function cycleFrom(start: string, edges: ReadonlyMap<string, ReadonlySet<string>>): string[] | undefined {
  const seen = new Set<string>();
  const walk = (node: string, path: string[]): string[] | undefined => {
    for (const next of edges.get(node) ?? []) {
      if (next === start) return [...path, next];
      if (seen.has(next)) continue;
      seen.add(next);
      const found = walk(next, [...path, next]);
      if (found) return found;
    }
    return undefined;
  };
  return walk(start, [start]);
}
