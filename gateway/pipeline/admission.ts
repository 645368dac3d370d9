/**
 * Admission control: under overload the gateway answers what it can within its deadline and refuses the rest at
 * once (RESOURCE_EXHAUSTED / 429), instead of queueing everything until every request is late.
 *
 * Two signals, both cheap to read per request:
 * - requests in flight (admitted and not finished) against a limit: `maxInflight`, lowered while the event loop
 *   is saturated (below);
 * - event-loop lag, sampled by a timer every `sampleMs` and smoothed, against `maxLagMs`. Lag is what a new
 *   request would wait before its first line runs; when it stays high, admitting more only makes everyone late.
 *   One sample counts for at most 2 x `maxLagMs`, so only lag that persists over samples refuses, never one stall.
 *   Lag refuses only while predictions are in flight: with none, the lag is not the requests' doing (a model loading
 *   and warming up, start-up, a neighbour on the machine) and one more request cannot make others late; refusing
 *   it would only turn a gateway that just started into one that answers 429 to its first request.
 * The pipeline's entry calls `admit()` before a door reads the body and `release()` when the prediction is done (the
 * door then writes the answer); the REST fast path asks `refuseEarly()` before anything is read.
 *
 * The adaptive limit: while the event loop is busy nearly all the time (event-loop utilization above
 * `busyUtilization`, smoothed), the process is CPU-bound and every request admitted beyond what it completes in
 * `queueMs` only waits in the process's own queue: the limit becomes its capacity (completions per second over
 * utilization) x `queueMs` (Little's law), so admitted requests finish within about `queueMs` and the excess is refused at once instead of timing
 * out after it was paid for. When the loop has room again the limit climbs back to `maxInflight` within a few
 * samples. Requests that wait on I/O (a SageMaker endpoint, a slow store) leave the loop idle and are never limited
 * by this, however many are in flight.
 */
import { SibylError } from '../../core/errors.ts';
import { cpuQuotaCores } from './cpu-quota.ts';

/** The adaptive limit's floor: a stalled sample must not close the door. */
const MIN_LIMIT = 16;

export interface AdmissionOptions {
  /** Most requests in flight (default 512). */
  readonly maxInflight: number;
  /** Smoothed event-loop lag above which new requests are refused, milliseconds (default 30). */
  readonly maxLagMs: number;
  /** Lag sampling period, milliseconds (default 10). */
  readonly sampleMs?: number;
  /** Queueing time the adaptive limit allows when the loop is saturated, milliseconds (default 25; 0 turns it off). */
  readonly queueMs?: number;
  /** Smoothed event-loop utilization (0-1) above which the process counts as CPU-bound (default 0.95). */
  readonly busyUtilization?: number;
  /**
   * The most CPU the process may use, in cores (default: its cgroup's quota, else 1). Under a quota of half a core,
   * the process is saturated at a CPU share of 0.5. More than 1 counts as 1: the event loop is one thread.
   */
  readonly cpuCores?: number;
}

export interface AdmissionStats {
  readonly inflight: number;
  /** The in-flight limit now (maxInflight unless the loop is saturated). */
  readonly limit: number;
  /** Smoothed utilization, 0-1: the smaller of event-loop utilization and the process's CPU share. */
  readonly utilization: number;
  /** Refusals because of the in-flight limit (the rest of `rejected` were for event-loop lag). */
  readonly rejectedInflight: number;
  readonly lagMs: number;
  readonly admitted: number;
  readonly rejected: number;
}

export class AdmissionControl {
  readonly #maxInflight: number;
  readonly #maxLagMs: number;
  readonly #sampleMs: number;
  #inflight = 0;
  #lagMs = 0;
  #admitted = 0;
  #rejected = 0;
  #timer: NodeJS.Timeout | undefined;
  #expected = 0;
  readonly #queueMs: number;
  readonly #busyUtilization: number;
  /** The CPU share (cores) at which the process is saturated: its quota, at most 1. */
  readonly #cpuCores: number;
  #limit: number;
  #utilization = 0;
  #completed = 0;
  /** Completions per millisecond, smoothed. */
  #rate = 0;
  #elu = performance.eventLoopUtilization();
  #cpu = process.cpuUsage();
  #sampledAt = 0;
  #rejectedInflight = 0;

  constructor(opts: AdmissionOptions) {
    this.#maxInflight = opts.maxInflight;
    this.#maxLagMs = opts.maxLagMs;
    this.#sampleMs = opts.sampleMs ?? 10;
    this.#queueMs = opts.queueMs ?? 25;
    this.#busyUtilization = opts.busyUtilization ?? 0.95;
    this.#cpuCores = Math.min(1, opts.cpuCores ?? cpuQuotaCores() ?? 1);
    this.#limit = opts.maxInflight;
  }

  /** Starts the lag sampler (an unref'd timer). Idempotent. */
  start(): void {
    if (this.#timer) return;
    this.#expected = performance.now() + this.#sampleMs;
    this.#sampledAt = performance.now();
    this.#elu = performance.eventLoopUtilization();
    this.#cpu = process.cpuUsage();
    this.#timer = setInterval(() => {
      const now = performance.now();
      // One sample counts for at most twice the limit: a single stall, however long (a major GC, the hypervisor
      // taking the core), is over by the time it is measured, and refusing the requests that queued behind it only
      // wastes the wait they already paid. Lag that persists over consecutive samples (overload) still crosses the
      // limit within two or three samples, and the smoothed value falls as fast once the load drops.
      const lag = Math.min(Math.max(0, now - this.#expected), this.#maxLagMs * 2);
      this.#expected = now + this.#sampleMs;
      this.#lagMs = this.#lagMs * 0.7 + lag * 0.3;
      this.#adapt(now);
    }, this.#sampleMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #adapt(now: number): void {
    const elu = performance.eventLoopUtilization();
    const window = performance.eventLoopUtilization(elu, this.#elu);
    this.#elu = elu;
    const cpu = process.cpuUsage();
    const cpuMs = (cpu.user - this.#cpu.user + cpu.system - this.#cpu.system) / 1000;
    this.#cpu = cpu;
    const ms = now - this.#sampledAt;
    this.#sampledAt = now;
    if (ms <= 0) return;
    // Busy means the loop was running AND the process got the CPU for it: event-loop utilization alone counts the
    // time the process waited for a core (a noisy neighbour, the hypervisor, a cgroup quota) as busy. Under a quota
    // the CPU share is measured against the quota.
    const busy = Math.min(window.utilization, cpuMs / ms / this.#cpuCores);
    // Smoothed over ~10 samples: one busy sample (a GC pause, a burst) must not close the door.
    this.#utilization = this.#utilization * 0.9 + busy * 0.1;
    this.#rate = this.#rate * 0.9 + (this.#completed / ms) * 0.1;
    this.#completed = 0;
    if (this.#queueMs > 0 && this.#utilization > this.#busyUtilization) {
      // Capacity (completions per ms at full utilization) x the queueing time allowed; at least a few in flight.
      const capacity = this.#rate / this.#utilization;
      this.#limit = Math.min(this.#maxInflight, Math.max(MIN_LIMIT, Math.round(capacity * this.#queueMs)));
    } else if (this.#limit < this.#maxInflight) {
      this.#limit = Math.min(this.#maxInflight, Math.ceil(this.#limit * 1.25) + 1);
    }
  }

  /** Admits a request or throws RESOURCE_EXHAUSTED. Every admitted request must be released exactly once. */
  admit(): void {
    const why = this.refuseEarly();
    if (why === 'inflight') {
      throw new SibylError('RESOURCE_EXHAUSTED', `the gateway is at capacity (${this.#inflight} requests in flight); retry with backoff`);
    }
    if (why === 'lag') {
      throw new SibylError('RESOURCE_EXHAUSTED', `the gateway is overloaded (event loop ${Math.round(this.#lagMs)} ms behind); retry with backoff`);
    }
    this.#inflight++;
    this.#admitted++;
  }

  /**
   * Refuses a request before anything is read or allocated for it, when `admit` would refuse it: 'inflight' or
   * 'lag' says why (and the refusal is counted), undefined means go on (and call `admit` as usual). For the
   * transports' fast path: under overload a refusal must cost a small fraction of a prediction, or refusing
   * eats the capacity that serving needs.
   */
  refuseEarly(): 'inflight' | 'lag' | undefined {
    if (this.#inflight >= this.#limit) {
      this.#rejected++;
      this.#rejectedInflight++;
      return 'inflight';
    }
    if (this.#lagMs > this.#maxLagMs && this.#inflight > 0) {
      this.#rejected++;
      return 'lag';
    }
    return undefined;
  }

  release(): void {
    this.#inflight--;
    this.#completed++;
  }

  stats(): AdmissionStats {
    return { inflight: this.#inflight, limit: this.#limit, utilization: this.#utilization, lagMs: this.#lagMs, admitted: this.#admitted, rejected: this.#rejected, rejectedInflight: this.#rejectedInflight };
  }
}
