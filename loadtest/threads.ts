#!/usr/bin/env node
/**
 * Where the gateway's CPU goes, by thread: CPU time per answered request of each of its threads (the event loop,
 * V8's GC helpers, the Kafka producer's thread, libuv's pool), under a steady open-loop load at each rate given.
 * A profile of the event loop charges it with the time another thread of the process ran on the same core (a
 * syscall that wakes the Kafka producer's thread shows as the syscall's cost); the kernel's per-thread counters
 * (/proc/<pid>/task/<tid>/stat) do not.
 *
 *   node loadtest/threads.ts [--a DIR] [--rates 1000,2000,3000] [--seconds 10] [--rounds 2]
 *       [--env K=V ...] [--a-env K=V ...] [--log on|off] [--protocol sibyl-rest] [--mix eta-store]
 *
 * Each gateway runs pinned to the server core (1), the generator on core 0. Per arm, round and rate: 3 s of
 * unmeasured warm-up at the rate, then `--seconds` measured. `--a DIR` adds a second checkout (e.g. a worktree of an
 * earlier revision) as arm A; the arms alternate, the order swapped every round. `--env` sets a variable for this
 * tree's gateway (B), `--a-env` for A's (e.g. `--a . --a-env SIBYL_PREDICTION_LOG=off` compares logging on and off
 * on the same checkout). Prints a table per rate: each thread's µs per request, medians over rounds.
 *
 * Starts Redis and the Kafka broker of scripts/services and places them as the suite does (lib/bench-services.ts), and
 * seeds the feature population.
 */
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { RunSpec } from './generate.ts';
import { assertPortsFree, startChild, waitHttpOk, type Child } from './lib/processes.ts';
import type { Mix, Protocol } from './lib/requests.ts';
import { seedRedis } from './lib/seed.ts';
import { startBenchServices, type BenchServices } from './lib/bench-services.ts';
import { BENCH_PREFIX as PREFIX, BENCH_REDIS_URL as REDIS_URL, BENCH_SERVER_CORE as SERVER_CORE, benchGatewayEnv, envOfPairs, generateOnLoadCore } from './lib/bench-gateway.ts';
import { median } from './lib/histogram.ts';

const { values: flags } = parseArgs({
  options: {
    a: { type: 'string' },
    rates: { type: 'string', default: '1000,2000,3000' },
    seconds: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '2' },
    env: { type: 'string', multiple: true, default: [] },
    'a-env': { type: 'string', multiple: true, default: [] },
    log: { type: 'string', default: 'on' },
    protocol: { type: 'string', default: 'sibyl-rest' },
    mix: { type: 'string', default: 'eta-store' },
  },
});
const RATES = flags.rates.split(',').map(Number);
const SECONDS = Number(flags.seconds);
const ROUNDS = Number(flags.rounds);
const PROTOCOL = flags.protocol as Protocol;
const MIX = flags.mix as Mix;
const stamp = new Date().toISOString().replace(/[:.]/g, '-');
const outDir = join('loadtest', 'results', 'tmp', `threads-${stamp}`);
mkdirSync(outDir, { recursive: true });
const log = (msg: string) => process.stderr.write(`[threads] ${msg}\n`);
/** Clock ticks per second of /proc's CPU times (USER_HZ: 100 on Linux). */
const TICK_US = 10_000;

interface Arm {
  readonly name: 'A' | 'B';
  readonly dir: string;
  readonly http: number;
  readonly grpc: number;
  readonly env: Record<string, string>;
}

const arms: Arm[] = [
  ...(flags.a ? [{ name: 'A' as const, dir: resolve(flags.a), http: 27680, grpc: 27681, env: envOfPairs(flags['a-env']) }] : []),
  { name: 'B', dir: resolve('.'), http: 27780, grpc: 27781, env: envOfPairs(flags.env) },
];

async function startArm(arm: Arm, round: number, rate: number): Promise<Child> {
  const child = startChild(`gateway-${arm.name}`, 'node', ['gateway/main.ts'], {
    cores: SERVER_CORE,
    cwd: arm.dir,
    logFile: join(outDir, `gateway-${arm.name}-${round}-${rate}.log`),
    env: { ...benchGatewayEnv({ http: arm.http, grpc: arm.grpc, dataDir: resolve(outDir, `data-${arm.name}-${round}-${rate}`), log: flags.log !== 'off' }), ...arm.env },
  });
  await waitHttpOk(`http://127.0.0.1:${arm.http}/readyz`, 60_000, child);
  return child;
}

/** CPU ticks of each thread of `pid`, summed by thread name ("MainThread", "V8Worker", "libuv-worker", ...). */
function threadTicks(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const name = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      // Fields after the parenthesised name: utime and stime are the 12th and 13th.
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(name, (out.get(name) ?? 0) + Number(f[11]) + Number(f[12]));
    } catch {
      // the thread ended
    }
  }
  return out;
}


/** One measurement: per thread name, µs of CPU per answered request. */
async function measure(arm: Arm, round: number, rate: number): Promise<Map<string, number>> {
  const child = await startArm(arm, round, rate);
  try {
    const target = PROTOCOL.endsWith('grpc') ? `127.0.0.1:${arm.grpc}` : `http://127.0.0.1:${arm.http}`;
    const spec = (name: string, durationS: number): RunSpec => ({ name, target, protocol: PROTOCOL, mix: MIX, mode: 'open', steps: [{ rate, durationS }], warmupS: 0 });
    await generateOnLoadCore(spec('warm-up', 3));
    const before = threadTicks(child.pid);
    const result = await generateOnLoadCore(spec('measured', SECONDS));
    const after = threadTicks(child.pid);
    const ok = result.steps[0]!.ok;
    const perRequest = new Map<string, number>();
    for (const [name, ticks] of after) perRequest.set(name, ok > 0 ? ((ticks - (before.get(name) ?? 0)) * TICK_US) / ok : NaN);
    log(`${arm.name} round ${round} at ${rate}/s: ${ok} ok, ${[...perRequest].filter(([, us]) => us >= 0.5).map(([n, us]) => `${n} ${us.toFixed(1)}`).join(', ')} µs/request`);
    return perRequest;
  } finally {
    await child.stop();
  }
}


async function main(): Promise<void> {
  await assertPortsFree(arms.flatMap((a) => [a.http, a.grpc]));
  const placed = await startBenchServices({ kafka: true });
  try {
    await measureAll(placed);
  } finally {
    placed.restore();
  }
}

async function measureAll(placed: BenchServices): Promise<void> {
  for (const note of placed.notes) log(note);
  log(await seedRedis(REDIS_URL, PREFIX));
  const results = new Map<string, Map<string, number>[]>();
  for (let round = 1; round <= ROUNDS; round++) {
    const order = round % 2 === 1 ? arms : [...arms].reverse();
    for (const rate of RATES) {
      for (const arm of order) {
        const key = `${arm.name}@${rate}`;
        results.set(key, [...(results.get(key) ?? []), await measure(arm, round, rate)]);
      }
    }
  }
  const lines: string[] = [`# Gateway CPU per request, by thread (µs, medians of ${ROUNDS} rounds of ${SECONDS} s)`, ''];
  for (const arm of arms) lines.push(`- ${arm.name}: ${arm.dir}${Object.keys(arm.env).length ? ` with ${Object.entries(arm.env).map(([k, v]) => `${k}=${v}`).join(' ')}` : ''}`);
  for (const rate of RATES) {
    const names = new Set<string>();
    for (const arm of arms) for (const m of results.get(`${arm.name}@${rate}`) ?? []) for (const [n, us] of m) if (us >= 0.5) names.add(n);
    lines.push('', `## ${rate} requests/s`, '', `| thread | ${arms.map((a) => a.name).join(' | ')} |`, `| --- | ${arms.map(() => '---:').join(' | ')} |`);
    const total = new Map<string, number[]>();
    for (const n of [...names].sort()) {
      const cells = arms.map((arm) => {
        const runs = results.get(`${arm.name}@${rate}`) ?? [];
        return median(runs.map((m) => m.get(n) ?? 0));
      });
      lines.push(`| ${n} | ${cells.map((c) => c.toFixed(1)).join(' | ')} |`);
    }
    for (const arm of arms) total.set(arm.name, (results.get(`${arm.name}@${rate}`) ?? []).map((m) => [...m.values()].reduce((x, y) => x + (Number.isFinite(y) ? y : 0), 0)));
    lines.push(`| all threads | ${arms.map((a) => median(total.get(a.name) ?? []).toFixed(1)).join(' | ')} |`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
