/**
 * The REST front door's overload fast path: a Node request listener in front of Hono that answers 429
 * (RESOURCE_EXHAUSTED, the same ErrorBody and `retry-after` as every refusal) to a prediction request while
 * admission control refuses new work, without routing it, reading its body or building a Request/Response.
 * Measured in loadtest/micro/reject.bench.ts against a refusal through the Hono handler.
 *
 * Only prediction routes are refused here (`POST /v1/models/...` and `POST /v2/models/.../infer`); health, metrics
 * and metadata always go through, so probes and operators see an overloaded gateway answer.
 */
import { httpStatus, retryAfterSeconds } from '../../core/errors.ts';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { Pipeline } from '../pipeline/pipeline.ts';

const STATUS = httpStatus.RESOURCE_EXHAUSTED;
const RETRY_AFTER = String(retryAfterSeconds('RESOURCE_EXHAUSTED'));
const MESSAGES = { inflight: 'the gateway is at capacity; retry with backoff', lag: 'the gateway is overloaded; retry with backoff' } as const;
/** Sibyl's ErrorBody for /v1, the Open Inference Protocol's `{ error }` (what Triton's and KServe's clients read) for /v2. */
const BODIES = {
  inflight: Buffer.from(JSON.stringify({ code: 'RESOURCE_EXHAUSTED', message: MESSAGES.inflight, requestId: '' })),
  lag: Buffer.from(JSON.stringify({ code: 'RESOURCE_EXHAUSTED', message: MESSAGES.lag, requestId: '' })),
} as const;
const OIP_BODIES = {
  inflight: Buffer.from(JSON.stringify({ error: MESSAGES.inflight, code: 'RESOURCE_EXHAUSTED' })),
  lag: Buffer.from(JSON.stringify({ error: MESSAGES.lag, code: 'RESOURCE_EXHAUSTED' })),
} as const;

export function withFastReject(listener: RequestListener, pipeline: Pick<Pipeline, 'refuseEarly'>): RequestListener {
  return function fastReject(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '';
    if (req.method === 'POST' && isPrediction(url)) {
      const why = pipeline.refuseEarly();
      if (why !== undefined) {
        const b = (url.startsWith('/v2/') ? OIP_BODIES : BODIES)[why];
        res.writeHead(STATUS, { 'content-type': 'application/json', 'content-length': b.byteLength, 'retry-after': RETRY_AFTER });
        res.end(b);
        return;
      }
    }
    listener(req, res);
  };
}

function isPrediction(url: string): boolean {
  return url.startsWith('/v1/models/') || (url.startsWith('/v2/models/') && url.endsWith('/infer'));
}
