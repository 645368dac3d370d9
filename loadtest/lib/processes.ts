/**
 * Child processes of a benchmark run: servers pinned to a core with `taskset`, their output kept in a log file,
 * stopped by their own pid only (SIGTERM, then SIGKILL after `killAfterMs`). A run that is interrupted (SIGINT,
 * SIGTERM) or exits stops the servers it started: one left running kept its port, and the next run's server of that
 * name failed to listen while the run measured the one left behind (`assertPortsFree` now refuses to start then).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';

/** Servers started and not yet exited. */
const live = new Set<ChildProcess>();
let guarded = false;

/** Once: on SIGINT or SIGTERM the live children get SIGTERM (then this process exits); at exit, SIGKILL. */
function guardChildren(): void {
  if (guarded) return;
  guarded = true;
  process.once('exit', () => {
    for (const c of live) c.kill('SIGKILL');
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      for (const c of live) c.kill('SIGTERM');
      const code = 128 + (signal === 'SIGINT' ? 2 : 15);
      const exit = (): never => process.exit(code);
      if (live.size === 0) exit();
      // Each child exits within moments of SIGTERM; those that do not are killed at exit.
      const left = [...live].map((c) => new Promise<void>((resolve) => (c.exitCode !== null || c.signalCode !== null ? resolve() : c.once('exit', () => resolve()))));
      void Promise.race([Promise.all(left), new Promise((r) => setTimeout(r, 5000))]).then(exit);
    });
  }
}

/**
 * Throws when a port is already taken on `host`, naming it: a server that answers there is not the one a run is about
 * to start, and measuring it would measure the wrong process.
 */
export async function assertPortsFree(ports: readonly number[], host = '127.0.0.1'): Promise<void> {
  for (const port of ports) {
    await new Promise<void>((resolve, reject) => {
      const probe = createServer();
      probe.once('error', (err: NodeJS.ErrnoException) =>
        reject(err.code === 'EADDRINUSE' ? new Error(`port ${port} on ${host} is in use, by a server an earlier run left running? (\`ss -ltnp | grep :${port}\` names it); stop it first`) : err),
      );
      probe.listen({ port, host, exclusive: true }, () => probe.close(() => resolve()));
    });
  }
}

export interface Child {
  readonly name: string;
  readonly pid: number;
  readonly proc: ChildProcess;
  /** Resolves with the first stdout line that parses as JSON with a `port`. */
  readonly announced: Promise<{ port: number }>;
  stop(killAfterMs?: number): Promise<void>;
}

export const hasTaskset = spawnSync('taskset', ['-V']).status === 0;

/** `cores` like "1" or "0,1"; ignored when taskset is missing. */
export function pinned(cores: string | undefined, cmd: string, args: readonly string[]): [string, string[]] {
  return cores && hasTaskset ? ['taskset', ['-c', cores, cmd, ...args]] : [cmd, [...args]];
}

export function startChild(name: string, cmd: string, args: readonly string[], opts: { cores?: string; env?: NodeJS.ProcessEnv; logFile: string; cwd?: string }): Child {
  const [c, a] = pinned(opts.cores, cmd, args);
  const proc = spawn(c, a, { env: { ...process.env, ...opts.env }, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  guardChildren();
  live.add(proc);
  proc.once('exit', () => live.delete(proc));
  const log = createWriteStream(opts.logFile);
  proc.stderr!.pipe(log, { end: false });
  let exited = false;
  const exit = new Promise<void>((resolve) => proc.once('exit', () => ((exited = true), resolve())));
  const announced = new Promise<{ port: number }>((resolve, reject) => {
    const lines = createInterface({ input: proc.stdout! });
    lines.on('line', (line) => {
      log.write(`${line}\n`);
      try {
        const v = JSON.parse(line) as { port?: unknown };
        if (typeof v.port === 'number') resolve({ port: v.port });
      } catch {
        /* not an announcement */
      }
    });
    proc.once('exit', (code) => reject(new Error(`${name} exited with ${code} before announcing its port; see ${opts.logFile}`)));
  });
  announced.catch(() => undefined);
  return {
    name,
    pid: proc.pid!,
    proc,
    announced,
    async stop(killAfterMs = 15_000) {
      if (exited) return;
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), killAfterMs);
      await exit;
      clearTimeout(timer);
      log.end();
    },
  };
}

/** Polls `url` until it answers 200 (or throws after `timeoutMs`). */
export async function waitHttpOk(url: string, timeoutMs = 60_000, child?: Child): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (child && child.proc.exitCode !== null) throw new Error(`${child.name} exited with ${child.proc.exitCode}`);
    try {
      const res = await fetch(url);
      await res.arrayBuffer();
      if (res.ok) return;
    } catch {
      /* not up yet */
    }
    if (Date.now() > until) throw new Error(`${url} did not answer 200 within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Runs a command to completion; resolves with its stdout; rejects on a non-zero exit. */
export function run(cmd: string, args: readonly string[], opts: { cores?: string; env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<string> {
  const [c, a] = pinned(opts.cores, cmd, args);
  return new Promise((resolve, reject) => {
    const proc = spawn(c, a, { env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
    // A command that exits before reading its input closes the pipe: that EPIPE is not a failure of the command.
    proc.stdin.on('error', () => {});
    proc.stdin.end(opts.input ?? '');
    proc.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(' ')} exited with ${code}: ${err.slice(-2000)}`))));
  });
}

/** Sets the CPU affinity of every thread of `pid`; returns the previous affinity list (for restoring). */
export function setAffinity(pid: number, cores: string): string | undefined {
  if (!hasTaskset) return undefined;
  const before = spawnSync('taskset', ['-cp', String(pid)], { encoding: 'utf8' }).stdout.split(':').pop()?.trim();
  spawnSync('taskset', ['-a', '-cp', cores, String(pid)], { stdio: 'ignore' });
  return before;
}

/**
 * Gives every thread of `pid` a scheduling class: `realtime` (SCHED_FIFO 10: it runs as soon as it wakes, ahead of
 * the load generator on the same core) or `background` (nice 19: it gets the core when nothing else wants it).
 * Returns a function that restores the previous class, or undefined when it could not be set (no chrt/renice, or not
 * allowed).
 */
export function setPriority(pid: number, kind: 'realtime' | 'background'): (() => void) | undefined {
  const threads = (() => {
    try {
      return readdirSync(`/proc/${pid}/task`);
    } catch {
      return [];
    }
  })();
  if (threads.length === 0) return undefined;
  if (kind === 'realtime') {
    const ok = threads.every((t) => spawnSync('chrt', ['-f', '-p', '10', t], { stdio: 'ignore' }).status === 0);
    if (!ok) return undefined;
    return () => void threads.forEach((t) => spawnSync('chrt', ['-o', '-p', '0', t], { stdio: 'ignore' }));
  }
  const ok = threads.every((t) => spawnSync('renice', ['-n', '19', '-p', t], { stdio: 'ignore' }).status === 0);
  if (!ok) return undefined;
  return () => void threads.forEach((t) => spawnSync('renice', ['-n', '0', '-p', t], { stdio: 'ignore' }));
}

/**
 * Puts the threads of `pid` whose name (/proc's `comm`) is `name` in the real-time class (SCHED_FIFO 10), as
 * `setPriority` does for a whole process; returns how many it moved (0: none by that name, or chrt missing or not
 * allowed).
 */
function realtimeThreads(pid: number, name: string): number {
  let moved = 0;
  let tids: string[] = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return 0;
  }
  for (const tid of tids) {
    let comm = '';
    try {
      comm = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
    } catch {
      continue;
    }
    if (comm === name && spawnSync('chrt', ['-f', '-p', '10', tid], { stdio: 'ignore' }).status === 0) moved++;
  }
  return moved;
}

/**
 * Puts V8's sampling thread of a Node process being profiled (`--cpu-prof`, or the inspector's `Profiler.start`) in
 * the real-time class, so that its samples come on time on a core the process keeps busy (lib/long-tasks.ts: what
 * late samples do to a profile). True when it was there and moved.
 */
export function promoteV8Sampler(pid: number): boolean {
  return realtimeThreads(pid, 'v8:ProfEvntProc') > 0;
}

/** CPU time (user + system, all threads) a live process has used so far, ms; undefined when it cannot be read. */
export function processCpuMs(pid: number): number | undefined {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    // utime and stime are fields 14 and 15 of /proc/pid/stat, in clock ticks (100 per second on Linux).
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return undefined;
  }
}

/** CPU time of this process's finished children, ms (process.resourceUsage does not cover children). */
export function childCpuMs(): number {
  const f = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
  // fields 16 and 17 of /proc/pid/stat (cutime, cstime), in clock ticks (100/s on Linux)
  return (Number(f[13]) + Number(f[14])) * 10;
}

/**
 * CPU time of `pid` and all its descendants, ms: the live ones' own time, plus what finished children handed up to
 * their parents (cutime, cstime). A server that works in child processes (BentoML's workers, Ray's raylet and
 * actors) is charged for all of them; undefined when `pid` is gone.
 */
export function processTreeCpuMs(pid: number): number | undefined {
  const stats = new Map<number, { ppid: number; ms: number }>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const f = readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1]!.split(' ');
      // fields 4 (ppid) and 14-17 (utime, stime, cutime, cstime, clock ticks) of /proc/pid/stat
      stats.set(Number(entry), { ppid: Number(f[1]), ms: (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) * 10 });
    } catch {
      /* exited while listing */
    }
  }
  if (!stats.has(pid)) return undefined;
  const children = new Map<number, number[]>();
  for (const [p, s] of stats) children.set(s.ppid, [...(children.get(s.ppid) ?? []), p]);
  let total = 0;
  const todo = [pid];
  while (todo.length) {
    const p = todo.pop()!;
    total += stats.get(p)?.ms ?? 0;
    todo.push(...(children.get(p) ?? []));
  }
  return total;
}
