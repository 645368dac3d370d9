/** Options of the Kafka prediction sink (kafka-sink.ts), with their defaults. */

/**
 * Batch compression on the wire and on the broker's disk, the codecs Kafka itself defines (every broker since 2.1
 * takes all of them): gzip and zstd through node:zlib, snappy and lz4 through @platformatic/kafka's WebAssembly
 * codecs (kafka-producer.ts). All run on the producer's thread (gateway/log/README.md, "The Kafka client and
 * compression": their cost).
 */
export const KAFKA_COMPRESSIONS = ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as const;
export type KafkaCompression = (typeof KAFKA_COMPRESSIONS)[number];

/** Where the sink reports outages, recoveries and losses (console by default; the gateway passes its logger). */
export interface SinkLogger {
  info?(message: string): void;
  warn(message: string, err?: unknown): void;
  error(message: string, err?: unknown): void;
}

export interface KafkaSinkOptions {
  /** host:port list. */
  brokers: string[];
  topic: string;
  /** The cell: the CloudEvent source `sibyl/<cell>` when a record has no cell of its own. */
  cell: string;
  /** Directory of the write-ahead log (write-ahead-log.ts). One sink per directory. */
  walDir: string;
  /** Records per Kafka batch. Default 500. */
  batchSize?: number;
  /**
   * Longest a record waits in memory before its batch goes, ms. Default 100: the producer's thread costs ~1 ms per
   * batch, whatever its size, so at a few thousand records/s fewer, fuller batches halve its CPU per record
   * (gateway/log/README.md, "Batching"). The record is in the write-ahead log meanwhile; `flush` and shutdown send
   * at once.
   */
  lingerMs?: number;
  /**
   * Records held in memory for direct sends; past this (or `maxBufferedBytes`) the sink stops holding them and
   * sends from the write-ahead log instead. Default 50 000.
   */
  maxBuffered?: number;
  /** Bytes of records held in memory for direct sends (see `maxBuffered`). Default 32 MiB. */
  maxBufferedBytes?: number;
  /**
   * Delivery stall budget, ms: when a send has waited this long for its acknowledgement (or the broker has not
   * been reached this long after start while records wait), the sink stops holding records in memory and sends
   * from the write-ahead log once Kafka answers. Independent of the client's own timeouts. Default 2000.
   */
  stallMs?: number;
  /** Concurrent sends. Default 4. */
  maxInFlight?: number;
  /** Partitions of the topic when the sink creates it (at first connect). Default 3. */
  partitions?: number;
  /**
   * fdatasync of the write-ahead log, ms: bounds what a machine crash or power loss can take (a process crash
   * takes nothing: every append is written before the request is answered). 0: only at rotation and close.
   * Default 100.
   */
  walSyncMs?: number;
  /** Write-ahead log segment size, bytes. Default 16 MiB. */
  walSegmentBytes?: number;
  /**
   * Records per replayed batch. Smaller than `batchSize` on purpose: the client encodes a batch synchronously
   * (~5 ms of the event loop for 500 ~1 KB records on this machine), and replay sends one batch per turn while
   * live requests wait. Default 100.
   */
  replayBatchSize?: number;
  /**
   * Replay pace, records per second: replay reads and sends one batch per event-loop turn, and no more than
   * this many records a second, so that live requests keep their share of the loop. Default 20 000.
   */
  replayRecordsPerSecond?: number;
  /**
   * Batch compression: 'none' (default), 'gzip', 'snappy', 'lz4' or 'zstd' (`SIBYL_KAFKA_COMPRESSION`). zstd sends
   * and stores ~5 times fewer bytes of S1's records for ~7% more gateway CPU per request at 8,000/s; gzip the same
   * bytes for ~10 µs more per record (gateway/log/README.md has the measurements). Consumers need a client that
   * reads the codec.
   */
  compression?: KafkaCompression;
  /**
   * Where the Kafka client runs: 'worker' (default), a thread of its own (kafka-producer-thread.ts), so that
   * encoding a batch, compression and the sockets stay off the event loop; 'main', on the event loop.
   */
  producerThread?: 'worker' | 'main';
  /**
   * How much lower than the process that thread runs, in nice steps, and whether it runs in the batch scheduling
   * class (SCHED_BATCH, set with util-linux's `chrt` when present): both when this is above 0 (Linux; elsewhere
   * nothing changes). Default 10. At the same priority the kernel hands it the core the moment a batch arrives (it
   * has slept, so it is owed time), and the event loop waits there, in the middle of its turn, while the thread
   * encodes the batch: ~1.5 ms per 350-record batch on one core. Ten steps lower it gets a tenth of a contended core,
   * and in the batch class a wake-up never preempts the loop: it runs when the loop waits or at the scheduler's tick
   * (gateway/log/README.md, "The producer's thread and the event loop"). 0 leaves it at the process's priority and class.
   */
  producerThreadNice?: number;
  /** Broker-side deduplication of the client's retries (kafka-producer.ts). Default true. */
  idempotent?: boolean;
  /** Bound on each Kafka request and the broker's ack wait, ms (connecting: at most 3 000). Default 10 000. */
  requestTimeoutMs?: number;
  /** Retries per Kafka request (connect, metadata, send) before a send fails; 100 ms doubling to 1 s. Default 2 (the least with `idempotent`). */
  retries?: number;
  /** First wait of the replayer after a failed replay; doubles up to 10 s. Default 500 ms. */
  retryBackoffMs?: number;
  /**
   * How long `shutdown` waits for unacknowledged records to be acknowledged, ms; the rest stays in the
   * write-ahead log for the next start. Default 10 000.
   */
  shutdownTimeoutMs?: number;
  /** Kafka client id. Default 'sibyl-gateway'. */
  clientId?: string;
  logger?: SinkLogger;
}

export type ResolvedKafkaSinkOptions = Required<Omit<KafkaSinkOptions, 'logger' | 'clientId'>>;

export function resolveKafkaSinkOptions(options: KafkaSinkOptions): ResolvedKafkaSinkOptions {
  return {
    brokers: options.brokers,
    topic: options.topic,
    cell: options.cell,
    walDir: options.walDir,
    batchSize: options.batchSize ?? 500,
    lingerMs: options.lingerMs ?? 100,
    maxBuffered: options.maxBuffered ?? 50_000,
    maxBufferedBytes: options.maxBufferedBytes ?? 32 * 1024 * 1024,
    stallMs: options.stallMs ?? 2000,
    maxInFlight: options.maxInFlight ?? 4,
    partitions: options.partitions ?? 3,
    walSyncMs: options.walSyncMs ?? 100,
    walSegmentBytes: options.walSegmentBytes ?? 16 * 1024 * 1024,
    replayBatchSize: options.replayBatchSize ?? 100,
    replayRecordsPerSecond: options.replayRecordsPerSecond ?? 20_000,
    compression: options.compression ?? 'none',
    producerThread: options.producerThread ?? 'worker',
    producerThreadNice: options.producerThreadNice ?? 10,
    idempotent: options.idempotent ?? true,
    requestTimeoutMs: options.requestTimeoutMs ?? 10_000,
    retries: options.retries ?? 2,
    retryBackoffMs: options.retryBackoffMs ?? 500,
    shutdownTimeoutMs: options.shutdownTimeoutMs ?? 10_000,
  };
}
