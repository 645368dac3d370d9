import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { createThreadedKafkaProducer, packBatch, packLines, unpackBatch } from '../../gateway/log/kafka-producer-thread.ts';
import { PREDICTION_HEADERS } from '../../gateway/log/cloud-event.ts';
import { messageOfLine, messagesOfLines, messagesOfPackedLines, walLine } from '../../gateway/log/wal-line.ts';
import type { KafkaMessage } from '../../gateway/log/kafka-producer.ts';

const text = (v: string | Buffer) => (typeof v === 'string' ? v : v.toString('utf8'));

describe('a batch handed to the Kafka producer thread', () => {
  it('arrives as the same keys, values and headers, from log lines, strings and multi-byte text', () => {
    const lines = [walLine('req-1', '{"id":"p-1","data":{"x":1}}'), walLine('req "quoted"\t2', '{"id":"p-2","data":{"city":"Zürich ✓"}}')];
    const messages: KafkaMessage[] = [
      ...lines.map((l) => messageOfLine(l, 0, l.length - 1)!),
      { key: 'ключ', value: '{"id":"p-3"}', headers: PREDICTION_HEADERS },
      { key: Buffer.alloc(0), value: Buffer.alloc(0), headers: PREDICTION_HEADERS },
    ];
    const { batch, headers } = packBatch(messages);
    // One object for the whole batch when every message shares it (the sink's case).
    expect(headers).toBe(PREDICTION_HEADERS);
    const back = unpackBatch(structuredClone(batch), headers);
    expect(back.map((m) => [text(m.key), text(m.value), m.headers])).toEqual(messages.map((m) => [text(m.key), text(m.value), PREDICTION_HEADERS]));
    expect(text(back[1]!.key)).toBe('req "quoted"\t2');
    expect(text(back[1]!.value)).toContain('Zürich ✓');
  });

  it('crosses as the log lines themselves: the worker reads the same messages from them as the lines hold', () => {
    const lines = [walLine('req-1', '{"id":"p-1","data":{"x":1}}'), walLine('req "quoted"\t2', '{"id":"p-2","data":{"city":"Zürich ✓"}}'), walLine('ключ', '{"id":"p-3"}')];
    const { data, ends } = packLines(lines);
    const back = messagesOfPackedLines(Buffer.from(structuredClone(data)), new Uint32Array(ends));
    const direct = lines.map((l) => messageOfLine(l, 0, l.length - 1)!);
    expect(back.map((m) => [text(m.key), text(m.value), m.headers])).toEqual(direct.map((m) => [text(m.key), text(m.value), PREDICTION_HEADERS]));
    expect(text(back[1]!.key)).toBe('req "quoted"\t2');
    expect(messagesOfLines(lines).map((m) => text(m.value))).toEqual(direct.map((m) => text(m.value)));
  });

  it('packs lines into a buffer handed back when one is large enough, else into a new one', () => {
    const lines = [walLine('k', `{"v":"${'v'.repeat(2000)}"}`), walLine('k2', `{"w":"${'w'.repeat(3000)}"}`)];
    const small = new ArrayBuffer(100);
    const large = new ArrayBuffer(1 << 21);
    const free = [small, large];
    const first = packLines(lines, free);
    expect(first.data).toBe(large);
    expect(free).toEqual([small]);
    const second = packLines(lines, free);
    expect(second.data).not.toBe(small);
    expect(free).toEqual([small]);
    // Only the lines count: what a reused buffer held before beyond them is never read.
    expect(messagesOfPackedLines(Buffer.from(first.data), new Uint32Array(first.ends)).map((m) => text(m.key))).toEqual(['k', 'k2']);
  });

  it('refuses a line that is not a message line rather than sending something else', () => {
    const buf = Buffer.from('not a line\n');
    expect(() => messagesOfPackedLines(buf, new Uint32Array([buf.length]))).toThrow(/not a Kafka message line/);
    expect(() => messagesOfLines([buf])).toThrow(/not a Kafka message line/);
  });

  it('keeps per-message headers when messages differ', () => {
    const messages: KafkaMessage[] = [
      { key: 'a', value: '1', headers: { 'content-type': 'x' } },
      { key: 'b', value: '2', headers: { 'content-type': 'y' } },
    ];
    const { batch, headers } = packBatch(messages);
    expect(unpackBatch(batch, headers).map((m) => m.headers['content-type'])).toEqual(['x', 'y']);
  });

  it('is one transferable buffer: the sender keeps nothing of it after the transfer', () => {
    const { batch } = packBatch([{ key: 'k', value: 'v'.repeat(1000), headers: PREDICTION_HEADERS }]);
    expect(batch.byteLength).toBe(4 * 3 + 1 + 1000);
    const { port1, port2 } = new MessageChannel();
    port1.postMessage(batch, [batch]);
    expect(batch.byteLength).toBe(0);
    port1.close();
    port2.close();
  });

  it.runIf(process.platform === 'linux')('runs its thread the given nice steps below the process in the batch class, and the process where it was', async () => {
    const statOf = (tid: string): string[] => readFileSync(`/proc/self/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    // proc(5): nice is field 19, the scheduling policy field 41 (0 SCHED_OTHER, 3 SCHED_BATCH); fields from 3 on here.
    const niceOf = (tid: string): number => Number(statOf(tid)[16]);
    const policyOf = (tid: string): number => Number(statOf(tid)[38]);
    const before = new Set(readdirSync('/proc/self/task'));
    const ownPolicy = policyOf(String(process.pid));
    const producer = createThreadedKafkaProducer(
      { brokers: ['127.0.0.1:9'], topic: 't', partitions: 1, compression: 'none', requestTimeoutMs: 1000, retries: 2, idempotent: true, clientId: 'test' },
      { nice: 7 },
    );
    const ready = producer.ready().catch(() => undefined);
    try {
      await producer.started;
      const added = readdirSync('/proc/self/task').filter((t) => !before.has(t) && readFileSync(`/proc/self/task/${t}/comm`, 'utf8').trim() === 'WorkerThread');
      expect(added).toHaveLength(1);
      const own = niceOf(String(process.pid));
      expect(niceOf(added[0]!)).toBe(Math.min(19, own + 7));
      expect(policyOf(added[0]!)).toBe(3);
      expect(niceOf(String(process.pid))).toBe(own);
      expect(policyOf(String(process.pid))).toBe(ownPolicy);
    } finally {
      await producer.close();
      await ready;
    }
  }, 60_000);

  it('closing ends the thread: what is pending rejects (the sink then sends it from its write-ahead log), later calls reject', async () => {
    // A "broker" that accepts connections and never answers: the client's calls stay pending.
    const sockets = new Set<Socket>();
    const silent = createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => {});
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as { port: number };
    try {
      const producer = createThreadedKafkaProducer({
        brokers: [`127.0.0.1:${port}`],
        topic: 't',
        partitions: 1,
        compression: 'none',
        requestTimeoutMs: 60_000,
        retries: 2,
        idempotent: true,
        clientId: 'test',
      });
      const ready = producer.ready();
      const sent = producer.send([{ key: 'k', value: 'v', headers: PREDICTION_HEADERS }]);
      await producer.started;
      await producer.close();
      await expect(ready).rejects.toThrow(/thread stopped/);
      await expect(sent).rejects.toThrow(/thread stopped/);
      await expect(producer.send([{ key: 'k', value: 'v', headers: PREDICTION_HEADERS }])).rejects.toThrow(/closed/);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  }, 60_000);
});
