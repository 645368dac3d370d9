/**
 * Publishing a bundle: validated (in its own process) before anything is stored, then the zip into the artifact
 * store by its hash, then the version into the metadata store, then (when asked) deployed and made the default.
 * Versions are immutable: the same name and version again with the same bytes answers the stored version
 * (`created: false`, a retried upload is safe); with other bytes ALREADY_EXISTS, and nothing is written.
 * Concurrent uploads of one name+version in this process are taken one at a time after validation, so the loser of
 * a race is refused before its bytes reach the artifact store; across processes the metadata store still lets
 * exactly one win (the loser's zip may then stay in the artifact store, unreferenced).
 */
import { SibylError } from '../../core/errors.ts';
import { checkComposition } from './composition.ts';
import type { ArtifactStore, CellSelector, ChangeResult, MetadataStore, VersionRecord } from '../store/index.ts';
import type { UploadValidator } from './upload-validator.ts';

export interface UploadRequest {
  readonly zip: Buffer;
  /** Deploy to these cells after storing. */
  readonly cells?: CellSelector | undefined;
  /** Make it the default (also when the manifest says `default: true`). */
  readonly makeDefault?: boolean;
  readonly actor: string;
}

export interface UploadResult {
  readonly version: VersionRecord;
  /** false for an identical retry. */
  readonly created: boolean;
  /** Cells whose desired state changed (deploy and default). */
  readonly changed: ChangeResult['cells'];
}

export async function publishBundle(deps: { store: MetadataStore; artifacts: ArtifactStore; validator: UploadValidator }, req: UploadRequest): Promise<UploadResult> {
  const { store, artifacts, validator } = deps;
  if (req.cells !== undefined) await checkCells(store, req.cells);
  const valid = await validator.validate(req.zip);
  const { manifest, sha256, sizeBytes } = valid;
  await checkComposition(store, manifest);
  const added = await oneAtATime(store, `${manifest.name}\u0000${manifest.version}`, async () => {
    const existing = await store.getVersion(manifest.name, manifest.version).catch((err: unknown) => {
      if (err instanceof SibylError && err.code === 'NOT_FOUND') return undefined;
      throw err;
    });
    if (existing && existing.sha256 !== sha256) {
      throw new SibylError('ALREADY_EXISTS', `version ${manifest.version} of model ${manifest.name} already exists with other content (sha256 ${existing.sha256}); versions are immutable: upload a new version`);
    }
    await artifacts.put(sha256, req.zip);
    return store.addVersion({ name: manifest.name, version: manifest.version, sha256, runtime: manifest.runtime, manifest, sizeBytes, actor: req.actor });
  });
  const changed = new Map<string, number>();
  const note = (r: ChangeResult) => r.cells.forEach((c) => changed.set(c.cell, c.revision));
  if (req.cells !== undefined) note(await store.deploy(manifest.name, manifest.version, req.cells, req.actor));
  if (req.makeDefault || manifest.default) {
    const deployedSomewhere = (await store.getModel(manifest.name)).cells.length > 0;
    // A default with no cells named goes where the model is deployed, or everywhere for a new model.
    note(await store.setDefault(manifest.name, manifest.version, req.cells ?? (deployedSomewhere ? undefined : 'all'), req.actor));
  }
  return { version: added.version, created: added.created, changed: [...changed].sort().map(([cell, revision]) => ({ cell, revision })) };
}

/** Named cells must exist before anything is validated or stored (a bad cell name changes nothing). */
async function checkCells(store: MetadataStore, cells: CellSelector): Promise<void> {
  if (cells === 'all') return;
  if (cells.length === 0) throw new SibylError('INVALID_ARGUMENT', 'cells: name at least one cell, or "all"');
  const known = new Set((await store.listCells()).map((c) => c.name));
  const unknown = cells.filter((c) => !known.has(c));
  if (unknown.length > 0) throw new SibylError('NOT_FOUND', `unknown cell${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')}`);
}

/** Per store, the tails of per-key chains: work for one key runs after the previous work for that key settled. */
const chains = new WeakMap<MetadataStore, Map<string, Promise<unknown>>>();

function oneAtATime<T>(store: MetadataStore, key: string, work: () => Promise<T>): Promise<T> {
  let byKey = chains.get(store);
  if (!byKey) chains.set(store, (byKey = new Map()));
  const keys = byKey;
  const run = (keys.get(key) ?? Promise.resolve()).then(work, work);
  const tail = run.catch(() => undefined);
  keys.set(key, tail);
  void tail.then(() => {
    if (keys.get(key) === tail) keys.delete(key);
  });
  return run;
}
