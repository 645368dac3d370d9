/**
 * The upload gate, in its own process: good bundles pass with their manifest and hash; hostile zips, broken models,
 * mismatched manifests and failing test cases are refused with their own messages; a validation that runs out of
 * time or memory is a rejection and the control tower's process lives on; nothing stays in the work directory.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUploadValidator, type UploadValidator } from '../../../control-tower/validation/index.ts';
import { MODELS_DIR } from '../../helpers/expected.ts';
import { bundleEntries, bundleZip, hostileCorpus, makeZip } from '../../runtimes/bundle/zips.ts';

let workDir: string;
let validator: UploadValidator;
beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'sibyl-validate-'));
  validator = createUploadValidator({ workDir, timeoutMs: 60_000 });
});
afterAll(() => validator.close());

async function refusal(zip: Buffer, v = validator): Promise<{ code: string; message: string }> {
  return v.validate(zip).then(
    () => ({ code: 'accepted', message: '' }),
    (e: { code: string; message: string }) => ({ code: e.code, message: e.message }),
  );
}

const withManifest = (model: string, version: string, edit: (m: string) => string) =>
  makeZip(bundleEntries(model, version).map((e) => (e.name === 'sibyl.yaml' ? { ...e, data: edit(e.data.toString()) } : e)));

describe('upload validation', () => {
  it('accepts the shipped bundles: their models load and their test cases pass', async () => {
    for (const [model, version] of [['delivery-eta', '2'], ['eta-risk', '1'], ['tabular-mlp', '1']] as const) {
      const zip = await bundleZip(model, version);
      const v = await validator.validate(zip);
      expect(v.manifest).toMatchObject({ name: model, version });
      expect(v.manifest.tests.length).toBeGreaterThan(0);
      expect(v.sha256).toBe(createHash('sha256').update(zip).digest('hex'));
      expect(v.sizeBytes).toBe(zip.byteLength);
    }
    expect(readdirSync(workDir)).toEqual([]);
  });

  it('refuses every zip of the hostile corpus with its own message', async () => {
    for (const c of await hostileCorpus()) {
      if (c.limits) continue; // limits are the unpacker's options; its own suite covers them
      const r = await refusal(c.zip);
      expect(r.code, c.name).toBe('INVALID_ARGUMENT');
      expect(r.message, c.name).toMatch(c.message);
    }
    expect(readdirSync(workDir)).toEqual([]);
  });

  it('refuses a garbage ONNX file', async () => {
    const zip = await makeZip(bundleEntries('tabular-mlp', '1').map((e) => (e.name === 'model.onnx' ? { ...e, data: Buffer.from('garbage, not a protobuf'.repeat(10)) } : e)));
    const r = await refusal(zip);
    expect(r).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/model does not load|not an ONNX model/i) });
  });

  it('refuses a model whose inputs do not match the manifest, naming the mismatch', async () => {
    const onnx = readFileSync(join(MODELS_DIR, 'delivery-eta', '2', 'model.onnx'));
    const zip = await makeZip(bundleEntries('tabular-mlp', '1').map((e) => (e.name === 'model.onnx' ? { ...e, data: onnx } : e)));
    const r = await refusal(zip);
    expect(r.code).toBe('INVALID_ARGUMENT');
    expect(r.message).toMatch(/onnx\.inputs/);
  });

  it('refuses a bundle whose test case fails, showing the case, the expected and the actual value', async () => {
    const zip = await withManifest('delivery-eta', '2', (m) => m.replace(/eta_minutes: ([0-9.]+)/, 'eta_minutes: 99.5'));
    const r = await refusal(zip);
    expect(r.code).toBe('INVALID_ARGUMENT');
    expect(r.message).toMatch(/1 of \d+ test cases failed/);
    expect(r.message).toMatch(/test case "expected row 0":\n {2}- eta_minutes: expected 99\.5, got [0-9.]+ \(off by/);
  });

  it('refuses a runtime this control tower does not have', async () => {
    const zip = await makeZip([{ name: 'sibyl.yaml', data: 'name: r\nversion: "1"\nruntime: sagemaker\noutputs: [{ name: score }]\nsagemaker: { endpoint: x }\n' }]);
    const r = await refusal(zip);
    expect(r.code).toBe('INVALID_ARGUMENT');
  });

  it('rejects a validation that runs out of time, and one that runs out of memory; this process lives on', async () => {
    const slow = createUploadValidator({ workDir, timeoutMs: 1 });
    expect(await refusal(await bundleZip('tabular-mlp', '1'), slow)).toMatchObject({ code: 'RESOURCE_EXHAUSTED', message: expect.stringContaining('longer than 1 ms') });
    const small = createUploadValidator({ workDir, maxOldSpaceMb: 4 });
    const r = await refusal(await bundleZip('tabular-mlp', '1'), small);
    expect(r.code).not.toBe('accepted');
    expect(['RESOURCE_EXHAUSTED', 'INVALID_ARGUMENT']).toContain(r.code);
    // The parent still validates.
    expect((await validator.validate(await bundleZip('tabular-mlp', '1'))).manifest.name).toBe('tabular-mlp');
    expect(readdirSync(workDir)).toEqual([]);
  });
});
