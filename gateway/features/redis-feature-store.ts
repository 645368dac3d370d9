/**
 * The production FeatureStore: one Redis hash per entity (see feature-store.ts), read with one HMGET per lookup.
 *
 * With auto-pipelining on (the default), the HMGETs of every `read` issued in the same event-loop turn leave in one
 * pipeline, written once the turn's I/O callbacks have run (setImmediate): one write and one round trip per turn,
 * however many requests are in flight. The store batches itself rather than using ioredis's enableAutoPipelining,
 * which keeps at most one pipeline in flight per connection: under load every turn's reads waited for the previous
 * turn's round trip before they were even sent, and missed their deadline (measured: 8.7% of S1's requests at max
 * got defaults). Here each turn's pipeline leaves at once, however many are still in flight; replies come back in
 * order on the one connection.
 *
 * A read's deadline counts from the moment its pipeline is written, so it measures Redis (and the network), not the
 * time the gateway's own event loop took to get to the write; when it passes, the read waits for that turn's I/O
 * poll before it gives up (an answer already in the socket is not late).
 * Request-path rules: no offline queue (a read while disconnected rejects at once instead of waiting), every
 * command bounded by `commandTimeoutMs`, every `read` bounded by its own `timeoutMs` on the host, in-flight
 * commands rejected (not resent) when the connection drops, and reconnection in the background forever.
 */
import { Redis } from 'ioredis';
import { SibylError } from '../../core/errors.ts';
import type { FeatureLookup, FeatureStore } from '../../execution/feature-store.ts';

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
   * Share round trips between concurrent requests: the reads of one event-loop turn leave as one pipeline; default
   * true. When false, each `read` sends its lookups as one explicit pipeline of its own.
   */
  readonly autoPipelining?: boolean;
  /** Called with connection and command errors (for logs); never on the hot path's success. */
  readonly onError?: (err: Error) => void;
  /**
   * Called once per transition of the connection: 'down' when it is lost or cannot be made (with the reason and,
   * after an outage, nothing again until it is back), 'up' when it is ready (the first time too). A Redis that
   * accepts and never answers is 'down' once `socketTimeoutMs` passes with commands waiting.
   */
  readonly onStateChange?: (state: 'up' | 'down', reason: string) => void;
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
    enableAutoPipelining: false,
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
  /** The connection state last reported through onStateChange. */
  let reported: 'up' | 'down' | undefined;
  let lastError: Error | undefined;
  function report(state: 'up' | 'down', reason: string): void {
    if (reported === state || closed) return;
    reported = state;
    opts.onStateChange?.(state, reason);
  }
  client.on('ready', function onReady() {
    healthy = true;
    lastError = undefined;
    report('up', 'connected');
  });
  client.on('close', function onClose() {
    healthy = false;
    report('down', lastError ? lastError.message : 'connection closed');
  });
  client.on('error', function onClientError(err: Error) {
    healthy = false;
    lastError = err;
    onError?.(err);
    // A first connection that fails never closed a ready one: report it here.
    if (reported === undefined) report('down', err.message);
  });

  function failed(err: unknown): never {
    healthy = false;
    throw toStoreError(err);
  }

  /** Reads waiting for this turn's pipeline; sent by `flushTurn` once the turn's I/O callbacks have run. */
  let turn: PendingRead[] = [];

  /** Auto-pipelining: the read joins this turn's pipeline. */
  function readBatched(lookups: readonly FeatureLookup[], timeoutMs: number): Promise<(string | null)[][]> {
    if (lookups.length === 0) return Promise.resolve([]);
    return new Promise<(string | null)[][]>(function queue(resolve, reject) {
      if (turn.push({ lookups, timeoutMs, resolve, reject, settled: false }) === 1) setImmediate(flushTurn);
    });
  }

  function flushTurn(): void {
    const reads = turn;
    turn = [];
    send(reads);
  }

  /** Without auto-pipelining: one explicit pipeline per read, so a request's lookups still share one write. */
  function readAlone(lookups: readonly FeatureLookup[], timeoutMs: number): Promise<(string | null)[][]> {
    if (lookups.length === 0) return Promise.resolve([]);
    return new Promise<(string | null)[][]>(function sendNow(resolve, reject) {
      send([{ lookups, timeoutMs, resolve, reject, settled: false }]);
    });
  }

  /**
   * Sends the reads' lookups in one write, arms their deadlines, then hands each read its own replies. The HMGETs are
   * written while the socket is corked, so they leave in one writev, as a pipeline would. Not ioredis's Pipeline: each
   * Pipeline defines an accessor on itself, which gives every instance a hidden class of its own, allocated in the
   * old generation; until the next full GC that class keeps the pipeline's commands, replies and the requests
   * waiting on them alive through every scavenge (ARCHITECTURE.md, "Garbage collection on the request path").
   */
  function send(reads: readonly PendingRead[]): void {
    let answered: Promise<Reply[]>;
    const replies: Promise<Reply>[] = [];
    const stream = client.status === 'ready' ? client.stream : undefined;
    stream?.cork();
    try {
      for (const read of reads) {
        for (const l of read.lookups) {
          // HMGET needs at least one field; a lookup of none answers [] without asking.
          if (l.fields.length > 0) replies.push(client.hmget(l.key, ...l.fields).then(replied, refused));
        }
      }
      answered = Promise.all(replies);
    } catch (err) {
      // send may run from setImmediate: a throw there would take the process down.
      answered = Promise.reject(err);
    } finally {
      stream?.uncork();
    }
    const timers = armDeadlines(reads, markUnhealthy);
    answered.then(
      function deliver(results) {
        for (const t of timers) clearTimeout(t);
        let anyOk = false;
        let anyFailed = false;
        for (let i = 0, r = 0; i < reads.length; i++) {
          const read = reads[i]!;
          const n = read.lookups.length;
          const out = new Array<(string | null)[]>(n);
          let err: unknown;
          for (let k = 0; k < n; k++) {
            if (read.lookups[k]!.fields.length === 0) {
              out[k] = [];
              continue;
            }
            const [e, values] = results[r++]!;
            if (e) err ??= e;
            out[k] = values as (string | null)[];
          }
          if (read.settled) continue;
          read.settled = true;
          if (err) {
            anyFailed = true;
            read.reject(toStoreError(err));
          } else {
            anyOk = true;
            read.resolve(out);
          }
        }
        if (anyOk) healthy = true;
        else if (anyFailed) healthy = false;
      },
      function sendFailed(err: unknown) {
        for (const t of timers) clearTimeout(t);
        failAll(reads, err);
      },
    );
  }

  function markUnhealthy(): void {
    healthy = false;
  }

  function failAll(reads: readonly PendingRead[], err: unknown): void {
    healthy = false;
    const e = toStoreError(err);
    for (const read of reads) {
      if (read.settled) continue;
      read.settled = true;
      read.reject(e);
    }
  }

  return {
    kind: 'redis',
    get healthy() {
      return healthy;
    },

    read: autoPipelining ? readBatched : readAlone,

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

/** One HMGET's outcome: its error, or its values. */
type Reply = readonly [Error | null, unknown];
const replied = (values: unknown): Reply => [null, values];
const refused = (err: unknown): Reply => [err instanceof Error ? err : new Error(String(err)), null];

interface PendingRead {
  readonly lookups: readonly FeatureLookup[];
  readonly timeoutMs: number;
  readonly resolve: (values: (string | null)[][]) => void;
  readonly reject: (err: unknown) => void;
  settled: boolean;
}

/**
 * Starts the reads' deadlines now that their pipeline is written; returns the timers, to clear once it answers.
 * Neighbouring reads with the same timeout share one timer (a turn's reads usually all have the gateway's feature
 * timeout).
 */
function armDeadlines(reads: readonly PendingRead[], onLate: () => void): NodeJS.Timeout[] {
  const timers: NodeJS.Timeout[] = [];
  for (let i = 0; i < reads.length; ) {
    const ms = reads[i]!.timeoutMs;
    let j = i + 1;
    while (j < reads.length && reads[j]!.timeoutMs === ms) j++;
    timers.push(armGroup(reads.slice(i, j), ms, onLate));
    i = j;
  }
  return timers;
}

function armGroup(group: readonly PendingRead[], ms: number, onLate: () => void): NodeJS.Timeout {
  return setTimeout(function deadlinePassed() {
    // Timers run before the event loop polls for I/O, so after a busy turn the answer may already be sitting
    // unread in the socket. setImmediate decides after that poll: only an answer that has not arrived is late.
    setImmediate(function stillLate() {
      let err: SibylError | undefined;
      for (const read of group) {
        if (read.settled) continue;
        read.settled = true;
        read.reject((err ??= new SibylError('DEADLINE_EXCEEDED', `feature store: no answer from redis within ${ms} ms`)));
      }
      if (err) onLate();
    });
  }, ms);
}

function toStoreError(err: unknown): SibylError {
  if (err instanceof SibylError) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (message === 'Command timed out') {
    return new SibylError('DEADLINE_EXCEEDED', 'feature store: redis command timed out', { cause: err });
  }
  return new SibylError('UNAVAILABLE', 'feature store: redis unavailable', { cause: err });
}
