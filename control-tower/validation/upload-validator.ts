/**
 * The gate before anything is stored: an uploaded bundle zip is unpacked, its manifest validated, its model loaded
 * and its test cases run, in a separate process with a memory limit and a deadline (validation-child.ts). The zip
 * is untrusted and so is the model file: fuzzed ONNX files have crashed onnxruntime, so a crash, a signal, running
 * out of memory or time is a clean rejection here, never a dead control tower. Everything the validation writes
 * stays under `workDir` and is removed afterwards, accepted or not.
 */
import { fork } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { SibylError, type CodeName } from '../../runtimes/errors.ts';
import type { Manifest } from '../../runtimes/manifest.ts';

export interface ValidatedUpload {
  readonly manifest: Manifest;
  /** sha256 of the zip, hex. */
  readonly sha256: string;
  readonly sizeBytes: number;
}

export interface UploadValidator {
  /**
   * Resolves when the bundle is acceptable. Rejects with INVALID_ARGUMENT and a message that says exactly what was
   * wrong (the zip entry, the manifest field, the model's mismatch, the failing test case with expected and actual),
   * or RESOURCE_EXHAUSTED when the validation ran out of memory or time.
   */
  validate(zip: Buffer): Promise<ValidatedUpload>;
  /** Kills validations still running. */
  close(): Promise<void>;
}

export interface UploadValidatorOptions {
  /** Where uploads are unpacked while validated (created; each validation in its own subdirectory). */
  readonly workDir: string;
  /** Deadline of one validation, ms (default 60 000). */
  readonly timeoutMs?: number;
  /** V8 heap limit of the validation process, MiB (default 1024). */
  readonly maxOldSpaceMb?: number;
}

const CHILD = new URL('./validation-child.ts', import.meta.url).pathname;

export function createUploadValidator(options: UploadValidatorOptions): UploadValidator {
  const workDir = resolve(options.workDir);
  const timeoutMs = options.timeoutMs ?? 60_000;
  const maxOldSpaceMb = options.maxOldSpaceMb ?? 1024;
  const running = new Set<() => void>();

  return {
    async validate(zip) {
      const sha256 = createHash('sha256').update(zip).digest('hex');
      const id = randomUUID();
      const zipFile = join(workDir, `${id}.zip`);
      const unpackDir = join(workDir, id);
      await mkdir(workDir, { recursive: true });
      await writeFile(zipFile, zip, { flag: 'wx' });
      try {
        const manifest = await runChild(zipFile, unpackDir);
        return { manifest, sha256, sizeBytes: zip.byteLength };
      } finally {
        await rm(zipFile, { force: true });
        await rm(unpackDir, { recursive: true, force: true });
      }
    },
    async close() {
      for (const kill of running) kill();
    },
  };

  function runChild(zipFile: string, unpackDir: string): Promise<Manifest> {
    return new Promise((resolvePromise, reject) => {
      const child = fork(CHILD, [zipFile, unpackDir], {
        execArgv: [`--max-old-space-size=${maxOldSpaceMb}`, '--disable-warning=ExperimentalWarning'],
        stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
        env: { ...process.env, NODE_OPTIONS: '' },
      });
      let stderr = '';
      child.stderr?.on('data', (d: Buffer) => {
        if (stderr.length < 4000) stderr += d.toString();
      });
      let reply: { ok: boolean; manifest?: Manifest; code?: CodeName; message?: string } | undefined;
      let timedOut = false;
      const kill = () => child.kill('SIGKILL');
      running.add(kill);
      const timer = setTimeout(() => {
        timedOut = true;
        kill();
      }, timeoutMs);
      child.on('message', (m) => (reply = m as typeof reply));
      child.on('error', (err) => {
        clearTimeout(timer);
        running.delete(kill);
        reject(new SibylError('INTERNAL', 'the validation process could not start', { cause: err }));
      });
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        running.delete(kill);
        if (reply?.ok && reply.manifest) return resolvePromise(reply.manifest);
        if (reply && !reply.ok) return reject(new SibylError(reply.code ?? 'INVALID_ARGUMENT', reply.message ?? 'invalid bundle'));
        if (timedOut) return reject(new SibylError('RESOURCE_EXHAUSTED', `validation took longer than ${timeoutMs} ms; the bundle was rejected`));
        if (/heap out of memory|Allocation failed/i.test(stderr)) {
          return reject(new SibylError('RESOURCE_EXHAUSTED', `validation ran out of memory (limit ${maxOldSpaceMb} MiB); the bundle was rejected`));
        }
        reject(new SibylError('INVALID_ARGUMENT', `the model crashed the validation process (${signal ?? `exit code ${code}`}); the bundle was rejected`));
      });
    });
  }
}
