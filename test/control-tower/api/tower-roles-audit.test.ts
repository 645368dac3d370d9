/**
 * The control tower's REST API in process on PGlite: what each role may do, the audit trail of every change (who,
 * what, when), concurrent identical uploads, bad upload options that change nothing, and the upload size cap on a
 * streamed body over a real socket.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleEntries, makeZip } from '../../runtimes/bundle/zips.ts';
import { startTestTower, type TestTower } from './tower.ts';

let t: TestTower;
beforeAll(async () => {
  t = await startTestTower();
}, 60_000);
afterAll(() => t?.stop());

const zipHeaders = { 'content-type': 'application/zip' };
/** tabular-mlp/1's files under another version (and description), `default: false`. */
const mlpAs = (version: string, description = 'x') =>
  makeZip(
    bundleEntries('tabular-mlp', '1').map((e) =>
      e.name === 'sibyl.yaml'
        ? { ...e, data: e.data.toString().replace(/^version: .*$/m, `version: '${version}'`).replace(/^description: .*$/m, `description: '${description}'`).replace(/^default: true$/m, 'default: false') }
        : e,
    ),
  );

describe('control tower roles', () => {
  it('viewer reads and reports; publisher changes models; only admin manages tokens; a revoked token is refused', async () => {
    const [viewer, publisher] = [await t.token('viewer'), await t.token('publisher')];
    const seed = await t.call('POST', '/v1/models', { token: publisher, body: await mlpAs('r1'), headers: zipHeaders });
    expect(seed.status).toBe(201);
    await t.call('POST', '/v1/models', { token: publisher, body: await mlpAs('r2'), headers: zipHeaders });

    const reads: [string, string][] = [
      ['GET', '/v1/models'],
      ['GET', '/v1/models/tabular-mlp'],
      ['GET', '/v1/models/tabular-mlp/versions/r1'],
      ['GET', '/v1/models/tabular-mlp/versions/r1/manifest'],
      ['GET', '/v1/models/tabular-mlp/versions/r1/bundle'],
      ['GET', `/v1/bundles/${seed.json.sha256}`],
      ['GET', '/v1/cells'],
      ['GET', '/v1/cells/cell-a'],
      ['GET', '/v1/cells/cell-a/state'],
      ['GET', '/v1/audit'],
    ];
    for (const [method, path] of reads) {
      expect((await t.call(method, path, { token: viewer })).status, `${method} ${path}`).toBe(200);
      expect((await t.call(method, path, { token: null })).status, `${method} ${path} without a token`).toBe(401);
    }
    const report = await t.call('POST', '/v1/cells/cell-a/reports', { token: viewer, json: { replica: 'gw-roles', revision: '1' } });
    expect(report.status).toBe(200);

    // Each write: a viewer gets 403 and nothing changes; a publisher gets through.
    const writes: { method: string; path: string; json?: unknown; body?: Buffer }[] = [
      { method: 'POST', path: '/v1/models', body: await mlpAs('r3') },
      { method: 'POST', path: '/v1/models/tabular-mlp/versions/r1:deploy', json: { cells: 'all' } },
      { method: 'PUT', path: '/v1/models/tabular-mlp/default', json: { version: 'r1' } },
      { method: 'PUT', path: '/v1/models/tabular-mlp/aliases/stable', json: { version: 'r1' } },
      { method: 'DELETE', path: '/v1/models/tabular-mlp/aliases/stable' },
      { method: 'POST', path: '/v1/models/tabular-mlp/versions/r2:deploy', json: { cells: ['cell-a'] } },
      { method: 'POST', path: '/v1/models/tabular-mlp/versions/r2:undeploy', json: { cells: ['cell-a'] } },
      { method: 'POST', path: '/v1/models/tabular-mlp/versions/r2:retire' },
    ];
    for (const w of writes) {
      const init = { ...(w.json !== undefined ? { json: w.json } : {}), ...(w.body ? { body: w.body, headers: zipHeaders } : {}) };
      const before = (await t.call('GET', '/v1/audit?limit=1')).json.entries[0].id;
      const denied = await t.call(w.method, w.path, { token: viewer, ...init });
      expect(denied.status, `viewer ${w.method} ${w.path}`).toBe(403);
      expect(denied.json).toEqual({ code: 'PERMISSION_DENIED', message: expect.stringContaining('needs the publisher role') });
      expect((await t.call('GET', '/v1/audit?limit=1')).json.entries[0].id, 'a refused call writes nothing').toBe(before);
      const allowed = await t.call(w.method, w.path, { token: publisher, ...init });
      expect([200, 201], `publisher ${w.method} ${w.path}: ${JSON.stringify(allowed.json)}`).toContain(allowed.status);
    }

    for (const token of [viewer, publisher]) {
      expect((await t.call('GET', '/v1/tokens', { token })).status).toBe(403);
      expect((await t.call('POST', '/v1/tokens', { token, json: { name: 'sneaky', role: 'admin' } })).status).toBe(403);
      expect((await t.call('DELETE', '/v1/tokens/sneaky', { token })).status).toBe(403);
    }
    const made = await t.call('POST', '/v1/tokens', { json: { name: 'ci-bot', role: 'publisher' } });
    expect(made).toMatchObject({ status: 201, json: { name: 'ci-bot', role: 'publisher', token: expect.any(String) } });
    expect((await t.call('GET', '/v1/tokens')).json.tokens.map((x: any) => x.name)).toContain('ci-bot');
    expect(JSON.stringify((await t.call('GET', '/v1/tokens')).json)).not.toContain(made.json.token);
    expect((await t.call('GET', '/v1/models', { token: made.json.token })).status).toBe(200);
    expect((await t.call('POST', '/v1/tokens', { json: { name: 'x', role: 'root' } })).json.code).toBe('INVALID_ARGUMENT');
    expect((await t.call('DELETE', '/v1/tokens/ci-bot')).status).toBe(204);
    expect((await t.call('GET', '/v1/models', { token: made.json.token })).json).toMatchObject({ code: 'UNAUTHENTICATED' });
    expect((await t.call('DELETE', '/v1/tokens/ci-bot')).status).toBe(404);
    expect((await t.call('GET', '/v1/models', { token: null, headers: { authorization: 'Basic YWRtaW46YWRtaW4=' } })).status).toBe(401);
  });
});

describe('control tower audit log', () => {
  it('records every change with who, what and when, newest first, paged with limit and before', async () => {
    const publisher = await t.token('publisher');
    const started = Date.now() - 1000;
    const calls: [string, string, unknown?][] = [
      ['PUT', '/v1/models/tabular-mlp/aliases/audit', { version: 'a1', cells: ['cell-b'] }],
      ['DELETE', '/v1/models/tabular-mlp/aliases/audit'],
      ['POST', '/v1/models/tabular-mlp/versions/a1:deploy', { cells: ['cell-a'] }],
      ['PUT', '/v1/models/tabular-mlp/default', { version: 'a1', cells: ['cell-a'] }],
      ['PUT', '/v1/models/tabular-mlp/default', { version: 'r1', cells: ['cell-a'] }],
      ['POST', '/v1/models/tabular-mlp/versions/a1:undeploy', { cells: 'all' }],
      ['POST', '/v1/models/tabular-mlp/versions/a1:retire'],
    ];
    expect((await t.call('POST', '/v1/models?cells=cell-b', { token: publisher, body: await mlpAs('a1'), headers: zipHeaders })).status).toBe(201);
    for (const [method, path, json] of calls) {
      const res = await t.call(method, path, { token: publisher, ...(json !== undefined ? { json } : {}) });
      expect(res.status, `${method} ${path}: ${JSON.stringify(res.json)}`).toBe(200);
    }
    const entries = (await t.call('GET', '/v1/audit?limit=9')).json.entries as any[];
    expect(entries.map((e) => `${e.action} ${e.target}`).reverse()).toEqual([
      'version.add tabular-mlp/a1',
      'deploy tabular-mlp/a1',
      'alias.set tabular-mlp/a1',
      'alias.delete tabular-mlp',
      'deploy tabular-mlp/a1',
      'default.set tabular-mlp/a1',
      'default.set tabular-mlp/r1',
      'undeploy tabular-mlp/a1',
      'version.retire tabular-mlp/a1',
    ]);
    for (const e of entries) {
      expect(e.actor).toMatch(/^publisher-/);
      expect(Date.parse(e.time)).toBeGreaterThanOrEqual(started);
      expect(Date.parse(e.time)).toBeLessThanOrEqual(Date.now() + 1000);
    }
    expect(entries.map((e) => e.id)).toEqual([...entries.map((e) => e.id)].sort((a, b) => b - a));
    const page = (await t.call(`GET`, `/v1/audit?limit=3&before=${entries[5].id}`)).json.entries;
    expect(page.map((e: any) => e.id)).toEqual(entries.slice(6, 9).map((e) => e.id));
    // Filtered by the tower: by model (its versions too), actor and action.
    const filtered = async (q: string) => ((await t.call('GET', `/v1/audit?limit=1000&${q}`)).json.entries as any[]).map((e) => `${e.action} ${e.target}`);
    expect(await filtered('model=tabular-mlp&action=default.set')).toEqual(['default.set tabular-mlp/r1', 'default.set tabular-mlp/a1']);
    expect((await filtered('model=tabular-mlp&actor=' + entries[0].actor)).slice(0, 9)).toEqual(entries.map((e) => `${e.action} ${e.target}`));
    expect(await filtered('model=tabular&action=deploy')).toEqual([]);
    expect(await filtered('actor=nobody')).toEqual([]);
    expect((await t.call('GET', '/v1/audit?limit=abc')).json.code).toBe('INVALID_ARGUMENT');
    expect((await t.call('GET', '/v1/audit?limit=0')).json.code).toBe('INVALID_ARGUMENT');
    // A call that changes nothing writes nothing.
    const last = entries[0].id;
    await t.call('POST', '/v1/models/tabular-mlp/versions/r1:deploy', { token: publisher, json: { cells: 'all' } });
    expect((await t.call('GET', '/v1/audit?limit=1')).json.entries[0].id).toBe(last);
  });
});

describe('control tower uploads', () => {
  it('of concurrent uploads of the same bytes exactly one creates the version; the others get the same answer with 200', async () => {
    const zip = await mlpAs('c1');
    const results = await Promise.all([1, 2, 3].map(() => t.call('POST', '/v1/models', { body: zip, headers: zipHeaders })));
    expect(results.map((r) => r.status).sort()).toEqual([200, 200, 201]);
    expect(new Set(results.map((r) => r.json.sha256)).size).toBe(1);
    expect(results.every((r) => r.json.name === 'tabular-mlp' && r.json.version === 'c1')).toBe(true);
    const adds = (await t.call('GET', '/v1/audit?limit=20')).json.entries.filter((e: any) => e.action === 'version.add' && e.target === 'tabular-mlp/c1');
    expect(adds).toHaveLength(1);
  });

  it('the loser of a race with other bytes leaves nothing in the bundle store', async () => {
    const files = t.bundleFiles().length;
    const results = await Promise.all(['one', 'two'].map(async (d) => t.call('POST', '/v1/models', { body: await mlpAs('c2', d), headers: zipHeaders })));
    expect(results.map((r) => r.status).sort()).toEqual([201, 409]);
    expect(t.bundleFiles().length).toBe(files + 1);
  });

  it('refuses unknown or empty cells and a malformed default flag before anything is stored', async () => {
    const before = { files: t.bundleFiles().length, versions: (await t.call('GET', '/v1/models/tabular-mlp')).json.versions.length };
    const zip = await mlpAs('bad-options');
    expect((await t.call('POST', '/v1/models?cells=cell-a,nowhere', { body: zip, headers: zipHeaders })).json).toEqual({ code: 'NOT_FOUND', message: 'unknown cell: nowhere' });
    expect((await t.call('POST', '/v1/models?cells=,', { body: zip, headers: zipHeaders })).json.code).toBe('INVALID_ARGUMENT');
    expect((await t.call('POST', '/v1/models?default=yes', { body: zip, headers: zipHeaders })).json).toEqual({ code: 'INVALID_ARGUMENT', message: 'default: "true" or "false", got "yes"' });
    const form = new FormData();
    form.set('file', new Blob([zip]), 'b.zip');
    expect((await t.call('POST', '/v1/models', { body: form })).json).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('"bundle"') });
    expect(t.bundleFiles().length).toBe(before.files);
    expect((await t.call('GET', '/v1/models/tabular-mlp')).json.versions.length).toBe(before.versions);
  });

  it('caps a streamed upload without Content-Length while reading it (400, nothing stored)', async () => {
    const small = await startTestTower({ SIBYL_MAX_UPLOAD_BYTES: '65536' });
    try {
      const { port } = await small.tower.start();
      let sent = 0;
      const chunk = new Uint8Array(16 * 1024);
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          // 64 MiB at most, far past the limit: the server must answer without reading it all.
          if (sent >= 64 * 1024 * 1024) return controller.close();
          sent += chunk.byteLength;
          controller.enqueue(chunk);
        },
      });
      const res = await fetch(`http://127.0.0.1:${port}/v1/models`, {
        method: 'POST',
        headers: { authorization: `Bearer ${small.tower.adminToken}`, 'content-type': 'application/zip' },
        body,
        duplex: 'half',
      } as RequestInit);
      expect(res.status).toBe(400);
      expect(await res.json()).toEqual({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('limit of 65536 bytes') });
      expect(sent).toBeLessThan(64 * 1024 * 1024);
      expect(small.bundleFiles()).toEqual([]);
      expect(await small.tower.store.listModels()).toEqual([]);
    } finally {
      await small.stop();
    }
  });
});
