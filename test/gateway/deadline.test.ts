/**
 * Request deadlines (core/deadline.ts): shared per 5 ms slot, aborted by a timer, and read by the clock where work
 * is about to start, so that a request whose deadline passed while the event loop was busy (its timer not yet run)
 * does not go on to its model. In process, on the real clock; the busy loop is a synchronous wait.
 */
import { describe, expect, it } from 'vitest';
import { deadlineSignal, passed } from '../../core/deadline.ts';
import { createPipeline, type Arrival, type ParsedRequest } from '../../gateway/pipeline/pipeline.ts';
import { Route, RouteTable, RouteTableRef } from '../../gateway/routing/route-table.ts';
import type { FeatureStore } from '../../execution/feature-store.ts';
import { validateManifest } from '../../runtimes/manifest.ts';
import { createOtelTelemetry } from '../../gateway/telemetry/otel-telemetry.ts';
import { httpEndpoint } from '../../gateway/telemetry/endpoint.ts';
import { createMemorySink } from '../helpers/memory-sink.ts';

/** Holds the thread for `ms`, as a long turn of the event loop does: no timer runs meanwhile. */
function busy(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // spin
  }
}

describe('deadline signals', () => {
  it('are shared within a 5 ms slot and abort with a TimeoutError once the deadline passes', async () => {
    const now = performance.now();
    const a = deadlineSignal(now + 20, now);
    expect(deadlineSignal(now + 20, now)).toBe(a);
    expect(deadlineSignal(now + 40, now)).not.toBe(a);
    expect(passed(a)).toBe(false);
    await new Promise<void>((resolve) => a.addEventListener('abort', () => resolve()));
    expect(performance.now()).toBeGreaterThanOrEqual(now + 20);
    expect((a.reason as Error).name).toBe('TimeoutError');
  });

  it('read as passed by the clock while the loop is too busy for the timer, and then aborted for every holder', () => {
    const now = performance.now();
    const signal = deadlineSignal(now + 10, now);
    let aborts = 0;
    signal.addEventListener('abort', () => aborts++);
    busy(25);
    expect(signal.aborted).toBe(false);
    expect(passed(signal)).toBe(true);
    expect(signal.aborted).toBe(true);
    expect((signal.reason as Error).name).toBe('TimeoutError');
    expect(aborts).toBe(1);
    // A later request in the same slot gets a fresh signal.
    expect(deadlineSignal(now + 10, performance.now())).not.toBe(signal);
  });

  it('leave other signals to their own state', () => {
    const c = new AbortController();
    expect(passed(c.signal)).toBe(false);
    c.abort();
    expect(passed(c.signal)).toBe(true);
  });
});

describe('a request whose deadline passes while the loop is busy', () => {
  it('does not run its model, and is answered DEADLINE_EXCEEDED', async () => {
    const manifest = validateManifest({
      name: 'm',
      version: '1',
      runtime: 'onnx',
      onnx: { file: 'm.onnx', inputs: [{ name: 'x', dtype: 'float32', features: ['a', 'b'] }], outputs: [{ name: 'y' }] },
      features: [
        { name: 'a', dtype: 'float32', source: 'request', default: 0 },
        { name: 'b', dtype: 'float32', source: 'store', entity: 'user', default: 0 },
      ],
    });
    let runs = 0;
    const route = new Route(manifest, { predict: async () => (runs++, [{ y: 1 }]), dispose: async () => {} }, 'h');
    const routes = new RouteTableRef(new RouteTable([{ name: 'm', versions: new Map([['1', route]]), defaultVersion: '1', aliases: new Map() }]));
    // The store answers, but only after holding the thread past the request's deadline (20 ms).
    let hold = 0;
    const store: FeatureStore = {
      kind: 'slow',
      healthy: true,
      async read(lookups) {
        busy(hold);
        return lookups.map((l) => l.fields.map(() => '2'));
      },
      async write() {},
      async close() {},
    };
    const telemetry = createOtelTelemetry({ serviceName: 't', cell: 'c', runtimeMetrics: false });
    const pipeline = createPipeline({ routes, store, featurePrefix: 'p', featureTimeoutMs: 1000, sink: createMemorySink(), telemetry, cell: 'c', maxRows: 10, requestTimeoutMs: 1000 });
    const arrival = (): Arrival => ({ transport: 'rest', startMs: performance.now(), endpoint: httpEndpoint('POST', '/v1/models/{model}:predict'), requestId: 'r' });
    const request: ParsedRequest = { model: 'm', version: '', routingKey: '', timeoutMs: 20, rows: () => [{ entities: { user: 'u1' }, features: { a: 1 } }] };

    // In time: answered.
    expect((await pipeline.predict(arrival(), () => request)).error).toBeUndefined();
    expect(runs).toBe(1);
    // Late: the store's answer comes after the deadline, in the same turn of the loop.
    hold = 40;
    const late = await pipeline.predict(arrival(), () => request);
    expect(late.error?.code).toBe('DEADLINE_EXCEEDED');
    expect(runs).toBe(1);
    await telemetry.shutdown();
  });
});
