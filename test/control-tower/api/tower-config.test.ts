/** The control tower's configuration (defaults, every problem at once, frozen) and `control-tower/main.ts` run alone. */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadTowerConfig, TowerConfigError } from '../../../control-tower/config.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

describe('loadTowerConfig', () => {
  it('defaults to port 8090, PGlite and a bundle directory under .data, one cell, 256 MiB uploads, no admin token', () => {
    const c = loadTowerConfig({});
    expect(c).toMatchObject({
      port: 8090,
      host: '0.0.0.0',
      database: { kind: 'pglite', dataDir: join('.data', 'control-tower', 'db') },
      bundles: { kind: 'local', dir: join('.data', 'control-tower', 'bundles') },
      cells: ['local'],
      adminToken: undefined,
      maxUploadBytes: 256 * 1024 * 1024,
      maxWaitMs: 60_000,
    });
  });

  it('takes PostgreSQL, S3, cells, the admin token and limits from the environment', () => {
    const c = loadTowerConfig({
      SIBYL_TOWER_PORT: '9000',
      SIBYL_DATA_DIR: '/srv/sibyl',
      DATABASE_URL: 'postgres://u@db/sibyl',
      SIBYL_S3_BUCKET: 'bundles',
      AWS_REGION: 'eu-west-1',
      AWS_ENDPOINT_URL: 'http://127.0.0.1:5055',
      SIBYL_CELLS: 'eu-1, us-1',
      SIBYL_ADMIN_TOKEN: 'a-long-enough-admin-token',
      SIBYL_MAX_UPLOAD_BYTES: '1048576',
      SIBYL_MAX_WAIT_MS: '30000',
    });
    expect(c).toMatchObject({
      port: 9000,
      database: { kind: 'postgres', url: 'postgres://u@db/sibyl' },
      bundles: { kind: 's3', bucket: 'bundles', region: 'eu-west-1', endpoint: 'http://127.0.0.1:5055' },
      cells: ['eu-1', 'us-1'],
      adminToken: 'a-long-enough-admin-token',
      maxUploadBytes: 1048576,
      maxWaitMs: 30_000,
      workDir: join('/srv/sibyl', 'control-tower', 'validation'),
    });
    expect(loadTowerConfig({ SIBYL_DATA_DIR: '/d' }).database).toEqual({ kind: 'pglite', dataDir: '/d/control-tower/db' });
  });

  it('reports every problem at once', () => {
    let err: unknown;
    try {
      loadTowerConfig({ SIBYL_TOWER_PORT: '70000', SIBYL_CELLS: 'Bad_Cell', SIBYL_ADMIN_TOKEN: 'short', SIBYL_MAX_UPLOAD_BYTES: '-1', SIBYL_MAX_WAIT_MS: 'soon' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TowerConfigError);
    const message = (err as Error).message;
    for (const name of ['SIBYL_TOWER_PORT', 'SIBYL_CELLS', 'SIBYL_ADMIN_TOKEN', 'SIBYL_MAX_UPLOAD_BYTES', 'SIBYL_MAX_WAIT_MS']) expect(message).toContain(name);
    expect(() => loadTowerConfig({ SIBYL_CELLS: ' , ' })).toThrow(/name at least one cell/);
  });

  it('is frozen, nested parts included', () => {
    const c = loadTowerConfig({});
    expect(Object.isFrozen(c) && Object.isFrozen(c.database) && Object.isFrozen(c.bundles) && Object.isFrozen(c.cells)).toBe(true);
  });
});

describe('control-tower/main.ts', () => {
  it('serves on its own, prints a development token that works, and stops on SIGTERM', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sibyl-tower-main-'));
    const child = spawn(process.execPath, ['control-tower/main.ts'], {
      cwd: ROOT,
      env: { ...process.env, SIBYL_DATA_DIR: dir, SIBYL_TOWER_PORT: '0', SIBYL_TOWER_HOST: '127.0.0.1', SIBYL_ADMIN_TOKEN: '', SIBYL_CELLS: 'local', DATABASE_URL: '', SIBYL_S3_BUCKET: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (err += d));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const deadline = Date.now() + 60_000;
      while (!(/"port":(\d+)/.test(out) && /SIBYL_TOKEN=(\S+)/.test(err)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      const port = /"port":(\d+)/.exec(out)?.[1];
      const token = /SIBYL_TOKEN=(\S+)/.exec(err)?.[1];
      expect(port, out + err).toBeDefined();
      expect(token).toMatch(/^sibyl-dev-/);
      const res = await fetch(`http://127.0.0.1:${port}/v1/cells`, { headers: { authorization: `Bearer ${token}` } });
      expect(res.status).toBe(200);
      expect(((await res.json()) as { cells: { name: string }[] }).cells.map((c: { name: string }) => c.name)).toEqual(['local']);
      expect((await fetch(`http://127.0.0.1:${port}/v1/cells`)).status).toBe(401);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  }, 90_000);

  it('refuses a bad configuration with exit status 2 and every problem', async () => {
    const child = spawn(process.execPath, ['control-tower/main.ts'], { cwd: ROOT, env: { ...process.env, SIBYL_TOWER_PORT: 'x', SIBYL_CELLS: 'A' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d));
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    expect(code).toBe(2);
    expect(err).toMatch(/SIBYL_TOWER_PORT/);
    expect(err).toMatch(/SIBYL_CELLS/);
  }, 30_000);
});
