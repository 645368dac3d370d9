/**
 * Runtimes are plug-ins (ARCHITECTURE.md, "Plug-ins and roles"): each runtime's folder exports a descriptor, the
 * registry derives everything from the list, nothing in gateway/ or control-tower/ names a kind, and a fourth
 * runtime needs only a descriptor.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { SibylError } from '../../core/errors.ts';
import { defineRuntime } from '../../runtimes/descriptor.ts';
import { validateManifest } from '../../runtimes/manifest.ts';
import { composedModelsOf, createRegistry, oipPlatformOf, outputSpecs, packedInputsOf, registry } from '../../runtimes/registry.ts';

const ROOT = path.resolve(fileURLToPath(import.meta.url), '../../..');

/** A small valid manifest of each registered kind. A new runtime adds one here. */
const EXAMPLES: Readonly<Record<string, Record<string, unknown>>> = {
  onnx: {
    name: 'm',
    version: '1',
    runtime: 'onnx',
    features: [{ name: 'a', dtype: 'float32', source: 'request', default: 0 }],
    onnx: { file: 'model.onnx', inputs: [{ name: 'x', dtype: 'float32', features: ['a'] }], outputs: [{ name: 'y', as: 'score' }] },
  },
  rules: {
    name: 'm',
    version: '1',
    runtime: 'rules',
    features: [{ name: 'a', dtype: 'float64', source: 'request', default: 0 }],
    outputs: [{ name: 'score', dtype: 'float64' }],
    rules: { models: [{ model: 'other', as: 'inner' }] },
  },
  sagemaker: {
    name: 'm',
    version: '1',
    runtime: 'sagemaker',
    features: [{ name: 'a', dtype: 'float32', source: 'request', default: 0 }],
    outputs: [{ name: 'score' }],
    sagemaker: { endpoint: 'scorer', region: 'eu-west-1', contentType: 'application/json' },
  },
};

function messageOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(SibylError);
    return (err as SibylError).message;
  }
  throw new Error('expected a throw');
}

/**
 * Where a file's text names a runtime: a string literal equal to a kind ('onnx', "rules", `sagemaker`), comments
 * included, or an import of a runtime's folder (runtimes/<kind>/...), static or dynamic.
 */
function namesOfKinds(file: string, text: string, kinds: readonly string[]): string[] {
  const found: string[] = [];
  const lineOf = (index: number) => text.slice(0, index).split('\n').length;
  for (const kind of kinds) {
    for (const m of text.matchAll(new RegExp(`(['"\`])${kind}\\1`, 'g'))) found.push(`${file}:${lineOf(m.index)}: the string ${m[0]}`);
  }
  for (const m of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(['"])([^'"]+)\1/g)) {
    const target = path.relative(ROOT, path.resolve(path.dirname(path.join(ROOT, file)), m[2]!)).split(path.sep);
    if (target[0] === 'runtimes' && target.length > 2 && kinds.includes(target[1]!)) found.push(`${file}:${lineOf(m.index)}: imports ${m[2]}`);
  }
  return found;
}

function tsFiles(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => path.join(dir, f));
}

describe('nothing outside runtimes/ names a runtime', () => {
  it('the check finds a kind named as a string or imported by folder', () => {
    const text = "if (m.runtime === 'onnx') x();\nimport { RulesSettings } from '../../runtimes/rules/settings.ts';\nconst p = `sagemaker`;";
    expect(namesOfKinds('gateway/routing/x.ts', text, registry.kinds)).toEqual([
      "gateway/routing/x.ts:1: the string 'onnx'",
      'gateway/routing/x.ts:3: the string `sagemaker`',
      'gateway/routing/x.ts:2: imports ../../runtimes/rules/settings.ts',
    ]);
    expect(namesOfKinds('gateway/x.ts', "import { x } from '../runtimes/index.ts'; // the onnx runtime's sessions", registry.kinds)).toEqual([]);
  });

  it.each(['gateway', 'control-tower'])('%s/ names no kind and imports no runtime folder', (dir) => {
    const files = tsFiles(dir);
    expect(files.length).toBeGreaterThan(0);
    const found = files.flatMap((f) => namesOfKinds(f, readFileSync(path.join(ROOT, f), 'utf8'), registry.kinds));
    expect(found).toEqual([]);
  });
});

describe('the registry derives the runtimes from their descriptors', () => {
  it('lists each descriptor once, in order, and the manifest accepts exactly those kinds', () => {
    expect(registry.kinds).toEqual(registry.descriptors.map((d) => d.kind));
    expect(new Set(registry.kinds).size).toBe(registry.kinds.length);
    expect(Object.keys(EXAMPLES).sort()).toEqual([...registry.kinds].sort());
    expect(messageOf(() => validateManifest({ ...EXAMPLES.rules, runtime: 'tensorflow' }))).toContain(
      `runtime: Invalid option: expected one of ${registry.kinds.map((k) => `"${k}"`).join('|')}`,
    );
  });

  it.each(Object.keys(EXAMPLES))('a %s manifest validates, its section parsed by the descriptor', (kind) => {
    const m = validateManifest(EXAMPLES[kind]);
    const d = registry.descriptorOf(kind)!;
    expect(m.runtime).toBe(kind);
    expect((m as unknown as Record<string, unknown>)[kind]).toEqual(d.settings.parse(EXAMPLES[kind]![kind]));
    expect(oipPlatformOf(m)).toBe(d.oip.platform);
    // A section is refused on a manifest of another kind.
    const other = registry.kinds.find((k) => k !== kind)!;
    expect(messageOf(() => validateManifest({ ...EXAMPLES[other], [kind]: EXAMPLES[kind]![kind] }))).toContain(`${kind}: is only for runtime ${kind}, not ${other}`);
  });

  it('answers for a manifest without naming its kind: outputs, OIP platform and packed inputs, composition', () => {
    const onnx = validateManifest(EXAMPLES.onnx);
    expect(outputSpecs(onnx)).toEqual([{ name: 'score', dtype: 'float32', kind: 'scalar' }]);
    expect(packedInputsOf(onnx)).toEqual([{ name: 'x', dtype: 'float32', features: ['a'] }]);
    expect(oipPlatformOf(onnx)).toBe('onnxruntime_onnx');
    expect(composedModelsOf(onnx)).toEqual([]);
    const rules = validateManifest(EXAMPLES.rules);
    expect(outputSpecs(rules)).toEqual([{ name: 'score', dtype: 'float64', kind: 'scalar' }]);
    expect(packedInputsOf(rules)).toEqual([]);
    expect(oipPlatformOf(rules)).toBe('sibyl_rules');
    expect(composedModelsOf(rules)).toEqual([{ model: 'other', version: '', as: 'inner' }]);
    expect(registry.compositionFieldOf(rules)).toBe('rules.models');
    const sagemaker = validateManifest(EXAMPLES.sagemaker);
    expect(oipPlatformOf(sagemaker)).toBe('sagemaker');
    expect(composedModelsOf(sagemaker)).toEqual([]);
  });

  it('makes one runtime per kind without importing any implementation', async () => {
    const runtimes = registry.createRuntimes({ sagemaker: { credentials: { accessKeyId: 'k', secretAccessKey: 's' } } });
    expect([...runtimes.byKind.keys()]).toEqual(registry.kinds);
    for (const [kind, r] of runtimes.byKind) expect(r.kind).toBe(kind);
    await runtimes.close();
  });

  it('descriptors are light: importing the registry loads no native module or SDK', () => {
    const script = `
      import { registerHooks } from 'node:module';
      const seen = [];
      registerHooks({ resolve(specifier, context, next) { const r = next(specifier, context); seen.push(r.url); return r; } });
      const { registry, createRuntimes } = await import(${JSON.stringify(path.join(ROOT, 'runtimes/registry.ts'))});
      await createRuntimes().close();
      process.stdout.write(JSON.stringify({ kinds: registry.kinds, seen }));`;
    const out = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '' } })) as { kinds: string[]; seen: string[] };
    expect(out.kinds).toEqual(registry.kinds);
    expect(out.seen.some((u) => u.endsWith('/runtimes/onnx/descriptor.ts'))).toBe(true);
    expect(out.seen.filter((u) => /onnxruntime|isolated-vm|@aws-sdk|\/runtimes\/[^/]+\/[^/]+-runtime\.ts$/.test(u))).toEqual([]);
  });
});

describe('a fourth runtime is one descriptor', () => {
  const echo = defineRuntime({
    kind: 'echo',
    settings: z.object({ prefix: z.string().min(1), times: z.number().int().min(1).default(1) }).strict(),
    settingsRequired: true,
    check(settings, manifest, report) {
      if (!manifest.features.some((f) => f.dtype === 'string')) report(['features'], `echo needs a string feature to repeat ${settings.times} times`);
    },
    oip: { platform: 'sibyl_echo' },
    create: () => ({
      kind: 'echo',
      close: async () => {},
      async load(bundle) {
        const settings = (bundle.manifest as unknown as { echo: { prefix: string; times: number } }).echo;
        const feature = bundle.manifest.features[0]!.name;
        return {
          predict: async (rows) => rows.map((r) => ({ said: `${settings.prefix}${String(r[feature]).repeat(settings.times)}` })),
          dispose: async () => {},
        };
      },
    }),
  });
  const extended = createRegistry([...registry.descriptors, echo]);
  const manifest = {
    name: 'parrot',
    version: '1',
    runtime: 'echo',
    features: [{ name: 'word', dtype: 'string', source: 'request', default: 'hi' }],
    outputs: [{ name: 'said', dtype: 'string' }],
    echo: { prefix: '> ' },
  };

  it('joins the kinds and the manifest schema; its section is validated by its own schema, defaults filled', () => {
    expect(extended.kinds).toEqual([...registry.kinds, 'echo']);
    const m = extended.validateManifest(manifest);
    expect(m.runtime).toBe('echo');
    expect(m.echo).toEqual({ prefix: '> ', times: 1 });
    expect(extended.oipPlatformOf(m)).toBe('sibyl_echo');
    expect(extended.outputSpecs(m)).toEqual([{ name: 'said', dtype: 'string', kind: 'scalar' }]);
    expect(extended.packedInputsOf(m)).toEqual([]);
    expect(extended.composedModelsOf(m)).toEqual([]);
    for (const kind of registry.kinds) expect(extended.validateManifest(EXAMPLES[kind]).runtime).toBe(kind);
  });

  it('refuses what its schema and check refuse, with the usual messages', () => {
    expect(messageOf(() => extended.validateManifest({ ...manifest, echo: { prefix: '', times: 0, loud: true } }))).toBe(
      'invalid manifest: echo.prefix: Too small: expected string to have >=1 characters; echo.times: Too small: expected number to be >=1; echo: Unrecognized key: "loud"',
    );
    expect(messageOf(() => extended.validateManifest({ ...manifest, echo: undefined }))).toBe('invalid manifest: echo: is required for runtime echo');
    expect(messageOf(() => extended.validateManifest({ ...manifest, outputs: undefined }))).toBe('invalid manifest: outputs: is required for runtime echo');
    expect(messageOf(() => extended.validateManifest({ ...manifest, features: [{ name: 'n', dtype: 'int32', source: 'request', default: 0 }], echo: { prefix: '>', times: 2 } }))).toBe(
      'invalid manifest: features: echo needs a string feature to repeat 2 times',
    );
    expect(messageOf(() => extended.validateManifest({ ...EXAMPLES.rules, echo: { prefix: '>' } }))).toBe('invalid manifest: echo: is only for runtime echo, not rules');
    // The real registry does not know it.
    expect(messageOf(() => validateManifest(manifest))).toMatch(/^invalid manifest: runtime: Invalid option/);
  });

  it('asks the upload gate for test cases that expect the outputs its descriptor declares', () => {
    const m = extended.validateManifest(manifest);
    expect(messageOf(() => extended.requireTestCases(m))).toBe(
      'invalid manifest: tests: at least one test case is required, expecting its output "said": the upload gate runs them, and gateways warm up with the first',
    );
    const cases = extended.validateManifest({ ...manifest, tests: [{ name: 'hi', features: { word: 'hi' }, expected: { said: '> hi' } }] });
    expect(() => extended.requireTestCases(cases)).not.toThrow();
  });

  it('is made and loaded through createRuntimes like the others', async () => {
    const runtimes = extended.createRuntimes();
    const runtime = runtimes.byKind.get('echo')!;
    const model = await runtime.load({ manifest: extended.validateManifest({ ...manifest, echo: { prefix: '> ', times: 2 } }) as never, dir: '/nonexistent', hash: 'test' });
    expect(await model.predict([{ word: 'hi' }], { signal: new AbortController().signal })).toEqual([{ said: '> hihi' }]);
    await model.dispose();
    await runtimes.close();
  });

  it('a kind registered twice, or named like a shared field, is refused', () => {
    expect(() => createRegistry([...registry.descriptors, { ...echo, kind: 'rules' }])).toThrow('runtime kind "rules" is registered twice');
    expect(() => createRegistry([{ ...echo, kind: 'features' }])).toThrow('runtime kind "features" is a manifest field');
  });
});
