/**
 * Admission control: under overload the gateway answers what it can within its deadline and refuses the rest at
 * once (RESOURCE_EXHAUSTED / 429), instead of queueing everything until every request is late.
 *
 * Four checks, in this order, each a few comparisons per request:
 * - requests in flight (admitted and not finished) against `maxInflight`: a bound on memory and on work waiting on
 *   slow I/O (a SageMaker endpoint, a slow store). While the process is CPU-saturated (the last control window: under
 *   a quota, it used it; else its utilization passed the target) the bound is half that: admitted requests then
 *   queue for the CPU, and fewer of them answer within a client's deadline (`SATURATED_INFLIGHT_SHARE`). Lower still
 *   while requests finish late (the late bound, `lateShare`: the entry reports each admitted request's time against
 *   its deadline, `finished`): a fixed bound is either too high past capacity, where the requests it admits wait in
 *   the process past their deadline, or too low below it, where the bursts read after a throttled CFS period pass
 *   it (measured over gRPC under half a core: 64 in flight while saturated served 44% of the offered load at 0.5x
 *   and 52-96% of capacity at 2x; 256 served all of it at 0.5x and 27-51% at 2x);
 * - the CPU rate (reason 'cpu'): while the process is CPU-saturated, admissions are paced by a token bucket at the
 *   rate it can complete within its CPU (below);
 * - event-loop lag, sampled by a timer every `sampleMs` and smoothed, against `maxLagMs`. One sample counts for at
 *   most 2 x `maxLagMs`, so only lag that persists over samples refuses, never one stall. Lag refuses only while
 *   predictions are in flight: with none, the lag is not the requests' doing (a model loading and warming up,
 *   start-up, a neighbour on the machine) and refusing would only turn a gateway that just started into one that
 *   answers 429 to its first request;
 * - the turn bound (reason 'turn', REST's fast path only): once requests queue behind the loop, a prediction
 *   read after the loop's current turn has used `maxTurnMs` of CPU is refused at once (`#turnBusyMs`, `#refusal`).
 * Work that no caller waits for (a request's shadow executions) asks `admitBackground()`, which gives it what the
 * requests leave of the CPU, up to a utilization below the pacing's target.
 * The pipeline's entry calls `admit()` before a door reads the body and `release()` when the prediction is done (the
 * door then writes the answer); the doors' fast paths (REST's listener, gRPC's stream path) ask `refuseEarly()`
 * before anything of the request's body is read (gRPC's without the turn bound).
 *
 * Why a CPU rate and not a queue: a request waits where the gateway cannot see it, in the kernel's socket buffers,
 * whenever the event loop is not reading (busy with a long turn, or stopped by the cgroup's CPU quota for the rest
 * of a period once the quota is used up: up to 50 ms of every 100 ms under half a core). Time spent there is
 * invisible to the process, and refusing a request that already waited there is no faster than serving it. So the
 * controller keeps the process from using its whole CPU: every `windowMs` (one CFS period by default) it measures
 * utilization (the smaller of event-loop utilization and the CPU share against the quota, `cpu-quota.ts`) and,
 * above `targetUtilization` with requests queuing (at least 4 in flight at some moment of the window), sets the admission rate to what was admitted x target / utilization, so that admitted
 * work plus the refusals' own cost leave headroom and the loop keeps reading at once. Refusals then cost a few tens of
 * microseconds at the socket (the fast path), and the requests admitted finish within their deadline. While
 * utilization is below target and the rate refused requests, it rises in proportion to the headroom; after
 * `calmWindows` windows without a refusal the pacing is off. Up to `queueMs` worth of admissions may arrive in a
 * burst (the bucket's depth): admitted requests wait in the process for at most about that long.
 */
import { SibylError } from '../../core/errors.ts';
import { cpuQuotaCores } from './cpu-quota.ts';

/** Why a request is refused: in-flight limit, CPU rate, event-loop lag, the loop turn's length. */
export type Refusal = 'inflight' | 'cpu' | 'lag' | 'turn';

/** What the doors' fast paths tell a client refused by `refuseEarly`, by reason (RESOURCE_EXHAUSTED, retry later). */
export const EARLY_REFUSAL_MESSAGES: Readonly<Record<Refusal, string>> = Object.freeze({
  inflight: 'the gateway is at capacity; retry with backoff',
  cpu: 'the gateway is at its CPU capacity; retry with backoff',
  lag: 'the gateway is overloaded; retry with backoff',
  turn: 'the gateway is overloaded; retry with backoff',
});

/** What the controller reads of the process; tests give their own (an injected clock). */
export interface AdmissionProbe {
  /** Monotonic time, ms. */
  now(): number;
  /** CPU time this process has used (user + system), ms. */
  cpuMs(): number;
  /** Cumulative event-loop time, ms: active (running callbacks) and idle (waiting in the poll phase). */
  loop(): { readonly active: number; readonly idle: number };
  /** The process's CPU quota, cores, or undefined without one; read again every `QUOTA_REFRESH_MS`. */
  quotaCores?(): number | undefined;
  /** Cumulative time the event loop waited idle in its poll phase, ms (the turn bound reads it once per request). */
  idleMs?(): number;
  /** Runs `fn` once the loop's current turn has polled (setImmediate: the check phase, after the I/O callbacks). */
  afterTurn?(fn: () => void): void;
  /** CPU time the event loop's thread has used, ms (a syscall, ~0.6 µs: read once a turn, and for suspect requests). */
  threadCpuMs?(): number;
}

/**
 * How often the cgroup's quota is read again, ms: a quota can change while the process runs (Kubernetes' in-place
 * resize, a benchmark moving the process into a cgroup). A read is a few small files.
 */
const QUOTA_REFRESH_MS = 1000;
/** The paced rate's floor, as a share of the recent peak admission rate; the peak's decay per window (~3 s to halve). */
const PEAK_FLOOR = 0.25;
/**
 * The share of `maxInflight` admitted while the process is CPU-saturated. Every request in flight then shares one
 * core, so the bound is a bound on how long they queue for it. Measured with the overload ramp (half a core, 1x =
 * 3,800/s, alternated rounds, README "Overload"): a bound of 256 kept 88% of capacity at 2x against 48% with 512,
 * 103% at 1.5x against 79%, 91% at 1x against 99%. Only while saturated, because a bound that low refused calls at
 * half load when applied always: the suite's gRPC runs at half of their maximum (no quota, ~0.7 of the core) read
 * bursts of 256 or more calls at once after a stall, and 26-202 of 58,000 were refused, none with 512.
 */
const SATURATED_INFLIGHT_SHARE = 0.5;
/**
 * The late bound (`lateShare`): while the process is CPU-saturated, a window in which at least LATE_FRACTION of the
 * requests that finished took longer than `lateShare` of their deadline lowers the in-flight bound to LATE_SHRINK of
 * what was in flight (never below LATE_MIN_INFLIGHT); a window with late requests under that share raises it by
 * LATE_GROW (and one), a window with none by LATE_RECOVER (and one), back up to `maxInflight`: from the floor to 512
 * in 7 windows once the load drops (over gRPC the ramp's last 0.5x step served 96-98% of what it was offered in two
 * rounds with LATE_GROW alone, 99.8-100% in five with LATE_RECOVER).
 */
const LATE_FRACTION = 0.2;
const LATE_SHRINK = 0.85;
const LATE_GROW = 1.1;
const LATE_RECOVER = 1.5;
const LATE_MIN_INFLIGHT = 32;
/** Requests in flight at once, at some moment of a window, before it may start or lower the pacing. */
const PACE_MIN_INFLIGHT = 4;
/**
 * Work no caller waits for (`admitBackground`): the utilization its share holds the process at while requests queue,
 * below the pacing's default target; and how much the share climbs back per window with headroom.
 */
const BACKGROUND_MAX_UTILIZATION = 0.8;
const BACKGROUND_SHARE_STEP = 0.1;
const PEAK_DECAY = 0.98;
/**
 * Requests in flight at once, at some moment of a window, for it to count towards the turn bound: a flood keeps many
 * admitted requests waiting on their I/O, while a few clients in a closed loop, whose gateway loads a new version in
 * long turns, keep it just as busy with no queue to shed (measured: 5 of ~100 refused during a version switch under
 * 4 clients, with the threshold at 4).
 */
const TURN_MIN_INFLIGHT = 8;

const processProbe: AdmissionProbe = {
  quotaCores: () => cpuQuotaCores(),
  now: () => performance.now(),
  cpuMs() {
    const c = process.cpuUsage();
    return (c.user + c.system) / 1000;
  },
  loop: () => performance.eventLoopUtilization(),
  idleMs: () => performance.nodeTiming.idleTime,
  afterTurn: (fn) => void setImmediate(fn),
  threadCpuMs() {
    const c = process.threadCpuUsage();
    return (c.user + c.system) / 1000;
  },
};

export interface AdmissionOptions {
  /** Most requests in flight (the gateway passes `SIBYL_MAX_INFLIGHT`, default 512); half of it while CPU-saturated. */
  readonly maxInflight: number;
  /** Smoothed event-loop lag above which new requests are refused, milliseconds (default 30). */
  readonly maxLagMs: number;
  /** Lag sampling period, milliseconds (default 10). */
  readonly sampleMs?: number;
  /**
   * Burst of admissions the CPU pacing allows, in milliseconds of its rate (default 25): about the longest an
   * admitted request queues in the process while it is saturated. 0 turns the CPU pacing off.
   */
  readonly queueMs?: number;
  /** Utilization (0-1) the CPU pacing holds the process at while saturated (default 0.9). */
  readonly targetUtilization?: number;
  /** The control window, ms (default 100: the CFS period, so that a throttled period is measured whole). */
  readonly windowMs?: number;
  /** Windows without a refusal before the CPU pacing is off again (default 3). */
  readonly calmWindows?: number;
  /**
   * The most CPU the process may use, in cores (default: its cgroup's quota, else 1, read again every second). Under
   * a quota of half a core, the process is saturated at a CPU share of 0.5. More than 1 counts as 1: the event loop
   * is one thread.
   */
  readonly cpuCores?: number;
  /**
   * The longest a request may wait behind the work of the loop turn that reads it, ms (default 5; 0 turns the
   * bound off): a prediction read after the turn has been busy that long is refused at once. See `refuseEarly`.
   */
  readonly maxTurnMs?: number;
  /**
   * The share of its deadline (0-1) past which a request that finished counts as late (default 0.5; 0 turns the late
   * bound off). While the process is CPU-saturated and late requests finish, the in-flight bound falls until they
   * stop: every request in flight then shares the CPU, and fewer of them finish sooner. See `finished`.
   */
  readonly lateShare?: number;
  /** Clock, CPU and event-loop readings (default: this process's). */
  readonly probe?: AdmissionProbe;
}

export interface AdmissionStats {
  readonly inflight: number;
  /** The in-flight limit in force: `maxInflight`, half of it while the process is CPU-saturated, less while requests finish late. */
  readonly limit: number;
  /** Admissions per second the CPU pacing allows now; undefined while it is off. */
  readonly rate: number | undefined;
  /**
   * Whether the CPU pacing is on (admissions paced): shadows give way. The window's saturation test alone, which halves
   * the in-flight bound, shows in `limit`.
   */
  readonly saturated: boolean;
  /** Utilization over the last window, 0-1: the smaller of event-loop utilization and the CPU share of the quota. */
  readonly utilization: number;
  /** Refusals because of the in-flight limit. */
  readonly rejectedInflight: number;
  /** Refusals because of the CPU pacing. */
  readonly rejectedCpu: number;
  /** Refusals because the loop turn that read the request had been busy longer than `maxTurnMs`. */
  readonly rejectedTurn: number;
  readonly lagMs: number;
  readonly admitted: number;
  /** All refusals (in flight + CPU + lag + turn). */
  readonly rejected: number;
}

export class AdmissionControl {
  readonly #maxInflight: number;
  /** The in-flight bound while CPU-saturated (SATURATED_INFLIGHT_SHARE of `maxInflight`). */
  readonly #saturatedInflight: number;
  /** The last control window found the process CPU-saturated. */
  #cpuSaturated = false;
  readonly #lateShare: number;
  /** The in-flight bound that late requests set (`maxInflight` while none finish late). */
  #lateInflight: number;
  /** Requests that finished in the current window, and those of them late. */
  #windowFinished = 0;
  #windowLate = 0;
  readonly #maxLagMs: number;
  readonly #sampleMs: number;
  readonly #queueMs: number;
  readonly #target: number;
  readonly #windowMs: number;
  readonly #calmWindows: number;
  /** The CPU share (cores) at which the process is saturated: its quota, at most 1. */
  #cpuCores: number;
  /** Whether the quota is read from the cgroup (again every QUOTA_REFRESH_MS), not given. */
  readonly #readsQuota: boolean;
  #quotaAt = 0;
  readonly #probe: AdmissionProbe;
  #inflight = 0;
  #lagMs = 0;
  #admitted = 0;
  #rejected = 0;
  #rejectedInflight = 0;
  #rejectedCpu = 0;
  #rejectedTurn = 0;
  /**
   * Consecutive control windows in which requests queued behind the loop: utilization above the target, enough in
   * flight, and every request-reading turn longer than the bound (the turn bound acts from the second such window).
   */
  #busyWindows = 0;
  /** Request-reading turns that ended in the current window, and those of them within the bound. */
  #windowTurns = 0;
  #windowShortTurns = 0;
  readonly #maxTurnMs: number;
  /** The current turn: when its work began (ms, the clock's), or -1 while no turn is being watched. */
  #turnAt = -1;
  /** The loop's idle time and the clock when the last watched turn ended (its check phase). */
  #turnEndAt = 0;
  #turnEndIdle = 0;
  /**
   * The loop thread's CPU time when the last watched turn ended, and when the current turn's count began; NaN when
   * not read (`#onTurnEnd`).
   */
  #turnEndCpu = 0;
  #turnCpuAt = 0;
  /**
   * The current turn's busy time once it passed `maxTurnMs` (then its thread's CPU time is not asked again in that
   * turn: it only grows), else -1.
   */
  #turnOverMs = -1;
  readonly #endTurn = (): void => this.#onTurnEnd();
  #timer: NodeJS.Timeout | undefined;
  #expected = 0;
  #utilization = 0;
  /** Admissions per ms while pacing; Infinity when off. */
  #rate = Infinity;
  #tokens = 0;
  #tokensAt = 0;
  #calm = 0;
  /** Admissions per ms, smoothed over windows; and the highest of recent windows (decaying by PEAK_DECAY a window). */
  #admittedRate = 0;
  #peakRate = 0;
  /** The most requests in flight at once in the current window, and in the last one. */
  #windowPeakInflight = 0;
  #lastPeakInflight = 0;
  /** The share of background work admitted (0-1), and the credit that spreads it evenly over the jobs offered. */
  #backgroundShare = 1;
  #backgroundCredit = 0;
  /** The current window: its start, and the readings and counts at its start. */
  #windowAt = 0;
  #windowCpu = 0;
  #windowLoop = { active: 0, idle: 0 };
  #windowAdmitted = 0;
  #windowRejectedCpu = 0;

  constructor(opts: AdmissionOptions) {
    this.#maxInflight = opts.maxInflight;
    this.#saturatedInflight = Math.max(1, Math.floor(opts.maxInflight * SATURATED_INFLIGHT_SHARE));
    this.#maxLagMs = opts.maxLagMs;
    this.#sampleMs = opts.sampleMs ?? 10;
    this.#queueMs = opts.queueMs ?? 25;
    this.#target = opts.targetUtilization ?? 0.9;
    this.#windowMs = opts.windowMs ?? 100;
    this.#calmWindows = opts.calmWindows ?? 3;
    this.#probe = opts.probe ?? processProbe;
    this.#maxTurnMs = opts.maxTurnMs ?? 5;
    this.#lateShare = opts.lateShare ?? 0.5;
    this.#lateInflight = opts.maxInflight;
    this.#readsQuota = opts.cpuCores === undefined;
    this.#cpuCores = Math.min(1, opts.cpuCores ?? this.#probe.quotaCores?.() ?? 1);
    const now = this.#probe.now();
    this.#quotaAt = now;
    this.#expected = now + this.#sampleMs;
    this.#openWindow(now);
  }

  /** Starts the sampler (an unref'd timer). Idempotent. */
  start(): void {
    if (this.#timer) return;
    const now = this.#probe.now();
    this.#expected = now + this.#sampleMs;
    this.#openWindow(now);
    this.#timer = setInterval(() => this.sample(), this.#sampleMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /**
   * One sample: the lag since the last one, and at the end of a window the CPU pacing. The timer calls it every
   * `sampleMs`; tests call it with an injected probe.
   */
  sample(): void {
    const now = this.#probe.now();
    // One sample counts for at most twice the limit: a single stall, however long (a major GC, the hypervisor
    // taking the core), is over by the time it is measured, and refusing the requests that queued behind it only
    // wastes the wait they already paid. Lag that persists over consecutive samples (overload) still crosses the
    // limit within two or three samples, and the smoothed value falls as fast once the load drops.
    const lag = Math.min(Math.max(0, now - this.#expected), this.#maxLagMs * 2);
    this.#expected = now + this.#sampleMs;
    this.#lagMs = this.#lagMs * 0.7 + lag * 0.3;
    if (now - this.#windowAt >= this.#windowMs) this.#closeWindow(now);
  }

  #openWindow(now: number): void {
    this.#windowAt = now;
    this.#windowCpu = this.#probe.cpuMs();
    const l = this.#probe.loop();
    this.#windowLoop = { active: l.active, idle: l.idle };
    this.#windowAdmitted = this.#admitted;
    this.#windowRejectedCpu = this.#rejectedCpu;
  }

  #closeWindow(now: number): void {
    const ms = now - this.#windowAt;
    const cpuMs = this.#probe.cpuMs() - this.#windowCpu;
    const l = this.#probe.loop();
    const active = l.active - this.#windowLoop.active;
    const idle = l.idle - this.#windowLoop.idle;
    const admitted = this.#admitted - this.#windowAdmitted;
    const refused = this.#rejectedCpu - this.#windowRejectedCpu;
    this.#openWindow(now);
    if (this.#readsQuota && now - this.#quotaAt >= QUOTA_REFRESH_MS) {
      this.#quotaAt = now;
      this.#cpuCores = Math.min(1, this.#probe.quotaCores?.() ?? 1);
    }
    // Busy means the loop was running AND the process got the CPU for it (its quota's worth): event-loop utilization
    // alone counts the time the process waited for a core held by a neighbour or the hypervisor as busy, and pacing
    // on it shed most requests at a fraction of capacity on this shared machine (measured: 1,433 of 2,000 refused at
    // 500/s with no quota and a load average of 17), which is the lag check's job, not this one's.
    const elu = active + idle > 0 ? active / (active + idle) : 0;
    const cpuShare = cpuMs / ms / this.#cpuCores;
    const utilization = Math.min(elu, cpuShare);
    this.#utilization = utilization;
    // Busy with requests: a few at once at least. A process busy with anything else (starting, loading a model, a
    // neighbour on its core) while it serves a request at a time gains nothing from admitting fewer.
    const peakInflight = this.#windowPeakInflight;
    this.#lastPeakInflight = peakInflight;
    const queued = peakInflight >= PACE_MIN_INFLIGHT;
    // Background work takes what the requests leave, up to BACKGROUND_MAX_UTILIZATION: its share falls in proportion
    // to the overshoot while requests queue, and climbs back by a step per window with headroom (a share, not an
    // on/off switch, which would alternate windows of every shadow and of none, the first ones over the target).
    if (utilization > BACKGROUND_MAX_UTILIZATION && queued) this.#backgroundShare *= BACKGROUND_MAX_UTILIZATION / utilization;
    else this.#backgroundShare = Math.min(1, this.#backgroundShare + BACKGROUND_SHARE_STEP);
    this.#windowPeakInflight = this.#inflight;
    const standing = this.#windowTurns > 0 && this.#windowShortTurns === 0;
    this.#windowTurns = 0;
    this.#windowShortTurns = 0;
    // For the turn bound, a process under a quota is saturated when it used its quota: its loop then waits in its
    // poll for the rest of the period, throttled, which counts as idle (event-loop utilization read 0.47-0.52 while
    // the process used all of its half core, in the suite's overload ramp at 1.5x and 2x), so the bound never acted
    // there. Measured with the fix (loadtest/overload.ts, 1x = 2,000/s under half a core, the revision before
    // alternated, 4 rounds each): goodput at 2x 14-75% of capacity against 5-18%, at 1x 95-97% against 72-95%. The
    // CPU pacing keeps `utilization`: fed the quota's share, its target (below) made it refuse 1,326 of 3,000
    // requests at 0.5x.
    const saturated = (this.#cpuCores < 1 ? Math.min(1, cpuShare) : utilization) > this.#target;
    this.#cpuSaturated = saturated;
    this.#adjustLateBound(saturated, peakInflight);
    this.#busyWindows = saturated && peakInflight >= TURN_MIN_INFLIGHT && standing ? this.#busyWindows + 1 : 0;
    if (this.#queueMs <= 0) return;
    const admittedRate = admitted / ms;
    this.#admittedRate = this.#admittedRate * 0.7 + admittedRate * 0.3;
    this.#peakRate = Math.max(this.#peakRate * PEAK_DECAY, admittedRate);
    if (utilization > this.#target && admitted > 0 && queued) {
      // Saturated: pace admissions at what was admitted, scaled to leave the headroom; at most halved per window,
      // and from no less than half the recent rate, so that one stalled window (a major GC) does not close the door.
      let next = Math.max(admittedRate, this.#admittedRate / 2) * (this.#target / utilization);
      // Nor below a quarter of the recent peak: when the process stays busy whatever it admits (refusing a flood, or
      // a neighbour holding the core), admitting less frees nothing, and the rate must not spiral down to zero.
      next = Math.max(next, this.#rate === Infinity ? 0 : this.#rate / 2, this.#peakRate * PEAK_FLOOR);
      if (this.#rate === Infinity) {
        this.#tokens = 1;
        this.#tokensAt = now;
      }
      this.#rate = Math.min(this.#rate, next);
      this.#calm = 0;
    } else if (this.#rate !== Infinity) {
      if (refused > 0) {
        // Headroom and still refusing: raise the rate in proportion to the headroom (at most +25% a window).
        this.#rate *= 1 + Math.min(0.25, Math.max(0.02, (this.#target - utilization) / this.#target));
        this.#calm = 0;
      } else if (++this.#calm >= this.#calmWindows) {
        this.#rate = Infinity;
        this.#calm = 0;
      }
    }
  }

  /** Admits a request or throws RESOURCE_EXHAUSTED. Every admitted request must be released exactly once. */
  admit(): void {
    const why = this.#refusal(false);
    if (why === 'inflight') {
      throw new SibylError('RESOURCE_EXHAUSTED', `the gateway is at capacity (${this.#inflight} requests in flight); retry with backoff`);
    }
    if (why === 'cpu') {
      throw new SibylError('RESOURCE_EXHAUSTED', 'the gateway is at its CPU capacity; retry with backoff');
    }
    if (why === 'lag') {
      throw new SibylError('RESOURCE_EXHAUSTED', `the gateway is overloaded (event loop ${Math.round(this.#lagMs)} ms behind); retry with backoff`);
    }
    if (this.#rate !== Infinity) this.#tokens -= 1;
    if (++this.#inflight > this.#windowPeakInflight) this.#windowPeakInflight = this.#inflight;
    this.#admitted++;
  }

  /**
   * Refuses a request before anything is read or allocated for it, when `admit` would refuse it or (with
   * `turnBound`, the default) the turn bound does: the reason (the refusal is counted), or undefined to go on (then
   * call `admit` as usual, in the same turn). For the transports' fast path: under overload a refusal must cost a
   * small fraction of a prediction, or refusing eats the capacity that serving needs. gRPC's passes `false`: one
   * read of an HTTP/2 connection hands the loop many calls at once, and the bound refused calls below capacity
   * (ARCHITECTURE.md, "Admission control").
   */
  refuseEarly(turnBound = true): Refusal | undefined {
    return this.#refusal(turnBound);
  }

  /**
   * Why admission refuses a request now, counted, or undefined. The turn bound applies only where the refusal is
   * REST's fast path's (`refuseEarly()`): refusing there costs what node:http costs to answer anything (22.7 µs),
   * which is what makes bounding a turn pay; a request that reaches `admit` has been read and routed already, and
   * refusing it saves little. Over gRPC it refused calls below capacity both ways: a full run refused 0.1-2% of gRPC
   * calls at half of their closed-loop maximum when `admit` applied it, and one refused 1% (328 of 33,200, S4a) when
   * the stream path's `refuseEarly` did.
   */
  #refusal(withTurn: boolean): Refusal | undefined {
    if (this.#inflight >= this.#inflightLimit()) {
      this.#rejected++;
      this.#rejectedInflight++;
      return 'inflight';
    }
    if (this.#rate !== Infinity) {
      const now = this.#probe.now();
      this.#tokens = Math.min(Math.max(1, this.#rate * this.#queueMs), this.#tokens + (now - this.#tokensAt) * this.#rate);
      this.#tokensAt = now;
      if (this.#tokens < 1) {
        this.#rejected++;
        this.#rejectedCpu++;
        return 'cpu';
      }
    }
    if (this.#lagMs > this.#maxLagMs && this.#inflight > 0) {
      this.#rejected++;
      return 'lag';
    }
    // Only while requests queue behind the loop (the last two windows saturated, each with TURN_MIN_INFLIGHT in flight
    // at some moment and no turn within the bound: the queue never drained): a turn made long by one GC pause or one
    // batch of the log's work below capacity is over by the time it is measured, and refusing the requests it read
    // frees nothing (measured at half of the closed-loop maximum: 0.1-0.8% of requests refused without this gate,
    // 0.2-0.6% with the utilization and in-flight conditions alone).
    if (withTurn && this.#maxTurnMs > 0 && this.#turnBusyMs() > this.#maxTurnMs && this.#busyWindows >= 2 && this.#inflight > 0) {
      this.#rejected++;
      this.#rejectedTurn++;
      return 'turn';
    }
    return undefined;
  }

  /**
   * How long the loop's current turn has been busy, ms. A turn that reads requests is watched: its check phase
   * (one setImmediate) records when it ended, the loop's idle time and its thread's CPU time then, so the next turn's
   * work is counted from that end, including the work done before its first request (I/O callbacks of requests in
   * flight). A turn that follows one without requests counts from its first request: an idle gateway schedules
   * nothing, so its poll still blocks. Busy is the loop thread's CPU time (GC pauses count), read only when the wall
   * clock less the loop's idle wait already exceeds the bound: time the thread did not run (CFS throttling at the end
   * of its quota, a neighbour holding the core) is not the turn's work, and refusing after it frees nothing; the CPU
   * pacing and the lag check are the answers to those.
   */
  #turnBusyMs(): number {
    const now = this.#probe.now();
    if (this.#turnAt < 0) {
      const chained = this.#turnEndAt > 0;
      this.#turnAt = chained ? Math.min(now, this.#turnEndAt + ((this.#probe.idleMs?.() ?? 0) - this.#turnEndIdle)) : now;
      this.#turnCpuAt = chained ? this.#turnEndCpu : this.#cpuSaturated ? (this.#probe.threadCpuMs?.() ?? 0) : NaN;
      this.#turnOverMs = -1;
      this.#probe.afterTurn?.(this.#endTurn);
    }
    if (this.#turnOverMs >= 0) return this.#turnOverMs;
    // The wall clock first: it is never less than the thread's CPU, so within the bound no syscall is needed.
    if (now - this.#turnAt <= this.#maxTurnMs || !this.#probe.threadCpuMs) return now - this.#turnAt;
    const busy = this.#busySince(now, this.#probe.threadCpuMs());
    if (busy > this.#maxTurnMs) this.#turnOverMs = busy;
    return busy;
  }

  /**
   * The current turn's busy time at `now`: its thread's CPU time when `cpu` and the turn's start (`#turnCpuAt`) are
   * known, else the wall clock's.
   */
  #busySince(now: number, cpu: number | undefined): number {
    const wall = now - this.#turnAt;
    if (cpu === undefined) return wall;
    const busy = cpu - this.#turnCpuAt;
    return busy < wall ? busy : wall;
  }

  /**
   * The check phase of a turn that read requests: the next turn is counted from here. Its thread's CPU time (a
   * syscall, two a turn with the turn's start: 1.4% of the loop's time at 1,000 requests/s) is read only where it
   * can matter: while the last window was saturated, or for a turn whose wall clock passed the bound. Otherwise the
   * turn was short by its wall clock, and the bound cannot act before two saturated windows, in which every turn's
   * start and end are read; a turn whose start was not read counts by its wall clock (`#busySince`).
   */
  #onTurnEnd(): void {
    const now = this.#probe.now();
    const cpu = this.#cpuSaturated || now - this.#turnAt > this.#maxTurnMs ? this.#probe.threadCpuMs?.() : undefined;
    // Whether this turn stayed within the bound: one such turn in a window means the queue drained in it.
    this.#windowTurns++;
    if (this.#busySince(now, cpu) <= this.#maxTurnMs) this.#windowShortTurns++;
    this.#turnAt = -1;
    this.#turnEndAt = now;
    this.#turnEndIdle = this.#probe.idleMs?.() ?? 0;
    this.#turnEndCpu = cpu ?? NaN;
    // Cleared by the next turn that reads no request: a gap of idle turns must not count as one busy turn.
    this.#probe.afterTurn?.(this.#gapTurn);
  }

  readonly #gapTurn = (): void => {
    if (this.#turnAt < 0) this.#turnEndAt = 0;
  };

  release(): void {
    this.#inflight--;
  }

  /**
   * An admitted request finished (answered or failed) `elapsedMs` after it arrived, against its deadline of
   * `deadlineMs`: what the late bound counts. The entry calls it once per admitted request that it parsed.
   */
  finished(elapsedMs: number, deadlineMs: number): void {
    this.#windowFinished++;
    if (elapsedMs > deadlineMs * this.#lateShare) this.#windowLate++;
  }

  /**
   * At the end of a window: lowers the late bound when the process was saturated and enough of the requests that
   * finished were late (to LATE_SHRINK of the bound or of the most in flight in the window, whichever is lower), else
   * raises it towards `maxInflight` (faster when none was late). Lateness alone does not lower it: a model behind a
   * slow endpoint finishes late with the CPU idle, and admitting fewer would only cut its throughput.
   */
  #adjustLateBound(saturated: boolean, peakInflight: number): void {
    const finished = this.#windowFinished;
    const late = this.#windowLate;
    this.#windowFinished = 0;
    this.#windowLate = 0;
    if (this.#lateShare <= 0) return;
    if (saturated && late > 0 && late >= finished * LATE_FRACTION) {
      this.#lateInflight = Math.max(LATE_MIN_INFLIGHT, Math.floor(Math.min(this.#lateInflight, peakInflight) * LATE_SHRINK));
    } else if (this.#lateInflight < this.#maxInflight) {
      this.#lateInflight = Math.min(this.#maxInflight, Math.ceil(this.#lateInflight * (late === 0 ? LATE_RECOVER : LATE_GROW)) + 1);
    }
  }

  /**
   * The in-flight bound in force: `maxInflight`, or its saturated share while the CPU is saturated, and never above
   * the late bound.
   */
  #inflightLimit(): number {
    return Math.min(this.#cpuSaturated ? this.#saturatedInflight : this.#maxInflight, this.#lateInflight);
  }

  /**
   * Whether a piece of work that no caller waits for (a request's shadow executions) may run now. None while
   * admissions are paced, past half the in-flight limit in force, or with the smoothed lag past half its bound. Otherwise
   * its share: all of it while utilization stays at or below BACKGROUND_MAX_UTILIZATION, less in proportion to the
   * overshoot while requests queue (PACE_MIN_INFLIGHT in flight at once), so that background work stops before live
   * requests are paced. A process busy with anything else while it serves a request at a time (starting, loading a
   * model) keeps all of it. The jobs admitted are spread evenly over those offered.
   */
  admitBackground(): boolean {
    if (this.#rate !== Infinity || this.#inflight * 2 > this.#inflightLimit() || this.#lagMs * 2 > this.#maxLagMs) return false;
    this.#backgroundCredit += this.#backgroundShare;
    if (this.#backgroundCredit < 1) return false;
    this.#backgroundCredit -= 1;
    return true;
  }

  stats(): AdmissionStats {
    return {
      inflight: this.#inflight,
      limit: this.#inflightLimit(),
      rate: this.#rate === Infinity ? undefined : Math.round(this.#rate * 1000 * 10) / 10,
      saturated: this.#rate !== Infinity,
      utilization: this.#utilization,
      lagMs: this.#lagMs,
      admitted: this.#admitted,
      rejected: this.#rejected,
      rejectedInflight: this.#rejectedInflight,
      rejectedCpu: this.#rejectedCpu,
      rejectedTurn: this.#rejectedTurn,
    };
  }
}
