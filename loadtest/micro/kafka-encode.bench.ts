/**
 * What kafkajs spends CPU on per message, against the real broker: the same 500-message batches (4 sends in
 * flight, acks=all) of one ~700-byte JSON value, with 7 headers (CloudEvents binary mode) or 1 header (structured
 * mode), gzip or no compression. Prints process CPU µs per record (all threads: gzip runs in libuv's pool) and
 * records/s, per round, interleaved. The numbers behind the prediction log's structured mode (gateway/log/README.md).
 *
 * Run: node loadtest/micro/kafka-encode.bench.ts [records=40000] [rounds=2]
 */
import { CompressionTypes, Kafka, Partitioners, logLevel } from 'kafkajs';

const N = Number(process.argv[2] ?? 40_000);
const ROUNDS = Number(process.argv[3] ?? 2);
const BROKERS = (process.env.SIBYL_TEST_KAFKA_BROKERS ?? '127.0.0.1:19092').split(',');
const kafka = new Kafka({ clientId: 'sibyl-bench', brokers: BROKERS, logLevel: logLevel.NOTHING });
const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: true });
await producer.connect();
const topic = `bench-encode-${process.pid}`;
const value = JSON.stringify({
  predictionId: 'x'.repeat(36),
  requestId: 'y'.repeat(36),
  model: 'delivery-eta',
  version: '2',
  rows: [{ features: Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`feature_${i}`, i * 1.5])), outputs: { eta: 31.2 } }],
});

async function run(label: string, compression: CompressionTypes, headerCount: number): Promise<void> {
  const headers: Record<string, string> = {};
  for (let i = 0; i < headerCount; i++) headers[`ce_h${i}`] = `some-value-${i}`;
  const messages = Array.from({ length: N }, (_, i) => ({ key: `req-${i}`, value, headers }));
  const cpu0 = process.cpuUsage();
  const wall0 = performance.now();
  const sends: Promise<unknown>[] = [];
  for (let i = 0; i < N; i += 500) {
    sends.push(producer.send({ topic, acks: -1, compression, messages: messages.slice(i, i + 500) }));
    if (sends.length >= 4) await sends.shift();
  }
  await Promise.all(sends);
  const cpu = process.cpuUsage(cpu0);
  const perRecord = (cpu.user + cpu.system) / N;
  const rate = Math.round(N / ((performance.now() - wall0) / 1000));
  console.log(`${label.padEnd(28)} ${perRecord.toFixed(2).padStart(7)} cpu µs/record ${String(rate).padStart(8)} records/s`);
}

await run('warm-up', CompressionTypes.None, 1);
for (let r = 0; r < ROUNDS; r++) {
  console.log(`round ${r + 1}`);
  await run('gzip, 7 headers (binary)', CompressionTypes.GZIP, 7);
  await run('none, 7 headers (binary)', CompressionTypes.None, 7);
  await run('gzip, 1 header (structured)', CompressionTypes.GZIP, 1);
  await run('none, 1 header (structured)', CompressionTypes.None, 1);
}
await producer.disconnect();
