/**
 * Holds benchmark processes to a CPU quota with a cgroup v1 `cpu` controller, so that a server under test can be
 * given less CPU than the load generator on a machine with two cores (the overload ramp offers 3x a gateway's
 * capacity only when the generator is not starved by the gateway it loads), or so that 1 and 2 cores can be
 * compared by the same method.
 *
 *   const cg = createCpuCgroup({ name: 'gateway', cores: 0.5 });   // throws CpuCgroupUnavailable, saying why
 *   cg.add(gateway.pid);                                         // children started later inherit it
 *   ... cg.stat() ...                                            // periods and time throttled so far
 *   cg.remove();                                                 // moves what is left back to the root, rmdir
 *
 *   await withCpuQuota('gateway', 0.5, [pid], async (cg) => { ... });
 *
 * The kernel runs the group's threads for at most `cores x period` of CPU time per period (`cpu.cfs_quota_us` over
 * `cpu.cfs_period_us`, 100 ms by default) and then stops them until the next period: a process held to half a core
 * answers nothing for up to 50 ms of every 100 ms once it has used its share, which is what a Kubernetes CPU limit
 * does to a pod. Lower the period (`periodUs`) for shorter stalls.
 *
 * Needs root and cgroup v1's `cpu` controller mounted writable (`/sys/fs/cgroup/cpu`); the unified hierarchy (cgroup
 * v2 only) is not handled here. `cpuCgroupSupport()` says whether it can work before anything is started. Groups are
 * named `sibyl-bench-<this pid>-<name>`; empty ones left by a benchmark that no longer runs are removed when the
 * next one is created.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Where cgroup v1's `cpu` controller is mounted (alone or as `cpu,cpuacct`). */
const ROOTS = ['/sys/fs/cgroup/cpu', '/sys/fs/cgroup/cpu,cpuacct'];
const PREFIX = 'sibyl-bench-';
const DEFAULT_PERIOD_US = 100_000;

/** Thrown by `createCpuCgroup` when no quota can be set here; the message says why and what would fix it. */
export class CpuCgroupUnavailable extends Error {
  override readonly name = 'CpuCgroupUnavailable';
}

export interface CpuCgroupOptions {
  /** A short label (letters, digits, '-', '_'), part of the group's directory name. */
  readonly name: string;
  /** The quota in cores (0.5 = half a core; 2 = two cores' worth of time per period). */
  readonly cores: number;
  /** The enforcement period, µs (default 100,000: the kernel's and Kubernetes' default). 1,000-1,000,000. */
  readonly periodUs?: number;
  /**
   * The group's weight against other groups when the CPU is contended (`cpu.shares`, 2-262144; default 1024, what
   * one task at nice 0 weighs). The group competes with the rest of the machine as ONE entity of this weight,
   * whatever the nice values of its threads: on a busy machine a group of 1024 gets what one nice-0 task gets.
   */
  readonly shares?: number;
}

/** The group's `cpu.stat` counters since it was made. */
export interface CpuCgroupStat {
  /** Enforcement periods in which the group was runnable. */
  readonly periods: number;
  /** Periods in which it used up its quota and was stopped. */
  readonly throttledPeriods: number;
  /** Total time its threads were stopped for the quota, ms. */
  readonly throttledMs: number;
}

export interface CpuCgroup {
  /** The group's directory, e.g. /sys/fs/cgroup/cpu/sibyl-bench-123-gateway. */
  readonly dir: string;
  readonly cores: number;
  readonly periodUs: number;
  /** Moves a process (all its threads) into the group; processes it starts later are in it too. Throws when the pid is gone. */
  add(pid: number): void;
  /** The pids in the group now. */
  pids(): number[];
  /** Changes the quota, cores. */
  setCores(cores: number): void;
  stat(): CpuCgroupStat;
  /** Moves every process still in the group back to the root group and removes the directory. Idempotent. */
  remove(): void;
}

/** Whether a CPU quota can be set here, and if not, why (one sentence). */
export function cpuCgroupSupport(): { readonly ok: true; readonly root: string } | { readonly ok: false; readonly why: string } {
  const uid = process.getuid?.();
  if (uid !== 0) return { ok: false, why: `not root (uid ${uid ?? 'unknown'}): creating a cgroup needs root` };
  const root = ROOTS.find((r) => existsSync(join(r, 'cpu.cfs_quota_us')));
  if (!root) {
    const v2 = existsSync('/sys/fs/cgroup/cgroup.controllers');
    return { ok: false, why: v2 ? 'only the unified cgroup v2 hierarchy is mounted; this helper needs cgroup v1\'s cpu controller (/sys/fs/cgroup/cpu)' : 'no cgroup v1 cpu controller mounted at /sys/fs/cgroup/cpu' };
  }
  return { ok: true, root };
}

/** Makes a group with a CPU quota. Throws CpuCgroupUnavailable when it cannot (not root, no cgroup v1, a write refused). */
export function createCpuCgroup(opts: CpuCgroupOptions): CpuCgroup {
  if (!/^[A-Za-z0-9_-]{1,40}$/.test(opts.name)) throw new Error(`cpu cgroup name "${opts.name}": letters, digits, '-' and '_' only, at most 40`);
  const periodUs = opts.periodUs ?? DEFAULT_PERIOD_US;
  if (!Number.isInteger(periodUs) || periodUs < 1000 || periodUs > 1_000_000) throw new Error(`cpu cgroup period ${periodUs} µs: an integer from 1000 to 1000000`);
  checkCores(opts.cores, periodUs);
  const support = cpuCgroupSupport();
  if (!support.ok) throw new CpuCgroupUnavailable(`cannot hold processes to a CPU quota: ${support.why}`);
  removeStale(support.root);
  const dir = join(support.root, `${PREFIX}${process.pid}-${opts.name}`);
  try {
    mkdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new CpuCgroupUnavailable(`cannot create ${dir}: ${(err as Error).message}`);
  }
  const rootDir = support.root;
  let cores = opts.cores;
  let removed = false;
  const write = (file: string, value: string): void => {
    try {
      writeFileSync(join(dir, file), value);
    } catch (err) {
      throw new CpuCgroupUnavailable(`cannot write ${value} to ${join(dir, file)}: ${(err as Error).message}`);
    }
  };
  const setQuota = (c: number): void => {
    checkCores(c, periodUs);
    write('cpu.cfs_quota_us', String(Math.round(c * periodUs)));
    cores = c;
  };
  try {
    // The quota must fit the period: lift it before changing the period, then set it.
    write('cpu.cfs_quota_us', '-1');
    write('cpu.cfs_period_us', String(periodUs));
    setQuota(opts.cores);
    if (opts.shares !== undefined) write('cpu.shares', String(Math.min(262144, Math.max(2, Math.round(opts.shares)))));
  } catch (err) {
    tryRmdir(dir);
    throw err;
  }
  const stat0 = readStat(dir);
  return {
    dir,
    get cores() {
      return cores;
    },
    periodUs,
    add(pid) {
      if (removed) throw new Error(`${dir} was removed`);
      write('cgroup.procs', String(pid));
    },
    pids: () => readPids(dir),
    setCores: setQuota,
    stat() {
      const s = readStat(dir);
      return { periods: s.periods - stat0.periods, throttledPeriods: s.throttledPeriods - stat0.throttledPeriods, throttledMs: Math.round((s.throttledMs - stat0.throttledMs) * 10) / 10 };
    },
    remove() {
      if (removed) return;
      removed = true;
      for (const pid of readPids(dir)) {
        try {
          writeFileSync(join(rootDir, 'cgroup.procs'), String(pid));
        } catch {
          /* exited meanwhile */
        }
      }
      tryRmdir(dir);
    },
  };
}

/**
 * Runs `fn` with `pids` held to `cores` (see createCpuCgroup), and removes the group afterwards, whether `fn`
 * resolved or threw.
 */
export async function withCpuQuota<T>(name: string, cores: number, pids: readonly number[], fn: (cg: CpuCgroup) => Promise<T>, periodUs?: number): Promise<T> {
  const cg = createCpuCgroup({ name, cores, ...(periodUs ? { periodUs } : {}) });
  try {
    for (const pid of pids) cg.add(pid);
    return await fn(cg);
  } finally {
    cg.remove();
  }
}

function checkCores(cores: number, periodUs: number): void {
  // The kernel takes quotas from 1 ms up.
  if (!Number.isFinite(cores) || cores * periodUs < 1000 || cores > 1024) throw new Error(`cpu quota of ${cores} cores: at least 1 ms per ${periodUs / 1000} ms period, at most 1024 cores`);
}

function readPids(dir: string): number[] {
  try {
    return readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function readStat(dir: string): CpuCgroupStat {
  let text = '';
  try {
    text = readFileSync(join(dir, 'cpu.stat'), 'utf8');
  } catch {
    /* no stat file: zeros */
  }
  const get = (key: string): number => Number(new RegExp(`^${key} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
  return { periods: get('nr_periods'), throttledPeriods: get('nr_throttled'), throttledMs: get('throttled_time') / 1e6 };
}

/** Removes empty groups of benchmarks that no longer run (`sibyl-bench-<pid>-...` whose pid is gone). */
function removeStale(root: string): void {
  let names: string[];
  try {
    names = readdirSync(root).filter((n) => n.startsWith(PREFIX));
  } catch {
    return;
  }
  for (const n of names) {
    const owner = Number(n.slice(PREFIX.length).split('-')[0]);
    if (owner === process.pid || !Number.isInteger(owner) || existsSync(`/proc/${owner}`)) continue;
    const dir = join(root, n);
    if (readPids(dir).length === 0) tryRmdir(dir);
  }
}

function tryRmdir(dir: string): void {
  try {
    rmdirSync(dir);
  } catch {
    /* busy or gone */
  }
}
