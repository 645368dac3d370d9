import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisFeatureStore } from '../../gateway/features/redis-feature-store.ts';
import { encodeCommand, encodeHmget, parseReply, PROTOCOL_ERROR, RedisReplyError, RespConnection, RespConnectionError, type RespReply } from '../../gateway/features/resp-connection.ts';
import { SibylError } from '../../core/errors.ts';
import { RedisProcess, sleep } from './redis-process.ts';

/** Every reply in `bytes`, parsed the way the connection does: from the start, then from where each one ended. */
function parseAll(bytes: Buffer): RespReply[] {
  const out: RespReply[] = [];
  for (let at = 0; at < bytes.length; ) {
    const r = parseReply(bytes, at, 0);
    if (r === undefined || r === PROTOCOL_ERROR) throw new Error(`stopped at ${at}`);
    out.push(r.value);
    at = r.next;
  }
  return out;
}

describe('RESP2 replies', () => {
  // A pipeline's answers as Redis writes them: HMGET arrays with missing fields, a value holding CR LF and multi-byte
  // characters, an error, an integer, a simple string, an empty array and a null array.
  const value = 'a\r\nb é 漢';
  const bytes = Buffer.from(
    `*3\r\n$3\r\n1.5\r\n$-1\r\n$${Buffer.byteLength(value)}\r\n${value}\r\n` +
      '-WRONGTYPE Operation against a key holding the wrong kind of value\r\n' +
      ':42\r\n:-7\r\n+OK\r\n*0\r\n*-1\r\n*2\r\n$0\r\n\r\n$2\r\nok\r\n',
  );
  const expected = [['1.5', null, value], 'WRONGTYPE Operation against a key holding the wrong kind of value', 42, -7, 'OK', [], null, ['', 'ok']];

  it('reads each kind of reply', () => {
    const got = parseAll(bytes);
    expect(got[1]).toBeInstanceOf(RedisReplyError);
    expect(got.map((r) => (r instanceof RedisReplyError ? r.message : r))).toEqual(expected);
  });

  it('waits for the rest of a reply cut anywhere, and reads the same replies once it has come', () => {
    for (let cut = 1; cut < bytes.length; cut++) {
      const head = bytes.subarray(0, cut);
      let at = 0;
      const got: RespReply[] = [];
      for (;;) {
        const r = parseReply(head, at, 0);
        if (r === PROTOCOL_ERROR) throw new Error(`protocol error at cut ${cut}`);
        if (r === undefined) break;
        got.push(r.value);
        at = r.next;
      }
      // What was whole before the cut is what the full reading starts with; the rest parses from where it stopped.
      const rest = parseAll(Buffer.concat([bytes.subarray(at)]));
      expect([...got, ...rest].map((r) => (r instanceof RedisReplyError ? r.message : r))).toEqual(expected);
    }
  });

  it('refuses bytes that are not RESP2 and replies nested deeper than the store ever asks for', () => {
    expect(parseReply(Buffer.from('HTTP/1.1 400 Bad Request\r\n'), 0, 0)).toBe(PROTOCOL_ERROR);
    expect(parseReply(Buffer.from('*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n'), 0, 0)).toBe(PROTOCOL_ERROR);
    expect(parseReply(Buffer.from('*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n'), 0, 0)).toEqual({ value: [[[[1]]]], next: 20 });
  });

  it('encodes commands as arrays of bulk strings, lengths in bytes', () => {
    expect(encodeCommand(['HSET', 'k', 'é', '1'])).toBe('*4\r\n$4\r\nHSET\r\n$1\r\nk\r\n$2\r\né\r\n$1\r\n1\r\n');
    expect(encodeHmget('k:é', ['a', 'bb'])).toBe(encodeCommand(['HMGET', 'k:é', 'a', 'bb']));
    // A plan's field list is encoded once and reused: each key still gets its own command.
    const fields = ['prep_time', 'ключ'];
    for (const key of ['restaurant:r-1', 'r:ü', '']) expect(encodeHmget(key, fields)).toBe(encodeCommand(['HMGET', key, ...fields]));
    expect(encodeHmget('k', [])).toBe(encodeCommand(['HMGET', 'k']));
  });
});

/** A TCP server that hands each connection to `onSocket`. */
async function fakeServer(onSocket: (s: Socket) => void): Promise<{ url: string; server: Server; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
    onSocket(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    url: `redis://127.0.0.1:${port}`,
    server,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

function connection(url: string, downs: string[] = [], name?: string): { conn: RespConnection; up: Promise<void> } {
  let markUp: () => void = () => {};
  const up = new Promise<void>((r) => (markUp = r));
  const conn = new RespConnection({
    url,
    connectTimeoutMs: 1000,
    socketTimeoutMs: 300,
    maxReconnectDelayMs: 100,
    ...(name ? { name } : {}),
    onUp: () => markUp(),
    onDown: (reason) => void downs.push(reason),
  });
  return { conn, up };
}

describe('RespConnection against a server that misbehaves', () => {
  it('drops a connection that answers something other than RESP2, fails what waited on it, and says why', async () => {
    const fake = await fakeServer((s) => s.on('data', () => s.write('HTTP/1.1 400 Bad Request\r\n\r\n')));
    const downs: string[] = [];
    const { conn, up } = connection(fake.url, downs);
    try {
      await up;
      const err = await conn.send(encodeHmget('k', ['a']), 1).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RespConnectionError);
      expect((err as Error).message).toMatch(/not RESP2/);
      expect(downs[0]).toMatch(/not RESP2/);
      expect(conn.ready).toBe(false);
    } finally {
      await conn.close();
      await fake.close();
    }
  });

  it('reads replies cut over reads anywhere, with another connection reading in between (one read buffer for all)', async () => {
    // Plain-TCP connections read into one buffer of the process: the start of a reply cut over two reads must be kept
    // aside before the next read, its own or another connection's, lands in that buffer.
    const reply = Buffer.from('*3\r\n$7\r\nfeature\r\n$-1\r\n$12\r\nsecond-value\r\n');
    let cut = 0;
    const cutter = await fakeServer((s) =>
      s.on('data', () => {
        s.write(reply.subarray(0, cut));
        setTimeout(() => s.write(reply.subarray(cut)), 15);
      }),
    );
    const other = Buffer.from('*2\r\n$5\r\nOTHER\r\n$5\r\nBYTES\r\n');
    const whole = await fakeServer((s) => s.on('data', () => setTimeout(() => s.write(other), 5)));
    const a = connection(cutter.url);
    const b = connection(whole.url);
    try {
      await Promise.all([a.up, b.up]);
      for (cut = 1; cut < reply.length; cut++) {
        const [mine, theirs] = await Promise.all([a.conn.send(encodeHmget('k', ['f', 'g', 'h']), 1, 1000), b.conn.send(encodeHmget('k', ['x', 'y']), 1, 1000)]);
        expect(mine, `cut at ${cut}`).toEqual([['feature', null, 'second-value']]);
        expect(theirs).toEqual([['OTHER', 'BYTES']]);
      }
    } finally {
      await Promise.all([a.conn.close(), b.conn.close()]);
      await Promise.all([cutter.close(), whole.close()]);
    }
  });

  it('keeps later batches in step with their own replies after a batch timed out', async () => {
    // The server answers the first batch late (after its timeout), then the second at once: the late replies must be
    // read as the first batch's, not handed to the second.
    let batches = 0;
    const fake = await fakeServer((s) =>
      s.on('data', () => {
        batches++;
        if (batches === 1) setTimeout(() => s.write('*1\r\n$5\r\nfirst\r\n'), 150);
        else setTimeout(() => s.write('*1\r\n$6\r\nsecond\r\n'), 200);
      }),
    );
    const { conn, up } = connection(fake.url);
    try {
      await up;
      const first = conn.send(encodeHmget('k', ['a']), 1, 50).catch((e: unknown) => e);
      await sleep(20);
      const second = conn.send(encodeHmget('k', ['b']), 1, 1000);
      const err = await first;
      expect(err).toBeInstanceOf(RespConnectionError);
      expect((err as RespConnectionError).timedOut).toBe(true);
      expect(await second).toEqual([['second']]);
    } finally {
      await conn.close();
      await fake.close();
    }
  });

  it('drops a connection that stops answering once commands wait, and reconnects', async () => {
    let connections = 0;
    const fake = await fakeServer(() => void connections++);
    const downs: string[] = [];
    const { conn, up } = connection(fake.url, downs);
    try {
      await up;
      const started = Date.now();
      await expect(conn.send(encodeHmget('k', ['a']), 1)).rejects.toThrow(/no answer from Redis for \d+ ms/);
      expect(Date.now() - started).toBeGreaterThanOrEqual(290);
      expect(Date.now() - started).toBeLessThan(2000);
      for (let i = 0; i < 50 && connections < 2; i++) await sleep(20);
      expect(connections).toBeGreaterThanOrEqual(2);
    } finally {
      await conn.close();
      await fake.close();
    }
  });
});

describe('RespConnection handshake against a private redis-server with a password', () => {
  let redis: RedisProcess;
  beforeAll(async () => {
    redis = await RedisProcess.start(['--requirepass', 's3cret']);
  });
  afterAll(async () => {
    await redis?.dispose();
  });

  it('authenticates, selects the database of the URL and names itself', async () => {
    const inDb3 = createRedisFeatureStore({ url: `redis://:s3cret@127.0.0.1:${redis.port}/3` });
    const inDb0 = createRedisFeatureStore({ url: `redis://default:s3cret@127.0.0.1:${redis.port}` });
    const { conn, up } = connection(`redis://:s3cret@127.0.0.1:${redis.port}`, [], 'sibyl-test');
    try {
      await inDb3.ready(5000);
      await inDb0.ready(5000);
      await up;
      await inDb3.write([{ key: 'entity:e1', fields: { a: '1', b: 'two' } }]);
      expect(await inDb3.read([{ key: 'entity:e1', fields: ['a', 'b', 'c'] }], 1000)).toEqual([['1', 'two', null]]);
      expect(await inDb0.read([{ key: 'entity:e1', fields: ['a'] }], 1000)).toEqual([[null]]);
      const clients = (await conn.send(encodeCommand(['CLIENT', 'LIST']), 1))[0] as string;
      expect(clients).toMatch(/name=sibyl-feature-store .*db=3/);
      expect(clients).toMatch(/name=sibyl-test/);
    } finally {
      await inDb3.close();
      await inDb0.close();
      await conn.close();
    }
  });

  it('reports a wrong password as the reason it is down, and never becomes ready', async () => {
    const reasons: string[] = [];
    const store = createRedisFeatureStore({ url: `redis://:wrong@127.0.0.1:${redis.port}`, onStateChange: (state, reason) => void reasons.push(`${state}: ${reason}`) });
    try {
      await expect(store.ready(500)).rejects.toThrow(/not ready/);
      expect(reasons[0]).toMatch(/^down: AUTH refused: WRONGPASS/);
      const err = await store.read([{ key: 'entity:e1', fields: ['a'] }], 100).catch((e: unknown) => e);
      expect((err as SibylError).code).toBe('UNAVAILABLE');
    } finally {
      await store.close();
    }
  });
});

describe('RespConnection over TLS against a private redis-server', () => {
  let redis: RedisProcess;
  beforeAll(async () => {
    redis = await RedisProcess.startTls(['--requirepass', 'tls-s3cret']);
  });
  afterAll(async () => {
    await redis?.dispose();
  });

  it('handshakes TLS, authenticates and answers over rediss://', async () => {
    let markUp: () => void = () => {};
    const up = new Promise<void>((r) => (markUp = r));
    const downs: string[] = [];
    const conn = new RespConnection({ url: `rediss://:tls-s3cret@127.0.0.1:${redis.port}/2`, connectTimeoutMs: 2000, socketTimeoutMs: 1000, maxReconnectDelayMs: 100, tls: { ca: redis.ca! }, onUp: () => markUp(), onDown: (reason) => void downs.push(reason) });
    try {
      await up;
      const replies = await conn.send(encodeCommand(['HSET', 'tls:e1', 'a', '1']) + encodeHmget('tls:e1', ['a', 'b']) + encodeCommand(['CLIENT', 'INFO']), 3);
      expect(replies.slice(0, 2)).toEqual([1, ['1', null]]);
      expect(replies[2]).toMatch(/db=2/);
      expect(downs).toEqual([]);
    } finally {
      await conn.close();
    }
  });

  it('refuses a server whose certificate it does not trust, and says why', async () => {
    const downs: string[] = [];
    const conn = new RespConnection({ url: `rediss://:tls-s3cret@127.0.0.1:${redis.port}`, connectTimeoutMs: 2000, socketTimeoutMs: 1000, maxReconnectDelayMs: 100, onUp: () => downs.push('up'), onDown: (reason) => void downs.push(reason) });
    try {
      for (let i = 0; i < 50 && downs.length === 0; i++) await sleep(20);
      expect(downs[0]).toMatch(/self-signed certificate/);
      expect(conn.ready).toBe(false);
    } finally {
      await conn.close();
    }
  });
});
