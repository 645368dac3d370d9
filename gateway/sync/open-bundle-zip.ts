/**
 * Unpacks an untrusted bundle zip into a directory and parses its manifest: the signature of
 * `runtimes/bundle`'s `openBundleZip`, which replaces this file once it lands.
 *
 * Checked before anything is written: entry count, declared and actual sizes (total and per entry), compression
 * ratio, names (no absolute paths, no `..`, no backslashes, no duplicates ignoring case), no links or special files.
 * Throws INVALID_ARGUMENT naming the problem; `destDir` is removed on any failure.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import yauzl from 'yauzl';
import type { ModelBundle } from '../../runtimes/contract.ts';
import { SibylError } from '../../runtimes/errors.ts';
import { MANIFEST_FILES, parseManifest } from '../../runtimes/manifest.ts';

export interface BundleLimits {
  /** Most entries (default 1000). */
  readonly maxEntries?: number;
  /** Most bytes unpacked, all entries together (default 1 GiB). */
  readonly maxTotalBytes?: number;
  /** Largest uncompressed / compressed ratio of an entry (default 200). */
  readonly maxRatio?: number;
}

export async function openBundleZip(zip: Buffer, destDir: string, limits: BundleLimits = {}): Promise<ModelBundle> {
  const dir = resolve(destDir);
  try {
    const entries = await readEntries(zip, limits);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    for (const e of entries) {
      const target = join(dir, e.name);
      await mkdir(dirname(target), { recursive: true });
      await writeFile(target, e.data, { mode: 0o644 });
    }
    const manifestFile = MANIFEST_FILES.find((f) => entries.some((e) => e.name === f));
    if (!manifestFile) throw new SibylError('INVALID_ARGUMENT', `bundle: no manifest (${MANIFEST_FILES.join(', ')}) at the zip's root`);
    const manifest = parseManifest(await readFile(join(dir, manifestFile), 'utf8'), manifestFile);
    return { manifest, dir, hash: createHash('sha256').update(zip).digest('hex') };
  } catch (err) {
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    if (err instanceof SibylError) throw err;
    throw new SibylError('INVALID_ARGUMENT', `bundle: not a valid zip: ${(err as Error).message}`, { cause: err });
  }
}

interface Entry {
  readonly name: string;
  readonly data: Buffer;
}

function readEntries(zip: Buffer, limits: BundleLimits): Promise<Entry[]> {
  const maxEntries = limits.maxEntries ?? 1000;
  const maxTotal = limits.maxTotalBytes ?? 1 << 30;
  const maxRatio = limits.maxRatio ?? 200;
  return new Promise((resolvePromise, reject) => {
    yauzl.fromBuffer(zip, { lazyEntries: true, validateEntrySizes: true, strictFileNames: true }, (err, zf) => {
      if (err || !zf) return reject(err ?? new Error('unreadable'));
      if (zf.entryCount > maxEntries) {
        zf.close();
        return reject(new SibylError('INVALID_ARGUMENT', `bundle: ${zf.entryCount} entries, more than ${maxEntries}`));
      }
      const out: Entry[] = [];
      const seen = new Set<string>();
      let total = 0;
      const fail = (e: unknown) => {
        zf.close();
        reject(e);
      };
      zf.on('error', fail);
      zf.on('end', () => resolvePromise(out));
      zf.on('entry', (entry: yauzl.Entry) => {
        const name = entry.fileName;
        const type = (entry.externalFileAttributes >>> 16) & 0o170000;
        if (name.endsWith('/')) return zf.readEntry();
        if (type !== 0 && type !== 0o100000) return fail(new SibylError('INVALID_ARGUMENT', `bundle: ${name} is a link or special file`));
        if (name.startsWith('/') || name.includes('\\') || name.split('/').some((p) => p === '..' || p === '.' || p === '')) {
          return fail(new SibylError('INVALID_ARGUMENT', `bundle: entry name "${name}" is not a plain relative path`));
        }
        const key = name.toLowerCase();
        if (seen.has(key)) return fail(new SibylError('INVALID_ARGUMENT', `bundle: entry "${name}" appears twice`));
        seen.add(key);
        total += entry.uncompressedSize;
        if (total > maxTotal) return fail(new SibylError('INVALID_ARGUMENT', `bundle: more than ${maxTotal} bytes unpacked`));
        if (entry.uncompressedSize > Math.max(1, entry.compressedSize) * maxRatio && entry.uncompressedSize > 1 << 20) {
          return fail(new SibylError('INVALID_ARGUMENT', `bundle: entry "${name}" compresses more than ${maxRatio}:1`));
        }
        zf.openReadStream(entry, (e2, stream) => {
          if (e2 || !stream) return fail(e2 ?? new Error(`cannot read ${name}`));
          const chunks: Buffer[] = [];
          stream.on('data', (c: Buffer) => chunks.push(c));
          stream.on('error', fail);
          stream.on('end', () => {
            out.push({ name, data: Buffer.concat(chunks) });
            zf.readEntry();
          });
        });
      });
      zf.readEntry();
    });
  });
}
