/**
 * The production prediction log: CloudEvents (cloud-event.ts) to a Kafka topic with @platformatic/kafka
 * (kafka-producer.ts), batched, acks=all, uncompressed by default (README: why), spilling to a local
 * append-only log (spill-log.ts) while Kafka is unreachable or slow.
 *
 * Life of a record:
 * - `write` pushes it to an in-memory buffer (O(1), never throws, never waits). Ownership passes to the sink:
 *   do not change a record after writing it.
 * - Direct mode: the buffer is sent in batches of `batchSize`, or sooner when a record has waited `lingerMs`,
 *   with at most `maxInFlight` sends outstanding. A batch stays owned by the sink until the broker acks it.
 * - A send that fails (after the client's bounded retries), a buffer past `maxBuffered`, or a broker that cannot
 *   be reached at start turns on spill mode: failed batches (in write order, once the sends in flight have
 *   settled) and from then on every new record go to the spill log. A background drainer replays the spill log
 *   oldest first; when it has caught up, the sink returns to direct mode. Newer records never overtake spilled
 *   ones, except batches that were in flight together at the moment of a failure.
 * - Spill files left by an earlier process are replayed first, before anything this process writes.
 * - A record is lost only when its spill append fails (disk full or broken): counted in `stats().lost` and
 *   logged with logger.error.
 *
 * Delivery is at least once: a batch whose ack was lost in a failure is sent again (from the spill log), and a
 * crash while replaying resends the lines acknowledged since the last spill cursor write. Consumers dedupe on
 * the CloudEvent id (the prediction id). One sink per `spillDir`.
 */
import { predictionMessage } from './cloud-event.ts';
import { recordToJson } from './prediction-record.ts';
import type { PredictionMessage } from './cloud-event.ts';
import type { PredictionSink, SinkStats } from './prediction-sink.ts';
import { SpillLog } from './spill-log.ts';
import { replaySegment } from './spill-replay.ts';
import type { SpillSegment } from './spill-log.ts';
import { resolveKafkaSinkOptions } from './kafka-sink-options.ts';
import { createKafkaProducer } from './kafka-producer.ts';
import type { KafkaProducer } from './kafka-producer.ts';
import type { KafkaSinkOptions, ResolvedKafkaSinkOptions } from './kafka-sink-options.ts';

export type { KafkaSinkOptions } from './kafka-sink-options.ts';
import type { PredictionRecord } from './prediction-record.ts';

/** Returns at once: connecting, topic creation and leftover replay happen in the background. */
export function createKafkaSink(options: KafkaSinkOptions): KafkaSink {
  return new KafkaSink(options);
}

interface Batch {
  /** Sequence number (0-based write order) of the batch's first record. */
  lo: number;
  count: number;
  messages: PredictionMessage[];
  /** The records' JSON (the spill-log line form), kept to spill the batch if its send fails. */
  lines: string[];
  /** A Kafka send is outstanding. */
  sending: boolean;
  /** Given up on at shutdown (spilled); its send's outcome is ignored. */
  abandoned: boolean;
}

/** 'starting' until the first connect settles, 'direct' while Kafka takes records, 'spilling' otherwise. */
export type KafkaSinkMode = 'starting' | 'direct' | 'spilling';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref());

export class KafkaSink implements PredictionSink {
  readonly kind = 'kafka';
  readonly #o: ResolvedKafkaSinkOptions;
  readonly #logger: Pick<Console, 'warn' | 'error'>;
  readonly #producer: KafkaProducer;
  readonly #spill: SpillLog;
  #mode: KafkaSinkMode = 'starting';
  #buffer: PredictionRecord[] = [];
  #head = 0;
  #accepted = 0;
  #delivered = 0;
  #spilled = 0;
  #lost = 0;
  /** Spilled records not yet delivered. */
  #onDisk = 0;
  /** Records with a lower sequence number go now, whatever the batch fill (linger expired or flush). */
  #dueUntil = 0;
  #unsettled = new Set<Batch>();
  #directInFlight = 0;
  #failed: Batch[] = [];
  #waiters: { target: number; resolve: () => void }[] = [];
  #timer: NodeJS.Timeout | undefined;
  #pumpScheduled = false;
  #ready: Promise<void> | undefined;
  #drainer: Promise<void> | undefined;
  #stopDrain = false;
  /** Ends the drainer's current wait early (shutdown). */
  #wakeDrainer: (() => void) | undefined;
  #closed = false;
  #shutdown: Promise<void> | undefined;
  #outageStart = 0;
  #lastDrainLog = 0;

  constructor(options: KafkaSinkOptions) {
    this.#o = resolveKafkaSinkOptions(options);
    this.#logger = options.logger ?? console;
    this.#producer = createKafkaProducer({
      brokers: this.#o.brokers,
      topic: this.#o.topic,
      partitions: this.#o.partitions,
      compression: this.#o.compression,
      requestTimeoutMs: this.#o.requestTimeoutMs,
      retries: this.#o.retries,
      clientId: options.clientId ?? 'sibyl-gateway',
    });
    this.#spill = new SpillLog({
      dir: this.#o.spillDir,
      segmentBytes: this.#o.spillSegmentBytes,
      fsync: this.#o.spillFsync,
    });
    void this.#start();
  }

  write(record: PredictionRecord): void {
    this.#accepted++;
    if (this.#closed) {
      this.#lose(1, 'write after shutdown');
      return;
    }
    this.#buffer.push(record);
    const buffered = this.#buffer.length - this.#head;
    if (buffered >= this.#o.batchSize || buffered > this.#o.maxBuffered) this.#schedulePump();
    else if (this.#timer === undefined && this.#mode !== 'starting') this.#armTimer();
  }

  flush(): Promise<void> {
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
    let batched = 0;
    for (const b of this.#unsettled) batched += b.count;
    return {
      accepted: this.#accepted,
      delivered: this.#delivered,
      spilled: this.#spilled,
      lost: this.#lost,
      pending: this.#buffer.length - this.#head + batched + this.#onDisk,
    };
  }

  get mode(): KafkaSinkMode {
    return this.#mode;
  }

  async #start(): Promise<void> {
    try {
      this.#onDisk = await this.#spill.open();
    } catch (err) {
      this.#logger.error(`prediction log: spill directory ${this.#o.spillDir} unusable`, err);
    }
    if (this.#onDisk > 0) {
      this.#logger.warn(`prediction log: replaying ${this.#onDisk} spilled record(s) from ${this.#o.spillDir}`);
      this.#enterSpilling();
    } else {
      try {
        await this.#ensureReady();
        if (this.#mode === 'starting') this.#mode = 'direct';
      } catch (err) {
        this.#enterSpilling(err);
      }
    }
    this.#schedulePump();
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

  /** Moves buffered records to Kafka (direct) or to the spill log (spilling), as batch fill and timers allow. */
  #pump(): void {
    this.#pumpScheduled = false;
    const { batchSize, maxBuffered, maxInFlight } = this.#o;
    if (this.#mode === 'starting') {
      if (this.#buffered() > maxBuffered) this.#enterSpilling('memory buffer full while connecting');
      else return;
    }
    if (this.#mode === 'direct') {
      while (this.#directInFlight < maxInFlight && this.#due(batchSize)) {
        this.#send(this.#take(batchSize));
      }
      if (this.#buffered() > maxBuffered) this.#enterSpilling('memory buffer full: Kafka too slow');
    }
    if (this.#mode === 'spilling') {
      // Sends still in flight may fail and must be spilled before newer records: hold those unless memory is short.
      const holding = (this.#directInFlight > 0 || this.#failed.length > 0) && this.#buffered() <= maxBuffered;
      while (!holding && this.#due(batchSize)) this.#spillRecords(this.#take(batchSize * 8));
    }
    if (this.#buffered() > 0 && this.#timer === undefined) this.#armTimer();
  }

  #buffered(): number {
    return this.#buffer.length - this.#head;
  }

  #due(batchSize: number): boolean {
    const buffered = this.#buffered();
    return buffered > 0 && (buffered >= batchSize || this.#accepted - buffered < this.#dueUntil);
  }

  #take(max: number): { lo: number; records: PredictionRecord[] } {
    const lo = this.#accepted - this.#buffered();
    const records = this.#buffer.slice(this.#head, this.#head + max);
    this.#head += records.length;
    if (this.#head === this.#buffer.length) {
      this.#buffer = [];
      this.#head = 0;
    } else if (this.#head > 4096 && this.#head * 2 > this.#buffer.length) {
      this.#buffer = this.#buffer.slice(this.#head);
      this.#head = 0;
    }
    return { lo, records };
  }

  #send({ lo, records }: { lo: number; records: PredictionRecord[] }): void {
    const messages: PredictionMessage[] = [];
    const lines: string[] = [];
    for (const record of records) {
      try {
        const json = recordToJson(record);
        messages.push(predictionMessage(record, this.#o.cell, json));
        lines.push(json);
      } catch (err) {
        this.#lose(1, `record ${record.predictionId} cannot be serialized`, err);
      }
    }
    const batch: Batch = { lo, count: messages.length, messages, lines, sending: true, abandoned: false };
    this.#unsettled.add(batch);
    this.#directInFlight++;
    this.#producer
      .send(messages)
      .then(
        () => {
          if (batch.abandoned) return;
          batch.sending = false;
          this.#directInFlight--;
          this.#unsettled.delete(batch);
          this.#delivered += batch.count;
          this.#settle();
          this.#schedulePump();
        },
        (err: unknown) => {
          if (batch.abandoned) return;
          batch.sending = false;
          this.#directInFlight--;
          this.#failed.push(batch);
          this.#ready = undefined;
          this.#enterSpilling(err);
          if (this.#directInFlight === 0) this.#spillFailed();
        },
      );
  }

  /** Spills the failed direct batches in write order (called once no direct send is in flight). */
  #spillFailed(): void {
    const failed = this.#failed.sort((a, b) => a.lo - b.lo);
    this.#failed = [];
    // The spill log holds record JSON (not the event around it), like every other spill line.
    for (const batch of failed) this.#spillLines(batch, batch.lines);
    this.#schedulePump();
  }

  #spillRecords({ lo, records }: { lo: number; records: PredictionRecord[] }): void {
    const lines: string[] = [];
    for (const record of records) {
      try {
        lines.push(recordToJson(record));
      } catch (err) {
        this.#lose(1, `record ${record.predictionId} cannot be serialized`, err);
      }
    }
    this.#spillLines({ lo, count: lines.length, messages: [], lines, sending: false, abandoned: false }, lines);
  }

  #spillLines(batch: Batch, lines: string[]): void {
    this.#unsettled.add(batch);
    this.#spill.append(lines).then(
      () => {
        this.#unsettled.delete(batch);
        this.#spilled += lines.length;
        this.#onDisk += lines.length;
        this.#settle();
      },
      (err: unknown) => {
        this.#unsettled.delete(batch);
        this.#lose(lines.length, `spill append to ${this.#o.spillDir} failed`, err);
      },
    );
  }

  #enterSpilling(cause?: unknown): void {
    if (this.#mode === 'spilling') return;
    this.#mode = 'spilling';
    this.#outageStart = Date.now();
    const why = cause instanceof Error ? cause.message : String(cause ?? 'leftover spill files');
    this.#logger.warn(`prediction log: Kafka unavailable (${why}); spilling to ${this.#o.spillDir}`);
    this.#drainer ??= this.#drain().finally(() => {
      this.#drainer = undefined;
    });
  }

  /** Replays the spill log while in spill mode; returns to direct mode once nothing older than the buffer is left. */
  async #drain(): Promise<void> {
    let backoff = this.#o.retryBackoffMs;
    let replayed = 0;
    while (!this.#stopDrain && this.#mode === 'spilling') {
      try {
        await this.#ensureReady();
        const segment = await this.#spill.nextSegment();
        if (segment === undefined) {
          if (this.#spill.empty && this.#directInFlight === 0 && this.#failed.length === 0 && !this.#stopDrain) {
            this.#mode = 'direct';
            const secs = ((Date.now() - this.#outageStart) / 1000).toFixed(1);
            this.#logger.warn(`prediction log: Kafka back; ${replayed} spilled record(s) replayed, ${secs} s in spill mode`);
            this.#schedulePump();
            return;
          }
          await this.#pause(Math.min(this.#o.lingerMs, 50));
          continue;
        }
        replayed += await this.#replay(segment);
        backoff = this.#o.retryBackoffMs;
      } catch (err) {
        this.#ready = undefined;
        if (Date.now() - this.#lastDrainLog > 30_000) {
          this.#lastDrainLog = Date.now();
          this.#logger.warn(`prediction log: Kafka still unavailable, ${this.#onDisk} record(s) spilled`, err);
        }
        await this.#pause(backoff);
        backoff = Math.min(backoff * 2, 10_000);
      }
    }
  }

  #pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms).unref();
      this.#wakeDrainer = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /** Sends one spill segment in order; throws at the first failed batch. Returns the records sent. */
  #replay(segment: SpillSegment): Promise<number> {
    const { batchSize, maxInFlight, cell } = this.#o;
    return replaySegment(this.#spill, segment, {
      batchSize,
      maxInFlight,
      fallbackCell: cell,
      send: (messages) => this.#producer.send(messages),
      stopped: () => this.#stopDrain,
      delivered: (count) => {
        this.#delivered += count;
        this.#onDisk -= count;
      },
      unreadable: (err) => {
        this.#onDisk--;
        this.#lose(1, `unreadable line in ${segment.name}`, err);
      },
    });
  }

  #lowestUnsettled(): number {
    let low = this.#accepted - this.#buffered();
    for (const b of this.#unsettled) if (b.lo < low) low = b.lo;
    return low;
  }

  #settle(): void {
    if (this.#waiters.length === 0) return;
    const low = this.#lowestUnsettled();
    this.#waiters = this.#waiters.filter((w) => (w.target <= low ? (w.resolve(), false) : true));
  }

  #lose(count: number, why: string, err?: unknown): void {
    this.#lost += count;
    this.#logger.error(`prediction log: LOST ${count} record(s): ${why}`, err ?? '');
    this.#settle();
  }

  async #close(): Promise<void> {
    this.#closed = true;
    const flushed = this.flush();
    const timedOut = await Promise.race([
      flushed.then(() => false),
      sleep(this.#o.shutdownTimeoutMs).then(() => true),
    ]);
    if (timedOut) {
      // Sends still unanswered go to the spill log (they may also arrive: duplicates, never losses).
      this.#enterSpilling('shutdown timeout');
      for (const batch of this.#unsettled) {
        if (!batch.sending) continue;
        batch.sending = false;
        batch.abandoned = true;
        this.#directInFlight--;
        this.#failed.push(batch);
      }
      if (this.#directInFlight === 0) this.#spillFailed();
      this.#pump();
      await flushed;
    }
    this.#stopDrain = true;
    this.#wakeDrainer?.();
    clearTimeout(this.#timer);
    if (this.#drainer !== undefined) await Promise.race([this.#drainer, sleep(this.#o.shutdownTimeoutMs)]);
    await this.#spill.close().catch((err: unknown) => this.#logger.error('prediction log: spill close failed', err));
    await this.#producer.close();
  }
}
