/**
 * Long tasks of an event loop, read from a V8 CPU profile (the inspector's `Profiler` domain or `node --cpu-prof`)
 * taken with a short sampling interval (100-250 µs).
 *
 * While the loop waits in epoll, Node marks the isolate idle and V8 files its samples under `(idle)`; every other
 * sample is the main thread at work: JS, `(garbage collector)`, `(program)` (native code outside JS, e.g. a native
 * addon's run or a write(2)). A long task is a run of busy samples with no idle sample between them, i.e. work
 * that kept the loop from polling, so every request that arrived meanwhile waited for it. Its duration is the
 * time from its first busy sample to the next idle one (±1 sampling interval). This is what one turn of the loop
 * (or several turns without a poll that found nothing to do) cost, from the requests' point of view.
 *
 * Attribution, per sample: `self` is the leaf frame (where the CPU was), `where` the deepest frame in this
 * repository's code (`gateway/log/kafka-sink.ts:KafkaSink.#send`), else the npm package, else `node:` internals:
 * "who asked for it". A long task's owner is the `where` with the most time in it.
 *
 * Caveats: the process can be descheduled in the middle of a task (other tenants of the core, steal); those
 * milliseconds are filed under whatever stack was current. V8 takes each sample from a thread of its own
 * (`v8:ProfEvntProc`): on a core the profiled thread keeps busy, that thread waits for the scheduler, often
 * milliseconds, and the next sample is charged with the whole gap, idle time included. The report counts these late
 * samples; loadtest/long-tasks.ts puts that thread in the real-time class, which makes them rare and moves the
 * sampler's cost (a few percent at 100 µs) onto the profiled core.
 */
import { readFileSync } from 'node:fs';

export interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
  readonly columnNumber?: number;
}

export interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly hitCount?: number;
  readonly children?: readonly number[];
}

/** The V8 CPU profile (`Profiler.Profile` of the Chrome DevTools Protocol). Times in µs. */
export interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export interface LongTask {
  /** µs since the profile's start. */
  readonly startUs: number;
  readonly durationUs: number;
  /** The `where` with the most time in the task. */
  readonly owner: string;
  /** Time per `where` inside the task, µs, largest first. */
  readonly parts: readonly (readonly [string, number])[];
}

export interface DurationBucket {
  /** Lower bound, ms (inclusive). */
  readonly fromMs: number;
  /** Upper bound, ms (exclusive); Infinity for the last. */
  readonly toMs: number;
  readonly count: number;
  readonly totalMs: number;
}

export interface OwnerRow {
  readonly owner: string;
  /** Long tasks this owner dominated, per bucket of `LONG_TASK_BUCKETS_MS` at or above the threshold. */
  readonly counts: readonly number[];
  readonly count: number;
  readonly totalMs: number;
  readonly maxMs: number;
}

export interface LongTaskReport {
  readonly thresholdMs: number;
  readonly wallMs: number;
  /** Busy share of the wall time (1 - idle). */
  readonly busy: number;
  readonly samplingUs: number;
  /**
   * Gaps of more than `LATE_SAMPLE_US` between two samples: the sampler was not run in time (on a core the profiled
   * thread keeps busy, the profiler's own thread waits its turn), and the whole gap is charged to the next sample's
   * frame, idle or not. `totalMs` of them against `wallMs` says how far the attribution can be trusted.
   */
  readonly lateSamples: { readonly count: number; readonly totalMs: number };
  /** Every busy run, by duration. */
  readonly histogram: readonly DurationBucket[];
  /** Runs at or above the threshold, grouped by owner, longest total first. */
  readonly owners: readonly OwnerRow[];
  /** Self time inside long tasks, by leaf frame, ms, largest first (top 20). */
  readonly selfInLong: readonly (readonly [string, number])[];
  /** The longest tasks (top 10). */
  readonly longest: readonly LongTask[];
}

/** Bucket bounds of the histogram, ms. */
export const LONG_TASK_BUCKETS_MS: readonly number[] = Object.freeze([0, 0.2, 0.5, 1, 2, 5, 10, 25, 50, 100]);

const IDLE = '(idle)';

/** A gap between two samples longer than this is a late sample (`LongTaskReport.lateSamples`), µs. */
export const LATE_SAMPLE_US = 1000;

/** Repository folders whose frames name the `where` of a sample. */
const REPO_DIRS = /\/(gateway|runtimes|execution|core|stats|proto|replay|control-tower|lambda|loadtest)\/(.*)$/;

interface Frames {
  readonly self: string[];
  readonly where: string[];
  readonly idle: boolean[];
}

function frameName(f: CallFrame): string {
  const fn = f.functionName || '(anonymous)';
  if (!f.url) return fn;
  const repo = REPO_DIRS.exec(f.url);
  if (repo && !f.url.includes('/node_modules/')) return `${repo[1]}/${repo[2]}:${fn}`;
  const pkg = packageOf(f.url);
  if (pkg) return `${pkg}:${fn}`;
  return `${f.url.replace(/^file:\/\//, '')}:${fn}`;
}

function packageOf(url: string): string | undefined {
  const i = url.lastIndexOf('/node_modules/');
  if (i < 0) return undefined;
  const rest = url.slice(i + '/node_modules/'.length).split('/');
  return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
}

/** Per node: its leaf name, its `where` (deepest repository frame on its stack, else package, else internals). */
function framesOf(profile: CpuProfile): Map<number, { self: string; where: string; idle: boolean }> {
  const byId = new Map<number, ProfileNode>();
  for (const n of profile.nodes) byId.set(n.id, n);
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const out = new Map<number, { self: string; where: string; idle: boolean }>();
  for (const n of profile.nodes) {
    const self = frameName(n.callFrame);
    let where: string | undefined;
    let pkg: string | undefined;
    let internal: string | undefined;
    let other: string | undefined;
    for (let id: number | undefined = n.id; id !== undefined; id = parent.get(id)) {
      const f = byId.get(id)!.callFrame;
      if (!f.url) continue;
      if (REPO_DIRS.test(f.url) && !f.url.includes('/node_modules/')) {
        where = frameName(f);
        break;
      }
      pkg ??= packageOf(f.url);
      if (f.url.startsWith('node:')) internal ??= frameName(f);
      else if (!f.url.includes('/node_modules/')) other ??= frameName(f);
    }
    // A sample with no frame of ours: the package, other script or internal function that ran, else the leaf
    // itself ((garbage collector), (program)).
    out.set(n.id, { self, where: where ?? (pkg ? `${pkg} (package)` : other ?? internal ?? self), idle: n.callFrame.functionName === IDLE });
  }
  return out;
}

/** Every run of busy samples (see the file's comment), in time order. */
export function longTasks(profile: CpuProfile, minMs = 0): LongTask[] {
  const frames = framesOf(profile);
  const tasks: LongTask[] = [];
  const n = profile.samples.length;
  // Sample i is at t[i] and stands for [t[i], t[i + 1]); the last one for [t[n-1], endTime).
  const t = new Float64Array(n + 1);
  let at = profile.startTime;
  for (let i = 0; i < n; i++) {
    at += profile.timeDeltas[i] ?? 0;
    t[i] = at;
  }
  t[n] = Math.max(profile.endTime, at);
  let start = -1;
  let parts = new Map<string, number>();
  const close = (end: number) => {
    const durationUs = t[end]! - t[start]!;
    if (durationUs >= minMs * 1000) {
      const sorted = [...parts.entries()].sort((a, b) => b[1] - a[1]);
      tasks.push({ startUs: t[start]! - profile.startTime, durationUs, owner: sorted[0]?.[0] ?? '?', parts: sorted });
    }
    start = -1;
    parts = new Map();
  };
  for (let i = 0; i < n; i++) {
    const f = frames.get(profile.samples[i]!);
    const idle = f === undefined || f.idle;
    if (idle) {
      if (start >= 0) close(i);
      continue;
    }
    if (start < 0) start = i;
    parts.set(f.where, (parts.get(f.where) ?? 0) + (t[i + 1]! - t[i]!));
  }
  if (start >= 0) close(n);
  return tasks;
}

/** The histogram of busy runs, the owners of those at or above `thresholdMs`, and their self time. */
export function longTaskReport(profile: CpuProfile, thresholdMs = 0.2): LongTaskReport {
  if (!profile.nodes.some((n) => n.callFrame.functionName === IDLE)) {
    throw new Error('the profile has no (idle) samples: it cannot tell waiting from work (take it through the inspector, which marks idle time)');
  }
  const all = longTasks(profile);
  const wallUs = profile.endTime - profile.startTime;
  const busyUs = all.reduce((s, x) => s + x.durationUs, 0);
  const bounds = LONG_TASK_BUCKETS_MS;
  const bucketOf = (ms: number) => {
    let b = 0;
    while (b + 1 < bounds.length && ms >= bounds[b + 1]!) b++;
    return b;
  };
  const hist = bounds.map((fromMs, i) => ({ fromMs, toMs: bounds[i + 1] ?? Infinity, count: 0, totalMs: 0 }));
  for (const x of all) {
    const h = hist[bucketOf(x.durationUs / 1000)]!;
    h.count++;
    h.totalMs += x.durationUs / 1000;
  }
  const long = all.filter((x) => x.durationUs >= thresholdMs * 1000);
  const owners = new Map<string, { counts: number[]; count: number; totalMs: number; maxMs: number }>();
  for (const x of long) {
    const ms = x.durationUs / 1000;
    let o = owners.get(x.owner);
    if (o === undefined) owners.set(x.owner, (o = { counts: bounds.map(() => 0), count: 0, totalMs: 0, maxMs: 0 }));
    o.counts[bucketOf(ms)]!++;
    o.count++;
    o.totalMs += ms;
    o.maxMs = Math.max(o.maxMs, ms);
  }
  // Self time inside long tasks: a second pass over the samples with the long tasks' spans.
  const frames = framesOf(profile);
  const self = new Map<string, number>();
  let at = profile.startTime;
  let k = 0;
  const spans = long.map((x) => [x.startUs + profile.startTime, x.startUs + profile.startTime + x.durationUs] as const);
  for (let i = 0; i < profile.samples.length; i++) {
    at += profile.timeDeltas[i] ?? 0;
    const next = i + 1 < profile.samples.length ? at + (profile.timeDeltas[i + 1] ?? 0) : Math.max(profile.endTime, at);
    while (k < spans.length && spans[k]![1] <= at) k++;
    const span = spans[k];
    if (span === undefined || at < span[0]) continue;
    const f = frames.get(profile.samples[i]!);
    if (f === undefined || f.idle) continue;
    self.set(f.self, (self.get(f.self) ?? 0) + (next - at) / 1000);
  }
  let late = 0;
  let lateUs = 0;
  for (let i = 1; i < profile.timeDeltas.length; i++) {
    const d = profile.timeDeltas[i]!;
    if (d > LATE_SAMPLE_US) {
      late++;
      lateUs += d;
    }
  }
  const round = (ms: number) => Math.round(ms * 100) / 100;
  return {
    thresholdMs,
    wallMs: round(wallUs / 1000),
    busy: wallUs > 0 ? Math.round((busyUs / wallUs) * 1000) / 1000 : 0,
    samplingUs: profile.samples.length > 0 ? Math.round(wallUs / profile.samples.length) : 0,
    lateSamples: { count: late, totalMs: round(lateUs / 1000) },
    histogram: hist.map((h) => ({ ...h, totalMs: round(h.totalMs) })),
    owners: [...owners.entries()]
      .map(([owner, o]) => ({ owner, counts: o.counts, count: o.count, totalMs: round(o.totalMs), maxMs: round(o.maxMs) }))
      .sort((a, b) => b.totalMs - a.totalMs),
    selfInLong: [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 20).map(([f, ms]) => [f, round(ms)] as const),
    longest: [...long].sort((a, b) => b.durationUs - a.durationUs).slice(0, 10),
  };
}

const rangeLabel = (b: { fromMs: number; toMs: number }) => (b.toMs === Infinity ? `≥ ${b.fromMs}` : `${b.fromMs}-${b.toMs}`);

/** The report as Markdown: the histogram, the owners of long tasks by duration, self time, the longest tasks. */
export function renderLongTasks(r: LongTaskReport, title: string): string {
  const lines = [
    `### ${title}`,
    '',
    `${r.wallMs} ms profiled, sampled every ~${r.samplingUs} µs; the main thread busy ${(r.busy * 100).toFixed(1)}% of it. ` +
      `Late samples (more than ${LATE_SAMPLE_US / 1000} ms after the one before): ${r.lateSamples.count}, ${r.lateSamples.totalMs} ms in all ` +
      `(${r.wallMs > 0 ? ((100 * r.lateSamples.totalMs) / r.wallMs).toFixed(1) : '0'}% of the time profiled, charged to whatever ran next: the runs and owners below are only as exact as this is small). ` +
      'Busy runs (work between two polls of the loop):',
    '',
    '| run length ms | runs | total ms |',
    '| --- | ---: | ---: |',
    ...r.histogram.map((h) => `| ${rangeLabel(h)} | ${h.count} | ${h.totalMs} |`),
    '',
  ];
  const cols = LONG_TASK_BUCKETS_MS.map((fromMs, i) => ({ fromMs, toMs: LONG_TASK_BUCKETS_MS[i + 1] ?? Infinity, i })).filter((b) => b.toMs > r.thresholdMs);
  lines.push(
    `Runs of ${r.thresholdMs} ms or more, by the code that took most of each (its deepest frame in this repository, else its package):`,
    '',
    `| owner | ${cols.map(rangeLabel).join(' | ')} | runs | total ms | max ms |`,
    `| --- | ${cols.map(() => '---:').join(' | ')} | ---: | ---: | ---: |`,
    ...r.owners.slice(0, 25).map((o) => `| ${o.owner} | ${cols.map((c) => o.counts[c.i] || '').join(' | ')} | ${o.count} | ${o.totalMs} | ${o.maxMs} |`),
    '',
    'Self time inside those runs (leaf frames):',
    '',
    '| frame | ms |',
    '| --- | ---: |',
    ...r.selfInLong.map(([f, ms]) => `| ${f} | ${ms} |`),
    '',
    'The longest runs:',
    '',
    '| at ms | length ms | parts (ms) |',
    '| ---: | ---: | --- |',
    ...r.longest.map(
      (x) => `| ${(x.startUs / 1000).toFixed(1)} | ${(x.durationUs / 1000).toFixed(2)} | ${x.parts.slice(0, 4).map(([w, us]) => `${w} ${(us / 1000).toFixed(2)}`).join('; ')} |`,
    ),
    '',
  );
  return lines.join('\n');
}

if (import.meta.main) {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: node loadtest/lib/long-tasks.ts PROFILE.cpuprofile [threshold ms = 0.2]');
    process.exit(2);
  }
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  process.stdout.write(renderLongTasks(longTaskReport(profile, Number(process.argv[3] ?? 0.2)), file));
}
