/**
 * A rule's sandbox process, seen from the gateway: one forked Node process per loaded rule version holding its
 * isolate (sandbox-process.ts). A rule that exhausts memory beyond isolated-vm's limit, crashes V8 or stalls
 * its thread in a non-interruptible operation takes down or freezes that process only, and the kernel bounds it
 * (containment.ts).
 *
 * - The child runs with `--no-node-snapshot` (isolated-vm's requirement on Node 20+), an empty environment, `/`
 *   as its directory, no stdin/stdout (its stderr tail is kept for logs), as nobody when the gateway is root, in
 *   its own memory (and CPU) cgroup limited to `memoryLimitBytes(memoryMb)`, or under RLIMIT_AS without cgroups.
 * - Deadline overrun: a call abandoned at its deadline may leave its isolate running (isolated-vm cannot stop a
 *   getter that loops while it reads a thrown object, nor a non-interruptible operation). The child reports such a
 *   call (`dropped`); the gateway throttles the child's cgroup to a fifth of a core and asks it whether the
 *   isolate still runs. Busy, or no answer within `overrunGraceMs`: the child is killed (SIGKILL).
 * - Watchdog: while calls are in flight, the child must answer one of them at least every
 *   `timeoutMs + 50 + graceMs`; otherwise it is killed and its calls reject DEADLINE_EXCEEDED.
 * - A child that exits on its own fails its calls with RESOURCE_EXHAUSTED; the kernel's OOM kill in its cgroup
 *   counts as `memory`, anything else as `crash`.
 * - The next call starts a fresh child (~100 ms). After two kills in a row (each within 30 s of the previous one,
 *   with no call answered by a child that lived 2 s since), restarts back off: 250 ms, doubling, at most 10 s;
 *   calls meanwhile fail at once with UNAVAILABLE naming the last kill's reason.
 * Every kill is counted in `kills` by reason and reported through `onEvent`.
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { FeatureRow, OutputRow } from '../contract.ts';
import { SibylError } from '../../core/errors.ts';
import { abortError } from '../onnx/abort-error.ts';
import { addressSpaceLimit, containment, SandboxCgroup, type Containment, type MemoryBound } from './containment.ts';
import { ruleScript } from './rule-module.ts';
import type { ModelOutputs, SandboxOptions } from './rule-sandbox.ts';
import type { FromSandbox, ToSandbox } from './sandbox-protocol.ts';

// `.ts` in a checkout, `.js` in the package compiled for installing (tsconfig.pack.json).
const ENTRY = path.join(import.meta.dirname, `sandbox-process${path.extname(import.meta.filename)}`);
const NODE_ARGS = ['--no-node-snapshot', '--max-old-space-size=128'];

/**
 * Memory a sandbox process needs before its rule allocates anything, MiB. Measured (Node 24, isolated-vm 7): 36-39
 * MiB charged to its cgroup after 3 000 calls (anonymous memory; what Node allocated before the process was moved
 * in stays charged to the gateway's cgroup) and 92 MiB RSS counting shared file pages. 96 leaves room for a child
 * charged from its very start, for a rebuilt isolate beside a dying one, and for the IPC buffers of big batches.
 */
export const SANDBOX_BASELINE_MB = 96;

/**
 * The kernel's memory limit of a sandbox process, bytes: its baseline plus three times the rule's `memoryMb`
 * (isolated-vm's heap limit, which V8 may overshoot 2-3x before isolated-vm notices: within this bound the usual
 * outcome of a memory hog stays isolated-vm's clean RESOURCE_EXHAUSTED, and beyond it the kernel kills).
 */
export function memoryLimitBytes(memoryMb: number): number {
  return (SANDBOX_BASELINE_MB + 3 * memoryMb) * 1024 * 1024;
}

export type KillReason = 'deadline' | 'memory' | 'crash';

/** What a sandbox reports for logs: a process killed or lost (with its reason), or containment that is missing. */
export interface SandboxEvent {
  readonly type: 'killed' | 'containment';
  readonly reason?: KillReason;
  readonly model: string;
  readonly version: string;
  readonly pid?: number;
  readonly message: string;
}

export interface ProcessSandboxOptions {
  /** How long past `timeoutMs` a child with calls in flight may stay silent before it is killed, ms (default 1000). */
  readonly graceMs?: number;
  /** After a deadline overrun, how long the child has to show that the abandoned isolate stopped, ms (default 2 x timeoutMs, within 500..2000). */
  readonly overrunGraceMs?: number;
  /** Longest wait for a child to start and compile the rule, ms (default 10 000). */
  readonly startTimeoutMs?: number;
  /** First restart backoff after two kills in a row, ms (default 250; doubles per further kill). */
  readonly backoffMs?: number;
  /** Longest restart backoff, ms (default 10 000). */
  readonly maxBackoffMs?: number;
  /** Forces the memory bound (tests of the fallbacks); default: the best one detected. */
  readonly memoryBound?: MemoryBound;
  /**
   * Called with every kill (reason, pid) and, once per process, with the containment that is not available.
   * Default: one JSON line on stderr (`{"level":40,...}`, pino's shape).
   */
  readonly onEvent?: (event: SandboxEvent) => void;
}

interface Pending {
  readonly resolve: (rows: OutputRow[]) => void;
  readonly reject: (err: unknown) => void;
}

interface Child {
  readonly proc: ChildProcess;
  readonly ready: Promise<void>;
  readonly startedAt: number;
  stderr: string;
  killedByUs: boolean;
  oomBefore: number;
  /** An overrun check in progress: its ping number, backstop timer, the reason a kill would have, and its end. */
  check?: { readonly n: number; readonly timer: NodeJS.Timeout; readonly reason: KillReason; readonly over: Promise<void>; readonly end: () => void };
}

const STRIKE_WINDOW_MS = 30_000;
const STABLE_MS = 2000;
let missingReported = false;

export class ProcessSandbox {
  readonly #options: SandboxOptions;
  readonly #graceMs: number;
  readonly #overrunGraceMs: number;
  readonly #startTimeoutMs: number;
  readonly #backoffMs: number;
  readonly #maxBackoffMs: number;
  readonly #onEvent: (event: SandboxEvent) => void;
  readonly #containment: Containment;
  readonly #cgroup: SandboxCgroup | undefined;
  readonly #pending = new Map<number, Pending>();
  #child: Child | undefined;
  #nextId = 1;
  #nextPing = 1;
  #lastProgress = 0;
  #watchdog: NodeJS.Timeout | undefined;
  #disposed = false;
  #strikes = 0;
  #lastKillAt = -Infinity;
  #lastKill = '';
  #backoffUntil = 0;
  /** Children started (1 at load, +1 per restart): for tests and metrics. */
  starts = 0;
  /** Children killed or lost, by reason: for tests and metrics. */
  readonly kills: Record<KillReason, number> = { deadline: 0, memory: 0, crash: 0 };

  private constructor(options: SandboxOptions, p: ProcessSandboxOptions) {
    this.#options = options;
    this.#graceMs = p.graceMs ?? 1000;
    this.#overrunGraceMs = p.overrunGraceMs ?? Math.min(2000, Math.max(500, 2 * options.timeoutMs));
    this.#startTimeoutMs = p.startTimeoutMs ?? 10_000;
    this.#backoffMs = p.backoffMs ?? 250;
    this.#maxBackoffMs = p.maxBackoffMs ?? 10_000;
    this.#onEvent = p.onEvent ?? logEvent;
    this.#containment = containment({ memory: p.memoryBound });
    const missing = [...this.#containment.missing];
    if (this.#containment.memory.startsWith('cgroup')) {
      try {
        this.#cgroup = SandboxCgroup.create(this.#containment, memoryLimitBytes(options.memoryMb));
      } catch (err) {
        missing.push(`could not make the sandbox's cgroup (${(err as Error).message}): its memory is bounded only by isolated-vm`);
      }
    }
    if (missing.length > 0 && (!missingReported || !this.#cgroup)) {
      missingReported = true;
      this.#event({ type: 'containment', message: `rule sandboxes run without some containment: ${missing.join('; ')}` });
    }
  }

  /** Starts the child and compiles the rule in it; rejects like RuleSandbox.create (INVALID_ARGUMENT for a bad rule), UNAVAILABLE when the child cannot start. */
  static async start(options: SandboxOptions, p: ProcessSandboxOptions = {}): Promise<ProcessSandbox> {
    // Parsed here, once: a rule that is not a module with a predict export is refused before any process starts.
    const s = new ProcessSandbox({ ...options, script: options.script ?? ruleScript(options.source, options.fileName) }, p);
    try {
      await s.#spawn().ready;
    } catch (err) {
      await s.dispose();
      throw err;
    }
    return s;
  }

  /** The child's process id (undefined between a kill and the next call). */
  get pid(): number | undefined {
    return this.#child?.proc.pid;
  }

  /** What the kernel enforces on this sandbox's processes. */
  get enforced(): { readonly memory: MemoryBound; readonly memoryLimitBytes: number; readonly cpuThrottle: boolean; readonly uid?: number } {
    const c = this.#containment;
    const memory = c.memory.startsWith('cgroup') && !this.#cgroup ? 'none' : c.memory;
    const limit = memory === 'rlimit-as' ? addressSpaceLimit(this.#options.memoryMb) : memory === 'none' ? 0 : memoryLimitBytes(this.#options.memoryMb);
    return { memory, memoryLimitBytes: limit, cpuThrottle: !!this.#cgroup && c.cpu, uid: c.user?.uid };
  }

  #event(e: Omit<SandboxEvent, 'model' | 'version'>): void {
    try {
      this.#onEvent({ model: this.#options.model.name, version: this.#options.model.version, ...e });
    } catch {
      // a logger that throws must not break the sandbox
    }
  }

  #spawn(): Child {
    this.starts++;
    const c = this.#containment;
    const rlimit = c.memory === 'rlimit-as';
    const kb = Math.floor(addressSpaceLimit(this.#options.memoryMb) / 1024);
    const proc = fork(ENTRY, [], {
      // RLIMIT_AS has no Node API: a shell sets it and execs Node in its place (same pid, same IPC channel).
      execPath: rlimit ? '/bin/sh' : process.execPath,
      execArgv: rlimit ? ['-c', `ulimit -v ${kb} && exec "$0" "$@"`, process.execPath, ...NODE_ARGS] : NODE_ARGS,
      serialization: 'advanced',
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      env: {},
      cwd: '/',
      ...(c.user ? { uid: c.user.uid, gid: c.user.gid } : {}),
    });
    this.#cgroup?.throttle(false);
    if (this.#cgroup && proc.pid !== undefined) {
      try {
        this.#cgroup.add(proc.pid);
      } catch (err) {
        this.#event({ type: 'containment', pid: proc.pid, message: `rule sandbox could not be put in its cgroup (${(err as Error).message}): its memory is bounded only by isolated-vm` });
      }
    }
    let settle!: { resolve: () => void; reject: (err: unknown) => void };
    const ready = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
    ready.catch(() => undefined);
    const child: Child = { proc, ready, startedAt: performance.now(), stderr: '', killedByUs: false, oomBefore: this.#cgroup?.oomKills() ?? 0 };
    const startTimer = setTimeout(() => {
      this.#kill(child, 'crash', `did not start within ${this.#startTimeoutMs} ms`);
      settle.reject(new SibylError('UNAVAILABLE', `rule sandbox did not start within ${this.#startTimeoutMs} ms`));
    }, this.#startTimeoutMs);
    proc.stderr?.setEncoding('utf8').on('data', (d: string) => {
      child.stderr = (child.stderr + d).slice(-2000);
    });
    proc.on('message', (msg: FromSandbox) => {
      if (msg.t === 'ready') {
        clearTimeout(startTimer);
        settle.resolve();
      } else if (msg.t === 'fail' && msg.id === undefined) {
        clearTimeout(startTimer);
        child.killedByUs = true; // a rule that does not load: not a kill
        if (this.#child === child) this.#child = undefined;
        proc.kill('SIGKILL');
        settle.reject(new SibylError(msg.code, msg.message, { cause: msg.cause }));
      } else if (msg.t === 'pong') this.#pong(child, msg);
      else this.#answer(child, msg);
    });
    proc.on('error', (err) => {
      clearTimeout(startTimer);
      // The process could not be made (or signalled): the next call tries a new one.
      if (this.#child === child) this.#child = undefined;
      settle.reject(new SibylError('UNAVAILABLE', 'rule sandbox could not start', { cause: err }));
    });
    proc.on('exit', (code, signal) => {
      clearTimeout(startTimer);
      this.#endCheck(child);
      settle.reject(new SibylError('UNAVAILABLE', `rule sandbox exited while starting (${signal ?? `code ${code}`})`, { cause: child.stderr }));
      if (this.#child !== child) return;
      this.#child = undefined;
      if (child.killedByUs) return;
      const oom = (this.#cgroup?.oomKills() ?? 0) > child.oomBefore || /out of memory|allocation failed|heap limit/i.test(child.stderr);
      const reason: KillReason = oom ? 'memory' : 'crash';
      const how = signal ?? `code ${code}`;
      this.#count(reason, proc.pid, oom ? `killed at its memory limit (${how}${this.#cgroup ? `, ${Math.round(memoryLimitBytes(this.#options.memoryMb) / 2 ** 20)} MiB cgroup` : ''})` : `exited (${how}): ${child.stderr.slice(-500)}`);
      this.#failAll(
        new SibylError(
          'RESOURCE_EXHAUSTED',
          oom ? `rule exceeded its memory limit (${this.#options.memoryMb} MiB); its sandbox process was killed and is restarted` : 'rule sandbox exited during the call (crashed); it is restarted',
          { cause: child.stderr },
        ),
      );
    });
    proc.send({ t: 'init', options: this.#options } satisfies ToSandbox);
    this.#child = child;
    return child;
  }

  #answer(child: Child, msg: Extract<FromSandbox, { t: 'done' | 'fail' }>): void {
    this.#lastProgress = performance.now();
    if (msg.t === 'done' && this.#strikes > 0 && performance.now() - child.startedAt >= STABLE_MS) this.#strikes = 0;
    if (msg.t === 'fail' && msg.dropped) this.#overrunCheck(child, msg.code === 'RESOURCE_EXHAUSTED' ? 'memory' : 'deadline');
    const p = this.#pending.get(msg.id!);
    if (!p) return; // cancelled or failed already
    this.#pending.delete(msg.id!);
    this.#idleCheck();
    if (msg.t === 'done') p.resolve(msg.rows);
    else p.reject(new SibylError(msg.code, msg.message, { cause: msg.cause }));
  }

  /** A call abandoned its isolate: throttle the child and make it show, within the grace, that the isolate stopped. */
  #overrunCheck(child: Child, reason: KillReason): void {
    if (child.check || this.#child !== child) return;
    const n = this.#nextPing++;
    this.#cgroup?.throttle(true);
    const timer = setTimeout(() => {
      if (child.check?.n !== n) return;
      this.#overrun(child, reason, `did not show within ${this.#overrunGraceMs} ms that it had stopped after ${abandoned[reason]}`);
    }, this.#overrunGraceMs);
    let end!: () => void;
    const over = new Promise<void>((r) => (end = r));
    child.check = { n, timer, reason, over, end };
    child.proc.send({ t: 'ping', n } satisfies ToSandbox);
  }

  #pong(child: Child, msg: Extract<FromSandbox, { t: 'pong' }>): void {
    const check = child.check;
    if (check?.n !== msg.n) return;
    this.#endCheck(child);
    if (msg.busy) this.#overrun(child, check.reason, `kept running after ${abandoned[check.reason]}`);
    else if (this.#child === child) this.#cgroup?.throttle(false);
  }

  #overrun(child: Child, reason: KillReason, what: string): void {
    if (this.#child !== child) return;
    this.#kill(child, reason, what);
    this.#failAll(new SibylError('UNAVAILABLE', `rule sandbox restarted: it ${what}`));
  }

  #kill(child: Child, reason: KillReason, what: string): void {
    if (child.killedByUs) return;
    child.killedByUs = true;
    if (this.#child === child) this.#child = undefined;
    this.#endCheck(child);
    child.proc.kill('SIGKILL');
    this.#count(reason, child.proc.pid, what);
  }

  #endCheck(child: Child): void {
    const check = child.check;
    if (!check) return;
    clearTimeout(check.timer);
    child.check = undefined;
    check.end();
  }

  /** Counts and reports a lost child, and moves the restart backoff. */
  #count(reason: KillReason, pid: number | undefined, what: string): void {
    this.kills[reason]++;
    const now = performance.now();
    this.#strikes = now - this.#lastKillAt <= STRIKE_WINDOW_MS ? this.#strikes + 1 : 1;
    this.#lastKillAt = now;
    const wait = this.#strikes < 2 ? 0 : Math.min(this.#maxBackoffMs, this.#backoffMs * 2 ** (this.#strikes - 2));
    this.#backoffUntil = now + wait;
    this.#lastKill = `${reasonText[reason]}, ${this.#strikes} in a row`;
    this.#event({ type: 'killed', reason, pid, message: `rule sandbox ${what}${wait > 0 ? `; next start in ${wait} ms` : ''}` });
  }

  #failAll(err: SibylError): void {
    const all = [...this.#pending.values()];
    this.#pending.clear();
    this.#idleCheck();
    for (const p of all) p.reject(err);
  }

  #busyCheck(): void {
    if (this.#watchdog) return;
    this.#lastProgress = performance.now();
    const limit = this.#options.timeoutMs + 50 + this.#graceMs;
    this.#watchdog = setInterval(() => {
      if (performance.now() - this.#lastProgress <= limit) return;
      const child = this.#child;
      if (child) this.#kill(child, 'deadline', `silent for more than ${limit} ms with calls in flight`);
      this.#failAll(new SibylError('DEADLINE_EXCEEDED', `rule did not finish within ${this.#options.timeoutMs} ms; its sandbox was restarted`));
    }, Math.min(100, limit));
    this.#watchdog.unref();
  }

  #idleCheck(): void {
    if (this.#pending.size > 0 || !this.#watchdog) return;
    clearInterval(this.#watchdog);
    this.#watchdog = undefined;
  }

  /**
   * Same contract as RuleSandbox.run, plus: rejects at once with CANCELLED or DEADLINE_EXCEEDED when `signal`
   * aborts; UNAVAILABLE while restarts back off after repeated kills, or when a kill for an earlier call's
   * overrun ends this call too.
   */
  async run(rows: readonly FeatureRow[], signal: AbortSignal, models?: readonly ModelOutputs[]): Promise<OutputRow[]> {
    if (this.#disposed) throw new SibylError('FAILED_PRECONDITION', 'model version is unloaded');
    if (signal.aborted) throw abortError(signal);
    if (rows.length === 0) return [];
    let child: Child;
    for (;;) {
      const current = this.#child;
      if (!current) {
        const wait = this.#backoffUntil - performance.now();
        if (wait > 0) throw new SibylError('UNAVAILABLE', `rule sandbox is restarting after it was killed (${this.#lastKill}); retry in ${Math.ceil(wait)} ms`);
        child = this.#spawn();
        break;
      }
      // An earlier call may have left the isolate running: wait for the verdict (at most overrunGraceMs) rather
      // than queue behind it in a process about to be killed.
      if (!current.check) {
        child = current;
        break;
      }
      await untilAborted(current.check.over, signal);
      if (this.#disposed) throw new SibylError('FAILED_PRECONDITION', 'model version is unloaded');
    }
    await child.ready;
    if (signal.aborted) throw abortError(signal);
    if (this.#child !== child) throw new SibylError('UNAVAILABLE', `rule sandbox was restarted before the call ran (${this.#lastKill})`);
    const id = this.#nextId++;
    const c = child;
    return new Promise<OutputRow[]>((resolve, reject) => {
      const onAbort = (): void => {
        if (!this.#pending.delete(id)) return;
        this.#idleCheck();
        if (c.proc.connected) c.proc.send({ t: 'cancel', id } satisfies ToSandbox);
        reject(abortError(signal));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      const done = (): void => signal.removeEventListener('abort', onAbort);
      this.#pending.set(id, {
        resolve: (r) => (done(), resolve(r)),
        reject: (e) => (done(), reject(e)),
      });
      this.#busyCheck();
      c.proc.send({ t: 'run', id, rows, models } satisfies ToSandbox);
    });
  }

  /** Stops the child after in-flight calls settle and removes its cgroup; later calls reject FAILED_PRECONDITION. Idempotent. */
  async dispose(): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    while (this.#pending.size > 0) await new Promise((r) => setTimeout(r, 5));
    const child = this.#child;
    this.#child = undefined;
    if (child) {
      child.killedByUs = true;
      this.#endCheck(child);
      const exited = new Promise((r) => child.proc.once('exit', r));
      if (child.proc.exitCode === null && child.proc.signalCode === null) {
        if (child.proc.connected) child.proc.disconnect();
        const hard = setTimeout(() => child.proc.kill('SIGKILL'), 2000);
        await exited;
        clearTimeout(hard);
      }
    }
    await this.#cgroup?.remove();
  }
}

/** What the call that left its isolate running did. */
const abandoned: Record<Exclude<KillReason, 'crash'> | 'crash', string> = {
  deadline: 'a call was abandoned at its deadline',
  memory: 'a call failed at its memory limit',
  crash: 'a call failed',
};

const reasonText: Record<KillReason, string> = {
  deadline: 'it kept running past its deadline',
  memory: 'it reached its memory limit',
  crash: 'it crashed',
};

/** Resolves with `p`, or rejects with the abort error as soon as `signal` aborts. */
function untilAborted(p: Promise<void>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(abortError(signal));
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => reject(abortError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    });
  });
}

function logEvent(e: SandboxEvent): void {
  process.stderr.write(JSON.stringify({ level: 40, time: Date.now(), component: 'rules-sandbox', ...e, msg: e.message, message: undefined }) + '\n');
}
