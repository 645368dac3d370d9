/**
 * A packaged Lambda function under the real AWS Lambda Runtime Interface Emulator (aws-lambda-rie, built by
 * scripts/lambda/tools.sh) with Node's runtime interface client (aws-lambda-ric from npm: what Lambda's nodejs
 * runtimes run), on free loopback ports. The emulator starts the runtime at the first invocation (the cold start),
 * as Lambda does; `freeze` / `thaw` stop and continue the runtime's process (SIGSTOP / SIGCONT) the way Lambda
 * freezes an environment between invocations.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '../..');
export const RIE = join(ROOT, '.tools/bin/aws-lambda-rie');
export const RIC = join(ROOT, '.tools/lambda-ric/node_modules/aws-lambda-ric/index.mjs');

export interface EmulatedFunction {
  /** Invokes the function with an event; resolves with the parsed result (or the raw bytes when not JSON). */
  invoke(event: unknown): Promise<unknown>;
  /** The raw bytes the emulator answered with (a streaming handler's prelude and body). */
  invokeRaw(event: unknown): Promise<Buffer>;
  /** The runtime's process (node running the client and the function), once started by the first invocation. */
  runtimePid(): number | undefined;
  freeze(): void;
  thaw(): void;
  /** Everything the emulator and the function wrote (stdout and stderr). */
  output(): string;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolvePort(port));
    });
  });
}

export function toolsInstalled(): boolean {
  return existsSync(RIE) && existsSync(RIC);
}

/** Starts the emulator for the function unpacked in `dir` with `handler` (e.g. index.handler) and the given environment. */
export async function startFunction(dir: string, handler: string, env: Record<string, string>, timeoutS = 30): Promise<EmulatedFunction> {
  if (!toolsInstalled()) throw new Error('aws-lambda-rie or aws-lambda-ric is missing: run scripts/lambda/tools.sh');
  const [invokePort, apiPort] = [await freePort(), await freePort()];
  let out = '';
  const rie: ChildProcess = spawn(
    RIE,
    ['--runtime-api-address', `127.0.0.1:${apiPort}`, '--runtime-interface-emulator-address', `127.0.0.1:${invokePort}`, process.execPath, RIC, handler],
    {
      cwd: dir,
      // The emulator passes its own environment on to the function, as Lambda passes the function's configuration.
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', AWS_LAMBDA_FUNCTION_TIMEOUT: String(timeoutS), AWS_LAMBDA_FUNCTION_NAME: 'sibyl', AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '1769', LAMBDA_TASK_ROOT: dir, LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  rie.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  rie.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const url = `http://127.0.0.1:${invokePort}/2015-03-31/functions/function/invocations`;
  // The emulator listens at once; the runtime starts with the first invocation.
  for (let i = 0; ; i++) {
    try {
      await fetch(`http://127.0.0.1:${invokePort}/`);
      break;
    } catch {
      if (i > 100 || rie.exitCode !== null) throw new Error(`the emulator did not start:\n${out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  let pid: number | undefined;
  const runtimePid = (): number | undefined => {
    if (pid) return pid;
    try {
      const children = execFileSync('ps', ['-o', 'pid=', '--ppid', String(rie.pid)]).toString().trim().split(/\s+/).filter(Boolean);
      pid = children.length ? Number(children[0]) : undefined;
    } catch {
      pid = undefined;
    }
    return pid;
  };
  async function invokeRaw(event: unknown): Promise<Buffer> {
    const res = await fetch(url, { method: 'POST', body: JSON.stringify(event) });
    const bytes = Buffer.from(await res.arrayBuffer());
    if (res.status !== 200) throw new Error(`the emulator answered ${res.status}: ${bytes.toString()}\n${out.slice(-4000)}`);
    return bytes;
  }
  return {
    invokeRaw,
    async invoke(event) {
      const bytes = await invokeRaw(event);
      try {
        return JSON.parse(bytes.toString('utf8'));
      } catch {
        return bytes;
      }
    },
    runtimePid,
    freeze() {
      const p = runtimePid();
      if (p) process.kill(p, 'SIGSTOP');
    },
    thaw() {
      const p = runtimePid();
      if (p) process.kill(p, 'SIGCONT');
    },
    output: () => out,
    async stop() {
      const p = runtimePid();
      if (p) {
        try {
          process.kill(p, 'SIGCONT');
        } catch {
          // already gone
        }
      }
      if (rie.exitCode === null) {
        const exited = new Promise((r) => rie.once('exit', r));
        rie.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
        if (rie.exitCode === null) rie.kill('SIGKILL');
      }
      if (p) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          // exited with the emulator
        }
      }
    },
  };
}
