/**
 * An InvokeEndpoint response body → one OutputRow per input row, checked against the manifest's declared outputs.
 *
 * The format is the response's Content-Type when it is JSON or CSV, else the settings' `accept`.
 *
 * JSON: the per-row answers are the body itself when it is an array, else `body[response.key]` (default
 * "predictions"). CSV: one line per row, cells split on commas (RFC 4180 quotes honoured); a single line holding
 * exactly one cell per row is also read as one answer per row when the model has one scalar output (XGBoost's
 * older CSV answer).
 *
 * Each row's answer may be:
 * - an object: each declared output is read by its name;
 * - an array: with one vector output, the whole array; with one scalar output, a one-element array; otherwise one
 *   element per declared output, in declared order;
 * - a scalar: only when the model declares one scalar output.
 * Values are checked against each output's dtype and kind (numbers for float/int, integers for int, booleans or
 * 0/1 for bool, strings for string; CSV cells are parsed accordingly).
 *
 * A response that does not fit (wrong row count, missing output, wrong type) throws SibylError INTERNAL whose
 * message says what did not fit, never the response's content.
 */
import type { OutputRow, Value } from '../contract.ts';
import { SibylError } from '../../core/errors.ts';
import type { OutputSpec } from '../manifest.ts';
import type { SageMakerSettings } from './settings.ts';

export type ResponseDecoder = (body: Uint8Array, contentType: string | undefined, rows: number) => OutputRow[];

const decoder = new TextDecoder('utf-8', { fatal: true });

export function createResponseDecoder(settings: SageMakerSettings): ResponseDecoder {
  const outputs = settings.outputs;
  const key = settings.responseKey;
  return function decodeResponse(body, contentType, rows) {
    let text: string;
    try {
      text = decoder.decode(body);
    } catch (err) {
      throw mismatch('the body is not UTF-8 text', err);
    }
    const format = formatOf(contentType) ?? settings.accept;
    const answers = format === 'text/csv' ? csvAnswers(text, rows, outputs) : jsonAnswers(text, key);
    if (answers.length !== rows) throw mismatch(`it holds ${answers.length} answers for ${rows} rows`);
    const out = new Array<OutputRow>(rows);
    for (let i = 0; i < rows; i++) out[i] = outputRow(answers[i], i, outputs, format === 'text/csv');
    return out;
  };
}

function mismatch(detail: string, cause?: unknown): SibylError {
  return new SibylError('INTERNAL', `the SageMaker endpoint's response does not match the declared outputs: ${detail}`, { cause });
}

function formatOf(contentType: string | undefined): 'application/json' | 'text/csv' | undefined {
  const t = contentType?.split(';')[0]?.trim().toLowerCase();
  if (t === 'application/json' || t === 'application/jsonlines') return 'application/json';
  if (t === 'text/csv') return 'text/csv';
  return undefined;
}

function jsonAnswers(text: string, key: string): unknown[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw mismatch('the body is not valid JSON', err);
  }
  if (Array.isArray(parsed)) return parsed;
  if (parsed !== null && typeof parsed === 'object') {
    const inner = (parsed as Record<string, unknown>)[key];
    if (Array.isArray(inner)) return inner;
    throw mismatch(`the JSON object has no array under "${key}"`);
  }
  throw mismatch('the JSON body is neither an array nor an object');
}

function csvAnswers(text: string, rows: number, outputs: readonly OutputSpec[]): unknown[] {
  const lines = text.split(/\r?\n/);
  while (lines.length && lines[lines.length - 1] === '') lines.pop();
  const answers = lines.map(csvCells);
  const only = outputs.length === 1 ? outputs[0] : undefined;
  if (answers.length === 1 && rows > 1 && only?.kind === 'scalar' && answers[0]!.length === rows) return answers[0]!;
  return answers.map((cells) => (cells.length === 1 ? cells[0] : cells));
}

function csvCells(line: string): string[] {
  if (!line.includes('"')) return line.split(',');
  const cells: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') (cell += '"'), i++;
      else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') cells.push(cell), (cell = '');
    else cell += c;
  }
  cells.push(cell);
  return cells;
}

function outputRow(answer: unknown, i: number, outputs: readonly OutputSpec[], csv: boolean): OutputRow {
  const row: OutputRow = {};
  if (answer !== null && typeof answer === 'object' && !Array.isArray(answer)) {
    const o = answer as Record<string, unknown>;
    for (const spec of outputs) {
      if (!(spec.name in o)) throw mismatch(`answer ${i} has no output "${spec.name}"`);
      row[spec.name] = checked(o[spec.name], spec, i, csv);
    }
    return row;
  }
  if (outputs.length === 1) {
    const spec = outputs[0]!;
    const v = spec.kind === 'scalar' && Array.isArray(answer) && answer.length === 1 ? answer[0] : answer;
    row[spec.name] = checked(v, spec, i, csv);
    return row;
  }
  if (!Array.isArray(answer) || answer.length !== outputs.length) {
    throw mismatch(`answer ${i} is not an object or a list of ${outputs.length} values (one per declared output)`);
  }
  outputs.forEach((spec, j) => (row[spec.name] = checked(answer[j], spec, i, csv)));
  return row;
}

function checked(v: unknown, spec: OutputSpec, i: number, csv: boolean): Value {
  if (spec.kind === 'vector') {
    if (!Array.isArray(v)) throw mismatch(`answer ${i}: output "${spec.name}" is not a list`);
    const out = v.map((x) => element(x, spec, i, csv));
    return out as number[] | string[];
  }
  if (Array.isArray(v)) throw mismatch(`answer ${i}: output "${spec.name}" is a list, declared scalar`);
  return element(v, spec, i, csv);
}

function element(v: unknown, spec: OutputSpec, i: number, csv: boolean): number | string | boolean {
  if (csv && typeof v === 'string' && spec.dtype !== 'string') v = parseCell(v);
  switch (spec.dtype) {
    case 'string':
      if (typeof v === 'string') return v;
      break;
    case 'bool':
      if (typeof v === 'boolean') return v;
      if (v === 0 || v === 1) return v === 1;
      break;
    case 'int32':
    case 'int64':
      if (typeof v === 'number' && Number.isInteger(v)) return v;
      break;
    default:
      if (typeof v === 'number' && !Number.isNaN(v)) return v;
  }
  throw mismatch(`answer ${i}: output "${spec.name}" is not a ${spec.dtype} value`);
}

function parseCell(s: string): unknown {
  const t = s.trim();
  if (t === 'true' || t === 'True') return true;
  if (t === 'false' || t === 'False') return false;
  if (t === '') return s;
  const n = Number(t);
  return Number.isNaN(n) ? s : n;
}
