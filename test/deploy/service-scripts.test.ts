/**
 * scripts/services: `start` reuses a server that answers on its port, except a leftover of a checkout that no
 * longer exists (its working directory deleted), which it stops and replaces. Found when a test run's moto, its
 * checkout deleted under it, still answered the health probe and served every AWS call an error page.
 * Shown with Redis (the quickest of the four to start): a copy of the scripts in a throwaway checkout starts it.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/ports.ts';
import { alive } from '../helpers/pids.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const started: number[] = [];

function checkoutCopy(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sibyl-checkout-'));
  mkdirSync(join(dir, 'scripts'));
  cpSync(join(ROOT, 'scripts/services'), join(dir, 'scripts/services'), {
    recursive: true,
    filter: (src) => !src.includes('/kafka/'),
  });
  return dir;
}

function redisScript(root: string, port: number, command: 'start' | 'stop'): { status: number | null; stderr: string } {
  const r = spawnSync('bash', [join(root, 'scripts/services/redis.sh'), command], {
    env: { ...process.env, SIBYL_TEST_REDIS_URL: `redis://127.0.0.1:${port}` },
    encoding: 'utf8',
  });
  return { status: r.status, stderr: r.stderr };
}

function listener(port: number): number | undefined {
  const out = execFileSync('ss', ['-Hltnp', `sport = :${port}`], { encoding: 'utf8' });
  const m = /pid=(\d+)/.exec(out);
  return m ? Number(m[1]) : undefined;
}

afterEach(() => {
  for (const pid of started.splice(0)) if (alive(pid)) process.kill(pid, 'SIGKILL');
});

describe('scripts/services start', () => {
  it('replaces a server left running by a checkout that was deleted', async () => {
    const port = await freePort();
    const gone = checkoutCopy();
    expect(redisScript(gone, port, 'start').status).toBe(0);
    const orphan = listener(port)!;
    started.push(orphan);
    expect(readFileSync(`/proc/${orphan}/cmdline`, 'utf8')).toContain('redis-server');
    rmSync(gone, { recursive: true, force: true });

    const here = checkoutCopy();
    try {
      const r = redisScript(here, port, 'start');
      expect(r.status).toBe(0);
      expect(r.stderr).toContain(`runs in a directory that no longer exists`);
      const server = listener(port)!;
      started.push(server);
      expect(server).not.toBe(orphan);
      expect(alive(orphan)).toBe(false);
      // The new server is this checkout's: its own stop ends it.
      expect(Number(readFileSync(join(here, '.data/services/redis/redis.pid'), 'utf8'))).toBe(server);
      expect(redisScript(here, port, 'stop').status).toBe(0);
      expect(listener(port)).toBeUndefined();
    } finally {
      rmSync(here, { recursive: true, force: true });
    }
  });

  it("reuses another live checkout's server and leaves it running", async () => {
    const port = await freePort();
    const other = checkoutCopy();
    const here = checkoutCopy();
    try {
      expect(redisScript(other, port, 'start').status).toBe(0);
      const server = listener(port)!;
      started.push(server);
      const r = redisScript(here, port, 'start');
      expect(r.status).toBe(0);
      expect(r.stderr).toContain('already answers');
      expect(listener(port)).toBe(server);
      // Not this checkout's to stop.
      redisScript(here, port, 'stop');
      expect(alive(server)).toBe(true);
      expect(redisScript(other, port, 'stop').status).toBe(0);
      expect(alive(server)).toBe(false);
    } finally {
      rmSync(other, { recursive: true, force: true });
      rmSync(here, { recursive: true, force: true });
    }
  });
});
