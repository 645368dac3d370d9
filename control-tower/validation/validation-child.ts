/**
 * The validation process (forked by upload-validator.ts): unpacks one bundle zip, requires test cases that expect
 * every output, loads its model with the real runtimes, runs the cases (and, when inspecting, free-form rows),
 * disposes, and sends one reply. Run in its own process so that a model that crashes onnxruntime, exhausts memory
 * or never returns takes down only this process.
 *
 * The checks run in order and each needs the one before: `bundle` (unpack and manifest), `test cases declared`,
 * `runtime`, `model loads`, `test cases pass`. The upload gate stops at the first failure and replies with its
 * message; an inspection (the console's playground and upload page) replies with every check, case and row.
 *
 * argv[2]: a ChildRequest as JSON. Reply on the IPC channel: a ChildReply. Exits 0 after replying.
 */
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { LoadedModel } from '../../runtimes/contract.ts';
import { openBundleZip, type ZipLimits } from '../../runtimes/bundle/index.ts';
import { createRuntimes } from '../../runtimes/index.ts';
import { SibylError, toSibylError, type CodeName } from '../../core/errors.ts';
import { requireTestCases, type Manifest, type TestCase } from '../../runtimes/manifest.ts';
import { ModelVersion } from '../../execution/model-version.ts';
import { formatFailures, reportTestCases, type CaseReport } from '../../execution/test-cases.ts';

/** Failing cases spelled out in the rejection; the rest are counted. */
const MAX_CASES_SHOWN = 20;

export interface ChildRequest {
  /** The uploaded zip, written by the parent. */
  readonly zipFile: string;
  /** Where to unpack it (must not exist yet). */
  readonly unpackDir: string;
  readonly limits: Partial<ZipLimits>;
  /** Inspect instead of gate: report every check, case and the rows in this file (JSON TestCase[], nothing expected). */
  readonly inspect?: { readonly rowsFile: string };
}

/** One step of the gate: passed, or failed with the code and message the upload is refused with. */
export interface Check {
  readonly name: string;
  readonly ok: boolean;
  readonly code?: CodeName;
  readonly message?: string;
}

/** Everything an inspection found; `manifest` when the bundle unpacked. */
export interface Verdict {
  readonly checks: readonly Check[];
  readonly cases: readonly CaseReport[];
  readonly rows: readonly CaseReport[];
  readonly manifest?: Manifest;
}

export type ChildReply =
  | { readonly ok: true; readonly manifest: Manifest; readonly verdict?: Verdict }
  | { readonly ok: true; readonly manifest?: undefined; readonly verdict: Verdict }
  | { readonly ok: false; readonly code: CodeName; readonly message: string };

async function inspect(request: ChildRequest): Promise<Verdict> {
  const checks: Check[] = [];
  const failed = (name: string, err: unknown): Verdict => {
    const e = toSibylError(err);
    if (e.code === 'INTERNAL') process.stderr.write(`validation failed: ${String((err as Error)?.stack ?? err)}\n`);
    checks.push({ name, ok: false, code: e.code, message: e.code === 'INTERNAL' ? 'the validation failed unexpectedly; the bundle was not accepted' : e.message });
    return { checks, cases: [], rows: [], ...(manifest ? { manifest } : {}) };
  };
  let manifest: Manifest | undefined;
  let bundle;
  try {
    bundle = await openBundleZip(await readFile(request.zipFile), request.unpackDir, request.limits);
    manifest = bundle.manifest;
    checks.push({ name: 'bundle', ok: true });
  } catch (err) {
    return failed('bundle', err);
  }
  // Before anything loads: a bundle with no case, or an output no case expects, has shown nothing to check.
  try {
    requireTestCases(bundle.manifest);
    checks.push({ name: 'test cases declared', ok: true });
  } catch (err) {
    return failed('test cases declared', err);
  }
  // Each runtime imports its implementation when it loads the first model (a native module can take a good part of
  // the start-up), so only the bundle's own runtime is imported, and only for a bundle that unpacked.
  const runtimes = createRuntimes();
  try {
    const runtime = runtimes.byKind.get(bundle.manifest.runtime);
    if (!runtime) return failed('runtime', new SibylError('INVALID_ARGUMENT', `runtime: "${bundle.manifest.runtime}" is not available in this control tower`));
    checks.push({ name: 'runtime', ok: true });
    let model: LoadedModel;
    try {
      model = await runtime.load(bundle);
    } catch (err) {
      // Messages go to the uploader: no host paths (onnxruntime names the paths it resolved).
      const detail = String((err as Error)?.message ?? err)
        .split(request.unpackDir)
        .join('<bundle>')
        .split(dirname(request.unpackDir))
        .join('<work>');
      return failed('model loads', new SibylError('INVALID_ARGUMENT', `the model does not load: ${detail}`, { cause: err }));
    }
    checks.push({ name: 'model loads', ok: true });
    try {
      const version = new ModelVersion(bundle.manifest, model);
      const cases = await reportTestCases(version, bundle.manifest.tests);
      const rows = request.inspect ? await reportTestCases(version, JSON.parse(await readFile(request.inspect.rowsFile, 'utf8')) as TestCase[]) : [];
      const failures = cases.filter((c) => c.problems.length > 0);
      if (failures.length) {
        const more = failures.length > MAX_CASES_SHOWN ? `\n(and ${failures.length - MAX_CASES_SHOWN} more failing cases)` : '';
        const message = `${failures.length} of ${cases.length} test cases failed:\n${formatFailures(failures.slice(0, MAX_CASES_SHOWN))}${more}`;
        checks.push({ name: 'test cases pass', ok: false, code: 'INVALID_ARGUMENT', message });
      } else {
        checks.push({ name: 'test cases pass', ok: true });
      }
      return { checks, cases, rows, manifest: bundle.manifest };
    } finally {
      await model.dispose();
    }
  } finally {
    await runtimes.close();
  }
}

function reply(message: ChildReply): void {
  process.send!(message, () => process.exit(0));
}

const request = JSON.parse(process.argv[2]!) as ChildRequest;
inspect(request).then(
  (verdict) => {
    if (request.inspect) return reply({ ok: true, verdict });
    const bad = verdict.checks.find((c) => !c.ok);
    if (bad) return reply({ ok: false, code: bad.code ?? 'INVALID_ARGUMENT', message: bad.message ?? bad.name });
    reply({ ok: true, manifest: verdict.manifest! });
  },
  (err: unknown) => {
    const e = toSibylError(err);
    if (e.code === 'INTERNAL') process.stderr.write(`validation failed: ${String((err as Error)?.stack ?? err)}\n`);
    reply({ ok: false, code: e.code, message: e.code === 'INTERNAL' ? 'the validation failed unexpectedly; the bundle was not accepted' : e.message });
  },
);
