/**
 * What goes wrong while following the cell: a corrupt download, a model that does not load, a tower that goes
 * away, and a restart while the tower is down (static stability).
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestGateway } from '../../helpers/gateway.ts';
import { MODELS_DIR } from '../../helpers/expected.ts';
import { bundleOf, deployed, type TestBundle } from './bundles.ts';
import { startTestTower, type TestTower } from './test-tower.ts';
import { CELL, predict, readyz, towerGateway, waitFor } from './sync-helpers.ts';

let eta1: TestBundle;
let eta2: TestBundle;
let risk1: TestBundle;
let brokenRisk: TestBundle;
let tower: TestTower | undefined;
const gateways: TestGateway[] = [];

beforeAll(async () => {
  [eta1, eta2, risk1, brokenRisk] = await Promise.all([
    bundleOf('delivery-eta', '1'),
    bundleOf('delivery-eta', '2'),
    bundleOf('eta-risk', '1'),
    bundleOf('eta-risk', '1', { 'model.onnx': Buffer.from('this is not an onnx model') }),
  ]);
});

async function freshTower(port?: number): Promise<TestTower> {
  tower = await startTestTower(CELL, { port });
  for (const b of [eta1, eta2, risk1, brokenRisk]) tower.bundles.set(b.sha, b.zip);
  return tower;
}

async function gateway(env: Record<string, string> = {}): Promise<TestGateway> {
  const gw = await towerGateway(tower!, env);
  gateways.push(gw);
  return gw;
}

afterEach(async () => {
  for (const gw of gateways.splice(0)) await gw.stop();
  await tower?.close();
  tower = undefined;
});

describe('failures while following the cell', () => {
  it('rejects a bundle whose bytes do not match its hash, reports it, and keeps serving the old table', async () => {
    const t = await freshTower();
    t.deploy([{ name: 'delivery-eta', versions: [deployed(eta1)], defaultVersion: '1' }]);
    const cacheDir = mkdtempSync(join(tmpdir(), 'sibyl-cache-'));
    const gw = await gateway({ SIBYL_CACHE_DIR: cacheDir });
    await gw.gateway.follower!.ready;

    // The tower serves version 1's bytes under version 2's hash.
    t.bundles.set(eta2.sha, eta1.zip);
    t.deploy([{ name: 'delivery-eta', versions: [deployed(eta1), deployed(eta2)], defaultVersion: '2' }]);
    await waitFor('a report of revision 2', () => t.reports.at(-1)?.revision === 2n);
    const r = t.reports.at(-1)!;
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0]).toMatchObject({ model: 'delivery-eta', version: '2' });
    expect(r.errors[0]!.message).toMatch(/hash/);
    expect(r.errors[0]!.message).toMatch(/version 1 serves the default/);
    expect(r.loaded.map((l) => `${l.model}/${l.version}`)).toEqual(['delivery-eta/1']);
    expect(await predict(gw, 'delivery-eta')).toMatchObject({ status: 200, version: '1' });
    // Deployed but not served here: UNAVAILABLE naming why (another replica may have it), not NOT_FOUND.
    expect(await predict(gw, 'delivery-eta', '2')).toMatchObject({ status: 503, code: 'UNAVAILABLE', message: expect.stringMatching(/version "2" is deployed but failed to load on this gateway: .*hash/) });
    expect(existsSync(join(cacheDir, 'bundles', `${eta2.sha}.zip`))).toBe(false);

    // The download is retried: once the tower serves the right bytes, version 2 loads without a new revision.
    t.bundles.set(eta2.sha, eta2.zip);
    await waitFor('version 2 as the default', async () => (await predict(gw, 'delivery-eta')).version === '2');
    // The report follows the swap: on a slow machine a request can see version 2 before the tower has the report.
    await waitFor('a report without errors', () => t.reports.at(-1)?.errors.length === 0);
    expect(t.reports.at(-1)!.errors).toEqual([]);
    expect(existsSync(join(cacheDir, 'bundles', `${eta2.sha}.zip`))).toBe(true);
  });

  it('reports a version that fails to load and serves the others', async () => {
    const t = await freshTower();
    t.deploy([
      { name: 'delivery-eta', versions: [deployed(eta1), deployed(eta2)], defaultVersion: '2' },
      { name: 'eta-risk', versions: [deployed(brokenRisk)], defaultVersion: '1' },
    ]);
    const gw = await gateway();
    await waitFor('a report', () => t.reports.length > 0);
    const r = t.reports.at(-1)!;
    expect(r.errors.map((e) => `${e.model}/${e.version}`)).toEqual(['eta-risk/1']);
    expect(r.errors[0]!.message).toMatch(/onnx/);
    expect(r.loaded.map((l) => `${l.model}/${l.version}`).sort()).toEqual(['delivery-eta/1', 'delivery-eta/2']);
    expect(await readyz(gw)).toBe(200);
    expect(await predict(gw, 'delivery-eta')).toMatchObject({ status: 200, version: '2' });
    expect(await predict(gw, 'eta-risk')).toMatchObject({ status: 503, code: 'UNAVAILABLE', message: expect.stringMatching(/^model "eta-risk": its default version "1" is deployed but failed to load on this gateway: .*onnx/s) });
  });

  it('keeps the previous default when the new default fails to load', async () => {
    const t = await freshTower();
    t.deploy([{ name: 'eta-risk', versions: [deployed(risk1)], defaultVersion: '1' }, { name: 'delivery-eta', versions: [deployed(eta2)], defaultVersion: '2' }]);
    const gw = await gateway();
    await gw.gateway.follower!.ready;
    // A version 3 of delivery-eta whose model file is broken becomes the default.
    const manifest3 = readFileSync(join(MODELS_DIR, 'delivery-eta/2/sibyl.yaml'), 'utf8').replace(/^version: .*$/m, "version: '3'");
    const broken3 = await bundleOf('delivery-eta', '2', { 'sibyl.yaml': Buffer.from(manifest3), 'model.onnx': Buffer.from('garbage') });
    t.bundles.set(broken3.sha, broken3.zip);
    t.deploy([
      { name: 'eta-risk', versions: [deployed(risk1)], defaultVersion: '1' },
      { name: 'delivery-eta', versions: [deployed(eta1), deployed(eta2), { ...deployed(broken3), version: '3' }], defaultVersion: '3' },
    ]);
    await waitFor('a report of revision 2', () => t.reports.at(-1)?.revision === 2n);
    expect(t.reports.at(-1)!.errors).toEqual([expect.objectContaining({ model: 'delivery-eta', version: '3', message: expect.stringMatching(/onnx.*version 2 serves the default/s) })]);
    // Version 2 stays the default although version 1 is loaded too.
    expect(await predict(gw, 'delivery-eta')).toMatchObject({ status: 200, version: '2' });
    expect(await predict(gw, 'delivery-eta', '1')).toMatchObject({ status: 200, version: '1' });
  });

  it('keeps serving while the tower is down, and follows it again when it is back', async () => {
    const t = await freshTower();
    t.deploy([{ name: 'delivery-eta', versions: [deployed(eta1)], defaultVersion: '1' }]);
    const gw = await gateway();
    await gw.gateway.follower!.ready;
    await t.down();
    const until = performance.now() + 2_000;
    let served = 0;
    while (performance.now() < until) {
      expect(await predict(gw, 'delivery-eta')).toMatchObject({ status: 200, version: '1' });
      expect(await readyz(gw)).toBe(200);
      served++;
    }
    console.log(`${served} predictions served while the tower was down for 2 s`);
    t.deploy([{ name: 'delivery-eta', versions: [deployed(eta1), deployed(eta2)], defaultVersion: '2' }]);
    await t.up();
    const ms = await waitFor('version 2 after the tower is back', async () => (await predict(gw, 'delivery-eta')).version === '2');
    console.log(`followed the tower again ${ms.toFixed(0)} ms after it came back (backoff 100 ms doubling to 1 s)`);
  });

  it('restarts while the tower is down and serves from its cache at once', async () => {
    const t = await freshTower();
    t.deploy([
      { name: 'delivery-eta', versions: [deployed(eta1), deployed(eta2)], defaultVersion: '1', aliases: { canary: '2' } },
      { name: 'eta-risk', versions: [deployed(risk1)], defaultVersion: '1' },
    ]);
    const cacheDir = mkdtempSync(join(tmpdir(), 'sibyl-cache-'));
    const first = await gateway({ SIBYL_CACHE_DIR: cacheDir });
    await waitFor('a report', () => t.reports.length > 0);
    await first.stop();
    gateways.splice(gateways.indexOf(first), 1);
    await t.close();
    tower = undefined;

    const started = performance.now();
    const second = await towerGateway(t, { SIBYL_CACHE_DIR: cacheDir });
    gateways.push(second);
    console.log(`restarted from the cache and ready in ${(performance.now() - started).toFixed(0)} ms with the tower down`);
    expect(second.gateway.follower!.isReady).toBe(true);
    expect(await readyz(second)).toBe(200);
    expect(second.gateway.follower!.revision).toBe(1n);
    expect(await predict(second, 'delivery-eta')).toMatchObject({ status: 200, version: '1' });
    expect(await predict(second, 'delivery-eta', 'canary')).toMatchObject({ status: 200, version: '2' });
    expect(await predict(second, 'eta-risk')).toMatchObject({ status: 200, version: '1' });

    // When the tower is back, the restarted replica reports what it serves without waiting for a new revision.
    const reportsBefore = t.reports.length;
    await t.up();
    tower = t;
    await waitFor('a report from the restarted replica', () => t.reports.length > reportsBefore);
    expect(t.reports.at(-1)).toMatchObject({ revision: 1n, errors: [] });
    expect(t.reports.at(-1)!.loaded).toHaveLength(3);
  });

  it('starts not ready without cache or tower, answers UNAVAILABLE, and becomes ready when the tower appears', async () => {
    const t = await freshTower();
    t.deploy([{ name: 'delivery-eta', versions: [deployed(eta1)], defaultVersion: '1' }]);
    const port = Number(new URL(t.url).port);
    await t.close();
    tower = undefined;
    const gw = await towerGateway(t);
    gateways.push(gw);
    expect(await readyz(gw)).toBe(503);
    expect(await predict(gw, 'delivery-eta')).toMatchObject({ status: 503, code: 'UNAVAILABLE' });
    await new Promise((r) => setTimeout(r, 500));
    expect(await readyz(gw)).toBe(503);

    const back = await freshTower(port);
    back.deploy([{ name: 'delivery-eta', versions: [deployed(eta1)], defaultVersion: '1' }]);
    await gw.gateway.follower!.ready;
    expect(await readyz(gw)).toBe(200);
    expect(await predict(gw, 'delivery-eta')).toMatchObject({ status: 200, version: '1' });
  });
});
