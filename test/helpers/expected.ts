/** The shipped models' expected.json files: inputs and the training library's outputs. */
import { readFileSync, readdirSync, existsSync, statSync } from 'node:fs';
import { join } from 'node:path';

export interface ExpectedRow {
  entities: Record<string, string>;
  request: Record<string, number>;
  features: Record<string, number>;
  expected: Record<string, number | number[]>;
}
export interface ExpectedFile {
  model: string;
  version: string;
  produced_by: string;
  rows: ExpectedRow[];
}

export const MODELS_DIR = new URL('../../models/', import.meta.url).pathname;

export function expectedFiles(): ExpectedFile[] {
  const out: ExpectedFile[] = [];
  for (const name of readdirSync(MODELS_DIR)) {
    const dir = join(MODELS_DIR, name);
    if (!statSync(dir).isDirectory()) continue;
    for (const version of readdirSync(dir)) {
      const f = join(dir, version, 'expected.json');
      if (existsSync(f)) out.push(JSON.parse(readFileSync(f, 'utf8')) as ExpectedFile);
    }
  }
  return out;
}

export function expectedFor(model: string, version: string): ExpectedFile {
  return JSON.parse(readFileSync(join(MODELS_DIR, model, version, 'expected.json'), 'utf8')) as ExpectedFile;
}

/**
 * Float32 models agree with the float64 training library to about 1e-6 relative: the check is
 * |a - e| <= 1e-5 * max(1, |e|), i.e. 1e-5 absolute for values up to 1 and 1e-5 relative above.
 */
export function close(actual: number, expected: number, tol = 1e-5): boolean {
  return Math.abs(actual - expected) <= tol * Math.max(1, Math.abs(expected));
}
