#!/usr/bin/env node
/**
 * A/B: two checkouts of Sibyl, the same scenarios, alternated. On a shared 2-core machine two runs of the suite
 * minutes apart differ by more than most changes do; here both gateways run at once (one loaded at a time, both
 * pinned to the server core), the arms alternate within each round with the order swapped every round, and the
 * report gives per scenario the median over rounds of each arm's max throughput and gateway's own p99, and B/A.
 *
 *   bash loadtest/ab.sh <git rev>            # A = that revision (a worktree under .data/ab/), B = this tree
 *   node loadtest/ab.ts --a DIR --b DIR [--rounds 5] [--seconds 3] [--warmup 1] [--scenarios KEY,...]
 *       [--a-env K=V ...] [--env K=V ...]
 *
 * `--a-env` and `--env` set variables for A's and B's gateway (`--a . --b . --a-env SIBYL_PREDICTION_LOG=off`
 * compares one checkout with its log off and on); `--scenarios` keeps the scenarios whose key is listed.
 *
 * Needs Redis and the Kafka broker of scripts/services (started here, and placed as the suite places them:
 * lib/bench-services.ts) and the seeded feature population.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { RunResult, RunSpec } from './generate.ts';
import { bucketQuantileMs, scrapeBuckets } from './lib/metrics.ts';
import { assertPortsFree, processCpuMs, run, startChild, waitHttpOk, type Child } from './lib/processes.ts';
import { seedRedis } from './lib/seed.ts';
import { startBenchServices, type BenchServices } from './lib/bench-services.ts';
import { BENCH_LOAD_CORE as LOAD_CORE, BENCH_PREFIX as PREFIX, BENCH_REDIS_URL as REDIS_URL, BENCH_SERVER_CORE as SERVER_CORE, benchGatewayEnv, envOfPairs } from './lib/bench-gateway.ts';
import { median } from './lib/histogram.ts';

const { values: flags } = parseArgs({
  options: {
    a: { type: 'string' },
    b: { type: 'string' },
    rounds: { type: 'string', default: '5' },
    seconds: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '1' },
    scenarios: { type: 'string' },
    env: { type: 'string', multiple: true, default: [] },
    'a-env': { type: 'string', multiple: true, default: [] },
  },
});
if (!flags.a || !flags.b) {
  console.error('usage: node loadtest/ab.ts --a DIR --b DIR [--rounds 5] [--seconds 3] [--warmup 1]');
  process.exit(2);
}
const ROUNDS = Number(flags.rounds);
const SECONDS = Number(flags.seconds);
const WARMUP = Number(flags.warmup);
const CONCURRENCY = 48;
const stamp = new Date().toISOString().replace(/[:.]/g, '-');
const outDir = join('loadtest', 'results', 'tmp', `ab-${stamp}`);
mkdirSync(outDir, { recursive: true });

interface Arm {
  readonly name: 'A' | 'B';
  readonly dir: string;
  readonly http: number;
  readonly grpc: number;
  readonly env: Record<string, string>;
  child?: Child;
}
const arms: Arm[] = [
  { name: 'A', dir: resolve(flags.a), http: 18480, grpc: 18481, env: envOfPairs(flags['a-env']) },
  { name: 'B', dir: resolve(flags.b), http: 18580, grpc: 18581, env: envOfPairs(flags.env) },
];

/**
 * S1, S3, S4a, S4b of the suite, and OIP REST and gRPC with every feature inline (the peer comparison's requests);
 * `optional` ones run only when `--scenarios` names them (eta-risk, a classifier, as S1 serves delivery-eta).
 */
const allScenarios: { key: string; protocol: RunSpec['protocol']; mix: RunSpec['mix']; optional?: boolean }[] = [
  { key: 'sibyl-rest/eta-store', protocol: 'sibyl-rest', mix: 'eta-store' },
  { key: 'oip-rest/mlp-tensor', protocol: 'oip-rest', mix: 'mlp-tensor' },
  { key: 'oip-rest/eta-inline', protocol: 'oip-rest', mix: 'eta-inline' },
  { key: 'sibyl-grpc/eta-store', protocol: 'sibyl-grpc', mix: 'eta-store' },
  { key: 'oip-grpc/mlp-tensor', protocol: 'oip-grpc', mix: 'mlp-tensor' },
  { key: 'oip-grpc/eta-inline', protocol: 'oip-grpc', mix: 'eta-inline' },
  { key: 'sibyl-rest/risk-store', protocol: 'sibyl-rest', mix: 'risk-store', optional: true },
];
const wanted = flags.scenarios?.split(',');
const unknown = wanted?.filter((k) => !allScenarios.some((s) => s.key === k)) ?? [];
if (unknown.length) {
  console.error(`--scenarios: unknown ${unknown.join(', ')} (known: ${allScenarios.map((s) => s.key).join(', ')})`);
  process.exit(2);
}
const scenarios = wanted ? allScenarios.filter((s) => wanted.includes(s.key)) : allScenarios.filter((s) => !s.optional);

const log = (msg: string) => console.log(`[ab] ${msg}`);
interface Samples {
  rps: number[];
  p99: number[];
  /** The gateway's CPU per request answered, µs: less sensitive to a neighbour's load than throughput. */
  cpuUs: number[];
}
const results = new Map<string, { A: Samples; B: Samples }>();

async function startArm(arm: Arm): Promise<void> {
  arm.child = startChild(`gateway-${arm.name}`, 'node', ['gateway/main.ts'], {
    cores: SERVER_CORE,
    cwd: arm.dir,
    logFile: join(outDir, `gateway-${arm.name}.log`),
    env: { ...benchGatewayEnv({ http: arm.http, grpc: arm.grpc, dataDir: resolve(outDir, `data-${arm.name}`), log: true }), ...arm.env },
  });
  await waitHttpOk(`http://127.0.0.1:${arm.http}/readyz`, 60_000, arm.child);
}

async function measure(arm: Arm, s: (typeof scenarios)[number]): Promise<{ rps: number; p99: number | undefined; cpuUs: number | undefined }> {
  const grpc = s.protocol.endsWith('grpc');
  const spec: RunSpec = {
    name: `${arm.name} ${s.key}`,
    target: grpc ? `127.0.0.1:${arm.grpc}` : `http://127.0.0.1:${arm.http}`,
    protocol: s.protocol,
    mix: s.mix,
    mode: 'closed',
    concurrency: CONCURRENCY,
    durationS: SECONDS,
    warmupS: WARMUP,
  };
  const base = `http://127.0.0.1:${arm.http}`;
  const before = await scrapeBuckets(base, 'sibyl_request_duration_seconds');
  const cpu0 = processCpuMs(arm.child!.pid);
  const out = await run('node', ['loadtest/generate.ts', '--spec', JSON.stringify(spec)], { cores: LOAD_CORE });
  const cpu1 = processCpuMs(arm.child!.pid);
  const after = await scrapeBuckets(base, 'sibyl_request_duration_seconds');
  const result = JSON.parse(out.trim().split('\n').pop()!) as RunResult;
  // Requests the gateway ended in the run (its histogram's count: the largest cumulative bucket), warm-up included
  // as the CPU time covers both.
  const total = count(after) - count(before);
  const cpuUs = cpu0 !== undefined && cpu1 !== undefined && total > 0 ? ((cpu1 - cpu0) * 1000) / total : undefined;
  return { rps: result.steps[0]!.throughput, p99: bucketQuantileMs(0.99, before, after), cpuUs };
}

/** ` with K=V ...` for an arm given variables, else nothing. */
function envText(arm: Arm): string {
  const pairs = Object.entries(arm.env).map(([k, v]) => `${k}=${v}`);
  return pairs.length ? ` with ${pairs.join(' ')}` : '';
}

function count(buckets: ReadonlyMap<number, number>): number {
  let n = 0;
  for (const v of buckets.values()) n = Math.max(n, v);
  return n;
}


let placed: BenchServices | undefined;
try {
  await assertPortsFree(arms.flatMap((a) => [a.http, a.grpc]));
  placed = await startBenchServices({ kafka: true });
  for (const note of placed.notes) log(note);
  log(await seedRedis(REDIS_URL, PREFIX));
  for (const arm of arms) {
    await startArm(arm);
    log(`${arm.name}: ${arm.dir} (commit ${(await run('git', ['-C', arm.dir, 'rev-parse', '--short', 'HEAD'])).trim()})${envText(arm)}`);
  }
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? arms : [...arms].reverse();
    for (const s of scenarios) {
      for (const arm of order) {
        const m = await measure(arm, s);
        const r = results.get(s.key) ?? { A: { rps: [], p99: [], cpuUs: [] }, B: { rps: [], p99: [], cpuUs: [] } };
        r[arm.name].rps.push(m.rps);
        if (m.p99 !== undefined) r[arm.name].p99.push(m.p99);
        if (m.cpuUs !== undefined) r[arm.name].cpuUs.push(m.cpuUs);
        results.set(s.key, r);
        log(`round ${round + 1} ${arm.name} ${s.key}: ${m.rps} ok/s, gateway p99 ${m.p99} ms, ${m.cpuUs?.toFixed(1)} µs CPU/request`);
      }
    }
  }
  const lines = [
    `# A/B: ${ROUNDS} rounds of ${SECONDS} s per scenario and arm (closed loop, ${CONCURRENCY} concurrent), ${stamp}`,
    '',
    `A: \`${arms[0]!.dir}\`${envText(arms[0]!)}; B: \`${arms[1]!.dir}\`${envText(arms[1]!)}. Medians over rounds; the arms alternate within each round. "By round": the median of each round's B/A, and in how many rounds B answered more (a machine whose speed drifts moves both arms of a round together, and each arm's median alone can hide a difference every round shows).`,
    '',
    '| scenario | A ok/s | B ok/s | B/A | B/A by round | B ahead | A gateway p99 ms | B gateway p99 ms | A CPU µs/req | B CPU µs/req | B/A CPU | B/A CPU by round |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const [key, r] of results) {
    const a = median(r.A.rps);
    const b = median(r.B.rps);
    const p = (xs: number[]) => (xs.length ? median(xs).toFixed(2) : '-');
    const ca = r.A.cpuUs.length ? median(r.A.cpuUs) : NaN;
    const cb = r.B.cpuUs.length ? median(r.B.cpuUs) : NaN;
    const ratios = (bs: number[], as: number[]) => bs.slice(0, as.length).map((v, i) => v / as[i]!);
    const byRound = (bs: number[], as: number[]) => (Math.min(bs.length, as.length) ? median(ratios(bs, as)).toFixed(3) : '-');
    const ahead = ratios(r.B.rps, r.A.rps).filter((x) => x > 1).length;
    lines.push(
      `| ${key} | ${a.toFixed(0)} | ${b.toFixed(0)} | ${(b / a).toFixed(3)} | ${byRound(r.B.rps, r.A.rps)} | ${ahead} of ${Math.min(r.A.rps.length, r.B.rps.length)} | ${p(r.A.p99)} | ${p(r.B.p99)} | ${ca.toFixed(1)} | ${cb.toFixed(1)} | ${(cb / ca).toFixed(3)} | ${byRound(r.B.cpuUs, r.A.cpuUs)} |`,
    );
  }
  const md = `${lines.join('\n')}\n`;
  writeFileSync(join(outDir, 'ab.md'), md);
  console.log(md);
} finally {
  for (const arm of arms) await arm.child?.stop();
  placed?.restore();
}
