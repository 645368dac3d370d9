/**
 * `sibyl rollout`, `sibyl rollout status|halt` and `sibyl rollouts` against a control tower started on port 0 (its
 * rollout driver running; cells without gateways, so a wave is judged on no traffic and `--min-requests 0` lets it
 * pass): a rollout followed to completion with --wait, one halted by hand, the list, and the usage errors; and the
 * parsing of --waves and durations.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDuration, parseWaves } from '../../cli/rollout.ts';
import { startTestTower, type TestTower } from '../control-tower/api/tower.ts';
import { bundleZip } from '../runtimes/bundle/zips.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
let t: TestTower;
let url: string;
beforeAll(async () => {
  t = await startTestTower({ SIBYL_CELLS: 'cell-a,cell-b,cell-c', SIBYL_ROLLOUT_TICK_MS: '100' });
  url = `http://127.0.0.1:${(await t.tower.start()).port}`;
  for (const v of ['1', '2']) {
    const res = await t.call('POST', `/v1/models?cells=cell-a,cell-b,cell-c${v === '1' ? '&default=true' : ''}`, { body: await bundleZip('delivery-eta', v), headers: { 'content-type': 'application/zip' } });
    expect(res.status).toBe(201);
  }
  await t.call('PUT', '/v1/models/delivery-eta/default', { json: { version: '1' } });
}, 180_000);
afterAll(() => t?.stop());

function sibyl(...args: string[]): Promise<{ code: number; stdout: string; stderr: string; json: any }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['cli/sibyl.ts', ...args], { cwd: ROOT, env: { ...process.env, SIBYL_TOWER_URL: url, SIBYL_TOKEN: t.tower.adminToken } }, (err, stdout, stderr) => {
      let json: any;
      try {
        json = JSON.parse(stdout);
      } catch {
        json = undefined;
      }
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr, json });
    });
  });
}

describe('parsing', () => {
  it('reads --waves as named waves, single cells, or one wave per comma-separated cell', () => {
    expect(parseWaves('canary=cell-a;eu=cell-b,cell-c')).toEqual([
      { name: 'canary', cells: ['cell-a'] },
      { name: 'eu', cells: ['cell-b', 'cell-c'] },
    ]);
    expect(parseWaves('canary,eu,us')).toEqual([
      { name: 'canary', cells: ['canary'] },
      { name: 'eu', cells: ['eu'] },
      { name: 'us', cells: ['us'] },
    ]);
    expect(parseWaves('canary=cell-a; cell-b')).toEqual([
      { name: 'canary', cells: ['cell-a'] },
      { name: 'cell-b', cells: ['cell-b'] },
    ]);
    expect(() => parseWaves('canary=;eu=cell-b')).toThrow('--waves: "canary=" is not NAME=CELL[,CELL...]');
  });

  it('reads durations', () => {
    expect(parseDuration('5m', '--bake')).toBe(300_000);
    expect(parseDuration('1h30m', '--bake')).toBe(5_400_000);
    expect(parseDuration('2.5s', '--bake')).toBe(2500);
    expect(parseDuration('750ms', '--bake')).toBe(750);
    expect(parseDuration('1500', '--bake')).toBe(1500);
    expect(() => parseDuration('5 minutes', '--bake')).toThrow('--bake: "5 minutes" is not a duration like 500ms, 2s, 5m or 1h30m');
  });
});

describe('sibyl rollout', () => {
  it('follows a rollout through its waves with --wait, then shows it with status and in the list', async () => {
    const r = await sibyl('rollout', 'delivery-eta', '2', '--waves', 'canary=cell-a;rest=cell-b,cell-c', '--bake', '1500ms', '--min-requests', '0', '--wait');
    expect(r.code, r.stderr).toBe(0);
    expect(r.json).toMatchObject({ model: 'delivery-eta', version: '2', state: 'completed', waves: [{ name: 'canary', status: 'passed' }, { name: 'rest', status: 'passed' }] });
    const lines = r.stderr.trim().split('\n');
    expect(lines[0]).toMatch(new RegExp(`^rollout ${r.json.id}: (pending|applying|baking), wave 1/2 canary \\(cell-a\\)`));
    expect(lines).toContainEqual(expect.stringMatching(/: baking, wave 2\/2 rest \(cell-b, cell-c\) until \d{4}-/));
    expect(lines.at(-1)).toBe(`rollout ${r.json.id}: completed, 2 wave(s) passed`);
    expect((await t.call('GET', '/v1/models/delivery-eta')).json.cells.map((c: { defaultVersion: string }) => c.defaultVersion)).toEqual(['2', '2', '2']);

    const status = await sibyl('rollout', 'status', String(r.json.id));
    expect(status).toMatchObject({ code: 0, json: { id: r.json.id, state: 'completed' } });
    const list = await sibyl('rollouts', '--model', 'delivery-eta');
    expect(list.json.rollouts.map((x: { id: number }) => x.id)).toEqual([r.json.id]);
  });

  it('halts a rollout by hand: the wave restored, exit 1 for --wait on a halted rollout', async () => {
    const started = await sibyl('rollout', 'delivery-eta', '1', '--waves', 'cell-a,cell-b', '--bake', '10m', '--min-requests', '0');
    expect(started.code, started.stderr).toBe(0);
    const id = String(started.json.id);
    for (let i = 0; i < 100 && (await sibyl('rollout', 'status', id)).json.state !== 'baking'; i++) await new Promise((res) => setTimeout(res, 100));
    expect((await t.call('GET', '/v1/models/delivery-eta')).json.cells.map((c: { defaultVersion: string }) => c.defaultVersion)).toEqual(['1', '2', '2']);
    const halted = await sibyl('rollout', 'halt', id, '--reason', 'wrong day');
    expect(halted.json).toMatchObject({ state: 'halted', haltReason: expect.stringMatching(/: wrong day$/), waves: [{ status: 'halted' }, { status: 'pending' }] });
    expect((await t.call('GET', '/v1/models/delivery-eta')).json.cells.map((c: { defaultVersion: string }) => c.defaultVersion)).toEqual(['2', '2', '2']);
    const waited = await sibyl('rollout', 'status', id, '--wait');
    expect(waited.code).toBe(1);
    expect(waited.stderr).toMatch(new RegExp(`sibyl: rollout ${id} halted: halted by .+: wrong day`));
    expect((await sibyl('rollouts', '--active')).json.rollouts).toEqual([]);
  });

  it('says what is wrong with a rollout it cannot start', async () => {
    expect(await sibyl('rollout', 'delivery-eta', '2', '--bake', '1m')).toMatchObject({ code: 1, stderr: expect.stringContaining('rollout: --waves and --bake are required') });
    expect(await sibyl('rollout', 'delivery-eta', '2', '--waves', 'cell-a', '--bake', 'soon')).toMatchObject({ code: 1, stderr: expect.stringContaining('--bake: "soon" is not a duration') });
    expect(await sibyl('rollout', 'delivery-eta', '9', '--waves', 'cell-a', '--bake', '1m')).toMatchObject({ code: 1, stderr: 'sibyl: NOT_FOUND: version 9 of model delivery-eta not found\n' });
    expect(await sibyl('rollout', 'delivery-eta', '2', '--waves', 'cell-a', '--bake', '1m', '--mode', 'split')).toMatchObject({ code: 1, stderr: expect.stringContaining('INVALID_ARGUMENT: invalid rollout: weight:') });
    expect(await sibyl('rollout', 'status', '999')).toMatchObject({ code: 1, stderr: 'sibyl: NOT_FOUND: rollout 999 not found\n' });
  });
});
