/** The Kafka sink's write-ahead log, its reader and line format, on a real directory (no broker). */
import { appendFile, mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RangeSet } from '../../gateway/log/range-set.ts';
import { WriteAheadLog } from '../../gateway/log/write-ahead-log.ts';
import type { WalSegment } from '../../gateway/log/write-ahead-log.ts';
import { WalReader } from '../../gateway/log/wal-reader.ts';
import { messageOfLine, walLine, walLineOf } from '../../gateway/log/wal-line.ts';
import { EVENT_TAIL, predictionMessage, recordEventHead } from '../../gateway/log/cloud-event.ts';
import { recordToJson, type PredictionRecord } from '../../gateway/log/prediction-record.ts';

const quiet = { onFailing: () => {}, onRecovered: () => {}, onError: () => {} };

function openLog(dir: string, segmentBytes = 1000): WriteAheadLog {
  return new WriteAheadLog({ dir, segmentBytes, syncMs: 0, ...quiet });
}

const line = (i: number) => walLine(`req-${i}`, `{"id":"p-${i}","n":${i}}`);

/** Every message a fresh reader returns, as "key|value" strings, and the batches' segments and lines. */
async function readAll(log: WriteAheadLog, batch = 7): Promise<{ values: string[]; batches: { segment: WalSegment; lines: number[] }[] }> {
  const reader = new WalReader(log, { chunkBytes: 64, unreadable: () => {} });
  const values: string[] = [];
  const batches: { segment: WalSegment; lines: number[] }[] = [];
  for (let b = await reader.next(batch); b !== undefined; b = await reader.next(batch)) {
    batches.push({ segment: b.segment, lines: b.lines });
    for (const m of b.messages) values.push(`${String(m.key)}|${String(m.value)}`);
  }
  expect(reader.atEnd).toBe(true);
  await reader.close();
  return { values, batches };
}

describe('range set', () => {
  it('merges in any order and counts only new numbers', () => {
    const r = new RangeSet();
    expect(r.add(0, 5)).toBe(5);
    expect(r.add(10, 12)).toBe(2);
    expect(r.add(5, 10)).toBe(5);
    expect(r.add(3, 11)).toBe(0);
    expect(r.add(20, 21)).toBe(1);
    expect(r.add(15, 25)).toBe(9);
    expect([...r.ranges()]).toEqual([[0, 12], [15, 25]]);
    expect(r.covered).toBe(22);
    expect(r.coveredBelow(16)).toBe(13);
    expect([11, 12, 14, 15, 24, 25].map((x) => r.has(x))).toEqual([true, false, false, true, true, false]);
    expect([...RangeSet.fromLines(`${r.toLines()}7 9\n30 3`).ranges()]).toEqual([[0, 12], [15, 25]]);
  });
});

describe('write-ahead log line', () => {
  it('is the key as a JSON string, a tab and the value; decoding gives views of the very bytes', () => {
    const buf = walLine('req-1', '{"a":"b\\tc"}');
    expect(buf.toString()).toBe('"req-1"\t{"a":"b\\tc"}\n');
    const m = messageOfLine(buf, 0, buf.length - 1)!;
    expect(Buffer.isBuffer(m.key) && m.key.toString()).toBe('req-1');
    expect(m.value.toString()).toBe('{"a":"b\\tc"}');
    // A key with characters JSON escapes comes back as the string.
    const odd = walLine('a"\tb', '{}');
    expect(messageOfLine(odd, 0, odd.length - 1)!.key).toBe('a"\tb');
    const foreign = Buffer.from('{"predictionId":"x"}\n');
    expect(messageOfLine(foreign, 0, foreign.length - 1)).toBeUndefined();
  });

  it("written from a value's parts, is byte for byte the line of the joined value (the Kafka sink's records)", () => {
    for (const [key, head, data, tail] of [
      ['req-1', '{"id":"p",', '"data":{"x":1}', '}'],
      ['a"\tb', '{"ключ":', '"Zürich ✓ \ud83d\ude00"', '}'],
      ['k', '', '', ''],
      ['\ud800', '{"lone":"\udc00",', '"data":{}', '}'],
    ] as const) {
      expect(walLineOf(key, head, data, tail).equals(walLine(key, head + data + tail)), key).toBe(true);
    }
    const record: PredictionRecord = {
      predictionId: 'p-1', requestId: 'req-ü', time: '2026-01-01T00:00:00.120Z', cell: 'cell-a', model: 'fraud', version: '3',
      role: 'ROLE_LIVE', arm: '', rows: [{ entities: { user: 'Zoë' }, features: { city: 'Zürich ✓', amount: 1.5 }, outputs: { score: 0.25 }, defaultedFeatures: [] }],
      modelLatencyUs: '42', totalLatencyUs: '1234', traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', tracestate: 'a=b',
    };
    for (const r of [record, { ...record, traceparent: undefined, tracestate: undefined, time: '' }]) {
      const line = walLineOf(r.requestId, recordEventHead(r, 'fallback'), recordToJson(r), EVENT_TAIL);
      const message = predictionMessage(r, 'fallback');
      expect(line.toString()).toBe(walLine(message.key, message.value).toString());
      expect(messageOfLine(line, 0, line.length - 1)!.value.toString()).toBe(message.value);
    }
  });
});

describe('write-ahead log', () => {
  it('appends synchronously across segments, reads back what Kafka did not acknowledge, and deletes complete segments', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sibyl-wal-'));
    const log = openLog(dir, 300);
    const at = Array.from({ length: 30 }, (_, i) => log.append(line(i))!);
    // Written before append returned: on disk now, in several segments.
    const files = (await readdir(dir)).filter((n) => n.endsWith('.log'));
    expect(files.length).toBeGreaterThan(2);
    let onDisk = '';
    for (const f of files.sort()) onDisk += await readFile(join(dir, f), 'utf8');
    expect(onDisk).toBe(at.map((_, i) => line(i).toString()).join(''));

    // Acknowledge every line of the first segment and some of the second.
    const first = at[0]!.segment;
    expect(log.ack(first, 0, first.lines)).toBe(first.lines);
    expect(log.ack(first, 0, 1)).toBe(0);
    const second = log.segments[0]!;
    expect(second).not.toBe(first);
    log.ack(second, 1, 3);
    await new Promise((r) => setTimeout(r, 50));
    expect(await readdir(dir)).not.toContain(first.name);

    const { values, batches } = await readAll(log);
    const acked = new Set([...Array(first.lines).keys(), first.lines + 1, first.lines + 2]);
    expect(values).toEqual(at.map((_, i) => i).filter((i) => !acked.has(i)).map((i) => `req-${i}|{"id":"p-${i}","n":${i}}`));
    // A batch never spans two segments.
    for (const b of batches) expect(new Set(b.lines).size).toBe(b.lines.length);
    await log.close();
  });

  it('appends many lines with one write per segment, each line numbered where it landed, the same as one at a time', async () => {
    const one = await mkdtemp(join(tmpdir(), 'sibyl-wal-'));
    const many = await mkdtemp(join(tmpdir(), 'sibyl-wal-'));
    const single = openLog(one, 300);
    const batched = openLog(many, 300);
    const a = Array.from({ length: 30 }, (_, i) => single.append(line(i))!);
    // Three batches (10, 1 and 19 lines), crossing segment boundaries inside them.
    const b = [
      ...batched.appendMany(Array.from({ length: 10 }, (_, i) => line(i))),
      ...batched.appendMany([line(10)]),
      ...batched.appendMany(Array.from({ length: 19 }, (_, i) => line(11 + i))),
    ];
    expect(b.map((p) => [p!.segment.name, p!.line])).toEqual(a.map((p) => [p.segment.name, p.line]));
    const contents = async (dir: string) => {
      const out: string[] = [];
      for (const f of (await readdir(dir)).filter((n) => n.endsWith('.log')).sort()) out.push(`${f}:${await readFile(join(dir, f), 'utf8')}`);
      return out;
    };
    expect(await contents(many)).toEqual(await contents(one));
    expect((await contents(many)).length).toBeGreaterThan(2);
    await single.close();
    await batched.close();
    // A closed log takes nothing: every line's place is undefined.
    expect(batched.appendMany([line(30), line(31)])).toEqual([undefined, undefined]);
  });

  it('after a crash: a new process finds the leftovers, skips acknowledged lines and a torn last line, and numbers its own segments after them', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sibyl-wal-'));
    const crashed = openLog(dir, 400);
    const at = Array.from({ length: 20 }, (_, i) => crashed.append(line(i))!);
    crashed.ack(at[0]!.segment, 0, 2);
    crashed.ack(at[5]!.segment, at[5]!.line, at[5]!.line + 1);
    // No close(): the process died. A torn line at the end of the last segment, and a torn acks line.
    const last = at.at(-1)!.segment;
    await appendFile(join(dir, last.name), '"req-torn"\t{"id":');
    await appendFile(join(dir, at[0]!.segment.name.replace('.log', '.acks')), '9 1');

    const next = openLog(dir, 400);
    expect(next.hasLeftovers).toBe(true);
    // Appends before load() go to a new segment numbered after the leftovers.
    next.append(line(100));
    expect(next.segments.at(-1)!.no).toBe(last.no + 1);
    expect(await next.load()).toMatchObject({ pending: 17 });
    const { values } = await readAll(next);
    expect(values).toEqual([...[2, 3, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19].map((i) => `req-${i}|{"id":"p-${i}","n":${i}}`), 'req-100|{"id":"p-100","n":100}']);
    await next.close();
  });

  it('reads the segment being written up to its end, and again after more appends', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sibyl-wal-'));
    const log = openLog(dir, 1 << 20);
    for (let i = 0; i < 5; i++) log.append(line(i));
    const reader = new WalReader(log, { unreadable: () => {} });
    expect((await reader.next(100))?.lines).toEqual([0, 1, 2, 3, 4]);
    expect(await reader.next(100)).toBeUndefined();
    expect(reader.atEnd).toBe(true);
    log.append(line(5));
    expect(reader.atEnd).toBe(false);
    expect((await reader.next(100))?.lines).toEqual([5]);
    log.rotate();
    log.append(line(6));
    expect(reader.atEnd).toBe(false);
    const b = await reader.next(100);
    expect(b?.lines).toEqual([0]);
    expect(String(b?.messages[0]?.key)).toBe('req-6');
    expect(reader.atEnd).toBe(true);
    await reader.close();
    await log.close();
  });
});
