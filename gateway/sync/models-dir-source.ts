/**
 * A models directory (`SIBYL_MODELS_DIR`) as the desired-state source of a gateway without a control tower: the
 * directory read into the CellState the tower would serve (runtimes/bundle/models-dir.ts), each version's bundle
 * the deterministic zip of its directory. Local, so never down: the follower loads it at start and caches no state.
 *
 * `reload()` reads the directory again (the gateway calls it on SIGHUP): when the state differs, the revision goes
 * up by one and the follower loads what changed, as it would for a new revision from the tower.
 */
import { create, equals } from '@bufbuild/protobuf';
import { CellStateSchema, type CellState } from '../../proto/gen/sibyl/v1/deployment_pb.js';
import { SibylError } from '../../core/errors.ts';
import { readModelsDir } from '../../runtimes/bundle/models-dir.ts';
import { zipDirectory } from '../../runtimes/bundle/zip-dir.ts';
import type { DesiredStateSource } from './desired-state-source.ts';

export interface ModelsDirSource extends DesiredStateSource {
  readonly remote: false;
  /**
   * Reads the directory again. Resolves true when its state changed (the revision went up and waiting calls of
   * `cellState` answer), false when it did not. Rejects, keeping the current state, when the directory is invalid.
   */
  reload(): Promise<boolean>;
}

/** Reads the directory once; throws an Error naming the file when a manifest or deployment.yaml is invalid. */
export async function openModelsDirSource(dir: string, cell: string): Promise<ModelsDirSource> {
  let state: CellState;
  // A bundle's directory by hash, and its zip until the follower has taken it (it is re-zipped if asked again).
  let dirs = new Map<string, string>();
  let zips = new Map<string, Buffer>();
  const waiters = new Set<() => void>();

  async function read(revision: bigint): Promise<CellState> {
    const read = await readModelsDir(dir, cell);
    dirs = new Map([...read.bundles].map(([sha, b]) => [sha, b.dir]));
    zips = new Map([...read.bundles].map(([sha, b]) => [sha, b.zip]));
    read.state.revision = revision;
    return read.state;
  }

  state = await read(1n);

  return {
    remote: false,

    async cellState(_cell, after, waitMs, signal) {
      if (state.revision > after || waitMs <= 0) return state;
      await new Promise<void>((resolve, reject) => {
        const done = () => {
          waiters.delete(done);
          clearTimeout(timer);
          signal?.removeEventListener('abort', aborted);
          resolve();
        };
        const aborted = () => {
          done();
          reject(new SibylError('CANCELLED', 'models directory: wait for a new state cancelled'));
        };
        const timer = setTimeout(done, waitMs);
        waiters.add(done);
        if (signal?.aborted) aborted();
        else signal?.addEventListener('abort', aborted, { once: true });
      });
      return state;
    },

    async bundle(sha256) {
      const held = zips.get(sha256);
      if (held) {
        zips.delete(sha256);
        return held;
      }
      const bundleDir = dirs.get(sha256);
      if (!bundleDir) throw new SibylError('NOT_FOUND', `bundle ${sha256} is not in the models directory`);
      return zipDirectory(bundleDir);
    },

    async report() {},

    async reload() {
      const next = await read(state.revision + 1n);
      if (equals(CellStateSchema, create(CellStateSchema, { models: next.models }), create(CellStateSchema, { models: state.models }))) {
        // Nothing to load: the follower will not ask for these zips.
        zips.clear();
        return false;
      }
      state = next;
      for (const w of [...waiters]) w();
      return true;
    },
  };
}
