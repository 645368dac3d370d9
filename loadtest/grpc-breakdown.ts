#!/usr/bin/env node
/**
 * Where a gRPC request's time goes: the bare grpc-js echo (loadtest/baselines/grpc-echo.ts) and the gateway, each
 * loaded alone in turn on the same core, with the same pre-encoded messages, closed loop. Per scenario and round it
 * measures each server's CPU per request (from /proc, every thread) and the generator's (this process, on the other
 * core), and with `--profile` charges the gateway's (and the echo's) CPU to its parts from a V8 CPU profile of the
 * measured windows only (lib/profile-breakdown.ts).
 *
 *   taskset -c 0 node loadtest/grpc-breakdown.ts [--rounds 3] [--seconds 5] [--profile] [--client h2|grpc-js]
 *       [--gateway DIR] [--log kafka|off] [--scenarios S4a,S4b,P] [--mlserver] [--echo-options JSON]
 *       [--gateway-env JSON]   (extra environment of the gateway, e.g. '{"SIBYL_MAX_LAG_MS":"10000"}' to keep lag
 *                              admission from refusing on a machine other work slows down)
 *
 * Scenarios: S4a Sibyl gRPC delivery-eta with 13 Redis features, S4b OIP gRPC tabular-mlp, P OIP gRPC delivery-eta
 * with 20 features inline (the request MLServer gets; with --mlserver, MLServer from .venv-mlserver serves it too, see
 * loadtest/peer/). Needs Redis and Kafka of scripts/services (started here, and placed as the suite places them: lib/bench-services.ts).
 */
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createSender, waitReady, type Sender } from './lib/clients.ts';
import { closedLoop } from './lib/loops.ts';
import { processCpuMs, promoteV8Sampler, startChild, waitHttpOk, type Child } from './lib/processes.ts';
import { breakdown } from './lib/profile-breakdown.ts';
import { buildPool, type Mix, type Protocol } from './lib/requests.ts';
import { seedRedis } from './lib/seed.ts';
import { startBenchServices, type BenchServices } from './lib/bench-services.ts';
import { median } from './lib/histogram.ts';

const { values: flags } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '2' },
    concurrency: { type: 'string', default: '48' },
    connections: { type: 'string', default: '4' },
    profile: { type: 'boolean', default: false },
    client: { type: 'string', default: 'h2' },
    gateway: { type: 'string', default: '.' },
    log: { type: 'string', default: 'kafka' },
    scenarios: { type: 'string', default: 'S4a,S4b,P' },
    'echo-options': { type: 'string', default: '' },
    mlserver: { type: 'boolean', default: false },
    'gateway-env': { type: 'string', default: '{}' },
  },
});
const ROUNDS = Number(flags.rounds);
const SECONDS = Number(flags.seconds);
const WARMUP = Number(flags.warmup);
const CONCURRENCY = Number(flags.concurrency);
const SERVER_CORE = '1';
const REDIS_URL = 'redis://127.0.0.1:6399';
const PREFIX = 'bench';
const client = flags.client === 'grpc-js' ? 'grpc-js' : 'h2';
const stamp = new Date().toISOString().replace(/[:.]/g, '-');
const outDir = resolve('loadtest', 'results', 'tmp', `grpc-breakdown-${stamp}`);
mkdirSync(outDir, { recursive: true });
const log = (msg: string) => console.log(`[grpc] ${msg}`);

const ALL: { key: string; label: string; protocol: Protocol; mix: Mix }[] = [
  { key: 'S4a', label: 'S4a Sibyl gRPC, delivery-eta, 13 Redis features', protocol: 'sibyl-grpc', mix: 'eta-store' },
  { key: 'S4b', label: 'S4b OIP gRPC, tabular-mlp', protocol: 'oip-grpc', mix: 'mlp-tensor' },
  { key: 'P', label: 'OIP gRPC, delivery-eta, 20 features inline', protocol: 'oip-grpc', mix: 'eta-inline' },
];
const scenarios = ALL.filter((s) => flags.scenarios.split(',').includes(s.key));

async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolvePort(port));
    });
  });
}

interface Server {
  readonly name: 'echo' | 'gateway' | 'mlserver';
  readonly child: Child;
  readonly grpc: number;
  readonly windows: { startUs: number; endUs: number }[];
  readonly profileDir: string | undefined;
}

const profileArgs = (name: string): string[] => (flags.profile ? ['--cpu-prof', '--cpu-prof-interval', '250', `--cpu-prof-dir=${join(outDir, `${name}-profile`)}`] : []);

async function startEcho(): Promise<Server> {
  const args = [...profileArgs('echo'), resolve('loadtest/baselines/grpc-echo.ts'), '0', ...(flags['echo-options'] ? [flags['echo-options']] : [])];
  const child = startChild('grpc-echo', 'node', args, { cores: SERVER_CORE, logFile: join(outDir, 'echo.log') });
  const { port } = await child.announced;
  if (flags.profile) promoteV8Sampler(child.pid);
  return { name: 'echo', child, grpc: port, windows: [], profileDir: flags.profile ? join(outDir, 'echo-profile') : undefined };
}

async function startGateway(): Promise<Server & { http: number }> {
  const http = await freePort();
  const grpc = await freePort();
  const dir = resolve(flags.gateway);
  const child = startChild('gateway', 'node', [...profileArgs('gateway'), 'gateway/main.ts'], {
    cores: SERVER_CORE,
    cwd: dir,
    logFile: join(outDir, 'gateway.log'),
    env: {
      SIBYL_HOST: '127.0.0.1',
      SIBYL_HTTP_PORT: String(http),
      SIBYL_GRPC_PORT: String(grpc),
      REDIS_URL,
      SIBYL_FEATURE_PREFIX: PREFIX,
      ...(flags.log === 'off' ? { SIBYL_PREDICTION_LOG: 'off' } : { KAFKA_BROKERS: '127.0.0.1:19092', SIBYL_KAFKA_TOPIC: 'sibyl.bench.predictions' }),
      SIBYL_DATA_DIR: join(outDir, 'data'),
      SIBYL_LOG_LEVEL: 'warn',
      ...(JSON.parse(flags['gateway-env']) as Record<string, string>),
    },
  });
  await waitHttpOk(`http://127.0.0.1:${http}/readyz`, 60_000, child);
  if (flags.profile) promoteV8Sampler(child.pid);
  return { name: 'gateway', child, grpc, http, windows: [], profileDir: flags.profile ? join(outDir, 'gateway-profile') : undefined };
}

/** MLServer with the suite's peer settings (loadtest/peer/settings.json: gRPC on 18181), on the server core. */
async function startMlserver(): Promise<Server> {
  const child = startChild('mlserver', '.venv-mlserver/bin/mlserver', ['start', 'loadtest/peer'], { cores: SERVER_CORE, env: { OMP_NUM_THREADS: '1' }, logFile: join(outDir, 'mlserver.log') });
  await waitHttpOk('http://127.0.0.1:18180/v2/models/delivery-eta/ready', 180_000, child);
  return { name: 'mlserver', child, grpc: 18181, windows: [], profileDir: undefined };
}

const nowUs = (): number => Number(process.hrtime.bigint() / 1000n);

interface Sample {
  rps: number;
  serverUs: number;
  generatorUs: number;
  generatorCpu: number;
  errors: Record<string, number>;
}

async function measure(server: Server, s: (typeof scenarios)[number]): Promise<Sample> {
  const pool = buildPool({ protocol: s.protocol, mix: s.mix, seed: 42 });
  const target = `127.0.0.1:${server.grpc}`;
  await waitReady(target);
  const sender: Sender = createSender({ target, grpc: true, connections: Number(flags.connections), deadlineMs: 1000, grpcClient: client });
  try {
    await closedLoop(sender, pool.requests, { concurrency: CONCURRENCY, durationS: WARMUP, deadlineMs: 1000 });
    const cpu0 = processCpuMs(server.child.pid)!;
    const t0 = nowUs();
    const r = await closedLoop(sender, pool.requests, { concurrency: CONCURRENCY, durationS: SECONDS, deadlineMs: 1000 });
    const t1 = nowUs();
    const cpu1 = processCpuMs(server.child.pid)!;
    server.windows.push({ startUs: t0, endUs: t1 });
    const errors = Object.fromEntries(Object.entries(r.codes).filter(([c]) => c !== 'OK'));
    const wallS = (t1 - t0) / 1e6;
    return {
      rps: r.throughput,
      serverUs: ((cpu1 - cpu0) * 1000) / Math.max(1, r.completed),
      generatorUs: (r.generatorCpu * wallS * 1e6) / Math.max(1, r.completed),
      generatorCpu: r.generatorCpu,
      errors,
    };
  } finally {
    await sender.close();
  }
}

const spread = (xs: readonly number[], d = 0): string => `${median(xs).toFixed(d)} (${Math.min(...xs).toFixed(d)}-${Math.max(...xs).toFixed(d)})`;

const results = new Map<string, { echo: Sample[]; gateway: Sample[]; mlserver: Sample[] }>();
let echo: Server | undefined;
let mlserver: Server | undefined;
let gateway: (Server & { http: number }) | undefined;
let placed: BenchServices | undefined;
try {
  placed = await startBenchServices({ kafka: flags.log !== 'off' });
  for (const note of placed.notes) log(note);
  log(await seedRedis(REDIS_URL, PREFIX));
  echo = await startEcho();
  gateway = await startGateway();
  if (flags.mlserver) mlserver = await startMlserver();
  log(`echo on ${echo.grpc}, gateway (${resolve(flags.gateway)}) on ${gateway.grpc}; client ${client}, ${CONCURRENCY} concurrent, ${flags.connections} connections; output ${outDir}`);
  for (let round = 0; round < ROUNDS; round++) {
    for (const s of scenarios) {
      const servers = s.key === 'P' && mlserver ? [echo, gateway, mlserver] : [echo, gateway];
      const order = round % 2 === 0 ? servers : servers.reverse();
      for (const server of order) {
        const m = await measure(server, s);
        const r = results.get(s.key) ?? { echo: [], gateway: [], mlserver: [] };
        r[server.name].push(m);
        results.set(s.key, r);
        log(
          `round ${round + 1} ${s.key} ${server.name}: ${m.rps} ok/s, server ${m.serverUs.toFixed(1)} µs CPU/req, generator ${m.generatorUs.toFixed(1)} µs/req (${(m.generatorCpu * 100).toFixed(0)}% of its core)` +
            (Object.keys(m.errors).length ? `, errors ${JSON.stringify(m.errors)}` : ''),
        );
      }
    }
  }
} finally {
  await gateway?.child.stop();
  await echo?.child.stop();
  await mlserver?.child.stop();
  placed?.restore();
}

const lines = [
  `# gRPC: the gateway beside the bare grpc-js echo, ${stamp}`,
  '',
  `${ROUNDS} rounds of ${SECONDS} s per scenario and server (after ${WARMUP} s unmeasured), closed loop, ${CONCURRENCY} concurrent over ${flags.connections} connections, generator: ${client}; servers on core ${SERVER_CORE}, this generator on the other. Medians (min-max).`,
  '',
  '| scenario | echo ok/s | gateway ok/s | gateway/echo | echo CPU µs/req | gateway CPU µs/req | generator µs/req (echo / gateway) | generator core (echo / gateway) |',
  '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
];
for (const s of scenarios) {
  const r = results.get(s.key);
  if (!r) continue;
  const ratio = median(r.gateway.map((g) => g.rps)) / median(r.echo.map((e) => e.rps));
  lines.push(
    `| ${s.label} | ${spread(r.echo.map((x) => x.rps))} | ${spread(r.gateway.map((x) => x.rps))} | ${(ratio * 100).toFixed(1)}% | ${spread(r.echo.map((x) => x.serverUs), 1)} | ${spread(r.gateway.map((x) => x.serverUs), 1)} | ${median(r.echo.map((x) => x.generatorUs)).toFixed(1)} / ${median(r.gateway.map((x) => x.generatorUs)).toFixed(1)} | ${(median(r.echo.map((x) => x.generatorCpu)) * 100).toFixed(0)}% / ${(median(r.gateway.map((x) => x.generatorCpu)) * 100).toFixed(0)}% |`,
  );
}
const p = results.get('P');
if (p && p.mlserver.length) {
  const ratio = median(p.gateway.map((g) => g.rps)) / median(p.mlserver.map((m) => m.rps));
  lines.push(
    '',
    `MLServer, OIP gRPC, delivery-eta, 20 features inline: ${spread(p.mlserver.map((x) => x.rps))} ok/s, ${spread(p.mlserver.map((x) => x.serverUs), 1)} µs CPU/req, generator ${median(p.mlserver.map((x) => x.generatorUs)).toFixed(1)} µs/req; Sibyl (${flags.log === 'off' ? 'log off' : 'Kafka log'}) / MLServer ${ratio.toFixed(2)}x`,
  );
}
for (const server of [echo, gateway]) {
  if (!server?.profileDir) continue;
  // One profile per thread: CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile, thread 0 being the main thread (the
  // event loop that serves every request); others are worker threads (the Kafka producer's).
  const files = readdirSync(server.profileDir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .sort((a, b) => Number(a.split('.').at(-3)) - Number(b.split('.').at(-3)));
  for (const s of scenarios) {
    const r = results.get(s.key)!;
    // The windows of this scenario on this server (one per round, in scenario order within each round).
    const idx = scenarios.indexOf(s);
    const windows = server.windows.filter((_, i) => i % scenarios.length === idx);
    const us = median(r[server.name].map((x) => x.serverUs));
    const threads = files.map((f) => ({ f, b: breakdown(join(server.profileDir!, f), windows) }));
    const busy = threads.reduce((n, t) => n + t.b.busyMs, 0) || 1;
    lines.push('', `## ${server.name}, ${s.label}: ${us.toFixed(1)} µs CPU per request (every thread, from /proc)`);
    for (const [i, { f, b }] of threads.entries()) {
      // Each thread's share of the process's CPU is taken as its share of the busy sampled time.
      const threadUs = (us * b.busyMs) / busy;
      lines.push('', `### ${i === 0 ? 'main thread' : `worker thread ${i}`} (${f}): ${b.samples} samples, ${b.busyMs} ms busy, ~${threadUs.toFixed(1)} µs/req`, '', '| part | share | µs/req |', '| --- | ---: | ---: |');
      for (const p of b.parts) if (p.share >= 0.003) lines.push(`| ${p.part} | ${(p.share * 100).toFixed(1)}% | ${(p.share * threadUs).toFixed(1)} |`);
      lines.push('', '| self time, top functions | share |', '| --- | ---: |');
      for (const t of b.top.slice(0, i === 0 ? 25 : 8)) lines.push(`| \`${t.fn}\` | ${(t.share * 100).toFixed(1)}% |`);
    }
  }
}
const md = `${lines.join('\n')}\n`;
writeFileSync(join(outDir, 'grpc-breakdown.md'), md);
console.log(md);
process.exit(0);
