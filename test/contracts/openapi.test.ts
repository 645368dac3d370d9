/**
 * The OpenAPI documents the gateway and the control tower serve at GET /openapi.json: every route the apps
 * register is documented (and nothing else), and real answers of every documented operation, errors included,
 * validate against the schema the document gives for their status and media type (ajv, JSON Schema 2020-12, the
 * dialect of OpenAPI 3.1). The requests sent validate against the documented request bodies too.
 */
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import type { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { zipDirectory } from '../../runtimes/bundle/zip-dir.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { startTestTower, type TestTower } from '../control-tower/api/tower.ts';

type Doc = { openapi: string; paths: Record<string, Record<string, any>>; components: { schemas: Record<string, unknown> } };

/** Validates answers and request bodies against one document. */
function checker(doc: Doc) {
  const ajv = new Ajv2020({ allErrors: true, strict: false, validateFormats: false });
  const compiled = new Map<string, ValidateFunction>();
  const validatorFor = (key: string, schema: object): ValidateFunction => {
    let v = compiled.get(key);
    // Refs are `#/components/schemas/...`: the components travel with each schema so they resolve.
    if (!v) compiled.set(key, (v = ajv.compile({ ...schema, components: doc.components })));
    return v;
  };
  const seen = new Set<string>();
  const operation = (method: string, path: string) => {
    const op = doc.paths[path]?.[method.toLowerCase()];
    if (!op) throw new Error(`${method} ${path} is not in the document`);
    return op;
  };
  return {
    seen,
    /** Checks `res` (status, content type, JSON body) against the documented operation; returns the parsed body. */
    async answer(method: string, path: string, res: Response): Promise<any> {
      const op = operation(method, path);
      const spec = op.responses[String(res.status)] ?? op.responses[`${String(res.status)[0]}XX`] ?? op.responses.default;
      expect(spec, `${method} ${path}: status ${res.status} is not documented`).toBeDefined();
      seen.add(`${method} ${path} ${res.status}`);
      const type = (res.headers.get('content-type') ?? '').split(';')[0]!.trim();
      if (!spec.content) {
        expect(await res.text(), `${method} ${path} ${res.status}: documented without a body`).toBe('');
        return undefined;
      }
      const media = spec.content[type];
      expect(media, `${method} ${path} ${res.status}: content type ${type} not documented (${Object.keys(spec.content).join(', ')})`).toBeDefined();
      if (type !== 'application/json') return res.arrayBuffer();
      const body = await res.json();
      const validate = validatorFor(`${method} ${path} ${res.status} ${type}`, media.schema);
      expect(validate(body) ? [] : validate.errors, `${method} ${path} ${res.status}: ${JSON.stringify(body).slice(0, 300)}`).toEqual([]);
      return body;
    },
    /** Checks a JSON request body against the documented one. */
    request(method: string, path: string, body: unknown): void {
      const media = operation(method, path).requestBody?.content?.['application/json'];
      expect(media, `${method} ${path} takes no JSON body`).toBeDefined();
      const validate = validatorFor(`${method} ${path} request`, media.schema);
      expect(validate(body) ? [] : validate.errors, `${method} ${path} request`).toEqual([]);
    },
  };
}

/**
 * Every (method, route) the Hono app registers is a documented operation and every operation is registered. Not
 * counted: middleware and catch-alls (`ALL`), and the 405 answers of POST-only paths (registered for GET, PUT,
 * PATCH and DELETE: the only routes with PATCH).
 */
function expectRoutesDocumented(app: Hono<any>, doc: Doc): void {
  const ops = Object.entries(doc.paths).flatMap(([path, item]) => Object.keys(item).map((m) => ({ method: m.toUpperCase(), path })));
  const routes = app.routes.filter((r) => r.method !== 'ALL');
  const refusing = new Set(routes.filter((r) => r.method === 'PATCH').map((r) => r.path));
  const served = routes.filter((r) => r.method === 'POST' || !refusing.has(r.path));
  // A Hono `:param` matches a segment or the part before a `:verb` suffix; a documented `{param}` is such a part.
  const matches = (route: string, path: string) => new RegExp(`^${route.replace(/:[A-Za-z_]+/g, '[^/]+')}$`).test(path);
  for (const r of served) {
    expect(ops.some((o) => o.method === r.method && matches(r.path, o.path)), `${r.method} ${r.path} is served but not documented`).toBe(true);
  }
  for (const o of ops) {
    expect(served.some((r) => r.method === o.method && matches(r.path, o.path)), `${o.method} ${o.path} is documented but not served`).toBe(true);
  }
}

describe('the gateway OpenAPI document', () => {
  let gw: TestGateway;
  let doc: Doc;
  let check: ReturnType<typeof checker>;
  beforeAll(async () => {
    gw = await startGateway();
    const res = await fetch(`${gw.http}/openapi.json`);
    expect(res.status).toBe(200);
    doc = (await res.json()) as Doc;
    check = checker(doc);
  }, 60_000);
  afterAll(async () => gw?.stop());

  it('is OpenAPI 3.1 and documents every route of the app', () => {
    expect(doc.openapi).toMatch(/^3\.1\./);
    expectRoutesDocumented(gw.gateway.app, doc);
  });

  it("validates real answers of every operation, errors included, and the requests' bodies", async () => {
    const call = async (method: string, docPath: string, url: string, body?: unknown, headers: Record<string, string> = {}) => {
      if (body !== undefined && typeof body === 'object') check.request(method, docPath, body);
      const init: RequestInit = { method, headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers } };
      if (body !== undefined) init.body = typeof body === 'string' ? body : JSON.stringify(body);
      return check.answer(method, docPath, await fetch(`${gw.http}${url}`, init));
    };
    const row = {
      entities: { restaurant: 'r320', zone: 'z55', customer: 'c187' },
      features: { distance_km: 0.67, hour_of_day: 8, day_of_week: 3, basket_size: 4, basket_value: 33.47, is_raining: 0, is_weekend: 0 },
    };
    const ok = await call('POST', '/v1/models/{model}:predict', '/v1/models/delivery-eta:predict', { rows: [row], routingKey: 'c187' });
    expect(ok.results).toHaveLength(1);
    expect((await call('POST', '/v1/models/{model}/versions/{version}:predict', '/v1/models/delivery-eta/versions/stable:predict', { rows: [row] })).version).toBe('1');
    expect((await call('POST', '/v1/models/{model}:predict', '/v1/models/nope:predict', { rows: [row] })).code).toBe('NOT_FOUND');
    expect((await call('POST', '/v1/models/{model}:predict', '/v1/models/delivery-eta:predict', '{"rows": 3}')).code).toBe('INVALID_ARGUMENT');
    expect(await call('GET', '/v1/shadows', '/v1/shadows')).toHaveProperty('pairs');

    for (const [path, key] of [['/healthz', 'live'], ['/readyz', 'ready'], ['/v2/health/live', 'live'], ['/v2/health/ready', 'ready']] as const) {
      expect((await call('GET', path, path))[key]).toBe(true);
    }
    await call('GET', '/metrics', '/metrics');
    await call('GET', '/openapi.json', '/openapi.json');
    expect((await call('GET', '/v2', '/v2')).extensions).toContain('binary_tensor_data');
    expect((await call('GET', '/v2/models/{model}', '/v2/models/delivery-eta')).inputs.length).toBeGreaterThan(0);
    expect((await call('GET', '/v2/models/{model}/versions/{version}', '/v2/models/tabular-mlp/versions/1')).name).toBe('tabular-mlp');
    expect((await call('GET', '/v2/models/{model}', '/v2/models/nope')).code).toBe('NOT_FOUND');
    expect((await call('GET', '/v2/models/{model}/ready', '/v2/models/tabular-mlp/ready')).ready).toBe(true);
    expect((await call('GET', '/v2/models/{model}/versions/{version}/ready', '/v2/models/tabular-mlp/versions/1/ready')).ready).toBe(true);
    const tensor = { name: 'input', datatype: 'FP32', shape: [1, 6], data: [33.47, 0.67, 8, 0, 4, 68.2] };
    const inferred = await call('POST', '/v2/models/{model}/infer', '/v2/models/tabular-mlp/infer', { id: 'r1', inputs: [tensor] });
    expect(inferred.outputs.length).toBeGreaterThan(0);
    await call('POST', '/v2/models/{model}/versions/{version}/infer', '/v2/models/tabular-mlp/versions/1/infer', { inputs: [{ ...tensor, data: [tensor.data] }] });
    const bad = await call('POST', '/v2/models/{model}/infer', '/v2/models/tabular-mlp/infer', '{"inputs": [{"name": "input", "datatype": "FP32", "shape": [-1]}]}');
    expect(bad).toMatchObject({ code: 'INVALID_ARGUMENT', error: expect.stringMatching(/^inputs\[0\]\.shape/) });
    // Binary tensor data out: the octet-stream answer.
    await call('POST', '/v2/models/{model}/infer', '/v2/models/tabular-mlp/infer', { inputs: [tensor], parameters: { binary_data_output: true } });
    expect([...check.seen].filter((s) => s.startsWith('POST')).length).toBeGreaterThanOrEqual(6);
  });
});

describe('the control tower OpenAPI document', () => {
  let tt: TestTower;
  let doc: Doc;
  let check: ReturnType<typeof checker>;
  beforeAll(async () => {
    tt = await startTestTower();
    const res = await tt.call('GET', '/openapi.json', { token: null });
    expect(res.status).toBe(200);
    doc = res.json as Doc;
    check = checker(doc);
  }, 60_000);
  afterAll(async () => tt?.stop());

  it('is OpenAPI 3.1 and documents every route of the app', () => {
    expect(doc.openapi).toMatch(/^3\.1\./);
    expectRoutesDocumented(tt.tower.app, doc);
  });

  it("validates real answers of every operation, errors included, and the requests' bodies", async () => {
    const call = async (method: string, docPath: string, url: string, init: { json?: unknown; body?: RequestInit['body']; token?: string | null; headers?: Record<string, string> } = {}) => {
      if (init.json !== undefined) check.request(method, docPath, init.json);
      const { res } = await tt.call(method, url, init);
      return check.answer(method, docPath, res);
    };
    const zip = await zipDirectory('models/tabular-mlp/1');
    const uploaded = await call('POST', '/v1/models', '/v1/models?cells=cell-a', { body: zip, headers: { 'content-type': 'application/zip' } });
    expect(uploaded).toMatchObject({ name: 'tabular-mlp', version: '1', created: true });
    expect((await call('POST', '/v1/models', '/v1/models', { body: zip, headers: { 'content-type': 'application/zip' } })).created).toBe(false);
    const eta = await zipDirectory('models/delivery-eta/1');
    await call('POST', '/v1/models', '/v1/models?cells=cell-a&default=true', { body: eta, headers: { 'content-type': 'application/zip' } });
    const eta2 = await zipDirectory('models/delivery-eta/2');
    await call('POST', '/v1/models', '/v1/models?cells=cell-a', { body: eta2, headers: { 'content-type': 'application/zip' } });

    expect((await call('GET', '/v1/models', '/v1/models')).models).toHaveLength(2);
    // Version 2's manifest says default: true.
    expect((await call('GET', '/v1/models/{name}', '/v1/models/delivery-eta')).cells[0].defaultVersion).toBe('2');
    await call('GET', '/v1/models/{name}/versions/{version}', '/v1/models/delivery-eta/versions/2');
    await call('GET', '/v1/models/{name}/versions/{version}/manifest', '/v1/models/delivery-eta/versions/2/manifest');
    await call('GET', '/v1/models/{name}/versions/{version}/bundle', '/v1/models/delivery-eta/versions/2/bundle');
    const verdict = await call('POST', '/v1/validations', '/v1/validations', { body: eta2, headers: { 'content-type': 'application/zip' } });
    expect([verdict.ok, verdict.checks.at(-1)]).toEqual([true, { name: 'version is new', ok: true }]);
    expect(await call('GET', '/v1/whoami', '/v1/whoami')).toEqual({ name: 'dev-admin', role: 'admin' });
    await call('PUT', '/v1/models/{name}/default', '/v1/models/delivery-eta/default', { json: { version: '2' } });
    await call('PUT', '/v1/models/{name}/aliases/{alias}', '/v1/models/delivery-eta/aliases/stable', { json: { version: '1', cells: ['cell-a'] } });
    await call('DELETE', '/v1/models/{name}/aliases/{alias}', '/v1/models/delivery-eta/aliases/stable?cells=cell-a');
    await call('POST', '/v1/models/{name}/versions/{version}:deploy', '/v1/models/tabular-mlp/versions/1:deploy', { json: { cells: 'all' } });
    await call('POST', '/v1/models/{name}/versions/{version}:undeploy', '/v1/models/tabular-mlp/versions/1:undeploy', { json: { cells: ['cell-b'] } });
    await call('PUT', '/v1/models/{name}/split', '/v1/models/delivery-eta/split', { json: { arms: [{ version: '1', weight: 90 }, { version: '2', weight: 10, arm: 'canary' }] } });
    await call('PUT', '/v1/models/{name}/shadows', '/v1/models/delivery-eta/shadows', { json: { shadows: [{ version: '1' }] } });
    await call('PUT', '/v1/models/{name}/split', '/v1/models/delivery-eta/split', { json: { arms: [] } });
    const refused = await call('PUT', '/v1/models/{name}/split', '/v1/models/delivery-eta/split', { body: '{"arms": "x"}', headers: { 'content-type': 'application/json' } });
    expect(refused).toEqual({ code: 'INVALID_ARGUMENT', message: 'arms: a list of { version, weight, arm? } is required ([] removes the split)' });

    const state = await call('GET', '/v1/cells/{cell}/state', '/v1/cells/cell-a/state?after=0&wait_ms=0');
    const sha = state.models.find((m: any) => m.name === 'delivery-eta').versions[0].bundleSha256 as string;
    const report = {
      cell: 'cell-a',
      replica: 'r1',
      revision: String(state.revision),
      loaded: [{ model: 'delivery-eta', version: '1', bundleSha256: sha }],
      shadows: [{ liveModel: 'delivery-eta', liveVersion: '2', shadowModel: 'delivery-eta', shadowVersion: '1', executed: '3', latencyMs: { p50: 1, p90: 2, p99: 3, max: 3 } }],
      statistics: [
        {
          model: 'delivery-eta',
          version: '1',
          rows: '2',
          features: { distance_km: { count: '2', values: '2', mean: 1.5, variance: 0.25, min: 1, max: 2, sketch: { relativeAccuracy: 0.01, positive: { offset: 0, counts: [1] } }, trainingBins: [2] } },
        },
      ],
    };
    await call('POST', '/v1/cells/{cell}/reports', '/v1/cells/cell-a/reports', { json: report });
    expect((await call('GET', '/v1/models/{name}/statistics', '/v1/models/delivery-eta/statistics')).statistics[0].rows).toBe(2);
    await call('GET', '/v1/models/{name}/versions/{version}/statistics', '/v1/models/delivery-eta/versions/1/statistics?cell=cell-a');
    await call('GET', '/metrics', '/metrics', { token: null });
    // This tower reads no prediction log: a replay is refused (412); none listed; an unknown one is 404.
    expect((await call('POST', '/v1/models/{name}/replays', '/v1/models/delivery-eta/replays', { json: { candidate: '2' } })).code).toBe('FAILED_PRECONDITION');
    expect((await call('GET', '/v1/models/{name}/replays', '/v1/models/delivery-eta/replays')).replays).toEqual([]);
    expect((await call('GET', '/v1/models/{name}/replays/{id}', '/v1/models/delivery-eta/replays/nope')).code).toBe('NOT_FOUND');
    expect((await call('GET', '/v1/models/{name}/shadows', '/v1/models/delivery-eta/shadows')).replicas).toHaveLength(1);
    expect((await call('GET', '/v1/cells', '/v1/cells')).cells).toHaveLength(2);
    expect((await call('GET', '/v1/cells/{cell}', '/v1/cells/cell-a')).replicas[0].replica).toBe('r1');
    await call('GET', '/v1/bundles/{sha256}', `/v1/bundles/${sha}`);
    await call('GET', '/v1/bundles/{sha256}', `/v1/bundles/${sha}`, { headers: { 'if-none-match': `"${sha}"` } });
    const rollout = await call('POST', '/v1/rollouts', '/v1/rollouts', { json: { model: 'delivery-eta', version: '1', waves: [{ name: 'canary', cells: ['cell-a'] }], bakeMs: 60_000, guards: { minRequests: 5 } } });
    expect(rollout).toMatchObject({ state: 'pending', currentWave: 'canary', guards: { minRequests: 5, maxErrorRate: 0.01 } });
    expect((await call('POST', '/v1/rollouts', '/v1/rollouts', { json: { model: 'delivery-eta', version: '1', waves: [], bakeMs: 1 } })).code).toBe('INVALID_ARGUMENT');
    expect((await call('GET', '/v1/rollouts', '/v1/rollouts?model=delivery-eta&active=true')).rollouts).toHaveLength(1);
    expect((await call('GET', '/v1/rollouts/{id}', `/v1/rollouts/${rollout.id}`)).id).toBe(rollout.id);
    expect((await call('GET', '/v1/rollouts/{id}', '/v1/rollouts/nope')).code).toBe('INVALID_ARGUMENT');
    expect(await call('POST', '/v1/rollouts/{id}:halt', `/v1/rollouts/${rollout.id}:halt`, { json: { reason: 'contract test' } })).toMatchObject({ state: 'halted', haltReason: expect.stringMatching(/^halted by .+: contract test$/) });
    expect((await call('POST', '/v1/rollouts/{id}:halt', `/v1/rollouts/${rollout.id}:halt`)).code).toBe('FAILED_PRECONDITION');
    await call('POST', '/v1/models/{name}/versions/{version}:retire', '/v1/models/tabular-mlp/versions/1:retire');
    expect((await call('GET', '/v1/audit', '/v1/audit?limit=5')).entries).toHaveLength(5);
    await call('POST', '/v1/tokens', '/v1/tokens', { json: { name: 'ci', role: 'viewer' } });
    expect((await call('GET', '/v1/tokens', '/v1/tokens')).tokens.map((t: any) => t.name)).toContain('ci');
    await call('DELETE', '/v1/tokens/{name}', '/v1/tokens/ci');
    expect((await call('GET', '/v1/models', '/v1/models', { token: null })).code).toBe('UNAUTHENTICATED');
    expect((await call('GET', '/v1/models/{name}', '/v1/models/nope')).code).toBe('NOT_FOUND');
    expect((await call('GET', '/healthz', '/healthz', { token: null })).live).toBe(true);
    await call('GET', '/openapi.json', '/openapi.json', { token: null });
    const documented = Object.entries(doc.paths).flatMap(([p, item]) => Object.keys(item).map((m) => `${m.toUpperCase()} ${p}`));
    const called = new Set([...check.seen].map((s) => s.slice(0, s.lastIndexOf(' '))));
    expect(documented.filter((d) => !called.has(d))).toEqual([]);
  }, 120_000);
});
