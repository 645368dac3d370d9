/**
 * Rules that cannot outlive their answer: a rule that stays busy after its deadline, grows native memory past its
 * limit or keeps state across calls is contained by the kernel and by the sandbox, not by its own good manners.
 * After each attack the sandbox process's CPU and resident memory (read from /proc/<pid>/stat and status) come
 * back under the limits within seconds, another rule and an ONNX model loaded in this process keep answering
 * correctly, and no sandbox process is left after dispose. The suite counts calls sent, answered by code, and
 * sandbox processes killed by reason, and prints the counts.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FeatureRow, LoadedModel } from '../../../runtimes/contract.ts';
import { SibylError } from '../../../core/errors.ts';
import { parseManifest } from '../../../runtimes/manifest.ts';
import { createOnnxRuntime, type OnnxRuntime } from '../../../runtimes/onnx/onnx-runtime.ts';
import { addressSpaceLimit, containment, SANDBOX_UID } from '../../../runtimes/rules/containment.ts';
import { memoryLimitBytes, type SandboxEvent } from '../../../runtimes/rules/process-sandbox.ts';
import { createRulesRuntime, type RulesLoadedModel } from '../../../runtimes/rules/rules-runtime.ts';
import { BLEND_OUTPUTS, BLEND_SOURCE, blendExpected, ctx, ruleBundle } from './rule-bundles.ts';

const ATTACKS = `
const attacks = {
  // Busy after the deadline: isolated-vm reads the thrown object's properties outside the call's time limit.
  throwingAccessor: () => { throw { get message() { for (;;) {} }, get stack() { for (;;) {} }, get name() { for (;;) {} } }; },
  // A getter of the returned object that never returns, read while the outputs are copied out.
  getterLoop: () => ({ get result() { for (;;) {} } }),
  asyncGetterLoop: async () => { await null; return { get result() { for (;;) {} } }; },
  // Memory past the limit that isolated-vm cannot stop: an uninterruptible fill of a huge array, typed arrays,
  // a big WebAssembly memory.
  arrayFill: () => ({ result: String(new Array(150e6).fill(1.5).length) }),
  typedGrowth: () => { const keep = []; for (;;) keep.push(new Float64Array(1 << 20).fill(1)); },
  wasmMemory: () => { const m = new WebAssembly.Memory({ initial: 16384 }); new Uint8Array(m.buffer).fill(1); return { result: String(m.buffer.byteLength) }; },
};
export function predict(f) {
  if (f.attack === 'ok') return { result: 'ok:' + f.n };
  return attacks[f.attack]();
}`;

/** Tries every way to remember something from one call to the next; returns what it found from earlier calls. */
const STATEFUL = `
let last;
const seen = new Map();
const list = [];
const box = { value: undefined };
function remember(x) { box.value = x; }
export function predict(f) {
  const found = [];
  if (last !== undefined) found.push('let:' + last);
  if (seen.size > 0) found.push('map:' + [...seen.keys()].join('|'));
  if (list.length > 0) found.push('array:' + list.join('|'));
  if (box.value !== undefined) found.push('closure:' + box.value);
  if (predict.stash !== undefined) found.push('function:' + predict.stash);
  if (RegExp.input !== undefined && RegExp.input !== '') found.push('regexp:' + RegExp.input);
  if (RegExp.lastMatch !== undefined && RegExp.lastMatch !== '') found.push('regexp-match:' + RegExp.lastMatch);
  const tries = [
    () => { globalThis.stash = f.secret; },
    () => { Object.prototype.stash = f.secret; },
    () => { Error.prototype.stash = f.secret; },
    () => { Array.prototype.push.stash = f.secret; },
    () => { Object.getPrototypeOf(function* () {}).stash = f.secret; },
    () => { Object.getOwnPropertyDescriptor(new Error(), 'stack').get.stash = f.secret; },
    () => { Math.stash = f.secret; },
  ];
  let refused = 0;
  for (const t of tries) { try { t(); } catch (e) { refused++; } }
  for (const o of [globalThis, {}, Error.prototype, Array.prototype.push, Math, Object.getPrototypeOf(function* () {}), Object.getOwnPropertyDescriptor(new Error(), 'stack').get]) {
    if (o.stash !== undefined) found.push('builtin:' + o.stash);
  }
  last = f.secret;
  seen.set(f.secret, true);
  list.push(f.secret);
  remember(f.secret);
  predict.stash = f.secret;
  /(.*)/.exec(f.secret);
  // Ordinary code on a frozen realm: assigning what a frozen prototype holds defines it on the object.
  const err = new Error('x'); err.name = 'MyError';
  const o = {}; o.toString = () => 'mine';
  return { result: found.join(';') || 'nothing', refused, ordinary: err.name + ',' + String(o), random: Math.random() };
}`;

interface Expected {
  rows: { features: Record<string, number>; expected: { eta_minutes: number } }[];
}
const ETA_DIR = path.resolve(import.meta.dirname, '../../../models/delivery-eta/1');
const TICK_MS = 10; // USER_HZ is 100 on Linux

/** CPU time used so far by a process (utime + stime), ms; undefined once it is gone. */
function cpuMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (f[0] === 'Z') return undefined;
    return (Number(f[11]) + Number(f[12])) * TICK_MS;
  } catch {
    return undefined;
  }
}

/** Resident memory of a process, bytes; undefined once it is gone. */
function rssBytes(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Processes whose parent is this one (the sandbox children; ONNX runs threads, not processes). */
function children(): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(f[1]) === process.pid && f[0] !== 'Z') out.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Waits until each pid is gone or uses under 20% of a core over a 500 ms window, and its RSS is under `maxRss`;
 * returns the time it took, ms. Fails after `withinMs`.
 */
async function quiet(pids: readonly number[], maxRss: number, withinMs = 5000): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    const before = pids.map(cpuMs);
    await sleep(500);
    const ok = pids.every((pid, i) => {
      const now = cpuMs(pid);
      if (now === undefined) return true;
      const rss = rssBytes(pid) ?? 0;
      return before[i] !== undefined && now - before[i]! < 100 && rss < maxRss;
    });
    if (ok) return performance.now() - t0;
    if (performance.now() - t0 > withinMs) {
      const detail = pids.map((pid, i) => `${pid}: cpu ${String(before[i])} -> ${String(cpuMs(pid))} ms, rss ${String(rssBytes(pid))}`).join('; ');
      throw new Error(`sandbox processes still busy or big after ${withinMs} ms: ${detail}`);
    }
  }
}

describe('rules that cannot outlive their answer', () => {
  const events: SandboxEvent[] = [];
  const rules = createRulesRuntime({ onEvent: (e) => events.push(e) });
  const counts = { sent: 0, answered: {} as Record<string, number> };
  const totals: [string, number, Readonly<Record<string, number>>][] = [];
  const outcomes: string[] = [];
  let onnx: OnnxRuntime;
  let attacker: RulesLoadedModel;
  let stateful: RulesLoadedModel;
  let simple: RulesLoadedModel;
  let eta: LoadedModel;
  let etaRows: FeatureRow[];
  let etaWant: number[];
  const limit = memoryLimitBytes(32);
  const bystanders = { calls: 0, wrong: [] as string[], running: false, done: Promise.resolve() };

  async function send(model: RulesLoadedModel, row: FeatureRow): Promise<{ code: string; message: string; result?: unknown }> {
    counts.sent++;
    const r = await model.predict([row], ctx()).then(
      (rows) => ({ code: 'OK', message: '', result: rows[0]!.result, row: rows[0] }),
      (e: unknown) => ({ code: e instanceof SibylError ? e.code : 'THROWN', message: (e as Error).message }),
    );
    counts.answered[r.code] = (counts.answered[r.code] ?? 0) + 1;
    return r;
  }

  async function bystanderLoop(): Promise<void> {
    let i = 0;
    while (bystanders.running) {
      i++;
      const a = i % 7;
      const [s] = await simple.predict([{ a, b: 1 }], ctx());
      if (JSON.stringify(s) !== JSON.stringify(blendExpected(a, 1))) bystanders.wrong.push(`simple ${JSON.stringify(s)}`);
      const j = i % etaRows.length;
      const [e] = await eta.predict([etaRows[j]!], ctx());
      if (Math.abs((e!.eta_minutes as number) - etaWant[j]!) > 1e-4) bystanders.wrong.push(`eta row ${j}: ${String(e!.eta_minutes)}`);
      bystanders.calls++;
      await sleep(5);
    }
  }

  beforeAll(async () => {
    onnx = createOnnxRuntime();
    attacker = await rules.load(
      await ruleBundle(ATTACKS, {
        name: 'attacker',
        features: [
          { name: 'attack', dtype: 'string', source: 'request', default: 'ok' },
          { name: 'n', dtype: 'float64', source: 'request', default: 0 },
        ],
        outputs: [{ name: 'result', dtype: 'string' }],
        rules: { timeoutMs: 100, memoryMb: 32 },
      }),
    );
    stateful = await rules.load(
      await ruleBundle(STATEFUL, {
        name: 'stateful',
        features: [{ name: 'secret', dtype: 'string', source: 'request', default: '' }],
        outputs: [{ name: 'result', dtype: 'string' }, { name: 'refused', dtype: 'int32' }, { name: 'ordinary', dtype: 'string' }, { name: 'random', dtype: 'float64' }],
      }),
    );
    simple = await rules.load(await ruleBundle(BLEND_SOURCE, { name: 'simple', outputs: BLEND_OUTPUTS }));
    const manifest = parseManifest(readFileSync(path.join(ETA_DIR, 'sibyl.yaml'), 'utf8'));
    eta = await onnx.load({ manifest, dir: ETA_DIR, hash: 'test' });
    const expected = JSON.parse(readFileSync(path.join(ETA_DIR, 'expected.json'), 'utf8')) as Expected;
    etaRows = expected.rows.slice(0, 10).map((r) => r.features);
    etaWant = expected.rows.slice(0, 10).map((r) => r.expected.eta_minutes);
    bystanders.running = true;
    bystanders.done = bystanderLoop();
  });

  afterAll(async () => {
    bystanders.running = false;
    await bystanders.done;
    await attacker?.dispose();
    await stateful?.dispose();
    await simple?.dispose();
    await eta?.dispose();
    await onnx?.close();
  });

  it('runs each sandbox as an unprivileged user with an empty environment, under a kernel memory bound', () => {
    const pid = attacker.pid!;
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter(Boolean);
    expect(env.every((v) => v.startsWith('NODE_CHANNEL_'))).toBe(true);
    const c = containment();
    // As root the sandbox runs as nobody, unless the files it must read are not readable by other users (a checkout
    // under a 0700 directory, as `mktemp -d` makes): then it stays root and containment says why, once.
    const uid = /^Uid:\s+(\d+)/m.exec(status)![1];
    if (process.getuid?.() === 0 && c.user) expect(uid).toBe(String(SANDBOX_UID));
    if (process.getuid?.() === 0 && !c.user) {
      expect(uid).toBe('0');
      const named = /sandboxes run as root: (.*) is not readable by other users/.exec(c.missing.join('\n'))?.[1];
      expect(named).toBeDefined();
      // And it is so: the path it names denies other users (read on a file, read and search on a directory).
      const st = statSync(named!);
      const bits = st.isDirectory() ? 0o005 : 0o004;
      expect(st.mode & bits).not.toBe(bits);
    }
    // CI and this machine run as root with cgroup v1's memory controller writable: the bound must be a cgroup there.
    if (process.getuid?.() === 0) expect(c.memory).toMatch(/^cgroup/);
    const cgroups = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
    if (c.memory.startsWith('cgroup')) expect(cgroups).toMatch(/sibyl-rules-\d+-\d+/);
    expect(readFileSync(`/proc/${pid}/oom_score_adj`, 'utf8').trim()).toBe('1000');
  });

  it.each([
    ['throwingAccessor', ['DEADLINE_EXCEEDED']],
    ['getterLoop', ['DEADLINE_EXCEEDED']],
    ['asyncGetterLoop', ['DEADLINE_EXCEEDED']],
    ['arrayFill', ['DEADLINE_EXCEEDED', 'RESOURCE_EXHAUSTED']],
    ['typedGrowth', ['RESOURCE_EXHAUSTED', 'DEADLINE_EXCEEDED']],
    ['wasmMemory', ['RESOURCE_EXHAUSTED', 'DEADLINE_EXCEEDED']],
  ])('%s: answered %j, then the sandbox is back under its CPU and memory limits within seconds', async (attack, codes) => {
    await sleep(600); // past any restart backoff of the previous attack
    const before = attacker.pid ?? (await send(attacker, { attack: 'ok', n: 0 }), attacker.pid!);
    const t0 = performance.now();
    const r = await send(attacker, { attack, n: 0 });
    const answeredMs = performance.now() - t0;
    expect(codes).toContain(r.code);
    expect(answeredMs).toBeLessThan(3000);
    const pids = [before, ...(attacker.pid && attacker.pid !== before ? [attacker.pid] : [])];
    const quietMs = await quiet(pids, limit);
    outcomes.push(`${attack}: ${r.code} in ${answeredMs.toFixed(0)} ms, quiet ${quietMs.toFixed(0)} ms later, process ${attacker.pid === before ? 'kept' : 'killed'}`);
    await sleep(600);
    expect(await send(attacker, { attack: 'ok', n: 7 })).toMatchObject({ code: 'OK', result: 'ok:7' });
    expect(rssBytes(attacker.pid!)).toBeLessThan(limit);
  });

  it('three busy-after-deadline calls at once do not leave a sandbox spinning', async () => {
    await sleep(600);
    const pid = attacker.pid!;
    const got = await Promise.all(['throwingAccessor', 'throwingAccessor', 'throwingAccessor'].map((a) => send(attacker, { attack: a, n: 0 })));
    for (const g of got) expect(['DEADLINE_EXCEEDED', 'UNAVAILABLE']).toContain(g.code);
    await quiet([pid, ...children()], limit);
  });

  it('backs off restarts of a rule that kills its process on every call, failing calls fast with UNAVAILABLE and the reason', async () => {
    const always = await rules.load(
      await ruleBundle('export function predict(f) { const m = new WebAssembly.Memory({ initial: 16384 }); new Uint8Array(m.buffer).fill(1); return { result: "never" }; }', {
        name: 'always-killed',
        outputs: [{ name: 'result', dtype: 'string' }],
        // The longest deadline a manifest takes, so that where a cgroup bounds memory the kernel's limit usually
        // ends a call first. Not always: in one full CI run the deadline ended one of these calls (not reproduced
        // since, even with dropped caches and busy cores), so the counts below take either reason per kill.
        rules: { timeoutMs: 1000, memoryMb: 32 },
      }),
    );
    try {
      const first = await send(always, { a: 1 });
      const second = await send(always, { a: 2 });
      expect(['RESOURCE_EXHAUSTED', 'DEADLINE_EXCEEDED']).toContain(first.code);
      expect(['RESOURCE_EXHAUSTED', 'DEADLINE_EXCEEDED'], second.message).toContain(second.code);
      // Two kills in a row: restarts back off, and calls fail at once instead of forking a process each.
      const t0 = performance.now();
      const third = await send(always, { a: 3 });
      expect(performance.now() - t0).toBeLessThan(500);
      expect(third.code).toBe('UNAVAILABLE');
      expect(third.message).toMatch(/restarting after it was killed \(it (reached its memory limit|kept running past its deadline), 2 in a row\); retry in \d+ ms/);
      expect(always.kills.memory + always.kills.deadline).toBe(2);
      expect(always.restarts).toBe(2);
      await sleep(400);
      expect(['RESOURCE_EXHAUSTED', 'DEADLINE_EXCEEDED']).toContain((await send(always, { a: 4 })).code);
      expect((await send(always, { a: 5 })).message).toMatch(/3 in a row\); retry in \d+ ms/);
      expect(always.restarts).toBe(3);
      const killedHow = events.filter((e) => e.type === 'killed' && e.model === 'always-killed').map((e) => e.message);
      if (containment().memory.startsWith('cgroup')) expect(always.kills.memory, killedHow.join('\n')).toBeGreaterThanOrEqual(1);
    } finally {
      // Counted even when an assertion above fails, so the tally below reports only its own failures.
      totals.push(['always-killed', always.restarts, always.kills]);
      await always.dispose();
    }
  });

  it('keeps nothing from one call to the next: every call sees the rule as freshly loaded', async () => {
    const draws = new Set<unknown>();
    for (const secret of ['customer-a-secret', 'customer-b-secret', 'customer-c-secret']) {
      const r = await send(stateful, { secret });
      expect(r.code).toBe('OK');
      expect(r.result).toBe('nothing');
      const row = (r as unknown as { row: Record<string, unknown> }).row;
      expect(row.refused).toBe(7);
      expect(row.ordinary).toBe('MyError,mine');
      // Math.random still works, from a generator the host reseeds on every call.
      expect(row.random).toBeGreaterThanOrEqual(0);
      expect(row.random).toBeLessThan(1);
      draws.add(row.random);
    }
    expect(draws.size).toBe(3);
  });

  it('refuses at load a rule whose top level changes the frozen realm', async () => {
    const err = await rules.load(await ruleBundle('globalThis.cache = new Map(); export function predict(f) { return { score: 1 }; }')).then(
      () => undefined,
      (e: unknown) => e as SibylError,
    );
    expect(err?.code).toBe('INVALID_ARGUMENT');
    expect(err?.message).toMatch(/failed while loading: TypeError: .*cache.*frozen realm/);
  });

  it('without a memory cgroup, bounds the sandbox by RLIMIT_AS (the fallback for pods that cannot write cgroups)', async () => {
    const fallback = createRulesRuntime({ memoryBound: 'rlimit-as', onEvent: (e) => events.push(e) });
    const rule = await fallback.load(
      await ruleBundle(ATTACKS, {
        name: 'rlimited',
        features: [
          { name: 'attack', dtype: 'string', source: 'request', default: 'ok' },
          { name: 'n', dtype: 'float64', source: 'request', default: 0 },
        ],
        outputs: [{ name: 'result', dtype: 'string' }],
        rules: { timeoutMs: 100, memoryMb: 32 },
      }),
    );
    try {
      const pid = rule.pid!;
      expect(readFileSync(`/proc/${pid}/limits`, 'utf8')).toMatch(new RegExp(`Max address space\\s+${addressSpaceLimit(32)}\\s`));
      expect(await send(rule, { attack: 'ok', n: 3 })).toMatchObject({ code: 'OK', result: 'ok:3' });
      const r = await send(rule, { attack: 'wasmMemory', n: 0 });
      expect(['RESOURCE_EXHAUSTED', 'DEADLINE_EXCEEDED']).toContain(r.code);
      // Loose: address space, not resident memory, about 1.5 GiB above V8's reservations.
      const quietMs = await quiet([pid], 2 * 1024 ** 3);
      outcomes.push(`rlimit-as, wasmMemory: ${r.code}, quiet ${quietMs.toFixed(0)} ms later, process ${rule.pid === pid ? 'kept' : 'killed'}`);
      await sleep(300);
      expect(await send(rule, { attack: 'ok', n: 4 })).toMatchObject({ code: 'OK', result: 'ok:4' });
    } finally {
      totals.push(['rlimited', rule.restarts, rule.kills]);
      await rule.dispose();
    }
  });

  it('kept the other rule and the ONNX model answering correctly throughout, and counted every kill by reason', async () => {
    const before = bystanders.calls;
    await sleep(300);
    expect(bystanders.calls).toBeGreaterThan(before);
    expect(bystanders.wrong).toEqual([]);
    const kills = events.filter((e) => e.type === 'killed');
    totals.unshift(['attacker', attacker.restarts, attacker.kills]);
    const counted = (k: Readonly<Record<string, number>>) => Object.values(k).reduce((a, b) => a + b, 0);
    expect(kills.length).toBe(totals.reduce((n, [, , k]) => n + counted(k), 0));
    // Whether the wasm attack ends at the kernel's limit or at the deadline depends on how fast this machine fills
    // memory: the attacker's kills are 'deadline' or 'memory'; the always-killed rule's are 'memory' (above).
    expect(attacker.kills.deadline + attacker.kills.memory).toBeGreaterThanOrEqual(3);
    expect(attacker.kills.crash).toBe(0);
    expect(simple.kills).toEqual({ deadline: 0, memory: 0, crash: 0 });
    expect(stateful.kills).toEqual({ deadline: 0, memory: 0, crash: 0 });
    for (const k of kills) expect(k.message).toMatch(/^rule sandbox /);
    console.log(
      [
        `contained-rules counts: calls sent ${counts.sent}, answered ${JSON.stringify(counts.answered)}; bystander calls ${bystanders.calls}, wrong ${bystanders.wrong.length}`,
        ...totals.map(([name, starts, k]) => `${name}: processes started ${starts}, killed ${JSON.stringify(k)}`),
        ...outcomes,
        ...kills.map((k) => `killed (${k.reason}): ${k.model} pid ${k.pid}: ${k.message}`),
      ].join('\n'),
    );
  });

  it('leaves no sandbox process running after dispose', async () => {
    const before = children();
    expect(before).toContain(simple.pid);
    expect(before).toContain(stateful.pid);
    bystanders.running = false;
    await bystanders.done;
    await attacker.dispose();
    await stateful.dispose();
    await simple.dispose();
    for (let i = 0; i < 50 && children().length > 0; i++) await sleep(50);
    expect(children()).toEqual([]);
  });
});
