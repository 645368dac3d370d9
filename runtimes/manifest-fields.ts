/**
 * The manifest's fields that every runtime shares (name, version, features, outputs, tests): the part of the schema
 * that does not depend on which runtimes there are. runtimes/manifest.ts adds `runtime:` and one section per
 * runtime from the registry (runtimes/registry.ts).
 *
 * Runtime descriptors import their building blocks from here, never from manifest.ts: manifest.ts imports the
 * registry, which imports the descriptors.
 */
import { z } from 'zod';
import { NAME, nameSchema, VERSION } from '../core/names.ts';

/** A model, feature, entity or output name. */
export const ManifestName = nameSchema(NAME);
const version = nameSchema(VERSION);

/** A file of the bundle, relative to its root; never absolute, never through "..". */
export const BundleFile = z
  .string()
  .min(1)
  .refine((p) => !p.startsWith('/') && !p.split('/').includes('..') && !p.includes('\\'), 'must be a relative path inside the bundle');

export const Dtype = z.enum(['float32', 'float64', 'int32', 'int64', 'bool', 'string']);
export type Dtype = z.infer<typeof Dtype>;

const scalar = z.union([z.number(), z.string(), z.boolean()]);

export const FeatureSpec = z
  .object({
    name: ManifestName,
    dtype: Dtype,
    /** `request`: the caller sends it; `store`: read from the feature store by entity id (a request value still wins). */
    source: z.enum(['request', 'store']),
    /** Store features: the entity whose id keys the lookup (`{prefix}:{entity}:{id}`). */
    entity: ManifestName.optional(),
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

/** An output in the manifest's top-level `outputs:` (runtimes whose section declares its own outputs refuse these). */
export const OutputDecl = z
  .object({
    name: ManifestName,
    /** `scalar`: one value per row; `vector`: an array per row. */
    kind: z.enum(['scalar', 'vector']).default('scalar'),
    dtype: Dtype.default('float32'),
  })
  .strict();
export type OutputDecl = z.infer<typeof OutputDecl>;

export const TestCase = z
  .object({
    name: z.string().min(1),
    features: z.record(z.string(), scalar),
    /** Composed rules: the outputs of the models the rule composes, by their `as` name (ctx.models in the rule). */
    models: z.record(z.string(), z.record(z.string(), z.union([z.number(), z.string(), z.boolean(), z.array(z.number()), z.array(z.string())]))).optional(),
    expected: z.record(z.string(), z.union([z.number(), z.string(), z.boolean(), z.array(z.number()), z.array(z.string())])),
    /** Absolute tolerance for numbers (default 1e-5): |actual - expected| <= tolerance (execution/test-cases.ts). */
    tolerance: z.number().nonnegative().default(1e-5),
  })
  .strict();
export type TestCase = z.infer<typeof TestCase>;

/** The shared fields, without `runtime:` and the runtimes' sections (the registry adds those). */
export const manifestFields = {
  name: ManifestName,
  version,
  /** Make this version the model's default when it is deployed. */
  default: z.boolean().default(false),
  description: z.string().default(''),
  owner: z.string().default(''),
  features: z.array(FeatureSpec).default([]),
  /** The outputs, in order, of a runtime whose section does not declare its own (required for it, refused otherwise). */
  outputs: z.array(OutputDecl).min(1).optional(),
  tests: z.array(TestCase).default([]),
};

/** A validated manifest as any runtime sees it: the shared fields and the runtime's kind. */
export type ManifestCore = z.output<z.ZodObject<typeof manifestFields>> & { runtime: string };

/** What a model returns, whatever its runtime: the names, element types and kinds of its outputs. */
export interface OutputSpec {
  readonly name: string;
  readonly dtype: Dtype;
  readonly kind: 'scalar' | 'vector';
}
