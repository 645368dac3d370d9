/**
 * The front doors' part of a graceful stop: answer every request already sent, move keep-alive clients away, and
 * close every connection in seconds even while clients keep sending. Counted by test/e2e/shutdown.test.ts.
 *
 * Node's `server.close()` alone stops new connections and closes the idle ones only: a keep-alive client that keeps
 * sending keeps its connection busy and is served until the drain timeout, which then resets it mid-request; and a
 * connection that looks idle may hold a request not read yet, which closing it resets. HTTP/1.1 has no GOAWAY: a
 * client learns that a connection is going away from `Connection: close` on a response. So, from the drain's start:
 *
 * 1. both listeners keep accepting for the grace period (load balancers see readiness fail meanwhile);
 * 2. then both stop accepting (a client that reconnects is refused before it sends anything). Every HTTP response
 *    from then on carries `Connection: close` and Node closes its connection after it; the request listener is
 *    wrapped only then, so the request path costs nothing extra outside a drain. gRPC sends GOAWAY: calls in flight
 *    finish, later ones are refused unexecuted (UNAVAILABLE), and health Watch streams end;
 * 3. SETTLE_MS later, after the event loop has read what is waiting, the HTTP connections idle then are closed: a
 *    client sending back to back has had its `Connection: close` by then, so a connection still idle has no request
 *    on its way. Closing them at once would reset requests not read yet (a signal handled before a request's bytes
 *    on a busy event loop). A request already in flight for longer is answered keep-alive; its connection closes
 *    with the client's next request, or at Node's keep-alive timeout (5 s);
 * 4. `timeoutMs` after the start, whatever is still open is closed: the last resort, logged.
 */
import { Server as NetServer } from 'node:net';
import type { Server } from 'node:http';
import type { Logger } from 'pino';
import type { GrpcServer } from './grpc/grpc-server.ts';

/** From the listeners closing to the idle HTTP connections closing, ms (step 3 above). */
const SETTLE_MS = 250;

export interface DrainOptions {
  /** The HTTP listener; undefined when it never started. */
  readonly http: Server | undefined;
  readonly grpc: GrpcServer;
  /** How long both listeners keep accepting after the drain starts, ms (readiness already fails). */
  readonly graceMs: number;
  /** The last resort, from the start of the drain: connections still open then are closed, ms. */
  readonly timeoutMs: number;
  readonly logger: Pick<Logger, 'info' | 'warn'>;
  /**
   * Awaited once the HTTP listener is closed, before clients are moved away (step 2's `Connection: close` and
   * GOAWAY). A worker of a gateway with several (gateway/workers/) closes its gRPC listener here and waits until
   * every worker has closed its listeners: a client moved away earlier would reconnect to a worker about to close
   * its listener, and a connection still in that listener's accept queue is reset.
   */
  readonly stoppedAccepting?: () => Promise<void>;
}

/** Drains both front doors (see above); resolves when every connection has closed. Call once. */
export async function drainFrontDoors(o: DrainOptions): Promise<void> {
  const startedAt = performance.now();
  const timers: NodeJS.Timeout[] = [];
  const after = <T>(ms: number, value: T) => new Promise<T>((resolve) => timers.push(setTimeout(resolve, ms, value)));
  const timeout = after(o.timeoutMs, 'timeout' as const);
  await Promise.race([after(o.graceMs, 'grace' as const), timeout]);
  // A timer fires before the event loop polls that turn's I/O: let it accept the connections and read the requests
  // already waiting first (on a starved event loop, they may have waited since before the signal).
  await afterPoll();
  const http = o.http;
  const httpClosed = http ? stopAccepting(http) : undefined;
  if (o.stoppedAccepting) await Promise.race([o.stoppedAccepting(), timeout]);
  const closed = Promise.all([httpClosed, o.grpc.drain()]);
  if (http) {
    closeAfterEachResponse(http);
    timers.push(setTimeout(() => setImmediate(() => http.closeIdleConnections()), SETTLE_MS));
  }
  const outcome = await Promise.race([closed, timeout]);
  for (const t of timers) clearTimeout(t);
  if (outcome === 'timeout') {
    o.logger.warn({ drainTimeoutMs: o.timeoutMs }, 'drain timed out; closing remaining connections');
    o.grpc.server.forceShutdown();
    http?.closeAllConnections();
  } else {
    o.logger.info({ ms: Math.round(performance.now() - startedAt) }, 'drained');
  }
}

function afterPoll(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Closes the listening socket and resolves once every connection has closed. net.Server's `close`, not
 * http.Server's: that one also closes idle keep-alive connections at once (step 3 does it later).
 */
function stopAccepting(server: Server): Promise<void> {
  return new Promise((resolve) => NetServer.prototype.close.call(server, () => resolve()));
}

/** From now on every response says `Connection: close`, and Node ends its connection once it is sent. */
function closeAfterEachResponse(server: Server): void {
  const listeners = server.listeners('request') as ((...args: unknown[]) => void)[];
  server.removeAllListeners('request');
  server.on('request', function closingConnection(req, res) {
    res.setHeader('connection', 'close');
    for (const listener of listeners) listener.call(server, req, res);
  });
}
