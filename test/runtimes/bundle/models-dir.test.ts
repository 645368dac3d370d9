/** A models directory read as the CellState the control tower would serve for it. */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ALIAS, NAME, VERSION } from '../../../core/names.ts';
import { readModelsDir } from '../../../runtimes/bundle/models-dir.ts';
import { zipDirectory } from '../../../runtimes/bundle/zip-dir.ts';
import { makeModelsDir } from '../../helpers/models-dir.ts';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('readModelsDir', () => {
  it('reads bundles and deployment.yaml into a CellState, each version named by the hash of its deterministic zip', async () => {
    const dir = makeModelsDir({
      bundles: ['delivery-eta/1', 'delivery-eta/2', 'eta-risk/1'],
      deployment: {
        models: {
          'delivery-eta': { default: '1', aliases: { stable: '1' }, split: [{ version: '1', weight: 90 }, { version: '2', weight: 10, arm: 'canary' }], shadows: [{ version: '2' }, { model: 'eta-risk' }] },
          'not-here': { default: '1' },
        },
      },
    });
    const { state, bundles } = await readModelsDir(dir, 'c1');
    expect(state).toMatchObject({ cell: 'c1', revision: 1n });
    expect(state.models.map((m) => m.name)).toEqual(['delivery-eta', 'eta-risk']);
    const [eta, risk] = state.models;
    expect(eta).toMatchObject({
      defaultVersion: '1',
      aliases: { stable: '1' },
      split: [
        { arm: '', version: '1', weight: 90 },
        { arm: 'canary', version: '2', weight: 10 },
      ],
      shadows: [
        { model: 'delivery-eta', version: '2' },
        { model: 'eta-risk', version: '' },
      ],
    });
    const zip2 = await zipDirectory(join(dir, 'delivery-eta/2'));
    expect(eta!.versions[1]).toMatchObject({ version: '2', bundleSha256: sha(zip2), runtime: 'onnx', sizeBytes: BigInt(zip2.length) });
    expect(bundles.get(sha(zip2))).toMatchObject({ dir: join(dir, 'delivery-eta/2'), manifest: { name: 'delivery-eta', version: '2' } });
    // No deployment entry: the newest version whose manifest says default: true.
    expect(risk).toMatchObject({ defaultVersion: '1', aliases: {}, split: [], shadows: [] });
  });

  it('without a deployment entry, takes the newest flagged version, else the highest', async () => {
    const dir = makeModelsDir({ bundles: ['delivery-eta/1', 'delivery-eta/2'], copies: [{ from: 'delivery-eta/1', version: '10' }], deployment: { models: {} } });
    expect((await readModelsDir(dir, 'c')).state.models[0]).toMatchObject({ defaultVersion: '2' });
    const unflagged = makeModelsDir({ bundles: ['delivery-eta/1'], copies: [{ from: 'delivery-eta/1', version: '10' }, { from: 'delivery-eta/1', version: '9' }], deployment: { models: {} } });
    const m = (await readModelsDir(unflagged, 'c')).state.models[0]!;
    expect(m.versions.map((v) => v.version)).toEqual(['1', '9', '10']);
    expect(m.defaultVersion).toBe('10');
  });

  it('refuses a manifest that is not its directory', async () => {
    const dir = makeModelsDir({ bundles: [], copies: [{ from: 'delivery-eta/1', version: '3' }], deployment: { models: {} } });
    const manifest = join(dir, 'delivery-eta/3/sibyl.yaml');
    writeFileSync(manifest, readFileSync(manifest, 'utf8').replace(/^version: .*$/m, "version: '4'"));
    await expect(readModelsDir(dir, 'c')).rejects.toThrow(/delivery-eta\/3\/sibyl\.yaml: declares delivery-eta\/4 but lives in delivery-eta\/3/);
  });

  it('refuses names, versions and aliases the tower would refuse, naming the file and each field', async () => {
    const dir = makeModelsDir({
      bundles: ['delivery-eta/1'],
      deployment: { models: { 'delivery-eta': { default: '-1', aliases: { 'not an alias': '1' }, shadows: [{ model: 'Eta' }] } } },
    });
    const err = await readModelsDir(dir, 'c').then(() => undefined, (e: Error) => e);
    expect(err?.message).toContain('deployment.yaml');
    expect(err?.message).toContain(`models.delivery-eta.default: ${VERSION.message}`);
    expect(err?.message).toContain(ALIAS.message);
    expect(err?.message).toContain(`models.delivery-eta.shadows.0.model: ${NAME.message}`);
  });
});
