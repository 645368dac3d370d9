#!/usr/bin/env node
/**
 * The overload ramp alone (lib/overload.ts), in ~1 min per gateway instead of the whole suite:
 *
 *   npm run bench -- --only overload [--quick] [--cores 0.5] [--log off] [--rounds 2] [--dir DIR ...]
 *       [--capacity N] [--period-us 100000] [--client-timeout-ms 5000] [--env I:K=V ...]
 *   node loadtest/overload.ts ...                       (the same, without run.sh's installs)
 *
 * Each `--dir` is a checkout whose gateway is measured (default: this one); with several, e.g. an earlier revision
 * under .data/ab/ (`git worktree add`, as loadtest/ab.sh does) and this tree, every round measures each in turn, so
 * that a before/after comparison shares the machine's state. `--env I:K=V` sets a variable for the gateway of the
 * I-th `--dir` (from 0), so one checkout given twice compares a setting (`--dir . --dir . --env
 * 1:SIBYL_MAX_INFLIGHT=96`). The gateway runs on core 1 held to `--cores` of CPU
 * (a cgroup quota; needs root and cgroup v1), the generator, Redis and Kafka on core 0. Writes
 * loadtest/results/tmp/overload-<time>/overload.{md,json}.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { RunResult } from './generate.ts';
import { overloadTargets, renderOverload, runOverload, type OverloadResult } from './lib/overload.ts';
import { preflight } from './lib/preflight.ts';
import { assertPortsFree, run, startChild, waitHttpOk, type Child } from './lib/processes.ts';
import { buildPool, type Mix, type Protocol } from './lib/requests.ts';
import { seedRedis } from './lib/seed.ts';
import { startBenchServices, type BenchServices } from './lib/bench-services.ts';
import { BENCH_LOAD_CORE as LOAD_CORE, BENCH_PREFIX as PREFIX, BENCH_REDIS_URL as REDIS_URL, BENCH_SERVER_CORE as SERVER_CORE, benchGatewayEnv, envOfPairs } from './lib/bench-gateway.ts';

const { values: flags } = parseArgs({
  options: {
    only: { type: 'string' },
    quick: { type: 'boolean', default: false },
    cores: { type: 'string', default: '0.5' },
    log: { type: 'string', default: 'on' },
    rounds: { type: 'string', default: '1' },
    dir: { type: 'string', multiple: true },
    protocol: { type: 'string', default: 'sibyl-rest' },
    mix: { type: 'string', default: 'eta-store' },
    deadline: { type: 'string', default: '100' },
    'step-seconds': { type: 'string' },
    /** The ramp's 1x, requests/s, the same for every checkout (default: each one's measured capacity). */
    capacity: { type: 'string' },
    /** The gateway cgroup's CFS period, µs (default 100000). */
    'period-us': { type: 'string' },
    /** When the open-loop client gives up on a request, ms (default 5000). */
    'client-timeout-ms': { type: 'string' },
    /** Nice value of the gateway and the generator while measured (default -10; 0 leaves them). */
    nice: { type: 'string', default: '-10' },
    /** `I:K=V`: a variable for the I-th --dir's gateway. */
    env: { type: 'string', multiple: true },
  },
  // run.sh passes the suite's own flags through; the ones that do not concern the ramp are ignored.
  strict: false,
});
const QUICK = flags.quick === true;
const CORES = Number(flags.cores);
const ROUNDS = Number(flags.rounds);
const DIRS = ((flags.dir as string[] | undefined) ?? ['.']).map((d) => resolve(d));
/** Each checkout to measure with its own variables (`--env`). */
const ARMS = DIRS.map((dir, i) => {
  const mine = ((flags.env as string[] | undefined) ?? []).flatMap((e) => {
    const m = /^(\d+):(.*)$/.exec(e);
    if (!m) throw new Error(`--env ${e}: expected I:K=V`);
    return Number(m[1]) === i ? [m[2]!] : [];
  });
  const env = envOfPairs(mine);
  return { dir, env, label: mine.map((p) => ` ${p}`).join('') };
});
const PROTOCOL = flags.protocol as Protocol;
const NICE = Number(flags.nice);
const MIX = flags.mix as Mix;
const HTTP_PORT = 18680;
const GRPC_PORT = 18681;
const stamp = new Date().toISOString().replace(/[:.]/g, '-');
const outDir = join('loadtest', 'results', 'tmp', `overload-${stamp}`);
mkdirSync(outDir, { recursive: true });
const t0 = Date.now();
const log = (msg: string): void => void process.stderr.write(`[overload ${Math.round((Date.now() - t0) / 1000)}s] ${msg}\n`);

async function startGateway(dir: string, name: string, extraEnv: Record<string, string>): Promise<Child> {
  const child = startChild(name, 'node', ['gateway/main.ts'], {
    cores: SERVER_CORE,
    cwd: dir,
    logFile: join(outDir, `${name}.log`),
    env: { ...benchGatewayEnv({ http: HTTP_PORT, grpc: GRPC_PORT, dataDir: resolve(outDir, `${name}-data`), log: flags.log !== 'off' }), ...extraEnv },
  });
  await waitHttpOk(`http://127.0.0.1:${HTTP_PORT}/readyz`, 60_000, child);
  return child;
}

const results: { dir: string; commit: string; round: number; result: OverloadResult }[] = [];
const failures: string[] = [];
let current: Child | undefined;
let placed: BenchServices | undefined;
try {
  await assertPortsFree([HTTP_PORT, GRPC_PORT]);
  placed = await startBenchServices({ kafka: flags.log !== 'off' });
  for (const note of placed.notes) log(note);
  log(await seedRedis(REDIS_URL, PREFIX));
  for (let round = 1; round <= ROUNDS; round++) {
    for (const [arm, { dir, env, label }] of (round % 2 === 1 ? ARMS.entries() : [...ARMS.entries()].reverse())) {
      const commit = (await run('git', ['-C', dir, 'rev-parse', '--short', 'HEAD'])).trim() + ((await run('git', ['-C', dir, 'status', '--porcelain', '--untracked-files=no'])).trim() ? '+changes' : '') + label;
      current = await startGateway(dir, `gateway-${round}-${arm}`, env);
      const http = `http://127.0.0.1:${HTTP_PORT}`;
      const target = PROTOCOL.endsWith('grpc') ? `127.0.0.1:${GRPC_PORT}` : http;
      let result: OverloadResult;
      try {
        log(`round ${round}: ${dir} (${commit}); preflight ${await preflight(target, buildPool({ protocol: PROTOCOL, mix: MIX, seed: 42, size: 8 }), { expectNoDefaults: MIX === 'eta-store' })}`);
        result = await runOverload(
          { target, metricsUrl: http, protocol: PROTOCOL, mix: MIX, gatewayPid: current.pid, cores: CORES, deadlineMs: Number(flags.deadline), stepS: Number(flags['step-seconds'] ?? (QUICK ? 2 : 4)), capacityS: QUICK ? 3 : 6, searchStepS: QUICK ? 2 : 3, warmupS: QUICK ? 1 : 2, ...(NICE ? { nice: NICE } : {}), ...(flags.capacity ? { capacity: Number(flags.capacity) } : {}), ...(flags['period-us'] ? { periodUs: Number(flags['period-us']) } : {}), ...(flags['client-timeout-ms'] ? { clientTimeoutMs: Number(flags['client-timeout-ms']) } : {}) },
          {
            log,
            async generate(key, spec) {
              log(`${key} ...`);
              const cmd = ['node', 'loadtest/generate.ts', '--spec', JSON.stringify(spec)];
              const out = await run(NICE ? 'nice' : 'node', NICE ? ['-n', String(NICE), ...cmd] : cmd.slice(1), { cores: LOAD_CORE });
              return (JSON.parse(out.trim().split('\n').pop()!) as RunResult).steps;
            },
          },
        );
      } catch (err) {
        // One arm's failure (no goodput at all on a starved machine) is reported; the other arms still run.
        log(`round ${round} ${dir}: ${(err as Error).message}`);
        failures.push(`round ${round}, ${dir} (${commit}): ${(err as Error).message}`);
        await current.stop();
        current = undefined;
        continue;
      }
      results.push({ dir, commit, round, result });
      await current.stop();
      current = undefined;
    }
  }
} catch (err) {
  log(`FAILED: ${(err as Error).stack ?? err}`);
  process.exitCode = 1;
} finally {
  await current?.stop();
  placed?.restore();
  const md = [`# Overload ramp, ${stamp}${QUICK ? ' (quick)' : ''}`, '', ...failures.map((f) => `- not measured: ${f}`), ''];
  for (const r of results) {
    md.push(`# ${r.dir} (${r.commit}), round ${r.round}`, '', ...renderOverload(r.result), '| target | measured | met |', '| --- | --- | --- |');
    for (const t of overloadTargets(r.result)) md.push(`| ${t.target} | ${t.measured} | ${t.met ? 'yes' : 'NO'} |`);
    md.push('');
  }
  writeFileSync(join(outDir, 'overload.json'), `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(join(outDir, 'overload.md'), `${md.join('\n')}\n`);
  process.stdout.write(`${md.join('\n')}\n`);
  log(`done: ${join(outDir, 'overload.md')}`);
}
