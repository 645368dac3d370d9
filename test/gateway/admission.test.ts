/**
 * Admission control's decisions, on an injected clock: the process's CPU time and event-loop time are what the
 * test says they are, so every figure below is exact, whatever else runs on the machine.
 */
import { describe, expect, it } from 'vitest';
import { AdmissionControl, type AdmissionOptions } from '../../gateway/pipeline/admission.ts';

/** A process whose clock, CPU time and event-loop time the test advances. */
function fakeProcess() {
  let now = 1000;
  let cpu = 0;
  let active = 0;
  let idle = 0;
  return {
    probe: { now: () => now, cpuMs: () => cpu, loop: () => ({ active, idle }) },
    /** `ms` pass; the process uses `cores` of CPU and its loop is busy `elu` of the time. */
    run(ms: number, cores: number, elu: number) {
      now += ms;
      cpu += ms * cores;
      active += ms * elu;
      idle += ms * (1 - elu);
    },
  };
}

/** `n` requests admitted at once, then finished. */
function serve(a: AdmissionControl, n: number): void {
  for (let i = 0; i < n; i++) a.admit();
  for (let i = 0; i < n; i++) a.release();
}

/** Admissions until the first refusal (at most `max`), all in flight at once, then released; returns how many. */
function admitUntilRefused(a: AdmissionControl, max = 10_000): number {
  let n = 0;
  while (n < max && a.refuseEarly() === undefined) {
    a.admit();
    n++;
  }
  for (let i = 0; i < n; i++) a.release();
  return n;
}

const base = (probe: ReturnType<typeof fakeProcess>['probe'], more: Partial<AdmissionOptions> = {}): AdmissionOptions => ({
  maxInflight: 1000,
  maxLagMs: 1e6,
  sampleMs: 10,
  windowMs: 100,
  queueMs: 10,
  cpuCores: 1,
  // The turn bound is tested on its own below, with a loop whose turns the test runs.
  maxTurnMs: 0,
  probe,
  ...more,
});

/** A process whose clock, idle time and loop turns the test runs: `checkPhase()` ends the current turn. */
function fakeLoop() {
  let now = 1000;
  let idle = 0;
  let cpu = 0;
  let immediates: (() => void)[] = [];
  return {
    probe: { now: () => now, cpuMs: () => cpu, threadCpuMs: () => cpu, loop: () => ({ active: cpu, idle }), idleMs: () => idle, afterTurn: (fn: () => void) => void immediates.push(fn) },
    /** The loop works (runs callbacks, or a GC pause) for `ms`. */
    work(ms: number) {
      now += ms;
      cpu += ms;
    },
    /** The loop's thread does not run for `ms` (stopped by the CPU quota, or a neighbour holds the core). */
    stall(ms: number) {
      now += ms;
    },
    /** The loop waits idle in its poll phase for `ms`. */
    poll(ms: number) {
      now += ms;
      idle += ms;
    },
    /** The check phase: what the turn scheduled runs; what that schedules runs in the next turn's. */
    checkPhase() {
      const run = immediates;
      immediates = [];
      for (const fn of run) fn();
    },
    pending: () => immediates.length,
  };
}

/** One control window of 10 samples, 10 ms each, the process using `cores` with the loop busy `elu`, serving `n`. */
function window(a: AdmissionControl, p: ReturnType<typeof fakeProcess>, cores: number, elu: number, n: number): void {
  for (let i = 0; i < 10; i++) {
    serve(a, n / 10);
    p.run(10, cores, elu);
    a.sample();
  }
}

describe('AdmissionControl', () => {
  it('refuses beyond maxInflight with RESOURCE_EXHAUSTED, and admits again after a release', () => {
    const a = new AdmissionControl({ maxInflight: 2, maxLagMs: 1000 });
    a.admit();
    a.admit();
    expect(() => a.admit()).toThrow(expect.objectContaining({ code: 'RESOURCE_EXHAUSTED' }));
    a.release();
    expect(() => a.admit()).not.toThrow();
    expect(a.stats()).toMatchObject({ inflight: 2, admitted: 3, rejected: 1, rejectedInflight: 1 });
  });

  it('under a CPU quota of half a core, paces admissions once the process uses its quota, at the rate that leaves the target headroom', () => {
    const p = fakeProcess();
    const a = new AdmissionControl(base(p.probe, { cpuCores: 0.5, targetUtilization: 0.9 }));
    // 200 requests in 100 ms while using the whole half core: saturated.
    window(a, p, 0.5, 1, 200);
    // 2 admissions per ms x 0.9 / 1.0.
    expect(a.stats()).toMatchObject({ saturated: true, rate: 1800, utilization: 1 });
    // The bucket starts with one admission; then 1.8 per ms, at most 10 ms worth (queueMs) at once.
    expect(admitUntilRefused(a)).toBe(1);
    expect(() => a.admit()).toThrow(/CPU capacity/);
    p.run(5, 0.5, 1);
    expect(admitUntilRefused(a)).toBe(9);
    p.run(100, 0.5, 1);
    expect(admitUntilRefused(a)).toBe(18);
    expect(a.refuseEarly()).toBe('cpu');
    expect(a.stats()).toMatchObject({ rejectedCpu: 5, rejectedInflight: 0 });
  });

  it("admits work no caller waits for (shadows) at a share that holds utilization at 0.8 while requests queue, below the pacing's target", () => {
    const p = fakeProcess();
    const a = new AdmissionControl(base(p.probe, { cpuCores: 1 }));
    /** Of `n` background jobs offered now, how many may run. */
    const offered = (n: number) => Array.from({ length: n }, () => a.admitBackground()).filter(Boolean).length;
    /** `n` offered at a share of `share`: that many admitted, give or take the one the rounding carries over. */
    const expectShare = (n: number, share: number) => expect(Math.abs(offered(n) - n * share)).toBeLessThanOrEqual(1);
    window(a, p, 0.6, 0.6, 200);
    expect(offered(100)).toBe(100);
    // 0.9 with 20 requests in flight at once: not paced (the target is 0.9), and background work gets 0.8 / 0.9 of
    // what it got, spread evenly over the jobs offered.
    window(a, p, 0.9, 0.9, 200);
    expect(a.stats()).toMatchObject({ saturated: false, utilization: 0.9 });
    expectShare(900, 0.8 / 0.9);
    expect(admitUntilRefused(a, 500)).toBe(500);
    // Still 0.9 (the live load alone, say): the share keeps falling, by the same ratio each window.
    window(a, p, 0.9, 0.9, 200);
    expectShare(900, (0.8 / 0.9) ** 2);
    // Headroom again: the share climbs back by a tenth per window, up to all of it.
    window(a, p, 0.5, 0.5, 200);
    expectShare(1000, (0.8 / 0.9) ** 2 + 0.1);
    for (let i = 0; i < 3; i++) window(a, p, 0.5, 0.5, 200);
    expect(offered(100)).toBe(100);
    // Just as busy while serving one request at a time (a model loading beside it): nothing queues, nothing gives way.
    window(a, p, 0.95, 0.95, 10);
    expect(offered(100)).toBe(100);
    // Past half the in-flight limit in force (the whole of it with CPU to spare): none.
    window(a, p, 0.5, 0.5, 200);
    for (let i = 0; i < 501; i++) a.admit();
    expect(offered(10)).toBe(0);
    for (let i = 0; i < 501; i++) a.release();
    expect(offered(10)).toBe(10);
  });

  it('does not pace the same process against a whole core: it is not saturated', () => {
    const p = fakeProcess();
    const a = new AdmissionControl(base(p.probe, { cpuCores: 1 }));
    window(a, p, 0.5, 1, 200);
    expect(a.stats()).toMatchObject({ saturated: false, rate: undefined, utilization: 0.5 });
    expect(admitUntilRefused(a, 900)).toBe(900);
  });

  it('does not pace a loop that is never idle but gets only a tenth of a core (a neighbour holds the rest): the lag check is for that', () => {
    const p = fakeProcess();
    const a = new AdmissionControl(base(p.probe, { cpuCores: 1 }));
    window(a, p, 0.1, 1, 200);
    expect(a.stats()).toMatchObject({ saturated: false, utilization: 0.1 });
  });

  it('while refusing with headroom, raises the rate in proportion to it; after calm windows, stops pacing', () => {
    const p = fakeProcess();
    const a = new AdmissionControl(base(p.probe, { cpuCores: 0.5, calmWindows: 3 }));
    window(a, p, 0.5, 1, 200);
    expect(a.stats().rate).toBe(1800);
    // Refusing, and the process at 0.6 of its quota: +25% (the most per window).
    for (let i = 0; i < 10; i++) {
      admitUntilRefused(a);
      p.run(10, 0.3, 0.6);
      a.sample();
    }
    expect(a.stats().rate).toBe(2250);
    // Refusing at 0.855 of the quota: +5% ((0.9 - 0.855) / 0.9).
    for (let i = 0; i < 10; i++) {
      admitUntilRefused(a);
      p.run(10, 0.4275, 0.855);
      a.sample();
    }
    expect(a.stats().rate).toBeCloseTo(2362.5, 1);
    // Load gone: nothing refused for three windows, and the pacing is off.
    window(a, p, 0.1, 0.2, 10);
    window(a, p, 0.1, 0.2, 10);
    expect(a.stats().saturated).toBe(true);
    window(a, p, 0.1, 0.2, 10);
    expect(a.stats()).toMatchObject({ saturated: false, rate: undefined });
    expect(admitUntilRefused(a, 900)).toBe(900);
  });

  it('lowers the rate while utilization stays above the target, at most halving it per window (one stall does not close the door)', () => {
    const p = fakeProcess();
    const a = new AdmissionControl(base(p.probe, { cpuCores: 0.5 }));
    window(a, p, 0.5, 1, 200);
    expect(a.stats().rate).toBe(1800);
    // Admitting at the paced rate (18 per 10 ms) and still over the target (the refusals cost CPU too): 1.8 x 0.9 per ms.
    for (let i = 0; i < 10; i++) {
      p.run(10, 0.5, 1);
      admitUntilRefused(a, 18);
      a.sample();
    }
    expect(a.stats().rate).toBeCloseTo(1620, 0);
    // A window in which the process was stopped (a major GC) while it served one request at a time: not the
    // requests' doing, the rate stays.
    for (let i = 0; i < 10; i++) {
      p.run(10, 0.5, 1);
      if (i === 0) admitUntilRefused(a, 1);
      a.sample();
    }
    expect(a.stats().rate).toBeCloseTo(1620, 0);
    // The same with five at once: halved, not closed.
    for (let i = 0; i < 10; i++) {
      p.run(10, 0.5, 1);
      if (i === 0) admitUntilRefused(a, 5);
      a.sample();
    }
    expect(a.stats().rate).toBeCloseTo(810, 0);
  });

  it('while the process stays busy whatever it admits (refusing a flood), keeps the rate above a quarter of the recent peak', () => {
    const p = fakeProcess();
    const a = new AdmissionControl(base(p.probe, { cpuCores: 0.5 }));
    // A peak of 2 admissions per ms, then 20 windows that admit what the rate allows and stay at full utilization.
    window(a, p, 0.5, 1, 200);
    for (let w = 0; w < 20; w++) {
      for (let i = 0; i < 10; i++) {
        p.run(10, 0.5, 1);
        admitUntilRefused(a);
        a.sample();
      }
    }
    // Without the floor, 1800 x 0.9^20 = 219 per second and falling; the peak has decayed to at most
    // 2000 x 0.98^20 = 1335, a quarter of it 334 (it stops falling once fewer than 4 are admitted at once).
    expect(a.stats().rate).toBeGreaterThanOrEqual(333);
    expect(a.stats().rate).toBeLessThan(400);
  });

  it('does not pace a process busy with something else while it serves one request at a time (start-up, a neighbour)', () => {
    const p = fakeProcess();
    const a = new AdmissionControl(base(p.probe, { cpuCores: 0.5 }));
    for (let w = 0; w < 3; w++) {
      for (let i = 0; i < 10; i++) {
        a.admit();
        a.release();
        p.run(10, 0.5, 1);
        a.sample();
      }
    }
    expect(a.stats().saturated).toBe(false);
    expect(a.refuseEarly()).toBeUndefined();
  });

  it('never paces requests that wait on I/O, however many are in flight; the in-flight limit still holds', () => {
    const p = fakeProcess();
    const a = new AdmissionControl(base(p.probe, { maxInflight: 500, cpuCores: 0.5 }));
    for (let i = 0; i < 400; i++) a.admit();
    for (let w = 0; w < 3; w++) window(a, p, 0.01, 0.02, 0);
    expect(a.stats().saturated).toBe(false);
    for (let i = 0; i < 100; i++) a.admit();
    expect(() => a.admit()).toThrow(/at capacity \(500 requests in flight\)/);
    expect(a.refuseEarly()).toBe('inflight');
  });

  it('while the process is CPU-saturated, holds half as many in flight; with CPU to spare (or waiting on I/O), the whole limit', () => {
    const p = fakeProcess();
    // No pacing (queueMs 0): the in-flight bound alone, under a quota of half a core.
    const a = new AdmissionControl(base(p.probe, { maxInflight: 300, cpuCores: 0.5, queueMs: 0 }));
    const limitNow = (): number => {
      const n = admitUntilRefused(a);
      expect(a.stats().limit).toBe(n);
      return n;
    };
    expect(limitNow()).toBe(300);
    // A window that used the whole quota: requests queue for the CPU, and 150 in flight is the bound.
    window(a, p, 0.5, 0.5, 200);
    expect(limitNow()).toBe(150);
    expect(() => {
      for (let i = 0; i < 151; i++) a.admit();
    }).toThrow(/at capacity \(150 requests in flight\)/);
    for (let i = 0; i < 150; i++) a.release();
    // Still saturated: the same bound; then a window with CPU to spare restores the whole limit.
    window(a, p, 0.5, 0.5, 200);
    expect(limitNow()).toBe(150);
    window(a, p, 0.2, 0.4, 200);
    expect(limitNow()).toBe(300);
    // Many requests waiting on a slow endpoint use little CPU: the whole limit holds for them.
    for (let i = 0; i < 280; i++) a.admit();
    window(a, p, 0.01, 0.02, 0);
    expect(a.refuseEarly()).toBeUndefined();
    expect(a.stats()).toMatchObject({ limit: 300, inflight: 280 });
  });

  it('while saturated and requests finish late, lowers the in-flight bound until they finish in time, then raises it back', () => {
    const p = fakeProcess();
    const a = new AdmissionControl(base(p.probe, { maxInflight: 300, cpuCores: 0.5, queueMs: 0, lateShare: 0.5 }));
    const limitNow = (): number => {
      const n = admitUntilRefused(a);
      expect(a.stats().limit).toBe(n);
      return n;
    };
    /** A window: `inflight` admitted at once, `late` of them finishing past half their 100 ms deadline; the CPU used. */
    const finishing = (inflight: number, late: number, cores: number): void => {
      for (let i = 0; i < inflight; i++) a.admit();
      for (let i = 0; i < inflight; i++) {
        a.finished(i < late ? 51 : 50, 100);
        a.release();
      }
      for (let i = 0; i < 10; i++) {
        p.run(10, cores, cores / 0.5);
        a.sample();
      }
    };
    // Saturated, 120 in flight, a fifth of them late: 85% of 120 in flight is the bound (below the saturated 150).
    finishing(120, 24, 0.5);
    expect(limitNow()).toBe(102);
    // Still late: lower again, from the most in flight in the window (102, the admissions that measured the bound).
    finishing(100, 20, 0.5);
    expect(limitNow()).toBe(86);
    // Late, but under a fifth of what finished: the bound climbs back by a tenth (and one).
    finishing(80, 15, 0.5);
    expect(limitNow()).toBe(96);
    // Late with CPU to spare (a model behind a slow endpoint): admitting fewer would free nothing; the bound climbs.
    finishing(90, 90, 0.2);
    expect(limitNow()).toBe(107);
    // Never below 32, however late.
    for (let i = 0; i < 30; i++) finishing(32, 32, 0.5);
    expect(limitNow()).toBe(32);
    // In time again (none late): by half (and one) a window, back to the whole limit in 6 windows.
    for (let i = 0; i < 5; i++) finishing(10, 0, 0.2);
    expect(limitNow()).toBe(259);
    finishing(10, 0, 0.2);
    expect(limitNow()).toBe(300);
  });

  it('with lateShare 0, late requests never lower the bound', () => {
    const p = fakeProcess();
    const a = new AdmissionControl(base(p.probe, { maxInflight: 300, cpuCores: 0.5, queueMs: 0, lateShare: 0 }));
    for (let w = 0; w < 5; w++) {
      for (let i = 0; i < 100; i++) a.admit();
      for (let i = 0; i < 100; i++) {
        a.finished(99, 100);
        a.release();
      }
      for (let i = 0; i < 10; i++) {
        p.run(10, 0.5, 1);
        a.sample();
      }
    }
    // Saturated: the saturated share of the limit, nothing lower.
    expect(admitUntilRefused(a)).toBe(150);
  });

  it('with queueMs 0, never paces', () => {
    const p = fakeProcess();
    const a = new AdmissionControl(base(p.probe, { cpuCores: 0.5, queueMs: 0 }));
    window(a, p, 0.5, 1, 200);
    expect(a.stats().saturated).toBe(false);
  });

  it('refuses while the event loop stays behind (not for one stall), only with requests in flight, and recovers once it catches up', () => {
    const p = fakeProcess();
    // The CPU pacing off (queueMs 0): the lag check alone.
    const a = new AdmissionControl(base(p.probe, { maxLagMs: 20, queueMs: 0 }));
    // One stall of 200 ms: it counts as 40 ms (twice the limit), smoothed to 12 ms: admitted.
    p.run(210, 1, 1);
    a.sample();
    expect(a.stats().lagMs).toBeCloseTo(12, 5);
    a.admit();
    // Lag that persists sample after sample, as under overload: refused.
    for (let i = 0; i < 5; i++) {
      p.run(40, 1, 1);
      a.sample();
    }
    expect(a.stats().lagMs).toBeGreaterThan(20);
    expect(() => a.admit()).toThrow(/event loop \d+ ms behind/);
    // The same lag with nothing in flight (a model loading, start-up): not the requests' doing, admitted.
    a.release();
    expect(a.refuseEarly()).toBeUndefined();
    // Caught up: samples on time bring the smoothed lag down.
    a.admit();
    for (let i = 0; i < 10; i++) {
      p.run(10, 0.1, 0.1);
      a.sample();
    }
    expect(a.refuseEarly()).toBeUndefined();
    expect(a.stats().rejected).toBe(1);
  });

  describe('the turn bound (maxTurnMs)', () => {
    /** A request as the REST fast path takes it: refuseEarly (where the bound applies), then admit when not refused. */
    const read = (a: AdmissionControl): void => {
      if (a.refuseEarly() === undefined) a.admit();
    };
    const turnOptions = (probe: ReturnType<typeof fakeLoop>['probe'], maxTurnMs = 10): AdmissionOptions => ({ maxInflight: 1000, maxLagMs: 1e6, queueMs: 0, maxTurnMs, cpuCores: 1, windowMs: 100, probe });
    /**
     * Two control windows in which requests queued behind the loop: each one long turn (100 ms of work) that read
     * `inflight` requests, so the loop was busy all the time and no turn stayed within the bound.
     */
    const saturated = (a: AdmissionControl, l: ReturnType<typeof fakeLoop>, inflight = 8) => {
      for (let w = 0; w < 2; w++) {
        for (let i = 0; i < inflight; i++) read(a);
        for (let i = 0; i < inflight; i++) a.release();
        l.work(100);
        l.checkPhase();
        a.sample();
      }
      l.checkPhase();
      expect(a.stats().utilization).toBe(1);
    };

    /** A saturated gateway with one request in flight, read in a turn that has just ended (its check phase ran). */
    const oneInFlightAfterSaturation = () => {
      const l = fakeLoop();
      const a = new AdmissionControl(turnOptions(l.probe));
      saturated(a, l);
      read(a);
      l.checkPhase();
      return { l, a };
    };

    it('refuses the requests a turn reads after it has been busy longer than maxTurnMs, while others are in flight; the next turn admits', () => {
      const l = fakeLoop();
      const a = new AdmissionControl(turnOptions(l.probe));
      saturated(a, l);
      // Turn 1 reads 20 requests, each taking 0.9 ms of its work: the first 12 are read within 10 ms.
      let admitted = 0;
      let refused = 0;
      for (let i = 0; i < 20; i++) {
        const why = a.refuseEarly();
        if (why === undefined) {
          a.admit();
          admitted++;
        } else {
          expect(why).toBe('turn');
          refused++;
        }
        l.work(0.9);
      }
      expect({ admitted, refused }).toEqual({ admitted: 12, refused: 8 });
      // Only the fast path applies the bound: a request that reached admit() (read, routed, decoded) is admitted.
      expect(() => a.admit()).not.toThrow();
      // 16 admitted by the two saturated windows before, 12 + 1 in this turn.
      expect(a.stats()).toMatchObject({ rejectedTurn: 8, rejected: 8, admitted: 29 });
      // The turn ends; the next one polls (idle 5 ms) and reads a request at once: admitted.
      l.checkPhase();
      l.poll(5);
      expect(a.refuseEarly()).toBeUndefined();
    });

    it('under a CPU quota, counts a window in which the process used its quota as saturated, though its throttled loop waited half of it in poll', () => {
      // Half a core: each 100 ms window, 50 ms of work, then the rest of the period throttled while the loop's poll
      // would have returned (which the loop counts as idle). Event-loop utilization 0.5; CPU share of the quota 1.
      const l = fakeLoop();
      const a = new AdmissionControl({ ...turnOptions(l.probe), cpuCores: 0.5 });
      for (let w = 0; w < 2; w++) {
        for (let i = 0; i < 8; i++) read(a);
        for (let i = 0; i < 8; i++) a.release();
        l.work(50);
        l.checkPhase();
        l.poll(50);
        a.sample();
      }
      l.checkPhase();
      read(a);
      l.checkPhase();
      // A turn then reads requests behind 12 ms of callbacks: those read past the bound are refused.
      l.work(12);
      // gRPC's fast path asks without the bound (one HTTP/2 read hands the loop many calls at once).
      expect(a.refuseEarly(false)).toBeUndefined();
      expect(a.refuseEarly()).toBe('turn');
      expect(a.stats().rejectedTurn).toBe(1);
    });

    it('counts the work a turn did before its first request (I/O of requests in flight), not the time the loop waited idle', () => {
      const { l, a } = oneInFlightAfterSaturation();
      // Next turn: 50 ms idle in poll, then 12 ms of callbacks (replies of requests in flight), then a request.
      l.poll(50);
      l.work(12);
      expect(a.refuseEarly()).toBe('turn');
      l.checkPhase();
      // Next: 50 ms idle, 8 ms of callbacks: within the bound.
      l.poll(50);
      l.work(8);
      expect(a.refuseEarly()).toBeUndefined();
    });

    it('after a turn that read no request, counts from the next request read: a gap is not one long turn, and an idle loop schedules nothing', () => {
      const { l, a } = oneInFlightAfterSaturation();
      // A turn with no request (30 ms of other work: a model loading), then its check phase.
      l.work(30);
      l.checkPhase();
      expect(l.pending()).toBe(0);
      // The next turn reads a request after 2 ms of work: counted from that read, admitted.
      l.work(2);
      expect(a.refuseEarly()).toBeUndefined();
    });

    it('counts the turn\'s CPU time, not a stall in which its thread did not run (CFS throttling)', () => {
      const { l, a } = oneInFlightAfterSaturation();
      // The next turn: 2 ms of work, 40 ms throttled, 2 ms of work: 4 ms busy, admitted.
      l.work(2);
      l.stall(40);
      l.work(2);
      expect(a.refuseEarly()).toBeUndefined();
      read(a);
      // 7 ms more of work in the same turn: 11 ms busy, refused.
      l.work(7);
      expect(a.refuseEarly()).toBe('turn');
    });

    it("asks the thread's CPU time once per turn after the turn passed the bound, and afresh in the next turn", () => {
      const { l, a } = oneInFlightAfterSaturation();
      let asked = 0;
      const threadCpuMs = l.probe.threadCpuMs;
      l.probe.threadCpuMs = () => (asked++, threadCpuMs());
      l.work(11);
      for (let i = 0; i < 50; i++) {
        expect(a.refuseEarly()).toBe('turn');
        l.work(0.2);
      }
      expect(asked).toBe(1);
      // The next turn starts within the bound (no CPU asked while the wall clock is within it) and admits.
      l.checkPhase();
      asked = 0;
      l.work(1);
      expect(a.refuseEarly()).toBeUndefined();
      // Stalled, not busy: past the bound by the wall clock only, so its CPU is asked each time and it admits.
      l.stall(20);
      expect(a.refuseEarly()).toBeUndefined();
      expect(a.refuseEarly()).toBeUndefined();
      expect(asked).toBe(2);
      l.work(10);
      expect(a.refuseEarly()).toBe('turn');
      expect(a.refuseEarly()).toBe('turn');
      expect(asked).toBe(3);
    });

    it("below saturation, asks the thread's CPU time only at the end of a turn whose wall clock passed the bound", () => {
      const l = fakeLoop();
      const a = new AdmissionControl(turnOptions(l.probe));
      let asked = 0;
      const threadCpuMs = l.probe.threadCpuMs;
      l.probe.threadCpuMs = () => (asked++, threadCpuMs());
      // Half load: 200 turns, each reading a request that another turn answers, then polling idle.
      for (let i = 0; i < 200; i++) {
        read(a);
        l.work(0.3);
        l.checkPhase();
        a.release();
        l.work(0.2);
        l.checkPhase();
        l.poll(0.5);
      }
      expect(asked).toBe(0);
      // A turn made long by a GC pause: asked once, at its end; the turns after it are short again.
      read(a);
      l.work(12);
      l.checkPhase();
      expect(asked).toBe(1);
      read(a);
      l.work(0.3);
      l.checkPhase();
      expect(asked).toBe(1);
      expect(a.stats().rejected).toBe(0);
    });

    it('refuses nothing while busy with a few requests only (a version loading under 4 clients)', () => {
      const l = fakeLoop();
      const a = new AdmissionControl(turnOptions(l.probe));
      saturated(a, l, 4);
      read(a);
      l.checkPhase();
      l.work(25);
      expect(a.refuseEarly()).toBeUndefined();
    });

    it('refuses nothing while some turn of each window stays within the bound (the queue drains), however busy the loop', () => {
      const l = fakeLoop();
      const a = new AdmissionControl(turnOptions(l.probe));
      for (let w = 0; w < 2; w++) {
        // A turn of 95 ms and one of 5 ms, 8 requests in flight: busy all the time, but the queue drained once.
        for (let i = 0; i < 8; i++) read(a);
        for (let i = 0; i < 8; i++) a.release();
        l.work(95);
        l.checkPhase();
        read(a);
        a.release();
        l.work(5);
        l.checkPhase();
        a.sample();
      }
      expect(a.stats().utilization).toBe(1);
      read(a);
      l.work(25);
      expect(a.refuseEarly()).toBeUndefined();
    });

    it('refuses nothing until the process has been saturated for two windows: a long turn at half load (a GC pause) is over once measured', () => {
      const l = fakeLoop();
      const a = new AdmissionControl(turnOptions(l.probe));
      // A window at half load (busy 50 of 100 ms), then one saturated window: not yet.
      for (let i = 0; i < 8; i++) read(a);
      for (let i = 0; i < 8; i++) a.release();
      l.work(50);
      l.poll(50);
      a.sample();
      expect(a.stats().utilization).toBe(0.5);
      for (let i = 0; i < 8; i++) read(a);
      for (let i = 0; i < 8; i++) a.release();
      l.work(100);
      a.sample();
      expect(a.stats().utilization).toBe(1);
      read(a);
      l.checkPhase();
      // A turn with a 25 ms pause before the next request: admitted.
      l.work(25);
      expect(a.refuseEarly()).toBeUndefined();
    });

    it('never refuses with nothing in flight (a long turn at start-up), nor with the bound off', () => {
      const l = fakeLoop();
      const a = new AdmissionControl(turnOptions(l.probe));
      saturated(a, l);
      expect(a.refuseEarly()).toBeUndefined();
      l.work(500);
      expect(a.refuseEarly()).toBeUndefined();
      const off = new AdmissionControl(turnOptions(l.probe, 0));
      saturated(off, l);
      read(off);
      l.work(500);
      expect(off.refuseEarly()).toBeUndefined();
    });
  });
});
