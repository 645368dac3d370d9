/** A control tower for tests: PGlite (or a PostgreSQL URL) and a local bundle directory under a temp dir. */
import { mkdtempSync, readdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadTowerConfig } from '../../../control-tower/config.ts';
import { createControlTower, type ControlTower, type ControlTowerParts } from '../../../control-tower/server.ts';

export interface TestTower {
  readonly tower: ControlTower;
  readonly dir: string;
  /** app.request with the given token (default: admin). */
  call(method: string, path: string, init?: { body?: RequestInit['body']; json?: unknown; token?: string | null; headers?: Record<string, string> }): Promise<{ status: number; json: any; res: Response }>;
  token(role: 'admin' | 'publisher' | 'viewer'): Promise<string>;
  bundleFiles(): string[];
  stop(): Promise<void>;
}

export async function startTestTower(env: Record<string, string> = {}, parts: ControlTowerParts = {}): Promise<TestTower> {
  const dir = mkdtempSync(join(tmpdir(), 'sibyl-tower-'));
  const config = loadTowerConfig({ SIBYL_DATA_DIR: dir, SIBYL_CELLS: 'cell-a,cell-b', SIBYL_TOWER_HOST: '127.0.0.1', SIBYL_TOWER_PORT: '0', SIBYL_LOG_LEVEL: 'silent', ...env });
  const tower = await createControlTower(config, { logger: pino({ level: 'silent' }), ...parts });
  const tokens = new Map<string, string>();
  return {
    tower,
    dir,
    async call(method, path, init = {}) {
      const headers: Record<string, string> = { ...(init.headers ?? {}) };
      const token = init.token === undefined ? tower.adminToken : init.token;
      if (token !== null) headers.authorization = `Bearer ${token}`;
      let body = init.body;
      if (init.json !== undefined) {
        body = JSON.stringify(init.json);
        headers['content-type'] = 'application/json';
      }
      const res = await tower.app.request(path, { method, headers, ...(body !== undefined ? { body } : {}) });
      const text = await res.clone().text();
      let json: any;
      try {
        json = text ? JSON.parse(text) : undefined;
      } catch {
        json = undefined;
      }
      return { status: res.status, json, res };
    },
    async token(role) {
      let t = tokens.get(role);
      if (!t) {
        t = (await tower.store.createToken({ name: `${role}-${tokens.size}`, role, actor: 'test' })).token;
        tokens.set(role, t);
      }
      return t;
    },
    bundleFiles() {
      const d = join(dir, 'control-tower', 'bundles');
      return existsSync(d) ? readdirSync(d, { recursive: true }).map(String).filter((f) => f.endsWith('.zip') || /[0-9a-f]{64}$/.test(f)) : [];
    },
    stop: () => tower.stop(),
  };
}
