/** Writes a models directory as the packaged bundles the function reads at init (lambda/packaged-source.ts). */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { toJsonString } from '@bufbuild/protobuf';
import { CellStateSchema } from '../../proto/gen/sibyl/v1/deployment_pb.js';
import { readModelsDir } from '../../runtimes/bundle/models-dir.ts';
import { PACKAGED_STATE } from '../packaged-source.ts';

/**
 * Reads `modelsDir` as the gateway does without a tower (runtimes/bundle/models-dir.ts: the CellState, each version
 * named by the sha256 of its deterministic zip) and writes `outDir/state.json` and one `{sha256}.zip` per version.
 * Throws an Error naming the file when a manifest or deployment.yaml is invalid. Resolves with `name/version` of each.
 */
export async function packageBundles(modelsDir: string, cell: string, outDir: string): Promise<string[]> {
  const read = await readModelsDir(modelsDir, cell);
  await mkdir(outDir, { recursive: true });
  for (const [sha, bundle] of read.bundles) await writeFile(join(outDir, `${sha}.zip`), bundle.zip);
  await writeFile(join(outDir, PACKAGED_STATE), toJsonString(CellStateSchema, read.state, { prettySpaces: 2 }));
  return read.state.models.flatMap((m) => m.versions.map((v) => `${m.name}/${v.version}`));
}
