/**
 * A gateway following its cell's desired state: new revisions are served quickly, default switches lose no
 * request, in-flight requests finish on the version they started on, and reports say what is loaded.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { TestGateway } from '../../helpers/gateway.ts';
import { bundleOf, deployed, type TestBundle } from './bundles.ts';
import { startTestTower, type TestTower } from './test-tower.ts';
import { CELL, instrumentedRuntimes, predict, readyz, towerGateway, waitFor } from './sync-helpers.ts';

let eta1: TestBundle;
let eta2: TestBundle;
let risk1: TestBundle;
let tower: TestTower;
let gw: TestGateway | undefined;

beforeAll(async () => {
  [eta1, eta2, risk1] = await Promise.all([bundleOf('delivery-eta', '1'), bundleOf('delivery-eta', '2'), bundleOf('eta-risk', '1')]);
});

async function freshTower(): Promise<TestTower> {
  tower = await startTestTower(CELL);
  for (const b of [eta1, eta2, risk1]) tower.bundles.set(b.sha, b.zip);
  return tower;
}

afterEach(async () => {
  await gw?.stop();
  gw = undefined;
  await tower?.close();
});

describe('following the cell', () => {
  it('serves a new revision within 2 s of the deploy', async () => {
    await freshTower();
    tower.deploy([{ name: 'delivery-eta', versions: [deployed(eta1)], defaultVersion: '1' }]);
    gw = await towerGateway(tower);
    await gw.gateway.follower!.ready;
    expect(await readyz(gw)).toBe(200);
    expect(await predict(gw, 'delivery-eta')).toMatchObject({ status: 200, version: '1' });

    const deployedAt = performance.now();
    tower.deploy([
      { name: 'delivery-eta', versions: [deployed(eta1), deployed(eta2)], defaultVersion: '2', aliases: { stable: '1' } },
      { name: 'eta-risk', versions: [deployed(risk1)], defaultVersion: '1' },
    ]);
    await waitFor('version 2 as the default', async () => (await predict(gw!, 'delivery-eta')).version === '2', 5_000);
    const ms = performance.now() - deployedAt;
    console.log(`new revision served ${ms.toFixed(0)} ms after the deploy (two versions downloaded and loaded)`);
    expect(ms).toBeLessThan(2_000);
    expect(await predict(gw, 'delivery-eta', 'stable')).toMatchObject({ status: 200, version: '1' });
    expect(await predict(gw, 'eta-risk')).toMatchObject({ status: 200, version: '1' });
    expect(gw.gateway.follower!.revision).toBe(2n);
  });

  it('switches the default under steady traffic without losing a request; requests after the switch get the new version', async () => {
    await freshTower();
    tower.deploy([{ name: 'delivery-eta', versions: [deployed(eta1)], defaultVersion: '1' }]);
    gw = await towerGateway(tower);
    await gw.gateway.follower!.ready;

    const answers: { status: number; version: string | undefined; sentAfterSwitch: boolean }[] = [];
    let switched = false;
    let running = true;
    const client = async () => {
      while (running) {
        const sentAfterSwitch = switched;
        const a = await predict(gw!, 'delivery-eta');
        answers.push({ status: a.status, version: a.version, sentAfterSwitch });
      }
    };
    const clients = Array.from({ length: 4 }, client);
    await waitFor('traffic', () => answers.length > 50);
    // Version 2 arrives and becomes the default; version 1 leaves the cell.
    tower.deploy([{ name: 'delivery-eta', versions: [deployed(eta2)], defaultVersion: '2' }]);
    await waitFor('the new revision', () => gw!.gateway.follower!.revision === 2n);
    switched = true;
    const before = answers.length;
    await waitFor('traffic after the switch', () => answers.length > before + 50);
    running = false;
    await Promise.all(clients);

    console.log(`${answers.length} requests during the switch: ${answers.filter((a) => a.version === '1').length} on v1, ${answers.filter((a) => a.version === '2').length} on v2`);
    expect(answers.filter((a) => a.status !== 200)).toEqual([]);
    expect(answers.some((a) => a.version === '1')).toBe(true);
    expect(answers.filter((a) => a.sentAfterSwitch).every((a) => a.version === '2')).toBe(true);
    expect(await predict(gw, 'delivery-eta', '1')).toMatchObject({ status: 404, code: 'NOT_FOUND' });
  });

  it('lets a request in flight during a swap finish on its old version, and disposes that version after', async () => {
    await freshTower();
    tower.deploy([{ name: 'delivery-eta', versions: [deployed(eta1)], defaultVersion: '1' }]);
    const inst = instrumentedRuntimes();
    gw = await towerGateway(tower, { SIBYL_REQUEST_TIMEOUT_MS: '20000' }, { runtimes: inst.runtimes });
    await gw.gateway.follower!.ready;

    const held = inst.hold('delivery-eta/1');
    const inFlight = predict(gw, 'delivery-eta');
    await held.entered;
    tower.deploy([{ name: 'delivery-eta', versions: [deployed(eta2)], defaultVersion: '2' }]);
    await waitFor('the new revision', () => gw!.gateway.follower!.revision === 2n);
    expect(await predict(gw, 'delivery-eta')).toMatchObject({ status: 200, version: '2' });
    expect(inst.disposed).toEqual([]);

    held.release();
    expect(await inFlight).toMatchObject({ status: 200, version: '1' });
    await waitFor('version 1 disposed', () => inst.disposed.includes('delivery-eta/1'));
    expect(inst.disposed).toEqual(['delivery-eta/1']);
  });

  it("applies the cell's aliases, traffic split and shadows, dropping those whose versions are not deployed", async () => {
    await freshTower();
    tower.deploy([
      {
        name: 'delivery-eta',
        versions: [deployed(eta1), deployed(eta2)],
        defaultVersion: '2',
        aliases: { stable: '1', gone: '9' },
        split: [
          { arm: 'control', version: '1', weight: 1 },
          { arm: 'canary', version: '2', weight: 1 },
        ],
        shadows: [{ model: 'eta-risk', version: '1' }, { model: '', version: '7' }],
      },
      { name: 'eta-risk', versions: [deployed(risk1)], defaultVersion: '1' },
    ]);
    gw = await towerGateway(tower);
    await gw.gateway.follower!.ready;
    const table = gw.gateway.routes.current;
    const eta = table.model('delivery-eta')!;
    expect([...eta.aliases]).toEqual([['stable', '1']]);
    expect(eta.split?.arms.map((a) => `${a.arm}:${a.version}`)).toEqual(['control:1', 'canary:2']);
    expect(table.shadowsOf('delivery-eta').map((r) => `${r.model}/${r.version}`)).toEqual(['eta-risk/1']);
    const seen = new Set<string>();
    for (let i = 0; i < 40; i++) seen.add((await predict(gw, 'delivery-eta')).version ?? '');
    expect([...seen].sort()).toEqual(['1', '2']);
  });

  it('reports what it loaded, with bundle hashes, to the tower with its bearer token', async () => {
    await freshTower();
    tower.deploy([
      { name: 'delivery-eta', versions: [deployed(eta1), deployed(eta2)], defaultVersion: '2' },
      { name: 'eta-risk', versions: [deployed(risk1)], defaultVersion: '1' },
    ]);
    gw = await towerGateway(tower);
    await waitFor('a report', () => tower.reports.length > 0);
    const r = tower.reports.at(-1)!;
    expect(r).toMatchObject({ cell: CELL, replica: 'replica-1', revision: 1n, errors: [] });
    expect(r.loaded.map((l) => ({ model: l.model, version: l.version, bundleSha256: l.bundleSha256 })).sort((a, b) => (a.model + a.version).localeCompare(b.model + b.version))).toEqual([
      { model: 'delivery-eta', version: '1', bundleSha256: eta1.sha },
      { model: 'delivery-eta', version: '2', bundleSha256: eta2.sha },
      { model: 'eta-risk', version: '1', bundleSha256: risk1.sha },
    ]);
    expect(tower.unauthorized).toBe(0);

    tower.deploy([{ name: 'eta-risk', versions: [deployed(risk1)], defaultVersion: '1' }]);
    await waitFor('a report of revision 2', () => tower.reports.at(-1)?.revision === 2n);
    expect(tower.reports.at(-1)!.loaded.map((l) => `${l.model}/${l.version}`)).toEqual(['eta-risk/1']);
  });
});
