/** Builds the per-request context every transport passes to the pipeline. */
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
    signal: AbortSignal.timeout(timeout),
    startMs,
    transport,
    traceparent,
  };
}
