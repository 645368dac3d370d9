/**
 * A circuit breaker for one SageMaker endpoint, shared by every loaded model version that calls it.
 *
 * - closed: calls go through. `failureThreshold` consecutive failed calls (default 5) open it; any success resets
 *   the count.
 * - open: `tryAcquire` refuses at once (the caller answers UNAVAILABLE without calling) for `openMs` (default 5000).
 * - half-open: after `openMs`, exactly one call (the probe) is let through; the others are still refused. The probe
 *   succeeding closes the breaker; failing opens it again for another `openMs`.
 *
 * What counts as a failure is the caller's choice (see aws-errors.ts): the endpoint being unreachable, failing (5xx),
 * throttling past the retries, or not answering within the deadline. A call the caller gave up on for its own
 * reasons is released with `release` and counts as neither.
 *
 * Single-threaded (event loop): no locking. Time comes from `now` (default `performance.now`, milliseconds).
 */
export type BreakerState = 'closed' | 'open' | 'half-open';

export interface CircuitBreakerOptions {
  /** Consecutive failures that open the breaker (default 5). */
  readonly failureThreshold?: number;
  /** Milliseconds the breaker stays open before letting one probe through (default 5000). */
  readonly openMs?: number;
  readonly now?: () => number;
}

/** A permit for one call: exactly one of `success`, `failure`, `release` is called when the call settles. */
export interface BreakerPermit {
  success(): void;
  failure(): void;
  release(): void;
}

export class CircuitBreaker {
  readonly failureThreshold: number;
  readonly openMs: number;
  #now: () => number;
  #state: BreakerState = 'closed';
  #failures = 0;
  #openedAt = 0;
  #probing = false;
  /** Times the breaker went from closed or half-open to open. */
  opened = 0;
  /** Calls refused without calling the endpoint. */
  rejected = 0;

  constructor(options: CircuitBreakerOptions = {}) {
    this.failureThreshold = options.failureThreshold ?? 5;
    this.openMs = options.openMs ?? 5000;
    this.#now = options.now ?? (() => performance.now());
  }

  /** The state as it is now (an open breaker whose time is up reads half-open). */
  get state(): BreakerState {
    if (this.#state === 'open' && this.#now() - this.#openedAt >= this.openMs) return 'half-open';
    return this.#state;
  }

  /** A permit to call the endpoint, or undefined when the breaker refuses the call. */
  tryAcquire(): BreakerPermit | undefined {
    const state = this.state;
    if (state === 'closed') return this.#permit(false);
    if (state === 'half-open' && !this.#probing) {
      this.#state = 'half-open';
      this.#probing = true;
      return this.#permit(true);
    }
    this.rejected++;
    return undefined;
  }

  #permit(probe: boolean): BreakerPermit {
    let settled = false;
    const settle = (outcome: 'success' | 'failure' | 'release'): void => {
      if (settled) return;
      settled = true;
      if (probe) this.#probing = false;
      if (outcome === 'success') {
        this.#failures = 0;
        if (probe || this.#state === 'closed') this.#state = 'closed';
      } else if (outcome === 'failure') {
        if (probe) this.#open();
        else if (this.#state === 'closed' && ++this.#failures >= this.failureThreshold) this.#open();
      } else if (probe) {
        // A probe given up by its caller proves nothing: the next call may probe.
        this.#state = 'half-open';
      }
    };
    return { success: () => settle('success'), failure: () => settle('failure'), release: () => settle('release') };
  }

  #open(): void {
    this.#state = 'open';
    this.#openedAt = this.#now();
    this.#failures = 0;
    this.opened++;
  }
}
