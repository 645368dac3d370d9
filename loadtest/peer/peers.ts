/**
 * The peers: the model servers a user would pick instead of Sibyl, each serving delivery-eta/2 on one worker or
 * replica, pinned to the server core, measured on the requests MLServer gets (all 20 features inline, OIP REST
 * `{"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 20], ...}]}`, and OIP gRPC where the peer
 * speaks it). Where a peer has adaptive batching it runs twice, batching off and on.
 *
 * | peer     | what runs                                                             | protocols      | batching             |
 * | -------- | --------------------------------------------------------------------- | -------------- | -------------------- |
 * | mlserver | MLServer + mlserver-lightgbm, the same model as a LightGBM booster    | OIP REST, gRPC | max_batch_size/time  |
 * | kserve   | kserve.ModelServer, a kserve.Model running the ONNX file (onnxruntime) | OIP REST, gRPC | none in the server   |
 * | bentoml  | a BentoML service running the ONNX file                               | REST           | batchable API        |
 * | ray      | a Ray Serve deployment running the ONNX file                          | REST           | @serve.batch         |
 * | pytriton | Triton (PyTriton's tritonserver, CPU), a Python callable on the ONNX file | OIP REST, gRPC | dynamic batcher  |
 *
 * Each peer installs from PyPI into `.venv-<peer>/` (loadtest/peer/install.sh, exact pins) when the suite starts;
 * a peer whose install fails is skipped with the reason, and the suite goes on. Before load every peer's answers are
 * checked against Sibyl's for the same rows (agreement.ts).
 */
import { mkdirSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { StepResult } from '../lib/loops.ts';
import { processTreeCpuMs, run, waitHttpOk, type Child } from '../lib/processes.ts';
import type { Mix, Protocol } from '../lib/requests.ts';
import { checkAgreement, type OipProtocol } from './agreement.ts';

export const PEER_NAMES = ['mlserver', 'kserve', 'bentoml', 'ray', 'pytriton'] as const;
export type PeerName = (typeof PEER_NAMES)[number];

/** Adaptive batching when on: at most this many rows per model run, waiting at most this long for them. */
export const BATCH = { maxRows: 32, maxWaitMs: 2 } as const;

interface Launch {
  readonly cmd: string;
  readonly args: string[];
  readonly env: NodeJS.ProcessEnv;
  /** Ready when this URL answers 200, or when the process prints `{"port": N}` on stdout. */
  readonly ready: { url: string } | 'announce';
}

interface Peer {
  readonly name: PeerName;
  /** As shown in the report. */
  readonly label: string;
  readonly http: number;
  readonly grpc?: number;
  /** How the peer batches adaptively, or why it is run without. */
  readonly batching: { how: string } | { none: string };
  /** Seconds allowed from start to ready. */
  readonly startS: number;
  launch(batching: boolean, outDir: string): Launch;
}

const PEERS: Readonly<Record<PeerName, Peer>> = {
  mlserver: {
    name: 'mlserver',
    label: 'MLServer 1.7.1 (LightGBM runtime)',
    http: 18180,
    grpc: 18181,
    batching: { how: `adaptive batching (max_batch_size ${BATCH.maxRows}, max_batch_time ${BATCH.maxWaitMs} ms)` },
    startS: 120,
    launch(batching, outDir) {
      return { cmd: '.venv-mlserver/bin/mlserver', args: ['start', batching ? mlserverBatchedDir(outDir) : 'loadtest/peer'], env: { OMP_NUM_THREADS: '1' }, ready: { url: 'http://127.0.0.1:18180/v2/models/delivery-eta/ready' } };
    },
  },
  kserve: {
    name: 'kserve',
    label: 'KServe 0.21.0 model server (onnxruntime 1.32)',
    http: 18910,
    grpc: 18911,
    batching: { none: "KServe batches in its agent sidecar (Go, part of the Kubernetes deployment, not on PyPI); the Python model server has no batcher" },
    startS: 60,
    launch() {
      return {
        cmd: '.venv-kserve/bin/python',
        args: ['loadtest/peer/kserve/server.py', '--http_port', '18910', '--grpc_port', '18911', '--workers', '1', '--enable_latency_logging', 'false'],
        env: { OMP_NUM_THREADS: '1' },
        ready: { url: 'http://127.0.0.1:18910/v2/models/delivery-eta/ready' },
      };
    },
  },
  bentoml: {
    name: 'bentoml',
    label: 'BentoML 1.4.40 (onnxruntime 1.32)',
    http: 18920,
    batching: { how: `batchable API (max_batch_size ${BATCH.maxRows})` },
    startS: 90,
    launch(batching) {
      return {
        cmd: '.venv-bentoml/bin/bentoml',
        args: ['serve', 'service:DeliveryEta', '--working-dir', 'loadtest/peer/bentoml', '--host', '127.0.0.1', '--port', '18920'],
        env: { ...batchEnv(batching), OMP_NUM_THREADS: '1', BENTOML_DO_NOT_TRACK: 'true' },
        ready: { url: 'http://127.0.0.1:18920/readyz' },
      };
    },
  },
  ray: {
    name: 'ray',
    label: 'Ray Serve 2.60.0 (onnxruntime 1.32)',
    http: 18930,
    batching: { how: `@serve.batch (max_batch_size ${BATCH.maxRows}, batch_wait_timeout_s ${BATCH.maxWaitMs / 1000})` },
    startS: 180,
    launch(batching) {
      return { cmd: '.venv-ray/bin/python', args: ['loadtest/peer/ray/server.py', '--port', '18930'], env: { ...batchEnv(batching), OMP_NUM_THREADS: '1', RAY_USAGE_STATS_ENABLED: '0' }, ready: 'announce' };
    },
  },
  pytriton: {
    name: 'pytriton',
    label: 'Triton via PyTriton 0.7.0 (Python backend, onnxruntime 1.32)',
    http: 18940,
    grpc: 18941,
    batching: { how: `Triton's dynamic batcher (max_batch_size ${BATCH.maxRows}, max_queue_delay ${BATCH.maxWaitMs} ms)` },
    startS: 120,
    launch(batching) {
      return {
        cmd: '.venv-pytriton/bin/python',
        args: ['loadtest/peer/pytriton/server.py', '--http-port', '18940', '--grpc-port', '18941', '--metrics-port', '18942'],
        env: { ...batchEnv(batching), OMP_NUM_THREADS: '1' },
        ready: 'announce',
      };
    },
  },
};

function batchEnv(on: boolean): NodeJS.ProcessEnv {
  return { PEER_BATCHING: on ? '1' : '0', PEER_MAX_BATCH_SIZE: String(BATCH.maxRows), PEER_MAX_BATCH_WAIT_MS: String(BATCH.maxWaitMs) };
}

/** MLServer with adaptive batching: its settings and the same model settings plus the batch limits, under outDir. */
function mlserverBatchedDir(outDir: string): string {
  const dir = join(outDir, 'mlserver-batched');
  mkdirSync(join(dir, 'delivery-eta'), { recursive: true });
  writeFileSync(join(dir, 'settings.json'), readFileSync('loadtest/peer/settings.json'));
  const model = JSON.parse(readFileSync('loadtest/peer/delivery-eta/model-settings.json', 'utf8')) as { parameters: Record<string, string> };
  model.parameters['uri'] = resolve('loadtest/peer/delivery-eta/model.txt');
  writeFileSync(join(dir, 'delivery-eta', 'model-settings.json'), JSON.stringify({ ...model, max_batch_size: BATCH.maxRows, max_batch_time: BATCH.maxWaitMs / 1000 }, null, 2));
  return dir;
}

/** `--peers a,b` → those (unknown names throw); no flag → all; `--no-peer` → none. */
export function selectPeers(flag: string | undefined, noPeer: boolean): PeerName[] {
  if (noPeer) return [];
  if (flag === undefined) return [...PEER_NAMES];
  const names = flag.split(',').map((s) => s.trim()).filter(Boolean);
  for (const n of names) if (!(PEER_NAMES as readonly string[]).includes(n)) throw new Error(`--peers: unknown peer "${n}" (known: ${PEER_NAMES.join(', ')})`);
  return [...new Set(names)] as PeerName[];
}

export interface Installed {
  readonly ready: PeerName[];
  readonly skipped: { peer: PeerName; why: string }[];
  /** Seconds each install step took in this run (near 0 when the venv was already there). */
  readonly installS: Partial<Record<PeerName, number>>;
}

/**
 * Installs the selected peers' venvs (loadtest/peer/install.sh) and MLServer's booster (export-model.sh). A failure
 * skips that peer with the reason; it never throws.
 */
export async function installPeers(names: readonly PeerName[], log: (msg: string) => void): Promise<Installed> {
  const out: Installed = { ready: [], skipped: [], installS: {} };
  for (const name of names) {
    const t0 = performance.now();
    try {
      await run('bash', ['loadtest/peer/install.sh', name]);
      if (name === 'mlserver') await run('bash', ['loadtest/peer/export-model.sh']);
      out.ready.push(name);
    } catch (err) {
      const why = lastLines((err as Error).message);
      out.skipped.push({ peer: name, why: `install failed: ${why}` });
      log(`peer ${name} skipped: install failed: ${why}`);
    }
    out.installS[name] = Math.round((performance.now() - t0) / 100) / 10;
  }
  return out;
}

function lastLines(text: string): string {
  return text.trim().split('\n').filter((l) => l.trim()).slice(-2).join(' / ').slice(0, 400);
}

/** What the suite lends the peers: its server lifecycle and its measurement (closed loop max, then open at half). */
export interface PeerBench {
  readonly outDir: string;
  log(msg: string): void;
  startServer(name: string, args: string[], env: NodeJS.ProcessEnv, cmd: string): Promise<Child>;
  stopServer(c: Child): Promise<void>;
  maxThenOpen(key: string, server: string, target: string, protocol: Protocol, mix: Mix): Promise<{ max: StepResult; open: StepResult }>;
}

/** One peer configuration on one protocol, measured. */
export interface PeerRun {
  readonly peer: PeerName;
  readonly label: string;
  readonly protocol: OipProtocol;
  readonly batching: boolean;
  /** The suite's run keys (`<key>/max`, `<key>/open@<rate>`). */
  readonly key: string;
  readonly max: StepResult;
  readonly open: StepResult;
  readonly agreement: string;
  /** CPU the server's process tree used while idle (after its preflight, before load), cores. */
  readonly idleCores: number | undefined;
}

export interface PeerResults {
  readonly selected: PeerName[];
  readonly runs: PeerRun[];
  readonly skipped: { peer: PeerName; why: string }[];
  readonly installS: Partial<Record<PeerName, number>>;
  /** How each measured peer batches, or why it does not. */
  readonly batching: Partial<Record<PeerName, string>>;
  /** Open-loop rates for Sibyl's runs on the same requests: MLServer's half max when it ran, else the first peer's. */
  readonly rates: { rest?: number; grpc?: number };
}

/**
 * Starts each installed peer in turn (batching off, then on where it has it), checks its answers against Sibyl's,
 * and measures it over each protocol it speaks. A peer that does not start or disagrees is skipped with the reason;
 * the others still run.
 */
export async function runPeers(bench: PeerBench, installed: Installed, selected: readonly PeerName[]): Promise<PeerResults> {
  const runs: PeerRun[] = [];
  const skipped = [...installed.skipped];
  const batching: Partial<Record<PeerName, string>> = {};
  for (const name of installed.ready) {
    const peer = PEERS[name];
    batching[name] = 'how' in peer.batching ? peer.batching.how : peer.batching.none;
    for (const batched of 'how' in peer.batching ? [false, true] : [false]) {
      const tag = `${name}${batched ? '-batching' : ''}`;
      try {
        runs.push(...(await measure(bench, peer, batched, tag)));
      } catch (err) {
        const why = (err as Error).message.split('\n')[0]!.slice(0, 400);
        skipped.push({ peer: name, why: `${batched ? 'with batching: ' : ''}${why}` });
        bench.log(`peer ${tag} skipped: ${why}`);
      }
    }
  }
  const first = (p: OipProtocol) => (runs.find((r) => r.peer === 'mlserver' && !r.batching && r.protocol === p) ?? runs.find((r) => r.protocol === p))?.open.rate;
  const rest = first('oip-rest');
  const grpc = first('oip-grpc') ?? rest;
  return { selected: [...selected], runs, skipped, installS: installed.installS, batching, rates: { ...(rest ? { rest } : {}), ...(grpc ? { grpc } : {}) } };
}

/** A peer started and ready, with the target of each protocol it speaks. */
export interface StartedPeer {
  readonly child: Child;
  readonly label: string;
  readonly targets: [OipProtocol, string][];
}

/** Starts a peer (batching off or on) and waits until it is ready; the caller stops `child` with `bench.stopServer`. */
export async function startPeer(bench: Pick<PeerBench, 'startServer' | 'stopServer'>, name: PeerName, batched: boolean, tag: string, outDir: string): Promise<StartedPeer> {
  const peer = PEERS[name];
  const l = peer.launch(batched, outDir);
  if (!existsSync(l.cmd)) throw new Error(`${l.cmd} missing`);
  const child = await bench.startServer(tag, l.args, l.env, l.cmd);
  try {
    if (l.ready === 'announce') await withTimeout(child.announced, peer.startS * 1000, `${tag} did not announce its port within ${peer.startS} s`);
    else await waitHttpOk(l.ready.url, peer.startS * 1000, child);
  } catch (err) {
    await bench.stopServer(child);
    throw err;
  }
  const targets: [OipProtocol, string][] = [['oip-rest', `http://127.0.0.1:${peer.http}`]];
  if (peer.grpc) targets.push(['oip-grpc', `127.0.0.1:${peer.grpc}`]);
  return { child, label: `${peer.label}${batched ? ', batching' : ''}`, targets };
}

async function measure(bench: PeerBench, peer: Peer, batched: boolean, tag: string): Promise<PeerRun[]> {
  const { child, label, targets } = await startPeer(bench, peer.name, batched, tag, bench.outDir);
  try {
    const agreement = new Map<OipProtocol, string>();
    for (const [protocol, target] of targets) {
      const a = await checkAgreement(target, protocol);
      agreement.set(protocol, a);
      bench.log(`preflight ${tag} ${protocol}: ${a}`);
    }
    const idleCores = await idleCpu(child.pid, 2000);
    const out: PeerRun[] = [];
    for (const [protocol, target] of targets) {
      const key = `${tag}-${protocol === 'oip-rest' ? 'rest' : 'grpc'}/eta-inline`;
      const r = await bench.maxThenOpen(key, label, target, protocol, 'eta-inline');
      out.push({ peer: peer.name, label, protocol, batching: batched, key, max: r.max, open: r.open, agreement: agreement.get(protocol)!, idleCores });
    }
    return out;
  } finally {
    await bench.stopServer(child);
  }
}

/** CPU of `pid`'s process tree over `ms` of no load, cores (Ray's raylet, GCS and agents work when idle too). */
async function idleCpu(pid: number, ms: number): Promise<number | undefined> {
  const a = processTreeCpuMs(pid);
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, ms));
  const b = processTreeCpuMs(pid);
  return a === undefined || b === undefined ? undefined : Math.round(((b - a) / (performance.now() - t0)) * 100) / 100;
}

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)))]).finally(() => clearTimeout(timer));
}
