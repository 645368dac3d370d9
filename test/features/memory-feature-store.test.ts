import { describe, expect, it } from 'vitest';
import { createMemoryFeatureStore, seedFromFile } from '../../gateway/features/memory-feature-store.ts';
import { FeatureFileError } from '../../gateway/features/feature-file.ts';
import { featureStoreConformance } from './feature-store.case.ts';

featureStoreConformance('memory', async () => createMemoryFeatureStore(), { prefix: 'sibyl' });

describe('memory feature store', () => {
  it('writes nothing when the seed file is malformed', async () => {
    const store = createMemoryFeatureStore();
    const bad = new URL('./fixtures/bad-value.jsonl', import.meta.url).pathname;
    await expect(seedFromFile(store, bad, 'sibyl')).rejects.toThrow(FeatureFileError);
    // The first line of the file is valid; it must not have been written.
    expect(await store.read([{ key: 'sibyl:restaurant:r1', fields: ['prep_time_avg_7d'] }], 10)).toEqual([[null]]);
  });

  it('rejects a missing seed file with a FeatureFileError naming it', async () => {
    const store = createMemoryFeatureStore();
    await expect(seedFromFile(store, '/nonexistent/features.jsonl', 'sibyl')).rejects.toThrow(/nonexistent\/features\.jsonl: cannot read/);
  });
});
