/**
 * The gateway's local copy of what it follows, so it restarts and serves while the control tower is down:
 *
 *   {dir}/bundles/{sha256}.zip   bundle zips, each written only after its sha256 was checked
 *   {dir}/unpacked/{sha256}/     a zip unpacked for its runtime (recreated from the zip on every load)
 *   {dir}/state.json             the last CellState this gateway swapped in (ProtoJSON)
 *
 * Files are written atomically (temp file, fsync, rename, fsync of the directory): a crash leaves the old file or
 * the new one, never half of one. One process per cache directory.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fromJson, toJson } from '@bufbuild/protobuf';
import { CellStateSchema, type CellState } from '../../proto/gen/sibyl/v1/deployment_pb.js';
import { SibylError } from '../../core/errors.ts';
import { isSha256, SHA256_HEX } from '../../core/names.ts';

export interface BundleCache {
  readonly dir: string;
  /** The cached zip, its hash checked again; undefined when absent (a cached file that no longer matches is removed). */
  get(sha256: string): Promise<Buffer | undefined>;
  /** Stores a downloaded zip. Throws DATA_LOSS, writing nothing, when sha256(bytes) is not `sha256`. */
  put(sha256: string, bytes: Buffer): Promise<void>;
  /** Where the zip of `sha256` is unpacked. */
  unpackDir(sha256: string): string;
  /** The last state written, or undefined when there is none or it cannot be read (the reason is logged by the caller). */
  readState(): Promise<CellState | undefined>;
  writeState(state: CellState): Promise<void>;
  /** Removes the zips and unpacked directories of every hash not in `keep`. */
  prune(keep: ReadonlySet<string>): Promise<void>;
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Creates the directories when missing. */
export async function openBundleCache(dir: string): Promise<BundleCache> {
  const root = resolve(dir);
  const bundles = join(root, 'bundles');
  const unpacked = join(root, 'unpacked');
  await mkdir(bundles, { recursive: true });
  await mkdir(unpacked, { recursive: true });
  const zipPath = (sha: string) => {
    if (!isSha256(sha)) throw new SibylError('INVALID_ARGUMENT', `bundle hash "${sha}" ${SHA256_HEX.message}`);
    return join(bundles, `${sha}.zip`);
  };

  return {
    dir: root,
    async get(sha) {
      const path = zipPath(sha);
      let bytes: Buffer;
      try {
        bytes = await readFile(path);
      } catch {
        return undefined;
      }
      if (sha256Hex(bytes) === sha) return bytes;
      await rm(path, { force: true });
      return undefined;
    },
    async put(sha, bytes) {
      const path = zipPath(sha);
      const actual = sha256Hex(bytes);
      if (actual !== sha) throw new SibylError('DATA_LOSS', `bundle ${sha}: downloaded bytes hash to ${actual}; discarded`);
      await writeAtomic(path, bytes);
    },
    unpackDir(sha) {
      zipPath(sha);
      return join(unpacked, sha);
    },
    async readState() {
      let text: string;
      try {
        text = await readFile(join(root, 'state.json'), 'utf8');
      } catch {
        return undefined;
      }
      return fromJson(CellStateSchema, JSON.parse(text), { ignoreUnknownFields: true });
    },
    async writeState(state) {
      await writeAtomic(join(root, 'state.json'), Buffer.from(`${JSON.stringify(toJson(CellStateSchema, state), null, 1)}\n`));
    },
    async prune(keep) {
      for (const name of await readdir(bundles).catch(() => [] as string[])) {
        const sha = name.replace(/\.zip$/, '');
        if (!keep.has(sha)) await rm(join(bundles, name), { force: true });
      }
      for (const name of await readdir(unpacked).catch(() => [] as string[])) {
        if (!keep.has(name)) await rm(join(unpacked, name), { recursive: true, force: true });
      }
    },
  };
}

/** Writes `path` whole or not at all: a temp file beside it, fsync, rename over, fsync of the directory. */
export async function writeAtomic(path: string, data: Uint8Array): Promise<void> {
  const dir = resolve(path, '..');
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const fh = await open(tmp, 'w', 0o644);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (err) {
    await fh.close();
    await rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  try {
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}
