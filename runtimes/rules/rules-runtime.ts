/**
 * The rules runtime: a rule is a JS module in the bundle (`export function predict(features, ctx)` returning the
 * outputs, or a promise of them), run in an isolated-vm isolate (rule-sandbox.ts) with the manifest's time and
 * memory limits (settings.ts), no Node APIs, no network, no timers, no host objects.
 *
 * Isolation (`isolation` option):
 * - `process` (default): each loaded rule version gets its own sandbox process (process-sandbox.ts), held by the
 *   kernel (containment.ts: a memory cgroup, a CPU throttle after a deadline overrun, an unprivileged user). A
 *   hostile rule cannot stall, crash or exhaust the gateway process, nor keep a core busy after its answer; this
 *   costs a process hop per call (see README.md for numbers) and one Node process (~90 MB RSS, ~40 MB of it
 *   its own) per loaded rule version.
 * - `in-process`: the isolate lives in the calling process. Faster per call, but a non-interruptible operation
 *   stalls this process's thread while the isolate is disposed and V8 may exceed the memory limit; for trusted
 *   rules, tools and benchmarks only. The process must run with `node --no-node-snapshot` (isolated-vm's rule).
 *
 * Every call sees the rule as freshly loaded: no state survives from one call to the next (rule-sandbox.ts).
 *
 * Errors of `predict` (all SibylError): INTERNAL "rule error: ..." (the rule threw, changed a frozen built-in, or
 * returned outputs that are missing, of the wrong type or not declared as a row); DEADLINE_EXCEEDED (past
 * `rules.timeoutMs`); RESOURCE_EXHAUSTED (past `rules.memoryMb` or the kernel's limit, or outputs over the size
 * limits, or its sandbox process died); UNAVAILABLE (restarts backing off after its process was killed twice in a
 * row, or the process was killed for an earlier call's overrun while this call waited in it); CANCELLED /
 * DEADLINE_EXCEEDED when the caller's signal aborts; FAILED_PRECONDITION after dispose.
 * `load` rejects INVALID_ARGUMENT for a bundle that is not `runtime: rules`, bad `rules:` settings, a missing or
 * unreadable rule file, a rule that does not compile, imports anything, fails at its top level (including by
 * changing the frozen realm), uses top-level `await` or exports no `predict`.
 *
 * Composition extension point: `RulesPredictContext.models[i]` (outputs of other models for row i, by model name)
 * reaches the rule as `ctx.models`. Nothing fills it yet; a composing pipeline stage would.
 */
import { lstat, readFile, realpath } from 'node:fs/promises';
import path from 'node:path';
import type { FeatureRow, LoadedModel, ModelBundle, OutputRow, PredictContext, Runtime } from '../contract.ts';
import { SibylError } from '../../core/errors.ts';
import { outputSpecs } from '../manifest.ts';
import { abortError } from '../onnx/abort-error.ts';
import { ProcessSandbox, type KillReason, type ProcessSandboxOptions } from './process-sandbox.ts';
import { RuleSandbox, type ModelOutputs, type SandboxOptions } from './rule-sandbox.ts';
import { rulesSettings } from './settings.ts';

/** Largest rule file, bytes. */
export const MAX_RULE_BYTES = 1 << 20;

export interface RulesRuntimeOptions extends ProcessSandboxOptions {
  /** Where rule isolates live (default `process`). */
  readonly isolation?: 'process' | 'in-process';
}

export interface RulesPredictContext extends PredictContext {
  /** Outputs of other models per row (ctx.models inside the rule); default `{}` for every row. */
  readonly models?: readonly ModelOutputs[];
}

export interface RulesLoadedModel extends LoadedModel {
  predict(rows: readonly FeatureRow[], ctx: RulesPredictContext): Promise<OutputRow[]>;
  /** Sandboxes built so far: 1 after load, +1 per rebuild (after an OOM, a hang or a crash). */
  readonly restarts: number;
  /** Sandbox processes killed or lost, by reason (all 0 in process-less isolation). */
  readonly kills: Readonly<Record<KillReason, number>>;
  /** The sandbox process's id (undefined in process-less isolation, and between a kill and the next call): for tests. */
  readonly pid: number | undefined;
}

export interface RulesRuntime extends Runtime {
  readonly kind: 'rules';
  load(bundle: ModelBundle): Promise<RulesLoadedModel>;
  /** Nothing runtime-wide to stop (each model owns its sandbox); present for symmetry with the other runtimes. */
  close(): Promise<void>;
}

export function createRulesRuntime(opts: RulesRuntimeOptions = {}): RulesRuntime {
  const isolation = opts.isolation ?? 'process';

  async function load(bundle: ModelBundle): Promise<RulesLoadedModel> {
    const { manifest } = bundle;
    if (manifest.runtime !== 'rules') throw new SibylError('INVALID_ARGUMENT', `runtime: is ${manifest.runtime}, not rules`);
    const settings = rulesSettings(manifest);
    const source = await readRule(bundle.dir, settings.file);
    const options: SandboxOptions = {
      source,
      fileName: settings.file,
      model: { name: manifest.name, version: manifest.version },
      outputs: outputSpecs(manifest),
      timeoutMs: settings.timeoutMs,
      memoryMb: settings.memoryMb,
    };
    return isolation === 'in-process' ? inProcessModel(await RuleSandbox.create(options)) : processModel(await ProcessSandbox.start(options, opts));
  }

  return { kind: 'rules', load, close: async () => {} };
}

function processModel(sandbox: ProcessSandbox): RulesLoadedModel {
  return {
    predict: (rows, ctx) => sandbox.run(rows, ctx.signal, ctx.models),
    dispose: () => sandbox.dispose(),
    get restarts() {
      return sandbox.starts;
    },
    get kills() {
      return sandbox.kills;
    },
    get pid() {
      return sandbox.pid;
    },
  };
}

function inProcessModel(sandbox: RuleSandbox): RulesLoadedModel {
  let disposed = false;
  let inflight = 0;
  let drained: (() => void) | undefined;
  return {
    async predict(rows, ctx) {
      if (disposed) throw new SibylError('FAILED_PRECONDITION', 'model version is unloaded');
      if (ctx.signal.aborted) throw abortError(ctx.signal);
      inflight++;
      let onAbort: (() => void) | undefined;
      try {
        const aborted = new Promise<never>((_, reject) => {
          onAbort = () => reject(abortError(ctx.signal));
          ctx.signal.addEventListener('abort', onAbort, { once: true });
        });
        return await Promise.race([sandbox.run(rows, ctx.models, () => ctx.signal.aborted), aborted]);
      } finally {
        if (onAbort) ctx.signal.removeEventListener('abort', onAbort);
        if (--inflight === 0) drained?.();
      }
    },
    async dispose() {
      if (disposed) return;
      disposed = true;
      if (inflight > 0) await new Promise<void>((r) => (drained = r));
      sandbox.dispose();
    },
    get restarts() {
      return sandbox.builds;
    },
    kills: Object.freeze({ deadline: 0, memory: 0, crash: 0 }),
    pid: undefined,
  };
}

/** The rule's source; the file must be a regular file inside the bundle (no link out of it), at most MAX_RULE_BYTES. */
async function readRule(dir: string, file: string): Promise<string> {
  const full = path.join(dir, file);
  const st = await lstat(full).catch(() => undefined);
  if (!st) throw new SibylError('INVALID_ARGUMENT', `rules.file: "${file}" is not in the bundle`);
  const real = await realpath(full).catch(() => undefined);
  const root = await realpath(dir).catch(() => dir);
  if (!real || (real !== root && !real.startsWith(root + path.sep))) throw new SibylError('INVALID_ARGUMENT', `rules.file: "${file}" resolves outside the bundle`);
  const target = await lstat(real);
  if (!target.isFile()) throw new SibylError('INVALID_ARGUMENT', `rules.file: "${file}" is not a regular file`);
  if (target.size > MAX_RULE_BYTES) throw new SibylError('INVALID_ARGUMENT', `rules.file: "${file}" is ${target.size} bytes, more than ${MAX_RULE_BYTES}`);
  return readFile(real, 'utf8');
}
