/**
 * The control tower as a Lambda function's desired-state source: polled at invocation start, not long-polled.
 *
 * A gateway's cell follower long-polls the tower (`cellState(cell, after, waitMs)` held open up to 30 s). Lambda
 * freezes the process between invocations, so a long-poll would be held across freezes (its socket possibly dead
 * on thaw) and a change it returned would be loaded in slices of whatever invocations happen to run. This source
 * gives the follower the same interface with a different clock: a call that asks to wait (`waitMs` > 0) waits until
 * the function calls `checkIfDue` at the start of an invocation at least `intervalMs` after the previous check, and
 * then asks the tower for the current state at once (`wait_ms=0`), once more at once if the tower could not be
 * reached (a kept-alive connection closed during a freeze). Calls that do not wait (the first state, a retry after a
 * failed download) go to the tower at once, as before.
 *
 * `checkIfDue` returns a promise that settles when the follower is done with the check: it asks to wait again
 * (nothing changed, or the change is loaded, warmed and swapped in), or the tower could not be reached. The
 * function awaits it, bounded, before the invocation returns, so a change is never left half-loaded in a frozen
 * process, and the next invocation serves it.
 */
import { SibylError, toSibylError } from '../core/errors.ts';
import type { DesiredStateSource } from '../gateway/sync/desired-state-source.ts';

export interface PolledSource extends DesiredStateSource {
  /**
   * Starts a check of the tower when `intervalMs` has passed since the last one started (the first state counts)
   * and the follower is waiting for one; resolves when the follower is done with it. Returns the check in progress
   * when there is one, undefined when none is due. Never rejects.
   */
  checkIfDue(now?: number): Promise<void> | undefined;
  /** Checks started so far. */
  readonly checks: number;
}

export function pollOnDemand(inner: DesiredStateSource, intervalMs: number, clock: () => number = () => performance.now()): PolledSource {
  let lastCheck = clock();
  let checks = 0;
  /** The follower's waiting call, released by a check. */
  let waiting: (() => void) | undefined;
  /** The check in progress: settled when the follower waits again or the tower fails. */
  let current: { readonly done: Promise<void>; readonly settle: () => void } | undefined;

  const settle = (): void => {
    current?.settle();
    current = undefined;
  };

  return {
    remote: inner.remote,

    async cellState(cell, after, waitMs, signal) {
      if (waitMs <= 0) return inner.cellState(cell, after, 0, signal);
      // The follower is back to waiting: whatever the last check brought is swapped in.
      settle();
      await new Promise<void>((resolve, reject) => {
        const aborted = (): void => {
          waiting = undefined;
          reject(new SibylError('CANCELLED', 'the wait for the next check was cancelled'));
        };
        if (signal?.aborted) return aborted();
        signal?.addEventListener('abort', aborted, { once: true });
        waiting = () => {
          waiting = undefined;
          signal?.removeEventListener('abort', aborted);
          resolve();
        };
      });
      try {
        return await inner.cellState(cell, after, 0, signal);
      } catch (first) {
        // A connection kept alive across a freeze may have been closed meanwhile: one retry on a new one.
        if (signal?.aborted || toSibylError(first).code !== 'UNAVAILABLE') {
          settle();
          throw first;
        }
        try {
          return await inner.cellState(cell, after, 0, signal);
        } catch (err) {
          settle();
          throw err;
        }
      }
    },

    bundle: (sha256, signal) => inner.bundle(sha256, signal),
    report: (report, signal) => inner.report(report, signal),

    checkIfDue(now = clock()) {
      if (current) return current.done;
      if (!waiting || now - lastCheck < intervalMs) return undefined;
      lastCheck = now;
      checks++;
      let resolve!: () => void;
      const done = new Promise<void>((r) => (resolve = r));
      current = { done, settle: resolve };
      waiting();
      return done;
    },

    get checks() {
      return checks;
    },
  };
}
