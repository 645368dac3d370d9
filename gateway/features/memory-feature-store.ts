/**
 * The embedded FeatureStore: a Map of hashes in this process, seeded from a feature file (`npm start` uses
 * models/features.jsonl). Same layout and semantics as Redis: values are strings, absent keys or fields read as
 * null, `write` merges fields into a hash like HSET. For local runs and pipeline unit tests; never a stand-in for
 * the Redis integration suites.
 */
import type { FeatureLookup, FeatureStore } from '../../execution/feature-store.ts';
import { loadFeatureFile, type FeatureFileFormat } from './feature-file.ts';

/** Always healthy; `read` ignores its deadline (it answers synchronously) and never rejects. */
export function createMemoryFeatureStore(): FeatureStore {
  const hashes = new Map<string, Map<string, string>>();
  return {
    kind: 'memory',
    healthy: true,

    read(lookups: readonly FeatureLookup[], _timeoutMs: number): Promise<(string | null)[][]> {
      const out = new Array<(string | null)[]>(lookups.length);
      for (let i = 0; i < lookups.length; i++) {
        const { key, fields } = lookups[i]!;
        const hash = hashes.get(key);
        const values = new Array<string | null>(fields.length);
        for (let j = 0; j < fields.length; j++) values[j] = hash?.get(fields[j]!) ?? null;
        out[i] = values;
      }
      return Promise.resolve(out);
    },

    write(entries): Promise<void> {
      for (const { key, fields } of entries) {
        let hash = hashes.get(key);
        for (const name of Object.keys(fields)) {
          if (!hash) hashes.set(key, (hash = new Map()));
          hash.set(name, fields[name]!);
        }
      }
      return Promise.resolve();
    },

    close(): Promise<void> {
      return Promise.resolve();
    },
  };
}

/**
 * Writes every row of a feature file (see feature-file.ts) into `store` under `prefix`; resolves to the number of
 * rows written. Throws FeatureFileError for a missing or malformed file, before anything is written.
 */
export async function seedFromFile(store: FeatureStore, path: string, prefix: string, format?: FeatureFileFormat): Promise<number> {
  const entries = await loadFeatureFile(path, prefix, format);
  await store.write(entries);
  return entries.length;
}
