/**
 * Overload, counted: a gateway process held to a fifth of a core (a cgroup v1 CPU quota, loadtest/lib/cpu-cgroup.ts,
 * applied after it started, as a benchmark or an in-place resize would) is sent a known number of requests, open
 * loop, at several times what it can serve. Every request must get an answer; each is either served (200) or refused
 * with 429 RESOURCE_EXHAUSTED, `retry-after: 1` and the ErrorBody; none fails with DEADLINE_EXCEEDED (admitted, then
 * waited past its deadline inside the gateway); refusals are counted in /metrics under their reason; and once the
 * load stops it serves again at once. Two gateways: one with the defaults (the turn bound refuses what a loop turn
 * reads after it has been busy 5 ms, and the late bound lowers the in-flight bound while requests finish late), one
 * with the opt-in CPU pacing (SIBYL_ADMISSION_QUEUE_MS) and the lag check out of its way. How fast refusals come back
 * is a timing figure: the overload ramp measures it (loadtest/lib/overload.ts), not this test.
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

interface HeldGateway {
  readonly base: string;
  readonly proc: ChildProcess;
  readonly cgroup: CpuCgroup;
}

/** A gateway started with `env`, warmed up at full speed, then held to the quota (read again every second). */
async function startHeld(name: string, env: Record<string, string>): Promise<HeldGateway> {
  const support = cpuCgroupSupport();
  if (!support.ok) throw new Error(`this test holds a gateway to a CPU quota and cannot here: ${support.why}`);
  const [http, grpc] = [await freePort(), await freePort()];
  const base = `http://127.0.0.1:${http}`;
  const proc = spawn(process.execPath, ['gateway/main.ts'], {
    env: {
      ...process.env,
      SIBYL_HOST: '127.0.0.1',
      SIBYL_HTTP_PORT: String(http),
      SIBYL_GRPC_PORT: String(grpc),
      SIBYL_PREDICTION_LOG: 'off',
      SIBYL_DATA_DIR: mkdtempSync(join(tmpdir(), 'sibyl-overload-')),
      SIBYL_LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  for (let i = 0; ; i++) {
    if (proc.exitCode !== null) throw new Error(`the gateway exited with ${proc.exitCode}`);
    const ready = await fetch(`${base}/readyz`).then((r) => r.ok, () => false);
    if (ready) break;
    if (i > 300) throw new Error('the gateway did not become ready in 60 s');
    await new Promise((r) => setTimeout(r, 200));
  }
  for (let i = 0; i < 300; i++) await fetch(`${base}${path}`, { method: 'POST', body, headers: { 'content-type': 'application/json' } }).then((r) => r.arrayBuffer());
  const cgroup = createCpuCgroup({ name: `overload-${name}`, cores: CORES });
  cgroup.add(proc.pid!);
  await new Promise((r) => setTimeout(r, 1500));
  return { base, proc, cgroup };
}

async function stopHeld(g: HeldGateway | undefined): Promise<void> {
  if (!g) return;
  g.cgroup.remove();
  if (g.proc.exitCode === null) {
    const exited = new Promise((r) => g.proc.once('exit', r));
    g.proc.kill('SIGTERM');
    await exited;
  }
}

/** The gateway's refusals by reason (sibyl_admission_rejected_total{reason}). */
async function refusalsByReason(base: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const l of text.split('\n')) {
    const m = /^sibyl_admission_rejected_total\{reason="(\w+)"\} (\S+)/.exec(l);
    if (m) out[m[1]!] = Number(m[2]);
  }
  return out;
}

interface Answer {
  status: number;
  retryAfter: string | undefined;
  code: string | undefined;
  message: string | undefined;
  /** From the request's due time to its answer, ms (reported, not asserted). */
  ms: number;
}

/**
 * SENT requests at RATE per second, open loop, each with a 100 ms deadline; checks what every gateway promises
 * under overload and returns the answers and the refusals /metrics counted meanwhile, by reason.
 */
async function flood(base: string): Promise<{ answers: Answer[]; counted: Record<string, number> }> {
  const before = await refusalsByReason(base);
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
  const after = await refusalsByReason(base);
  const counted = Object.fromEntries(Object.keys(after).map((k) => [k, after[k]! - (before[k] ?? 0)]));
  console.log(`answers by status ${JSON.stringify(counts)}, client errors ${failures.length}, refusals counted ${JSON.stringify(counted)}`);
  // Every request answered: none lost, none reset.
  expect(failures).toEqual([]);
  expect(answers.length).toBe(SENT);
  // Served or refused, nothing else: no DEADLINE_EXCEEDED (504), no UNAVAILABLE, no INTERNAL.
  expect(counts, JSON.stringify(counts)).toEqual({ 200: expect.any(Number), 429: expect.any(Number) });
  // It was overloaded, and it kept serving while it refused.
  expect(counts[429]).toBeGreaterThan(0);
  expect(counts[200]).toBeGreaterThan(0);
  // Each refusal says what it is and when to come back, and /metrics counts every one.
  const refusals = answers.filter((x) => x.status === 429);
  for (const a of refusals) expect({ retryAfter: a.retryAfter, code: a.code }).toEqual({ retryAfter: '1', code: 'RESOURCE_EXHAUSTED' });
  expect(Object.values(counted).reduce((x, y) => x + y, 0)).toBe(refusals.length);

  // The load gone, the next requests are served (one at a time, as a quiet client would send them).
  await new Promise((r) => setTimeout(r, 500));
  const quiet: number[] = [];
  for (let i = 0; i < 20; i++) quiet.push((await fetch(`${base}${path}`, { method: 'POST', body, headers: { 'content-type': 'application/json' } })).status);
  expect(quiet).toEqual(Array(20).fill(200));
  return { answers, counted };
}

describe('a gateway held to a CPU quota, sent several times what it serves (defaults: the turn bound)', () => {
  let g: HeldGateway | undefined;
  beforeAll(async () => {
    g = await startHeld('turn', {});
  }, 90_000);
  afterAll(() => stopHeld(g));

  it('answers every request: served, or refused with 429 RESOURCE_EXHAUSTED and retry-after; none admitted and then timed out', async () => {
    const { counted } = await flood(g!.base);
    // The quota stalls the loop for most of each period: turns run long and the loop falls behind its timers, and
    // the requests admitted finish late, which lowers the in-flight bound; what is read then is refused under one of
    // those reasons (the CPU pacing is off by default).
    expect((counted['turn'] ?? 0) + (counted['lag'] ?? 0) + (counted['inflight'] ?? 0)).toBe(Object.values(counted).reduce((x, y) => x + y, 0));
    expect(counted['cpu']).toBe(0);
  }, 60_000);
});

describe('a gateway held to a CPU quota, sent several times what it serves (the CPU pacing on)', () => {
  let g: HeldGateway | undefined;
  beforeAll(async () => {
    // The CPU pacing is opt-in (README, SIBYL_ADMISSION_QUEUE_MS): this gateway is about it, so the lag check is out
    // of its way. Under a fifth of a core each 100 ms CFS period throttles the loop for ~80 ms, the lag check sees it
    // within two or three 10 ms samples and then refuses nearly everything, so nothing is admitted and the pacing,
    // which measures what was admitted, had only a race to act in: with the lag check at its default the pacing
    // refused nothing in 1 of 3 runs on one machine and in the project's CI (57 and 208 of ~3,800 refusals in the
    // other two); with it out of the way, 3,379-3,842 in 7 of 7.
    g = await startHeld('pacing', { SIBYL_ADMISSION_QUEUE_MS: '25', SIBYL_MAX_LAG_MS: '60000' });
  }, 90_000);
  afterAll(() => stopHeld(g));

  it('answers every request: served, or refused with 429 RESOURCE_EXHAUSTED and retry-after; its refusals name the CPU', async () => {
    const { answers, counted } = await flood(g!.base);
    // The gateway knew it was held to its CPU quota (applied after it started) and paced admissions to it: refusals
    // say so, and /metrics counts exactly those under reason="cpu".
    const atCpu = answers.filter((a) => a.status === 429 && a.message === 'the gateway is at its CPU capacity; retry with backoff').length;
    expect(atCpu).toBeGreaterThan(0);
    expect(counted['cpu']).toBe(atCpu);
  }, 60_000);
});
