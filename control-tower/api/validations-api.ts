/**
 * Inspections: a bundle run through the upload gate without storing anything (the console's upload page shows
 * its verdict before publishing; the rule playground runs its edits here). The same validation process and
 * limits as an upload (upload-validator.ts: the real runtimes, the rules sandbox with the manifest's limits, the
 * test cases through execution/test-cases.ts), taking a turn in the same gate (validation-gate.ts), plus the
 * tower's own checks of an upload: composed models exist without a cycle, and the version is new or identical.
 * Publisher role: it runs the caller's code.
 */
import { createHash } from 'node:crypto';
import type { Hono } from 'hono';
import { z } from 'zod';
import { SibylError, toSibylError } from '../../core/errors.ts';
import type { TestCase } from '../../runtimes/manifest.ts';
import type { MetadataStore } from '../store/index.ts';
import type { CaseReport } from '../../execution/test-cases.ts';
import type { Check } from '../validation/index.ts';
import { checkComposition } from './composition.ts';
import { reply, requireRole, type TowerEnv } from './http.ts';
import { bundleBody } from './models-api.ts';
import { Verdict } from './schemas.ts';
import type { UploadValidator } from './upload-validator.ts';

/** Most free-form rows one inspection runs. */
export const MAX_ROWS = 100;

const scalar = z.union([z.number(), z.string(), z.boolean()]);
const value = z.union([z.number(), z.string(), z.boolean(), z.array(z.number()), z.array(z.string())]);
export const InspectRows = z
  .array(
    z
      .object({
        name: z.string().optional(),
        features: z.record(z.string(), scalar),
        models: z.record(z.string(), z.record(z.string(), value)).optional(),
      })
      .strict(),
  )
  .max(MAX_ROWS)
  .meta({ id: 'InspectRows', description: `free-form rows run as test cases with nothing expected (at most ${MAX_ROWS}); a composed rule's row may carry its models' outputs` });

export function mountValidationsApi(app: Hono<TowerEnv>, deps: { store: MetadataStore; validator: UploadValidator; maxUploadBytes: number }): void {
  app.post('/v1/validations', async (c) => {
    requireRole(c, 'publisher');
    const { zip, fields } = await bundleBody(c, deps.maxUploadBytes);
    const rows = parseRows(fields['rows']);
    const verdict = await deps.validator.inspect(zip, rows);
    const sha256 = createHash('sha256').update(zip).digest('hex');
    const checks: Check[] = [...verdict.checks];
    if (verdict.manifest && checks.every((x) => x.ok)) {
      const m = verdict.manifest;
      checks.push(await asCheck('composed models', () => checkComposition(deps.store, m)));
      checks.push(
        await asCheck('version is new', async () => {
          const existing = await deps.store.getVersion(m.name, m.version).catch(() => undefined);
          if (existing && existing.sha256 !== sha256) {
            throw new SibylError('ALREADY_EXISTS', `version ${m.version} of model ${m.name} already exists with other content; versions are immutable: give this one a new version`);
          }
        }),
      );
    }
    return reply(c, Verdict, {
      ok: checks.every((x) => x.ok),
      sha256,
      sizeBytes: zip.byteLength,
      checks,
      cases: verdict.cases.map(caseJson),
      rows: verdict.rows.map(caseJson),
      ...(verdict.manifest ? { manifest: verdict.manifest as Record<string, unknown> } : {}),
    });
  });
}

function caseJson(c: CaseReport) {
  return { ...c, features: { ...c.features }, expected: { ...c.expected }, problems: [...c.problems], ...(c.outputs ? { outputs: { ...c.outputs } } : {}) };
}

async function asCheck(name: string, run: () => Promise<void>): Promise<Check> {
  try {
    await run();
    return { name, ok: true };
  } catch (err) {
    const e = toSibylError(err);
    if (e.code === 'INTERNAL') throw err;
    return { name, ok: false, code: e.code, message: e.message };
  }
}

/** The multipart field `rows`: JSON, InspectRows; absent is none. */
function parseRows(field: unknown): TestCase[] {
  if (field === undefined) return [];
  if (typeof field !== 'string') throw new SibylError('INVALID_ARGUMENT', 'rows: a JSON array in a text field');
  let raw: unknown;
  try {
    raw = JSON.parse(field);
  } catch {
    throw new SibylError('INVALID_ARGUMENT', 'rows: not valid JSON');
  }
  const parsed = InspectRows.safeParse(raw);
  if (!parsed.success) throw new SibylError('INVALID_ARGUMENT', parsed.error.issues.map((i) => `rows.${i.path.map(String).join('.')}: ${i.message}`).join('; '));
  return parsed.data.map((r, i) => ({ name: r.name ?? `row ${i + 1}`, features: r.features, ...(r.models ? { models: r.models } : {}), expected: {}, tolerance: 1e-5 }));
}
