/**
 * A rule's sandbox process, seen from the gateway: one forked Node process per loaded rule version holding its
 * isolate (sandbox-process.ts). A rule that exhausts memory beyond isolated-vm's limit, crashes V8 or stalls
 * its thread in a non-interruptible operation takes down or freezes that process only.
 *
 * - The child runs with `--no-node-snapshot` (isolated-vm's requirement on Node 20+), an empty environment, no
 *   stdin/stdout; its stderr tail is kept for logs.
 * - Watchdog: while calls are in flight, the child must answer one of them at least every `timeoutMs + graceMs`
 *   (it answers each within `timeoutMs` + 50 ms when healthy); otherwise it is killed (SIGKILL) and its calls
 *   reject DEADLINE_EXCEEDED.
 * - A child that exits on its own fails its in-flight calls with RESOURCE_EXHAUSTED (the usual cause is memory).
 * - Either way the next call starts a fresh child (the rule compiled again: ~tens of ms, see README).
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { FeatureRow, OutputRow } from '../contract.ts';
import { SibylError } from '../../core/errors.ts';
import { abortError } from '../onnx/abort-error.ts';
import type { ModelOutputs, SandboxOptions } from './rule-sandbox.ts';
import type { FromSandbox, ToSandbox } from './sandbox-protocol.ts';

const ENTRY = path.join(import.meta.dirname, 'sandbox-process.ts');

export interface ProcessSandboxOptions {
  /** How long past `timeoutMs` a busy child may stay silent before it is killed, ms (default 1000). */
  readonly graceMs?: number;
  /** Longest wait for a child to start and compile the rule, ms (default 10 000). */
  readonly startTimeoutMs?: number;
  /** Called with what went wrong in a child (exit, kill, stderr tail), for logs. */
  readonly onEvent?: (event: string) => void;
}

interface Pending {
  readonly resolve: (rows: OutputRow[]) => void;
  readonly reject: (err: unknown) => void;
}

interface Child {
  readonly proc: ChildProcess;
  readonly ready: Promise<void>;
  stderr: string;
  killedByUs: boolean;
}

export class ProcessSandbox {
  readonly #options: SandboxOptions;
  readonly #graceMs: number;
  readonly #startTimeoutMs: number;
  readonly #onEvent: ((event: string) => void) | undefined;
  readonly #pending = new Map<number, Pending>();
  #child: Child | undefined;
  #nextId = 1;
  #lastProgress = 0;
  #watchdog: NodeJS.Timeout | undefined;
  #disposed = false;
  /** Children started (1 at load, +1 per restart): for tests and metrics. */
  starts = 0;

  private constructor(options: SandboxOptions, p: ProcessSandboxOptions) {
    this.#options = options;
    this.#graceMs = p.graceMs ?? 1000;
    this.#startTimeoutMs = p.startTimeoutMs ?? 10_000;
    this.#onEvent = p.onEvent;
  }

  /** Starts the child and compiles the rule in it; rejects like RuleSandbox.create (INVALID_ARGUMENT for a bad rule), UNAVAILABLE when the child cannot start. */
  static async start(options: SandboxOptions, p: ProcessSandboxOptions = {}): Promise<ProcessSandbox> {
    const s = new ProcessSandbox(options, p);
    await s.#spawn().ready;
    return s;
  }

  /** The child's process id (undefined between a crash and the next call). */
  get pid(): number | undefined {
    return this.#child?.proc.pid;
  }

  #spawn(): Child {
    this.starts++;
    const proc = fork(ENTRY, [], {
      execArgv: ['--no-node-snapshot', '--max-old-space-size=128'],
      serialization: 'advanced',
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      env: {},
    });
    let settle!: { resolve: () => void; reject: (err: unknown) => void };
    const ready = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
    ready.catch(() => undefined);
    const child: Child = { proc, ready, stderr: '', killedByUs: false };
    const startTimer = setTimeout(() => {
      this.#kill(child);
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
        this.#kill(child);
        settle.reject(new SibylError(msg.code, msg.message, { cause: msg.cause }));
      } else this.#answer(msg);
    });
    proc.on('error', (err) => {
      clearTimeout(startTimer);
      settle.reject(new SibylError('UNAVAILABLE', 'rule sandbox could not start', { cause: err }));
    });
    proc.on('exit', (code, signal) => {
      clearTimeout(startTimer);
      settle.reject(new SibylError('UNAVAILABLE', `rule sandbox exited while starting (${signal ?? `code ${code}`})`, { cause: child.stderr }));
      if (this.#child !== child) return;
      this.#child = undefined;
      if (!child.killedByUs) {
        this.#onEvent?.(`rule sandbox exited (${signal ?? `code ${code}`}): ${child.stderr.slice(-500)}`);
        this.#failAll(new SibylError('RESOURCE_EXHAUSTED', 'rule sandbox exited during the call (out of memory or crashed); it is restarted', { cause: child.stderr }));
      }
    });
    proc.send({ t: 'init', options: this.#options } satisfies ToSandbox);
    this.#child = child;
    return child;
  }

  #answer(msg: Extract<FromSandbox, { t: 'done' | 'fail' }>): void {
    this.#lastProgress = performance.now();
    const p = this.#pending.get(msg.id!);
    if (!p) return; // cancelled or failed already
    this.#pending.delete(msg.id!);
    this.#idleCheck();
    if (msg.t === 'done') p.resolve(msg.rows);
    else p.reject(new SibylError(msg.code, msg.message, { cause: msg.cause }));
  }

  #kill(child: Child): void {
    child.killedByUs = true;
    if (this.#child === child) this.#child = undefined;
    child.proc.kill('SIGKILL');
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
      if (child) {
        this.#onEvent?.(`rule sandbox silent for more than ${limit} ms with calls in flight; killed`);
        this.#kill(child);
      }
      this.#failAll(new SibylError('DEADLINE_EXCEEDED', `rule did not finish within ${this.#options.timeoutMs} ms; its sandbox was restarted`));
    }, Math.min(100, limit));
    this.#watchdog.unref();
  }

  #idleCheck(): void {
    if (this.#pending.size > 0 || !this.#watchdog) return;
    clearInterval(this.#watchdog);
    this.#watchdog = undefined;
  }

  /** Same contract as RuleSandbox.run, plus: rejects at once with CANCELLED or DEADLINE_EXCEEDED when `signal` aborts. */
  async run(rows: readonly FeatureRow[], signal: AbortSignal, models?: readonly ModelOutputs[]): Promise<OutputRow[]> {
    if (this.#disposed) throw new SibylError('FAILED_PRECONDITION', 'model version is unloaded');
    if (signal.aborted) throw abortError(signal);
    if (rows.length === 0) return [];
    const child = this.#child ?? this.#spawn();
    await child.ready;
    if (signal.aborted) throw abortError(signal);
    const id = this.#nextId++;
    return new Promise<OutputRow[]>((resolve, reject) => {
      const onAbort = (): void => {
        if (!this.#pending.delete(id)) return;
        this.#idleCheck();
        if (child.proc.connected) child.proc.send({ t: 'cancel', id } satisfies ToSandbox);
        reject(abortError(signal));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      const done = (): void => signal.removeEventListener('abort', onAbort);
      this.#pending.set(id, {
        resolve: (r) => (done(), resolve(r)),
        reject: (e) => (done(), reject(e)),
      });
      this.#busyCheck();
      child.proc.send({ t: 'run', id, rows, models } satisfies ToSandbox);
    });
  }

  /** Stops the child after in-flight calls settle; later calls reject FAILED_PRECONDITION. Idempotent. */
  async dispose(): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    while (this.#pending.size > 0) await new Promise((r) => setTimeout(r, 5));
    const child = this.#child;
    this.#child = undefined;
    if (!child) return;
    child.killedByUs = true;
    const exited = new Promise((r) => child.proc.once('exit', r));
    if (child.proc.exitCode === null && child.proc.signalCode === null) {
      child.proc.disconnect();
      const hard = setTimeout(() => child.proc.kill('SIGKILL'), 2000);
      await exited;
      clearTimeout(hard);
    }
  }
}
