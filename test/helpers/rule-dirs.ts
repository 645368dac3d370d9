/** Rule bundle directories for composition tests: a manifest and a rule.js written into a models directory. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';

export function writeRule(modelsDir: string, manifest: Record<string, unknown>, source: string): void {
  const dir = join(modelsDir, String(manifest.name), String(manifest.version));
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'sibyl.yaml'), stringify({ runtime: 'rules', ...manifest, rules: { file: 'rule.js', ...((manifest.rules as object | undefined) ?? {}) } }));
  writeFileSync(join(dir, 'rule.js'), source);
}

/** eta-blend: 0.3 × delivery-eta v1 + 0.7 × v2, with no features of its own. */
export const BLEND = {
  manifest: {
    name: 'eta-blend',
    version: '1',
    outputs: [{ name: 'eta_minutes', dtype: 'float64' }],
    rules: { models: [{ model: 'delivery-eta', version: '1', as: 'slow' }, { model: 'delivery-eta', version: '2', as: 'fast' }] },
    tests: [{ name: 'blend', features: {}, models: { slow: { eta_minutes: 30 }, fast: { eta_minutes: 40 } }, expected: { eta_minutes: 37 } }],
  },
  source: `export function predict(f, ctx) {
  return { eta_minutes: 0.3 * ctx.models.slow.eta_minutes + 0.7 * ctx.models.fast.eta_minutes };
}`,
};

/** late-guard: delivery-eta plus 10 minutes when eta-risk says late; a VIP's promise is capped at 30 (a business override). */
export const GUARD = {
  manifest: {
    name: 'late-guard',
    version: '1',
    features: [{ name: 'vip', dtype: 'bool', source: 'request', default: false }],
    outputs: [
      { name: 'eta_minutes', dtype: 'float64' },
      { name: 'padded', dtype: 'bool' },
    ],
    rules: { models: [{ model: 'delivery-eta', as: 'eta' }, { model: 'eta-risk', as: 'risk' }] },
    tests: [
      { name: 'late', features: { vip: false }, models: { eta: { eta_minutes: 25 }, risk: { is_late: 1, probabilities: [0.2, 0.8] } }, expected: { eta_minutes: 35, padded: true } },
      { name: 'vip cap', features: { vip: true }, models: { eta: { eta_minutes: 25 }, risk: { is_late: 1, probabilities: [0.2, 0.8] } }, expected: { eta_minutes: 30, padded: true } },
    ],
  },
  source: `export function predict(f, ctx) {
  const late = ctx.models.risk.is_late === 1;
  let eta = ctx.models.eta.eta_minutes + (late ? 10 : 0);
  if (f.vip && eta > 30) eta = 30;
  return { eta_minutes: eta, padded: late };
}`,
};
