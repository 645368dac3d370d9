/**
 * The validation process (forked by upload-validator.ts): unpacks one bundle zip, loads its model with the real
 * runtimes, runs the manifest's test cases, disposes, and sends one message back. Run in its own process so that a
 * model that crashes onnxruntime, exhausts memory or never returns takes down only this process.
 *
 * argv: <zip file> <unpack dir>. Reply on the IPC channel: { ok: true, manifest } or { ok: false, code, message }.
 */
import { readFile } from 'node:fs/promises';
import { openBundleZip } from '../../runtimes/bundle/index.ts';
import { toSibylError, SibylError } from '../../runtimes/errors.ts';
import { createRuntimes } from '../../runtimes/index.ts';
import { formatFailures, runTestCases } from '../../runtimes/test-cases.ts';

const [zipFile, unpackDir] = process.argv.slice(2);

async function validate(): Promise<unknown> {
  const zip = await readFile(zipFile!);
  const bundle = await openBundleZip(zip, unpackDir!);
  const runtimes = createRuntimes();
  try {
    const runtime = runtimes.byKind.get(bundle.manifest.runtime);
    if (!runtime) throw new SibylError('INVALID_ARGUMENT', `runtime: "${bundle.manifest.runtime}" is not available in this control tower`);
    let model;
    try {
      model = await runtime.load(bundle);
    } catch (err) {
      const e = toSibylError(err);
      throw new SibylError('INVALID_ARGUMENT', `the model does not load: ${e.code === 'INTERNAL' ? String((err as Error)?.message ?? err) : e.message}`);
    }
    try {
      const failures = await runTestCases(model, bundle.manifest);
      if (failures.length) {
        throw new SibylError('INVALID_ARGUMENT', `${failures.length} of ${bundle.manifest.tests.length} test cases failed:\n${formatFailures(failures)}`);
      }
    } finally {
      await model.dispose();
    }
    return bundle.manifest;
  } finally {
    await runtimes.close();
  }
}

validate().then(
  (manifest) => process.send!({ ok: true, manifest }, () => process.exit(0)),
  (err: unknown) => {
    const e = toSibylError(err);
    const message = e.code === 'INTERNAL' ? `validation failed: ${String((err as Error)?.message ?? err)}` : e.message;
    process.send!({ ok: false, code: e.code === 'INTERNAL' ? 'INVALID_ARGUMENT' : e.code, message }, () => process.exit(0));
  },
);
