/**
 * `npm start`'s process: serves with embedded defaults, and on SIGTERM finishes the requests in flight, flushes
 * the prediction log, and exits 0.
 */
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { expectedFor } from '../helpers/expected.ts';

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

describe('gateway process', () => {
  it('drains in-flight requests and flushes the prediction log on SIGTERM', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'sibyl-shutdown-'));
    const [httpPort, grpcPort] = [await freePort(), await freePort()];
    const child = spawn(process.execPath, ['gateway/main.ts'], {
      env: { ...process.env, SIBYL_HOST: '127.0.0.1', SIBYL_HTTP_PORT: String(httpPort), SIBYL_GRPC_PORT: String(grpcPort), SIBYL_DATA_DIR: dataDir, SIBYL_CELL: 'test' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let logs = '';
    child.stdout.on('data', (d) => (logs += d));
    child.stderr.on('data', (d) => (logs += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const base = `http://127.0.0.1:${httpPort}`;
    for (let i = 0; ; i++) {
      if (i > 300) throw new Error(`gateway did not become ready:\n${logs}`);
      const ok = await fetch(`${base}/readyz`).then((r) => r.ok, () => false);
      if (ok) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const row = expectedFor('delivery-eta', '2').rows[0]!;
    const send = () =>
      fetch(`${base}/v1/models/delivery-eta:predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ rows: [{ entities: row.entities, features: row.request }] }),
      }).then(async (r) => ({ status: r.status, body: (await r.json()) as { requestId: string } }));
    const before = await Promise.all(Array.from({ length: 20 }, send));
    const inflight = Array.from({ length: 30 }, send);
    child.kill('SIGTERM');
    const during = await Promise.allSettled(inflight);
    expect(await exited, logs).toBe(0);

    const answered = [...before, ...during.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []))];
    expect(before.every((r) => r.status === 200)).toBe(true);
    for (const r of answered) expect(r.status).toBe(200);
    // Every answered request is in the prediction log, flushed before exit.
    const dir = join(dataDir, 'predictions', 'test');
    const records = readdirSync(dir).flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)));
    const logged = new Set(records.map((r: { requestId: string }) => r.requestId));
    for (const r of answered) expect(logged.has(r.body.requestId), r.body.requestId).toBe(true);
    expect(records[0]).toMatchObject({ cell: 'test', model: 'delivery-eta', version: '2', role: 'ROLE_LIVE' });
  }, 60_000);
});
