/**
 * The feature store's Redis connection: RESP2 over one TCP (or TLS) socket, commands written as pre-encoded
 * pipelines and answered in order, nothing else. The store needs a handful of commands (HMGET on the request path,
 * HSET to load) and strict request-path rules: no offline queue, nothing resent after a disconnect, a connection that
 * stops answering dropped, reconnection in the background forever. A general client does all that and much more, at a
 * price on every reply: measured with the store's own read of 3 HMGETs x 7 fields on one core (64 readers), ioredis 6
 * took 22.2 µs of CPU per read against 11.3 µs for this connection's write-and-parse (ARCHITECTURE.md, "The feature
 * store's connection").
 *
 * One batch = one write of `count` commands and one promise for their replies. A reply that is a Redis error is
 * delivered as a `RedisReplyError` in its place; the batch itself rejects only when the connection cannot answer it
 * (not ready, dropped, closed) or its own timeout passes.
 */
import { isIP, connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';

/** A reply: a simple or bulk string, an integer, null (a missing value), an error reply, or an array of those. */
export type RespReply = string | number | null | RedisReplyError | RespReply[];

/** An error reply from Redis (`-ERR ...`, `-WRONGTYPE ...`), in the place of the command's reply. */
export class RedisReplyError extends Error {
  override readonly name = 'RedisReplyError';
}

/** Why a batch got no replies: the connection is not ready, dropped it, was closed, or the batch's timeout passed. */
export class RespConnectionError extends Error {
  override readonly name = 'RespConnectionError';
  readonly timedOut: boolean;
  constructor(message: string, timedOut = false) {
    super(message);
    this.timedOut = timedOut;
  }
}

export interface RespConnectionOptions {
  /** `redis://[user:password@]host[:port][/db]`, or `rediss://` for TLS. */
  readonly url: string;
  /** Longest wait for the connection and its handshake (AUTH, SELECT), ms. */
  readonly connectTimeoutMs: number;
  /** A connection with commands waiting that receives nothing for this long is dropped and reopened, ms. */
  readonly socketTimeoutMs: number;
  /** Longest pause between reconnection attempts, ms (attempts back off 50 ms a try). */
  readonly maxReconnectDelayMs: number;
  /** Sent as CLIENT SETNAME (a server that refuses it is still used). */
  readonly name?: string;
  /**
   * More TLS options for `rediss://` (e.g. `ca` for a private authority); by default Node's, which trust the system's
   * authorities and NODE_EXTRA_CA_CERTS.
   */
  readonly tls?: ConnectionOptions;
  /** The connection is ready for commands (the first time too). */
  readonly onUp: () => void;
  /** The connection was lost or could not be made (or its handshake failed), with the reason. */
  readonly onDown: (reason: string, err: Error) => void;
}

interface Batch {
  readonly count: number;
  readonly replies: RespReply[];
  readonly resolve: (replies: RespReply[]) => void;
  readonly reject: (err: Error) => void;
  /** Settled already (its timeout passed): its replies are still read, to keep the next batches in step. */
  settled: boolean;
  timer: NodeJS.Timeout | undefined;
}

/** Nesting allowed in a reply: the store's replies are flat arrays; a deeper one is a protocol error, not recursion. */
const MAX_DEPTH = 4;
const CR = 13;

/**
 * The buffer every plain-TCP connection of the process reads into (`onread`): each read is parsed before the next
 * can land in it (one thread), and nothing keeps a view of it: replies are copied out as strings, and the start of a
 * reply cut over reads is copied into `#rest`. A socket left to itself allocates 64 KB and an ArrayBuffer for every
 * read (ARCHITECTURE.md, "The feature store's connection").
 */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

export class RespConnection {
  readonly #o: RespConnectionOptions;
  readonly #target: { host: string; port: number; tls: boolean; username: string; password: string; db: number };
  #socket: Socket | undefined;
  #ready = false;
  #closed = false;
  #attempt = 0;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #connectTimer: NodeJS.Timeout | undefined;
  /** Batches written and not fully answered, oldest first; `#head` is the first not yet answered. */
  #pending: Batch[] = [];
  #head = 0;
  /** Bytes received and not parsed yet (a reply split over reads). */
  #rest: Buffer | undefined;
  #lastDataAt = 0;
  #idleTimer: NodeJS.Timeout | undefined;

  constructor(opts: RespConnectionOptions) {
    this.#o = opts;
    const u = new URL(opts.url);
    if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new Error(`feature store: ${u.protocol} is not a Redis URL (redis:// or rediss://)`);
    const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0;
    if (!Number.isInteger(db) || db < 0) throw new Error(`feature store: database ${u.pathname.slice(1)} in the Redis URL is not a number`);
    this.#target = {
      host: u.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: u.port ? Number(u.port) : 6379,
      tls: u.protocol === 'rediss:',
      username: decodeURIComponent(u.username),
      password: decodeURIComponent(u.password),
      db,
    };
    this.#connect();
  }

  /** Ready for commands: connected and the handshake answered. */
  get ready(): boolean {
    return this.#ready;
  }

  /**
   * Writes `payload` (`count` commands, RESP-encoded) and resolves with their replies, in order. Rejects at once when
   * the connection is not ready, and when it drops before every reply came; after `timeoutMs` (0: none) with
   * `timedOut` set.
   */
  send(payload: string, count: number, timeoutMs = 0): Promise<RespReply[]> {
    if (!this.#ready || !this.#socket) return Promise.reject(new RespConnectionError(this.#closed ? 'connection closed' : 'connection not ready'));
    return this.#write(this.#socket, payload, count, timeoutMs);
  }

  /** Stops reconnecting; QUIT when ready (answered or not within a second), then the socket is closed. */
  async close(): Promise<void> {
    if (this.#closed) return;
    const socket = this.#socket;
    const wasReady = this.#ready;
    this.#closed = true;
    this.#ready = false;
    clearTimeout(this.#reconnectTimer);
    clearTimeout(this.#connectTimer);
    clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    if (socket && wasReady) {
      await this.#write(socket, encodeCommand(['QUIT']), 1, 1000).catch(() => undefined);
    }
    socket?.destroy();
    this.#socket = undefined;
    this.#failPending(new RespConnectionError('connection closed'));
  }

  #write(socket: Socket, payload: string, count: number, timeoutMs: number): Promise<RespReply[]> {
    return new Promise<RespReply[]>((resolve, reject) => {
      const batch: Batch = { count, replies: [], resolve, reject, settled: false, timer: undefined };
      if (timeoutMs > 0) {
        batch.timer = setTimeout(() => {
          if (batch.settled) return;
          batch.settled = true;
          reject(new RespConnectionError(`no answer within ${timeoutMs} ms`, true));
        }, timeoutMs);
      }
      if (this.#head === this.#pending.length) this.#lastDataAt = performance.now();
      this.#pending.push(batch);
      socket.write(payload);
      this.#watchIdle();
    });
  }

  #connect(): void {
    if (this.#closed) return;
    const t = this.#target;
    // SNI names a host, never an address (RFC 6066).
    // TLS sockets cannot read into a given buffer; theirs are read as chunks of their own.
    const socket: Socket = t.tls
      ? tlsConnect({ ...this.#o.tls, host: t.host, port: t.port, ...(isIP(t.host) ? {} : { servername: t.host }) })
      : netConnect({ host: t.host, port: t.port, onread: { buffer: READ_BUFFER, callback: (n: number, buf: Uint8Array) => (this.#onData(socket, buf as Buffer, n, true), true) } });
    this.#socket = socket;
    socket.setNoDelay(true);
    socket.setKeepAlive(true);
    this.#connectTimer = setTimeout(() => this.#drop(socket, new Error(`no connection to ${t.host}:${t.port} within ${this.#o.connectTimeoutMs} ms`)), this.#o.connectTimeoutMs);
    socket.once(t.tls ? 'secureConnect' : 'connect', () => this.#handshake(socket));
    if (t.tls) socket.on('data', (chunk: Buffer) => this.#onData(socket, chunk, chunk.length, false));
    socket.on('error', (err: Error) => this.#drop(socket, err));
    socket.on('close', () => this.#drop(socket, new Error('connection closed')));
  }

  #handshake(socket: Socket): void {
    const t = this.#target;
    const commands: string[][] = [];
    if (t.password) commands.push(t.username ? ['AUTH', t.username, t.password] : ['AUTH', t.password]);
    if (t.db !== 0) commands.push(['SELECT', String(t.db)]);
    if (this.#o.name) commands.push(['CLIENT', 'SETNAME', this.#o.name]);
    const done = (): void => {
      if (this.#socket !== socket || this.#closed) return;
      clearTimeout(this.#connectTimer);
      this.#ready = true;
      this.#attempt = 0;
      this.#o.onUp();
    };
    if (commands.length === 0) return done();
    this.#write(socket, commands.map(encodeCommand).join(''), commands.length, 0).then(
      (replies) => {
        // AUTH and SELECT must succeed; a server that refuses CLIENT SETNAME (some managed ones) is still usable.
        const failed = replies.findIndex((r, i) => r instanceof RedisReplyError && commands[i]![0] !== 'CLIENT');
        if (failed >= 0) this.#drop(socket, new Error(`${commands[failed]![0]} refused: ${(replies[failed] as RedisReplyError).message}`));
        else done();
      },
      () => undefined, // the drop that rejected it reports why
    );
  }

  /** Parses the replies in `chunk[0, n)`; `shared`: the chunk is READ_BUFFER, so an unparsed tail is copied out. */
  #onData(socket: Socket, chunk: Buffer, n: number, shared: boolean): void {
    if (socket !== this.#socket) return;
    this.#lastDataAt = performance.now();
    const read = n === chunk.length ? chunk : chunk.subarray(0, n);
    const rest = this.#rest;
    const buf = rest ? Buffer.concat([rest, read]) : read;
    let at = 0;
    for (;;) {
      if (at >= buf.length) break;
      const reply = readReply(buf, at, 0);
      if (reply === INCOMPLETE) break;
      if (reply === PROTOCOL_ERROR) {
        this.#drop(socket, new Error('unexpected bytes from Redis (not RESP2)'));
        return;
      }
      at = replyEnd;
      this.#deliver(reply);
    }
    this.#rest = at >= buf.length ? undefined : shared && buf === read ? Buffer.from(buf.subarray(at)) : buf.subarray(at);
  }

  #deliver(reply: RespReply): void {
    const batch = this.#pending[this.#head];
    if (!batch) return; // a reply to nothing: ignored (cannot happen in step)
    batch.replies.push(reply);
    if (batch.replies.length < batch.count) return;
    this.#head++;
    if (this.#head === this.#pending.length) {
      this.#pending = [];
      this.#head = 0;
    } else if (this.#head > 1024) {
      this.#pending = this.#pending.slice(this.#head);
      this.#head = 0;
    }
    clearTimeout(batch.timer);
    if (batch.settled) return;
    batch.settled = true;
    batch.resolve(batch.replies);
  }

  /** While commands wait, checks every `socketTimeoutMs` that something came in since; else the connection is dropped. */
  #watchIdle(): void {
    if (this.#idleTimer || this.#o.socketTimeoutMs <= 0) return;
    const check = (): void => {
      this.#idleTimer = undefined;
      const socket = this.#socket;
      if (!socket || this.#head === this.#pending.length) return;
      const quietMs = performance.now() - this.#lastDataAt;
      if (quietMs >= this.#o.socketTimeoutMs) {
        this.#drop(socket, new Error(`no answer from Redis for ${Math.round(quietMs)} ms with commands waiting`));
        return;
      }
      this.#idleTimer = setTimeout(check, this.#o.socketTimeoutMs - quietMs).unref();
    };
    // Unref'd: the socket keeps the process alive while commands wait; the watch never should by itself.
    this.#idleTimer = setTimeout(check, this.#o.socketTimeoutMs).unref();
  }

  /** Ends this socket (once): every batch waiting on it rejects, `onDown` is told, and a reconnection is scheduled. */
  #drop(socket: Socket, err: Error): void {
    if (socket !== this.#socket) return;
    this.#socket = undefined;
    this.#ready = false;
    this.#rest = undefined;
    clearTimeout(this.#connectTimer);
    clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    socket.destroy();
    this.#failPending(new RespConnectionError(err.message));
    if (this.#closed) return;
    this.#o.onDown(err.message, err);
    this.#attempt++;
    this.#reconnectTimer = setTimeout(() => this.#connect(), Math.min(this.#attempt * 50, this.#o.maxReconnectDelayMs));
  }

  #failPending(err: Error): void {
    const pending = this.#pending.slice(this.#head);
    this.#pending = [];
    this.#head = 0;
    for (const b of pending) {
      clearTimeout(b.timer);
      if (b.settled) continue;
      b.settled = true;
      b.reject(err);
    }
  }
}

/** One command as RESP: an array of bulk strings. */
export function encodeCommand(args: readonly string[]): string {
  let s = `*${args.length}\r\n`;
  for (const a of args) s += `$${Buffer.byteLength(a)}\r\n${a}\r\n`;
  return s;
}

/**
 * HMGET key field...: the request path's command, encoded without an intermediate array. A feature plan's field
 * lists are the same arrays request after request, so each list's part of the command is encoded once and kept
 * while the list lives.
 */
export function encodeHmget(key: string, fields: readonly string[]): string {
  let tail = encodedFields.get(fields);
  if (tail === undefined) {
    tail = '';
    for (const f of fields) tail += `$${Buffer.byteLength(f)}\r\n${f}\r\n`;
    encodedFields.set(fields, tail);
  }
  return `*${fields.length + 2}\r\n$5\r\nHMGET\r\n$${Buffer.byteLength(key)}\r\n${key}\r\n${tail}`;
}

const encodedFields = new WeakMap<readonly string[], string>();

/** What `parseReply` returns for bytes that are not RESP2. */
export const PROTOCOL_ERROR = Symbol('protocol error');

/**
 * Parses one reply at `at`: the value and where the next reply starts, undefined when the bytes end before the reply
 * does, or PROTOCOL_ERROR.
 */
export function parseReply(buf: Buffer, at: number, depth: number): { value: RespReply; next: number } | undefined | typeof PROTOCOL_ERROR {
  const value = readReply(buf, at, depth);
  if (value === INCOMPLETE) return undefined;
  if (value === PROTOCOL_ERROR) return value;
  return { value, next: replyEnd };
}

/** What `readReply` returns when the bytes end before the reply does. */
const INCOMPLETE = Symbol('incomplete');
/** Where the reply `readReply` returned last ends (the next one starts). */
let replyEnd = 0;

/**
 * `parseReply` without an object per reply (an S1 request reads 13-16, elements included): the value, its end in
 * `replyEnd`.
 */
function readReply(buf: Buffer, at: number, depth: number): RespReply | typeof INCOMPLETE | typeof PROTOCOL_ERROR {
  const end = buf.indexOf(CR, at);
  if (end < 0 || end + 1 >= buf.length) return INCOMPLETE;
  replyEnd = end + 2;
  switch (buf[at]) {
    case 0x2b: // + simple string
      return buf.toString('utf8', at + 1, end);
    case 0x2d: // - error
      return new RedisReplyError(buf.toString('utf8', at + 1, end));
    case 0x3a: // : integer
      return readInt(buf, at + 1, end);
    case 0x24: {
      // $ bulk string
      const len = readInt(buf, at + 1, end);
      if (len < 0) return null;
      const start = end + 2;
      if (start + len + 2 > buf.length) return INCOMPLETE;
      replyEnd = start + len + 2;
      return buf.toString('utf8', start, start + len);
    }
    case 0x2a: {
      // * array
      const n = readInt(buf, at + 1, end);
      if (n < 0) return null;
      if (depth >= MAX_DEPTH) return PROTOCOL_ERROR;
      const out: RespReply[] = new Array(n);
      let next = end + 2;
      for (let i = 0; i < n; i++) {
        if (next >= buf.length) return INCOMPLETE;
        const item = readReply(buf, next, depth + 1);
        if (item === INCOMPLETE || item === PROTOCOL_ERROR) return item;
        out[i] = item;
        next = replyEnd;
      }
      replyEnd = next;
      return out;
    }
    default:
      return PROTOCOL_ERROR;
  }
}

/** The decimal integer in buf[from, to) (an optional minus sign, then digits). */
function readInt(buf: Buffer, from: number, to: number): number {
  let i = from;
  let sign = 1;
  if (buf[i] === 0x2d) {
    sign = -1;
    i++;
  }
  let n = 0;
  for (; i < to; i++) n = n * 10 + (buf[i]! - 48);
  return sign * n;
}
