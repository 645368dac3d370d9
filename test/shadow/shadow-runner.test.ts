/** The shadow runner on its own: bounded concurrency and queue, shedding, errors and deadlines recorded, never thrown. */
import { describe, expect, it } from 'vitest';
import type { FeatureRow, LoadedModel, OutputRow } from '../../runtimes/contract.ts';
import { SibylError } from '../../core/errors.ts';
import { validateManifest } from '../../runtimes/manifest.ts';
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
    const { r, stats, sink } = runner({ concurrency: 2, maxQueue: 3, timeoutMs: 10_000 });
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
    const { r, stats } = runner();
    r.submit(job(live, [live, shadow], 1));
    await tick();
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
    const { r, stats } = runner();
    r.submit(job(live, [shadow], 1));
    await tick();
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
