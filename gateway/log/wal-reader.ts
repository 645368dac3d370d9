/**
 * Reads the write-ahead log back for replay: the lines Kafka has not acknowledged, oldest segment first, in
 * batches that each belong to one segment. Files are read in `chunkBytes` pieces (asynchronously), a line becomes
 * a message by slicing its bytes (wal-line.ts: no JSON parsing), and a batch is cut as soon as it is full, so one
 * call does bounded work on the event loop: ~0.2 µs per line plus the newline search.
 *
 * The segment being written is read up to what has been appended (`bytes`), and further on the next call. A reader
 * starts at the oldest segment; acknowledged lines are skipped as they are met.
 */
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { messageOfLine } from './wal-line.ts';
import type { KafkaMessage } from './kafka-producer.ts';
import type { WalSegment, WriteAheadLog } from './write-ahead-log.ts';

export interface ReplayBatch {
  readonly segment: WalSegment;
  /** Indexes of the batch's lines in the segment, ascending. */
  readonly lines: number[];
  readonly messages: KafkaMessage[];
}

export interface WalReaderOptions {
  /** Bytes per file read. Default 256 KiB. */
  chunkBytes?: number;
  /** A line that is not a message (skipped; the caller decides what it means). */
  unreadable(segment: WalSegment, line: number): void;
}

export class WalReader {
  readonly #wal: WriteAheadLog;
  readonly #o: WalReaderOptions;
  readonly #chunkBytes: number;
  #segment: WalSegment | undefined;
  /** Number of the last segment started (-1: none). */
  #lastNo = -1;
  #file: FileHandle | undefined;
  /** Bytes of the current segment read from the file. */
  #offset = 0;
  /** Read but not yet consumed: `#buf[#pos..]`. */
  #buf: Buffer = Buffer.alloc(0);
  #pos = 0;
  /** Index of the next line of the current segment. */
  #line = 0;

  constructor(wal: WriteAheadLog, options: WalReaderOptions) {
    this.#wal = wal;
    this.#o = options;
    this.#chunkBytes = options.chunkBytes ?? 256 * 1024;
  }

  /** Up to `max` unacknowledged lines of one segment; undefined when everything appended so far was returned. */
  async next(max: number): Promise<ReplayBatch | undefined> {
    const lines: number[] = [];
    const messages: KafkaMessage[] = [];
    for (;;) {
      const segment = this.#segment ?? (await this.#advance());
      if (segment === undefined) break;
      // Whole lines already read.
      let nl = this.#buf.indexOf(10, this.#pos);
      while (nl >= 0 && lines.length < max) {
        const line = this.#line++;
        const start = this.#pos;
        this.#pos = nl + 1;
        if (!segment.acked.has(line)) {
          const m = messageOfLine(this.#buf, start, nl);
          if (m === undefined) this.#o.unreadable(segment, line);
          else {
            lines.push(line);
            messages.push(m);
          }
        }
        if (lines.length < max) nl = this.#buf.indexOf(10, this.#pos);
      }
      if (lines.length >= max) break;
      // More of this segment on disk?
      if (this.#offset < segment.bytes) {
        await this.#read(segment);
        continue;
      }
      // At its end: a sealed segment is done (a batch never spans two); the one being written may grow.
      if (segment.sealed && segment.counted) {
        if (lines.length > 0) break;
        await this.#closeFile();
        this.#segment = undefined;
        continue;
      }
      break;
    }
    const segment = this.#segment;
    return lines.length === 0 || segment === undefined ? undefined : { segment, lines, messages };
  }

  /** True when every line appended so far has been returned by `next` (or skipped): checked synchronously. */
  get atEnd(): boolean {
    if (this.#buf.indexOf(10, this.#pos) >= 0) return false;
    const segment = this.#segment;
    if (segment !== undefined && this.#offset < segment.bytes) return false;
    return !this.#wal.segments.some((s) => s.no > this.#lastNo);
  }

  async close(): Promise<void> {
    await this.#closeFile();
    this.#segment = undefined;
  }

  async #advance(): Promise<WalSegment | undefined> {
    const segment = this.#wal.segments.find((s) => s.no > this.#lastNo);
    // A leftover not loaded yet is not skipped: the reader waits for it.
    if (segment === undefined || !segment.counted) return undefined;
    this.#lastNo = segment.no;
    this.#offset = 0;
    this.#line = 0;
    this.#buf = Buffer.alloc(0);
    this.#pos = 0;
    if (segment.bytes > 0) {
      try {
        this.#file = await open(join(this.#wal.dir, segment.name), 'r');
      } catch {
        // Deleted meanwhile (every line acknowledged): nothing to read.
        this.#file = undefined;
        this.#offset = segment.bytes;
      }
    }
    this.#segment = segment;
    return segment;
  }

  async #read(segment: WalSegment): Promise<void> {
    const want = Math.min(this.#chunkBytes, segment.bytes - this.#offset);
    const chunk = Buffer.allocUnsafe(want);
    let got = 0;
    if (this.#file !== undefined) {
      ({ bytesRead: got } = await this.#file.read(chunk, 0, want, this.#offset));
    }
    if (got === 0) {
      // The file ends before `bytes` (deleted and replaced, or truncated): nothing more is readable here.
      this.#offset = segment.bytes;
      return;
    }
    this.#offset += got;
    // New buffers each time: messages of earlier batches are views into the old ones.
    const rest = this.#buf.subarray(this.#pos);
    this.#buf = rest.length > 0 ? Buffer.concat([rest, chunk.subarray(0, got)]) : chunk.subarray(0, got);
    this.#pos = 0;
  }

  async #closeFile(): Promise<void> {
    const file = this.#file;
    this.#file = undefined;
    await file?.close().catch(() => {});
  }
}
