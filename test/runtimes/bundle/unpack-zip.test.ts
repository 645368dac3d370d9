/** Untrusted zips: the shipped bundles open; every zip of the hostile corpus is refused with its own message and leaves nothing behind. */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { openBundleZip, unpackZip } from '../../../runtimes/bundle/index.ts';
import { MODELS_DIR } from '../../helpers/expected.ts';
import { bundleZip, hostileCorpus, makeZip } from './zips.ts';

const corpus = await hostileCorpus();

describe('bundle zips', () => {
  it('open: the shipped bundles unpack byte for byte, with their manifest and the sha256 of the zip', async () => {
    for (const [model, version] of [['delivery-eta', '2'], ['eta-risk', '1'], ['tabular-mlp', '1']] as const) {
      const zip = await bundleZip(model, version);
      const dest = join(await mkdtemp(join(tmpdir(), 'sibyl-unzip-')), 'b');
      const bundle = await openBundleZip(zip, dest);
      expect(bundle.manifest).toMatchObject({ name: model, version });
      expect(bundle.hash).toBe(createHash('sha256').update(zip).digest('hex'));
      for (const f of ['sibyl.yaml', 'model.onnx', 'expected.json']) {
        expect(readFileSync(join(dest, f)).equals(readFileSync(join(MODELS_DIR, model, version, f))), f).toBe(true);
      }
    }
  });

  it('unpacks directories and nested paths, and refuses a destination that is not empty', async () => {
    const zip = await makeZip([{ name: 'a/b/c.txt', data: 'hello' }, { name: 'top.txt', data: 'x' }]);
    const dest = join(await mkdtemp(join(tmpdir(), 'sibyl-unzip-')), 'u');
    expect(await unpackZip(zip, dest)).toEqual({ files: ['a/b/c.txt', 'top.txt'], totalBytes: 6 });
    expect(readFileSync(join(dest, 'a/b/c.txt'), 'utf8')).toBe('hello');
    await expect(unpackZip(zip, dest)).rejects.toMatchObject({ code: 'FAILED_PRECONDITION' });
  });

  describe.each(corpus.map((c) => [c.name, c] as const))('refuses %s', (_name, c) => {
    it('with INVALID_ARGUMENT, its own message, and nothing left on disk', async () => {
      const root = await mkdtemp(join(tmpdir(), 'sibyl-hostile-'));
      const dest = join(root, 'bundle');
      const err = await openBundleZip(c.zip, dest, c.limits).then(
        () => undefined,
        (e: unknown) => e as { code: string; message: string },
      );
      expect(err, 'accepted').toBeDefined();
      expect(err!.code).toBe('INVALID_ARGUMENT');
      expect(err!.message).toMatch(c.message);
      expect(readdirSync(root)).toEqual([]);
      expect(existsSync(join(root, '..', 'evil.txt'))).toBe(false);
    });
  });

  it('refuses a zip larger than maxZipBytes before reading it', async () => {
    const zip = await bundleZip('tabular-mlp', '1');
    await expect(openBundleZip(zip, join(await mkdtemp(join(tmpdir(), 'sibyl-unzip-')), 'b'), { maxZipBytes: 100 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('more than the limit of 100') });
  });
});
