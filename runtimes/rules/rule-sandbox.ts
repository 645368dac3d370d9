/**
 * One rule version in one isolated-vm isolate: compiled once, then called serially (an isolate runs one thing at
 * a time; calls queue here so each call's time limit starts when it runs, not when it was queued).
 *
 * Used inside a sandbox process (sandbox-process.ts, the default) or in the calling process (`isolation:
 * 'in-process'`). Per call:
 * - isolated-vm's `timeout` stops synchronous loops at `timeoutMs`;
 * - a host timer at `timeoutMs + slackMs` ends calls it cannot stop (a promise that never settles, a
 *   non-interruptible V8 operation): the call rejects DEADLINE_EXCEEDED and the isolate is thrown away;
 * - an isolate disposed for exceeding `memoryMb` makes the call reject RESOURCE_EXHAUSTED;
 * a fresh isolate is built (the rule compiled again) before the next call in both cases.
 * The rule sees copies: rows and ctx are copied in, outputs copied out after being bounded in the isolate.
 *
 * No state survives from one call to the next: the isolate's realm is frozen before the rule loads
 * (runner-source.ts), and the rule's module body runs again at the start of every call as a function
 * (rule-module.ts), so its module-level variables, Maps and closures are new on each call. A rule that changes a
 * global or a built-in fails (at load when its top level does it, else its call: a TypeError, INTERNAL).
 */
import { randomFillSync } from 'node:crypto';
import ivm from 'isolated-vm';
import type { FeatureRow, OutputRow } from '../contract.ts';
import { SibylError } from '../../core/errors.ts';
import type { OutputSpec } from '../manifest.ts';
import { checkOutputRows, ruleError } from './output-check.ts';
import { RUNNER_SOURCE } from './runner-source.ts';

export interface SandboxOptions {
  /** The rule module's source (`export function predict(features, ctx)`). */
  readonly source: string;
  /** `source` as rule-module.ts's ruleScript makes it; made at create when absent (a sandbox process gets it made). */
  readonly script?: string;
  /** Shown in stack traces of rule errors, e.g. `rule.js`. */
  readonly fileName: string;
  readonly model: { readonly name: string; readonly version: string };
  readonly outputs: readonly OutputSpec[];
  /** CPU time of one call (a whole batch), ms. */
  readonly timeoutMs: number;
  /** The isolate's heap limit, MiB. */
  readonly memoryMb: number;
  /** Extra wall time past `timeoutMs` before the host gives up on a call, ms (default 50). */
  readonly slackMs?: number;
  /** Longest string output, characters (default 65 536). */
  readonly maxString?: number;
  /** Longest vector output, elements (default 65 536). */
  readonly maxVector?: number;
  /** Characters plus elements of all outputs of one call (default 4 Mi). */
  readonly maxUnits?: number;
}

/** Per-row outputs of other models, by model name: the extension point for composed rules (not filled yet). */
export type ModelOutputs = Readonly<Record<string, OutputRow>>;

interface Instance {
  readonly isolate: ivm.Isolate;
  readonly context: ivm.Context;
  readonly run: ivm.Reference<(input: unknown) => unknown>;
}

const LOAD_TIMEOUT_MS = 1000;
/** Messages of a TypeError from changing a frozen object. */
const FROZEN_HINT = /not extensible|read[- ]only|Cannot (re)?define|Cannot assign|Cannot add property|Cannot delete/i;

export class RuleSandbox {
  readonly #opts: SandboxOptions;
  readonly #script: string;
  #instance: Instance | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #disposed = false;
  /** Isolates built (1 at load, +1 per rebuild): for tests and metrics. */
  builds = 0;
  /** Isolates thrown away after a call that may have left them running (host deadline, memory limit). */
  drops = 0;
  #settled: Promise<boolean> = Promise.resolve(true);

  private constructor(opts: SandboxOptions, script: string) {
    this.#opts = opts;
    this.#script = script;
  }

  /** Compiles the rule and runs its top level. INVALID_ARGUMENT when it does not compile, imports, throws or loops at load, or has no `predict` function. */
  static async create(opts: SandboxOptions): Promise<RuleSandbox> {
    // The parser is imported only where the script was not made already (not in a sandbox process: ~15 ms of its start).
    const script = opts.script ?? (await import('./rule-module.ts')).ruleScript(opts.source, opts.fileName);
    const sandbox = new RuleSandbox(opts, script);
    sandbox.#instance = await sandbox.#build();
    return sandbox;
  }

  async #build(): Promise<Instance> {
    const o = this.#opts;
    const script = this.#script;
    const isolate = new ivm.Isolate({ memoryLimit: o.memoryMb });
    this.builds++;
    try {
      const context = await isolate.createContext();
      // The runner locks the realm down before any of the rule's code runs (runner-source.ts).
      const makeRunner = await (await isolate.compileScript(RUNNER_SOURCE)).run(context, { reference: true, timeout: LOAD_TIMEOUT_MS });
      let rule: ivm.Reference<() => unknown>;
      try {
        const compiled = await isolate.compileScript(script, { filename: `file:///${o.fileName}`, lineOffset: -1 });
        rule = (await compiled.run(context, { reference: true, timeout: LOAD_TIMEOUT_MS })) as ivm.Reference<() => unknown>;
      } catch (err) {
        throw invalid(`${o.fileName} does not compile as a rule: ${messageOf(err)}`, err);
      }
      // The top level runs on every call; run it once now so that a rule that throws, loops or changes the
      // frozen realm at its top level is refused at load, not at its first call.
      let predict: ivm.Reference<unknown>;
      try {
        predict = (await rule.apply(undefined, [], { result: { reference: true }, timeout: LOAD_TIMEOUT_MS })) as ivm.Reference<unknown>;
      } catch (err) {
        throw invalid(`${o.fileName} failed while loading: ${messageOf(err)}${FROZEN_HINT.test(messageOf(err)) ? ' (rules run in a frozen realm: globalThis and the built-in objects cannot be changed)' : ''}`, err);
      }
      if (predict.typeof !== 'function') throw invalid(`${o.fileName} must export a function named predict (export function predict(features, ctx) { ... })`);
      predict.release();
      const limits = { maxString: o.maxString ?? 65_536, maxVector: o.maxVector ?? 65_536, maxUnits: o.maxUnits ?? 4 * 1024 * 1024 };
      const run = (await makeRunner.apply(undefined, [rule.derefInto(), new ivm.ExternalCopy(o.outputs.map((s) => s.name)).copyInto(), new ivm.ExternalCopy(limits).copyInto()], {
        result: { reference: true },
        timeout: LOAD_TIMEOUT_MS,
      })) as ivm.Reference<(input: unknown) => unknown>;
      return { isolate, context, run };
    } catch (err) {
      if (!isolate.isDisposed) isolate.dispose();
      if (err instanceof SibylError) throw err;
      throw invalid(`${o.fileName} could not be loaded: ${messageOf(err)}`, err);
    }
  }

  /**
   * Runs the rule on each row; one output row per input row. `models[i]` is what row i's ctx.models holds.
   * Rejects: INTERNAL "rule error: ..." when the rule throws or returns outputs the manifest does not declare
   * (or of the wrong type); DEADLINE_EXCEEDED past `timeoutMs`; RESOURCE_EXHAUSTED past `memoryMb` or when the
   * outputs exceed the size limits; FAILED_PRECONDITION after dispose; CANCELLED when `cancelled()` says so as
   * the call's turn comes (the caller gave up while it was queued).
   */
  run(rows: readonly FeatureRow[], models?: readonly ModelOutputs[], cancelled?: () => boolean): Promise<OutputRow[]> {
    const next = this.#queue.then(() => {
      if (cancelled?.()) throw new SibylError('CANCELLED', 'the call was cancelled before the rule ran');
      return this.#runNow(rows, models);
    });
    this.#queue = next.catch(() => undefined);
    return next;
  }

  async #runNow(rows: readonly FeatureRow[], models: readonly ModelOutputs[] | undefined): Promise<OutputRow[]> {
    if (this.#disposed) throw new SibylError('FAILED_PRECONDITION', 'model version is unloaded');
    if (rows.length === 0) return [];
    const o = this.#opts;
    const inst = (this.#instance ??= await this.#build());
    const input = new ivm.ExternalCopy({ rows, models, model: o.model.name, version: o.model.version, seed: nextSeed() }).copyInto({ release: true });
    let timer: NodeJS.Timeout | undefined;
    const hostDeadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new SibylError('DEADLINE_EXCEEDED', `rule did not finish within ${o.timeoutMs} ms`)), o.timeoutMs + (o.slackMs ?? 50));
    });
    let verdict: Record<string, unknown>;
    try {
      verdict = (await Promise.race([inst.run.apply(undefined, [input], { timeout: o.timeoutMs, result: { copy: true, promise: true } }), hostDeadline])) as Record<string, unknown>;
    } catch (err) {
      throw this.#failure(inst, err);
    } finally {
      clearTimeout(timer);
    }
    if (verdict.limit !== undefined) throw new SibylError('RESOURCE_EXHAUSTED', `rule output too large: ${String(verdict.limit)}`);
    if (verdict.bad !== undefined) throw ruleError(String(verdict.bad));
    const byIndex = verdict.ok as Record<string, unknown>;
    const raw = new Array<unknown>(rows.length);
    for (let i = 0; i < rows.length; i++) raw[i] = byIndex[i];
    return checkOutputRows(o.outputs, raw);
  }

  /** The SibylError for a failed call; drops the isolate when it cannot be trusted to answer again. */
  #failure(inst: Instance, err: unknown): SibylError {
    const o = this.#opts;
    if (inst.isolate.isDisposed) {
      this.#drop(inst);
      return new SibylError('RESOURCE_EXHAUSTED', `rule exceeded its memory limit (${o.memoryMb} MiB)`, { cause: err });
    }
    if (err instanceof SibylError) {
      // The host deadline: the isolate may still be running (or waiting forever); start over with a new one.
      this.#drop(inst);
      return new SibylError(err.code, err.message, { cause: err });
    }
    const msg = messageOf(err);
    if (msg === 'Script execution timed out.') return new SibylError('DEADLINE_EXCEEDED', `rule did not finish within ${o.timeoutMs} ms`, { cause: err });
    if (/memory limit|Array buffer allocation failed|Isolate was disposed/i.test(msg)) {
      this.#drop(inst);
      return new SibylError('RESOURCE_EXHAUSTED', `rule exceeded its memory limit (${o.memoryMb} MiB)`, { cause: err });
    }
    return ruleError(msg.slice(0, 500), err);
  }

  #drop(inst: Instance): void {
    if (this.#instance === inst) this.#instance = undefined;
    this.drops++;
    // Disposing a running isolate does not stop it (a getter that loops while isolated-vm reads a thrown object
    // keeps its thread spinning), and disposing one stuck in a non-interruptible operation blocks this thread
    // until the operation ends: first look whether it still runs, answer settled(), then dispose.
    const idle = stillRunning(inst.isolate).then((running) => {
      setImmediate(() => {
        if (!inst.isolate.isDisposed) inst.isolate.dispose();
      });
      return !running;
    });
    const before = this.#settled;
    this.#settled = Promise.all([before, idle]).then(([a, b]) => a && b);
  }

  /**
   * Resolves once every isolate thrown away so far has been looked at: true when none of them was still running
   * (they are disposed), false when one kept running past its call (its thread spins until the process ends:
   * the sandbox process should be killed).
   */
  settled(): Promise<boolean> {
    return this.#settled;
  }

  /** Heap used by the current isolate, bytes (0 when none is built). */
  heapUsed(): number {
    const inst = this.#instance;
    if (!inst || inst.isolate.isDisposed) return 0;
    return inst.isolate.getHeapStatisticsSync().used_heap_size;
  }

  /** Frees the isolate; later calls reject FAILED_PRECONDITION. Idempotent. */
  dispose(): void {
    this.#disposed = true;
    const inst = this.#instance;
    this.#instance = undefined;
    if (inst && !inst.isolate.isDisposed) inst.isolate.dispose();
  }
}

/** Random words for Math.random's per-call seed, drawn 4 096 at a time: one draw per call cost ~9 µs. */
const seeds = new Uint32Array(4096);
let seedAt = seeds.length;

/** Four fresh random 32-bit words, as a string of 32 hex digits (one string copies into the isolate cheaper than an array). */
function nextSeed(): string {
  if (seedAt >= seeds.length) {
    randomFillSync(seeds);
    seedAt = 0;
  }
  let hex = '';
  for (let i = 0; i < 4; i++) hex += seeds[seedAt++]!.toString(16).padStart(8, '0');
  return hex;
}

/**
 * How long an isolate is watched after its call was abandoned, ms: longer than one CPU-quota period (100 ms), so
 * that a spinning isolate in a throttled sandbox (a fifth of a core) shows at least 10 ms of CPU in it.
 */
const WATCH_MS = 150;

/** Whether an isolate used more than 5 ms of CPU during WATCH_MS (a disposed isolate uses none). */
async function stillRunning(isolate: ivm.Isolate): Promise<boolean> {
  const cpu = (): bigint | undefined => {
    try {
      return isolate.isDisposed ? undefined : isolate.cpuTime;
    } catch {
      return undefined; // disposed meanwhile
    }
  };
  const before = cpu();
  if (before === undefined) return false;
  await new Promise((r) => setTimeout(r, WATCH_MS));
  const after = cpu();
  return after !== undefined && after - before > 5_000_000n;
}

function invalid(message: string, cause?: unknown): SibylError {
  return new SibylError('INVALID_ARGUMENT', message, cause === undefined ? undefined : { cause });
}

/** The text of a thrown value, from any isolate: `Name: message` for errors, else its string form. */
export function messageOf(err: unknown): string {
  if (err instanceof Error) return err.name && err.name !== 'Error' ? `${err.name}: ${err.message}` : err.message;
  try {
    return String(err);
  } catch {
    return 'a value that cannot be shown';
  }
}
