/**
 * The Kafka side of the prediction log on @platformatic/kafka: one Producer for all sends, an Admin used once to
 * create the topic. The sink (kafka-sink.ts) owns batching, ordering and spilling; this only sends one batch
 * at a time as asked and reports success or failure. Nothing is buffered or retried here beyond the client's
 * own bounded retries (`retries`, each request bounded by `requestTimeoutMs`).
 *
 * Idempotent by default: the broker numbers each partition's batches per producer session, so a request the client
 * retries after a timeout (the broker had it but the answer was late or lost) is written once, not once per attempt.
 * The client then keeps one request in flight per broker connection. A new session (after a failed send, or a new
 * process) starts new numbers: what the write-ahead log replays then may duplicate a batch the broker had taken
 * without answering.
 *
 * Wire format per message: key = request id (UTF-8), value = the CloudEvent JSON (UTF-8), the one header
 * `content-type`; acks=all; partition from the key with the Java client's murmur2 (murmur2-partitioner.ts). Record
 * batches are encoded by record-batch.ts, not by the client (the same bytes, written in one buffer per batch).
 */
import { Admin, ProduceAcks, findErrorBy } from '@platformatic/kafka';
import type { MessageToProduce } from '@platformatic/kafka';
import { javaCompatiblePartitioner } from './murmur2-partitioner.ts';
import { BatchEncodingProducer } from './record-batch.ts';
import { messagesOfLines } from './wal-line.ts';
import type { KafkaCompression } from './kafka-sink-options.ts';

export type { KafkaCompression } from './kafka-sink-options.ts';

/** One message as sent: strings are sent as UTF-8, buffers as they are. Do not mutate `headers`: it is shared. */
export interface KafkaMessage {
  key: string | Buffer;
  value: string | Buffer;
  headers: Readonly<Record<string, string>>;
}

export interface KafkaProducerOptions {
  /** host:port list. */
  brokers: string[];
  topic: string;
  /** Partitions of the topic when it is created here. */
  partitions: number;
  compression: KafkaCompression;
  /** Bound on each request (client side) and the broker's ack wait, ms; connecting waits at most min(this, 3000). */
  requestTimeoutMs: number;
  /**
   * Retries of a failed request (connect, metadata, produce) before the call rejects; 100 ms doubling to 1 s. With
   * `idempotent`, at least 2: @platformatic/kafka retries an idempotent producer forever when given 0 or 1, and a
   * send that never settles would hold the sink's replay.
   */
  retries: number;
  /** Broker-side deduplication of the client's own retries (see above). */
  idempotent: boolean;
  clientId: string;
}

/** One Kafka connection set. Calls may overlap; `close` once, last. */
export interface KafkaProducer {
  /**
   * Reaches a broker, creates the topic unless it exists (once per producer), and waits until every partition
   * has a leader. Rejects when the cluster cannot be reached within the retries.
   */
  ready(): Promise<void>;
  /** Sends one batch to the topic; resolves when the broker acked all of it (acks=all), rejects otherwise. */
  send(messages: readonly KafkaMessage[]): Promise<void>;
  /**
   * `send` for write-ahead log lines (wal-line.ts: each line the message it holds, newline included), the sink's
   * direct sends: on the producer's own thread the lines cross as they are and are read there, so the event loop
   * neither parses them nor copies each message's key and value apart.
   */
  sendLines(lines: readonly Buffer[]): Promise<void>;
  /** Ends pending requests (they reject) and closes the connections. Never rejects. */
  close(): Promise<void>;
  /**
   * On a thread of its own (kafka-producer-thread.ts): resolves once that thread has loaded its modules and the
   * client can start connecting (0.3-6 s here, more on a loaded machine). Absent when the client runs on the
   * calling thread: it can start at once. Never rejects.
   */
  readonly started?: Promise<void>;
}

type Bytes = MessageToProduce<Buffer, Buffer, Buffer, Buffer>;

export function createKafkaProducer(options: KafkaProducerOptions): KafkaProducer {
  const { brokers, topic, partitions, compression, requestTimeoutMs, retries, idempotent, clientId } = options;
  const connection = {
    clientId,
    bootstrapBrokers: brokers,
    connectTimeout: Math.min(requestTimeoutMs, 3000),
    requestTimeout: requestTimeoutMs,
    timeout: requestTimeoutMs,
    retries: idempotent ? Math.max(2, retries) : retries,
    retryDelay: (_client: unknown, _op: string, attempt: number) => Math.min(100 * 2 ** (attempt - 1), 1000),
    metadataMaxAge: 60_000,
  };
  const producer = new BatchEncodingProducer<Buffer, Buffer, Buffer, Buffer>({
    ...connection,
    acks: ProduceAcks.ALL,
    idempotent,
    compression,
    partitioner: javaCompatiblePartitioner,
    autocreateTopics: false,
  });
  // Header buffers are made once per distinct headers object (the sink shares one).
  const headerMaps = new WeakMap<object, Map<Buffer, Buffer>>();
  const headersOf = (headers: Readonly<Record<string, string>>): Map<Buffer, Buffer> => {
    let map = headerMaps.get(headers);
    if (map === undefined) {
      map = new Map(Object.entries(headers).map(([k, v]) => [Buffer.from(k), Buffer.from(v)]));
      headerMaps.set(headers, map);
    }
    return map;
  };
  let topicCreated = false;

  async function createTopic(): Promise<void> {
    const admin = new Admin(connection);
    try {
      await admin.createTopics({ topics: [topic], partitions }).catch((err: unknown) => {
        if (findErrorBy(err as Error, 'apiId', 'TOPIC_ALREADY_EXISTS') === null) throw err;
      });
    } finally {
      await admin.close().catch(() => {});
    }
    topicCreated = true;
  }

  async function leadersKnown(): Promise<boolean> {
    const metadata = await producer.metadata({ topics: [topic], forceUpdate: true });
    const t = metadata.topics.get(topic);
    return t !== undefined && t.partitions.length > 0 && t.partitions.every((p) => p !== undefined && p.leader >= 0);
  }

  return {
    async ready() {
      if (!topicCreated) await createTopic();
      // A new topic's leaders are elected within moments; metadata errors (no broker) reject at once.
      for (let i = 0; !(await leadersKnown()); i++) {
        if (i >= 50) throw new Error(`topic ${topic}: partitions without a leader`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },

    async send(messages) {
      if (messages.length === 0) return;
      const batch: Bytes[] = new Array(messages.length);
      for (let i = 0; i < messages.length; i++) {
        const m = messages[i]!;
        const key = typeof m.key === 'string' ? Buffer.from(m.key) : m.key;
        const value = typeof m.value === 'string' ? Buffer.from(m.value) : m.value;
        batch[i] = { topic, key, value, headers: headersOf(m.headers) };
      }
      await producer.send({ messages: batch });
    },

    sendLines(lines) {
      return this.send(messagesOfLines(lines));
    },

    async close() {
      await producer.close(true).catch(() => {});
    },
  };
}
