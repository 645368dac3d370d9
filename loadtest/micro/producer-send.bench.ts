/**
 * What the Kafka producer's thread spends per prediction-log record: the sink's producer (kafka-producer.ts, the
 * client with record-batch.ts's encoding) sending write-ahead log lines as the sink's direct sends hand them over
 * (`sendLines`: split into key and value, partitioned, encoded, checksummed, written, acknowledged), here on this
 * thread so that the process's CPU is that thread's work. 500-line batches (the sink's batch), 4 sends in flight,
 * acks=all, idempotent, no compression; lines like the gateway's (delivery-eta: 20 features, 3 entities, ~1.1 KB).
 * Prints per round the process CPU per record (user and kernel) and records/s; with `--profile`, the functions with
 * the most self time in the last round (a V8 CPU profile sampled every 100 µs, which slows the round).
 *
 * Needs the real broker (scripts/services/kafka.sh start; SIBYL_TEST_KAFKA_BROKERS or 127.0.0.1:19092). Pin it to
 * one core to compare revisions: `taskset -c 1 node loadtest/micro/producer-send.bench.ts [records=200000]
 * [rounds=3] [--profile]`.
 */
import { Session } from 'node:inspector/promises';
import { predictionMessage } from '../../gateway/log/cloud-event.ts';
import { createKafkaProducer } from '../../gateway/log/kafka-producer.ts';
import { walLine } from '../../gateway/log/wal-line.ts';
import { topSelfTimeOf } from '../lib/cpuprofile.ts';
import { median } from '../lib/histogram.ts';
import { etaRecords } from './eta-records.ts';

const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const PROFILE = process.argv.includes('--profile');
const N = Number(args[0] ?? 200_000);
const ROUNDS = Number(args[1] ?? 3);
const BATCH = 500;
const IN_FLIGHT = 4;
const DISTINCT = 20_000;
const BROKERS = (process.env.SIBYL_TEST_KAFKA_BROKERS ?? '127.0.0.1:19092').split(',');

const lines = etaRecords(DISTINCT).map((r) => {
  const m = predictionMessage(r, 'bench');
  return walLine(m.key as string, m.value as string);
});
const producer = createKafkaProducer({
  brokers: BROKERS,
  topic: `bench-producer-send-${process.pid}`,
  partitions: 3,
  compression: 'none',
  requestTimeoutMs: 5000,
  retries: 3,
  idempotent: true,
  clientId: 'sibyl-bench',
});
await producer.ready();

async function sendAll(records: number): Promise<void> {
  const inFlight = new Set<Promise<void>>();
  for (let sent = 0; sent < records; ) {
    while (inFlight.size < IN_FLIGHT && sent < records) {
      const at = sent % DISTINCT;
      const send: Promise<void> = producer.sendLines(lines.slice(at, at + BATCH)).finally(() => inFlight.delete(send));
      inFlight.add(send);
      sent += BATCH;
    }
    await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
}

await sendAll(20 * BATCH); // warm-up: connections, metadata, the producer id, the JIT
const perRecord: number[] = [];
for (let round = 1; round <= ROUNDS; round++) {
  const profiling = PROFILE && round === ROUNDS;
  const session = profiling ? new Session() : undefined;
  if (session) {
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 100 });
    await session.post('Profiler.start');
  }
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await sendAll(N);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const us = (cpu.user + cpu.system) / N;
  if (!profiling) perRecord.push(us);
  console.log(
    `round ${round}${profiling ? ' (profiled)' : ''}: ${us.toFixed(2)} cpu µs/record (user ${(cpu.user / N).toFixed(2)}, kernel ${(cpu.system / N).toFixed(2)}), ${Math.round(N / seconds)} records/s`,
  );
  if (session) {
    const { profile } = await session.post('Profiler.stop');
    session.disconnect();
    for (const t of topSelfTimeOf(profile, 20, true).top) console.log(`${(t.share * 100).toFixed(1).padStart(5)}%  ${t.fn}`);
  }
}
if (perRecord.length > 0) console.log(`median of ${perRecord.length} unprofiled round(s): ${median(perRecord).toFixed(2)} cpu µs/record`);
await producer.close();

