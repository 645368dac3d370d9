/**
 * A composed rule published through the control tower serves from a gateway that follows the tower, live and as a
 * shadow: the gateway warms it up the way the upload gate ran it (its first test case, with the case's models'
 * outputs), and runs its models on each request.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ShadowPairSnapshot } from '../../gateway/shadow/shadow-stats.ts';
import { expectedFor } from '../helpers/expected.ts';
import { postJson, startGateway, type TestGateway } from '../helpers/gateway.ts';
import { BLEND } from '../helpers/rule-dirs.ts';
import { bundleZip, makeZip } from '../runtimes/bundle/zips.ts';
import { startTestTower, type TestTower } from '../control-tower/api/tower.ts';

let t: TestTower;
let towerUrl: string;
let gw: TestGateway;

beforeAll(async () => {
  t = await startTestTower({ SIBYL_CELLS: 'cell-a' });
  const { port } = await t.tower.start();
  towerUrl = `http://127.0.0.1:${port}`;
  gw = await startGateway({
    SIBYL_CELL: 'cell-a',
    SIBYL_CONTROL_TOWER_URL: towerUrl,
    SIBYL_TOWER_TOKEN: t.tower.adminToken,
    SIBYL_CACHE_DIR: mkdtempSync(join(tmpdir(), 'sibyl-cache-')),
    SIBYL_SYNC_WAIT_MS: '20000',
    SIBYL_PREDICTION_LOG: 'off',
  });
}, 60_000);
afterAll(async () => {
  await gw?.stop();
  await t?.stop();
});

const auth = () => ({ authorization: `Bearer ${t.tower.adminToken}` });
const upload = (zip: Buffer) => fetch(`${towerUrl}/v1/models?cells=cell-a`, { method: 'POST', body: zip, headers: { ...auth(), 'content-type': 'application/zip' } });
const rows = expectedFor('delivery-eta', '2').rows.slice(0, 5);
const body = (r: (typeof rows)[number]) => ({ rows: [{ entities: r.entities, features: r.request }] });

async function until200(path: string, b: unknown, limitMs = 15_000): Promise<void> {
  const start = Date.now();
  let last: unknown;
  while (Date.now() - start < limitMs) {
    const res = await postJson(`${gw.http}${path}`, b);
    if (res.status === 200) return;
    last = res.json;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${path} not served within ${limitMs} ms: ${JSON.stringify(last)}`);
}

describe('a composed rule published through the control tower', () => {
  it('passes the gate, warms up on the gateway and serves the blend of its models', async () => {
    expect((await upload(await bundleZip('delivery-eta', '1'))).status).toBe(201);
    expect((await upload(await bundleZip('delivery-eta', '2'))).status).toBe(201);
    const manifest = stringify({ runtime: 'rules', ...BLEND.manifest, rules: { file: 'rule.js', ...BLEND.manifest.rules } });
    const res = await upload(await makeZip([{ name: 'sibyl.yaml', data: manifest }, { name: 'rule.js', data: BLEND.source }]));
    expect(res.status, await res.clone().text()).toBe(201);

    await until200('/v1/models/eta-blend:predict', body(rows[0]!));
    for (const r of rows) {
      const v1 = (await postJson(`${gw.http}/v1/models/delivery-eta/versions/1:predict`, body(r))).json.results[0].outputs.eta_minutes;
      const v2 = (await postJson(`${gw.http}/v1/models/delivery-eta/versions/2:predict`, body(r))).json.results[0].outputs.eta_minutes;
      const blend = await postJson(`${gw.http}/v1/models/eta-blend:predict`, body(r));
      expect(blend.status).toBe(200);
      expect(blend.json.results[0].outputs.eta_minutes).toBeCloseTo(0.3 * v1 + 0.7 * v2, 9);
    }
    // The replica reports it loaded, with no version left out.
    const cell = (await (await fetch(`${towerUrl}/v1/cells/cell-a`, { headers: auth() })).json()) as { replicas?: { errors?: unknown[] }[] };
    expect(JSON.stringify(cell)).not.toContain('eta-blend/1: ');
    for (const r of cell.replicas ?? []) expect(r.errors ?? []).toEqual([]);
  });

  it('runs as a shadow of its models\' model, each execution getting its models\' outputs', async () => {
    const set = await fetch(`${towerUrl}/v1/models/delivery-eta/shadows`, {
      method: 'PUT',
      headers: { ...auth(), 'content-type': 'application/json' },
      body: JSON.stringify({ shadows: [{ model: 'eta-blend', version: '1' }], cells: 'all' }),
    });
    expect(set.status, await set.clone().text()).toBe(200);
    // Served once the gateway has the new revision: wait until a request gets shadowed.
    const pairOf = async () => {
      const { pairs } = (await (await fetch(`${gw.http}/v1/shadows`)).json()) as { pairs: ShadowPairSnapshot[] };
      return pairs.find((p) => p.live.model === 'delivery-eta' && p.shadow.model === 'eta-blend');
    };
    const start = Date.now();
    while (!(await pairOf()) && Date.now() - start < 15_000) {
      await postJson(`${gw.http}/v1/models/delivery-eta:predict`, body(rows[0]!));
      await gw.gateway.shadows.flush();
    }
    const before = (await pairOf())!;
    expect(before).toBeDefined();
    for (const r of rows) expect((await postJson(`${gw.http}/v1/models/delivery-eta:predict`, body(r))).status).toBe(200);
    await gw.gateway.shadows.flush();
    const after = (await pairOf())!;
    expect(after.executed - before.executed).toBe(rows.length);
    expect(after.errors).toEqual({});
    expect(after.shed).toBe(0);
  });
});
