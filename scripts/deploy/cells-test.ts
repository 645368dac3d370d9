#!/usr/bin/env node
/**
 * Two cells and a tower on a real container engine: the Helm charts rendered with `helm template`, every
 * Deployment run with `podman kube play` (scripts/deploy/podman-cells.ts), and the isolation between cells checked
 * by failing one cell's parts. Run by scripts/deploy/podman-test.sh, which installs podman and builds the images
 * first. `node scripts/deploy/cells-test.ts --down` only removes what a run left behind.
 *
 * The checks (issue 16), each over a known number of requests counted by status and code, with cell B's traffic
 * running at the same time as cell A's, and the Redis and gateway faults alternated with their absence in rounds
 * (`rounds`) so that B's latencies with and without the fault are measured seconds apart:
 *   - a model deployed to cell A only is served by A and NOT_FOUND in B;
 *   - with A's Redis stopped, A answers every request with its store features defaulted, while B answers every
 *     request with the model's expected output from its own store and its p99 stays within the bound (`p99Held`); when
 *     A's Redis is back A uses its store again;
 *   - with A's Kafka stopped, A answers every request and spills, while B answers and delivers to its own Kafka
 *     without spilling; when A's Kafka is back A delivers every record (none lost);
 *   - with A's gateway killed, A answers nothing and B answers every request within the bound;
 *   - with the tower stopped, both cells answer every request, and A's gateway restarted then serves from its
 *     bundle cache.
 * NetworkPolicies are validated (scripts/deploy/check-chart.sh) but podman does not enforce them.
 *
 * Every wait is a poll with a deadline; the whole run is bounded by SIBYL_CELLS_TEST_TIMEOUT_S (default 1800);
 * SIGINT/SIGTERM and the deadline remove the deployment before exiting (SIBYL_KEEP_CELLS=1 keeps it for a look).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { parse } from 'yaml';
import { loadFeatures } from '../../cli/features-load.ts';
import { zipDirectory } from '../../runtimes/bundle/zip-dir.ts';
import { freePorts, NETWORK, play, pod, podman, removeDeployment, render, ROOT, SECRET, startPod, stopPod, WORK, type K8sObject } from './podman-cells.ts';

const TOKEN = 'cells-test-admin-token-0123456789';
const TIMEOUT_S = Number(process.env['SIBYL_CELLS_TEST_TIMEOUT_S'] ?? 1800);
const KEEP = process.env['SIBYL_KEEP_CELLS'] === '1';
/** Ports wanted on 127.0.0.1 (any that is taken is replaced by a free one below 32768: podman-cells.ts). */
const WANTED_PORTS = {
  tower: 28090,
  aHttp: 28180, aGrpc: 28181, aRedis: 28179, aKafka: 28192,
  bHttp: 28280, bGrpc: 28281, bRedis: 28279, bKafka: 28292,
};
type Ports = typeof WANTED_PORTS;

interface Cell {
  name: string;
  http: number;
  grpc: number;
  redis: number;
  kafka: number;
}

const started = Date.now();
let failures = 0;

function log(message: string): void {
  process.stdout.write(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s] ${message}\n`);
}

function check(what: string, ok: boolean, detail = ''): void {
  if (!ok) failures++;
  log(`${ok ? 'ok  ' : 'FAIL'} ${what}${detail ? ` (${detail})` : ''}`);
}

/**
 * B's p99 in one round "unchanged": within 3x its p99 without the fault under the same load, or 100 ms above it.
 * The machines running this share 2 cores among seven containers and whatever else runs (load averages of 10-20
 * seen), so p99 of a hundred sequential requests moves by 2-3x within seconds without any fault; an isolation
 * failure shows as errors, timeouts or defaulted features, which are counted exactly, and in every round.
 */
const p99Unchanged = (before: number, after: number) => after <= Math.max(3 * before, before + 100);

// ---------------------------------------------------------------------------------------------------------------
// Rendering

function cellsOf(ports: Ports): { a: Cell; b: Cell } {
  return {
    a: { name: 'cell-a', http: ports.aHttp, grpc: ports.aGrpc, redis: ports.aRedis, kafka: ports.aKafka },
    b: { name: 'cell-b', http: ports.bHttp, grpc: ports.bGrpc, redis: ports.bRedis, kafka: ports.bKafka },
  };
}

/** The tower's and both cells' objects, validated, for these ports. */
async function renderAll(ports: Ports): Promise<{ tower: K8sObject[]; cells: K8sObject[][] }> {
  const image = { 'image.repository': 'localhost/sibyl', 'image.tag': 'dev', 'image.pullPolicy': 'Never' };
  const tower = await render('sibyl-tower', 'sibyl-tower', 'dev-tower.yaml', { ...image, 'hostPort.port': ports.tower });
  const cells = await Promise.all(
    Object.values(cellsOf(ports)).map((c) =>
      render(`sibyl-${c.name}`, 'sibyl-cell', 'dev-cell-a.yaml', {
        ...image,
        cell: c.name,
        'tower.url': `http://sibyl-tower:8090`,
        'tower.tokenSecret.name': SECRET,
        'gateway.hostPorts.http': c.http,
        'gateway.hostPorts.grpc': c.grpc,
        'redis.inChart.image.repository': 'localhost/sibyl-redis',
        'redis.inChart.image.tag': 'dev',
        'redis.inChart.hostPort': c.redis,
        'kafka.inChart.image.repository': 'localhost/sibyl-kafka',
        'kafka.inChart.image.tag': 'dev',
        'kafka.inChart.hostPort': c.kafka,
        // The store's deadline: 5 ms by default; on a shared 2-core machine running seven containers (load
        // averages of 20 seen) a read took more than 100 ms in one request of a few hundred, and the checks compare
        // answers, so a late read must not look like an outage. A stopped Redis fails reads at once (no offline
        // queue), so the deadline does not slow the outage checks.
        'redis.timeoutMs': 1000,
        // Admission control and deadlines sized for that machine too: the checks are about isolation, not load.
        'gateway.env.SIBYL_REQUEST_TIMEOUT_MS': 5000,
        'gateway.env.SIBYL_MAX_LAG_MS': 1000,
        'gateway.env.SIBYL_ADMISSION_QUEUE_MS': 0,
        'gateway.env.SIBYL_ADMISSION_MAX_TURN_MS': 0,
      }),
    ),
  );
  return { tower, cells };
}

// ---------------------------------------------------------------------------------------------------------------
// Traffic

async function waitFor(what: string, ok: () => Promise<boolean>, seconds: number): Promise<number> {
  const t0 = Date.now();
  const deadline = t0 + seconds * 1000;
  let last = '';
  while (Date.now() < deadline) {
    try {
      if (await ok()) return (Date.now() - t0) / 1000;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`${what}: not after ${seconds} s${last ? ` (last error: ${last})` : ''}`);
}

const ETA_ROW = {
  entities: { restaurant: 'r320', zone: 'z55', customer: 'c187' },
  features: { distance_km: 0.67, hour_of_day: 8, day_of_week: 3, basket_size: 4, basket_value: 33.47, is_raining: 0, is_weekend: 0 },
};
const MLP_ROW = { features: { basket_value: 33.47, distance_km: 0.67, hour_of_day: 8, is_raining: 0, basket_size: 4, eta_minutes: 30.8 } };

/** What delivery-eta 2 must answer for ETA_ROW with the demo store's features, and its store features. */
const etaManifest = parse(readFileSync(join(ROOT, 'models/delivery-eta/2/sibyl.yaml'), 'utf8')) as {
  features: { name: string; source: string }[];
  tests: { expected: { eta_minutes: number }; tolerance: number }[];
};
const ETA_EXPECTED = etaManifest.tests[0]!.expected.eta_minutes;
const ETA_TOLERANCE = etaManifest.tests[0]!.tolerance;
const STORE_FEATURES = etaManifest.features.filter((f) => f.source === 'store').map((f) => f.name).sort();

interface Answer {
  status: number;
  body: { code?: string; results?: { outputs: Record<string, number>; defaultedFeatures?: string[] }[] } | undefined;
  ms: number;
}

/**
 * One prediction on a connection of its own (no keep-alive): a pooled connection to a pod that was stopped is
 * forwarded to an address that no longer exists and hangs until the timeout, which would count against the pod
 * that replaced it.
 */
function predict(cell: Cell, model: string, row: object): Promise<Answer> {
  const t0 = performance.now();
  const body = JSON.stringify({ rows: [row] });
  return new Promise((resolve) => {
    const fail = () => resolve({ status: 0, body: undefined, ms: performance.now() - t0 });
    const req = request(
      { host: '127.0.0.1', port: cell.http, path: `/v1/models/${model}:predict`, method: 'POST', agent: false, timeout: 5000,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', fail);
        res.on('end', () => {
          try {
            resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString()) as Answer['body'], ms: performance.now() - t0 });
          } catch {
            fail();
          }
        });
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', fail);
    req.end(body);
  });
}

interface Series {
  n: number;
  answers: Answer[];
  /** 99th percentile latency, ms. */
  p99: number;
}

/** n sequential predictions. */
async function series(cell: Cell, n: number, model = 'delivery-eta', row: object = model === 'delivery-eta' ? ETA_ROW : MLP_ROW): Promise<Series> {
  const answers: Answer[] = [];
  for (let i = 0; i < n; i++) answers.push(await predict(cell, model, row));
  const ms = answers.map((a) => a.ms).sort((x, y) => x - y);
  return { n, answers, p99: ms[Math.ceil(n * 0.99) - 1] ?? NaN };
}

/** Cell A's and cell B's series at the same time. */
const both = (a: Cell, na: number, b: Cell, nb: number) => Promise.all([series(a, na), series(b, nb)]);

const count = (s: Series, ok: (a: Answer) => boolean) => s.answers.filter(ok).length;
const sum = (xs: number[]) => xs.reduce((x, y) => x + y, 0);

/** Rounds of a fault, and requests per round to cell A and to cell B in each half of a round. */
const ROUNDS = 3;
const N_A = 20;
const N_B = 150;

interface Round {
  baseA: Series;
  baseB: Series;
  faultA: Series;
  faultB: Series;
}

/**
 * A fault in cell A, alternated with its absence: ROUNDS times, N_A requests to A and N_B to B at the same time
 * without the fault, then the same with it, then the fault repaired. The alternation is what makes B's latencies
 * comparable on a shared machine: its load moves by 2-3x within a minute, and each round compares two halves a few
 * seconds apart.
 */
async function rounds(a: Cell, b: Cell, inject: () => Promise<unknown>, repair: () => Promise<unknown>): Promise<Round[]> {
  const out: Round[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const [baseA, baseB] = await both(a, N_A, b, N_B);
    await inject();
    const [faultA, faultB] = await both(a, N_A, b, N_B);
    await repair();
    out.push({ baseA, baseB, faultA, faultB });
  }
  return out;
}

/**
 * "B's p99 unchanged": in most rounds B's p99 with the fault is within the bound of its p99 without it. A cell
 * that waits on another's part is slower in every round; a burst of load from elsewhere on the machine hits one.
 */
const p99Held = (rs: readonly Round[]) => rs.filter((r) => p99Unchanged(r.baseB.p99, r.faultB.p99)).length > rs.length / 2;
const p99Rounds = (rs: readonly Round[]) => rs.map((r) => `${r.baseB.p99.toFixed(0)} -> ${r.faultB.p99.toFixed(0)} ms`).join(', ');
const answered = (a: Answer) => a.status === 200;
const defaulted = (a: Answer) => [...(a.body?.results?.[0]?.defaultedFeatures ?? [])].sort();
/** Answered with the model's expected output, every store feature read from the cell's own Redis. */
const fromStore = (a: Answer) =>
  a.status === 200 && defaulted(a).length === 0 && Math.abs((a.body?.results?.[0]?.outputs['eta_minutes'] ?? NaN) - ETA_EXPECTED) <= ETA_TOLERANCE;
/** Answered with every store feature defaulted (the cell's Redis unreachable). */
const withDefaults = (a: Answer) => a.status === 200 && defaulted(a).join() === STORE_FEATURES.join();

/** "148/150 from store, 2 with defaults (200 x150)". */
const fromStoreOf = (xs: readonly Series[]) => {
  const all = { n: sum(xs.map((x) => x.n)), answers: xs.flatMap((x) => x.answers), p99: NaN };
  const defaults = all.answers.filter((x) => x.status === 200 && defaulted(x).length > 0).length;
  return `${count(all, fromStore)}/${all.n} from store, ${defaults} with defaults (${tally(all)})`;
};

/** The series' answers counted by status and code: "200 x50" or "200 x45, 0 x5" (0: no answer). */
function tally(s: Series): string {
  const counts = new Map<string, number>();
  for (const x of s.answers) {
    const key = `${x.status}${x.body?.code ? ` ${x.body.code}` : ''}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].map(([k, n]) => `${k} x${n}`).join(', ');
}

/** The gateway's prediction-log counters (sibyl_prediction_log_*). */
async function logStats(cell: Cell): Promise<{ accepted: number; delivered: number; spilled: number; lost: number; pending: number }> {
  const text = await (await fetch(`http://127.0.0.1:${cell.http}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  const value = (name: string) => {
    const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
    if (!line) throw new Error(`${cell.name}: no ${name} in /metrics`);
    return Number(line.trim().split(/\s+/).pop());
  };
  const total = (what: string) => value(`sibyl_prediction_log_${what}_total`);
  return { accepted: total('accepted'), delivered: total('delivered'), spilled: total('spilled'), lost: total('lost'), pending: value('sibyl_prediction_log_pending') };
}

const ready = (cell: Cell) => fetch(`http://127.0.0.1:${cell.http}/readyz`, { signal: AbortSignal.timeout(5000) }).then((r) => r.ok);

// ---------------------------------------------------------------------------------------------------------------
// The run

let objects: K8sObject[] = [];
let towerPort = WANTED_PORTS.tower;

async function tower(method: string, path: string, body?: string | Uint8Array, type = 'application/json'): Promise<unknown> {
  const r = await fetch(`http://127.0.0.1:${towerPort}${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': type },
    signal: AbortSignal.timeout(30_000),
    ...(body === undefined ? {} : { body }),
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

async function upload(dir: string, cells: string): Promise<void> {
  const zip = await zipDirectory(join(ROOT, 'models', dir));
  await tower('POST', `/v1/models?cells=${cells}`, new Uint8Array(zip), 'application/zip');
}

/** The demo features into a cell's Redis, through its hostPort (as `sibyl features load` does). */
const loadInto = (cell: Cell) =>
  loadFeatures(join(ROOT, 'models/features.jsonl'), { redisUrl: `redis://127.0.0.1:${cell.redis}`, prefix: 'sibyl', batchSize: 1000, connectTimeoutMs: 5_000 });

/** Until a replica of the cell reports the cell's current revision. */
async function inSync(cell: Cell): Promise<void> {
  const s = await waitFor(`${cell.name} in sync`, async () => {
    const state = (await tower('GET', `/v1/cells/${cell.name}`)) as { replicas: { inSync: boolean; stale: boolean }[] };
    return state.replicas.some((r) => r.inSync && !r.stale);
  }, 300);
  log(`${cell.name} in sync after ${s.toFixed(0)} s`);
}

/** Runs the gateway container of a cell again after a kill, whether or not podman's restart policy already did. */
async function startGateway(cell: Cell): Promise<void> {
  await podman(['start', `${pod(`sibyl-${cell.name}-gateway`)}-gateway`], true);
  const s = await waitFor(`${cell.name} gateway ready again`, () => ready(cell), 300);
  log(`${cell.name} gateway ready after ${s.toFixed(0)} s`);
}

async function main(): Promise<void> {
  mkdirSync(WORK, { recursive: true });
  // Leftovers first (their pods hold the ports), then the ports, then the objects for those ports.
  let rendered = await renderAll(WANTED_PORTS);
  objects = [...rendered.tower, ...rendered.cells.flat()];
  await removeDeployment(objects);
  const ports = await freePorts(WANTED_PORTS);
  if (JSON.stringify(ports) !== JSON.stringify(WANTED_PORTS)) rendered = await renderAll(ports);
  towerPort = ports.tower;
  const { a, b } = cellsOf(ports);
  log(`rendered and validated the tower and two cells; ports: ${JSON.stringify(ports)}`);

  await podman(['network', 'create', NETWORK]);
  // The tower's admin token, by reference from both charts. podman 4.3 reads a secretKeyRef from a podman secret
  // whose data is a JSON object of base64 values (a Secret inside the played YAML is stored as YAML, unreadable).
  const secretFile = join(WORK, 'secret.json');
  writeFileSync(secretFile, JSON.stringify({ token: Buffer.from(TOKEN).toString('base64') }));
  await podman(['secret', 'create', SECRET, secretFile]);

  await play(rendered.tower, log);
  for (const cellObjects of rendered.cells) await play(cellObjects.filter((o) => o.kind !== 'Deployment' || !o.metadata.name.endsWith('-gateway')), log);
  let s = await waitFor('tower', () => fetch(`http://127.0.0.1:${towerPort}/healthz`, { signal: AbortSignal.timeout(5000) }).then((r) => r.ok), 300);
  log(`tower answers after ${s.toFixed(0)} s`);
  for (const c of [a, b]) {
    s = await waitFor(`${c.name}'s Redis`, async () => (await loadInto(c), true), 180);
    log(`features loaded into ${c.name}'s Redis after ${s.toFixed(0)} s`);
  }
  await upload('delivery-eta/2', 'cell-a,cell-b');
  await upload('tabular-mlp/1', 'cell-a');
  log('published delivery-eta 2 to both cells, tabular-mlp 1 to cell A only');
  for (const cellObjects of rendered.cells) await play(cellObjects.filter((o) => o.kind === 'Deployment' && o.metadata.name.endsWith('-gateway')), log);
  for (const c of [a, b]) {
    s = await waitFor(`${c.name} gateway ready`, () => ready(c), 300);
    log(`${c.name} gateway ready after ${s.toFixed(0)} s`);
  }
  await Promise.all([a, b].map(inSync));
  // Kafka in a container takes from 20 s to a few minutes to accept records on a loaded machine: the checks start
  // when both cells deliver.
  await series(a, 5);
  await series(b, 5);
  s = await waitFor('prediction log delivered to Kafka in both cells', async () => (await logStats(a)).delivered > 0 && (await logStats(b)).delivered > 0, 420);
  log(`both cells deliver to their Kafka after ${s.toFixed(0)} s`);

  // A model in cell A only.
  const [onlyA, onlyB] = await Promise.all([series(a, 20, 'tabular-mlp'), series(b, 20, 'tabular-mlp')]);
  check('a model deployed to cell A only: A serves it', count(onlyA, answered) === 20, `A ${tally(onlyA)}`);
  check('... and cell B answers NOT_FOUND', count(onlyB, (x) => x.status === 404 && x.body?.code === 'NOT_FOUND') === 20, `B ${tally(onlyB)}`);
  await both(a, 20, b, 20); // warm-up

  // A's Redis stopped, in alternating rounds.
  const redis = await rounds(
    a, b,
    () => stopPod(pod('sibyl-cell-a-redis')),
    async () => {
      await startPod(pod('sibyl-cell-a-redis'));
      await waitFor("A's Redis back and loaded", async () => (await loadInto(a), true), 180);
      await waitFor('A reading its store again', async () => fromStore(await predict(a, 'delivery-eta', ETA_ROW)), 120);
    },
  );
  const redisA = redis.map((r) => r.faultA);
  const redisB = redis.map((r) => r.faultB);
  check(
    'both cells answer from their own store',
    sum(redis.map((r) => count(r.baseA, fromStore))) === ROUNDS * N_A && sum(redis.map((r) => count(r.baseB, fromStore))) === ROUNDS * N_B,
    `A ${fromStoreOf(redis.map((r) => r.baseA))}; B ${fromStoreOf(redis.map((r) => r.baseB))}`,
  );
  check(
    "A's Redis stopped: A answers every request with its store features defaulted",
    sum(redisA.map((x) => count(x, withDefaults))) === ROUNDS * N_A,
    `${sum(redisA.map((x) => count(x, withDefaults)))}/${ROUNDS * N_A} with the ${STORE_FEATURES.length} store features defaulted (${redisA.map(tally).join('; ')})`,
  );
  check("... B's answers unchanged", sum(redisB.map((x) => count(x, fromStore))) === ROUNDS * N_B, fromStoreOf(redisB));
  check("... B's p99 unchanged", p99Held(redis), p99Rounds(redis));
  const redisBackA = await series(a, 20);
  check("... A's Redis back: A answers from its store again", count(redisBackA, fromStore) === 20, fromStoreOf([redisBackA]));

  // A's Kafka stopped.
  const [a0, b0] = [await logStats(a), await logStats(b)];
  await stopPod(pod('sibyl-cell-a-kafka'));
  const [noKafkaA, noKafkaB] = await both(a, 100, b, 100);
  await waitFor("A's records spilled", async () => (await logStats(a)).spilled > a0.spilled, 120).catch(() => 0);
  await waitFor("B's records delivered", async () => (await logStats(b)).delivered >= b0.delivered + 100, 120).catch(() => 0);
  const [a1, b1] = [await logStats(a), await logStats(b)];
  check("A's Kafka stopped: A answers every request and spills", count(noKafkaA, answered) === 100 && a1.spilled > a0.spilled, `${tally(noKafkaA)}; spilled ${a0.spilled} -> ${a1.spilled}`);
  check(
    '... B answers every request and delivers to its own Kafka, spilling nothing',
    count(noKafkaB, answered) === 100 && b1.delivered >= b0.delivered + 100 && b1.spilled === b0.spilled && b1.lost === 0,
    `${tally(noKafkaB)}; delivered ${b0.delivered} -> ${b1.delivered}, spilled ${b0.spilled} -> ${b1.spilled}, lost ${b1.lost}`,
  );
  await startPod(pod('sibyl-cell-a-kafka'));
  s = await waitFor("A's log caught up", async () => {
    const x = await logStats(a);
    return x.pending === 0 && x.delivered + x.lost >= x.accepted;
  }, 420).catch(() => NaN);
  const a2 = await logStats(a);
  check(
    "... A's Kafka back: A delivers every record it held, none lost",
    a2.pending === 0 && a2.lost === 0 && a2.delivered >= a0.accepted + 100,
    `after ${s.toFixed(0)} s: accepted ${a2.accepted}, delivered ${a2.delivered}, pending ${a2.pending}, lost ${a2.lost}`,
  );

  // A's gateway killed (SIGKILL), then run again as the kubelet would (the pod's network and volumes stay), in
  // alternating rounds.
  const gatewayA = `${pod('sibyl-cell-a-gateway')}-gateway`;
  // podman may report the healthcheck error of podmanUntil after killing: whether A answers is what is checked.
  const kill = await rounds(a, b, () => podman(['kill', gatewayA]).catch((err: Error) => log(`podman kill: ${err.message.trim()}`)), () => startGateway(a));
  const deadA = kill.map((r) => r.faultA);
  const aliveB = kill.map((r) => r.faultB);
  check("A's gateway killed: A answers nothing", sum(deadA.map((x) => count(x, (y) => y.status === 0))) === ROUNDS * N_A, `A ${deadA.map(tally).join('; ')}`);
  check('... B answers every request from its store', sum(aliveB.map((x) => count(x, fromStore))) === ROUNDS * N_B, fromStoreOf(aliveB));
  check("... B's p99 unchanged", p99Held(kill), p99Rounds(kill));
  const againA = await series(a, 20);
  check("... A's gateway back: A answers again", count(againA, fromStore) === 20, fromStoreOf([againA]));

  // The tower stopped.
  await stopPod(pod('sibyl-tower'));
  const [towerDownA, towerDownB] = await both(a, 100, b, 100);
  check('tower stopped: both cells keep serving', count(towerDownA, fromStore) === 100 && count(towerDownB, fromStore) === 100, `A ${fromStoreOf([towerDownA])}; B ${fromStoreOf([towerDownB])}`);
  // The gateway's pod stopped and started (the gateway drains on SIGTERM): its volumes, the bundle cache with
  // them, stay. podman 4.3's `restart` of the container alone left the pod exited in one run of ten.
  await stopPod(pod('sibyl-cell-a-gateway'));
  await startPod(pod('sibyl-cell-a-gateway'));
  log('cell A gateway restarted with the tower down');
  await startGateway(a);
  // The pod's network comes back with it; in one CI run of many, the restarted pod could not resolve names for a
  // while (EAI_AGAIN from podman's DNS), so the gateway served its cached models with the store's features
  // defaulted until its Redis client reconnected (every second at most). Serving from the cache is what is checked
  // here, so the count starts once A reads its store again, and how long that took is printed.
  s = await waitFor('restarted A reading its store', async () => fromStore(await predict(a, 'delivery-eta', ETA_ROW)), 180).catch(() => NaN);
  log(`restarted cell A reads its store after ${s.toFixed(0)} s`);
  const [cacheEta, cacheMlp] = await Promise.all([series(a, 20), series(a, 20, 'tabular-mlp')]);
  check(
    '... a restarted gateway serves from its cache',
    count(cacheEta, fromStore) === 20 && count(cacheMlp, answered) === 20,
    `delivery-eta ${fromStoreOf([cacheEta])}; tabular-mlp ${tally(cacheMlp)}`,
  );
}

async function dumpLogs(): Promise<void> {
  process.stdout.write(await podman(['pod', 'ps', '--filter', `network=${NETWORK}`], true));
  for (const [deployment, container] of [['sibyl-tower', 'tower'], ['sibyl-cell-a-gateway', 'gateway'], ['sibyl-cell-b-gateway', 'gateway'], ['sibyl-cell-a-kafka', 'kafka'], ['sibyl-cell-b-kafka', 'kafka']] as const) {
    const name = `${pod(deployment)}-${container}`;
    const logs = await podman(['logs', '--tail', '40', name], true);
    if (logs) process.stdout.write(`--- last lines of ${name}:\n${logs}\n`);
  }
}

let finishing: Promise<never> | undefined;
/** Ends the run once: logs on failure, the deployment removed (unless SIBYL_KEEP_CELLS=1), the exit code. */
function finish(code: number, why?: string): Promise<never> {
  finishing ??= (async () => {
    if (why) {
      failures++;
      log(`FAIL ${why}`);
    }
    if (failures > 0) await dumpLogs().catch(() => undefined);
    if (!KEEP) await removeDeployment(objects).catch((err: Error) => log(`teardown: ${err.message}`));
    log(failures === 0 ? 'all checks passed' : `${failures} check(s) failed`);
    process.exit(failures === 0 ? code : code || 1);
  })();
  return finishing;
}

process.once('SIGINT', () => void finish(130, 'interrupted (SIGINT)'));
process.once('SIGTERM', () => void finish(143, 'terminated (SIGTERM)'));
setTimeout(() => void finish(1, `not done after ${TIMEOUT_S} s (SIBYL_CELLS_TEST_TIMEOUT_S)`), TIMEOUT_S * 1000).unref();

try {
  if (process.argv.includes('--down')) {
    mkdirSync(WORK, { recursive: true });
    const rendered = await renderAll(WANTED_PORTS);
    await removeDeployment([...rendered.tower, ...rendered.cells.flat()]);
    log('removed the deployment');
    process.exit(0);
  }
  await main();
  await finish(0);
} catch (err) {
  await finish(1, err instanceof Error ? err.message : String(err));
}
