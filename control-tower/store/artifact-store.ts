/**
 * The ArtifactStore role: bundle zips stored by the sha256 of their bytes (content-addressed, so a stored artifact
 * never changes). `createLocalArtifactStore` keeps them in a directory; s3-artifact-store.ts in an S3 bucket.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { SibylError } from '../../core/errors.ts';
import { isSha256, SHA256_HEX } from '../../core/names.ts';

export interface ArtifactStore {
  /**
   * Stores `bytes` under `sha256` (64 lowercase hex digits) after checking that it is their hash: INVALID_ARGUMENT
   * when it is malformed or does not match. Idempotent: storing what is already there does nothing. Concurrent puts
   * of the same artifact are safe; readers never see a partial artifact.
   */
  put(sha256: string, bytes: Uint8Array): Promise<void>;
  /** The artifact's bytes, or undefined when none is stored under `sha256` (or it is not a well-formed hash). */
  get(sha256: string): Promise<Uint8Array | undefined>;
  /** Whether an artifact is stored under `sha256` (false for a malformed hash). */
  has(sha256: string): Promise<boolean>;
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Throws INVALID_ARGUMENT unless `sha256` is well formed and is the hash of `bytes`. */
export function checkArtifact(sha256: string, bytes: Uint8Array): void {
  if (!isSha256(sha256)) throw new SibylError('INVALID_ARGUMENT', `sha256 ${SHA256_HEX.message}`);
  const actual = sha256Hex(bytes);
  if (actual !== sha256) throw new SibylError('INVALID_ARGUMENT', `content hash is ${actual}, not ${sha256}`);
}

/**
 * Artifacts as files `dir/ab/abcdef….zip` (the first two hex digits name a subdirectory). A put writes and fsyncs a
 * temporary file `dir/ab/.tmp-…` and renames it into place, so a file under its final name is always complete; a
 * crash may leave a temporary file behind, which nothing reads. The directory is created on first put.
 */
export function createLocalArtifactStore(dir: string): ArtifactStore {
  const pathOf = (sha256: string) => join(dir, sha256.slice(0, 2), `${sha256}.zip`);

  async function has(sha256: string): Promise<boolean> {
    if (!isSha256(sha256)) return false;
    try {
      return (await stat(pathOf(sha256))).isFile();
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  return {
    async put(sha256, bytes) {
      checkArtifact(sha256, bytes);
      if (await has(sha256)) return;
      const final = pathOf(sha256);
      const sub = join(dir, sha256.slice(0, 2));
      await mkdir(sub, { recursive: true });
      const temp = join(sub, `.tmp-${randomBytes(8).toString('hex')}`);
      try {
        const file = await open(temp, 'wx', 0o644);
        try {
          await file.writeFile(bytes);
          await file.sync();
        } finally {
          await file.close();
        }
        await rename(temp, final);
      } catch (err) {
        await rm(temp, { force: true });
        throw err;
      }
    },

    async get(sha256) {
      if (!isSha256(sha256)) return undefined;
      try {
        const buffer = await readFile(pathOf(sha256));
        return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
    },

    has,
  };
}

function isNotFound(err: unknown): boolean {
  return (err as { code?: unknown }).code === 'ENOENT';
}
