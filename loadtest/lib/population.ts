/**
 * The seeded feature population (models/features.jsonl) and the request-side values the demo models take, read
 * once. Request features come from the models' expected rows (models/<name>/<version>/expected.json), so every
 * generated request is one a real caller could send.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export type FeatureValues = Readonly<Record<string, number>>;

export interface Population {
  /** Entity name → ids in file order (restaurant: r1..r1000, zone: z1..z200, customer: c1..c1000). */
  readonly ids: ReadonlyMap<string, readonly string[]>;
  /** `${entity}:${id}` → the stored feature values. */
  readonly features: ReadonlyMap<string, FeatureValues>;
  /** One raw line per entity, for loaders: { entity, id, features }. */
  readonly rows: readonly { entity: string; id: string; features: FeatureValues }[];
}

export function readPopulation(modelsDir: string): Population {
  const ids = new Map<string, string[]>();
  const features = new Map<string, FeatureValues>();
  const rows: { entity: string; id: string; features: FeatureValues }[] = [];
  for (const line of readFileSync(join(modelsDir, 'features.jsonl'), 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const row = JSON.parse(line) as { entity: string; id: string; features: FeatureValues };
    rows.push(row);
    let list = ids.get(row.entity);
    if (!list) ids.set(row.entity, (list = []));
    list.push(row.id);
    features.set(`${row.entity}:${row.id}`, row.features);
  }
  return { ids, features, rows };
}

export interface ExpectedRow {
  readonly entities: Readonly<Record<string, string>>;
  readonly request: FeatureValues;
  readonly features: FeatureValues;
}

export function readExpectedRows(modelsDir: string, model: string, version: string): readonly ExpectedRow[] {
  const doc = JSON.parse(readFileSync(join(modelsDir, model, version, 'expected.json'), 'utf8')) as { rows: ExpectedRow[] };
  return doc.rows;
}
