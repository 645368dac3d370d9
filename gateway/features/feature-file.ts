/**
 * Feature files: the rows that seed the in-process store and that `sibyl features load` writes into Redis.
 *
 * JSON lines (`.jsonl`): one object per line, `{"entity": "restaurant", "id": "r1", "features": {"prep_time_avg_7d": 14.2}}`.
 *   Feature values may be numbers, strings or booleans and are stored as strings (as Redis stores them); a null
 *   value is skipped (the feature stays absent and the model's default applies). Blank lines are skipped.
 * CSV (`.csv`): a header `entity,id,<feature>...` (entity and id may be in any column), one row per entity; an
 *   empty cell is skipped like a null.
 *
 * Rows become hashes at `featureKey(prefix, entity, id)`. A bad row fails the whole file with a FeatureFileError
 * naming its line.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { parse as parseCsv } from 'csv-parse';
import { featureKey } from '../../execution/feature-store.ts';

export type FeatureFileFormat = 'jsonl' | 'csv';

/** One entity's features, as read from a file. */
export interface FeatureRow {
  readonly entity: string;
  readonly id: string;
  /** Feature name → stored string value. */
  readonly fields: Readonly<Record<string, string>>;
  /** 1-based line of the row in its file (the last line for a CSV record spanning several). */
  readonly line: number;
}

/** One hash to write, as FeatureStore.write takes it. */
export interface FeatureEntry {
  readonly key: string;
  readonly fields: Readonly<Record<string, string>>;
}

/** A file that cannot be read as features; `line` is 1-based, or undefined for problems with the whole file. */
export class FeatureFileError extends Error {
  readonly path: string;
  readonly line: number | undefined;
  constructor(path: string, line: number | undefined, problem: string, options?: { cause?: unknown }) {
    super(line === undefined ? `${path}: ${problem}` : `${path}:${line}: ${problem}`, options);
    this.name = 'FeatureFileError';
    this.path = path;
    this.line = line;
  }
}

/** The format named by a file's extension: `.csv` is CSV, everything else JSON lines. */
export function formatOf(path: string): FeatureFileFormat {
  return path.toLowerCase().endsWith('.csv') ? 'csv' : 'jsonl';
}

/** Streams a feature file's rows in file order. Throws FeatureFileError (file missing, bad row) while iterating. */
export async function* readFeatureRows(path: string, format: FeatureFileFormat = formatOf(path)): AsyncGenerator<FeatureRow> {
  try {
    yield* format === 'csv' ? csvRows(path) : jsonlRows(path);
  } catch (err) {
    if (err instanceof FeatureFileError) throw err;
    const e = err as NodeJS.ErrnoException & { lines?: number };
    if (e.code === 'ENOENT' || e.code === 'EACCES' || e.code === 'EISDIR') {
      throw new FeatureFileError(path, undefined, `cannot read the file (${e.code})`, { cause: err });
    }
    // csv-parse errors carry the line they stopped at.
    throw new FeatureFileError(path, typeof e.lines === 'number' ? e.lines : undefined, e.message, { cause: err });
  }
}

/** Reads a whole feature file into entries keyed `{prefix}:{entity}:{id}`. Throws FeatureFileError. */
export async function loadFeatureFile(path: string, prefix: string, format?: FeatureFileFormat): Promise<FeatureEntry[]> {
  const entries: FeatureEntry[] = [];
  for await (const row of readFeatureRows(path, format)) entries.push(toEntry(row, prefix));
  return entries;
}

export function toEntry(row: FeatureRow, prefix: string): FeatureEntry {
  return { key: featureKey(prefix, row.entity, row.id), fields: row.fields };
}

async function* jsonlRows(path: string): AsyncGenerator<FeatureRow> {
  const lines = createInterface({ input: createReadStream(path, { encoding: 'utf8' }), crlfDelay: Infinity });
  let line = 0;
  for await (const text of lines) {
    line++;
    if (text.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw new FeatureFileError(path, line, `not valid JSON (${(err as Error).message})`);
    }
    yield jsonRow(path, line, value);
  }
}

function jsonRow(path: string, line: number, value: unknown): FeatureRow {
  const bad = (problem: string) => new FeatureFileError(path, line, problem);
  if (!isPlainObject(value)) throw bad('expected an object like {"entity": "...", "id": "...", "features": {...}}');
  const entity = checkEntity(value.entity, bad);
  const id = checkId(value.id, bad);
  const features = value.features;
  if (!isPlainObject(features)) throw bad('"features" must be an object of feature name → value');
  const fields: Record<string, string> = {};
  for (const name of Object.keys(features)) {
    if (name === '') throw bad('a feature name is empty');
    const v = features[name];
    if (v === null) continue;
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) throw bad(`feature "${name}" is not a finite number`);
      fields[name] = String(v);
    } else if (typeof v === 'string') {
      fields[name] = v;
    } else if (typeof v === 'boolean') {
      fields[name] = v ? 'true' : 'false';
    } else {
      throw bad(`feature "${name}" must be a number, string, boolean or null (got ${Array.isArray(v) ? 'an array' : typeof v})`);
    }
  }
  return { entity, id, fields, line };
}

async function* csvRows(path: string): AsyncGenerator<FeatureRow> {
  const records = createReadStream(path).pipe(parseCsv({ info: true, skip_empty_lines: true, bom: true }));
  let header: string[] | undefined;
  let entityCol = -1;
  let idCol = -1;
  for await (const { record, info } of records as AsyncIterable<{ record: string[]; info: { lines: number } }>) {
    const line = info.lines;
    const bad = (problem: string) => new FeatureFileError(path, line, problem);
    if (!header) {
      header = record.map((h) => h.trim());
      entityCol = header.indexOf('entity');
      idCol = header.indexOf('id');
      if (entityCol < 0 || idCol < 0) throw bad(`the header must name the columns "entity" and "id" (got ${header.join(',')})`);
      const seen = new Set<string>();
      for (const h of header) {
        if (h === '') throw bad('a column name is empty');
        if (seen.has(h)) throw bad(`column "${h}" appears twice`);
        seen.add(h);
      }
      continue;
    }
    const entity = checkEntity(record[entityCol], bad);
    const id = checkId(record[idCol], bad);
    const fields: Record<string, string> = {};
    for (let c = 0; c < header.length; c++) {
      if (c === entityCol || c === idCol) continue;
      const v = record[c];
      if (v !== undefined && v !== '') fields[header[c]!] = v;
    }
    yield { entity, id, fields, line };
  }
  if (!header) throw new FeatureFileError(path, undefined, 'empty file: expected a header "entity,id,<feature>..."');
}

function checkEntity(v: unknown, bad: (problem: string) => Error): string {
  if (typeof v !== 'string' || v === '') throw bad('"entity" must be a non-empty string');
  if (v.includes(':')) throw bad(`"entity" must not contain ':' (got "${v}")`);
  return v;
}

function checkId(v: unknown, bad: (problem: string) => Error): string {
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  if (typeof v !== 'string' || v === '') throw bad('"id" must be a non-empty string or a number');
  return v;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
