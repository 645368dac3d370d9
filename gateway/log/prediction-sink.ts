/**
 * The prediction-log role. Implementations: file-sink.ts (embedded default: JSON lines in a local directory),
 * kafka-sink.ts (production: CloudEvents over Kafka, batched, spilling to a local log while Kafka is away),
 * null-sink.ts (logging off).
 */
import type { PredictionRecord } from './prediction-record.ts';

export interface SinkStats {
  /** Records accepted by `write`. */
  readonly accepted: number;
  /** Records acknowledged by the destination. */
  readonly delivered: number;
  /** Records written to the local spill log (Kafka away or buffer full). */
  readonly spilled: number;
  /** Records lost (disk full): counted and alarmed, never silent. */
  readonly lost: number;
  /** Records waiting in memory or in the spill log. */
  readonly pending: number;
}

export interface PredictionSink {
  readonly kind: string;
  /** Never blocks, never throws: the request path calls it and moves on. */
  write(record: PredictionRecord): void;
  /** Resolves when everything written before the call has been delivered or spilled to disk. */
  flush(): Promise<void>;
  /** Flushes and closes; idempotent. */
  shutdown(): Promise<void>;
  stats(): SinkStats;
}
