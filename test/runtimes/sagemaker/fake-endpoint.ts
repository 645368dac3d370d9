/**
 * A local HTTP server that imitates the SageMaker runtime API (`POST /endpoints/{name}/invocations`, restJson1
 * errors: status + `x-amzn-ErrorType` + a JSON body), misbehaving on purpose. Point the SDK at it with
 * `endpointUrl: server.url`.
 *
 * Each request takes the next behaviour from the queue (`push`), or `fallback` when the queue is empty.
 * `compute` answers like a real model: for JSON `{"instances": [[x0, x1, ...]]}` (or objects, or a bare array) it
 * returns `{"predictions": [{"score": sum(x_i * (i+1)), "label": sum >= 0 ? 1 : 0}]}`; for CSV one line per row,
 * `score,label`.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type Behaviour =
  | { kind: 'compute'; delayMs?: number }
  | { kind: 'hang' }
  | { kind: 'throttle'; status?: 400 | 429 }
  | { kind: 'model-error'; originalStatus?: number }
  | { kind: 'validation' }
  | { kind: 'unavailable'; status?: 500 | 503 }
  | { kind: 'reply'; status: number; contentType: string; body: string };

export interface SeenRequest {
  readonly endpoint: string;
  readonly contentType: string | undefined;
  readonly accept: string | undefined;
  readonly variant: string | undefined;
  readonly body: string;
  /** The client closed the connection before an answer was sent (an aborted call). */
  abortedByClient: boolean;
}

export interface FakeEndpoint {
  readonly url: string;
  readonly requests: SeenRequest[];
  fallback: Behaviour;
  push(...b: Behaviour[]): void;
  /** Distinct TCP connections accepted so far (keep-alive reuse keeps this low). */
  connections(): number;
  close(): Promise<void>;
}

export function score(xs: readonly number[]): { score: number; label: number } {
  const s = xs.reduce((acc, x, i) => acc + x * (i + 1), 0);
  return { score: s, label: s >= 0 ? 1 : 0 };
}

function rowsOf(body: string, contentType: string | undefined): number[][] {
  if (contentType === 'text/csv') {
    return body
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => l.split(',').map(Number));
  }
  const parsed = JSON.parse(body) as unknown;
  const list = (Array.isArray(parsed) ? parsed : (parsed as { instances: unknown[] }).instances) as unknown[];
  return list.map((r) => (Array.isArray(r) ? (r as unknown[]) : Object.values(r as object)).map((v) => (typeof v === 'boolean' ? Number(v) : Number(v))));
}

function awsError(res: http.ServerResponse, status: number, type: string, extra: Record<string, unknown> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', 'x-amzn-errortype': type, 'x-amzn-requestid': 'fake' });
  res.end(JSON.stringify({ message: `${type} from the fake endpoint`, ...extra }));
}

export async function startFakeEndpoint(fallback: Behaviour = { kind: 'compute' }): Promise<FakeEndpoint> {
  const queue: Behaviour[] = [];
  const requests: SeenRequest[] = [];
  const sockets = new Set<Socket>();
  let connections = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const m = /^\/endpoints\/([^/]+)\/invocations$/.exec(req.url ?? '');
      if (req.method !== 'POST' || !m) return awsError(res, 404, 'UnknownOperationException');
      const seen: SeenRequest = {
        endpoint: decodeURIComponent(m[1]!),
        contentType: req.headers['content-type'],
        accept: req.headers.accept,
        variant: req.headers['x-amzn-sagemaker-target-variant'] as string | undefined,
        body: Buffer.concat(chunks).toString('utf8'),
        abortedByClient: false,
      };
      requests.push(seen);
      res.on('close', () => {
        if (!res.writableFinished) seen.abortedByClient = true;
      });
      const b = queue.shift() ?? api.fallback;
      switch (b.kind) {
        case 'hang':
          return;
        case 'throttle':
          return awsError(res, b.status ?? 400, 'ThrottlingException');
        case 'model-error':
          return awsError(res, 424, 'ModelError', { OriginalStatusCode: b.originalStatus ?? 500, OriginalMessage: 'secret stack trace' });
        case 'validation':
          return awsError(res, 400, 'ValidationError');
        case 'unavailable':
          return b.status === 500 ? awsError(res, 500, 'InternalFailure') : awsError(res, 503, 'ServiceUnavailable');
        case 'reply':
          res.writeHead(b.status, { 'content-type': b.contentType });
          return res.end(b.body);
        case 'compute': {
          const answer = (): void => {
            if (res.destroyed) return;
            const out = rowsOf(seen.body, seen.contentType).map(score);
            if (seen.accept === 'text/csv') {
              res.writeHead(200, { 'content-type': 'text/csv' });
              res.end(out.map((o) => `${o.score},${o.label}`).join('\n') + '\n');
            } else {
              res.writeHead(200, { 'content-type': 'application/json' });
              res.end(JSON.stringify({ predictions: out }));
            }
          };
          if (b.delayMs) setTimeout(answer, b.delayMs);
          else answer();
        }
      }
    });
  });
  server.on('connection', (s: Socket) => {
    connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const api: FakeEndpoint = {
    url: `http://127.0.0.1:${port}`,
    requests,
    fallback,
    push: (...b) => void queue.push(...b),
    connections: () => connections,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  return api;
}
