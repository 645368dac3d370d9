import { execFileSync } from 'node:child_process';
import { connect, createServer, Socket, type Server } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisFeatureStore, type RedisFeatureStore } from '../../gateway/features/redis-feature-store.ts';
import { SibylError } from '../../core/errors.ts';
import { featureStoreConformance } from './feature-store.case.ts';
import { freePort, RedisProcess, sleep } from './redis-process.ts';

const REDIS_URL = process.env.SIBYL_TEST_REDIS_URL ?? 'redis://127.0.0.1:6399';
const PREFIX = `sibyl-test-${process.pid}-${Date.now().toString(36)}`;
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Runs outside `npm test` too: the service script is idempotent and returns at once when Redis is up. */
function ensureSharedRedis(): void {
  if (process.env.SIBYL_TEST_REDIS_URL) return;
  execFileSync('bash', ['scripts/services/redis.sh', 'start'], { cwd: ROOT, stdio: 'ignore' });
}

async function deletePrefix(url: string, prefix: string): Promise<void> {
  const admin = new Redis(url, { lazyConnect: true });
  await admin.connect();
  let cursor = '0';
  do {
    const [next, keys] = await admin.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    if (keys.length) await admin.del(...keys);
    cursor = next;
  } while (cursor !== '0');
  await admin.quit();
}

/** Retries `read` until it succeeds; gives up after `ms`. */
async function readEventually(store: RedisFeatureStore, key: string, field: string, ms: number): Promise<(string | null)[][]> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await store.read([{ key, fields: [field] }], 200);
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(50);
    }
  }
}

beforeAll(() => ensureSharedRedis());
afterAll(() => deletePrefix(REDIS_URL, PREFIX));

featureStoreConformance(
  'redis',
  async () => {
    const store = createRedisFeatureStore({ url: REDIS_URL });
    await store.ready(10_000);
    return store;
  },
  { prefix: PREFIX },
);

featureStoreConformance(
  'redis without auto-pipelining',
  async () => {
    const store = createRedisFeatureStore({ url: REDIS_URL, autoPipelining: false });
    await store.ready(10_000);
    return store;
  },
  { prefix: `${PREFIX}:nap` },
);

const modes = [
  { name: 'auto-pipelining on', autoPipelining: true, commandTimeoutMs: 300 },
  { name: 'auto-pipelining off', autoPipelining: false, commandTimeoutMs: 300 },
  { name: 'no command timeout: host deadline and socket timeout only', autoPipelining: true, commandTimeoutMs: 0 },
];

for (const { name, autoPipelining, commandTimeoutMs } of modes) {
  describe(`redis feature store failures (${name})`, () => {
    it('rejects at once against a refused port, well under the client default of ~10 s', async () => {
      const port = await freePort();
      const store = createRedisFeatureStore({ url: `redis://127.0.0.1:${port}`, autoPipelining, commandTimeoutMs });
      try {
        const started = Date.now();
        const err = await store.read([{ key: 'sibyl:restaurant:r1', fields: ['a', 'b'] }], 100).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(SibylError);
        expect((err as SibylError).code).toBe('UNAVAILABLE');
        expect(Date.now() - started).toBeLessThan(2000);
        expect(store.healthy).toBe(false);
        await expect(store.write([{ key: 'sibyl:restaurant:r1', fields: { a: '1' } }])).rejects.toBeInstanceOf(SibylError);
        await expect(store.ready(300)).rejects.toThrow(/not ready/);
      } finally {
        await store.close();
      }
    });

    describe('a server that accepts connections and never answers', () => {
      let server: Server;
      let port: number;
      const sockets = new Set<Socket>();
      beforeAll(async () => {
        server = createServer((s) => {
          sockets.add(s);
          s.on('error', () => {});
          s.on('close', () => sockets.delete(s));
        });
        await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
        const addr = server.address();
        port = typeof addr === 'object' && addr ? addr.port : 0;
      });
      afterAll(async () => {
        for (const s of sockets) s.destroy();
        await new Promise((r) => server.close(r));
      });

      it('rejects reads instead of hanging, and stays unhealthy', async () => {
        const store = createRedisFeatureStore({ url: `redis://127.0.0.1:${port}`, autoPipelining, commandTimeoutMs, socketTimeoutMs: 500 });
        try {
          await sleep(50); // let it connect: the TCP handshake succeeds, the Redis one never does
          expect(sockets.size).toBeGreaterThan(0);
          for (let i = 0; i < 3; i++) {
            await expect(store.read([{ key: 'sibyl:restaurant:r1', fields: ['a'] }], 100)).rejects.toBeInstanceOf(SibylError);
          }
          expect(store.healthy).toBe(false);
        } finally {
          await store.close();
        }
      });
    });

    describe('a private redis-server that freezes, dies and comes back', () => {
      let redis: RedisProcess;
      let store: RedisFeatureStore;
      const key = 'sibyl:restaurant:r1';
      beforeAll(async () => {
        redis = await RedisProcess.start();
        store = createRedisFeatureStore({ url: redis.url, autoPipelining, commandTimeoutMs, socketTimeoutMs: 500, maxReconnectDelayMs: 200 });
        await store.ready(10_000);
      });
      afterAll(async () => {
        await store?.close();
        await redis?.dispose();
      });

      it('reads while it is up', async () => {
        await store.write([{ key, fields: { a: '1' } }]);
        expect(await store.read([{ key, fields: ['a'] }], 1000)).toEqual([['1']]);
        expect(store.healthy).toBe(true);
      });

      it('rejects with DEADLINE_EXCEEDED while the server is frozen, and reads again after it thaws', async () => {
        redis.freeze();
        try {
          const err = await store.read([{ key, fields: ['a'] }], 100).catch((e: unknown) => e);
          expect(err).toBeInstanceOf(SibylError);
          expect((err as SibylError).code).toBe('DEADLINE_EXCEEDED');
          expect(store.healthy).toBe(false);
        } finally {
          redis.thaw();
        }
        expect(await readEventually(store, key, 'a', 10_000)).toEqual([['1']]);
        expect(store.healthy).toBe(true);
      });

      it('rejects while the server is down and reconnects by itself when it is back', async () => {
        await redis.stop();
        await expect(store.read([{ key, fields: ['a'] }], 100)).rejects.toBeInstanceOf(SibylError);
        await sleep(300); // several reconnection attempts fail in between
        await expect(store.read([{ key, fields: ['a'] }], 100)).rejects.toBeInstanceOf(SibylError);
        expect(store.healthy).toBe(false);

        await redis.start();
        // No persistence: the restarted server is empty.
        expect(await readEventually(store, key, 'a', 10_000)).toEqual([[null]]);
        expect(store.healthy).toBe(true);
        await store.write([{ key, fields: { a: '2' } }]);
        expect(await store.read([{ key, fields: ['a'] }], 1000)).toEqual([['2']]);
      });
    });
  });
}

/** Keeps the event loop busy for `ms` milliseconds, as a burst of request handling does. */
function busy(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

for (const autoPipelining of [true, false]) {
  describe(`redis feature store deadline, auto-pipelining ${autoPipelining ? 'on' : 'off'}`, () => {
    it('does not count an answer as late when it arrived in time but the event loop was busy', async () => {
      const store = createRedisFeatureStore({ url: REDIS_URL, autoPipelining });
      try {
        await store.ready(10_000);
        const key = `${PREFIX}:late:r1`;
        await store.write([{ key, fields: { a: '1' } }]);
        // The read leaves (auto-pipelining sends it from an immediate queued before this one), then the loop is kept
        // busy well past the 20 ms deadline while Redis answers. When the loop comes back, the deadline's timer and
        // the answer are both due; the answer was there first, so the read must succeed.
        const read = store.read([{ key, fields: ['a'] }], 20);
        setImmediate(() => busy(200));
        await expect(read).resolves.toEqual([['1']]);
        expect(store.healthy).toBe(true);
      } finally {
        await store.close();
      }
    });
  });
}

/**
 * A TCP proxy in front of the shared Redis: `fromClient` sees each chunk the store wrote and passes it on (or not) with
 * `toServer`; `fromServer` each chunk of answers, with `toClient`. `close` ends it and its connections.
 */
async function redisProxy(hooks: {
  fromClient: (chunk: Buffer, toServer: (d: Buffer) => void, toClient: (d: Buffer) => void) => void;
  fromServer?: (chunk: Buffer, toClient: (d: Buffer) => void) => void;
}): Promise<{ url: string; close(): Promise<void> }> {
  const upstream = new URL(REDIS_URL);
  const sockets: Socket[] = [];
  const proxy = createServer((client: Socket) => {
    const server = connect(Number(upstream.port), upstream.hostname);
    sockets.push(client, server);
    const toServer = (d: Buffer) => server.write(d);
    const toClient = (d: Buffer) => client.write(d);
    client.on('data', (d: Buffer) => hooks.fromClient(d, toServer, toClient));
    server.on('data', (d: Buffer) => (hooks.fromServer ? hooks.fromServer(d, toClient) : toClient(d)));
    client.on('error', () => server.destroy());
    server.on('error', () => client.destroy());
  });
  const port = await freePort();
  await new Promise<void>((resolve) => proxy.listen(port, '127.0.0.1', resolve));
  return {
    url: `redis://127.0.0.1:${port}`,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
    },
  };
}

describe('redis feature store pipelines (auto-pipelining on)', () => {
  it('sends each turn\'s reads at once, without waiting for an earlier turn\'s answers', async () => {
    // A proxy in front of Redis that holds the answers back from the first read on, until a second pipeline of
    // reads has arrived. A client that keeps one pipeline in flight never sends the second, and its first read
    // misses its deadline.
    let pipelines = 0;
    const held: Buffer[] = [];
    const proxy = await redisProxy({
      fromClient(d, toServer, toClient) {
        if (d.toString('latin1').toLowerCase().includes('hmget')) pipelines++;
        toServer(d);
        if (pipelines >= 2) for (const h of held.splice(0)) toClient(h);
      },
      fromServer: (d, toClient) => (pipelines === 1 ? held.push(d) : toClient(d)),
    });
    const store = createRedisFeatureStore({ url: proxy.url });
    try {
      await store.ready(10_000);
      const key = `${PREFIX}:turns:r1`;
      await store.write([{ key, fields: { a: '1', b: '2' } }]);
      const first = store.read([{ key, fields: ['a'] }], 2000);
      await new Promise((resolve) => setTimeout(resolve, 20));
      const second = store.read([{ key, fields: ['b'] }], 2000);
      expect(await Promise.all([first, second])).toEqual([[['1']], [['2']]]);
      expect(pipelines).toBe(2);
    } finally {
      await store.close();
      await proxy.close();
    }
  });

  it('writes the HMGETs of one turn in one write', async () => {
    // Counted where the socket hands bytes to the kernel (a stream's _write, or _writev for what was corked): a
    // receiver cannot tell one write from several that arrived before it read.
    const hmgets = (chunk: unknown) => (String(chunk).toLowerCase().match(/hmget/g) ?? []).length;
    const writes: number[] = [];
    const { _write: write, _writev: writev } = Socket.prototype;
    Socket.prototype._write = function countedWrite(this: Socket, chunk, encoding, callback) {
      if (hmgets(chunk) > 0) writes.push(hmgets(chunk));
      return write.call(this, chunk, encoding, callback);
    };
    Socket.prototype._writev = function countedWritev(this: Socket, chunks, callback) {
      const n = chunks.reduce((sum, c) => sum + hmgets(c.chunk), 0);
      if (n > 0) writes.push(n);
      return writev!.call(this, chunks, callback);
    };
    const store = createRedisFeatureStore({ url: REDIS_URL });
    try {
      await store.ready(10_000);
      const keys = [1, 2, 3].map((i) => `${PREFIX}:one-write:r${i}`);
      await store.write(keys.map((key, i) => ({ key, fields: { a: String(i), b: String(i * 10) } })));
      // Four reads in one turn, eight lookups between them (one of no fields: nothing to send).
      const reads = [
        store.read([{ key: keys[0]!, fields: ['a'] }, { key: keys[1]!, fields: ['a', 'b'] }], 2000),
        store.read([{ key: keys[2]!, fields: ['b'] }], 2000),
        store.read([{ key: keys[0]!, fields: [] }, { key: keys[1]!, fields: ['b'] }], 2000),
        store.read([{ key: keys[2]!, fields: ['a'] }, { key: keys[0]!, fields: ['b'] }, { key: `${PREFIX}:one-write:missing`, fields: ['a'] }], 2000),
      ];
      expect(await Promise.all(reads)).toEqual([[['0'], ['1', '10']], [['20']], [[], ['10']], [['2'], ['0'], [null]]]);
      expect(writes).toEqual([7]);
    } finally {
      Socket.prototype._write = write;
      Socket.prototype._writev = writev;
      await store.close();
    }
  });
});
