/**
 * A gateway process with two workers (SIBYL_WORKERS=2), counted:
 *
 * 1. requests over several keep-alive connections (REST and gRPC) spread over both workers, and the one /metrics
 *    scrape gives every worker's series (label `worker`) whose sum equals the requests sent; a composed rule runs in
 *    each worker's own sandbox process;
 * 2. a worker SIGKILLed under traffic is replaced (same index, new pid), the pod is ready again and the new worker
 *    takes connections; requests in flight on the killed worker's connections fail (a crash), every other one is
 *    answered, and every answered request has exactly one live record in the prediction log;
 * 3. SIGTERM to the supervisor under keep-alive traffic drains both workers: every request sent before it answered,
 *    every one after answered or cleanly refused, none reset, every 200 logged once, exit 0 in seconds;
 * 4. with Kafka: records answered while no broker answers stay in each worker's write-ahead log (a killed worker's
 *    included); the pod is killed, and a gateway started with one process on the same data directory takes every
 *    worker's log over and sends it: every answered request is in the topic.
 *
 * The counts are printed (`workers counts:`) before the assertions.
 */
import { describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import { fromBinary, fromJson, toBinary } from '@bufbuild/protobuf';
import { Client } from 'undici';
import { PredictRequestSchema, PredictResponseSchema } from '../../proto/gen/sibyl/v1/predict_pb.js';
import { expectedFor } from '../helpers/expected.ts';
import { makeModelsDir } from '../helpers/models-dir.ts';
import { BLEND, writeRule } from '../helpers/rule-dirs.ts';
import { consumeTopic, TEST_BROKERS, uniqueName } from '../log/records.ts';
import { freePort } from '../helpers/ports.ts';
import { probe } from '../helpers/probe.ts';

const PREDICT = '/sibyl.v1.PredictionService/Predict';
const REST_CONNECTIONS = 8;
const GRPC_CONNECTIONS = 4;



interface LogLine {
  msg?: string;
  worker?: number;
  workerPid?: number;
  role?: string;
}

/** A gateway process (the supervisor, or a single process), its pino lines parsed. */
class GatewayProcess {
  readonly child: ChildProcess;
  readonly base: string;
  readonly grpcAddress: string;
  text = '';
  readonly lines: LogLine[] = [];
  exitCode: number | null | undefined;
  exitedAt: number | undefined;
  readonly exited: Promise<number | null>;

  constructor(env: NodeJS.ProcessEnv, ports: { http: number; grpc: number }) {
    this.base = `http://127.0.0.1:${ports.http}`;
    this.grpcAddress = `127.0.0.1:${ports.grpc}`;
    // Its own process group: the test can kill the pod whole (`kill -9 -pgid`), as a node failure would.
    this.child = spawn(process.execPath, ['gateway/main.ts'], {
      env: { ...process.env, SIBYL_HOST: '127.0.0.1', SIBYL_HTTP_PORT: String(ports.http), SIBYL_GRPC_PORT: String(ports.grpc), SIBYL_LOG_LEVEL: 'info', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let partial = '';
    this.child.stdout!.on('data', (d: Buffer) => {
      this.text += d;
      const parts = (partial + d.toString()).split('\n');
      partial = parts.pop()!;
      for (const l of parts) {
        try {
          this.lines.push(JSON.parse(l) as LogLine);
        } catch {
          /* not a log line */
        }
      }
    });
    this.child.stderr!.on('data', (d: Buffer) => (this.text += d));
    this.exited = new Promise((resolve) =>
      this.child.on('exit', (code) => {
        this.exitCode = code;
        this.exitedAt = performance.now();
        resolve(code);
      }),
    );
  }

  /** Pids of the workers started so far, by index, in order. */
  workerPids(index: number): number[] {
    return this.lines.filter((l) => l.msg === 'worker started' && l.worker === index).map((l) => l.workerPid!);
  }

  async ready(timeoutMs = 60_000): Promise<void> {
    const until = performance.now() + timeoutMs;
    while ((await probe(`${this.base}/readyz`)) !== 200) {
      if (performance.now() > until || this.exitCode !== undefined) throw new Error(`gateway not ready:\n${this.text.slice(-5000)}`);
      await sleep(100);
    }
  }

  async metrics(): Promise<string> {
    return (await fetch(`${this.base}/metrics`)).text();
  }

  killGroup(): void {
    try {
      process.kill(-this.child.pid!, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

/** Samples of a metric: labels and value. */
function samples(text: string, name: string): { labels: Record<string, string>; value: number }[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
    .map((l) => {
      const labels: Record<string, string> = {};
      for (const m of l.matchAll(/(\w+)="([^"]*)"/g)) labels[m[1]!] = m[2]!;
      return { labels, value: Number(l.split(' ').at(-1)) };
    });
}

/** Answered predictions per worker (sibyl_requests_total, code OK). */
function okByWorker(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of samples(text, 'sibyl_requests_total')) if (s.labels.code === 'OK') out.set(s.labels.worker ?? '', (out.get(s.labels.worker ?? '') ?? 0) + s.value);
  return out;
}

type Outcome = 'answered' | 'refused' | 'failed';
interface Sent {
  readonly id: string;
  readonly phase: string;
  outcome?: Outcome;
  detail?: string;
}

const row = expectedFor('delivery-eta', '2').rows[0]!;
const restBody = JSON.stringify({ rows: [{ entities: row.entities, features: row.request }] });
const grpcBody = Buffer.from(toBinary(PredictRequestSchema, fromJson(PredictRequestSchema, { model: 'delivery-eta', rows: [{ entities: row.entities, features: row.request }] })));

/** Keep-alive REST and gRPC senders, one request at a time per connection, until `stop()`; each request counted. */
function traffic(gw: GatewayProcess, phase: () => string, sent: Sent[], opts: { rest: number; grpc: number }) {
  let stopped = false;
  const grpcOpts = { 'grpc.use_local_subchannel_pool': 1 };
  async function rest(n: number): Promise<void> {
    const client = new Client(gw.base, { pipelining: 1, keepAliveTimeout: 60_000, keepAliveMaxTimeout: 60_000 });
    for (let i = 0; !stopped; i++) {
      const s: Sent = { id: `rest-${n}-${i}-${Math.random().toString(36).slice(2, 8)}`, phase: phase() };
      sent.push(s);
      try {
        const res = await client.request({ path: '/v1/models/delivery-eta:predict', method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': s.id }, body: restBody });
        await res.body.text();
        s.outcome = res.statusCode === 200 ? 'answered' : res.statusCode === 503 ? 'refused' : 'failed';
        s.detail = String(res.statusCode);
      } catch (err) {
        const code = (err as { code?: string }).code ?? String(err);
        s.outcome = code === 'ECONNREFUSED' ? 'refused' : 'failed';
        s.detail = code;
        await sleep(20);
      }
    }
    await client.close().catch(() => {});
  }
  async function grpcCaller(n: number): Promise<void> {
    const client = new grpc.Client(gw.grpcAddress, grpc.credentials.createInsecure(), grpcOpts);
    for (let i = 0; !stopped; i++) {
      const s: Sent = { id: `grpc-${n}-${i}-${Math.random().toString(36).slice(2, 8)}`, phase: phase() };
      sent.push(s);
      const md = new grpc.Metadata();
      md.set('x-request-id', s.id);
      const err = await new Promise<grpc.ServiceError | null>((resolve) =>
        client.makeUnaryRequest(PREDICT, (b: Buffer) => b, (b: Buffer) => fromBinary(PredictResponseSchema, b), grpcBody, md, { deadline: Date.now() + 10_000 }, (e) => resolve(e)),
      );
      if (err === null) {
        s.outcome = 'answered';
        continue;
      }
      s.detail = `${grpc.status[err.code]}: ${err.details}`;
      s.outcome = err.code === grpc.status.UNAVAILABLE && !/RST_STREAM|Connection dropped|ECONNRESET|closed/i.test(err.details) ? 'refused' : 'failed';
      await sleep(20);
    }
    client.close();
  }
  const running = [...Array.from({ length: opts.rest }, (_, n) => rest(n)), ...Array.from({ length: opts.grpc }, (_, n) => grpcCaller(n))];
  return {
    async stop(): Promise<void> {
      stopped = true;
      await Promise.all(running);
    },
  };
}

/** Live records in the file prediction log, by request id (every worker's files). */
function fileRecords(dir: string): Map<string, number> {
  const logged = new Map<string, number>();
  for (const f of readdirSync(dir)) {
    for (const l of readFileSync(join(dir, f), 'utf8').split('\n')) {
      if (!l) continue;
      const r = JSON.parse(l) as { requestId: string; role: string };
      if (r.role === 'ROLE_LIVE') logged.set(r.requestId, (logged.get(r.requestId) ?? 0) + 1);
    }
  }
  return logged;
}

function tally(list: readonly Sent[]) {
  return {
    sent: list.length,
    answered: list.filter((s) => s.outcome === 'answered').length,
    refused: list.filter((s) => s.outcome === 'refused').length,
    failed: list.filter((s) => s.outcome === 'failed').length,
    unsettled: list.filter((s) => s.outcome === undefined).length,
  };
}

describe('a gateway with two workers', () => {
  it('spreads requests over both, replaces a killed worker, counts the pod in one /metrics, and drains both on SIGTERM', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'sibyl-workers-'));
    const models = makeModelsDir({ bundles: ['delivery-eta/1', 'delivery-eta/2'], deployment: { models: { 'delivery-eta': { default: '2' } } } });
    writeRule(models, BLEND.manifest, BLEND.source);
    const ports = { http: await freePort(), grpc: await freePort() };
    const gw = new GatewayProcess(
      {
        SIBYL_WORKERS: '2',
        SIBYL_MODELS_DIR: models,
        SIBYL_DATA_DIR: dataDir,
        SIBYL_CELL: 'test',
        SIBYL_DRAIN_TIMEOUT_MS: '20000',
        SIBYL_DRAIN_GRACE_MS: '1000',
        // The workers are under test, not admission control: the test's own load shares the 2 cores.
        SIBYL_MAX_LAG_MS: '1000',
        SIBYL_ADMISSION_QUEUE_MS: '0',
        SIBYL_ADMISSION_MAX_TURN_MS: '0',
      },
      ports,
    );
    try {
      await gw.ready();
      const sent: Sent[] = [];
      let phase = 'spread';

      // 1. Spread, and the pod's metrics.
      const t1 = traffic(gw, () => phase, sent, { rest: REST_CONNECTIONS, grpc: GRPC_CONNECTIONS });
      await sleep(2_000);
      await t1.stop();
      const blend = await Promise.all(
        Array.from({ length: 8 }, async () => {
          const c = new Client(gw.base);
          const res = await c.request({ path: '/v1/models/eta-blend:predict', method: 'POST', headers: { 'content-type': 'application/json' }, body: restBody });
          await res.body.text();
          await c.close();
          return res.statusCode;
        }),
      );
      const m1 = await gw.metrics();
      const spread = okByWorker(m1);
      const spreadSent = tally(sent);

      // 2. SIGKILL worker 1 under traffic; it is replaced.
      phase = 'kill';
      const t2 = traffic(gw, () => phase, sent, { rest: REST_CONNECTIONS, grpc: GRPC_CONNECTIONS });
      await sleep(1_000);
      const [killedPid] = gw.workerPids(1);
      process.kill(killedPid!, 'SIGKILL');
      const killedAt = performance.now();
      let replacedAfterMs: number | undefined;
      while (performance.now() - killedAt < 60_000) {
        if (gw.workerPids(1).length > 1 && (await probe(`${gw.base}/readyz`)) === 200) {
          replacedAfterMs = Math.round(performance.now() - killedAt);
          break;
        }
        await sleep(100);
      }
      await sleep(500);
      await t2.stop();
      // New connections reach the replacement too.
      phase = 'after-kill';
      const t3 = traffic(gw, () => phase, sent, { rest: REST_CONNECTIONS, grpc: GRPC_CONNECTIONS });
      await sleep(1_500);
      await t3.stop();
      const m3 = await gw.metrics();
      const restarts = samples(m3, 'sibyl_worker_restarts_total');

      // 3. SIGTERM under keep-alive traffic.
      phase = 'before-term';
      const t4 = traffic(gw, () => phase, sent, { rest: REST_CONNECTIONS, grpc: GRPC_CONNECTIONS });
      await sleep(1_000);
      phase = 'after-term';
      const termAt = performance.now();
      gw.child.kill('SIGTERM');
      const code = await Promise.race([gw.exited, sleep(40_000).then(() => 'hung' as const)]);
      await t4.stop();

      const logged = fileRecords(join(dataDir, 'predictions', 'test'));
      const answered = sent.filter((s) => s.outcome === 'answered');
      const byPhase = Object.fromEntries(['spread', 'kill', 'after-kill', 'before-term', 'after-term'].map((p) => [p, tally(sent.filter((s) => s.phase === p))]));
      const counts = {
        spread: Object.fromEntries(spread),
        spreadSent,
        blend,
        replacedAfterMs,
        workerPids: [gw.workerPids(0), gw.workerPids(1)],
        restarts: restarts.map((s) => `${s.labels.worker}=${s.value}`),
        afterKillByWorker: Object.fromEntries(okByWorker(m3)),
        byPhase,
        failedDetails: [...new Set(sent.filter((s) => s.outcome === 'failed').map((s) => `${s.phase}: ${s.detail}`))],
        exitCode: code,
        drainMs: gw.exitedAt === undefined ? undefined : Math.round(gw.exitedAt - termAt),
        workersStopped: gw.lines.filter((l) => l.msg === 'sibyl gateway stopped' && l.worker !== undefined).map((l) => l.worker),
        recordsLost: answered.filter((s) => !logged.has(s.id)).length,
        duplicateRecords: [...logged.values()].filter((n) => n > 1).length,
      };
      console.log(`workers counts: ${JSON.stringify(counts, null, 2)}`);

      // 1: both workers served; one scrape gives both, and their sum is every request answered.
      expect(spreadSent.answered).toBe(spreadSent.sent);
      expect([...spread.keys()].sort()).toEqual(['0', '1']);
      for (const n of spread.values()) expect(n).toBeGreaterThan(spreadSent.answered / 10);
      expect([...spread.values()].reduce((a, b) => a + b, 0)).toBe(spreadSent.answered + blend.length);
      expect(blend).toEqual(Array(8).fill(200));
      // 2: replaced, counted, serving again; only requests on the killed worker's connections failed, none after.
      expect(replacedAfterMs).toBeDefined();
      expect(gw.workerPids(1)).toHaveLength(2);
      expect(restarts.map((s) => [s.labels.worker, s.value])).toEqual([['0', 0], ['1', 1]]);
      expect(counts.afterKillByWorker['1']).toBeGreaterThan(0);
      expect(byPhase['kill']!.answered).toBeGreaterThan(byPhase['kill']!.failed);
      expect(byPhase['kill']!.failed).toBeLessThanOrEqual(REST_CONNECTIONS + GRPC_CONNECTIONS);
      expect(byPhase['after-kill']).toMatchObject({ answered: byPhase['after-kill']!.sent });
      // 3: drained, both workers; nothing reset.
      expect(code, gw.text.slice(-5000)).toBe(0);
      expect(counts.drainMs).toBeLessThan(1_000 + 5_000);
      expect(counts.workersStopped.sort()).toEqual([0, 1]);
      expect(byPhase['before-term']).toMatchObject({ answered: byPhase['before-term']!.sent });
      expect(byPhase['after-term']).toMatchObject({ failed: 0, unsettled: 0 });
      expect(byPhase['after-term']!.answered).toBeGreaterThan(0);
      // Every answered request logged once, the killed worker's included.
      expect(counts.recordsLost).toBe(0);
      expect(counts.duplicateRecords).toBe(0);
    } finally {
      gw.killGroup();
    }
  }, 180_000);

  it("keeps every answered record in its worker's write-ahead log while Kafka is away, and a single process started later sends them all", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'sibyl-workers-wal-'));
    const topic = uniqueName('e2e-workers');
    const env = { SIBYL_DATA_DIR: dataDir, SIBYL_CELL: 'test', SIBYL_KAFKA_TOPIC: topic, SIBYL_MAX_LAG_MS: '1000', SIBYL_ADMISSION_QUEUE_MS: '0', SIBYL_ADMISSION_MAX_TURN_MS: '0' };
    // No broker at this port: every record stays in the write-ahead logs.
    const nowhere = await freePort();
    const ports = { http: await freePort(), grpc: await freePort() };
    const gw = new GatewayProcess({ ...env, SIBYL_WORKERS: '2', KAFKA_BROKERS: `127.0.0.1:${nowhere}` }, ports);
    const sent: Sent[] = [];
    let single: GatewayProcess | undefined;
    try {
      await gw.ready();
      const t1 = traffic(gw, () => 'first', sent, { rest: 4, grpc: 2 });
      await sleep(1_500);
      await t1.stop();
      process.kill(gw.workerPids(1)[0]!, 'SIGKILL');
      for (let i = 0; i < 600 && !(gw.workerPids(1).length > 1 && (await probe(`${gw.base}/readyz`)) === 200); i++) await sleep(100);
      const t2 = traffic(gw, () => 'replaced', sent, { rest: 4, grpc: 2 });
      await sleep(1_500);
      await t2.stop();
      const walDirs = readdirSync(join(dataDir, 'wal', 'test')).sort();
      // The pod dies whole (a node failure): no drain, no flush.
      gw.killGroup();
      await gw.exited;

      single = new GatewayProcess({ ...env, KAFKA_BROKERS: TEST_BROKERS.join(',') }, { http: await freePort(), grpc: await freePort() });
      await single.ready();
      const answered = sent.filter((s) => s.outcome === 'answered');
      const messages = await consumeTopic(TEST_BROKERS, topic, answered.length, { timeoutMs: 90_000 });
      const inTopic = new Set(messages.map((m) => m.key));
      const counts = {
        sent: tally(sent),
        walDirs,
        adopted: single.lines.filter((l) => l.msg?.startsWith('write-ahead log of a former worker')).length,
        inTopic: inTopic.size,
        lost: answered.filter((s) => !inTopic.has(s.id)).length,
      };
      console.log(`workers wal counts: ${JSON.stringify(counts, null, 2)}`);
      expect(walDirs).toEqual(['0', '1']);
      expect(counts.sent.answered).toBeGreaterThan(50);
      expect(counts.adopted).toBe(2);
      expect(counts.lost).toBe(0);
    } finally {
      gw.killGroup();
      single?.killGroup();
    }
  }, 240_000);
});
