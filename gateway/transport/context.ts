/** Builds the per-request context every transport passes to the pipeline. */
import { setMaxListeners } from 'node:events';
import { newRequestId, type RequestContext } from '../pipeline/pipeline.ts';

/**
 * `requestedTimeoutMs` is the client's own deadline (gRPC deadline, `x-request-timeout-ms` header); the context's
 * deadline is the smaller of it and the gateway's default.
 */
export function requestContext(
  transport: string,
  requestId: string | undefined,
  defaultTimeoutMs: number,
  requestedTimeoutMs?: number,
  startMs: number = performance.now(),
  traceparent?: string,
): RequestContext {
  const timeout = requestedTimeoutMs !== undefined && requestedTimeoutMs > 0 ? Math.min(requestedTimeoutMs, defaultTimeoutMs) : defaultTimeoutMs;
  return {
    requestId: requestId || newRequestId(),
    signal: deadlineSignal(startMs + timeout, startMs),
    startMs,
    transport,
    traceparent,
  };
}

/**
 * Deadline signals are shared by the requests whose deadlines fall in the same 5 ms slot: one timer (and one abort
 * event) per slot instead of one per request, which profiling showed at a few percent of the request path. A
 * deadline may fire up to 5 ms late; within a request's lifetime nothing else changes.
 */
const SLOT_MS = 5;
const slots = new Map<number, AbortSignal>();

function deadlineSignal(deadlineMs: number, nowMs: number): AbortSignal {
  const slot = Math.ceil(deadlineMs / SLOT_MS);
  let signal = slots.get(slot);
  if (!signal) {
    signal = AbortSignal.timeout(Math.max(1, Math.ceil(slot * SLOT_MS - nowMs)));
    setMaxListeners(0, signal);
    slots.set(slot, signal);
    signal.addEventListener('abort', () => slots.delete(slot), { once: true });
  }
  return signal;
}
