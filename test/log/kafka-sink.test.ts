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

function sinkOptions(over: Partial<KafkaSinkOptions> & { spillDir: string }): KafkaSinkOptions {
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
    const spillDir = await mkdtemp(join(tmpdir(), 'sibyl-spill-'));
    const options = sinkOptions({ spillDir, batchSize: 100 });
    const sink = createKafkaSink(options);
    const records = Array.from({ length: 1000 }, (_, i) => makeRecord('b', i));
    for (const r of records) sink.write(r);
    await sink.flush();
    expect(sink.stats()).toEqual({ accepted: 1000, delivered: 1000, spilled: 0, lost: 0, pending: 0 });
    await sink.shutdown();

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
      });
    }
  });

  it('spills while no broker answers, keeps the spill across a restart, and replays it before newer records', async () => {
    const spillDir = await mkdtemp(join(tmpdir(), 'sibyl-spill-'));
    const topic = uniqueName('predictions');
    const down = createKafkaSink(sinkOptions({ spillDir, topic, brokers: CLOSED, partitions: 1 }));
    for (let i = 0; i < 300; i++) down.write(makeRecord('c', i));
    await down.flush();
    expect(down.stats()).toMatchObject({ accepted: 300, delivered: 0, spilled: 300, lost: 0, pending: 300 });
    expect(down.mode).toBe('spilling');
    await down.shutdown();
    expect((await readdir(spillDir)).some((n) => n.startsWith('spill-'))).toBe(true);

    // A new process with the same spill directory and a reachable broker.
    const up = createKafkaSink(sinkOptions({ spillDir, topic, partitions: 1 }));
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
    expect((await readdir(spillDir)).filter((n) => n.startsWith('spill-') || n === 'cursor')).toEqual([]);

    const messages = await consumeTopic(TEST_BROKERS, topic, 400);
    expect(messages.map((m) => m.id)).toEqual(Array.from({ length: 400 }, (_, i) => `c-${i}`));
  });

  it('does not block the caller while the broker is unreachable, and counts records it cannot spill as lost', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sibyl-spill-'));
    const notADir = join(dir, 'file');
    await writeFile(notADir, 'x');
    const sink = createKafkaSink(sinkOptions({ spillDir: notADir, brokers: CLOSED }));
    for (let i = 0; i < 100; i++) sink.write(makeRecord('l', i));
    // write() only queued them: nothing was attempted on the caller's turn.
    expect(sink.stats()).toMatchObject({ accepted: 100, lost: 0, pending: 100 });
    await sink.flush();
    expect(sink.stats()).toMatchObject({ accepted: 100, delivered: 0, spilled: 0, lost: 100, pending: 0 });
    await sink.shutdown();
  });

  it('spills within its request bounds when the broker accepts connections but never answers, and shuts down', async () => {
    // A "broker" that takes the TCP connection and then says nothing: only timeouts end the client's requests.
    const sockets = new Set<Socket>();
    const silent = createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => {});
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as { port: number };
    try {
      const spillDir = await mkdtemp(join(tmpdir(), 'sibyl-spill-'));
      const sink = createKafkaSink(
        sinkOptions({ spillDir, brokers: [`127.0.0.1:${port}`], requestTimeoutMs: 500, retries: 1, shutdownTimeoutMs: 2000 }),
      );
      for (let i = 0; i < 50; i++) sink.write(makeRecord('s', i));
      const t0 = Date.now();
      await sink.flush();
      // Two attempts of 500 ms and the retry pause, well under the 10 s default of one request.
      expect(Date.now() - t0).toBeLessThan(8000);
      expect(sink.stats()).toMatchObject({ accepted: 50, delivered: 0, spilled: 50, lost: 0, pending: 50 });
      expect(sink.mode).toBe('spilling');
      const t1 = Date.now();
      await sink.shutdown();
      expect(Date.now() - t1).toBeLessThan(8000);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });
});
