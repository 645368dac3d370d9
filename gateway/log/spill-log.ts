/**
 * The Kafka sink's local spill log: an append-only queue of JSON lines on disk, in segment files
 * `spill-<16-digit sequence>.jsonl` in one directory, read back oldest first. One process per directory.
 *
 * - `append` writes a chunk of lines to the active segment and, with `fsync: 'always'` (the default),
 *   fdatasyncs it before resolving: a resolved append survives a process crash and a power loss. With
 *   `fsync: 'never'` it survives a process crash only. Appends are serialized in call order.
 * - A reader takes sealed segments only (`nextSegment` seals the active one when nothing else is left), reads
 *   it from its cursor, records progress with `ack` (a small `cursor` file, not fsynced: after a crash at most
 *   the lines acknowledged since the last cursor write are replayed again) and `remove`s it when done.
 * - Leftover segments from an earlier process are found by `open` and come first.
 */
import { mkdir, open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';

export type SpillFsync = 'always' | 'never';

export interface SpillLogOptions {
  dir: string;
  /** Start a new segment past this size, bytes. Default 16 MiB. */
  segmentBytes?: number;
  /** Default 'always'. */
  fsync?: SpillFsync;
}

export interface SpillSegment {
  readonly name: string;
  /** Lines not yet acknowledged, oldest first. */
  readonly lines: string[];
  /** Index in the file of `lines[0]`. */
  readonly firstLine: number;
}

const SEGMENT = /^spill-(\d{16})\.jsonl$/;

export class SpillLog {
  readonly dir: string;
  readonly #segmentBytes: number;
  readonly #fsync: SpillFsync;
  #sealed: string[] = [];
  #active: FileHandle | undefined;
  #activeName = '';
  #activeBytes = 0;
  #nextSeq = 0;
  /** The tail of the serialized chain of appends and seals. */
  #chain: Promise<unknown> = Promise.resolve();
  #queued = 0;
  #cursor: { segment: string; line: number } | undefined;

  constructor(options: SpillLogOptions) {
    this.dir = options.dir;
    this.#segmentBytes = options.segmentBytes ?? 16 * 1024 * 1024;
    this.#fsync = options.fsync ?? 'always';
  }

  /** Creates the directory, finds leftover segments; returns how many unacknowledged lines they hold. */
  async open(): Promise<number> {
    await mkdir(this.dir, { recursive: true });
    const names = (await readdir(this.dir)).filter((n) => SEGMENT.test(n)).sort();
    this.#sealed = names;
    const last = names.at(-1);
    this.#nextSeq = last === undefined ? 0 : Number(SEGMENT.exec(last)?.[1]) + 1;
    try {
      const cursor = JSON.parse(await readFile(join(this.dir, 'cursor'), 'utf8')) as { segment: string; line: number };
      if (names.includes(cursor.segment)) this.#cursor = cursor;
    } catch {
      // No cursor: every leftover line is unacknowledged.
    }
    let lines = 0;
    for (const name of names) lines += (await this.#readLines(name)).length;
    return lines - (this.#cursor?.line ?? 0);
  }

  /** True when nothing is on disk or on its way there. */
  get empty(): boolean {
    return this.#queued === 0 && this.#sealed.length === 0 && this.#activeBytes === 0;
  }

  /** Appends lines (without newlines) in call order. Rejects when the disk write fails; the lines are not kept. */
  append(lines: readonly string[]): Promise<void> {
    const bytes = Buffer.from(lines.join('\n') + '\n');
    this.#queued++;
    const done = this.#chain.then(async () => {
      try {
        await this.#appendNow(bytes);
      } finally {
        this.#queued--;
      }
    });
    this.#chain = done.catch(() => {});
    return done;
  }

  /**
   * The oldest segment with unacknowledged lines, sealing the active segment when it is the only one left
   * (after the appends queued before this call). Undefined when the log is empty.
   */
  async nextSegment(): Promise<SpillSegment | undefined> {
    if (this.#sealed.length === 0) {
      const sealing = this.#chain.then(() => this.#seal());
      this.#chain = sealing.catch(() => {});
      await sealing;
    }
    const name = this.#sealed[0];
    if (name === undefined) return undefined;
    const all = await this.#readLines(name);
    const firstLine = this.#cursor?.segment === name ? this.#cursor.line : 0;
    return { name, lines: all.slice(firstLine), firstLine };
  }

  /** Records that the lines of `segment` before index `line` (in the file) were delivered. */
  async ack(segment: string, line: number): Promise<void> {
    this.#cursor = { segment, line };
    await writeFile(join(this.dir, 'cursor'), JSON.stringify(this.#cursor));
  }

  /** Deletes a fully delivered segment. */
  async remove(segment: string): Promise<void> {
    await rm(join(this.dir, segment), { force: true });
    this.#sealed = this.#sealed.filter((n) => n !== segment);
    if (this.#cursor?.segment === segment) {
      this.#cursor = undefined;
      await rm(join(this.dir, 'cursor'), { force: true });
    }
  }

  /** Waits for queued appends and closes the active segment (it stays on disk for the next `open`). */
  async close(): Promise<void> {
    const closing = this.#chain.then(() => this.#seal());
    this.#chain = closing.catch(() => {});
    await closing;
  }

  async #appendNow(bytes: Buffer): Promise<void> {
    if (this.#active !== undefined && this.#activeBytes > 0 && this.#activeBytes + bytes.length > this.#segmentBytes) {
      await this.#seal();
    }
    if (this.#active === undefined) {
      this.#activeName = `spill-${String(this.#nextSeq++).padStart(16, '0')}.jsonl`;
      this.#active = await open(join(this.dir, this.#activeName), 'a');
      this.#activeBytes = 0;
    }
    try {
      await this.#active.write(bytes);
      if (this.#fsync === 'always') await this.#active.datasync();
      this.#activeBytes += bytes.length;
    } catch (err) {
      // The segment may now end in a partial line: seal it (readers skip a line without its newline).
      await this.#seal().catch(() => {});
      throw err;
    }
  }

  async #seal(): Promise<void> {
    const file = this.#active;
    if (file === undefined) return;
    this.#active = undefined;
    this.#activeBytes = 0;
    await file.close();
    this.#sealed.push(this.#activeName);
  }

  async #readLines(name: string): Promise<string[]> {
    const text = await readFile(join(this.dir, name), 'utf8');
    const lines = text.split('\n');
    // The last element is '' after a complete file, or a partial line cut by a crash or a failed write: dropped.
    lines.pop();
    return lines;
  }
}
