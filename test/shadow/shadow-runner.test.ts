/**
 * The shadow runner on its own: bounded concurrency and queue, batches, shedding, errors and deadlines recorded,
 * never thrown.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { FeatureRow, LoadedModel, OutputRow } from '../../runtimes/contract.ts';
import { SibylError } from '../../core/errors.ts';
import { parseManifest, validateManifest } from '../../runtimes/manifest.ts';
import { createOnnxRuntime } from '../../runtimes/onnx/onnx-runtime.ts';
import { createMemoryFeatureStore } from '../../gateway/features/memory-feature-store.ts';
import { Route } from '../../gateway/routing/route-table.ts';
import { ShadowRunner, type ShadowJob } from '../../gateway/shadow/shadow-runner.ts';
import { ShadowStats } from '../../gateway/shadow/shadow-stats.ts';
import { createMemorySink } from '../helpers/memory-sink.ts';

const manifest = (name: string, version: string) =>
  validateManifest({
    name,
    version,
    runtime: 'rules',
    rules: { file: 'rule.js' },
    features: [{ name: 'x', dtype: 'float32', source: 'request', default: 0 }],
    outputs: [{ name: 'score' }],
  });

/** A model whose calls wait until released (or their signal aborts), then answer score = x * factor. */
function gatedModel(factor: number) {
  const waiting: (() => void)[] = [];
  let calls = 0;
  const model: LoadedModel = {
    predict(rows: readonly FeatureRow[], ctx) {
      calls++;
      return new Promise<OutputRow[]>((resolve, reject) => {
        ctx.signal.addEventListener('abort', () => reject(new SibylError('DEADLINE_EXCEEDED', 'deadline')), { once: true });
        waiting.push(() => resolve(rows.map((r) => ({ score: (r.x as number) * factor }))));
      });
    },
    dispose: () => Promise.resolve(),
  };
  return { model, release: () => waiting.splice(0).forEach((w) => w()), calls: () => calls, pending: () => waiting.length };
}

const instantModel = (f: (rows: readonly FeatureRow[]) => OutputRow[]): LoadedModel => ({ predict: async (rows) => f(rows), dispose: async () => {} });

function job(live: Route, shadows: Route[], x: number, id = `req-${x}`): ShadowJob {
  return {
    ctx: { requestId: id, signal: new AbortController().signal, startMs: performance.now(), transport: 'rest' },
    live,
    arm: '',
    input: [{ entities: {}, features: { x } }],
    liveRows: [{ x }],
    liveResults: [{ outputs: { score: x }, defaulted: [] }],
    shadows,
  };
}

const tick = () => new Promise((r) => setImmediate(r));

function runner(over: Partial<ConstructorParameters<typeof ShadowRunner>[0]> = {}) {
  const sink = createMemorySink();
  const stats = new ShadowStats();
  const r = new ShadowRunner({ store: createMemoryFeatureStore(), featurePrefix: 'sibyl', featureTimeoutMs: 5, sink, cell: 'test', stats, ...over });
  return { r, sink, stats };
}

describe('shadow runner', () => {
  const live = new Route(manifest('m', '1'), instantModel((rows) => rows.map((r) => ({ score: r.x as number }))), 'h1');

  it('runs at most `concurrency` at once, queues up to `maxQueue`, and sheds and counts the rest', async () => {
    const gate = gatedModel(2);
    const shadow = new Route(manifest('m', '2'), gate.model, 'h2');
    const { r, stats, sink } = runner({ concurrency: 2, batchMs: 0, maxQueue: 3, timeoutMs: 10_000 });
    for (let i = 0; i < 8; i++) r.submit(job(live, [shadow], i));
    await tick();
    expect(gate.calls()).toBe(2);
    expect(r.stats()).toMatchObject({ running: 2, queued: 1, shed: 5 });
    while (r.stats().running + r.stats().queued > 0) {
      gate.release();
      await tick();
    }
    await r.flush();
    expect(gate.calls()).toBe(3);
    const [pair] = stats.snapshot();
    expect(pair).toMatchObject({ executed: 3, shed: 5, errors: {} });
    expect(pair!.outputs['score']).toMatchObject({ kind: 'number', count: 3 });
    // score = 2x against x for x in 0, 1, 2: differences 0, 1, 2.
    expect(pair!.outputs['score']).toMatchObject({ meanAbsDiff: 1 });
    expect(sink.records.map((rec) => [rec.role, rec.requestId])).toEqual([
      ['ROLE_SHADOW', 'req-0'],
      ['ROLE_SHADOW', 'req-1'],
      ['ROLE_SHADOW', 'req-2'],
    ]);
  });

  it('holds queued work for the batch window, then starts it in one turn', async () => {
    const gate = gatedModel(1);
    const shadow = new Route(manifest('m', '2'), gate.model, 'h2');
    const { r } = runner({ concurrency: 8, batchMs: 400, timeoutMs: 10_000 });
    for (let i = 0; i < 3; i++) {
      r.submit(job(live, [shadow], i));
      await tick();
    }
    expect(gate.calls()).toBe(0);
    expect(r.stats()).toMatchObject({ queued: 3, running: 0 });
    await sleep(500);
    expect(gate.calls()).toBe(3);
    expect(r.stats()).toMatchObject({ queued: 0, running: 3 });
    gate.release();
    await r.flush();
  });

  it('starts a full batch at once, without waiting for the window', async () => {
    const gate = gatedModel(1);
    const shadow = new Route(manifest('m', '2'), gate.model, 'h2');
    const { r } = runner({ concurrency: 4, batchMs: 60_000, timeoutMs: 10_000 });
    r.submit(job(live, [shadow], 0));
    await tick();
    expect(gate.calls()).toBe(0);
    for (let i = 1; i < 6; i++) r.submit(job(live, [shadow], i));
    await tick();
    // Four may run: they start together; the other two wait for room.
    expect(gate.calls()).toBe(4);
    expect(r.stats()).toMatchObject({ queued: 2, running: 4 });
    gate.release();
    await tick();
    await tick();
    // Room opened while more waited than it held: the rest started at once, without a window of their own.
    expect(gate.calls()).toBe(6);
    expect(r.stats()).toMatchObject({ queued: 0, running: 2 });
    gate.release();
    await r.close();
  });

  it('flush starts queued work at once, without waiting for the window (a Lambda invocation, a drain)', async () => {
    const shadow = new Route(manifest('m', '2'), instantModel((rows) => rows.map(() => ({ score: 1 }))), 'h2');
    const { r, stats } = runner({ batchMs: 600_000 });
    for (let i = 0; i < 3; i++) r.submit(job(live, [shadow], i));
    await tick();
    expect(r.stats()).toMatchObject({ queued: 3, executed: 0 });
    // Resolves long before the window (ten minutes) would end; the test's own timeout is seconds.
    await r.flush();
    expect(stats.snapshot()[0]).toMatchObject({ executed: 3, shed: 0 });
  });

  it("an ONNX shadow's rows of requests submitted across turns share one model run", async () => {
    const dir = path.resolve(import.meta.dirname, '../../models/delivery-eta/1');
    const rt = createOnnxRuntime();
    try {
      const eta = parseManifest(readFileSync(path.join(dir, 'sibyl.yaml'), 'utf8'));
      const loaded = await rt.load({ manifest: eta, dir, hash: 'eta-1' });
      const shadow = new Route(eta, loaded, 'eta-1');
      const rows = (JSON.parse(readFileSync(path.join(dir, 'expected.json'), 'utf8')) as { rows: { entities: Record<string, string>; request: FeatureRow; features: FeatureRow }[] }).rows.slice(0, 20);
      const etaLive = new Route(manifest('delivery-eta', '2'), instantModel((rs) => rs.map(() => ({ score: 0 }))), 'h-live');
      const jobOf = (i: number): ShadowJob => ({
        ...job(etaLive, [shadow], i),
        input: [{ entities: rows[i]!.entities, features: rows[i]!.request as Record<string, number> }],
        liveRows: [rows[i]!.features],
      });
      // A window no stall of the machine can close early; flush starts the batch.
      const { r, sink, stats } = runner({ batchMs: 600_000, timeoutMs: 10_000 });
      const runs = loaded.runs;
      for (let i = 0; i < rows.length; i++) {
        r.submit(jobOf(i));
        await tick();
      }
      await r.flush();
      expect(loaded.runs - runs).toBe(1);
      expect(stats.snapshot()[0]).toMatchObject({ executed: rows.length, errors: {} });
      expect(sink.records.map((rec) => rec.requestId)).toEqual(rows.map((_, i) => `req-${i}`));
      expect(sink.records.every((rec) => rec.error === undefined && typeof rec.rows[0]!.outputs['eta_minutes'] === 'number')).toBe(true);
    } finally {
      await rt.close();
    }
  });

  it('sheds everything while the gateway is busy, and runs again when it is not', async () => {
    let busy = true;
    const shadow = new Route(manifest('m', '2'), instantModel((rows) => rows.map(() => ({ score: 0 }))), 'h2');
    const { r, stats } = runner({ busy: () => busy });
    for (let i = 0; i < 5; i++) r.submit(job(live, [shadow], i));
    busy = false;
    for (let i = 0; i < 3; i++) r.submit(job(live, [shadow], i));
    await r.flush();
    expect(stats.snapshot()[0]).toMatchObject({ executed: 3, shed: 5 });
  });

  it('records errors and deadlines by code and logs them, without throwing to anyone', async () => {
    const failing = new Route(manifest('m', '3'), instantModel(() => { throw new Error('boom'); }), 'h3');
    const hung = new Route(manifest('m', '4'), gatedModel(1).model, 'h4');
    const { r, stats, sink } = runner({ timeoutMs: 50 });
    r.submit(job(live, [failing, hung], 1));
    await r.flush();
    const byVersion = new Map(stats.snapshot().map((p) => [p.shadow.version, p]));
    expect(byVersion.get('3')).toMatchObject({ executed: 1, errors: { INTERNAL: 1 } });
    expect(byVersion.get('4')).toMatchObject({ executed: 1, errors: { DEADLINE_EXCEEDED: 1 } });
    expect(sink.records.map((rec) => rec.error?.code).sort()).toEqual(['DEADLINE_EXCEEDED', 'INTERNAL']);
  });

  it('skips a shadow that is the live route itself, and holds each shadow route until its execution ends', async () => {
    const gate = gatedModel(1);
    const shadow = new Route(manifest('m', '2'), gate.model, 'h2');
    const { r, stats } = runner({ batchMs: 0, timeoutMs: 10_000 });
    r.submit(job(live, [live, shadow], 1));
    await tick();
    expect(gate.calls()).toBe(1);
    let disposed = false;
    void shadow.retire().then(() => (disposed = true));
    await tick();
    expect(disposed).toBe(false);
    gate.release();
    await r.flush();
    await tick();
    expect(disposed).toBe(true);
    expect(stats.snapshot().map((p) => p.shadow.version)).toEqual(['2']);
  });

  it('sheds what is submitted after close, and close waits for running executions', async () => {
    const gate = gatedModel(1);
    const shadow = new Route(manifest('m', '2'), gate.model, 'h2');
    const { r, stats } = runner({ batchMs: 0, timeoutMs: 10_000 });
    r.submit(job(live, [shadow], 1));
    await tick();
    expect(gate.calls()).toBe(1);
    let closed = false;
    const closing = r.close().then(() => (closed = true));
    r.submit(job(live, [shadow], 2));
    await tick();
    expect(closed).toBe(false);
    gate.release();
    await closing;
    expect(stats.snapshot()[0]).toMatchObject({ executed: 1, shed: 1 });
  });
});
