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
import { EARLY_REFUSAL_MESSAGES as MESSAGES, type Pipeline, type Refusal } from '../pipeline/pipeline.ts';

const STATUS = httpStatus.RESOURCE_EXHAUSTED;
const RETRY_AFTER = String(retryAfterSeconds('RESOURCE_EXHAUSTED'));
/** Sibyl's ErrorBody for /v1, the Open Inference Protocol's `{ error }` (what Triton's and KServe's clients read) for /v2. */
const BODIES = bodies((message) => ({ code: 'RESOURCE_EXHAUSTED', message, requestId: '' }));
const OIP_BODIES = bodies((message) => ({ error: message, code: 'RESOURCE_EXHAUSTED' }));

function bodies(body: (message: string) => object): Record<Refusal, Buffer> {
  const b = (why: Refusal) => Buffer.from(JSON.stringify(body(MESSAGES[why])));
  return { inflight: b('inflight'), cpu: b('cpu'), lag: b('lag'), turn: b('turn') };
}

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
