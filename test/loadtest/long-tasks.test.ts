import { describe, expect, it } from 'vitest';
import { longTaskReport, longTasks, renderLongTasks, type CpuProfile, type ProfileNode } from '../../loadtest/lib/long-tasks.ts';

const ROOT = '/srv/sibyl';
const frame = (functionName: string, url = '', lineNumber = 0) => ({ functionName, url, lineNumber });

/**
 * A synthetic profile, sampled every 100 µs: the loop idle, a Kafka batch encoded under the sink's send (500 µs),
 * idle, one short request (100 µs), idle, a GC pause followed by request work in the same run (300 + 200 µs), idle.
 */
function syntheticProfile(): CpuProfile {
  const nodes: ProfileNode[] = [
    { id: 1, callFrame: frame('(root)'), children: [2, 3, 4, 7, 9] },
    { id: 2, callFrame: frame('(idle)') },
    { id: 3, callFrame: frame('(garbage collector)') },
    { id: 4, callFrame: frame('processImmediate', 'node:internal/timers'), children: [5] },
    { id: 5, callFrame: frame('#send', `file://${ROOT}/gateway/log/kafka-sink.ts`, 290), children: [6] },
    { id: 6, callFrame: frame('encodeRecordBatch', `file://${ROOT}/node_modules/@platformatic/kafka/dist/protocol/records.js`, 10) },
    { id: 7, callFrame: frame('predict', `file://${ROOT}/gateway/pipeline/pipeline.ts`, 150), children: [8] },
    { id: 8, callFrame: frame('stringify', '') },
    { id: 9, callFrame: frame('(program)') },
  ];
  const samples = [2, 2, 6, 6, 6, 6, 6, 2, 8, 2, 3, 3, 3, 7, 8, 2, 2];
  return { nodes, startTime: 1_000_000, endTime: 1_000_000 + 100 * (samples.length + 1), samples, timeDeltas: samples.map(() => 100) };
}

describe('long tasks from a CPU profile', () => {
  it('finds every run of busy samples between idle ones, with its length and the code that owned it', () => {
    const tasks = longTasks(syntheticProfile());
    expect(tasks.map((t) => [t.startUs, t.durationUs])).toEqual([
      [300, 500],
      [900, 100],
      [1100, 500],
    ]);
    // The package's encoder is filed under the deepest frame of ours that called it.
    expect(tasks[0]!.owner).toBe('gateway/log/kafka-sink.ts:#send');
    expect(tasks[1]!.owner).toBe('gateway/pipeline/pipeline.ts:predict');
    // A run is owned by what took most of it: 300 µs of GC against 200 µs of the request.
    expect(tasks[2]!.owner).toBe('(garbage collector)');
    expect(tasks[2]!.parts).toEqual([
      ['(garbage collector)', 300],
      ['gateway/pipeline/pipeline.ts:predict', 200],
    ]);
  });

  it('reports the histogram of runs, and only runs at or above the threshold by owner, with self time inside them', () => {
    const r = longTaskReport(syntheticProfile(), 0.2);
    const bucket = (from: number) => r.histogram.find((h) => h.fromMs === from)!;
    expect(bucket(0)).toMatchObject({ count: 1, totalMs: 0.1 });
    expect(bucket(0.5)).toMatchObject({ count: 2, totalMs: 1 });
    expect(r.histogram.reduce((s, h) => s + h.count, 0)).toBe(3);
    expect(r.owners.map((o) => [o.owner, o.count, o.totalMs, o.maxMs])).toEqual([
      ['gateway/log/kafka-sink.ts:#send', 1, 0.5, 0.5],
      ['(garbage collector)', 1, 0.5, 0.5],
    ]);
    expect(r.busy).toBeCloseTo(1.1 / 1.8, 3);
    expect(r.lateSamples).toEqual({ count: 0, totalMs: 0 });
    // The short request run is outside every long task: its stringify does not count.
    expect(Object.fromEntries(r.selfInLong)).toEqual({
      '@platformatic/kafka:encodeRecordBatch': 0.5,
      '(garbage collector)': 0.3,
      'gateway/pipeline/pipeline.ts:predict': 0.1,
      stringify: 0.1,
    });
    const md = renderLongTasks(r, 'synthetic');
    expect(md).toContain('| gateway/log/kafka-sink.ts:#send |');
    expect(md).toContain('| 0.5-1 | 2 | 1 |');
  });

  it('counts the samples taken late, whose gap is charged to the next frame', () => {
    const p = syntheticProfile();
    // The sampler missed 3 ms before the 9th sample and 1.5 ms before the 14th; a gap of exactly 1 ms is on time.
    const timeDeltas = p.timeDeltas.map((d, i) => (i === 8 ? 3000 : i === 13 ? 1500 : i === 4 ? 1000 : d));
    const r = longTaskReport({ ...p, timeDeltas, endTime: p.endTime + 2900 + 1400 + 900 }, 0.2);
    expect(r.lateSamples).toEqual({ count: 2, totalMs: 4.5 });
    expect(renderLongTasks(r, 'late')).toContain('Late samples (more than 1 ms after the one before): 2, 4.5 ms in all');
  });

  it('a threshold above every run leaves no owners', () => {
    expect(longTaskReport(syntheticProfile(), 1).owners).toEqual([]);
  });

  it('refuses a profile without idle samples, which cannot tell waiting from work', () => {
    const p = syntheticProfile();
    const noIdle = { ...p, nodes: p.nodes.filter((n) => n.id !== 2), samples: p.samples.map((s) => (s === 2 ? 9 : s)) };
    expect(() => longTaskReport(noIdle)).toThrow(/no \(idle\) samples/);
  });
});
