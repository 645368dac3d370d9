import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { assertPortsFree } from '../../loadtest/lib/processes.ts';
import { alive } from '../helpers/pids.ts';

const dir = mkdtempSync(join(tmpdir(), 'sibyl-processes-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * A benchmark run in miniature: starts one server child through startChild, prints its pid, then waits (or exits at
 * once with `exitAtOnce`).
 */
function runScript(exitAtOnce: boolean): string {
  const file = join(dir, `run-${exitAtOnce ? 'exit' : 'wait'}.ts`);
  writeFileSync(
    file,
    `import { startChild } from ${JSON.stringify(resolve('loadtest/lib/processes.ts'))};
const child = startChild('sleeper', process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { logFile: ${JSON.stringify(join(dir, 'sleeper.log'))} });
process.stdout.write(String(child.pid) + '\\n');
${exitAtOnce ? 'process.exit(0);' : 'setInterval(() => {}, 1000);'}
`,
  );
  return file;
}

async function gone(pid: number, withinMs: number): Promise<boolean> {
  const until = Date.now() + withinMs;
  while (Date.now() < until) {
    if (!alive(pid)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return !alive(pid);
}

/** Starts the run, reads its child's pid; `stop` (if given) is sent to the run then. */
async function childOfRun(exitAtOnce: boolean, stop?: NodeJS.Signals): Promise<{ child: number; runExit: Promise<number | null> }> {
  const run = spawn(process.execPath, [runScript(exitAtOnce)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const runExit = new Promise<number | null>((r) => run.once('exit', (code) => r(code)));
  const child = await new Promise<number>((resolvePid, reject) => {
    run.stdout!.once('data', (d: Buffer) => resolvePid(Number(d.toString().trim())));
    run.once('exit', () => reject(new Error('the run exited before naming its child')));
  });
  if (stop) run.kill(stop);
  return { child, runExit };
}

describe('benchmark child processes', () => {
  it('refuses a port another server holds, naming it, and passes a free one', async () => {
    const holder = createServer();
    await new Promise<void>((r) => holder.listen(0, '127.0.0.1', () => r()));
    const port = (holder.address() as AddressInfo).port;
    await expect(assertPortsFree([port])).rejects.toThrow(new RegExp(`port ${port} on 127\\.0\\.0\\.1 is in use`));
    await new Promise<void>((r) => holder.close(() => r()));
    await expect(assertPortsFree([port])).resolves.toBeUndefined();
  });

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`stops the servers a run started when the run gets ${signal}`, async () => {
      const { child, runExit } = await childOfRun(false, signal);
      expect(await runExit).toBe(signal === 'SIGINT' ? 130 : 143);
      expect(await gone(child, 5000)).toBe(true);
    });
  }

  it('stops them when the run exits without stopping them', async () => {
    const { child, runExit } = await childOfRun(true);
    expect(await runExit).toBe(0);
    expect(await gone(child, 5000)).toBe(true);
  });
});
