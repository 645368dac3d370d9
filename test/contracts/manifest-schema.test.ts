/**
 * The manifest's JSON Schema as a file (schemas/sibyl.schema.json): it is what the zod schema generates (stale:
 * run `npm run gen:schemas`), the demo manifests and a scaffolded rule pass it, and a JSON Schema validator refuses
 * what parseManifest refuses for the runtime sections and outputs.
 */
import { readFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { scaffoldRule } from '../../cli/rules.ts';
import { MANIFEST_SCHEMA_FILE, manifestSchemaText } from '../../runtimes/manifest-json-schema.ts';
import { parseManifest } from '../../runtimes/manifest.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const committed = readFileSync(join(ROOT, MANIFEST_SCHEMA_FILE), 'utf8');
const validate = new Ajv2020({ allErrors: true, strict: false, validateFormats: false }).compile(JSON.parse(committed) as object);

async function demoManifests(): Promise<string[]> {
  const files: string[] = [];
  for (const model of await readdir(join(ROOT, 'models'), { withFileTypes: true })) {
    if (!model.isDirectory()) continue;
    for (const version of await readdir(join(ROOT, 'models', model.name))) files.push(join(ROOT, 'models', model.name, version, 'sibyl.yaml'));
  }
  return files;
}

describe('schemas/sibyl.schema.json', () => {
  it('is what the manifest schema generates (run `npm run gen:schemas` after changing it)', () => {
    expect(committed).toBe(manifestSchemaText());
  });

  it('accepts every demo manifest, each of which points at it', async () => {
    const files = await demoManifests();
    expect(files.length).toBeGreaterThanOrEqual(4);
    for (const file of files) {
      const text = await readFile(file, 'utf8');
      expect(text.split('\n')[0]).toBe('# yaml-language-server: $schema=../../../schemas/sibyl.schema.json');
      const ok = validate(parseYaml(text));
      expect(ok ? [] : validate.errors, file).toEqual([]);
    }
  });

  it("is the schema a scaffolded rule's first line names, and accepts that manifest", async () => {
    const dir = await scaffoldRule('scaffolded', mkdtempSync(join(tmpdir(), 'sibyl-schema-')));
    const text = await readFile(join(dir, 'sibyl.yaml'), 'utf8');
    const m = /^# yaml-language-server: \$schema=(\S+)\n/.exec(text);
    expect(m).not.toBeNull();
    expect(readFileSync(join(dir, m![1]!), 'utf8')).toBe(committed);
    expect(validate(parseYaml(text))).toBe(true);
  });

  it('refuses what parseManifest refuses about names, sections and outputs', async () => {
    const base = parseYaml(await readFile(join(ROOT, 'models/tabular-mlp/1/sibyl.yaml'), 'utf8')) as Record<string, unknown>;
    const cases: Record<string, unknown>[] = [
      { ...base, name: 'Bad Name' },
      { ...base, unknown_field: 1 },
      { ...base, rules: { file: 'rule.js' } },
      { ...base, outputs: [{ name: 'score' }] },
      Object.fromEntries(Object.entries(base).filter(([k]) => k !== 'onnx')),
      { ...base, runtime: 'rules', onnx: undefined, outputs: undefined, rules: {} },
    ].map((c) => JSON.parse(JSON.stringify(c)) as Record<string, unknown>);
    for (const c of cases) {
      expect(() => parseManifest(JSON.stringify(c)), JSON.stringify(c).slice(0, 80)).toThrow(/invalid manifest/);
      expect(validate(c), JSON.stringify(c).slice(0, 80)).toBe(false);
    }
    expect(validate(base)).toBe(true);
  });
});
