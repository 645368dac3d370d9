/**
 * First start of the local mode: publishes the demo bundles of a models directory (`<name>/<version>/` with a
 * manifest, and `deployment.yaml` with defaults and aliases) through the same gate as any upload, deploys them to
 * the given cell, and applies the defaults and aliases. Does nothing when the control tower already has models.
 */
import { compareVersions, readLocalModels } from '../gateway/bundle/local-bundles.ts';
import { publishBundle } from './api/upload.ts';
import type { ArtifactStore, MetadataStore } from './store/index.ts';
import type { UploadValidator } from './validation/index.ts';
import { zipDirectory } from './zip-dir.ts';

export async function seedDemoModels(
  deps: { store: MetadataStore; artifacts: ArtifactStore; validator: UploadValidator },
  modelsDir: string,
  cell: string,
): Promise<string[]> {
  if ((await deps.store.listModels()).length > 0) return [];
  const { bundles, deployment } = await readLocalModels(modelsDir);
  const seeded: string[] = [];
  const ordered = [...bundles].sort((a, b) => a.manifest.name.localeCompare(b.manifest.name) || compareVersions(a.manifest.version, b.manifest.version));
  for (const b of ordered) {
    await publishBundle(deps, { zip: await zipDirectory(b.dir), cells: [cell], actor: 'seed' });
    seeded.push(`${b.manifest.name}/${b.manifest.version}`);
  }
  for (const [name, d] of Object.entries(deployment.models)) {
    if (d.default) await deps.store.setDefault(name, d.default, [cell], 'seed');
    for (const [alias, version] of Object.entries(d.aliases)) await deps.store.setAlias(name, alias, version, [cell], 'seed');
    if (d.split) await deps.store.setSplit(name, d.split.map((a) => ({ version: a.version, weight: a.weight, ...(a.arm ? { arm: a.arm } : {}) })), [cell], 'seed');
    if (d.shadows.length) await deps.store.setShadows(name, d.shadows.map((s) => ({ model: s.model ?? name, version: s.version })), [cell], 'seed');
  }
  return seeded;
}
