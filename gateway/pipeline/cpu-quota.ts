/**
 * The CPU quota of this process's cgroup, in cores (0.5 for a Kubernetes limit of 500m), or undefined when there is
 * none. Admission control divides the process's CPU share by it: a process held to half a core is saturated at a
 * CPU share of 0.5, not 1.
 *
 * cgroup v2 (`0::/path` in /proc/self/cgroup): `cpu.max` ("max 100000" or "50000 100000"); cgroup v1 (a line whose
 * controllers include `cpu`): `cpu.cfs_quota_us` (-1: none) over `cpu.cfs_period_us`. The smallest quota on the way
 * from the process's cgroup up to the root applies, as in the kernel.
 */
import { readFileSync } from 'node:fs';

/** Reads a file's text, or undefined when it cannot be read. */
export type ReadText = (path: string) => string | undefined;

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

export function cpuQuotaCores(read: ReadText = readText): number | undefined {
  const cgroups = read('/proc/self/cgroup');
  if (!cgroups) return undefined;
  let best: number | undefined;
  const take = (cores: number | undefined): void => {
    if (cores !== undefined && (best === undefined || cores < best)) best = cores;
  };
  for (const line of cgroups.split('\n')) {
    const [id, controllers, path] = splitLine(line);
    if (path === undefined) continue;
    if (id === '0' && controllers === '') {
      for (const root of ['/sys/fs/cgroup', '/sys/fs/cgroup/unified']) {
        for (const dir of ancestors(path)) take(parseCpuMax(read(`${root}${dir}/cpu.max`)));
      }
    } else if (controllers!.split(',').includes('cpu')) {
      for (const root of ['/sys/fs/cgroup/cpu', `/sys/fs/cgroup/${controllers}`]) {
        for (const dir of ancestors(path)) take(parseCfsQuota(read(`${root}${dir}/cpu.cfs_quota_us`), read(`${root}${dir}/cpu.cfs_period_us`)));
      }
    }
  }
  return best;
}

/** `cpu.max` of cgroup v2 in cores: "50000 100000" → 0.5; "max 100000" or unreadable → undefined. */
export function parseCpuMax(text: string | undefined): number | undefined {
  if (!text) return undefined;
  const [quota, period] = text.trim().split(/\s+/);
  return cores(Number(quota), Number(period ?? 100000));
}

/** cgroup v1's `cpu.cfs_quota_us` over `cpu.cfs_period_us` in cores; -1 (no quota) or unreadable → undefined. */
export function parseCfsQuota(quota: string | undefined, period: string | undefined): number | undefined {
  if (!quota || !period) return undefined;
  return cores(Number(quota.trim()), Number(period.trim()));
}

function cores(quota: number, period: number): number | undefined {
  return Number.isFinite(quota) && Number.isFinite(period) && quota > 0 && period > 0 ? quota / period : undefined;
}

/** "4:cpu,cpuacct:/a/b" → ["4", "cpu,cpuacct", "/a/b"]; the path may itself contain ':'. */
function splitLine(line: string): [string?, string?, string?] {
  const a = line.indexOf(':');
  const b = a < 0 ? -1 : line.indexOf(':', a + 1);
  if (b < 0) return [];
  return [line.slice(0, a), line.slice(a + 1, b), line.slice(b + 1)];
}

/** "/a/b" → ["/a/b", "/a", ""] (the root as ""). */
function ancestors(path: string): string[] {
  const out: string[] = [];
  let p = path === '/' ? '' : path.replace(/\/$/, '');
  for (;;) {
    out.push(p);
    if (p === '') return out;
    p = p.slice(0, p.lastIndexOf('/'));
  }
}
