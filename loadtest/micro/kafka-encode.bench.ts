/**
 * What a Kafka client spends CPU on per message, against the real broker: kafkajs (the former client) and
 * @platformatic/kafka (the sink's), the same 500-message batches (4 sends in flight, acks=all) of ~1 KB JSON
 * values (distinct per message: UUIDs and varying numbers, so gzip sees realistic data), with 7 headers
 * (CloudEvents binary mode) or 1 header (structured mode), gzip or no compression; then @platformatic/kafka alone,
 * 1 header, with each codec the sink offers (SIBYL_KAFKA_COMPRESSION). Prints process CPU µs per record (all
 * threads) and records/s, per round, interleaved, and how much smaller each codec makes a 500-record batch. The
 * numbers behind the prediction log's client, compression and structured mode (gateway/log/README.md). The sink's
 * producer, the same client with its record batches encoded by gateway/log/record-batch.ts, runs beside it (1 header,
 * each codec but gzip, which it leaves to the client). Last, with no broker: what encoding a 500-record batch costs
 * per record, the client's `createRecordsBatch` against record-batch.ts's `encodeRecordBatch`, checked to write the
 * same bytes.
 *
 * Run: node loadtest/micro/kafka-encode.bench.ts [records=40000] [rounds=2]
 */
import { randomUUID } from 'node:crypto';
import zlib from 'node:zlib';
import { createRecordsBatch, Producer, ProduceAcks, Reader, readRecordsBatch } from '@platformatic/kafka';
import { CompressionTypes, Kafka, Partitioners, logLevel } from 'kafkajs';
import { javaCompatiblePartitioner } from '../../gateway/log/murmur2-partitioner.ts';
import { KAFKA_COMPRESSIONS, type KafkaCompression } from '../../gateway/log/kafka-sink-options.ts';
import { BatchEncodingProducer, encodeRecordBatch } from '../../gateway/log/record-batch.ts';

const N = Number(process.argv[2] ?? 40_000);
const ROUNDS = Number(process.argv[3] ?? 2);
const BROKERS = (process.env.SIBYL_TEST_KAFKA_BROKERS ?? '127.0.0.1:19092').split(',');
const topic = `bench-encode-${process.pid}`;

const kafka = new Kafka({ clientId: 'sibyl-bench', brokers: BROKERS, logLevel: logLevel.NOTHING });
const kafkajs = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: true });
await kafkajs.connect();
const platformatic = new Producer<Buffer, Buffer, Buffer, Buffer>({
  clientId: 'sibyl-bench', bootstrapBrokers: BROKERS, acks: ProduceAcks.ALL, partitioner: javaCompatiblePartitioner,
});
// The sink's producer: the same client, its record batches encoded by the gateway (record-batch.ts).
const withSibylBatches = new BatchEncodingProducer<Buffer, Buffer, Buffer, Buffer>({
  clientId: 'sibyl-bench', bootstrapBrokers: BROKERS, acks: ProduceAcks.ALL, partitioner: javaCompatiblePartitioner,
});

const values = Array.from({ length: N }, (_, i) =>
  JSON.stringify({
    specversion: '1.0', id: randomUUID(), source: 'sibyl/cell-a', type: 'sibyl.prediction.v1', subject: 'delivery-eta/2',
    data: {
      predictionId: randomUUID(), requestId: randomUUID(), model: 'delivery-eta', version: '2',
      rows: [{ features: Object.fromEntries(Array.from({ length: 20 }, (_, f) => [`feature_${f}`, ((i * (f + 7)) % 997) / 10])), outputs: { eta: 31.2 } }],
    },
  }),
);

type Client = 'kafkajs' | 'platformatic' | 'platformatic + record-batch.ts';

function sender(client: Client, codec: KafkaCompression, headerCount: number): (lo: number, hi: number) => Promise<unknown> {
  const headers: Record<string, string> = {};
  for (let i = 0; i < headerCount; i++) headers[`ce_h${i}`] = `some-value-${i}`;
  if (client === 'kafkajs') {
    const messages = values.map((value, i) => ({ key: `req-${i}`, value, headers }));
    const compression = codec === 'gzip' ? CompressionTypes.GZIP : CompressionTypes.None;
    return (lo, hi) => kafkajs.send({ topic, acks: -1, compression, messages: messages.slice(lo, hi) });
  }
  const headerMap = new Map(Object.entries(headers).map(([k, v]) => [Buffer.from(k), Buffer.from(v)]));
  const compression = codec;
  const producer = client === 'platformatic' ? platformatic : withSibylBatches;
  return (lo, hi) => {
    const messages = [];
    for (let i = lo; i < hi; i++) {
      messages.push({ topic, key: Buffer.from(`req-${i}`), value: Buffer.from(values[i]!), headers: headerMap });
    }
    return producer.send({ messages, compression });
  };
}

async function run(client: Client, codec: KafkaCompression, headerCount: number): Promise<void> {
  const send = sender(client, codec, headerCount);
  const cpu0 = process.cpuUsage();
  const wall0 = performance.now();
  const sends: Promise<unknown>[] = [];
  for (let i = 0; i < N; i += 500) {
    sends.push(send(i, Math.min(i + 500, N)));
    if (sends.length >= 4) await sends.shift();
  }
  await Promise.all(sends);
  const cpu = process.cpuUsage(cpu0);
  const perRecord = (cpu.user + cpu.system) / N;
  const rate = Math.round(N / ((performance.now() - wall0) / 1000));
  const label = `${client}, ${codec}, ${headerCount} header${headerCount > 1 ? 's' : ''}`;
  console.log(`${label.padEnd(48)} ${perRecord.toFixed(2).padStart(7)} cpu µs/record ${String(rate).padStart(8)} records/s`);
}

await run('kafkajs', 'none', 1); // warm-up, creates the topic
await run('platformatic', 'none', 1); // warm-up
await run('platformatic + record-batch.ts', 'none', 1); // warm-up
for (let r = 0; r < ROUNDS; r++) {
  console.log(`round ${r + 1}`);
  for (const client of ['kafkajs', 'platformatic'] as const) {
    for (const codec of ['gzip', 'none'] as const) for (const headers of [7, 1]) await run(client, codec, headers);
  }
  for (const codec of KAFKA_COMPRESSIONS.filter((c) => c !== 'none' && c !== 'gzip')) await run('platformatic', codec, 1);
  // The sink's producer: gzip stays the client's own (record-batch.ts), so it is not run here.
  for (const codec of KAFKA_COMPRESSIONS.filter((c) => c !== 'gzip')) await run('platformatic + record-batch.ts', codec, 1);
}
// The codecs' ratio on one batch of 500 values (gzip and zstd through node:zlib; the client's own snappy and lz4 are
// WebAssembly builds with no size API here, and land between them: measured on the broker by
// test/e2e/kafka-compression.test.ts).
const batch = Buffer.from(values.slice(0, 500).join(''));
for (const [codec, compress] of [['gzip', zlib.gzipSync], ['zstd', zlib.zstdCompressSync]] as const) {
  console.log(`${codec}: a 500-value batch ${(batch.length / compress(batch).length).toFixed(1)}x smaller`);
}
await kafkajs.disconnect();
await platformatic.close();
await withSibylBatches.close();

// Encoding alone: the client's record batch against the gateway's (gateway/log/record-batch.ts; no compression, one
// header per record).
const header: [Buffer, Buffer] = [Buffer.from('content-type'), Buffer.from('application/cloudevents+json; charset=UTF-8')];
const encodeBatches = Array.from({ length: N / 500 }, (_, b) =>
  values.slice(b * 500, b * 500 + 500).map((v, i) => ({ topic, partition: 0, timestamp: 0n, key: Buffer.from(`req-${b * 500 + i}`), value: Buffer.from(v), headers: new Map([header]) })),
);
// The two decode to the same records (keys, values, headers, offsets): the comparison is of equal work.
type Decoded = { offsetDelta: number; key: Buffer; value: Buffer; headers: [Buffer, Buffer][] };
const decoded = (b: Buffer) => (readRecordsBatch(Reader.from(b)).records as Decoded[]).map((r) => [r.offsetDelta, r.key.toString(), r.value.toString(), r.headers.map(([k, v]) => `${k}:${v}`).join()].join('|'));
const sample = encodeBatches[0]!;
const theirs = createRecordsBatch(sample, {}).buffer as Buffer;
if (!encodeRecordBatch(sample).equals(theirs)) throw new Error('the gateway\'s batch is not the client\'s bytes');
if (decoded(encodeRecordBatch(sample)).join('\n') !== decoded(theirs).join('\n')) throw new Error('the gateway\'s batch does not decode to the client\'s records');
for (let r = 0; r < ROUNDS + 1; r++) {
  for (const [label, encode] of [
    ['@platformatic/kafka createRecordsBatch', (b: (typeof encodeBatches)[number]) => createRecordsBatch(b, {})],
    ['the gateway\'s encodeRecordBatch', (b: (typeof encodeBatches)[number]) => encodeRecordBatch(b)],
  ] as const) {
    const t0 = performance.now();
    for (const b of encodeBatches) encode(b);
    const us = ((performance.now() - t0) * 1000) / N;
    console.log(`${r === 0 ? 'warm-up ' : `round ${r} `}${label.padEnd(40)} ${us.toFixed(2).padStart(6)} µs/record (encoding only)`);
  }
}
