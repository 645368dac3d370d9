/**
 * A gateway process's SIGTERM drain, counted. Keep-alive REST clients (one undici connection each) and gRPC unary
 * callers (two HTTP/2 connections) send predictions back to back before and through the SIGTERM, while a gRPC
 * health Watch stream is open and probes poll readiness. Every request is classified by whether it was sent before
 * the signal and by its outcome:
 *
 * - answered: 200 / OK;
 * - refused: a clean refusal the gateway did not execute (connection refused, 503 / UNAVAILABLE, a stream the
 *   server refused), allowed only for requests sent after the signal;
 * - reset: anything else (socket reset or closed under the request, a cancelled stream): never allowed.
 *
 * Every 200 must have exactly one live record in the prediction log (JSON lines under the data dir); the process
 * must exit 0 within a few seconds of the grace period's end although SIBYL_DRAIN_TIMEOUT_MS is 20 s; readiness
 * (/readyz, /v2/health/ready, gRPC health Check) must fail from the signal on, and the Watch stream must hear
 * NOT_SERVING and be ended by the gateway. The counts are printed (`shutdown counts:`) before the assertions.
 */
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import { create, fromBinary, fromJson, toBinary } from '@bufbuild/protobuf';
import { Client } from 'undici';
import { PredictRequestSchema, PredictResponseSchema } from '../../proto/gen/sibyl/v1/predict_pb.js';
import { HealthCheckRequestSchema, HealthCheckResponseSchema, HealthCheckResponse_ServingStatus as ServingStatus } from '../../proto/gen/grpc/health/v1/health_pb.js';
import { expectedFor } from '../helpers/expected.ts';
import { freePort } from '../helpers/ports.ts';
import { probe } from '../helpers/probe.ts';

const DRAIN_TIMEOUT_MS = 20_000;
/** The whole drain, SIGTERM to exit, beyond the grace period: a few seconds, for a slow, shared 2-core machine. */
const EXIT_WITHIN_MS = 5_000;
const REST_CONNECTIONS = 6;
const GRPC_CONNECTIONS = 2;
const GRPC_CALLERS_PER_CONNECTION = 2;
/** Traffic before the signal. */
const WARM_MS = 1_500;

type Outcome = 'answered' | 'refused' | 'reset';
interface Sent {
  readonly id: string;
  readonly door: 'rest' | 'grpc';
  readonly beforeSignal: boolean;
  outcome?: Outcome;
  detail?: string;
  connectionClose?: boolean;
}



const HEALTH_WATCH = '/grpc.health.v1.Health/Watch';
const HEALTH_CHECK = '/grpc.health.v1.Health/Check';
const PREDICT = '/sibyl.v1.PredictionService/Predict';
const healthRequest = () => Buffer.from(toBinary(HealthCheckRequestSchema, create(HealthCheckRequestSchema, { service: '' })));
const healthStatus = (b: Buffer) => fromBinary(HealthCheckResponseSchema, b).status;

describe('gateway process', () => {
  // A grace period long enough for the readiness probes to see 503 while the gateway still accepts, and none (the
  // default).
  it.each([1_000, 0])('drains on SIGTERM under keep-alive traffic (grace %i ms): every request answered or cleanly refused, every 200 logged once, exit in seconds', async (graceMs) => {
    const dataDir = mkdtempSync(join(tmpdir(), 'sibyl-shutdown-'));
    const [httpPort, grpcPort] = [await freePort(), await freePort()];
    const child = spawn(process.execPath, ['gateway/main.ts'], {
      env: {
        ...process.env,
        SIBYL_HOST: '127.0.0.1',
        SIBYL_HTTP_PORT: String(httpPort),
        SIBYL_GRPC_PORT: String(grpcPort),
        SIBYL_DATA_DIR: dataDir,
        SIBYL_CELL: 'test',
        SIBYL_LOG_LEVEL: 'info',
        SIBYL_DRAIN_TIMEOUT_MS: String(DRAIN_TIMEOUT_MS),
        SIBYL_DRAIN_GRACE_MS: String(graceMs),
        // The drain is under test, not admission control: the test's own load shares the 2 cores.
        SIBYL_MAX_LAG_MS: '1000',
        SIBYL_ADMISSION_QUEUE_MS: '0',
        SIBYL_ADMISSION_MAX_TURN_MS: '0',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let logs = '';
    child.stdout.on('data', (d) => (logs += d));
    child.stderr.on('data', (d) => (logs += d));
    let exitedAt: number | undefined;
    const exited = new Promise<number | null>((resolve) =>
      child.on('exit', (code) => {
        exitedAt = performance.now();
        resolve(code);
      }),
    );
    const base = `http://127.0.0.1:${httpPort}`;
    for (let i = 0; ; i++) {
      if (i > 300 || exitedAt !== undefined) throw new Error(`gateway did not become ready:\n${logs}`);
      if ((await probe(`${base}/readyz`)) === 200) break;
      await sleep(100);
    }

    const row = expectedFor('delivery-eta', '2').rows[0]!;
    const restBody = JSON.stringify({ rows: [{ entities: row.entities, features: row.request }] });
    const grpcBody = Buffer.from(toBinary(PredictRequestSchema, fromJson(PredictRequestSchema, { model: 'delivery-eta', rows: [{ entities: row.entities, features: row.request }] })));
    const sent: Sent[] = [];
    let signalled = false;
    let stopped = false;
    let killedAt = 0;
    const since = (t: number | undefined) => (t === undefined ? undefined : Math.round(t - killedAt));

    // REST: one undici client per keep-alive connection, one request at a time on each, back to back.
    async function restWorker(n: number): Promise<void> {
      const client = new Client(base, { pipelining: 1, keepAliveTimeout: 60_000, keepAliveMaxTimeout: 60_000 });
      for (let i = 0; !stopped; i++) {
        const s: Sent = { id: `rest-${n}-${i}`, door: 'rest', beforeSignal: !signalled };
        sent.push(s);
        try {
          const res = await client.request({ path: '/v1/models/delivery-eta:predict', method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': s.id }, body: restBody });
          await res.body.text();
          s.outcome = res.statusCode === 200 ? 'answered' : res.statusCode === 503 ? 'refused' : 'reset';
          s.detail = String(res.statusCode);
          s.connectionClose = res.headers.connection === 'close';
        } catch (err) {
          const code = (err as { code?: string }).code ?? String(err);
          s.outcome = code === 'ECONNREFUSED' ? 'refused' : 'reset';
          s.detail = code;
          if (s.outcome === 'refused') await sleep(20);
        }
      }
      await client.close().catch(() => {});
    }

    // gRPC: unary Predict calls, a few at a time on each of two HTTP/2 connections.
    async function grpcCaller(client: grpc.Client, n: number): Promise<void> {
      for (let i = 0; !stopped; i++) {
        const s: Sent = { id: `grpc-${n}-${i}`, door: 'grpc', beforeSignal: !signalled };
        sent.push(s);
        const md = new grpc.Metadata();
        md.set('x-request-id', s.id);
        const err = await new Promise<grpc.ServiceError | null>((resolve) =>
          client.makeUnaryRequest(PREDICT, (b: Buffer) => b, (b: Buffer) => fromBinary(PredictResponseSchema, b), grpcBody, md, { deadline: Date.now() + 10_000 }, (e) => resolve(e)),
        );
        if (err === null) {
          s.outcome = 'answered';
          s.detail = 'OK';
          continue;
        }
        s.detail = `${grpc.status[err.code]}: ${err.details}`;
        // UNAVAILABLE without a reset: no connection, or a stream the server refused (GOAWAY, REFUSED_STREAM).
        s.outcome = err.code === grpc.status.UNAVAILABLE && !/RST_STREAM|Connection dropped|ECONNRESET|closed/i.test(err.details) ? 'refused' : 'reset';
        if (s.outcome === 'refused') await sleep(20);
      }
    }

    // The health Watch stream and the readiness probes.
    const grpcAddress = `127.0.0.1:${grpcPort}`;
    const opts = { 'grpc.use_local_subchannel_pool': 1 };
    const watchClient = new grpc.Client(grpcAddress, grpc.credentials.createInsecure(), opts);
    const watched: ServingStatus[] = [];
    let watchEnd: { at: number; code: string } | undefined;
    const watch = watchClient.makeServerStreamRequest(HEALTH_WATCH, (b: Buffer) => b, healthStatus, healthRequest(), new grpc.Metadata(), {});
    watch.on('data', (status: ServingStatus) => watched.push(status));
    watch.on('error', () => {});
    watch.on('status', (st: grpc.StatusObject) => (watchEnd ??= { at: performance.now(), code: grpc.status[st.code] }));
    const checkClient = new grpc.Client(grpcAddress, grpc.credentials.createInsecure(), opts);
    const check = () =>
      new Promise<ServingStatus | undefined>((resolve) =>
        checkClient.makeUnaryRequest(HEALTH_CHECK, (b: Buffer) => b, healthStatus, healthRequest(), new grpc.Metadata(), { deadline: Date.now() + 2_000 }, (e, v) => resolve(e ? undefined : v)),
      );
    /** Per probe: when it first said not-ready after the signal, and whether it said ready again after that. */
    const notReady: Record<string, { at?: number; flipped: boolean }> = { readyz: { flipped: false }, v2ready: { flipped: false }, grpcCheck: { flipped: false } };
    function note(name: string, ready: boolean | undefined): void {
      const p = notReady[name]!;
      if (ready === false) p.at ??= performance.now();
      else if (ready === true && p.at !== undefined) p.flipped = true;
    }
    async function probes(): Promise<void> {
      while (!stopped) {
        const [a, b, c] = await Promise.all([probe(`${base}/readyz`), probe(`${base}/v2/health/ready`), check()]);
        note('readyz', a === undefined ? undefined : a === 200);
        note('v2ready', b === undefined ? undefined : b === 200);
        note('grpcCheck', c === undefined ? undefined : c === ServingStatus.SERVING);
        await sleep(50);
      }
    }

    const grpcClients = Array.from({ length: GRPC_CONNECTIONS }, () => new grpc.Client(grpcAddress, grpc.credentials.createInsecure(), opts));
    const workers = [
      ...Array.from({ length: REST_CONNECTIONS }, (_, n) => restWorker(n)),
      ...grpcClients.flatMap((c, k) => Array.from({ length: GRPC_CALLERS_PER_CONNECTION }, (_, j) => grpcCaller(c, k * GRPC_CALLERS_PER_CONNECTION + j))),
    ];
    await sleep(WARM_MS);
    const watchedBeforeSignal = [...watched];
    signalled = true;
    killedAt = performance.now();
    child.kill('SIGTERM');
    const prober = probes();
    // Senders keep going until the process is gone (bounded: the drain timeout and a margin, then SIGKILL).
    const code = await Promise.race([exited, sleep(DRAIN_TIMEOUT_MS + 10_000).then(() => 'hung' as const)]);
    if (code === 'hung') child.kill('SIGKILL');
    stopped = true;
    await Promise.all([...workers, prober]);
    for (const c of [watchClient, checkClient, ...grpcClients]) c.close();

    // The prediction log: live records by request id.
    const dir = join(dataDir, 'predictions', 'test');
    const records = readdirSync(dir).flatMap((f) =>
      readFileSync(join(dir, f), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { requestId: string; role: string; cell: string; model: string; version: string }),
    );
    const logged = new Map<string, number>();
    for (const r of records) if (r.role === 'ROLE_LIVE') logged.set(r.requestId, (logged.get(r.requestId) ?? 0) + 1);

    const tally = (list: Sent[]) => ({
      sent: list.length,
      answered: list.filter((s) => s.outcome === 'answered').length,
      refused: list.filter((s) => s.outcome === 'refused').length,
      reset: list.filter((s) => s.outcome === 'reset').length,
      unsettled: list.filter((s) => s.outcome === undefined).length,
    });
    const answered = sent.filter((s) => s.outcome === 'answered');
    const before = sent.filter((s) => s.beforeSignal);
    const after = sent.filter((s) => !s.beforeSignal);
    const resets = sent.filter((s) => s.outcome === 'reset');
    const counts = {
      exitCode: code,
      drainMs: since(exitedAt),
      beforeSignal: { rest: tally(before.filter((s) => s.door === 'rest')), grpc: tally(before.filter((s) => s.door === 'grpc')) },
      afterSignal: { rest: tally(after.filter((s) => s.door === 'rest')), grpc: tally(after.filter((s) => s.door === 'grpc')) },
      resetDetails: [...new Set(resets.map((s) => `${s.door} ${s.beforeSignal ? 'before' : 'after'}: ${s.detail}`))],
      refusedDetails: [...new Set(sent.filter((s) => s.outcome === 'refused').map((s) => `${s.door}: ${s.detail}`))],
      restAnsweredWithConnectionClose: sent.filter((s) => s.connectionClose).length,
      recordsLost: answered.filter((s) => !logged.has(s.id)).length,
      duplicateRecords: [...logged.values()].filter((n) => n > 1).length,
      executedButNotAnswered: sent.filter((s) => s.outcome !== 'answered' && logged.has(s.id)).length,
      watch: { beforeSignal: watchedBeforeSignal.map((s) => ServingStatus[s]), all: watched.map((s) => ServingStatus[s]), endedAtMs: since(watchEnd?.at), endCode: watchEnd?.code },
      notReadyAtMs: Object.fromEntries(Object.entries(notReady).map(([k, v]) => [k, { at: since(v.at), flipped: v.flipped }])),
      drainTimedOut: logs.includes('drain timed out'),
    };
    console.log(`shutdown counts: ${JSON.stringify(counts, null, 2)}`);

    expect(code, logs).toBe(0);
    expect(counts.drainTimedOut, logs).toBe(false);
    expect(counts.drainMs).toBeLessThan(graceMs + EXIT_WITHIN_MS);
    // Traffic ran on both doors before the signal, and through the grace period after it.
    for (const door of ['rest', 'grpc'] as const) {
      expect(counts.beforeSignal[door].answered).toBeGreaterThan(10);
      if (graceMs > 0) expect(counts.afterSignal[door].answered).toBeGreaterThan(0);
    }
    // Sent before the signal: every one answered. Sent after: answered or cleanly refused. None reset, none lost.
    for (const door of ['rest', 'grpc'] as const) {
      expect(counts.beforeSignal[door]).toMatchObject({ answered: counts.beforeSignal[door].sent, unsettled: 0 });
      expect(counts.afterSignal[door]).toMatchObject({ reset: 0, unsettled: 0 });
    }
    expect(counts.resetDetails).toEqual([]);
    expect(counts.restAnsweredWithConnectionClose).toBeGreaterThan(0);
    // Every 200 has exactly one live record; nothing refused was executed.
    expect(counts.recordsLost).toBe(0);
    expect(counts.duplicateRecords).toBe(0);
    expect(counts.executedButNotAnswered).toBe(0);
    expect(records.find((r) => r.role === 'ROLE_LIVE')).toMatchObject({ cell: 'test', model: 'delivery-eta', version: '2' });
    // Not ready at once on every probe (during the grace period, while still accepting), and never ready again.
    for (const p of Object.values(counts.notReadyAtMs)) {
      if (graceMs > 0) expect(p.at).toBeLessThan(graceMs);
      expect(p.flipped).toBe(false);
    }
    // The Watch stream said SERVING, then NOT_SERVING, and was ended by the gateway before it exited.
    expect(counts.watch.beforeSignal).toEqual(['SERVING']);
    expect(counts.watch.all).toEqual(['SERVING', 'NOT_SERVING']);
    expect(counts.watch.endedAtMs).toBeDefined();
    expect(counts.watch.endedAtMs!).toBeLessThanOrEqual(counts.drainMs!);
  }, DRAIN_TIMEOUT_MS + 60_000);
});
