/**
 * Checks what a rule returned (already copied out of its isolate, sizes bounded there) against the manifest's
 * declared outputs and builds fresh output rows holding only those names.
 *
 * Types: float32/float64 → a finite number; int32/int64 → an integer; bool → a boolean; string → a string.
 * `vector` outputs are arrays of such elements; `scalar` ones a single value. Extra outputs are dropped.
 * Throws SibylError INTERNAL "rule error: ..." naming the row and output at the first mismatch.
 */
import type { OutputRow, Value } from '../contract.ts';
import { SibylError } from '../../core/errors.ts';
import type { Dtype, OutputSpec } from '../manifest.ts';

export function checkOutputRows(specs: readonly OutputSpec[], raw: readonly unknown[]): OutputRow[] {
  const out = new Array<OutputRow>(raw.length);
  for (let i = 0; i < raw.length; i++) {
    const r = raw[i];
    if (r === null || typeof r !== 'object' || Array.isArray(r)) throw ruleError(`row ${i}: predict must return an object of outputs, got ${describe(r)}`);
    const src = r as Record<string, unknown>;
    const row: OutputRow = {};
    for (const spec of specs) {
      const v = Object.hasOwn(src, spec.name) ? src[spec.name] : undefined;
      if (v === undefined) throw ruleError(`row ${i}: output "${spec.name}" is missing`);
      row[spec.name] = checkValue(spec, v, i);
    }
    out[i] = row;
  }
  return out;
}

function checkValue(spec: OutputSpec, v: unknown, row: number): Value {
  if (spec.kind === 'scalar') {
    if (!fits(spec.dtype, v)) throw ruleError(`row ${row}: output "${spec.name}" must be ${want(spec.dtype)}, got ${describe(v)}`);
    return v as Value;
  }
  if (!Array.isArray(v)) throw ruleError(`row ${row}: output "${spec.name}" must be an array of ${want(spec.dtype)}, got ${describe(v)}`);
  for (let j = 0; j < v.length; j++) {
    if (!fits(spec.dtype, v[j])) throw ruleError(`row ${row}: output "${spec.name}"[${j}] must be ${want(spec.dtype)}, got ${describe(v[j])}`);
  }
  if (spec.dtype === 'bool') return (v as boolean[]).map((b) => (b ? 1 : 0));
  return v as Value;
}

function fits(dtype: Dtype, v: unknown): boolean {
  switch (dtype) {
    case 'string':
      return typeof v === 'string';
    case 'bool':
      return typeof v === 'boolean';
    case 'int32':
    case 'int64':
      return Number.isSafeInteger(v);
    default:
      return typeof v === 'number' && Number.isFinite(v);
  }
}

function want(dtype: Dtype): string {
  return dtype === 'string' ? 'a string' : dtype === 'bool' ? 'a boolean' : dtype.startsWith('int') ? 'an integer' : 'a finite number';
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return v.length > 40 ? `a string of ${v.length} characters` : JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return typeof v;
}

/** The error of a rule that threw or returned something the manifest does not allow. */
export function ruleError(message: string, cause?: unknown): SibylError {
  return new SibylError('INTERNAL', `rule error: ${message}`, cause === undefined ? undefined : { cause });
}
