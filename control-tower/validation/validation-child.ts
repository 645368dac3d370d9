/**
 * The validation process (forked by upload-validator.ts): unpacks one bundle zip, requires test cases that expect
 * every output, loads its model with the real runtimes, runs the cases, disposes, and sends one reply. Run in its own process so that a model
 * that crashes onnxruntime, exhausts memory or never returns takes down only this process.
 *
 * argv[2]: a ChildRequest as JSON. Reply on the IPC channel: a ChildReply. Exits 0 after replying.
 */
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { LoadedModel } from '../../runtimes/contract.ts';
import { openBundleZip, type ZipLimits } from '../../runtimes/bundle/index.ts';
import { createRuntimes } from '../../runtimes/index.ts';
import { SibylError, toSibylError, type CodeName } from '../../core/errors.ts';
import { requireTestCases, type Manifest } from '../../runtimes/manifest.ts';
import { ModelVersion } from '../../execution/model-version.ts';
import { formatFailures, runTestCases } from '../../execution/test-cases.ts';

/** Failing cases spelled out in the rejection; the rest are counted. */
const MAX_CASES_SHOWN = 20;

export interface ChildRequest {
  /** The uploaded zip, written by the parent. */
  readonly zipFile: string;
  /** Where to unpack it (must not exist yet). */
  readonly unpackDir: string;
  readonly limits: Partial<ZipLimits>;
}

export type ChildReply = { readonly ok: true; readonly manifest: Manifest } | { readonly ok: false; readonly code: CodeName; readonly message: string };

async function validate(request: ChildRequest): Promise<Manifest> {
  const zip = await readFile(request.zipFile);
  const bundle = await openBundleZip(zip, request.unpackDir, request.limits);
  // Before anything loads: a bundle with no case, or an output no case expects, has shown nothing to check.
  requireTestCases(bundle.manifest);
  // Each runtime imports its implementation when it loads the first model (a native module can take a good part of
  // the start-up), so only the bundle's own runtime is imported, and only for a bundle that unpacked.
  const runtimes = createRuntimes();
  try {
    const runtime = runtimes.byKind.get(bundle.manifest.runtime);
    if (!runtime) throw new SibylError('INVALID_ARGUMENT', `runtime: "${bundle.manifest.runtime}" is not available in this control tower`);
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
      throw new SibylError('INVALID_ARGUMENT', `the model does not load: ${detail}`, { cause: err });
    }
    try {
      const failures = await runTestCases(new ModelVersion(bundle.manifest, model));
      if (failures.length) {
        const more = failures.length > MAX_CASES_SHOWN ? `\n(and ${failures.length - MAX_CASES_SHOWN} more failing cases)` : '';
        throw new SibylError('INVALID_ARGUMENT', `${failures.length} of ${bundle.manifest.tests.length} test cases failed:\n${formatFailures(failures.slice(0, MAX_CASES_SHOWN))}${more}`);
      }
    } finally {
      await model.dispose();
    }
    return bundle.manifest;
  } finally {
    await runtimes.close();
  }
}

function reply(message: ChildReply): void {
  process.send!(message, () => process.exit(0));
}

validate(JSON.parse(process.argv[2]!) as ChildRequest).then(
  (manifest) => reply({ ok: true, manifest }),
  (err: unknown) => {
    const e = toSibylError(err);
    if (e.code === 'INTERNAL') process.stderr.write(`validation failed: ${String((err as Error)?.stack ?? err)}\n`);
    reply({ ok: false, code: e.code, message: e.code === 'INTERNAL' ? 'the validation failed unexpectedly; the bundle was not accepted' : e.message });
  },
);
