/**
 * The Kafka sink's write-ahead log: every record is appended here (wal-line.ts format) before the request that
 * produced it is answered, and stays until Kafka acknowledges it. One directory per sink (one process at a time):
 *
 *   wal-<16-digit number>.log    the lines, appended by one SegmentWriter (segment-writer.ts), in write order
 *   wal-<16-digit number>.acks   `lo hi` per acknowledged run of lines [lo, hi) of that segment, appended as Kafka
 *                                acknowledges them (not fsynced: a lost acknowledgement means a duplicate, never a
 *                                loss)
 *
 * A segment is deleted once it is sealed (rotated at `segmentBytes`, or closed) and every line is acknowledged.
 * Segments left by an earlier process are found at construction, read (acks, complete lines) by `load`, and come
 * first; a new process never appends to them. A last line without its newline (a write torn by a crash) is not a
 * line.
 */
import { closeSync, openSync, readdirSync, writeSync } from 'node:fs';
import { open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { RangeSet } from './range-set.ts';
import { SegmentWriter, closeQuietly } from './segment-writer.ts';
import type { Segment } from './segment-writer.ts';

export interface WalSegment extends Segment {
  /** The number in the file name; segments are read in this order. */
  readonly no: number;
  /** Lines Kafka acknowledged. */
  readonly acked: RangeSet;
  /** Left by an earlier process; `lines` and `bytes` are known once `load` has read it. */
  readonly leftover: boolean;
  /** `lines` and `bytes` are final or being counted by the writer (false for a leftover not yet loaded). */
  counted: boolean;
  /** Deleted from disk (every line acknowledged). */
  removed: boolean;
  ackFd: number | undefined;
}

export interface WriteAheadLogOptions {
  dir: string;
  /** Seal a segment and start the next past this size, bytes. */
  segmentBytes: number;
  /** fdatasync the segment being written this often, ms (0: only when it is sealed). */
  syncMs: number;
  /** Appends started failing (called once per transition). */
  onFailing(err: unknown): void;
  /** Appends work again. */
  onRecovered(): void;
  /** Housekeeping failures (an acks append, a delete): reported, never fatal. */
  onError(what: string, err: unknown): void;
}

const SEGMENT = /^wal-(\d{16})\.log$/;
const name = (no: number, ext: 'log' | 'acks') => `wal-${String(no).padStart(16, '0')}.${ext}`;

/** A write-ahead log file's name (`walFileName`) and back: its segment number and kind, undefined for any other file. */
export { name as walFileName };
export function parseWalFileName(file: string): { no: number; ext: 'log' | 'acks' } | undefined {
  const m = /^wal-(\d{16})\.(log|acks)$/.exec(file);
  return m ? { no: Number(m[1]), ext: m[2] as 'log' | 'acks' } : undefined;
}

export class WriteAheadLog {
  readonly dir: string;
  readonly #o: WriteAheadLogOptions;
  readonly #writer: SegmentWriter<WalSegment>;
  /** Oldest first; removed segments are dropped from the list. */
  #segments: WalSegment[] = [];
  #nextNo = 0;
  #closed = false;
  /** Segment deletions under way. */
  readonly #removing = new Set<Promise<void>>();

  constructor(options: WriteAheadLogOptions) {
    this.dir = options.dir;
    this.#o = options;
    let names: string[] = [];
    try {
      names = readdirSync(this.dir).filter((n) => SEGMENT.test(n)).sort();
    } catch {
      // No directory yet (the writer creates it), or an unusable one (appends will fail and say so).
    }
    for (const n of names) {
      const no = Number(SEGMENT.exec(n)?.[1]);
      this.#segments.push(newSegment(no, true));
      this.#nextNo = no + 1;
    }
    this.#writer = new SegmentWriter<WalSegment>({
      dir: this.dir,
      segmentBytes: options.segmentBytes,
      syncMs: options.syncMs,
      newSegment: () => {
        const segment = newSegment(this.#nextNo++, false);
        this.#segments.push(segment);
        return segment;
      },
      onSealed: (segment) => this.#removeIfDone(segment),
      onFailing: options.onFailing,
      onRecovered: options.onRecovered,
    });
  }

  /** Segments left by an earlier process (before `load`, their lines are not counted yet). */
  get hasLeftovers(): boolean {
    return this.#segments.some((s) => s.leftover);
  }

  /** The segments not yet deleted, oldest first (the one being written last). */
  get segments(): readonly WalSegment[] {
    return this.#segments;
  }

  /**
   * Reads the leftover segments: their acknowledgements and their complete lines (counted in 1 MiB reads, so the
   * event loop keeps turning). Returns how many of their lines are not acknowledged. Fully acknowledged leftovers
   * are deleted.
   */
  async load(): Promise<{ segments: number; pending: number }> {
    let pending = 0;
    let segments = 0;
    for (const segment of this.#segments.filter((s) => s.leftover && !s.counted)) {
      try {
        const acks = await readFile(join(this.dir, name(segment.no, 'acks')), 'utf8').catch(() => '');
        const loaded = RangeSet.fromLines(acks);
        const { lines, bytes } = await countLines(join(this.dir, segment.name));
        segment.lines = lines;
        segment.bytes = bytes;
        // Only acknowledgements of lines that are in the file count.
        for (const [lo, hi] of loaded.ranges()) segment.acked.add(lo, Math.min(hi, lines));
      } catch (err) {
        this.#o.onError(`write-ahead log segment ${segment.name} unreadable; skipped`, err);
        segment.lines = 0;
        segment.bytes = 0;
      }
      segment.counted = true;
      const left = segment.lines - segment.acked.coveredBelow(segment.lines);
      if (left > 0) segments++;
      pending += left;
      this.#removeIfDone(segment);
    }
    return { segments, pending };
  }

  /** Appends one line (see SegmentWriter.append): its segment and index, or undefined when the write failed. */
  append(line: Buffer): { segment: WalSegment; line: number } | undefined {
    return this.#writer.append(line);
  }

  /** Appends lines in order, one write per segment file (see SegmentWriter.appendMany). */
  appendMany(lines: readonly Buffer[]): ({ segment: WalSegment; line: number } | undefined)[] {
    return this.#writer.appendMany(lines);
  }

  /**
   * Records that Kafka acknowledged lines [lo, hi) of `segment`; returns how many were not acknowledged before.
   * Deletes the segment once it is sealed and complete.
   */
  ack(segment: WalSegment, lo: number, hi: number): number {
    const added = segment.acked.add(lo, hi);
    if (added === 0 || segment.removed) return added;
    if (!this.#closed) {
      try {
        segment.ackFd ??= openSync(join(this.dir, name(segment.no, 'acks')), 'a');
        writeSync(segment.ackFd, `${lo} ${hi}\n`);
      } catch (err) {
        this.#o.onError(`write-ahead log: acknowledgement not recorded in ${this.dir} (those lines may be sent again after a restart)`, err);
      }
    }
    this.#removeIfDone(segment);
    return added;
  }

  /** Seals the segment being written, so that everything appended so far is in sealed segments. */
  rotate(): void {
    this.#writer.rotate();
  }

  /** fdatasyncs the segment being written. */
  sync(): Promise<void> {
    return this.#writer.sync();
  }

  /** Seals and syncs the segment being written, deletes complete segments, closes files. Appends then fail. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#writer.close();
    await Promise.all(this.#segments.map((s) => this.#removeIfDone(s)));
    // Deletions started by acknowledgements before the close finish before it resolves.
    await Promise.all([...this.#removing]);
    for (const s of this.#segments) {
      closeQuietly(s.ackFd);
      s.ackFd = undefined;
    }
  }

  #removeIfDone(segment: WalSegment): Promise<void> | undefined {
    if (segment.removed || !segment.sealed || !segment.counted) return undefined;
    if (segment.acked.coveredBelow(segment.lines) < segment.lines) return undefined;
    segment.removed = true;
    this.#segments = this.#segments.filter((s) => s !== segment);
    if (segment.ackFd !== undefined) {
      try {
        closeSync(segment.ackFd);
      } catch {
        // already closed
      }
      segment.ackFd = undefined;
    }
    const removing: Promise<void> = Promise.all([
      rm(join(this.dir, segment.name), { force: true }),
      rm(join(this.dir, name(segment.no, 'acks')), { force: true }),
    ]).then(
      () => undefined,
      (err: unknown) => this.#o.onError(`write-ahead log: ${segment.name} not deleted`, err),
    );
    this.#removing.add(removing);
    void removing.finally(() => this.#removing.delete(removing));
    return removing;
  }
}

function newSegment(no: number, leftover: boolean): WalSegment {
  return {
    name: name(no, 'log'),
    no,
    lines: 0,
    bytes: 0,
    sealed: leftover,
    acked: new RangeSet(),
    leftover,
    counted: !leftover,
    removed: false,
    ackFd: undefined,
  };
}

/** Complete lines of a file and the bytes they take (a torn last line excluded), read 1 MiB at a time. */
async function countLines(path: string): Promise<{ lines: number; bytes: number }> {
  const file = await open(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    let lines = 0;
    let bytes = 0;
    let offset = 0;
    for (;;) {
      const { bytesRead } = await file.read(buf, 0, buf.length, offset);
      if (bytesRead === 0) break;
      const chunk = buf.subarray(0, bytesRead);
      for (let i = chunk.indexOf(10); i >= 0; i = chunk.indexOf(10, i + 1)) {
        lines++;
        bytes = offset + i + 1;
      }
      offset += bytesRead;
    }
    return { lines, bytes };
  } finally {
    await file.close();
  }
}
