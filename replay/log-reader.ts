/**
 * Reads the prediction-log topic from Kafka for a replay, as a consumer of its own: a consumer group named for this
 * replay alone (`groupId`; no offsets are committed, so it takes nothing from and leaves nothing for any other
 * consumer), from the first offset at or after `fromMs` in each partition (the earliest without it) up to the end
 * offsets the partitions had when the read began, so a replay of a busy topic ends. Gateways never see it: it
 * reads the broker only.
 *
 * Yields batches of message values (the CloudEvents the Kafka sink writes, gateway/log/README.md) in partition
 * order, as fetched.
 */
import { Consumer, stringDeserializers, type Message } from '@platformatic/kafka';
import { SibylError } from '../core/errors.ts';

export interface LogReaderOptions {
  readonly brokers: readonly string[];
  readonly topic: string;
  /** The consumer group of this read (unique per replay). */
  readonly groupId: string;
  /** Start at the first record logged at or after this time, ms since the epoch (Kafka message timestamps). */
  readonly fromMs?: number | undefined;
  readonly signal?: AbortSignal | undefined;
  /** Bound on connecting and on each fetch, ms (default 10 000). */
  readonly timeoutMs?: number;
}

/** Where the read stands: messages read and the partitions still to finish. */
export interface LogReadProgress {
  readonly messages: number;
  readonly partitionsLeft: number;
}

/**
 * Reads the topic's records logged from `fromMs` until the end offsets of the moment it started. Rejects
 * UNAVAILABLE when the brokers cannot be reached, NOT_FOUND when the topic does not exist.
 */
export async function* readPredictionLog(options: LogReaderOptions, progress?: (p: LogReadProgress) => void): AsyncGenerator<string[]> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const consumer = new Consumer({
    clientId: `sibyl-replay-${options.groupId}`,
    groupId: options.groupId,
    bootstrapBrokers: [...options.brokers],
    deserializers: stringDeserializers,
    timeout: timeoutMs,
    retries: 2,
    autocommit: false,
    maxWaitTime: 200,
  });
  try {
    const topic = options.topic;
    let ends: bigint[];
    let starts: bigint[];
    try {
      ends = (await consumer.listOffsets({ topics: [topic], timestamp: -1n })).get(topic) ?? [];
      const earliest = (await consumer.listOffsets({ topics: [topic], timestamp: -2n })).get(topic) ?? [];
      if (options.fromMs !== undefined) {
        const at = (await consumer.listOffsets({ topics: [topic], timestamp: BigInt(Math.floor(options.fromMs)) })).get(topic) ?? [];
        // -1: nothing logged at or after the time in that partition.
        starts = at.map((o, p) => (o < 0n ? ends[p]! : o));
      } else {
        starts = earliest;
      }
    } catch (err) {
      throw readError(err, options);
    }
    if (ends.length === 0) throw new SibylError('NOT_FOUND', `topic ${topic} has no partitions (does it exist?)`);
    const left = new Set<number>();
    ends.forEach((end, p) => {
      if (end > (starts[p] ?? end)) left.add(p);
    });
    if (left.size === 0) return;
    const stream = await consumer.consume({
      topics: [topic],
      mode: 'manual',
      offsets: starts.map((offset, partition) => ({ topic, partition, offset })),
      autocommit: false,
      maxWaitTime: 200,
      // Fetch ahead while the candidate runs: ~8 MB of ~1 KB records.
      highWaterMark: 8192,
      sessionTimeout: 30_000,
      heartbeatInterval: 3_000,
    });
    const abort = () => void stream.close().catch(() => undefined);
    options.signal?.addEventListener('abort', abort, { once: true });
    let messages = 0;
    const next = [...starts];
    try {
      let batch: string[] = [];
      let flushAt = 256;
      for await (const m of stream as AsyncIterable<Message<string, string, string, string>>) {
        if (options.signal?.aborted) break;
        const p = m.partition;
        // A partition's records once each, in order: a fetch repeated around the group join can hand some again.
        if (!left.has(p) || m.offset < next[p]!) continue;
        next[p] = m.offset + 1n;
        if (m.offset < ends[p]!) {
          batch.push(m.value);
          messages++;
        }
        if (m.offset + 1n >= ends[p]!) left.delete(p);
        if (batch.length >= flushAt || left.size === 0) {
          progress?.({ messages, partitionsLeft: left.size });
          yield batch;
          batch = [];
          flushAt = 1024;
        }
        if (left.size === 0) break;
      }
      if (batch.length) yield batch;
    } finally {
      options.signal?.removeEventListener('abort', abort);
      await stream.close().catch(() => undefined);
    }
  } finally {
    await consumer.close(true).catch(() => undefined);
  }
}

function readError(err: unknown, o: LogReaderOptions): SibylError {
  const message = (err as Error)?.message ?? String(err);
  if (/unknown topic|UNKNOWN_TOPIC/i.test(message) || /does not exist/i.test(message)) return new SibylError('NOT_FOUND', `topic ${o.topic} not found on ${o.brokers.join(',')}`);
  return new SibylError('UNAVAILABLE', `cannot read ${o.topic} from ${o.brokers.join(',')}: ${message}`, { cause: err });
}
