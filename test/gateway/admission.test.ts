import { describe, expect, it } from 'vitest';
import { AdmissionControl } from '../../gateway/pipeline/admission.ts';

/** Keeps the event loop busy for `ms` milliseconds. */
function busyFor(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

describe('AdmissionControl', () => {
  it('refuses beyond maxInflight with RESOURCE_EXHAUSTED, and admits again after a release', () => {
    const a = new AdmissionControl({ maxInflight: 2, maxLagMs: 1000 });
    a.admit();
    a.admit();
    expect(() => a.admit()).toThrow(expect.objectContaining({ code: 'RESOURCE_EXHAUSTED' }));
    a.release();
    expect(() => a.admit()).not.toThrow();
    expect(a.stats()).toMatchObject({ inflight: 2, admitted: 3, rejected: 1 });
  });

  it('refuses while the event loop stays behind (not for one stall), and recovers once it catches up', async () => {
    const a = new AdmissionControl({ maxInflight: 100, maxLagMs: 20, sampleMs: 5 });
    a.start();
    try {
      await new Promise((r) => setTimeout(r, 20));
      expect(() => a.admit()).not.toThrow();
      a.release();
      // One long stall (a major GC, the hypervisor taking the core) is over when it is measured: no refusals.
      busyFor(200);
      await new Promise((r) => setTimeout(r, 6));
      expect(a.stats().lagMs).toBeGreaterThan(5);
      expect(() => a.admit()).not.toThrow();
      a.release();
      await new Promise((r) => setTimeout(r, 100));
      // Lag that persists turn after turn, as under overload (requests in flight): refused.
      a.admit();
      for (let i = 0; i < 6; i++) {
        busyFor(60);
        await new Promise((r) => setTimeout(r, 0));
      }
      expect(a.stats().lagMs).toBeGreaterThan(20);
      expect(() => a.admit()).toThrow(/event loop \d+ ms behind/);
      // The same lag with nothing in flight (a model loading, start-up): not the requests' doing, admitted.
      a.release();
      expect(() => a.admit()).not.toThrow();
      a.release();
      await new Promise((r) => setTimeout(r, 100));
      expect(() => a.admit()).not.toThrow();
    } finally {
      a.stop();
    }
  });

  it('under a CPU quota, counts the process as saturated when it uses its quota, not a whole core', async () => {
    // A throttled process: its loop is never idle, but it gets the CPU only a quarter of the time (1 ms of work,
    // then 3 ms blocked without using the CPU, as a cgroup quota or the hypervisor would hold it).
    const held = new Int32Array(new SharedArrayBuffer(4));
    const quota = new AdmissionControl({ maxInflight: 500, maxLagMs: 10_000, sampleMs: 5, queueMs: 20, cpuCores: 0.1 });
    const core = new AdmissionControl({ maxInflight: 500, maxLagMs: 10_000, sampleMs: 5, queueMs: 20, cpuCores: 1 });
    quota.start();
    core.start();
    try {
      const until = performance.now() + 500;
      while (performance.now() < until) {
        busyFor(1);
        for (let i = 0; i < 10; i++) {
          quota.admit();
          quota.release();
          core.admit();
          core.release();
        }
        Atomics.wait(held, 0, 0, 3);
        await new Promise((r) => setImmediate(r));
      }
      // Against a tenth of a core, a quarter of a core is all it may have: saturated, so the limit adapts.
      expect(quota.stats().utilization).toBeGreaterThan(0.95);
      expect(quota.stats().limit).toBeLessThan(500);
      // Against a whole core, the same process is mostly waiting, not CPU-bound: the limit stays.
      expect(core.stats().utilization).toBeLessThan(0.6);
      expect(core.stats().limit).toBe(500);
    } finally {
      quota.stop();
      core.stop();
    }
  });

  it('while the event loop is saturated, admits only what it completes in queueMs, and reopens when the loop has room', async () => {
    // The threshold is lowered here: while other test files run on the machine's cores this process gets only part
    // of one, and busy means busy with the CPU the process actually got.
    const a = new AdmissionControl({ maxInflight: 500, maxLagMs: 10_000, sampleMs: 5, queueMs: 20, busyUtilization: 0.3 });
    a.start();
    try {
      // A CPU-bound process: the loop is busy in 4 ms slices and completes 10 requests per slice (~2.5 per ms).
      const until = performance.now() + 400;
      while (performance.now() < until) {
        const slice = performance.now() + 4;
        for (let i = 0; i < 10; i++) {
          a.admit();
          a.release();
        }
        while (performance.now() < slice);
        await new Promise((r) => setImmediate(r));
      }
      const busy = a.stats();
      expect(busy.utilization).toBeGreaterThan(0.3);
      // ~2.5 completions per ms of wall time over a utilization of 0.3-1, x 20 ms: 50-170, far below maxInflight.
      expect(busy.limit).toBeGreaterThanOrEqual(16);
      expect(busy.limit).toBeLessThan(200);
      for (let i = 0; i < busy.limit; i++) a.admit();
      expect(() => a.admit()).toThrow(expect.objectContaining({ code: 'RESOURCE_EXHAUSTED' }));
      expect(a.refuseEarly()).toBe('inflight');
      for (let i = 0; i < busy.limit; i++) a.release();
      // Idle: the limit climbs back to maxInflight.
      await new Promise((r) => setTimeout(r, 400));
      expect(a.stats().limit).toBe(500);
    } finally {
      a.stop();
    }
  });

  it('does not limit requests that wait on I/O, however many are in flight', async () => {
    const a = new AdmissionControl({ maxInflight: 500, maxLagMs: 10_000, sampleMs: 5, queueMs: 20 });
    a.start();
    try {
      for (let i = 0; i < 400; i++) a.admit();
      await new Promise((r) => setTimeout(r, 200)); // an idle loop: the requests are waiting on a remote endpoint
      expect(a.stats().limit).toBe(500);
      for (let i = 0; i < 100; i++) a.admit();
      expect(() => a.admit()).toThrow(/at capacity \(500 requests in flight\)/);
    } finally {
      a.stop();
    }
  });
});
