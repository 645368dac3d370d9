import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { cpuCgroupSupport, createCpuCgroup, CpuCgroupUnavailable, withCpuQuota } from '../../loadtest/lib/cpu-cgroup.ts';

/** A process that spins on the CPU until killed. */
function spinner() {
  const child = spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' });
  return { pid: child.pid!, stop: () => new Promise<void>((resolve) => (child.once('exit', () => resolve()), child.kill('SIGKILL'))) };
}

function cgroupOf(pid: number): string {
  return /^\d+:cpu(?:,cpuacct)?:(.*)$/m.exec(readFileSync(`/proc/${pid}/cgroup`, 'utf8'))?.[1] ?? '';
}

const support = cpuCgroupSupport();

describe('CPU quota for benchmark processes (cgroup v1)', () => {
  it.runIf(support.ok)('holds a spinning process to its quota (the kernel throttles it) and removes the group afterwards', async () => {
    const spin = spinner();
    try {
      const cg = createCpuCgroup({ name: 'test-spin', cores: 0.1, periodUs: 10_000 });
      expect(readFileSync(`${cg.dir}/cpu.cfs_quota_us`, 'utf8').trim()).toBe('1000');
      expect(readFileSync(`${cg.dir}/cpu.cfs_period_us`, 'utf8').trim()).toBe('10000');
      cg.add(spin.pid);
      expect(cg.pids()).toEqual([spin.pid]);
      expect(cgroupOf(spin.pid)).toBe(`/${cg.dir.split('/').pop()}`);
      // A spinning process uses its 1 ms per 10 ms period at once: the kernel counts each period it had to stop it.
      // (The kernel adds to the throttled time when a period's throttling ends.)
      while (cg.stat().throttledPeriods < 5 || cg.stat().throttledMs <= 0) await new Promise((r) => setTimeout(r, 20));
      cg.setCores(0.5);
      expect(readFileSync(`${cg.dir}/cpu.cfs_quota_us`, 'utf8').trim()).toBe('5000');
      cg.remove();
      expect(existsSync(cg.dir)).toBe(false);
      expect(cgroupOf(spin.pid)).toBe('/');
      cg.remove();
    } finally {
      await spin.stop();
    }
  });

  it.runIf(support.ok)('withCpuQuota removes its group when the work throws', async () => {
    const spin = spinner();
    let dir = '';
    try {
      await expect(
        withCpuQuota('test-throws', 0.5, [spin.pid], async (cg) => {
          dir = cg.dir;
          expect(cg.pids()).toEqual([spin.pid]);
          throw new Error('boom');
        }),
      ).rejects.toThrow('boom');
      expect(dir).not.toBe('');
      expect(existsSync(dir)).toBe(false);
      expect(cgroupOf(spin.pid)).toBe('/');
    } finally {
      await spin.stop();
    }
  });

  it('says why when no quota can be set here (not root, no cgroup v1 cpu controller), and makes one when it can', () => {
    if (!support.ok) {
      expect(support.why).toMatch(/^(not root|only the unified|no cgroup v1)/);
      expect(() => createCpuCgroup({ name: 'test', cores: 0.5 })).toThrow(CpuCgroupUnavailable);
      expect(() => createCpuCgroup({ name: 'test', cores: 0.5 })).toThrow(/cannot hold processes to a CPU quota: (not root|only the unified|no cgroup v1)/);
      return;
    }
    const cg = createCpuCgroup({ name: 'test-made', cores: 0.5 });
    expect(existsSync(cg.dir)).toBe(true);
    cg.remove();
    expect(existsSync(cg.dir)).toBe(false);
  });

  it('rejects quotas and names the kernel would not take', () => {
    expect(() => createCpuCgroup({ name: 'a/b', cores: 0.5 })).toThrow(/letters, digits/);
    expect(() => createCpuCgroup({ name: 'x', cores: 0 })).toThrow(/at least 1 ms/);
    expect(() => createCpuCgroup({ name: 'x', cores: 0.5, periodUs: 500 })).toThrow(/1000 to 1000000/);
  });
});
