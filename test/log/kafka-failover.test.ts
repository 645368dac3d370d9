/**
 * The Kafka sink against a broker that is away and comes back. Runs its own broker instance (other ports, its
 * own data dir) through scripts/services/kafka.sh, so the shared test broker stays up for the other suites.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKafkaSink } from '../../gateway/log/kafka-sink.ts';
import { consumeTopic, kafkaInstance, makeRecord, uniqueName, waitFor } from './records.ts';

/**
 * A fixed directory: a broker left running by an interrupted run is found and stopped by kafka.sh. Ports below the
 * ephemeral range; SIBYL_TEST_KAFKA_FAILOVER_PORT moves them (the controller listens on the next port).
 */
const port = Number(process.env.SIBYL_TEST_KAFKA_FAILOVER_PORT ?? 29092);
const instance = {
  port,
  controllerPort: port + 1,
  dir: fileURLToPath(new URL('../../.data/services/kafka/failover-test', import.meta.url)),
};
const brokers = [`127.0.0.1:${instance.port}`];
const quiet = { warn: () => {}, error: () => {} };

beforeAll(async () => {
  await kafkaInstance('stop', instance);
  await rm(instance.dir, { recursive: true, force: true });
}, 60_000);

afterAll(async () => {
  await kafkaInstance('stop', instance);
  await rm(instance.dir, { recursive: true, force: true });
}, 60_000);

describe('kafka sink, broker away and back', () => {
  it('starts with no broker, spills, and delivers everything in order once the broker comes up', async () => {
    const topic = uniqueName('predictions');
    const sink = createKafkaSink({
      brokers, topic, cell: 'cell-a', walDir: await mkdtemp(join(tmpdir(), 'sibyl-wal-')),
      partitions: 1, retryBackoffMs: 200, logger: quiet,
    });
    for (let i = 0; i < 300; i++) sink.write(makeRecord('up', i));
    await sink.flush();
    expect(sink.stats()).toMatchObject({ accepted: 300, spilled: 300, delivered: 0, lost: 0, pending: 300 });

    await kafkaInstance('start', instance);
    for (let i = 300; i < 400; i++) sink.write(makeRecord('up', i));
    // The drainer returns to direct mode a moment after the last replayed batch is acked.
    await waitFor(() => sink.stats().delivered === 400 && sink.mode === 'direct', 60_000, 'the spill log to drain');
    expect(sink.mode).toBe('direct');
    expect(sink.stats()).toMatchObject({ accepted: 400, delivered: 400, lost: 0, pending: 0 });
    await sink.shutdown();

    const messages = await consumeTopic(brokers, topic, 400);
    expect(messages.map((m) => m.id)).toEqual(Array.from({ length: 400 }, (_, i) => `up-${i}`));
  }, 90_000);

  it('loses nothing when the broker is killed and restarted while records keep coming', async () => {
    await kafkaInstance('start', instance);
    const topic = uniqueName('predictions');
    const sink = createKafkaSink({
      brokers, topic, cell: 'cell-a', walDir: await mkdtemp(join(tmpdir(), 'sibyl-wal-')),
      batchSize: 200, lingerMs: 10, retryBackoffMs: 200, logger: quiet,
    });
    await waitFor(() => sink.mode === 'direct', 30_000, 'the sink to connect');

    // About 1000 records/s until told to stop (at most 40,000, so that a slow broker restart on a busy machine
    // does not turn the read-back into the long pole).
    let written = 0;
    const writer = setInterval(() => {
      for (let i = 0; i < 10 && written < 40_000; i++) sink.write(makeRecord('kill', written++));
    }, 10);
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    await sleep(1500);
    await kafkaInstance('kill', instance);
    await waitFor(() => sink.mode === 'spilling', 30_000, 'the sink to notice the broker is gone');
    await sleep(1000);
    await kafkaInstance('start', instance);
    await waitFor(() => sink.mode === 'direct', 60_000, 'the sink to drain its spill log');
    await sleep(1000);
    clearInterval(writer);
    await sink.flush();
    await waitFor(() => sink.stats().pending === 0, 60_000, 'everything to be delivered');
    const stats = sink.stats();
    await sink.shutdown();

    expect(stats).toMatchObject({ accepted: written, lost: 0, pending: 0 });
    expect(stats.spilled).toBeGreaterThan(0);
    const messages = await consumeTopic(brokers, topic, written, { timeoutMs: 120_000 });
    const ids = new Set(messages.map((m) => m.id));
    console.log(
      `failover: written ${written}, spilled ${stats.spilled}, delivered ${stats.delivered}, ` +
        `consumed ${messages.length}, unique ${ids.size}, duplicates ${messages.length - ids.size}`,
    );
    expect(ids.size).toBe(written);
    // Replayed records are the same events as direct ones: keyed by request id, the record as data.
    for (const m of messages) expect(m.key).toBe((m.event.data as { requestId?: string }).requestId);
    // At least once: duplicates come only from batches in flight at the failure (4 sends of 200 at most).
    expect(messages.length - ids.size).toBeLessThanOrEqual(4 * 200);
  }, 300_000);
});
