/**
 * Feature rows → an InvokeEndpoint request body, in the settings' column order.
 *
 * - `application/json`, `json.rows: arrays` (default): `{"instances": [[a, b, c], ...]}`; `json.key: null` sends the
 *   bare `[[...], ...]`. `json.rows: objects` sends `{"instances": [{"a": 1, ...}, ...]}`.
 * - `text/csv`: one line per row, no header, values in column order, `\n` between lines. Booleans are written 1/0,
 *   strings are quoted (RFC 4180) when they hold a comma, quote, CR or LF.
 *
 * A value absent from a row takes the feature's manifest default. A value whose type does not fit the feature's
 * dtype, a non-integer for an integer feature, or a non-finite number throws SibylError INVALID_ARGUMENT naming the
 * row and feature; so does a body larger than `maxBodyBytes`. Nothing is sent in those cases.
 */
import type { FeatureRow, Scalar } from '../contract.ts';
import { SibylError } from '../../core/errors.ts';
import type { Dtype, Manifest } from '../manifest.ts';
import type { SageMakerSettings } from './settings.ts';

export type RequestEncoder = (rows: readonly FeatureRow[]) => Buffer;

interface Column {
  readonly name: string;
  readonly dtype: Dtype;
  readonly fallback: Scalar;
}

export function createRequestEncoder(settings: SageMakerSettings, manifest: Manifest): RequestEncoder {
  const byName = new Map(manifest.features.map((f) => [f.name, f]));
  const columns: Column[] = settings.columns.map((name) => {
    const f = byName.get(name)!;
    return { name, dtype: f.dtype, fallback: f.default };
  });
  const text = settings.contentType === 'text/csv' ? csvEncoder(columns) : jsonEncoder(columns, settings.jsonKey, settings.jsonRows);
  const max = settings.maxBodyBytes;
  return function encodeRequest(rows) {
    const body = Buffer.from(text(rows), 'utf8');
    if (body.byteLength > max) {
      throw new SibylError('INVALID_ARGUMENT', `the request body for ${rows.length} rows is ${body.byteLength} bytes, above the endpoint's limit of ${max}; send fewer rows`);
    }
    return body;
  };
}

function value(row: FeatureRow, col: Column, i: number): Scalar {
  const v = row[col.name] ?? col.fallback;
  switch (col.dtype) {
    case 'string':
      if (typeof v === 'string') return v;
      break;
    case 'bool':
      if (typeof v === 'boolean') return v;
      break;
    case 'int32':
    case 'int64':
      if (typeof v === 'number' && Number.isInteger(v)) return v;
      break;
    default:
      if (typeof v === 'number' && Number.isFinite(v)) return v;
  }
  throw new SibylError('INVALID_ARGUMENT', `rows[${i}].${col.name}: ${JSON.stringify(v) ?? String(v)} is not a valid ${col.dtype} value`);
}

function jsonEncoder(columns: readonly Column[], key: string | null, shape: 'arrays' | 'objects'): (rows: readonly FeatureRow[]) => string {
  const n = columns.length;
  return function encodeJson(rows) {
    const out = new Array<unknown>(rows.length);
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!;
      if (shape === 'arrays') {
        const a = new Array<Scalar>(n);
        for (let j = 0; j < n; j++) a[j] = value(row, columns[j]!, i);
        out[i] = a;
      } else {
        const o: Record<string, Scalar> = {};
        for (let j = 0; j < n; j++) o[columns[j]!.name] = value(row, columns[j]!, i);
        out[i] = o;
      }
    }
    return JSON.stringify(key === null ? out : { [key]: out });
  };
}

const NEEDS_QUOTES = /[",\r\n]/;

function csvCell(v: Scalar): string {
  if (typeof v === 'boolean') return v ? '1' : '0';
  if (typeof v === 'number') return String(v);
  return NEEDS_QUOTES.test(v) ? `"${v.replaceAll('"', '""')}"` : v;
}

function csvEncoder(columns: readonly Column[]): (rows: readonly FeatureRow[]) => string {
  return function encodeCsv(rows) {
    const lines = new Array<string>(rows.length);
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!;
      let line = '';
      for (let j = 0; j < columns.length; j++) line += (j ? ',' : '') + csvCell(value(row, columns[j]!, i));
      lines[i] = line;
    }
    return lines.join('\n');
  };
}
