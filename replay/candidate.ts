/**
 * A replay's candidate: a bundle zip unpacked under limits (runtimes/bundle/), loaded by its runtime and wrapped as
 * the ModelVersion the execution step runs, exactly as a gateway loads it, but with every ONNX run inline on the
 * calling thread (no worker thread): a replay runs on one core.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SibylError } from '../core/errors.ts';
import { ModelVersion } from '../execution/model-version.ts';
import { openBundleZip } from '../runtimes/bundle/index.ts';
import { createRuntimes } from '../runtimes/index.ts';

export interface Candidate {
  readonly version: ModelVersion;
  /** Disposes the model, stops the runtimes and removes the unpacked files. */
  close(): Promise<void>;
}

/** Loads a bundle zip; INVALID_ARGUMENT for a bundle that does not unpack or load. */
export async function loadCandidate(zip: Buffer, workDir = tmpdir()): Promise<Candidate> {
  const dir = await mkdtemp(join(workDir, 'sibyl-replay-'));
  // Runtime options are keyed by kind; only the ONNX runtime has a thread to keep off.
  const runtimes = createRuntimes({ onnx: { offload: 'never' } });
  const cleanup = async () => {
    await runtimes.close().catch(() => undefined);
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  };
  try {
    const bundle = await openBundleZip(zip, join(dir, 'bundle'));
    const runtime = runtimes.byKind.get(bundle.manifest.runtime);
    if (!runtime) throw new SibylError('INVALID_ARGUMENT', `runtime "${bundle.manifest.runtime}" is not available here`);
    const loaded = await runtime.load(bundle);
    const version = new ModelVersion(bundle.manifest, loaded);
    return {
      version,
      async close() {
        await version.retire();
        await cleanup();
      },
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
