/**
 * What the kernel enforces on a rule's sandbox process (process-sandbox.ts), beyond isolated-vm's own limits,
 * which a hostile rule can outrun (uninterruptible typed-array fills, WebAssembly memories: see README.md).
 *
 * Detected once per process (`containment()`), best available first:
 * - memory: a cgroup per sandbox, a child of this process's own cgroup: v2 (`memory.max`, `memory.swap.max` 0,
 *   `memory.oom.group`) when the unified hierarchy has the memory controller for it, else v1
 *   (`memory.limit_in_bytes`, and `memory.memsw.limit_in_bytes` equal to it where swap is accounted). The kernel's
 *   OOM killer then kills a process of that cgroup only: the sandbox, never the gateway. Without a writable
 *   cgroup: RLIMIT_AS on the child (through `sh -c 'ulimit -v'`), set well above V8's ~10 GiB of reservations, so
 *   it bounds runaway growth, but only loosely.
 * - CPU: the sandbox's cgroup (v2 `cpu.max`, v1 `cpu.cfs_quota_us`) throttles a sandbox to a fifth of a core
 *   between a deadline overrun and the check that kills it; without one it spins at full speed until then.
 * - user: when this process is root, the child runs as nobody (65534:65534), if the files it needs are readable
 *   by others; otherwise it runs as this process's user.
 * What is not available is said once, through the sandbox's event callback.
 *
 * Cgroups are named `sibyl-rules-<gateway pid>-<n>`; empty ones left by a process that no longer exists are
 * removed when detection runs.
 */
import { accessSync, constants, existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

export type MemoryBound = 'cgroup-v2' | 'cgroup-v1' | 'rlimit-as' | 'none';

export interface Containment {
  readonly memory: MemoryBound;
  /** Whether a sandbox can be throttled by a cgroup CPU quota. */
  readonly cpu: boolean;
  /** Set when this process is root: the sandbox runs as this user and group. */
  readonly user?: { readonly uid: number; readonly gid: number };
  /** What is missing, one sentence each (empty when everything is enforced). */
  readonly missing: readonly string[];
  /** Where sandbox cgroups are made (internal). */
  readonly dirs: { readonly memory?: string; readonly cpu?: string; readonly v2?: string };
}

/** The unprivileged user and group a root gateway runs its sandboxes as (`nobody` on Debian and most images). */
export const SANDBOX_UID = 65534;
export const SANDBOX_GID = 65534;

/**
 * Address-space limit of a sandbox without cgroups, bytes: V8 reserves ~10.2 GiB of address space in a sandbox
 * process before any rule runs (an 8 GiB reservation and a 512 MiB code range per isolate, measured with Node 24),
 * so the limit sits 1.5 GiB above that plus 4x the rule's heap limit.
 */
export function addressSpaceLimit(memoryMb: number): number {
  return (10.5 * 1024 + 1536 + 4 * memoryMb) * 1024 * 1024;
}

let detected: Containment | undefined;
let sequence = 0;

/** Detects (once) what this process can enforce on its sandboxes. `override` forces a memory bound (tests). */
export function containment(override?: { memory?: MemoryBound }): Containment {
  detected ??= detect();
  if (override?.memory && override.memory !== detected.memory) {
    const memory = override.memory;
    return { ...detected, memory, cpu: memory.startsWith('cgroup') && detected.cpu, missing: [...detected.missing, `memory bound forced to ${memory}`] };
  }
  return detected;
}

function detect(): Containment {
  const missing: string[] = [];
  const own = ownCgroups();
  const mounts = cgroupMounts();
  const dirs: { memory?: string; cpu?: string; v2?: string } = {};
  let memory: MemoryBound = 'none';
  let cpu = false;

  const v2 = mounts.find((m) => m.type === 'cgroup2');
  if (v2 && own.v2 !== undefined) {
    const dir = within(v2, own.v2);
    const available = readText(path.join(dir, 'cgroup.controllers')).split(/\s+/);
    if (available.includes('memory')) {
      for (const c of ['memory', 'cpu']) {
        if (available.includes(c) && !readText(path.join(dir, 'cgroup.subtree_control')).split(/\s+/).includes(c)) tryWrite(path.join(dir, 'cgroup.subtree_control'), `+${c}`);
      }
      if (probe(dir, ['memory.max'])) {
        dirs.v2 = dir;
        memory = 'cgroup-v2';
        cpu = probe(dir, ['cpu.max']);
      }
    }
  }
  if (memory === 'none') {
    const m = mounts.find((x) => x.type === 'cgroup' && x.controllers.includes('memory'));
    const p = own.v1.get('memory');
    if (m && p !== undefined && probe(within(m, p), ['memory.limit_in_bytes'])) {
      dirs.memory = within(m, p);
      memory = 'cgroup-v1';
    }
    const c = mounts.find((x) => x.type === 'cgroup' && x.controllers.includes('cpu'));
    const cp = own.v1.get('cpu') ?? own.v1.get('cpu,cpuacct');
    if (c && cp !== undefined && probe(within(c, cp), ['cpu.cfs_quota_us'])) {
      dirs.cpu = within(c, cp);
      cpu = true;
    }
  }
  if (memory === 'none') {
    if (existsSync('/bin/sh')) {
      memory = 'rlimit-as';
      missing.push('no writable memory cgroup: sandbox memory is bounded by RLIMIT_AS only, loosely (about 1.5 GiB above V8\'s 10 GiB of reservations)');
    } else missing.push('no writable memory cgroup and no /bin/sh for RLIMIT_AS: sandbox memory is bounded only by isolated-vm, which a rule can outrun');
  }
  if (!cpu) missing.push('no writable cpu cgroup: a sandbox that overruns its deadline spins at full speed until it is killed');

  let user: Containment['user'];
  const uid = process.getuid?.();
  if (uid === 0) {
    const unreadable = unreadableByOthers();
    if (unreadable) missing.push(`sandboxes run as root: ${unreadable} is not readable by other users`);
    else user = { uid: SANDBOX_UID, gid: SANDBOX_GID };
  } else missing.push(`not root: sandboxes run as this process's user (uid ${uid ?? 'unknown'}) and cannot be given another`);

  for (const dir of [dirs.v2, dirs.memory, dirs.cpu]) if (dir) removeStale(dir);
  return { memory, cpu, user, missing, dirs };
}

/**
 * One sandbox's cgroups (memory and CPU; one directory under v2, one per controller under v1). Made once per
 * loaded rule version and reused by each of its processes; `remove` after the last one exited. Every write that
 * fails is reported by `create` throwing (the caller then runs the sandbox without it and says so).
 */
export class SandboxCgroup {
  readonly #c: Containment;
  readonly #dirs: string[];
  readonly #memoryDir: string | undefined;
  readonly #cpuDir: string | undefined;
  #throttled = false;

  private constructor(c: Containment, dirs: string[], memoryDir: string | undefined, cpuDir: string | undefined) {
    this.#c = c;
    this.#dirs = dirs;
    this.#memoryDir = memoryDir;
    this.#cpuDir = cpuDir;
  }

  /** Makes the cgroups with this memory limit, bytes. Throws (an Error naming the file) when a write fails. */
  static create(c: Containment, memoryBytes: number): SandboxCgroup {
    const name = `sibyl-rules-${process.pid}-${++sequence}`;
    const made: string[] = [];
    try {
      if (c.memory === 'cgroup-v2' && c.dirs.v2) {
        const dir = path.join(c.dirs.v2, name);
        mkdirSync(dir);
        made.push(dir);
        writeFileSync(path.join(dir, 'memory.max'), String(memoryBytes));
        if (existsSync(path.join(dir, 'memory.swap.max'))) writeFileSync(path.join(dir, 'memory.swap.max'), '0');
        if (existsSync(path.join(dir, 'memory.oom.group'))) writeFileSync(path.join(dir, 'memory.oom.group'), '1');
        return new SandboxCgroup(c, made, dir, c.cpu ? dir : undefined);
      }
      let memoryDir: string | undefined;
      let cpuDir: string | undefined;
      if (c.memory === 'cgroup-v1' && c.dirs.memory) {
        memoryDir = path.join(c.dirs.memory, name);
        mkdirSync(memoryDir);
        made.push(memoryDir);
        writeFileSync(path.join(memoryDir, 'memory.limit_in_bytes'), String(memoryBytes));
        // Swap too (memsw is memory + swap; it must be set after, and not below, the memory limit).
        if (existsSync(path.join(memoryDir, 'memory.memsw.limit_in_bytes'))) writeFileSync(path.join(memoryDir, 'memory.memsw.limit_in_bytes'), String(memoryBytes));
      }
      if (c.cpu && c.dirs.cpu) {
        cpuDir = path.join(c.dirs.cpu, name);
        mkdirSync(cpuDir);
        made.push(cpuDir);
      }
      return new SandboxCgroup(c, made, memoryDir, cpuDir);
    } catch (err) {
      for (const dir of made.reverse()) tryRmdir(dir);
      throw err;
    }
  }

  /** Moves a process into the cgroups (before it is given the rule). Throws when a write fails. */
  add(pid: number): void {
    for (const dir of this.#dirs) writeFileSync(path.join(dir, 'cgroup.procs'), String(pid));
  }

  /** OOM kills the kernel has made in the memory cgroup so far (0 when it cannot tell). */
  oomKills(): number {
    if (!this.#memoryDir) return 0;
    const file = this.#c.memory === 'cgroup-v2' ? 'memory.events' : 'memory.oom_control';
    const m = /^oom_kill (\d+)$/m.exec(readText(path.join(this.#memoryDir, file)));
    return m ? Number(m[1]) : 0;
  }

  /** Memory the cgroup's processes use now, bytes (for tests and logs; 0 when unknown). */
  memoryUsage(): number {
    if (!this.#memoryDir) return 0;
    const text = readText(path.join(this.#memoryDir, this.#c.memory === 'cgroup-v2' ? 'memory.current' : 'memory.usage_in_bytes'));
    return Number(text.trim()) || 0;
  }

  /** Holds the cgroup to a fifth of a core (on) or lifts the quota (off). A failed write is ignored: it only slows a spinning sandbox. */
  throttle(on: boolean): void {
    if (!this.#cpuDir || on === this.#throttled) return;
    this.#throttled = on;
    if (this.#c.memory === 'cgroup-v2' && this.#cpuDir === this.#memoryDir) tryWrite(path.join(this.#cpuDir, 'cpu.max'), on ? '20000 100000' : 'max 100000');
    else tryWrite(path.join(this.#cpuDir, 'cpu.cfs_quota_us'), on ? '20000' : '-1');
  }

  /** Removes the cgroups; call once no process is left in them. Retries briefly (the kernel frees a killed process's cgroup asynchronously). */
  async remove(): Promise<void> {
    for (const dir of [...this.#dirs].reverse()) {
      for (let i = 0; i < 50 && !tryRmdir(dir); i++) await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/** This process's cgroup paths: the v2 path, and v1's by controller. */
function ownCgroups(): { v2?: string; v1: Map<string, string> } {
  const v1 = new Map<string, string>();
  let v2: string | undefined;
  for (const line of readText('/proc/self/cgroup').split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    if (m[1] === '0' && m[2] === '') v2 = m[3]!;
    else {
      v1.set(m[2]!, m[3]!);
      for (const c of m[2]!.split(',')) v1.set(c, m[3]!);
    }
  }
  return { v2, v1 };
}

interface Mount {
  readonly type: 'cgroup' | 'cgroup2';
  /** The cgroup path the mount shows at its mount point. */
  readonly root: string;
  readonly at: string;
  readonly controllers: string[];
}

function cgroupMounts(): Mount[] {
  const mounts: Mount[] = [];
  for (const line of readText('/proc/self/mountinfo').split('\n')) {
    const [left, right] = line.split(' - ');
    if (!left || !right) continue;
    const f = left.split(' ');
    const [type, , opts] = right.split(' ');
    if ((type !== 'cgroup' && type !== 'cgroup2') || f[3] === undefined || f[4] === undefined) continue;
    mounts.push({ type, root: unescape(f[3]), at: unescape(f[4]), controllers: (opts ?? '').split(',') });
  }
  return mounts;
}

function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** The directory of cgroup `p` under a mount (whose own root may be below the hierarchy's root in a container). */
function within(m: Mount, p: string): string {
  const rel = m.root !== '/' && (p === m.root || p.startsWith(m.root + '/')) ? p.slice(m.root.length) : p;
  return path.join(m.at, rel);
}

/** Whether a child cgroup can be made under `dir` with these files in it, and removed again. */
function probe(dir: string, files: string[]): boolean {
  const test = path.join(dir, `sibyl-rules-${process.pid}-probe`);
  try {
    mkdirSync(test);
  } catch {
    return false;
  }
  try {
    for (const f of files) accessSync(path.join(test, f), constants.W_OK);
    return true;
  } catch {
    return false;
  } finally {
    tryRmdir(test);
  }
}

function removeStale(dir: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const m = /^sibyl-rules-(\d+)-/.exec(name);
    if (!m || Number(m[1]) === process.pid || existsSync(`/proc/${m[1]}`)) continue;
    tryRmdir(path.join(dir, name));
  }
}

/** The first of the files a sandbox process must read that other users cannot: '' when all can. */
function unreadableByOthers(): string {
  const need = [process.execPath, path.join(import.meta.dirname, `sandbox-process${path.extname(import.meta.filename)}`), path.dirname(fileURLToPath(import.meta.resolve('isolated-vm'))), path.dirname(fileURLToPath(import.meta.resolve('acorn')))];
  for (const p of need) {
    let at = p;
    for (;;) {
      try {
        const st = statSync(at);
        const bits = st.isDirectory() ? 0o005 : 0o004;
        if ((st.mode & bits) !== bits) return at;
      } catch {
        return at;
      }
      const up = path.dirname(at);
      if (up === at) break;
      at = up;
    }
  }
  return '';
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

function tryWrite(file: string, text: string): boolean {
  try {
    writeFileSync(file, text);
    return true;
  } catch {
    return false;
  }
}

function tryRmdir(dir: string): boolean {
  try {
    rmdirSync(dir);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT';
  }
}
