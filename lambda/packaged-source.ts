/**
 * Bundles packaged with the function as its desired-state source: `npm run package:lambda`
 * (lambda/packaging/package-bundles.ts) reads a models directory with the gateway's own reader
 * (runtimes/bundle/models-dir.ts: the CellState the tower would serve, each version named by the sha256 of its
 * deterministic zip) and writes what it read into the package:
 *
 *   bundles/state.json        the CellState (ProtoJSON)
 *   bundles/{sha256}.zip      each version's bundle zip
 *
 * At init the cell follower takes these like any state and bundles (hash checked, unpacked to /tmp, loaded, warmed
 * up, swapped in), without reading YAML or zipping directories again. Local and fixed: it changes with a deploy only.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fromJson } from '@bufbuild/protobuf';
import { CellStateSchema, type CellState } from '../proto/gen/sibyl/v1/deployment_pb.js';
import { SibylError } from '../core/errors.ts';
import { isSha256 } from '../core/names.ts';
import type { DesiredStateSource } from '../gateway/sync/desired-state-source.ts';

export const PACKAGED_STATE = 'state.json';

/** Reads `{dir}/state.json`; throws an Error naming the file when it is missing or not a CellState. */
export async function openPackagedSource(dir: string, cell: string): Promise<DesiredStateSource & { readonly remote: false }> {
  const file = join(dir, PACKAGED_STATE);
  let state: CellState;
  try {
    state = fromJson(CellStateSchema, JSON.parse(await readFile(file, 'utf8')) as never);
  } catch (err) {
    throw new Error(`packaged bundles: ${file} is not a readable desired state (${(err as Error).message})`, { cause: err });
  }
  state.cell = cell;
  if (state.revision === 0n) state.revision = 1n;
  return {
    remote: false,
    async cellState(_cell, after, waitMs, signal) {
      if (state.revision > after || waitMs <= 0) return state;
      // Fixed: asked to wait for a change, it never answers one; the follower's stop aborts the wait.
      return new Promise<CellState>((_resolve, reject) => {
        const aborted = () => reject(new SibylError('CANCELLED', 'packaged bundles: wait cancelled'));
        if (signal?.aborted) aborted();
        else signal?.addEventListener('abort', aborted, { once: true });
      });
    },
    async bundle(sha256) {
      if (!isSha256(sha256)) throw new SibylError('INVALID_ARGUMENT', `bundle hash "${sha256}" is not a sha256`);
      try {
        return await readFile(join(dir, `${sha256}.zip`));
      } catch (err) {
        throw new SibylError('NOT_FOUND', `bundle ${sha256} is not packaged with the function`, { cause: err });
      }
    },
    async report() {},
  };
}
