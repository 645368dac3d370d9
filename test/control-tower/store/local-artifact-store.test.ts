import { mkdtemp, readdir, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createLocalArtifactStore, sha256Hex } from '../../../control-tower/store/artifact-store.ts';
import { describeArtifactStore } from './artifact-store.case.ts';

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'sibyl-artifacts-'));
  dirs.push(dir);
  return dir;
}
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

describeArtifactStore('local directory', async () => createLocalArtifactStore(join(await tempDir(), 'bundles')));

describe('local artifact store layout', () => {
  it('keeps one file dir/ab/<sha256>.zip per artifact and no temporary files after puts', async () => {
    const dir = await tempDir();
    const store = createLocalArtifactStore(dir);
    const bytes = Buffer.from('zip bytes');
    const sha = sha256Hex(bytes);
    await Promise.all([store.put(sha, bytes), store.put(sha, bytes)]);
    expect(await readdir(dir)).toEqual([sha.slice(0, 2)]);
    expect(await readdir(join(dir, sha.slice(0, 2)))).toEqual([`${sha}.zip`]);
  });

  it('does not see a temporary file left by an interrupted put', async () => {
    const dir = await tempDir();
    const store = createLocalArtifactStore(dir);
    const bytes = Buffer.from('whole bundle');
    const sha = sha256Hex(bytes);
    await mkdir(join(dir, sha.slice(0, 2)));
    await writeFile(join(dir, sha.slice(0, 2), '.tmp-0123456789abcdef'), bytes.subarray(0, 5));
    expect(await store.has(sha)).toBe(false);
    expect(await store.get(sha)).toBeUndefined();
    await store.put(sha, bytes);
    expect(Buffer.from((await store.get(sha))!).toString()).toBe('whole bundle');
  });
});
