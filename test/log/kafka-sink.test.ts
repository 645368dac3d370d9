/** The Kafka sink against the shared real broker (scripts/services/kafka.sh). */
import { mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromJson, toJson, type JsonValue } from '@bufbuild/protobuf';
import { createServer } from 'node:net';
import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { createKafkaSink } from '../../gateway/log/kafka-sink.ts';
import { partitionForKey } from '../../gateway/log/murmur2-partitioner.ts';
import type { KafkaSinkOptions } from '../../gateway/log/kafka-sink.ts';
import { PredictionRecordSchema } from '../../proto/gen/sibyl/v1/prediction_log_pb.js';
import { TEST_BROKERS, consumeTopic, makeRecord, uniqueName } from './records.ts';

const quiet = { warn: () => {}, error: () => {} };
/** Nothing listens on port 1: connections are refused at once. */
const CLOSED = ['127.0.0.1:1'];

function sinkOptions(over: Partial<KafkaSinkOptions> & { walDir: string }): KafkaSinkOptions {
  return {
    brokers: TEST_BROKERS,
    topic: uniqueName('predictions'),
    cell: 'cell-a',
    logger: quiet,
    retryBackoffMs: 100,
    ...over,
  };
}

describe('kafka sink (real broker)', () => {
  it('delivers records as structured CloudEvents: key, one content-type header, the ProtoJSON record as data', async () => {
    const walDir = await mkdtemp(join(tmpdir(), 'sibyl-wal-'));
    const options = sinkOptions({ walDir, batchSize: 100 });
    const sink = createKafkaSink(options);
    const records = Array.from({ length: 1000 }, (_, i) => makeRecord('b', i));
    for (const r of records) sink.write(r);
    await sink.flush();
    expect(sink.stats()).toEqual({ accepted: 1000, delivered: 1000, spilled: 0, lost: 0, pending: 0 });
    await sink.shutdown();
    // Every line acknowledged: the log's segments are gone.
    expect(await readdir(walDir)).toEqual([]);

    const messages = await consumeTopic(TEST_BROKERS, options.topic, 1000);
    // Every record once; delivery is at least once, so a produce request the client retried after a slow ack (a
    // broker's first writes to a new topic can be slow) may appear twice: at most the batches in flight.
    expect(new Set(messages.map((m) => m.id)).size).toBe(1000);
    expect(messages.length - 1000).toBeLessThanOrEqual(4 * 100);
    expect(new Set(messages.map((m) => m.partition)).size).toBe(3);
    const byId = new Map(records.map((r) => [r.predictionId, r]));
    for (const m of messages) {
      const sent = byId.get(m.id);
      expect(sent).toBeDefined();
      const { data, time, ...attributes } = m.event;
      expect(toJson(PredictionRecordSchema, fromJson(PredictionRecordSchema, data as JsonValue), { alwaysEmitImplicit: true })).toEqual(sent);
      expect(m.key).toBe(sent!.requestId);
      // The Java client's partition for the key: live and shadow records of a request share it.
      expect(m.partition).toBe(partitionForKey(Buffer.from(m.key), 3));
      expect(m.headers).toEqual({ 'content-type': 'application/cloudevents+json; charset=UTF-8' });
      expect(Date.parse(time ?? '')).toBe(1_767_225_600_000 + Number(sent!.predictionId.split('-')[1]));
      expect(attributes).toEqual({
        specversion: '1.0',
        id: sent!.predictionId,
        source: 'sibyl/cell-a',
        type: 'sibyl.prediction.v1',
        subject: 'fraud/3',
        datacontenttype: 'application/json',
        dataschema: 'urn:sibyl:proto:sibyl.v1.PredictionRecord',
      });
    }
  });

  it('keeps records in the write-ahead log while no broker answers, across a restart, and replays them before newer records', async () => {
    const walDir = await mkdtemp(join(tmpdir(), 'sibyl-wal-'));
    const topic = uniqueName('predictions');
    const down = createKafkaSink(sinkOptions({ walDir, topic, brokers: CLOSED, partitions: 1 }));
    for (let i = 0; i < 300; i++) down.write(makeRecord('c', i));
    await down.flush();
    expect(down.stats()).toMatchObject({ accepted: 300, delivered: 0, spilled: 300, lost: 0, pending: 300 });
    expect(down.mode).toBe('spilling');
    await down.shutdown();
    expect((await readdir(walDir)).some((n) => n.startsWith('wal-'))).toBe(true);

    // A new process with the same log directory and a reachable broker.
    const up = createKafkaSink(sinkOptions({ walDir, topic, partitions: 1 }));
    for (let i = 300; i < 400; i++) up.write(makeRecord('c', i));
    await up.flush();
    const deadline = Date.now() + 30_000;
    // The drainer returns to direct mode a moment after the last replayed batch is acked.
    while ((up.stats().pending > 0 || up.mode !== 'direct') && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(up.stats()).toMatchObject({ accepted: 100, delivered: 400, lost: 0, pending: 0 });
    expect(up.mode).toBe('direct');
    await up.shutdown();
    expect(await readdir(walDir)).toEqual([]);

    const messages = await consumeTopic(TEST_BROKERS, topic, 400);
    expect(messages.map((m) => m.id)).toEqual(Array.from({ length: 400 }, (_, i) => `c-${i}`));
  });

  it('loses a record only when both the write-ahead log and Kafka fail: a broken log directory with a broker delivers from memory', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sibyl-wal-'));
    const notADir = join(dir, 'file');
    await writeFile(notADir, 'x');
    const errors: string[] = [];
    const logger = { warn: () => {}, error: (m: string) => void errors.push(m) };
    const up = createKafkaSink(sinkOptions({ walDir: notADir, logger }));
    for (let i = 0; i < 100; i++) up.write(makeRecord('m', i));
    await up.flush();
    expect(up.stats()).toMatchObject({ accepted: 100, delivered: 100, lost: 0, pending: 0 });
    await up.shutdown();
    // The failing log is reported once, not per record.
    expect(errors.filter((m) => m.includes('write-ahead log') && m.includes('failing'))).toHaveLength(1);

    // Neither: the records wait in memory (write() never blocks), and are counted as lost when the process goes.
    const down = createKafkaSink(sinkOptions({ walDir: notADir, brokers: CLOSED, shutdownTimeoutMs: 500, logger }));
    for (let i = 0; i < 100; i++) down.write(makeRecord('l', i));
    expect(down.stats()).toMatchObject({ accepted: 100, lost: 0, pending: 100 });
    await down.shutdown();
    expect(down.stats()).toMatchObject({ accepted: 100, delivered: 0, spilled: 0, lost: 100, pending: 0 });
    expect(errors.some((m) => m.includes('LOST 100'))).toBe(true);
  });

  it('holds at most maxBuffered records and maxBufferedBytes in memory: past either, it sends from the write-ahead log', async () => {
    const sockets = new Set<Socket>();
    const silent = createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => {});
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as { port: number };
    try {
      for (const bound of [{ maxBuffered: 100 }, { maxBufferedBytes: 20_000 }]) {
        const warnings: string[] = [];
        const logger = { warn: (m: string) => void warnings.push(m), error: () => {} };
        // The stall budget is out of reach: only the memory bound can make the sink spill.
        const sink = createKafkaSink(
          sinkOptions({ walDir: await mkdtemp(join(tmpdir(), 'sibyl-wal-')), brokers: [`127.0.0.1:${port}`], stallMs: 60_000, shutdownTimeoutMs: 500, logger, ...bound }),
        );
        for (let i = 0; i < 300; i++) sink.write(makeRecord('b', i));
        await sink.flush();
        expect(sink.mode).toBe('spilling');
        expect(sink.stats()).toMatchObject({ accepted: 300, spilled: 300, lost: 0, pending: 300 });
        expect(warnings.filter((m) => m.includes('memory bound reached'))).toHaveLength(1);
        await sink.shutdown();
      }
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it('spills within its stall budget, not the client\'s timeouts, when the broker accepts connections but never answers', async () => {
    // A "broker" that takes the TCP connection and then says nothing: only timeouts end the client's requests.
    const sockets = new Set<Socket>();
    const silent = createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => {});
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as { port: number };
    try {
      const walDir = await mkdtemp(join(tmpdir(), 'sibyl-wal-'));
      const warnings: string[] = [];
      // The client's own bounds are the defaults (10 s per request, 2 retries): the stall budget of 1 s decides.
      const sink = createKafkaSink(
        sinkOptions({ walDir, brokers: [`127.0.0.1:${port}`], stallMs: 1000, logger: { warn: (m: string) => void warnings.push(m), error: () => {} } }),
      );
      // The budget counts from the moment the client can connect (its thread has loaded: seconds on a busy machine).
      await sink.clientStarted;
      for (let i = 0; i < 50; i++) sink.write(makeRecord('s', i));
      const t0 = Date.now();
      await sink.flush();
      expect(Date.now() - t0).toBeLessThan(8000);
      expect(sink.stats()).toMatchObject({ accepted: 50, delivered: 0, spilled: 50, lost: 0, pending: 50 });
      expect(sink.mode).toBe('spilling');
      expect(warnings.filter((m) => m.includes('write-ahead log'))).toHaveLength(1);
      const t1 = Date.now();
      await sink.shutdown();
      expect(Date.now() - t1).toBeLessThan(8000);
      // Everything stays in the log for the next start.
      expect((await readdir(walDir)).filter((n) => n.endsWith('.log'))).toHaveLength(1);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it("delivers the same with the Kafka client on the event loop (producerThread: 'main') as on its own thread (the default)", async () => {
    for (const producerThread of ['main', 'worker'] as const) {
      const walDir = await mkdtemp(join(tmpdir(), 'sibyl-wal-'));
      const options = sinkOptions({ walDir, batchSize: 50, producerThread });
      const sink = createKafkaSink(options);
      const records = Array.from({ length: 300 }, (_, i) => makeRecord(producerThread, i));
      for (const r of records) sink.write(r);
      await sink.flush();
      expect(sink.stats()).toEqual({ accepted: 300, delivered: 300, spilled: 0, lost: 0, pending: 0 });
      await sink.shutdown();
      const messages = await consumeTopic(TEST_BROKERS, options.topic, 300);
      expect(new Set(messages.map((m) => m.id))).toEqual(new Set(records.map((r) => r.predictionId)));
      expect(messages.every((m) => m.key === byIdOf(records).get(m.id)?.requestId)).toBe(true);
    }
  });
});

function byIdOf(records: { predictionId: string; requestId: string }[]): Map<string, { requestId: string }> {
  return new Map(records.map((r) => [r.predictionId, r]));
}
