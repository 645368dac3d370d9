/**
 * Scaling over cores (issue 15, "Scale beyond one core"): the same gateway with one worker held to Q cores and with
 * two workers (SIBYL_WORKERS=2) held to 2Q, by one method, so that the ratio of their throughputs says how much a
 * second core buys.
 *
 * Method. Both gateways run at once, each in a cgroup v1 CPU quota of its own (cpu-cgroup.ts), entered before the
 * process starts (`sh -c 'echo $$ > cgroup.procs; exec node ...'`), so the supervisor and every worker it forks are
 * inside; neither is pinned, so two workers can run on both cores (both gateways and the generator are started
 * on every core, `ALL_CORES`: a child inherits its parent's affinity, and the suite itself runs pinned to the load
 * core, which held the two-worker arm and the generator to one core between them: 1.76x, the arm below its quota in
 * all but 1-6 of ~130 periods). The load generator runs outside them, unpinned:
 * on 2 cores, Q = 0.35 leaves it (and the machine's other work) 1.3 cores while the two-worker gateway uses its
 * whole quota. Closed loop over as many keep-alive connections as requests in flight, 48 per worker (SO_REUSEPORT
 * balances connections, not requests); the request path alone (20 features inline, no Redis, prediction log off:
 * nothing outside the cgroups serves a request). The arms alternate, A B then B A, and the ratio is the median of
 * the rounds' ratios. Each run also reports the CPU the gateway's processes used and how many periods the quota
 * stopped them: a run that never hit its quota was held back by something else and says so. On a machine shared
 * with other work, the measured processes (both gateways' cgroups, and the generator in one of its own without a
 * quota) get `cpu.shares` of 65536 against the default 1024 of everything else, so that the quota, not the
 * neighbours, is what holds a gateway back.
 *
 * Limits. A quota is not a core: two workers under 2Q of quota on 2 cores may run at once for a while and then both
 * wait, where two dedicated cores would not; the kernel's CFS bandwidth control charges per period (100 ms). On a
 * shared machine the quota is a ceiling, not a guarantee. The supervisor sits idle in the two-worker cgroup (it
 * serves no request). What is measured is the request path's scaling, not Redis's or Kafka's.
 */
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { createCpuCgroup, type CpuCgroup } from './cpu-cgroup.ts';
import { processCpuMs, run, startChild, waitHttpOk, type Child } from './processes.ts';
import type { RunResult, RunSpec } from '../generate.ts';
import type { StepResult } from './loops.ts';
import type { Target } from './report.ts';

/**
 * The machine's cores (online CPUs, not this process's affinity: under the suite that is one core), as taskset's
 * list: what the measured processes may run on, whatever their parent's affinity.
 */
const CORE_COUNT = cpus().length;
const ALL_CORES = `0-${CORE_COUNT - 1}`;

export interface CoresOptions {
  /** The one-worker gateway's quota, cores; the two-worker one gets twice this (default 0.35). */
  readonly cores?: number;
  /** Alternating rounds (default 3). */
  readonly rounds?: number;
  readonly durationS: number;
  readonly warmupS: number;
  /**
   * An unmeasured run of each arm before the rounds, seconds (default 15): each worker of two gets half the
   * requests, so its code takes twice as long to reach the JIT's top tier (without it the two-worker arm kept
   * getting cheaper per request over four rounds: 196, 150, 129, 102 µs).
   */
  readonly settleS?: number;
  /**
   * Concurrent requests and connections of the closed loop per worker (default 48: the suite's concurrency for one
   * gateway): twice as many for two workers, as a pod with twice the cores takes twice the clients. At the same total
   * concurrency each worker of two has half the requests in flight, and the request path's per-turn batching
   * (ONNX calls of one turn share a run, Redis reads one pipeline) gets less out of each turn.
   */
  readonly concurrencyPerWorker?: number;
  /** Two pairs of ports (HTTP, gRPC), one per gateway (default: free ones, picked at start). */
  readonly ports?: { readonly one: readonly [number, number]; readonly two: readonly [number, number]; readonly variant?: readonly [number, number] };
  /** Where the gateways' logs and data go. */
  readonly outDir: string;
  readonly log: (msg: string) => void;
  /**
   * A diagnosis: pin the two-worker gateway to these cores (taskset list, e.g. "1"); both workers then share one core,
   * which tells the cost of a second process apart from the cost of running on two cores at once.
   */
  readonly pinTwo?: string;
  /** cpu.shares of the measured processes' cgroups (default 65536; the kernel's default is 1024). */
  readonly shares?: number;
  /**
   * A third arm in the same rounds: two workers at 2Q with these variables set (e.g. SIBYL_ONNX_TREES=onnxruntime), so
   * that a setting is judged against the two-worker arm by rounds back to back rather than by runs minutes apart.
   */
  readonly variant?: { readonly label: string; readonly env: Readonly<Record<string, string>> };
}

export interface CoresRun {
  /** `1w`, `2w`, or `2w-b` (the variant). */
  readonly arm: string;
  readonly workers: number;
  readonly quotaCores: number;
  /** Concurrent requests (and connections) of the closed loop. */
  readonly concurrency: number;
  readonly throughput: number;
  readonly p99Ms: number;
  /** CPU the gateway's processes used over the run, cores. */
  readonly cpuCores: number;
  /** CPU per answered request, µs. */
  readonly cpuUsPerRequest: number;
  /** Periods the quota stopped the cgroup over the run, of all periods. */
  readonly throttled: string;
  /** Answered requests per worker over the run (two workers only). */
  readonly perWorker?: Readonly<Record<string, number>>;
  /** The generator's CPU over the run, cores (near its share of the machine: it may be what limits). */
  readonly generatorCpu: number;
  readonly codes: Readonly<Record<string, number>>;
}

export interface CoresResult {
  readonly cores: number;
  readonly runs: readonly CoresRun[];
  /** Median throughput of each arm. */
  readonly one: number;
  readonly two: number;
  /**
   * The median over rounds of two workers' throughput over one worker's in the same round (the two runs of a round
   * are back to back, so a change in the machine's other load between rounds moves both).
   */
  readonly ratio: number;
  /** Each round's ratio. */
  readonly ratios: readonly number[];
  /** The variant's arm (options.variant), the same figures. */
  readonly variant?: { readonly label: string; readonly two: number; readonly ratio: number; readonly ratios: readonly number[] };
}

/** Runs the comparison; throws CpuCgroupUnavailable (from cpu-cgroup.ts) when no quota can be set here. */
export async function measureCores(o: CoresOptions): Promise<CoresResult> {
  const q = o.cores ?? 0.35;
  const rounds = o.rounds ?? 3;
  const perWorker = o.concurrencyPerWorker ?? 48;
  const groups: CpuCgroup[] = [];
  const children: Child[] = [];
  const shares = String(o.shares ?? 65536);
  try {
    const ports = o.ports ?? { one: [await freePort(), await freePort()], two: [await freePort(), await freePort()] };
    const variantPorts = ports.variant ?? (o.variant ? ([await freePort(), await freePort()] as const) : undefined);
    // The generator: no quota worth the name (every core), the same weight as the gateways.
    const gen = createCpuCgroup({ name: 'cores-generator', cores: CORE_COUNT });
    groups.push(gen);
    writeFileSync(join(gen.dir, 'cpu.shares'), shares);
    const arms = [
      { tag: '1w', workers: 1, quota: q, ports: ports.one, extraEnv: {} },
      { tag: '2w', workers: 2, quota: 2 * q, ports: ports.two, extraEnv: {} },
      ...(o.variant && variantPorts ? [{ tag: '2w-b', workers: 2, quota: 2 * q, ports: variantPorts, extraEnv: o.variant.env }] : []),
    ].map((a) => {
      const cg = createCpuCgroup({ name: `cores-${a.tag}`, cores: a.quota });
      groups.push(cg);
      writeFileSync(join(cg.dir, 'cpu.shares'), shares);
      const env = {
        SIBYL_WORKERS: String(a.workers),
        SIBYL_HOST: '127.0.0.1',
        SIBYL_HTTP_PORT: String(a.ports[0]),
        SIBYL_GRPC_PORT: String(a.ports[1]),
        SIBYL_PREDICTION_LOG: 'off',
        SIBYL_DATA_DIR: join(o.outDir, `cores-${a.tag}-data`),
        SIBYL_LOG_LEVEL: 'warn',
        // Throughput at saturation is measured, not admission control's refusals.
        SIBYL_MAX_LAG_MS: '1000',
        SIBYL_ADMISSION_QUEUE_MS: '0',
        SIBYL_ADMISSION_MAX_TURN_MS: '0',
        SIBYL_ADMISSION_LATE_SHARE: '0',
        SIBYL_MAX_INFLIGHT: '4096',
        ...a.extraEnv,
      };
      const child = startChild(`cores-${a.tag}`, 'sh', ['-c', `echo $$ > ${join(cg.dir, 'cgroup.procs')} && exec node gateway/main.ts`], {
        env,
        logFile: join(o.outDir, `cores-${a.tag}.log`),
        cores: a.workers > 1 && o.pinTwo ? o.pinTwo : ALL_CORES,
      });
      children.push(child);
      return { ...a, cg, child, base: `http://127.0.0.1:${a.ports[0]}` };
    });
    for (const a of arms) await waitHttpOk(`${a.base}/readyz`, 90_000, a.child);
    // Another process answering on the port would be measured instead: the gateway must be alive and in its cgroup.
    const alive = (a: (typeof arms)[number]): void => {
      if (a.child.proc.exitCode !== null || a.cg.pids().length < a.workers) throw new Error(`the ${a.tag} gateway is not running in its cgroup; see ${join(o.outDir, `cores-${a.tag}.log`)}`);
    };
    arms.forEach(alive);
    const specFor = (a: (typeof arms)[number], durationS: number, warmupS: number): RunSpec => {
      const concurrency = perWorker * a.workers;
      return { name: `cores-${a.tag}`, target: a.base, protocol: 'sibyl-rest', mix: 'eta-inline', mode: 'closed', concurrency, connections: concurrency, durationS, warmupS };
    };
    const generate = async (spec: RunSpec): Promise<StepResult> => {
      const specFile = join(o.outDir, `${spec.name}-spec.json`);
      writeFileSync(specFile, JSON.stringify(spec));
      const out = await run('sh', ['-c', `echo $$ > ${join(gen.dir, 'cgroup.procs')} && exec node loadtest/generate.ts --spec-file ${specFile}`], { cores: ALL_CORES });
      return (JSON.parse(out.trim().split('\n').pop()!) as RunResult).steps[0]!;
    };
    for (const a of arms) {
      const s = await generate(specFor(a, o.settleS ?? 15, 0));
      o.log(`cores settling, ${a.tag}: ${s.throughput} ok/s (not measured)`);
    }
    const runs: CoresRun[] = [];
    const byRound: CoresRun[][] = [];
    for (let round = 0; round < rounds; round++) {
      // Each round in another order (two arms: A B, then B A), so that no arm always runs first.
      byRound.push([]);
      for (const a of arms.map((_, i) => arms[(i + round) % arms.length]!)) {
        const spec = specFor(a, o.durationS, o.warmupS);
        const concurrency = spec.concurrency!;
        const pids = a.cg.pids();
        const cpu0 = sumCpuMs(pids);
        const stat0 = a.cg.stat();
        const m0 = a.workers > 1 ? await okByWorker(a.base) : undefined;
        const t0 = performance.now();
        const step = await generate(spec);
        const wallMs = performance.now() - t0;
        alive(a);
        const cpuMs = sumCpuMs(pids) - cpu0;
        const stat1 = a.cg.stat();
        const m1 = a.workers > 1 ? await okByWorker(a.base) : undefined;
        const r: CoresRun = {
          arm: a.tag,
          workers: a.workers,
          quotaCores: a.quota,
          concurrency,
          throughput: step.throughput,
          p99Ms: step.latency.p99,
          // Warm-up included in the CPU and the throttling: the generator's run is one process from start to end.
          cpuCores: round2(cpuMs / wallMs),
          cpuUsPerRequest: Math.round((cpuMs * 1000) / Math.max(1, step.ok + step.throughput * o.warmupS)),
          throttled: `${stat1.throttledPeriods - stat0.throttledPeriods}/${stat1.periods - stat0.periods}`,
          ...(m0 && m1 ? { perWorker: Object.fromEntries([...m1].map(([w, n]) => [w, n - (m0.get(w) ?? 0)])) } : {}),
          generatorCpu: step.generatorCpu,
          codes: step.codes,
        };
        runs.push(r);
        byRound[round]!.push(r);
        o.log(`cores round ${round + 1}, ${a.tag}: ${a.workers} worker(s) at ${a.quota} cores, ${concurrency} concurrent: ${r.throughput} ok/s, p99 ${r.p99Ms} ms, CPU ${r.cpuCores} cores, ${r.cpuUsPerRequest} µs/request, throttled ${r.throttled}, generator CPU ${r.generatorCpu}${r.perWorker ? `, per worker ${JSON.stringify(r.perWorker)}` : ''}, codes ${JSON.stringify(r.codes)}`);
      }
    }
    const of = (tag: string) => {
      const two = median(runs.filter((r) => r.arm === tag).map((r) => r.throughput));
      const ratios = byRound.map((rs) => round2(rs.find((r) => r.arm === tag)!.throughput / rs.find((r) => r.arm === '1w')!.throughput));
      return { two: Math.round(two), ratio: round2(median(ratios)), ratios };
    };
    const one = median(runs.filter((r) => r.arm === '1w').map((r) => r.throughput));
    return { cores: q, runs, one: Math.round(one), ...of('2w'), ...(o.variant ? { variant: { label: o.variant.label, ...of('2w-b') } } : {}) };
  } finally {
    for (const c of children.reverse()) await c.stop().catch(() => undefined);
    for (const g of groups) g.remove();
  }
}

/** The suite's target row: two workers at twice the quota give at least 1.8 times one worker's throughput. */
export function coresTarget(r: CoresResult | undefined, why?: string): Target {
  const target = 'Two workers at 2x the CPU quota: ≥ 1.8x the throughput of one worker (SIBYL_WORKERS=2)';
  if (!r) return { target, measured: `not measured: ${why ?? 'skipped'}`, met: false };
  const cpu = (arm: string) => median(r.runs.filter((x) => x.arm === arm).map((x) => x.cpuCores));
  return {
    target,
    measured: `${r.ratio}x, the median of each round's ratio (${r.ratios.join(', ')}); medians ${r.two} / ${r.one} ok/s at quotas ${2 * r.cores} / ${r.cores} cores, CPU used ${cpu('2w')} / ${cpu('1w')} cores`,
    met: r.ratio >= 1.8,
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

function sumCpuMs(pids: readonly number[]): number {
  return pids.reduce((a, p) => a + (processCpuMs(p) ?? 0), 0);
}

async function okByWorker(base: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('sibyl_requests_total{') || !line.includes('code="OK"')) continue;
    const w = /worker="(\d+)"/.exec(line)?.[1] ?? '';
    out.set(w, (out.get(w) ?? 0) + Number(line.split(' ').at(-1)));
  }
  return out;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length === 0 ? 0 : s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function round2(v: number): number {
  return Math.round(v * 100) / 100;
}
