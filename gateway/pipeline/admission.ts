/**
 * Admission control: under overload the gateway answers what it can within its deadline and refuses the rest at
 * once (RESOURCE_EXHAUSTED / 429), instead of queueing everything until every request is late.
 *
 * Two signals, both cheap to read per request:
 * - requests in flight (admitted and not finished) against `maxInflight`;
 * - event-loop lag, sampled by a timer every `sampleMs` and smoothed, against `maxLagMs`. Lag is what a new
 *   request would wait before its first line runs; when it is high, admitting more only makes everyone late.
 * Transports call `admit()` before reading the body and `release()` when the answer is written.
 */
import { SibylError } from '../../runtimes/errors.ts';

export interface AdmissionOptions {
  /** Most requests in flight (default 512). */
  readonly maxInflight: number;
  /** Smoothed event-loop lag above which new requests are refused, milliseconds (default 30). */
  readonly maxLagMs: number;
  /** Lag sampling period, milliseconds (default 10). */
  readonly sampleMs?: number;
}

export interface AdmissionStats {
  readonly inflight: number;
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

  constructor(opts: AdmissionOptions) {
    this.#maxInflight = opts.maxInflight;
    this.#maxLagMs = opts.maxLagMs;
    this.#sampleMs = opts.sampleMs ?? 10;
  }

  /** Starts the lag sampler (an unref'd timer). Idempotent. */
  start(): void {
    if (this.#timer) return;
    this.#expected = performance.now() + this.#sampleMs;
    this.#timer = setInterval(() => {
      const now = performance.now();
      const lag = Math.max(0, now - this.#expected);
      this.#expected = now + this.#sampleMs;
      // Smoothed, so that one late timer (a GC pause, the other core's tenant) does not refuse traffic; sustained
      // lag crosses the limit within a few samples, and it falls as fast once the load drops.
      this.#lagMs = this.#lagMs * 0.7 + lag * 0.3;
    }, this.#sampleMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Admits a request or throws RESOURCE_EXHAUSTED. Every admitted request must be released exactly once. */
  admit(): void {
    if (this.#inflight >= this.#maxInflight) {
      this.#rejected++;
      throw new SibylError('RESOURCE_EXHAUSTED', `the gateway is at capacity (${this.#inflight} requests in flight); retry with backoff`);
    }
    if (this.#lagMs > this.#maxLagMs) {
      this.#rejected++;
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
    if (this.#inflight >= this.#maxInflight) {
      this.#rejected++;
      return 'inflight';
    }
    if (this.#lagMs > this.#maxLagMs) {
      this.#rejected++;
      return 'lag';
    }
    return undefined;
  }

  release(): void {
    this.#inflight--;
  }

  stats(): AdmissionStats {
    return { inflight: this.#inflight, lagMs: this.#lagMs, admitted: this.#admitted, rejected: this.#rejected };
  }
}
