/**
 * The model bundle's manifest (ARCHITECTURE.md, "The model bundle"): `sibyl.yaml`, `sibyl.yml` or `sibyl.json` at
 * the zip's root.
 * `parseManifest` validates once and reports every problem, each naming its field path.
 *
 * The schema is the shared fields (manifest-fields.ts), `runtime:` one of the registered kinds, and one section
 * per runtime (`onnx:`, `rules:`...), each validated by its runtime's descriptor (registry.ts).
 */
import { parse as parseYaml } from 'yaml';
import { SibylError } from '../core/errors.ts';
import { registry, type ManifestOf, type RegisteredDescriptors } from './registry.ts';

export { Dtype, FeatureSpec, OutputDecl, TestCase, TrainingStatistics, ValueStatistics, valueKind, type Histogram, type OutputSpec } from './manifest-fields.ts';
export { outputSpecs, requireTestCases } from './registry.ts';

export const MANIFEST_FILES = ['sibyl.yaml', 'sibyl.yml', 'sibyl.json'] as const;

export const Manifest = registry.manifestSchema;
/** A validated manifest: the shared fields, `runtime` one of the registered kinds, and that runtime's section. */
export interface Manifest extends ManifestOf<RegisteredDescriptors> {}

/** Validates a parsed manifest object; throws INVALID_ARGUMENT listing every problem as `path: message`. */
export function validateManifest(raw: unknown): Manifest {
  return registry.validateManifest(raw);
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
