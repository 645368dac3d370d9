/**
 * An untrusted bundle zip as a ModelBundle: unpacked safely (unpack-zip.ts), its manifest at the root (at most
 * MAX_MANIFEST_BYTES) parsed and validated, and every file the manifest names present as a regular file. `hash` is
 * the sha256 of the zip's bytes. INVALID_ARGUMENT otherwise, naming the problem; `destDir` is removed on failure.
 */
import { createHash } from 'node:crypto';
import { lstat, readFile, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { ModelBundle } from '../contract.ts';
import { SibylError } from '../../core/errors.ts';
import { MANIFEST_FILES, parseManifest, type Manifest } from '../manifest.ts';
import { unpackZip } from './unpack-zip.ts';
import type { ZipLimits } from './zip-limits.ts';

/** Largest manifest, bytes: parsing YAML takes ~150 times its size in heap. */
export const MAX_MANIFEST_BYTES = 1 << 20;

export async function openBundleZip(zip: Buffer, destDir: string, limits: Partial<ZipLimits> = {}): Promise<ModelBundle> {
  const dir = resolve(destDir);
  const { files } = await unpackZip(zip, dir, limits);
  try {
    const manifestFile = MANIFEST_FILES.find((f) => files.includes(f));
    if (!manifestFile) {
      const nested = files.find((f) => MANIFEST_FILES.some((m) => f.endsWith(`/${m}`)));
      const hint = nested ? `; found ${nested}: zip the bundle's files, not the folder holding them` : '';
      throw new SibylError('INVALID_ARGUMENT', `bundle: no manifest at the zip's root (one of ${MANIFEST_FILES.join(', ')})${hint}`);
    }
    const size = (await lstat(join(dir, manifestFile))).size;
    if (size > MAX_MANIFEST_BYTES) throw new SibylError('INVALID_ARGUMENT', `bundle: ${manifestFile} is ${size} bytes, more than the ${MAX_MANIFEST_BYTES} a manifest may have`);
    const manifest = parseManifest(await readFile(join(dir, manifestFile), 'utf8'), manifestFile);
    for (const f of namedFiles(manifest)) {
      const st = await lstat(join(dir, f)).catch(() => undefined);
      if (!st) throw new SibylError('INVALID_ARGUMENT', `bundle: the manifest names ${f}, which is not in the zip`);
      if (!st.isFile()) throw new SibylError('INVALID_ARGUMENT', `bundle: the manifest names ${f}, which is a directory, not a file`);
    }
    return { manifest, dir, hash: createHash('sha256').update(zip).digest('hex') };
  } catch (err) {
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    throw err;
  }
}

/** Files a manifest refers to, by runtime section. */
export function namedFiles(m: Manifest): string[] {
  const out: string[] = [];
  if (m.onnx) out.push(m.onnx.file);
  const rulesFile = (m.rules as { file?: unknown } | undefined)?.file;
  if (typeof rulesFile === 'string') out.push(rulesFile);
  return out;
}
