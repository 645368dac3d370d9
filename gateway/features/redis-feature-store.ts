/**
 * The production FeatureStore: one Redis hash per entity (see feature-store.ts), read with one HMGET per lookup.
 *
 * With auto-pipelining on (the default), the HMGETs of one `read` and of every other request issued in the same
 * event-loop turn leave in one pipeline: one round trip per turn, however many requests are in flight.
 * Request-path rules: no offline queue (a read while disconnected rejects at once instead of waiting), every
 * command bounded by `commandTimeoutMs`, every `read` bounded by its own `timeoutMs` on the host, in-flight
 * commands rejected (not resent) when the connection drops, and reconnection in the background forever.
 */
import { Redis } from 'ioredis';
import { SibylError } from '../../runtimes/errors.ts';
import type { FeatureLookup, FeatureStore } from './feature-store.ts';

export interface RedisFeatureStoreOptions {
  /** `redis://[user:password@]host:port[/db]` (or `rediss://` for TLS). */
  readonly url: string;
  /**
   * Backstop for every command (reads, writes, the connection handshake), milliseconds; default 1000; 0 turns it
   * off. A `read` is always bounded by its own `timeoutMs` on the host, so this is not the request deadline.
   * It costs one timer per command (about 15% of read throughput at 16-64 concurrent readers, measured with
   * loadtest/micro/feature-store.bench.ts); with it off, `write` and the handshake are bounded by `socketTimeoutMs`.
   */
  readonly commandTimeoutMs?: number;
  /** Longest wait for the TCP connection to open, milliseconds; default 1000. */
  readonly connectTimeoutMs?: number;
  /**
   * A connection that has commands in flight and receives nothing for this long is dropped and reopened,
   * milliseconds; default 2000. This is what frees a client from a server that accepts and never answers.
   */
  readonly socketTimeoutMs?: number;
  /** Longest pause between reconnection attempts, milliseconds; default 1000 (attempts back off 50 ms a try). */
  readonly maxReconnectDelayMs?: number;
  /**
   * Share round trips between concurrent requests (ioredis `enableAutoPipelining`); default true. When false,
   * each `read` sends its lookups as one explicit pipeline of its own.
   */
  readonly autoPipelining?: boolean;
  /** Called with connection and command errors (for logs); never on the hot path's success. */
  readonly onError?: (err: Error) => void;
}

export interface RedisFeatureStore extends FeatureStore {
  readonly kind: 'redis';
  /**
   * Resolves once the connection is ready for commands; rejects with UNAVAILABLE after `timeoutMs` milliseconds
   * (default 5000). Reads and writes made before that reject at once, so loaders and tests wait here first.
   */
  ready(timeoutMs?: number): Promise<void>;
}

/**
 * Connects at once (in the background). `read` rejects with SibylError DEADLINE_EXCEEDED when Redis is slower
 * than the deadline and UNAVAILABLE when it cannot be reached or answers with an error; `write` rejects the same
 * way. `close` quits the connection and stops reconnecting; it is safe to call twice.
 */
export function createRedisFeatureStore(opts: RedisFeatureStoreOptions): RedisFeatureStore {
  const onError = opts.onError;
  const autoPipelining = opts.autoPipelining ?? true;
  const commandTimeoutMs = opts.commandTimeoutMs ?? 1000;
  const client = new Redis(opts.url, {
    enableOfflineQueue: false,
    enableAutoPipelining: autoPipelining,
    commandTimeout: commandTimeoutMs > 0 ? commandTimeoutMs : undefined,
    connectTimeout: opts.connectTimeoutMs ?? 1000,
    socketTimeout: opts.socketTimeoutMs ?? 2000,
    // Flush in-flight commands on every disconnect instead of resending them after the reconnect.
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    retryStrategy: reconnectDelay(opts.maxReconnectDelayMs ?? 1000),
    connectionName: 'sibyl-feature-store',
    lazyConnect: false,
  });
  let healthy = false;
  let closed = false;
  client.on('ready', function onReady() {
    healthy = true;
  });
  client.on('close', function onClose() {
    healthy = false;
  });
  client.on('error', function onClientError(err: Error) {
    healthy = false;
    onError?.(err);
  });

  function succeeded<T>(value: T): T {
    healthy = true;
    return value;
  }
  function failed(err: unknown): never {
    healthy = false;
    throw toStoreError(err);
  }

  /** Auto-pipelining: one HMGET per lookup; ioredis sends this turn's commands of all requests in one write. */
  function readAutoPipelined(lookups: readonly FeatureLookup[], timeoutMs: number): Promise<(string | null)[][]> {
    const n = lookups.length;
    if (n === 0) return Promise.resolve([]);
    const pending = new Array<Promise<(string | null)[]>>(n);
    for (let i = 0; i < n; i++) {
      const l = lookups[i]!;
      // HMGET needs at least one field; a lookup of none answers [] without asking.
      pending[i] = l.fields.length === 0 ? Promise.resolve([]) : client.hmget(l.key, ...l.fields);
    }
    return withDeadline(Promise.all(pending), timeoutMs).then(succeeded, failed);
  }

  /** Without auto-pipelining: one explicit pipeline per read, so a request's lookups still share one write. */
  function readPipeline(lookups: readonly FeatureLookup[], timeoutMs: number): Promise<(string | null)[][]> {
    const n = lookups.length;
    if (n === 0) return Promise.resolve([]);
    const pipeline = client.pipeline();
    let commands = 0;
    for (let i = 0; i < n; i++) {
      const l = lookups[i]!;
      if (l.fields.length > 0) {
        pipeline.hmget(l.key, ...l.fields);
        commands++;
      }
    }
    const answered = commands === 0 ? Promise.resolve([]) : pipeline.exec();
    return withDeadline(answered, timeoutMs).then(function unpack(results) {
      if (!results) throw new Error('pipeline was not executed');
      const out = new Array<(string | null)[]>(n);
      for (let i = 0, r = 0; i < n; i++) {
        if (lookups[i]!.fields.length === 0) {
          out[i] = [];
          continue;
        }
        const [err, values] = results[r++]!;
        if (err) throw err;
        out[i] = values as (string | null)[];
      }
      return succeeded(out);
    }).catch(failed);
  }

  return {
    kind: 'redis',
    get healthy() {
      return healthy;
    },

    read: autoPipelining ? readAutoPipelined : readPipeline,

    async write(entries): Promise<void> {
      const pipeline = client.pipeline();
      let commands = 0;
      for (const e of entries) {
        const fields = Object.keys(e.fields);
        if (fields.length === 0) continue;
        pipeline.hset(e.key, e.fields);
        commands++;
      }
      if (commands === 0) return;
      let results: [Error | null, unknown][] | null;
      try {
        results = await pipeline.exec();
      } catch (err) {
        failed(err);
      }
      const firstError = results?.find((r) => r[0] !== null)?.[0];
      if (!results || firstError) failed(firstError ?? new Error('pipeline was not executed'));
      healthy = true;
    },

    ready(timeoutMs = 5000): Promise<void> {
      if (client.status === 'ready') return Promise.resolve();
      if (closed) return Promise.reject(new SibylError('UNAVAILABLE', 'feature store: closed'));
      return new Promise<void>(function waitReady(resolve, reject) {
        const timer = setTimeout(function readyTimedOut() {
          client.off('ready', onReady);
          reject(new SibylError('UNAVAILABLE', `feature store: redis not ready after ${timeoutMs} ms`));
        }, timeoutMs);
        function onReady() {
          clearTimeout(timer);
          resolve();
        }
        client.once('ready', onReady);
      });
    },

    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      healthy = false;
      if (client.status === 'ready') {
        try {
          await client.quit();
          return;
        } catch {
          // fall through: drop the connection
        }
      }
      client.disconnect(false);
    },
  };
}

/** Backoff for background reconnection: 50 ms per attempt, capped; never gives up. */
function reconnectDelay(maxMs: number): (times: number) => number {
  return function retryStrategy(times: number): number {
    return Math.min(times * 50, maxMs);
  };
}

/** Rejects with DEADLINE_EXCEEDED when `p` has not settled after `ms` milliseconds. */
function withDeadline<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>(function deadline(resolve, reject) {
    // The error is built only when the deadline passes: capturing a stack costs microseconds.
    const timer = setTimeout(function deadlinePassed() {
      // Timers run before the event loop polls for I/O, so after a busy turn the answer may already be sitting
      // unread in the socket. setImmediate decides after that poll: only an answer that has not arrived is late.
      setImmediate(function stillLate() {
        reject(new SibylError('DEADLINE_EXCEEDED', `feature store: no answer from redis within ${ms} ms`));
      });
    }, ms);
    p.then(
      function settledInTime(v) {
        clearTimeout(timer);
        resolve(v);
      },
      function failedInTime(err) {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

function toStoreError(err: unknown): SibylError {
  if (err instanceof SibylError) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (message === 'Command timed out') {
    return new SibylError('DEADLINE_EXCEEDED', 'feature store: redis command timed out', { cause: err });
  }
  return new SibylError('UNAVAILABLE', 'feature store: redis unavailable', { cause: err });
}
