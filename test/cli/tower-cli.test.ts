/** `sibyl` against a running control tower: bundle, upload, list, default, deploy, split, shadows, cells, audit, and errors. */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestTower, type TestTower } from '../control-tower/api/tower.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
let t: TestTower;
let url: string;
beforeAll(async () => {
  t = await startTestTower({ SIBYL_CELLS: 'cell-a,cell-b' });
  url = `http://127.0.0.1:${(await t.tower.start()).port}`;
}, 60_000);
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

describe('sibyl CLI with a control tower', () => {
  it('bundles a directory deterministically and uploads it; the same upload again is safe', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sibyl-cli-'));
    const a = join(dir, 'a.zip');
    const b = join(dir, 'b.zip');
    expect((await sibyl('bundle', 'models/tabular-mlp/1', '-o', a)).code).toBe(0);
    expect((await sibyl('bundle', 'models/tabular-mlp/1', '-o', b)).code).toBe(0);
    expect(readFileSync(a).equals(readFileSync(b))).toBe(true);
    const up = await sibyl('upload', a, '--cells', 'cell-a');
    expect(up.code).toBe(0);
    expect(up.json).toMatchObject({ name: 'tabular-mlp', version: '1', created: true, changed: [{ cell: 'cell-a' }] });
    expect((await sibyl('upload', 'models/tabular-mlp/1', '--cells', 'cell-a')).json).toMatchObject({ created: false });
  });

  it('moves versions: upload a directory, deploy, default, alias, split, shadows, and shows cells and the audit log', async () => {
    expect((await sibyl('upload', 'models/delivery-eta/1')).code).toBe(0);
    expect((await sibyl('upload', 'models/delivery-eta/2')).code).toBe(0);
    expect((await sibyl('deploy', 'delivery-eta', '1', '--cells', 'all')).code).toBe(0);
    expect((await sibyl('default', 'delivery-eta', '1', '--cells', 'cell-b')).code).toBe(0);
    expect((await sibyl('alias', 'delivery-eta', 'stable', '1')).code).toBe(0);
    expect((await sibyl('split', 'delivery-eta', '1=90', '2=10:canary', '--cells', 'cell-b')).code).toBe(0);
    expect((await sibyl('shadows', 'delivery-eta', '2', '--cells', 'cell-b')).code).toBe(0);
    const model = (await sibyl('models', 'delivery-eta')).json;
    expect(model.cells.find((c: any) => c.cell === 'cell-b')).toMatchObject({
      defaultVersion: '1',
      aliases: { stable: '1' },
      split: [{ arm: '1', version: '1', weight: 90 }, { arm: 'canary', version: '2', weight: 10 }],
      shadows: [{ model: 'delivery-eta', version: '2' }],
    });
    expect((await sibyl('cells', 'cell-b')).json.desired.models.map((m: any) => m.name)).toContain('delivery-eta');
    expect((await sibyl('audit', '--limit', '5')).json.entries[0]).toMatchObject({ action: 'shadows.set', target: 'delivery-eta' });
  });

  it('fails with the code and message of the control tower, and exit status 1', async () => {
    const missing = await sibyl('deploy', 'nope', '1', '--cells', 'all');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/sibyl: NOT_FOUND: model nope/);
    const dir = mkdtempSync(join(tmpdir(), 'sibyl-cli-'));
    const bad = join(dir, 'bad.zip');
    await import('node:fs/promises').then((fs) => fs.writeFile(bad, 'not a zip'));
    const rejected = await sibyl('upload', bad);
    expect(rejected.code).toBe(1);
    expect(rejected.stderr).toMatch(/INVALID_ARGUMENT: bundle: not a readable zip/);
    const noToken = await new Promise<string>((resolve) =>
      execFile(process.execPath, ['cli/sibyl.ts', 'models'], { cwd: ROOT, env: { ...process.env, SIBYL_TOWER_URL: url, SIBYL_TOKEN: '' } }, (_e, _o, stderr) => resolve(stderr)),
    );
    expect(noToken).toMatch(/UNAUTHENTICATED/);
    const down = await new Promise<string>((resolve) =>
      execFile(process.execPath, ['cli/sibyl.ts', 'models'], { cwd: ROOT, env: { ...process.env, SIBYL_TOWER_URL: 'http://127.0.0.1:9', SIBYL_TOKEN: 'x' } }, (_e, _o, stderr) => resolve(stderr)),
    );
    expect(down).toMatch(/UNAVAILABLE: cannot reach the control tower/);
  });
});
