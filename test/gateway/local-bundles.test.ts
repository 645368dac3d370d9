import { describe, expect, it } from 'vitest';
import { ALIAS, NAME, VERSION } from '../../core/names.ts';
import { readLocalModels } from '../../gateway/bundle/local-bundles.ts';
import { makeModelsDir } from '../helpers/models-dir.ts';

describe('readLocalModels: deployment.yaml', () => {
  it('reads defaults, aliases, splits and shadows spelled as the tower spells them', async () => {
    const dir = makeModelsDir({
      bundles: ['delivery-eta/1', 'delivery-eta/2'],
      deployment: { models: { 'delivery-eta': { default: '2', aliases: { stable: '1' }, split: [{ version: '1', weight: 1, arm: 'control' }], shadows: [{ version: '1' }] } } },
    });
    const { deployment } = await readLocalModels(dir);
    expect(deployment.models['delivery-eta']).toMatchObject({ default: '2', aliases: { stable: '1' }, shadows: [{ version: '1' }] });
  });

  it('refuses names, versions and aliases the tower would refuse, naming the file and each field', async () => {
    const dir = makeModelsDir({
      bundles: ['delivery-eta/1'],
      deployment: { models: { 'delivery-eta': { default: '-1', aliases: { 'not an alias': '1' }, shadows: [{ model: 'Eta' }] } } },
    });
    const err = await readLocalModels(dir).then(() => undefined, (e: Error) => e);
    expect(err?.message).toContain('deployment.yaml');
    expect(err?.message).toContain(`models.delivery-eta.default: ${VERSION.message}`);
    expect(err?.message).toContain(ALIAS.message);
    expect(err?.message).toContain(`models.delivery-eta.shadows.0.model: ${NAME.message}`);
  });
});
