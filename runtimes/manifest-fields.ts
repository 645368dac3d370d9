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

/** Most bins of a training histogram (and so of the PSI over it). */
export const MAX_HISTOGRAM_BINS = 100;
/** Most categories of one training categorical; rarer ones belong in `other`. */
export const MAX_CATEGORIES = 100;
/** Elements of a vector output that get statistics of their own (`name[0]` .. `name[15]`). */
export const MAX_VECTOR_ELEMENTS = 16;

const finite = z.number().refine(Number.isFinite, 'must be a finite number');

/**
 * A training histogram over `edges`, strictly increasing cut points: bin 0 holds values <= edges[0], bin i values in
 * (edges[i-1], edges[i]], the last bin values > the last edge; `counts` has one more entry than `edges`.
 */
export const Histogram = z
  .object({
    edges: z.array(finite).min(1).max(MAX_HISTOGRAM_BINS - 1),
    counts: z.array(z.number().nonnegative()),
  })
  .strict()
  .superRefine((h, ctx) => {
    for (let i = 1; i < h.edges.length; i++) {
      if (!(h.edges[i]! > h.edges[i - 1]!)) ctx.addIssue({ code: 'custom', path: ['edges', i], message: 'edges must be strictly increasing' });
    }
    if (h.counts.length !== h.edges.length + 1) {
      ctx.addIssue({ code: 'custom', path: ['counts'], message: `must have ${h.edges.length + 1} entries (one more than edges), has ${h.counts.length}` });
    }
  });
export type Histogram = z.infer<typeof Histogram>;

/**
 * The training data's statistics of one feature or output: `count` rows, the share of them `missing` a value, and
 * over the values present either a numeric summary (mean, variance, min, max and a `histogram`) or, for a
 * categorical, the count of each category (`categories`, plus `other` for the rest). Which of the two a value needs
 * follows from its dtype (`valueKind`).
 */
export const ValueStatistics = z
  .object({
    count: z.number().int().nonnegative(),
    missing: z.number().min(0).max(1).default(0),
    mean: finite.optional(),
    variance: finite.refine((v) => v >= 0, 'must be >= 0').optional(),
    min: finite.optional(),
    max: finite.optional(),
    histogram: Histogram.optional(),
    /** Per category, as its string: a string's value, `true`/`false`, a class label's number (`'0'`, `'1'`). */
    categories: z.record(z.string(), z.number().nonnegative()).optional(),
    /** Values of categories not listed. */
    other: z.number().nonnegative().default(0),
  })
  .strict()
  .superRefine((s, ctx) => {
    const report = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });
    if (s.histogram && s.categories) report('categories', 'a value has a histogram (numeric) or categories (categorical), not both');
    if (s.histogram) {
      for (const k of ['mean', 'variance', 'min', 'max'] as const) if (s[k] === undefined) report(k, 'is required with a histogram');
      if (s.min !== undefined && s.max !== undefined && s.min > s.max) report('min', 'must be <= max');
      const total = s.histogram.counts.reduce((a, b) => a + b, 0);
      if (total > s.count) report('histogram', `counts sum to ${total}, more than count ${s.count}`);
    }
    if (s.categories) {
      const n = Object.keys(s.categories).length;
      if (n > MAX_CATEGORIES) report('categories', `at most ${MAX_CATEGORIES} categories (count the rest in other), got ${n}`);
      const total = Object.values(s.categories).reduce((a, b) => a + b, s.other);
      if (total > s.count) report('categories', `counts sum to ${total}, more than count ${s.count}`);
    }
  });
export type ValueStatistics = z.infer<typeof ValueStatistics>;

/**
 * The training data's statistics (the manifest's optional `statistics:`), what the control tower measures serving
 * traffic against for drift. Keys of `features` are declared features; keys of `outputs` are declared outputs, or
 * `name[i]` for element i of a vector output (i < MAX_VECTOR_ELEMENTS).
 */
export const TrainingStatistics = z
  .object({
    /** What the statistics were computed on: a data set, a query, a date range. */
    source: z.string().default(''),
    /** Population stability index above which a feature or output counts as drifted (else the tower's setting). */
    driftThreshold: z.number().positive().optional(),
    features: z.record(z.string(), ValueStatistics).default({}),
    outputs: z.record(z.string(), ValueStatistics).default({}),
  })
  .strict();
export type TrainingStatistics = z.infer<typeof TrainingStatistics>;

/**
 * How a value is summarized, in training and in serving: `categorical` (counts per category; drift is the PSI over
 * the categories) or `numeric` (mean, variance, min, max, a histogram or quantile sketch; drift is the PSI over the
 * training histogram's bins). Features: strings and booleans are categorical. Outputs: as the shadow comparison
 * treats them, floats are numeric and every other dtype (a class label) categorical.
 */
export function valueKind(dtype: Dtype, role: 'feature' | 'output'): 'numeric' | 'categorical' {
  if (role === 'feature') return dtype === 'string' || dtype === 'bool' ? 'categorical' : 'numeric';
  return dtype === 'float32' || dtype === 'float64' ? 'numeric' : 'categorical';
}

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
  /** The training data's statistics per feature and output (TrainingStatistics), for drift. */
  statistics: TrainingStatistics.optional(),
};

/** A validated manifest as any runtime sees it: the shared fields and the runtime's kind. */
export type ManifestCore = z.output<z.ZodObject<typeof manifestFields>> & { runtime: string };

/** What a model returns, whatever its runtime: the names, element types and kinds of its outputs. */
export interface OutputSpec {
  readonly name: string;
  readonly dtype: Dtype;
  readonly kind: 'scalar' | 'vector';
}
