import { describe, expect, it } from 'vitest';
import { cpuQuotaCores, parseCfsQuota, parseCpuMax } from '../../gateway/pipeline/cpu-quota.ts';

/** A fake file system: path → text. */
function files(map: Record<string, string>): (path: string) => string | undefined {
  return (path) => map[path];
}

describe('cpuQuotaCores', () => {
  it('reads a cgroup v2 quota, the smallest on the way to the root', () => {
    expect(cpuQuotaCores(files({ '/proc/self/cgroup': '0::/kubepods/pod1/c1\n', '/sys/fs/cgroup/kubepods/pod1/c1/cpu.max': '50000 100000\n' }))).toBe(0.5);
    expect(
      cpuQuotaCores(
        files({
          '/proc/self/cgroup': '0::/kubepods/pod1/c1\n',
          '/sys/fs/cgroup/kubepods/pod1/c1/cpu.max': 'max 100000\n',
          '/sys/fs/cgroup/kubepods/pod1/cpu.max': '25000 100000\n',
          '/sys/fs/cgroup/cpu.max': '200000 100000\n',
        }),
      ),
    ).toBe(0.25);
    // A container that sees its own cgroup as the root.
    expect(cpuQuotaCores(files({ '/proc/self/cgroup': '0::/\n', '/sys/fs/cgroup/cpu.max': '150000 100000\n' }))).toBe(1.5);
  });

  it('reads a cgroup v1 quota from the cpu controller, however the controllers are grouped', () => {
    const cgroups = '12:pids:/\n4:cpu,cpuacct:/docker/abc\n0::/\n';
    expect(cpuQuotaCores(files({ '/proc/self/cgroup': cgroups, '/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us': '75000\n', '/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us': '100000\n' }))).toBe(0.75);
    expect(cpuQuotaCores(files({ '/proc/self/cgroup': '1:cpu:/\n', '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '-1\n', '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000\n' }))).toBeUndefined();
  });

  it('is undefined without a quota or without cgroups', () => {
    expect(cpuQuotaCores(files({}))).toBeUndefined();
    expect(cpuQuotaCores(files({ '/proc/self/cgroup': '0::/a\n', '/sys/fs/cgroup/a/cpu.max': 'max 100000' }))).toBeUndefined();
    expect(parseCpuMax('garbage')).toBeUndefined();
    expect(parseCpuMax('0 100000')).toBeUndefined();
    expect(parseCfsQuota('-1', '100000')).toBeUndefined();
    expect(parseCfsQuota('50000', undefined)).toBeUndefined();
  });
});
