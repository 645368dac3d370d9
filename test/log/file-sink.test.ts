import { readdirSync } from 'node:fs';
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
    const writes = records.map((r) => sink.write(r));
    // Appended together once this run of microtasks ends, across files: pending until then.
    expect(sink.stats()).toEqual({ accepted: 1500, delivered: 0, spilled: 0, lost: 0, pending: 1500 });
    await Promise.all(writes);
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

  it('has each record in its file when the promise write() returned resolves, counts a failing directory once and writes after shutdown as lost', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sibyl-file-sink-'));
    const sink = createFileSink({ dir, logger: { warn: () => {}, error: () => {} } });
    const appended = sink.write(makeRecord('g', 0));
    await appended;
    const files = (await readdir(dir)).filter((n) => n.endsWith('.jsonl'));
    expect(files).toHaveLength(1);
    expect(JSON.parse(await readFile(join(dir, files[0]!), 'utf8'))).toMatchObject({ predictionId: 'g-0' });
    expect(sink.stats().delivered).toBe(1);
    await sink.shutdown();
    await sink.shutdown();
    expect(sink.write(makeRecord('g', 1))).toBeUndefined();
    expect(sink.stats()).toMatchObject({ accepted: 2, delivered: 1, lost: 1, pending: 0 });

    const notADir = join(dir, files[0]!, 'sub');
    const errors: string[] = [];
    const broken = createFileSink({ dir: notADir, logger: { warn: () => {}, error: (m: string) => void errors.push(m) } });
    const writes: (void | Promise<void>)[] = [];
    for (let i = 0; i < 50; i++) writes.push(broken.write(makeRecord('h', i)));
    // A failed append settles the writers too: the promise tells when the record's fate is known, never rejects.
    await Promise.all(writes);
    expect(broken.stats()).toMatchObject({ accepted: 50, delivered: 0, lost: 50 });
    expect(errors).toHaveLength(1);
    await broken.shutdown();
  });
});

describe('appends of records written together', () => {
  it('appends the records written in one run of microtasks in one write, in order, before any of their writers resumes', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sibyl-file-sink-'));
    const sink = createFileSink({ dir, logger: { warn: () => {}, error: () => {} } });
    const fileText = async () => {
      const files = (await readdir(dir)).filter((n) => n.endsWith('.jsonl'));
      return files.length === 0 ? '' : readFile(join(dir, files[0]!), 'utf8');
    };
    // Ten requests finishing in one callback: nothing is in the file until that callback's microtasks have run.
    const writes = Array.from({ length: 10 }, (_, i) => sink.write(makeRecord('t', i)));
    expect(readdirSync(dir)).toHaveLength(0);
    expect(sink.stats()).toMatchObject({ accepted: 10, delivered: 0, pending: 10 });
    // Every writer resumes with every record of the batch already in the file.
    const seen = await Promise.all(writes.map(async (w) => (await w, fileText())));
    for (const text of seen) expect(text.trim().split('\n').map((l) => JSON.parse(l).predictionId)).toEqual(Array.from({ length: 10 }, (_, i) => `t-${i}`));
    // All ten share one promise: one append for the batch.
    expect(new Set(writes).size).toBe(1);
    // A record written from a later callback starts a batch of its own.
    await new Promise((r) => setImmediate(r));
    const later = sink.write(makeRecord('t', 10));
    expect(later).not.toBe(writes[0]);
    await sink.flush();
    expect((await fileText()).trim().split('\n')).toHaveLength(11);
    expect(sink.stats()).toMatchObject({ accepted: 11, delivered: 11, lost: 0 });
    await sink.shutdown();
  });

  it('appends what waits when the sink is flushed or shut down before the microtasks run', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sibyl-file-sink-'));
    const sink = createFileSink({ dir, logger: { warn: () => {}, error: () => {} } });
    for (let i = 0; i < 3; i++) void sink.write(makeRecord('s', i));
    const shut = sink.shutdown();
    expect(sink.stats()).toMatchObject({ accepted: 3, delivered: 3, lost: 0 });
    await shut;
    const files = (await readdir(dir)).filter((n) => n.endsWith('.jsonl'));
    expect((await readFile(join(dir, files[0]!), 'utf8')).trim().split('\n')).toHaveLength(3);
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
