/**
 * Senders: one request in, one outcome out (a code and whether it counts as success). The generator never decodes
 * response bodies under load (only status codes); preflight.ts checks the answers' content before a run.
 *
 * Codes: HTTP status as a string ("200", "429"), gRPC status names ("OK", "RESOURCE_EXHAUSTED"), or the client
 * error ("ECONNREFUSED", "UND_ERR_HEADERS_TIMEOUT"...).
 */
import * as grpc from '@grpc/grpc-js';
import { Pool } from 'undici';
import type { EncodedRequest } from './requests.ts';
import { h2GrpcSender } from './h2-grpc-sender.ts';

export interface Outcome {
  readonly code: string;
  readonly ok: boolean;
  /** Rejected by admission control: HTTP 429 or gRPC RESOURCE_EXHAUSTED. */
  readonly rejected: boolean;
}

export interface Sender {
  send(req: EncodedRequest, done: (o: Outcome) => void): void;
  close(): Promise<void>;
}

export interface SenderOptions {
  /** `http://127.0.0.1:port` for REST, `127.0.0.1:port` for gRPC. */
  readonly target: string;
  readonly grpc: boolean;
  /** HTTP connections, or gRPC channels (each its own HTTP/2 connection). */
  readonly connections: number;
  /** Deadline told to the server (x-request-timeout-ms header; gRPC deadline, which the client also enforces), ms. */
  readonly deadlineMs: number;
  /** HTTP client-side timeout, ms (default 10 s). */
  readonly clientTimeoutMs?: number;
  /**
   * gRPC client: grpc-js (default) or `h2`, the gRPC wire protocol straight on node:http2 (lib/h2-grpc-sender.ts),
   * which spends a fraction of grpc-js's CPU per call, so that one generator core can load a server harder.
   */
  readonly grpcClient?: 'grpc-js' | 'h2';
}

const GRPC_NAMES = Object.fromEntries(Object.entries(grpc.status).filter(([, v]) => typeof v === 'number').map(([k, v]) => [v as number, k]));

export function createSender(opts: SenderOptions): Sender {
  if (!opts.grpc) return httpSender(opts);
  return opts.grpcClient === 'h2' ? h2GrpcSender(opts) : grpcSender(opts);
}

function httpSender(opts: SenderOptions): Sender {
  const timeout = opts.clientTimeoutMs ?? 10_000;
  const pool = new Pool(opts.target, { connections: opts.connections, pipelining: 1, headersTimeout: timeout, bodyTimeout: timeout, keepAliveTimeout: 60_000 });
  const headers = { 'content-type': 'application/json', 'x-request-timeout-ms': String(opts.deadlineMs) };
  return {
    send(req, done) {
      pool.request({ method: 'POST', path: req.path, body: req.body, headers }).then(
        (res) => {
          const status = res.statusCode;
          res.body.dump().then(
            () => done({ code: String(status), ok: status === 200, rejected: status === 429 }),
            (err: { code?: string }) => done({ code: err.code ?? 'BODY_ERROR', ok: false, rejected: false }),
          );
        },
        (err: { code?: string }) => done({ code: err.code ?? 'HTTP_ERROR', ok: false, rejected: false }),
      );
    },
    close: () => pool.close(),
  };
}

function grpcSender(opts: SenderOptions): Sender {
  const clients: grpc.Client[] = [];
  for (let i = 0; i < Math.max(1, opts.connections); i++) {
    // A local subchannel pool per client: each gets its own HTTP/2 connection.
    clients.push(new grpc.Client(opts.target, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1, 'grpc.max_receive_message_length': 16 << 20 }));
  }
  let next = 0;
  const identity = (b: Buffer): Buffer => b;
  return {
    send(req, done) {
      const client = clients[next]!;
      next = (next + 1) % clients.length;
      client.makeUnaryRequest(req.path, identity, identity, req.body, new grpc.Metadata(), { deadline: Date.now() + opts.deadlineMs }, (err) => {
        if (!err) return done({ code: 'OK', ok: true, rejected: false });
        const code = err.code ?? grpc.status.UNKNOWN;
        done({ code: GRPC_NAMES[code] ?? String(code), ok: false, rejected: code === grpc.status.RESOURCE_EXHAUSTED });
      });
    },
    async close() {
      for (const c of clients) c.close();
    },
  };
}

/** Waits until every channel is connected (so connection setup is not measured). */
export async function waitReady(target: string, timeoutMs = 10_000): Promise<void> {
  const client = new grpc.Client(target, grpc.credentials.createInsecure());
  try {
    await new Promise<void>((resolve, reject) => client.waitForReady(Date.now() + timeoutMs, (err) => (err ? reject(err) : resolve())));
  } finally {
    client.close();
  }
}
