/**
 * A gateway without a control tower follows its models directory through the same follower as a tower-following
 * one: versions named by their zip's hash, warmed up before they serve, defaults and fallbacks decided by the same
 * table builder, and the directory read again on demand (SIGHUP).
 */
import { createHash } from 'node:crypto';
import { cpSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { zipDirectory } from '../../../runtimes/bundle/zip-dir.ts';
import { MODELS_DIR } from '../../helpers/expected.ts';
import { postJson, startGateway, type TestGateway } from '../../helpers/gateway.ts';
import { makeModelsDir } from '../../helpers/models-dir.ts';
import { writeRule } from '../../helpers/rule-dirs.ts';
import { predict, waitFor } from './sync-helpers.ts';

let gw: TestGateway | undefined;
afterEach(async () => {
  await gw?.stop();
  gw = undefined;
});

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('following a models directory', () => {
  it('serves each bundle under the hash the tower would give it, and writes no cached state', async () => {
    const dir = makeModelsDir({ bundles: ['delivery-eta/1', 'delivery-eta/2'], deployment: { models: { 'delivery-eta': { default: '1', aliases: { next: '2' } } } } });
    gw = await startGateway({ SIBYL_MODELS_DIR: dir, SIBYL_PREDICTION_LOG: 'off' });
    expect(gw.gateway.follower.isReady).toBe(true);
    const routes = gw.gateway.routes.current.routes();
    expect(routes.map((r) => `${r.model}/${r.version}`).sort()).toEqual(['delivery-eta/1', 'delivery-eta/2']);
    for (const r of routes) expect(r.hash).toBe(sha(await zipDirectory(join(dir, r.model, r.version))));
    expect((await predict(gw, 'delivery-eta')).version).toBe('1');
    expect((await predict(gw, 'delivery-eta', 'next')).version).toBe('2');
    expect(existsSync(join(gw.dataDir, 'cache', 'local', 'state.json'))).toBe(false);
  });

  it('warms each version up before it serves: one that fails is left out and reported, the others serve', async () => {
    const dir = makeModelsDir({ bundles: ['delivery-eta/2'], deployment: { models: {} } });
    writeRule(dir, { name: 'broken-rule', version: '1', outputs: [{ name: 'x', dtype: 'float64' }] }, 'export function predict() { throw new Error("boom"); }');
    gw = await startGateway({ SIBYL_MODELS_DIR: dir, SIBYL_PREDICTION_LOG: 'off' });
    expect(gw.gateway.routes.current.routes().map((r) => r.model)).toEqual(['delivery-eta']);
    expect(gw.gateway.follower.errors).toEqual([expect.objectContaining({ model: 'broken-rule', version: '1' })]);
    expect((await predict(gw, 'delivery-eta')).status).toBe(200);
    // Deployed but not served: UNAVAILABLE naming the warm-up error, not NOT_FOUND.
    const broken = await postJson(`${gw.http}/v1/models/broken-rule:predict`, { rows: [{}] });
    expect(broken).toMatchObject({ status: 503, json: { code: 'UNAVAILABLE', message: expect.stringContaining('model "broken-rule": its default version "1" is deployed but failed to load on this gateway: ') } });
  });

  it('reads the directory again on reload and swaps in what changed, keeping unchanged versions loaded', async () => {
    const dir = makeModelsDir({ bundles: ['delivery-eta/1'], deployment: { models: { 'delivery-eta': { default: '1' } } } });
    gw = await startGateway({ SIBYL_MODELS_DIR: dir, SIBYL_PREDICTION_LOG: 'off' });
    const v1 = gw.gateway.routes.current.resolve('delivery-eta', '1');
    expect(await gw.gateway.reloadModels()).toBe(false);

    cpSync(join(MODELS_DIR, 'delivery-eta/2'), join(dir, 'delivery-eta/2'), { recursive: true });
    writeFileSync(join(dir, 'deployment.yaml'), stringify({ models: { 'delivery-eta': { default: '2' } } }));
    expect(await gw.gateway.reloadModels()).toBe(true);
    await waitFor('version 2 to serve the default', async () => (await predict(gw!, 'delivery-eta')).version === '2');
    expect(gw.gateway.follower.revision).toBe(2n);
    expect(gw.gateway.routes.current.resolve('delivery-eta', '1')).toBe(v1);

    writeFileSync(join(dir, 'deployment.yaml'), 'models: {delivery-eta: {default: -2}}\n');
    await expect(gw.gateway.reloadModels()).rejects.toThrow(/deployment\.yaml/);
    expect((await predict(gw, 'delivery-eta')).version).toBe('2');
  });

  it('refuses to start on an invalid manifest, naming the file', async () => {
    const dir = makeModelsDir({ bundles: ['delivery-eta/1'], deployment: { models: {} } });
    writeFileSync(join(dir, 'delivery-eta/1/sibyl.yaml'), 'name: delivery-eta\nversion: "1"\n');
    await expect(startGateway({ SIBYL_MODELS_DIR: dir, SIBYL_PREDICTION_LOG: 'off' })).rejects.toThrow(/delivery-eta\/1\/sibyl\.yaml/);
  });
});
