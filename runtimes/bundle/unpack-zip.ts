/**
 * Unpacks an untrusted zip into a new directory, trusting nothing the zip declares.
 *
 * Refused, each with INVALID_ARGUMENT naming the entry and the problem: more bytes than `maxZipBytes`; more entries
 * than `maxEntries` (read from the central directory before any entry); names that are absolute, contain `..`,
 * `.`, empty segments, backslashes, drive letters, control characters or NUL; two names that are the same after
 * case folding and Unicode NFC normalisation; symbolic links, devices and anything that is not a regular file or a
 * directory (Unix mode in the external attributes); encrypted entries; nested archives (by extension and by magic
 * bytes); an entry that inflates past its declared size, `maxEntryBytes`, the total `maxTotalBytes` or the ratio
 * `maxRatio` (bytes are counted while streaming; reading stops at the cap).
 *
 * yauzl's own name decoding and checks are off (decodeStrings: false) so that these messages are ours; sizes are checked by both yauzl
 * (validateEntrySizes) and the byte counting here.
 *
 * Files are written with exclusive create under `destDir` only, after the resolved path is checked to lie inside it.
 * On any failure `destDir` is removed: nothing is left behind.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import yauzl from 'yauzl';
import { SibylError } from '../errors.ts';
import { zipLimits, type ZipLimits } from './zip-limits.ts';

export interface Unpacked {
  /** Regular files written, relative paths with `/`, in zip order. */
  readonly files: string[];
  readonly totalBytes: number;
}

const ARCHIVE_EXTENSIONS = /\.(zip|jar|war|ear|apk|whl|tar|tgz|gz|bz2|xz|zst|7z|rar|lz4|lzma|cab|iso)$/i;
const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;

const refuse = (message: string): SibylError => new SibylError('INVALID_ARGUMENT', `bundle: ${message}`);

export async function unpackZip(zip: Buffer, destDir: string, limits: Partial<ZipLimits> = {}): Promise<Unpacked> {
  const l = zipLimits(limits);
  const dir = resolve(destDir);
  if (zip.byteLength > l.maxZipBytes) throw refuse(`the zip is ${zip.byteLength} bytes, more than the limit of ${l.maxZipBytes}`);
  const existing = await readdir(dir).catch(() => undefined);
  if (existing && existing.length > 0) throw new SibylError('FAILED_PRECONDITION', `bundle: ${dir} is not empty`);
  await mkdir(dir, { recursive: true });
  try {
    return await extract(zip, dir, l);
  } catch (err) {
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    if (err instanceof SibylError) throw err;
    throw refuse(`not a readable zip: ${(err as Error).message}`);
  }
}

function openZip(zip: Buffer): Promise<yauzl.ZipFile> {
  return new Promise((resolvePromise, reject) =>
    yauzl.fromBuffer(zip, { lazyEntries: true, validateEntrySizes: true, decodeStrings: false }, (err, zf) =>
      err || !zf ? reject(err ?? new Error('unreadable')) : resolvePromise(zf),
    ),
  );
}

async function extract(zip: Buffer, dir: string, l: ZipLimits): Promise<Unpacked> {
  const zf = await openZip(zip);
  if (zf.entryCount > l.maxEntries) {
    zf.close();
    throw refuse(`${zf.entryCount} entries, more than the limit of ${l.maxEntries}`);
  }
  const files: string[] = [];
  const seen = new Map<string, string>();
  let total = 0;
  let compressedTotal = 0;
  try {
    for (;;) {
      const entry = await nextEntry(zf);
      if (!entry) break;
      // Names are decoded here (UTF-8 flag, Info-ZIP unicode path field) and checked by checkName, not by yauzl.
      const name = yauzl.getFileNameLowLevel(entry.generalPurposeBitFlag, entry.fileName as unknown as Buffer, entry.extraFields, true);
      checkName(name);
      const key = name.replace(/\/$/, '').normalize('NFC').toLowerCase();
      const clash = seen.get(key);
      if (clash !== undefined) throw refuse(`entries "${clash}" and "${name}" have the same name (ignoring case and Unicode normalisation)`);
      seen.set(key, name);
      const mode = (entry.externalFileAttributes >>> 16) & S_IFMT;
      const isDir = name.endsWith('/');
      if (mode !== 0 && mode !== (isDir ? S_IFDIR : S_IFREG)) throw refuse(`entry "${name}" is a link or a special file, not a regular file`);
      if ((entry.generalPurposeBitFlag & 0x1) !== 0) throw refuse(`entry "${name}" is encrypted`);
      const target = resolve(dir, name);
      const rel = relative(dir, target);
      if (rel.startsWith('..') || isAbsolute(rel) || (rel !== '' && rel.split(sep).includes('..'))) throw refuse(`entry "${name}" points outside the bundle`);
      if (isDir) {
        await mkdir(target, { recursive: true });
        continue;
      }
      if (ARCHIVE_EXTENSIONS.test(name)) throw refuse(`entry "${name}" is a nested archive`);
      if (entry.uncompressedSize > l.maxEntryBytes) throw refuse(`entry "${name}" declares ${entry.uncompressedSize} bytes, more than the limit of ${l.maxEntryBytes}`);
      await mkdir(dirname(target), { recursive: true });
      const written = await copyEntry(zf, entry, name, target, {
        maxBytes: Math.min(l.maxEntryBytes, l.maxTotalBytes - total),
        maxRatio: l.maxRatio,
        totalLeft: l.maxTotalBytes - total,
      });
      total += written;
      compressedTotal += entry.compressedSize;
      if (total > 1 << 20 && total > Math.max(1, compressedTotal) * l.maxRatio) throw refuse(`the zip inflates more than ${l.maxRatio}:1 overall`);
      files.push(name);
    }
  } finally {
    zf.close();
  }
  return { files, totalBytes: total };
}

function nextEntry(zf: yauzl.ZipFile): Promise<yauzl.Entry | undefined> {
  return new Promise((resolvePromise, reject) => {
    const onEntry = (e: yauzl.Entry) => {
      cleanup();
      resolvePromise(e);
    };
    const onEnd = () => {
      cleanup();
      resolvePromise(undefined);
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err instanceof SibylError ? err : refuse(`not a readable zip: ${err.message}`));
    };
    const cleanup = () => {
      zf.off('entry', onEntry);
      zf.off('end', onEnd);
      zf.off('error', onError);
    };
    zf.on('entry', onEntry);
    zf.on('end', onEnd);
    zf.on('error', onError);
    zf.readEntry();
  });
}

function checkName(name: string): void {
  const problem =
    name.length === 0
      ? 'is empty'
      : name.length > 512
        ? 'is longer than 512 characters'
        : name.startsWith('/')
          ? 'is absolute'
          : /^[A-Za-z]:/.test(name)
            ? 'starts with a drive letter'
            : name.includes('\\')
              ? 'contains a backslash'
              : /[\u0000-\u001f\u007f]/.test(name)
                ? 'contains a control character'
                : name
                      .replace(/\/$/, '')
                      .split('/')
                      .some((p) => p === '..' || p === '.' || p === '')
                  ? 'contains "..", "." or an empty segment'
                  : undefined;
  if (problem) throw refuse(`entry name ${JSON.stringify(name)} ${problem}`);
}

const MAGIC: readonly (readonly number[])[] = [
  [0x50, 0x4b, 0x03, 0x04], // zip, jar, whl
  [0x50, 0x4b, 0x05, 0x06], // empty zip
  [0x1f, 0x8b], // gzip
  [0x42, 0x5a, 0x68], // bzip2
  [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], // xz
  [0x28, 0xb5, 0x2f, 0xfd], // zstd
  [0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c], // 7z
  [0x52, 0x61, 0x72, 0x21], // rar
];

function isArchive(head: Buffer): boolean {
  if (MAGIC.some((m) => head.length >= m.length && m.every((b, i) => head[i] === b))) return true;
  // tar: "ustar" at offset 257.
  return head.length >= 262 && head.subarray(257, 262).toString('latin1') === 'ustar';
}

/** Streams one entry to `target` (exclusive create), counting real bytes; resolves with the count. */
function copyEntry(zf: yauzl.ZipFile, entry: yauzl.Entry, name: string, target: string, caps: { maxBytes: number; maxRatio: number; totalLeft: number }): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    zf.openReadStream(entry, (err, stream) => {
      if (err || !stream) return reject(refuse(`entry "${name}" cannot be read: ${err?.message ?? 'no stream'}`));
      const out = createWriteStream(target, { flags: 'wx', mode: 0o644 });
      let n = 0;
      let head: Buffer | undefined = Buffer.alloc(0);
      let failed = false;
      const fail = (e: SibylError) => {
        if (failed) return;
        failed = true;
        stream.destroy();
        out.destroy();
        reject(e);
      };
      stream.on('data', (chunk: Buffer) => {
        n += chunk.byteLength;
        if (n > entry.uncompressedSize) return fail(refuse(`entry "${name}" inflates past its declared size of ${entry.uncompressedSize} bytes`));
        if (n > caps.maxBytes) return fail(refuse(n > caps.totalLeft ? `the zip unpacks to more than the limit of its total size` : `entry "${name}" is larger than the limit of ${caps.maxBytes} bytes`));
        if (n > 1 << 20 && n > Math.max(1, entry.compressedSize) * caps.maxRatio) return fail(refuse(`entry "${name}" inflates more than ${caps.maxRatio}:1`));
        if (head !== undefined) {
          head = Buffer.concat([head, chunk]).subarray(0, 512);
          if (head.length >= 262 || n === entry.uncompressedSize) {
            if (isArchive(head)) return fail(refuse(`entry "${name}" is a nested archive`));
            head = undefined;
          }
        }
        if (!out.write(chunk)) {
          stream.pause();
          out.once('drain', () => stream.resume());
        }
      });
      stream.on('error', (e: Error) => fail(refuse(`entry "${name}" is corrupt: ${e.message}`)));
      out.on('error', (e: Error) => fail(refuse(`entry "${name}" cannot be written: ${e.message}`)));
      stream.on('end', () => {
        if (failed) return;
        if (head !== undefined && isArchive(head)) return fail(refuse(`entry "${name}" is a nested archive`));
        out.end(() => resolvePromise(n));
      });
    });
  });
}
