/**
 * First start of the local mode: publishes the bundles of a models directory (read as a cell's desired state,
 * runtimes/bundle/models-dir.ts) through the same gate as any upload, deploys them to the given cell, and applies
 * the state's defaults, aliases, splits and shadows there. Does nothing when the control tower already has models.
 */
import { publishBundle } from '../control-tower/api/upload.ts';
import type { ArtifactStore, MetadataStore } from '../control-tower/store/index.ts';
import type { UploadValidator } from '../control-tower/validation/index.ts';
import { readModelsDir } from '../runtimes/bundle/models-dir.ts';

export async function seedDemoModels(
  deps: { store: MetadataStore; artifacts: ArtifactStore; validator: UploadValidator },
  modelsDir: string,
  cell: string,
): Promise<string[]> {
  if ((await deps.store.listModels()).length > 0) return [];
  const { state, bundles } = await readModelsDir(modelsDir, cell);
  const seeded: string[] = [];
  // Models by name, each model's versions in ascending order.
  for (const m of state.models) {
    for (const v of m.versions) {
      await publishBundle(deps, { zip: bundles.get(v.bundleSha256)!.zip, cells: [cell], actor: 'seed' });
      seeded.push(`${m.name}/${v.version}`);
    }
  }
  for (const m of state.models) {
    await deps.store.setDefault(m.name, m.defaultVersion, [cell], 'seed');
    for (const [alias, version] of Object.entries(m.aliases)) await deps.store.setAlias(m.name, alias, version, [cell], 'seed');
    if (m.split.length) await deps.store.setSplit(m.name, m.split.map((a) => ({ version: a.version, weight: a.weight, ...(a.arm ? { arm: a.arm } : {}) })), [cell], 'seed');
    if (m.shadows.length) await deps.store.setShadows(m.name, m.shadows.map((s) => ({ model: s.model, version: s.version })), [cell], 'seed');
  }
  return seeded;
}
