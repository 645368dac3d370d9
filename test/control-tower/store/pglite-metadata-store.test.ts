import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createMetadataStore } from '../../../control-tower/store/metadata-store.ts';
import { openPglite } from '../../../control-tower/store/sql.ts';
import { describeMetadataStore } from './metadata-store.case.ts';

describeMetadataStore('PGlite (in memory)', {
  async fresh() {
    const sql = await openPglite();
    return { sql, drop: () => sql.close() };
  },
});

describe('MetadataStore on PGlite (data directory)', () => {
  it('keeps versions, cells, revisions and tokens across a close and reopen', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sibyl-pglite-'));
    try {
      const first = await openPglite({ dataDir: join(dir, 'db') });
      const store = await createMetadataStore(first);
      await store.ensureCells(['a']);
      await store.addVersion({ name: 'eta', version: 'v1', sha256: 'c'.repeat(64), runtime: 'onnx', manifest: { name: 'eta' }, sizeBytes: 9, actor: 'alice' });
      await store.deploy('eta', 'v1', ['a'], 'alice');
      const { token } = await store.createToken({ name: 'ci', role: 'viewer', actor: 'root' });
      await store.close();
      await first.close();

      const second = await openPglite({ dataDir: join(dir, 'db') });
      const reopened = await createMetadataStore(second);
      expect(await reopened.cellState('a')).toMatchObject({ revision: 2n, models: [{ name: 'eta', defaultVersion: 'v1' }] });
      expect(await reopened.authenticate(token)).toEqual({ name: 'ci', role: 'viewer' });
      await reopened.close();
      await second.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
