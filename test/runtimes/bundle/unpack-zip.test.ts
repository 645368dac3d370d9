/** Untrusted zips: the shipped bundles open; every zip of the hostile corpus is refused with its own message and leaves nothing behind. */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_ZIP_LIMITS, openBundleZip, unpackZip } from '../../../runtimes/bundle/index.ts';
import { MODELS_DIR } from '../../helpers/expected.ts';
import { bundleZip, hostileCorpus, makeZip } from '../../control-tower/validation/hostile-zips.ts';

const OUTSIDE = 'sibyl-evil.txt';
const corpus = await hostileCorpus(OUTSIDE);
const fresh = async (prefix = 'sibyl-unzip-') => join(await mkdtemp(join(tmpdir(), prefix)), 'b');

describe('bundle zips', () => {
  it('has the documented default limits', () => {
    expect(DEFAULT_ZIP_LIMITS).toEqual({ maxZipBytes: 256 << 20, maxEntries: 1000, maxEntryBytes: 512 << 20, maxTotalBytes: 1 << 30, maxRatio: 200 });
    expect(Object.isFrozen(DEFAULT_ZIP_LIMITS)).toBe(true);
  });

  it('open: the shipped bundles unpack byte for byte, with their manifest and the sha256 of the zip', async () => {
    for (const [model, version] of [['delivery-eta', '2'], ['eta-risk', '1'], ['tabular-mlp', '1']] as const) {
      const zip = await bundleZip(model, version);
      const dest = await fresh();
      const bundle = await openBundleZip(zip, dest);
      expect(bundle.manifest).toMatchObject({ name: model, version });
      expect(bundle.dir).toBe(dest);
      expect(bundle.hash).toBe(createHash('sha256').update(zip).digest('hex'));
      for (const f of ['sibyl.yaml', 'model.onnx', 'expected.json']) {
        expect(readFileSync(join(dest, f)).equals(readFileSync(join(MODELS_DIR, model, version, f))), f).toBe(true);
      }
    }
  });

  it('unpacks directory entries and nested paths (in either order), files without execute bits', async () => {
    const zip = await makeZip([
      { name: 'a/b/c.txt', data: 'hello' },
      { name: 'a/', data: '' },
      { name: 'empty/', data: '' },
      { name: 'top.sh', data: 'x', mode: 0o100755 },
    ]);
    const dest = await fresh();
    expect(await unpackZip(zip, dest)).toEqual({ files: ['a/b/c.txt', 'top.sh'], totalBytes: 6 });
    expect(readFileSync(join(dest, 'a/b/c.txt'), 'utf8')).toBe('hello');
    expect(statSync(join(dest, 'empty')).isDirectory()).toBe(true);
    expect(statSync(join(dest, 'top.sh')).mode & 0o111).toBe(0);
  });

  it('refuses a destination that is not empty or not a directory, and leaves it alone', async () => {
    const zip = await makeZip([{ name: 'x.txt', data: 'x' }]);
    const dest = await fresh();
    await mkdir(dest);
    writeFileSync(join(dest, 'keep.txt'), 'mine');
    await expect(unpackZip(zip, dest)).rejects.toMatchObject({ code: 'FAILED_PRECONDITION', message: 'bundle: the destination directory is not empty' });
    expect(readdirSync(dest)).toEqual(['keep.txt']);
    const file = join(dest, 'keep.txt');
    await expect(unpackZip(zip, file)).rejects.toMatchObject({ code: 'FAILED_PRECONDITION' });
    expect(readFileSync(file, 'utf8')).toBe('mine');
  });

  it('unpacks into an existing empty directory', async () => {
    const dest = await fresh();
    await mkdir(dest);
    expect((await unpackZip(await makeZip([{ name: 'x.txt', data: 'x' }]), dest)).files).toEqual(['x.txt']);
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
      expect(err!.message).not.toContain(root);
      expect(readdirSync(root)).toEqual([]);
      expect(existsSync(join(root, '..', OUTSIDE))).toBe(false);
      expect(existsSync(join('/tmp', OUTSIDE))).toBe(false);
    });
  });

  it('each hostile zip is refused for its own reason: the messages differ', () => {
    const messages = corpus.map((c) => c.message.source);
    expect(new Set(messages).size).toBe(messages.length);
  });
});
