/**
 * Kafka's record batch (magic 2), written in one pass into one buffer, and the produce request that carries it, in
 * place of @platformatic/kafka's own encoding. The client stays in charge of everything else about a send
 * (metadata, leaders, the idempotent producer's id and sequence numbers, retries); `BatchEncodingProducer` only
 * hands it this request builder when it asks for the Produce API.
 *
 * Why: the client builds each record from small buffers (one per varint, two Maps per message), ~4.5 KB of garbage
 * per ~1 KB record; this encoder measures the lengths first, allocates the batch once and writes every field in
 * place: 1.9-2.1 against 0.6-1.5 µs per record to encode, the producer's thread 7.3 against 5.8 µs per S1 request
 * (gateway/log/README.md, "Record batches are encoded by Sibyl"; `loadtest/micro/kafka-encode.bench.ts` checks both
 * write the same bytes). The batch is byte for byte the client's (test/log/record-batch.test.ts), so a broker sees no
 * difference; only Produce v9-v11 (Kafka 2.8 on) with a codec the client compresses synchronously are built here,
 * anything else (an older broker, gzip, which the client compresses off the thread) goes through the client's own.
 */
import {
  compressionsAlgorithms,
  crc32c,
  createAPI,
  groupByProperty,
  kGetApi,
  ProduceAcks,
  Producer,
  Writer,
  type API,
  type Callback,
  type CreateRecordsBatchOptions,
  type MessageRecord,
} from '@platformatic/kafka';
import * as apis from '@platformatic/kafka';

/** Bytes of a batch before its records: base offset to record count (Kafka's DefaultRecordBatch). */
const BATCH_HEAD = 61;
/** Where the CRC-32C starts (attributes) and where it is written. */
const CRC_FROM = 21;
const CRC_AT = 17;
const MAGIC = 2;
const IS_TRANSACTIONAL = 1 << 4;

type Bytes = Uint8Array | string;

/** Zig-zag encoding of an integer up to 2^52 in magnitude, without 32-bit arithmetic (timestamp deltas can be large). */
const zigzag = (v: number): number => (v >= 0 ? v * 2 : -v * 2 - 1);

function varintSize(v: number): number {
  if (v < 0x80) return 1;
  if (v < 0x4000) return 2;
  if (v < 0x200000) return 3;
  if (v < 0x10000000) return 4;
  let n = 5;
  for (v = Math.floor(v / 0x800000000); v > 0; v = Math.floor(v / 128)) n++;
  return n;
}

function writeVarint(buf: Buffer, at: number, v: number): number {
  if (v <= 0x7fffffff) {
    // The common case in 32-bit arithmetic: lengths, offsets, small deltas.
    while (v > 0x7f) {
      buf[at++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
  } else {
    while (v >= 0x80) {
      buf[at++] = (v % 128) | 0x80;
      v = Math.floor(v / 128);
    }
  }
  buf[at++] = v;
  return at;
}

const asBuffer = (b: Bytes): Uint8Array => (typeof b === 'string' ? Buffer.from(b) : b);
/** A field's bytes: null is a length of -1. */
const fieldSize = (b: Uint8Array | null | undefined): number => (b == null ? 1 : varintSize(zigzag(b.length)) + b.length);

function writeField(buf: Buffer, at: number, b: Uint8Array | null | undefined): number {
  if (b == null) {
    buf[at] = 1; // zigzag(-1)
    return at + 1;
  }
  at = writeVarint(buf, at, zigzag(b.length));
  buf.set(b, at);
  return at + b.length;
}

export interface RecordBatchOptions {
  /** -1n (the default) outside an idempotent or transactional producer. */
  readonly producerId?: bigint;
  readonly producerEpoch?: number;
  /** The first record's sequence number in its partition (idempotent producers). */
  readonly firstSequence?: number;
  readonly transactional?: boolean;
  readonly partitionLeaderEpoch?: number;
  /** A codec of the client's with a synchronous compressor; absent or 'none': uncompressed. */
  readonly compression?: keyof typeof compressionsAlgorithms;
}

/**
 * One partition's record batch. Every message needs its `timestamp` (the produce request sets missing ones to the
 * time of sending, as the client does); header keys and values are bytes (strings are written as UTF-8).
 */
export function encodeRecordBatch(messages: readonly MessageRecord[], options: RecordBatchOptions = {}): Buffer {
  const n = messages.length;
  const firstTimestamp = messages[0]!.timestamp!;
  let maxTimestamp = firstTimestamp;
  const sizes = new Array<number>(n);
  const deltas = new Array<number>(n);
  let headers: Uint8Array[][] | undefined;
  let recordsSize = 0;
  for (let i = 0; i < n; i++) {
    const m = messages[i]!;
    const ts = m.timestamp!;
    if (ts > maxTimestamp) maxTimestamp = ts;
    const delta = zigzag(Number(ts - firstTimestamp));
    deltas[i] = delta;
    let size = 1 + varintSize(delta) + varintSize(zigzag(i)) + fieldSize(m.key) + fieldSize(m.value);
    const h = m.headers;
    if (h === undefined || h.size === 0) {
      size += 1;
    } else {
      const pairs: Uint8Array[] = [];
      for (const [k, v] of h as Map<Bytes, Bytes>) pairs.push(asBuffer(k), asBuffer(v));
      (headers ??= new Array<Uint8Array[]>(n))[i] = pairs;
      size += varintSize(zigzag(h.size));
      for (const b of pairs) size += fieldSize(b);
    }
    sizes[i] = size;
    recordsSize += varintSize(zigzag(size)) + size;
  }

  const codec = options.compression !== undefined && options.compression !== 'none' ? compressionsAlgorithms[options.compression] : undefined;
  // Uncompressed, the records are written after the head in the batch's own buffer; compressed, apart and then
  // compressed behind the head.
  const records = Buffer.allocUnsafe(codec ? recordsSize : BATCH_HEAD + recordsSize);
  let at = codec ? 0 : BATCH_HEAD;
  for (let i = 0; i < n; i++) {
    const m = messages[i]!;
    at = writeVarint(records, at, zigzag(sizes[i]!));
    records[at++] = 0; // attributes
    at = writeVarint(records, at, deltas[i]!);
    at = writeVarint(records, at, zigzag(i)); // offset delta
    at = writeField(records, at, m.key);
    at = writeField(records, at, m.value);
    const pairs = headers?.[i];
    if (pairs === undefined) {
      records[at++] = 0;
    } else {
      at = writeVarint(records, at, zigzag(pairs.length / 2));
      for (const b of pairs) at = writeField(records, at, b);
    }
  }

  let batch = records;
  if (codec) {
    const compressed = codec.compressSync(records);
    batch = Buffer.allocUnsafe(BATCH_HEAD + compressed.length);
    batch.set(compressed, BATCH_HEAD);
  }
  batch.writeBigInt64BE(0n, 0); // base offset: the broker assigns it
  batch.writeInt32BE(batch.length - 12, 8);
  batch.writeInt32BE(options.partitionLeaderEpoch ?? 0, 12);
  batch.writeInt8(MAGIC, 16);
  batch.writeInt16BE((codec?.bitmask ?? 0) | (options.transactional ? IS_TRANSACTIONAL : 0), 21);
  batch.writeInt32BE(n - 1, 23); // last offset delta
  batch.writeBigInt64BE(firstTimestamp, 27);
  batch.writeBigInt64BE(maxTimestamp, 35);
  batch.writeBigInt64BE(options.producerId ?? -1n, 43);
  batch.writeInt16BE(options.producerEpoch ?? 0, 51);
  batch.writeInt32BE(options.firstSequence ?? 0, 53);
  batch.writeInt32BE(n, 57);
  // Handed as the client's own buffer type: given a Buffer, its native CRC-32C first copies the whole batch into a
  // new Uint8Array (a fresh ~0.5 MB per 500-record batch); gateway/log/README.md has what that cost.
  batch.writeUInt32BE(crc32c(Writer.create().append(batch.subarray(CRC_FROM)).dynamicBuffer), CRC_AT);
  return batch;
}

/**
 * A Produce request, v9-v11 (flexible versions; their requests are laid out alike): the client's arguments, the
 * batches encoded here. Missing partitions and timestamps are filled in on the messages, as the client's own does.
 */
export function produceRequest(acks: number = ProduceAcks.LEADER, timeout = 0, messages: MessageRecord[], options: Partial<CreateRecordsBatchOptions> = {}): Writer {
  const now = BigInt(Date.now());
  for (const m of messages) {
    m.partition ??= 0;
    m.timestamp ??= now;
  }
  const writer = Writer.create()
    .appendString(options.transactionalId)
    .appendInt16(acks)
    .appendInt32(timeout)
    .appendArray(groupByProperty<string, MessageRecord>(messages, 'topic'), (w, [topic, inTopic]) => {
      w.appendString(topic).appendArray(groupByProperty<number, MessageRecord>(inTopic, 'partition'), (w, [partition, inPartition]) => {
        const batch = encodeRecordBatch(inPartition, {
          producerId: options.producerId,
          producerEpoch: options.producerEpoch,
          firstSequence: options.sequences?.getWithDefault(`${topic}:${partition}`, 0) ?? 0,
          transactional: Boolean(options.transactionalId),
          partitionLeaderEpoch: options.partitionLeaderEpoch,
          compression: options.compression as RecordBatchOptions['compression'],
        });
        w.appendInt32(partition).appendUnsignedVarInt(batch.length + 1).append(batch);
      });
    })
    .appendTaggedFields();
  if (acks === ProduceAcks.NO_RESPONSE) writer.context.noResponse = true;
  return writer;
}

type ProduceApi = API<unknown[], unknown>;
type ClientProduceModule = {
  parseResponse?: (...a: never[]) => unknown;
  createRequestAsync?: (acks: number | undefined, timeout: number | undefined, messages: MessageRecord[], options?: Partial<CreateRecordsBatchOptions>) => Promise<Writer>;
};
/**
 * Produce v9-v11 with their requests built here: a send with gzip, which the client compresses off its thread (and
 * so builds asynchronously), is built by the client's own request builder of that version, as it would be.
 */
const ENCODED_HERE = new Map<number, ProduceApi>();
for (const version of [9, 10, 11]) {
  const theirs = (apis as unknown as Record<string, ClientProduceModule>)[`produceV${version}`];
  const { parseResponse, createRequestAsync } = theirs ?? {};
  if (!parseResponse || !createRequestAsync) continue;
  const request = (acks: number | undefined, timeout: number | undefined, messages: MessageRecord[], options: Partial<CreateRecordsBatchOptions> = {}) =>
    options.compression === 'gzip' ? createRequestAsync(acks, timeout, messages, options) : produceRequest(acks, timeout, messages, options);
  ENCODED_HERE.set(version, createAPI(0, version, request, parseResponse as never));
}

/**
 * The client's Producer, its produce requests built by `produceRequest` where the broker's Produce version is one
 * built here (v9-v11); an older broker gets the client's own.
 */
export class BatchEncodingProducer<K = Buffer, V = Buffer, HK = Buffer, HV = Buffer> extends Producer<K, V, HK, HV> {
  override [kGetApi]<A extends unknown[], R>(name: string, callback: Callback<API<A, R>>): void {
    if (name !== 'Produce') return super[kGetApi](name, callback);
    super[kGetApi]<A, R>(name, (error, api) => {
      if (error || api === undefined) return callback(error);
      callback(null, (ENCODED_HERE.get(api.version) as API<A, R> | undefined) ?? api);
    });
  }
}
