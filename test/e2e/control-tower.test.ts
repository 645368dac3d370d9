/**
 * The control tower and the gateways that follow it, end to end over HTTP: a real tower (PGlite) with cells
 * cell-a and cell-b, and one real gateway per cell following it. Upload → served within 2 s; a default switch under
 * steady traffic loses no request; cell A only vs all cells; tower down → gateways keep serving, and a gateway
 * restarted meanwhile serves from its cache.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectedFor } from '../helpers/expected.ts';
import { postJson, startGateway, type TestGateway } from '../helpers/gateway.ts';
import { bundleEntries, bundleZip, makeZip } from '../runtimes/bundle/zips.ts';
import { startTestTower, type TestTower } from '../control-tower/api/tower.ts';

let t: TestTower;
let towerUrl: string;
let gwA: TestGateway;
let gwB: TestGateway;
const cacheA = mkdtempSync(join(tmpdir(), 'sibyl-cache-a-'));
const gatewayEnv = (cell: string, cache: string) => ({
  SIBYL_CELL: cell,
  SIBYL_CONTROL_TOWER_URL: towerUrl,
  SIBYL_TOWER_TOKEN: t.tower.adminToken,
  SIBYL_CACHE_DIR: cache,
  SIBYL_SYNC_WAIT_MS: '20000',
  SIBYL_PREDICTION_LOG: 'off',
});

beforeAll(async () => {
  t = await startTestTower({ SIBYL_CELLS: 'cell-a,cell-b' });
  const { port } = await t.tower.start();
  towerUrl = `http://127.0.0.1:${port}`;
  gwA = await startGateway(gatewayEnv('cell-a', cacheA));
  gwB = await startGateway(gatewayEnv('cell-b', mkdtempSync(join(tmpdir(), 'sibyl-cache-b-'))));
}, 60_000);
afterAll(async () => {
  await gwA?.stop();
  await gwB?.stop();
  await t?.stop();
});

const mlp = expectedFor('tabular-mlp', '1').rows[0]!;
const mlpBody = { rows: [{ features: mlp.request }] };
const eta = expectedFor('delivery-eta', '1').rows[0]!;
const etaBody = { rows: [{ entities: eta.entities, features: eta.request }] };
const upload = (zip: Buffer, query = '') => fetch(`${towerUrl}/v1/models${query}`, { method: 'POST', body: zip, headers: { authorization: `Bearer ${t.tower.adminToken}`, 'content-type': 'application/zip' } });
const api = (method: string, path: string, json?: unknown) =>
  fetch(`${towerUrl}${path}`, { method, headers: { authorization: `Bearer ${t.tower.adminToken}`, 'content-type': 'application/json' }, ...(json ? { body: JSON.stringify(json) } : {}) });
const noDefault = (model: string, version: string) =>
  makeZip(bundleEntries(model, version).map((e) => (e.name === 'sibyl.yaml' ? { ...e, data: e.data.toString().replace(/^default: true$/m, 'default: false') } : e)));

/** Polls until `predict` answers 200, resolving with the milliseconds it took. */
async function until200(gw: TestGateway, path: string, body: unknown, limitMs = 10_000): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < limitMs) {
    if ((await postJson(`${gw.http}${path}`, body)).status === 200) return Date.now() - start;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`${path} not served within ${limitMs} ms`);
}

describe('gateways following the control tower', () => {
  it('serve an uploaded version in the target cell within 2 s; the other cell answers NOT_FOUND until deployed there', async () => {
    expect((await postJson(`${gwA.http}/v1/models/tabular-mlp:predict`, mlpBody)).status).toBe(404);
    const res = await upload(await noDefault('tabular-mlp', '1'), '?cells=cell-a');
    expect(res.status).toBe(201);
    expect(await until200(gwA, '/v1/models/tabular-mlp:predict', mlpBody)).toBeLessThan(2000);
    const answer = await postJson(`${gwA.http}/v1/models/tabular-mlp:predict`, mlpBody);
    expect(answer.json.results[0].outputs.output).toBeCloseTo(mlp.expected.output as number, 4);
    const b = await postJson(`${gwB.http}/v1/models/tabular-mlp:predict`, mlpBody);
    expect(b).toMatchObject({ status: 404, json: { code: 'NOT_FOUND', message: expect.stringContaining('tabular-mlp') } });

    expect((await api('POST', '/v1/models/tabular-mlp/versions/1:deploy', { cells: 'all' })).status).toBe(200);
    expect(await until200(gwB, '/v1/models/tabular-mlp:predict', mlpBody)).toBeLessThan(2000);
  });

  it('switch the default under steady traffic: no request fails, and requests after the switch get the new version', async () => {
    await upload(await noDefault('delivery-eta', '1'), '?cells=cell-a');
    await upload(await noDefault('delivery-eta', '2'), '?cells=cell-a');
    await until200(gwA, '/v1/models/delivery-eta:predict', etaBody);
    expect((await postJson(`${gwA.http}/v1/models/delivery-eta:predict`, etaBody)).json.version).toBe('1');

    let stop = false;
    let switchedAt = Infinity;
    const seen: { sentAt: number; status: number; version: string }[] = [];
    const loop = async () => {
      while (!stop) {
        const sentAt = Date.now();
        const r = await postJson(`${gwA.http}/v1/models/delivery-eta:predict`, etaBody);
        seen.push({ sentAt, status: r.status, version: r.json?.version });
      }
    };
    const loops = Array.from({ length: 4 }, loop);
    await new Promise((r) => setTimeout(r, 300));
    expect((await api('PUT', '/v1/models/delivery-eta/default', { version: '2', cells: ['cell-a'] })).status).toBe(200);
    const changedAt = Date.now();
    while (Date.now() - changedAt < 3000 && !seen.some((s) => s.version === '2')) await new Promise((r) => setTimeout(r, 10));
    switchedAt = Math.min(...seen.filter((s) => s.version === '2').map((s) => s.sentAt));
    await new Promise((r) => setTimeout(r, 300));
    stop = true;
    await Promise.all(loops);

    expect(seen.length).toBeGreaterThan(20);
    expect(seen.filter((s) => s.status !== 200)).toEqual([]);
    expect(switchedAt - changedAt).toBeLessThan(2000);
    // Once one request was served by v2, every request sent later was too.
    const afterFirst = seen.filter((s) => s.sentAt > switchedAt);
    expect(afterFirst.length).toBeGreaterThan(0);
    expect(afterFirst.filter((s) => s.version !== '2')).toEqual([]);
  });

  it('keep serving while the control tower is down, and a gateway restarted meanwhile serves from its cache', async () => {
    await t.tower.stop();
    for (let i = 0; i < 20; i++) expect((await postJson(`${gwA.http}/v1/models/delivery-eta:predict`, etaBody)).status).toBe(200);
    expect((await fetch(`${gwA.http}/readyz`)).status).toBe(200);

    await gwA.stop();
    gwA = await startGateway(gatewayEnv('cell-a', cacheA));
    expect((await fetch(`${gwA.http}/readyz`)).status).toBe(200);
    const r = await postJson(`${gwA.http}/v1/models/delivery-eta:predict`, etaBody);
    expect(r).toMatchObject({ status: 200, json: { version: '2' } });
    expect((await postJson(`${gwA.http}/v1/models/tabular-mlp:predict`, mlpBody)).status).toBe(200);
  });
});
