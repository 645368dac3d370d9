/**
 * A model version's features, compiled once at load: which come from the request, which from the store (grouped
 * by entity so a row costs one lookup per entity), their types and defaults. `enrich` turns request rows into the
 * complete feature rows a runtime takes.
 */
import type { Dtype, FeatureSpec, Manifest } from '../runtimes/manifest.ts';
import type { FeatureRow, Scalar } from '../runtimes/contract.ts';
import { SibylError } from '../core/errors.ts';
import type { FeatureLookup, FeatureStore } from './feature-store.ts';

export interface InputRow {
  /** Entity name to id. */
  readonly entities: Readonly<Record<string, string>>;
  /** Inline feature values; they win over the store. */
  readonly features: Readonly<Record<string, Scalar>>;
}

interface CompiledFeature {
  readonly name: string;
  readonly dtype: Dtype;
  readonly fromStore: boolean;
  readonly default: Scalar;
}

interface EntityGroup {
  readonly entity: string;
  /** Hash fields to read, parallel to `features`. */
  readonly fields: readonly string[];
  readonly features: readonly CompiledFeature[];
}

export interface FeaturePlan {
  readonly features: readonly CompiledFeature[];
  /**
   * Every feature's name, in the manifest's order, as an own property (undefined): a row starts as a copy of it, so
   * it keeps V8's fast properties and the manifest's order. Twenty keyed stores into `{}` made it a dictionary
   * (ARCHITECTURE.md, "Garbage collection on the request path").
   */
  readonly rowTemplate: Readonly<FeatureRow>;
  readonly byName: ReadonlyMap<string, CompiledFeature>;
  readonly groups: readonly EntityGroup[];
  readonly entities: ReadonlySet<string>;
}

export function compileFeaturePlan(manifest: Manifest): FeaturePlan {
  const features = manifest.features.map(
    (f: FeatureSpec): CompiledFeature => ({ name: f.name, dtype: f.dtype, fromStore: f.source === 'store', default: f.default }),
  );
  const groups = new Map<string, { fields: string[]; features: CompiledFeature[] }>();
  manifest.features.forEach((f, i) => {
    if (f.source !== 'store' || !f.entity) return;
    let g = groups.get(f.entity);
    if (!g) groups.set(f.entity, (g = { fields: [], features: [] }));
    g.fields.push(f.key ?? f.name);
    g.features.push(features[i]!);
  });
  const rowTemplate: FeatureRow = {};
  for (const f of features) Object.defineProperty(rowTemplate, f.name, { value: undefined, enumerable: true, writable: true, configurable: true });
  return {
    features,
    rowTemplate,
    byName: new Map(features.map((f) => [f.name, f])),
    groups: [...groups].map(([entity, g]) => ({ entity, fields: g.fields, features: g.features })),
    entities: new Set(groups.keys()),
  };
}

export interface Enriched {
  readonly rows: FeatureRow[];
  /** Per row, the features that fell back to their defaults. */
  readonly defaulted: string[][];
  /** Why the store was not used: undefined when it answered (or was not needed). */
  readonly storeFailure: 'timeout' | 'error' | undefined;
}

/**
 * Validates request rows against the plan and fills every feature: request value, else store value, else default.
 * Throws INVALID_ARGUMENT for unknown features or entities, wrongly typed values, or a missing entity id that a store
 * feature needs. Never throws for the store: a store that fails or is late leaves its features at their defaults.
 */
export function enrich(
  plan: FeaturePlan,
  input: readonly InputRow[],
  store: FeatureStore,
  prefix: string,
  timeoutMs: number,
): Promise<Enriched> {
  let rows: Rows;
  try {
    rows = requestRows(plan, input, prefix);
  } catch (err) {
    return Promise.reject(err);
  }
  if (rows.lookups.length === 0) return Promise.resolve({ rows: rows.rows, defaulted: rows.defaulted, storeFailure: undefined });
  return withStored(rows, store, timeoutMs);
}

/** A request's rows filled from the request and the defaults, and what the store must still give. */
interface Rows {
  readonly rows: FeatureRow[];
  readonly defaulted: string[][];
  readonly lookups: FeatureLookup[];
  /** Parallel to `lookups`: the row and the entity group each one fills. */
  readonly pending: { row: number; group: EntityGroup }[];
}

/**
 * The synchronous part of `enrich`, kept out of the async function that awaits the store: inside it, V8 allocated
 * ~2.6 KB per call for these loops on a row of 20 inline features, against ~0.9 KB here (scavenges counted over
 * 200,000 calls), and `enrich` was the largest allocator per S1 request (ARCHITECTURE.md, "Garbage collection on the
 * request path").
 */
function requestRows(plan: FeaturePlan, input: readonly InputRow[], prefix: string): Rows {
  const rows: FeatureRow[] = new Array(input.length);
  const defaulted: string[][] = new Array(input.length);
  const lookups: FeatureLookup[] = [];
  const pending: { row: number; group: EntityGroup }[] = [];

  for (let i = 0; i < input.length; i++) {
    const src = input[i]!;
    const row: FeatureRow = { ...plan.rowTemplate };
    for (const name in src.features) {
      const f = plan.byName.get(name);
      if (!f) throw new SibylError('INVALID_ARGUMENT', `rows[${i}].features.${name}: the model has no feature "${name}"`);
      row[name] = checkInline(src.features[name]!, f, i);
    }
    for (const entity in src.entities) {
      if (!plan.entities.has(entity)) {
        throw new SibylError('INVALID_ARGUMENT', `rows[${i}].entities.${entity}: the model has no entity "${entity}"${plan.entities.size ? ` (it has ${[...plan.entities].join(', ')})` : ''}`);
      }
    }
    const missing: string[] = [];
    for (const f of plan.features) {
      if (!f.fromStore && row[f.name] === undefined) {
        row[f.name] = f.default;
        missing.push(f.name);
      }
    }
    for (const group of plan.groups) {
      if (allGiven(row, group.features)) continue;
      const id = src.entities[group.entity];
      if (!id) {
        throw new SibylError('INVALID_ARGUMENT', `rows[${i}].entities.${group.entity}: an id is required (the model reads ${group.features.map((f) => f.name).join(', ')} by it)`);
      }
      lookups.push({ key: `${prefix}:${group.entity}:${id}`, fields: group.fields });
      pending.push({ row: i, group });
    }
    rows[i] = row;
    defaulted[i] = missing;
  }
  return { rows, defaulted, lookups, pending };
}

/** Whether the request gave every one of `features` (no store read for them). */
function allGiven(row: FeatureRow, features: readonly CompiledFeature[]): boolean {
  for (let k = 0; k < features.length; k++) if (row[features[k]!.name] === undefined) return false;
  return true;
}

/** Reads `lookups` from the store and fills their features: the stored value, else the default. */
async function withStored(r: Rows, store: FeatureStore, timeoutMs: number): Promise<Enriched> {
  let values: (string | null)[][] | undefined;
  let storeFailure: Enriched['storeFailure'];
  try {
    values = await store.read(r.lookups, timeoutMs);
  } catch (err) {
    storeFailure = err instanceof SibylError && err.code === 'DEADLINE_EXCEEDED' ? 'timeout' : 'error';
  }
  fillStored(r, values);
  return { rows: r.rows, defaulted: r.defaulted, storeFailure };
}

function fillStored(r: Rows, values: (string | null)[][] | undefined): void {
  const { rows, defaulted, pending } = r;
  for (let j = 0; j < pending.length; j++) {
    const { row: i, group } = pending[j]!;
    const row = rows[i]!;
    const got = values?.[j];
    for (let k = 0; k < group.features.length; k++) {
      const f = group.features[k]!;
      if (row[f.name] !== undefined) continue;
      const parsed = got ? parseStored(got[k] ?? null, f.dtype) : undefined;
      if (parsed === undefined) {
        row[f.name] = f.default;
        defaulted[i]!.push(f.name);
      } else {
        row[f.name] = parsed;
      }
    }
  }
}

/** The largest finite float32 (a larger value would reach the model as Infinity). */
const FLOAT32_MAX = 3.4028234663852886e38;
const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

function checkInline(v: Scalar, f: CompiledFeature, row: number): Scalar {
  switch (f.dtype) {
    case 'float32':
      if (typeof v === 'number' && Number.isFinite(v) && Math.abs(v) <= FLOAT32_MAX) return v;
      break;
    case 'float64':
      if (typeof v === 'number' && Number.isFinite(v)) return v;
      break;
    case 'int32':
      if (typeof v === 'number' && Number.isInteger(v) && v >= INT32_MIN && v <= INT32_MAX) return v;
      break;
    case 'int64':
      if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
      break;
    case 'bool':
      if (typeof v === 'boolean') return v;
      break;
    case 'string':
      if (typeof v === 'string') return v;
      break;
  }
  throw new SibylError('INVALID_ARGUMENT', `rows[${row}].features.${f.name}: must be ${WANT[f.dtype]} (${f.dtype}), got ${shown(v)}`);
}

const WANT: Readonly<Record<Dtype, string>> = {
  float32: `a finite number within ±${FLOAT32_MAX.toPrecision(8)}`,
  float64: 'a finite number',
  int32: `an integer from ${INT32_MIN} to ${INT32_MAX}`,
  int64: 'an integer of at most 53 bits',
  bool: 'a boolean',
  string: 'a string',
};

/** A value as the caller sent it: numbers as numbers (`1e+39`, `Infinity`, `NaN`), never JSON's `null` for them. */
function shown(v: unknown): string {
  return typeof v === 'number' ? String(v) : JSON.stringify(v);
}

/** A stored string as the feature's type; undefined when absent or unparsable (the default applies). */
function parseStored(raw: string | null, dtype: Dtype): Scalar | undefined {
  if (raw === null) return undefined;
  switch (dtype) {
    case 'string':
      return raw;
    case 'bool':
      return raw === 'true' || raw === '1' ? true : raw === 'false' || raw === '0' ? false : undefined;
    default: {
      if (raw === '') return undefined;
      const n = Number(raw);
      return Number.isFinite(n) ? n : undefined;
    }
  }
}

/** Rows already enriched for another version of the same request (the live one, or the rule that composes). */
export interface KnownRows {
  readonly rows: readonly FeatureRow[];
  /** Per row, the features that fell back to their defaults there: not reused. */
  readonly defaulted: readonly (readonly string[])[];
}

/**
 * A version's own request rows: of each request row, the features and entities the version declares; a feature the
 * request does not give is taken from `known` rows (already read for another version of the same request) unless
 * it was defaulted there, so the version reads it itself with its own default. `enrich` on the result fetches
 * only what is still missing.
 */
export function rowsFor(plan: FeaturePlan, input: readonly InputRow[], known?: KnownRows): InputRow[] {
  return input.map((src, i) => {
    const k = known?.rows[i];
    const skip = known?.defaulted[i];
    const features: Record<string, Scalar> = {};
    for (const f of plan.features) {
      const fromRequest = src.features[f.name];
      if (fromRequest !== undefined) features[f.name] = fromRequest;
      else if (k !== undefined && k[f.name] !== undefined && !skip?.includes(f.name)) features[f.name] = k[f.name]!;
    }
    const entities: Record<string, string> = {};
    for (const e in src.entities) if (plan.entities.has(e)) entities[e] = src.entities[e]!;
    return { entities, features };
  });
}
