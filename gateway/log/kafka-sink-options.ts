/** Options of the Kafka prediction sink (kafka-sink.ts), with their defaults. */
import type { KafkaCompression } from './kafka-producer.ts';
import type { SpillFsync } from './spill-log.ts';

export interface KafkaSinkOptions {
  /** host:port list. */
  brokers: string[];
  topic: string;
  /** The cell: the CloudEvent source `sibyl/<cell>` when a record has no cell of its own. */
  cell: string;
  /** Directory of the spill log. */
  spillDir: string;
  /** Records per Kafka batch. Default 500. */
  batchSize?: number;
  /** Longest a record waits in memory before its batch goes, ms. Default 20. */
  lingerMs?: number;
  /** Records held in memory (direct mode) before the sink spills to disk. Default 50 000. */
  maxBuffered?: number;
  /** Concurrent sends. Default 4. */
  maxInFlight?: number;
  /** Partitions of the topic when the sink creates it (at first connect). Default 3. */
  partitions?: number;
  /** Spill-log durability: 'always' fdatasyncs each append before it counts as spilled (default); 'never'. */
  spillFsync?: SpillFsync;
  /** Spill segment size, bytes. Default 16 MiB. */
  spillSegmentBytes?: number;
  /**
   * Batch compression: 'none' (default) or 'gzip'. gzip costs 7-11 µs more CPU per ~1 KB record (more than the
   * rest of the sink) and sends about 8 times fewer bytes (gateway/log/README.md has the measurement).
   */
  compression?: KafkaCompression;
  /** Bound on each Kafka request and the broker's wait for acks, ms (connecting: at most 3 000). Default 10 000. */
  requestTimeoutMs?: number;
  /** Retries per Kafka request (connect, metadata, send) before the sink spills; 100 ms doubling to 1 s. Default 2. */
  retries?: number;
  /** First wait of the drainer after a failed replay; doubles up to 10 s. Default 500 ms. */
  retryBackoffMs?: number;
  /** How long `shutdown` waits for sends before it spills them instead (duplicates possible), ms. Default 10 000. */
  shutdownTimeoutMs?: number;
  /** Kafka client id. Default 'sibyl-gateway'. */
  clientId?: string;
  logger?: Pick<Console, 'warn' | 'error'>;
}

export type ResolvedKafkaSinkOptions = Required<Omit<KafkaSinkOptions, 'logger' | 'clientId'>>;

export function resolveKafkaSinkOptions(options: KafkaSinkOptions): ResolvedKafkaSinkOptions {
  return {
    brokers: options.brokers,
    topic: options.topic,
    cell: options.cell,
    spillDir: options.spillDir,
    batchSize: options.batchSize ?? 500,
    lingerMs: options.lingerMs ?? 20,
    maxBuffered: options.maxBuffered ?? 50_000,
    maxInFlight: options.maxInFlight ?? 4,
    partitions: options.partitions ?? 3,
    spillFsync: options.spillFsync ?? 'always',
    spillSegmentBytes: options.spillSegmentBytes ?? 16 * 1024 * 1024,
    compression: options.compression ?? 'none',
    requestTimeoutMs: options.requestTimeoutMs ?? 10_000,
    retries: options.retries ?? 2,
    retryBackoffMs: options.retryBackoffMs ?? 500,
    shutdownTimeoutMs: options.shutdownTimeoutMs ?? 10_000,
  };
}
