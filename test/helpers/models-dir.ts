/** Builds a models directory for a test from the shipped bundles: chosen versions, copies under new versions, and a deployment.yaml. */
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { MODELS_DIR } from './expected.ts';

export interface ModelsDirSpec {
  /** `name/version` of shipped bundles to include. */
  readonly bundles: readonly string[];
  /** Shipped bundles copied under another version (same model file, manifest version rewritten). */
  readonly copies?: readonly { readonly from: string; readonly version: string }[];
  /** Written as deployment.yaml. */
  readonly deployment: { readonly models: Record<string, unknown> };
}

export function makeModelsDir(spec: ModelsDirSpec): string {
  const dir = mkdtempSync(join(tmpdir(), 'sibyl-models-'));
  for (const b of spec.bundles) cpSync(join(MODELS_DIR, b), join(dir, b), { recursive: true });
  for (const c of spec.copies ?? []) {
    const [name] = c.from.split('/');
    const target = join(dir, name!, c.version);
    mkdirSync(join(dir, name!), { recursive: true });
    cpSync(join(MODELS_DIR, c.from), target, { recursive: true });
    const manifest = readFileSync(join(target, 'sibyl.yaml'), 'utf8').replace(/^version: .*$/m, `version: '${c.version}'`);
    writeFileSync(join(target, 'sibyl.yaml'), manifest);
  }
  writeFileSync(join(dir, 'deployment.yaml'), stringify(spec.deployment));
  return dir;
}
