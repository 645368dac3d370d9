/**
 * The record batch and produce request written by gateway/log/record-batch.ts: byte for byte what @platformatic/kafka
 * writes for the same messages and options, and taken by a real broker (scripts/services/kafka.sh), which checks
 * every batch's CRC and records, through the producer that uses it.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import * as kafka from '@platformatic/kafka';
import { createRecordsBatch, kGetApi, NumericMap, ProduceAcks, Reader, readRecordsBatch, type API, type MessageRecord } from '@platformatic/kafka';
import { BatchEncodingProducer, encodeRecordBatch, produceRequest } from '../../gateway/log/record-batch.ts';
import { TEST_BROKERS, consumeTopic, uniqueName } from './records.ts';

/** A deterministic generator, so a failure names a case that can be run again. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Lengths around every varint boundary a key, value or record crosses. */
const LENGTHS = [0, 1, 2, 63, 64, 65, 127, 128, 129, 8191, 8192, 8193, 16383, 16384, 70_000];

function messages(seed: number, count: number, topic = 't'): MessageRecord[] {
  const r = rng(seed);
  const base = 1_767_225_600_000n + BigInt(Math.floor(r() * 1e6));
  return Array.from({ length: count }, (_, i) => {
    const pick = r();
    const value = pick < 0.3 ? randomBytes(LENGTHS[Math.floor(r() * LENGTHS.length)]!) : Buffer.from(`{"id":"p-${i}","é":"${'x'.repeat(Math.floor(r() * 900))}"}`);
    const headers = new Map<Buffer, Buffer>();
    const h = Math.floor(r() * 4);
    for (let j = 0; j < h; j++) headers.set(Buffer.from(j === 0 ? 'content-type' : `h-${j}`), Buffer.from('v'.repeat(Math.floor(r() * 150))));
    return {
      topic,
      partition: 0,
      // Some records earlier than the first one (a negative delta), some days later (a delta of several bytes).
      timestamp: base + BigInt(Math.floor((r() - 0.3) * (r() < 0.1 ? 2 ** 30 : 5_000))),
      ...(r() < 0.1 ? {} : { key: Buffer.from(`req-${seed}-${i}`) }),
      value,
      ...(h === 0 && r() < 0.5 ? {} : { headers }),
    };
  });
}

const theirs = (m: MessageRecord[], o: Parameters<typeof createRecordsBatch>[1] = {}) => createRecordsBatch(m, o).buffer;

describe('the record batch encoded here', () => {
  it('is byte for byte the client\'s for 200 random batches: null keys, empty values, headers, varint boundaries, negative and 30-bit timestamp deltas', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const batch = messages(seed, 1 + (seed % 37));
      const sequences = new NumericMap([['t:0', seed * 1000]]);
      const options = { producerId: BigInt(seed * 7919), producerEpoch: seed % 5, sequences };
      const ours = encodeRecordBatch(batch, { producerId: options.producerId, producerEpoch: options.producerEpoch, firstSequence: seed * 1000 });
      expect(ours.equals(theirs(batch, options)), `seed ${seed}`).toBe(true);
    }
  });

  it('writes a timestamp delta past 31 bits as it is (the client wraps it: 2^40 ms reads back as 256)', () => {
    for (const delta of [2n ** 31n, 2n ** 32n, 2n ** 40n, -(2n ** 35n)]) {
      const batch: MessageRecord[] = [0n, delta].map((d, i) => ({ topic: 't', partition: 0, timestamp: 1_767_225_600_000n + d, key: Buffer.from(`k${i}`), value: Buffer.from('v') }));
      const decoded = readRecordsBatch(Reader.from(encodeRecordBatch(batch)));
      expect(decoded.records.map((r) => r.timestampDelta)).toEqual([0n, delta]);
      expect(decoded.maxTimestamp).toBe(delta > 0n ? 1_767_225_600_000n + delta : 1_767_225_600_000n);
    }
  });

  it('is the client\'s without a producer id (-1) and for a transactional producer (attribute bit 4)', () => {
    const batch = messages(7, 20);
    expect(encodeRecordBatch(batch).equals(theirs(batch))).toBe(true);
    expect(encodeRecordBatch(batch, { transactional: true, producerId: 5n }).equals(theirs(batch, { transactionalId: 'tx', producerId: 5n }))).toBe(true);
  });

  it('compresses with the client\'s codecs to the client\'s bytes, and decodes back to the same records', () => {
    for (const compression of ['snappy', 'lz4', 'zstd', 'gzip'] as const) {
      const batch = messages(11, 300);
      const ours = encodeRecordBatch(batch, { compression });
      // gzip's output carries no timestamp, so it is deterministic too; the producer leaves gzip to the client anyway.
      expect(ours.equals(theirs(batch, { compression })), compression).toBe(true);
      const decoded = readRecordsBatch(Reader.from(ours));
      expect(decoded.records.map((r) => Buffer.from(r.value!).toString('base64'))).toEqual(batch.map((m) => m.value.toString('base64')));
    }
  });

  it('builds the client\'s Produce v9-v11 request for several topics and partitions, with each partition\'s sequence', () => {
    const all = [...messages(21, 40, 'a'), ...messages(22, 30, 'b')].map((m, i) => ({ ...m, partition: i % 3 }));
    const sequences = new NumericMap([['a:0', 10], ['a:1', 20], ['b:2', 30]]);
    const options = { producerId: 42n, producerEpoch: 3, sequences };
    for (const version of [9, 10, 11]) {
      const client = (kafka as unknown as Record<string, { createRequest: typeof produceRequest }>)[`produceV${version}`]!;
      const expected = client.createRequest(ProduceAcks.ALL, 5000, all.map((m) => ({ ...m })), options).buffer;
      expect(produceRequest(ProduceAcks.ALL, 5000, all.map((m) => ({ ...m })), options).buffer.equals(expected), `v${version}`).toBe(true);
    }
  });

  it('fills in missing partitions and timestamps on the messages, as the client does', () => {
    const bare: MessageRecord[] = [{ topic: 't', value: Buffer.from('x') }];
    const before = BigInt(Date.now());
    produceRequest(ProduceAcks.ALL, 1000, bare, {});
    expect(bare[0]!.partition).toBe(0);
    expect(bare[0]!.timestamp! >= before).toBe(true);
  });
});

describe('the producer that encodes its batches here (real broker)', () => {
  it('sends 3,000 messages idempotently over three partitions (500 of them gzip\'d), each read back once with its key, value and header; the Produce API used is this module\'s', async () => {
    const topic = uniqueName('record-batch');
    const admin = new kafka.Admin({ clientId: 'test', bootstrapBrokers: TEST_BROKERS });
    await admin.createTopics({ topics: [topic], partitions: 3 });
    await admin.close();
    const producer = new BatchEncodingProducer({ clientId: 'test', bootstrapBrokers: TEST_BROKERS, acks: ProduceAcks.ALL, idempotent: true, retries: 3, autocreateTopics: false });
    const header = new Map([[Buffer.from('content-type'), Buffer.from('application/cloudevents+json; charset=UTF-8')]]);
    const sent = Array.from({ length: 3000 }, (_, i) => ({ key: `req-${i}`, value: JSON.stringify({ id: `p-${i}`, data: { n: i, text: 'é'.repeat(i % 50) } }) }));
    try {
      for (let b = 0; b < 3000; b += 500) {
        // The last batch gzip'd: built by the client's own request builder (it compresses off its thread).
        await producer.send({
          messages: sent.slice(b, b + 500).map((m, j) => ({ topic, partition: (b + j) % 3, key: Buffer.from(m.key), value: Buffer.from(m.value), headers: header })),
          ...(b === 2500 ? { compression: 'gzip' as const } : {}),
        });
      }
      const api = await new Promise<API<unknown[], unknown>>((resolve, reject) => producer[kGetApi]('Produce', (e, a) => (e ? reject(e) : resolve(a!))));
      expect(api.version).toBeGreaterThanOrEqual(9);
      expect(api).not.toBe((kafka as unknown as Record<string, { api: unknown }>)[`produceV${api.version}`]!.api);
    } finally {
      await producer.close();
    }

    const read = await consumeTopic(TEST_BROKERS, topic, 3000);
    expect(read.length).toBe(3000);
    const byKey = new Map(read.map((m) => [m.key, m]));
    expect(byKey.size).toBe(3000);
    for (const [i, m] of sent.entries()) {
      const got = byKey.get(m.key)!;
      expect(got.value).toBe(m.value);
      expect(got.partition).toBe(i % 3);
      expect(got.headers).toEqual({ 'content-type': 'application/cloudevents+json; charset=UTF-8' });
    }
  });
});
