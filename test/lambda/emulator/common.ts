/** What the emulator suites share: the packaged function, a models directory packaged as bundles, temp dirs. */
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageBundles } from '../../../lambda/packaging/package-bundles.ts';
import { ROOT } from '../../../loadtest/lambda/emulator.ts';

/** Where `npm run package:lambda` unpacks the function (scripts/lambda/test.sh runs it first). */
export const FUNCTION_DIR = join(ROOT, '.build/lambda/function');

export function packagedFunction(): string {
  if (!existsSync(join(FUNCTION_DIR, 'index.mjs'))) throw new Error(`${FUNCTION_DIR} is missing: run npm run package:lambda (scripts/lambda/test.sh does)`);
  return FUNCTION_DIR;
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `sibyl-${prefix}-`));
}

/** Packages a models directory as the function's bundles (SIBYL_BUNDLES_DIR), as `npm run package:lambda` would. */
export async function bundlesOf(modelsDir: string, cell = 'local'): Promise<string> {
  const dir = join(tempDir('lambda-bundles'), 'bundles');
  await packageBundles(modelsDir, cell, dir);
  return dir;
}

/**
 * A streaming handler's answer as the emulator returns it. Lambda's function URLs read the HTTP integration prelude
 * (JSON status and headers, then eight zero bytes) before the body; the emulator consumes the prelude and returns
 * the body alone (with status 200), so the prelude is returned when present and the body always.
 */
export function parseStreamed(raw: Buffer): { prelude: { statusCode: number; headers: Record<string, string> } | undefined; body: Buffer } {
  const at = raw.indexOf(Buffer.alloc(8));
  if (at < 0 || raw[0] !== 0x7b) return { prelude: undefined, body: raw };
  try {
    return { prelude: JSON.parse(raw.subarray(0, at).toString('utf8')), body: raw.subarray(at + 8) };
  } catch {
    return { prelude: undefined, body: raw };
  }
}
