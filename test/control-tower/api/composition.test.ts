/** Composed rules at upload: their test cases run with the composed outputs they give; unknown models and cycles are refused. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { bundleZip, makeZip } from '../../runtimes/bundle/zips.ts';
import { BLEND } from '../../helpers/rule-dirs.ts';
import { startTestTower, type TestTower } from './tower.ts';

let t: TestTower;
beforeAll(async () => {
  t = await startTestTower();
}, 60_000);
afterAll(() => t?.stop());

const zipHeaders = { 'content-type': 'application/zip' };
const ruleZip = (manifest: Record<string, unknown>, source: string) =>
  makeZip([
    { name: 'sibyl.yaml', data: stringify({ runtime: 'rules', ...manifest, rules: { file: 'rule.js', ...((manifest.rules as object | undefined) ?? {}) } }) },
    { name: 'rule.js', data: source },
  ]);
const passThrough = (name: string, version: string, composes: string) =>
  ruleZip(
    { name, version, outputs: [{ name: 'score', dtype: 'float64' }], rules: { models: [{ model: composes, as: 'inner' }] }, tests: [{ name: 'pass', features: {}, models: { inner: { score: 2 } }, expected: { score: 2 } }] },
    'export function predict(f, ctx) { return { score: ctx.models.inner.score ?? ctx.models.inner.eta_minutes }; }',
  );

describe('composed rules at upload', () => {
  it('accepts a rule whose test cases pass with the composed outputs they give, once its models exist', async () => {
    const blend = await ruleZip(BLEND.manifest, BLEND.source);
    const early = await t.call('POST', '/v1/models', { body: blend, headers: zipHeaders });
    expect(early).toMatchObject({ status: 400, json: { code: 'INVALID_ARGUMENT', message: expect.stringContaining('model "delivery-eta" does not exist') } });
    expect((await t.call('POST', '/v1/models', { body: await bundleZip('delivery-eta', '2'), headers: zipHeaders })).status).toBe(201);
    const ok = await t.call('POST', '/v1/models', { body: blend, headers: zipHeaders });
    expect(ok.status).toBe(201);

    const wrong = await ruleZip({ ...BLEND.manifest, version: '2', tests: [{ ...BLEND.manifest.tests[0], expected: { eta_minutes: 1 } }] }, BLEND.source);
    expect((await t.call('POST', '/v1/models', { body: wrong, headers: zipHeaders })).json.message).toMatch(/eta_minutes: expected 1, got 37/);
  });

  it('refuses a composition cycle, naming it', async () => {
    expect((await t.call('POST', '/v1/models', { body: await passThrough('r-one', '1', 'delivery-eta'), headers: zipHeaders })).status).toBe(201);
    expect((await t.call('POST', '/v1/models', { body: await passThrough('r-two', '1', 'r-one'), headers: zipHeaders })).status).toBe(201);
    const cycle = await t.call('POST', '/v1/models', { body: await passThrough('r-one', '2', 'r-two'), headers: zipHeaders });
    expect(cycle).toMatchObject({ status: 400, json: { code: 'INVALID_ARGUMENT', message: 'rules.models: the composition has a cycle: r-one → r-two → r-one' } });
    const self = await t.call('POST', '/v1/models', { body: await passThrough('r-three', '1', 'r-three'), headers: zipHeaders });
    expect(self.json.message).toMatch(/cycle: r-three → r-three/);
    expect((await t.call('GET', '/v1/models/r-one')).json.versions.map((v: any) => v.version)).toEqual(['1']);
  });
});
