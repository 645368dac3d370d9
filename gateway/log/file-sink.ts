/**
 * The embedded default prediction log: JSON lines files in a local directory, one record per line in the same
 * ProtoJSON as the Kafka sink's message data (cloud-event.ts). `write` serializes the record and appends it with
 * the others written in the same run of microtasks, in one write (microtask-batch.ts, segment-writer.ts), and returns
 * a promise that resolves once they are in the file: the pipeline awaits it before the answer is sent, so an answered
 * request's record survives a crash of the process; a background fdatasync every `syncMs` bounds what a machine
 * crash can take. A failed write counts every record of it as lost, though the first of them may be in the file.
 * A file is closed and a new one started when it would pass `maxFileBytes`. File names sort by creation:
 * `predictions-<UTC time>-<pid>-<n>.jsonl`.
 */
import { recordToJson } from './prediction-record.ts';
import type { PredictionSink, SinkStats } from './prediction-sink.ts';
import type { PredictionRecord } from './prediction-record.ts';
import { MicrotaskBatch } from './microtask-batch.ts';
import { SegmentWriter } from './segment-writer.ts';
import type { Segment } from './segment-writer.ts';

export interface FileSinkOptions {
  /** Directory for the files; created when missing. */
  dir: string;
  /** Rotate past this size, bytes. Default 64 MiB. */
  maxFileBytes?: number;
  /** fdatasync the current file this often when it has new lines, ms; 0: only when a file is closed. Default 100. */
  syncMs?: number;
  logger?: { warn(message: string, err?: unknown): void; error(message: string, err?: unknown): void };
}

export function createFileSink(options: FileSinkOptions): PredictionSink {
  return new FileSink(options);
}

export class FileSink implements PredictionSink {
  readonly kind = 'file';
  readonly #writer: SegmentWriter<Segment>;
  readonly #logger: NonNullable<FileSinkOptions['logger']>;
  #accepted = 0;
  #written = 0;
  #lost = 0;
  #lostSinceFailing = 0;
  #fileCount = 0;
  #closed = false;
  #shutdown: Promise<void> | undefined;
  /** Lines written and not yet appended: appended together at the end of their run of microtasks. */
  readonly #unappended = new MicrotaskBatch<Buffer>((lines) => this.#append(lines));

  constructor(options: FileSinkOptions) {
    this.#logger = options.logger ?? console;
    const dir = options.dir;
    this.#writer = new SegmentWriter<Segment>({
      dir,
      segmentBytes: options.maxFileBytes ?? 64 * 1024 * 1024,
      syncMs: options.syncMs ?? 100,
      newSegment: () => {
        const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('.', '');
        const name = `predictions-${stamp}-${process.pid}-${String(++this.#fileCount).padStart(4, '0')}.jsonl`;
        return { name, lines: 0, bytes: 0, sealed: false };
      },
      onFailing: (err) => {
        this.#lostSinceFailing = 0;
        this.#logger.error(`prediction log: LOST: appends to ${dir} failing; records are counted as lost until they work again`, err);
      },
      onRecovered: () => this.#logger.warn(`prediction log: appends to ${dir} work again; ${this.#lostSinceFailing} record(s) lost meanwhile`),
    });
  }

  write(record: PredictionRecord): Promise<void> | undefined {
    this.#accepted++;
    if (this.#closed) {
      this.#lose('write after shutdown');
      return undefined;
    }
    let line: Buffer;
    try {
      line = Buffer.from(`${recordToJson(record)}\n`);
    } catch (err) {
      this.#lose(`record ${record.predictionId} cannot be serialized`, err);
      return undefined;
    }
    return this.#unappended.add(line);
  }

  #append(lines: readonly Buffer[]): void {
    for (const at of this.#writer.appendMany(lines)) {
      if (at === undefined) {
        this.#lost++;
        this.#lostSinceFailing++;
      } else this.#written++;
    }
  }

  /** Appends what waits for its run of microtasks to end, then waits for an fdatasync of the file. */
  async flush(): Promise<void> {
    this.#unappended.flush();
    await this.#writer.sync();
  }

  shutdown(): Promise<void> {
    this.#shutdown ??= (async () => {
      this.#unappended.flush();
      this.#closed = true;
      await this.#writer.close();
    })();
    return this.#shutdown;
  }

  stats(): SinkStats {
    return { accepted: this.#accepted, delivered: this.#written, spilled: 0, lost: this.#lost, pending: this.#accepted - this.#written - this.#lost };
  }

  #lose(why: string, err?: unknown): void {
    this.#lost++;
    this.#logger.error(`prediction log: LOST 1 record: ${why}`, err);
  }
}
