/**
 * The model bundle's manifest (ARCHITECTURE.md, "The model bundle"): `sibyl.yaml`, `sibyl.yml` or `sibyl.json` at
 * the zip's root.
 * `parseManifest` validates once and reports every problem, each naming its field path.
 */
import { z } from 'zod';
import { parse as parseYaml } from 'yaml';
import { SibylError } from '../core/errors.ts';
import { NAME, nameSchema, VERSION } from '../core/names.ts';

export const MANIFEST_FILES = ['sibyl.yaml', 'sibyl.yml', 'sibyl.json'] as const;

const name = nameSchema(NAME);
const version = nameSchema(VERSION);
const fileName = z
  .string()
  .min(1)
  .refine((p) => !p.startsWith('/') && !p.split('/').includes('..') && !p.includes('\\'), 'must be a relative path inside the bundle');

export const Dtype = z.enum(['float32', 'float64', 'int32', 'int64', 'bool', 'string']);
export type Dtype = z.infer<typeof Dtype>;

const scalar = z.union([z.number(), z.string(), z.boolean()]);

export const FeatureSpec = z
  .object({
    name,
    dtype: Dtype,
    /** `request`: the caller sends it; `store`: read from the feature store by entity id (a request value still wins). */
    source: z.enum(['request', 'store']),
    /** Store features: the entity whose id keys the lookup (`{prefix}:{entity}:{id}`). */
    entity: name.optional(),
    /** Store features: the hash field; defaults to the feature's name. */
    key: z.string().min(1).optional(),
    /** Used when the value is missing, late or the store is down. Required: a model never sees a hole. */
    default: scalar,
    description: z.string().optional(),
  })
  .strict()
  .superRefine((f, ctx) => {
    if (f.source === 'store' && !f.entity) ctx.addIssue({ code: 'custom', path: ['entity'], message: 'is required for store features' });
    if (f.source === 'request' && f.entity) ctx.addIssue({ code: 'custom', path: ['entity'], message: 'is only for store features' });
    const okDefault = f.dtype === 'string' ? typeof f.default === 'string' : f.dtype === 'bool' ? typeof f.default === 'boolean' : typeof f.default === 'number';
    if (!okDefault) ctx.addIssue({ code: 'custom', path: ['default'], message: `must be a ${f.dtype} value` });
  });
export type FeatureSpec = z.infer<typeof FeatureSpec>;

export const OnnxInput = z
  .object({
    /** The ONNX graph input's name. */
    name: z.string().min(1),
    dtype: z.enum(['float32', 'float64', 'int32', 'int64', 'bool', 'string']),
    /** The features packed into this tensor, in column order: shape [rows, features.length]. */
    features: z.array(name).min(1),
  })
  .strict();

export const OnnxOutput = z
  .object({
    /** The ONNX graph output's name. */
    name: z.string().min(1),
    /** The name clients see; defaults to `name`. */
    as: name.optional(),
    /** `scalar`: one value per row (shape [rows] or [rows, 1]); `vector`: an array per row (shape [rows, k]). */
    kind: z.enum(['scalar', 'vector']).default('scalar'),
    /** Element type clients see (Open Inference Protocol datatype); default float32. */
    dtype: Dtype.default('float32'),
  })
  .strict();

/** An output of a rules or SageMaker model (ONNX models declare theirs under `onnx.outputs`). */
export const OutputDecl = z
  .object({
    name,
    /** `scalar`: one value per row; `vector`: an array per row. */
    kind: z.enum(['scalar', 'vector']).default('scalar'),
    dtype: Dtype.default('float32'),
  })
  .strict();

export const OnnxSettings = z
  .object({
    file: fileName,
    inputs: z.array(OnnxInput).min(1),
    outputs: z.array(OnnxOutput).min(1),
    /** Session intra-op threads (default 1: the event loop needs the other core). */
    intraOpThreads: z.number().int().min(1).max(64).optional(),
    /** Batches of at least this many rows run off the event loop (default: from measurement, see runtimes/onnx). */
    offloadRows: z.number().int().min(1).optional(),
  })
  .strict();

export const TestCase = z
  .object({
    name: z.string().min(1),
    features: z.record(z.string(), scalar),
    /** Composed rules: the outputs of the models the rule composes, by their `as` name (ctx.models in the rule). */
    models: z.record(z.string(), z.record(z.string(), z.union([z.number(), z.string(), z.boolean(), z.array(z.number()), z.array(z.string())]))).optional(),
    expected: z.record(z.string(), z.union([z.number(), z.string(), z.boolean(), z.array(z.number()), z.array(z.string())])),
    /** Absolute tolerance for numbers (default 1e-5): |actual - expected| <= tolerance (runtimes/test-cases.ts). */
    tolerance: z.number().nonnegative().default(1e-5),
  })
  .strict();
export type TestCase = z.infer<typeof TestCase>;

export const Manifest = z
  .object({
    name,
    version,
    runtime: z.enum(['onnx', 'rules', 'sagemaker']),
    /** Make this version the model's default when it is deployed. */
    default: z.boolean().default(false),
    description: z.string().default(''),
    owner: z.string().default(''),
    features: z.array(FeatureSpec).default([]),
    onnx: OnnxSettings.optional(),
    /** The outputs of a rules or SageMaker model, in order (required for them; ONNX uses `onnx.outputs`). */
    outputs: z.array(OutputDecl).min(1).optional(),
    /** Settings of the rules runtime (issue: rules); validated by that runtime. */
    rules: z.record(z.string(), z.unknown()).optional(),
    /** Settings of the sagemaker runtime (issue: sagemaker); validated by that runtime. */
    sagemaker: z.record(z.string(), z.unknown()).optional(),
    tests: z.array(TestCase).default([]),
  })
  .strict()
  .superRefine((m, ctx) => {
    const names = new Set<string>();
    m.features.forEach((f, i) => {
      if (names.has(f.name)) ctx.addIssue({ code: 'custom', path: ['features', i, 'name'], message: `duplicate feature "${f.name}"` });
      names.add(f.name);
    });
    if (m.runtime !== 'onnx' && m.onnx) ctx.addIssue({ code: 'custom', path: ['onnx'], message: `is only for runtime onnx, not ${m.runtime}` });
    if (m.runtime === 'onnx' && m.outputs) ctx.addIssue({ code: 'custom', path: ['outputs'], message: 'is not for runtime onnx (declare onnx.outputs)' });
    if (m.runtime !== 'onnx' && !m.outputs) ctx.addIssue({ code: 'custom', path: ['outputs'], message: `is required for runtime ${m.runtime}` });
    if (m.outputs) {
      const seen = new Set<string>();
      m.outputs.forEach((o, i) => {
        if (seen.has(o.name)) ctx.addIssue({ code: 'custom', path: ['outputs', i, 'name'], message: `duplicate output "${o.name}"` });
        seen.add(o.name);
      });
    }
    if (m.runtime === 'onnx') {
      if (!m.onnx) {
        ctx.addIssue({ code: 'custom', path: ['onnx'], message: 'is required for runtime onnx' });
        return;
      }
      m.onnx.inputs.forEach((input, i) =>
        input.features.forEach((f, j) => {
          if (!names.has(f)) ctx.addIssue({ code: 'custom', path: ['onnx', 'inputs', i, 'features', j], message: `names undeclared feature "${f}"` });
        }),
      );
      const outs = new Set<string>();
      m.onnx.outputs.forEach((o, i) => {
        const as = o.as ?? o.name;
        if (outs.has(as)) ctx.addIssue({ code: 'custom', path: ['onnx', 'outputs', i], message: `duplicate output "${as}"` });
        outs.add(as);
      });
    }
  });
export type Manifest = z.infer<typeof Manifest>;

/** Validates a parsed manifest object; throws INVALID_ARGUMENT listing every problem as `path: message`. */
export function validateManifest(raw: unknown): Manifest {
  const result = Manifest.safeParse(raw);
  if (result.success) return result.data;
  const problems = result.error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`);
  throw new SibylError('INVALID_ARGUMENT', `invalid manifest: ${problems.join('; ')}`);
}

/** Parses manifest text (YAML is a superset of JSON) and validates it. */
export function parseManifest(text: string, fileName = 'sibyl.yaml'): Manifest {
  let raw: unknown;
  try {
    raw = parseYaml(text, { maxAliasCount: 50 });
  } catch (err) {
    throw new SibylError('INVALID_ARGUMENT', `invalid manifest: ${fileName} is not valid YAML/JSON: ${(err as Error).message.split('\n')[0]}`);
  }
  return validateManifest(raw);
}

/** What a model returns, whatever its runtime: the names, element types and kinds of its outputs. */
export interface OutputSpec {
  readonly name: string;
  readonly dtype: Dtype;
  readonly kind: 'scalar' | 'vector';
}

/** The outputs a manifest declares, in order. Each runtime's section says how its outputs are named. */
export function outputSpecs(m: Manifest): OutputSpec[] {
  if (m.onnx) return m.onnx.outputs.map((o) => ({ name: o.as ?? o.name, dtype: o.dtype, kind: o.kind }));
  return (m.outputs ?? []).map((o) => ({ name: o.name, dtype: o.dtype, kind: o.kind }));
}
