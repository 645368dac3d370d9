/**
 * The production FeatureStore: one Redis hash per entity (see feature-store.ts), read with one HMGET per lookup, over
 * the store's own RESP connection (`resp-connection.ts`: no general client on the request path).
 *
 * With auto-pipelining on (the default), the HMGETs of every `read` issued in the same event-loop turn leave in one
 * pipeline, written once the turn's I/O callbacks have run (setImmediate): one write and one round trip per turn,
 * however many requests are in flight. Each turn's pipeline leaves at once, however many are still in flight (a
 * client that keeps one pipeline in flight per connection made every turn's reads wait for the previous turn's round
 * trip, and 8.7% of S1's requests at max got defaults); replies come back in order on the one connection.
 *
 * A read's deadline counts from the moment its pipeline is written, so it measures Redis (and the network), not the
 * time the gateway's own event loop took to get to the write; when it passes, the read waits for that turn's I/O
 * poll before it gives up (an answer already in the socket is not late).
 * Request-path rules: no offline queue (a read while disconnected rejects at once instead of waiting), every
 * `read` bounded by its own `timeoutMs` on the host and every `write` by `commandTimeoutMs`, a connection with
 * commands waiting that hears nothing for `socketTimeoutMs` dropped, in-flight commands rejected (not resent) when the
 * connection drops, and reconnection in the background forever.
 */
import { SibylError } from '../../core/errors.ts';
import type { FeatureLookup, FeatureStore } from '../../execution/feature-store.ts';
import { encodeCommand, encodeHmget, RedisReplyError, RespConnection, RespConnectionError, type RespReply } from './resp-connection.ts';

export interface RedisFeatureStoreOptions {
  /** `redis://[user:password@]host:port[/db]` (or `rediss://` for TLS). */
  readonly url: string;
  /**
   * Bound on a `write`, milliseconds; default 1000; 0 turns it off (then `socketTimeoutMs` bounds it). A `read` is
   * bounded by its own `timeoutMs` on the host, which is the request's deadline.
   */
  readonly commandTimeoutMs?: number;
  /** Longest wait for the connection to open and its handshake (AUTH, SELECT) to answer, milliseconds; default 1000. */
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
  let healthy = false;
  let closed = false;
  /** The connection state last reported through onStateChange. */
  let reported: 'up' | 'down' | undefined;
  /** `ready()` calls waiting for the connection. */
  const waiting = new Set<() => void>();
  function report(state: 'up' | 'down', reason: string): void {
    if (reported === state || closed) return;
    reported = state;
    opts.onStateChange?.(state, reason);
  }
  const conn = new RespConnection({
    url: opts.url,
    connectTimeoutMs: opts.connectTimeoutMs ?? 1000,
    socketTimeoutMs: opts.socketTimeoutMs ?? 2000,
    maxReconnectDelayMs: opts.maxReconnectDelayMs ?? 1000,
    name: 'sibyl-feature-store',
    onUp() {
      healthy = true;
      report('up', 'connected');
      for (const w of waiting) w();
    },
    onDown(reason, err) {
      healthy = false;
      onError?.(err);
      report('down', reason);
    },
  });

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

  /** Sends the reads' lookups in one write, arms their deadlines, then hands each read its own replies. */
  function send(reads: readonly PendingRead[]): void {
    let payload = '';
    let count = 0;
    try {
      for (const read of reads) {
        for (const l of read.lookups) {
          // HMGET needs at least one field; a lookup of none answers [] without asking.
          if (l.fields.length === 0) continue;
          payload += encodeHmget(l.key, l.fields);
          count++;
        }
      }
    } catch (err) {
      // send may run from setImmediate: a throw there would take the process down.
      failAll(reads, err);
      return;
    }
    const answered = count > 0 ? conn.send(payload, count) : Promise.resolve([]);
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
            const values = results[r++];
            if (Array.isArray(values)) out[k] = values as (string | null)[];
            else err ??= values instanceof Error ? values : new RedisReplyError(`unexpected reply to HMGET: ${String(values)}`);
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
      let payload = '';
      let count = 0;
      for (const e of entries) {
        const fields = Object.entries(e.fields);
        if (fields.length === 0) continue;
        payload += encodeCommand(['HSET', e.key, ...fields.flat()]);
        count++;
      }
      if (count === 0) return;
      let replies: RespReply[];
      try {
        replies = await conn.send(payload, count, commandTimeoutMs);
      } catch (err) {
        healthy = false;
        throw toStoreError(err);
      }
      const firstError = replies.find((r) => r instanceof RedisReplyError);
      if (firstError) {
        healthy = false;
        throw toStoreError(firstError);
      }
      healthy = true;
    },

    ready(timeoutMs = 5000): Promise<void> {
      if (conn.ready) return Promise.resolve();
      if (closed) return Promise.reject(new SibylError('UNAVAILABLE', 'feature store: closed'));
      return new Promise<void>(function waitReady(resolve, reject) {
        const timer = setTimeout(function readyTimedOut() {
          waiting.delete(onReady);
          reject(new SibylError('UNAVAILABLE', `feature store: redis not ready after ${timeoutMs} ms`));
        }, timeoutMs);
        function onReady() {
          clearTimeout(timer);
          waiting.delete(onReady);
          resolve();
        }
        waiting.add(onReady);
      });
    },

    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      healthy = false;
      await conn.close();
    },
  };
}

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
  if (err instanceof RespConnectionError && err.timedOut) {
    return new SibylError('DEADLINE_EXCEEDED', 'feature store: redis command timed out', { cause: err });
  }
  return new SibylError('UNAVAILABLE', 'feature store: redis unavailable', { cause: err });
}
