#!/usr/bin/env node
/**
 * The standard benchmark suite (`npm run bench`, through loadtest/run.sh): baselines, the peer, and Sibyl's
 * scenarios in one run on this machine, written as JSON and Markdown under loadtest/results/, and (full runs) into
 * loadtest/RESULTS.md.
 *
 *   node loadtest/suite.ts [--quick] [--peers mlserver,kserve,bentoml,ray,pytriton | --no-peer] [--no-overload] [--profile]
 *
 * Processes: every server (gateway, echo baselines, onnxruntime loop, the peers) runs pinned to core 1; the load
 * generator, Redis and Kafka run on core 0. Each load run is its own generator process (loadtest/generate.ts).
 */
import { cpSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { RunResult, RunSpec } from './generate.ts';
import type { StepResult } from './lib/loops.ts';
import { describeMachine } from './lib/machine.ts';
import { preflight } from './lib/preflight.ts';
import { assertPortsFree, processTreeCpuMs, promoteV8Sampler, run, startChild, waitHttpOk, hasTaskset, type Child } from './lib/processes.ts';
import { startBenchServices } from './lib/bench-services.ts';
import { buildPool, type Mix, type Protocol } from './lib/requests.ts';
import { seedRedis } from './lib/seed.ts';
import { bucketQuantileMs, delta, scrape, scrapeBuckets } from './lib/metrics.ts';
import { topSelfTime } from './lib/cpuprofile.ts';
import { coresTarget, measureCores, type CoresResult } from './lib/cores.ts';
import { overloadTargets, runOverload } from './lib/overload.ts';
import { renderMarkdown, type Report, type Measurement, type OrtResult, type Target } from './lib/report.ts';
import { installPeers, runPeers, selectPeers, startPeer, type StartedPeer } from './peer/peers.ts';
import { peerSection } from './peer/peer-report.ts';
import { BENCH_LOAD_CORE as LOAD_CORE, BENCH_PREFIX as PREFIX, BENCH_REDIS_URL as REDIS_URL, BENCH_SERVER_CORE as SERVER_CORE, benchGatewayEnv } from './lib/bench-gateway.ts';
import { median } from './lib/histogram.ts';

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    'no-peer': { type: 'boolean', default: false },
    /** Comma-separated peers (loadtest/peer/peers.ts); default: all that install. */
    peers: { type: 'string' },
    'no-overload': { type: 'boolean', default: false },
    'no-shadows': { type: 'boolean', default: false },
    'no-cores': { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
  },
});

const QUICK = flags.quick;
const D = QUICK ? 3 : 10; // measured seconds per run
const W = QUICK ? 1 : 2; // warm-up seconds per run
const RAMP_STEP_S = QUICK ? 2 : 4;
/** Interleaved max runs (echo, S1, S2 in turn): rounds and seconds per run. */
const AB_ROUNDS = QUICK ? 1 : 3;
const AB_S = QUICK ? 2 : 5;
const AB_WARM_S = QUICK ? 1 : 5; // unmeasured warm-up of each freshly started arm before the interleaved rounds
/** Closed-loop concurrency: enough to keep a gateway whose requests wait ~10 ms on Redis busy (32 left it latency-bound here). */
const CONCURRENCY = 48;
const PORTS = { hono: 18101, grpcEcho: 18102, gwHttp: 18280, gwGrpc: 18281, gw2Http: 18380, gw2Grpc: 18381, mlHttp: 18180, mlGrpc: 18181 };
const OVERLOAD_DEADLINE_MS = 100;
/** The overload ramp's CPU quota for the gateway, cores (0: none). */
const OVERLOAD_CORES = 0.5;
/** Open-loop runs: a Go generator (vegeta for HTTP, grpc-open for gRPC), or the suite's own loop when it is missing. */
const OPEN_TOOL = { tool: 'go' } as const;

const stamp = new Date().toISOString().replace(/[:.]/g, '-');
const outDir = join('loadtest', 'results', `${stamp}${QUICK ? '-quick' : ''}`);
mkdirSync(outDir, { recursive: true });
const t0 = Date.now();
const log = (msg: string): void => void process.stderr.write(`[bench ${Math.round((Date.now() - t0) / 1000)}s] ${msg}\n`);

const commit = (await run('git', ['rev-parse', '--short', 'HEAD']).catch(() => 'unknown')).trim();
const report: Report = {
  machine: describeMachine(commit),
  quick: QUICK,
  settings: { measuredS: D, warmupS: W, concurrency: CONCURRENCY, rampStepS: RAMP_STEP_S, overloadDeadlineMs: OVERLOAD_DEADLINE_MS },
  pinning: hasTaskset
    ? 'servers (Sibyl gateway, echo baselines, onnxruntime loop, the peers with their child processes) pinned to core 1 with taskset; load generator, Redis and Kafka pinned to core 0, Redis in the real-time scheduling class (SCHED_FIFO, so that it answers at once, as on a host of its own) and the Kafka broker at nice 19 (its work is off the request path)'
    : 'taskset not found: nothing pinned',
  notes: [],
  ort: [],
  runs: [],
  ramp: undefined,
  targets: [],
  profile: undefined,
};
const children: Child[] = [];
const restoreAffinity: (() => void)[] = [];

/** The server under load (its CPU use is sampled around each run), and Redis's pid. */
let serverPid: number | undefined;
let redisPid: number | undefined;

/** Runs one spec in the generator process; `recorded: false` (warm-ups) logs it but leaves it out of the report. */
async function generate(key: string, server: string, spec: RunSpec, recorded = true): Promise<Measurement> {
  const sibyl = server.startsWith('Sibyl');
  // The gateway's HTTP port serves its /metrics; a gRPC target is on the standard gateway's.
  const metricsBase = spec.target.startsWith('http') ? spec.target : http(PORTS.gwHttp);
  const metrics0 = sibyl ? await scrape(metricsBase) : {};
  const buckets0 = sibyl ? await scrapeBuckets(metricsBase, 'sibyl_request_duration_seconds') : new Map<number, number>();
  // Process trees: a peer may work in child processes (BentoML's workers, Ray's raylet and actors).
  const cpu0 = [serverPid, redisPid].map((p) => (p ? processTreeCpuMs(p) : undefined));
  const w0 = performance.now();
  const out = await run('node', ['loadtest/generate.ts', '--spec', JSON.stringify(spec)], { cores: LOAD_CORE });
  const wall = performance.now() - w0;
  const share = (i: number, pid: number | undefined): number | undefined => {
    const a = cpu0[i];
    const b = pid ? processTreeCpuMs(pid) : undefined;
    return a === undefined || b === undefined ? undefined : Math.round(((b - a) / wall) * 100) / 100;
  };
  const serverCpu = share(0, serverPid);
  const redisCpu = share(1, redisPid);
  const result = JSON.parse(out.trim().split('\n').pop()!) as RunResult;
  const gatewayCounters = sibyl ? delta(metrics0, await scrape(metricsBase)) : undefined;
  // Warm-up included: the gateway's histogram cannot tell the two apart.
  const gatewayP99Ms = sibyl ? bucketQuantileMs(0.99, buckets0, await scrapeBuckets(metricsBase, 'sibyl_request_duration_seconds')) : undefined;
  const m: Measurement = { key, server, protocol: spec.protocol, mix: spec.mix, mode: spec.mode, tool: result.tool, steps: result.steps, serverCpu, redisCpu, gatewayCounters, gatewayP99Ms };
  if (recorded) report.runs.push(m);
  const s = result.steps[0]!;
  log(`${key}: ${s.throughput} ok/s, p50 ${s.latency.p50} ms, p99 ${s.latency.p99} ms${gatewayP99Ms === undefined ? '' : ` (gateway's own p99 ${gatewayP99Ms} ms)`}, codes ${JSON.stringify(s.codes)}, server CPU ${serverCpu}, generator CPU ${s.generatorCpu}${gatewayCounters ? `, gateway ${JSON.stringify(gatewayCounters)}` : ''}`);
  return m;
}

/** Closed loop for the maximum, then open loop at `fraction` of it (or at `rate`). */
async function maxThenOpen(key: string, server: string, target: string, protocol: Protocol, mix: Mix, open: { fraction?: number; rate?: number } = { fraction: 0.5 }): Promise<{ max: StepResult; open: StepResult; openGatewayP99Ms?: number | undefined }> {
  const closed = await generate(`${key}/max`, server, { name: key, target, protocol, mix, mode: 'closed', concurrency: CONCURRENCY, durationS: D, warmupS: W });
  const max = closed.steps[0]!;
  const rate = Math.max(10, Math.round(open.rate ?? max.throughput * (open.fraction ?? 0.5)));
  const o = await generate(`${key}/open@${rate}`, server, { name: key, target, protocol, mix, mode: 'open', steps: [{ rate, durationS: D }], warmupS: W, ...OPEN_TOOL });
  return { max, open: o.steps[0]!, openGatewayP99Ms: o.gatewayP99Ms };
}

async function check(target: string, protocol: Protocol, mix: Mix, expectNoDefaults: boolean): Promise<void> {
  const d = await preflight(target, buildPool({ protocol, mix, seed: 42, size: 8 }), { expectNoDefaults });
  log(`preflight ${protocol} ${mix} @ ${target}: ${d}`);
}

async function startServer(name: string, args: string[], env: NodeJS.ProcessEnv = {}, cmd = 'node'): Promise<Child> {
  const c = startChild(name, cmd, args, { cores: SERVER_CORE, env, logFile: join(outDir, `${name}.log`) });
  children.push(c);
  serverPid = c.pid;
  return c;
}

async function stopServer(c: Child): Promise<void> {
  await c.stop();
  children.splice(children.indexOf(c), 1);
  serverPid = undefined;
}

async function ortLoop(model: string, version: string): Promise<void> {
  const out = await run('node', ['loadtest/baselines/ort-loop.ts', '--model', model, '--version', version, '--duration', String(Math.max(2, D / 2)), '--warmup', String(W)], { cores: SERVER_CORE });
  const r = JSON.parse(out.trim().split('\n').pop()!) as OrtResult;
  report.ort.push(r);
  log(`ort ${model}/${version}: ${r.throughput} runs/s, p99 ${r.latency.p99} ms`);
}

async function services(): Promise<void> {
  const placed = await startBenchServices({ kafka: true });
  redisPid = placed.redisPid;
  restoreAffinity.push(() => placed.restore());
  report.notes.push(...placed.notes);
  report.notes.push(`feature store seeded (${await seedRedis(REDIS_URL, PREFIX)}) under prefix "${PREFIX}" in ${REDIS_URL}`);
}

function gatewayEnv(logOn: boolean, name: string, modelsDir?: string, ports = { http: PORTS.gwHttp, grpc: PORTS.gwGrpc }): NodeJS.ProcessEnv {
  return {
    ...(modelsDir ? { SIBYL_MODELS_DIR: modelsDir } : {}),
    ...benchGatewayEnv({ http: ports.http, grpc: ports.grpc, dataDir: join(outDir, `${name}-data`), log: logOn }),
  };
}

async function startGateway(name: string, logOn: boolean, profile: boolean, modelsDir?: string, ports = { http: PORTS.gwHttp, grpc: PORTS.gwGrpc }): Promise<Child> {
  const args = profile ? ['--cpu-prof', `--cpu-prof-dir=${join(outDir, `${name}-profile`)}`, 'gateway/main.ts'] : ['gateway/main.ts'];
  const gw = await startServer(name, args, gatewayEnv(logOn, name, modelsDir, ports));
  await waitHttpOk(`http://127.0.0.1:${ports.http}/readyz`, 60_000, gw);
  if (profile) promoteV8Sampler(gw.pid);
  return gw;
}

function http(port: number): string {
  return `http://127.0.0.1:${port}`;
}
function grpcAddr(port: number): string {
  return `127.0.0.1:${port}`;
}

try {
  log(`suite ${QUICK ? '(quick)' : ''} → ${outDir}`);
  // A server left on one of these ports would answer in place of the one started here.
  await assertPortsFree(Object.values(PORTS));
  const peerNames = selectPeers(flags.peers, flags['no-peer']);
  const installed = await installPeers(peerNames, log);
  await services();

  // ---- baselines: the model's and the transports' ceilings ----
  await ortLoop('delivery-eta', '2');
  await ortLoop('tabular-mlp', '1');
  const hono = await startServer('hono-echo', ['loadtest/baselines/hono-echo.ts', String(PORTS.hono)]);
  await hono.announced;
  const echoRestEta = (await generate('echo-rest/eta-store/max', 'Hono echo', { name: 'echo', target: http(PORTS.hono), protocol: 'sibyl-rest', mix: 'eta-store', mode: 'closed', concurrency: CONCURRENCY, durationS: D, warmupS: W })).steps[0]!;
  const echoRestMlp = (await generate('echo-rest/mlp-tensor/max', 'Hono echo', { name: 'echo', target: http(PORTS.hono), protocol: 'oip-rest', mix: 'mlp-tensor', mode: 'closed', concurrency: CONCURRENCY, durationS: D, warmupS: W })).steps[0]!;
  await stopServer(hono);
  const grpcEcho = await startServer('grpc-echo', ['loadtest/baselines/grpc-echo.ts', String(PORTS.grpcEcho)]);
  await grpcEcho.announced;
  const echoGrpcEta = (await generate('echo-grpc/eta-store/max', 'grpc-js echo', { name: 'echo', target: grpcAddr(PORTS.grpcEcho), protocol: 'sibyl-grpc', mix: 'eta-store', mode: 'closed', concurrency: CONCURRENCY, durationS: D, warmupS: W })).steps[0]!;
  const echoGrpcMlp = (await generate('echo-grpc/mlp-tensor/max', 'grpc-js echo', { name: 'echo', target: grpcAddr(PORTS.grpcEcho), protocol: 'oip-grpc', mix: 'mlp-tensor', mode: 'closed', concurrency: CONCURRENCY, durationS: D, warmupS: W })).steps[0]!;
  await stopServer(grpcEcho);

  // ---- the peers (loadtest/peer/peers.ts): MLServer, KServe, BentoML, Ray Serve; the same model, 20 features inline ----
  const peers = await runPeers({ outDir, log, startServer, stopServer, maxThenOpen }, installed, peerNames);
  const mlserver = (p: string) => peers.runs.find((r) => r.peer === 'mlserver' && !r.batching && r.protocol === p);
  const [mlRest, mlGrpc] = [mlserver('oip-rest'), mlserver('oip-grpc')];
  const peer = mlRest && mlGrpc ? { rest: mlRest, grpc: mlGrpc } : undefined;
  if (peerNames.length === 0) report.notes.push('peers skipped (--no-peer)');
  // Reported now (without Sibyl's ratios) in case a later part stops the suite; rebuilt at the end.
  else report.peers = peerSection(peers, report.runs);

  // ---- Sibyl, prediction log to Kafka on ----
  await seedRedis(REDIS_URL, PREFIX);
  // The Kafka-on gateway is the standard configuration; when it cannot start (the sink broken or missing), the
  // suite still measures everything else with the log off and says so.
  let kafkaOn = true;
  let gwA: Child;
  try {
    gwA = await startGateway('sibyl-kafka', true, flags.profile);
  } catch (err) {
    kafkaOn = false;
    const why = (err as Error).message;
    report.notes.push(`the gateway with the Kafka prediction log did not start (${why}): S1, S3, S4 and the peer comparison ran with the prediction log OFF, and the Kafka cost was not measured`);
    log(`Kafka-on gateway failed (${why}); continuing with the log off`);
    gwA = await startGateway('sibyl-kafka-unavailable', false, flags.profile);
  }
  const LOG = kafkaOn ? 'kafka' : 'log-off';
  const SIBYL = kafkaOn ? 'Sibyl (Kafka log)' : 'Sibyl (log off)';
  const gwHttp = http(PORTS.gwHttp);
  const gwGrpc = grpcAddr(PORTS.gwGrpc);
  await check(gwHttp, 'sibyl-rest', 'eta-store', true);
  await check(gwGrpc, 'sibyl-grpc', 'eta-store', true);
  await check(gwHttp, 'oip-rest', 'mlp-tensor', false);
  await check(gwGrpc, 'oip-grpc', 'mlp-tensor', false);
  await check(gwHttp, 'oip-rest', 'eta-inline', false);
  await check(gwGrpc, 'oip-grpc', 'eta-inline', false);
  const s1 = await maxThenOpen(`S1 sibyl-rest/eta-store/${LOG}`, SIBYL, gwHttp, 'sibyl-rest', 'eta-store');
  const s3 = await maxThenOpen(`S3 oip-rest/mlp-tensor/${LOG}`, SIBYL, gwHttp, 'oip-rest', 'mlp-tensor');
  const s4a = await maxThenOpen(`S4a sibyl-grpc/eta-store/${LOG}`, SIBYL, gwGrpc, 'sibyl-grpc', 'eta-store');
  const s4b = await maxThenOpen(`S4b oip-grpc/mlp-tensor/${LOG}`, SIBYL, gwGrpc, 'oip-grpc', 'mlp-tensor');
  let inline: { rest: { max: StepResult; open: StepResult }; grpc: { max: StepResult; open: StepResult } } | undefined;
  if (peers.rates.rest) {
    inline = {
      rest: await maxThenOpen(`P sibyl oip-rest/eta-inline/${LOG}`, SIBYL, gwHttp, 'oip-rest', 'eta-inline', { rate: peers.rates.rest }),
      grpc: await maxThenOpen(`P sibyl oip-grpc/eta-inline/${LOG}`, SIBYL, gwGrpc, 'oip-grpc', 'eta-inline', { rate: peers.rates.grpc ?? peers.rates.rest }),
    };
  }
  if (!flags['no-overload']) {
    // Held to a CPU quota, so that the generator can offer 3x what the gateway serves (lib/overload.ts).
    report.ramp = await runOverload(
      { target: gwHttp, gatewayPid: gwA.pid, cores: OVERLOAD_CORES, deadlineMs: OVERLOAD_DEADLINE_MS, stepS: RAMP_STEP_S, capacityS: Math.max(3, D / 2), warmupS: W },
      { log, generate: async (key, spec) => (await generate(key, SIBYL, spec)).steps },
    );
  }
  await stopServer(gwA);
  if (flags.profile) {
    const dir = join(outDir, `${kafkaOn ? 'sibyl-kafka' : 'sibyl-kafka-unavailable'}-profile`);
    const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
    if (file) report.profile = { file: join(dir, file), ...topSelfTime(join(dir, file), 25) };
  }

  // ---- Sibyl, prediction log off ----
  let s2 = s1;
  let inlineNoLog: { rest: { max: StepResult; open: StepResult }; grpc: { max: StepResult; open: StepResult } } | undefined;
  if (kafkaOn) {
    const gwB = await startGateway('sibyl-nolog', false, false);
    await check(gwHttp, 'sibyl-rest', 'eta-store', true);
    s2 = await maxThenOpen('S2 sibyl-rest/eta-store/log-off', 'Sibyl (log off)', gwHttp, 'sibyl-rest', 'eta-store');
    // Like for like with the peer, which keeps no prediction log: the same requests with Sibyl's log off too.
    if (peers.rates.rest) {
      inlineNoLog = {
        rest: await maxThenOpen('P sibyl oip-rest/eta-inline/log-off', 'Sibyl (log off)', gwHttp, 'oip-rest', 'eta-inline', { rate: peers.rates.rest }),
        grpc: await maxThenOpen('P sibyl oip-grpc/eta-inline/log-off', 'Sibyl (log off)', gwGrpc, 'oip-grpc', 'eta-inline', { rate: peers.rates.grpc ?? peers.rates.rest }),
      };
    }
    await stopServer(gwB);
  }

  // ---- interleaved runs: the echoes, S1 (Kafka log), S2 (log off), S4a and MLServer in turn, medians ----
  // This machine's speed drifts by tens of percent within minutes (other tenants); ratios between runs minutes
  // apart mean little. The servers are up at once (all on core 1, all but one idle at any moment), measured in turn:
  // the Hono echo against S1 and S2 over REST, the grpc-js echo against S4a (the Kafka-on gateway's gRPC door), and
  // MLServer against the log-off gateway on the peer comparison's requests (OIP REST and gRPC, 20 features inline).
  /** A pair's interleaved medians: max ok/s (closed loop), and client p99 at the peer's half max (open loop), ms. */
  interface PeerPair { ml: number; sibyl: number; mlP99: number; sibylP99: number }
  let ab: { echo: number; on: number; off: number; grpcEcho: number; s4a: number; peer?: { rest: PeerPair; grpc: PeerPair } } | undefined;
  if (kafkaOn) {
    const echoAb = await startServer('ab-hono-echo', ['loadtest/baselines/hono-echo.ts', String(PORTS.hono)]);
    await echoAb.announced;
    const grpcEchoAb = await startServer('ab-grpc-echo', ['loadtest/baselines/grpc-echo.ts', String(PORTS.grpcEcho)]);
    await grpcEchoAb.announced;
    const gwOn = await startGateway('ab-sibyl-kafka', true, false);
    const gwOff = await startGateway('ab-sibyl-nolog', false, false, undefined, { http: PORTS.gw2Http, grpc: PORTS.gw2Grpc });
    await check(http(PORTS.gw2Http), 'sibyl-rest', 'eta-store', true);
    await check(grpcAddr(PORTS.gwGrpc), 'sibyl-grpc', 'eta-store', true);
    /** `open`: an open loop at this rate (its client p99s go to `p99s`), else a closed loop's maximum (to `got`). */
    interface Arm { key: string; server: string; child: Child; target: string; protocol: Protocol; mix: Mix; open?: number; got: number[]; p99s: number[] }
    const arms: Arm[] = [
      { key: 'echo', server: 'Hono echo', child: echoAb, target: http(PORTS.hono), protocol: 'sibyl-rest', mix: 'eta-store', got: [], p99s: [] },
      { key: `S1 sibyl-rest/eta-store/kafka`, server: 'Sibyl (Kafka log)', child: gwOn, target: http(PORTS.gwHttp), protocol: 'sibyl-rest', mix: 'eta-store', got: [], p99s: [] },
      { key: 'S2 sibyl-rest/eta-store/log-off', server: 'Sibyl (log off)', child: gwOff, target: http(PORTS.gw2Http), protocol: 'sibyl-rest', mix: 'eta-store', got: [], p99s: [] },
      { key: 'echo-grpc', server: 'grpc-js echo', child: grpcEchoAb, target: grpcAddr(PORTS.grpcEcho), protocol: 'sibyl-grpc', mix: 'eta-store', got: [], p99s: [] },
      { key: 'S4a sibyl-grpc/eta-store/kafka', server: 'Sibyl (Kafka log)', child: gwOn, target: grpcAddr(PORTS.gwGrpc), protocol: 'sibyl-grpc', mix: 'eta-store', got: [], p99s: [] },
    ];
    // MLServer again (it ran alone above), when it ran and agreed: the peer comparison is judged on these, its
    // maxima and its p99s at MLServer's half max (the open-loop rate of the sequential runs), each pair in turn.
    let ml: StartedPeer | undefined;
    if (peer && inlineNoLog) {
      try {
        ml = await startPeer({ startServer, stopServer }, 'mlserver', false, 'ab-mlserver', outDir);
        await check(http(PORTS.gw2Http), 'oip-rest', 'eta-inline', false);
        await check(grpcAddr(PORTS.gw2Grpc), 'oip-grpc', 'eta-inline', false);
        for (const open of [undefined, 'open'] as const) {
          for (const [protocol, target] of ml.targets) {
            const rest = protocol === 'oip-rest';
            const rate = open && (rest ? peer.rest.open.rate : peer.grpc.open.rate);
            const at = rate ? `/open@${rate}` : ''; // a closed loop's key gets its "/max" when run
            arms.push(
              { key: `mlserver-${rest ? 'rest' : 'grpc'}/eta-inline${at}`, server: ml.label, child: ml.child, target, protocol, mix: 'eta-inline', ...(rate ? { open: rate } : {}), got: [], p99s: [] },
              { key: `P sibyl ${protocol}/eta-inline/log-off${at}`, server: 'Sibyl (log off)', child: gwOff, target: rest ? http(PORTS.gw2Http) : grpcAddr(PORTS.gw2Grpc), protocol, mix: 'eta-inline', ...(rate ? { open: rate } : {}), got: [], p99s: [] },
            );
          }
        }
      } catch (err) {
        report.notes.push(`MLServer did not start for the interleaved runs (${(err as Error).message.split('\n')[0]}): the peer comparison's ratios are from its sequential runs`);
      }
    }
    // Warm every arm up first, unmeasured: a freshly started gateway runs its first seconds before the JIT has
    // compiled the hot paths (the Kafka sink's least of all: it runs per batch). Measured that way, round 1 ran
    // 17-34% below round 2 in side-by-side runs, the gateway with the log the most.
    for (const arm of arms.filter((a) => a.open === undefined)) {
      await generate(`interleaved warm-up: ${arm.key}`, arm.server, { name: 'ab-warm-up', target: arm.target, protocol: arm.protocol, mix: arm.mix, mode: 'closed', concurrency: CONCURRENCY, durationS: AB_WARM_S, warmupS: 0 }, false);
    }
    for (let round = 0; round < AB_ROUNDS; round++) {
      // Rotate the order each round, so that no arm always runs first after a pause.
      for (let i = 0; i < arms.length; i++) {
        const arm = arms[(i + round) % arms.length]!;
        serverPid = arm.child.pid;
        if (arm.open !== undefined) {
          const o = await generate(`interleaved ${round + 1}: ${arm.key}`, arm.server, { name: 'ab', target: arm.target, protocol: arm.protocol, mix: arm.mix, mode: 'open', steps: [{ rate: arm.open, durationS: AB_S }], warmupS: 1, ...OPEN_TOOL });
          arm.got.push(o.steps[0]!.throughput);
          arm.p99s.push(o.steps[0]!.latency.p99);
          continue;
        }
        const m = await generate(`interleaved ${round + 1}: ${arm.key}/max`, arm.server, { name: 'ab', target: arm.target, protocol: arm.protocol, mix: arm.mix, mode: 'closed', concurrency: CONCURRENCY, durationS: AB_S, warmupS: 1 });
        arm.got.push(m.steps[0]!.throughput);
      }
    }
    for (const c of [gwOff, gwOn, grpcEchoAb, echoAb, ...(ml ? [ml.child] : [])]) await stopServer(c);
    ab = { echo: median(arms[0]!.got), on: median(arms[1]!.got), off: median(arms[2]!.got), grpcEcho: median(arms[3]!.got), s4a: median(arms[4]!.got) };
    const [mlRest, pRest, mlGrpc, pGrpc, mlRestOpen, pRestOpen, mlGrpcOpen, pGrpcOpen] = arms.slice(5);
    if (mlRest && pRest && mlGrpc && pGrpc && mlRestOpen && pRestOpen && mlGrpcOpen && pGrpcOpen) {
      const pair = (ml: Arm, sibyl: Arm, mlOpen: Arm, sibylOpen: Arm): PeerPair => ({ ml: median(ml.got), sibyl: median(sibyl.got), mlP99: median(mlOpen.p99s), sibylP99: median(sibylOpen.p99s) });
      ab.peer = { rest: pair(mlRest, pRest, mlRestOpen, pRestOpen), grpc: pair(mlGrpc, pGrpc, mlGrpcOpen, pGrpcOpen) };
    }
    report.notes.push(
      `interleaved runs (${AB_ROUNDS} rounds of ${AB_S} s, order rotated): ${arms.map((a) => `${a.key} ${a.got.join(' / ')} ok/s${a.open === undefined ? '' : `, p99 ${a.p99s.join(' / ')} ms`}`).join(', ')}; ` +
        `medians ${arms.map((a) => median(a.got)).join(' / ')}: the targets for S1/echo, the Kafka cost, S4a/echo${ab.peer ? ' and the peer comparison (its p99s too)' : ''} use these`,
    );
  }

  // ---- the generator's and the machine's own tail: the bare echo, open loop, at S1's half-max rate ----
  const honoAgain = await startServer('hono-echo-open', ['loadtest/baselines/hono-echo.ts', String(PORTS.hono)]);
  await honoAgain.announced;
  const echoOpen = (await generate(`echo-rest/eta-store/open@${s1.open.rate}`, 'Hono echo', { name: 'echo-open', target: http(PORTS.hono), protocol: 'sibyl-rest', mix: 'eta-store', mode: 'open', steps: [{ rate: s1.open.rate, durationS: D }], warmupS: W, ...OPEN_TOOL })).steps[0]!;
  await stopServer(honoAgain);

  // ---- shadows (issue 6): S1 with two shadows (delivery-eta v1, and eta-risk on the same features) ----
  let shadowRuns: { max: StepResult; open: StepResult; atMax: ShadowCounts; atHalf: ShadowCounts } | undefined;
  if (!flags['no-shadows']) {
    const dir = join(outDir, 'shadow-models');
    for (const b of ['delivery-eta/1', 'delivery-eta/2', 'eta-risk/1']) cpSync(join('models', b), join(dir, b), { recursive: true });
    writeFileSync(
      join(dir, 'deployment.yaml'),
      'models:\n  delivery-eta: { default: "2", shadows: [{ version: "1" }, { model: eta-risk }] }\n  eta-risk: { default: "1" }\n',
    );
    const gwS = await startGateway('sibyl-shadows', kafkaOn, false, dir);
    await check(gwHttp, 'sibyl-rest', 'eta-store', true);
    const before = await shadowCounts(gwHttp);
    const max = (await generate(`S6 sibyl-rest/eta-store/${LOG}/2-shadows/max`, `${SIBYL}, 2 shadows`, { name: 'shadows-max', target: gwHttp, protocol: 'sibyl-rest', mix: 'eta-store', mode: 'closed', concurrency: CONCURRENCY, durationS: D, warmupS: W })).steps[0]!;
    const mid = await shadowCounts(gwHttp);
    // The same rate as S1's half-max run, so that the p99s compare.
    const open = (await generate(`S6 sibyl-rest/eta-store/${LOG}/2-shadows/open@${s1.open.rate}`, `${SIBYL}, 2 shadows`, { name: 'shadows-open', target: gwHttp, protocol: 'sibyl-rest', mix: 'eta-store', mode: 'open', steps: [{ rate: s1.open.rate, durationS: D }], warmupS: W, ...OPEN_TOOL })).steps[0]!;
    const after = await shadowCounts(gwHttp);
    shadowRuns = { max, open, atMax: diffCounts(mid, before), atHalf: diffCounts(after, mid) };
    report.notes.push(
      `S6 shadows: at max (closed loop) ${shadowRuns.atMax.executed} shadow executions ran and ${shadowRuns.atMax.shed} were shed; at ${s1.open.rate}/s ${shadowRuns.atHalf.executed} ran and ${shadowRuns.atHalf.shed} were shed (counts include warm-up)`,
    );
    await stopServer(gwS);
  }

  // ---- one worker held to 0.35 of a core against two held to 0.7 (loadtest/lib/cores.ts) ----
  let cores: CoresResult | undefined;
  let coresSkipped = flags['no-cores'] ? '--no-cores' : undefined;
  if (!coresSkipped) {
    try {
      cores = await measureCores({ cores: 0.35, rounds: QUICK ? 1 : 4, durationS: D, warmupS: W, outDir, log });
      report.notes.push(`cores: ${JSON.stringify(cores.runs)}`);
    } catch (err) {
      coresSkipped = (err as Error).message;
    }
  }

  // ---- ratios and targets ----
  const eta = report.ort.find((o) => o.model === 'delivery-eta')!;
  const mlp = report.ort.find((o) => o.model === 'tabular-mlp')!;
  report.ratios = [
    { name: `S1 Sibyl REST (store features, ${LOG}) / Hono echo, same bodies`, value: s1.max.throughput / echoRestEta.throughput },
    { name: 'S2 Sibyl REST (store features, log off) / Hono echo', value: s2.max.throughput / echoRestEta.throughput },
    { name: 'S3 Sibyl OIP REST tabular-mlp / Hono echo, same bodies', value: s3.max.throughput / echoRestMlp.throughput },
    { name: `S4a Sibyl gRPC (store features, ${LOG}) / grpc-js echo, same messages`, value: s4a.max.throughput / echoGrpcEta.throughput },
    { name: 'S4b Sibyl OIP gRPC tabular-mlp / grpc-js echo, same messages', value: s4b.max.throughput / echoGrpcMlp.throughput },
    { name: 'S1 Sibyl REST / raw session.run loop (delivery-eta/2)', value: s1.max.throughput / eta.throughput },
    { name: 'S3 Sibyl OIP REST / raw session.run loop (tabular-mlp/1)', value: s3.max.throughput / mlp.throughput },
    ...(peer && inline
      ? [
          { name: 'Sibyl OIP REST, 20 features inline / MLServer OIP REST', value: inline.rest.max.throughput / peer.rest.max.throughput },
          { name: 'Sibyl OIP gRPC, 20 features inline / MLServer OIP gRPC', value: inline.grpc.max.throughput / peer.grpc.max.throughput },
          ...(inlineNoLog
            ? [
                { name: 'Sibyl OIP REST, 20 features inline, log off / MLServer OIP REST', value: inlineNoLog.rest.max.throughput / peer.rest.max.throughput },
                { name: 'Sibyl OIP gRPC, 20 features inline, log off / MLServer OIP gRPC', value: inlineNoLog.grpc.max.throughput / peer.grpc.max.throughput },
              ]
            : []),
          { name: 'S1 Sibyl REST, 13 features from Redis / MLServer OIP REST (inline)', value: s1.max.throughput / peer.rest.max.throughput },
          { name: 'S4a Sibyl gRPC, 13 features from Redis / MLServer OIP gRPC (inline)', value: s4a.max.throughput / peer.grpc.max.throughput },
        ]
      : []),
  ].map((r) => ({ ...r, value: Math.round(r.value * 1000) / 1000 }));

  const targets: Target[] = [
    ab
      ? { target: 'S1 max throughput ≥ 40% of the bare Hono echo', measured: `interleaved medians ${ab.on} / ${ab.echo} = ${pct(ab.on / ab.echo)} (sequential runs: ${s1.max.throughput} / ${echoRestEta.throughput} = ${pct(s1.max.throughput / echoRestEta.throughput)})`, met: ab.on >= 0.4 * ab.echo }
      : { target: 'S1 max throughput ≥ 40% of the bare Hono echo', measured: `${s1.max.throughput} / ${echoRestEta.throughput} = ${pct(s1.max.throughput / echoRestEta.throughput)}`, met: s1.max.throughput >= 0.4 * echoRestEta.throughput },
    {
      // The tail is judged by the gateway's own histogram (arrival to response), and by the client's p99 less the
      // bare echo's at the same rate in the same run: the generator's and the machine's own tail are in both.
      target: "S1's own p99 at half of its max rate < 1 ms (the gateway's histogram)",
      measured:
        `gateway's own p99 ${s1.openGatewayP99Ms ?? '-'} ms at ${s1.open.rate}/s; client p99 ${s1.open.latency.p99} ms - the bare Hono echo's ${echoOpen.latency.p99} ms at the same rate = ` +
        `${Math.round((s1.open.latency.p99 - echoOpen.latency.p99) * 100) / 100} ms (client p50 ${s1.open.latency.p50} ms, echo's ${echoOpen.latency.p50} ms)`,
      met: s1.openGatewayP99Ms !== undefined && s1.openGatewayP99Ms < 1 && s1.open.ok > 0,
    },
    kafkaOn
      ? ab
        ? { target: 'Kafka logging costs < 10% of max throughput', measured: `interleaved medians 1 - ${ab.on} / ${ab.off} = ${pct(1 - ab.on / ab.off)} (sequential runs: 1 - ${s1.max.throughput} / ${s2.max.throughput} = ${pct(1 - s1.max.throughput / s2.max.throughput)})`, met: ab.on >= 0.9 * ab.off }
        : { target: 'Kafka logging costs < 10% of max throughput', measured: `1 - ${s1.max.throughput} / ${s2.max.throughput} = ${pct(1 - s1.max.throughput / s2.max.throughput)}`, met: s1.max.throughput >= 0.9 * s2.max.throughput }
      : { target: 'Kafka logging costs < 10% of max throughput', measured: 'not measured: the Kafka-on gateway did not start', met: false },
    ab
      ? {
          target: 'S4a Sibyl gRPC max throughput ≥ 60% of the bare grpc-js echo (same messages)',
          measured: `interleaved medians ${ab.s4a} / ${ab.grpcEcho} = ${pct(ab.s4a / ab.grpcEcho)} (sequential runs: ${s4a.max.throughput} / ${echoGrpcEta.throughput} = ${pct(s4a.max.throughput / echoGrpcEta.throughput)})`,
          met: ab.s4a >= 0.6 * ab.grpcEcho,
        }
      : {
          target: 'S4a Sibyl gRPC max throughput ≥ 60% of the bare grpc-js echo (same messages)',
          measured: `${s4a.max.throughput} / ${echoGrpcEta.throughput} = ${pct(s4a.max.throughput / echoGrpcEta.throughput)}`,
          met: s4a.max.throughput >= 0.6 * echoGrpcEta.throughput,
        },
  ];
  if (peer && inline) {
    // Judged like for like (neither server logs predictions) when the log-off runs exist, by the interleaved medians
    // when MLServer ran in the interleaved rounds; the sequential ratio and the Kafka-on ratio are shown too.
    const pairs = [
      ['REST', inlineNoLog?.rest ?? inline.rest, inline.rest, peer.rest, ab?.peer?.rest],
      ['gRPC', inlineNoLog?.grpc ?? inline.grpc, inline.grpc, peer.grpc, ab?.peer?.grpc],
    ] as const;
    for (const [label, sib, withLog, ml, inter] of pairs) {
      const x = (a: number, b: number) => `${a} / ${b} = ${(a / b).toFixed(2)}x`;
      targets.push({
        target: `≥ 10x MLServer throughput at a lower p99 (OIP ${label}, same model, 20 features inline${inlineNoLog ? ', neither server logging predictions' : ''})`,
        measured: inter
          ? `interleaved medians ${x(inter.sibyl, inter.ml)}, p99 at ${ml.open.rate}/s: Sibyl ${inter.sibylP99} ms vs MLServer ${inter.mlP99} ms ` +
            `(sequential runs: ${x(sib.max.throughput, ml.max.throughput)}, p99 ${sib.open.latency.p99} vs ${ml.open.latency.p99} ms)` +
            `; with Sibyl's Kafka log on: ${(withLog.max.throughput / ml.max.throughput).toFixed(2)}x, p99 ${withLog.open.latency.p99} ms (sequential)`
          : `${x(sib.max.throughput, ml.max.throughput)}; p99 at ${ml.open.rate}/s: Sibyl ${sib.open.latency.p99} ms vs MLServer ${ml.open.latency.p99} ms` +
            (inlineNoLog ? `; with Sibyl's Kafka log on: ${(withLog.max.throughput / ml.max.throughput).toFixed(2)}x, p99 ${withLog.open.latency.p99} ms` : ''),
        met: inter ? inter.sibyl >= 10 * inter.ml && inter.sibylP99 < inter.mlP99 : sib.max.throughput >= 10 * ml.max.throughput && sib.open.latency.p99 < ml.open.latency.p99,
      });
    }
  }
  if (shadowRuns) {
    const sr = shadowRuns;
    targets.push(
      {
        target: 'Shadows: live p99 at half max with 2 shadows within 10% of S1 (no shadows), nothing shed',
        measured: `p99 ${sr.open.latency.p99} ms vs ${s1.open.latency.p99} ms at ${s1.open.rate}/s (${pct(sr.open.latency.p99 / s1.open.latency.p99 - 1)}); shed ${sr.atHalf.shed} of ${sr.atHalf.executed + sr.atHalf.shed}`,
        met: sr.open.latency.p99 <= 1.1 * s1.open.latency.p99 && sr.atHalf.shed === 0,
      },
      {
        target: 'Shadows: at max rate shadows are shed before live requests suffer (live max with 2 shadows ≥ 90% of without)',
        measured: `live max ${sr.max.throughput}/s with shadows vs ${s1.max.throughput}/s without (${pct(sr.max.throughput / s1.max.throughput)}); shadows shed ${sr.atMax.shed}, ran ${sr.atMax.executed}`,
        met: sr.max.throughput >= 0.9 * s1.max.throughput && sr.atMax.shed > 0,
      },
    );
  }
  targets.push(coresTarget(cores, coresSkipped));
  report.targets = targets;
  if (report.ramp) report.targets.push(...overloadTargets(report.ramp));
  if (peerNames.length) report.peers = peerSection(peers, report.runs);
} catch (err) {
  report.notes.push(`suite stopped early: ${(err as Error).message}`);
  log(`FAILED: ${(err as Error).stack ?? err}`);
  process.exitCode = 1;
} finally {
  for (const c of [...children].reverse()) await c.stop().catch(() => undefined);
  for (const r of restoreAffinity) r();
  report.durationS = Math.round((Date.now() - t0) / 1000);
  writeFileSync(join(outDir, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
  const md = renderMarkdown(report);
  writeFileSync(join(outDir, 'report.md'), md);
  writeFileSync(join('loadtest', 'results', `latest${QUICK ? '-quick' : ''}.md`), md);
  writeFileSync(join('loadtest', 'results', `latest${QUICK ? '-quick' : ''}.json`), `${JSON.stringify(report, null, 2)}\n`);
  if (!QUICK && process.exitCode !== 1) writeFileSync(join('loadtest', 'RESULTS.md'), md);
  log(`done in ${report.durationS}s: ${join(outDir, 'report.md')}`);
}

interface ShadowCounts {
  executed: number;
  shed: number;
}

/** Sum of executed and shed shadow executions over the gateway's pairs (GET /v1/shadows). */
async function shadowCounts(base: string): Promise<ShadowCounts> {
  const res = await fetch(`${base}/v1/shadows`);
  const { pairs } = (await res.json()) as { pairs: ShadowCounts[] };
  return pairs.reduce((a, p) => ({ executed: a.executed + p.executed, shed: a.shed + p.shed }), { executed: 0, shed: 0 });
}

function diffCounts(a: ShadowCounts, b: ShadowCounts): ShadowCounts {
  return { executed: a.executed - b.executed, shed: a.shed - b.shed };
}


function pct(v: number): string {
  return `${(v * 100).toFixed(1)}%`;
}
