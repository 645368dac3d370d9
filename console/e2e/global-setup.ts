/**
 * Starts a real control tower and gateway for the browser suite: `node local/main.ts` (what `npm start` runs)
 * on fresh data, fixed test ports (SIBYL_CONSOLE_TEST_TOWER_PORT, default 27180, the gateway's REST and gRPC on
 * the next two), a known admin token, gateway reports every second, no prediction log. The demo models are
 * published through the upload gate as on a first start. Returns the teardown, which stops it.
 */
import { spawn } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const ADMIN_TOKEN = 'console-test-admin-token-0001';

async function waitFor(url: string, deadline: number): Promise<void> {
  for (;;) {
    try {
      const res = await fetch(url);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${url} did not answer in time`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

export default async function globalSetup(): Promise<() => Promise<void>> {
  const root = new URL('../../', import.meta.url).pathname;
  const towerPort = Number(process.env.SIBYL_CONSOLE_TEST_TOWER_PORT ?? 27180);
  const dataDir = mkdtempSync(join(tmpdir(), 'sibyl-console-e2e-'));
  const log = createWriteStream(join(dataDir, 'sibyl.log'));
  const child = spawn(process.execPath, ['local/main.ts'], {
    cwd: root,
    env: {
      ...process.env,
      SIBYL_DATA_DIR: dataDir,
      SIBYL_TOWER_PORT: String(towerPort),
      SIBYL_HTTP_PORT: String(towerPort + 1),
      SIBYL_GRPC_PORT: String(towerPort + 2),
      SIBYL_ADMIN_TOKEN: ADMIN_TOKEN,
      SIBYL_REPORT_INTERVAL_MS: '1000',
      SIBYL_PREDICTION_LOG: 'off',
      SIBYL_LOG_LEVEL: 'info',
      REDIS_URL: '',
      KAFKA_BROKERS: '',
      DATABASE_URL: '',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`local/main.ts exited with ${code}; see ${join(dataDir, 'sibyl.log')}`))));
  // The first start publishes the demo models through the upload gate (a validation process each): on a loaded
  // 2-core machine that takes minutes.
  const deadline = Date.now() + 300_000;
  try {
    await Promise.race([Promise.all([waitFor(`http://127.0.0.1:${towerPort}/healthz`, deadline), waitFor(`http://127.0.0.1:${towerPort + 1}/readyz`, deadline)]), exited]);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  process.env.SIBYL_CONSOLE_TEST_GATEWAY = `http://127.0.0.1:${towerPort + 1}`;
  process.env.SIBYL_CONSOLE_TEST_TOWER = `http://127.0.0.1:${towerPort}`;
  exited.catch(() => undefined);
  return async () => {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('close', r));
    rmSync(dataDir, { recursive: true, force: true });
  };
}
