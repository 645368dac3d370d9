/** Retry delays for an unreachable control tower. */

/**
 * Exponential backoff with jitter, milliseconds: attempt 1 waits about `baseMs`, each next one about twice as long,
 * never more than `maxMs`; the delay is drawn uniformly from the upper half of that cap (replicas that lost the
 * tower together do not come back in step).
 */
export function backoffMs(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const cap = Math.min(maxMs, baseMs * 2 ** Math.max(0, Math.min(attempt - 1, 30)));
  return cap / 2 + (random() * cap) / 2;
}

/** Resolves after `ms`, or at once when `signal` aborts (never rejects). */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
