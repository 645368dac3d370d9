/**
 * `sibyl` against a control tower started on port 0: upload with --default and --cells all, models, version,
 * download (the same bytes back), undeploy, retire, cells, --tower/--token flags, and the errors a user meets.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestTower, type TestTower } from '../control-tower/api/tower.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
let t: TestTower;
let url: string;
let dir: string;
beforeAll(async () => {
  t = await startTestTower({ SIBYL_CELLS: 'cell-a,cell-b' });
  url = `http://127.0.0.1:${(await t.tower.start()).port}`;
  dir = mkdtempSync(join(tmpdir(), 'sibyl-cli-'));
}, 60_000);
afterAll(() => t?.stop());

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  json: any;
}

function run(args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['cli/sibyl.ts', ...args], { cwd: ROOT, env: { ...process.env, SIBYL_TOWER_URL: url, SIBYL_TOKEN: t.tower.adminToken, ...env } }, (err, stdout, stderr) => {
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
const sibyl = (...args: string[]) => run(args);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('sibyl CLI: versions and cells', () => {
  it('uploads with --default --cells all, shows the model and version, and downloads the same bytes', async () => {
    const zip = join(dir, 'eta-1.zip');
    expect((await sibyl('bundle', 'models/delivery-eta/1', '-o', zip)).code).toBe(0);
    const up = await sibyl('upload', zip, '--default', '--cells', 'all');
    expect(up.code, up.stderr).toBe(0);
    expect(up.json).toMatchObject({ name: 'delivery-eta', version: '1', sha256: sha(readFileSync(zip)), created: true, changed: [{ cell: 'cell-a' }, { cell: 'cell-b' }] });

    expect((await sibyl('models')).json.models).toEqual([expect.objectContaining({ name: 'delivery-eta', versions: ['1'] })]);
    const model = (await sibyl('models', 'delivery-eta')).json;
    expect(model.cells.map((c: any) => [c.cell, c.defaultVersion])).toEqual([['cell-a', '1'], ['cell-b', '1']]);
    const version = (await sibyl('version', 'delivery-eta', '1')).json;
    expect(version).toMatchObject({ name: 'delivery-eta', version: '1', runtime: 'onnx', cells: ['cell-a', 'cell-b'], manifest: { name: 'delivery-eta' } });

    const out = join(dir, 'downloaded.zip');
    const down = await sibyl('download', 'delivery-eta', '1', '-o', out);
    expect(down.code, down.stderr).toBe(0);
    expect(down.stdout).toContain(out);
    expect(readFileSync(out).equals(readFileSync(zip))).toBe(true);
  });

  it('undeploys and retires; cells shows each cell and its desired state; flags beat the environment', async () => {
    expect((await sibyl('upload', 'models/delivery-eta/2', '--cells', 'cell-a')).code).toBe(0);
    // The manifest of version 2 says default: true, so it became the default where it was deployed.
    expect((await sibyl('cells', 'cell-a')).json.desired.models[0]).toMatchObject({ name: 'delivery-eta', defaultVersion: '2' });
    expect((await sibyl('undeploy', 'delivery-eta', '1', '--cells', 'cell-a')).json).toMatchObject({ cells: [{ cell: 'cell-a' }] });
    const retireDefault = await sibyl('retire', 'delivery-eta', '1');
    expect(retireDefault.code).toBe(1);
    expect(retireDefault.stderr).toMatch(/^sibyl: FAILED_PRECONDITION: .*default/m);
    expect((await sibyl('default', 'delivery-eta', '2', '--cells', 'cell-b')).code).toBe(0);
    expect((await sibyl('retire', 'delivery-eta', '1')).code).toBe(0);
    expect((await sibyl('version', 'delivery-eta', '1')).json).toMatchObject({ retiredAt: expect.any(String), cells: [] });
    const deployRetired = await sibyl('deploy', 'delivery-eta', '1', '--cells', 'cell-a');
    expect(deployRetired.code).toBe(1);
    expect(deployRetired.stderr).toMatch(/FAILED_PRECONDITION: .*retired/);

    const cells = (await sibyl('cells')).json.cells;
    expect(cells.map((c: any) => c.name)).toEqual(['cell-a', 'cell-b']);
    expect((await sibyl('cells', 'cell-b')).json).toMatchObject({ cell: 'cell-b', replicas: [] });

    const flags = await run(['models', '--tower', url, '--token', t.tower.adminToken], { SIBYL_TOWER_URL: 'http://127.0.0.1:9', SIBYL_TOKEN: 'wrong' });
    expect(flags.code, flags.stderr).toBe(0);
    const viewer = await t.token('viewer');
    const denied = await run(['retire', 'delivery-eta', '2', '--token', viewer]);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(/PERMISSION_DENIED/);
    const audit = (await sibyl('audit', '--limit', '3')).json.entries;
    expect(audit.slice(0, 2).map((e: any) => `${e.actor} ${e.action} ${e.target}`)).toEqual(['test token.create viewer-0', 'dev-admin version.retire delivery-eta/1']);
  });

  it('says what is wrong with the command line, a file or a directory, with exit status 1', async () => {
    const noCells = await sibyl('deploy', 'delivery-eta', '2');
    expect(noCells.code).toBe(1);
    expect(noCells.stderr).toMatch(/required option '--cells <cells>'/);
    const missing = await sibyl('upload', join(dir, 'nope.zip'));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/nope\.zip: no such file or directory/);
    const empty = mkdtempSync(join(tmpdir(), 'sibyl-cli-empty-'));
    writeFileSync(join(empty, 'model.onnx'), 'x');
    const noManifest = await sibyl('bundle', empty, '-o', join(dir, 'x.zip'));
    expect(noManifest.code).toBe(1);
    expect(noManifest.stderr).toMatch(/has no manifest \(sibyl\.yaml, sibyl\.yml, sibyl\.json\)/);
    const unknownCommand = await sibyl('depoly');
    expect(unknownCommand.code).toBe(1);
    expect(unknownCommand.stderr).toMatch(/unknown command 'depoly'/);
    const noFile = await sibyl('download', 'delivery-eta', '2');
    expect(noFile.code).toBe(1);
    expect(noFile.stderr).toMatch(/required option '-o, --output <file>'/);
  });
});
