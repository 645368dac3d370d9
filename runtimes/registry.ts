/**
 * The runtimes Sibyl knows (ARCHITECTURE.md, "Plug-ins and roles"): an explicit list of descriptors, and everything
 * derived from it: the manifest schema (`runtime:` one of the kinds, one optional section per runtime, each
 * validated by its descriptor), the Runtime instances, and the questions the rest of Sibyl asks about a manifest
 * without naming its kind: its outputs, its Open Inference Protocol platform and packed inputs, the models it
 * composes.
 *
 * A new runtime is a folder with a descriptor.ts (see descriptor.ts) and one line in `registry` below.
 */
import { z } from 'zod';
import { SibylError } from '../core/errors.ts';
import type { Runtime } from './contract.ts';
import type { ComposedModel, PackedInput, PluggedRuntime, RuntimeDescriptor } from './descriptor.ts';
import { manifestFields, MAX_VECTOR_ELEMENTS, valueKind, type ManifestCore, type OutputSpec, type TrainingStatistics, type ValueStatistics } from './manifest-fields.ts';
import { onnxDescriptor } from './onnx/descriptor.ts';
import { rulesDescriptor } from './rules/descriptor.ts';
import { sageMakerDescriptor } from './sagemaker/descriptor.ts';

/** A validated manifest of a registry: the shared fields, `runtime` one of its kinds, and the runtimes' sections. */
export type ManifestOf<D extends readonly RuntimeDescriptor[]> = Omit<ManifestCore, 'runtime'> & { runtime: D[number]['kind'] } & {
  [R in D[number] as R['kind']]?: z.output<R['settings']>;
};

/** Each runtime's factory options, by kind (a runtime left out gets its defaults). */
export type RuntimesOptions<D extends readonly RuntimeDescriptor[] = typeof descriptors> = {
  readonly [R in D[number] as R['kind']]?: Parameters<R['create']>[0];
};

/** The runtimes a gateway (or a validation process) loads models with: one per registered kind. */
export interface Runtimes {
  readonly byKind: ReadonlyMap<string, Runtime>;
  /** Stops runtime-wide resources (worker threads). Models must be disposed first. */
  close(): Promise<void>;
}

export interface RuntimeRegistry<D extends readonly RuntimeDescriptor[]> {
  readonly descriptors: D;
  /** The registered kinds, in registry order: the manifest's `runtime:` values. */
  readonly kinds: readonly D[number]['kind'][];
  /** The manifest schema. */
  readonly manifestSchema: z.ZodType<ManifestOf<D>>;
  /** Validates a parsed manifest object; throws INVALID_ARGUMENT `invalid manifest: path: message; ...` listing every problem. */
  validateManifest(raw: unknown): ManifestOf<D>;
  /**
   * What the upload gate asks of a valid manifest beyond its schema: at least one test case, and every declared
   * output named in some case's `expected` (a bundle must show what it answers before anything serves it). Throws
   * INVALID_ARGUMENT `invalid manifest: tests: ...`. Not part of the schema: gateways still load and serve versions
   * accepted before it held.
   */
  requireTestCases(manifest: ManifestCore): void;
  /** The descriptor of a kind, or undefined. */
  descriptorOf(kind: string): D[number] | undefined;
  /** One Runtime per kind (implementations are imported when their first model loads). Throws on bad options. */
  createRuntimes(options?: RuntimesOptions<D>): Runtimes;
  /** The outputs a manifest declares, in order, wherever its runtime declares them. */
  outputSpecs(manifest: ManifestCore): OutputSpec[];
  /** The models a manifest composes (empty for runtimes that do not compose). Throws INVALID_ARGUMENT on a bad section. */
  composedModelsOf(manifest: ManifestCore): ComposedModel[];
  /** Where a manifest lists the models it composes, as a field path (e.g. 'rules.models'); '' when its runtime does not compose. */
  compositionFieldOf(manifest: ManifestCore): string;
  /** The Open Inference Protocol `platform` of a manifest's model (its kind when the kind is not registered). */
  oipPlatformOf(manifest: ManifestCore): string;
  /** The input tensors a manifest packs features into, for the Open Inference Protocol (empty when none). */
  packedInputsOf(manifest: ManifestCore): PackedInput[];
}

/** Builds a registry from descriptors. Throws Error when two share a kind or a kind is a shared manifest field. */
export function createRegistry<const D extends readonly RuntimeDescriptor[]>(descriptors: D): RuntimeRegistry<D> {
  const byKind = new Map<string, D[number]>();
  for (const d of descriptors) {
    if (byKind.has(d.kind)) throw new Error(`runtime kind "${d.kind}" is registered twice`);
    if (d.kind === 'runtime' || Object.hasOwn(manifestFields, d.kind)) throw new Error(`runtime kind "${d.kind}" is a manifest field`);
    byKind.set(d.kind, d);
  }
  const kinds = descriptors.map((d) => d.kind);
  if (kinds.length === 0) throw new Error('a registry needs at least one runtime');
  const { name, version, outputs, tests, ...rest } = manifestFields;

  const manifestSchema = z
    .object({
      name,
      version,
      runtime: z.enum(kinds as [string, ...string[]]),
      ...rest,
      outputs,
      ...Object.fromEntries(descriptors.map((d) => [d.kind, d.settings.optional()])),
      tests,
    })
    .strict()
    .superRefine((parsed, ctx) => {
      const m = parsed as unknown as ManifestCore & Readonly<Record<string, unknown>>;
      const report = (path: readonly (string | number)[], message: string) => ctx.addIssue({ code: 'custom', path: [...path], message });
      const features = new Set<string>();
      m.features.forEach((f, i) => {
        if (features.has(f.name)) report(['features', i, 'name'], `duplicate feature "${f.name}"`);
        features.add(f.name);
      });
      const own = byKind.get(m.runtime)!;
      for (const d of descriptors) {
        if (d !== own && m[d.kind] !== undefined) report([d.kind], `is only for runtime ${d.kind}, not ${m.runtime}`);
      }
      if (own.outputs && m.outputs) report(['outputs'], `is not for runtime ${own.kind} (declare ${own.outputs.declaredAt})`);
      if (!own.outputs && !m.outputs) report(['outputs'], `is required for runtime ${own.kind}`);
      if (m.outputs) {
        const seen = new Set<string>();
        m.outputs.forEach((o, i) => {
          if (seen.has(o.name)) report(['outputs', i, 'name'], `duplicate output "${o.name}"`);
          seen.add(o.name);
        });
      }
      const section = m[own.kind];
      if (section === undefined) {
        if (own.settingsRequired) report([own.kind], `is required for runtime ${own.kind}`);
      } else {
        own.check?.(section, m, report);
      }
      if (m.statistics) {
        const outputs = own.outputs ? (section === undefined ? undefined : own.outputs.of(section)) : (m.outputs ?? []);
        checkStatistics(m.statistics, m.features, outputs, report);
      }
    }) as unknown as z.ZodType<ManifestOf<D>>;

  /** The section of a manifest of a registered kind, parsed again (a stored manifest may predate a default); undefined when absent. */
  function sectionOf(m: ManifestCore): { d: D[number]; settings: unknown } | undefined {
    const d = byKind.get(m.runtime);
    const raw = (m as ManifestCore & Readonly<Record<string, unknown>>)[m.runtime];
    if (!d || raw === undefined) return undefined;
    const result = d.settings.safeParse(raw);
    if (!result.success) throw new SibylError('INVALID_ARGUMENT', `invalid manifest: ${problemsOf(result.error.issues, [d.kind])}`);
    return { d, settings: result.data };
  }

  function outputSpecs(m: ManifestCore): OutputSpec[] {
    const d = byKind.get(m.runtime);
    if (!d?.outputs) return (m.outputs ?? []).map((o) => ({ name: o.name, dtype: o.dtype, kind: o.kind }));
    const s = sectionOf(m);
    return s ? d.outputs.of(s.settings) : [];
  }

  return Object.freeze({
    descriptors,
    kinds,
    manifestSchema,
    validateManifest(raw: unknown) {
      const result = manifestSchema.safeParse(raw);
      if (result.success) return result.data;
      throw new SibylError('INVALID_ARGUMENT', `invalid manifest: ${problemsOf(result.error.issues)}`);
    },
    requireTestCases(m: ManifestCore): void {
      const outputs = outputSpecs(m).map((o) => o.name);
      const quoted = (names: readonly string[]) => names.map((n) => `"${n}"`).join(', ');
      if (m.tests.length === 0) {
        const expecting = outputs.length ? `, expecting ${outputs.length === 1 ? 'its output' : 'each of its outputs'} ${quoted(outputs)}` : '';
        throw new SibylError('INVALID_ARGUMENT', `invalid manifest: tests: at least one test case is required${expecting}: the upload gate runs them, and gateways warm up with the first`);
      }
      const expected = new Set(m.tests.flatMap((t) => Object.keys(t.expected)));
      const missing = outputs.filter((o) => !expected.has(o));
      if (missing.length) {
        const what = missing.length === 1 ? `output ${quoted(missing)}` : `outputs ${quoted(missing)}`;
        throw new SibylError('INVALID_ARGUMENT', `invalid manifest: tests: no test case expects ${what}: name every declared output in some case's expected`);
      }
    },
    descriptorOf: (kind: string) => byKind.get(kind),
    createRuntimes(options: RuntimesOptions<D> = {}): Runtimes {
      const made: PluggedRuntime[] = [];
      for (const d of descriptors) made.push(d.create((options as Readonly<Record<string, unknown>>)[d.kind]));
      return {
        byKind: new Map<string, Runtime>(made.map((r) => [r.kind, r])),
        close: async () => {
          for (const r of made) await r.close();
        },
      };
    },
    outputSpecs,
    composedModelsOf(m: ManifestCore): ComposedModel[] {
      if (!byKind.get(m.runtime)?.composes) return [];
      const s = sectionOf(m);
      return s?.d.composes?.of(s.settings) ?? [];
    },
    compositionFieldOf: (m: ManifestCore) => byKind.get(m.runtime)?.composes?.declaredAt ?? '',
    oipPlatformOf: (m: ManifestCore) => byKind.get(m.runtime)?.oip.platform ?? m.runtime,
    packedInputsOf(m: ManifestCore): PackedInput[] {
      if (!byKind.get(m.runtime)?.oip.packedInputs) return [];
      const s = sectionOf(m);
      return s?.d.oip.packedInputs?.(s.settings) ?? [];
    },
  });
}

/**
 * The training statistics name declared features and outputs (a vector output's elements as `name[i]`), each with
 * the summary its dtype calls for (valueKind): a histogram for numeric values, categories for categorical ones.
 * `outputs` undefined: the runtime's section is missing and its outputs are unknown (reported already).
 */
function checkStatistics(
  stats: TrainingStatistics,
  features: readonly { name: string; dtype: OutputSpec['dtype'] }[],
  outputs: readonly OutputSpec[] | undefined,
  report: (path: readonly (string | number)[], message: string) => void,
): void {
  const check = (role: 'feature' | 'output', name: string, dtype: OutputSpec['dtype'], s: ValueStatistics) => {
    const path = ['statistics', `${role}s`, name];
    const kind = valueKind(dtype, role);
    if (kind === 'numeric' && !s.histogram) report(path, `a numeric ${role} (${dtype}) needs a histogram`);
    if (kind === 'categorical' && !s.categories) report(path, `a categorical ${role} (${dtype}) needs categories`);
  };
  const byFeature = new Map(features.map((f) => [f.name, f]));
  for (const [name, s] of Object.entries(stats.features)) {
    const f = byFeature.get(name);
    if (!f) report(['statistics', 'features', name], `the manifest declares no feature "${name}"`);
    else check('feature', name, f.dtype, s);
  }
  if (!outputs) return;
  const byOutput = new Map(outputs.map((o) => [o.name, o]));
  for (const [name, s] of Object.entries(stats.outputs)) {
    const element = /^(.+)\[(\d+)\]$/.exec(name);
    const o = byOutput.get(element ? element[1]! : name);
    if (!o) report(['statistics', 'outputs', name], `the manifest declares no output "${element ? element[1] : name}"`);
    else if (element && o.kind !== 'vector') report(['statistics', 'outputs', name], `output "${o.name}" is not a vector`);
    else if (element && Number(element[2]) >= MAX_VECTOR_ELEMENTS) report(['statistics', 'outputs', name], `statistics cover a vector's first ${MAX_VECTOR_ELEMENTS} elements`);
    else if (!element && o.kind === 'vector') report(['statistics', 'outputs', name], `output "${o.name}" is a vector: give its elements as ${o.name}[0], ${o.name}[1], ...`);
    else check('output', name, o.dtype, s);
  }
}

/** `path: message; path: message`, each path from the manifest's root (`(root)` for the manifest itself). */
function problemsOf(issues: readonly z.core.$ZodIssue[], prefix: readonly PropertyKey[] = []): string {
  return issues
    .map((i) => {
      const path = [...prefix, ...i.path];
      return `${path.length ? path.map(String).join('.') : '(root)'}: ${i.message}`;
    })
    .join('; ');
}

/** The registered runtimes. One line per runtime. */
const descriptors = [
  onnxDescriptor,
  rulesDescriptor,
  sageMakerDescriptor,
] as const;
export type RegisteredDescriptors = typeof descriptors;

export const registry = createRegistry(descriptors);

export const runtimeKinds = registry.kinds;
export const createRuntimes = registry.createRuntimes;
export const outputSpecs = registry.outputSpecs;
export const requireTestCases = registry.requireTestCases;
export const composedModelsOf = registry.composedModelsOf;
export const compositionFieldOf = registry.compositionFieldOf;
export const oipPlatformOf = registry.oipPlatformOf;
export const packedInputsOf = registry.packedInputsOf;
