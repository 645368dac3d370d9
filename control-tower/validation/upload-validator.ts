/**
 * The gate before anything is stored: an uploaded bundle zip is unpacked, its manifest validated (with at least one
 * test case, and every declared output expected by some case), its model loaded and its test cases run, in a separate process with a heap limit and a deadline (validation-child.ts). The zip
 * is untrusted and so is the model file: fuzzed ONNX files have crashed onnxruntime, so a crash, a signal, running
 * out of memory or time is a clean rejection here, never a dead control tower. Everything the validation writes
 * stays under `workDir` and is removed afterwards, accepted or not.
 *
 * One child process per validation (Node 24 started with `--max-old-space-size`); at most `maxConcurrent` run at
 * once, the others wait their turn (the deadline counts from the start of their own process).
 */
import { fork } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { ZipLimits } from '../../runtimes/bundle/index.ts';
import { Code, SibylError, type CodeName } from '../../core/errors.ts';
import { requireTestCases, validateManifest, type Manifest, type TestCase } from '../../runtimes/manifest.ts';
import type { ChildReply, ChildRequest, Verdict } from './validation-child.ts';

export type { Check, Verdict } from './validation-child.ts';

export interface ValidatedUpload {
  readonly manifest: Manifest;
  /** sha256 of the zip, hex. */
  readonly sha256: string;
  /** Size of the zip, bytes. */
  readonly sizeBytes: number;
}

export interface UploadValidator {
  /**
   * Resolves when the bundle is acceptable. Rejects with INVALID_ARGUMENT and a message that says exactly what was
   * wrong (the zip entry, the manifest field, the model's mismatch, the failing test case with expected and actual,
   * that the validation process crashed, or that it ran out of time or memory, naming the budget: the same bundle
   * would fail again, so it is not a retryable RESOURCE_EXHAUSTED). UNAVAILABLE after `close`. Safe to call
   * concurrently.
   */
  validate(zip: Buffer): Promise<ValidatedUpload>;
  /**
   * Runs the same gate in the same kind of process, stores nothing, and resolves with every check, every test case
   * (row, outputs, problems, time) and `rows` run as cases with nothing expected. Rejects only when the process
   * could not give an answer (crashed, out of time or memory: the messages of `validate`), or UNAVAILABLE after
   * `close`.
   */
  inspect(zip: Buffer, rows: readonly TestCase[]): Promise<Verdict>;
  /** Kills validations still running (they reject) and refuses new ones; resolves once their files are removed. */
  close(): Promise<void>;
}

export interface UploadValidatorOptions {
  /** Where uploads are unpacked while validated (created; each validation in its own entries, removed after). */
  readonly workDir: string;
  /** Deadline of one validation process, ms (default 60 000). */
  readonly timeoutMs?: number;
  /** The setting `timeoutMs` comes from, named in the rejection of a validation that runs out of time (e.g. SIBYL_VALIDATION_TIMEOUT_MS). */
  readonly timeoutSetting?: string;
  /** V8 heap limit of the validation process, MiB (default 1024). Native memory (onnxruntime's) is not bounded by it. */
  readonly maxOldSpaceMb?: number;
  /** Limits on the zip (default DEFAULT_ZIP_LIMITS). */
  readonly limits?: Partial<ZipLimits>;
  /** Validation processes running at once (default 2); more validations wait. */
  readonly maxConcurrent?: number;
}

// `.ts` in a checkout, `.js` in the package compiled for installing (tsconfig.pack.json).
const CHILD = new URL(`./validation-child${import.meta.url.slice(import.meta.url.lastIndexOf('.'))}`, import.meta.url).pathname;
/** Bytes of the child's stderr kept to recognise how it died (the tail: V8 prints its OOM report last). */
const STDERR_TAIL = 16 * 1024;

export function createUploadValidator(options: UploadValidatorOptions): UploadValidator {
  const workDir = resolve(options.workDir);
  const timeoutMs = options.timeoutMs ?? 60_000;
  const maxOldSpaceMb = options.maxOldSpaceMb ?? 1024;
  const maxConcurrent = Math.max(1, options.maxConcurrent ?? 2);
  const limits = options.limits ?? {};
  const running = new Set<() => void>();
  const pending = new Set<Promise<unknown>>();
  const queue: (() => void)[] = [];
  let active = 0;
  let closed = false;

  async function turn(): Promise<void> {
    if (active < maxConcurrent) {
      active++;
      return;
    }
    await new Promise<void>((resolveTurn) => queue.push(resolveTurn));
  }
  function release(): void {
    const next = queue.shift();
    if (next) next();
    else active--;
  }

  async function validateOne(zip: Buffer): Promise<ValidatedUpload> {
    const sha256 = createHash('sha256').update(zip).digest('hex');
    const manifest = await inChild(zip, undefined);
    return { manifest: manifest as Manifest, sha256, sizeBytes: zip.byteLength };
  }

  /** The child's answer: the manifest (gate, no rows) or the verdict (inspect, with these rows). */
  async function inChild(zip: Buffer, rows: readonly TestCase[] | undefined): Promise<Manifest | Verdict> {
    if (closed) throw new SibylError('UNAVAILABLE', 'the upload validator is closed');
    await turn();
    const id = randomUUID();
    const zipFile = join(workDir, `${id}.zip`);
    const rowsFile = join(workDir, `${id}.rows.json`);
    const unpackDir = join(workDir, id);
    try {
      if (closed) throw new SibylError('UNAVAILABLE', 'the upload validator is closed');
      await mkdir(workDir, { recursive: true });
      await writeFile(zipFile, zip, { flag: 'wx', mode: 0o600 });
      // Rows go in a file: the request travels as one argument, which the kernel caps at 128 KiB.
      if (rows) await writeFile(rowsFile, JSON.stringify(rows), { flag: 'wx', mode: 0o600 });
      return await runChild({ zipFile, unpackDir, limits, ...(rows ? { inspect: { rowsFile } } : {}) });
    } finally {
      await rm(zipFile, { force: true }).catch(() => undefined);
      await rm(rowsFile, { force: true }).catch(() => undefined);
      await rm(unpackDir, { recursive: true, force: true }).catch(() => undefined);
      release();
    }
  }

  function runChild(request: ChildRequest): Promise<Manifest | Verdict> {
    return new Promise((resolvePromise, reject) => {
      const child = fork(CHILD, [JSON.stringify(request)], {
        execArgv: [`--max-old-space-size=${maxOldSpaceMb}`, '--disable-warning=ExperimentalWarning'],
        stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
        env: { ...process.env, NODE_OPTIONS: '' },
        serialization: 'json',
      });
      let stderr = '';
      child.stderr?.on('data', (d: Buffer) => {
        stderr = (stderr + d.toString()).slice(-STDERR_TAIL);
      });
      let reply: unknown;
      let timedOut = false;
      const kill = () => child.kill('SIGKILL');
      running.add(kill);
      const timer = setTimeout(() => {
        timedOut = true;
        kill();
      }, timeoutMs);
      child.on('message', (m) => (reply ??= m));
      child.on('error', (err) => {
        clearTimeout(timer);
        running.delete(kill);
        kill();
        reject(new SibylError('INTERNAL', 'the validation process could not be started', { cause: err }));
      });
      // 'close' (not 'exit'): stdio is drained, so the stderr tail is complete.
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        running.delete(kill);
        try {
          resolvePromise(outcome(reply, code, signal, timedOut, stderr, request.inspect !== undefined));
        } catch (err) {
          reject(err);
        }
      });
    });
  }

  function outcome(reply: unknown, code: number | null, signal: NodeJS.Signals | null, timedOut: boolean, stderr: string, inspecting: boolean): Manifest | Verdict {
    const r = reply as Partial<ChildReply> | undefined;
    if (inspecting && r?.ok === true && code === 0 && r.verdict) {
      // Checked like any input from the child: a manifest in the verdict is validated again.
      const v = r.verdict;
      return { ...v, ...(v.manifest ? { manifest: validateManifest(v.manifest) } : {}) };
    }
    // The child handled untrusted input: its reply is checked like any other input.
    if (r?.ok === true && code === 0 && r.manifest) {
      const manifest = validateManifest(r.manifest);
      requireTestCases(manifest);
      return manifest;
    }
    if (r?.ok === false && typeof r.message === 'string') {
      const replyCode: CodeName = typeof r.code === 'string' && r.code in Code ? (r.code as CodeName) : 'INVALID_ARGUMENT';
      throw new SibylError(replyCode, r.message.slice(0, 32_000));
    }
    if (closed) throw new SibylError('UNAVAILABLE', 'the upload validator was closed during the validation');
    // Out of time or memory is the bundle's doing (its model, its cases): refused for good, naming the budget.
    if (timedOut) {
      const setting = options.timeoutSetting ? ` (${options.timeoutSetting})` : '';
      throw new SibylError('INVALID_ARGUMENT', `the validation took longer than ${timeoutMs} ms${setting}; the bundle was rejected: its model must load and pass its test cases within that time`);
    }
    if (/heap out of memory|Allocation failed|Reached heap limit/i.test(stderr)) {
      throw new SibylError('INVALID_ARGUMENT', `the validation ran out of memory (heap limit ${maxOldSpaceMb} MiB); the bundle was rejected: its manifest, model and test cases must fit in that heap`);
    }
    throw new SibylError(
      'INVALID_ARGUMENT',
      `the validation process died (${signal ? `signal ${signal}` : `exit code ${code}`}) before it finished, as a malformed model can make it; the bundle was rejected`,
      { cause: new Error(stderr.slice(-2000)) },
    );
  }

  return {
    inspect(zip, rows) {
      const p = inChild(zip, rows) as Promise<Verdict>;
      pending.add(p);
      const forget = () => pending.delete(p);
      p.then(forget, forget);
      return p;
    },
    validate(zip) {
      const p = validateOne(zip);
      pending.add(p);
      const forget = () => pending.delete(p);
      p.then(forget, forget);
      return p;
    },
    async close() {
      closed = true;
      for (const next of queue.splice(0)) {
        active++; // each woken validation releases a slot when it gives up
        next();
      }
      for (const kill of running) kill();
      await Promise.allSettled([...pending]);
    },
  };
}
