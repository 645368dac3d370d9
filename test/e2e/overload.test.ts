/**
 * Overload, counted: a gateway process held to a fifth of a core (a cgroup v1 CPU quota, loadtest/lib/cpu-cgroup.ts,
 * applied after it started, as a benchmark or an in-place resize would) is sent a known number of requests, open
 * loop, at several times what it can serve. Every request must get an answer; each is either served (200) or refused
 * with 429 RESOURCE_EXHAUSTED, `retry-after: 1` and the ErrorBody; none fails with DEADLINE_EXCEEDED (admitted, then
 * waited past its deadline inside the gateway); the gateway paces admissions to its CPU (refusals name it, and
 * /metrics counts them); and once the load stops it serves again at once. How fast refusals come back is a timing
 * figure: the overload ramp measures it (loadtest/lib/overload.ts), not this test.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpuCgroupSupport, createCpuCgroup, type CpuCgroup } from '../../loadtest/lib/cpu-cgroup.ts';

const CORES = 0.2;
/** Requests sent, and their arrival rate: several times what a fifth of a core serves. */
const SENT = 4000;
const RATE = 2000;
const DEADLINE_MS = 100;
const body = JSON.stringify({ rows: [{ features: { distance_km: 1, hour_of_day: 2, basket_size: 1, basket_value: 9, is_raining: 0, eta_minutes: 30 } }] });
const path = '/v1/models/tabular-mlp:predict';

let gateway: ChildProcess | undefined;
let cgroup: CpuCgroup | undefined;
let base = '';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

beforeAll(async () => {
  const support = cpuCgroupSupport();
  if (!support.ok) throw new Error(`this test holds a gateway to a CPU quota and cannot here: ${support.why}`);
  const [http, grpc] = [await freePort(), await freePort()];
  base = `http://127.0.0.1:${http}`;
  gateway = spawn(process.execPath, ['gateway/main.ts'], {
    env: {
      ...process.env,
      SIBYL_HOST: '127.0.0.1',
      SIBYL_HTTP_PORT: String(http),
      SIBYL_GRPC_PORT: String(grpc),
      SIBYL_PREDICTION_LOG: 'off',
      // The CPU pacing is opt-in (README, SIBYL_ADMISSION_QUEUE_MS): this test is about it.
      SIBYL_ADMISSION_QUEUE_MS: '25',
      SIBYL_DATA_DIR: mkdtempSync(join(tmpdir(), 'sibyl-overload-')),
      SIBYL_LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  for (let i = 0; ; i++) {
    if (gateway.exitCode !== null) throw new Error(`the gateway exited with ${gateway.exitCode}`);
    const ready = await fetch(`${base}/readyz`).then((r) => r.ok, () => false);
    if (ready) break;
    if (i > 300) throw new Error('the gateway did not become ready in 60 s');
    await new Promise((r) => setTimeout(r, 200));
  }
  // Warmed up at full speed, then held to the quota, which admission control reads again every second.
  for (let i = 0; i < 300; i++) await fetch(`${base}${path}`, { method: 'POST', body, headers: { 'content-type': 'application/json' } }).then((r) => r.arrayBuffer());
  cgroup = createCpuCgroup({ name: 'overload-test', cores: CORES });
  cgroup.add(gateway.pid!);
  await new Promise((r) => setTimeout(r, 1500));
}, 90_000);

afterAll(async () => {
  cgroup?.remove();
  if (gateway && gateway.exitCode === null) {
    const exited = new Promise((r) => gateway!.once('exit', r));
    gateway.kill('SIGTERM');
    await exited;
  }
});

/** The gateway's count of refusals for its CPU (sibyl_admission_rejected_total{reason="cpu"}). */
async function cpuRefusals(): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('sibyl_admission_rejected_total{reason="cpu"}'));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

interface Answer {
  status: number;
  retryAfter: string | undefined;
  code: string | undefined;
  message: string | undefined;
  /** From the request's due time to its answer, ms (reported, not asserted). */
  ms: number;
}

describe('a gateway held to a CPU quota, sent several times what it serves', () => {
  it('answers every request: served, or refused with 429 RESOURCE_EXHAUSTED and retry-after; none admitted and then timed out', async () => {
    const cpuRefusals0 = await cpuRefusals();
    const pool = new Pool(base, { connections: 128, pipelining: 1 });
    const answers: Answer[] = [];
    const failures: string[] = [];
    const pending: Promise<void>[] = [];
    const started = performance.now();
    for (let i = 0; i < SENT; i++) {
      const due = started + (i * 1000) / RATE;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      pending.push(
        pool
          .request({ method: 'POST', path, body, headers: { 'content-type': 'application/json', 'x-request-timeout-ms': String(DEADLINE_MS) } })
          .then(async (res) => {
            const text = await res.body.text();
            const retry = res.headers['retry-after'];
            const error = res.statusCode === 200 ? undefined : (JSON.parse(text) as { code?: string; message?: string });
            answers.push({ status: res.statusCode, retryAfter: Array.isArray(retry) ? retry[0] : retry, code: error?.code, message: error?.message, ms: performance.now() - due });
          })
          .catch((err: Error) => void failures.push(err.message)),
      );
    }
    await Promise.all(pending);
    await pool.close();

    const sent = performance.now() - started;
    const p = (status: number, q: number) => {
      const xs = answers.filter((a) => a.status === status).map((a) => a.ms).sort((x, y) => x - y);
      return xs.length ? Math.round(xs[Math.min(xs.length - 1, Math.floor(q * xs.length))]!) : 0;
    };
    console.log(`sent ${SENT} in ${Math.round(sent)} ms; 200 p50/p99 ${p(200, 0.5)}/${p(200, 0.99)} ms, 429 p50/p99 ${p(429, 0.5)}/${p(429, 0.99)} ms`);
    const byStatus = new Map<number, number>();
    for (const a of answers) byStatus.set(a.status, (byStatus.get(a.status) ?? 0) + 1);
    const counts = Object.fromEntries(byStatus);
    console.log(`answers by status ${JSON.stringify(counts)}, client errors ${failures.length}`);
    // Every request answered: none lost, none reset.
    expect(failures).toEqual([]);
    expect(answers.length).toBe(SENT);
    // Served or refused, nothing else: no DEADLINE_EXCEEDED (504), no UNAVAILABLE, no INTERNAL.
    expect(counts, JSON.stringify(counts)).toEqual({ 200: expect.any(Number), 429: expect.any(Number) });
    // It was overloaded, and it kept serving while it refused.
    expect(counts[429]).toBeGreaterThan(0);
    expect(counts[200]).toBeGreaterThan(0);
    // Each refusal says what it is and when to come back.
    const refusals = answers.filter((x) => x.status === 429);
    for (const a of refusals) expect({ retryAfter: a.retryAfter, code: a.code }).toEqual({ retryAfter: '1', code: 'RESOURCE_EXHAUSTED' });
    // The gateway knew it was held to its CPU quota (applied after it started) and paced admissions to it: refusals
    // say so, and /metrics counts exactly those under reason="cpu".
    const atCpu = refusals.filter((a) => a.message === 'the gateway is at its CPU capacity; retry with backoff').length;
    expect(atCpu).toBeGreaterThan(0);
    expect((await cpuRefusals()) - cpuRefusals0).toBe(atCpu);

    // The load gone, the next requests are served (one at a time, as a quiet client would send them).
    await new Promise((r) => setTimeout(r, 500));
    const after: number[] = [];
    for (let i = 0; i < 20; i++) after.push((await fetch(`${base}${path}`, { method: 'POST', body, headers: { 'content-type': 'application/json' } })).status);
    expect(after).toEqual(Array(20).fill(200));
  }, 60_000);
});
