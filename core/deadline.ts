/**
 * Request deadlines as AbortSignals (ARCHITECTURE.md, "Admission control"): made by the pipeline's entry for each
 * request, read by the execution step and the runtimes.
 *
 * Signals are shared by the requests whose deadlines fall in the same 5 ms slot: one timer (and one abort event) per
 * slot instead of one per request, which profiling showed at a few percent of the request path. A timer fires only
 * when the event loop reaches its timers, so under overload, when a turn of the loop runs for tens of ms (or the
 * process waits out the rest of a CFS period), a signal would still read "not aborted" long after its deadline, and
 * the request would go on to its model, its log record and its answer for a client that has given up. `passed()`
 * therefore also reads the clock, and aborts the slot's signal when its deadline is behind it: the stages that check
 * it before costly work (the execution step after enrichment, a runtime's queue) stop a late request there.
 */
import { setMaxListeners } from 'node:events';

const SLOT_MS = 5;

interface Slot {
  readonly key: number;
  readonly controller: AbortController;
  /** When the slot's deadline passes, on `performance.now()`'s clock. */
  readonly at: number;
  readonly timer: NodeJS.Timeout;
}

const slots = new Map<number, Slot>();
const bySignal = new WeakMap<AbortSignal, Slot>();

/**
 * The reason every deadline signal aborts with: a TimeoutError, as `AbortSignal.timeout`'s, made once (that one builds
 * a DOMException, stack and all, for every signal that fires: ~1% of a gRPC request's CPU in a profile of S4a).
 */
export const DEADLINE_PASSED = new DOMException('The operation was aborted due to timeout', 'TimeoutError');

/**
 * A signal that aborts with DEADLINE_PASSED at `deadlineMs` (on `performance.now()`'s clock, as is `nowMs`), at most
 * one slot late; shared with the other requests of its slot.
 */
export function deadlineSignal(deadlineMs: number, nowMs: number): AbortSignal {
  const key = Math.ceil(deadlineMs / SLOT_MS);
  let slot = slots.get(key);
  if (!slot) {
    const controller = new AbortController();
    setMaxListeners(0, controller.signal);
    const timer = setTimeout(() => expire(key), Math.max(1, Math.ceil(key * SLOT_MS - nowMs))).unref();
    slot = { key, controller, at: key * SLOT_MS, timer };
    slots.set(key, slot);
    bySignal.set(controller.signal, slot);
  }
  return slot.controller.signal;
}

/**
 * Whether `signal` has aborted, or is a deadline signal whose deadline the clock has passed (then aborted now, for
 * every request of its slot). For other signals, `signal.aborted`.
 */
export function passed(signal: AbortSignal): boolean {
  if (signal.aborted) return true;
  const slot = bySignal.get(signal);
  if (slot === undefined || performance.now() < slot.at) return false;
  clearTimeout(slot.timer);
  expire(slot.key);
  return true;
}

function expire(key: number): void {
  const slot = slots.get(key);
  if (!slot) return;
  slots.delete(key);
  slot.controller.abort(DEADLINE_PASSED);
}
