/**
 * Write-ahead logs no process owns any more, handed to one that does. A single-process gateway keeps its Kafka
 * write-ahead log in `<base>` (`SIBYL_DATA_DIR/wal/<cell>`), a gateway with N workers one per worker in `<base>/<i>`
 * (ARCHITECTURE.md, "Workers"). A worker the supervisor restarts finds its own directory again and sends what is
 * left there; but when the number of workers changes (or a gateway moves from one process to several, or back),
 * some directories have no owner, and their unacknowledged records would wait there for ever.
 *
 * So at start, before any worker opens its log, the segments (`wal-<n>.log` and its `wal-<n>.acks`) of every
 * directory without an owner are moved into an owner's directory: `<base>/<j>` to owner `j mod N`, `<base>` itself
 * to owner 0. They are renamed to numbers after the owner's own, in their order, so the owner reads them as leftovers
 * of an earlier process of its own (gateway/log/write-ahead-log.ts) and sends them, oldest first within each
 * directory. Renames within one file system: nothing is copied.
 *
 * Crash safety: a segment's `.log` is moved before its `.acks`. A crash between the two leaves the log without its
 * acknowledgements (its lines are sent again: duplicates, never a loss, as delivery is at least once anyway) and an
 * `.acks` without a log in the old directory, which the next adoption deletes. An `.acks` never lands beside a log
 * it does not belong to.
 */
import { mkdirSync, readdirSync, renameSync, rmdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseWalFileName, walFileName } from '../log/write-ahead-log.ts';

export interface Adopted {
  /** The directory the segments came from. */
  readonly from: string;
  readonly into: string;
  readonly segments: number;
}

/**
 * Moves the segments of every write-ahead log under `base` that is not in `owners` (each `base` or `base/<i>`) into
 * one of `owners`; returns what it moved. Call while no process writes under `base`. Throws when a rename fails.
 */
export function adoptOrphanLogs(base: string, owners: readonly string[]): Adopted[] {
  if (owners.length === 0) throw new Error('adoptOrphanLogs: no owner');
  const owned = new Set(owners);
  const sources: { dir: string; owner: string }[] = [];
  if (!owned.has(base)) sources.push({ dir: base, owner: owners[0]! });
  for (const name of subdirectories(base)) {
    if (!/^\d+$/.test(name)) continue;
    const dir = join(base, name);
    if (!owned.has(dir)) sources.push({ dir, owner: owners[Number(name) % owners.length]! });
  }
  const adopted: Adopted[] = [];
  for (const { dir, owner } of sources) {
    const files = walFiles(dir);
    const logs = files.filter((f) => f.ext === 'log').sort((a, b) => a.no - b.no);
    const logNumbers = new Set(logs.map((f) => f.no));
    // Acknowledgements whose log is gone (deleted, or moved by an adoption that crashed half way) belong to nothing.
    for (const f of files) if (f.ext === 'acks' && !logNumbers.has(f.no)) rmSync(join(dir, walFileName(f.no, 'acks')), { force: true });
    if (logs.length > 0) {
      let next = nextNumber(owner);
      for (const f of logs) {
        renameSync(join(dir, walFileName(f.no, 'log')), join(owner, walFileName(next, 'log')));
        if (files.some((a) => a.ext === 'acks' && a.no === f.no)) renameSync(join(dir, walFileName(f.no, 'acks')), join(owner, walFileName(next, 'acks')));
        next++;
      }
      adopted.push({ from: dir, into: owner, segments: logs.length });
    }
    // An emptied worker directory goes; `base` stays (it holds the others).
    if (dir !== base) {
      try {
        rmdirSync(dir);
      } catch {
        // not empty (files of something else) or gone
      }
    }
  }
  return adopted;
}

function subdirectories(dir: string): string[] {
  try {
    return readdirSync(dir).filter((n) => statSync(join(dir, n)).isDirectory());
  } catch {
    return [];
  }
}

function walFiles(dir: string): { no: number; ext: 'log' | 'acks' }[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names.map(parseWalFileName).filter((f) => f !== undefined);
}

/** After every segment number already used in `dir` (logs and acknowledgements alike); creates `dir` if needed. */
function nextNumber(dir: string): number {
  const used = walFiles(dir).map((f) => f.no);
  if (used.length === 0) {
    // The owner has not run yet: its directory may not exist.
    mkdirSync(dir, { recursive: true });
    return 0;
  }
  return Math.max(...used) + 1;
}
