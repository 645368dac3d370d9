/**
 * Unpacks an untrusted zip into a new directory, trusting nothing the zip declares.
 *
 * Refused, each with INVALID_ARGUMENT naming the entry and the problem:
 * - more bytes than `maxZipBytes`; more entries than `maxEntries` (the central directory's count, before any entry
 *   is read); an unreadable or truncated zip;
 * - names that are absolute, start with a drive letter, contain `..`, `.` or empty segments, backslashes, control
 *   characters or NUL; two names that are the same once case and Unicode normalisation (NFC) are ignored; a file
 *   where another entry needs a directory (entry-names.ts);
 * - symbolic links, devices, FIFOs, sockets, anything that is not a regular file or a directory (the Unix file type
 *   in the external attributes); encrypted entries;
 * - nested archives, by name and by magic bytes (archive-magic.ts);
 * - entries whose data overlap another's (the overlapping-entry zip bomb);
 * - an entry that inflates past its declared size, past `maxEntryBytes`, or past what is left of `maxTotalBytes`,
 *   and ratios above `maxRatio` per entry or overall (both counted on the bytes actually inflated, checked once an
 *   entry or the total passes 1 MiB). Bytes are counted while streaming and reading stops at the cap; yauzl's
 *   validateEntrySizes checks the declared sizes too.
 *
 * yauzl's own name decoding and checks are off (decodeStrings: false) so that these messages are ours.
 * Files are written with exclusive create (`wx`, mode 0644) under `destDir` only, after the resolved path is checked
 * to lie inside it; directories (explicit entries or implied by paths) are created. On any failure `destDir` is
 * removed: nothing is left behind. Messages never carry host paths.
 *
 * `destDir` must not exist or be an empty directory, else FAILED_PRECONDITION (and it is left alone). Failures of
 * this host rather than of the zip (disk full: RESOURCE_EXHAUSTED; other file-system errors: INTERNAL) also remove
 * `destDir`.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import yauzl from 'yauzl';
import { SibylError } from '../../core/errors.ts';
import { ARCHIVE_HEAD_BYTES, isArchiveHead, isArchiveName } from './archive-magic.ts';
import { checkEntryName, createNameIndex } from './entry-names.ts';
import { zipLimits, type ZipLimits } from './zip-limits.ts';

export interface Unpacked {
  /** Regular files written, relative paths with `/`, in zip order. */
  readonly files: string[];
  /** Uncompressed bytes written, all files together. */
  readonly totalBytes: number;
}

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;
/** Ratios are checked once an entry (or the total) passes this many bytes: tiny files compress arbitrarily well. */
const RATIO_FLOOR = 1 << 20;
/** Bytes of a local file header before the name (the span of an entry is at least this plus its data). */
const LOCAL_HEADER_BYTES = 30;

const refuse = (message: string): SibylError => new SibylError('INVALID_ARGUMENT', `bundle: ${message}`);

export async function unpackZip(zip: Buffer, destDir: string, limits: Partial<ZipLimits> = {}): Promise<Unpacked> {
  const l = zipLimits(limits);
  const dir = resolve(destDir);
  if (zip.byteLength > l.maxZipBytes) throw refuse(`the zip is ${zip.byteLength} bytes, more than the limit of ${l.maxZipBytes}`);
  await prepareDestination(dir);
  try {
    return await extract(zip, dir, l);
  } catch (err) {
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    if (err instanceof SibylError) throw err;
    throw hostError('the zip could not be unpacked', err);
  }
}

async function prepareDestination(dir: string): Promise<void> {
  let existing: string[] | undefined;
  try {
    existing = await readdir(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') throw new SibylError('FAILED_PRECONDITION', `bundle: the destination directory cannot be used (${code ?? 'error'})`, { cause: err });
  }
  if (existing && existing.length > 0) throw new SibylError('FAILED_PRECONDITION', 'bundle: the destination directory is not empty');
  await mkdir(dir, { recursive: true }).catch((err: unknown) => {
    throw hostError('the destination directory could not be created', err);
  });
}

function openZip(zip: Buffer): Promise<yauzl.ZipFile> {
  return new Promise((resolvePromise, reject) =>
    yauzl.fromBuffer(zip, { lazyEntries: true, validateEntrySizes: true, decodeStrings: false }, (err, zf) =>
      err || !zf ? reject(refuse(`not a readable zip: ${err?.message ?? 'unreadable'}`)) : resolvePromise(zf),
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
  const names = createNameIndex();
  const spans = createSpans();
  let total = 0;
  let compressedTotal = 0;
  try {
    for (;;) {
      const entry = await nextEntry(zf);
      if (!entry) break;
      // Names are decoded here (UTF-8 flag, else CP437; Info-ZIP unicode path field), backslashes kept, and checked
      // here, not by yauzl.
      const name = yauzl.getFileNameLowLevel(entry.generalPurposeBitFlag, entry.fileName as unknown as Buffer, entry.extraFields, true);
      checkEntryName(name);
      names.add(name);
      const isDir = name.endsWith('/');
      checkType(name, isDir, entry);
      if ((entry.generalPurposeBitFlag & 0x41) !== 0) throw refuse(`entry "${name}" is encrypted`);
      spans.add(name, entry.relativeOffsetOfLocalHeader, LOCAL_HEADER_BYTES + entry.compressedSize);
      const target = resolve(dir, name);
      const rel = relative(dir, target);
      if (rel === '' || isAbsolute(rel) || rel.split(sep).includes('..')) throw refuse(`entry "${name}" points outside the bundle`);
      if (isDir) {
        await mkdir(target, { recursive: true });
        continue;
      }
      if (isArchiveName(name)) throw refuse(`entry "${name}" is a nested archive`);
      if (entry.uncompressedSize > l.maxEntryBytes) throw refuse(`entry "${name}" declares ${entry.uncompressedSize} bytes, more than the limit of ${l.maxEntryBytes} per entry`);
      if (entry.uncompressedSize > l.maxTotalBytes - total) throw refuse(`entry "${name}" declares ${entry.uncompressedSize} bytes, more than is left of the limit of ${l.maxTotalBytes} for the whole zip`);
      await mkdir(dirname(target), { recursive: true });
      const written = await copyEntry(zf, entry, name, target, { maxEntryBytes: l.maxEntryBytes, totalLeft: l.maxTotalBytes - total, maxTotalBytes: l.maxTotalBytes, maxRatio: l.maxRatio });
      total += written;
      compressedTotal += entry.compressedSize;
      if (total > RATIO_FLOOR && total > Math.max(1, compressedTotal) * l.maxRatio) throw refuse(`the zip inflates more than ${l.maxRatio}:1 overall (at entry "${name}")`);
      files.push(name);
    }
  } finally {
    zf.close();
  }
  return { files, totalBytes: total };
}

/** Only regular files and directories: the Unix file type (upper half of the external attributes), when present. */
function checkType(name: string, isDir: boolean, entry: yauzl.Entry): void {
  const type = (entry.externalFileAttributes >>> 16) & S_IFMT;
  if (type === 0 || type === (isDir ? S_IFDIR : S_IFREG)) return;
  if (type === S_IFLNK) throw refuse(`entry "${name}" is a symbolic link`);
  if (type === S_IFDIR || type === S_IFREG) throw refuse(`entry "${name}" is marked as a ${type === S_IFDIR ? 'directory' : 'file'} but named as a ${isDir ? 'directory' : 'file'}`);
  throw refuse(`entry "${name}" is a device, FIFO or socket (file type 0o${type.toString(8)}), not a regular file`);
}

/** The byte ranges entries occupy in the zip; a new one that overlaps an earlier one is refused. */
function createSpans() {
  const starts: number[] = [];
  const ends: number[] = [];
  const owners: string[] = [];
  return {
    add(name: string, start: number, length: number): void {
      // Binary search for the first span starting after `start`.
      let lo = 0;
      let hi = starts.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (starts[mid]! <= start) lo = mid + 1;
        else hi = mid;
      }
      const end = start + length;
      if (lo > 0 && ends[lo - 1]! > start) throw refuse(`entry "${name}" overlaps the data of entry "${owners[lo - 1]}" (an overlapping-entry zip bomb)`);
      if (lo < starts.length && starts[lo]! < end) throw refuse(`entry "${name}" overlaps the data of entry "${owners[lo]}" (an overlapping-entry zip bomb)`);
      starts.splice(lo, 0, start);
      ends.splice(lo, 0, end);
      owners.splice(lo, 0, name);
    },
  };
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

interface Caps {
  readonly maxEntryBytes: number;
  readonly totalLeft: number;
  readonly maxTotalBytes: number;
  readonly maxRatio: number;
}

/** Streams one entry to `target` (exclusive create), counting the real bytes; resolves with the count. */
function copyEntry(zf: yauzl.ZipFile, entry: yauzl.Entry, name: string, target: string, caps: Caps): Promise<number> {
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
        // The write stream may still be opening the file; the caller removes the directory once this settles.
        if (out.closed) reject(e);
        else out.once('close', () => reject(e));
      };
      stream.on('data', (chunk: Buffer) => {
        if (failed) return;
        n += chunk.byteLength;
        if (n > entry.uncompressedSize) return fail(refuse(`entry "${name}" inflates past its declared size of ${entry.uncompressedSize} bytes`));
        if (n > caps.maxEntryBytes) return fail(refuse(`entry "${name}" inflates past the limit of ${caps.maxEntryBytes} bytes per entry`));
        if (n > caps.totalLeft) return fail(refuse(`the zip inflates past the limit of ${caps.maxTotalBytes} bytes in all (at entry "${name}")`));
        if (n > RATIO_FLOOR && n > Math.max(1, entry.compressedSize) * caps.maxRatio) return fail(refuse(`entry "${name}" inflates more than ${caps.maxRatio}:1`));
        if (head !== undefined) {
          head = Buffer.concat([head, chunk]);
          if (head.length >= ARCHIVE_HEAD_BYTES) {
            if (isArchiveHead(head.subarray(0, ARCHIVE_HEAD_BYTES))) return fail(refuse(`entry "${name}" is a nested archive`));
            head = undefined;
          }
        }
        if (!out.write(chunk)) {
          stream.pause();
          out.once('drain', () => stream.resume());
        }
      });
      stream.on('error', (e: Error) => fail(refuse(streamProblem(name, entry, e))));
      out.on('error', (e: NodeJS.ErrnoException) => fail(hostError(`entry "${name}" could not be written`, e)));
      stream.on('end', () => {
        if (failed) return;
        if (head !== undefined && isArchiveHead(head)) return fail(refuse(`entry "${name}" is a nested archive`));
        out.end(() => resolvePromise(n));
      });
    });
  });
}

/** yauzl's size checks (validateEntrySizes) in Sibyl's words; other inflate errors as they are. */
function streamProblem(name: string, entry: yauzl.Entry, e: Error): string {
  if (/too many bytes/.test(e.message)) return `entry "${name}" inflates past its declared size of ${entry.uncompressedSize} bytes`;
  if (/not enough bytes/.test(e.message)) return `entry "${name}" inflates to fewer bytes than its declared size of ${entry.uncompressedSize}`;
  return `entry "${name}" is corrupt: ${e.message}`;
}

/** A failure of this host, not of the zip: RESOURCE_EXHAUSTED when the disk is full, else INTERNAL; no host paths. */
function hostError(what: string, err: unknown): SibylError {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT') return new SibylError('RESOURCE_EXHAUSTED', `bundle: ${what}: no space left on this host`, { cause: err });
  return new SibylError('INTERNAL', `bundle: ${what} (${typeof code === 'string' ? code : 'unexpected error'})`, { cause: err });
}
