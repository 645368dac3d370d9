/** `sibyl rules new/test/run`: scaffold, test cases with diffs and exit status, one-row runs with and without Redis. */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { createRedisFeatureStore } from '../../gateway/features/redis-feature-store.ts';
import { runRule, scaffoldRule, testRule } from '../../cli/rules.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const REDIS = process.env.SIBYL_TEST_REDIS_URL ?? 'redis://127.0.0.1:6399';

function sibyl(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['cli/sibyl.ts', ...args], { cwd: ROOT }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('sibyl rules', () => {
  it('scaffolds a bundle whose test cases pass, and refuses to overwrite it', async () => {
    const parent = mkdtempSync(join(tmpdir(), 'sibyl-rules-cli-'));
    const created = await sibyl('rules', 'new', 'surge-fee', '--dir', parent);
    expect(created.code).toBe(0);
    const ok = await sibyl('rules', 'test', join(parent, 'surge-fee'));
    expect(ok).toMatchObject({ code: 0, stdout: '2 of 2 test cases passed\n' });
    const again = await sibyl('rules', 'new', 'surge-fee', '--dir', parent);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already exists/);
    await expect(scaffoldRule('Bad Name', parent)).rejects.toThrow(/name/);
  });

  it('shows a readable diff per failing case and exits 1', async () => {
    const dir = await scaffoldRule('diff-me', mkdtempSync(join(tmpdir(), 'sibyl-rules-cli-')));
    writeFileSync(join(dir, 'rule.js'), 'export function predict(f) { if (f.distance_km > 10) throw new Error("too far"); return { score: 0.8, decision: "accept" }; }');
    const r = await sibyl('rules', 'test', dir);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('test case "near and big basket":\n  - score: expected 0.9, got 0.8 (off by 0.100; tolerance 0.00001)');
    expect(r.stdout).toContain('test case "far away":\n  - the model failed: INTERNAL: rule error: too far');
    expect(r.stdout).toContain('0 of 2 test cases passed');
    expect((await testRule(dir)).passed).toBe(0);
  });

  it('runs one row with defaults for features not given, and refuses unknown features', async () => {
    const dir = await scaffoldRule('run-me', mkdtempSync(join(tmpdir(), 'sibyl-rules-cli-')));
    expect(await runRule(dir, { features: '{"distance_km": 12}', entities: '{}', prefix: 'sibyl' })).toEqual({
      outputs: { score: 0.2, decision: 'review' },
      defaulted: ['basket_value'],
    });
    await expect(runRule(dir, { features: '{"nope": 1}', entities: '{}', prefix: 'sibyl' })).rejects.toThrow(/declares no feature "nope"/);
    await expect(runRule(dir, { features: '[1]', entities: '{}', prefix: 'sibyl' })).rejects.toThrow(/must be a JSON object/);
  });

  it('reads store features from Redis with --redis', async () => {
    const dir = await scaffoldRule('store-rule', mkdtempSync(join(tmpdir(), 'sibyl-rules-cli-')));
    const manifest = readFileSync(join(dir, 'sibyl.yaml'), 'utf8').replace(
      '  - { name: basket_value, dtype: float64, source: request, default: 0 }',
      '  - { name: basket_value, dtype: float64, source: store, entity: customer, key: avg_basket, default: 0 }',
    );
    writeFileSync(join(dir, 'sibyl.yaml'), manifest);
    writeFileSync(join(dir, 'rule.js'), 'export function predict(f) { return { score: f.basket_value, decision: "x" }; }');
    const store = createRedisFeatureStore({ url: REDIS });
    await store.ready(10_000);
    await store.write([{ key: 'clitest:customer:c9', fields: { avg_basket: '37.5' } }]);
    await store.close();
    const r = await sibyl('rules', 'run', dir, '--features', '{"distance_km": 1}', '--entities', '{"customer": "c9"}', '--redis', REDIS, '--prefix', 'clitest');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ outputs: { score: 37.5, decision: 'x' }, defaulted: [] });
  });
});
