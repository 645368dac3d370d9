/**
 * Appends lines to a rotating set of files in one directory, synchronously: `append` returns once the line is in
 * the kernel (write(2) to the page cache), so a process crash (SIGKILL, OOM kill) right after it loses nothing.
 * A background fdatasync every `syncMs` bounds what a machine crash or power loss can take: the lines appended in
 * the last `syncMs` plus the sync's own duration. Used by the file sink (the prediction log itself) and by the
 * Kafka sink's write-ahead log (write-ahead-log.ts).
 *
 * Cost, measured on this machine (loadtest/micro/wal.bench.ts): ~3 µs of CPU per ~1.1 KB line, p99 ~8 µs, on the
 * calling thread; the fdatasync runs in libuv's pool. Put the directory on a local disk: a disk that stalls
 * stalls the caller.
 *
 * A failed write (disk full, I/O error) closes the file and returns undefined (the line is not in any file);
 * the next append opens a new file at most once a second, so a full disk does not cost a file per line.
 * `onFailing` and `onRecovered` are called once per transition. One writer per directory and name scheme.
 */
import { closeSync, fdatasync, mkdirSync, openSync, writeSync, writevSync } from 'node:fs';
import { close as closeAsync } from 'node:fs';
import { join } from 'node:path';

/** A file the writer fills; `lines` and `bytes` count what was written, complete lines only. */
export interface Segment {
  readonly name: string;
  lines: number;
  bytes: number;
  /** No more lines will be appended (rotated, failed, or closed). */
  sealed: boolean;
}

export interface SegmentWriterOptions<S extends Segment> {
  dir: string;
  /** Start a new file when the next line would take the current one past this many bytes. */
  segmentBytes: number;
  /** fdatasync the current file this often when it has new lines, ms; 0: only when a file is sealed or closed. */
  syncMs: number;
  /** The next file (its name; counters at 0). */
  newSegment(): S;
  /** A file was sealed; its counters are final. */
  onSealed?(segment: S): void;
  /** The first failed write or open after a success. */
  onFailing(err: unknown): void;
  /** The first successful write after a failure. */
  onRecovered(): void;
}

interface OpenFile<S> {
  readonly segment: S;
  readonly fd: number;
  /** Lines written since the last fdatasync started. */
  dirty: boolean;
  syncing: Promise<void> | undefined;
}

const REOPEN_AFTER_FAILURE_MS = 1000;

export class SegmentWriter<S extends Segment> {
  readonly dir: string;
  readonly #o: SegmentWriterOptions<S>;
  #file: OpenFile<S> | undefined;
  #failing = false;
  #failedAt = 0;
  #dirMade = false;
  #closed = false;
  readonly #closing = new Set<Promise<void>>();
  readonly #timer: NodeJS.Timeout | undefined;

  constructor(options: SegmentWriterOptions<S>) {
    this.dir = options.dir;
    this.#o = options;
    if (options.syncMs > 0) this.#timer = setInterval(() => this.#syncActive(), options.syncMs).unref();
  }

  /** The file being written, if one is open. */
  get active(): S | undefined {
    return this.#file?.segment;
  }

  /**
   * Writes one line (`line` ends with '\n' and holds no other) before returning. Returns the file and the line's
   * index in it, or undefined when it could not be written.
   */
  append(line: Buffer): { segment: S; line: number } | undefined {
    return this.appendMany([line])[0];
  }

  /**
   * Writes `lines` (each ending with '\n' and holding no other) in order before returning, with one write per file
   * they go to (writev) instead of one per line. Returns each line's file and index, or undefined for a line that
   * could not be written. A failed write fails every line of it, though some may be in the file (sealed, so a reader
   * sees at most a partial last line and drops it): a caller holds those in memory, and a later replay may send them
   * twice, which at-least-once delivery allows.
   */
  appendMany(lines: readonly Buffer[]): ({ segment: S; line: number } | undefined)[] {
    const out: ({ segment: S; line: number } | undefined)[] = new Array(lines.length).fill(undefined);
    let i = 0;
    while (i < lines.length && !this.#closed) {
      let file = this.#file;
      if (file !== undefined && file.segment.bytes > 0 && file.segment.bytes + lines[i]!.length > this.#o.segmentBytes) {
        this.#seal();
        file = undefined;
      }
      if (file === undefined) {
        if (this.#failing && Date.now() - this.#failedAt < REOPEN_AFTER_FAILURE_MS) return out;
        file = this.#open();
        if (file === undefined) return out;
      }
      // The lines that fit in this file (at least one: a line larger than a segment gets a file of its own).
      let bytes = lines[i]!.length;
      let j = i + 1;
      while (j < lines.length && file.segment.bytes + bytes + lines[j]!.length <= this.#o.segmentBytes) bytes += lines[j++]!.length;
      try {
        const written = j - i === 1 ? writeSync(file.fd, lines[i]!, 0, bytes) : writevSync(file.fd, lines.slice(i, j));
        if (written !== bytes) throw new Error(`short write: ${written} of ${bytes} bytes`);
      } catch (err) {
        this.#fail(err);
        this.#seal();
        return out;
      }
      const segment = file.segment;
      segment.bytes += bytes;
      file.dirty = true;
      if (this.#failing) {
        this.#failing = false;
        this.#o.onRecovered();
      }
      for (; i < j; i++) out[i] = { segment, line: segment.lines++ };
    }
    return out;
  }

  /** Seals the current file (the next append opens a new one). */
  rotate(): void {
    this.#seal();
  }

  /** fdatasyncs the current file now; resolves when done (or when it failed: the next write will tell). */
  sync(): Promise<void> {
    return this.#syncActive();
  }

  /** Seals the current file, waits for every pending fdatasync and close. Appends after this return undefined. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    this.#seal();
    while (this.#closing.size > 0) await Promise.all(this.#closing);
  }

  #open(): OpenFile<S> | undefined {
    const segment = this.#o.newSegment();
    try {
      if (!this.#dirMade) {
        mkdirSync(this.dir, { recursive: true });
        this.#dirMade = true;
      }
      const fd = openSync(join(this.dir, segment.name), 'a');
      this.#file = { segment, fd, dirty: false, syncing: undefined };
      return this.#file;
    } catch (err) {
      this.#fail(err);
      segment.sealed = true;
      this.#o.onSealed?.(segment);
      return undefined;
    }
  }

  #fail(err: unknown): void {
    this.#failedAt = Date.now();
    if (this.#failing) return;
    this.#failing = true;
    this.#o.onFailing(err);
  }

  #syncActive(): Promise<void> {
    const file = this.#file;
    if (file === undefined || !file.dirty) return file?.syncing ?? Promise.resolve();
    return this.#syncFile(file);
  }

  #syncFile(file: OpenFile<S>): Promise<void> {
    if (file.syncing !== undefined) {
      // One fdatasync at a time per file; a second covers what the first may have missed.
      return file.syncing.then(() => (file.dirty ? this.#syncFile(file) : undefined));
    }
    file.dirty = false;
    file.syncing = new Promise<void>((resolve) =>
      fdatasync(file.fd, () => {
        file.syncing = undefined;
        resolve();
      }),
    );
    return file.syncing;
  }

  /** Seals the current file: final fdatasync and close in the background (close() waits for them). */
  #seal(): void {
    const file = this.#file;
    if (file === undefined) return;
    this.#file = undefined;
    file.segment.sealed = true;
    const closing = (async () => {
      await this.#syncFile(file);
      await new Promise<void>((resolve) => closeAsync(file.fd, () => resolve()));
    })();
    this.#closing.add(closing);
    void closing.finally(() => this.#closing.delete(closing));
    this.#o.onSealed?.(file.segment);
  }
}

/** Closes a descriptor now, ignoring errors (for callers that hold their own descriptors). */
export function closeQuietly(fd: number | undefined): void {
  if (fd === undefined) return;
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
}
