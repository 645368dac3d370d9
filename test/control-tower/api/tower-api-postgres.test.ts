/**
 * The control tower's REST API on PostgreSQL, two towers on one fresh database and one bundle directory (as two
 * replicas of the control tower would run): uploads and immutability, a race between the two towers, the
 * long-poll waking on a change made through the other tower (LISTEN/NOTIFY), reports and the audit log.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgres, type Sql } from '../../../control-tower/store/sql.ts';
import { bundleEntries, bundleZip, makeZip } from '../../runtimes/bundle/zips.ts';
import { startTestTower, type TestTower } from './tower.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SERVER = process.env.SIBYL_TEST_DATABASE_URL ?? 'postgres://sibyl@127.0.0.1:25432/sibyl_test';
const ADMIN_TOKEN = `test-admin-${randomBytes(12).toString('hex')}`;
const database = `sibyl_api_${randomBytes(6).toString('hex')}`;
let admin: Sql;
let a: TestTower;
let b: TestTower;

beforeAll(async () => {
  // Started by scripts/test.sh; when this file runs alone, start the server here (idempotent).
  if (!process.env.SIBYL_TEST_DATABASE_URL) execFileSync('bash', ['scripts/services/postgres.sh', 'start'], { cwd: ROOT, stdio: 'ignore' });
  admin = openPostgres({ url: SERVER, max: 1 });
  await admin.exec(`CREATE DATABASE ${database}`);
  const url = new URL(SERVER);
  url.pathname = `/${database}`;
  const env = { DATABASE_URL: url.toString(), SIBYL_ADMIN_TOKEN: ADMIN_TOKEN, SIBYL_DATA_DIR: mkdtempSync(join(tmpdir(), 'sibyl-tower-pg-')) };
  a = await startTestTower(env);
  b = await startTestTower(env);
}, 120_000);
afterAll(async () => {
  await a?.stop();
  await b?.stop();
  await admin?.exec(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  await admin?.close();
});

const sha = (z: Buffer) => createHash('sha256').update(z).digest('hex');
const zipHeaders = { 'content-type': 'application/zip' };
const etaAs = (version: string, description = 'x') =>
  makeZip(
    bundleEntries('delivery-eta', '2').map((e) =>
      e.name === 'sibyl.yaml'
        ? { ...e, data: e.data.toString().replace(/^version: .*$/m, `version: '${version}'`).replace(/^description: .*$/m, `description: '${description}'`).replace(/^default: true$/m, 'default: false') }
        : e,
    ),
  );

describe('control tower API on PostgreSQL', () => {
  it('uses the configured admin token on both towers', async () => {
    expect(a.tower.devToken).toBe(false);
    expect((await a.call('GET', '/v1/tokens')).status).toBe(200);
    expect((await b.call('GET', '/v1/tokens')).status).toBe(200);
    expect((await a.call('GET', '/v1/tokens', { token: await a.token('viewer') })).status).toBe(403);
  });

  it('uploads raw and multipart; an identical retry is 200 on either tower, other bytes 409', async () => {
    const zip = await bundleZip('delivery-eta', '2');
    const first = await a.call('POST', '/v1/models?cells=all', { body: zip, headers: zipHeaders });
    expect(first).toMatchObject({ status: 201, json: { name: 'delivery-eta', version: '2', sha256: sha(zip), sizeBytes: zip.byteLength, runtime: 'onnx', created: true } });
    const form = new FormData();
    form.set('bundle', new Blob([zip]), 'eta.zip');
    const retry = await b.call('POST', '/v1/models', { body: form });
    expect(retry).toMatchObject({ status: 200, json: { sha256: sha(zip), created: false } });
    const clash = await b.call('POST', '/v1/models', { body: await makeZip([...bundleEntries('delivery-eta', '2'), { name: 'extra.txt', data: 'x' }]), headers: zipHeaders });
    expect(clash).toMatchObject({ status: 409, json: { code: 'ALREADY_EXISTS' } });
    // The manifest said default: true; the upload named every cell.
    const model = (await b.call('GET', '/v1/models/delivery-eta')).json;
    expect(model.cells.map((c: any) => [c.cell, c.defaultVersion])).toEqual([['cell-a', '2'], ['cell-b', '2']]);
    const bundle = await b.call('GET', '/v1/models/delivery-eta/versions/2/bundle');
    expect(sha(Buffer.from(await bundle.res.arrayBuffer()))).toBe(sha(zip));
  });

  it('of two towers uploading one version with different bytes at once, exactly one wins', async () => {
    const [one, two] = await Promise.all([etaAs('7', 'one'), etaAs('7', 'two')]);
    const results = await Promise.all([a.call('POST', '/v1/models', { body: one, headers: zipHeaders }), b.call('POST', '/v1/models', { body: two, headers: zipHeaders })]);
    expect(results.map((r) => r.status).sort()).toEqual([201, 409]);
    const winner = results.find((r) => r.status === 201)!.json.sha256;
    expect((await a.call('GET', '/v1/models/delivery-eta/versions/7')).json.sha256).toBe(winner);
    expect((await b.call('GET', '/v1/models/delivery-eta/versions/7')).json.sha256).toBe(winner);
  });

  it("a long-poll on one tower wakes within a second on a deploy through the other, and times out with the same revision", async () => {
    const rev = Number((await a.call('GET', '/v1/cells/cell-b/state')).json.revision);
    const t0 = Date.now();
    const idle = await a.call('GET', `/v1/cells/cell-b/state?after=${rev}&wait_ms=400`);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(350);
    expect(Number(idle.json.revision)).toBe(rev);
    const behind = Date.now();
    expect(Number((await a.call('GET', `/v1/cells/cell-b/state?after=${rev - 1}&wait_ms=10000`)).json.revision)).toBe(rev);
    expect(Date.now() - behind).toBeLessThan(2000);

    const waiting = a.call('GET', `/v1/cells/cell-b/state?after=${rev}&wait_ms=20000`);
    await new Promise((r) => setTimeout(r, 200));
    const deployedAt = Date.now();
    expect((await b.call('POST', '/v1/models/delivery-eta/versions/7:deploy', { json: { cells: ['cell-b'] } })).status).toBe(200);
    const woke = await waiting;
    expect(Date.now() - deployedAt).toBeLessThan(1000);
    expect(Number(woke.json.revision)).toBe(rev + 1);
    expect(woke.json.models[0].versions.map((v: any) => v.version)).toEqual(['2', '7']);
  });

  it('shows desired against actual per replica, and the audit log of every change', async () => {
    const state = (await b.call('GET', '/v1/cells/cell-b/state')).json;
    const viewer = await a.token('viewer');
    const loaded = state.models[0].versions.map((v: any) => ({ model: 'delivery-eta', version: v.version, bundleSha256: v.bundleSha256 }));
    await a.call('POST', '/v1/cells/cell-b/reports', { token: viewer, json: { replica: 'gw-1', revision: state.revision, loaded } });
    await b.call('POST', '/v1/cells/cell-b/reports', {
      token: viewer,
      json: { replica: 'gw-2', revision: String(Number(state.revision) - 1), loaded: loaded.slice(0, 1), errors: [{ model: 'delivery-eta', version: '7', message: 'load failed: out of memory' }] },
    });
    const cell = (await b.call('GET', '/v1/cells/cell-b')).json;
    expect(cell.replicas).toEqual([
      expect.objectContaining({ replica: 'gw-1', inSync: true, missing: [], errors: [], stale: false }),
      expect.objectContaining({ replica: 'gw-2', inSync: false, missing: ['delivery-eta/7'], errors: [{ model: 'delivery-eta', version: '7', message: 'load failed: out of memory' }] }),
    ]);
    expect(Date.parse(cell.replicas[0].lastSeen)).toBeGreaterThan(Date.now() - 60_000);

    const actions = (await a.call('GET', '/v1/audit?limit=100')).json.entries.map((e: any) => `${e.actor} ${e.action} ${e.target}`).reverse();
    // The first deploy made version 2 the default already, so the manifest's default flag changed nothing more.
    expect(actions.filter((x: string) => !x.includes('token.'))).toEqual([
      'config cell.create cell-a',
      'config cell.create cell-b',
      'admin version.add delivery-eta/2',
      'admin deploy delivery-eta/2',
      'admin version.add delivery-eta/7',
      'admin deploy delivery-eta/7',
    ]);
  });
});
