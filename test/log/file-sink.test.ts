import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromJsonString, toJson } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { createFileSink } from '../../gateway/log/file-sink.ts';
import { createNullSink } from '../../gateway/log/null-sink.ts';
import { PredictionRecordSchema } from '../../proto/gen/sibyl/v1/prediction_log_pb.js';
import { makeRecord } from './records.ts';

describe('file sink', () => {
  it('writes every record as one parseable JSON line, in order, across rotated files', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sibyl-file-sink-'));
    const sink = createFileSink({ dir, maxFileBytes: 64 * 1024 });
    const records = Array.from({ length: 1500 }, (_, i) => makeRecord('f', i));
    for (const r of records) sink.write(r);
    // Written before write() returned.
    expect(sink.stats()).toEqual({ accepted: 1500, delivered: 1500, spilled: 0, lost: 0, pending: 0 });
    await sink.flush();
    await sink.shutdown();

    const files = (await readdir(dir)).filter((n) => n.endsWith('.jsonl')).sort();
    expect(files.length).toBeGreaterThan(1);
    const lines: string[] = [];
    for (const f of files) {
      const text = await readFile(join(dir, f), 'utf8');
      expect(Buffer.byteLength(text)).toBeLessThanOrEqual(64 * 1024);
      lines.push(...text.split('\n').filter((l) => l !== ''));
    }
    expect(lines).toHaveLength(1500);
    lines.forEach((line, i) => {
      // Valid ProtoJSON of the schema, and the record written.
      expect(toJson(PredictionRecordSchema, fromJsonString(PredictionRecordSchema, line), { alwaysEmitImplicit: true })).toEqual(records[i]);
    });
    // Consumers see every column, defaults included.
    const first = JSON.parse(lines[1]!) as Record<string, unknown>;
    expect(first).toMatchObject({ predictionId: 'f-1', arm: '', role: 'ROLE_SHADOW', modelLatencyUs: '42' });
  });

  it('writes each record before write() returns, counts a failing directory once and writes after shutdown as lost', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sibyl-file-sink-'));
    const sink = createFileSink({ dir, logger: { warn: () => {}, error: () => {} } });
    sink.write(makeRecord('g', 0));
    const files = (await readdir(dir)).filter((n) => n.endsWith('.jsonl'));
    expect(files).toHaveLength(1);
    expect(JSON.parse(await readFile(join(dir, files[0]!), 'utf8'))).toMatchObject({ predictionId: 'g-0' });
    expect(sink.stats().delivered).toBe(1);
    await sink.shutdown();
    await sink.shutdown();
    sink.write(makeRecord('g', 1));
    expect(sink.stats()).toMatchObject({ accepted: 2, delivered: 1, lost: 1, pending: 0 });

    const notADir = join(dir, files[0]!, 'sub');
    const errors: string[] = [];
    const broken = createFileSink({ dir: notADir, logger: { warn: () => {}, error: (m: string) => void errors.push(m) } });
    for (let i = 0; i < 50; i++) broken.write(makeRecord('h', i));
    expect(broken.stats()).toMatchObject({ accepted: 50, delivered: 0, lost: 50 });
    expect(errors).toHaveLength(1);
    await broken.shutdown();
  });
});

describe('null sink', () => {
  it('counts and drops', async () => {
    const sink = createNullSink();
    sink.write(makeRecord('n', 0));
    await sink.flush();
    await sink.shutdown();
    expect(sink.stats()).toEqual({ accepted: 1, delivered: 0, spilled: 0, lost: 0, pending: 0 });
  });
});
