/**
 * The JSON Schema of the manifest (`sibyl.yaml`), generated from its zod schema (registry.ts) and committed as
 * `schemas/sibyl.schema.json` (`npm run gen:schemas`; test/contracts/schemas.test.ts fails when the file is stale).
 * Editors read it through the manifest's first line, `# yaml-language-server: $schema=<path to the file>`.
 *
 * It describes what a manifest may say (the input side: fields with defaults are optional). The cross-field rules
 * that the registry derives from the descriptors are added as `allOf` conditions on `runtime` (which section is
 * required or refused, where the outputs are declared); the checks that read values against each other (a feature
 * named twice, a section's features that the manifest does not declare) stay in `parseManifest`, which every
 * upload and every gateway runs.
 */
import { z } from 'zod';
import { registry } from './registry.ts';

/** Where the committed copy lives, relative to the repository root. */
export const MANIFEST_SCHEMA_FILE = 'schemas/sibyl.schema.json';

export function manifestJsonSchema(): Record<string, unknown> {
  const generated = z.toJSONSchema(registry.manifestSchema, { target: 'draft-2020-12', io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  const { $schema, ...body } = generated;
  const conditions = registry.descriptors.map((d) => {
    const others = registry.descriptors.filter((o) => o !== d).map((o) => o.kind);
    const then: Record<string, unknown> = {
      properties: Object.fromEntries([...others.map((k) => [k, false] as const), ...(d.outputs ? [['outputs', false] as const] : [])]),
      required: [...(d.settingsRequired ? [d.kind] : []), ...(d.outputs ? [] : ['outputs'])],
    };
    return { if: { properties: { runtime: { const: d.kind } }, required: ['runtime'] }, then };
  });
  return {
    $schema,
    title: 'Sibyl model bundle manifest (sibyl.yaml)',
    description:
      'Generated from the zod schema in runtimes/registry.ts (npm run gen:schemas); do not edit. parseManifest also checks what a schema cannot say: names unique, the features a runtime section names declared, and the upload gate wants test cases that expect every output.',
    ...body,
    allOf: conditions,
  };
}

/** The committed file's text: the schema, two-space indented, with a final newline. */
export function manifestSchemaText(): string {
  return `${JSON.stringify(manifestJsonSchema(), null, 2)}\n`;
}
