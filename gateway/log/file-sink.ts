/**
 * The embedded default prediction log: JSON lines files in a local directory, one record per line in the same
 * ProtoJSON as the Kafka sink's message value (cloud-event.ts). Records are buffered in memory and appended
 * asynchronously in batches by one writer, in write order; a file is closed and a new one started when it would
 * pass `maxFileBytes`. File names sort by creation: `predictions-<UTC time>-<pid>-<n>.jsonl`.
 */
import { mkdir, open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { recordToJson } from './prediction-record.ts';
import type { PredictionSink, SinkStats } from './prediction-sink.ts';
import type { PredictionRecord } from './prediction-record.ts';

export interface FileSinkOptions {
  /** Directory for the files; created when missing. */
  dir: string;
  /** Rotate past this size, bytes. Default 64 MiB. */
  maxFileBytes?: number;
  /** Longest a record waits in memory before it is written, ms. Default 200. */
  lingerMs?: number;
  /** Records per append. Default 1000; a full batch is written without waiting for the linger time. */
  batchSize?: number;
  /** Records held in memory at most; past it, new records are counted in `lost` and reported. Default 100 000. */
  maxBuffered?: number;
  /** fdatasync after every append. Default false (the OS flushes; a process crash loses nothing written). */
  fsync?: boolean;
  logger?: Pick<Console, 'error'>;
}

export function createFileSink(options: FileSinkOptions): PredictionSink {
  return new FileSink(options);
}

export class FileSink implements PredictionSink {
  readonly kind = 'file';
  readonly #dir: string;
  readonly #maxFileBytes: number;
  readonly #lingerMs: number;
  readonly #batchSize: number;
  readonly #maxBuffered: number;
  readonly #fsync: boolean;
  readonly #logger: Pick<Console, 'error'>;
  #buffer: PredictionRecord[] = [];
  #accepted = 0;
  #written = 0;
  #lost = 0;
  #file: FileHandle | undefined;
  #fileBytes = 0;
  #fileCount = 0;
  #writing: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #waiters: { target: number; resolve: () => void }[] = [];
  #closed = false;
  #shutdown: Promise<void> | undefined;

  constructor(options: FileSinkOptions) {
    this.#dir = options.dir;
    this.#maxFileBytes = options.maxFileBytes ?? 64 * 1024 * 1024;
    this.#lingerMs = options.lingerMs ?? 200;
    this.#batchSize = options.batchSize ?? 1000;
    this.#maxBuffered = options.maxBuffered ?? 100_000;
    this.#fsync = options.fsync ?? false;
    this.#logger = options.logger ?? console;
  }

  write(record: PredictionRecord): void {
    this.#accepted++;
    if (this.#closed || this.#buffer.length >= this.#maxBuffered) {
      this.#lose(1, this.#closed ? 'write after shutdown' : 'memory buffer full (disk too slow)');
      return;
    }
    this.#buffer.push(record);
    if (this.#buffer.length >= this.#batchSize) this.#startWriting();
    else this.#timer ??= setTimeout(() => this.#startWriting(), this.#lingerMs).unref();
  }

  flush(): Promise<void> {
    const target = this.#accepted;
    if (this.#written + this.#lost >= target) return Promise.resolve();
    const done = new Promise<void>((resolve) => this.#waiters.push({ target, resolve }));
    this.#startWriting();
    return done;
  }

  shutdown(): Promise<void> {
    this.#shutdown ??= (async () => {
      this.#closed = true;
      await this.flush();
      clearTimeout(this.#timer);
      await this.#file?.close().catch(() => {});
      this.#file = undefined;
    })();
    return this.#shutdown;
  }

  stats(): SinkStats {
    return {
      accepted: this.#accepted,
      delivered: this.#written,
      spilled: 0,
      lost: this.#lost,
      pending: this.#accepted - this.#written - this.#lost,
    };
  }

  #startWriting(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#writing ??= this.#writeAll().finally(() => {
      this.#writing = undefined;
      if (this.#buffer.length > 0) this.#startWriting();
    });
  }

  async #writeAll(): Promise<void> {
    while (this.#buffer.length > 0) {
      const batch = this.#buffer.splice(0, this.#batchSize * 4);
      let lines: string[] = [];
      for (const record of batch) {
        try {
          lines.push(recordToJson(record) + '\n');
        } catch (err) {
          this.#lose(1, `record ${record.predictionId} cannot be serialized`, err);
        }
      }
      // Appends that fit the current file's room; a new file when the next line would not fit.
      while (lines.length > 0) {
        let room = this.#maxFileBytes - (this.#file === undefined ? 0 : this.#fileBytes);
        let n = 0;
        let bytes = 0;
        for (const line of lines) {
          const size = Buffer.byteLength(line);
          if (bytes + size > room && n > 0) break;
          if (bytes + size > room && this.#file !== undefined && this.#fileBytes > 0) {
            room = this.#maxFileBytes;
            await this.#rotate();
          }
          bytes += size;
          n++;
        }
        const piece = lines.slice(0, n);
        lines = lines.slice(n);
        await this.#append(piece);
      }
      this.#settle();
    }
  }

  async #append(piece: string[]): Promise<void> {
    const bytes = Buffer.from(piece.join(''));
    try {
      const file = await this.#open();
      await file.write(bytes);
      if (this.#fsync) await file.datasync();
      this.#fileBytes += bytes.length;
      this.#written += piece.length;
    } catch (err) {
      this.#lose(piece.length, `append to ${this.#dir} failed`, err);
      await this.#rotate();
    }
  }

  async #rotate(): Promise<void> {
    const file = this.#file;
    this.#file = undefined;
    await file?.close().catch(() => {});
  }

  async #open(): Promise<FileHandle> {
    if (this.#file === undefined) {
      await mkdir(this.#dir, { recursive: true });
      const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('.', '');
      const name = `predictions-${stamp}-${process.pid}-${String(++this.#fileCount).padStart(4, '0')}.jsonl`;
      this.#file = await open(join(this.#dir, name), 'a');
      this.#fileBytes = 0;
    }
    return this.#file;
  }

  #lose(count: number, why: string, err?: unknown): void {
    this.#lost += count;
    this.#logger.error(`prediction log: LOST ${count} record(s): ${why}`, err ?? '');
    this.#settle();
  }

  #settle(): void {
    const done = this.#written + this.#lost;
    this.#waiters = this.#waiters.filter((w) => (w.target <= done ? (w.resolve(), false) : true));
  }
}
