/**
 * What the console calls beside the model calls: `GET /v1/whoami`, and `POST /v1/validations`, the upload gate run
 * without storing anything (the upload page's verdict, the rule playground's runs): every check in order, every
 * test case with its row, outputs, diff and time, free-form rows; the rules sandbox's limits apply as in the
 * gateway; the tower's own upload checks (composed models, immutable versions); publisher role; nothing stored.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { makeZip } from '../../runtimes/bundle/zips.ts';
import { startTestTower, type TestTower } from './tower.ts';

let t: TestTower;
beforeAll(async () => {
  t = await startTestTower();
}, 60_000);
afterAll(() => t?.stop());

const zipHeaders = { 'content-type': 'application/zip' };

/** A rule bundle: fee = 2 + rate × distance; the tests expect rate 0.5. */
function feeRule(opts: { version?: string; rate?: number; source?: string; timeoutMs?: number; extra?: Record<string, unknown> } = {}): Promise<Buffer> {
  const manifest = {
    name: 'fee',
    version: opts.version ?? '1',
    runtime: 'rules',
    features: [{ name: 'distance_km', dtype: 'float64', source: 'request', default: 3 }],
    outputs: [{ name: 'fee', dtype: 'float64' }],
    rules: { file: 'rule.js', ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}) },
    tests: [
      { name: 'near', features: { distance_km: 2 }, expected: { fee: 3 } },
      { name: 'far', features: { distance_km: 8 }, expected: { fee: 6 } },
    ],
    ...opts.extra,
  };
  const source = opts.source ?? `export function predict(f) { return { fee: 2 + ${opts.rate ?? 0.5} * f.distance_km }; }`;
  return makeZip([
    { name: 'sibyl.yaml', data: Buffer.from(stringify(manifest)) },
    { name: 'rule.js', data: Buffer.from(source) },
  ]);
}

function inspect(zip: Buffer, rows?: unknown, token?: string) {
  const form = new FormData();
  form.set('bundle', new Blob([new Uint8Array(zip)], { type: 'application/zip' }), 'b.zip');
  if (rows !== undefined) form.set('rows', JSON.stringify(rows));
  return t.call('POST', '/v1/validations', { body: form, ...(token ? { token } : {}) });
}

const checkNames = (v: { checks: { name: string; ok: boolean }[] }) => v.checks.map((c) => `${c.ok ? '+' : '-'}${c.name}`);

describe('GET /v1/whoami', () => {
  it("answers the token's name and role, for every role", async () => {
    expect((await t.call('GET', '/v1/whoami')).json).toEqual({ name: 'dev-admin', role: 'admin' });
    const viewer = await t.token('viewer');
    expect((await t.call('GET', '/v1/whoami', { token: viewer })).json).toEqual({ name: expect.stringMatching(/^viewer-/), role: 'viewer' });
    expect((await t.call('GET', '/v1/whoami', { token: 'not-a-token' })).status).toBe(401);
  });
});

describe('POST /v1/validations', () => {
  it('a passing bundle: every check, every case with its row, outputs and time, and the free-form rows; nothing stored', async () => {
    const { status, json } = await inspect(await feeRule(), [{ name: 'checkout', features: { distance_km: 4 } }, { features: {} }]);
    expect(status).toBe(200);
    expect(json.ok).toBe(true);
    expect(checkNames(json)).toEqual(['+bundle', '+test cases declared', '+runtime', '+model loads', '+test cases pass', '+composed models', '+version is new']);
    expect(json.cases).toEqual([
      { name: 'near', features: { distance_km: 2 }, expected: { fee: 3 }, outputs: { fee: 3 }, problems: [], ms: expect.any(Number) },
      { name: 'far', features: { distance_km: 8 }, expected: { fee: 6 }, outputs: { fee: 6 }, problems: [], ms: expect.any(Number) },
    ]);
    // Rows: missing features at their defaults, nothing expected.
    expect(json.rows).toEqual([
      { name: 'checkout', features: { distance_km: 4 }, expected: {}, outputs: { fee: 4 }, problems: [], ms: expect.any(Number) },
      { name: 'row 2', features: { distance_km: 3 }, expected: {}, outputs: { fee: 3.5 }, problems: [], ms: expect.any(Number) },
    ]);
    expect(json.manifest).toMatchObject({ name: 'fee', version: '1' });
    expect((await t.call('GET', '/v1/models')).json.models).toEqual([]);
    expect(t.bundleFiles()).toEqual([]);
  });

  it('a failing case: the verdict names it with the same diff line as the upload refusal; nothing stored', async () => {
    const zip = await feeRule({ rate: 0.4 });
    const { json } = await inspect(zip);
    expect(json.ok).toBe(false);
    expect(checkNames(json)).toEqual(['+bundle', '+test cases declared', '+runtime', '+model loads', '-test cases pass']);
    const far = json.cases.find((c: { name: string }) => c.name === 'far');
    expect(far.problems).toEqual(['fee: expected 6, got 5.2 (off by 0.800; tolerance 0.00001)']);
    expect(far.outputs.fee).toBeCloseTo(5.2);
    // The upload of the same bundle is refused with the same words.
    const upload = await t.call('POST', '/v1/models', { body: zip, headers: zipHeaders });
    expect(upload.status).toBe(400);
    expect(upload.json.message).toBe(json.checks.at(-1).message);
    expect(upload.json.message).toContain('  - fee: expected 6, got 5.2 (off by 0.800; tolerance 0.00001)');
    expect((await t.call('GET', '/v1/models')).json.models).toEqual([]);
  });

  it('a broken bundle stops at the first check that fails, with its message', async () => {
    const noRule = await makeZip([{ name: 'sibyl.yaml', data: Buffer.from(stringify({ name: 'fee', version: '1', runtime: 'rules', outputs: [{ name: 'fee' }], tests: [{ name: 'a', features: {}, expected: { fee: 1 } }] })) }]);
    const { json } = await inspect(noRule);
    expect(checkNames(json)).toEqual(['+bundle', '+test cases declared', '+runtime', '-model loads']);
    expect(json.checks.at(-1)).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('rule.js') });
    const syntax = await inspect(await feeRule({ source: 'export function predict(f) { return { fee: 1 ; }' }));
    expect(checkNames(syntax.json).at(-1)).toBe('-model loads');
    const garbage = await inspect(Buffer.from('not a zip at all'));
    expect(checkNames(garbage.json)).toEqual(['-bundle']);
  });

  it("runs in the gateway's rules sandbox with the manifest's limits: a rule past its time limit fails its case, the tower is unharmed", async () => {
    const zip = await feeRule({ timeoutMs: 20, source: 'export function predict(f) { if (f.distance_km > 5) { for (;;) {} } return { fee: 2 + 0.5 * f.distance_km }; }' });
    const { json } = await inspect(zip, [{ name: 'loop', features: { distance_km: 9 } }]);
    expect(json.ok).toBe(false);
    const far = json.cases.find((c: { name: string }) => c.name === 'far');
    expect(far.error.code).toBe('DEADLINE_EXCEEDED');
    expect(json.cases.find((c: { name: string }) => c.name === 'near').problems).toEqual([]);
    expect(json.rows[0].error.code).toBe('DEADLINE_EXCEEDED');
    expect((await t.call('GET', '/healthz', { token: null })).status).toBe(200);
  });

  it('checks what an upload checks in the tower: an existing version with other bytes, composed models that do not exist', async () => {
    expect((await t.call('POST', '/v1/models', { body: await feeRule(), headers: zipHeaders })).status).toBe(201);
    const same = await inspect(await feeRule());
    expect(same.json.ok).toBe(true);
    const changed = await inspect(await feeRule({ source: 'export function predict(f) { return { fee: 2 + 0.5 * f.distance_km + 0 }; }' }));
    expect(changed.json.ok).toBe(false);
    expect(changed.json.checks.at(-1)).toMatchObject({ name: 'version is new', ok: false, code: 'ALREADY_EXISTS' });
    const composed = await inspect(
      await feeRule({ version: '2', extra: { rules: { file: 'rule.js', models: [{ model: 'no-such-model' }] }, tests: [{ name: 'a', features: {}, models: { 'no-such-model': {} }, expected: { fee: 3.5 } }] } }),
    );
    expect(composed.json.checks.find((c: { name: string }) => c.name === 'composed models')).toMatchObject({ ok: false, message: expect.stringContaining('"no-such-model" does not exist') });
    expect((await t.call('GET', '/v1/models/fee')).json.versions.map((v: { version: string }) => v.version)).toEqual(['1']);
  });

  it('needs the publisher role, a zip, and rows of the documented shape', async () => {
    const viewer = await t.token('viewer');
    expect((await inspect(await feeRule(), undefined, viewer)).json).toMatchObject({ code: 'PERMISSION_DENIED' });
    expect((await inspect(await feeRule(), undefined, await t.token('publisher'))).status).toBe(200);
    expect((await t.call('POST', '/v1/validations', { body: '', headers: zipHeaders })).json).toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect((await inspect(await feeRule(), [{ feature: {} }])).json).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('rows.0') });
    expect((await inspect(await feeRule(), Array.from({ length: 101 }, () => ({ features: {} })))).status).toBe(400);
    const form = new FormData();
    form.set('bundle', new Blob([new Uint8Array(await feeRule())]), 'b.zip');
    form.set('rows', '[{');
    expect((await t.call('POST', '/v1/validations', { body: form })).json).toEqual({ code: 'INVALID_ARGUMENT', message: 'rows: not valid JSON' });
  });
});
