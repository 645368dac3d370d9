/**
 * The control tower's REST API in process (app.request) on PGlite: upload (raw and multipart), immutability and
 * safe retries, concurrent uploads, rejections that store nothing, roles, deployments, long-poll, reports, audit.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { NAME } from '../../../core/names.ts';
import { bundleEntries, bundleZip, hostileCorpus, makeZip, withManifest } from '../../runtimes/bundle/zips.ts';
import { startTestTower, type TestTower } from './tower.ts';

let t: TestTower;
beforeAll(async () => {
  t = await startTestTower();
}, 60_000);
afterAll(() => t?.stop());

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const zipHeaders = { 'content-type': 'application/zip' };
/** delivery-eta/2's files with the manifest's version (and optionally description) rewritten, `default: false`. */
const etaAs = (version: string, description = '') =>
  makeZip(
    bundleEntries('delivery-eta', '2').map((e) =>
      e.name === 'sibyl.yaml' ? { ...e, data: e.data.toString().replace(/^version: .*$/m, `version: '${version}'`).replace(/^description: .*$/m, `description: '${description || 'x'}'`).replace(/^default: true$/m, 'default: false') } : e,
    ),
  );

describe('control tower API', () => {
  it('needs a bearer token, and the right role for each call', async () => {
    expect((await t.call('GET', '/v1/models', { token: null })).json).toMatchObject({ code: 'UNAUTHENTICATED' });
    expect((await t.call('GET', '/v1/models', { token: 'nope-not-a-token' })).status).toBe(401);
    const viewer = await t.token('viewer');
    expect((await t.call('GET', '/v1/models', { token: viewer })).status).toBe(200);
    const denied = await t.call('POST', '/v1/models', { token: viewer, body: await bundleZip('tabular-mlp', '1'), headers: zipHeaders });
    expect(denied).toMatchObject({ status: 403, json: { code: 'PERMISSION_DENIED' } });
    expect((await t.call('GET', '/v1/tokens', { token: await t.token('publisher') })).status).toBe(403);
    expect((await t.call('GET', '/v1/tokens')).status).toBe(200);
    expect((await t.call('GET', '/healthz', { token: null })).status).toBe(200);
  });

  it('uploads a zip as the body: 201 with the content hash; the same bytes again 200; other bytes 409 and nothing stored', async () => {
    const publisher = await t.token('publisher');
    const zip = await bundleZip('tabular-mlp', '1');
    const first = await t.call('POST', '/v1/models', { token: publisher, body: zip, headers: zipHeaders });
    expect(first.status).toBe(201);
    expect(first.json).toMatchObject({ name: 'tabular-mlp', version: '1', sha256: sha(zip), sizeBytes: zip.byteLength, runtime: 'onnx', created: true, createdBy: expect.stringMatching(/^publisher/) });
    const again = await t.call('POST', '/v1/models', { token: publisher, body: zip, headers: zipHeaders });
    expect(again.status).toBe(200);
    expect(again.json).toMatchObject({ sha256: sha(zip), created: false });

    const other = await makeZip(bundleEntries('tabular-mlp', '1').map((e) => (e.name === 'sibyl.yaml' ? { ...e, data: e.data.toString().replace(/^description: .*$/m, "description: 'changed'") } : e)));
    const clash = await t.call('POST', '/v1/models', { token: publisher, body: other, headers: zipHeaders });
    expect(clash).toMatchObject({ status: 409, json: { code: 'ALREADY_EXISTS', message: expect.stringContaining('immutable') } });
    expect(await t.tower.artifacts.has(sha(other))).toBe(false);
    const downloaded = await t.call('GET', '/v1/models/tabular-mlp/versions/1/bundle');
    expect(Buffer.from(await downloaded.res.arrayBuffer()).equals(zip)).toBe(true);
    expect((await t.call('GET', '/v1/models/tabular-mlp/versions/1/manifest')).json).toMatchObject({ name: 'tabular-mlp', version: '1', runtime: 'onnx' });
  });

  it('a manifest that says default: true becomes the default where the model is deployed, or everywhere for a new model', async () => {
    const res = await t.call('POST', '/v1/models', { body: await bundleZip('eta-risk', '1'), headers: zipHeaders });
    expect(res.json.changed.map((c: any) => c.cell)).toEqual(['cell-a', 'cell-b']);
    const model = (await t.call('GET', '/v1/models/eta-risk')).json;
    expect(model.cells.map((c: any) => [c.cell, c.defaultVersion])).toEqual([['cell-a', '1'], ['cell-b', '1']]);
  });

  it('uploads as a multipart field with cells and default: deployed and the default where asked', async () => {
    const form = new FormData();
    form.set('bundle', new Blob([await etaAs('10')]), 'eta.zip');
    form.set('cells', 'cell-a');
    form.set('default', 'true');
    const res = await t.call('POST', '/v1/models', { body: form });
    expect(res.status).toBe(201);
    expect(res.json.changed).toEqual([{ cell: 'cell-a', revision: expect.any(Number) }]);
    const model = (await t.call('GET', '/v1/models/delivery-eta')).json;
    expect(model.cells).toEqual([expect.objectContaining({ cell: 'cell-a', versions: ['10'], defaultVersion: '10' })]);
  });

  it('of two concurrent uploads of one version with different bytes, exactly one wins', async () => {
    const [a, b] = await Promise.all([etaAs('20', 'first'), etaAs('20', 'second')]);
    const results = await Promise.all([a, b].map((zip) => t.call('POST', '/v1/models', { body: zip, headers: zipHeaders })));
    expect(results.map((r) => r.status).sort()).toEqual([201, 409]);
    const stored = (await t.call('GET', '/v1/models/delivery-eta/versions/20')).json.sha256;
    expect([sha(a), sha(b)]).toContain(stored);
  });

  it('rejects hostile and broken bundles with their own message, storing nothing', async () => {
    const before = { models: (await t.call('GET', '/v1/models')).json.models.length, files: t.bundleFiles().length };
    const garbageOnnx = await makeZip(bundleEntries('eta-risk', '1').map((e) => (e.name === 'model.onnx' ? { ...e, data: Buffer.from('not onnx at all') } : e)));
    const failingCase = await makeZip(bundleEntries('eta-risk', '1').map((e) => (e.name === 'sibyl.yaml' ? { ...e, data: e.data.toString().replace('is_late: 1', 'is_late: 0') } : e)));
    const cases = [
      ...(await hostileCorpus()).filter((c) => !c.limits).map((c) => ({ name: c.name, zip: c.zip, message: c.message })),
      { name: 'garbage ONNX', zip: garbageOnnx, message: /model does not load/ },
      { name: 'failing test case', zip: failingCase, message: /test case "expected row 0":\n {2}- is_late: expected 0, got 1/ },
    ];
    for (const c of cases) {
      const res = await t.call('POST', '/v1/models', { body: c.zip, headers: zipHeaders });
      expect(res.status, c.name).toBe(400);
      expect(res.json.code, c.name).toBe('INVALID_ARGUMENT');
      expect(res.json.message, c.name).toMatch(c.message);
    }
    expect((await t.call('GET', '/v1/models')).json.models.length).toBe(before.models);
    expect(t.bundleFiles().length).toBe(before.files);
    expect((await t.call('POST', '/v1/models', { body: new Uint8Array(0), headers: zipHeaders })).json.code).toBe('INVALID_ARGUMENT');
  }, 120_000); // about 15 zips, each validated in its own process: slow on a busy machine

  it('refuses a bundle that cannot show what it serves: no test case, an output no case expects, a lookalike name', async () => {
    const before = { models: (await t.call('GET', '/v1/models')).json.models.length, files: t.bundleFiles().length };
    const noCases = await makeZip(withManifest('eta-risk', '1', (m) => m.replace(/^tests:[\s\S]*$/m, 'tests: []\n')));
    const noProbabilities = await makeZip(withManifest('eta-risk', '1', (m) => m.replace(/^ {4}probabilities: .*\n/gm, '')));
    // A rule that warm-up would fail on its defaults (the hostile author's bundle): refused before it loads.
    const rule = { name: 'eta-floor', version: '1', runtime: 'rules', features: [{ name: 'x', dtype: 'float64', source: 'request', default: 0 }], outputs: [{ name: 'y', dtype: 'float64' }], rules: { file: 'rule.js' } };
    const ruleWithoutCases = await makeZip([
      { name: 'sibyl.yaml', data: stringify(rule) },
      { name: 'rule.js', data: 'export function predict(f) { if (f.x === 0) throw new Error("no"); return { y: f.x }; }' },
    ]);
    const trailingDot = await makeZip(withManifest('eta-risk', '1', (m) => m.replace(/^name: eta-risk$/m, 'name: eta-risk.')));
    const cases = [
      {
        name: 'tests: []',
        zip: noCases,
        message:
          'invalid manifest: tests: at least one test case is required, expecting each of its outputs "is_late", "probabilities": the upload gate runs them, and gateways warm up with the first',
      },
      { name: 'an output without a case', zip: noProbabilities, message: `invalid manifest: tests: no test case expects output "probabilities": name every declared output in some case's expected` },
      { name: 'a rule without tests', zip: ruleWithoutCases, message: 'invalid manifest: tests: at least one test case is required, expecting its output "y": the upload gate runs them, and gateways warm up with the first' },
      { name: 'a trailing dot', zip: trailingDot, message: `invalid manifest: name: ${NAME.message}` },
    ];
    for (const c of cases) {
      const res = await t.call('POST', '/v1/models?cells=cell-a', { body: c.zip, headers: zipHeaders });
      expect(res, c.name).toMatchObject({ status: 400, json: { code: 'INVALID_ARGUMENT', message: c.message } });
    }
    expect((await t.call('GET', '/v1/models')).json.models.length).toBe(before.models);
    expect(t.bundleFiles().length).toBe(before.files);
  }, 60_000);

  it('rejects an upload over the size limit before validating it', async () => {
    const small = await startTestTower({ SIBYL_MAX_UPLOAD_BYTES: '1000' });
    try {
      const res = await small.call('POST', '/v1/models', { body: await bundleZip('tabular-mlp', '1'), headers: zipHeaders });
      expect(res).toMatchObject({ status: 400, json: { code: 'INVALID_ARGUMENT', message: expect.stringContaining('limit of 1000 bytes') } });
    } finally {
      await small.stop();
    }
  });

  it('deploys, sets the default and aliases, undeploys and retires, each in the audit log', async () => {
    await t.call('POST', '/v1/models', { body: await etaAs('30'), headers: zipHeaders });
    expect((await t.call('POST', '/v1/models/delivery-eta/versions/30:deploy', { json: { cells: 'all' } })).status).toBe(200);
    expect((await t.call('PUT', '/v1/models/delivery-eta/default', { json: { version: '30', cells: ['cell-a'] } })).status).toBe(200);
    expect((await t.call('PUT', '/v1/models/delivery-eta/aliases/stable', { json: { version: '30' } })).status).toBe(200);
    let model = (await t.call('GET', '/v1/models/delivery-eta')).json;
    expect(model.cells.find((c: any) => c.cell === 'cell-a')).toMatchObject({ defaultVersion: '30', aliases: { stable: '30' } });
    expect(model.cells.find((c: any) => c.cell === 'cell-b')).toMatchObject({ defaultVersion: '30', aliases: { stable: '30' } });
    expect((await t.call('POST', '/v1/models/delivery-eta/versions/30:undeploy', { json: { cells: ['cell-a'] } })).json).toMatchObject({ code: 'FAILED_PRECONDITION' });
    expect((await t.call('PUT', '/v1/models/delivery-eta/default', { json: { version: '10', cells: ['cell-a'] } })).status).toBe(200);
    expect((await t.call('POST', '/v1/models/delivery-eta/versions/30:retire')).json).toMatchObject({ code: 'FAILED_PRECONDITION' });
    expect((await t.call('DELETE', '/v1/models/delivery-eta/aliases/stable')).status).toBe(200);
    expect((await t.call('POST', '/v1/models/delivery-eta/versions/30:undeploy', { json: { cells: ['cell-a'] } })).status).toBe(200);
    expect((await t.call('POST', '/v1/models/delivery-eta/versions/30:deploy', { json: {} })).json.code).toBe('INVALID_ARGUMENT');
    expect((await t.call('POST', '/v1/models/delivery-eta/versions/99:deploy', { json: { cells: 'all' } })).json.code).toBe('NOT_FOUND');
    model = (await t.call('GET', '/v1/models/delivery-eta')).json;
    expect(model.cells.find((c: any) => c.cell === 'cell-a').versions).not.toContain('30');
    const actions = (await t.call('GET', '/v1/audit?limit=20')).json.entries.map((e: any) => `${e.action} ${e.target}`);
    expect(actions, JSON.stringify(actions)).toEqual(expect.arrayContaining(['version.add delivery-eta/30', 'deploy delivery-eta/30', 'default.set delivery-eta/30', 'alias.set delivery-eta/30', 'alias.delete delivery-eta', 'undeploy delivery-eta/30']));
  });

  it('sets a traffic split and shadows through the API, into the cell state', async () => {
    await t.call('POST', '/v1/models', { body: await etaAs('40'), headers: zipHeaders });
    const split = await t.call('PUT', '/v1/models/delivery-eta/split', { json: { arms: [{ version: '30', weight: 90 }, { version: '40', weight: 10, arm: 'canary' }], cells: ['cell-b'] } });
    expect(split.status).toBe(200);
    const shadows = await t.call('PUT', '/v1/models/delivery-eta/shadows', { json: { shadows: [{ version: '20' }], cells: ['cell-b'] } });
    expect(shadows.status).toBe(200);
    const state = (await t.call('GET', '/v1/cells/cell-b/state')).json;
    const eta = state.models.find((m: any) => m.name === 'delivery-eta');
    expect(eta.split).toEqual([{ arm: '30', version: '30', weight: 90 }, { arm: 'canary', version: '40', weight: 10 }]);
    expect(eta.shadows).toEqual([{ model: 'delivery-eta', version: '20' }]);
    expect((await t.call('PUT', '/v1/models/delivery-eta/split', { json: { arms: [{ version: '30', weight: -1 }] } })).json.code).toBe('INVALID_ARGUMENT');
  });

  it('long-polls a cell state: answers at once when behind, wakes on a change, and returns the same revision when the wait ends', async () => {
    const now = (await t.call('GET', '/v1/cells/cell-a/state')).json;
    const rev = Number(now.revision);
    const timedOut = Date.now();
    const same = await t.call('GET', `/v1/cells/cell-a/state?after=${rev}&wait_ms=300`);
    expect(Date.now() - timedOut).toBeGreaterThanOrEqual(250);
    expect(Number(same.json.revision)).toBe(rev);
    const started = Date.now();
    const waiting = t.call('GET', `/v1/cells/cell-a/state?after=${rev}&wait_ms=10000`);
    await new Promise((r) => setTimeout(r, 100));
    await t.call('POST', '/v1/models/delivery-eta/versions/40:deploy', { json: { cells: ['cell-a'] } });
    const woke = await waiting;
    expect(Number(woke.json.revision)).toBeGreaterThan(rev);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(woke.json.models.find((m: any) => m.name === 'delivery-eta').versions.map((v: any) => v.version)).toContain('40');
    expect((await t.call('GET', '/v1/cells/nope/state')).status).toBe(404);
    // A gateway ahead of the tower (its cache outlived a database reset) is answered at once with the current state.
    const ahead = Date.now();
    const current = await t.call('GET', `/v1/cells/cell-a/state?after=${Number(woke.json.revision) + 100}&wait_ms=5000`);
    expect(Date.now() - ahead).toBeLessThan(2000);
    expect(current.json.revision).toBe(woke.json.revision);
  });

  it('shows per cell what each replica reports against the desired state, with load errors', async () => {
    const state = (await t.call('GET', '/v1/cells/cell-a/state')).json;
    const loaded = state.models.flatMap((m: any) => m.versions.map((v: any) => ({ model: m.name, version: v.version, bundleSha256: v.bundleSha256 })));
    const viewer = await t.token('viewer');
    const ok = await t.call('POST', '/v1/cells/cell-a/reports', { token: viewer, json: { cell: 'cell-a', replica: 'gw-1', revision: state.revision, loaded } });
    expect(ok.status).toBe(200);
    await t.call('POST', '/v1/cells/cell-a/reports', { token: viewer, json: { cell: 'cell-a', replica: 'gw-2', revision: '1', loaded: loaded.slice(1), errors: [{ model: loaded[0].model, version: loaded[0].version, message: 'load failed: boom' }] } });
    const cell = (await t.call('GET', '/v1/cells/cell-a')).json;
    expect(cell.replicas.map((r: any) => [r.replica, r.inSync, r.missing.length, r.errors.length])).toEqual([
      ['gw-1', true, 0, 0],
      ['gw-2', false, 1, 1],
    ]);
    // Each replica's load errors, with the version and the message it reported.
    expect(cell.replicas[1].errors).toEqual([{ model: loaded[0].model, version: loaded[0].version, message: 'load failed: boom' }]);
    expect(cell.replicas[1].missing).toEqual([`${loaded[0].model}/${loaded[0].version}`]);
    expect((await t.call('POST', '/v1/cells/cell-a/reports', { json: { replica: '', revision: 'x' } })).json.code).toBe('INVALID_ARGUMENT');
  });

  it('serves bundles by hash to gateways', async () => {
    const v = (await t.call('GET', '/v1/models/tabular-mlp/versions/1')).json;
    const res = await t.call('GET', `/v1/bundles/${v.sha256}`, { token: await t.token('viewer') });
    expect(res.status).toBe(200);
    expect(sha(Buffer.from(await res.res.arrayBuffer()))).toBe(v.sha256);
    expect((await t.call('GET', `/v1/bundles/${'0'.repeat(64)}`)).status).toBe(404);
    expect((await t.call('GET', '/v1/bundles/not-a-hash')).status).toBe(400);
  });
});
