/** The one ArtifactStore suite, run against every implementation (local directory, S3 on moto). */
import { randomBytes } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import { sha256Hex, type ArtifactStore } from '../../../control-tower/store/artifact-store.ts';

export function describeArtifactStore(label: string, open: () => Promise<ArtifactStore>): void {
  describe(`ArtifactStore (${label})`, () => {
    let store: ArtifactStore;
    beforeEach(async () => {
      store = await open();
    });

    it('returns exactly the bytes put under their hash', async () => {
      const bytes = randomBytes(100_000);
      const sha = sha256Hex(bytes);
      expect(await store.has(sha)).toBe(false);
      expect(await store.get(sha)).toBeUndefined();
      await store.put(sha, bytes);
      expect(await store.has(sha)).toBe(true);
      expect(Buffer.from((await store.get(sha))!).equals(bytes)).toBe(true);
    });

    it('stores an empty artifact', async () => {
      const empty = new Uint8Array();
      await store.put(sha256Hex(empty), empty);
      expect(await store.get(sha256Hex(empty))).toEqual(new Uint8Array());
    });

    it('rejects bytes that do not match the hash, or a malformed hash, with INVALID_ARGUMENT and stores nothing', async () => {
      const bytes = randomBytes(1000);
      const other = sha256Hex(randomBytes(10));
      await expect(store.put(other, bytes)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      expect(await store.has(other)).toBe(false);
      await expect(store.put(sha256Hex(bytes).toUpperCase(), bytes)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      await expect(store.put('../../etc/passwd', bytes)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    });

    it('answers undefined / false for malformed hashes instead of reading anything', async () => {
      for (const bad of ['', 'abc', '../' + 'a'.repeat(61), 'A'.repeat(64), `${'a'.repeat(64)}/../x`]) {
        expect(await store.get(bad)).toBeUndefined();
        expect(await store.has(bad)).toBe(false);
      }
    });

    it('is idempotent, also under concurrent puts of the same artifact, and readers never see a partial artifact', async () => {
      const bytes = randomBytes(3 * 1024 * 1024);
      const sha = sha256Hex(bytes);
      const seen: (Uint8Array | undefined)[] = [];
      let writing = true;
      const reader = (async () => {
        while (writing) seen.push(await store.get(sha));
      })();
      await Promise.all(Array.from({ length: 4 }, () => store.put(sha, bytes)));
      writing = false;
      await reader;
      await store.put(sha, bytes);
      for (const got of seen) if (got !== undefined) expect(sha256Hex(got)).toBe(sha);
      expect(sha256Hex((await store.get(sha))!)).toBe(sha);
    });
  });
}
