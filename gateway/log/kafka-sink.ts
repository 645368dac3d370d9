/**
 * The production prediction log: CloudEvents (cloud-event.ts) to a Kafka topic with @platformatic/kafka
 * (kafka-producer.ts, on a worker thread of its own: kafka-producer-thread.ts), batched, acks=all, idempotent,
 * uncompressed by default (README: why), with a local write-ahead log (write-ahead-log.ts) that holds every record
 * until Kafka acknowledges it.
 *
 * Life of a record:
 * - `write` serializes it into its Kafka message and appends that to the write-ahead log before returning (the
 *   pipeline calls it before the answer is sent): once a request is answered, its record survives a crash of the
 *   process. It never throws and never waits on the network. Do not change a record after writing it.
 * - Direct mode: the record is also held in memory and sent in batches of `batchSize`, or sooner when one has
 *   waited `lingerMs`, with at most `maxInFlight` sends outstanding. An acknowledged batch is marked in the log's
 *   acks file; a segment whose lines are all acknowledged is deleted.
 * - Spilling: when a send fails, a send waits `stallMs` without an acknowledgement (a hung broker), memory passes
 *   `maxBuffered` / `maxBufferedBytes`, the broker is not reached `stallMs` after start while records wait, or an
 *   earlier process left unacknowledged records, the sink drops what it holds in memory (it is in the log) and
 *   new records go to the log only. A replayer sends the log's unacknowledged lines oldest first, paced
 *   (`replayRecordsPerSecond`, one batch of `replayBatchSize` per event-loop turn, no JSON parsing), starting with one batch at a time;
 *   when it has caught up with the log's end and nothing is in flight, the sink returns to direct mode. Sends
 *   still in flight when the sink starts spilling are left to finish; the replayer starts after them.
 * - A record is lost only when its log append fails (disk full or broken) and then Kafka does not take it
 *   either: such records stay in memory (bounded by `maxBuffered`) and are counted in `stats().lost` when
 *   dropped; logged. Nothing is dropped silently.
 *
 * Delivery is at least once, and duplicates are bounded: the producer is idempotent (the client's retries are not
 * written twice), replay skips acknowledged lines, so a duplicate is a batch the broker took without the sink
 * hearing of it: batches in flight at a failure, a stall, a crash or a shutdown timeout (at most `maxInFlight`
 * direct batches and one replay window). Consumers dedupe on the CloudEvent id (the prediction id).
 * Order: write order, except among batches in flight together at a failure. One sink per `walDir`.
 */
import { EVENT_TAIL, recordEventHead } from './cloud-event.ts';
import type { PredictionSink, SinkStats } from './prediction-sink.ts';
import { recordToJson, type PredictionRecord } from './prediction-record.ts';
import { resolveKafkaSinkOptions } from './kafka-sink-options.ts';
import type { KafkaSinkOptions, ResolvedKafkaSinkOptions, SinkLogger } from './kafka-sink-options.ts';
import { createThreadedKafkaProducer } from './kafka-producer-thread.ts';
import type { KafkaProducer, KafkaProducerOptions } from './kafka-producer.ts';
import { WriteAheadLog } from './write-ahead-log.ts';
import type { WalSegment } from './write-ahead-log.ts';
import { WalReader } from './wal-reader.ts';
import type { ReplayBatch } from './wal-reader.ts';
import { walLineOf } from './wal-line.ts';
import { MicrotaskBatch } from './microtask-batch.ts';

export type { KafkaSinkOptions } from './kafka-sink-options.ts';

/** Returns at once: connecting, topic creation and replay of leftovers happen in the background. */
export function createKafkaSink(options: KafkaSinkOptions): KafkaSink {
  return new KafkaSink(options);
}

/** 'starting' until the first connect settles, 'direct' while Kafka takes records from memory, 'spilling' otherwise. */
export type KafkaSinkMode = 'starting' | 'direct' | 'spilling';

interface Entry {
  /** Write order, 0-based (flush waits by it). */
  readonly seq: number;
  /** The log line: key, tab, CloudEvent, newline (wal-line.ts); the message sent is a view into it. */
  readonly line: Buffer;
  /** Where the line is in the write-ahead log; undefined when the append failed (held in memory only). */
  readonly segment: WalSegment | undefined;
  readonly lineNo: number;
}

interface Batch {
  readonly entries: Entry[];
  /** Lowest `seq` of the batch. */
  readonly lo: number;
  /** Every entry is in the write-ahead log. */
  readonly durable: boolean;
  readonly sentAt: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref());
const nextTurn = (): Promise<void> => new Promise((r) => setImmediate(r));

export class KafkaSink implements PredictionSink {
  readonly kind = 'kafka';
  readonly #o: ResolvedKafkaSinkOptions;
  readonly #logger: SinkLogger;
  readonly #producer: KafkaProducer;
  readonly #wal: WriteAheadLog;
  #mode: KafkaSinkMode = 'starting';
  /**
   * When the Kafka client could start connecting (its thread loaded), undefined until then: "not reached after
   * start" counts from here.
   */
  #startedAt: number | undefined;
  /** Records held for direct sends, oldest at `#head`. */
  #queue: Entry[] = [];
  #head = 0;
  #queuedBytes = 0;
  readonly #inFlight = new Set<Batch>();
  /** Records whose log append failed while spilling: sent when the sink is direct again. */
  #memoryOnly: Entry[] = [];
  #accepted = 0;
  #delivered = 0;
  #spilled = 0;
  #lost = 0;
  /** Unacknowledged records an earlier process left in the log. */
  #leftover = 0;
  /** Records with a lower `seq` go now, whatever the batch fill (linger expired or flush). */
  #dueUntil = 0;
  #waiters: { target: number; resolve: () => void }[] = [];
  #timer: NodeJS.Timeout | undefined;
  readonly #watchdog: NodeJS.Timeout;
  #pumpScheduled = false;
  #ready: Promise<void> | undefined;
  readonly #loaded: Promise<void>;
  #replayer: Promise<void> | undefined;
  #stopping = false;
  /** Ends the replayer's current wait early (shutdown). */
  #wake: (() => void) | undefined;
  #closed = false;
  #shutdown: Promise<void> | undefined;
  #spillingSince = 0;
  #replayed = 0;
  #replayTokens = 0;
  #replayTokensAt = 0;
  /** Records written and not yet in the write-ahead log: appended together at the end of their run of microtasks. */
  readonly #unappended = new MicrotaskBatch<Pick<Entry, 'seq' | 'line'>>((written) => this.#append(written));

  constructor(options: KafkaSinkOptions) {
    this.#o = resolveKafkaSinkOptions(options);
    this.#logger = options.logger ?? console;
    const client: KafkaProducerOptions = {
      brokers: this.#o.brokers,
      topic: this.#o.topic,
      partitions: this.#o.partitions,
      compression: this.#o.compression,
      requestTimeoutMs: this.#o.requestTimeoutMs,
      retries: this.#o.retries,
      idempotent: this.#o.idempotent,
      clientId: options.clientId ?? 'sibyl-gateway',
    };
    this.#producer = this.#o.producerThread === 'worker' ? createThreadedKafkaProducer(client, { nice: this.#o.producerThreadNice }) : onLoopProducer(client);
    if (this.#producer.started === undefined) this.#startedAt = Date.now();
    else
      void this.#producer.started.then(() => {
        this.#startedAt = Date.now();
      });
    const dir = this.#o.walDir;
    this.#wal = new WriteAheadLog({
      dir,
      segmentBytes: this.#o.walSegmentBytes,
      syncMs: this.#o.walSyncMs,
      onFailing: (err) =>
        this.#logger.error(
          `prediction log: write-ahead log ${dir} failing; records are held in memory only until Kafka acknowledges them (a crash loses them, a full buffer drops them)`,
          err,
        ),
      onRecovered: () => this.#logger.warn(`prediction log: write-ahead log ${dir} writable again`),
      onError: (what, err) => this.#logger.warn(`prediction log: ${what}`, err),
    });
    this.#watchdog = setInterval(() => this.#checkStall(), Math.max(10, Math.min(250, this.#o.stallMs / 4))).unref();
    this.#loaded = this.#wal.load().then(
      ({ segments, pending }) => {
        this.#leftover = pending;
        if (pending > 0) this.#logger.warn(`prediction log: ${pending} unacknowledged record(s) in ${segments} write-ahead log segment(s) of an earlier process in ${dir}; replaying them first`);
      },
      (err: unknown) => this.#logger.error(`prediction log: write-ahead log ${dir} unreadable`, err),
    );
    if (this.#wal.hasLeftovers) this.#enterSpilling('an earlier process left records in the write-ahead log');
    void this.#connect();
  }

  /**
   * Serializes the record now and appends it to the write-ahead log with the others written in the same run of
   * microtasks (one write for all of them; the requests one coalesced model run answered reach here together): the
   * returned promise resolves once it is there, and the pipeline answers only then.
   */
  write(record: PredictionRecord): Promise<void> | undefined {
    const seq = this.#accepted++;
    if (this.#closed) {
      this.#lose(1, 'write after shutdown');
      return undefined;
    }
    let line: Buffer;
    try {
      line = walLineOf(record.requestId, recordEventHead(record, this.#o.cell), recordToJson(record), EVENT_TAIL);
    } catch (err) {
      this.#lose(1, `record ${record.predictionId} cannot be serialized`, err);
      return undefined;
    }
    return this.#unappended.add({ seq, line });
  }

  /** Appends records to the write-ahead log in one write and queues them for Kafka (or for replay while spilling). */
  #append(written: readonly Pick<Entry, 'seq' | 'line'>[]): void {
    const lines: Buffer[] = new Array(written.length);
    for (let i = 0; i < written.length; i++) lines[i] = written[i]!.line;
    const at = this.#wal.appendMany(lines);
    const spilling = this.#mode === 'spilling';
    let unlogged: Entry[] | undefined;
    for (let i = 0; i < written.length; i++) {
      const { seq, line } = written[i]!;
      const entry: Entry = { seq, line, segment: at[i]?.segment, lineNo: at[i]?.line ?? -1 };
      if (!spilling) {
        this.#queue.push(entry);
        this.#queuedBytes += line.length;
      } else if (entry.segment !== undefined) this.#spilled++;
      else (unlogged ??= []).push(entry);
    }
    if (unlogged) this.#holdInMemory(unlogged);
    if (spilling) return;
    if (this.#buffered() >= this.#o.batchSize || this.#overBound()) this.#schedulePump();
    else if (this.#timer === undefined && this.#mode === 'direct') this.#armTimer();
  }

  /**
   * Resolves when every record written before the call is acknowledged by Kafka, or is in the write-ahead log
   * while the sink is spilling. In direct mode that takes at most about `stallMs` more than the sends.
   */
  flush(): Promise<void> {
    this.#unappended.flush();
    const target = this.#accepted;
    if (this.#lowestUnsettled() >= target) return Promise.resolve();
    this.#dueUntil = Math.max(this.#dueUntil, target);
    const done = new Promise<void>((resolve) => this.#waiters.push({ target, resolve }));
    this.#schedulePump();
    return done;
  }

  shutdown(): Promise<void> {
    this.#shutdown ??= this.#close();
    return this.#shutdown;
  }

  stats(): SinkStats {
    return {
      accepted: this.#accepted,
      delivered: this.#delivered,
      spilled: this.#spilled,
      lost: this.#lost,
      pending: Math.max(0, this.#leftover + this.#accepted - this.#delivered - this.#lost),
    };
  }

  get mode(): KafkaSinkMode {
    return this.#mode;
  }

  /**
   * Resolves when the Kafka client can start connecting: at once with `producerThread: 'main'`, when its thread
   * has loaded otherwise. Stall budgets at start count from then.
   */
  get clientStarted(): Promise<void> {
    return this.#producer.started ?? Promise.resolve();
  }

  async #connect(): Promise<void> {
    try {
      await this.#ensureReady();
      if (this.#mode === 'starting') {
        this.#mode = 'direct';
        this.#schedulePump();
      }
    } catch (err) {
      this.#enterSpilling(`Kafka unreachable (${messageOf(err)})`);
    }
  }

  #ensureReady(): Promise<void> {
    this.#ready ??= this.#producer.ready().catch((err: unknown) => {
      this.#ready = undefined;
      throw err;
    });
    return this.#ready;
  }

  #schedulePump(): void {
    if (this.#pumpScheduled) return;
    this.#pumpScheduled = true;
    setImmediate(() => this.#pump());
  }

  #armTimer(): void {
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#dueUntil = Math.max(this.#dueUntil, this.#accepted);
      this.#pump();
    }, this.#o.lingerMs).unref();
  }

  /** Sends what is due (direct mode); spills when memory passes its bounds. */
  #pump(): void {
    this.#pumpScheduled = false;
    if (this.#mode === 'starting') {
      if (this.#overBound()) this.#enterSpilling('memory bound reached before Kafka was reached');
      return;
    }
    if (this.#mode !== 'direct') return;
    const { batchSize, maxInFlight } = this.#o;
    while (this.#inFlight.size < maxInFlight && this.#due(batchSize)) this.#send(this.#take(batchSize));
    if (this.#overBound()) {
      this.#enterSpilling('memory bound reached: Kafka too slow');
      return;
    }
    if (this.#buffered() > 0 && this.#timer === undefined) this.#armTimer();
  }

  #buffered(): number {
    return this.#queue.length - this.#head;
  }

  #overBound(): boolean {
    return this.#buffered() > this.#o.maxBuffered || this.#queuedBytes > this.#o.maxBufferedBytes;
  }

  #due(batchSize: number): boolean {
    const buffered = this.#buffered();
    return buffered > 0 && (buffered >= batchSize || this.#queue[this.#head]!.seq < this.#dueUntil);
  }

  #take(max: number): Entry[] {
    const entries = this.#queue.slice(this.#head, this.#head + max);
    this.#head += entries.length;
    for (const e of entries) this.#queuedBytes -= e.line.length;
    if (this.#head === this.#queue.length) {
      this.#queue = [];
      this.#head = 0;
    } else if (this.#head > 4096 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
    return entries;
  }

  #send(entries: Entry[]): void {
    const lines: Buffer[] = new Array(entries.length);
    let durable = true;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      lines[i] = e.line;
      if (e.segment === undefined) durable = false;
    }
    const batch: Batch = { entries, lo: entries[0]!.seq, durable, sentAt: Date.now() };
    this.#inFlight.add(batch);
    this.#producer.sendLines(lines).then(
      () => {
        this.#inFlight.delete(batch);
        this.#delivered += this.#ackEntries(entries);
        this.#settle();
        if (this.#mode === 'direct') this.#schedulePump();
      },
      (err: unknown) => {
        this.#inFlight.delete(batch);
        this.#ready = undefined;
        // Records in the log are replayed from it; the others wait in memory.
        const inMemory = entries.filter((e) => e.segment === undefined);
        this.#spilled += entries.length - inMemory.length;
        if (inMemory.length > 0) this.#holdInMemory(inMemory);
        this.#enterSpilling(`Kafka send failed (${messageOf(err)})`);
        this.#settle();
      },
    );
  }

  /** Marks acknowledged records in the log; returns how many were not acknowledged before. */
  #ackEntries(entries: readonly Entry[]): number {
    let count = 0;
    for (let i = 0; i < entries.length; ) {
      const first = entries[i]!;
      if (first.segment === undefined) {
        count++;
        i++;
        continue;
      }
      // A run of consecutive lines of one segment is one acks line.
      let j = i + 1;
      while (j < entries.length && entries[j]!.segment === first.segment && entries[j]!.lineNo === first.lineNo + (j - i)) j++;
      count += this.#wal.ack(first.segment, first.lineNo, first.lineNo + (j - i));
      i = j;
    }
    return count;
  }

  #checkStall(): void {
    const now = Date.now();
    if (this.#mode === 'direct') {
      let oldest = now;
      for (const b of this.#inFlight) oldest = Math.min(oldest, b.sentAt);
      if (now - oldest >= this.#o.stallMs) this.#enterSpilling(`no acknowledgement from Kafka for ${now - oldest} ms`);
    } else if (this.#mode === 'starting' && this.#startedAt !== undefined && this.#buffered() > 0 && now - this.#startedAt >= this.#o.stallMs) {
      this.#enterSpilling(`Kafka not reached ${now - this.#startedAt} ms after start`);
    }
  }

  /** Stops holding records for direct sends (they are in the log) and starts the replayer. Logged once. */
  #enterSpilling(why: string): void {
    if (this.#mode === 'spilling') return;
    this.#mode = 'spilling';
    this.#spillingSince = Date.now();
    this.#replayed = 0;
    const held = this.#queue.slice(this.#head);
    this.#queue = [];
    this.#head = 0;
    this.#queuedBytes = 0;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const inMemory = held.filter((e) => e.segment === undefined);
    this.#spilled += held.length - inMemory.length;
    if (inMemory.length > 0) this.#holdInMemory(inMemory);
    this.#logger.warn(
      `prediction log: ${why}; records go to the write-ahead log ${this.#o.walDir} only and are sent from it, oldest first, once Kafka acknowledges again`,
    );
    this.#settle();
    if (this.#closed) return;
    this.#replayer ??= this.#replay().finally(() => {
      this.#replayer = undefined;
    });
  }

  /** Records that are in no log file: kept (in write order) up to `maxBuffered`, the rest is lost. */
  #holdInMemory(entries: Entry[]): void {
    const room = Math.max(0, this.#o.maxBuffered - this.#memoryOnly.length);
    if (entries.length > room) this.#lose(entries.length - room, 'write-ahead log failing and Kafka unavailable: memory bound reached');
    this.#memoryOnly.push(...entries.slice(0, room));
    this.#memoryOnly.sort((a, b) => a.seq - b.seq);
  }

  /** The replayer: while spilling, sends the log's unacknowledged lines until it has caught up. */
  async #replay(): Promise<void> {
    let backoff = this.#o.retryBackoffMs;
    await this.#loaded;
    while (!this.#stopping && this.#mode === 'spilling') {
      try {
        // Direct sends still in flight may yet be acknowledged: their lines are not replayed while they are.
        while (this.#inFlight.size > 0 && !this.#stopping) await this.#pause(20);
        if (this.#stopping) break;
        await this.#ensureReady();
        if (await this.#replayPass()) return;
        backoff = this.#o.retryBackoffMs;
      } catch {
        this.#ready = undefined;
        await this.#pause(backoff);
        backoff = Math.min(backoff * 2, 10_000);
      }
    }
  }

  /**
   * One pass over the log from its oldest segment. Returns true when it caught up (the sink is then direct
   * again), false when stopped; throws the first failed send. The first batch goes alone: a broker that is still
   * away costs one batch, not a window of them.
   */
  async #replayPass(): Promise<boolean> {
    const reader = new WalReader(this.#wal, {
      unreadable: (segment, line) => {
        this.#wal.ack(segment, line, line + 1);
        this.#lose(1, `unreadable line ${line} in ${segment.name}`);
      },
    });
    const outstanding = new Set<Promise<void>>();
    let window = 1;
    let failure: unknown;
    let ended = false;
    try {
      while (!this.#stopping) {
        while (failure === undefined && !ended && outstanding.size < window && !this.#stopping) {
          await this.#paceReplay();
          const batch = await reader.next(this.#o.replayBatchSize);
          if (batch === undefined) {
            ended = true;
            break;
          }
          this.#charge(batch.lines.length);
          const sent: Promise<void> = this.#producer
            .send(batch.messages)
            .then(
              () => {
                this.#ackReplayed(batch);
                window = this.#o.maxInFlight;
              },
              (err: unknown) => {
                failure ??= err ?? new Error('send failed');
              },
            )
            .finally(() => outstanding.delete(sent));
          outstanding.add(sent);
        }
        if (outstanding.size > 0) {
          await Promise.race(outstanding);
          continue;
        }
        if (failure !== undefined) throw failure;
        if (this.#stopping) break;
        if (ended) {
          // Checked synchronously: no record can be written between this test and the switch.
          if (reader.atEnd && this.#inFlight.size === 0) {
            this.#backToDirect();
            return true;
          }
          ended = false;
        }
      }
      return false;
    } finally {
      await reader.close();
    }
  }

  #ackReplayed(batch: ReplayBatch): void {
    const { segment, lines } = batch;
    let count = 0;
    for (let i = 0; i < lines.length; ) {
      let j = i + 1;
      while (j < lines.length && lines[j] === lines[i]! + (j - i)) j++;
      count += this.#wal.ack(segment, lines[i]!, lines[i]! + (j - i));
      i = j;
    }
    this.#delivered += count;
    this.#replayed += count;
    this.#settle();
  }

  /**
   * One batch per event-loop turn, and at most `replayRecordsPerSecond` records a second: a token bucket of one
   * replay batch, charged with what was read (`#charge`), that must not be in debt before the next read.
   */
  async #paceReplay(): Promise<void> {
    await nextTurn();
    const rate = this.#o.replayRecordsPerSecond;
    const now = performance.now();
    this.#replayTokens = Math.min(this.#o.replayBatchSize, this.#replayTokens + ((now - this.#replayTokensAt) * rate) / 1000);
    this.#replayTokensAt = now;
    if (this.#replayTokens < 0) await this.#pause((-this.#replayTokens * 1000) / rate);
  }

  #charge(records: number): void {
    this.#replayTokens -= records;
  }

  #backToDirect(): void {
    this.#mode = 'direct';
    const secs = ((Date.now() - this.#spillingSince) / 1000).toFixed(1);
    const msg = `prediction log: Kafka acknowledges again; sending directly after ${secs} s, ${this.#replayed} record(s) replayed from the write-ahead log`;
    if (this.#logger.info) this.#logger.info(msg);
    else this.#logger.warn(msg);
    if (this.#memoryOnly.length > 0) {
      for (const e of this.#memoryOnly) this.#queuedBytes += e.line.length;
      this.#queue = this.#memoryOnly;
      this.#head = 0;
      this.#memoryOnly = [];
    }
    this.#schedulePump();
  }

  #pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms).unref();
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /** Lowest `seq` not yet acknowledged, nor in the log while spilling. */
  #lowestUnsettled(): number {
    let low = this.#unappended.first()?.seq ?? this.#accepted;
    if (this.#head < this.#queue.length) low = Math.min(low, this.#queue[this.#head]!.seq);
    for (const b of this.#inFlight) if (b.lo < low && (this.#mode !== 'spilling' || !b.durable)) low = b.lo;
    const m = this.#memoryOnly[0];
    if (m !== undefined && m.seq < low) low = m.seq;
    return low;
  }

  #settle(): void {
    if (this.#waiters.length === 0) return;
    const low = this.#lowestUnsettled();
    this.#waiters = this.#waiters.filter((w) => (w.target <= low ? (w.resolve(), false) : true));
  }

  #lose(count: number, why: string, err?: unknown): void {
    this.#lost += count;
    this.#logger.error(`prediction log: LOST ${count} record(s): ${why}`, err);
    this.#settle();
  }

  async #close(): Promise<void> {
    this.#closed = true;
    const flushed = this.flush();
    await Promise.race([flushed, sleep(this.#o.shutdownTimeoutMs)]);
    this.#stopping = true;
    this.#wake?.();
    clearTimeout(this.#timer);
    clearInterval(this.#watchdog);
    // Sends still in flight may yet be acknowledged (then they are not replayed by the next process); they are
    // in the log either way, so the wait is short.
    const grace = sleep(Math.min(this.#o.stallMs, this.#o.shutdownTimeoutMs));
    await Promise.race([
      (async () => {
        while (this.#inFlight.size > 0) await sleep(10);
        await this.#replayer;
      })(),
      grace,
    ]);
    const unlogged = this.#queue.slice(this.#head).filter((e) => e.segment === undefined).length + this.#memoryOnly.length;
    if (unlogged > 0) this.#lose(unlogged, 'shutdown with records neither in the write-ahead log nor acknowledged');
    this.#memoryOnly = [];
    await this.#wal.close().catch((err: unknown) => this.#logger.error('prediction log: write-ahead log close failed', err));
    await this.#producer.close();
    // Waiters of records that stay in the log for the next start.
    for (const w of this.#waiters) w.resolve();
    this.#waiters = [];
  }
}

/**
 * The client on the event loop (`producerThread: 'main'`), its module imported on first use: with the default
 * thread, this thread never loads the client (~0.6 s of CPU and tens of MB it would otherwise pay twice).
 */
function onLoopProducer(options: KafkaProducerOptions): KafkaProducer {
  const loading = import('./kafka-producer.ts').then((m) => m.createKafkaProducer(options));
  return {
    started: loading.then(
      () => undefined,
      () => undefined,
    ),
    ready: () => loading.then((p) => p.ready()),
    send: (messages) => loading.then((p) => p.send(messages)),
    sendLines: (lines) => loading.then((p) => p.sendLines(lines)),
    close: () => loading.then(
      (p) => p.close(),
      () => undefined,
    ),
  };
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
