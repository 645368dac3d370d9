/**
 * The embedded default prediction log: JSON lines files in a local directory, one record per line in the same
 * ProtoJSON as the Kafka sink's message data (cloud-event.ts). `write` appends the line before it returns
 * (segment-writer.ts): the pipeline calls it before the answer is sent, so an answered request's record survives
 * a crash of the process; a background fdatasync every `syncMs` bounds what a machine crash can take. A file is
 * closed and a new one started when it would pass `maxFileBytes`. File names sort by creation:
 * `predictions-<UTC time>-<pid>-<n>.jsonl`.
 */
import { recordToJson } from './prediction-record.ts';
import type { PredictionSink, SinkStats } from './prediction-sink.ts';
import type { PredictionRecord } from './prediction-record.ts';
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

  write(record: PredictionRecord): void {
    this.#accepted++;
    if (this.#closed) {
      this.#lose('write after shutdown');
      return;
    }
    let line: Buffer;
    try {
      line = Buffer.from(`${recordToJson(record)}\n`);
    } catch (err) {
      this.#lose(`record ${record.predictionId} cannot be serialized`, err);
      return;
    }
    if (this.#writer.append(line) === undefined) {
      this.#lost++;
      this.#lostSinceFailing++;
    } else this.#written++;
  }

  /** Every record written is in a file already (the OS's page cache); this waits for an fdatasync. */
  async flush(): Promise<void> {
    await this.#writer.sync();
  }

  shutdown(): Promise<void> {
    this.#shutdown ??= (async () => {
      this.#closed = true;
      await this.#writer.close();
    })();
    return this.#shutdown;
  }

  stats(): SinkStats {
    return { accepted: this.#accepted, delivered: this.#written, spilled: 0, lost: this.#lost, pending: 0 };
  }

  #lose(why: string, err?: unknown): void {
    this.#lost++;
    this.#logger.error(`prediction log: LOST 1 record: ${why}`, err);
  }
}
