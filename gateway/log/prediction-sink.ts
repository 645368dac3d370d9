/**
 * The prediction-log role. Implementations: file-sink.ts (embedded default: JSON lines in a local directory),
 * kafka-sink.ts (production: CloudEvents over Kafka, batched, every record first in a local write-ahead log),
 * null-sink.ts (logging off).
 */
import type { PredictionRecord } from './prediction-record.ts';

export interface SinkStats {
  /** Records accepted by `write`. */
  readonly accepted: number;
  /** Records acknowledged by the destination. */
  readonly delivered: number;
  /** Records sent from the Kafka sink's write-ahead log rather than from memory (Kafka away, slow, or memory full). */
  readonly spilled: number;
  /** Records lost (disk full): counted and alarmed, never silent. */
  readonly lost: number;
  /** Records not yet acknowledged by the destination: in memory, in flight, or in the write-ahead log. */
  readonly pending: number;
}

export interface PredictionSink {
  readonly kind: string;
  /**
   * Never waits on the network, never throws: the request path calls it before the answer is sent. The file and
   * Kafka sinks serialize the record at once, append the records written in one run of microtasks to a local file
   * together (microtask-batch.ts), and return a promise that resolves once they are there (it never rejects). The
   * pipeline awaits it before answering, so a process crash after the answer loses nothing.
   */
  write(record: PredictionRecord): void | Promise<void>;
  /** Resolves when everything written before the call has been delivered, or is on disk waiting for the destination. */
  flush(): Promise<void>;
  /** Flushes and closes; idempotent. */
  shutdown(): Promise<void>;
  stats(): SinkStats;
}
